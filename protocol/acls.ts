// POSIX ACLs on the wire, -A (docs/protocol.md [acls]): after each file-list entry (before its
// xattrs) the access ACL, and for a directory the default ACL, each sent once and then named by
// index; the entries the mode already carries are left out. Linux keeps an ACL in the
// `system.posix_acl_access` / `system.posix_acl_default` xattrs (decoded here, no libacl); the
// caller reads them. The sending side only: our receiver does not take -A yet.
// Counterpart: rsync acls.c (unpack_smb_acl, rsync_acl_strip_perms, rsync_acl_fake_perms,
// send_rsync_acl, send_ida_entries, send_acl, find_matching_rsync_acl).
import { ProtocolError } from './errors.js';
import type { ByteWriter } from './io.js';

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
/** The low bits of a named entry's access on the wire (acls.c XFLAG_*). */
const XFLAG_NAME_IS_USER = 0x2;

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
