// The local side of a push: walk SOURCE as rsync's sender does (lstat, never following
// symlinks), apply the filter rules, and produce file-list entries plus the local path of each.
// Counterpart: rsync flist.c send_file_list / send_directory / make_file.
import { lstat, readFile, stat } from 'node:fs/promises';
import { accessSync, constants, lstatSync, statSync, readdirSync, readlinkSync, openSync, fstatSync, readSync, closeSync, read } from 'node:fs';
import { promisify } from 'node:util';
import type { BigIntStats } from 'node:fs';
import { adoptExplorer, DirRecords, nativeDirPrefetch, nativeDirStats, nativeSmallFileRead, type ReadDirStats } from './dir-records.js';
import type { DirPrefetcher } from '../addon.js';
import type { FileEntry, IdNames } from '../../protocol/flist.js';
import { PackedFileList, PACKED_DROPPED, PACKED_NO_CONTENT, PACKED_TOP_DIR, type FileIdentity } from '../../protocol/flist-packed.js';
import { S_IFMT, S_IFDIR, S_IFLNK, S_IFREG, S_IFBLK, S_IFCHR, splitDev, type DevNumbers } from '../../protocol/modes.js';
import { IOERR_GENERAL, IOERR_VANISHED, MAXPATHLEN } from '../../protocol/constants.js';
import type { SenderSource } from '../../protocol/sender.js';
import type { TransferOptions } from '../../protocol/args.js';
import { RsyncError, EXIT } from '../../protocol/errors.js';
import type { ChunkSource } from '../../protocol/sums.js';
import { shownName } from './output.js';
import { CONFINED_ERROR, readFilesFrom, followLink, followsLinks, insideConfinement, insideRoot, mountPointAction, relativeSource, walkOptionsOf, type RelativeSource, type WalkOptions } from './walk-options.js';

/** A file-list entry and where it lives here (made on demand from the packed list). */
export interface LocalEntry extends FileEntry {
  localPath: Buffer;
  /** st_ino (as a number: a change detector for the live mirror's state file, not an identity). */
  ino?: number;
}

/** The sender-side filter: true when a path (relative to the transfer root) is excluded. */
export interface PathFilter {
  isExcluded(relPath: Buffer, isDir: boolean): boolean;
  /** True when no rule can exclude anything here: the walk then makes no name to ask with. */
  readonly empty?: boolean;
  /** The filter for the entries of a directory kept (per-directory merge files apply below it). */
  enter?(relDir: Buffer): PathFilter;
}

export interface ScanOptions {
  transfer: TransferOptions;
  filter?: PathFilter;
  /**
   * Leave out what this process may not read (files and directories; symlinks are always kept),
   * silently: rsyncd's `ignore nonreadable`.
   */
  ignoreNonreadable?: boolean;
  /** Messages for the user (vanished files, unreadable dirs, skipped specials). */
  onWarning?: (text: string) => void;
  /**
   * A name the walk could not list, as data (lsyncd serve words it as rsyncd and tells its client);
   * when set, these are not also given to onWarning.
   */
  onWalkFailure?: (failure: WalkFailure) => void;
  /**
   * lsyncd serve: the module's real root. Links followed by -L/--copy-unsafe-links may lead out
   * of it: listed, never read (walk-options.ts insideConfinement).
   */
  confine?: string;
  /**
   * --files-from: a push's local list (`-` for stdin) and --from0, read here; or the sources
   * already read (lsyncd serve: a list from the client or in the module). Names are below SOURCE.
   */
  filesFrom?: { file: string; from0: boolean } | { sources: readonly RelativeSource[] };
}

/**
 * A name the walk could not list, as rsync's sender reports it: `what` names rsync's message
 * (flist.c make_file: "file has vanished: %s" or "readlink_stat(%s) failed"; send_directory:
 * "opendir %s failed"; send_file_list and send_implied_dirs: "link_stat %s failed").
 */
export interface WalkFailure {
  what: 'vanished' | 'readlink_stat' | 'opendir' | 'link_stat';
  /** The name relative to the transfer root (as the list's names are). */
  name: Buffer;
  /** The errno code ('EACCES'), when there is one. */
  code?: string;
  /** The error's own text (shown when `code` has no strerror words). */
  message: string;
  /** A directory that vanished ("directory has vanished"). */
  dir?: boolean;
}

export interface ScanResult {
  /** The entries in the walk's order (packed: no object per entry); each knows its local path. */
  list: PackedFileList;
  /**
   * (st_dev, st_ino) of regular files with one link, kept with -H only: protocols below 28 send
   * dev/ino for every regular file (writeLocalFileList adds them there).
   */
  fileIds: Map<number, FileIdentity>;
  /** rsync io_error bits gathered while scanning (they travel in the file list's end marker). */
  ioError: number;
  userNames: Map<number, string>;
  groupNames: Map<number, string>;
  /** The walk options the list was made with (-L, --copy-unsafe-links, -x): localSource opens its files by them. */
  walk?: WalkOptions | null;
}

const SLASH = 0x2f;
const DOT = Buffer.from('.');

/** `dir/name` ('/' added unless dir is empty or ends in one). */
function join(dir: Buffer, name: Buffer): Buffer {
  if (dir.length === 0) return name;
  const slash = dir[dir.length - 1] === SLASH ? 0 : 1;
  const out = Buffer.allocUnsafe(dir.length + slash + name.length);
  dir.copy(out, 0);
  if (slash) out[dir.length] = SLASH;
  name.copy(out, dir.length + slash);
  return out;
}

/** The relative name `dir/base` (`base` at the top, where dir is null or empty). */
function nameOf(dir: Buffer | null, base: Buffer): Buffer {
  return dir && dir.length ? join(dir, base) : base;
}

/** Parse /etc/passwd-style files into id → name. */
async function idNames(path: string): Promise<Map<number, string>> {
  const names = new Map<number, string>();
  const text = await readFile(path, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields.length < 3) continue;
    const id = Number(fields[2]);
    if (Number.isInteger(id) && !names.has(id)) names.set(id, fields[0]!);
  }
  return names;
}

/** The directory a local path is in (bytes kept): '.' for a bare name, '/' at the top. */
function parentPath(path: Buffer): Buffer {
  const slash = path.lastIndexOf(SLASH);
  if (slash === -1) return DOT;
  return slash === 0 ? Buffer.from('/') : path.subarray(0, slash);
}

/** The local path prefix of a list whose names start at `rootDir` ('' for the current directory). */
function rootPrefix(rootDir: Buffer): Buffer {
  if (rootDir.length === 0 || rootDir[rootDir.length - 1] === SLASH) return Buffer.from(rootDir);
  return Buffer.concat([rootDir, Buffer.from('/')]);
}

/** What the walk needs of an lstat, from Node's stats or from the addon's packed records. */
interface EntryStat {
  mode: number;
  size: number;
  mtime: number;
  mtimeNsec: number;
  uid: number;
  gid: number;
  nlink: number;
  /** st_ino as a number (exact below 2^53), for the live mirror's state file. */
  ino: number;
  rdev(): DevNumbers;
  identity(): FileIdentity;
}

function statFromNode(st: BigIntStats): EntryStat {
  return {
    mode: Number(st.mode),
    size: Number(st.size),
    mtime: Number(st.mtimeNs / 1_000_000_000n),
    mtimeNsec: Number(st.mtimeNs % 1_000_000_000n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    nlink: Number(st.nlink),
    ino: Number(st.ino),
    rdev: () => splitDev(st.rdev),
    identity: () => ({ dev: st.dev, ino: st.ino }),
  };
}

/** A stat kept past the next record (the addon's records share one object). */
function copyStat(st: EntryStat): EntryStat {
  const { rdev, identity } = { rdev: st.rdev(), identity: st.identity() };
  return { mode: st.mode, size: st.size, mtime: st.mtime, mtimeNsec: st.mtimeNsec, uid: st.uid, gid: st.gid, nlink: st.nlink, ino: st.ino, rdev: () => rdev, identity: () => identity };
}

/** Sibling directories in rsync's order: byte order of their names with a '/' appended. */
// rsync/flist.c: f_name_cmp (two directories of one parent)
function compareDirNames(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let k = 0; k < n; k++) if (a[k] !== b[k]) return a[k]! - b[k]!;
  const nextA = a.length > n ? a[n]! : SLASH;
  const nextB = b.length > n ? b[n]! : SLASH;
  return nextA - nextB || a.length - b.length;
}

/**
 * A directory's records from the addon, or null when it cannot be read that way (the caller then
 * reads it with Node, which words the error).
 */
function readDirPacked(readDirStats: ReadDirStats, dirPath: Buffer, prefetch: DirPrefetcher | null): DirRecords | null {
  const ahead = prefetch?.take(dirPath);
  if (ahead) return new DirRecords(ahead);
  try {
    return new DirRecords(readDirStats(dirPath));
  } catch {
    return null;
  }
}

/** One stat object for every record of a directory (the walk copies what it keeps); `at` selects the record. */
function recordStat(r: DirRecords): EntryStat & { at: number } {
  const st: EntryStat & { at: number } = {
    at: 0,
    mode: 0,
    size: 0,
    mtime: 0,
    mtimeNsec: 0,
    uid: 0,
    gid: 0,
    nlink: 0,
    ino: 0,
    rdev: () => r.rdev(st.at),
    identity: () => ({ dev: r.dev(st.at), ino: r.ino(st.at) }),
  };
  return st;
}

/** Record `at` of `r` into `st`; null when its stat failed (the caller stats it again with Node). */
function loadRecord(r: DirRecords, at: number, st: EntryStat & { at: number }): EntryStat | null {
  if (r.failed(at)) return null;
  st.at = at;
  st.mode = r.mode(at);
  st.uid = r.uid(at);
  st.gid = r.gid(at);
  st.mtimeNsec = r.mtimeNsec(at);
  st.nlink = r.nlink(at);
  st.size = r.size(at);
  st.mtime = r.mtime(at);
  st.ino = r.inoNumber(at);
  return st;
}

/** The walk shared by scanSource and scanSelection: the list, io_error, warnings. */
function makeWalker(options: ScanOptions, prefix: Buffer) {
  const { transfer } = options;
  const warn = options.onWarning ?? (() => {});
  // A name not listed: told as data to a caller that words it itself, else as `text`.
  const fail = (failure: WalkFailure, text: string): void => {
    if (options.onWalkFailure) options.onWalkFailure(failure);
    else warn(text);
  };
  const list = new PackedFileList();
  list.roots.push(prefix);
  const fileIds = new Map<number, FileIdentity>();
  const state = { ioError: 0 };
  const readDirStats = nativeDirStats();
  /** The reader ahead of the walk in progress (walkTree), when the addon has one. */
  let prefetch: DirPrefetcher | null = null;
  // -L, --copy-unsafe-links, -x (walk-options.ts); `topDev.dev` is the device of the transfer's top (-x).
  const walkOptions = walkOptionsOf(transfer, options.confine);
  const following = followsLinks(walkOptions);
  const topDev: { dev: bigint | null } = { dev: null };

  const wanted = (mode: number, rel: Buffer): boolean => {
    const type = mode & S_IFMT;
    if (type === S_IFREG || type === S_IFDIR) return true;
    // rsync's sender lists a symlink whatever -l says (its target travels only with -l); the
    // receiver skips it without -l ("skipping non-regular file").
    if (type === S_IFLNK) return true;
    if (transfer.devices) return true;
    warn(`skipping non-regular file "${shownName(rel)}"`);
    return false;
  };

  /**
   * The one place deciding what a directory entry becomes: `dir/base` (dir null at the top), found
   * at `localPath` with these stats, is filtered, checked and added to the list. Its index, or -1
   * when it is left out. `name` is the whole relative name when the caller has it (else made here
   * only if a filter or a message needs it).
   */
  // rsync/flist.c: make_file
  const consider = (dir: Buffer | null, base: Buffer, parent: number, localPath: () => Buffer, st: EntryStat, filter: PathFilter | undefined): number => {
    const mode = st.mode;
    const type = mode & S_IFMT;
    const isDir = type === S_IFDIR;
    if (filter && !filter.empty && filter.isExcluded(nameOf(dir, base), isDir)) return -1;
    if (options.ignoreNonreadable && type !== S_IFLNK && !readable(localPath())) return -1;
    if (type !== S_IFREG && !isDir && !wanted(mode, nameOf(dir, base))) return -1;
    let symlink: Buffer | undefined;
    if (type === S_IFLNK) {
      try {
        symlink = readlinkSync(localPath(), { encoding: 'buffer' });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        state.ioError |= code === 'ENOENT' ? IOERR_VANISHED : IOERR_GENERAL;
        fail({ what: code === 'ENOENT' ? 'vanished' : 'readlink_stat', name: nameOf(dir, base), ...(code && { code }), message: (e as Error).message }, `readlink ${shownName(nameOf(dir, base))} failed: ${(e as Error).message}`);
        return -1;
      }
    }
    const i = list.add(
      dir,
      base,
      parent,
      mode,
      st.size,
      st.mtime,
      st.mtimeNsec,
      st.uid,
      st.gid,
    );
    list.ino[i] = st.ino;
    if (symlink) list.symlinks.set(i, symlink);
    if (type === S_IFBLK || type === S_IFCHR) list.rdevs.set(i, st.rdev());
    if (!isDir && st.nlink > 1) list.hardlinks.set(i, st.identity());
    else if (transfer.hardLinks && type === S_IFREG) fileIds.set(i, st.identity());
    return i;
  };

  /** A subdirectory not descended into: what was read ahead of it is dropped. */
  const passBy = (path: Buffer): void => void prefetch?.take(path);

  // rsync/flist.c: send_directory
  // The walk goes depth first, each directory's other entries before its subdirectories (those in
  // rsync's order: as if their names ended in '/'), each subdirectory's tree right after it: at
  // protocol >= 29 that is rsync's sorted order already, so the sort afterwards only confirms it.
  // A generator: it yields after each directory read (the entries added so far are final), so a
  // push can send them while the walk goes on; `walk` runs it to the end.
  const walkSteps = function* (dirName: Buffer, dirPath: Buffer, dirIndex: number, filter: PathFilter | undefined): Generator<void, void, undefined> {
    const top = dirName.equals(DOT);
    const subdirs: Array<[Buffer, EntryStat]> = [];
    // The local path of the name being considered, made only when asked for (one closure per
    // directory rather than one per name: consider() calls it before it returns).
    let considered: Buffer = DOT;
    const consideredPath = (): Buffer => join(dirPath, considered);
    /** One name of the directory, stat'ed: too long, a directory for later, or considered now. */
    const entry = (base: Buffer, st: EntryStat | null): void => {
      if ((top ? 0 : dirName.length + 1) + base.length >= MAXPATHLEN) {
        state.ioError |= IOERR_GENERAL;
        warn(`name too long: ${shownName(top ? base : join(dirName, base))}`);
        return;
      }
      let stat = st;
      if (!stat) {
        // Node's lstat (the fallback, or the addon's stat failed: Node words the error).
        try {
          stat = statFromNode(lstatSync(join(dirPath, base), { bigint: true }));
        } catch (e) {
          const localPath = join(dirPath, base);
          const code = (e as NodeJS.ErrnoException).code;
          const vanished = code === 'ENOENT';
          state.ioError |= vanished ? IOERR_VANISHED : IOERR_GENERAL;
          const failure: WalkFailure = { what: vanished ? 'vanished' : 'readlink_stat', name: top ? base : join(dirName, base), ...(code && { code }), message: (e as Error).message };
          fail(failure, vanished ? `file has vanished: "${shownName(localPath)}"` : `lstat ${shownName(localPath)} failed: ${(e as Error).message}`);
          return;
        }
      }
      if (following && (stat.mode & S_IFMT) === S_IFLNK) {
        const name = top ? Buffer.from(base) : join(dirName, base);
        const link = followLink(join(dirPath, base), name, walkOptions!, shownName);
        if (link.kind === 'error') {
          state.ioError |= link.ioError;
          warn(link.message);
          return;
        }
        if (link.kind === 'followed') stat = statFromNode(link.stat);
      }
      if ((stat.mode & S_IFMT) === S_IFDIR) subdirs.push([base, stat === st ? copyStat(stat) : stat]);
      else {
        considered = base;
        consider(top ? null : dirName, base, dirIndex, consideredPath, stat, filter);
      }
    };
    const packed = readDirStats ? readDirPacked(readDirStats, dirPath, prefetch) : null;
    if (packed) {
      const st = recordStat(packed);
      for (let at = 0; packed.has(at); at = packed.next(at)) entry(packed.name(at), loadRecord(packed, at, st));
    } else {
      let names: Buffer[];
      try {
        // Synchronous: one system call each instead of a thread-pool round trip per file (the scan
        // is a tight loop of tiny calls; 20,000 awaited lstats cost several times more).
        names = readdirSync(dirPath, { encoding: 'buffer' });
      } catch (e) {
        // rsync: a directory gone before it was read has vanished (exit 24), any other failure is an error.
        const code = (e as NodeJS.ErrnoException).code;
        state.ioError |= code === 'ENOENT' ? IOERR_VANISHED : IOERR_GENERAL;
        const failure: WalkFailure = { what: code === 'ENOENT' ? 'vanished' : 'opendir', name: dirName, ...(code && { code }), message: (e as Error).message, dir: true };
        fail(failure, `opendir "${shownName(dirPath)}" failed: ${(e as Error).message}`);
        return;
      }
      for (const base of names) entry(base, null);
    }
    subdirs.sort((a, b) => compareDirNames(a[0], b[0]));
    const paths = subdirs.map(([base]) => join(dirPath, base));
    // The prefetcher reads these next, in this order, while this directory's entries are sent.
    if (prefetch && paths.length) prefetch.want(paths);
    for (let s = 0; s < subdirs.length; s++) {
      const [base, st] = subdirs[s]!;
      const path = paths[s]!;
      // -x: a mount point is listed without its contents (-xx: not at all).
      const mount = mountPointAction(walkOptions, st.identity().dev, topDev.dev);
      if (mount === 'skip') {
        passBy(path);
        continue;
      }
      const i = consider(top ? null : dirName, base, dirIndex, () => path, st, filter);
      if (i < 0 || !transfer.recursive) {
        passBy(path);
        continue;
      }
      if (mount === 'no-content') {
        passBy(path);
        list.setFlag(i, PACKED_NO_CONTENT, true);
        continue;
      }
      if (following && !insideConfinement(walkOptions, path)) {
        passBy(path);
        // rsyncd's confined opendir: a followed link out of the module is listed, never read.
        state.ioError |= IOERR_GENERAL;
        fail({ what: 'opendir', name: Buffer.from(list.name(i)), code: 'ELOOP', message: CONFINED_ERROR }, `opendir "${shownName(list.name(i))}" failed: ${CONFINED_ERROR}`);
        continue;
      }
      yield;
      const name = Buffer.from(list.name(i));
      yield* walkSteps(name, path, i, filter?.enter ? filter.enter(name) : filter);
    }
  };
  /** walkSteps from one directory of the walk down, with a prefetcher reading ahead of it while it goes. */
  const walkTree = function* (dirName: Buffer, dirPath: Buffer, dirIndex: number, filter: PathFilter | undefined): Generator<void, void, undefined> {
    const explored = adoptExplorer(dirPath);
    prefetch = readDirStats && transfer.recursive ? (explored ?? nativeDirPrefetch()) : null;
    if (!prefetch) explored?.close();
    try {
      yield* walkSteps(dirName, dirPath, dirIndex, filter);
    } finally {
      prefetch?.close();
      prefetch = null;
    }
  };
  const walk = (dirName: Buffer, dirPath: Buffer, dirIndex: number, filter: PathFilter | undefined): void => {
    for (const _ of walkTree(dirName, dirPath, dirIndex, filter));
  };

  const finish = async (): Promise<ScanResult> => {
    const named = (transfer.owner || transfer.group) && !transfer.numericIds;
    return {
      list,
      fileIds,
      ioError: state.ioError,
      userNames: named && transfer.owner ? await idNames('/etc/passwd') : new Map(),
      groupNames: named && transfer.group ? await idNames('/etc/group') : new Map(),
      walk: walkOptions,
    };
  };
  return { list, state, wanted, consider, walk, walkTree, finish, warn, fail, walkOptions, topDev };
}

/** May this process read it (access(2) with R_OK, as rsync's make_file asks under `ignore nonreadable`)? */
// rsync/flist.c: make_file (the lp_ignore_nonreadable check)
function readable(path: Buffer): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Walk SOURCE the way `rsync -r SOURCE dest` lists it: with a trailing slash the contents (the
 * root entry is "."), without one the directory itself under its own name.
 */
// rsync/flist.c: send_file_list
export async function scanSource(source: string, options: ScanOptions): Promise<ScanResult> {
  const walk = await startSourceScan(source, options);
  for (const _ of walk.steps());
  return walk.finish();
}

/**
 * A scan of SOURCE begun (its root checked: a missing source fails here) and read on in steps, so
 * that a push can send the list while the tree is read: every entry below `list.count` is final
 * after each step.
 */
export interface SourceWalk {
  /** The list as it grows, in the walk's order. */
  list: PackedFileList;
  /** Read the tree on: one step per directory (entries up to `list.count` are final after each). */
  steps(): Generator<void, void, undefined>;
  /** After the steps: the result (io_error, the id names). */
  finish(): Promise<ScanResult>;
  /**
   * False when the list is only whole after the walk (-R and --files-from drop a name listed twice
   * at the end): it must then be sent after the walk, not while it goes.
   */
  streamable: boolean;
  /** The walk options in force (-L, -x, the module's confinement), for opening its files. */
  walkOptions: WalkOptions | null;
}

/** A scan already read to its end, as a SourceWalk (nothing left to step through). */
function walked(result: ScanResult): SourceWalk {
  return { list: result.list, steps: function* () {}, finish: () => Promise.resolve(result), streamable: false, walkOptions: result.walk ?? null };
}

/** scanSource's first half: check the root and list it; the walk below it runs by `steps()`. */
// rsync/flist.c: send_file_list (up to send_directory)
export async function startSourceScan(source: string, options: ScanOptions): Promise<SourceWalk> {
  const { transfer } = options;
  if (options.filesFrom !== undefined) {
    // --files-from: SOURCE is the directory the list's names (and their "/./" bases) are relative to.
    const sources = 'sources' in options.filesFrom ? options.filesFrom.sources : readFilesFrom(options.filesFrom.file, options.filesFrom.from0, transfer.relative !== false);
    return walked(await scanRelative(source.replace(/\/+$/, '') || '/', sources, options));
  }
  if (transfer.relative) {
    const item = relativeSource(source);
    return walked(await scanRelative(item.baseDir, [{ ...item, baseDir: '' }], options));
  }
  const contents = source.endsWith('/');
  const trimmed = source.replace(/\/+$/, '') || '/';
  const rootPath = Buffer.from(trimmed === '/' && contents ? '/' : trimmed);

  // -L: the source itself is followed too (rsync's link_stat with copy_links).
  const statRoot = transfer.copyLinks ? stat : lstat;
  let rootStat = await statRoot(contents ? Buffer.from(trimmed + '/') : rootPath, { bigint: true }).catch((e: Error) => {
    // rsync would send an empty list with io_error set (no deletions) and exit 23; we stop here.
    throw new RsyncError('ERR_RSYNC_SOURCE', `link_stat "${source}" failed: ${e.message}`, EXIT.PARTIAL);
  });
  let rootName: Buffer;
  // Names are relative to `rootDir`: the source itself for its contents, else its parent.
  let rootDir: Buffer;
  if (contents && rootStat.isDirectory()) {
    rootName = DOT;
    rootDir = rootPath;
  } else {
    const slash = rootPath.lastIndexOf(SLASH);
    rootName = slash === -1 ? rootPath : rootPath.subarray(slash + 1);
    rootDir = slash === -1 ? Buffer.alloc(0) : rootPath.subarray(0, slash + 1);
    if (rootName.equals(DOT)) rootDir = rootPath;
  }
  const walker = makeWalker(options, rootPrefix(rootDir));
  const { list, finish } = walker;
  const nothing = function* (): Generator<void, void, undefined> {};
  if (rootStat.isSymbolicLink() && walker.walkOptions) {
    // --copy-unsafe-links: a source that is a link pointing out of the transfer is its referent.
    const link = followLink(rootPath, rootName, walker.walkOptions, shownName);
    if (link.kind === 'error') throw new RsyncError('ERR_RSYNC_SOURCE', link.message, EXIT.PARTIAL);
    if (link.kind === 'followed') rootStat = link.stat;
  }
  walker.topDev.dev = rootStat.dev;

  if (!rootName.equals(DOT) && options.filter?.isExcluded(rootName, rootStat.isDirectory())) return { list, steps: nothing, finish, streamable: true, walkOptions: walker.walkOptions };
  if (options.ignoreNonreadable && !rootStat.isSymbolicLink() && !readable(rootPath)) return { list, steps: nothing, finish, streamable: true, walkOptions: walker.walkOptions };
  const root = walker.consider(null, rootName, -1, () => rootPath, statFromNode(rootStat), undefined);
  if (root >= 0 && rootStat.isDirectory() && (transfer.recursive || contents)) {
    const rootFilter = !contents && options.filter?.enter ? options.filter.enter(rootName) : options.filter;
    const dirPath = contents ? Buffer.from(trimmed === '/' ? '/' : trimmed) : rootPath;
    return { list, steps: () => walker.walkTree(rootName, dirPath, root, rootFilter), finish, streamable: true, walkOptions: walker.walkOptions };
  }
  return { list, steps: nothing, finish, streamable: true, walkOptions: walker.walkOptions };
}

/**
 * -R: each source under its own path below `baseDir` (its `/./` split, or the current
 * directory), after the directories of that path as implied directories (stat'ed, links followed,
 * never filtered: without contents, flagged implied at protocol 30+). With --no-implied-dirs they
 * are still listed at 30+ (the receiver makes them bare) and left out below 30
 * (writeLocalFileList drops them). A name listed twice is sent once.
 */
// rsync/flist.c: send_file_list (relative_paths) and send_implied_dirs
export async function scanRelative(baseDir: string, sources: readonly RelativeSource[], options: ScanOptions): Promise<ScanResult> {
  const { transfer } = options;
  const top = Buffer.from(baseDir);
  const walker = makeWalker(options, rootPrefix(top));
  const list = walker.list;
  // A source's own base (a --files-from name's "/./" split) lies below `baseDir`: its entries get
  // a root prefix of their own (list.roots), one per distinct base.
  const roots = new Map<string, number>([['', 0]]);
  let base: Buffer = top;
  const localOf = (name: Buffer): Buffer => (name.equals(DOT) ? (base.length ? base : DOT) : base.length ? join(base, name) : name);
  const listed = new Map<string, number>(); // implied dirs already listed (base NUL latin1 name) -> index
  const parentOf = (name: Buffer): [Buffer | null, Buffer] => {
    const slash = name.lastIndexOf(SLASH);
    return slash < 0 ? [null, name] : [name.subarray(0, slash), name.subarray(slash + 1)];
  };
  for (const source of sources) {
    let rootIndex = roots.get(source.baseDir);
    if (rootIndex === undefined) {
      rootIndex = list.roots.length;
      roots.set(source.baseDir, rootIndex);
      list.roots.push(rootPrefix(top.length ? join(top, Buffer.from(source.baseDir, 'latin1')) : Buffer.from(source.baseDir, 'latin1')));
    }
    base = source.baseDir ? (top.length ? join(top, Buffer.from(source.baseDir, 'latin1')) : Buffer.from(source.baseDir, 'latin1')) : top;
    const firstEntry = list.count;
    try {
      scanOneRelative(source);
    } finally {
      if (rootIndex) for (let k = firstEntry; k < list.count; k++) list.root[k] = rootIndex;
    }
  }
  // One -R source (or --files-from name) below `base`: its implied dirs, itself, its tree.
  function scanOneRelative(source: RelativeSource): void {
    const { name } = source;
    let parent = -1;
    let filter = options.filter;
    // A leading "./" ("./a/b", no "/./" split) sends "." first, as an implied directory.
    const parts = name.equals(DOT) ? [] : name.toString('latin1').split('/');
    const implied: Buffer[] = source.leadingDot && parts.length ? [DOT] : [];
    for (let k = 1; k < parts.length; k++) implied.push(Buffer.from(parts.slice(0, k).join('/'), 'latin1'));
    // lsyncd serve: a name whose directories lead out of the module through a symlink is not
    // looked at (rsyncd's confined stat fails with ELOOP there).
    if (options.confine && !insideRoot(options.confine, parentPath(localOf(name)))) {
      walker.state.ioError |= IOERR_GENERAL;
      walker.fail({ what: 'link_stat', name, code: 'ELOOP', message: CONFINED_ERROR }, `link_stat "${shownName(name)}" failed: ${CONFINED_ERROR}`);
      return;
    }
    let gone = false;
    for (const dir of implied) {
      const key = `${source.baseDir}\0${dir.toString('latin1')}`;
      const known = listed.get(key);
      if (known !== undefined) {
        parent = known;
      } else {
        let st: BigIntStats;
        try {
          // rsync's send_implied_dirs sets copy_links: the path's directories are followed.
          st = statSync(localOf(dir), { bigint: true });
        } catch (e) {
          walker.state.ioError |= IOERR_GENERAL;
          const code = (e as NodeJS.ErrnoException).code;
          walker.fail({ what: 'link_stat', name: dir, ...(code && { code }), message: (e as Error).message }, `link_stat "${shownName(localOf(dir))}" failed: ${(e as Error).message}`);
          gone = true;
          break;
        }
        const [dirOf, baseOf] = parentOf(dir);
        const i = walker.consider(dirOf, baseOf, parent, () => localOf(dir), statFromNode(st), undefined);
        if (i < 0) {
          gone = true;
          break;
        }
        list.setFlag(i, PACKED_TOP_DIR, true);
        list.setFlag(i, PACKED_NO_CONTENT, true);
        listed.set(key, i);
        parent = i;
      }
      if (filter?.enter && !dir.equals(DOT)) filter = filter.enter(dir);
    }
    if (gone) return;
    const localPath = localOf(name);
    let st: BigIntStats;
    try {
      st = transfer.copyLinks || source.dirLike ? statSync(localPath, { bigint: true }) : lstatSync(localPath, { bigint: true });
    } catch (e) {
      // rsync: a listed name that is missing is a transfer error (exit 23), not a vanished file.
      walker.state.ioError |= IOERR_GENERAL;
      const code = (e as NodeJS.ErrnoException).code;
      walker.fail({ what: 'link_stat', name, ...(code && { code }), message: (e as Error).message }, `link_stat "${shownName(localPath)}" failed: ${(e as Error).message}`);
      return;
    }
    if (!name.equals(DOT) && options.filter?.isExcluded(name, st.isDirectory())) return;
    if (st.isSymbolicLink() && walker.walkOptions) {
      const link = followLink(localPath, name, walker.walkOptions, shownName);
      if (link.kind === 'error') {
        walker.state.ioError |= link.ioError;
        walker.warn(link.message);
        return;
      }
      if (link.kind === 'followed') st = link.stat;
    }
    walker.topDev.dev = st.dev;
    const [dirOf, baseOf] = parentOf(name);
    const i = walker.consider(dirOf, baseOf, parent, () => localPath, statFromNode(st), undefined);
    if (i < 0 || !st.isDirectory()) return;
    list.setFlag(i, PACKED_TOP_DIR, true);
    list.setFlag(i, PACKED_NO_CONTENT, false);
    if (!transfer.recursive) return;
    if (followsLinks(walker.walkOptions) && !insideConfinement(walker.walkOptions, localPath)) {
      // rsyncd's confined opendir: a followed link out of the module is listed, never read.
      walker.state.ioError |= IOERR_GENERAL;
      walker.fail({ what: 'opendir', name, code: 'ELOOP', message: CONFINED_ERROR }, `opendir "${shownName(name)}" failed: ${CONFINED_ERROR}`);
      return;
    }
    walker.walk(name, localPath, i, filter?.enter && !name.equals(DOT) ? filter.enter(name) : filter);
  }
  // A name listed twice (two sources, or an implied dir that a source's walk lists again): the
  // first is kept; an implied dir that turns out to be listed with its contents becomes a content dir.
  const seen = new Map<string, number>();
  for (let i = 0; i < list.count; i++) {
    const key = list.name(i).toString('latin1');
    const first = seen.get(key);
    if (first === undefined) {
      seen.set(key, i);
      continue;
    }
    if (list.flags[first]! & PACKED_NO_CONTENT && !(list.flags[i]! & PACKED_NO_CONTENT)) {
      list.setFlag(first, PACKED_NO_CONTENT, false);
      list.setFlag(first, PACKED_TOP_DIR, (list.flags[i]! & PACKED_TOP_DIR) !== 0);
    }
    list.setFlag(i, PACKED_DROPPED, true);
  }
  return walker.finish();
}

/** One path of a selection (relative to the root, raw bytes; empty = the root itself). */
export interface SelectionItem {
  path: Buffer;
  /** A directory's whole subtree is compared (new, replaced or rescanned); else the entry alone. */
  recurse: boolean;
}

export interface SelectionResult extends ScanResult {
  /** Entries for paths missing here (mode 0: --delete-missing-args deletes them on the daemon). */
  missing: number;
}

/**
 * The file list of a live-mirror batch: just the selected paths under `root`, as
 * `rsync -R --delete-missing-args` lists them from inside `root`. Each selected path comes with
 * its parent directories (their attributes, not their contents: no content-dir flag), a
 * directory to `recurse` comes with its whole subtree as content directories (so the daemon
 * deletes what is extra inside), and a path missing here becomes a mode-0 entry, the daemon's
 * signal to delete it (at its topmost missing ancestor; only with `deleteMissing`). Filters apply
 * to names relative to `root`. Every directory's contents that are not listed are left alone.
 */
// rsync/flist.c: send_file_list (with relative_paths, implied dirs and missing_args == 2)
export async function scanSelection(
  root: string,
  items: readonly SelectionItem[],
  options: ScanOptions & { deleteMissing: boolean },
): Promise<SelectionResult> {
  const rootPath = Buffer.from(root.replace(/\/+$/, '') || '/');
  const walker = makeWalker(options, rootPrefix(rootPath));
  const list = walker.list;
  const listed = new Map<string, number>(); // name (latin1) -> index
  let missing = 0;
  const keyOf = (name: Buffer) => name.toString('latin1');
  const localOf = (name: Buffer) => (name.equals(DOT) ? rootPath : join(rootPath, name));
  const statOf = (name: Buffer): BigIntStats | null => {
    try {
      return lstatSync(name.length === 0 ? rootPath : localOf(name), { bigint: true });
    } catch {
      return null;
    }
  };
  const isDirAt = (i: number) => (list.mode[i]! & S_IFMT) === S_IFDIR;
  /** List `name` (once), without its contents unless `content`. */
  const listOne = (name: Buffer, st: BigIntStats, content: boolean): boolean => {
    const key = keyOf(name);
    const known = listed.get(key);
    if (known !== undefined) {
      if (content && list.flags[known]! & PACKED_NO_CONTENT) list.setFlag(known, PACKED_NO_CONTENT, false);
      return true;
    }
    const slash = name.lastIndexOf(SLASH);
    const i = slash < 0
      ? walker.consider(null, name, -1, () => localOf(name), statFromNode(st), undefined)
      : walker.consider(name.subarray(0, slash), name.subarray(slash + 1), -1, () => localOf(name), statFromNode(st), undefined);
    if (i < 0) return false;
    if (isDirAt(i)) {
      // Not flagged as implied (XMIT_TOP_DIR without content): a daemon not in -R mode skips
      // those entirely, and their attributes (a parent's mtime after a create) must be set.
      list.setFlag(i, PACKED_NO_CONTENT, !content);
      list.setFlag(i, PACKED_TOP_DIR, content);
    }
    listed.set(key, i);
    return true;
  };
  /** The implied parents of `name` ('.' first), listed without contents. False if one is gone. */
  // A parent already listed (by an earlier item of the batch) is not stat'ed again.
  const listedDir = (name: Buffer): boolean | undefined => {
    const known = listed.get(keyOf(name));
    return known === undefined ? undefined : isDirAt(known);
  };
  const listParents = (name: Buffer): boolean => {
    const rootKnown = listedDir(DOT);
    if (rootKnown === false) return false;
    if (rootKnown === undefined) {
      const rootStat = statOf(Buffer.alloc(0));
      if (!rootStat?.isDirectory()) return false;
      listOne(DOT, rootStat, false);
    }
    for (let i = name.indexOf(SLASH); i !== -1; i = name.indexOf(SLASH, i + 1)) {
      const dir = name.subarray(0, i);
      const known = listedDir(dir);
      if (known === false) return false;
      if (known) continue;
      const st = statOf(dir);
      if (!st?.isDirectory()) return false;
      listOne(Buffer.from(dir), st, false);
    }
    return true;
  };
  const recursed: Array<[Buffer, Buffer, number]> = [];
  for (const item of items) {
    const name = item.path.length === 0 ? DOT : item.path;
    if (name.length >= MAXPATHLEN) {
      walker.state.ioError |= IOERR_GENERAL;
      walker.warn(`name too long: ${shownName(name)}`);
      continue;
    }
    const st = statOf(item.path);
    if (!st) {
      // Gone here: delete it on the daemon, at its topmost missing ancestor (its parents are
      // listed either way: their mtimes changed).
      let top = name;
      for (let i = name.indexOf(SLASH); i !== -1; i = name.indexOf(SLASH, i + 1)) {
        const prefix = name.subarray(0, i);
        if (listedDir(prefix) !== true && !statOf(prefix)) {
          top = Buffer.from(prefix);
          break;
        }
      }
      if (top.equals(DOT) || listed.has(keyOf(top)) || !listParents(top)) continue;
      if (!options.deleteMissing || options.filter?.isExcluded(top, false)) continue;
      const slash = top.lastIndexOf(SLASH);
      const i = slash < 0 ? list.add(null, top, -1, 0, 0, 0, 0, 0, 0) : list.add(top.subarray(0, slash), top.subarray(slash + 1), -1, 0, 0, 0, 0, 0, 0);
      listed.set(keyOf(top), i);
      missing++;
      continue;
    }
    if (!name.equals(DOT) && options.filter?.isExcluded(name, st.isDirectory())) continue;
    if (!listParents(name)) continue; // a parent vanished meanwhile: its own deletion covers this
    const content = item.recurse && st.isDirectory();
    if (listOne(name, st, content) && content) recursed.push([name, localOf(name), listed.get(keyOf(name))!]);
  }
  // Subtrees last, outermost first, skipping those inside another (their entries are listed once).
  recursed.sort((a, b) => a[0].length - b[0].length);
  const walked: Buffer[] = [];
  for (const [name, path, index] of recursed) {
    if (walked.some((w) => w.equals(DOT) || (name.length > w.length && name[w.length] === SLASH && name.subarray(0, w.length).equals(w)))) continue;
    walked.push(name);
    walker.walk(name, path, index, options.filter);
  }
  // A walk lists entries already listed as parents or items: keep the first of each name.
  // A parent listed as implied that turns out to be inside a walked subtree is a content dir.
  const seen = new Map<string, number>();
  for (let i = 0; i < list.count; i++) {
    const key = keyOf(list.name(i));
    const first = seen.get(key);
    if (first === undefined) {
      seen.set(key, i);
      continue;
    }
    if (list.flags[first]! & PACKED_NO_CONTENT && !(list.flags[i]! & PACKED_NO_CONTENT) && isDirAt(first)) {
      list.setFlag(first, PACKED_NO_CONTENT, false);
      list.setFlag(first, PACKED_TOP_DIR, false);
    }
    list.setFlag(i, PACKED_DROPPED, true);
  }
  return { ...(await walker.finish()), missing };
}

/** Keep only the id names the list uses (rsync sends names of the ids it saw). */
export function namesFor(ids: Iterable<number>, names: Map<number, string>): IdNames {
  const used = new Map<number, string>();
  for (const id of ids) {
    const name = names.get(id);
    if (name !== undefined) used.set(id, name);
  }
  return used;
}

/** Files up to this size are read in one synchronous gulp (no thread-pool round trips). */
const SMALL_FILE = 1 << 20;

/**
 * File contents for the sender, opened without following a symlink raced into place. Small files
 * are read into one buffer reused for the next file (the sender is done with a file's chunks when
 * it opens the next): 20,000 files no longer mean 20,000 allocations for the collector.
 */
export function localSource(walk?: WalkOptions | null): SenderSource {
  let scratch = Buffer.allocUnsafe(64 * 1024);
  // A big file streams through the same two buffers, one read into while the other is sent.
  const streaming: ReadBuffers = { pair: null };
  // -L/--copy-unsafe-links list some links as files: those are opened through the link (and,
  // under lsyncd serve, only when the file opened lies inside the module).
  const following = followsLinks(walk ?? null);
  const openFlags = following ? constants.O_RDONLY : constants.O_RDONLY | constants.O_NOFOLLOW;
  // The addon reads a small file in one call; not when a followed link must be checked against
  // the confinement (that needs the descriptor). Any failure is redone the Node way below.
  const readSmall = following && walk?.confine ? null : nativeSmallFileRead();
  return {
    // Synchronous throughout (the sender takes the answer without an await).
    open(entry) {
      const path = (entry as LocalEntry).localPath;
      const listed = (entry as Partial<LocalEntry>).size;
      if (readSmall && listed !== undefined && listed <= SMALL_FILE) {
        if (scratch.length < listed + 1) scratch = Buffer.allocUnsafe(Math.max(listed + 1, scratch.length * 2));
        const buf = scratch.subarray(0, listed + 1);
        const got = readSmall(path, following, buf);
        // Whole (one byte of room left over), or else: an error or a file that grew, done below.
        if (got >= 0 && got <= listed) return Object.assign([buf.subarray(0, got)], { size: got });
      }
      const failed = (e: unknown) => {
        const code = (e as NodeJS.ErrnoException).code;
        // ELOOP: a symlink now (O_NOFOLLOW); EISDIR: a directory now (read without an fstat).
        const vanished = code === 'ENOENT' || code === 'ELOOP' || code === 'EISDIR';
        return {
          error: vanished ? `file has vanished: "${shownName(path)}"` : `send_files failed to open "${shownName(path)}": ${(e as Error).message}`,
          vanished,
          ...(code && { code }),
        };
      };
      let fd: number;
      try {
        fd = openSync(path, openFlags);
      } catch (e) {
        return failed(e);
      }
      if (following && walk?.confine && !insideConfinement(walk, `/proc/self/fd/${fd}`)) {
        closeSync(fd);
        return { error: `send_files failed to open "${shownName(path)}": ${CONFINED_ERROR}`, vanished: false };
      }
      try {
        // A small file the scan saw is read without an fstat first (a system call and a Stats with
        // four Dates per file): the read itself tells. A directory raced into place fails with
        // EISDIR; more bytes than the scan saw (it grew, or it is no longer a regular file) are
        // checked with fstat before anything is streamed.
        let size: number;
        if (listed !== undefined && listed <= SMALL_FILE) {
          size = listed;
        } else {
          const st = fstatSync(fd);
          if (!st.isFile()) throw notRegular();
          size = st.size;
        }
        // The length now goes with the chunks (rsync's sender fstats: --append skips a shrunk file).
        if (size > SMALL_FILE) return Object.assign(readChunks(fd, [], streaming), { size });
        // One read of the whole file (and one more byte, to notice growth).
        if (scratch.length < size + 1) scratch = Buffer.allocUnsafe(Math.max(size + 1, scratch.length * 2));
        const buf = scratch.subarray(0, size + 1);
        let got = 0;
        for (let n = -1; n !== 0 && got < buf.length; got += n) n = readSync(fd, buf, got, buf.length - got, null);
        if (got <= size) {
          closeSync(fd);
          return Object.assign([buf.subarray(0, got)], { size: got });
        }
        // It grew meanwhile: stream the rest from the same descriptor (if it still is a file).
        if (!fstatSync(fd).isFile()) throw notRegular();
        return readChunks(fd, [buf], streaming);
      } catch (e) {
        closeSync(fd);
        return failed(e);
      }
    },
  };
}

/** The error of a path that is no longer a regular file (reported as vanished, as before). */
function notRegular(): Error {
  return Object.assign(new Error('no longer a regular file'), { code: 'ENOENT' });
}

const readFd = promisify(read);

/** The two read buffers of a source's streamed files (made at its first big file). */
interface ReadBuffers {
  pair: [Buffer, Buffer] | null;
}

/** Bytes per read of a big file. */
const READ_CHUNK = 1 << 20;

/**
 * `first` (already read), then the rest of `fd` in 1 MiB chunks. `fd` is closed when the reading
 * ends, or by close() (also when the reading never started: the sender failed before it).
 */
function readChunks(fd: number, first: Buffer[], buffers: ReadBuffers): ChunkSource & { close(): void } {
  let open = true;
  const reading: { now: Promise<unknown> | null } = { now: null };
  const close = () => {
    if (!open) return;
    open = false;
    // Closed with a read still under way (the sender gave up mid-file): that read may yet land
    // in its buffer, so the next file gets buffers of its own; and the descriptor is closed only
    // once the read is done (closed now, its number could be the next file's before the read runs).
    if (reading.now) {
      buffers.pair = null;
      const closeNow = () => closeSync(fd);
      reading.now.then(closeNow, closeNow);
      return;
    }
    closeSync(fd);
  };
  const chunks = streamChunks(fd, first, buffers, reading, close);
  return { [Symbol.asyncIterator]: () => chunks, close };
}

/**
 * Read ahead: the next read is under way while the caller works on the current chunk, so disk (or
 * page-cache) time overlaps the block search instead of adding to it. Two buffers take turns: a
 * chunk is the caller's until it asks for the next one (the sender copies what it keeps), so 512 MiB
 * sent touch 2 MiB of memory instead of 512 fresh buffers for the kernel to fault in and the
 * collector to free.
 */
async function* streamChunks(fd: number, first: Buffer[], buffers: ReadBuffers, reading: { now: Promise<unknown> | null }, close: () => void): AsyncGenerator<Uint8Array> {
  const pair = (buffers.pair ??= [Buffer.allocUnsafe(READ_CHUNK), Buffer.allocUnsafe(READ_CHUNK)]);
  let turn = 0;
  const next = () => {
    const buf = pair[turn]!;
    turn ^= 1;
    const read = readFd(fd, buf, 0, READ_CHUNK, null).then(({ bytesRead }) => buf.subarray(0, bytesRead));
    reading.now = read;
    const settled = () => {
      if (reading.now === read) reading.now = null;
    };
    read.then(settled, settled);
    return read;
  };
  let pending: Promise<Buffer> | null = next();
  try {
    yield* first;
    while (pending) {
      const chunk: Buffer = await pending;
      if (chunk.length === 0) return;
      // The caller has asked for this chunk, so it is done with the one before: that buffer is
      // read into while the caller works on this one.
      pending = next();
      yield chunk;
    }
  } finally {
    if (pending) await pending.catch(() => undefined);
    close();
  }
}
