// The file list, sender side (docs/protocol.md [flist]: [flist-entry],
// [flist-end] with io_error and the id lists, [flist-order]): the entry as a caller describes it
// (`FileEntry`), rsync's sort order, the options and checks an encoding needs, and everything
// after the entries (end marker, uid/gid name lists, io_error). The entries themselves are
// encoded in one place, flist-packed-send.ts. Pure: the caller stats the tree and hands us entries.
// Counterpart: rsync flist.c (write_end_of_flist, send_file_list's tail, f_name_cmp) and
// uidlist.c (send_id_lists).
import { CF_INC_RECURSE, CF_ID0_NAMES, CF_SAFE_FLIST, CF_VARINT_FLIST_FLAGS } from './compat.js';
import type { ByteWriter } from './io.js';
import { compareEntryNames } from './name-order.js';
import {
  MAX_WIRE_NSEC,
  MAXPATHLEN,
  XMIT_EXTENDED_FLAGS,
  XMIT_IO_ERROR_ENDLIST,
} from './constants.js';
import { isDevice, isDir, isLink, isReg } from './modes.js';

/** Oldest and newest protocol this encoder speaks. */
export const FLIST_MIN_PROTOCOL = 27;
export const FLIST_MAX_PROTOCOL = 32;

/** One file-list entry as the caller saw it on disk (lstat, readlink, optional digest). */
export interface FileEntry {
  /**
   * Raw name bytes, relative to the transfer root, '/'-separated, canonical (no leading or
   * trailing '/', no '//', no '.' or '..' component), no NUL, under MAXPATHLEN; the root itself is
   * '.'. Any other byte is fine (spaces, newlines, non-UTF-8).
   */
  name: Buffer;
  /** st_mode, including the file-type bits (S_IFREG | 0o644, ...). */
  mode: number;
  /** st_size (regular files: length; dirs: the directory's st_size; symlinks: target length). */
  size: number;
  /** mtime, whole seconds since the epoch. */
  mtime: number;
  /** Nanosecond part of mtime (sent at protocol >= 31 when non-zero). Default 0. */
  mtimeNsec?: number;
  uid: number;
  gid: number;
  /** Symlink target bytes (sent with preserveLinks). */
  symlink?: Buffer;
  /** Device numbers of a block/char device (sent with preserveDevices). */
  rdev?: { major: number; minor: number };
  /**
   * Hard-link identity (st_dev, st_ino), used with preserveHardLinks. Give it for non-directories
   * with st_nlink > 1; at protocol < 28 rsync sends it for every regular file, so give it for
   * all of them there.
   */
  hardlink?: { dev: number | bigint; ino: number | bigint };
  /** Whole-file checksum of a regular file for alwaysChecksum (`-c`), checksumLength bytes; left out, zeros are sent (rsync's choice for an unreadable file). */
  checksum?: Buffer;
  /** XMIT_TOP_DIR: a directory named on the command line. Default: true for the root '.' dir. */
  topDir?: boolean;
  /**
   * Directories only: false when the directory's contents are not part of the transfer (rsync's
   * `-d` without `-r`, or an implied parent dir); sent as XMIT_NO_CONTENT_DIR at protocol >= 30.
   * Default true.
   */
  contentDir?: boolean;
}

/**
 * A file list as the sender reads it: ndx → entry. An array is one; so is a packed list's sorted
 * view (flist-packed.ts SortedFileList), which makes each entry on demand.
 */
export interface FileTable<T extends FileEntry = FileEntry> {
  readonly length: number;
  at(ndx: number): T | undefined;
}

/** Id → name for the uid/gid lists (a user or group without a name is simply not listed). */
export type IdNames = ReadonlyMap<number, string | Uint8Array>;

export interface FlistOptions {
  /** Negotiated protocol, 27..32. */
  protocol: number;
  /** CF_* flags from the setup phase (0 below protocol 30). */
  compatFlags: number;
  /** -o */
  preserveUid?: boolean;
  /** -g */
  preserveGid?: boolean;
  /** --devices (-D): rdev travels. (Without it rsync leaves devices out of the list: the caller's choice.) */
  preserveDevices?: boolean;
  /** --specials (-D): fifos/sockets carry a dummy rdev below protocol 31 */
  preserveSpecials?: boolean;
  /** -l: symlink targets travel. (Without it rsync leaves symlinks out; one given anyway goes without a target.) */
  preserveLinks?: boolean;
  /** -H: entries with `hardlink` are sent as link groups (XMIT_HLINKED; dev/ino below 30, group index from 30) */
  preserveHardLinks?: boolean;
  /** -c: a whole-file checksum follows each regular file's entry */
  alwaysChecksum?: boolean;
  /** rsync's flist_csum_len: digest length of the negotiated checksum (16 for md4/md5/xxh128, 8 for xxh64/xxh3). */
  checksumLength?: number;
  /** --numeric-ids: no uid/gid name lists */
  numericIds?: boolean;
  /** Names for the uid list (ignored with numericIds). */
  userNames?: IdNames;
  /** Names for the gid list (ignored with numericIds). */
  groupNames?: IdNames;
  /** rsync's io_error bits (IOERR_GENERAL 1, IOERR_VANISHED 2, IOERR_DEL_LIMIT 4) gathered while scanning. */
  ioError?: number;
  /** --ignore-errors: io_error is reported as 0 */
  ignoreErrors?: boolean;
  /** -A: the uid and gid name lists go even without -o/-g (the ACLs' ids are named there). */
  acls?: boolean;
}

export interface SentFileList<T extends FileEntry = FileEntry> {
  /** The entries in rsync's sorted order: `sorted[ndx]` is the entry the generator means by ndx. */
  sorted: T[];
  /**
   * io_error still to be reported as MSG_IO_ERROR after the list (protocol 30 without
   * CF_SAFE_FLIST, where it cannot travel in the end marker); 0 when nothing is owed.
   */
  msgIoError: number;
}

/** Negative, zero or positive as `a` sorts before, with, or after `b` in rsync's file list. */
// rsync/flist.c: f_name_cmp [flist-order]
export function compareFileEntries(a: FileEntry, b: FileEntry, protocol = 32): number {
  return compareEntryNames(a, b, protocol);
}

/**
 * rsync's file-list order (a stable sort by f_name_cmp): the position of an entry in the result is
 * its ndx. Protocol >= 29: component-wise, a directory compares as 'name/', and at each level the
 * non-directories come before the directories; '.' first. Below 29: plain byte order of the names.
 * No entry is dropped: a name given twice stays twice (rsync's receiver would disable the second
 * slot), which is why sendFileList refuses duplicate names.
 */
// rsync/flist.c: fsort (the sort half of flist_sort_and_clean)
export function sortFileList<T extends FileEntry>(entries: readonly T[], protocol = 32): T[] {
  return [...entries].sort((x, y) => compareEntryNames(x, y, protocol)); // Array#sort is stable, like rsync's merge sort
}

/** Everything the entry encoder needs besides the entry, resolved once per list. */
export interface Resolved {
  protocol: number;
  varintFlags: boolean;
  preserveUid: boolean;
  preserveGid: boolean;
  preserveDevices: boolean;
  preserveSpecials: boolean;
  preserveLinks: boolean;
  preserveHardLinks: boolean;
  alwaysChecksum: boolean;
  checksumLength: number;
  trackIds: boolean;
  acls: boolean;
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new RangeError(message);
}

/** A name the daemon takes as it is: relative, canonical, no NUL, under MAXPATHLEN (RangeError otherwise). */
export function checkName(name: Buffer): void {
  const shown = JSON.stringify(name.toString('latin1'));
  check(name.length > 0, 'file-list entry with an empty name');
  check(name.length < MAXPATHLEN, `file-list name of ${name.length} bytes (limit ${MAXPATHLEN - 1}): ${shown.slice(0, 80)}`);
  check(!name.includes(0), `file-list name with a NUL byte: ${shown}`);
  check(name[0] !== 0x2f, `file-list name must be relative: ${shown}`);
  check(name[name.length - 1] !== 0x2f, `file-list name ends in '/': ${shown}`);
  if (name.length === 1 && name[0] === 0x2e) return;
  for (const part of name.toString('latin1').split('/')) {
    // The daemon aborts on '..' ("unsafe pathname from sender"). It also cleans './' and '//' out
    // of names before sorting, so such a name would sort (and be indexed) differently there.
    check(part !== '..' && part !== '.' && part !== '', `unsafe or non-canonical file-list name: ${shown}`);
  }
}

/** What the encoder requires of an entry given as a FileEntry (ranges, a target per symlink, rdev per device, ...). */
export function checkEntry(e: FileEntry, r: Resolved): void {
  checkName(e.name);
  check(Number.isInteger(e.mode) && e.mode >= 0 && e.mode <= 0xffffffff, `bad mode ${e.mode}`);
  check(Number.isSafeInteger(e.size) && e.size >= 0, `bad size ${e.size} for ${e.name.toString('latin1')}`);
  check(Number.isSafeInteger(e.mtime), `bad mtime ${e.mtime}`);
  const nsec = e.mtimeNsec ?? 0;
  check(Number.isInteger(nsec) && nsec >= 0 && nsec <= MAX_WIRE_NSEC, `bad mtime nanoseconds ${nsec}`);
  check(Number.isInteger(e.uid) && e.uid >= 0 && e.uid <= 0xffffffff, `bad uid ${e.uid}`);
  check(Number.isInteger(e.gid) && e.gid >= 0 && e.gid <= 0xffffffff, `bad gid ${e.gid}`);
  if (e.name.length === 1 && e.name[0] === 0x2e) check(isDir(e.mode), "'.' must be a directory");
  if (r.preserveLinks && isLink(e.mode)) {
    check(e.symlink !== undefined, `symlink ${e.name.toString('latin1')} without a target`);
    check(e.symlink!.length > 0 && e.symlink!.length < MAXPATHLEN, `symlink target of ${e.symlink!.length} bytes`);
  }
  if (r.preserveDevices && isDevice(e.mode)) check(e.rdev !== undefined, `device ${e.name.toString('latin1')} without rdev`);
  if (r.preserveHardLinks) {
    if (e.hardlink) check(!isDir(e.mode), `directory ${e.name.toString('latin1')} with hard-link info`);
    // Below 28 the receiver reads dev/ino for every regular file.
    else check(r.protocol >= 28 || !isReg(e.mode), `protocol ${r.protocol} -H needs dev/ino of every regular file`);
  }
  if (r.alwaysChecksum && isReg(e.mode) && e.checksum !== undefined) {
    check(e.checksum.length === r.checksumLength, `${e.name.toString('latin1')}: checksum must be ${r.checksumLength} bytes`);
  }
}

// rsync/io.h: write_varint30 / write_varlong30, chosen by the list's protocol (not the writer's)
function writeVarint30(w: ByteWriter, protocol: number, value: number): void {
  if (protocol < 30) w.writeInt(value);
  else w.writeVarint(value);
}

/** The list terminator; io_error rides in it when the list is "safe" (`ioError` already resolved). */
// rsync/flist.c: write_end_of_flist [flist-end]
function writeEndOfFlist(w: ByteWriter, varintFlags: boolean, ioError: number | null): void {
  if (varintFlags) {
    w.writeVarint(0);
    w.writeVarint(ioError ?? 0);
  } else if (ioError !== null) {
    w.writeShort(XMIT_EXTENDED_FLAGS | XMIT_IO_ERROR_ENDLIST);
    w.writeVarint(ioError);
  } else {
    w.writeByte(0);
  }
}

// rsync/uidlist.c: send_one_name
function sendOneName(w: ByteWriter, protocol: number, id: number, name: string | Uint8Array | undefined): void {
  let bytes = name === undefined ? Buffer.alloc(0) : typeof name === 'string' ? Buffer.from(name) : Buffer.from(name);
  if (bytes.length > 255) bytes = bytes.subarray(0, 255); // one length byte
  writeVarint30(w, protocol, id);
  w.writeByte(bytes.length);
  w.writeBuf(bytes);
}

/** Ids in rsync's list order (newest first: it prepends), id 0 and unnamed ids left out. */
// rsync/uidlist.c: send_one_list
function sendOneList(w: ByteWriter, protocol: number, ids: number[], names: IdNames | undefined, id0Names: boolean): void {
  for (let i = ids.length - 1; i >= 0; i--) {
    const id = ids[i]!;
    const name = names?.get(id);
    if (id !== 0 && name !== undefined) sendOneName(w, protocol, id, name);
  }
  // The terminator is id 0; a modern peer also names id 0 there.
  if (id0Names) sendOneName(w, protocol, 0, names?.get(0));
  else writeVarint30(w, protocol, 0);
}

/** Check the options and resolve what every entry's encoding needs. */
export function resolveFlistOptions(opts: FlistOptions): Resolved {
  const protocol = opts.protocol;
  check(
    Number.isInteger(protocol) && protocol >= FLIST_MIN_PROTOCOL && protocol <= FLIST_MAX_PROTOCOL,
    `file list: unsupported protocol ${protocol}`,
  );
  const compat = protocol >= 30 ? opts.compatFlags : 0;
  if (compat & CF_INC_RECURSE) throw new RangeError('file list: incremental recursion is not supported');
  const r: Resolved = {
    protocol,
    varintFlags: (compat & CF_VARINT_FLIST_FLAGS) !== 0,
    preserveUid: opts.preserveUid ?? false,
    preserveGid: opts.preserveGid ?? false,
    preserveDevices: opts.preserveDevices ?? false,
    preserveSpecials: opts.preserveSpecials ?? false,
    preserveLinks: opts.preserveLinks ?? false,
    preserveHardLinks: opts.preserveHardLinks ?? false,
    alwaysChecksum: opts.alwaysChecksum ?? false,
    checksumLength: opts.checksumLength ?? 0,
    trackIds: !(opts.numericIds ?? false),
    acls: opts.acls ?? false,
  };
  if (r.alwaysChecksum) check(r.checksumLength > 0 && r.checksumLength <= 64, `bad checksumLength ${r.checksumLength}`);
  return r;
}

/**
 * Everything after the entries: the end marker (with io_error when the list is "safe"), the
 * uid/gid name lists of the ids seen (`uids`/`gids` in first-seen order), and below protocol 30 the
 * io_error trailer. Returns the io_error still owed as MSG_IO_ERROR (0 when none).
 */
// rsync/flist.c: send_file_list's tail, write_end_of_flist; uidlist.c: send_id_lists [flist-end]
export function writeFlistTail(writer: ByteWriter, opts: FlistOptions, r: Resolved, uids: number[], gids: number[]): number {
  const protocol = r.protocol;
  const compat = protocol >= 30 ? opts.compatFlags : 0;
  const ioError = opts.ignoreErrors ? 0 : (opts.ioError ?? 0);
  // A "safe" list (CF_SAFE_FLIST, or protocol >= 31) can carry io_error in its end marker.
  const safe = protocol >= 31 || (compat & CF_SAFE_FLIST) !== 0;
  writeEndOfFlist(writer, r.varintFlags, ioError !== 0 && safe ? ioError : null);
  if (r.trackIds) {
    const id0Names = (compat & CF_ID0_NAMES) !== 0;
    // rsync/uidlist.c: send_id_lists (-A sends both lists too)
    if (r.preserveUid || r.acls) sendOneList(writer, protocol, uids, opts.userNames, id0Names);
    if (r.preserveGid || r.acls) sendOneList(writer, protocol, gids, opts.groupNames, id0Names);
  }
  if (protocol < 30) writer.writeInt(ioError);
  else if (!safe) return ioError;
  return 0;
}
