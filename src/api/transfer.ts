// push() and pull(): one transfer against a daemon, as a library call. Thin wrappers over
// src/transfer/push.ts and pull.ts (which do the work) that take the library's options and
// return plain results (changes.ts). Counterpart: rsync main.c client_run.
import { resolve } from 'node:path';
import { push as pushTree } from '../transfer/push.js';
import { pull as pullTree } from '../transfer/pull.js';
import { pushFilter } from '../transfer/filters.js';
import { UsageError } from '../../protocol/errors.js';
import type { FileEntry } from '../../protocol/flist.js';
import { S_IFMT, S_IFREG } from '../../protocol/modes.js';
import type { ReceivedList } from '../../protocol/received-list.js';
import { asRsyncError, throwIfAborted } from './errors.js';
import { filterListOf, resolveTarget, sessionOf, transferOf, type ConnectOptions, type Target, type TransferFlags } from './options.js';
import { ProgressReporter, type ProgressFn } from './progress.js';
import { deletedItem, isReported, itemizedChange, transferStats, type DeletedItem, type ItemizedChange, type TransferResult } from './changes.js';

export interface TransferCallOptions extends ConnectOptions, TransferFlags {
  /** Each itemized change as it happens. */
  onChange?: (change: ItemizedChange) => void;
  /** Each deletion as the destination reports it. */
  onDelete?: (item: DeletedItem) => void;
  /** The daemon's messages (and ours) as rsync shows them: info for stdout, error for stderr. */
  onMessage?: (text: string, kind: 'info' | 'error') => void;
  /**
   * How far the file on the wire has come, while it goes: when it starts, at most every MiB or
   * 100 ms, and when it has gone (see TransferProgress).
   */
  onProgress?: ProgressFn;
  /** -I (pull only): transfer files even when size and time match. */
  ignoreTimes?: boolean;
  /** --trust-sender (pull only): take file-list names the source did not ask for (rsync 3.5's check off). */
  trustSender?: boolean;
}

function localPath(path: unknown, what: string): string {
  if (typeof path !== 'string' || !path) throw new UsageError(`${what} must be a local path`);
  return path;
}

/**
 * What a transfer reports as it goes, kept for its result and handed to the caller's callbacks:
 * the itemized changes (`<` sent, `>` received) and the deletions, and the daemon's messages.
 */
function collected(options: TransferCallOptions) {
  const changes: ItemizedChange[] = [];
  const deleted: DeletedItem[] = [];
  return {
    changes,
    deleted,
    /** `answered`: a push's progress hears of each answered request (a file's data has gone). */
    callbacks: (direction: '<' | '>', times: boolean, answered?: (ndx: number) => void) => ({
      onInfo: (text: string) => options.onMessage?.(text, 'info'),
      onError: (text: string) => options.onMessage?.(text, 'error'),
      onItem: (item: { ndx: number; entry: FileEntry; iflags: number }) => {
        answered?.(item.ndx);
        if (!isReported(item.iflags)) return;
        const change = itemizedChange(item.entry, item.iflags, direction, times);
        changes.push(change);
        options.onChange?.(change);
      },
      onDeleted: (name: Buffer, isDir: boolean) => {
        const item = deletedItem(name, isDir);
        deleted.push(item);
        options.onDelete?.(item);
      },
    }),
  };
}

/**
 * Put the local tree `source` onto a daemon module, as `rsync -rlpt SOURCE TARGET` (a trailing
 * slash on SOURCE sends its contents, as rsync). Nothing is deleted on the daemon unless `delete`.
 */
// rsync/main.c: client_run (the sender branch)
export async function push(source: string, target: Target, options: TransferCallOptions = {}): Promise<TransferResult> {
  const { signal } = options;
  try {
    throwIfAborted(signal);
    const src = localPath(source, 'source');
    const daemon = resolveTarget(target, options, true);
    const transfer = transferOf(options);
    const list = filterListOf(options);
    const seen = collected(options);
    const progress = options.onProgress && new ProgressReporter(options.onProgress);
    const result = await pushTree({
      source: src,
      target: daemon,
      transfer,
      session: sessionOf(options, daemon),
      ...(list && { filter: pushFilter(list, { deleteExcluded: transfer.deleteExcluded, absRoot: resolve(src) }) }),
      ...(signal && { abort: signal }),
      ...seen.callbacks('<', transfer.times, progress && ((ndx) => progress.finished(ndx))),
      ...(progress && {
        onFileList: (sorted) => progress.fileList(sorted.regularFiles()),
        onTransferStart: (item) => progress.started(item.ndx, item.entry),
        onFileBytes: (entry, offset) => progress.advanced(entry, offset),
      }),
    });
    return { exitCode: result.exitCode, protocol: result.protocol, stats: transferStats(result, result.files), changes: seen.changes, deleted: seen.deleted };
  } catch (e) {
    throw asRsyncError(e, signal);
  }
}

/**
 * Bring a daemon module's tree into the local directory `dest`, as `rsync -rlpt SOURCE DEST`.
 * Local files the module lacks are kept unless `delete` is set.
 */
// rsync/main.c: client_run (the receiver branch)
export async function pull(source: Target, dest: string, options: TransferCallOptions = {}): Promise<TransferResult> {
  const { signal } = options;
  try {
    throwIfAborted(signal);
    const local = localPath(dest, 'dest');
    const daemon = resolveTarget(source, options, true);
    const transfer = transferOf(options);
    const list = filterListOf(options);
    const seen = collected(options);
    const progress = options.onProgress && new ProgressReporter(options.onProgress);
    const result = await pullTree({
      target: daemon,
      dest: local,
      transfer,
      session: sessionOf(options, daemon),
      ...(list && { filter: { list, deleteExcluded: transfer.deleteExcluded } }),
      ignoreTimes: options.ignoreTimes ?? false,
      ...(options.trustSender && { trustSender: true }),
      ...(signal && { abort: signal }),
      ...seen.callbacks('>', transfer.times),
      ...(progress && {
        onFileList: (count, _size, list) => progress.fileList(regularFiles(count, list)),
        onReceiveStart: (item) => progress.started(item.ndx, item.entry),
        onReceiveBytes: (entry, offset) => progress.advanced(entry, offset),
        onReceived: (item) => progress.finished(item.ndx),
      }),
    });
    return { exitCode: result.exitCode, protocol: result.protocol, stats: transferStats(result, result.files), changes: seen.changes, deleted: seen.deleted };
  } catch (e) {
    throw asRsyncError(e, signal);
  }
}

/** How many regular files a received list holds (the progress total). */
function regularFiles(count: number, list: ReceivedList): number {
  let n = 0;
  for (let ndx = 0; ndx < count; ndx++) if ((list.mode(ndx) & S_IFMT) === S_IFREG) n++;
  return n;
}
