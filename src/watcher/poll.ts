// The polling scanner: periodic snapshots compared with the previous ones. It is the whole
// watcher when the addon is missing (PollWatcher), and it keeps the subtrees that could not
// get an inotify watch (ENOSPC) in sync inside the inotify watcher.

import { lstatSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { Watcher } from './base.js';
import { diffSnapshots, scan, scanSync, type Snapshot } from './snapshot.js';
import { fsPath } from './paths.js';
import { WatcherError, type WatchEvent, type WatchFilter, type WatcherOptions, type WatcherStats } from './types.js';

/** One polled directory subtree. Its location is computed on demand, so it follows renames. */
export interface PollRegion {
  /** Absolute path of the directory. */
  abs(): string;
  /** Its path relative to the watched root ('' for the root). */
  prefix(): string;
  snapshot: Snapshot;
  /** The directory's own mtime at the last scan (the snapshot holds only what is below it). */
  mtimeMs: number;
  closed: boolean;
}

/** Periodically rescans regions one after another (a scan never overlaps the next). */
export class Poller {
  private readonly regions = new Set<PollRegion>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;

  constructor(
    private readonly interval: number,
    private readonly filter: WatchFilter | undefined,
    private readonly onEvents: (events: WatchEvent[]) => void,
    /** A region's directory could not be read (gone): the owner decides. */
    private readonly onRegionGone: (region: PollRegion, err: unknown) => void,
    private readonly persistent: boolean,
  ) {}

  get size(): number {
    return this.regions.size;
  }

  /** Directories covered by all regions. */
  dirCount(): number {
    let n = 0;
    for (const r of this.regions) {
      n++;
      for (const e of r.snapshot.values()) if (e.isDir) n++;
    }
    return n;
  }

  add(region: PollRegion): void {
    this.regions.add(region);
    this.schedule();
  }

  remove(region: PollRegion): void {
    region.closed = true;
    this.regions.delete(region);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const r of this.regions) r.closed = true;
    this.regions.clear();
  }

  /** Scan every region now (also used by tests and after overflow). */
  async pollNow(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (const r of [...this.regions]) {
        if (r.closed || this.stopped) continue;
        let next: Snapshot;
        let mtimeMs: number;
        try {
          // Its own mtime first: a change after this stat shows in the next poll.
          mtimeMs = (await lstat(fsPath(r.abs()))).mtimeMs;
          next = await scan(r.abs(), r.prefix(), this.filter);
        } catch (err) {
          if (!r.closed && !this.stopped) this.onRegionGone(r, err);
          continue;
        }
        if (r.closed || this.stopped) continue;
        const events = diffSnapshots(r.snapshot, next, r.prefix(), { before: r.mtimeMs, after: mtimeMs });
        r.snapshot = next;
        r.mtimeMs = mtimeMs;
        if (events.length > 0) this.onEvents(events);
      }
    } finally {
      this.running = false;
    }
  }

  private schedule(): void {
    if (this.timer !== undefined || this.stopped || this.regions.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.pollNow().finally(() => this.schedule());
    }, this.interval);
    if (!this.persistent) this.timer.unref();
  }
}

/** The fallback watcher: the whole root is one polled region. Same events as the inotify watcher. */
export class PollWatcher extends Watcher {
  readonly backend = 'poll' as const;
  private readonly poller: Poller;
  private rootIno = 0;
  private readonly filter: WatchFilter | undefined;

  constructor(root: string, opts: WatcherOptions = {}) {
    super(root);
    this.filter = opts.filter;
    this.poller = new Poller(
      opts.pollInterval ?? 2000,
      opts.filter,
      (events) => this.emitBatch(this.checkRoot(events)),
      () => this.rootGone(),
      opts.persistent !== false,
    );
  }

  /** Take the baseline snapshot (nothing is reported for what exists now). */
  start(): this {
    let snapshot: Snapshot;
    let mtimeMs: number;
    try {
      const st = lstatSync(fsPath(this.root));
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      this.rootIno = st.ino;
      mtimeMs = st.mtimeMs;
      snapshot = scanSync(this.root, '', this.filter);
    } catch (err) {
      throw new WatcherError('EROOT', `cannot watch ${this.root}: ${(err as Error).message}`, { path: '', cause: err });
    }
    const root = this.root;
    this.poller.add({ abs: () => root, prefix: () => '', snapshot, mtimeMs, closed: false });
    return this;
  }

  /** Scan now instead of waiting for the timer. */
  pollNow(): Promise<void> {
    return this.poller.pollNow();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.poller.stop();
  }

  stats(): WatcherStats {
    return { backend: 'poll', watches: 0, polledDirs: this.poller.dirCount(), overflows: 0 };
  }

  // The root replaced by another directory (different inode) is gone too.
  private checkRoot(events: WatchEvent[]): WatchEvent[] {
    try {
      if (lstatSync(fsPath(this.root)).ino === this.rootIno) return events;
    } catch {
      // fall through
    }
    this.rootGone();
    return [];
  }

  private rootGone(): void {
    if (this.closed) return;
    this.emit('events', [{ type: 'root-gone', path: '', isDir: true }]);
    this.close();
  }
}
