// Rename pairing. A rename inside the watched tree reaches us as two kernel records with
// the same `cookie`: IN_MOVED_FROM (in the old parent) then IN_MOVED_TO (in the new one).
// They are almost always adjacent, usually in one read. A held MOVED_FROM whose name is used
// again by a later record (other than its MOVED_TO) can no longer pair: it becomes a delete
// right there, so "mv a out; touch a" is a delete then a create. A MOVED_FROM with no partner by the
// end of a batch waits for the next batch (or a short timer): if that batch does not start
// with its MOVED_TO, the name left the tree and becomes a delete. A MOVED_TO without a
// MOVED_FROM came from outside the tree and becomes a create.

import type { WatchEvent } from './types.js';

/** Pure state machine holding unpaired MOVED_FROM halves (no I/O; used by the watcher). */
export class MovePairer<T> {
  private readonly pending = new Map<number, { item: T; stale: boolean }>();
  private staleCount = 0;

  get size(): number {
    return this.pending.size;
  }

  /** Halves carried over from an earlier batch are waiting. */
  hasStale(): boolean {
    return this.staleCount > 0;
  }

  /** Would a MOVED_TO with this cookie pair with a held half? */
  has(cookie: number): boolean {
    return this.pending.has(cookie);
  }

  /** An IN_MOVED_FROM: hold it until its partner arrives. */
  from(cookie: number, item: T): void {
    this.pending.set(cookie, { item, stale: false });
  }

  /** An IN_MOVED_TO: the held IN_MOVED_FROM with the same cookie (removed), if any. */
  to(cookie: number): T | undefined {
    const p = this.pending.get(cookie);
    if (p === undefined) return undefined;
    this.pending.delete(cookie);
    if (p.stale) this.staleCount--;
    return p.item;
  }

  /**
   * Remove and return the held halves whose item matches (they can no longer pair). Used when
   * a record reuses the name a held half left: a rename locks both parent directories, so no
   * other create/delete/rename of that name can come between its two halves.
   */
  take(pred: (item: T, cookie: number) => boolean): T[] {
    const out: T[] = [];
    for (const [cookie, p] of this.pending) {
      if (pred(p.item, cookie)) {
        out.push(p.item);
        this.pending.delete(cookie);
        if (p.stale) this.staleCount--;
      }
    }
    return out;
  }

  /** Remove and return the halves carried over from an earlier batch (they become deletes). */
  takeStale(): T[] {
    const out: T[] = [];
    if (this.staleCount === 0) return out;
    for (const [cookie, p] of this.pending) {
      if (p.stale) {
        out.push(p.item);
        this.pending.delete(cookie);
      }
    }
    this.staleCount = 0;
    return out;
  }

  /** End of a kernel batch: whatever is still held becomes stale. Returns how many are held. */
  endBatch(): number {
    for (const p of this.pending.values()) {
      if (!p.stale) {
        p.stale = true;
        this.staleCount++;
      }
    }
    return this.pending.size;
  }

  /** Remove and return everything held (timer expiry, close). */
  takeAll(): T[] {
    const out = [...this.pending.values()].map((p) => p.item);
    this.pending.clear();
    this.staleCount = 0;
    return out;
  }
}

/** A kernel record already resolved to a path (input of pairMoves). */
export type PathOp =
  | { kind: 'create' | 'modify' | 'attrib' | 'delete'; path: string; isDir: boolean }
  | { kind: 'from' | 'to'; cookie: number; path: string; isDir: boolean };

export interface HeldFrom {
  path: string;
  isDir: boolean;
}

/**
 * Pair the moves of one batch. `carried` is the pairer state from the previous batch
 * (pass the same MovePairer each time); what is still unpaired at the end stays in it.
 * This is the watcher's rule in pure form: a stale half is turned into a delete before the
 * first record that is not its MOVED_TO.
 */
export function pairMoves(batch: readonly PathOp[], carried: MovePairer<HeldFrom>): WatchEvent[] {
  const out: WatchEvent[] = [];
  const flushStale = (): void => {
    for (const h of carried.takeStale()) out.push({ type: 'delete', path: h.path, isDir: h.isDir });
  };
  for (const op of batch) {
    if (carried.hasStale() && !(op.kind === 'to' && carried.has(op.cookie))) flushStale();
    if (carried.size > 0) {
      const cookie = op.kind === 'to' ? op.cookie : -1;
      for (const h of carried.take((held, c) => held.path === op.path && c !== cookie)) {
        out.push({ type: 'delete', path: h.path, isDir: h.isDir });
      }
    }
    if (op.kind === 'from') {
      carried.from(op.cookie, { path: op.path, isDir: op.isDir });
    } else if (op.kind === 'to') {
      const from = carried.to(op.cookie);
      if (from === undefined) out.push({ type: 'create', path: op.path, isDir: op.isDir });
      else out.push({ type: 'move', from: from.path, path: op.path, isDir: op.isDir });
    } else {
      out.push({ type: op.kind, path: op.path, isDir: op.isDir });
    }
  }
  carried.endBatch();
  return out;
}
