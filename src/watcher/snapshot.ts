// Snapshots for the polling scanner: (type, size, mtime, mode, owner, ino) of every entry
// below a directory, keyed by path relative to that directory. Symlinks are lstat'ed,
// never followed. Used by the fallback watcher and for subtrees left unwatched after ENOSPC.

import { lstatSync, readdirSync, type Dirent, type Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { childPath, fsPath, joinPath, parentPath, pathFromLatin1 } from './paths.js';
import type { WatchEvent, WatchFilter } from './types.js';
import { S_IFMT } from '../../protocol/modes.js';

export interface Entry {
  isDir: boolean;
  /** S_IFMT bits and permissions. */
  mode: number;
  size: number;
  mtimeMs: number;
  ino: number;
  uid: number;
  gid: number;
}

/** Entries below a directory (not the directory itself), parents before their children. */
export type Snapshot = Map<string, Entry>;

function entry(st: Stats): Entry {
  return { isDir: st.isDirectory(), mode: st.mode, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, uid: st.uid, gid: st.gid };
}

function isGone(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Synchronous scan (baseline of a new region). `prefix` is the directory's path relative to
 * the watched root, used for the filter. Throws only if `abs` itself cannot be read.
 */
export function scanSync(abs: string, prefix: string, filter: WatchFilter | undefined): Snapshot {
  const snap: Snapshot = new Map();
  const stack: string[] = [''];
  let first = true;
  while (stack.length > 0) {
    const rel = stack.pop()!;
    let names: Dirent[];
    try {
      names = readdirSync(fsPath(joinPath(abs, rel)), { withFileTypes: true, encoding: 'latin1' as BufferEncoding });
    } catch (err) {
      if (first) throw err;
      if (isGone(err)) continue;
      continue; // unreadable subdirectory: its entries stay unknown
    }
    first = false;
    const dirs: string[] = [];
    for (const d of names) {
      const r = childPath(rel, pathFromLatin1(d.name));
      let st: Stats;
      try {
        st = lstatSync(fsPath(joinPath(abs, r)));
      } catch {
        continue;
      }
      const e = entry(st);
      if (filter?.isExcluded(childPath(prefix, r), e.isDir) === true) continue;
      snap.set(r, e);
      if (e.isDir) dirs.push(r);
    }
    for (let i = dirs.length - 1; i >= 0; i--) stack.push(dirs[i]!);
  }
  return snap;
}

/** Asynchronous scan for the periodic poll; same result as scanSync. */
export async function scan(abs: string, prefix: string, filter: WatchFilter | undefined): Promise<Snapshot> {
  const snap: Snapshot = new Map();
  const walk = async (rel: string, top: boolean): Promise<void> => {
    let names: Dirent[];
    try {
      names = await readdir(fsPath(joinPath(abs, rel)), { withFileTypes: true, encoding: 'latin1' as BufferEncoding });
    } catch (err) {
      if (top) throw err;
      return;
    }
    const rels = names.map((d) => childPath(rel, pathFromLatin1(d.name)));
    const stats = await Promise.all(rels.map((r) => lstat(fsPath(joinPath(abs, r))).catch(() => null)));
    const dirs: string[] = [];
    for (let i = 0; i < rels.length; i++) {
      const st = stats[i];
      if (st === null || st === undefined) continue;
      const e = entry(st);
      if (filter?.isExcluded(childPath(prefix, rels[i]!), e.isDir) === true) continue;
      snap.set(rels[i]!, e);
      if (e.isDir) dirs.push(rels[i]!);
    }
    for (const d of dirs) await walk(d, false);
  };
  await walk('', true);
  return snap;
}

/** Count the directories in a snapshot (plus the scanned directory itself). */
export function countDirs(snap: Snapshot): number {
  let n = 1;
  for (const e of snap.values()) if (e.isDir) n++;
  return n;
}

/**
 * Events that turn `prev` into `next`, with paths prefixed by `prefix`. A deleted directory
 * is reported once (not its contents); a type change is a delete then a create. A directory
 * whose mtime alone changed, with no visible entry inside it changed (an excluded name came or
 * went, or a touch), is an `attrib`; `top` gives the scanned directory's own mtime before and
 * after, which the snapshot does not hold.
 */
export function diffSnapshots(prev: Snapshot, next: Snapshot, prefix: string, top?: { before: number; after: number }): WatchEvent[] {
  const out: WatchEvent[] = [];
  /** Directories whose mtime alone changed. */
  const timed: string[] = [];
  const deletedDirs = new Set<string>();
  const parentDeleted = (rel: string): boolean => {
    for (let i = rel.lastIndexOf('/'); i > 0; i = rel.lastIndexOf('/', i - 1)) {
      if (deletedDirs.has(rel.slice(0, i))) return true;
    }
    return false;
  };
  for (const [rel, a] of prev) {
    const b = next.get(rel);
    if (b !== undefined && b.isDir === a.isDir && b.ino === a.ino && (b.mode & S_IFMT) === (a.mode & S_IFMT)) continue;
    if (a.isDir) deletedDirs.add(rel);
    if (!parentDeleted(rel)) out.push({ type: 'delete', path: childPath(prefix, rel), isDir: a.isDir });
  }
  for (const [rel, b] of next) {
    const a = prev.get(rel);
    const path = childPath(prefix, rel);
    if (a === undefined || a.isDir !== b.isDir || a.ino !== b.ino || (b.mode & S_IFMT) !== (a.mode & S_IFMT)) {
      out.push({ type: 'create', path, isDir: b.isDir });
    } else if (!b.isDir && (a.size !== b.size || a.mtimeMs !== b.mtimeMs)) {
      out.push({ type: 'modify', path, isDir: false });
    } else if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid) {
      out.push({ type: 'attrib', path, isDir: b.isDir });
    } else if (b.isDir && a.mtimeMs !== b.mtimeMs) {
      timed.push(path);
    }
  }
  if (top !== undefined && top.before !== top.after) timed.push(prefix);
  if (timed.length === 0) return out;
  // A change inside a directory already has its parents pushed: only the others are reported.
  const parents = new Set(out.map((e) => parentPath(e.path)));
  for (const path of timed) if (!parents.has(path)) out.push({ type: 'attrib', path, isDir: true });
  return out;
}
