// The only module that loads native/ (the inotify addon). It is found as node-gyp-build finds it:
// build/Release/*.node (compiled here: a checkout, or an install where no prebuild fitted), else
// prebuilds/<platform>-<arch>/ (built by `npm pack`'s prepack: prebuildify). A missing or unloadable
// addon (no compiler at install time, wrong platform) is reported once and answered with `null`,
// so the caller falls back to polling; `addonLoadError` keeps why (for status and logs). Any other
// failure is rethrown. See README "The inotify addon".

import { createRequire } from 'node:module';
import { existsSync, futimesSync, lutimesSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { XxhashProvider } from '../protocol/checksum.js';

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
  /**
   * V8's low-memory collection plus malloc_trim(0): give a finished transfer's memory back; with
   * `dropFilePages`, also unmap the clean pages of read-only file mappings (returns their bytes) (native/memory.cc).
   */
  releaseMemory?: (dropFilePages?: boolean) => number;
  /** mallopt(M_ARENA_MAX, count): fewer glibc arenas keeping freed blocks (native/memory.cc). */
  limitMallocArenas?: (count: number) => boolean;
  /** setsockopt TCP_QUICKACK on a connected TCP socket's fd (native/quickack.cc). */
  quickAck?: (fd: number) => boolean;
  /** ioctl FIONREAD on a socket: bytes received and not yet read, -1 on error (native/quickack.cc). */
  inputPending?: (fd: number) => number;
  /** futimens with nanoseconds, atime = mtime (native/times.cc); throws an fs-style error. */
  setTimesFd?: (fd: number, sec: number, nsec: number) => void;
  /** utimensat with nanoseconds, atime = mtime; `follow` false: the link itself (native/times.cc). */
  setTimesPath?: (path: Buffer, sec: number, nsec: number, follow: boolean) => void;
  /** openlog(ident, LOG_PID|LOG_NDELAY, facility) (native/syslog.cc). */
  openSyslog?: (ident: string, facility: number) => void;
  /** syslog(priority, "%s", message). */
  syslog?: (priority: number, message: string) => void;
  /** A directory's names (strcmp order) with each one's lstat, packed (native/dirstat.cc); throws an fs-style error. */
  readDirStats?: (path: Buffer, noFollow?: boolean) => Buffer;
  /** readDirStats run ahead of the walk on a thread of its own (native/dir-prefetch.cc). */
  DirPrefetch?: new (maxDirs: number, maxBytes: number, noFollow?: boolean) => DirPrefetcher;
  /** The system's libzstd.so.1 and liblz4.so.1, opened with dlopen on the first call (native/compress-libs.cc). */
  compressLibs?: () => CompressLibs;
  /** A path's extended attributes, never following a final symlink (native/xattr.cc); each throws an fs-style error. */
  xattr?: XattrCalls;
  /** fallocate PUNCH_HOLE|KEEP_SIZE, else ZERO_RANGE (native/punch-hole.cc): false when the filesystem does neither. */
  punchHole?: (fd: number, offset: number, length: number) => boolean;
  /** open + read to EOF (or a full buffer) + close (native/read-small.cc): bytes read, or -errno. */
  readSmallFile?: (path: Buffer, follow: boolean, into: Buffer) => number;
  /**
   * A received file's whole data put in place in one call (native/file-commit.cc): temp file `tmp`
   * (O_EXCL), write, fchown (flags & 2), fchmod, futimens (flags & 1), close, rename over `target`.
   * With `callback`, on libuv's threadpool; without, here (throws). Errors are fs-style.
   */
  commitFile?: (tmp: Buffer, target: Buffer, data: Buffer, mode: number, flags: number, sec: number, nsec: number, uid: number, gid: number, callback?: (err: Error | null) => void) => void;
  /** copy_file_range from `fdIn` at `offsetIn` to `fdOut` at its file offset (native/copy-range.cc): bytes copied, or -errno. */
  copyFileRange?: (fdIn: number, offsetIn: number, fdOut: number, length: number) => number;
  /** xxh64 / xxh3 / xxh128 (kind 0, 1, 2) of one buffer, in rsync's byte order (native/xxhash.cc, xxHash 0.8.2). */
  xxhashOnce?: (kind: number, seedLow: number, seedHigh: number, data: Uint8Array) => Buffer;
  /** The same, streamed. */
  XxHashStream?: new (kind: number, seedLow: number, seedHigh: number) => { init(): void; update(data: Uint8Array): void; digest(): Buffer };
}

/** An opaque zstd context of the addon (freed when collected). */
/** A directory reader running ahead of a walk (native/dir-prefetch.cc; src/transfer/dir-records.ts). */
export interface DirPrefetcher {
  /** The directories the walk reads next, in order (newest batch first: from its end, or `inOrder` from its front). */
  want(paths: Buffer[], inOrder?: boolean): void;
  /** Before the walk: read down from `root` in the walk's order, until the first `want`. */
  explore(root: Buffer): void;
  /** A directory's records when read ahead (waits while it is being read); null: read it yourself. */
  take(path: Buffer): Buffer | null;
  /** Stop the thread and drop what was read ahead. */
  close(): void;
}

export type ZstdHandle = object & { readonly __zstdHandle?: never };

/** libzstd as the addon exposes it (native/compress-libs.cc). */
export interface ZstdLib {
  version: string;
  minLevel: number;
  maxLevel: number;
  defaultLevel: number;
  /** ZSTD_DStreamOutSize(). */
  outSize: number;
  createCompressor(level: number): ZstdHandle;
  /** ZSTD_compressStream2 (ZSTD_e_flush when `flush`): [inPos, outPos, remaining]; throws on an error. */
  compress(handle: ZstdHandle, input: Uint8Array, inPos: number, out: Uint8Array, flush: boolean): [number, number, number];
  /** A decompressor that refuses frames asking for a window over 2^windowLogMax. */
  createDecompressor(windowLogMax: number): ZstdHandle;
  /** ZSTD_decompressStream on input[inPos, inEnd): [inPos, outPos, hint]; throws on damaged data. */
  decompress(handle: ZstdHandle, input: Uint8Array, inPos: number, inEnd: number, out: Uint8Array): [number, number, number];
}

/** liblz4's block calls as the addon exposes them. */
export interface Lz4Lib {
  version: string;
  compressBound(n: number): number;
  compress(src: Uint8Array, dst: Uint8Array): number;
  decompress(src: Uint8Array, dst: Uint8Array): number;
}

/** Each library, or why it could not be opened (dlerror's text). */
export interface CompressLibs {
  zstd: ZstdLib | { error: string };
  lz4: Lz4Lib | { error: string };
}

/** llistxattr, lgetxattr, lsetxattr, lremovexattr (native/xattr.cc): names and values as bytes. */
export interface XattrCalls {
  /** The names, each ending in a NUL; empty when the filesystem has none (ENOTSUP). */
  list(path: Buffer): Buffer;
  /** The value, or null when the name is gone (ENODATA). */
  get(path: Buffer, name: Buffer): Buffer | null;
  set(path: Buffer, name: Buffer, value: Buffer): void;
  /** A name already gone (ENODATA) is no error. */
  remove(path: Buffer, name: Buffer): void;
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

/** The package directory node-gyp-build searches (build/Release, then prebuilds/). */
export const PACKAGE_ROOT = packageRoot();

const requireHere = createRequire(import.meta.url);
/** node-gyp-build's resolver: the .node file that fits this platform, arch, libc and runtime, or a throw. */
const nodeGypBuild = requireHere('node-gyp-build') as { path(dir: string): string };

const DEFAULT_KEY = '';
const cache = new Map<string, InotifyAddon | null>();
let warned = false;

/** Why the last load failed (for status output). */
export let addonLoadError: Error | undefined;

/** The fix a user is told when the addon is missing. */
export const ADDON_FIX = 'run `npm rebuild lsyncd` (needs python3, make and a C++ compiler)';

/**
 * Load the addon, or return null when it cannot be loaded: the one node-gyp-build picks in the
 * package, or the file `path` when given (tests). The load is tried once per path; the warning is
 * given once per process, by the first caller that is not `quiet` (a quiet probe made earlier,
 * e.g. for socket options, does not hide it from the watcher later).
 */
export function loadAddon(path?: string, opts: { quiet?: boolean } = {}): InotifyAddon | null {
  const key = path ?? DEFAULT_KEY;
  let addon = cache.get(key);
  if (addon === undefined) {
    addon = tryLoad(path);
    cache.set(key, addon);
  }
  if (addon === null && !warned && opts.quiet !== true) {
    warned = true;
    process.emitWarning(`lsyncd: ${addonMissingText()}`, { code: 'LSYNCD_NO_ADDON' });
  }
  return addon;
}

/** One line for a status or a log: the addon is missing, why, what the watcher does instead, the fix. */
export function addonMissingText(): string {
  return (
    `the inotify addon could not be loaded (${addonLoadError?.message.split('\n')[0] ?? 'not tried'}); ` +
    `watching falls back to periodic polling scans. To fix: ${ADDON_FIX}.`
  );
}

/**
 * Why a watcher polls when inotify was wanted (`wanted` backend 'auto' or absent), as one line for
 * a status or a log: the addon is missing (and the fix), or inotify's limits were hit. Undefined
 * when it watches through inotify, or polling was asked for.
 */
export function watchingFallback(watcher: { stats(): { backend: 'inotify' | 'poll' } }, wanted: string | undefined): string | undefined {
  if (wanted === 'poll' || watcher.stats().backend !== 'poll') return undefined;
  if (addonLoadError) return addonMissingText();
  return 'inotify is unavailable (fs.inotify.max_user_instances or max_user_watches reached); watching falls back to periodic polling scans';
}

function tryLoad(path: string | undefined): InotifyAddon | null {
  // LSYNCD_NO_ADDON=1: run as without the addon (polling watcher, Node's own calls), e.g. for a
  // source on NFS, where inotify does not see other hosts' changes, or to measure the fallback.
  if (process.env['LSYNCD_NO_ADDON'] === '1') {
    addonLoadError = new Error('not loaded: LSYNCD_NO_ADDON=1');
    return null;
  }
  if (process.platform !== 'linux') {
    addonLoadError = new Error(`inotify is Linux-only (platform ${process.platform})`);
    return null;
  }
  try {
    const file = path ?? nodeGypBuild.path(PACKAGE_ROOT);
    const mod: unknown = requireHere(file);
    if (typeof mod === 'object' && mod !== null && typeof (mod as { Inotify?: unknown }).Inotify === 'function') {
      return mod as InotifyAddon;
    }
    addonLoadError = new Error(`${file} does not export Inotify`);
  } catch (err) {
    if (!isLoadFailure(err)) throw err;
    addonLoadError = err as Error;
  }
  return null;
}

// "Module not found", node-gyp-build's "No native build was found", or "failed to load" (dlopen
// errors: wrong ABI, missing symbols, not ELF).
function isLoadFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'MODULE_NOT_FOUND' || code === 'ERR_DLOPEN_FAILED') return true;
  return err instanceof Error && /No native build was found|\.node\b|dlopen|invalid ELF|cannot open shared object|NODE_MODULE_VERSION/.test(err.message);
}

/** What releaseMemory gave back beyond the collections. */
export interface ReleasedMemory {
  /** Bytes of clean file pages (the node binary's, the libraries') no longer mapped (0 unless asked). */
  filePageBytes: number;
}

/**
 * Give memory back to the system after a big transfer (see native/memory.cc). Blocks for a few
 * full collections (tens of ms): call it when idle. `filePages`: also drop this process's
 * mapping of clean read-only file pages (they stay in the page cache; a later use is a minor
 * fault): a whole-process choice, so the CLI's live daemon makes it, not the library. Returns
 * false without the addon.
 */
export function releaseMemory(options: { filePages?: boolean } = {}): ReleasedMemory | false {
  const addon = loadAddon(undefined, { quiet: true });
  if (!addon?.releaseMemory) return false;
  const dropped = addon.releaseMemory(options.filePages === true);
  return { filePageBytes: typeof dropped === 'number' ? dropped : 0 };
}

/**
 * Cap glibc's malloc arenas for the rest of the process (see native/memory.cc); threads that
 * already have one keep it. False without the addon or on another C library.
 */
export function limitMallocArenas(count: number): boolean {
  const addon = loadAddon(undefined, { quiet: true });
  return addon?.limitMallocArenas?.(count) ?? false;
}

/**
 * TCP_QUICKACK on a socket (see native/quickack.cc): our ACKs go out as soon as we read, so the
 * daemon's second small write is not held by Nagle for our delayed ACK. False without the addon.
 */
export function quickAck(fd: number): boolean {
  const addon = loadAddon(undefined, { quiet: true });
  return addon?.quickAck ? addon.quickAck(fd) : false;
}

/**
 * Bytes the peer sent that nobody has read yet, in the kernel (see native/quickack.cc); 0 without
 * the addon.
 */
export function inputPending(fd: number): number {
  const addon = loadAddon(undefined, { quiet: true });
  return addon?.inputPending ? addon.inputPending(fd) : 0;
}

/**
 * A syslog(3) writer (see native/syslog.cc) opened with `ident` and `facility` (a LOG_* facility
 * value), or null without the addon.
 */
export function openSyslog(ident: string, facility: number): ((priority: number, message: string) => void) | null {
  const addon = loadAddon(undefined, { quiet: true });
  if (!addon?.openSyslog || !addon.syslog) return null;
  addon.openSyslog(ident, facility);
  return addon.syslog;
}

/**
 * A hole in `fd`'s data at [offset, offset+length), its length kept (see native/punch-hole.cc):
 * true when the range now reads as zeros; false without the addon or where the filesystem can
 * neither punch nor zero a range (the caller writes the zeros).
 */
export function punchHole(fd: number, offset: number, length: number): boolean {
  const addon = loadAddon(undefined, { quiet: true });
  return addon?.punchHole ? addon.punchHole(fd, offset, length) : false;
}

/**
 * copy_file_range(2): up to `length` bytes of `fdIn` at `offsetIn` appended at `fdOut`'s file
 * offset, inside the kernel. Resolves the bytes copied (0: end of `fdIn`), or null without the
 * addon or where the kernel cannot copy between these files (the caller reads and writes).
 */
export function copyFileRange(fdIn: number, offsetIn: number, fdOut: number, length: number): number | null {
  const addon = loadAddon(undefined, { quiet: true });
  if (!addon?.copyFileRange) return null;
  const n = addon.copyFileRange(fdIn, offsetIn, fdOut, length);
  return n < 0 ? null : n;
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
  const addon = loadAddon(undefined, { quiet: true });
  if (addon?.setTimesFd) {
    addon.setTimesFd(fd, sec, nsec);
    return true;
  }
  futimesSync(fd, nodeTime(sec, nsec), nodeTime(sec, nsec));
  return false;
}

/** Whether file times are set to the nanosecond (the addon's futimens/utimensat), as rsync does. */
export function exactTimes(): boolean {
  return loadAddon(undefined, { quiet: true })?.setTimesPath !== undefined;
}

/** The same by path; `follow` false sets a symlink's own times (lutimes). */
export function setTimesPath(path: Buffer, sec: number, nsec: number, follow: boolean): boolean {
  const addon = loadAddon(undefined, { quiet: true });
  if (addon?.setTimesPath) {
    addon.setTimesPath(path, sec, nsec, follow);
    return true;
  }
  const t = nodeTime(sec, nsec);
  if (follow) utimesSync(path, t, t);
  else lutimesSync(path, t, t);
  return false;
}

/**
 * The system's zstd and lz4 libraries through the addon (see native/compress-libs.cc), opened on
 * the first call; null without the addon (then `addonLoadError` says why).
 */
export function compressLibs(): CompressLibs | null {
  const addon = loadAddon(undefined, { quiet: true });
  return addon?.compressLibs ? addon.compressLibs() : null;
}

/** The addon's one-call commit of a file received whole (native/file-commit.cc), or null without the addon. */
export function fileCommitter(): NonNullable<InotifyAddon['commitFile']> | null {
  return loadAddon(undefined, { quiet: true })?.commitFile ?? null;
}

/** The addon's xattr calls (-X), or null without the addon. */
export function xattrCalls(): XattrCalls | null {
  return loadAddon(undefined, { quiet: true })?.xattr ?? null;
}

/**
 * The addon's xxhash (rsync's xxh64/xxh3/xxh128 in C) as protocol/checksum.ts takes it, or null
 * without the addon (hash-wasm's WebAssembly then) or with LSYNCD_JS_XXHASH set.
 */
export function nativeXxhash(): XxhashProvider | null {
  if (process.env['LSYNCD_JS_XXHASH']) return null;
  const addon = loadAddon(undefined, { quiet: true });
  const once = addon?.xxhashOnce;
  const Stream = addon?.XxHashStream;
  if (!once || !Stream) return null;
  return { once, stream: (kind, seedLow, seedHigh) => new Stream(kind, seedLow, seedHigh) };
}
