// The file list, receiver side (docs/protocol.md [flist-recv], [flist]). On a
// pull (and a remote listing) the daemon is the sender: it describes every entry, then the
// uid/gid name lists and, below protocol 30, the io_error trailer. We decode it into a packed
// ReceivedList (received-list.ts: no object per entry), check every name before anyone can use it,
// and sort and clean it as rsync does, so that ndx reads the entry the daemon means by ndx. Pure: no fs. Counterpart: rsync flist.c (recv_file_list,
// recv_file_entry, flist_sort_and_clean) and uidlist.c (recv_id_list); sender side: flist.ts.
import { CF_ID0_NAMES, CF_INC_RECURSE, CF_SAFE_FLIST, CF_VARINT_FLIST_FLAGS } from './compat.js';
import { ProtocolError, UnsafeNameError, type MemoryBudget } from './errors.js';
import type { ByteReader } from './io.js';
import type { TransferOptions } from './args.js';
import { MAX_WIRE_ACL_COUNT } from './acls.js';
import { FLIST_MAX_PROTOCOL, FLIST_MIN_PROTOCOL, type FlistOptions } from './flist.js';
import type { RequestedNames } from './implied-includes.js';
import { PACKED_ENTRY_BYTES, ReceivedList, type ReceivedEntry } from './received-list.js';
import { NEED_MORE, RecordCursor } from './record-cursor.js';
import {
  IOERR_VALID_MASK,
  MAX_WIRE_NSEC,
  MAXPATHLEN,
  XMIT_EXTENDED_FLAGS,
  XMIT_GROUP_NAME_FOLLOWS,
  XMIT_HLINK_FIRST,
  XMIT_HLINKED,
  XMIT_IO_ERROR_ENDLIST,
  XMIT_LONG_NAME,
  XMIT_MOD_NSEC,
  XMIT_NO_CONTENT_DIR,
  XMIT_RDEV_MINOR_8_pre30,
  XMIT_SAME_DEV_pre30,
  XMIT_SAME_GID,
  XMIT_SAME_MODE,
  XMIT_SAME_NAME,
  XMIT_SAME_RDEV_MAJOR,
  XMIT_SAME_RDEV_pre28,
  XMIT_SAME_TIME,
  XMIT_SAME_UID,
  XMIT_TOP_DIR,
  XMIT_USER_NAME_FOLLOWS,
} from './constants.js';
import { fileType, isDevice, isDir, isLink, isReg, isSpecial, splitDev, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK } from './modes.js';

/** Default bound on the number of entries: a hostile count is refused before it exhausts memory. */
export const MAX_FLIST_ENTRIES = 10_000_000;
/** Longest whole-file checksum any negotiated algorithm has (rsync's MAX_DIGEST_LEN is 64). */
const MAX_CHECKSUM_LEN = 64;

/** The sender's flags (as for sendFileList), plus what only the receiving side needs. */
export interface FlistRecvOptions
  extends Pick<
    FlistOptions,
    | 'protocol'
    | 'compatFlags'
    | 'preserveUid'
    | 'preserveGid'
    | 'preserveDevices'
    | 'preserveSpecials'
    | 'preserveLinks'
    | 'preserveHardLinks'
    | 'alwaysChecksum'
    | 'checksumLength'
    | 'numericIds'
    | 'ignoreErrors'
  > {
  /** -A: the uid and gid name lists come even without -o/-g (ids in the ACLs are mapped by name). */
  preserveAcls?: boolean;
  /**
   * -r: below protocol 30 a directory under a top directory counts as a content directory
   * (rsync's in_del_hier); from 30 the sender says so itself. Default true.
   */
  recursive?: boolean;
  /** Most entries accepted; default MAX_FLIST_ENTRIES. */
  maxEntries?: number;
  /**
   * --delete-missing-args: a source argument the sender could not find travels as an entry of
   * mode 0, which the generator deletes (rsync's recv_file_entry accepts it only then).
   */
  deleteMissingArgs?: boolean;
  /**
   * The connection's memory cap (a daemon's): every entry and id name is charged before the list
   * grows, so a peer's endless list ends in a MemoryCapError rather than in the heap's limit.
   */
  budget?: MemoryBudget;
  /**
   * -A/-X: what follows each entry of mode `mode` (its ACLs, protocol/acls.ts AclReceiver.receive;
   * its xattr set, protocol/xattrs.ts XattrReceiver.receive): the bytes it holds.
   */
  afterEntry?: (reader: ByteReader, w: number, mode: number) => Promise<number>;
  /**
   * A pull's requested names (protocol/implied-includes.ts, rsync 3.5's implied includes): an
   * entry none of them matches stops the list (UnrequestedNameError, exit 4), and a directory
   * allowed only as a parent is never a content directory. Absent: every name is taken.
   */
  requested?: RequestedNames;
}

/**
 * What one received entry costs beyond its variable bytes (name, symlink target, checksum): the
 * packed list's slots (received-list.ts PACKED_ENTRY_BYTES, with their growth slack).
 */
export const RECEIVED_ENTRY_BYTES = PACKED_ENTRY_BYTES;
/** What a rare field kept beside the packed arrays costs (a Map slot, an object or a Buffer view). */
const SPARSE_FIELD_BYTES = 96;
/** What one id → name pair of the uid/gid lists costs beyond the name (a Map slot and a Buffer view). */
const ID_NAME_BYTES = 160;

/** The file-list flags a transfer's options imply (what rsync's receiver derives from its own options). */
export function flistOptionsFor(transfer: TransferOptions): Omit<FlistRecvOptions, 'protocol' | 'compatFlags' | 'checksumLength'> {
  return {
    preserveUid: transfer.owner,
    preserveGid: transfer.group,
    preserveDevices: transfer.devices,
    preserveSpecials: transfer.devices,
    preserveLinks: transfer.links,
    preserveHardLinks: transfer.hardLinks,
    alwaysChecksum: transfer.checksum,
    numericIds: transfer.numericIds,
    ...(transfer.acls && { preserveAcls: true }),
    recursive: transfer.recursive,
    ...(transfer.deleteMissingArgs && { deleteMissingArgs: true }),
  };
}

export type { ReceivedEntry } from './received-list.js';

export interface ReceivedFileList {
  /** The entries, packed, in rsync's sorted order: read by ndx (what the sender means by ndx). */
  list: ReceivedList;
  /**
   * The same entries as objects (`files[ndx]`; check `active`), made on first use and kept: for
   * tests and small lists. A big list is read through `list`.
   */
  readonly files: ReceivedEntry[];
  /** The sender's io_error bits (IOERR_*), from the end marker or the trailer; 0 with ignoreErrors. */
  ioError: number;
  /** The uid list after the entries: id → name (empty without -o or with --numeric-ids). */
  userNames: Map<number, Buffer>;
  /** The gid list. */
  groupNames: Map<number, Buffer>;
  /** rsync's stats.total_size: the sizes of the regular files and symlinks. */
  totalSize: number;
}

const VALID_TYPES = new Set([S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK]);

const shown = (name: Uint8Array): string => JSON.stringify(Buffer.from(name).toString('latin1')).slice(0, 120);

/**
 * Throw UnsafeNameError unless `name` is safe to join under a destination directory: relative,
 * no '..', '.' or empty component (only the whole name may be '.'), no NUL, under MAXPATHLEN.
 * rsync cleans '.' and '//' out of names and refuses '..' and leading '/'; a real sender never
 * sends the forms rsync would clean, so we refuse them all.
 */
// rsync/flist.c: recv_file_entry (the "unsafe pathname from sender" check) [flist-recv-safe]
export function checkReceivedName(name: Uint8Array): void {
  checkReceivedNameAt(name, 0, name.length);
}

/** checkReceivedName on `bytes[from..to)` (a name in the list's arena: no view is made unless it is refused). */
// rsync/flist.c: recv_file_entry (the "unsafe pathname from sender" check) [flist-recv-safe]
function checkReceivedNameAt(bytes: Uint8Array, from: number, to: number): void {
  const length = to - from;
  if (length === 0) refuseName(bytes, from, to, ': empty', false);
  if (length >= MAXPATHLEN) refuseName(bytes, from, to, `: ${length} bytes (limit ${MAXPATHLEN - 1})`, false);
  for (let i = from; i < to; i++) if (bytes[i] === 0) refuseName(bytes, from, to, ' (NUL byte)', true);
  if (bytes[from] === 0x2f) refuseName(bytes, from, to, ' (absolute)', true);
  if (length === 1 && bytes[from] === 0x2e) return;
  let start = from;
  for (let i = from; i <= to; i++) {
    if (i < to && bytes[i] !== 0x2f) continue;
    const len = i - start;
    const dot = len >= 1 && bytes[start] === 0x2e;
    if (len === 0 || (dot && len === 1) || (dot && len === 2 && bytes[start + 1] === 0x2e)) {
      refuseName(bytes, from, to, len === 0 ? ' (empty component)' : len === 1 ? " ('.' component)" : " ('..' component)", true);
    }
    start = i + 1;
  }
}

/** The UnsafeNameError for the name `bytes[from..to)`: `why`, then the name itself when `show`. */
function refuseName(bytes: Uint8Array, from: number, to: number, why: string, show: boolean): never {
  const name = Buffer.from(bytes.subarray(from, to));
  throw new UnsafeNameError(`unsafe file-list name from the daemon${why}${show ? `: ${shown(name)}` : ''}`, name);
}

/** Everything the entry decoder needs besides the bytes, resolved once per list. */
interface Resolved {
  protocol: number;
  preserveUid: boolean;
  preserveGid: boolean;
  preserveDevices: boolean;
  preserveSpecials: boolean;
  preserveLinks: boolean;
  preserveHardLinks: boolean;
  alwaysChecksum: boolean;
  checksumLength: number;
  recursive: boolean;
  deleteMissingArgs: boolean;
  requested: RequestedNames | null;
}

/** The "previous entry" state both sides keep for the SAME_* flags (rsync's statics); starts at zero. */
interface PrevState {
  mode: number;
  mtime: number;
  uid: number;
  gid: number;
  rdevMajor: number;
  /** protocol < 28: the whole dev_t, as an unsigned 64-bit value */
  rdev: bigint;
  /** protocols 28-29 -H: st_dev as sent (+1) */
  dev: bigint;
  /** below 30: a top directory was seen with -r, so later dirs are content dirs */
  inDelHier: boolean;
  /** below 30 -H: (dev, ino) → group number */
  hlinkGroups: Map<string, number>;
}


/** uid_t/gid_t: rsync reads an int32 and keeps it unsigned. */
const unsigned = (n: number): number => n >>> 0;

/**
 * The name of the next entry: the shared prefix of the previous name plus the suffix on the wire,
 * appended to the list's arena. Returns the new entry's wire index.
 */
function recvName(c: RecordCursor, xflags: number, list: ReceivedList, protocol: number): number {
  const l1 = xflags & XMIT_SAME_NAME ? c.byte() : 0;
  const l2 = xflags & XMIT_LONG_NAME ? c.varint30(protocol) : c.byte();
  const prevLength = list.lastNameLength();
  if (l1 > prevLength) {
    throw new ProtocolError(`file list: entry reuses ${l1} bytes of a ${prevLength}-byte previous name`);
  }
  // Bounded before reading, as rsync does (l2 >= MAXPATHLEN - l1 is its overflow_exit).
  if (l2 < 0 || l2 >= MAXPATHLEN - l1) {
    const shared = list.length ? Buffer.from(list.wireName(list.length - 1).subarray(0, l1)) : Buffer.alloc(0);
    throw new UnsafeNameError(`unsafe file-list name from the daemon: ${l1} + ${l2} bytes (limit ${MAXPATHLEN - 1})`, shared);
  }
  const at = c.bytes(l2);
  return list.addNameFrom(l1, c.buf, at, at + l2);
}

/** One inline user/group name (XMIT_*_NAME_FOLLOWS, and every id-list entry): a length byte and bytes. */
// rsync/uidlist.c: recv_user_name / recv_group_name (the wire part)
function recvIdName(c: RecordCursor): Buffer {
  const len = c.byte();
  const at = c.bytes(len);
  return Buffer.from(c.buf.subarray(at, at + len));
}

/**
 * One entry after its flags, appended to `list` (in wire order). Returns the bytes it holds beyond
 * its fixed cost (name, symlink target, checksum), which the caller charges.
 */
// rsync/flist.c: recv_file_entry [flist-recv-attrs]
function recvFileEntry(c: RecordCursor, xflags: number, list: ReceivedList, r: Resolved, prev: PrevState): number {
  const protocol = r.protocol;
  const w = recvName(c, xflags, list, protocol);
  const arena = list.arenaBytes;
  const nameStart = list.wireNameStart(w);
  const nameLength = list.wireNameLength(w);
  checkReceivedNameAt(arena, nameStart, nameStart + nameLength);
  const isDot = nameLength === 1 && arena[nameStart] === 0x2e;
  // (The name as a Buffer, `list.wireName(w)`, is made only for an error or a requested-name check.)

  // Protocol >= 30: a later member of a hard-link group names the group's first entry and stops
  // there; every attribute is the first entry's. (rsync reads the index even without -H.)
  if (protocol >= 30 && xflags & XMIT_HLINKED && !(xflags & XMIT_HLINK_FIRST)) {
    const first = c.varint();
    if (first < 0 || first >= w) {
      throw new ProtocolError(`file list: hard-link reference out of range: ${first} (${w} entries so far)`);
    }
    const mode = list.wireMode(first);
    if (isDir(mode)) throw new ProtocolError(`file list: ${shown(list.wireName(w))} is a hard link to a directory`);
    // The SAME_* state continues from the copied attributes, as rsync's statics do.
    prev.mode = mode;
    prev.mtime = list.wireMtime(first);
    if (r.preserveUid) prev.uid = list.wireUid(first);
    if (r.preserveGid) prev.gid = list.wireGid(first);
    const firstRdev = list.wireRdev(first);
    if (r.preserveDevices && isDevice(mode) && firstRdev) prev.rdevMajor = firstRdev.major;
    if (isDot && !isDir(mode)) {
      throw new ProtocolError("file list: rejecting a non-directory transfer root '.'");
    }
    list.copyAttrs(w, first);
    if (r.preserveHardLinks) list.setHlink(w, first, false);
    return nameLength;
  }

  const size = protocol < 30 ? c.longint() : c.varlong(3);
  if (!(xflags & XMIT_SAME_TIME)) {
    // 64-bit (and possibly negative) from 30; below, 32 bits read unsigned.
    prev.mtime = protocol >= 30 ? c.varlong(4) : unsigned(c.int());
  }
  let nsec = 0;
  if (xflags & XMIT_MOD_NSEC) {
    nsec = c.varint();
    if (nsec < 0 || nsec > MAX_WIRE_NSEC) throw new ProtocolError(`file list: mtime nanoseconds out of range: ${nsec}`);
  }
  if (!(xflags & XMIT_SAME_MODE)) {
    const mode = unsigned(c.int());
    // Only the seven file types, and mode 0 when --delete-missing-args asked for it.
    if (!VALID_TYPES.has(fileType(mode)) && !(mode === 0 && r.deleteMissingArgs)) {
      throw new ProtocolError(`file list: invalid file mode 0${mode.toString(8)} for ${shown(list.wireName(w))}`);
    }
    prev.mode = mode;
  }
  const mode = prev.mode;
  if (mode === 0 && !r.deleteMissingArgs) throw new ProtocolError(`file list: entry ${shown(list.wireName(w))} without a mode`);
  // rsync 3.5: a name the pull never asked for ends it (exit 4) [flist-recv-safe].
  // (A whole-tree pull asks for every name: then nothing is checked, and no name made.)
  const requested = r.requested !== null && !r.requested.empty && !r.requested.allRequested ? r.requested : null;
  requested?.check(list.wireName(w), isDir(mode));

  let userName: Buffer | undefined;
  let groupName: Buffer | undefined;
  if (r.preserveUid && !(xflags & XMIT_SAME_UID)) {
    prev.uid = unsigned(c.varint30(protocol));
    if (protocol >= 30 && xflags & XMIT_USER_NAME_FOLLOWS) userName = recvIdName(c);
  }
  if (r.preserveGid && !(xflags & XMIT_SAME_GID)) {
    prev.gid = unsigned(c.varint30(protocol));
    if (protocol >= 30 && xflags & XMIT_GROUP_NAME_FOLLOWS) groupName = recvIdName(c);
  }

  let rdev: { major: number; minor: number } | undefined;
  let length = size;
  if ((r.preserveDevices && isDevice(mode)) || (r.preserveSpecials && isSpecial(mode) && protocol < 31)) {
    if (protocol < 28) {
      if (!(xflags & XMIT_SAME_RDEV_pre28)) prev.rdev = BigInt.asUintN(64, BigInt(c.int()));
      rdev = splitDev(prev.rdev);
    } else {
      if (!(xflags & XMIT_SAME_RDEV_MAJOR)) prev.rdevMajor = unsigned(c.varint30(protocol));
      let minor: number;
      if (protocol >= 30) minor = c.varint();
      else if (xflags & XMIT_RDEV_MINOR_8_pre30) minor = c.byte();
      else minor = c.int();
      rdev = { major: prev.rdevMajor, minor: unsigned(minor) };
    }
    length = 0; // rsync ignores the size of a device (and of a special that carried an rdev)
    if (!isDevice(mode)) rdev = undefined; // a special's rdev is a placeholder
  } else if (isDevice(mode)) {
    length = 0;
  } else if (protocol < 28) {
    prev.rdev = 0n;
  }

  let symlink: Buffer | undefined;
  if (r.preserveLinks && isLink(mode)) {
    const len = c.varint30(protocol);
    if (len < 0 || len >= MAXPATHLEN) throw new ProtocolError(`file list: symlink target of ${len} bytes for ${shown(list.wireName(w))}`);
    const at = c.bytes(len);
    symlink = Buffer.from(c.buf.subarray(at, at + len));
    if (symlink.includes(0)) throw new ProtocolError(`file list: symlink target with a NUL byte for ${shown(list.wireName(w))}`);
  }

  if (size < 0) throw new ProtocolError(`file list: negative size for ${shown(list.wireName(w))}`);
  if (isDot && !isDir(mode)) {
    throw new ProtocolError("file list: rejecting a non-directory transfer root '.'");
  }

  list.setAttrs(w, mode, length, prev.mtime, nsec, r.preserveUid ? prev.uid : 0, r.preserveGid ? prev.gid : 0);
  let held = nameLength;
  if (symlink) {
    list.setSymlink(w, symlink);
    held += SPARSE_FIELD_BYTES + symlink.length;
  }
  if (rdev && r.preserveDevices) {
    list.setRdev(w, rdev);
    held += SPARSE_FIELD_BYTES;
  }
  if (userName || groupName) {
    list.setIdNames(w, userName, groupName);
    held += SPARSE_FIELD_BYTES + (userName?.length ?? 0) + (groupName?.length ?? 0);
  }

  if (isDir(mode)) {
    // rsync 3.5: a directory asked for only as a parent is sent as an implied one, whatever the sender says.
    const parentOnly = requested !== null && requested.isParentOnly(list.wireName(w));
    if (parentOnly && protocol >= 30) xflags |= XMIT_TOP_DIR | XMIT_NO_CONTENT_DIR;
    const top = (xflags & XMIT_TOP_DIR) !== 0;
    let content: boolean;
    if (parentOnly && top && protocol < 30) {
      content = false;
    } else if (protocol >= 30) {
      content = !(xflags & XMIT_NO_CONTENT_DIR);
    } else if (top) {
      prev.inDelHier = r.recursive;
      content = true;
    } else {
      content = prev.inDelHier;
    }
    list.setDirFlags(w, top, content);
  }

  // Hard links: from 30 the group is the first member's wire index; below, the sender's (dev, ino).
  let hlinked = r.preserveHardLinks && (xflags & XMIT_HLINKED) !== 0;
  if (r.preserveHardLinks && protocol < 28 && isReg(mode)) hlinked = true;
  let ino = -1n;
  if (hlinked && protocol < 30) {
    if (!(protocol >= 28 && xflags & XMIT_SAME_DEV_pre30)) prev.dev = c.longint64();
    ino = c.longint64();
  }
  let sumAt = -1;
  if (r.alwaysChecksum && (isReg(mode) || protocol < 28)) {
    // Before 28 every entry carries one; only a regular file's means anything.
    sumAt = c.bytes(r.checksumLength);
    held += r.checksumLength;
  }
  // Every byte of the entry is read: only now is the (dev, ino) group registered (a retry after
  // NEED_MORE must find the groups as they were).
  if (hlinked) {
    if (protocol >= 30) {
      list.setHlink(w, w, true);
    } else {
      const key = `${prev.dev}:${ino}`;
      let group = prev.hlinkGroups.get(key);
      if (group === undefined) {
        group = prev.hlinkGroups.size;
        prev.hlinkGroups.set(key, group);
        held += SPARSE_FIELD_BYTES + key.length;
      }
      list.setHlink(w, group, null);
      list.setHardlink(w, prev.dev - 1n, ino); // the sender adds 1 so dev is never 0
      held += SPARSE_FIELD_BYTES;
    }
  }
  if (sumAt >= 0 && isReg(mode)) list.setChecksum(w, c.buf.subarray(sumAt, sumAt + r.checksumLength));
  return held;
}

// rsync/io.h: read_varint30 (by the list's protocol, not the reader's)
function readVarint30(reader: ByteReader, protocol: number): Promise<number> {
  return protocol < 30 ? reader.readInt() : reader.readVarint();
}

/** An id-list name: a length byte and bytes (the id lists come once: read without a cursor). */
// rsync/uidlist.c: recv_user_name / recv_group_name (the wire part)
async function readIdName(reader: ByteReader): Promise<Buffer> {
  const len = await reader.readByte();
  return Buffer.from(await reader.readBuf(len, 255));
}

/** recvFlagsAndEntry's answer for the plain end marker (a byte or varint 0). */
const END_OF_LIST = -1;

/** The PrevState's scalars from `from` to `to` (the groups map is shared: only a whole entry changes it). */
function copyPrev(to: PrevState, from: PrevState): void {
  to.mode = from.mode;
  to.mtime = from.mtime;
  to.uid = from.uid;
  to.gid = from.gid;
  to.rdevMajor = from.rdevMajor;
  to.rdev = from.rdev;
  to.dev = from.dev;
  to.inDelHier = from.inDelHier;
}

/**
 * One entry's flags and then the entry, or the end marker: the bytes the entry holds (>= 0),
 * END_OF_LIST, or for an end marker carrying io_error bits, -(bits + 1). Throws NEED_MORE when
 * the bytes have not all arrived.
 */
// rsync/flist.c: recv_file_list (its loop: read the flags, recv_file_entry)
function recvFlagsAndEntry(
  c: RecordCursor,
  list: ReceivedList,
  r: Resolved,
  prev: PrevState,
  varintFlags: boolean,
  safeFlist: boolean,
  maxEntries: number,
  budget: MemoryBudget | undefined,
  charge: { done: boolean },
): number {
  const protocol = r.protocol;
  let xflags: number;
  if (varintFlags) {
    xflags = c.varint();
    if (xflags === 0) return -(c.varint() >>> 0) - 1;
  } else {
    xflags = c.byte();
    if (xflags === 0) return END_OF_LIST;
    if (protocol >= 28 && xflags & XMIT_EXTENDED_FLAGS) xflags |= c.byte() << 8;
    if (protocol >= 28 && xflags === (XMIT_EXTENDED_FLAGS | XMIT_IO_ERROR_ENDLIST)) {
      if (!safeFlist) throw new ProtocolError(`file list: invalid flag 0x${xflags.toString(16)}`);
      return -(c.varint() >>> 0) - 1;
    }
  }
  if (list.length >= maxEntries) throw new ProtocolError(`file list: more than ${maxEntries} entries`);
  // Charged before the entry is read: a flooding peer stops at the cap, not past it (once: not
  // again when the entry is parsed again after NEED_MORE).
  if (!charge.done) {
    budget?.charge(PACKED_ENTRY_BYTES, 'file list');
    charge.done = true;
  }
  return recvFileEntry(c, xflags, list, r, prev);
}

/** The uid or gid list after the entries: `{varint30 id, byte len, name}` up to id 0. */
// rsync/uidlist.c: recv_id_list (one of its two lists)
async function recvOneIdList(reader: ByteReader, protocol: number, id0Names: boolean, maxIds: number, budget?: MemoryBudget): Promise<Map<number, Buffer>> {
  const names = new Map<number, Buffer>();
  for (let count = 0; ; count++) {
    const id = unsigned(await readVarint30(reader, protocol));
    if (id === 0) break;
    // A real sender lists only ids its entries use: never more than the entries.
    if (count >= maxIds) throw new ProtocolError(`file list: id list longer than the ${maxIds} entries it names`);
    const name = await readIdName(reader);
    budget?.charge(ID_NAME_BYTES + name.length, 'id list');
    if (name.length) names.set(id, name);
  }
  if (id0Names) {
    const name = await readIdName(reader);
    if (name.length) names.set(0, name);
  }
  return names;
}

/**
 * Read a whole file list (no incremental recursion) from the daemon's sender: the entries up to
 * the end marker, the uid/gid name lists, and below protocol 30 the io_error trailer. Every name
 * is checked (UnsafeNameError) and every count and length bounded (ProtocolError) before use.
 * Returns the entries in rsync's sorted order with duplicates cleared, so `files[ndx]` is what
 * the sender means by ndx. `reader.protocol` must already be the negotiated protocol.
 */
// rsync/flist.c: recv_file_list
export async function receiveFileList(reader: ByteReader, opts: FlistRecvOptions): Promise<ReceivedFileList> {
  const protocol = opts.protocol;
  if (!Number.isInteger(protocol) || protocol < FLIST_MIN_PROTOCOL || protocol > FLIST_MAX_PROTOCOL) {
    throw new RangeError(`file list: unsupported protocol ${protocol}`);
  }
  const compat = protocol >= 30 ? opts.compatFlags : 0;
  if (compat & CF_INC_RECURSE) throw new ProtocolError('file list: incremental recursion is not supported');
  const r: Resolved = {
    protocol,
    preserveUid: opts.preserveUid ?? false,
    preserveGid: opts.preserveGid ?? false,
    preserveDevices: opts.preserveDevices ?? false,
    preserveSpecials: opts.preserveSpecials ?? false,
    preserveLinks: opts.preserveLinks ?? false,
    preserveHardLinks: opts.preserveHardLinks ?? false,
    alwaysChecksum: opts.alwaysChecksum ?? false,
    checksumLength: opts.checksumLength ?? 0,
    recursive: opts.recursive ?? true,
    deleteMissingArgs: opts.deleteMissingArgs ?? false,
    requested: opts.requested ?? null,
  };
  if (r.alwaysChecksum && !(r.checksumLength > 0 && r.checksumLength <= MAX_CHECKSUM_LEN)) {
    throw new RangeError(`file list: bad checksumLength ${r.checksumLength}`);
  }
  const maxEntries = opts.maxEntries ?? MAX_FLIST_ENTRIES;
  const varintFlags = (compat & CF_VARINT_FLIST_FLAGS) !== 0;
  // A "safe" list may carry io_error in its end marker (compat.c use_safe_inc_flist).
  const safeFlist = protocol >= 31 || (compat & CF_SAFE_FLIST) !== 0;

  const prev: PrevState = {
    mode: 0,
    mtime: 0,
    uid: 0,
    gid: 0,
    rdevMajor: 0,
    rdev: 0n,
    dev: 0n,
    inDelHier: false,
    hlinkGroups: new Map(),
  };
  const list = new ReceivedList(protocol, { hardLinks: r.preserveHardLinks, checksumLength: r.alwaysChecksum ? r.checksumLength : 0 });
  let ioError = 0;
  let totalSize = 0;
  const c = new RecordCursor();
  const saved = { ...prev };
  const charge = { done: false };
  for (;;) {
    // Flags and entry parsed in place from the buffered bytes; when they are not all there yet,
    // what the try did is undone and it runs again once they are (NEED_MORE).
    let got: number;
    c.begin(reader);
    copyPrev(saved, prev);
    const entriesBefore = list.length;
    try {
      got = recvFlagsAndEntry(c, list, r, prev, varintFlags, safeFlist, maxEntries, opts.budget, charge);
    } catch (e) {
      if (e !== NEED_MORE) throw e;
      if (list.length > entriesBefore) list.dropLast();
      copyPrev(prev, saved);
      await reader.fill(NEED_MORE.wanted, 'a file-list entry');
      continue;
    }
    reader.skip(c.length);
    charge.done = false;
    if (got === END_OF_LIST) break;
    if (got < 0) {
      ioError |= -got - 1;
      break;
    }
    opts.budget?.charge(got, 'file list');
    const w = list.length - 1;
    if (opts.afterEntry) {
      const heldAfter = await opts.afterEntry(reader, w, list.wireMode(w));
      opts.budget?.charge(heldAfter, 'xattrs');
    }
    const mode = list.wireMode(w);
    if (isReg(mode) || isLink(mode)) totalSize += list.size(w);
  }

  // rsync/uidlist.c: recv_id_list
  let userNames = new Map<number, Buffer>();
  let groupNames = new Map<number, Buffer>();
  if (!opts.numericIds) {
    const id0Names = (compat & CF_ID0_NAMES) !== 0;
    // With -A the ACLs' named ids are listed too: a bound of a few per entry beyond one ACL's most (each name is charged besides).
    const maxIds = opts.preserveAcls ? list.length * 4 + MAX_WIRE_ACL_COUNT : list.length;
    if (r.preserveUid || opts.preserveAcls) userNames = await recvOneIdList(reader, protocol, id0Names, maxIds, opts.budget);
    if (r.preserveGid || opts.preserveAcls) groupNames = await recvOneIdList(reader, protocol, id0Names, maxIds, opts.budget);
  }
  if (protocol < 30) ioError |= await reader.readInt();

  list.sortAndClean();
  let files: ReceivedEntry[] | undefined;
  return {
    list,
    get files() {
      return (files ??= list.toArray());
    },
    ioError: opts.ignoreErrors ? 0 : ioError & IOERR_VALID_MASK,
    userNames,
    groupNames,
    totalSize,
  };
}
