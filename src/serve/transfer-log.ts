// Transfer logging wired into the daemon's roles (docs/serve.md "Transfer logging", issue 10):
// with `transfer logging = yes` each module session hands its roles callbacks that turn what the
// generator, the receiver, deletion and the sender report into rsyncd's per-file log lines
// (log.ts formats them). Without transfer logging, or on a dry run, no callback is given: the
// roles pay nothing per file.
// Counterpart: rsync log.c log_item, maybe_log_item, log_delete, and their callers in
// receiver.c recv_files, sender.c send_files, generator.c itemize, hlink.c finish_hard_link,
// delete.c delete_item.
import { posix, relative, resolve, sep } from 'node:path';
import type { TransferOptions } from '../../protocol/args.js';
import type { SetupResult } from '../../protocol/compat.js';
import { ITEM_TRANSFER } from '../../protocol/constants.js';
import type { FileEntry } from '../../protocol/flist.js';
import type { GeneratedItem } from '../../protocol/generator.js';
import type { ReceivedItem } from '../../protocol/receiver.js';
import type { SentItem } from '../../protocol/sender.js';
import { isReg } from '../../protocol/modes.js';
import { checksumText, logDelete, logTransfer, shouldLogItem, transferLogFormat, type LogItem, type LogOperation, type LogSession } from './log.js';
import type { RoleRequest } from './request.js';

/** What a push's generator and receiver call while transfer logging is on (spread into receiveIntoTree's request). */
export interface PushLogCallbacks {
  onItem?: (item: GeneratedItem) => void;
  onReceived?: (item: ReceivedItem) => void;
  onEchoed?: (item: ReceivedItem) => void;
  onDeleted?: (name: Buffer, isDir: boolean, mode: number) => void;
}

/** What a pull's sender calls while transfer logging is on (spread into sendFiles' options). */
export interface PullLogCallbacks {
  onItem?: (item: SentItem) => void;
}

/** The connection's side of every line (%h %a %m %P %u, and how %i shows times). */
export function logSession(r: RoleRequest, symlinkTimes: boolean): LogSession {
  return {
    host: r.peer.host,
    addr: r.peer.addr,
    module: r.module.name,
    modulePath: resolve(r.module.path),
    user: r.user,
    preserveTimes: r.args.transfer.times,
    symlinkTimes,
  };
}

/** One entry of the list as log_formatted reads its file_struct. */
function entryItem(
  op: LogOperation,
  entry: FileEntry,
  dir: string | Buffer,
  iflags: number,
  transfer: TransferOptions,
  sums: { checksum: SetupResult['checksum']; implied: boolean; fileSum: Uint8Array | null },
  extra: Partial<LogItem> = {},
): LogItem {
  // %C: with -c the list's checksum of a regular file, else the sum that followed the data.
  const sum = !isReg(entry.mode) ? null : transfer.checksum ? (entry.checksum ?? null) : iflags & ITEM_TRANSFER ? sums.fileSum : null;
  return {
    op,
    name: entry.name,
    dir,
    mode: entry.mode,
    length: entry.size,
    mtime: entry.mtime,
    ...(transfer.owner && { uid: entry.uid }),
    ...(transfer.group && { gid: entry.gid }),
    iflags,
    checksum: checksumText(sums.checksum, sum, { implied: sums.implied && !transfer.checksum }),
    ...(entry.symlink && { symlink: entry.symlink }),
    ...extra,
  };
}

/**
 * The callbacks that log a client's push into `destDir` (the receiver's directory): each received
 * file (`recv`, %b the data bytes read), each echoed non-transfer maybe_log_item accepts, each
 * hard link made, each deletion (`del.`). Empty when the module logs no transfers or on -n.
 */
// rsync/receiver.c: recv_files (log_item, maybe_log_item) + delete.c: delete_item (log_delete)
export function pushTransferLog(r: RoleRequest, setup: SetupResult, destDir: string, transfer: TransferOptions): PushLogCallbacks {
  const format = transferLogFormat(r.module);
  if (!format || transfer.dryRun) return {};
  const session = logSession(r, true); // a Linux receiver sets symlink times (rsync's CAN_SET_SYMLINK_TIMES)
  const dir = relative(resolve(r.module.path), resolve(destDir)).split(sep).join('/');
  const sums = { checksum: setup.checksum, implied: setup.checksumImplied };
  const itemOf = (entry: FileEntry, iflags: number, fileSum: Uint8Array | null, extra: Partial<LogItem> = {}) =>
    entryItem('recv', entry, dir, iflags, transfer, { ...sums, fileSum }, extra);
  const echoed = (entry: FileEntry, iflags: number, xname: Buffer | null | undefined) => {
    if (!shouldLogItem(format, iflags, xname ? { hardlink: xname } : {})) return;
    logTransfer(r.log, format, itemOf(entry, iflags, null, xname ? { hardlink: xname } : {}), session);
  };
  return {
    onReceived: (item) => logTransfer(r.log, format, itemOf(item.entry, item.iflags, item.fileSum, { bytesRead: item.bytesRead, bytesWritten: 0 }), session),
    // 29+: the sender echoes each itemized non-transfer and the receiver logs it.
    onEchoed: (item) => echoed(item.entry, item.iflags, item.xname),
    onItem: (item) => {
      if (item.iflags & ITEM_TRANSFER) return; // logged by the receiver, with its byte counts
      // Below 29 nothing is echoed: the generator logs its own itemized items (generator.c itemize).
      // A hard link made after the phases (its leader was redone) did not travel: logged here.
      if (item.local || r.protocol < 29) echoed(item.entry, item.iflags, item.xname);
    },
    onDeleted: (name, _isDir, mode) => logDelete(r.log, format, { name, dir, mode, length: 0, mtime: 0, ...(transfer.owner && { uid: 0 }), ...(transfer.group && { gid: 0 }) }, session),
  };
}

/**
 * The callbacks that log a client's pull: each sent file (`send`, %b the data bytes written, %c
 * the sums read) and each echoed non-transfer maybe_log_item accepts. %f's directory is where the
 * entry was listed from, relative to the module (rsync's F_PATHNAME). Empty when the module logs
 * no transfers or on -n.
 */
// rsync/sender.c: send_files (log_item, maybe_log_item)
export function pullTransferLog(r: RoleRequest, setup: SetupResult): PullLogCallbacks {
  const format = transferLogFormat(r.module);
  if (!format || r.args.transfer.dryRun) return {};
  const transfer = r.args.transfer;
  // rsync's receiver_symlink_times as a sending daemon sees it: the client's 'L' (30+).
  const symlinkTimes = r.protocol >= 30 && r.args.clientInfo.includes('L');
  const session = logSession(r, symlinkTimes);
  const moduleRoot = Buffer.from(resolve(r.module.path)).toString('latin1');
  const sums = { checksum: setup.checksum, implied: setup.checksumImplied };
  return {
    onItem: (item) => {
      const transferred = (item.iflags & ITEM_TRANSFER) !== 0;
      if (!transferred && !shouldLogItem(format, item.iflags, item.xname ? { hardlink: item.xname } : {})) return;
      const extra: Partial<LogItem> = transferred ? { bytesRead: item.bytesRead, bytesWritten: item.bytesWritten } : {};
      if (item.xname) extra.hardlink = item.xname;
      const dir = listedFrom(item.entry, moduleRoot);
      logTransfer(r.log, format, entryItem('send', item.entry, dir, item.iflags, transfer, { ...sums, fileSum: item.fileSum }, extra), session);
    },
  };
}

/**
 * The directory an entry of the sender's list was listed from, relative to the module root: its
 * path on disk without the list name (rsync's F_PATHNAME). '' when it is the module root or unknown.
 */
// rsync/flist.c: F_PATHNAME (the dir change_pathname recorded for the entry)
function listedFrom(entry: FileEntry, moduleRoot: string): Buffer {
  const local = (entry as FileEntry & { localPath?: Buffer }).localPath;
  if (!local) return Buffer.alloc(0);
  // latin1 keeps every byte of a name as one character: normalized, then back to the same bytes.
  const path = posix.normalize(local.toString('latin1'));
  const name = posix.normalize(entry.name.toString('latin1'));
  const dir = name === '.' ? path : path.endsWith(`/${name}`) ? path.slice(0, -name.length - 1) : null;
  if (dir === null) return Buffer.alloc(0);
  const rel = posix.relative(moduleRoot, dir);
  return rel.startsWith('..') ? Buffer.alloc(0) : Buffer.from(rel, 'latin1');
}
