// POSIX ACLs on the wire, -A (docs/protocol.md [acls]): after each file-list entry (before its
// xattrs) the access ACL, and for a directory the default ACL, each sent once and then named by
// index; the entries the mode already carries are left out. Linux keeps an ACL in the
// `system.posix_acl_access` / `system.posix_acl_default` xattrs (decoded and encoded here, no
// libacl); the caller reads and writes them. Both sides: AclSender, and AclReceiver (the ACLs
// received with the list, the generator's comparison, the blobs a file is given).
// Counterpart: rsync acls.c (unpack_smb_acl, rsync_acl_strip_perms, rsync_acl_fake_perms,
// send_rsync_acl, send_ida_entries, send_acl, find_matching_rsync_acl; recv_rsync_acl,
// recv_ida_entries, receive_acl, match_acl_ids, rsync_acl_equal_enough, pack_smb_acl,
// change_sacl_perms, set_rsync_acl, set_acl).
import { ProtocolError } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';

/** An rsync_acl field with no entry (rsync's NO_ENTRY). */
export const NO_ENTRY = 0x80;

// Linux's ACL xattr format (include/uapi/linux/posix_acl_xattr.h): a version, then 8-byte entries.
export const POSIX_ACL_XATTR_VERSION = 2;
export const ACL_USER_OBJ = 0x01;
export const ACL_USER = 0x02;
export const ACL_GROUP_OBJ = 0x04;
export const ACL_GROUP = 0x08;
export const ACL_MASK = 0x10;
export const ACL_OTHER = 0x20;
/** Most entries we decode from one ACL (Linux allows 8191 in an xattr's 64 KiB). */
export const MAX_ACL_ENTRIES = 8191;

// rsync's flags for what an ACL on the wire carries (acls.c XMIT_*).
const XMIT_USER_OBJ = 1 << 0;
const XMIT_GROUP_OBJ = 1 << 1;
const XMIT_MASK_OBJ = 1 << 2;
const XMIT_OTHER_OBJ = 1 << 3;
const XMIT_NAME_LIST = 1 << 4;
const XMIT_ALL = XMIT_USER_OBJ | XMIT_GROUP_OBJ | XMIT_MASK_OBJ | XMIT_OTHER_OBJ | XMIT_NAME_LIST;
/** The low bits of a named entry's access on the wire (acls.c XFLAG_*). */
const XFLAG_NAME_FOLLOWS = 0x1;
const XFLAG_NAME_IS_USER = 0x2;
/** Most named entries one ACL on the wire may have (rsync.h MAX_WIRE_ACL_COUNT). */
export const MAX_WIRE_ACL_COUNT = 65536;

/** One entry of a Linux ACL xattr: tag, permission bits (rwx), and for ACL_USER/ACL_GROUP the id. */
export interface PosixAclEntry {
  tag: number;
  perm: number;
  id: number;
}

/** A named entry of an rsync ACL: a user's or a group's id and rwx bits. */
export interface AclName {
  id: number;
  access: number;
  user: boolean;
}

/** rsync's rsync_acl: the four object entries (NO_ENTRY when absent) and the named ones in order. */
export interface RsyncAcl {
  userObj: number;
  groupObj: number;
  maskObj: number;
  otherObj: number;
  names: AclName[];
}

/** An ACL with no entry at all (a directory without a default ACL). */
export function emptyAcl(): RsyncAcl {
  return { userObj: NO_ENTRY, groupObj: NO_ENTRY, maskObj: NO_ENTRY, otherObj: NO_ENTRY, names: [] };
}

/** A Linux ACL xattr's entries; a malformed one is an error (the caller reports the file). */
// linux/fs/posix_acl.c: posix_acl_from_xattr (the format checks) [acl-read]
export function decodePosixAcl(blob: Uint8Array): PosixAclEntry[] {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (blob.length < 4 || (blob.length - 4) % 8 !== 0) throw new RangeError(`ACL xattr of ${blob.length} bytes`);
  if (view.getUint32(0, true) !== POSIX_ACL_XATTR_VERSION) throw new RangeError(`ACL xattr version ${view.getUint32(0, true)}`);
  const count = (blob.length - 4) / 8;
  if (count > MAX_ACL_ENTRIES) throw new RangeError(`ACL xattr with ${count} entries`);
  const entries: PosixAclEntry[] = [];
  for (let k = 0; k < count; k++) {
    const at = 4 + k * 8;
    const tag = view.getUint16(at, true);
    const perm = view.getUint16(at + 2, true) & 7;
    const id = view.getUint32(at + 4, true);
    entries.push({ tag, perm, id: tag === ACL_USER || tag === ACL_GROUP ? id : 0xffffffff });
  }
  return entries;
}

/** The entries as Linux stores them (the kernel checks their order and completeness on set). */
export function encodePosixAcl(entries: readonly PosixAclEntry[]): Buffer {
  const blob = Buffer.alloc(4 + entries.length * 8);
  blob.writeUInt32LE(POSIX_ACL_XATTR_VERSION, 0);
  entries.forEach((e, k) => {
    blob.writeUInt16LE(e.tag, 4 + k * 8);
    blob.writeUInt16LE(e.perm & 7, 6 + k * 8);
    blob.writeUInt32LE(e.tag === ACL_USER || e.tag === ACL_GROUP ? e.id >>> 0 : 0xffffffff, 8 + k * 8);
  });
  return blob;
}

/** The rsync ACL of a system ACL, verbatim (a duplicate object entry is ignored, as rsync warns and ignores it). */
// rsync/acls.c: unpack_smb_acl
export function rsyncAclOf(entries: readonly PosixAclEntry[]): RsyncAcl {
  const racl = emptyAcl();
  for (const e of entries) {
    switch (e.tag) {
      case ACL_USER_OBJ:
        if (racl.userObj === NO_ENTRY) racl.userObj = e.perm;
        break;
      case ACL_GROUP_OBJ:
        if (racl.groupObj === NO_ENTRY) racl.groupObj = e.perm;
        break;
      case ACL_MASK:
        if (racl.maskObj === NO_ENTRY) racl.maskObj = e.perm;
        break;
      case ACL_OTHER:
        if (racl.otherObj === NO_ENTRY) racl.otherObj = e.perm;
        break;
      case ACL_USER:
      case ACL_GROUP:
        racl.names.push({ id: e.id, access: e.perm, user: e.tag === ACL_USER });
        break;
    }
  }
  return racl;
}

/** The access ACL of a file without one: the mode's three permission triplets. */
// rsync/acls.c: rsync_acl_fake_perms
export function aclFromMode(mode: number): RsyncAcl {
  return { ...emptyAcl(), userObj: (mode >> 6) & 7, groupObj: (mode >> 3) & 7, otherObj: mode & 7 };
}

/** The access ACL as it travels: what the mode carries left out (the owner's, other's, and the group's or the mask's bits). */
// rsync/acls.c: rsync_acl_strip_perms
export function stripModePerms(racl: RsyncAcl, mode: number): RsyncAcl {
  const out = { ...racl, userObj: NO_ENTRY, otherObj: NO_ENTRY };
  if (racl.maskObj === NO_ENTRY) out.groupObj = NO_ENTRY;
  else {
    const groupPerms = (mode >> 3) & 7;
    if (racl.groupObj === groupPerms) out.groupObj = NO_ENTRY;
    if (racl.names.length !== 0 && racl.maskObj === groupPerms) out.maskObj = NO_ENTRY;
  }
  return out;
}

function sameAcl(a: RsyncAcl, b: RsyncAcl): boolean {
  return (
    a.userObj === b.userObj &&
    a.groupObj === b.groupObj &&
    a.maskObj === b.maskObj &&
    a.otherObj === b.otherObj &&
    a.names.length === b.names.length &&
    a.names.every((n, k) => n.id === b.names[k]!.id && n.access === b.names[k]!.access && n.user === b.names[k]!.user)
  );
}

/** The ids an ACL names, for the list's uid and gid name lists (rsync's add_uid/add_gid). */
export interface AclIds {
  uids: number[];
  gids: number[];
}

/**
 * The sender's -A: the access and default ACLs sent so far (each kind its own table, as rsync's
 * access_acl_list and default_acl_list), an equal one named by index.
 */
export class AclSender {
  private readonly sent: { access: RsyncAcl[]; default: RsyncAcl[] } = { access: [], default: [] };
  /** Where the last search matched (rsync starts there: neighbours often share an ACL). */
  private readonly lastMatch = { access: -1, default: -1 };

  /**
   * After an entry: its access ACL (null: none, the mode's), and for a directory its default ACL
   * (null: none). `mode` is the mode the list carries. Returns the ids its named entries use.
   */
  // rsync/acls.c: send_acl [acl-send]
  send(writer: ByteWriter, mode: number, isDir: boolean, access: RsyncAcl | null, defaults: RsyncAcl | null): AclIds {
    const ids: AclIds = { uids: [], gids: [] };
    this.sendOne(writer, 'access', stripModePerms(access ?? aclFromMode(mode), mode), ids);
    if (isDir) this.sendOne(writer, 'default', defaults ?? emptyAcl(), ids);
    return ids;
  }

  // rsync/acls.c: send_rsync_acl, find_matching_rsync_acl, send_ida_entries
  private sendOne(writer: ByteWriter, kind: 'access' | 'default', racl: RsyncAcl, ids: AclIds): void {
    const table = this.sent[kind];
    let found = -1;
    let at = this.lastMatch[kind] < 0 ? table.length - 1 : this.lastMatch[kind];
    for (let n = 0; n < table.length; n++) {
      if (sameAcl(table[at]!, racl)) {
        found = at;
        break;
      }
      at = at === 0 ? table.length - 1 : at - 1;
    }
    this.lastMatch[kind] = found;
    writer.writeVarint(found + 1);
    if (found >= 0) return;
    let flags = 0;
    if (racl.userObj !== NO_ENTRY) flags |= XMIT_USER_OBJ;
    if (racl.groupObj !== NO_ENTRY) flags |= XMIT_GROUP_OBJ;
    if (racl.maskObj !== NO_ENTRY) flags |= XMIT_MASK_OBJ;
    if (racl.otherObj !== NO_ENTRY) flags |= XMIT_OTHER_OBJ;
    if (racl.names.length) flags |= XMIT_NAME_LIST;
    writer.writeByte(flags);
    if (flags & XMIT_USER_OBJ) writer.writeVarint(racl.userObj);
    if (flags & XMIT_GROUP_OBJ) writer.writeVarint(racl.groupObj);
    if (flags & XMIT_MASK_OBJ) writer.writeVarint(racl.maskObj);
    if (flags & XMIT_OTHER_OBJ) writer.writeVarint(racl.otherObj);
    if (flags & XMIT_NAME_LIST) {
      writer.writeVarint(racl.names.length);
      for (const n of racl.names) {
        if (n.id < 0 || n.id > 0xffffffff) throw new ProtocolError(`ACL id ${n.id} out of range`);
        // The id as a varint (a uint32 past 2^31 travels as its int32), then the bits shifted past two flag bits.
        writer.writeVarint(n.id | 0);
        writer.writeVarint((n.access << 2) | (n.user ? XFLAG_NAME_IS_USER : 0));
        (n.user ? ids.uids : ids.gids).push(n.id);
      }
    }
    table.push(racl);
  }
}

/** What a received ACL costs to hold (an object and its names), for a connection's memory cap. */
const ACL_BYTES = 96;
const ACL_NAME_BYTES = 40;

/** Named entries in rsync's order: users first, then by id (acls.c id_access_sorter). */
function sortedNames(names: readonly AclName[]): AclName[] {
  return [...names].sort((a, b) => (a.user !== b.user ? (a.user ? -1 : 1) : a.id - b.id));
}

/** rwx bits of an object entry (rsync's SMB_ACL_VALID_OBJ_BITS), or a ProtocolError. */
// rsync/acls.c: recv_acl_access
function checkedAccess(access: number, what: string): number {
  if (access < 0 || access & ~7) throw new ProtocolError(`recv_acl_access: ${what} value out of range: ${(access >>> 0).toString(16)}`);
  return access;
}

/** A file's ACLs as the receiving side finds them (rsync's sxp acc_acl/def_acl, full, not stripped). */
export interface AclsHere {
  /** The access ACL: the xattr's, or the mode's three entries when there is none. */
  access: RsyncAcl;
  /** A directory's default ACL (empty when there is none); null for anything else. */
  defaults: RsyncAcl | null;
}

/** One write that gives a file the sender's ACL: an xattr blob, or (a default ACL gone) its removal. */
export interface AclWrite {
  kind: 'access' | 'default';
  /** The Linux xattr value; null removes the default ACL. */
  blob: Buffer | null;
  /** After an access ACL is set: the mode's permission bits the kernel gives the file (rsync's cur_mode). */
  mode?: number;
}

/** Whether the extended entries of the ACL here equal the received (condensed) access ACL for mode `m`. */
// rsync/acls.c: rsync_acl_equal_enough [acl-diff]
export function accessEqualEnough(here: RsyncAcl, sent: RsyncAcl, m: number): boolean {
  if ((here.maskObj === NO_ENTRY) !== (sent.maskObj === NO_ENTRY)) return false;
  if (here.maskObj !== NO_ENTRY) {
    if (sent.groupObj === NO_ENTRY) {
      if (here.groupObj !== ((m >> 3) & 7)) return false;
    } else if (here.groupObj !== sent.groupObj) return false;
  }
  return sameNames(here.names, sent.names);
}

function sameNames(a: readonly AclName[], b: readonly AclName[]): boolean {
  if (a.length !== b.length) return false;
  const x = sortedNames(a);
  const y = sortedNames(b);
  return x.every((n, k) => n.id === y[k]!.id && n.access === y[k]!.access && n.user === y[k]!.user);
}

/** Whether two full ACLs are equal (a default ACL's comparison). */
// rsync/acls.c: rsync_acl_equal
export function fullAclEqual(a: RsyncAcl, b: RsyncAcl): boolean {
  return a.userObj === b.userObj && a.groupObj === b.groupObj && a.maskObj === b.maskObj && a.otherObj === b.otherObj && sameNames(a.names, b.names);
}

/** An rsync ACL as Linux's entries, in the order libacl writes them (by tag, then id). */
// rsync/acls.c: pack_smb_acl
export function posixEntriesOf(racl: RsyncAcl): PosixAclEntry[] {
  const entries: PosixAclEntry[] = [{ tag: ACL_USER_OBJ, perm: racl.userObj & 7, id: 0 }];
  for (const n of sortedNames(racl.names)) if (n.user) entries.push({ tag: ACL_USER, perm: n.access, id: n.id });
  entries.push({ tag: ACL_GROUP_OBJ, perm: racl.groupObj & 7, id: 0 });
  for (const n of sortedNames(racl.names)) if (!n.user) entries.push({ tag: ACL_GROUP, perm: n.access, id: n.id });
  if (racl.maskObj !== NO_ENTRY) entries.push({ tag: ACL_MASK, perm: racl.maskObj, id: 0 });
  entries.push({ tag: ACL_OTHER, perm: racl.otherObj & 7, id: 0 });
  return entries;
}

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_ISVTX = 0o1000;

/**
 * The received access ACL with the new mode's bits put in (owner, other, the mask, and the group
 * entry when it travelled as the mode's), and the mode the file has once it is set. While a
 * directory's sticky bit goes on, or a file's setuid/setgid goes off, group and other get nothing
 * until the chmod that follows.
 */
// rsync/acls.c: change_sacl_perms
export function withModePerms(sent: RsyncAcl, oldMode: number, mode: number, isDir: boolean): { racl: RsyncAcl; mode: number } {
  if (isDir ? mode & S_ISVTX && !(oldMode & S_ISVTX) : (oldMode & S_ISUID && !(mode & S_ISUID)) || (oldMode & S_ISGID && !(mode & S_ISGID))) mode &= ~0o077;
  const racl: RsyncAcl = {
    userObj: (mode >> 6) & 7,
    groupObj: sent.groupObj === NO_ENTRY ? (mode >> 3) & 7 : sent.groupObj,
    maskObj: sent.maskObj === NO_ENTRY ? NO_ENTRY : (mode >> 3) & 7,
    otherObj: mode & 7,
    names: sent.names,
  };
  return { racl, mode: (oldMode & ~0o777) | (mode & 0o777) };
}

/**
 * The receiving side's -A: the access and default ACLs received with the list (each kind its own
 * table, an entry names one by index), which entry has which, the ids mapped to ours, and what a
 * file here needs to match.
 */
export class AclReceiver {
  private readonly tables: { access: RsyncAcl[]; default: RsyncAcl[] } = { access: [], default: [] };
  /** Wire index → table index (-1: none, a symlink). */
  private accessOf = new Int32Array(1024).fill(-1);
  private defaultOf = new Int32Array(1024).fill(-1);
  private wireIndex: (ndx: number) => number = (ndx) => ndx;

  /** The wire index of an ndx (ReceivedList.wireIndex), once the list is sorted. */
  bind(wireIndex: (ndx: number) => number): void {
    this.wireIndex = wireIndex;
  }

  /** After entry `w` (wire order, mode `mode`): its access ACL, and a directory's default ACL. Returns the bytes now held. */
  // rsync/acls.c: receive_acl [acl-recv]
  async receive(reader: ByteReader, w: number, mode: number): Promise<number> {
    if ((mode & 0o170000) === 0o120000) return 0; // a symlink has none
    let bytes = 0;
    if (w >= this.accessOf.length) {
      const size = Math.max(w + 1, this.accessOf.length * 2);
      const grow = (old: Int32Array) => {
        const grown = new Int32Array(size).fill(-1);
        grown.set(old);
        return grown;
      };
      this.accessOf = grow(this.accessOf);
      this.defaultOf = grow(this.defaultOf);
      bytes += size * 8;
    }
    const access = await this.receiveOne(reader, 'access', mode);
    this.accessOf[w] = access.index;
    bytes += access.bytes;
    if ((mode & 0o170000) === 0o040000) {
      const defaults = await this.receiveOne(reader, 'default', 0);
      this.defaultOf[w] = defaults.index;
      bytes += defaults.bytes;
    }
    return bytes;
  }

  // rsync/acls.c: recv_rsync_acl, recv_ida_entries
  private async receiveOne(reader: ByteReader, kind: 'access' | 'default', mode: number): Promise<{ index: number; bytes: number }> {
    const table = this.tables[kind];
    const ref = await reader.readVarint();
    if (ref < 0 || ref > table.length) throw new ProtocolError(`recv_acl_index: ${kind} ACL index ${ref} > ${table.length}`);
    if (ref !== 0) return { index: ref - 1, bytes: 0 };
    const flags = await reader.readByte();
    if (flags & ~XMIT_ALL) throw new ProtocolError(`${kind} ACL with unknown flags 0x${flags.toString(16)}`);
    const racl = emptyAcl();
    if (flags & XMIT_USER_OBJ) racl.userObj = checkedAccess(await reader.readVarint(), 'user_obj');
    if (flags & XMIT_GROUP_OBJ) racl.groupObj = checkedAccess(await reader.readVarint(), 'group_obj');
    if (flags & XMIT_MASK_OBJ) racl.maskObj = checkedAccess(await reader.readVarint(), 'mask_obj');
    if (flags & XMIT_OTHER_OBJ) racl.otherObj = checkedAccess(await reader.readVarint(), 'other_obj');
    let computedMask = 0;
    if (flags & XMIT_NAME_LIST) {
      const count = await reader.readVarint();
      if (count < 0 || count > MAX_WIRE_ACL_COUNT) throw new ProtocolError(`ACL count ${count} out of range (at most ${MAX_WIRE_ACL_COUNT})`);
      for (let k = 0; k < count; k++) {
        const id = (await reader.readVarint()) >>> 0;
        const wire = await reader.readVarint();
        if (wire < 0 || wire >> 2 > 7) throw new ProtocolError(`recv_acl_access: named entry value out of range: ${(wire >>> 0).toString(16)}`);
        const user = (wire & XFLAG_NAME_IS_USER) !== 0;
        // A name inline (rsync sends one only with incremental recursion, which we never
        // negotiate): read past; the id is mapped through the id lists as any other.
        if (wire & XFLAG_NAME_FOLLOWS) await reader.readBuf(await reader.readByte());
        racl.names.push({ id, access: wire >> 2, user });
        computedMask |= wire >> 2;
      }
    }
    // A list needs a mask: an access ACL's is the mode's group bits; a default ACL's covers the names and the group.
    if (racl.names.length && racl.maskObj === NO_ENTRY) {
      racl.maskObj = kind === 'access' ? (mode >> 3) & 7 : computedMask | (racl.groupObj & 7);
    }
    table.push(racl);
    return { index: table.length - 1, bytes: ACL_BYTES + racl.names.length * ACL_NAME_BYTES };
  }

  /** The sender's ids to ours, in every ACL received (null: that kind is kept as sent). */
  // rsync/acls.c: match_acl_ids
  mapIds(mapUid: ((id: number) => number) | null, mapGid: ((id: number) => number) | null): void {
    for (const table of [this.tables.access, this.tables.default]) {
      for (const racl of table) {
        for (const n of racl.names) {
          const map = n.user ? mapUid : mapGid;
          if (map) n.id = map(n.id) >>> 0;
        }
      }
    }
  }

  /** The access ACL and a directory's default ACL of ndx as received (null: none, a symlink). */
  acls(ndx: number): { access: RsyncAcl; defaults: RsyncAcl | null } | null {
    const w = this.wireIndex(ndx);
    const a = w < this.accessOf.length ? this.accessOf[w]! : -1;
    if (a < 0) return null;
    const d = this.defaultOf[w]!;
    return { access: this.tables.access[a]!, defaults: d >= 0 ? this.tables.default[d]! : null };
  }

  /** The generator: whether the ACLs here differ from the sender's for a file of mode `mode` (ITEM_REPORT_ACL). */
  // rsync/acls.c: set_acl (with no name: the comparison) [acl-diff]
  differs(ndx: number, here: AclsHere, mode: number): boolean {
    return this.writes(ndx, here, mode, mode).length !== 0;
  }

  /**
   * What gives the file here the sender's ACLs: the access ACL (with `newMode`'s bits, when its
   * extended entries differ) and a directory's default ACL (when it differs; removed when the
   * sender's is empty). `oldMode` is the file's mode now.
   */
  // rsync/acls.c: set_acl, set_rsync_acl [acl-set]
  writes(ndx: number, here: AclsHere, oldMode: number, newMode: number): AclWrite[] {
    const sent = this.acls(ndx);
    if (!sent) return [];
    const out: AclWrite[] = [];
    const dir = (newMode & 0o170000) === 0o040000;
    if (!accessEqualEnough(here.access, sent.access, newMode)) {
      const { racl, mode } = withModePerms(sent.access, oldMode, newMode, dir);
      out.push({ kind: 'access', blob: encodePosixAcl(posixEntriesOf(racl)), mode });
    }
    if (dir && sent.defaults && !fullAclEqual(here.defaults ?? emptyAcl(), sent.defaults)) {
      out.push({ kind: 'default', blob: sent.defaults.userObj === NO_ENTRY ? null : encodePosixAcl(posixEntriesOf(sent.defaults)) });
    }
    return out;
  }
}

/**
 * The receiving side's -A over the destination, as the generator and the receiver use it
 * (src/transfer/local-acls.ts makes it): the comparison for itemize and the setting.
 */
export interface AclTarget {
  /** Whether the ACLs of the file here (it exists; not a symlink) differ from the sender's (ITEM_REPORT_ACL). */
  differs(ndx: number, name: Buffer, entryMode: number): boolean;
  /**
   * Give the file here the sender's ACLs (not a symlink's). `early`: a directory the generator
   * has just made or met, its final mode still to come (it stays owner-writable till then).
   * Returns what failed, in rsync's words (each a failed file, exit 23), and the mode the file
   * has once its access ACL was set (null: it was not).
   */
  apply(ndx: number, name: Buffer, entryMode: number, early: boolean): { failed: string[]; mode: number | null };
}
