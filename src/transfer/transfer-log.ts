// The client's --log-file (issue 13): a --once push or pull writes rsync's client-side log, in the
// same line shape as rsyncd's (`YYYY/MM/DD HH:MM:SS [PID] text`) and through the same format engine
// (src/serve/log.ts: one home for log formats): the list line, one line per item with
// --log-file-format (default '%i %n%L'), deletions, then the 'sent ... received ... total size'
// line. Counterpart: rsync log.c log_item, maybe_log_item (the client branch), log_delete, and
// main.c's closing log line (log_exit).
import { resolve } from 'node:path';
import type { TransferOptions } from '../../protocol/args.js';
import { ITEM_LOCAL_CHANGE, ITEM_TRANSFER, SIGNIFICANT_ITEM_FLAGS } from '../../protocol/constants.js';
import type { FileEntry } from '../../protocol/flist.js';
import { isDir, isReg } from '../../protocol/modes.js';
import { checkLogFormat, DaemonLog, formatLogLine, logDelete, logFormatHas, summaryLine, type LogFileError, type LogItem, type LogOperation, type LogSession } from '../serve/log.js';

/** rsync's default --log-file-format when only --log-file is given. */
export const DEFAULT_CLIENT_LOG_FORMAT = '%i %n%L';

export interface ClientLogOptions {
  /** --log-file=FILE: opened for append (created 0644). */
  file: string;
  /** --log-file-format=FMT ('' logs no items); unset: DEFAULT_CLIENT_LOG_FORMAT. */
  format?: string;
  /** `send` for a push (we are the sender), `recv` for a pull. */
  op: Extract<LogOperation, 'send' | 'recv'>;
  /** The daemon and module (%h, %a, %m, %P: the local tree's root). */
  host: string;
  module: string;
  root: string;
  transfer: TransferOptions;
  /** A failure to write the log (reported once per failure; the transfer goes on, as rsync's). */
  onError?: (error: LogFileError) => void;
}

/** One item as the roles report it (a sent, generated or received item). */
interface ReportedItem {
  ndx: number;
  entry: FileEntry;
  iflags: number;
  xname?: Buffer | null;
  bytesRead?: number;
  bytesWritten?: number;
}

/**
 * The log of one --once run. Throws LogFileError when the file cannot be opened (rsync stops
 * then too: "failed to open log-file").
 */
// rsync/log.c: log_init (the client's logfile_name), log_item, log_delete
export class ClientTransferLog {
  private readonly log: DaemonLog;
  private readonly format: string;
  private readonly session: LogSession;
  private readonly hasI: boolean;
  /** A pull's generator items waiting for the receiver to reach them (rsync's receiver logs echoes in list order). */
  private readonly held: ReportedItem[] = [];

  constructor(private readonly options: ClientLogOptions) {
    this.format = options.format ?? DEFAULT_CLIENT_LOG_FORMAT;
    checkLogFormat(this.format);
    this.hasI = logFormatHas(this.format, 'i');
    this.log = new DaemonLog({ file: options.file, ...(options.onError && { onError: options.onError }) });
    this.log.open();
    this.session = {
      host: options.host,
      addr: options.host,
      module: options.module,
      modulePath: resolve(options.root),
      user: '',
      preserveTimes: options.transfer.times,
    };
  }

  /** 'building file list' (push) or 'receiving file list' (pull), as rsync's client logs it first. */
  started(): void {
    this.log.line(this.options.op === 'send' ? 'building file list' : 'receiving file list');
  }

  /**
   * An item a role reported: a transferred file always (not on a dry run: rsync logs those to the
   * terminal only), another item when rsync's client-side maybe_log_item sends it to the log.
   */
  // rsync/log.c: log_item (FINFO reaches the log file) + maybe_log_item (the !am_server branch)
  item(item: ReportedItem): void {
    if (!this.format) return;
    const { transfer } = this.options;
    if (item.iflags & ITEM_TRANSFER) {
      this.release(item.ndx);
      if (!transfer.dryRun) this.write(item);
      return;
    }
    const significant = (item.iflags & SIGNIFICANT_ITEM_FLAGS) !== 0;
    const xname = !!item.xname && item.xname.length > 0;
    const seeItem = transfer.itemize && (significant || xname);
    const localChange = (item.iflags & ITEM_LOCAL_CHANGE) !== 0 && significant;
    const shown = seeItem || localChange || xname || (isDir(item.entry.mode) && significant);
    if (!shown || !(significant || this.hasI)) return;
    // A pull's generator runs ahead of its receiver: its lines wait for the received files before them.
    if (this.options.op === 'recv') this.held.push(item);
    else this.write(item);
  }

  /** Write the held items listed before `ndx` (all of them: Infinity). */
  private release(ndx: number): void {
    while (this.held.length && this.held[0]!.ndx < ndx) this.write(this.held.shift()!);
  }

  /** A deletion (a pull's, or the daemon's MSG_DELETED on a push): 'del.' with the format, or 'deleting %n'. */
  // rsync/log.c: log_delete (the log-file half)
  deleted(name: Buffer, mode: number): void {
    if (!this.format) return;
    logDelete(this.log, this.format, { name, dir: '', mode, length: 0, mtime: 0 }, this.session, { dryRun: this.options.transfer.dryRun });
  }

  /** The closing line: 'sent N bytes  received N bytes  total size N'. */
  // rsync/main.c: output_summary's log line (log_exit on success)
  finished(totals: { sent: number; received: number; totalSize: number }): void {
    this.release(Infinity);
    this.log.line(summaryLine(totals));
  }

  /** An error line, as rsync's client logs what it reports. */
  error(text: string): void {
    this.release(Infinity);
    this.log.line(text);
  }

  close(): void {
    this.log.close();
  }

  private write(item: ReportedItem): void {
    const { transfer } = this.options;
    const { entry, iflags } = item;
    const logItem: LogItem = {
      op: this.options.op,
      name: entry.name,
      dir: '',
      mode: entry.mode,
      length: entry.size,
      mtime: entry.mtime,
      ...(transfer.owner && { uid: entry.uid }),
      ...(transfer.group && { gid: entry.gid }),
      iflags,
      ...(iflags & ITEM_TRANSFER && isReg(entry.mode) && { bytesRead: item.bytesRead ?? 0, bytesWritten: item.bytesWritten ?? 0 }),
      ...(entry.symlink && { symlink: entry.symlink }),
      // A transfer's xname is its fuzzy basis: only a non-transfer's is a hard link's target (%L).
      ...(!(iflags & ITEM_TRANSFER) && item.xname && { hardlink: item.xname }),
    };
    this.log.line(formatLogLine(this.format, logItem, this.session));
  }
}
