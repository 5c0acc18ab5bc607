// -X on local files: the xattrs of a listed file read through the addon (native/xattr.cc) as the
// sender lists it, and the receiving side's view of the destination (DestTree's confined paths)
// for protocol/xattrs.ts. Where each side stands: the options the wire code needs, the protocol
// check. Counterpart: rsync xattrs.c get_xattr_names, get_xattr_data (the file access), compat.c
// setup_protocol (the protocol check), flist.c send_file_name (get_xattr before each entry).
import type { TransferOptions } from '../../protocol/args.js';
import { CF_AVOID_XATTR_OPTIM } from '../../protocol/compat.js';
import { EXIT, RsyncError, type MemoryBudget } from '../../protocol/errors.js';
import type { PackedFileList } from '../../protocol/flist-packed.js';
import type { AfterEntry } from '../../protocol/flist-packed-send.js';
import type { ByteWriter } from '../../protocol/io.js';
import { isDevice, isDir, isLink, isReg, isSpecial } from '../../protocol/modes.js';
import { XattrReceiver, XattrSender, receiverManages, type LocalXattrs, type XattrOptions, type XattrPair } from '../../protocol/xattrs.js';
import { xattrCalls, type XattrCalls } from '../addon.js';
import type { DestTree } from './dest-tree.js';
import { isFakeSuperName } from './fake-super.js';

/** -X or -A below protocol 30 (rsync's words, compat.c setup_protocol) or without the addon. */
export class XattrUnsupportedError extends RsyncError {}

/** The addon's calls, or the error that says why -X cannot be honoured here. */
function requireCalls(): XattrCalls {
  const calls = xattrCalls();
  if (!calls) throw new XattrUnsupportedError('ERR_RSYNC_XATTRS', 'extended attributes need the native addon (run `npm rebuild lsyncd`)', EXIT.UNSUPPORTED);
  return calls;
}

// rsync/compat.c: setup_protocol (preserve_xattrs below 30)
export function checkXattrProtocol(protocol: number): void {
  if (protocol < 30) throw new XattrUnsupportedError('ERR_RSYNC_XATTRS_PROTOCOL', `--xattrs requires protocol 30 or higher (negotiated ${protocol}).`, EXIT.PROTOCOL);
}

/** What the wire code needs of a session with -X (null without it). */
export function xattrOptionsFor(transfer: Pick<TransferOptions, 'xattrs' | 'dryRun'>, protocol: number, compatFlags: number): XattrOptions | null {
  if (!transfer.xattrs) return null;
  checkXattrProtocol(protocol);
  return {
    level: transfer.xattrs,
    amRoot: process.getuid?.() === 0,
    // rsync/compat.c: want_xattr_optim
    optim: protocol >= 31 && !(compatFlags & CF_AVOID_XATTR_OPTIM),
    dryRun: transfer.dryRun,
  };
}

/** Every name of a file (never through a final symlink) with its value; names gone meanwhile are left out. */
// rsync/xattrs.c: get_xattr_names, get_xattr_data
export function readXattrPairs(calls: XattrCalls, path: Buffer, keep: (name: Buffer) => boolean = () => true): XattrPair[] {
  const list = calls.list(path);
  const pairs: XattrPair[] = [];
  let at = 0;
  while (at < list.length) {
    let end = list.indexOf(0, at);
    if (end < 0) end = list.length;
    const name = Buffer.from(list.subarray(at, end));
    at = end + 1;
    if (!name.length || !keep(name)) continue;
    const value = calls.get(path, name);
    if (value) pairs.push({ name, value });
  }
  return pairs;
}

/**
 * The sender's -X: the set of each entry read as it is listed (regular files and directories;
 * symlinks with -l; devices and specials with -D), and the values read again when asked for. A
 * file whose xattrs cannot be read goes with none and a warning.
 */
// rsync/xattrs.c: get_xattr (which files have a set); flist.c send_file_name
export function senderXattrs(
  list: PackedFileList,
  writer: ByteWriter,
  options: XattrOptions,
  transfer: Pick<TransferOptions, 'links' | 'devices'>,
  onWarning: (text: string) => void,
): { sender: XattrSender; afterEntry: AfterEntry } {
  const calls = requireCalls();
  const sender = new XattrSender(options, (i, name) => {
    try {
      return calls.get(list.localPath(i), name);
    } catch (e) {
      onWarning(`failed to re-read xattr ${name.toString('latin1')} for ${list.localPath(i).toString()}: ${(e as Error).message}\n`);
      return null;
    }
  });
  const afterEntry = (i: number): void => {
    const mode = list.mode[i]!;
    const has = isReg(mode) || isDir(mode) || (isLink(mode) && transfer.links) || ((isDevice(mode) || isSpecial(mode)) && transfer.devices);
    let pairs: XattrPair[] = [];
    if (has) {
      try {
        pairs = readXattrPairs(calls, list.localPath(i));
      } catch (e) {
        onWarning(`get_xattr_names: llistxattr(${list.localPath(i).toString()}) failed: ${(e as Error).message}\n`);
      }
    }
    sender.send(writer, i, pairs);
  };
  return { sender, afterEntry };
}

/** The receiving side's -X, made before the list arrives (its sets come with it); `budget` charges the long values that come later. */
export function receiverXattrs(options: XattrOptions | null, budget?: MemoryBudget): XattrReceiver | null {
  if (!options) return null;
  requireCalls();
  return new XattrReceiver(options, budget);
}

/**
 * The destination's xattrs as the receiving side manages them: user.* (all but system.* as root),
 * through DestTree's confined paths; under --fake-super never its own records (fake-super.ts).
 */
// rsync/xattrs.c: rsync_xal_get (the receiver's), rsync_xal_set's lsetxattr/lremovexattr
export function treeXattrs(tree: DestTree, amRoot: boolean, fakeSuper = false): LocalXattrs {
  const calls = requireCalls();
  const keep = (name: Buffer) => receiverManages(name, amRoot) && !(fakeSuper && isFakeSuperName(name));
  return {
    read(name) {
      const path = tree.xattrPath(name);
      if (!path) return null;
      try {
        return readXattrPairs(calls, path, keep);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
    },
    set(name, attr, value) {
      const path = tree.xattrPath(name);
      if (path) calls.set(path, attr, value);
    },
    remove(name, attr) {
      const path = tree.xattrPath(name);
      if (path) calls.remove(path, attr);
    },
  };
}
