// mirror(): the live mirror as a library call: watch a local tree and keep daemon modules equal
// to it. A thin wrapper over src/live/mirror.ts startLiveMirror (watcher, planner, one runner per
// target) taking the library's options; stop() or `await using` ends it. See docs/live.md.
import { startLiveMirror, type LiveMirror, type LiveMirrorStatus, type LogFn, type RetryOptions, type StopResult } from '../live/index.js';
import { DEFAULT_TRANSFER } from '../../protocol/args.js';
import { watchingFallback } from '../addon.js';
import type { WatcherOptions } from '../watcher/index.js';
import { asRsyncError, throwIfAborted } from './errors.js';
import { filterListOf, resolveTarget, sessionOf, transferOf, type ConnectOptions, type Target, type TransferFlags } from './options.js';
import { isReported, itemizedChange, type ItemizedChange } from './changes.js';

export interface MirrorOptions extends ConnectOptions, TransferFlags {
  /** Quiet window before a batch of changes is pushed, ms (default 0). */
  delayMs?: number;
  /** Push the whole tree first (default true). */
  startup?: boolean;
  /** Backoff after a failed push (ms). */
  retry?: RetryOptions;
  /** Watcher tuning: backend, pollInterval, moveWait (ms). */
  watcher?: Omit<WatcherOptions, 'filter'>;
  /** The mirror's log lines (startup done, failures, retries). */
  onLog?: LogFn;
  /** Each itemized change pushed, on any target. */
  onChange?: (change: ItemizedChange) => void;
}

export interface MirrorStatus extends LiveMirrorStatus {
  /**
   * Set when the tree is polled although inotify was wanted: why (the addon could not be loaded,
   * or inotify's limits were hit) and the fix (`npm rebuild lsyncd`). The mirror's log says it too.
   */
  pollingReason?: string;
}
export type MirrorStopResult = StopResult;

/** A running mirror. `stop()` pushes what is pending and closes the watcher; so does disposing it. */
export interface Mirror {
  /** Resolves when every target's startup push has succeeded. */
  readonly ready: Promise<void>;
  status(): MirrorStatus;
  /** Resolves when no target has anything pending or running. */
  whenIdle(): Promise<void>;
  /** Compare the subtree `path` ('' = everything) in full on every target. */
  resync(path?: string): void;
  /** Push what is pending (at most `timeoutMs`, default 10 s), then stop watching. Idempotent. */
  stop(options?: { timeoutMs?: number }): Promise<MirrorStopResult>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Watch `source` and mirror it into every target (`-rlpt --delete` by default, as lsyncd: a
 * mirror deletes what the source no longer has; `delete: false` keeps it). `signal` stops it.
 */
export async function mirror(source: string, targets: Target | readonly Target[], options: MirrorOptions = {}): Promise<Mirror> {
  const { signal } = options;
  let live: LiveMirror;
  try {
    throwIfAborted(signal);
    const list = Array.isArray(targets) ? (targets as readonly Target[]) : [targets as Target];
    const transfer = transferOf(options, DEFAULT_TRANSFER);
    const filterList = filterListOf(options);
    live = await startLiveMirror({
      source,
      targets: list.map((t) => {
        const target = resolveTarget(t, options, true);
        return { target, session: sessionOf(options, target) };
      }),
      transfer,
      ...(filterList && { filterList }),
      ...(options.delayMs !== undefined && { delay: options.delayMs / 1000 }),
      ...(options.startup !== undefined && { startup: options.startup }),
      ...(options.retry && { retry: options.retry }),
      ...(options.watcher && { watcher: options.watcher }),
      ...(options.onLog && { onLog: options.onLog }),
      ...(options.onChange && {
        onItem: (item) => {
          if (isReported(item.iflags)) options.onChange!(itemizedChange(item.entry, item.iflags, '<', transfer.times));
        },
      }),
    });
  } catch (e) {
    throw asRsyncError(e, signal);
  }
  const pollingReason = watchingFallback(live.watcher, options.watcher?.backend);
  const onAbort = () => void live.stop();
  signal?.addEventListener('abort', onAbort, { once: true });
  const stop = async (stopOptions?: { timeoutMs?: number }): Promise<MirrorStopResult> => {
    signal?.removeEventListener('abort', onAbort);
    return live.stop(stopOptions);
  };
  return {
    ready: live.ready,
    status: () => ({ ...live.status(), ...(pollingReason && { pollingReason }) }),
    whenIdle: () => live.whenIdle(),
    resync: (path) => live.resync(path),
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };
}
