// -A on local files, through the addon (Linux keeps an ACL in the system.posix_acl_access /
// system.posix_acl_default xattrs). Sending: each listed file's ACLs read and sent after its entry
// by protocol/acls.ts, their ids added to the list's uid/gid name lists. Receiving: the ACLs that
// came with the list compared with and written to the destination's files (DestTree's confined
// paths, lsetxattr). Protocol 30+. Counterpart: rsync acls.c get_acl (sys_acl_get_file),
// set_acl (sys_acl_set_file, sys_acl_delete_def_file), flist.c send_file_name (send_acl).
import { lstatSync } from 'node:fs';
import type { TransferOptions } from '../../protocol/args.js';
import { AclReceiver, AclSender, aclFromMode, decodePosixAcl, emptyAcl, rsyncAclOf, type AclTarget, type AclsHere, type RsyncAcl } from '../../protocol/acls.js';
import { EXIT } from '../../protocol/errors.js';
import type { AfterEntry } from '../../protocol/flist-packed-send.js';
import type { PackedFileList } from '../../protocol/flist-packed.js';
import type { ByteWriter } from '../../protocol/io.js';
import { isDevice, isDir, isLink, isReg, isSpecial } from '../../protocol/modes.js';
import { xattrCalls, type XattrCalls } from '../addon.js';
import type { DestTree } from './dest-tree.js';
import { XattrUnsupportedError } from './local-xattrs.js';

const ACCESS = Buffer.from('system.posix_acl_access');
const DEFAULT = Buffer.from('system.posix_acl_default');

// rsync/compat.c: setup_protocol (preserve_acls below 30)
export function checkAclProtocol(protocol: number): void {
  if (protocol < 30) throw new XattrUnsupportedError('ERR_RSYNC_ACLS_PROTOCOL', `--acls requires protocol 30 or higher (negotiated ${protocol}).`, EXIT.PROTOCOL);
}

/** The addon's calls, or the error that says why -A cannot be honoured here. */
function requireCalls(): XattrCalls {
  const calls = xattrCalls();
  if (!calls) throw new XattrUnsupportedError('ERR_RSYNC_ACLS', 'ACLs need the native addon (run `npm rebuild lsyncd`)', EXIT.UNSUPPORTED);
  return calls;
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
  const calls = requireCalls();
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

/** The receiving side's -A, made before the list arrives (the ACLs come with it); null without -A. Throws below protocol 30 or without the addon. */
export function receiverAcls(transfer: Pick<TransferOptions, 'acls'>, protocol: number): AclReceiver | null {
  if (!transfer.acls) return null;
  checkAclProtocol(protocol);
  requireCalls();
  return new AclReceiver();
}

/** The ACLs a file here has, full (rsync's get_acl on the receiving side): the mode's entries when it has no access ACL. */
// rsync/acls.c: get_acl_fdat, get_rsync_acl (rsync_acl_fake_perms)
function readHere(calls: XattrCalls, path: Buffer, mode: number, dir: boolean): AclsHere {
  const access = calls.get(path, ACCESS);
  const defaults = dir ? calls.get(path, DEFAULT) : null;
  return {
    access: access ? rsyncAclOf(decodePosixAcl(access)) : aclFromMode(mode),
    defaults: dir ? (defaults ? rsyncAclOf(decodePosixAcl(defaults)) : emptyAcl()) : null,
  };
}

/**
 * The received ACLs over the destination: each file compared (itemize's `a`) and given the
 * sender's ACLs (lsetxattr of the blob; the kernel drops an access ACL that is only the mode's and
 * sets the mode's bits from it; a default ACL the sender has not is removed). Nothing is written
 * with -n. A file whose ACLs cannot be read counts as differing and fails to be set.
 */
// rsync/acls.c: set_acl; rsync.c set_file_attrs (the ACL part)
export function treeAcls(receiver: AclReceiver, tree: DestTree, dryRun: boolean): AclTarget {
  const calls = requireCalls();
  const stat = (path: Buffer) => {
    const st = lstatSync(path, { throwIfNoEntry: false });
    return st && !st.isSymbolicLink() ? st : null;
  };
  return {
    differs(ndx, name, entryMode) {
      const path = tree.xattrPath(name);
      const st = path && stat(path);
      if (!path || !st) return false;
      try {
        return receiver.differs(ndx, readHere(calls, path, st.mode, st.isDirectory()), entryMode);
      } catch {
        return true; // unreadable here: set (and its failure reported) later
      }
    },
    apply(ndx, name, entryMode, early) {
      if (dryRun) return { failed: [], mode: null };
      const path = tree.xattrPath(name);
      const st = path && stat(path);
      if (!path || !st) return { failed: [], mode: null };
      const shown = name.toString();
      let here: AclsHere;
      try {
        here = readHere(calls, path, st.mode, st.isDirectory());
      } catch (e) {
        return { failed: [`get_acl: sys_acl_get_file(${shown}): ${(e as Error).message}`], mode: null };
      }
      // A directory met by the generator stays owner-writable until its touch-up chmod (which
      // the kernel carries into the ACL's owner entry).
      const perms = tree.finalPerms(entryMode, st.mode) | (early ? 0o700 : 0);
      const failed: string[] = [];
      let mode: number | null = null;
      for (const w of receiver.writes(ndx, here, st.mode, (st.mode & ~0o7777) | perms)) {
        const which = w.kind === 'access' ? ACCESS : DEFAULT;
        try {
          if (w.blob) calls.set(path, which, w.blob);
          else calls.remove(path, which);
          if (w.mode !== undefined) mode = w.mode;
        } catch (e) {
          const call = w.blob ? 'sys_acl_set_file' : 'sys_acl_delete_def_file';
          failed.push(`set_acl: ${call}(${shown}, ${w.kind === 'access' ? 'ACL_TYPE_ACCESS' : 'ACL_TYPE_DEFAULT'}): ${(e as Error).message}`);
        }
      }
      return { failed, mode };
    },
  };
}
