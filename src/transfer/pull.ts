// A pull: bring a daemon module's tree into a local directory, as `rsync -rlpt rsync://HOST/module/path/
// DEST/` does, through the generator and receiver roles. Also the roles' file access (`DestTree`):
// every name from the daemon is re-checked before any file operation, nothing is written outside
// DEST, and no symlink is followed, neither in a parent directory nor in the final component.
// Counterpart: rsync main.c client_run / do_recv, receiver.c open_tmpfile / finish_transfer,
// rsync.c set_file_attrs, syscall.c do_open_nofollow.
// Synchronous calls on purpose: local metadata operations are fast, and a round trip through the
// thread pool per call made a pull of many small files wait more than it worked (as scan.ts does).
import { setTimesFd, setTimesPath, loadAddon, DEFAULT_ADDON_PATH } from '../addon.js';
import {
  constants,
  lstatSync,
  mkdirSync,
  openSync,
  closeSync,
  readSync,
  writeSync,
  fstatSync,
  fchmodSync,
  fchownSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  linkSync,
  lchownSync,
  chmodSync,
  unlinkSync,
  readFileSync,
  type BigIntStats,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { resolve as resolvePath } from 'node:path';
import { openModule, type SessionOptions } from './client.js';
import { serverArgs, type TransferOptions } from '../../protocol/args.js';
import { startPull, acknowledgeErrorExit } from '../../protocol/session.js';
import { flistOptionsFor } from '../../protocol/flist-recv.js';
import { parseChecksumName } from '../../protocol/compat.js';
import { createChecksummer, type Checksummer } from '../../protocol/checksum.js';
import { sumsHelper } from './sums-helper.js';
import type { FileEntry } from '../../protocol/flist.js';
import { ACCESSPERMS, CHMOD_BITS, S_IFBLK, S_IFCHR, S_IFIFO, S_IFLNK, S_IFMT, splitDev } from '../../protocol/modes.js';
import { sendFilterList, compileFilter, type FilterList } from '../../protocol/filter.js';
import { doRecv, type ReceiverStats, type ReceivedItem } from '../../protocol/receiver.js';
import type { LocalTree, LocalStat, BasisFile, TempFile, GeneratorResult, GeneratedItem } from '../../protocol/generator.js';
import type { ReceivedEntry } from '../../protocol/flist-recv.js';
import { ITEM_IS_NEW, MAXPATHLEN } from '../../protocol/constants.js';
import { statsLines, summaryLines } from './output.js';
import type { PushResult } from './push.js';
import { MSG_ERROR, MSG_ERROR_EXIT, MSG_ERROR_XFER, MSG_INFO, MSG_IO_TIMEOUT, MSG_WARNING, writeMessage, type Demultiplexer } from '../../protocol/mplex.js';
import type { ByteWriter } from '../../protocol/io.js';
import { EXIT, ProtocolError, RemoteError, RsyncError } from '../../protocol/errors.js';
import { remotePath, type DaemonTarget } from './target.js';
import { adoptModuleTimeout } from './socket.js';

/** A name from the daemon that would leave DEST, or go through a symlink or a non-directory. */
export class UnsafePathError extends ProtocolError {
  constructor(message: string) {
    super(message, { code: 'ERR_RSYNC_UNSAFE_PATH' });
  }
}

/** Which attributes the pull sets (rsync's -p, -t, -o, -g). */
export interface AttrOptions {
  perms: boolean;
  times: boolean;
  owner: boolean;
  group: boolean;
  /** Files created without -p get the entry's mode less this umask (rsync's dest_mode). */
  umask: number;
  /** --modify-window: 0 compares whole seconds (rsync's default), -1 nanoseconds. */
  modifyWindow: number;
}

const SLASH = 0x2f;
const DOT = Buffer.from('.');
/** Bytes gathered before a write to a temp file. */
const WRITE_BUFFER = 256 * 1024;

/** The same checks as the file-list reader, repeated here before every file operation. */
function checkName(name: Buffer): void {
  const shown = JSON.stringify(name.toString('latin1')).slice(0, 120);
  if (name.length === 1 && name[0] === 0x2e) return;
  if (name.length === 0 || name.length >= MAXPATHLEN) throw new UnsafePathError(`unsafe name from the daemon (length ${name.length})`);
  if (name.includes(0)) throw new UnsafePathError(`unsafe name from the daemon (NUL byte): ${shown}`);
  if (name[0] === SLASH) throw new UnsafePathError(`unsafe name from the daemon (absolute): ${shown}`);
  let start = 0;
  for (let i = 0; i <= name.length; i++) {
    if (i < name.length && name[i] !== SLASH) continue;
    const len = i - start;
    const part = name.subarray(start, i);
    if (len === 0 || (len === 1 && part[0] === 0x2e) || (len === 2 && part[0] === 0x2e && part[1] === 0x2e)) {
      throw new UnsafePathError(`unsafe name from the daemon (empty, '.' or '..' component): ${shown}`);
    }
    start = i + 1;
  }
}

function toLocalStat(st: BigIntStats, target?: Buffer): LocalStat {
  return {
    ...((st.isBlockDevice() || st.isCharacterDevice()) && { rdev: splitDev(st.rdev) }),
    mode: Number(st.mode),
    size: Number(st.size),
    mtime: Number(st.mtimeNs / 1_000_000_000n),
    mtimeNsec: Number(st.mtimeNs % 1_000_000_000n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    dev: st.dev,
    ino: st.ino,
    ...(target && { symlink: target }),
  };
}

const isErrno = (e: unknown, code: string): boolean => (e as NodeJS.ErrnoException)?.code === code;

/** rsync's dest_mode for a file created without -p: the entry's permissions less the umask. */
function destMode(entryMode: number, existing: LocalStat | null, umask: number): number {
  if (existing && (existing.mode & S_IFMT) === (entryMode & S_IFMT)) return existing.mode & CHMOD_BITS;
  return entryMode & ACCESSPERMS & ~umask;
}

/**
 * DEST as the pull roles see it. `root` must exist and be a directory. Paths are built from raw
 * name bytes; each operation first walks the parent components with lstat and refuses a symlink
 * or a non-directory among them, then acts on the final component without following it.
 */
// rsync/receiver.c + syscall.c: the receiver's confined opens (secure_relative_open, do_open_nofollow)
export class DestTree implements LocalTree {
  private readonly root: Buffer;
  /**
   * Parent directories already walked and found to be real directories (latin1 keys). Only our
   * own operations change DEST's directories during a pull, so the set is dropped whenever we
   * remove or replace something, and a walk is not repeated for every file of a directory.
   */
  private readonly checkedDirs = new Set<string>();
  /** Write buffers of committed or discarded temp files, for the next ones. */
  private readonly spareBuffers: Buffer[] = [];

  constructor(
    root: string,
    private readonly attrs: AttrOptions,
  ) {
    this.root = Buffer.from(resolvePath(root));
  }

  /** The absolute path of a list name, after checking the name and its parent directories. */
  private async path(name: Buffer, parentsMustExist: boolean): Promise<Buffer | null> {
    checkName(name);
    if (name.length === 1 && name[0] === 0x2e) return this.root;
    const last = name.lastIndexOf(SLASH);
    if (last > 0 && !this.checkedDirs.has(name.toString('latin1', 0, last))) {
      let at = name.indexOf(SLASH);
      while (at >= 0) {
        const key = name.toString('latin1', 0, at);
        if (!this.checkedDirs.has(key)) {
          const dir = Buffer.concat([this.root, Buffer.from('/'), name.subarray(0, at)]);
          const st = lstatSync(dir, { throwIfNoEntry: false });
          if (!st) {
            if (!parentsMustExist) return null;
            throw Object.assign(new Error(`ENOENT: no such file or directory, lstat '${dir.toString()}'`), { code: 'ENOENT', syscall: 'lstat', path: dir.toString() });
          }
          if (st.isSymbolicLink()) throw new UnsafePathError(`refusing to write through a symlink: ${name.subarray(0, at).toString()}`);
          if (!st.isDirectory()) throw new UnsafePathError(`parent of ${name.toString()} is not a directory`);
          this.checkedDirs.add(key);
        }
        at = name.indexOf(SLASH, at + 1);
      }
    }
    return Buffer.concat([this.root, Buffer.from('/'), name]);
  }

  private async must(name: Buffer): Promise<Buffer> {
    return (await this.path(name, true))!;
  }

  async lstat(name: Buffer): Promise<LocalStat | null> {
    const p = await this.path(name, false);
    if (!p) return null;
    // Nanoseconds need the BigInt form (slower: a BigInt per field); whole seconds do not.
    if (this.attrs.modifyWindow < 0) {
      const st = lstatSync(p, { bigint: true, throwIfNoEntry: false });
      if (!st) return null;
      return toLocalStat(st, st.isSymbolicLink() ? readlinkSync(p, { encoding: 'buffer' }) : undefined);
    }
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) return null;
    const mtime = Math.floor(st.mtimeMs / 1000);
    return {
      ...((st.isBlockDevice() || st.isCharacterDevice()) && { rdev: splitDev(BigInt(st.rdev)) }),
      mode: st.mode,
      size: st.size,
      mtime,
      // Microseconds at best here: only used when the window is 0 or more, where it is ignored.
      mtimeNsec: Math.max(0, Math.round((st.mtimeMs - mtime * 1000) * 1e6)),
      uid: st.uid,
      gid: st.gid,
      dev: BigInt(st.dev),
      ino: BigInt(st.ino),
      ...(st.isSymbolicLink() && { symlink: readlinkSync(p, { encoding: 'buffer' }) }),
    };
  }

  async openBasis(name: Buffer): Promise<BasisFile | null> {
    const p = await this.path(name, false);
    if (!p) return null;
    let fd: number;
    try {
      fd = openSync(p, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ELOOP')) return null;
      throw e;
    }
    const st = fstatSync(fd);
    if (!st.isFile()) {
      closeSync(fd);
      return null;
    }
    return fileBasis(fd, st.size);
  }

  async createTemp(name: Buffer): Promise<TempFile> {
    const p = await this.must(name);
    const slash = p.lastIndexOf(SLASH);
    const dir = p.subarray(0, slash + 1);
    // rsync's open_tmpfile: ".NAME.XXXXXX" beside the target, the name cut to fit NAME_MAX.
    const base = p.subarray(slash + 1, slash + 1 + 240);
    for (let attempt = 0; ; attempt++) {
      const tmp = Buffer.concat([dir, DOT, base, Buffer.from(`.${tempSuffix()}`)]);
      let fd: number;
      try {
        fd = openSync(tmp, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      } catch (e) {
        if (isErrno(e, 'EEXIST') && attempt < 10) continue;
        throw e;
      }
      return this.tempFile(fd, tmp, p);
    }
  }

  private tempFile(fd: number, tmp: Buffer, target: Buffer): TempFile {
    let closed = false;
    let done = false;
    const attrs = this.attrs;
    // Small pieces (literal runs, basis blocks) are gathered into one buffer per temp file and
    // written in large writes.
    // One buffer per temp file in use, taken from the tree's spares and given back when the file
    // is committed or discarded (a pull writes 20,000 small files one after another).
    let buf = this.spareBuffers.pop() ?? Buffer.allocUnsafe(WRITE_BUFFER);
    const spares = this.spareBuffers;
    const release = (): void => {
      if (buf.length) spares.push(buf);
      buf = EMPTY;
    };
    let used = 0;
    let flushed = 0;
    const writeAll = async (bytes: Uint8Array): Promise<void> => {
      for (let at = 0; at < bytes.length; ) {
        const n = writeSync(fd, bytes, at, bytes.length - at);
        at += n;
        flushed += n;
      }
    };
    const drain = async (): Promise<void> => {
      if (used) await writeAll(buf.subarray(0, used));
      used = 0;
    };
    return {
      fd,
      get flushed() {
        return flushed;
      },
      flush: drain,
      write: async (bytes) => {
        if (used + bytes.length > buf.length) await drain();
        if (bytes.length >= buf.length) return writeAll(bytes);
        buf.set(bytes, used);
        used += bytes.length;
      },
      // rsync/receiver.c: finish_transfer (set_file_attrs on the temp file, then the rename)
      commit: async (entry) => {
        let existing: LocalStat | null = null;
        if (!attrs.perms) {
          try {
            existing = toLocalStat(lstatSync(target, { bigint: true }));
          } catch {
            existing = null;
          }
        }
        await drain();
        release();
        if (attrs.owner || attrs.group) {
          try {
            fchownSync(fd, attrs.owner ? entry.uid : -1, attrs.group ? entry.gid : -1);
          } catch {
            // rsync warns only with -v; the file itself is fine
          }
        }
        fchmodSync(fd, attrs.perms ? entry.mode & CHMOD_BITS : destMode(entry.mode, existing, attrs.umask));
        if (attrs.times) setTimesFd(fd, entry.mtime, entry.mtimeNsec ?? 0);
        closeSync(fd);
        closed = true;
        renameSync(tmp, target);
        done = true;
      },
      discard: async () => {
        release();
        if (!closed) closeQuietly(fd);
        closed = true;
        if (!done) unlinkQuietly(tmp);
        done = true;
      },
    };
  }

  async mkdir(name: Buffer, entry: FileEntry): Promise<void> {
    const p = await this.must(name);
    // With -p the final mode comes after the contents (touch-up); without it, the entry's
    // permissions less the umask, as rsync's dest_mode gives a new directory.
    mkdirSync(p, { mode: this.attrs.perms ? 0o700 : (entry.mode & ACCESSPERMS) | 0o700 });
  }

  async symlink(name: Buffer, target: Buffer): Promise<void> {
    const p = await this.must(name);
    this.checkedDirs.clear();
    const tmp = siblingTemp(p);
    symlinkSync(target, tmp);
    try {
      renameSync(tmp, p); // replaces a file or a symlink; a directory was removed before
    } catch (e) {
      unlinkQuietly(tmp);
      throw e;
    }
  }

  // rsync/syscall.c: do_mknod. Node has no mknod(2): the coreutils tools make the node under a
  // temporary ASCII name in the parent directory, which they reach as /proc/self/fd/3 (names are
  // raw bytes, argv is not), then it is renamed over the target. Sockets are not made (a socket
  // file needs a bound server).
  async mknod(name: Buffer, entry: FileEntry): Promise<void> {
    const p = await this.must(name);
    this.checkedDirs.clear();
    const slash = p.lastIndexOf(SLASH);
    const base = `.lsyncd-node.${randomBytes(6).toString('hex')}`;
    const tmp = Buffer.concat([p.subarray(0, slash + 1), Buffer.from(base)]);
    const type = entry.mode & S_IFMT;
    const mode = (entry.mode & CHMOD_BITS).toString(8);
    let args: string[];
    if (type === S_IFCHR || type === S_IFBLK) {
      const rdev = entry.rdev ?? { major: 0, minor: 0 };
      args = ['mknod', '-m', mode, '--', '', type === S_IFCHR ? 'c' : 'b', String(rdev.major), String(rdev.minor)];
    } else if (type === S_IFIFO) {
      args = ['mkfifo', '-m', mode, '--', ''];
    } else {
      throw new RsyncError('ERR_RSYNC_FILEIO', `cannot create socket ${name.toString()} (not supported)`, EXIT.FILEIO);
    }
    const dirFd = openSync(p.subarray(0, slash), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    let r: ReturnType<typeof spawnSync>;
    try {
      r = spawnSync(args[0]!, args.slice(1).map((a) => (a === '' ? `/proc/self/fd/3/${base}` : a)), { stdio: ['ignore', 'ignore', 'pipe', dirFd] });
    } finally {
      closeSync(dirFd);
    }
    if (r.status !== 0) {
      throw new RsyncError('ERR_RSYNC_FILEIO', `mknod ${name.toString()} failed: ${r.stderr?.toString().trim() || r.error?.message}`, EXIT.FILEIO);
    }
    try {
      renameSync(tmp, p);
    } catch (e) {
      unlinkQuietly(tmp);
      throw e;
    }
  }

  async link(name: Buffer, existing: Buffer): Promise<void> {
    const p = await this.must(name);
    this.checkedDirs.clear();
    const from = await this.must(existing);
    const tmp = siblingTemp(p);
    linkSync(from, tmp);
    try {
      renameSync(tmp, p);
    } catch (e) {
      unlinkQuietly(tmp);
      throw e;
    }
  }

  async remove(name: Buffer): Promise<void> {
    if (name.length === 1 && name[0] === 0x2e) throw new UnsafePathError('refusing to remove the destination itself');
    const p = await this.must(name);
    this.checkedDirs.clear();
    // rm never follows a symlink: a link to a directory outside goes, not what it points to.
    rmSync(p, { recursive: true, force: true });
  }

  async list(dir: Buffer): Promise<Buffer[]> {
    const p = await this.must(dir);
    try {
      return readdirSync(p, { encoding: 'buffer' });
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return [];
      throw e;
    }
  }

  // rsync/util1.c: same_time (an existing item's mtime is left alone when it counts as equal)
  private timeDiffers(ns: bigint, entry: FileEntry): boolean {
    const sec = Number(ns / 1_000_000_000n);
    const window = this.attrs.modifyWindow;
    if (window === 0) return sec !== entry.mtime;
    if (window > 0) return Math.abs(sec - entry.mtime) > window;
    // Nanoseconds (the addon sets them; without it Node keeps microseconds, all we can match).
    const want = BigInt(entry.mtime) * 1_000_000_000n + BigInt(entry.mtimeNsec ?? 0);
    return EXACT_TIMES ? ns !== want : ns / 1000n !== want / 1000n;
  }

  /** Whether setAttrs would change anything of a (non-symlink) item whose lstat is `st`. */
  private attrsDiffer(st: LocalStat, entry: FileEntry): boolean {
    if ((this.attrs.owner || this.attrs.group) && (st.uid !== entry.uid || st.gid !== entry.gid)) return true;
    if (this.attrs.perms && (st.mode & CHMOD_BITS) !== (entry.mode & CHMOD_BITS)) return true;
    if (!this.attrs.times) return false;
    // Whole seconds need no BigInt; nanoseconds come exact from lstat's BigInt form (window -1).
    if (this.attrs.modifyWindow >= 0) return this.attrs.modifyWindow === 0 ? st.mtime !== entry.mtime : Math.abs(st.mtime - entry.mtime) > this.attrs.modifyWindow;
    return this.timeDiffers(BigInt(st.mtime) * 1_000_000_000n + BigInt(st.mtimeNsec), entry);
  }

  // rsync/rsync.c: set_file_attrs (for entries not rebuilt through a temp file)
  async setAttrs(name: Buffer, entry: FileEntry, st: LocalStat | null): Promise<void> {
    // Nothing to change by the stat the caller just took (the no-change pull's every file): no
    // second lstat, not even the walk of the parents (the caller's lstat did it).
    if (st && (st.mode & S_IFMT) === (entry.mode & S_IFMT) && (st.mode & S_IFMT) !== S_IFLNK && !this.attrsDiffer(st, entry)) return;
    const p = await this.must(name);
    const type = entry.mode & S_IFMT;
    if (type === S_IFLNK) {
      if ((this.attrs.owner || this.attrs.group) && (!st || st.uid !== entry.uid || st.gid !== entry.gid)) {
        try {
          lchownSync(p, this.attrs.owner ? entry.uid : -1, this.attrs.group ? entry.gid : -1);
        } catch {
          // as above: not fatal
        }
      }
      if (this.attrs.times && (!st || this.timeDiffers(BigInt(st.mtime) * 1_000_000_000n + BigInt(st.mtimeNsec), entry))) {
        setTimesPath(p, entry.mtime, entry.mtimeNsec ?? 0, false);
      }
      return;
    }
    // Not a symlink: lstat first, so chmod/utimes (which follow) never reach through one.
    const now = lstatSync(p, { bigint: true });
    if (now.isSymbolicLink()) throw new UnsafePathError(`refusing to set attributes through a symlink: ${name.toString()}`);
    if ((this.attrs.owner || this.attrs.group) && (Number(now.uid) !== entry.uid || Number(now.gid) !== entry.gid)) {
      try {
        lchownSync(p, this.attrs.owner ? entry.uid : Number(now.uid), this.attrs.group ? entry.gid : Number(now.gid));
      } catch {
        // as above: not fatal
      }
    }
    if (this.attrs.perms && (Number(now.mode) & CHMOD_BITS) !== (entry.mode & CHMOD_BITS)) chmodSync(p, entry.mode & CHMOD_BITS);
    if (this.attrs.times) {
      if (this.timeDiffers(now.mtimeNs, entry)) setTimesPath(p, entry.mtime, entry.mtimeNsec ?? 0, true);
    }
  }
}

const EMPTY = Buffer.alloc(0);
const SUFFIX_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * The XXXXXX of a temporary name, like mkstemp's: unpredictable enough (O_EXCL and the retry
 * settle a collision) and cheap; crypto's randomBytes cost ~8 µs a file.
 */
function tempSuffix(): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += SUFFIX_CHARS[(Math.random() * 64) | 0];
  return s;
}

/** Whether file times are set to the nanosecond (the addon's utimensat/futimens), as rsync does. */
const EXACT_TIMES = loadAddon(DEFAULT_ADDON_PATH, { quiet: true })?.setTimesPath !== undefined;

function siblingTemp(p: Buffer): Buffer {
  const slash = p.lastIndexOf(SLASH);
  return Buffer.concat([p.subarray(0, slash + 1), DOT, p.subarray(slash + 1, slash + 1 + 240), Buffer.from(`.${tempSuffix()}`)]);
}

/** A basis opened once: streamed for the sums, read at offsets for the blocks. */
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

function unlinkQuietly(path: Buffer): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

function fileBasis(fd: number, size: number): BasisFile {
  return {
    size,
    fd,
    chunks: () =>
      (async function* () {
        const buf = Buffer.allocUnsafe(256 * 1024);
        let pos = 0;
        for (;;) {
          const bytesRead = readSync(fd, buf, 0, buf.length, pos);
          if (bytesRead === 0) return;
          pos += bytesRead;
          yield buf.subarray(0, bytesRead);
        }
      })(),
    read: async (into, length, position) => readSync(fd, into, 0, length, position),
    close: async () => closeSync(fd),
  };
}

// ---------------------------------------------------------------------------------------------
// The session

/** Filter rules for a pull: sent to the daemon's sender, and protecting local files from --delete. */
export interface PullFilter {
  list: FilterList;
  deleteExcluded: boolean;
}

export interface PullOptions {
  target: DaemonTarget;
  dest: string;
  transfer: TransferOptions;
  session: Omit<SessionOptions, 'host' | 'port'>;
  filter?: PullFilter;
  /** -I */
  ignoreTimes?: boolean;
  onInfo?: (text: string) => void;
  onError?: (text: string) => void;
  onItem?: (item: GeneratedItem) => void;
  onReceived?: (item: ReceivedItem) => void;
  onDeleted?: (name: Buffer, isDir: boolean) => void;
  /** DEST did not exist and is being created (rsync says "created directory DEST" with -v/-i). */
  onCreatedDest?: (path: string) => void;
  /** The daemon's file list has arrived (rsync -v: "receiving file list ... done"). */
  onFileList?: (entries: readonly FileEntry[]) => void;
}

export interface PullResult {
  exitCode: number;
  files: number;
  totalSize: number;
  generator: GeneratorResult;
  receiver: ReceiverStats;
  bytesSent: number;
  bytesReceived: number;
  entries: FileEntry[];
  /** Entries created here (new files, directories, symlinks), for --stats. */
  created: FileEntry[];
  /** Bytes read from the start of the setup to the end of the file list (rsync: the list's size). */
  flistBytes: number;
  /** The protocol spoken. */
  protocol: number;
}

// rsync/main.c: client_run (the receiver branch)
export async function pull(options: PullOptions): Promise<PullResult> {
  const { transfer } = options;
  const onError = options.onError ?? (() => {});
  // 1. DEST: a directory, or missing (the generator creates it for the list's '.', one level, as
  // rsync does); never a symlink.
  const dest = resolvePath(options.dest);
  let destStat: ReturnType<typeof lstatSync> | null = null;
  try {
    destStat = lstatSync(dest);
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw e;
  }
  if (destStat && !destStat.isDirectory()) throw new RsyncError('ERR_RSYNC_DEST', `destination ${dest} is not a directory`, EXIT.FILEIO);
  if (!destStat && !transfer.dryRun) options.onCreatedDest?.(options.dest.replace(/(.)\/+$/, '$1'));
  // 2. Connect, module, auth; args with --sender; setup; our filter list.
  const session = await openModule({ ...options.session, host: options.target.host, port: options.target.port }, options.target.module);
  const { reader, writer, socket } = session;
  const sentBefore = socket.bytesWritten;
  const receivedBefore = socket.bytesRead;
  let xferErrors = 0;
  let demuxForAck: Demultiplexer | null = null;
  try {
    const protocol = session.hello.protocol;
    const args = serverArgs(transfer, protocol, remotePath(options.target), true);
    const checksumChoice = transfer.checksumChoice ? parseChecksumName(transfer.checksumChoice) : undefined;
    // 3. Args with --sender, setup, our filter list, the daemon's file list (names checked).
    const consumedBefore = reader.consumed;
    const start = await startPull(reader, writer, args, {
      ...(checksumChoice && { checksumChoice }),
      ...(options.filter && {
        writeFilterList: (w: ByteWriter) => sendFilterList(w, options.filter!.list, { deleteExcluded: options.filter!.deleteExcluded, role: 'receiver' }),
      }),
      flist: flistOptionsFor(transfer),
      onMessage: (code, payload) => {
        switch (code) {
          case MSG_INFO:
            options.onInfo?.(payload.toString());
            break;
          case MSG_ERROR_XFER:
            xferErrors++;
            onError(payload.toString());
            break;
          case MSG_ERROR:
          case MSG_WARNING:
            onError(payload.toString());
            break;
          case MSG_IO_TIMEOUT:
            adoptModuleTimeout(socket, payload, options.session.timeout);
            break;
          default:
            break;
        }
      },
    });
    demuxForAck = start.demux;
    const { setup, flist } = start;
    const flistBytes = reader.consumed - consumedBefore;
    options.onFileList?.(flist.files);
    const created: FileEntry[] = [];
    {
      // rsync's client: an empty list (a missing path) ends the session at once, before any phase.
      if (flist.files.length === 0) {
        const exitCode = xferErrors || flist.ioError & 1 ? EXIT.PARTIAL : flist.ioError & 2 ? EXIT.VANISHED : EXIT.OK;
        if (exitCode && writer.protocol >= 31 && writer.multiplexed) await writeMessage(writer, MSG_ERROR_EXIT, int32(exitCode));
        return {
          exitCode,
          files: 0,
          totalSize: 0,
          generator: { deleted: { files: 0, dirs: 0, symlinks: 0, devices: 0, specials: 0 }, requested: 0, failed: 0 },
          receiver: { transferredFiles: 0, totalTransferredSize: 0, literalBytes: 0, matchedBytes: 0, createdFiles: 0, failedFiles: 0, totals: null, deleted: null },
          bytesSent: socket.bytesWritten - sentBefore,
          bytesReceived: socket.bytesRead - receivedBefore,
          entries: [],
          created,
          flistBytes,
          protocol,
        };
      }
      const summerOptions = { protocol, seed: setup.seed, compatFlags: setup.compatFlags, implied: setup.checksumImplied };
      const checksummer = await createChecksummer(setup.checksum, summerOptions);
      // Big bases get their block sums on two threads; the helper starts on first use.
      const helper = sumsHelper(setup.checksum, summerOptions);
      let fileSummer: Checksummer | null = null;
      if (transfer.checksum) {
        // rsync's file_checksum: never seeded.
        fileSummer = await createChecksummer(setup.checksum, { protocol, seed: 0, compatFlags: setup.compatFlags, implied: false });
      }
      // -o/-g: the daemon's ids, mapped by name to ours unless --numeric-ids.
      if ((transfer.owner || transfer.group) && !transfer.numericIds) {
        const mapUid = transfer.owner ? idMapper(flist.userNames, localIds('/etc/passwd')) : null;
        const mapGid = transfer.group ? idMapper(flist.groupNames, localIds('/etc/group')) : null;
        for (const e of flist.files) {
          if (mapUid) e.uid = mapUid(e.uid);
          if (mapGid) e.gid = mapGid(e.gid);
        }
      }
      const umask = process.umask();
      const tree = new DestTree(dest, { perms: transfer.perms, times: transfer.times, owner: transfer.owner && process.getuid?.() === 0, group: transfer.group, umask, modifyWindow: transfer.modifyWindow ?? 0 });
      const protect = options.filter
        ? compileFilter(options.filter.list, { side: 'receiver', deleteExcluded: options.filter.deleteExcluded, ignorePerishable: true })
        : null;
      // 4. The generator and the receiver, side by side; then the goodbye.
      const result = await doRecv(reader, writer, flist.files, tree, checksummer, {
        sumsHelper: helper,
        perms: transfer.perms,
        times: transfer.times,
        owner: transfer.owner,
        group: transfer.group,
        links: transfer.links,
        devices: transfer.devices,
        hardLinks: transfer.hardLinks,
        checksum: transfer.checksum,
        ignoreTimes: options.ignoreTimes ?? false,
        wholeFile: transfer.wholeFile,
        dryRun: transfer.dryRun,
        // The sender's io_error (an unreadable directory there) turns deletions off, as in rsync.
        delete: (transfer.delete || transfer.deleteExcluded) && !(flist.ioError & 1),
        ...(transfer.modifyWindow !== undefined && { modifyWindow: transfer.modifyWindow }),
        ...(protect && { isProtected: (name: Buffer, isDir: boolean) => !protect.empty && protect.isExcluded(name, isDir) }),
        ...(fileSummer && { fileChecksum: (name: Buffer) => localChecksum(tree, fileSummer!, name) }),
        onItem: (item) => {
          if (item.iflags & ITEM_IS_NEW) created.push(item.entry);
          options.onItem?.(item);
        },
        ...(options.onReceived && { onReceived: options.onReceived }),
        ...(options.onDeleted && { onDeleted: options.onDeleted }),
        onWarning: onError,
        onAbort: () => socket.destroy(),
      }).finally(() => helper.close());
      await session.close().catch(() => {});
      // rsync's final exit code: the sender's io_error (in the list's end marker, or MSG_IO_ERROR
      // for a file that vanished or failed while sending), per-file errors; 23 beats 24.
      const ioError = flist.ioError | start.demux.ioError;
      let exitCode: number = EXIT.OK;
      if (ioError & 2) exitCode = EXIT.VANISHED;
      if (ioError & 1 || xferErrors || result.receiver.failedFiles || result.generator.failed) exitCode = EXIT.PARTIAL;
      return {
        exitCode,
        files: flist.files.length,
        totalSize: flist.totalSize,
        generator: result.generator,
        receiver: result.receiver,
        bytesSent: socket.bytesWritten - sentBefore,
        bytesReceived: socket.bytesRead - receivedBefore,
        entries: flist.files,
        created,
        flistBytes,
        protocol,
      };
    }
  } catch (e) {
    if (e instanceof RemoteError && demuxForAck) await acknowledgeErrorExit(writer, demuxForAck, e).catch(() => {});
    throw asFileError(e);
  } finally {
    socket.destroy();
  }
}

/** name → id from /etc/passwd or /etc/group (empty if unreadable). */
function localIds(file: string): Map<string, number> {
  const ids = new Map<string, number>();
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch {
    return ids;
  }
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    const id = Number(fields[2]);
    if (fields.length >= 3 && fields[0] && Number.isInteger(id) && !ids.has(fields[0])) ids.set(fields[0], id);
  }
  return ids;
}

/**
 * The daemon's id → ours: the local id of the same name, else the id as sent (rsync's rule:
 * "if a name has no match here, the numeric id is used").
 */
// rsync/uidlist.c: recv_add_id / match_uid
function idMapper(remote: ReadonlyMap<number, Buffer>, local: ReadonlyMap<string, number>): (id: number) => number {
  const cache = new Map<number, number>();
  return (id) => {
    let mapped = cache.get(id);
    if (mapped === undefined) {
      const name = remote.get(id);
      mapped = name ? (local.get(name.toString('latin1')) ?? id) : id;
      cache.set(id, mapped);
    }
    return mapped;
  };
}

/** A failed local file operation (ENOENT, EACCES, ENOSPC, ...) as rsync reports it: exit 11. */
function asFileError(e: unknown): unknown {
  const err = e as NodeJS.ErrnoException;
  if (e instanceof RsyncError || !(e instanceof Error) || typeof err.syscall !== 'string') return e;
  const path = err.path ? ` ${JSON.stringify(String(err.path))}` : '';
  return new RsyncError('ERR_RSYNC_FILEIO', `${err.syscall}${path} failed: ${err.code ?? err.message}`, EXIT.FILEIO, { cause: e });
}

function int32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  return b;
}

/** -c: the unseeded whole-file digest of a local regular file (null if it cannot be read). */
async function localChecksum(tree: LocalTree, summer: Checksummer, name: Buffer): Promise<Buffer | null> {
  const basis = await tree.openBasis(name);
  if (!basis) return null;
  try {
    const h = summer.startFile();
    for await (const chunk of basis.chunks()) h.update(chunk);
    return Buffer.from(h.digest());
  } finally {
    await basis.close();
  }
}

/** The pull's figures in the shape output.ts formats (the push's). */
function asPushResult(result: PullResult): PushResult {
  const r = result.receiver;
  const d = result.generator.deleted;
  return {
    exitCode: result.exitCode,
    stats: {
      transferredFiles: r.transferredFiles,
      totalTransferredSize: r.totalTransferredSize,
      literalBytes: r.literalBytes,
      matchedBytes: r.matchedBytes,
      createdFiles: result.created.length,
      deleted: d.files + d.dirs + d.symlinks + d.devices + d.specials ? d : null,
    },
    files: result.files,
    totalSize: result.totalSize,
    bytesSent: result.bytesSent,
    bytesReceived: result.bytesReceived,
    flistBytes: result.flistBytes,
    entries: [],
    scanSeconds: 0,
    protocol: result.protocol,
  };
}

/** rsync's --stats block for a pull (created counts from 29, deleted from 31, as rsync prints them). */
// rsync/main.c: output_summary
export function pullStatsLines(result: PullResult): string[] {
  const totals = result.receiver.totals;
  const active = result.entries.filter((e) => (e as ReceivedEntry).active !== false);
  const lines = statsLines(asPushResult(result), active, result.created, {
    flistBuild: (totals?.flistBuildTime ?? 0) / 1000,
    flistXfer: (totals?.flistXferTime ?? 0) / 1000,
  });
  return lines.filter(
    (l) =>
      !(result.protocol < 29 && l.startsWith('Number of created files')) &&
      !(result.protocol < 31 && l.startsWith('Number of deleted files')) &&
      !(result.protocol < 29 && l.startsWith('File list generation time')) &&
      !(result.protocol < 29 && l.startsWith('File list transfer time')),
  );
}

/** "sent X bytes  received Y bytes ..." and "total size is N  speedup is M". */
export function pullSummaryLines(result: PullResult, elapsedSeconds: number, dryRun: boolean): string[] {
  return summaryLines(asPushResult(result), elapsedSeconds, dryRun);
}
