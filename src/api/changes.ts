// What a push or a pull did, as plain objects: each itemized change (rsync's -i line, split into
// fields), each deletion, and the totals of its --stats block. Names are strings (escaped as
// rsync escapes them in output) with the raw bytes beside them, since names need not be UTF-8.
// Counterpart: rsync log.c log_item (%i %n%L), main.c output_summary.
import { ITEM_IS_NEW, ITEM_TRANSFER, SIGNIFICANT_ITEM_FLAGS } from '../../protocol/constants.js';
import type { FileEntry } from '../../protocol/flist.js';
import { isDevice, isDir, isLink, isReg } from '../../protocol/modes.js';
import { itemizeFlags, shownName, type TransferSummary } from '../transfer/output.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'device' | 'special';

/** One itemized change: what rsync's `-i` prints as `%i %n%L`. */
export interface ItemizedChange {
  /** The name relative to the transfer root ('.' for the root), escaped as rsync shows names. */
  path: string;
  /** The name as it travelled (raw bytes). */
  pathBytes: Buffer;
  type: EntryType;
  /** rsync's 11-character %i, e.g. `>f+++++++++` (pull) or `<f.st......` (push). */
  itemize: string;
  /** Data moved for it. */
  transferred: boolean;
  /** New at the destination. */
  created: boolean;
  size: number;
  /** A symlink's target, escaped; raw in symlinkTargetBytes. */
  symlinkTarget?: string;
  symlinkTargetBytes?: Buffer;
}

/** One deletion at the destination (rsync's `*deleting`). */
export interface DeletedItem {
  path: string;
  pathBytes: Buffer;
  isDir: boolean;
}

/** The figures of rsync's --stats block. */
export interface TransferStats {
  /** Entries of the file list. */
  files: number;
  createdFiles: number;
  deletedFiles: number;
  transferredFiles: number;
  /** Regular files and symlinks of the list, in bytes. */
  totalSize: number;
  totalTransferredSize: number;
  literalBytes: number;
  matchedBytes: number;
  flistBytes: number;
  bytesSent: number;
  bytesReceived: number;
}

export interface TransferResult {
  /** rsync's exit code: 0, or 23 (partial), 24 (vanished), 25 (--max-delete) for a run that ended. */
  exitCode: number;
  /** The protocol spoken. */
  protocol: number;
  stats: TransferStats;
  /** The changes rsync's -i would list, in order. */
  changes: ItemizedChange[];
  deleted: DeletedItem[];
}

export function entryType(mode: number): EntryType {
  return isReg(mode) ? 'file' : isDir(mode) ? 'dir' : isLink(mode) ? 'symlink' : isDevice(mode) ? 'device' : 'special';
}

/** Whether rsync's -i lists an item: a transfer, or a significant change. */
// rsync/log.c: log_item via maybe_log_item (with -i)
export function isReported(iflags: number): boolean {
  return (iflags & (ITEM_TRANSFER | SIGNIFICANT_ITEM_FLAGS)) !== 0;
}

/** An item as its plain object; `direction` is '<' for what we sent, '>' for what we received. */
export function itemizedChange(entry: FileEntry, iflags: number, direction: '<' | '>', preserveTimes: boolean): ItemizedChange {
  const change: ItemizedChange = {
    path: shownName(entry.name),
    pathBytes: Buffer.from(entry.name),
    type: entryType(entry.mode),
    itemize: itemizeFlags(iflags, entry.mode, { transfer: direction, preserveTimes, symlinkTimes: true }),
    transferred: (iflags & ITEM_TRANSFER) !== 0,
    created: (iflags & ITEM_IS_NEW) !== 0,
    size: entry.size,
  };
  if (isLink(entry.mode) && entry.symlink) {
    change.symlinkTarget = shownName(entry.symlink);
    change.symlinkTargetBytes = Buffer.from(entry.symlink);
  }
  return change;
}

export function deletedItem(name: Buffer, isDir: boolean): DeletedItem {
  return { path: shownName(name), pathBytes: Buffer.from(name), isDir };
}

/** The --stats figures of a finished push or pull. */
export function transferStats(summary: TransferSummary, files: number): TransferStats {
  const d = summary.stats.deleted;
  return {
    files,
    createdFiles: summary.created?.length ?? 0,
    deletedFiles: d ? d.files + d.dirs + d.symlinks + d.devices + d.specials : 0,
    transferredFiles: summary.stats.transferredFiles,
    totalSize: summary.totalSize,
    totalTransferredSize: summary.stats.totalTransferredSize,
    literalBytes: summary.stats.literalBytes,
    matchedBytes: summary.stats.matchedBytes,
    flistBytes: summary.flistBytes,
    bytesSent: summary.bytesSent,
    bytesReceived: summary.bytesReceived,
  };
}
