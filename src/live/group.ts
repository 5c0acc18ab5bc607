// Several live mirrors in one process, one per sync of a config file, each with its own watcher,
// filters and targets; a shared cap on parallel pushes; and the reload: syncs added start (with
// their startup sync), removed ones stop cleanly, changed ones restart, unchanged ones keep
// running untouched. docs/config.md; counterpart: lsyncd 2's Syncs list and its HUP reset
// (lsyncd.lua: Syncs.add, runner.initialize).
import { push } from '../transfer/push.js';
import { startLiveMirror, type LiveMirror, type LiveMirrorOptions, type LiveMirrorStatus, type StopResult } from './mirror.js';
import { PushLimiter } from './push-limit.js';
import type { LogFn } from './runner.js';

export interface GroupSync {
  /** Names the sync in every log line and in the status. */
  name: string;
  /** Two versions of a sync with the same identity are the same sync: a reload leaves it running. */
  identity: string;
  /** The mirror's options (its log goes through the group's, prefixed with the name). */
  mirror: Omit<LiveMirrorOptions, 'onLog' | 'pushFn'>;
  /** Run before the mirror starts (creating the targets' base directories). */
  prepare?: () => Promise<void>;
}

export interface GroupOptions {
  log: LogFn;
  /** Pushes running at once over all syncs (none: no cap). */
  maxPushes?: number;
}

/** What a change of configuration did, by sync name. */
export interface ApplySummary {
  started: string[];
  restarted: string[];
  stopped: string[];
  kept: string[];
  /** Could not start (e.g. the source is not a directory): said in the log, left out. */
  failed: string[];
}

export interface SyncStatus extends LiveMirrorStatus {
  name: string;
}

/** How long a removed or changed sync gets to push what it has pending before it stops. */
const STOP_TIMEOUT_MS = 10_000;

interface Running {
  sync: GroupSync;
  mirror: LiveMirror;
}

export class MirrorGroup {
  private readonly running = new Map<string, Running>();
  private readonly limiter: PushLimiter | undefined;
  /** One change at a time: a reload asked for during another waits for it. */
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(private readonly options: GroupOptions) {
    this.limiter = options.maxPushes !== undefined ? new PushLimiter(options.maxPushes) : undefined;
  }

  /** A sync's lines: `[NAME] message`, so a log of several syncs says whose each line is. */
  private logFor(name: string): LogFn {
    return (level, message) => this.options.log(level, `[${name}] ${message}`);
  }

  /**
   * Make the running syncs those of `syncs`: by name, a new one starts, a missing one stops after
   * pushing what it has pending, one whose identity changed stops and starts again (with its
   * startup sync), and one with the same identity is not touched.
   */
  apply(syncs: readonly GroupSync[]): Promise<ApplySummary> {
    const next = this.queue.then(() => this.applyNow(syncs));
    this.queue = next.catch(() => {});
    return next;
  }

  private async applyNow(syncs: readonly GroupSync[]): Promise<ApplySummary> {
    const summary: ApplySummary = { started: [], restarted: [], stopped: [], kept: [], failed: [] };
    if (this.stopped) return summary;
    const wanted = new Map(syncs.map((s) => [s.name, s]));
    // Stop first: a changed sync's new mirror may push to the same module as its old one.
    const stopping: Array<Promise<void>> = [];
    const changed = new Set<string>();
    for (const [name, run] of this.running) {
      const next = wanted.get(name);
      if (next && next.identity === run.sync.identity) continue;
      this.running.delete(name);
      if (next) changed.add(name);
      stopping.push(
        run.mirror.stop({ timeoutMs: STOP_TIMEOUT_MS }).then((result) => {
          const left = result.unpushed.reduce((a, b) => a + b, 0);
          this.logFor(name)('info', next ? 'changed in the config: restarting' : `removed from the config: stopped${left ? ` (${left} path(s) left unpushed)` : ''}`);
          if (!next) summary.stopped.push(name);
        }),
      );
    }
    await Promise.all(stopping);
    for (const sync of syncs) {
      const current = this.running.get(sync.name);
      if (current) {
        summary.kept.push(sync.name);
        continue;
      }
      try {
        await this.start(sync);
        (changed.has(sync.name) ? summary.restarted : summary.started).push(sync.name);
      } catch (e) {
        this.logFor(sync.name)('error', `cannot start: ${(e as Error).message}`);
        summary.failed.push(sync.name);
      }
    }
    return summary;
  }

  private async start(sync: GroupSync): Promise<void> {
    const log = this.logFor(sync.name);
    await sync.prepare?.();
    const mirror = await startLiveMirror({
      ...sync.mirror,
      onLog: log,
      ...(this.limiter && { pushFn: this.limiter.wrap(push) }),
    });
    this.running.set(sync.name, { sync, mirror });
    log('info', `watching ${sync.mirror.source}`);
  }

  /** The running syncs, in the order they started. */
  names(): string[] {
    return [...this.running.keys()];
  }

  mirror(name: string): LiveMirror | undefined {
    return this.running.get(name)?.mirror;
  }

  status(): SyncStatus[] {
    return [...this.running].map(([name, run]) => ({ name, ...run.mirror.status() }));
  }

  /** Pushes running and waiting under the shared cap (none without one). */
  pushSlots(): { max: number; running: number; waiting: number } | undefined {
    return this.limiter ? { max: this.limiter.max, ...this.limiter.stats() } : undefined;
  }

  /**
   * Stop every sync (each pushes what it has pending, within `timeoutMs`); no change starts after
   * it. `status()` keeps showing the stopped syncs (their last state, for a final status file).
   */
  async stop(timeoutMs: number): Promise<Array<StopResult & { name: string }>> {
    this.stopped = true;
    await this.queue;
    return Promise.all([...this.running].map(async ([name, run]) => ({ name, ...(await run.mirror.stop({ timeoutMs })) })));
  }
}
