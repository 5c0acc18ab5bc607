// The only module that loads native/ (build/Release/inotify.node). A missing or unloadable
// addon (no compiler at install time, wrong platform) is reported once and answered with
// `null`, so the caller can fall back to polling; any other failure is rethrown.

import { createRequire } from 'node:module';
import { existsSync, futimesSync, lutimesSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The native class (see native/inotify.cc). */
export interface InotifyHandle {
  /** inotify_add_watch(2): returns the watch descriptor (the same one again for an inode already watched). */
  addWatch(path: string | Buffer, mask: number): number;
  /** inotify_rm_watch(2); the kernel then queues IN_IGNORED for the wd. */
  removeWatch(wd: number): void;
  /** Stop reading the fd: events accumulate in the kernel queue (up to max_queued_events). */
  pause(): void;
  resume(): void;
  ref(): void;
  unref(): void;
  /** Stop polling and close the fd now; the libuv handle is freed on the next loop turn. */
  close(): void;
  readonly fd: number;
}

export interface InotifyAddon {
  Inotify: new (onBatch: (raw: Buffer | Error) => void) => InotifyHandle;
  /** V8's low-memory collection plus malloc_trim(0): give a finished transfer's memory back (native/memory.cc). */
  releaseMemory?: () => void;
  /** setsockopt TCP_QUICKACK on a connected TCP socket's fd (native/quickack.cc). */
  quickAck?: (fd: number) => boolean;
  /** futimens with nanoseconds, atime = mtime (native/times.cc); throws an fs-style error. */
  setTimesFd?: (fd: number, sec: number, nsec: number) => void;
  /** utimensat with nanoseconds, atime = mtime; `follow` false: the link itself (native/times.cc). */
  setTimesPath?: (path: Buffer, sec: number, nsec: number, follow: boolean) => void;
  /** openlog(ident, LOG_PID|LOG_NDELAY, facility) (native/syslog.cc). */
  openSyslog?: (ident: string, facility: number) => void;
  /** syslog(priority, "%s", message). */
  syslog?: (priority: number, message: string) => void;
  /** A directory's names (strcmp order) with each one's lstat, packed (native/dirstat.cc); throws an fs-style error. */
  readDirStats?: (path: Buffer) => Buffer;
}

/** Package root: this file is src/addon.ts, compiled to dist/src/addon.js. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

export const DEFAULT_ADDON_PATH = join(packageRoot(), 'build', 'Release', 'inotify.node');

const cache = new Map<string, InotifyAddon | null>();
let warned = false;

/** Why the last load failed (for status output). */
export let addonLoadError: Error | undefined;

/**
 * Load the addon, or return null when it cannot be loaded. The load is tried once per path; the
 * warning is given once per process, by the first caller that is not `quiet` (a quiet probe made
 * earlier, e.g. for socket options, does not hide it from the watcher later).
 */
export function loadAddon(path: string = DEFAULT_ADDON_PATH, opts: { quiet?: boolean } = {}): InotifyAddon | null {
  let addon = cache.get(path);
  if (addon === undefined) {
    addon = tryLoad(path);
    cache.set(path, addon);
  }
  if (addon === null && !warned && opts.quiet !== true) {
    warned = true;
    process.emitWarning(
      `lsyncd: the inotify addon could not be loaded (${addonLoadError?.message.split('\n')[0]}); ` +
        'watching falls back to periodic polling scans. Rebuild it with `npm rebuild` (needs a C++ compiler).',
      { code: 'LSYNCD_NO_ADDON' },
    );
  }
  return addon;
}

function tryLoad(path: string): InotifyAddon | null {
  if (process.platform !== 'linux') {
    addonLoadError = new Error(`inotify is Linux-only (platform ${process.platform})`);
    return null;
  }
  try {
    const mod: unknown = createRequire(import.meta.url)(path);
    if (typeof mod === 'object' && mod !== null && typeof (mod as { Inotify?: unknown }).Inotify === 'function') {
      return mod as InotifyAddon;
    }
    addonLoadError = new Error(`${path} does not export Inotify`);
  } catch (err) {
    if (!isLoadFailure(err)) throw err;
    addonLoadError = err as Error;
  }
  return null;
}

// "Module not found" or "failed to load" (dlopen errors: wrong ABI, missing symbols, not ELF).
function isLoadFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'MODULE_NOT_FOUND' || code === 'ERR_DLOPEN_FAILED') return true;
  return err instanceof Error && /\.node\b|dlopen|invalid ELF|cannot open shared object|NODE_MODULE_VERSION/.test(err.message);
}

/**
 * Give memory back to the system after a big transfer (see native/memory.cc). Blocks for a few
 * full collections (tens of ms): call it when idle. Returns false without the addon.
 */
export function releaseMemory(): boolean {
  const addon = loadAddon(DEFAULT_ADDON_PATH, { quiet: true });
  if (!addon?.releaseMemory) return false;
  addon.releaseMemory();
  return true;
}

/**
 * TCP_QUICKACK on a socket (see native/quickack.cc): our ACKs go out as soon as we read, so the
 * daemon's second small write is not held by Nagle for our delayed ACK. False without the addon.
 */
export function quickAck(fd: number): boolean {
  const addon = loadAddon(DEFAULT_ADDON_PATH, { quiet: true });
  return addon?.quickAck ? addon.quickAck(fd) : false;
}

/**
 * A syslog(3) writer (see native/syslog.cc) opened with `ident` and `facility` (a LOG_* facility
 * value), or null without the addon.
 */
export function openSyslog(ident: string, facility: number): ((priority: number, message: string) => void) | null {
  const addon = loadAddon(DEFAULT_ADDON_PATH, { quiet: true });
  if (!addon?.openSyslog || !addon.syslog) return null;
  addon.openSyslog(ident, facility);
  return addon.syslog;
}

/** The file times Node can set: seconds as a number, microseconds kept (the middle of one, so its truncation lands on it). */
function nodeTime(sec: number, nsec: number): number {
  return sec + (Math.floor(nsec / 1000) + 0.5) / 1e6;
}

/**
 * Set a file's mtime (and atime) to `sec` + `nsec` through an open descriptor: to the nanosecond
 * with the addon, to the microsecond without (Node's futimes). Returns whether it was exact.
 */
export function setTimesFd(fd: number, sec: number, nsec: number): boolean {
  const addon = loadAddon(DEFAULT_ADDON_PATH, { quiet: true });
  if (addon?.setTimesFd) {
    addon.setTimesFd(fd, sec, nsec);
    return true;
  }
  futimesSync(fd, nodeTime(sec, nsec), nodeTime(sec, nsec));
  return false;
}

/** Whether file times are set to the nanosecond (the addon's futimens/utimensat), as rsync does. */
export function exactTimes(): boolean {
  return loadAddon(DEFAULT_ADDON_PATH, { quiet: true })?.setTimesPath !== undefined;
}

/** The same by path; `follow` false sets a symlink's own times (lutimes). */
export function setTimesPath(path: Buffer, sec: number, nsec: number, follow: boolean): boolean {
  const addon = loadAddon(DEFAULT_ADDON_PATH, { quiet: true });
  if (addon?.setTimesPath) {
    addon.setTimesPath(path, sec, nsec, follow);
    return true;
  }
  const t = nodeTime(sec, nsec);
  if (follow) utimesSync(path, t, t);
  else lutimesSync(path, t, t);
  return false;
}
