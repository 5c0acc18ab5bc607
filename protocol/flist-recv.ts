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
  if (name.length === 0) throw new UnsafeNameError('unsafe file-list name from the daemon: empty', name);
  if (name.length >= MAXPATHLEN) {
    throw new UnsafeNameError(`unsafe file-list name from the daemon: ${name.length} bytes (limit ${MAXPATHLEN - 1})`, name);
  }
  if (name.includes(0)) throw new UnsafeNameError(`unsafe file-list name from the daemon (NUL byte): ${shown(name)}`, name);
  if (name[0] === 0x2f) throw new UnsafeNameError(`unsafe file-list name from the daemon (absolute): ${shown(name)}`, name);
  if (name.length === 1 && name[0] === 0x2e) return;
  let start = 0;
  for (let i = 0; i <= name.length; i++) {
    if (i < name.length && name[i] !== 0x2f) continue;
    const len = i - start;
    const dot = len >= 1 && name[start] === 0x2e;
    if (len === 0 || (dot && len === 1) || (dot && len === 2 && name[start + 1] === 0x2e)) {
      const why = len === 0 ? 'empty component' : len === 1 ? "'.' component" : "'..' component";
      throw new UnsafeNameError(`unsafe file-list name from the daemon (${why}): ${shown(name)}`, name);
    }
    start = i + 1;
  }
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


/** rsync's read_longint as a 64-bit value (dev/ino do not fit a JS number). */
async function readLongint64(reader: ByteReader): Promise<bigint> {
  const low = await reader.readInt();
  if (low !== -1) return BigInt(low);
  return (await reader.readBuf(8)).readBigInt64LE(0);
}

// rsync/io.h: read_varint30 (by the list's protocol, not the reader's)
function readVarint30(reader: ByteReader, protocol: number): Promise<number> {
  return protocol < 30 ? reader.readInt() : reader.readVarint();
}

/** uid_t/gid_t: rsync reads an int32 and keeps it unsigned. */
const unsigned = (n: number): number => n >>> 0;

/**
 * The name of the next entry: the shared prefix of the previous name plus the suffix on the wire,
 * appended to the list's arena. Returns the new entry's wire index.
 */
async function recvName(reader: ByteReader, xflags: number, list: ReceivedList, protocol: number): Promise<number> {
  const l1 = xflags & XMIT_SAME_NAME ? await reader.readByte() : 0;
  const l2 = xflags & XMIT_LONG_NAME ? await readVarint30(reader, protocol) : await reader.readByte();
  const prevLength = list.lastNameLength();
  if (l1 > prevLength) {
    throw new ProtocolError(`file list: entry reuses ${l1} bytes of a ${prevLength}-byte previous name`);
  }
  // Bounded before reading, as rsync does (l2 >= MAXPATHLEN - l1 is its overflow_exit).
  if (l2 < 0 || l2 >= MAXPATHLEN - l1) {
    const shared = list.length ? Buffer.from(list.wireName(list.length - 1).subarray(0, l1)) : Buffer.alloc(0);
    throw new UnsafeNameError(`unsafe file-list name from the daemon: ${l1} + ${l2} bytes (limit ${MAXPATHLEN - 1})`, shared);
  }
  return list.addName(l1, await reader.readBuf(l2, MAXPATHLEN));
}

/** One inline user/group name (XMIT_*_NAME_FOLLOWS, and every id-list entry): a length byte and bytes. */
// rsync/uidlist.c: recv_user_name / recv_group_name (the wire part)
async function recvIdName(reader: ByteReader): Promise<Buffer> {
  const len = await reader.readByte();
  return Buffer.from(await reader.readBuf(len, 255));
}

/**
 * One entry after its flags, appended to `list` (in wire order). Returns the bytes it holds beyond
 * its fixed cost (name, symlink target, checksum), which the caller charges.
 */
// rsync/flist.c: recv_file_entry [flist-recv-attrs]
async function recvFileEntry(reader: ByteReader, xflags: number, list: ReceivedList, r: Resolved, prev: PrevState): Promise<number> {
  const protocol = r.protocol;
  const w = await recvName(reader, xflags, list, protocol);
  const name = list.wireName(w);
  checkReceivedName(name);

  // Protocol >= 30: a later member of a hard-link group names the group's first entry and stops
  // there; every attribute is the first entry's. (rsync reads the index even without -H.)
  if (protocol >= 30 && xflags & XMIT_HLINKED && !(xflags & XMIT_HLINK_FIRST)) {
    const first = await reader.readVarint();
    if (first < 0 || first >= w) {
      throw new ProtocolError(`file list: hard-link reference out of range: ${first} (${w} entries so far)`);
    }
    const mode = list.wireMode(first);
    if (isDir(mode)) throw new ProtocolError(`file list: ${shown(name)} is a hard link to a directory`);
    // The SAME_* state continues from the copied attributes, as rsync's statics do.
    prev.mode = mode;
    prev.mtime = list.wireMtime(first);
    if (r.preserveUid) prev.uid = list.wireUid(first);
    if (r.preserveGid) prev.gid = list.wireGid(first);
    const firstRdev = list.wireRdev(first);
    if (r.preserveDevices && isDevice(mode) && firstRdev) prev.rdevMajor = firstRdev.major;
    if (name.length === 1 && name[0] === 0x2e && !isDir(mode)) {
      throw new ProtocolError("file list: rejecting a non-directory transfer root '.'");
    }
    list.copyAttrs(w, first);
    if (r.preserveHardLinks) list.setHlink(w, first, false);
    return name.length;
  }

  const size = protocol < 30 ? await reader.readLongint() : await reader.readVarlong(3);
  if (!(xflags & XMIT_SAME_TIME)) {
    // 64-bit (and possibly negative) from 30; below, 32 bits read unsigned.
    prev.mtime = protocol >= 30 ? await reader.readVarlong(4) : unsigned(await reader.readInt());
  }
  let nsec = 0;
  if (xflags & XMIT_MOD_NSEC) {
    nsec = await reader.readVarint();
    if (nsec < 0 || nsec > MAX_WIRE_NSEC) throw new ProtocolError(`file list: mtime nanoseconds out of range: ${nsec}`);
  }
  if (!(xflags & XMIT_SAME_MODE)) {
    const mode = unsigned(await reader.readInt());
    // Only the seven file types, and mode 0 when --delete-missing-args asked for it.
    if (!VALID_TYPES.has(fileType(mode)) && !(mode === 0 && r.deleteMissingArgs)) {
      throw new ProtocolError(`file list: invalid file mode 0${mode.toString(8)} for ${shown(name)}`);
    }
    prev.mode = mode;
  }
  const mode = prev.mode;
  if (mode === 0 && !r.deleteMissingArgs) throw new ProtocolError(`file list: entry ${shown(name)} without a mode`);
  // rsync 3.5: a name the pull never asked for ends it (exit 4) [flist-recv-safe].
  r.requested?.check(name, isDir(mode));

  let userName: Buffer | undefined;
  let groupName: Buffer | undefined;
  if (r.preserveUid && !(xflags & XMIT_SAME_UID)) {
    prev.uid = unsigned(await readVarint30(reader, protocol));
    if (protocol >= 30 && xflags & XMIT_USER_NAME_FOLLOWS) userName = await recvIdName(reader);
  }
  if (r.preserveGid && !(xflags & XMIT_SAME_GID)) {
    prev.gid = unsigned(await readVarint30(reader, protocol));
    if (protocol >= 30 && xflags & XMIT_GROUP_NAME_FOLLOWS) groupName = await recvIdName(reader);
  }

  let rdev: { major: number; minor: number } | undefined;
  let length = size;
  if ((r.preserveDevices && isDevice(mode)) || (r.preserveSpecials && isSpecial(mode) && protocol < 31)) {
    if (protocol < 28) {
      if (!(xflags & XMIT_SAME_RDEV_pre28)) prev.rdev = BigInt.asUintN(64, BigInt(await reader.readInt()));
      rdev = splitDev(prev.rdev);
    } else {
      if (!(xflags & XMIT_SAME_RDEV_MAJOR)) prev.rdevMajor = unsigned(await readVarint30(reader, protocol));
      let minor: number;
      if (protocol >= 30) minor = await reader.readVarint();
      else if (xflags & XMIT_RDEV_MINOR_8_pre30) minor = await reader.readByte();
      else minor = await reader.readInt();
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
    const len = await readVarint30(reader, protocol);
    if (len < 0 || len >= MAXPATHLEN) throw new ProtocolError(`file list: symlink target of ${len} bytes for ${shown(name)}`);
    symlink = Buffer.from(await reader.readBuf(len));
    if (symlink.includes(0)) throw new ProtocolError(`file list: symlink target with a NUL byte for ${shown(name)}`);
  }

  if (size < 0) throw new ProtocolError(`file list: negative size for ${shown(name)}`);
  if (name.length === 1 && name[0] === 0x2e && !isDir(mode)) {
    throw new ProtocolError("file list: rejecting a non-directory transfer root '.'");
  }

  list.setAttrs(w, mode, length, prev.mtime, nsec, r.preserveUid ? prev.uid : 0, r.preserveGid ? prev.gid : 0);
  let held = name.length;
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
    const parentOnly = r.requested !== null && r.requested.isParentOnly(name);
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
  if (hlinked) {
    if (protocol >= 30) {
      list.setHlink(w, w, true);
    } else {
      if (!(protocol >= 28 && xflags & XMIT_SAME_DEV_pre30)) prev.dev = await readLongint64(reader);
      const ino = await readLongint64(reader);
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

  if (r.alwaysChecksum && (isReg(mode) || protocol < 28)) {
    // Before 28 every entry carries one; only a regular file's means anything.
    const sum = await reader.readBuf(r.checksumLength);
    if (isReg(mode)) list.setChecksum(w, sum);
    held += r.checksumLength;
  }
  return held;
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
    const name = await recvIdName(reader);
    budget?.charge(ID_NAME_BYTES + name.length, 'id list');
    if (name.length) names.set(id, name);
  }
  if (id0Names) {
    const name = await recvIdName(reader);
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
  for (;;) {
    let xflags: number;
    if (varintFlags) {
      xflags = await reader.readVarint();
      if (xflags === 0) {
        ioError |= await reader.readVarint();
        break;
      }
    } else {
      xflags = await reader.readByte();
      if (xflags === 0) break;
      if (protocol >= 28 && xflags & XMIT_EXTENDED_FLAGS) xflags |= (await reader.readByte()) << 8;
      if (protocol >= 28 && xflags === (XMIT_EXTENDED_FLAGS | XMIT_IO_ERROR_ENDLIST)) {
        if (!safeFlist) throw new ProtocolError(`file list: invalid flag 0x${xflags.toString(16)}`);
        ioError |= await reader.readVarint();
        break;
      }
    }
    if (list.length >= maxEntries) throw new ProtocolError(`file list: more than ${maxEntries} entries`);
    // Charged before the entry is read: a flooding peer stops at the cap, not past it.
    opts.budget?.charge(PACKED_ENTRY_BYTES, 'file list');
    const held = await recvFileEntry(reader, xflags, list, r, prev);
    opts.budget?.charge(held, 'file list');
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
