// The destination of a pull, as the generator and receiver roles see it (protocol/generator.ts
// LocalTree): a confined tree. Every name from the daemon is re-checked before any file operation,
// the parent directories are walked with lstat (a symlink or a non-directory among them is
// refused), and nothing is followed, neither a parent nor the final component; nothing is written
// outside the root. The pull roots it at DEST; the daemon will root it at the module it receives
// into. Files are replaced atomically (a temp file beside the target, then a rename).
// Counterpart: rsync receiver.c open_tmpfile / finish_transfer, rsync.c set_file_attrs,
// syscall.c do_open_nofollow / secure_relative_open / do_mknod.
// Synchronous calls on purpose: local metadata operations are fast, and a round trip through the
// thread pool per call made a pull of many small files wait more than it worked (as scan.ts does).
import { setTimesFd, setTimesPath, exactTimes, fileCommitter } from '../addon.js';
import { shownName } from '../../protocol/terminal-text.js';
import { sysReason } from './strerror.js';
import { CommitQueue, COMMIT_CHOWN, COMMIT_SET_TIMES, writeFailed, attrFailedText } from './whole-commits.js';
import {
  constants,
  lstatSync,
  realpathSync,
  statSync,
  mkdirSync,
  openSync,
  closeSync,
  readSync,
  writeSync,
  fstatSync,
  ftruncateSync,
  copyFileSync,
  fchmodSync,
  fchownSync,
  readdirSync,
  readlinkSync,
  rmdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  linkSync,
  lchownSync,
  chmodSync,
  unlinkSync,
  type BigIntStats,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { isAbsolute, relative as relativePath, resolve as resolvePath } from 'node:path';
import type { FileEntry } from '../../protocol/flist.js';
import { ACCESSPERMS, CHMOD_BITS, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, splitDev } from '../../protocol/modes.js';
import { MAXPATHLEN } from '../../protocol/constants.js';
import type { LocalTree, LocalStat, BasisFile, TempFile, InplaceFile } from '../../protocol/local-tree.js';
import { EXIT, FileAttrError, ProtocolError, RsyncError } from '../../protocol/errors.js';
import { DirSnapshot } from './dir-snapshot.js';
import { ListDirsAhead, nativeDirPrefetch, nativeDirStats, type ReadDirStats } from './dir-records.js';
import { appendRange } from './copy-range.js';
import { SparseWriter } from './sparse-write.js';

/** A name from the daemon that would leave DEST, or go through a symlink or a non-directory. */
export class UnsafePathError extends ProtocolError {
  constructor(message: string) {
    super(message, { code: 'ERR_RSYNC_UNSAFE_PATH' });
  }
}

/** -T names a temp dir that is missing or not a directory: rsync's words and exit code, before any transfer. */
export class TempDirError extends RsyncError {
  constructor(message: string, exitCode: number) {
    super('ERR_RSYNC_TEMP_DIR', message, exitCode);
  }
}

/**
 * -T: the temp dir must be a directory (followed, as rsync's do_stat follows it), relative to the
 * destination `root`; `shown` is how the message names it (the option as given, or sanitized).
 */
// rsync/main.c: do_recv (the tmpdir check)
export function checkTempDir(root: string, dir: string, shown = dir): void {
  let st;
  try {
    st = statSync(resolvePath(root, dir));
  } catch (e) {
    if (isErrno(e, 'ENOENT')) throw new TempDirError(`The temp-dir does not exist: ${shown}`, EXIT.SYNTAX);
    throw new TempDirError(`Failed to stat temp-dir ${shown}: ${(e as Error).message}`, EXIT.FILEIO);
  }
  if (!st.isDirectory()) throw new TempDirError(`The temp-dir is not a directory: ${shown}`, EXIT.SYNTAX);
}

/** Where the basis directories are (--compare-dest, --copy-dest, --link-dest). */
export interface DestTreeOptions {
  /**
   * How a name relative to the destination is shown in a message (rsync's full_fname): by
   * default its absolute path, quoted; a daemon shows it inside the module, "(in MODULE)".
   */
  fullName?: (name: Buffer) => string;
  /**
   * The basis directories, index 0 first (rsync's basis_dir[]). A relative one is taken relative
   * to the destination, as rsync does; a missing one simply has nothing in it.
   */
  basisDirs?: readonly string[];
  /**
   * A daemon's confinement: every basis directory must lie inside this directory (the module),
   * lexically (an UnsafePathError at construction) and on disk (no symlink on the way from it,
   * checked again before each use). Without it the basis directories are the operator's own paths.
   */
  confineBasisTo?: string;
  /**
   * A single non-directory received under another name (rsync's local_name, from get_local_name):
   * the list name `from` is read and written as `to`, one component in the root.
   */
  rename?: { from: Buffer; to: Buffer };
  /**
   * --backup: what a transfer replaces or a deletion removes is kept, renamed to NAME+suffix
   * beside it, or (with `dir`, relative to the destination) to DIR/NAME+suffix. Confined like the
   * basis directories: with `confineBasisTo` the backup dir must lie inside it.
   */
  backup?: { dir?: string; suffix: string };
  /** -S/--sparse: files are written with their runs of zeros left as holes (sparse-write.ts). */
  sparse?: boolean;
  /**
   * --partial-dir: where a partly transferred file is kept and found again (rsync's
   * partial_dir_fname). `dir` relative (no `..`): beside the file, DIR/NAME, confined like any
   * name; absolute: DIR/NAME for every file (the operator's own path, a pull only). `allowed`
   * (a daemon's rules) may refuse the partial dir or the file in it: then there is none.
   */
  partialDir?: { dir: string; allowed?: (name: Buffer, isDir: boolean) => boolean };
  /**
   * -K: a symlink here that leads to a directory inside the destination counts as that directory
   * (written through, listed, its own mtime set); one leading out of the destination is never
   * gone through: a name below it fails with ELOOP, as rsync's confined resolution refuses it.
   */
  keepDirlinks?: boolean;
  /**
   * -T/--temp-dir: temp files are made in this directory (relative to the destination, as rsync's
   * receiver takes it from its working directory) rather than beside their targets, then renamed
   * over them, or copied beside them first when it is on another file system (rsync's
   * robust_rename). With `confineBasisTo` it must lie inside that directory, reached through real
   * directories only. It must exist (checkTempDir, before the transfer).
   */
  tempDir?: string;
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
  /**
   * A daemon's `incoming chmod`, applied to every final mode but a symlink's, with or without -p
   * (rsync's set_file_attrs applies daemon_chmod_modes there).
   */
  tweakMode?: (mode: number) => number;
  /** -O (implied by -b without --backup-dir): directories keep the mtime they get, -t or not. */
  omitDirTimes?: boolean;
  /** -J: symlinks keep the mtime they get, -t or not. */
  omitLinkTimes?: boolean;
  /** -E without -p: a regular file's x bits follow the entry's (rsync's preserve_executability). */
  executability?: boolean;
}

const SLASH = 0x2f;
const DOT = Buffer.from('.');
const DOT_DOT_SLASH = Buffer.from('../');
/** Bytes gathered before a write to a temp file. */
const WRITE_BUFFER = 256 * 1024;
/** -T across file systems: the piece a finished file is copied in. */
const COPY_CHUNK = 1024 * 1024;

/**
 * The list name of a file's copy in a relative partial dir: `dir` (the file's directory, '' or
 * ending in '/'), `partialDir`, `base`, with the partial dir's leading `..` taken against `dir`
 * (rsync joins them and lets the system resolve them); null when that climbs above DEST.
 */
// rsync/util1.c: partial_dir_fname
function partialListName(dir: Buffer, partialDir: Buffer, base: Buffer): Buffer | null {
  let rest = partialDir;
  let end = dir.length; // dir[0, end) is what is left of the file's directory, '/' ended or empty
  while (rest.subarray(0, 3).equals(DOT_DOT_SLASH)) {
    if (end === 0) return null;
    end = dir.lastIndexOf(SLASH, end - 2) + 1;
    rest = rest.subarray(3);
  }
  return Buffer.concat([dir.subarray(0, end), rest, Buffer.from('/'), base]);
}

/** The same checks as the file-list reader, repeated here before every file operation. */
function checkName(name: Buffer): void {
  if (name.length === 1 && name[0] === 0x2e) return;
  if (name.length === 0 || name.length >= MAXPATHLEN) throw new UnsafePathError(`unsafe name from the daemon (length ${name.length})`);
  if (name.includes(0)) throw new UnsafePathError(`unsafe name from the daemon (NUL byte): ${quotedName(name)}`);
  if (name[0] === SLASH) throw new UnsafePathError(`unsafe name from the daemon (absolute): ${quotedName(name)}`);
  // Each component: not empty, '.' or '..' (read in place: this runs for every name of a walk).
  let start = 0;
  for (let i = 0; i <= name.length; i++) {
    if (i < name.length && name[i] !== SLASH) continue;
    const len = i - start;
    if (len === 0 || (len === 1 && name[start] === 0x2e) || (len === 2 && name[start] === 0x2e && name[start + 1] === 0x2e)) {
      throw new UnsafePathError(`unsafe name from the daemon (empty, '.' or '..' component): ${quotedName(name)}`);
    }
    start = i + 1;
  }
}

/** Whether `name` starts with the bytes of `prefix` (compared in place, no native call). */
function startsWith(name: Buffer, prefix: Buffer): boolean {
  if (prefix.length > name.length) return false;
  for (let i = 0; i < prefix.length; i++) if (name[i] !== prefix[i]) return false;
  return true;
}

/** Whether directory name `dir` lies below directory name `parent` ('' is DEST itself). */
function isBelow(dir: Buffer, parent: Buffer): boolean {
  if (parent.length === 0) return dir.length > 0;
  return dir.length > parent.length && dir[parent.length] === SLASH && startsWith(dir, parent);
}

/** A refused name in an error message (latin1, quoted, cut). */
const quotedName = (name: Buffer): string => JSON.stringify(name.toString('latin1')).slice(0, 120);

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

/**
 * rsync's dest_mode for a file written without -p: the permissions here when it exists (with -E,
 * its x bits following the entry's), else the entry's permissions less the umask.
 */
// rsync/rsync.c: dest_mode
function destMode(entryMode: number, existing: LocalStat | null, umask: number, executability = false): number {
  if (existing && (existing.mode & S_IFMT) === (entryMode & S_IFMT)) {
    return executability && (entryMode & S_IFMT) === S_IFREG ? executablePerms(entryMode, existing.mode) : existing.mode & CHMOD_BITS;
  }
  return entryMode & ACCESSPERMS & ~umask;
}

/**
 * -E: the permissions here with the x bits turned off when the entry has none, or, when the entry
 * has one and nobody may execute this file yet, on for whoever may read it.
 */
// rsync/rsync.c: dest_mode (preserve_executability)
function executablePerms(entryMode: number, localMode: number): number {
  const perms = localMode & CHMOD_BITS;
  if (!(entryMode & 0o111)) return perms & ~0o111;
  return localMode & 0o111 ? perms : perms | ((perms & 0o444) >> 2);
}

/**
 * DEST as the pull roles see it. `root` must exist and be a directory. Paths are built from raw
 * name bytes; each operation first walks the parent components with lstat and refuses a symlink
 * or a non-directory among them, then acts on the final component without following it.
 */
// rsync/receiver.c + syscall.c: the receiver's confined opens (secure_relative_open, do_open_nofollow) [pull-safe]
export class DestTree implements LocalTree {
  private readonly root: Buffer;
  /**
   * Parent directories already walked and found to be real directories (latin1 keys). Only our
   * own operations change DEST's directories during a pull, so the set is dropped whenever we
   * remove or replace something, and a walk is not repeated for every file of a directory.
   */
  private readonly checkedDirs = new Set<string>();
  /**
   * The generator's walk (lstatListed): the directory of the last name looked up, how many names
   * in a row were in it, and its snapshot once read (at the second name: a directory of one list
   * entry costs one lstat, as before).
   */
  private walkDir: Buffer | null = null;
  private walkHits = 0;
  private walkSnapshot: DirSnapshot | null = null;
  /** The walk directory was read (or its read failed) during this visit. */
  private walkRead = false;
  /**
   * The last directory `list` read for --delete (the generator lists a directory as it enters
   * it, just before it looks up that directory's names): the walk uses this read when it gets
   * there, rather than reading the directory a second time. What deletion then removed is not in
   * the list, so never looked up.
   */
  private listedRead: { dir: Buffer; snapshot: DirSnapshot } | null = null;
  /** The list's directories read ahead of the walk on another thread (walkAhead), when the addon has it. */
  private ahead: ListDirsAhead | null = null;
  /**
   * The snapshots of the walk directory's ancestors, outermost first: a directory's entries that
   * follow its subdirectories' contents in the list (the next subdirectory) are found in the read
   * made before, not lstat'd one by one. Only what the generator did under a subdirectory came in
   * between, and that changes none of the parent's entries, unless a symlinked directory (-K) or a
   * temp, backup or partial dir elsewhere in DEST leads there: then this stays empty.
   */
  private readonly walkAncestors: { dir: Buffer; snapshot: DirSnapshot }[] = [];
  /** The addon's one-call directory read (null without the addon, or with LSYNCD_JS_SCAN set). */
  private readonly readDirStats: ReadDirStats | null;
  /** Write buffers of committed or discarded temp files, for the next ones. */
  private readonly spareBuffers: Buffer[] = [];
  /** Files received whole, put in place on the threadpool (null: without the addon, or with -S, -b or -T). */
  private readonly commits: CommitQueue | null;
  /** DestTreeOptions.fullName, or the default. */
  private readonly fullName: (name: Buffer) => string;

  /** The basis directories' absolute paths (index = rsync's basis dir index). */
  private readonly basisRoots: Buffer[];
  /** With a confinement: the components from the confining directory down to each basis root. */
  private readonly basisChains: Buffer[][];
  /** The one list name received under another name (see DestTreeOptions.rename). */
  private readonly rename: { from: Buffer; to: Buffer } | null;
  /** --backup: the suffix, and the backup dir's components from the confining directory (or /) down. */
  private readonly backup: { suffix: Buffer; dirChain: Buffer[] | null } | null;
  /** -S: written files get holes where their data has runs of zeros. */
  private readonly sparse: boolean;
  /** -K (DestTreeOptions.keepDirlinks). */
  private readonly keepDirlinks: boolean;
  /** -K: the destination's real path, what a symlinked directory must lie inside (made on first use). */
  private realRoot: Buffer | null = null;
  /** --partial-dir, relative (its bytes, put between a name's directory and its basename) or absolute. */
  private readonly partial: { relative: Buffer | null; absolute: Buffer | null; allowed?: (name: Buffer, isDir: boolean) => boolean } | null;
  /** -T: the temp dir's absolute path, and (confined) the components from the confinement down to it. */
  private readonly temp: { root: Buffer; chain: Buffer[] } | null;

  constructor(
    root: string,
    private readonly attrs: AttrOptions,
    options: DestTreeOptions = {},
  ) {
    this.root = Buffer.from(resolvePath(root));
    this.readDirStats = nativeDirStats();
    const confine = options.confineBasisTo === undefined ? null : resolvePath(options.confineBasisTo);
    this.basisRoots = [];
    this.basisChains = [];
    this.rename = options.rename ?? null;
    this.sparse = !!options.sparse;
    this.keepDirlinks = !!options.keepDirlinks;
    this.partial = null;
    if (options.partialDir) {
      const { dir, allowed } = options.partialDir;
      const parts = dir.split('/').filter((part) => part !== '' && part !== '.');
      // A relative dir may climb with leading ".." (as cleaned by rsync's clean_fname): each file's
      // place is resolved in partialPlace, and one above DEST is none.
      const climbs = isAbsolute(dir) ? 0 : parts.findIndex((part) => part !== '..');
      if (!parts.length || climbs < 0 || parts.slice(Math.max(climbs, 0)).includes('..')) {
        throw new RsyncError('ERR_RSYNC_OPTIONS', `--partial-dir=${dir}: a partial dir with ".." inside it (or none at all) is not supported`, EXIT.SYNTAX);
      }
      const bytes = Buffer.from(parts.join('/'));
      if (!isAbsolute(dir)) checkName(Buffer.from(parts.slice(climbs).join('/')));
      this.partial = { relative: isAbsolute(dir) ? null : bytes, absolute: isAbsolute(dir) ? Buffer.from(`/${parts.join('/')}`) : null, ...(allowed && { allowed }) };
    }
    if (this.rename) {
      checkName(this.rename.from);
      const to = this.rename.to;
      if (to.includes(SLASH) || (to.length === 1 && to[0] === 0x2e)) throw new UnsafePathError(`unsafe local name: ${JSON.stringify(to.toString('latin1'))}`);
      checkName(to);
    }
    this.temp = null;
    if (options.tempDir !== undefined) {
      const abs = resolvePath(root, options.tempDir);
      const chain: Buffer[] = [];
      if (confine !== null) {
        const rel = relativePath(confine, abs);
        if (rel === '..' || rel.startsWith('../') || isAbsolute(rel)) throw new UnsafePathError(`temp directory ${options.tempDir} is outside ${confine}`);
        let at = confine;
        for (const part of rel.split('/').filter(Boolean)) chain.push(Buffer.from((at = `${at}/${part}`)));
      }
      this.temp = { root: Buffer.from(abs), chain };
    }
    this.backup = null;
    if (options.backup) {
      const { dir, suffix } = options.backup;
      if (suffix.includes('/')) throw new RsyncError('ERR_RSYNC_OPTIONS', `--suffix cannot contain slashes: ${suffix}`, EXIT.SYNTAX);
      if (dir === undefined && !suffix) throw new RsyncError('ERR_RSYNC_OPTIONS', '--suffix cannot be empty without a --backup-dir', EXIT.SYNTAX);
      let dirChain: Buffer[] | null = null;
      // A backup dir that is the destination itself is none (rsync's parse_arguments).
      if (dir !== undefined && resolvePath(root, dir) === resolvePath(root) && !suffix) {
        throw new RsyncError('ERR_RSYNC_OPTIONS', '--suffix cannot be empty when --backup-dir is the same as the dest dir', EXIT.SYNTAX);
      }
      if (dir !== undefined && resolvePath(root, dir) !== resolvePath(root)) {
        const abs = resolvePath(root, dir);
        const from = confine ?? '/';
        const rel = relativePath(from, abs);
        if (rel === '..' || rel.startsWith('../') || isAbsolute(rel)) throw new UnsafePathError(`backup directory ${dir} is outside ${from}`);
        dirChain = [];
        let at = from === '/' ? '' : from;
        for (const part of rel.split('/').filter(Boolean)) dirChain.push(Buffer.from((at = `${at}/${part}`)));
        if (!dirChain.length) dirChain.push(Buffer.from(from));
      }
      this.backup = { suffix: Buffer.from(suffix), dirChain };
    }
    // -S writes holes, -b moves the old file first, -T copies across file systems: those keep the temp file path.
    const commitFile = this.sparse || this.backup || this.temp ? null : fileCommitter();
    this.fullName = options.fullName ?? ((name) => `"${shownName(Buffer.concat([this.root, Buffer.from('/'), name]))}"`);
    this.commits = commitFile ? new CommitQueue(commitFile, this.fullName) : null;
    if (!this.commits) {
      this.commitWhole = undefined;
      this.settleCommits = undefined;
    }
    for (const dir of options.basisDirs ?? []) {
      const abs = resolvePath(root, dir);
      const chain: Buffer[] = [];
      if (confine !== null) {
        const rel = relativePath(confine, abs);
        if (rel === '..' || rel.startsWith('../') || isAbsolute(rel)) throw new UnsafePathError(`basis directory ${dir} is outside ${confine}`);
        let at = confine;
        for (const part of rel.split('/').filter(Boolean)) chain.push(Buffer.from((at = `${at}/${part}`)));
      }
      this.basisRoots.push(Buffer.from(abs));
      this.basisChains.push(chain);
    }
  }

  /** How many basis directories the tree has. */
  get basisDirCount(): number {
    return this.basisRoots.length;
  }

  /**
   * The root a name is under: the destination, or basis dir `basisDir` (null when there is no
   * such dir, or it is not a directory; a symlink on the way from the confinement is refused).
   */
  private base(basisDir: number | undefined): { root: Buffer; prefix: string } | null {
    if (basisDir === undefined) return { root: this.root, prefix: '' };
    const root = this.basisRoots[basisDir];
    if (!root) return null;
    const prefix = `\0${basisDir}/`;
    if (!this.checkedDirs.has(prefix)) {
      const chain = this.basisChains[basisDir]!;
      if (chain.length) {
        // Confined: every component from the module down is a real directory.
        for (const dir of chain) {
          const st = lstatSync(dir, { throwIfNoEntry: false });
          if (!st) return null;
          if (st.isSymbolicLink()) throw new UnsafePathError(`refusing a basis directory through a symlink: ${dir.toString()}`);
          if (!st.isDirectory()) return null;
        }
      } else if (!statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
        return null; // the operator's own path: followed as rsync follows it
      }
      this.checkedDirs.add(prefix);
    }
    return { root, prefix };
  }

  /** The absolute path of a list name, after checking the name and its parent directories. */
  private async path(name: Buffer, parentsMustExist: boolean, basisDir?: number): Promise<Buffer | null> {
    return this.pathSync(name, parentsMustExist, basisDir);
  }

  /** -X: the path of a list name whose xattrs are read or set (checked as `path`; null when a parent is missing). */
  xattrPath(name: Buffer): Buffer | null {
    return this.pathSync(name, false);
  }

  private pathSync(name: Buffer, parentsMustExist: boolean, basisDir?: number): Buffer | null {
    checkName(name);
    // rsync/receiver.c: recv_files (fname = local_name ? local_name : f_name(file))
    if (this.rename && name.equals(this.rename.from)) name = this.rename.to;
    const base = this.base(basisDir);
    if (!base) return null;
    const { root, prefix } = base;
    if (name.length === 1 && name[0] === 0x2e) return root;
    const last = name.lastIndexOf(SLASH);
    if (last > 0 && !this.checkedDirs.has(prefix + name.toString('latin1', 0, last))) {
      let at = name.indexOf(SLASH);
      while (at >= 0) {
        const key = prefix + name.toString('latin1', 0, at);
        if (!this.checkedDirs.has(key)) {
          const dir = Buffer.concat([root, Buffer.from('/'), name.subarray(0, at)]);
          const st = lstatSync(dir, { throwIfNoEntry: false });
          if (!st) {
            if (!parentsMustExist) return null;
            throw Object.assign(new Error(`ENOENT: no such file or directory, lstat '${dir.toString()}'`), { code: 'ENOENT', syscall: 'lstat', path: dir.toString() });
          }
          if (st.isSymbolicLink() && !(this.keepDirlinks && basisDir === undefined && this.linkedDirInside(dir))) {
            throw new UnsafePathError(`refusing to write through a symlink: ${name.subarray(0, at).toString()}`);
          }
          if (!st.isSymbolicLink() && !st.isDirectory()) throw new UnsafePathError(`parent of ${name.toString()} is not a directory`);
          this.checkedDirs.add(key);
        }
        at = name.indexOf(SLASH, at + 1);
      }
    }
    return Buffer.concat([root, Buffer.from('/'), name]);
  }

  /**
   * -K: whether the symlink at `link` leads to a directory inside the destination. One leading
   * out of it is an ELOOP error (what rsync's RESOLVE_BENEATH-style resolution gives for a name
   * below it), never followed; one leading to a non-directory or nowhere is false.
   */
  // rsync/syscall.c: secure_relative_open (in-tree directory symlinks followed, escapes refused)
  private linkedDirInside(link: Buffer): boolean {
    let real: Buffer;
    try {
      real = realpathSync(link, { encoding: 'buffer' });
    } catch {
      return false; // dangling or a loop: not a directory
    }
    const root = (this.realRoot ??= realpathSync(this.root, { encoding: 'buffer' }));
    const inside = real.equals(root) || (real.length > root.length && real[root.length] === SLASH && real.subarray(0, root.length).equals(root));
    if (!inside) {
      throw Object.assign(new Error(`ELOOP: too many symbolic links encountered, stat '${link.toString()}'`), { code: 'ELOOP', errno: -40, syscall: 'stat', path: link.toString() });
    }
    return statSync(real, { throwIfNoEntry: false })?.isDirectory() ?? false;
  }

  /**
   * -K: the stat of the directory the symlink `name` leads to (rsync's link_stat with
   * follow_dirlinks: a read, wherever it leads), or null when `name` is no symlink to a directory.
   */
  // rsync/generator.c: recv_generator (gen_entry_stat with keep_dirlinks && is_dir)
  async statDirLink(name: Buffer): Promise<LocalStat | null> {
    if (!this.keepDirlinks) return null;
    const p = await this.path(name, false);
    if (!p || !lstatSync(p, { throwIfNoEntry: false })?.isSymbolicLink()) return null;
    const st = statSync(p, { bigint: true, throwIfNoEntry: false });
    return st?.isDirectory() ? toLocalStat(st) : null;
  }

  private async must(name: Buffer): Promise<Buffer> {
    return (await this.path(name, true))!;
  }

  /**
   * --backup: move what is at `p` (list name `name`) to its backup name; false when there is
   * nothing to keep there. A directory is never moved (its contents are, one by one, by remove).
   */
  // rsync/backup.c: make_backup (link_or_rename; an old backup in the way is deleted first)
  private keepBackup(name: Buffer, p: Buffer): boolean {
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st || st.isDirectory()) return false;
    const target = this.backupTarget(name, p);
    const old = lstatSync(target, { throwIfNoEntry: false });
    if (old) rmSync(target, { recursive: true, force: true });
    renameSync(p, target);
    this.checkedDirs.clear();
    return true;
  }

  /**
   * DIR/NAME+suffix, its directories made as needed (each with the mode of the destination's
   * directory of the same name, as rsync's copy_valid_path gives them), never through a symlink.
   */
  // rsync/backup.c: get_backup_name, copy_valid_path
  private backupDirPath(name: Buffer, p: Buffer): Buffer {
    const chain = this.backup!.dirChain!;
    for (const dir of chain) this.realDir(dir, 0o777);
    let at = chain[chain.length - 1]!;
    let start = 0;
    for (let slash = name.indexOf(SLASH); slash >= 0; slash = name.indexOf(SLASH, slash + 1)) {
      at = Buffer.concat([at, Buffer.from('/'), name.subarray(start, slash)]);
      const source = lstatSync(Buffer.concat([this.root, Buffer.from('/'), name.subarray(0, slash)]), { throwIfNoEntry: false });
      this.realDir(at, source?.isDirectory() ? source.mode & CHMOD_BITS : 0o777);
      start = slash + 1;
    }
    void p;
    return Buffer.concat([at, Buffer.from('/'), name.subarray(start), this.backup!.suffix]);
  }

  /** A directory on the backup path: made when missing, refused when a symlink or not a directory. */
  private realDir(dir: Buffer, mode: number): void {
    const st = lstatSync(dir, { throwIfNoEntry: false });
    if (!st) {
      mkdirSync(dir, { mode: mode & ~process.umask() });
      if (mode !== 0o777) chmodSync(dir, mode);
      return;
    }
    if (st.isSymbolicLink()) throw new UnsafePathError(`refusing a backup directory through a symlink: ${dir.toString()}`);
    if (!st.isDirectory()) throw new RsyncError('ERR_RSYNC_FILEIO', `backup path ${dir.toString()} is not a directory`, EXIT.FILEIO);
  }

  /** Whether a name is itself a backup (ends in the suffix, no backup dir): deleted, not kept again. */
  // rsync/generator.c: is_backup_file
  private isBackupName(name: Buffer): boolean {
    const b = this.backup!;
    return !b.dirChain && name.length > b.suffix.length && name.subarray(name.length - b.suffix.length).equals(b.suffix);
  }

  lstat(name: Buffer, basisDir?: number): LocalStat | null {
    const p = this.pathSync(name, false, basisDir);
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

  /**
   * lstat in the generator's walk: from the name's directory read in one addon call, when the
   * walk looks up two or more names of it in a row (read at the first when `readDirNow`). A
   * directory is read afresh at each visit, so what earlier entries changed is seen, except that
   * an ancestor's read is used again when the walk comes back to it (walkAncestors). Falls back
   * to lstat (no addon, a renamed single file, a name the read could not stat, a directory that
   * cannot be read).
   */
  // rsync/generator.c: recv_generator (its link_stat of each name, batched per directory)
  lstatListed(name: Buffer, readDirNow = false): LocalStat | null {
    const slash = name.lastIndexOf(SLASH);
    if (!this.readDirStats || this.rename || (name.length === 1 && name[0] === 0x2e)) return this.lstat(name);
    checkName(name);
    const dirEnd = slash < 0 ? 0 : slash;
    const dir = this.walkDir;
    if (dir && dir.length === dirEnd && startsWith(name, dir)) {
      this.walkHits++;
    } else {
      const next = Buffer.from(name.subarray(0, dirEnd));
      let kept = this.keepWalkAncestors(next);
      const listed = this.listedRead;
      this.listedRead = null;
      if (!kept && listed && this.reuseWalkSnapshots && listed.dir.equals(next)) kept = listed.snapshot;
      this.walkDir = next;
      this.walkHits = 1;
      this.walkSnapshot = kept;
      this.walkRead = kept !== null;
    }
    // At the second name of a directory, or at the first when the list says a second follows.
    if (!this.walkRead && (this.walkHits >= 2 || readDirNow)) {
      this.walkRead = true;
      // The parents are walked and checked as for any name; only then is the directory read.
      const p = this.pathSync(name, false);
      if (!p) return null;
      const dirPath = p.subarray(0, p.length - (name.length - (slash < 0 ? 0 : slash + 1)) - 1);
      try {
        this.walkSnapshot = new DirSnapshot(dirPath, this.ahead?.take(dirPath) ?? this.readDirStats(dirPath));
      } catch {
        this.walkSnapshot = null; // the directory is gone or unreadable: lstat says so per name
      }
    }
    const found = this.walkSnapshot?.find(name, slash + 1, name.length);
    if (found === undefined) return this.lstat(name);
    // A real directory: its names' parent walk has nothing left to check.
    if (found && (found.mode & S_IFMT) === S_IFDIR) this.checkedDirs.add(name.toString('latin1'));
    return found;
  }

  /**
   * The walk moves to directory `next`: the snapshot it leaves is kept when `next` is below its
   * directory, the kept ones `next` is not below are dropped, and `next`'s own is returned when
   * one is kept (the walk came back to it).
   */
  private keepWalkAncestors(next: Buffer): DirSnapshot | null {
    const kept = this.walkAncestors;
    if (!this.reuseWalkSnapshots) return null;
    if (this.walkSnapshot && this.walkDir && isBelow(next, this.walkDir)) kept.push({ dir: this.walkDir, snapshot: this.walkSnapshot });
    while (kept.length && !isBelow(next, kept[kept.length - 1]!.dir) && !next.equals(kept[kept.length - 1]!.dir)) kept.pop();
    if (kept.length && next.equals(kept[kept.length - 1]!.dir)) return kept.pop()!.snapshot;
    return null;
  }

  /** Whether a kept snapshot may answer later in the walk (see walkAncestors). */
  private get reuseWalkSnapshots(): boolean {
    return !this.keepDirlinks && !this.temp && !this.backup?.dirChain && !this.partial?.absolute;
  }

  /**
   * The generator's walk is about to start: `dirs` are the list's directories in list order (the
   * order the walk reads them), read ahead on another thread while it goes. Without the addon's
   * prefetcher, or when names do not map to DEST one to one (a renamed file), nothing is done.
   */
  walkAhead(dirs: Iterable<Buffer>): void {
    this.listedRead = null; // a --delete-before pass's last listing is not the walk's
    if (!this.readDirStats || this.rename || this.ahead) return;
    const prefetch = nativeDirPrefetch({ noFollow: true });
    if (!prefetch) return;
    const root = this.root;
    const slash = Buffer.from('/');
    const paths = (function* () {
      for (const name of dirs) yield name.length === 1 && name[0] === 0x2e ? root : Buffer.concat([root, slash, name]);
    })();
    this.ahead = new ListDirsAhead(prefetch, paths);
  }

  /** The walk is over: the snapshot goes (and later lookups lstat). */
  endListWalk(): void {
    this.ahead?.close();
    this.ahead = null;
    this.listedRead = null;
    this.walkAncestors.length = 0;
    this.walkRead = false;
    this.walkDir = null;
    this.walkHits = 0;
    this.walkSnapshot = null;
  }

  async openBasis(name: Buffer, basisDir?: number): Promise<BasisFile | null> {
    const p = await this.path(name, false, basisDir);
    return p ? openRegularBasis(p) : null;
  }

  async createTemp(name: Buffer): Promise<TempFile> {
    const p = await this.must(name);
    const tempRoot = this.temp && this.tempRoot(p);
    for (let attempt = 0; ; attempt++) {
      const tmp = tempRoot ? tempDirTemp(tempRoot.root, p) : siblingTemp(p);
      let fd: number;
      try {
        fd = openSync(tmp, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      } catch (e) {
        if (isErrno(e, 'EEXIST') && attempt < 10) continue;
        throw e;
      }
      return this.tempFile(fd, tmp, p, name, this.backup ? name : null, tempRoot?.otherDevice ?? false);
    }
  }

  // rsync/receiver.c: receive_data + finish_transfer (a file received whole, committed off the JS thread)
  commitWhole? = async (name: Buffer, entry: FileEntry, data: Buffer, onFailed: (text: string) => void): Promise<void> => {
    const p = await this.must(name);
    const attrs = this.attrs;
    let existing: LocalStat | null = null;
    if (!attrs.perms) {
      const st = lstatSync(p, { bigint: true, throwIfNoEntry: false });
      existing = st ? toLocalStat(st) : null;
    }
    const mode = this.tweaked(entry, attrs.perms ? entry.mode & CHMOD_BITS : destMode(entry.mode, existing, attrs.umask, attrs.executability));
    const chown = attrs.owner || attrs.group;
    const flags = (attrs.times ? COMMIT_SET_TIMES : 0) | (chown ? COMMIT_CHOWN : 0);
    await this.commits!.commit(name, siblingTemp(p), p, data, mode, flags, entry.mtime, entry.mtimeNsec ?? 0, chown && attrs.owner ? entry.uid : -1, chown && attrs.group ? entry.gid : -1, onFailed);
  };

  settleCommits? = async (): Promise<void> => this.commits!.settle();

  async quiesceCommits(): Promise<void> {
    await this.commits?.quiesce();
  }

  /**
   * -T: the temp dir (confined: every component from the confinement a real directory, never a
   * symlink), and whether it is on another file system than `p`'s directory (then a finished
   * file is copied beside its target rather than renamed).
   */
  // rsync/receiver.c: get_tmpname (tmpdir) + util1.c robust_rename (EXDEV)
  private tempRoot(p: Buffer): { root: Buffer; otherDevice: boolean } {
    const { root, chain } = this.temp!;
    for (const dir of chain) {
      const st = lstatSync(dir, { throwIfNoEntry: false });
      if (st?.isSymbolicLink()) throw new UnsafePathError(`refusing a temp directory through a symlink: ${dir.toString()}`);
    }
    const dirOf = p.subarray(0, p.lastIndexOf(SLASH)) || Buffer.from('/');
    const tempSt = statSync(root, { throwIfNoEntry: false });
    const destSt = statSync(dirOf, { throwIfNoEntry: false });
    return { root, otherDevice: !!tempSt && !!destSt && tempSt.dev !== destSt.dev };
  }

  // rsync/generator.c: recv_generator (the inplace backup: get_backup_name, then copy_file)
  async backupCopy(name: Buffer): Promise<boolean> {
    if (!this.backup) return false;
    const p = await this.must(name);
    const before = lstatSync(p, { bigint: true, throwIfNoEntry: false });
    if (!before?.isFile()) return false;
    const target = this.backupTarget(name, p);
    rmSync(target, { recursive: true, force: true });
    copyFileSync(p, target);
    chmodSync(target, Number(before.mode) & CHMOD_BITS);
    setTimesPath(target, Number(before.mtimeNs / 1_000_000_000n), Number(before.mtimeNs % 1_000_000_000n), false);
    return true;
  }

  async openBackup(name: Buffer): Promise<BasisFile | null> {
    if (!this.backup) return null;
    const p = await this.must(name);
    return openRegularBasis(this.backupTarget(name, p));
  }

  /** The backup name of `name` (at `p`): beside it, or in the backup dir. */
  private backupTarget(name: Buffer, p: Buffer): Buffer {
    return this.backup!.dirChain ? this.backupDirPath(name, p) : Buffer.concat([p, this.backup!.suffix]);
  }

  /**
   * --partial-dir: where `name`'s partial copy is: a list-relative name (relative dir), or an
   * absolute path; null when a daemon's rules refuse it (rsync's partial_dir_fname returns NULL).
   */
  // rsync/util1.c: partial_dir_fname
  private partialPlace(name: Buffer): { listName: Buffer | null; path: Buffer | null } | null {
    const partial = this.partial!;
    if (this.rename && name.equals(this.rename.from)) name = this.rename.to;
    const slash = name.lastIndexOf(SLASH);
    const base = name.subarray(slash + 1);
    if (partial.absolute) return { listName: null, path: Buffer.concat([partial.absolute, Buffer.from('/'), base]) };
    const listName = partialListName(name.subarray(0, slash + 1), partial.relative!, base);
    if (!listName) return null;
    if (partial.allowed && (!partial.allowed(listName.subarray(0, listName.lastIndexOf(SLASH)), true) || !partial.allowed(listName, false))) return null;
    return { listName, path: null };
  }

  /**
   * The absolute path of `name`'s partial copy, or null. A relative one's parents are checked: a
   * symlink or a non-directory on the way means there is no partial copy (never followed; rsync's
   * secure_relative_open fails there), and it is replaced when one is kept.
   */
  private async partialPath(name: Buffer, parentsMustExist: boolean): Promise<Buffer | null> {
    const place = this.partialPlace(name);
    if (!place) return null;
    if (place.path) return place.path;
    try {
      return await this.path(place.listName!, parentsMustExist);
    } catch (e) {
      if (e instanceof UnsafePathError) return null;
      throw e;
    }
  }

  /** --partial-dir: the stat of `name`'s partial copy when it is a regular file, else null. */
  async lstatPartial(name: Buffer): Promise<LocalStat | null> {
    if (!this.partial) return null;
    const p = await this.partialPath(name, false);
    const st = p && lstatSync(p, { bigint: true, throwIfNoEntry: false });
    return st && st.isFile() ? toLocalStat(st) : null;
  }

  /** --partial-dir: `name`'s partial copy opened as a basis (never through a symlink), or null. */
  async openPartial(name: Buffer): Promise<BasisFile | null> {
    if (!this.partial) return null;
    const p = await this.partialPath(name, false);
    return p ? openRegularBasis(p) : null;
  }

  /** --partial-dir: `name`'s partial copy removed, and a relative partial dir with it when empty. */
  // rsync/generator.c: recv_generator (do_unlink of partialptr) + util1.c handle_partial_dir (PDIR_DELETE)
  async removePartial(name: Buffer): Promise<void> {
    if (!this.partial) return;
    const p = await this.partialPath(name, false);
    if (!p) return;
    if (lstatSync(p, { throwIfNoEntry: false })?.isFile()) unlinkQuietly(p);
    this.removePartialDir(p);
  }

  /** A relative partial dir goes once empty (rmdir: anything still in it keeps it). */
  private removePartialDir(p: Buffer): void {
    if (!this.partial?.relative) return;
    try {
      rmdirSync(p.subarray(0, p.lastIndexOf(SLASH)));
      this.checkedDirs.clear();
    } catch {
      // not empty, or gone already
    }
  }

  /**
   * The partial dir of `name` made when missing (0700; something else in its place is removed
   * first); its path for the partial copy, or null when there is none to keep.
   */
  // rsync/util1.c: handle_partial_dir (PDIR_CREATE)
  private async makePartialDir(name: Buffer): Promise<Buffer | null> {
    const place = this.partialPlace(name);
    if (!place) return null;
    // The dir itself is made here: only the ones above it must be real directories already.
    const listName = place.listName;
    const dir = place.path ? place.path.subarray(0, place.path.lastIndexOf(SLASH)) : (await this.path(listName!.subarray(0, listName!.lastIndexOf(SLASH)), true))!;
    const p = place.path ?? Buffer.concat([dir, listName!.subarray(listName!.lastIndexOf(SLASH))]);
    const st = lstatSync(dir, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) {
      unlinkSync(dir);
      this.checkedDirs.clear();
    }
    if (!st || !st.isDirectory()) mkdirSync(dir, { mode: 0o700 });
    return p;
  }

  /**
   * --partial-dir with CF_INPLACE_PARTIAL_DIR: `name`'s partial copy rewritten in place; `commit`
   * renames it over the target (a backup kept first, as for a temp file) and removes the partial
   * dir when empty, `discard` leaves it where it is.
   */
  // rsync/receiver.c: recv_files (one_inplace: the partial file opened O_WRONLY, then finish_transfer)
  async openPartialInplace(name: Buffer): Promise<InplaceFile> {
    const p = await this.partialPath(name, true);
    if (!p) throw new RsyncError('ERR_RSYNC_FILEIO', `no partial file for ${name.toString()}`, EXIT.FILEIO);
    const target = await this.must(name);
    const file = await this.inplaceAt(p, name, false);
    return {
      ...file,
      commit: async (entry) => {
        await file.commit(entry);
        if (this.backup) this.keepBackup(name, target);
        renameSync(p, target);
        this.checkedDirs.clear();
        this.removePartialDir(p);
      },
    };
  }

  /** --delay-updates: `name`'s held-back copy renamed over it (see LocalTree.finishDelayed); nothing when there is none. */
  // rsync/receiver.c: handle_delayed_updates (make_backup, do_rename_at, handle_partial_dir PDIR_DELETE)
  async finishDelayed(name: Buffer): Promise<void> {
    if (!this.partial) return;
    const from = await this.partialPath(name, false);
    if (!from) return;
    const target = await this.must(name);
    if (this.backup) this.keepBackup(name, target);
    renameSync(from, target);
    this.checkedDirs.clear();
    this.removePartialDir(from);
  }

  // rsync/receiver.c: recv_files (the inplace open: O_WRONLY|O_CREAT on the target, 0600) + receive_data's ftruncate
  async openInplace(name: Buffer, rewriteWhole = false): Promise<InplaceFile> {
    return this.inplaceAt(await this.must(name), name, rewriteWhole);
  }

  /** A file at `p` (list name `name`) written in place. */
  private async inplaceAt(p: Buffer, name: Buffer, rewriteWhole: boolean): Promise<InplaceFile> {
    const before = lstatSync(p, { bigint: true, throwIfNoEntry: false });
    if (before?.isSymbolicLink()) throw new UnsafePathError(`refusing to write in place through a symlink: ${name.toString()}`);
    const existing = before ? toLocalStat(before) : null;
    const fd = openSync(p, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    const opened = fstatSync(fd);
    if (!opened.isFile()) {
      closeSync(fd);
      throw new RsyncError('ERR_RSYNC_FILEIO', `cannot write ${name.toString()} in place: not a regular file`, EXIT.FILEIO);
    }
    // -S with -W: the file starts empty, so that all its zeros can be holes (rsync's receive_data).
    if (this.sparse && rewriteWhole) ftruncateSync(fd, 0);
    const sparse = this.sparse ? new SparseWriter(fd, 0, rewriteWhole ? 0 : opened.size) : null;
    const attrs = this.attrs;
    let pos = 0;
    let closed = false;
    const close = (): void => {
      if (!closed) closeQuietly(fd);
      closed = true;
    };
    return {
      write: async (bytes) => {
        if (sparse) {
          sparse.write(bytes);
          pos += bytes.length;
          return;
        }
        for (let at = 0; at < bytes.length; ) {
          const n = writeSync(fd, bytes, at, bytes.length - at, pos);
          at += n;
          pos += n;
        }
      },
      skip: (length, bytes) => {
        sparse?.skip(length, bytes);
        pos += length;
      },
      commit: async (entry) => {
        try {
          if (sparse) sparse.end();
          else ftruncateSync(fd, pos);
          if (attrs.owner || attrs.group) {
            try {
              fchownSync(fd, attrs.owner ? entry.uid : -1, attrs.group ? entry.gid : -1);
            } catch {
              // as in the temp file's commit: not fatal
            }
          }
          fchmodSync(fd, this.tweaked(entry, attrs.perms ? entry.mode & CHMOD_BITS : destMode(entry.mode, existing, attrs.umask, attrs.executability)));
          if (attrs.times) setTimesFd(fd, entry.mtime, entry.mtimeNsec ?? 0);
        } finally {
          close();
        }
      },
      discard: async () => close(),
    };
  }

  private tempFile(fd: number, tmp: Buffer, target: Buffer, name: Buffer, backupName: Buffer | null, otherDevice = false): TempFile {
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
    let noKernelCopy = false;
    // -S: the data goes through rsync's hole rules; no descriptor for a helper to read behind it.
    const sparse = this.sparse ? new SparseWriter(fd) : null;
    const writeAll = async (bytes: Uint8Array): Promise<void> => {
      if (sparse) {
        sparse.write(bytes);
        flushed += bytes.length;
        return;
      }
      try {
        for (let at = 0; at < bytes.length; ) {
          const n = writeSync(fd, bytes, at, bytes.length - at);
          at += n;
          flushed += n;
        }
      } catch (e) {
        throw writeFailed(e, this.fullName(name));
      }
    };
    const drain = async (): Promise<void> => {
      if (used) await writeAll(buf.subarray(0, used));
      used = 0;
    };
    // rsync/receiver.c: finish_transfer (set_file_attrs on the temp file, then the rename)
    const finish = async (entry: FileEntry, into: Buffer, setTime: boolean, backupOf: Buffer | null): Promise<void> => {
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
      sparse?.end();
      // -T on another file system: the data is copied beside its destination first, and that
      // copy gets the attributes and the rename (rsync's robust_rename: copy_file on EXDEV).
      let from = tmp;
      let out = fd;
      if (otherDevice) {
        const beside = copyBeside(fd, into);
        closeSync(fd);
        closed = true;
        unlinkQuietly(tmp);
        done = true;
        from = beside.path;
        out = beside.fd;
      }
      try {
        if (attrs.owner || attrs.group) {
          try {
            fchownSync(out, attrs.owner ? entry.uid : -1, attrs.group ? entry.gid : -1);
          } catch {
            // rsync warns only with -v; the file itself is fine
          }
        }
        fchmodSync(out, this.tweaked(entry, attrs.perms ? entry.mode & CHMOD_BITS : destMode(entry.mode, existing, attrs.umask, attrs.executability)));
        if (attrs.times && setTime) setTimesFd(out, entry.mtime, entry.mtimeNsec ?? 0);
        closeSync(out);
        if (out === fd) closed = true;
        if (backupOf) this.keepBackup(backupOf, into);
        renameSync(from, into);
      } catch (e) {
        if (from !== tmp) {
          closeQuietly(out);
          unlinkQuietly(from);
        }
        throw e;
      }
      done = true;
    };
    return {
      ...(!sparse && { fd, flush: drain }),
      ...(!sparse && {
        // Runs of basis blocks copied by the kernel (src/transfer/copy-range.ts); once it cannot
        // copy between these files, never tried again for this one.
        copyFrom: async (from: number, position: number, length: number) => {
          if (noKernelCopy) return 0;
          await drain();
          const n = appendRange(from, position, fd, length);
          flushed += n;
          if (n < length) noKernelCopy = true;
          return n;
        },
      }),
      get flushed() {
        return flushed;
      },
      write: async (bytes) => {
        if (used + bytes.length > buf.length) await drain();
        if (bytes.length >= buf.length) return writeAll(bytes);
        buf.set(bytes, used);
        used += bytes.length;
      },
      commit: (entry, how) => finish(entry, target, !how?.leaveMtime, how?.backup === false ? null : backupName),
      ...(this.partial && {
        // rsync/cleanup.c: _exit_cleanup (handle_partial_dir, then finish_transfer without the mtime)
        keepPartial: async (entry: FileEntry, how?: { finished?: boolean }) => {
          const into = await this.makePartialDir(name);
          if (!into) return false;
          await finish(entry, into, !!how?.finished, null);
          return true;
        },
      }),
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

  // rsync/util1.c: make_path (MKP_DROP_NAME: the parents only; mkdir with ACCESSPERMS, less the umask)
  async makeParents(name: Buffer): Promise<void> {
    checkName(name);
    for (let at = name.indexOf(SLASH); at >= 0; at = name.indexOf(SLASH, at + 1)) {
      const dir = name.subarray(0, at);
      const p = (await this.path(dir, true))!;
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (st?.isDirectory()) continue;
      if (st) throw new UnsafePathError(`parent of ${name.toString()} is not a directory`);
      mkdirSync(p, { mode: 0o777 });
    }
  }

  async symlink(name: Buffer, target: Buffer): Promise<void> {
    const p = await this.must(name);
    this.checkedDirs.clear();
    const tmp = siblingTemp(p);
    symlinkSync(target, tmp);
    try {
      if (this.backup) this.keepBackup(name, p);
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

  async link(name: Buffer, existing: Buffer, basisDir?: number): Promise<void> {
    const p = await this.must(name);
    this.checkedDirs.clear();
    const from = basisDir === undefined ? await this.must(existing) : await this.path(existing, false, basisDir);
    if (!from) throw Object.assign(new Error(`ENOENT: no basis file ${existing.toString()} in basis dir ${basisDir}`), { code: 'ENOENT', syscall: 'link' });
    // --link-dest links regular files, symlinks (the link itself: link(2) does not follow) and
    // device nodes; never a directory.
    const fromSt = basisDir === undefined ? null : lstatSync(from, { throwIfNoEntry: false });
    if (basisDir !== undefined && (!fromSt || fromSt.isDirectory())) {
      throw Object.assign(new Error(`not a regular file: ${existing.toString()} in basis dir ${basisDir}`), { code: 'EINVAL', syscall: 'link' });
    }
    const tmp = siblingTemp(p);
    linkSync(from, tmp);
    try {
      if (this.backup) this.keepBackup(name, p);
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
    if (this.backup) return this.removeKeepingBackups(name, p);
    // rm never follows a symlink: a link to a directory outside goes, not what it points to.
    rmSync(p, { recursive: true, force: true });
  }

  /** --backup: each non-directory kept (unless it is a backup itself), the directories removed. */
  // rsync/delete.c: delete_item (make_backup instead of unlink) + delete_dir_contents
  private removeKeepingBackups(name: Buffer, p: Buffer): void {
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) {
      for (const child of readdirSync(p, { encoding: 'buffer' })) {
        this.removeKeepingBackups(Buffer.concat([name, Buffer.from('/'), child]), Buffer.concat([p, Buffer.from('/'), child]));
      }
      rmSync(p, { recursive: true, force: true });
      return;
    }
    if (this.isBackupName(name) || !this.keepBackup(name, p)) rmSync(p, { force: true });
  }

  async list(dir: Buffer, basisDir?: number): Promise<Buffer[]> {
    const p = basisDir === undefined ? await this.must(dir) : await this.path(dir, false, basisDir);
    if (!p) return [];
    // In the generator's walk: the addon's read of the directory itself (O_NOFOLLOW: a symlink,
    // a non-directory or nothing fails, and is looked at below), kept for the walk's lookups.
    if (basisDir === undefined && this.readDirStats && p !== this.root) {
      let records: Buffer | null = this.ahead?.take(p) ?? null;
      if (!records) {
        try {
          records = this.readDirStats(p, true);
        } catch {
          records = null;
        }
      }
      if (records) {
        const snapshot = new DirSnapshot(p, records);
        this.listedRead = { dir: Buffer.from(dir), snapshot };
        return snapshot.names();
      }
    }
    // readdir follows a final symlink: list only what is a directory itself (the root is checked by base()).
    if (p !== this.root && p !== this.basisRoots[basisDir ?? -1]) {
      const st = lstatSync(p, { throwIfNoEntry: false });
      // -K: a symlink to a directory inside the destination is listed as that directory.
      const kept = !!st?.isSymbolicLink() && this.keepDirlinks && basisDir === undefined && this.linkedDirInsideOrNone(p);
      if (!st?.isDirectory() && !kept) return [];
    }
    try {
      return readdirSync(p, { encoding: 'buffer' });
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return [];
      throw e;
    }
  }

  /** linkedDirInside, with a link leading out of the destination as false (nothing listed through it). */
  private linkedDirInsideOrNone(link: Buffer): boolean {
    try {
      return this.linkedDirInside(link);
    } catch (e) {
      if (isErrno(e, 'ELOOP')) return false;
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
    return exactTimes() ? ns !== want : ns / 1000n !== want / 1000n;
  }

  /** Permissions after the daemon's `incoming chmod` (none: unchanged). */
  private tweaked(entry: FileEntry, perms: number): number {
    return this.attrs.tweakMode ? this.attrs.tweakMode((entry.mode & S_IFMT) | perms) & CHMOD_BITS : perms;
  }

  /** The permissions an entry gets: the list's (-p) or those here, tweaked; null when they are not ours to set. */
  private wantedPerms(current: number, entry: FileEntry): number | null {
    if (this.attrs.perms) return this.tweaked(entry, entry.mode & CHMOD_BITS);
    if (this.attrs.executability && (entry.mode & S_IFMT) === S_IFREG && (current & S_IFMT) === S_IFREG) return this.tweaked(entry, executablePerms(entry.mode, current));
    return this.attrs.tweakMode ? this.tweaked(entry, current & CHMOD_BITS) : null;
  }

  /** -A: the permissions an entry of mode `entryMode` ends with here, its mode now `current` (as setAttrs gives them). */
  finalPerms(entryMode: number, current: number): number {
    return this.wantedPerms(current, { mode: entryMode } as FileEntry) ?? current & CHMOD_BITS;
  }

  /** Whether setAttrs would change anything of a (non-symlink) item whose lstat is `st`. */
  private attrsDiffer(st: LocalStat, entry: FileEntry): boolean {
    if ((this.attrs.owner || this.attrs.group) && (st.uid !== entry.uid || st.gid !== entry.gid)) return true;
    const perms = this.wantedPerms(st.mode, entry);
    if (perms !== null && (st.mode & CHMOD_BITS) !== perms) return true;
    if (!this.attrs.times || (this.attrs.omitDirTimes && (st.mode & S_IFMT) === S_IFDIR)) return false;
    // Whole seconds need no BigInt; nanoseconds come exact from lstat's BigInt form (window -1).
    if (this.attrs.modifyWindow >= 0) return this.attrs.modifyWindow === 0 ? st.mtime !== entry.mtime : Math.abs(st.mtime - entry.mtime) > this.attrs.modifyWindow;
    return this.timeDiffers(BigInt(st.mtime) * 1_000_000_000n + BigInt(st.mtimeNsec), entry);
  }

  // rsync/rsync.c: set_file_attrs (for entries not rebuilt through a temp file)
  setAttrs(name: Buffer, entry: FileEntry, st: LocalStat | null): void | Promise<void> {
    // Nothing to change by the stat the caller just took (the no-change pull's every file): no
    // second lstat, not even the walk of the parents (the caller's lstat did it), no promise.
    if (st && (st.mode & S_IFMT) === (entry.mode & S_IFMT) && (st.mode & S_IFMT) !== S_IFLNK && !this.attrsDiffer(st, entry)) return;
    return this.changeAttrs(name, entry, st);
  }

  private async changeAttrs(name: Buffer, entry: FileEntry, st: LocalStat | null): Promise<void> {
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
      if (this.attrs.times && !this.attrs.omitLinkTimes && (!st || this.timeDiffers(BigInt(st.mtime) * 1_000_000_000n + BigInt(st.mtimeNsec), entry))) {
        setTimesPath(p, entry.mtime, entry.mtimeNsec ?? 0, false);
      }
      return;
    }
    // Not a symlink: lstat first, so chmod/utimes (which follow) never reach through one.
    const now = lstatSync(p, { bigint: true });
    if (now.isSymbolicLink() && type === S_IFDIR && this.keepDirlinks) return this.setKeptDirLinkAttrs(p, entry, now);
    if (now.isSymbolicLink()) throw new UnsafePathError(`refusing to set attributes through a symlink: ${name.toString()}`);
    if ((this.attrs.owner || this.attrs.group) && (Number(now.uid) !== entry.uid || Number(now.gid) !== entry.gid)) {
      try {
        lchownSync(p, this.attrs.owner ? entry.uid : Number(now.uid), this.attrs.group ? entry.gid : Number(now.gid));
      } catch {
        // as above: not fatal
      }
    }
    const perms = this.wantedPerms(Number(now.mode), entry);
    try {
      if (perms !== null && (Number(now.mode) & CHMOD_BITS) !== perms) chmodSync(p, perms);
    } catch (e) {
      throw this.attrFailed('permissions', name, e);
    }
    if (this.attrs.times && !(this.attrs.omitDirTimes && now.isDirectory())) {
      try {
        if (this.timeDiffers(now.mtimeNs, entry)) setTimesPath(p, entry.mtime, entry.mtimeNsec ?? 0, true);
      } catch (e) {
        throw this.attrFailed('times', name, e);
      }
    }
  }

  /** A chmod or utimensat of setAttrs that failed, in rsync's words (the item alone fails, exit 23). */
  // rsync/rsync.c: set_file_attrs (the chmod or utimensat part)
  private attrFailed(what: 'permissions' | 'times', name: Buffer, e: unknown): unknown {
    const reason = sysReason(e);
    if (!reason) return e;
    return new FileAttrError(attrFailedText(what, this.fullName(name), reason), { cause: e });
  }
  /**
   * -K: a directory's attributes where a symlink to a directory stands in for it, compared with
   * what the link leads to: the owner set on the link, its mtime set on the link itself (rsync sets
   * times without following), the permissions left alone (rsync 3.5's chmod of the link fails).
   */
  // rsync/rsync.c: set_file_attrs (sxp from link_stat with keep_dirlinks; do_lchown, utimensat AT_SYMLINK_NOFOLLOW)
  private setKeptDirLinkAttrs(p: Buffer, entry: FileEntry, link: BigIntStats): void {
    const target = statSync(p, { bigint: true, throwIfNoEntry: false });
    if (!target?.isDirectory()) return;
    if ((this.attrs.owner || this.attrs.group) && (Number(target.uid) !== entry.uid || Number(target.gid) !== entry.gid)) {
      try {
        lchownSync(p, this.attrs.owner ? entry.uid : Number(link.uid), this.attrs.group ? entry.gid : Number(link.gid));
      } catch {
        // as above: not fatal
      }
    }
    if (this.attrs.times && !this.attrs.omitDirTimes && this.timeDiffers(target.mtimeNs, entry)) setTimesPath(p, entry.mtime, entry.mtimeNsec ?? 0, false);
  }

}

const EMPTY = Buffer.alloc(0);
/** mkstemp's alphabet (glibc's letters and digits), so our temp names look like rsync's to tools that clean them up. */
const SUFFIX_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/**
 * The XXXXXX of a temporary name, like mkstemp's: unpredictable enough (O_EXCL and the retry
 * settle a collision) and cheap; crypto's randomBytes cost ~8 µs a file.
 */
function tempSuffix(): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += SUFFIX_CHARS[(Math.random() * SUFFIX_CHARS.length) | 0];
  return s;
}


/** A regular file opened for reading as a basis, never through a symlink; null when there is none. */
function openRegularBasis(p: Buffer): BasisFile | null {
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

/** rsync's open_tmpfile name: ".NAME.XXXXXX" beside the target, the name cut to fit NAME_MAX. */
function siblingTemp(p: Buffer): Buffer {
  const slash = p.lastIndexOf(SLASH);
  return Buffer.concat([p.subarray(0, slash + 1), DOT, p.subarray(slash + 1, slash + 1 + 240), Buffer.from(`.${tempSuffix()}`)]);
}

/** -T: a temp name in the temp dir: the target's basename (no leading dot there, as rsync's) and a random suffix. */
// rsync/receiver.c: get_tmpname (with tmpdir)
function tempDirTemp(dir: Buffer, p: Buffer): Buffer {
  const slash = p.lastIndexOf(SLASH);
  return Buffer.concat([dir, Buffer.from('/'), p.subarray(slash + 1, slash + 1 + 240), Buffer.from(`.${tempSuffix()}`)]);
}

/** The bytes of `fd` copied into a new temp file beside `into` (left open for its attributes). */
// rsync/util1.c: copy_file (as robust_rename calls it for EXDEV)
function copyBeside(fd: number, into: Buffer): { fd: number; path: Buffer } {
  for (let attempt = 0; ; attempt++) {
    const path = siblingTemp(into);
    let out: number;
    try {
      out = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch (e) {
      if (isErrno(e, 'EEXIST') && attempt < 10) continue;
      throw e;
    }
    try {
      const chunk = Buffer.allocUnsafe(COPY_CHUNK);
      for (let pos = 0; ; ) {
        const n = readSync(fd, chunk, 0, chunk.length, pos);
        if (n <= 0) break;
        for (let at = 0; at < n; ) at += writeSync(out, chunk, at, n - at);
        pos += n;
      }
    } catch (e) {
      closeQuietly(out);
      unlinkQuietly(path);
      throw e;
    }
    return { fd: out, path };
  }
}

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

/** A basis opened once: streamed for the sums, read at offsets for the blocks. */
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
