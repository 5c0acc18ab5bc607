// The live mirror's planner: watcher events collapsed per path into a pending set, and the
// pending set turned into the push roots of one batch (the smallest subtrees that cover every
// change, each pushed with rsync's --delete semantics). Pure: no fs, no timers (the caller
// passes `isLocalDir`). See docs/live.md.
import type { WatchEvent } from '../watcher/index.js';

/** What is pending for one path. `rescan`: the whole subtree at `path` must be compared. */
export type PendingKind = 'create' | 'modify' | 'attrib' | 'delete' | 'rescan';

export interface PendingEntry {
  kind: PendingKind;
  isDir: boolean;
}

/** A rename the watcher paired: the path's previous name. */
export interface Move {
  from: string;
  isDir: boolean;
}

/**
 * `older` then `newer` for the same path, as one entry.
 *
 * create+modify = create, modify+attrib = modify, X+delete = delete, delete+create = create
 * (a replacement), anything+rescan and rescan+anything = rescan. create+delete is kept as a
 * `delete`, not dropped: the watcher's `create` also means "replaced", so the mirror may hold an
 * older copy that must go (a create-then-delete inside one watcher batch never reaches us).
 */
export function combine(older: PendingEntry, newer: PendingEntry): PendingEntry {
  if (older.kind === 'rescan' || newer.kind === 'rescan') return { kind: 'rescan', isDir: older.kind === 'rescan' ? older.isDir : newer.isDir };
  if (newer.kind === 'delete') return newer;
  if (older.kind === 'delete' || older.kind === 'create' || newer.kind === 'create') return { kind: 'create', isDir: newer.isDir };
  if (older.kind === 'modify' || newer.kind === 'modify') return { kind: 'modify', isDir: newer.isDir };
  return { kind: 'attrib', isDir: newer.isDir };
}

/** The parent of a root-relative path ('' for a top-level name and for the root itself). */
export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? '' : path.slice(0, slash);
}

/** True when `path` is `dir` or below it ('' is the root: everything is below it). */
export function isWithin(path: string, dir: string): boolean {
  return dir === '' || path === dir || (path.length > dir.length && path.startsWith(dir) && path.charCodeAt(dir.length) === 0x2f);
}

/** Default bound on distinct pending paths; past it the set becomes one full resync. */
export const DEFAULT_MAX_PENDING = 50_000;

/**
 * Changes accumulated for one target since its last successful push, collapsed per path.
 * A `rescan` of a directory absorbs every entry below it.
 */
export class PendingSet {
  private entries = new Map<string, PendingEntry>();
  /** Renames seen since the last takeMoves(), new path → old path (a hint for the push). */
  private moves = new Map<string, Move>();
  private readonly maxPaths: number;

  constructor(options: { maxPaths?: number } = {}) {
    this.maxPaths = options.maxPaths ?? DEFAULT_MAX_PENDING;
  }

  get size(): number {
    return this.entries.size;
  }

  has(path: string): boolean {
    return this.entries.has(path);
  }

  /** Whether a full resync of the whole tree is pending. */
  get fullResync(): boolean {
    return this.entries.get('')?.kind === 'rescan';
  }

  /** A copy of what is pending (tests, status). */
  snapshot(): Map<string, PendingEntry> {
    return new Map(this.entries);
  }

  /** Add one watcher batch. A move is the deletion of `from` plus the creation of `path`. */
  addEvents(batch: readonly WatchEvent[]): void {
    for (const e of batch) {
      switch (e.type) {
        case 'move':
          if (e.from !== undefined) this.add(e.from, { kind: 'delete', isDir: e.isDir });
          this.add(e.path, { kind: 'create', isDir: e.isDir });
          if (e.from !== undefined) {
            const first = this.moves.get(e.from);
            this.moves.delete(e.from);
            this.moves.set(e.path, { from: first?.from ?? e.from, isDir: e.isDir });
          }
          break;
        case 'rescan':
          this.add(e.path, { kind: 'rescan', isDir: true });
          break;
        case 'root-gone':
          break; // the mirror handles it (nothing to push: the source is gone)
        default:
          this.add(e.path, { kind: e.type, isDir: e.isDir });
      }
    }
  }

  /** Add one change, newer than everything already pending. */
  add(path: string, entry: PendingEntry): void {
    this.merge(path, entry, false);
  }

  /** Take everything pending (the set is then empty). */
  take(): Map<string, PendingEntry> {
    const taken = this.entries;
    this.entries = new Map();
    return taken;
  }

  /** Take the renames seen since the last call (new path → where it came from). */
  takeMoves(): Map<string, Move> {
    const moves = this.moves;
    this.moves = new Map();
    return moves;
  }

  /** Put back entries taken earlier that were not pushed: they are older than what came since. */
  restore(taken: Iterable<[string, PendingEntry]>): void {
    for (const [path, entry] of taken) this.merge(path, entry, true);
  }

  private merge(path: string, entry: PendingEntry, older: boolean): void {
    if (this.coveredByRescan(path)) return;
    if (entry.kind === 'rescan') {
      for (const key of [...this.entries.keys()]) if (key !== path && isWithin(key, path)) this.entries.delete(key);
    }
    const existing = this.entries.get(path);
    this.entries.set(path, existing === undefined ? entry : older ? combine(entry, existing) : combine(existing, entry));
    if (this.entries.size > this.maxPaths) {
      this.entries.clear();
      this.entries.set('', { kind: 'rescan', isDir: true });
    }
  }

  /** A rescan pending at a strict ancestor of `path` (or at the root) already covers it. */
  private coveredByRescan(path: string): boolean {
    if (path === '') return false;
    let dir = path;
    do {
      dir = parentOf(dir);
      if (this.entries.get(dir)?.kind === 'rescan') return true;
    } while (dir !== '');
    return false;
  }
}

export interface RootOptions {
  /** Whether `rel` ('' = the root) is a directory here now (and may be a push root). */
  isLocalDir(rel: string): boolean;
  /** False when subtree pushes would not be exact (path-dependent filter rules): everything from ''. */
  subtrees?: boolean;
  /** Push each root this many levels higher (after repeated failures of the same batch). */
  escalate?: number;
  /** More roots than this become their common ancestor (one session). Default 16. */
  maxRoots?: number;
}

/** One push of a batch: the subtree `root` ('' = the whole tree) and the pending paths it covers. */
export interface PushRoot {
  root: string;
  paths: string[];
}

/**
 * The push roots for a set of pending changes: for each path its parent directory (for a
 * `rescan`, the path itself), moved up until it is a local directory, then reduced to the
 * outermost ones. Pushing each root recursively with --delete makes the mirror's copy of that
 * subtree exact, which covers creations, changes, attributes (the entry is inside its parent's
 * subtree), deletions (the parent's --delete) and renames (both parents).
 */
export function pushRoots(pending: ReadonlyMap<string, PendingEntry>, options: RootOptions): PushRoot[] {
  const candidates = new Map<string, string>(); // path -> candidate root
  for (const [path, entry] of pending) {
    let root = '';
    if (options.subtrees !== false) {
      root = entry.kind === 'rescan' ? path : parentOf(path);
      for (let i = 0; i < (options.escalate ?? 0) && root !== ''; i++) root = parentOf(root);
      // Non-UTF-8 names (escaped) cannot be given to the push as a string path: go above them.
      while (root !== '' && (/[\udc80-\udcff]/.test(root) || !options.isLocalDir(root))) root = parentOf(root);
    }
    candidates.set(path, root);
  }
  let kept: string[] = [];
  for (const root of [...new Set(candidates.values())].sort((a, b) => a.length - b.length)) {
    if (!kept.some((k) => isWithin(root, k))) kept.push(root);
  }
  if (kept.length > (options.maxRoots ?? 16)) kept = [commonAncestor(kept)];
  const out = kept.map((root) => ({ root, paths: [] as string[] }));
  for (const [path, root] of candidates) out.find((r) => isWithin(root, r.root))!.paths.push(path);
  return out;
}

/** The deepest directory containing every path. */
export function commonAncestor(paths: readonly string[]): string {
  if (paths.length === 0) return '';
  let common = paths[0]!;
  for (const p of paths) while (!isWithin(p, common)) common = parentOf(common);
  return common;
}
