// -A on the sending side: each listed file's POSIX ACLs read through the addon (Linux keeps them in
// the system.posix_acl_access / system.posix_acl_default xattrs) and sent after its entry by
// protocol/acls.ts, their ids added to the list's uid/gid name lists. Where it stands: protocol
// 30+, and only our sender (a push, lsyncd serve's side of a pull). Counterpart: rsync acls.c
// get_acl (sys_acl_get_file), flist.c send_file_name (send_acl).
import type { TransferOptions } from '../../protocol/args.js';
import { AclSender, decodePosixAcl, emptyAcl, rsyncAclOf, type RsyncAcl } from '../../protocol/acls.js';
import { EXIT } from '../../protocol/errors.js';
import type { AfterEntry } from '../../protocol/flist-packed-send.js';
import type { PackedFileList } from '../../protocol/flist-packed.js';
import type { ByteWriter } from '../../protocol/io.js';
import { isDevice, isDir, isLink, isReg, isSpecial } from '../../protocol/modes.js';
import { xattrCalls, type XattrCalls } from '../addon.js';
import { XattrUnsupportedError } from './local-xattrs.js';

const ACCESS = Buffer.from('system.posix_acl_access');
const DEFAULT = Buffer.from('system.posix_acl_default');

// rsync/compat.c: setup_protocol (preserve_acls below 30)
export function checkAclProtocol(protocol: number): void {
  if (protocol < 30) throw new XattrUnsupportedError('ERR_RSYNC_ACLS_PROTOCOL', `--acls requires protocol 30 or higher (negotiated ${protocol}).`, EXIT.PROTOCOL);
}

/** One ACL of a file (null: it has none of this kind); unreadable or malformed: a warning and null. */
// rsync/acls.c: get_rsync_acl
function readAcl(calls: XattrCalls, path: Buffer, which: Buffer, onWarning: (text: string) => void): RsyncAcl | null {
  try {
    const blob = calls.get(path, which);
    return blob ? rsyncAclOf(decodePosixAcl(blob)) : null;
  } catch (e) {
    onWarning(`get_acl: sys_acl_get_file(${path.toString()}, ${which.equals(ACCESS) ? 'ACL_TYPE_ACCESS' : 'ACL_TYPE_DEFAULT'}): ${(e as Error).message}\n`);
    return null;
  }
}

/**
 * The sender's -A, as what follows each list entry (before its xattrs): regular files and
 * directories, devices and specials with -D (without it an empty ACL, as rsync sends), never a
 * symlink. Null without -A; throws below protocol 30 or without the addon.
 */
// rsync/flist.c: send_file_name (get_acl, send_acl); acls.c get_acl_fdat
export function senderAcls(
  list: PackedFileList,
  writer: ByteWriter,
  transfer: Pick<TransferOptions, 'acls' | 'devices'>,
  protocol: number,
  onWarning: (text: string) => void,
): AfterEntry | null {
  if (!transfer.acls) return null;
  checkAclProtocol(protocol);
  const calls = xattrCalls();
  if (!calls) throw new XattrUnsupportedError('ERR_RSYNC_ACLS', 'ACLs need the native addon (run `npm rebuild lsyncd`)', EXIT.UNSUPPORTED);
  const acls = new AclSender();
  return (i, encoder) => {
    const mode = list.mode[i]!;
    if (isLink(mode)) return;
    const dir = isDir(mode);
    const has = isReg(mode) || dir || ((isDevice(mode) || isSpecial(mode)) && transfer.devices);
    const path = list.localPath(i);
    const access = has ? readAcl(calls, path, ACCESS, onWarning) : emptyAcl();
    const defaults = dir ? readAcl(calls, path, DEFAULT, onWarning) : null;
    encoder.addIds(acls.send(writer, mode, dir, access, defaults));
  };
}

/** Both hooks after an entry, in rsync's order: the ACLs, then the xattrs. */
export function afterEntries(...hooks: Array<AfterEntry | null | undefined>): AfterEntry | undefined {
  const present = hooks.filter((h): h is AfterEntry => !!h);
  if (present.length === 0) return undefined;
  if (present.length === 1) return present[0];
  return (i, encoder) => {
    for (const hook of present) hook(i, encoder);
  };
}
