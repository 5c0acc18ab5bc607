// The live mirror: watch SOURCE, push it whole to every target, then push each change as it
// happens. One watcher, one TargetRunner per target (runner.ts), the planner in plan.ts.
// See docs/live.md.
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { releaseMemory, watchingFallback, type ReleasedMemory } from '../addon.js';
import { watch, byteFilter, type Watcher, type WatcherOptions, type WatcherStats } from '../watcher/index.js';
import { compileFilter, type FilterList } from '../../protocol/filter.js';
import { DEFAULT_TRANSFER, type TransferOptions } from '../../protocol/args.js';
import { pushFilter } from '../transfer/filters.js';
import { TargetRunner, describeTarget, type LogFn, type PushFn, type RetryOptions, type TargetStatus } from './runner.js';
import { StateJournal, stateIdentity, startupChanges, type StartupMode } from './state.js';
import { NO_STATE_YET, type MirroredState } from './state-file.js';
import { scanSource } from '../transfer/scan.js';
import type { PackedFileList } from '../../protocol/flist-packed.js';
import type { PendingEntry } from './plan.js';
import type { PushFilter, PushOptions } from '../transfer/push.js';
import type { DaemonTarget } from '../transfer/target.js';
import type { SentItem } from '../../protocol/sender.js';

export type { LogFn, LogLevel, RetryOptions, TargetStatus, TargetState, PushFn } from './runner.js';

export interface LiveTarget {
  target: DaemonTarget;
  /** User, password source, protocol, timeouts (host and port come from `target`). */
  session: PushOptions['session'];
}

/** The one phase that deletes on the mirror (lsyncd 2's delete = 'startup' | 'running'). */
export type DeletePhase = 'startup' | 'running';

export interface LiveMirrorOptions {
  /** The local directory to mirror (its contents go to each target's MODULE/PATH/). */
  source: string;
  targets: readonly LiveTarget[];
  /** Transfer options, as for a push (default: -rlpt --delete). `recursive` is forced on. */
  transfer?: TransferOptions;
  /**
   * Delete (the transfer's --delete, --delete-excluded) only in the startup sync, or only for
   * changes while running (lsyncd 2's delete = 'startup' | 'running'; default: both, as the
   * transfer says). A resync after an overflow is running.
   */
  deleteOnly?: DeletePhase;
  /** rsync filter rules (--exclude etc.): applied by the watcher, the scan and the daemon. */
  filterList?: FilterList;
  /** Seconds of quiet window before a batch starts (default 0: as soon as the previous one ended). */
  delay?: number;
  /**
   * The startup sync: 'full' (default) compares the whole tree with each target (the only mode
   * that also repairs changes made on the mirror itself); 'changed' pushes only what differs from
   * the state file (a full one when that file is missing, torn or another sync's); 'none' pushes
   * nothing until a change (lsyncd 2's init = false). `true`/`false` are 'full'/'none'.
   */
  startup?: StartupMode | boolean;
  /**
   * Keep what each target was brought to in this file (see docs/live.md, "Restart state"), so a
   * later `startup: 'changed'` pushes only what differs. Written by every startup mode.
   */
  stateFile?: string;
  /** Backoff after a failed batch (default 500 ms doubling to 30 s); a refused option is tried again after 10 min. */
  retry?: RetryOptions;
  /** Distinct pending paths per target before it collapses to a full resync (default 50,000). */
  maxPending?: number;
  /** More push roots than this in one batch become their common ancestor (default 16). */
  maxRoots?: number;
  /** Watcher tuning (backend, moveWait, ...); the filter comes from `filterList`. */
  watcher?: Omit<WatcherOptions, 'filter'>;
  onLog?: LogFn;
  /** Replaces push() (tests). */
  pushFn?: PushFn;
  /**
   * Called once the targets are idle after a transfer of many files or bytes (the startup sync,
   * a big batch), to give memory back. Default: the addon's releaseMemory (V8 low-memory
   * collection + malloc_trim); a no-op without the addon. The CLI's daemon also drops its file
   * pages (releaseMemory({ filePages: true }), see src/addon.ts).
   */
  releaseMemory?: () => unknown;
  /** Each file answered during a push, on any target (progress display). */
  onItem?: (item: SentItem) => void;
}

export interface LiveMirrorStatus {
  source: string;
  watcher: WatcherStats | undefined;
  /** The source root was deleted or moved away: nothing more will be pushed. */
  rootGone: boolean;
  /** Kernel event queue overflows (each one a full compare), also after the watcher closed. */
  overflows: number;
  targets: TargetStatus[];
  /** The startup sync's mode, and which phases delete on the mirror. */
  startup: StartupMode;
  deletes: { startup: boolean; running: boolean };
  /** The state file, when one is kept or was asked for. */
  state?: SyncStateStatus;
}

/** The state file of a sync, as the status shows it. */
export interface SyncStateStatus {
  path: string;
  /**
   * 'used': the startup compared the tree with it; 'kept': carried on without a startup sync
   * (--no-startup); 'fresh': not used (the startup compared everything and rewrites it); 'none': not kept.
   */
  use: 'used' | 'kept' | 'fresh' | 'none';
  /** Why it was not used (the reason the log said once), when it was not. */
  reason?: string;
}

export interface StopResult {
  /** Paths still pending per target when the time ran out (all 0: everything was pushed). */
  unpushed: number[];
  /** Per target: 0, or rsync's code of its last failure when paths were left (23 when unsure). */
  exitCodes: number[];
}

export interface LiveMirror {
  /** The watcher (stats; `pause()`/`resume()` on the inotify backend, as tests use). */
  readonly watcher: Watcher;
  /** Resolves when every target's startup push has succeeded (retries included). */
  readonly ready: Promise<void>;
  status(): LiveMirrorStatus;
  /** Resolves when no target has anything pending or running (tests, --once-like use). */
  whenIdle(): Promise<void>;
  /** Compare the subtree `path` ('' = everything) in full on every target, as after an overflow. */
  resync(path?: string): void;
  /**
   * Finish the running batches, push what is pending (at most `timeoutMs`, default 10 s), close
   * the watcher. Idempotent.
   */
  stop(options?: { timeoutMs?: number }): Promise<StopResult>;
}

/**
 * Rules whose outcome depends only on an entry's own name: with only these, pushing a subtree
 * (whose paths the scan and the daemon see relative to the subtree) filters exactly as a push of
 * the whole tree would. Anything else (a '/' or '**' in a pattern, the '/' modifier, dir-merge
 * files) makes every batch push the whole tree.
 */
export function subtreeSafe(list: FilterList | undefined): boolean {
  if (!list) return true;
  return list.rules.every((r) => !r.dirMerge && !r.absPath && !r.pattern.includes(0x2f) && !r.pattern.includes('**'));
}

/** A release once this much was pushed since the last one (files listed, or bytes sent)... */
export const RELEASE_AFTER_FILES = 2000;
export const RELEASE_AFTER_BYTES = 16 * 2 ** 20;
/** ...and every target has been idle this long. */
export const RELEASE_IDLE_MS = 1000;

/**
 * Gives memory back after big transfers: a daemon that synced 200 MB at startup would otherwise
 * keep the heap it grew for that (about twice its idle size) for the rest of its life.
 */
function memoryReleaser(release: () => unknown, allIdle: () => boolean, log: LogFn) {
  let files = 0;
  let bytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const arm = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (stopped) return;
      if (!allIdle()) return arm();
      const started = performance.now();
      const released = release() as Partial<ReleasedMemory> | undefined;
      const filePages = typeof released?.filePageBytes === 'number' ? `, ${(released.filePageBytes / 2 ** 20).toFixed(1)} MiB of file pages unmapped` : '';
      log('debug', `memory released after ${files} files / ${bytes} bytes pushed (${(performance.now() - started).toFixed(0)} ms${filePages})`);
      files = 0;
      bytes = 0;
    }, RELEASE_IDLE_MS);
    timer.unref?.();
  };
  return {
    pushed(fileCount: number, byteCount: number): void {
      files += fileCount;
      bytes += byteCount;
      if (!stopped && (files >= RELEASE_AFTER_FILES || bytes >= RELEASE_AFTER_BYTES)) arm();
    },
    stop(): void {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/**
 * The state file for this start: its targets' states when a `changed` or `none` start may use
 * them; otherwise (or when it cannot be used: said once, with the reason) a fresh one, except
 * with `none` (nothing is known of the mirror then, so no state is kept).
 */
function openState(path: string, identity: ReturnType<typeof stateIdentity>, mode: StartupMode, log: LogFn): { journal?: StateJournal; loaded?: MirroredState[]; status: SyncStateStatus } {
  try {
    const opened = StateJournal.open(path, identity, log, mode !== 'full', mode !== 'none');
    if (opened.reason) {
      const level = opened.reason === NO_STATE_YET ? 'info' : 'warn';
      if (mode === 'changed') log(level, `state file ${path}: ${opened.reason}; the startup sync compares everything`);
      else log(level, `state file ${path}: ${opened.reason}; none is kept without a startup sync (nothing is known of the mirror)`);
    }
    const use = opened.loaded ? (mode === 'changed' ? 'used' : 'kept') : opened.journal ? 'fresh' : 'none';
    const reason = opened.reason ?? (mode === 'full' ? 'the full startup compares everything (--startup changed uses the state)' : undefined);
    return { ...opened, status: { path, use, ...(use !== 'used' && reason !== undefined && { reason }) } };
  } catch (e) {
    log('error', `state file ${path}: ${(e as Error).message}; no state is kept${mode === 'changed' ? ', the startup sync compares everything' : ''}`);
    return { status: { path, use: 'none', reason: (e as Error).message } };
  }
}

/**
 * A `changed` startup: scan the tree once (as a push of the whole tree would list it) and compare
 * it with each target's state; undefined when the scan fails (the startup is then a full one).
 */
async function changedSinceState(source: string, states: MirroredState[], transfer: TransferOptions, filter: PushFilter | undefined, log: LogFn): Promise<Array<Array<[string, PendingEntry]>> | undefined> {
  const started = performance.now();
  let list: PackedFileList;
  try {
    ({ list } = await scanSource(`${source}/`, { transfer, ...(filter && { filter }), onWarning: (text) => log('debug', text.trimEnd()) }));
  } catch (e) {
    log('warn', `${source}: scanning for the changed startup failed (${(e as Error).message}); the startup sync compares everything`);
    return undefined;
  }
  const scanned = performance.now() - started;
  const deletes = transfer.delete || transfer.deleteExcluded;
  const out = states.map((state) => startupChanges(state, list.entries(), deletes));
  log('info', `${source}: ${out.map((c) => c.length).join('/')} path(s) differ from the state file (${list.count} entries scanned in ${scanned.toFixed(0)} ms, compared in ${(performance.now() - started - scanned).toFixed(0)} ms)`);
  return out;
}

/** The push filter for the subtree `root`: names are matched as paths from the tree's root. */
function subtreeFilter(full: PushFilter, root: string): PushFilter {
  if (root === '') return full;
  const prefix = Buffer.from(root + '/');
  return {
    isExcluded: (relPath, isDir) => full.isExcluded(Buffer.concat([prefix, relPath]), isDir),
    wantsList: (protocol, deleteMode) => full.wantsList(protocol, deleteMode),
    sendList: (writer) => full.sendList(writer),
  };
}

export async function startLiveMirror(options: LiveMirrorOptions): Promise<LiveMirror> {
  const log: LogFn = options.onLog ?? (() => {});
  let source = resolve(options.source);
  try {
    source = realpathSync(source); // the watcher watches the real path; the pushes read the same
  } catch {
    // watch() below reports it (WatcherError EROOT)
  }
  // Nanosecond mtime comparison: the daemon's default (whole seconds) would skip a file rewritten
  // within the second with the same size, which a live mirror sees all the time.
  const given = options.transfer ?? DEFAULT_TRANSFER;
  const transfer: TransferOptions = { ...given, recursive: true, modifyWindow: given.modifyWindow ?? -1 };
  // lsyncd 2's delete = 'startup' | 'running': the other phase pushes without deleting.
  const deleting = transfer.delete || transfer.deleteExcluded;
  const keeping: TransferOptions = { ...transfer, delete: false, deleteExcluded: false };
  const startupTransfer = options.deleteOnly === 'running' ? keeping : transfer;
  const runningTransfer = options.deleteOnly === 'startup' ? keeping : transfer;
  const deletes = { startup: deleting && options.deleteOnly !== 'running', running: deleting && options.deleteOnly !== 'startup' };
  const list = options.filterList;
  const full = list ? pushFilter(list, { deleteExcluded: transfer.deleteExcluded, absRoot: source }) : undefined;
  // Hard links (-H) are only found within one push: a link between two subtrees would be broken.
  const subtrees = subtreeSafe(list) && !transfer.hardLinks;
  if (list && !subtreeSafe(list)) log('info', 'filter rules depend on whole paths: every batch pushes the whole tree');
  if (transfer.hardLinks) log('info', '-H: hard links span subtrees, so every batch pushes the whole tree');
  const retry = { initialMs: options.retry?.initialMs ?? 500, maxMs: options.retry?.maxMs ?? 30_000, refusedMs: options.retry?.refusedMs ?? 600_000 };

  // The state file, before the runners that record into it.
  const mode: StartupMode = options.startup === false ? 'none' : options.startup === true || options.startup === undefined ? 'full' : options.startup;
  let journal: StateJournal | undefined;
  let loaded: MirroredState[] | undefined;
  let stateStatus: SyncStateStatus | undefined;
  if (options.stateFile) {
    // The state says what the mirror holds whichever phase deletes (a push that does not delete
    // forgets nothing): the same file serves every delete setting.
    const identity = stateIdentity(source, options.targets.map((t) => describeTarget(t.target)), transfer, list);
    ({ journal, loaded, status: stateStatus } = openState(resolve(options.stateFile), identity, mode, log));
    // A path pushed, then deleted from the source before the next fdatasync, survives an OS crash
    // on the mirror; its begun record, durable before the push, has the next (deleting) start
    // remove it. Without a deleting start nothing would act on it: no cost then.
    if (journal && deletes.startup) journal.durableBegun = true;
  }

  const runners = options.targets.map(
    (t, i) =>
      new TargetRunner({
        source,
        target: t.target,
        session: t.session,
        transfer: runningTransfer,
        ...(startupTransfer !== runningTransfer && { startupTransfer }),
        ...(full && { filterFor: (root: string) => subtreeFilter(full, root) }),
        subtrees,
        delayMs: Math.max(0, (options.delay ?? 0) * 1000),
        retry,
        ...(options.maxPending !== undefined && { maxPending: options.maxPending }),
        ...(options.maxRoots !== undefined && { maxRoots: options.maxRoots }),
        log,
        ...(options.pushFn && { pushFn: options.pushFn }),
        ...(options.onItem && { onItem: options.onItem }),
        onPushed: (result) => memory.pushed(result.files, result.bytesSent),
        ...(journal && { recorder: journal.recorder(i) }),
      }),
  );
  const memory = memoryReleaser(options.releaseMemory ?? (() => releaseMemory()), () => runners.every((r) => r.status().state === 'idle' || r.status().state === 'stopped'), log);

  // 1. Watch first: when watch() returns every directory is watched, so nothing is missed.
  const matcher = list ? compileFilter(list, { side: 'sender', absRoot: source }) : undefined;
  let watcher: Watcher;
  try {
    watcher = watch(source, {
      ...options.watcher,
      ...(matcher && !matcher.empty && { filter: byteFilter(matcher) }),
    });
  } catch (e) {
    journal?.close();
    throw e;
  }
  // Polling where inotify was wanted (no addon) is said once, with the fix (README "The inotify addon").
  const pollingReason = watchingFallback(watcher, options.watcher?.backend);
  if (pollingReason) log('warn', `${source}: ${pollingReason}`);
  let rootGone = false;
  watcher.on('events', (batch) => {
    if (batch.some((e) => e.type === 'root-gone')) {
      rootGone = true;
      log('error', `${source}: the source directory is gone; the mirror stops following it (the targets keep their copy)`);
      for (const r of runners) r.drop();
      return;
    }
    for (const r of runners) r.changed((pending) => pending.addEvents(batch));
  });
  // An overflow is said once by the watcher; later ones are counted in the status.
  let overflows = 0;
  watcher.on('warning', (err) => log('warn', err.message));
  const overflowCount = () => (watcher.isClosed ? overflows : (overflows = watcher.stats().overflows));
  watcher.on('error', (err) => log('error', `watcher: ${err.message}`));

  // 2. The startup push (the whole tree, a pending rescan of ''; or what differs from the state
  // file; or nothing), then whatever changed meanwhile.
  const changes = mode === 'changed' && loaded ? await changedSinceState(source, loaded, startupTransfer, full, log) : undefined;
  if (mode === 'changed' && loaded && !changes && stateStatus) stateStatus = { ...stateStatus, use: 'fresh', reason: 'scanning the tree failed (see the log)' };
  loaded = undefined; // the states loaded (a 200k-file tree's worth) are not kept
  runners.forEach((r, t) => r.start(changes ? changes[t]! : mode !== 'none'));
  if (changes) memory.pushed(RELEASE_AFTER_FILES, 0); // the scan and the states grew the heap: give it back once idle
  const ready = Promise.all(runners.map((r) => r.whenSynced())).then(() => {
    log('info', `${source}: startup sync done for ${runners.length} target(s)`);
  });

  let stopping: Promise<StopResult> | undefined;
  return {
    watcher,
    ready,
    status: () => ({
      source,
      watcher: watcher.isClosed ? undefined : watcher.stats(),
      rootGone,
      overflows: overflowCount(),
      targets: runners.map((r) => r.status()),
      startup: mode,
      deletes,
      ...(stateStatus && { state: stateStatus }),
    }),
    whenIdle: () => Promise.all(runners.map((r) => r.whenIdle())).then(() => undefined),
    resync: (path = '') => {
      for (const r of runners) r.changed((pending) => pending.add(path.replace(/^\/+|\/+$/g, ''), { kind: 'rescan', isDir: true }));
    },
    stop: (stopOptions = {}) => {
      stopping ??= (async () => {
        const deadline = Date.now() + (stopOptions.timeoutMs ?? 10_000);
        const results = await Promise.all(runners.map((r) => r.stop(deadline)));
        memory.stop();
        journal?.close();
        overflowCount();
        watcher.close();
        return { unpushed: results.map((r) => r.unpushed), exitCodes: results.map((r) => r.exitCode) };
      })();
      return stopping;
    },
  };
}
