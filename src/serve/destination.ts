// Where a client's push lands inside a module, and what a client's path names on a pull: the
// daemon's half of rsync's path handling. Every path a client sends is taken relative to the
// module root, cleaned of `.`, empty and leading `..` components as rsync's sanitize_path cleans
// them (a `..` never climbs above the module), and the directories on the way are walked with
// lstat: a symlink or a non-directory there is refused, nothing is followed. rsync confines the
// same paths with chroot or its secure_relative_open; we confine them ourselves.
// Counterpart: rsync main.c get_local_name, util1.c sanitize_path, io.c read_args (the module
// prefix stripped from each path).
import { lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT, RsyncError } from '../../protocol/errors.js';
import { sanitizePath } from '../../protocol/sanitize-path.js';
import { sysReason } from '../transfer/strerror.js';

/** A client path the daemon will not act on: the text goes to the client as rsync words it. */
export class ModulePathError extends RsyncError {
  constructor(message: string, exitCode: number) {
    super('ERR_RSYNC_MODULE_PATH', message, exitCode);
  }
}

/**
 * A client's path argument with the module name taken off (`mod/sub/` → `sub/`, `mod` → ``), as
 * rsync's daemon does before it looks at it. A path not under the module keeps its text.
 */
// rsync/io.c: read_args (glob_expand_module)
export function stripModule(module: string, path: string): string {
  if (path === module) return '';
  if (path.startsWith(module + '/')) return path.slice(module.length + 1);
  return path;
}

/**
 * A client path made module-relative: `.` and empty components dropped, `..` taking one
 * component off (never going above the module root), a trailing slash kept as a flag.
 */
// rsync/util1.c: sanitize_path (with the module root as the limit)
export function sanitizeModulePath(path: string): { parts: string[]; trailingSlash: boolean } {
  const clean = sanitizePath(Buffer.from(path), 0).toString();
  return { parts: clean === '.' ? [] : clean.split('/').filter(Boolean), trailingSlash: path.endsWith('/') || path === '' || path === '.' };
}

/**
 * Walk `parts` below `root` with lstat: each existing component must be a real directory
 * (never a symlink). Returns how many components exist.
 */
function walkConfined(root: string, parts: readonly string[], shown: string): number {
  let at = root;
  for (let i = 0; i < parts.length; i++) {
    at = join(at, parts[i]!);
    const st = lstatSync(at, { throwIfNoEntry: false });
    if (!st) return i;
    if (st.isSymbolicLink()) throw new ModulePathError(`ERROR: refusing to follow a symlink in the destination path "${shown}"`, EXIT.FILESELECT);
    if (!st.isDirectory()) {
      if (i === parts.length - 1) return parts.length;
      throw new ModulePathError(`ERROR: cannot stat destination ${shown}: Not a directory`, EXIT.FILESELECT);
    }
  }
  return parts.length;
}

/** Where a push is received: the directory the file list's names are relative to. */
export interface LocalName {
  /** The absolute directory (created when the transfer needs it). */
  dir: string;
  /** The directory was created for this transfer (the list's "." is then new). */
  created: boolean;
  /** A single non-directory received under another name: its name in `dir`. */
  rename?: string;
}

/**
 * The destination of a client's push, as rsync's get_local_name decides it: an existing
 * directory is used as it is; a missing path becomes a directory when the list has more than one
 * entry or the path ends in a slash; a single non-directory is received under the path's name.
 * The errors are rsync's texts and exit codes.
 */
// rsync/main.c: get_local_name
export function localName(
  moduleRoot: string,
  destPath: string,
  files: { count: number; firstIsDir: boolean },
  options: { dryRun: boolean; module?: string },
): LocalName {
  const { parts, trailingSlash } = sanitizeModulePath(destPath);
  const shown = destPath || '.';
  // rsync/util1.c: full_fname — a daemon names the module after a path.
  const fullName = (path: string) => `"${path}"${options.module === undefined ? '' : ` (in ${options.module})`}`;
  const existing = walkConfined(moduleRoot, parts, shown);
  const target = join(moduleRoot, ...parts);
  if (existing === parts.length) {
    const st = lstatSync(target);
    if (st.isDirectory()) return { dir: target, created: false };
    if (files.count > 1) throw new ModulePathError('ERROR: destination must be a directory when copying more than 1 file', EXIT.FILESELECT);
    if (files.count === 1 && files.firstIsDir) throw new ModulePathError('ERROR: cannot overwrite non-directory with a directory', EXIT.FILESELECT);
    return { dir: join(moduleRoot, ...parts.slice(0, -1)), created: false, rename: parts[parts.length - 1]! };
  }
  const needsDir = files.count > 1 || trailingSlash;
  if (existing < parts.length - 1) {
    if (needsDir) throw new ModulePathError(`rsync: [Receiver] mkdir ${fullName(shown.replace(/\/+$/, ''))} failed: No such file or directory (2)`, EXIT.FILEIO);
    // One file under a name whose parent is missing: rsync cannot enter the parent.
    throw new ModulePathError(`rsync: [Receiver] change_dir#3 ${fullName(parts.slice(0, -1).join('/'))} failed: No such file or directory (2)`, EXIT.FILESELECT);
  }
  if (needsDir) {
    try {
      if (!options.dryRun) mkdirSync(target, { mode: 0o777 });
    } catch (e) {
      // rsyncd words it and ends the receiver (exit 11); its client sees the line.
      throw new ModulePathError(`rsync: [Receiver] mkdir ${fullName(shown.replace(/\/+$/, ''))} failed: ${sysReason(e) ?? (e as Error).message}`, EXIT.FILEIO);
    }
    return { dir: target, created: true };
  }
  // One non-directory into a missing name: received under that name.
  return { dir: join(moduleRoot, ...parts.slice(0, -1)), created: false, rename: parts[parts.length - 1]! };
}

/** rsync.h SYMLINK_PREFIX: what `munge symlinks` puts before every target a client sends. */
export const SYMLINK_PREFIX = Buffer.from('/rsyncd-munged/');

/**
 * A stored symlink target as a `munge symlinks` module sends it: the prefix taken off (only when
 * something follows it), so a client pulls the target it pushed; any other target as it is.
 */
// rsync/flist.c: readlink_stat (munge_symlinks && am_sender)
export function unmungeSymlink(target: Buffer): Buffer {
  if (target.length > SYMLINK_PREFIX.length && target.subarray(0, SYMLINK_PREFIX.length).equals(SYMLINK_PREFIX)) return target.subarray(SYMLINK_PREFIX.length);
  return target;
}


/** How many directory levels deep a list name lies (`a/b/c` → 2): rsync's count_dir_elements of its dirname. */
export function dirDepth(name: Buffer): number {
  let n = 0;
  for (const byte of name) if (byte === 0x2f) n++;
  return n;
}
