// push() and pull(): one transfer against a daemon, as a library call. Thin wrappers over
// src/transfer/push.ts and pull.ts (which do the work) that take the library's options and
// return plain results (changes.ts). Counterpart: rsync main.c client_run.
import { resolve } from 'node:path';
import { push as pushTree } from '../transfer/push.js';
import { pull as pullTree } from '../transfer/pull.js';
import { pushFilter } from '../transfer/filters.js';
import { UsageError } from '../../protocol/errors.js';
import { asRsyncError, throwIfAborted } from './errors.js';
import { filterListOf, resolveTarget, sessionOf, transferOf, type ConnectOptions, type Target, type TransferFlags } from './options.js';
import { deletedItem, isReported, itemizedChange, transferStats, type DeletedItem, type ItemizedChange, type TransferResult } from './changes.js';

export interface TransferCallOptions extends ConnectOptions, TransferFlags {
  /** Each itemized change as it happens. */
  onChange?: (change: ItemizedChange) => void;
  /** Each deletion as the destination reports it. */
  onDelete?: (item: DeletedItem) => void;
  /** The daemon's messages (and ours) as rsync shows them: info for stdout, error for stderr. */
  onMessage?: (text: string, kind: 'info' | 'error') => void;
  /** -I (pull only): transfer files even when size and time match. */
  ignoreTimes?: boolean;
}

function localPath(path: unknown, what: string): string {
  if (typeof path !== 'string' || !path) throw new UsageError(`${what} must be a local path`);
  return path;
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
    const changes: ItemizedChange[] = [];
    const deleted: DeletedItem[] = [];
    const result = await pushTree({
      source: src,
      target: daemon,
      transfer,
      session: sessionOf(options, daemon),
      ...(list && { filter: pushFilter(list, { deleteExcluded: transfer.deleteExcluded, absRoot: resolve(src) }) }),
      ...(signal && { abort: signal }),
      onInfo: (text) => options.onMessage?.(text, 'info'),
      onError: (text) => options.onMessage?.(text, 'error'),
      onItem: (item) => {
        if (!isReported(item.iflags)) return;
        const change = itemizedChange(item.entry, item.iflags, '<', transfer.times);
        changes.push(change);
        options.onChange?.(change);
      },
      onDeleted: (name, isDir) => {
        const item = deletedItem(name, isDir);
        deleted.push(item);
        options.onDelete?.(item);
      },
    });
    return { exitCode: result.exitCode, protocol: result.protocol, stats: transferStats(result, result.files), changes, deleted };
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
    const changes: ItemizedChange[] = [];
    const deleted: DeletedItem[] = [];
    const report = (change: ItemizedChange): void => {
      changes.push(change);
      options.onChange?.(change);
    };
    const result = await pullTree({
      target: daemon,
      dest: local,
      transfer,
      session: sessionOf(options, daemon),
      ...(list && { filter: { list, deleteExcluded: transfer.deleteExcluded } }),
      ignoreTimes: options.ignoreTimes ?? false,
      ...(signal && { abort: signal }),
      onInfo: (text) => options.onMessage?.(text, 'info'),
      onError: (text) => options.onMessage?.(text, 'error'),
      onItem: (item) => {
        if (isReported(item.iflags)) report(itemizedChange(item.entry, item.iflags, '>', transfer.times));
      },
      onDeleted: (name, isDir) => {
        const item = deletedItem(name, isDir);
        deleted.push(item);
        options.onDelete?.(item);
      },
    });
    return { exitCode: result.exitCode, protocol: result.protocol, stats: transferStats(result, result.files), changes, deleted };
  } catch (e) {
    throw asRsyncError(e, signal);
  }
}
