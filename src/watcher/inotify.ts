// The recursive inotify watcher: one kernel watch per directory, a tree of directory nodes
// (wd -> node, node -> path), new directories watched first and read second, moves paired
// by cookie, queue overflow turned into a rescan, and the subtrees that get no watch
// (ENOSPC) handed to the polling scanner.

import { readFileSync, readdirSync, lstatSync, type Dirent } from 'node:fs';
import { Watcher } from './base.js';
import { IN, InotifyCursor } from './decode.js';
import { MovePairer } from './moves.js';
import { Poller, type PollRegion } from './poll.js';
import { countDirs, scanSync } from './snapshot.js';
import { childPath, fsPath, joinPath, parentPath, pathFromLatin1 } from './paths.js';
import type { InotifyAddon, InotifyHandle } from '../addon.js';
import { WatcherError, type WatchEvent, type WatchFilter, type WatcherOptions, type WatcherStats } from './types.js';

/** A directory in the watched tree. */
interface DirNode {
  /** Kernel watch descriptor; -1 while the directory is polled instead (see region). */
  wd: number;
  name: string;
  parent: DirNode | null;
  /**
   * Subdirectories by name; null while there are none. Most directories of a big tree are
   * leaves, and an empty Map costs ~250 bytes: this halves the watcher's heap per directory.
   */
  children: Map<string, DirNode> | null;
  region: PollRegion | null;
}

/** The subdirectory `name` of `dir`, if known. */
function childOf(dir: DirNode, name: string): DirNode | undefined {
  return dir.children?.get(name);
}

function setChild(dir: DirNode, name: string, child: DirNode): void {
  (dir.children ??= new Map()).set(name, child);
}

function deleteChild(dir: DirNode, name: string): void {
  if (dir.children?.delete(name) && dir.children.size === 0) dir.children = null;
}

/** A held IN_MOVED_FROM. */
interface Held {
  path: string;
  isDir: boolean;
  parent: DirNode;
  name: string;
}

const NO_WATCH = -1;

export class InotifyWatcher extends Watcher {
  readonly backend = 'inotify' as const;
  private readonly handle: InotifyHandle;
  private readonly mask: number;
  private readonly filter: WatchFilter | undefined;
  private readonly maxWatches: number;
  private readonly moveWait: number;
  private readonly pollInterval: number;
  private readonly byWd = new Map<number, DirNode>();
  private readonly rootNode: DirNode = { wd: NO_WATCH, name: '', parent: null, children: null, region: null };
  private readonly pairer = new MovePairer<Held>();
  private readonly poller: Poller;
  private out: WatchEvent[] = [];
  /** Paths reported as created by a directory scan, not yet confirmed by the kernel (dedup). */
  private scannedCur = new Set<string>();
  private scannedPrev = new Set<string>();
  private moveTimer: NodeJS.Timeout | undefined;
  private newlyPolled = 0;
  /** Watches whose filesystem was unmounted: the mountpoint is watched again after IN_IGNORED. */
  private readonly unmounted = new Set<number>();
  private lastLimitReport = 0;

  constructor(root: string, addon: InotifyAddon, opts: WatcherOptions = {}) {
    super(root);
    this.filter = opts.filter;
    this.maxWatches = opts.maxWatches ?? Infinity;
    this.moveWait = opts.moveWait ?? 50;
    this.pollInterval = opts.pollInterval ?? 2000;
    // Directory events we need; the kernel adds IN_IGNORED, IN_Q_OVERFLOW and IN_UNMOUNT itself.
    this.mask =
      IN.CREATE | IN.DELETE | IN.MOVED_FROM | IN.MOVED_TO | IN.CLOSE_WRITE | IN.ATTRIB |
      IN.DELETE_SELF | IN.MOVE_SELF | IN.ONLYDIR | IN.DONT_FOLLOW | IN.EXCL_UNLINK |
      (opts.modify === true ? IN.MODIFY : 0);
    this.poller = new Poller(
      this.pollInterval,
      this.filter,
      (events) => this.emitBatch(events),
      () => undefined, // a polled subtree that vanished is reported by its parent's watch
      opts.persistent !== false,
    );
    this.handle = new addon.Inotify((raw) => this.onRaw(raw));
    if (opts.persistent === false) this.handle.unref();
  }

  /** Watch the whole tree (synchronously). Nothing is reported for what exists now. */
  start(): this {
    try {
      const st = lstatSync(fsPath(this.root));
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      this.rootNode.wd = this.handle.addWatch(fsPath(this.root), this.mask);
    } catch (err) {
      this.close();
      throw new WatcherError('EROOT', `cannot watch ${this.root}: ${(err as Error).message}`, { path: '', cause: err });
    }
    this.byWd.set(this.rootNode.wd, this.rootNode);
    this.crawl(this.rootNode, false);
    this.reportLimit();
    return this;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.moveTimer !== undefined) clearTimeout(this.moveTimer);
    this.poller.stop();
    this.handle.close();
    this.byWd.clear();
    this.rootNode.children = null;
  }

  /** Kernel queue overflows so far. */
  private overflows = 0;

  stats(): WatcherStats {
    return { backend: 'inotify', watches: this.byWd.size, polledDirs: this.poller.dirCount(), overflows: this.overflows };
  }

  /** Stop reading the kernel queue (events pile up there; used to provoke an overflow). */
  pause(): void {
    this.handle.pause();
  }

  resume(): void {
    this.handle.resume();
  }

  /** Rescan the polled subtrees now. */
  pollNow(): Promise<void> {
    return this.poller.pollNow();
  }

  // ---- kernel batches -------------------------------------------------------------------

  private onRaw(raw: Buffer | Error): void {
    if (this.closed) return;
    if (raw instanceof Error) {
      this.fail(new WatcherError('EINOTIFY', `reading the inotify fd failed: ${raw.message}`, { cause: raw }));
      return;
    }
    try {
      if (this.moveTimer !== undefined) {
        clearTimeout(this.moveTimer);
        this.moveTimer = undefined;
      }
      const c = new InotifyCursor(raw);
      while (c.next() && !this.closed) this.record(c);
      this.endBatch();
    } catch (err) {
      this.fail(new WatcherError('EINTERNAL', `watcher bug: ${(err as Error).message}`, { cause: err }));
    }
  }

  private endBatch(): void {
    if (this.closed) return;
    this.scannedPrev = this.scannedCur;
    this.scannedCur = new Set();
    if (this.pairer.endBatch() > 0) {
      // An unpaired IN_MOVED_FROM: wait a little for its IN_MOVED_TO in the next read.
      this.moveTimer = setTimeout(() => {
        this.moveTimer = undefined;
        this.flushStale();
        this.flush();
      }, this.moveWait);
    }
    this.reportLimit();
    this.flush();
  }

  private flush(): void {
    const events = this.out;
    this.out = [];
    this.emitBatch(events);
  }

  private record(c: InotifyCursor): void {
    const mask = c.mask;
    if ((mask & IN.Q_OVERFLOW) !== 0) {
      // Held halves may have lost their partner in the overflow; the resync and the rescan
      // event replace them (the crawl re-attaches a moved directory by its wd).
      this.pairer.takeAll();
      this.overflow();
      return;
    }
    const node = this.byWd.get(c.wd);
    if (node === undefined) return; // late event for a watch we already dropped
    if (this.pairer.hasStale() && !((mask & IN.MOVED_TO) !== 0 && this.pairer.has(c.cookie))) this.flushStale();
    if ((mask & IN.IGNORED) !== 0) {
      this.dropWatch(c.wd, node);
      return;
    }
    if (!c.hasName()) {
      // About the watched directory itself.
      if (node === this.rootNode) {
        if ((mask & (IN.DELETE_SELF | IN.MOVE_SELF | IN.UNMOUNT)) !== 0) this.rootGone();
        else if ((mask & IN.ATTRIB) !== 0) this.out.push({ type: 'attrib', path: '', isDir: true });
      } else if ((mask & IN.UNMOUNT) !== 0 && this.attached(node)) {
        this.out.push({ type: 'rescan', path: this.pathOf(node), isDir: true });
        this.unmounted.add(c.wd);
      }
      return;
    }
    if (!this.attached(node)) return; // a directory already deleted or moved out
    const name = c.name();
    const isDir = (mask & IN.ISDIR) !== 0;
    const path = childPath(this.pathOf(node), name);
    if (this.pairer.size > 0) {
      // The name a held IN_MOVED_FROM left is used again: that half will not pair any more.
      const cookie = (mask & IN.MOVED_TO) !== 0 ? c.cookie : -1;
      this.movedOut(this.pairer.take((h, k) => h.path === path && k !== cookie));
    }
    if ((mask & IN.MOVED_FROM) !== 0) {
      this.pairer.from(c.cookie, { path, isDir, parent: node, name });
      return;
    }
    if ((mask & IN.MOVED_TO) !== 0) {
      const from = this.pairer.to(c.cookie);
      if (from === undefined) this.arrived(node, name, path, isDir);
      else this.moved(from, node, name, path, isDir);
      return;
    }
    if (this.excluded(path, isDir)) {
      if ((mask & (IN.CREATE | IN.DELETE)) !== 0) this.excludedEntryChanged(path);
      return;
    }
    if ((mask & IN.CREATE) !== 0) {
      if (this.scannedCur.has(path) || this.scannedPrev.has(path)) {
        this.scannedCur.delete(path); // already reported by the scan of its new parent
        this.scannedPrev.delete(path);
      } else {
        this.out.push({ type: 'create', path, isDir });
      }
      if (isDir) this.addDir(node, name, true);
    } else if ((mask & IN.DELETE) !== 0) {
      this.scannedCur.delete(path);
      this.scannedPrev.delete(path);
      this.out.push({ type: 'delete', path, isDir });
      if (isDir) this.forgetChild(node, name, false);
    } else if ((mask & (IN.CLOSE_WRITE | IN.MODIFY)) !== 0) {
      if (!isDir) this.out.push({ type: 'modify', path, isDir });
    } else if ((mask & IN.ATTRIB) !== 0) {
      this.out.push({ type: 'attrib', path, isDir });
    }
  }

  /** A rename inside the tree (both halves seen). */
  private moved(from: Held, parent: DirNode, name: string, path: string, isDir: boolean): void {
    const fromOut = this.excluded(from.path, isDir);
    const toOut = this.excluded(path, isDir);
    this.scannedCur.delete(from.path);
    this.scannedPrev.delete(from.path);
    if (fromOut) this.excludedEntryChanged(from.path);
    if (toOut) this.excludedEntryChanged(path);
    if (fromOut && toOut) return;
    if (fromOut) {
      this.arrived(parent, name, path, isDir);
      return;
    }
    if (toOut) {
      this.out.push({ type: 'delete', path: from.path, isDir });
      if (isDir) this.forgetChild(from.parent, from.name, true);
      return;
    }
    this.out.push({ type: 'move', from: from.path, path, isDir });
    if (!isDir) return;
    const moving = childOf(from.parent, from.name);
    // A directory renamed over an empty one replaces it.
    const replaced = childOf(parent, name);
    if (replaced !== undefined && replaced !== moving) this.forgetChild(parent, name, true);
    if (moving === undefined) {
      this.addDir(parent, name, true);
      return;
    }
    deleteChild(from.parent, from.name);
    moving.parent = parent;
    moving.name = name;
    setChild(parent, name, moving);
  }

  /** A name moved in from outside the tree (or from an excluded name). */
  private arrived(parent: DirNode, name: string, path: string, isDir: boolean): void {
    if (this.excluded(path, isDir)) return this.excludedEntryChanged(path);
    // It may have replaced an existing entry: a create that is later deleted must still delete.
    this.out.push({ type: 'delete', path, isDir }, { type: 'create', path, isDir });
    if (isDir) this.addDir(parent, name, true);
  }

  /**
   * An excluded name appeared in or left its directory: no event of its own, but the directory's
   * mtime changed, which `rsync -a` would carry to the mirror; its `attrib` has the planner push
   * the directory's attributes (docs/watcher.md, the `filter` option).
   */
  private excludedEntryChanged(path: string): void {
    this.out.push({ type: 'attrib', path: parentPath(path), isDir: true });
  }

  /** IN_MOVED_FROM halves whose IN_MOVED_TO never came: the name left the tree. */
  private flushStale(): void {
    this.movedOut(this.pairer.takeStale());
  }

  private movedOut(held: Held[]): void {
    for (const h of held) {
      if (!this.excluded(h.path, h.isDir)) this.out.push({ type: 'delete', path: h.path, isDir: h.isDir });
      else this.excludedEntryChanged(h.path);
      if (h.isDir) this.forgetChild(h.parent, h.name, true);
    }
  }

  /** The kernel dropped events: re-sync the watches with the disk, then ask for a full compare. */
  private overflow(): void {
    // Said once (as lsyncd 2's OVERFLOW line); later ones are only counted: under churn they come in runs.
    if (this.overflows++ === 0) this.warn(new WatcherError('EOVERFLOW', 'OVERFLOW in the kernel event queue: events were lost; the whole tree is compared (later overflows are counted in the status)'));
    this.out.push({ type: 'rescan', path: '', isDir: true });
    const seen = new Set<DirNode>();
    this.crawl(this.rootNode, false, seen);
    // Directories that vanished while events were lost (their IN_IGNORED may be lost too).
    const sweep = (n: DirNode): void => {
      for (const [name, child] of [...(n.children ?? [])]) {
        if (!seen.has(child)) this.forgetChild(n, name, true);
        else sweep(child);
      }
    };
    sweep(this.rootNode);
  }

  private rootGone(): void {
    if (this.closed) return;
    this.out.push({ type: 'root-gone', path: '', isDir: true });
    this.flush();
    this.close();
  }

  // ---- the directory tree ---------------------------------------------------------------

  private attached(node: DirNode): boolean {
    for (let n: DirNode | null = node; n !== null; n = n.parent) {
      if (n === this.rootNode) return true;
      if (n.parent === null || childOf(n.parent, n.name) !== n) return false;
    }
    return false;
  }

  private isAncestor(a: DirNode, node: DirNode): boolean {
    for (let n: DirNode | null = node; n !== null; n = n.parent) if (n === a) return true;
    return false;
  }

  private pathOf(node: DirNode): string {
    if (node.parent === null) return '';
    const names: string[] = [];
    for (let n: DirNode | null = node; n !== null && n.parent !== null; n = n.parent) names.push(n.name);
    return names.reverse().join('/');
  }

  private excluded(path: string, isDir: boolean): boolean {
    return path !== '' && this.filter !== undefined && this.filter.isExcluded(path, isDir);
  }

  /**
   * Watch a new directory, then read it: a directory created (or moved in) under a watched
   * one, and recursively everything below. With `report`, what is found inside is reported
   * as created (and remembered to drop the kernel's own IN_CREATE for it).
   */
  private addDir(parent: DirNode, name: string, report: boolean): void {
    const path = childPath(this.pathOf(parent), name);
    if (this.excluded(path, true)) return;
    const existing = childOf(parent, name);
    if (existing !== undefined && existing.wd !== NO_WATCH) return; // already watched and read
    const node = this.watch(parent, name, path, report);
    if (node !== null && node.wd !== NO_WATCH) this.crawl(node, report);
  }

  /** Read a watched directory and watch every subdirectory below it (depth-first, no recursion). */
  private crawl(top: DirNode, report: boolean, seen?: Set<DirNode>): void {
    const stack: DirNode[] = [top];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      seen?.add(dir);
      const dirPath = this.pathOf(dir);
      let entries: Dirent[];
      try {
        entries = readdirSync(fsPath(joinPath(this.root, dirPath)), { withFileTypes: true, encoding: 'latin1' as BufferEncoding });
      } catch (err) {
        if (!isGone(err)) this.warn(new WatcherError('ESCAN', `cannot read ${joinPath(this.root, dirPath)}: ${(err as Error).message}`, { path: dirPath, cause: err }));
        continue;
      }
      for (const d of entries) {
        const isDir = d.isDirectory(); // lstat semantics: a symlink to a directory is not one
        // Setting up watches needs the directories alone: a file's name and path are only made
        // to report it (most entries of a big tree are files: 1M names and paths at startup).
        if (!isDir && !report) continue;
        const name = pathFromLatin1(d.name);
        const path = childPath(dirPath, name);
        if (this.excluded(path, isDir)) continue;
        if (report && !this.scannedCur.has(path) && !this.scannedPrev.has(path)) {
          this.out.push({ type: 'create', path, isDir });
          this.scannedCur.add(path);
        }
        if (!isDir) continue;
        const existing = childOf(dir, name);
        if (existing !== undefined) {
          if (seen === undefined) continue; // already watched: a scan got there first
          if (existing.wd === NO_WATCH) {
            seen.add(existing);
            continue;
          }
        }
        const child = this.watch(dir, name, path, report);
        if (child !== null && child.wd !== NO_WATCH) stack.push(child);
        else if (child !== null) seen?.add(child);
      }
    }
  }

  /** inotify_add_watch for one directory, attaching its node; polled instead when out of watches. */
  private watch(parent: DirNode, name: string, path: string, report: boolean): DirNode | null {
    let wd = NO_WATCH;
    const abs = joinPath(this.root, path);
    if (this.byWd.size < this.maxWatches) {
      try {
        wd = this.handle.addWatch(fsPath(abs), this.mask);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return null; // gone again (or replaced by a file)
        if (code !== 'ENOSPC') {
          this.warn(new WatcherError('ESCAN', `cannot watch ${abs}: ${(err as Error).message}`, { path, cause: err }));
          return null;
        }
      }
    }
    if (wd !== NO_WATCH) {
      const known = this.byWd.get(wd);
      if (known !== undefined && this.isAncestor(known, parent)) return null; // a bind mount looping back up
      if (known !== undefined) {
        // Same inode already watched elsewhere: we missed its move. Re-attach it here.
        if (known.parent !== null && childOf(known.parent, known.name) === known) deleteChild(known.parent, known.name);
        if (known !== this.rootNode) {
          known.parent = parent;
          known.name = name;
          setChild(parent, name, known);
        }
        return known;
      }
      const node: DirNode = { wd, name, parent, children: null, region: null };
      const old = childOf(parent, name);
      if (old !== undefined) this.forgetChild(parent, name, true);
      setChild(parent, name, node);
      this.byWd.set(wd, node);
      return node;
    }
    // Out of watches: keep this subtree in sync by polling it.
    let snapshot;
    let mtimeMs;
    try {
      mtimeMs = lstatSync(fsPath(abs)).mtimeMs;
      snapshot = scanSync(abs, path, this.filter);
    } catch {
      return null;
    }
    const node: DirNode = { wd: NO_WATCH, name, parent, children: null, region: null };
    node.region = { abs: () => joinPath(this.root, this.pathOf(node)), prefix: () => this.pathOf(node), snapshot, mtimeMs, closed: false };
    const old = childOf(parent, name);
    if (old !== undefined) this.forgetChild(parent, name, true);
    setChild(parent, name, node);
    this.poller.add(node.region);
    this.newlyPolled += countDirs(snapshot);
    if (report) {
      for (const [rel, e] of snapshot) {
        const p = childPath(path, rel);
        if (!this.scannedCur.has(p) && !this.scannedPrev.has(p)) {
          this.out.push({ type: 'create', path: p, isDir: e.isDir });
          this.scannedCur.add(p);
        }
      }
    }
    return node;
  }

  /** Detach a child directory and drop every watch and polled region below it. */
  private forgetChild(parent: DirNode, name: string, removeWatches: boolean): void {
    const node = childOf(parent, name);
    if (node === undefined) return;
    deleteChild(parent, name);
    const stack: DirNode[] = [node];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (n.children !== null) for (const c of n.children.values()) stack.push(c);
      if (n.region !== null) this.poller.remove(n.region);
      if (n.wd !== NO_WATCH && removeWatches) {
        this.byWd.delete(n.wd);
        try {
          this.handle.removeWatch(n.wd);
        } catch {
          // EINVAL: the kernel already dropped it
        }
      }
    }
  }

  /** IN_IGNORED: the kernel dropped the watch (directory deleted, unmounted, or removed by us). */
  private dropWatch(wd: number, node: DirNode): void {
    this.byWd.delete(wd);
    if (node === this.rootNode) {
      this.rootGone();
      return;
    }
    const parent = node.parent;
    if (parent !== null && childOf(parent, node.name) === node) {
      deleteChild(parent, node.name);
      // After an unmount the mountpoint is an ordinary directory again: watch that.
      if (this.unmounted.delete(wd) && this.attached(parent)) this.addDir(parent, node.name, false);
    }
    this.unmounted.delete(wd);
  }

  // ---- ENOSPC ---------------------------------------------------------------------------

  private reportLimit(): void {
    if (this.newlyPolled === 0) return;
    const now = Date.now();
    if (this.lastLimitReport !== 0 && now - this.lastLimitReport < 60_000) return;
    this.lastLimitReport = now;
    this.newlyPolled = 0;
    const max = readMaxUserWatches();
    const watched = this.byWd.size;
    const polled = this.poller.dirCount();
    const needed = watched + polled;
    const suggest = Math.ceil(((max ?? watched) + polled * 2 + 1024) / 1024) * 1024;
    const command = `sudo sysctl -w fs.inotify.max_user_watches=${suggest}`;
    const why = Number.isFinite(this.maxWatches) && watched >= this.maxWatches ? `the maxWatches option (${this.maxWatches})` : 'the kernel (ENOSPC)';
    this.warn(
      new WatcherError(
        'EWATCHLIMIT',
        `out of inotify watches, refused by ${why}: fs.inotify.max_user_watches is ${max ?? 'unknown'} (shared by all of this user's processes); ` +
          `${watched} directories are watched and ${needed} are needed. The ${polled} directories left unwatched are kept in sync by a ` +
          `polling scan every ${this.pollInterval} ms until the limit is raised. Raise it with:\n  ${command}\n` +
          `and make it permanent with: echo fs.inotify.max_user_watches=${suggest} | sudo tee /etc/sysctl.d/90-lsyncd.conf`,
        { limit: { maxUserWatches: max, watched, needed, command } },
      ),
    );
  }
}

function readMaxUserWatches(): number | undefined {
  try {
    const n = Number.parseInt(readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8'), 10);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

function isGone(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
