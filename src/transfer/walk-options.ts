// The sender-side walk options: -L/--copy-links and --copy-unsafe-links (a symlink listed as
// what it points to), -x/--one-file-system (a mount point listed without its contents; -xx not
// at all) and -R/--relative (a source's path kept in the names, its directories sent as implied
// directories). The walk (scan.ts) asks these functions; they decide as rsync's sender does.
// Docs: docs/options.md (the walk options rows), docs/protocol.md [flist-entry].
// Counterpart: rsync flist.c readlink_stat / make_file (-x) / send_file_list (-R).
import { readFileSync, readlinkSync, realpathSync, statSync, lstatSync, type BigIntStats } from 'node:fs';
import { sanitizePath } from '../../protocol/sanitize-path.js';
import type { TransferOptions } from '../../protocol/args.js';
import { RsyncError, EXIT } from '../../protocol/errors.js';
import { IOERR_GENERAL, IOERR_VANISHED, MAXPATHLEN } from '../../protocol/constants.js';
import { localFilesFromNames } from '../../protocol/files-from.js';
import { unsafeSymlink } from '../../protocol/unsafe-symlink.js';

/** The walk options in force (null: none, the plain lstat walk). */
export interface WalkOptions {
  /** -L: every symlink is listed as its referent. */
  copyLinks: boolean;
  /** --copy-unsafe-links: a symlink pointing out of the transfer is listed as its referent. */
  copyUnsafeLinks: boolean;
  /** -k/--copy-dirlinks: a symlink to a directory is listed as the directory (other links stay links). */
  copyDirlinks?: boolean;
  /** -x count: 1 lists a mount point without its contents, 2 leaves it out. */
  oneFileSystem: number;
  /**
   * lsyncd serve: the module's real root. A directory or file reached through a followed link
   * outside it is listed (as rsyncd lists it, from stat) but never read: rsyncd's confined opens
   * fail there with ELOOP, and so do ours.
   */
  confine?: string;
}

/** The walk options a transfer asks for, or null when it asks for none. */
export function walkOptionsOf(transfer: TransferOptions, confine?: string): WalkOptions | null {
  const copyLinks = !!transfer.copyLinks;
  const copyUnsafeLinks = !!transfer.copyUnsafeLinks && !copyLinks;
  const copyDirlinks = !!transfer.copyDirlinks && !copyLinks;
  const oneFileSystem = transfer.oneFileSystem ?? 0;
  if (!copyLinks && !copyUnsafeLinks && !copyDirlinks && !oneFileSystem) return null;
  return { copyLinks, copyUnsafeLinks, ...(copyDirlinks && { copyDirlinks }), oneFileSystem, ...(confine !== undefined && { confine }) };
}

/** Does a followed link lead somewhere other than a symlink-free walk would (so its reads are checked)? */
export function followsLinks(options: WalkOptions | null): boolean {
  return !!options && (options.copyLinks || options.copyUnsafeLinks || !!options.copyDirlinks);
}

/** How a symlink met by the walk is listed. */
export type LinkOutcome =
  | { kind: 'link' }
  | { kind: 'followed'; stat: BigIntStats }
  | { kind: 'error'; message: string; ioError: number };

/**
 * A symlink `name` at `localPath`: kept as a link, or (with -L, or --copy-unsafe-links for a
 * target pointing out of the transfer) replaced by the stat of what it points to. A link to
 * nothing is an error rsync words "symlink has no referent".
 */
// rsync/flist.c: readlink_stat (the copy_links / copy_unsafe_links follow) and make_file's ENOENT branch
export function followLink(localPath: Buffer, name: Buffer, options: WalkOptions, shown: (name: Buffer) => string): LinkOutcome {
  if (!options.copyLinks) {
    // -k first (rsync's link_stat with follow_dirlinks): a link to a directory is the directory.
    if (options.copyDirlinks) {
      const dir = dirLinkStat(localPath);
      if (dir) return { kind: 'followed', stat: dir };
    }
    if (!options.copyUnsafeLinks) return { kind: 'link' };
    let target: Buffer;
    try {
      target = readlinkSync(localPath, { encoding: 'buffer' });
    } catch {
      return { kind: 'link' }; // the walk's own readlink words the error
    }
    if (!unsafeSymlink(target, name)) return { kind: 'link' };
  }
  try {
    return { kind: 'followed', stat: statSync(localPath, { bigint: true }) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      // rsync: the link itself still there means a dangling link, not a vanished file.
      try {
        if (lstatSync(localPath).isSymbolicLink()) return { kind: 'error', message: `symlink has no referent: "${shown(name)}"`, ioError: IOERR_GENERAL };
      } catch {
        // gone meanwhile
      }
      return { kind: 'error', message: `file has vanished: "${shown(name)}"`, ioError: IOERR_VANISHED };
    }
    return { kind: 'error', message: `readlink_stat("${shown(name)}") failed: ${(e as Error).message}`, ioError: IOERR_GENERAL };
  }
}

/** -k: the stat of what a link points to when that is a directory; null otherwise (dangling, a file, ...). */
// rsync/flist.c: link_stat (the follow_dirlinks branch)
function dirLinkStat(localPath: Buffer): BigIntStats | null {
  try {
    const st = statSync(localPath, { bigint: true });
    return st.isDirectory() ? st : null;
  } catch {
    return null;
  }
}

/** What -x makes of a directory on device `dev` when the transfer's top is on `topDev`. */
// rsync/flist.c: make_file (the one_file_system branch)
export function mountPointAction(options: WalkOptions | null, dev: bigint, topDev: bigint | null): 'walk' | 'no-content' | 'skip' {
  if (!options?.oneFileSystem || topDev === null || dev === topDev) return 'walk';
  return options.oneFileSystem > 1 ? 'skip' : 'no-content';
}

/**
 * Under `confine`, is `localPath` (once its links are resolved) inside it? Without `confine`, always.
 * rsyncd 3.5 opens a daemon's files and directories beneath the module only (RESOLVE_BENEATH),
 * so a followed link leading out is listed but fails with ELOOP when read.
 */
// rsync/syscall.c: secure_opendir / sender_open_copylinks_confined (the outcome, not the mechanism)
export function insideConfinement(options: WalkOptions | null, localPath: Buffer | string): boolean {
  return insideRoot(options?.confine, localPath);
}

/** Is `localPath`, once its links are resolved, `root` or below it? Always true without a root, or for a missing path. */
export function insideRoot(root: string | undefined, localPath: Buffer | string): boolean {
  if (!root) return true;
  let real: string;
  try {
    real = realpathSync(localPath);
  } catch {
    return true; // missing: the read itself reports it
  }
  return real === root || real.startsWith(root.endsWith('/') ? root : root + '/');
}

/** The errno text rsync shows for a read refused by its confinement. */
export const CONFINED_ERROR = 'Too many levels of symbolic links (40)';

/** One -R source split as rsync splits it: the local directory the names start from, and the name. */
export interface RelativeSource {
  /** Where the names are relative to ('' for the current directory; '/' for the root). */
  baseDir: string;
  /** The name as listed (cleaned; '.' for the base itself). */
  name: Buffer;
  /** Given with a trailing slash, or a dot dir: a symlink to a directory there is followed. */
  dirLike: boolean;
  /** The name began with "./": "." is sent first, as an implied directory. */
  leadingDot: boolean;
}

/**
 * A -R source: the part after a "/./" (or all of it) is the name the receiver sees, with its
 * leading slashes, "." parts and doubled slashes removed; a ".." in it is refused, as rsync does.
 */
// rsync/flist.c: send_file_list (the relative_paths branch)
export function relativeSource(source: string, encoding: BufferEncoding = 'utf8'): RelativeSource {
  let baseDir = '';
  let rest = source;
  const split = source.indexOf('/./');
  if (split !== -1) {
    baseDir = split === 0 ? '/' : source.slice(0, split);
    rest = source.slice(split + 3);
  } else if (source.startsWith('/')) {
    baseDir = '/';
  }
  const leadingDot = rest.startsWith('./') && rest.length > 2;
  const dirLike = rest.endsWith('/') || rest === '' || rest === '.' || rest.endsWith('/.');
  const parts = rest.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new RsyncError('ERR_RSYNC_RELATIVE_DOTDOT', `found ".." dir in relative path: ${parts.join('/')}`, EXIT.SYNTAX);
  const name = Buffer.from(parts.length ? parts.join('/') : '.', encoding);
  if (name.length >= MAXPATHLEN) throw new RsyncError('ERR_RSYNC_NAME_TOO_LONG', `name too long: ${parts.join('/')}`, EXIT.SYNTAX);
  return { baseDir, name, dirLike, leadingDot };
}

/** The most a local --files-from list may hold (its bytes are read at once): a clear error past it. */
export const FILES_FROM_MAX_BYTES = 256 * 1024 * 1024;

/**
 * One --files-from name as rsync's sender takes it: sanitized (leading slashes, and any ".."
 * that would climb out, dropped; with -R the "." components kept, so that a "/./" in the name
 * still marks where the kept path starts, below the transfer's directory). With -R the path is
 * kept (its directories sent as implied ones); without, the name is listed under its last
 * component from its own directory, and "dir/" sends the contents of dir as ".".
 */
// rsync/flist.c: send_file_list (the files-from loop: sanitize_path with SP_KEEP_DOT_DIRS, the name_type split)
export function filesFromSource(line: Buffer, relative: boolean): RelativeSource {
  const clean = sanitizePath(line, 0, relative);
  // latin1 keeps the name's bytes as they are (names need not be UTF-8).
  if (relative) return relativeSource(clean.toString('latin1'), 'latin1');
  let text = clean.toString('latin1');
  let dirLike = false;
  if (text.endsWith('/')) {
    text += '.';
  }
  if (text === '.' || text.endsWith('/.')) dirLike = true;
  const slash = text.lastIndexOf('/');
  const baseDir = slash === -1 ? '' : text.slice(0, slash);
  return { baseDir, name: Buffer.from(text.slice(slash + 1), 'latin1'), dirLike, leadingDot: false };
}

/**
 * A local --files-from list (`-` for stdin) as the sources of a walk below the transfer's
 * directory (protocol/files-from.ts localFilesFromNames: a name a line, "\n"/"\r" or with
 * --from0 a NUL, comments and empty lines skipped), each taken by filesFromSource.
 */
// rsync/flist.c: send_file_list (the filesfrom_fd loop) with io.c read_line (RL_DUMP_COMMENTS, RL_EOL_NULLS)
export function readFilesFrom(file: string, from0: boolean, relative = true): RelativeSource[] {
  const sources: RelativeSource[] = [];
  for (const line of localFilesFromNames(readFilesFromBytes(file), from0)) sources.push(filesFromSource(line, relative));
  return sources;
}

/** A local list's bytes (`-`: stdin), bounded by FILES_FROM_MAX_BYTES; errors as rsync words them (exit 3). */
export function readFilesFromBytes(file: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = file === '-' ? readFileSync(0) : readBounded(file);
  } catch (e) {
    if (e instanceof RsyncError) throw e;
    throw new RsyncError('ERR_RSYNC_FILES_FROM', `failed to open files-from file ${file}: ${(e as Error).message}`, EXIT.FILESELECT);
  }
  if (bytes.length > FILES_FROM_MAX_BYTES) throw tooBig(file);
  return bytes;
}

function tooBig(file: string): RsyncError {
  return new RsyncError('ERR_RSYNC_FILES_FROM', `--files-from=${file}: more than ${FILES_FROM_MAX_BYTES} bytes`, EXIT.SYNTAX);
}

/** A regular file's bytes, refused before reading past FILES_FROM_MAX_BYTES. */
function readBounded(file: string): Buffer {
  if (statSync(file).size > FILES_FROM_MAX_BYTES) throw tooBig(file);
  return readFileSync(file);
}
