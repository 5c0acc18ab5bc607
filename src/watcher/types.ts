// Public types of the watcher: the event shape the live-sync planner consumes,
// options, the filter interface, and the one error class (an RsyncError, protocol/errors.ts).
import { EXIT, RsyncError, type ExitCode } from '../../protocol/errors.js';

/**
 * One change, relative to the watched root. Paths use '/' separators, never start with '/',
 * and '' is the root itself. Non-UTF-8 bytes are escaped (see paths.ts; use pathToBytes/fsPath).
 *
 * - create:    `path` now exists and is new or was replaced (send it whole). For a new directory,
 *              everything already inside it is reported by its own create events.
 * - modify:    content of the file at `path` changed (IN_CLOSE_WRITE, or IN_MODIFY if enabled).
 * - attrib:    metadata (mode, owner, times) of `path` changed; for a directory also its mtime
 *              when an excluded name (which has no events of its own) came or went in it.
 * - delete:    `path` is gone (for a directory: the whole subtree).
 * - move:      `from` was renamed to `path`, both inside the root (files and directories).
 * - rescan:    events under `path` were lost (kernel queue overflow, unmount): compare that
 *              subtree in full. `path` is '' for the whole root.
 * - root-gone: the root itself was deleted or moved away; the watcher has stopped.
 */
export type WatchEventType = 'create' | 'modify' | 'attrib' | 'delete' | 'move' | 'rescan' | 'root-gone';

export interface WatchEvent {
  type: WatchEventType;
  path: string;
  /** Only for 'move': the old path. */
  from?: string;
  isDir: boolean;
}

/**
 * Decides which paths exist for the mirror at all; excluded directories are not even watched.
 * An excluded name created, deleted or renamed is reported only as an `attrib` of its directory.
 */
export interface WatchFilter {
  /** relPath is relative to the root, '/'-separated, never ''. */
  isExcluded(relPath: string, isDir: boolean): boolean;
}

export interface WatcherOptions {
  /** rsync filter rules (--exclude etc.), as compiled by the CLI. Default: nothing excluded. */
  filter?: WatchFilter;
  /** Also report IN_MODIFY (every write), not only IN_CLOSE_WRITE. Default false. */
  modify?: boolean;
  /** Pretend the kernel refuses more than this many watches (simulates ENOSPC). */
  maxWatches?: number;
  /** Period of the polling scan (fallback, and subtrees left unwatched after ENOSPC). Default 2000 ms. */
  pollInterval?: number;
  /** How long an IN_MOVED_FROM without its IN_MOVED_TO waits before it becomes a delete. Default 50 ms. */
  moveWait?: number;
  /** 'auto' (default): inotify if the addon loads, else polling. */
  backend?: 'auto' | 'inotify' | 'poll';
  /** Where the compiled addon lives (tests). Default: <package>/build/Release/inotify.node. */
  addonPath?: string;
  /** Keep the process alive while watching (default true). */
  persistent?: boolean;
}

export type WatcherErrorCode =
  | 'EWATCHLIMIT' // out of inotify watches: some subtrees are polled instead (a warning)
  | 'EROOT' // the root is missing or not a directory
  | 'ESCAN' // a directory could not be read or watched (a warning; path tells which)
  | 'EADDON' // the addon was required (backend: 'inotify') but could not be loaded
  | 'EINOTIFY' // the kernel reported an error on the inotify fd
  | 'EOVERFLOW' // the kernel's event queue overflowed: events were lost, the tree is compared (a warning, the first time)
  | 'EINTERNAL'; // a bug: an exception escaped event processing

/** rsync's exit code for each watcher failure (the watcher's errors share the RsyncError family). */
const WATCHER_EXIT_CODES: Readonly<Record<WatcherErrorCode, ExitCode>> = {
  EWATCHLIMIT: EXIT.FILEIO,
  EROOT: EXIT.FILESELECT, // like rsync's "change_dir failed" on a missing source
  ESCAN: EXIT.FILEIO,
  EADDON: EXIT.UNSUPPORTED,
  EINOTIFY: EXIT.FILEIO,
  EOVERFLOW: EXIT.FILEIO,
  EINTERNAL: EXIT.FILEIO,
};

/** The watcher's one error class: an RsyncError whose `code` is one of WatcherErrorCode. */
export class WatcherError extends RsyncError {
  declare readonly code: WatcherErrorCode;
  readonly path: string | undefined;
  /** For EWATCHLIMIT. */
  readonly limit: { maxUserWatches: number | undefined; watched: number; needed: number; command: string } | undefined;

  constructor(code: WatcherErrorCode, message: string, extra: { path?: string; cause?: unknown; limit?: WatcherError['limit'] } = {}) {
    super(code, message, WATCHER_EXIT_CODES[code], extra.cause === undefined ? undefined : { cause: extra.cause });
    this.path = extra.path;
    this.limit = extra.limit;
  }
}

/** Counters for status output and the bench. */
export interface WatcherStats {
  backend: 'inotify' | 'poll';
  /** Directories with a kernel watch. */
  watches: number;
  /** Directories kept in sync by the polling scan instead. */
  polledDirs: number;
  /** Kernel event queue overflows so far (each one a full compare; lsyncd 2 logs them as OVERFLOW). */
  overflows: number;
}
