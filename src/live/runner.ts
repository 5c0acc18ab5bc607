// One target of the live mirror: its pending set, its batches (one at a time), its retries.
// The mirror (mirror.ts) feeds every target the same watcher batches; each target collapses
// and pushes them on its own, so a slow or unreachable target never holds up the others.
import { lstatSync } from 'node:fs';
import { join, posix } from 'node:path';
import { push, primeSession, type PrimedSession, type PushFilter, type PushOptions, type PushResult } from '../transfer/push.js';
import type { DaemonSession } from '../transfer/client.js';
import { openTargetSession } from './connection.js';
import { RemoteError, EXIT } from '../../protocol/errors.js';
import { isUnreachable, isRefusal, isMaxConnections, isChurnMessage, isSummaryMessage, failureExitCode } from './failure.js';
import { PendingSet, pushRoots, parentOf, type Move, type PendingEntry, type PushRoot } from './plan.js';
import { pathToBytes, hasEscapes } from '../watcher/index.js';
import type { SelectionItem } from '../transfer/scan.js';
import type { DaemonTarget } from '../transfer/target.js';
import type { TransferOptions } from '../../protocol/args.js';
import type { SentItem } from '../../protocol/sender.js';
import type { PushRecorder } from './state.js';
import { sentItemLine, deletedLine, logText, type ItemLineOptions } from '../transfer/output.js';

const DOT = Buffer.from('.');

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFn = (level: LogLevel, message: string) => void;

export interface RetryOptions {
  /** First wait after a failure, ms (default 500). */
  initialMs?: number;
  /** Cap of the doubling wait, ms (default 30,000). */
  maxMs?: number;
  /**
   * How long an option the daemon refused stays off before a push tries it again, on a new
   * connection (its config may have changed), ms (default 600,000). Rename pre-pushes
   * (--copy-dest, --fuzzy) use it.
   */
  refusedMs?: number;
}

/** The push function (tests may wrap it); defaults to src/transfer/push.ts push(). */
export type PushFn = (options: PushOptions) => Promise<PushResult>;

export interface RunnerOptions {
  /** Absolute path of the local root (no trailing slash). */
  source: string;
  target: DaemonTarget;
  session: PushOptions['session'];
  /** The transfer options of the batches while running. */
  transfer: TransferOptions;
  /** Those of the startup sync, when they differ (lsyncd 2's delete = 'startup' | 'running'). */
  startupTransfer?: TransferOptions;
  /** The filter for a push of the subtree `root` ('' = the whole tree); undefined: no rules. */
  filterFor?: (root: string) => PushFilter | undefined;
  /** False when the filter rules make subtree pushes inexact: every batch pushes the whole tree. */
  subtrees: boolean;
  /** Quiet window before a batch starts, ms (0: as soon as the previous batch ended). */
  delayMs: number;
  retry: Required<RetryOptions>;
  maxPending?: number;
  maxRoots?: number;
  log: LogFn;
  pushFn?: PushFn;
  /** Each file answered during a push (progress display). */
  onItem?: (item: SentItem) => void;
  /** Each push that completed (whatever its exit code): the mirror's memory release counts them. */
  onPushed?: (result: PushResult) => void;
  /** The state file's record of this target (state.ts): batches begun, roots pushed. */
  recorder?: PushRecorder;
}

export type TargetState = 'startup' | 'idle' | 'waiting' | 'pushing' | 'backoff' | 'stopped';

export interface TargetStatus {
  target: string;
  state: TargetState;
  /** Distinct paths pending (a full resync counts as 1). */
  pending: number;
  /** The startup push (full tree) has succeeded. */
  synced: boolean;
  batches: number;
  pushes: number;
  failures: number;
  /** Batches pushed again at once because files vanished during the push (exit 24). */
  vanishedRetries: number;
  /** Failures in a row (0 after a success). */
  consecutiveFailures: number;
  lastError?: string;
  /** When the last batch went through (ISO-8601, as every time in the status file). */
  lastPushAt?: string;
  bytesSent: number;
}

/** What stop() leaves behind. */
export interface RunnerStopResult {
  /** Paths not pushed (0: everything was). */
  unpushed: number;
  /** rsync's code of the last failure when paths were left (23 when unsure), else 0. */
  exitCode: number;
}

export function describeTarget(t: DaemonTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return `rsync://${t.user ? t.user + '@' : ''}${host}:${t.port}/${t.module}/${t.path}`;
}

export class TargetRunner {
  readonly pending: PendingSet;
  private readonly name: string;
  private state: TargetState = 'startup';
  private stopped = false;
  /** The startup push (full tree) has succeeded. */
  private synced = false;
  /** A `changed` startup's batch is pending: its success is the startup sync. */
  private startingUp = false;
  private readonly stats = { batches: 0, pushes: 0, failures: 0, vanishedRetries: 0, consecutiveFailures: 0, bytesSent: 0, lastError: undefined as string | undefined, lastPushAt: undefined as string | undefined };
  private idleWaiters: Array<() => void> = [];
  private syncWaiters: Array<() => void> = [];

  /** The next batch when it is due: after the delay window or the backoff (timer), or this loop turn. */
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  /** The running batch, and its paths (out of the pending set until it ends). */
  private running: Promise<void> | undefined;
  private inFlight: string[] = [];

  /** The wait before the next attempt after a failed batch (0 after a success). */
  private backoffMs = 0;
  /** The failure logged for the current run of failures (the same one again is a debug line). */
  private failureSaid: string | undefined;
  /** rsync's exit code of the last failure (the process exits with it when paths are left). */
  private lastExitCode: number | undefined;
  /** stop() is flushing: a failure is not retried in a loop, and no "retrying" is said. */
  private stopping = false;
  /** The daemon refused a connection for its `max connections`: no session is opened ahead any more. */
  private noSpares = false;
  /** What the daemon and the scan said during the current push: tree changes counted, the rest kept. */
  private notes = { churn: 0, other: 0, said: [] as string[] };
  /** Levels a failing push root has moved up (see settle()). */
  private escalate = 0;
  /** The protocol of the last push (single-session batches need 30 or later). */
  private protocol: number | undefined;
  /** The daemon refused an option of the single-session batch (e.g. delete-missing-args): subtree pushes from then on. */
  private selectiveRefused = false;
  /**
   * Rename pre-pushes: undefined while on; after the daemon refused --copy-dest or --fuzzy, the
   * time (ms since the epoch) when a pre-push tries them again, since the daemon reads its
   * config anew on every connection (rsync: clientserver.c start_daemon).
   */
  private renamesOffUntil: number | undefined;
  /** A refusal has been logged at info level (later ones, after each retry, are debug lines). */
  private renamesRefusalSaid = false;
  /** The renames were off and are being tried again (a success is then said once). */
  private renamesRetrying = false;

  /**
   * A session opened ahead of the next batch (connect, greetings, auth done; the daemon waits
   * for the argument list), so a change costs only its file list and data. Dropped after
   * SPARE_MAX_MS unused, or when the daemon closes it.
   */
  private spare: { session: Promise<Spare | undefined>; timer: NodeJS.Timeout; primed: boolean } | undefined;

  constructor(private readonly o: RunnerOptions) {
    this.pending = new PendingSet({ ...(o.maxPending !== undefined && { maxPaths: o.maxPending }) });
    this.name = describeTarget(o.target);
  }

  /**
   * Begin: the whole tree is pending (the startup push), nothing with `startup: false`, or the
   * given changes (a `changed` startup: what differs from the state file). Those are pushed as
   * one batch of just those paths, so the daemon's protocol is learnt first, on a session kept
   * for that batch.
   */
  start(startup: boolean | ReadonlyArray<[string, PendingEntry]>): void {
    if (startup === true) this.pending.add('', { kind: 'rescan', isDir: true });
    else if (startup === false) this.synced = true;
    else {
      for (const [path, entry] of startup) this.pending.add(path, entry);
      if (this.pending.size === 0) this.synced = true;
      else {
        this.startingUp = true;
        void this.learnProtocol().then(() => {
          if (this.stopped || this.stopping) return; // stop() runs the batch itself
          this.state = 'idle';
          this.schedule(0);
        });
        return;
      }
    }
    this.state = 'idle';
    this.schedule(0); // the startup push does not wait for the delay window
  }

  /** Connect once to learn the daemon's protocol (single-session batches need 30+); the session is kept for the batch. */
  private async learnProtocol(): Promise<void> {
    if (this.o.pushFn || this.noSpares) return;
    const session = await this.connect().catch(() => undefined); // unreachable: the batch reports it
    if (!session) return;
    this.protocol = session.hello.protocol;
    if (this.stopped || this.stopping || this.spare) return void session.socket.destroy();
    const timer = setTimeout(() => void this.dropSpare(true), SPARE_MAX_MS);
    timer.unref?.();
    this.spare = { session: Promise.resolve(session), timer, primed: false };
  }

  /** Forget everything pending (the source is gone: there is nothing left to push). */
  drop(): void {
    this.pending.take();
  }

  /** A watcher batch (already filtered): collapse it into the pending set, start a batch if idle. */
  changed(add: (pending: PendingSet) => void): void {
    if (this.stopped) return;
    add(this.pending);
    this.schedule();
  }

  status(): TargetStatus {
    return {
      target: this.name,
      state: this.state,
      pending: this.pending.size,
      synced: this.synced,
      batches: this.stats.batches,
      pushes: this.stats.pushes,
      failures: this.stats.failures,
      vanishedRetries: this.stats.vanishedRetries,
      consecutiveFailures: this.stats.consecutiveFailures,
      ...(this.stats.lastError !== undefined && { lastError: this.stats.lastError }),
      ...(this.stats.lastPushAt !== undefined && { lastPushAt: this.stats.lastPushAt }),
      bytesSent: this.stats.bytesSent,
    };
  }

  /** Resolves when the startup push has succeeded. */
  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** Resolves when nothing is pending and no batch runs (or the runner has stopped). */
  whenIdle(): Promise<void> {
    if (this.isIdle() || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.running === undefined && this.pending.size === 0;
  }

  /**
   * Stop: let the running batch end, then push what is pending until `deadline` (ms since the
   * epoch), one attempt only while the target fails. Returns the paths left unpushed and rsync's
   * code of the failure that left them.
   */
  async stop(deadline: number): Promise<RunnerStopResult> {
    this.clearTimer();
    this.stopping = true;
    // Flush: ignore backoff and delay, one batch after another while time is left. A target that
    // fails (refusing, unreachable) gets one attempt, not a reconnect loop until the deadline;
    // files that vanished meanwhile (exit 24) are no failure and go again.
    const failuresBefore = this.stats.failures;
    while (Date.now() < deadline) {
      if (this.running) {
        await Promise.race([this.running, sleep(deadline - Date.now())]);
        continue;
      }
      if (this.pending.size === 0) break;
      if (this.stats.failures > failuresBefore) break; // this stop's attempt failed: give up
      const attempt = this.runBatch();
      await Promise.race([attempt, sleep(deadline - Date.now())]);
    }
    this.stopped = true;
    this.clearTimer();
    await this.dropSpare();
    this.state = 'stopped';
    // A batch still running at the deadline holds paths taken out of the pending set: count them too.
    let left = this.pending.size;
    if (this.running) for (const path of this.inFlight) if (!this.pending.has(path)) left++;
    if (left) this.o.log('warn', `${this.name}: stopped with ${left} path(s) not pushed`);
    for (const w of this.idleWaiters.splice(0)) w(); // nothing will run any more
    return { unpushed: left, exitCode: left ? (this.lastExitCode ?? EXIT.PARTIAL) : 0 };
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
  }

  /** Start a batch when one may start: idle, something pending, not backing off. */
  private schedule(delayMs = this.o.delayMs): void {
    // While stopping, stop() runs the batches itself, one after another.
    // Before start() (or while it learns the protocol) changes only collect.
    if (this.stopped || this.stopping || this.running || this.state === 'backoff' || this.state === 'startup' || this.pending.size === 0) return;
    if (this.timer || this.immediate) return; // a batch is already due (delay window)
    this.state = 'waiting';
    if (delayMs <= 0) {
      // After this loop turn's I/O callbacks: the events of one kernel read go in one batch,
      // without the extra millisecond a zero setTimeout costs.
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        void this.runBatch();
      });
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runBatch();
    }, delayMs);
  }

  private runBatch(): Promise<void> {
    if (this.running) return this.running;
    const run = this.batch().finally(() => {
      this.running = undefined;
      this.inFlight = [];
      if (this.stopped) return;
      if (this.state !== 'backoff') {
        this.state = 'idle';
        this.schedule();
      }
      if (this.isIdle()) for (const w of this.idleWaiters.splice(0)) w();
    });
    this.running = run;
    return run;
  }

  /** One batch: what is pending now, its renames first, its pushes, then what the outcome means. */
  private async batch(): Promise<void> {
    const plan = this.plan();
    if (!plan) return;
    // Recorded before the push: should we die during it, these paths are pushed at the next start.
    if (!this.o.transfer.dryRun) this.o.recorder?.begun(plan.taken);
    await this.pushRenames(plan);
    const outcome = await this.pushPlan(plan);
    this.settle(plan, outcome);
  }

  /** Take the pending set and decide how it goes out: one session, or push roots. */
  private plan(): BatchPlan | undefined {
    const taken = this.pending.take();
    if (taken.size === 0) return undefined;
    this.inFlight = [...taken.keys()];
    this.state = 'pushing';
    this.stats.batches++;
    const full = taken.get('')?.kind === 'rescan';
    // One session for the whole batch (just the changed paths), once the daemon is known to speak
    // protocol 30+; else (and after repeated failures) pushes of the subtrees that cover them.
    const selective = this.canSelect(full);
    const roots: PushRoot[] = selective
      ? [{ root: '', paths: [...taken.keys()] }]
      : pushRoots(taken, {
          isLocalDir: (rel) => this.isLocalDir(rel),
          subtrees: this.o.subtrees,
          escalate: this.escalate,
          ...(this.o.maxRoots !== undefined && { maxRoots: this.o.maxRoots }),
        });
    const startup = !this.synced && (full || this.startingUp);
    return { taken, moves: this.pending.takeMoves(), full, startup, selective, roots };
  }

  /**
   * Renames first: a renamed directory is pushed with the old one (still on the mirror) as
   * --copy-dest, so its files are copied on the daemon instead of sent; renamed files with
   * --fuzzy. The batch's pushes then find them in place and only delete the old paths. A
   * pre-push that fails leaves its data to those pushes.
   */
  private async pushRenames({ taken, moves, full, selective }: BatchPlan): Promise<void> {
    if (full || moves.size === 0 || !this.renamesOn()) return;
    for (const [to, move] of moves) {
      if (!move.isDir || taken.get(to)?.kind !== 'create' || !this.isLocalDir(to)) continue;
      await this.pushRename(to, move.from).catch((e) => this.renameFailed(e, `rename ${move.from} -> ${to}`));
      if (this.renamesOffUntil !== undefined) return;
    }
    if (!selective) return;
    for (const group of fileMoveGroups(moves, taken, this.o.source)) {
      await this.pushFileMoves(group).catch((e) => this.renameFailed(e, `renamed files into /${group.toDir}`));
      if (this.renamesOffUntil !== undefined) return;
    }
  }

  /** Whether rename pre-pushes are on; once the refusal is old, they are tried again. */
  private renamesOn(): boolean {
    if (this.renamesOffUntil === undefined) return true;
    if (Date.now() < this.renamesOffUntil) return false;
    this.renamesOffUntil = undefined;
    this.renamesRetrying = true;
    this.o.log('debug', `${this.name}: trying --copy-dest and --fuzzy again for renames`);
    return true;
  }

  /** A rename pre-push went through: if renames were off until now, say they are back. */
  private renameSucceeded(): void {
    if (!this.renamesRetrying) return;
    this.renamesRetrying = false;
    this.o.log('info', `${this.name}: the daemon takes --copy-dest and --fuzzy again; renames are pushed with their old copies as basis`);
  }

  /**
   * A rename pre-push failed. Only the daemon refusing --copy-dest or --fuzzy (its `refuse
   * options`) turns renames off, until `retry.refusedMs` from now, said at info level once. Any
   * other failure (a directory that changed under the push, the connection) concerns this push
   * alone: the batch's pushes send the data plainly, and renames stay on.
   */
  private renameFailed(e: unknown, what: string): void {
    const message = (e as Error).message.trim();
    const option = e instanceof RemoteError ? e.refusedOption : undefined;
    if (option !== 'copy-dest' && option !== 'fuzzy') {
      this.o.log('debug', `${this.name}: ${what} failed, its data goes with the batch (${message})`);
      return;
    }
    this.renamesOffUntil = Date.now() + this.o.retry.refusedMs;
    this.renamesRetrying = false;
    const level = this.renamesRefusalSaid ? 'debug' : 'info';
    this.renamesRefusalSaid = true;
    const retry = `tried again in ${Math.round(this.o.retry.refusedMs / 1000)} s`;
    this.o.log(level, `${this.name}: the daemon refused --${option}; renames are sent as plain transfers, ${retry} (${message})`);
  }

  /** Push the renamed directory `to` with the mirror's copy at `from` as the basis. */
  private async pushRename(to: string, from: string): Promise<void> {
    const result = await this.runPush({
      dir: to,
      // Relative to the destination directory, as rsync takes --copy-dest.
      transfer: { copyDest: posix.relative(to, from) },
      rename: `rename ${from} -> ${to}`,
    });
    this.counted(result);
    this.renameSucceeded();
    this.o.log('debug', `${this.name}: rename ${from} -> ${to} pushed with the old copy as basis (${result.stats.literalBytes} literal bytes)`);
  }

  /**
   * Renamed files of one directory pair, before the batch: pushed into their new directory with
   * --fuzzy, so the daemon finds the old copy (same size and mtime, still in place: the batch
   * deletes it afterwards) and uses it as the basis, and only checksums cross the wire. From
   * another directory, that directory is the --copy-dest and the fuzzy search looks there (-yy).
   */
  private async pushFileMoves(group: FileMoveGroup): Promise<void> {
    const across = group.fromDir !== group.toDir;
    const result = await this.runPush({
      dir: group.toDir,
      selection: group.names.map((name) => ({ path: pathToBytes(name), recurse: false })),
      transfer: {
        delete: false,
        deleteExcluded: false,
        fuzzy: across ? 2 : 1,
        ...(across && { copyDest: posix.relative(group.toDir, group.fromDir) || '.' }),
      },
      unfiltered: true,
      rename: `renamed files into /${group.toDir}`,
    });
    this.counted(result);
    this.renameSucceeded();
    this.o.log('debug', `${this.name}: ${group.names.length} renamed file(s) into /${group.toDir} pushed with their old copies as basis (${result.stats.literalBytes} literal bytes)`);
  }

  /** The batch's pushes: one session for all of it, or one push per root (the rest skipped once the target is unreachable). */
  private async pushPlan({ taken, selective, roots, startup }: BatchPlan): Promise<BatchOutcome> {
    const transfer = this.transferOf(startup);
    const outcome: BatchOutcome = { failed: [], vanished: [], unreachable: false, thrown: false, error: undefined, exitCode: undefined, started: Date.now(), files: 0, bytes: 0, churn: 0 };
    // The whole batch in one session: each changed path with its parents, new directories with
    // their subtrees, deleted paths as --delete-missing-args entries, nothing else.
    const selection = selective ? [...taken].map(([path, entry]): SelectionItem => ({ path: pathToBytes(path), recurse: entry.kind === 'create' || entry.kind === 'rescan' })) : undefined;
    for (const root of roots) {
      if (outcome.unreachable) {
        outcome.failed.push(root);
        continue;
      }
      try {
        // That session (its root is ''), or the subtree `root`, recursively, with --delete inside it.
        const result = await this.runPush({ dir: root.root, ...(selection && { selection }), ...(startup && { startup }) });
        this.protocol = result.protocol;
        this.o.onPushed?.(result);
        this.counted(result);
        // What the target now has, for the state file: only a push that went through entirely.
        if (result.exitCode === EXIT.OK && !transfer.dryRun) this.o.recorder?.pushed(root, result.entries, transfer.delete || transfer.deleteExcluded);
        outcome.files += result.stats?.transferredFiles ?? 0;
        outcome.bytes += result.bytesSent ?? 0;
        outcome.churn += this.notes.churn;
        // Only the tree changing under the push: files vanished between the scan and the send
        // (24), or a 23 whose every message says a file vanished, changed or stopped being a
        // directory. Keep the paths pending and go again at once: the watcher reports what became
        // of them. Anything else is a failure, retried after a wait.
        const churnOnly = result.exitCode === EXIT.PARTIAL && this.notes.churn > 0 && this.notes.other === 0;
        if (result.exitCode === EXIT.VANISHED || churnOnly) {
          outcome.vanished.push(root);
        } else if (result.exitCode !== EXIT.OK) {
          outcome.failed.push(root);
          outcome.error = `push of /${root.root} ended with exit code ${result.exitCode}`;
          outcome.exitCode = result.exitCode;
        }
      } catch (e) {
        outcome.failed.push(root);
        outcome.error = (e as Error).message.trimEnd().split('\n')[0];
        outcome.exitCode = failureExitCode(e);
        if (isMaxConnections(e)) this.stepBack();
        if (isUnreachable(e) || isRefusal(e)) outcome.unreachable = true;
        else outcome.thrown = true;
        if (selective && e instanceof RemoteError && e.refusedOption !== undefined) {
          // A module refusing an option of the batch (`refuse options = delete-missing-args`
          // drops it quietly: the daemon then rejects the mode-0 entries): batches go back to
          // subtree pushes for good, said once.
          this.selectiveRefused = true;
          this.o.log('info', `${this.name}: the daemon refused a single-session batch; changes are pushed as subtrees (${e.message.trim()})`);
        }
      }
    }
    return outcome;
  }

  /** After the pushes: the vanished paths go again at once, the failed ones after a backoff; a success resets it. */
  private settle({ taken, full, selective, roots }: BatchPlan, { failed, vanished, unreachable, thrown, error, exitCode, started, files, bytes, churn }: BatchOutcome): void {
    const putBack = (pushed: PushRoot[]) => {
      // Older than whatever arrived meanwhile, so a later change still wins.
      const back: Array<[string, PendingEntry]> = [];
      for (const root of pushed) for (const path of root.paths) back.push([path, taken.get(path)!]);
      this.pending.restore(back);
    };
    if (vanished.length) {
      putBack(vanished);
      this.stats.vanishedRetries++;
      this.o.log('debug', `${this.name}: the tree changed during the push of ${vanished.map((r) => '/' + r.root).join(' ')}: pushing again`);
    }
    if (failed.length === 0) {
      if (this.stats.consecutiveFailures > 0) this.o.log('info', `${this.name}: the target takes pushes again (after ${this.stats.consecutiveFailures} failed attempt(s))`);
      this.backoffMs = 0;
      this.escalate = 0;
      this.failureSaid = undefined;
      this.stats.consecutiveFailures = 0;
      this.stats.lastPushAt = new Date().toISOString();
      const how = selective ? 'one session' : `${roots.length} subtree(s) (${roots.map((r) => '/' + r.root).join(' ')})`;
      // One line per batch at the default level: the target, what went, how long it took.
      const again = vanished.length ? `; ${churn} file(s) changed or vanished meanwhile, pushing again` : '';
      const dry = this.o.transfer.dryRun ? ' (dry run: nothing changed on the target)' : '';
      this.o.log('info', `${this.name}: pushed ${taken.size} change(s): ${files} file(s), ${bytes} bytes in ${Date.now() - started} ms${again}${dry}`);
      this.o.log('debug', `${this.name}: that batch went as ${how}`);
      if ((full || this.startingUp) && !this.synced) this.markSynced(); // files that vanished meanwhile are not part of the tree
      // The target answers: have the next session ready before the next change arrives.
      this.openSpare();
      return;
    }
    putBack(failed);
    if ((full || this.startingUp) && !this.synced && !failed.some((r) => r.root === '')) this.markSynced();
    this.stats.failures++;
    this.stats.consecutiveFailures++;
    this.stats.lastError = error;
    this.lastExitCode = exitCode ?? EXIT.PARTIAL;
    // A push that broke off for another reason than reachability (e.g. the daemon cannot create
    // the subtree because its parent is missing on the mirror) is retried one level higher each
    // time it fails again. Partial transfers (exit 23/24) are retried as they are.
    if (thrown && !unreachable && this.stats.consecutiveFailures >= 2) this.escalate++;
    this.backoffMs = this.backoffMs === 0 ? this.o.retry.initialMs : Math.min(this.backoffMs * 2, this.o.retry.maxMs);
    if (this.stopping) {
      this.o.log(unreachable ? 'warn' : 'error', `${this.name}: ${error}; ${this.pending.size} path(s) pending`);
      return; // stop() decides what comes next: no retry timer
    }
    // The state change is said once (and again only if the failure changes); each retry is a
    // debug line: a target down for a day does not fill the log.
    const retry = `retrying in ${(this.backoffMs / 1000).toFixed(1)} s`;
    if (this.failureSaid !== error) {
      this.failureSaid = error;
      this.o.log(unreachable ? 'warn' : 'error', `${this.name}: ${error}; ${this.pending.size} path(s) pending, ${retry}, then with a wait growing up to ${(this.o.retry.maxMs / 1000).toFixed(0)} s`);
    } else {
      this.o.log('debug', `${this.name}: still failing (${error}); ${retry}`);
    }
    if (this.stopped) return; // stop() gave up waiting for this batch: no retry
    this.state = 'backoff';
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.state = 'idle';
      this.schedule();
    }, this.backoffMs);
  }

  private markSynced(): void {
    this.synced = true;
    this.startingUp = false;
    for (const w of this.syncWaiters.splice(0)) w();
  }

  private counted(result: PushResult): void {
    this.stats.pushes++;
    this.stats.bytesSent += result.bytesSent;
  }

  private isLocalDir(rel: string): boolean {
    try {
      return lstatSync(rel === '' ? this.o.source : join(this.o.source, rel)).isDirectory();
    } catch {
      return false;
    }
  }

  /** Whether the next batch will be a single-session push (see plan()). */
  private canSelect(full = false): boolean {
    return !full && this.o.subtrees && this.escalate === 0 && !this.selectiveRefused && (this.protocol ?? 0) >= 30;
  }

  /**
   * Run one push of the runner, on the session opened ahead if there is one. The single-session
   * batch takes the spare primed for it; the others take only a spare that is not primed.
   */
  private async runPush(spec: PushSpec): Promise<PushResult> {
    const kind = spec.selection && !spec.rename ? 'selection' : 'other';
    // One connection at a time: a spare kept for another kind of push is closed first, so a
    // module with `max connections = 1` never sees a second one of ours.
    if (this.spare?.primed && kind !== 'selection') await this.dropSpare(true);
    this.notes = { churn: 0, other: 0, said: [] };
    try {
      const result = await this.withSpare(kind, (spare) => (this.o.pushFn ?? push)(this.pushOptions(spec, spare)));
      this.sayNotes(undefined);
      return result;
    } catch (e) {
      this.sayNotes(e);
      throw e;
    }
  }

  /**
   * The daemon's messages of the push just ended: warnings, unless the push failed with the same
   * words (the failure line says them) or the target is known to be failing (its story again).
   */
  private sayNotes(error: unknown): void {
    const said = error instanceof Error ? error.message : '';
    const quiet = this.stats.consecutiveFailures > 0;
    for (const text of this.notes.said) this.o.log(quiet || said.includes(text) ? 'debug' : 'warn', `${this.name}: ${text}`);
    this.notes.said = [];
  }

  /**
   * A message from the scan or the daemon during a push. A file that vanished or changed under
   * the push is counted (the batch's line says how many) and goes to the debug log; rsync's
   * closing summary line is debug too. Anything else is kept for sayNotes() at the push's end.
   */
  private noted(text: string): void {
    const line = `${this.name}: ${text.trimEnd()}`;
    if (isChurnMessage(text)) {
      this.notes.churn++;
      return this.o.log('debug', line);
    }
    if (isSummaryMessage(text)) return this.o.log('debug', line);
    this.notes.other++;
    this.notes.said.push(text.trimEnd());
  }

  /**
   * -v and -i: each item's line, as `--once` prints it (output.ts, names escaped as rsync escapes
   * them), logged with the target's name; a push of a subtree names its items from the source root.
   */
  private itemLogger(spec: PushSpec): { onItem?: (item: SentItem) => void; onDeleted?: (name: Buffer, isDir: boolean) => void } {
    const t = this.o.transfer;
    if (!t.itemize && !t.verbose) return {};
    const lines: ItemLineOptions = { itemize: t.itemize, verbose: t.verbose, times: t.times };
    const prefix = spec.dir === '' ? undefined : Buffer.from(`${spec.dir}/`);
    // The subtree's own '.' is the subtree (`dir/`, as a whole-tree push names it).
    const named = (name: Buffer) => (!prefix ? name : name.equals(DOT) ? prefix.subarray(0, -1) : Buffer.concat([prefix, name]));
    const say = (parts: Array<string | Uint8Array> | null) => parts && this.o.log('info', `${this.name}: ${logText(parts)}`);
    return {
      onItem: (item) => say(sentItemLine({ iflags: item.iflags, entry: { ...item.entry, name: named(item.entry.name) } }, lines)),
      onDeleted: (name, isDir) => say(deletedLine(named(name), isDir, lines)),
    };
  }

  /** The options of a push (the one place they are built): `spec.dir` of the source onto the same path under the target. */
  private pushOptions(spec: PushSpec, spare: Spare | undefined): PushOptions {
    const filter = spec.unfiltered ? undefined : this.o.filterFor?.(spec.dir);
    const logItems = this.itemLogger(spec);
    const progress = spec.rename ? undefined : this.o.onItem;
    const onItem =
      progress && logItems.onItem
        ? (item: SentItem) => {
            progress(item);
            logItems.onItem!(item);
          }
        : (progress ?? logItems.onItem);
    return {
      source: spec.dir === '' ? `${this.o.source}/` : `${this.o.source}/${spec.dir}/`,
      target: this.targetOf(spec.dir),
      transfer: spec.transfer ? { ...this.transferOf(spec.startup), ...spec.transfer } : this.transferOf(spec.startup),
      session: this.o.session,
      ...(spec.selection && { selection: spec.selection }),
      ...(filter && { filter }),
      onInfo: (text) => this.o.log('debug', `${this.name}: ${text.trimEnd()}`),
      // A rename pre-push's errors are its own (the batch sends its data anyway): debug lines.
      onError: spec.rename ? (text) => this.o.log('debug', `${this.name}: ${spec.rename}: ${text.trimEnd()}`) : (text) => this.noted(text),
      ...spareOption(spare),
      ...(onItem && { onItem }),
      ...(logItems.onDeleted && { onDeleted: logItems.onDeleted }),
    };
  }

  /** The transfer options of a push of the startup sync, or of a batch while running. */
  private transferOf(startup: boolean | undefined): TransferOptions {
    return startup ? (this.o.startupTransfer ?? this.o.transfer) : this.o.transfer;
  }

  /** The target's directory matching `dir` of the source ('' = the target's own path). */
  private targetOf(dir: string): DaemonTarget {
    const path = [this.o.target.path.replace(/\/+$/, ''), dir].filter(Boolean).join('/');
    return { ...this.o.target, path: path ? `${path}/` : '' };
  }

  private openSpare(): void {
    if (this.stopped || this.stopping || this.spare || this.o.pushFn || this.noSpares) return;
    // When the next batch will be a single-session push, take the session through its argument
    // list and setup phase too: the change then costs only its file list and data.
    const prime = this.canSelect();
    const session = this.connect()
      .then((opened): Promise<Spare | undefined> | Spare | undefined => {
        if (!opened || !prime) return opened;
        return primeSession(opened, { transfer: this.o.transfer, target: this.targetOf(''), selection: [] }).catch(() => {
          opened.socket.destroy();
          return undefined;
        });
      })
      .catch((e: unknown) => {
        // The module is full with our last session still closing: it limits connections, so
        // step back for good (a session ahead would take its only slot).
        if (isMaxConnections(e)) this.stepBack();
        return undefined; // else unreachable now: the next batch connects (and reports) on its own
      });
    const timer = setTimeout(() => void this.dropSpare(true), SPARE_MAX_MS);
    timer.unref?.();
    this.spare = { session, timer, primed: prime };
  }

  private async takeSpare(kind: 'selection' | 'other'): Promise<Spare | undefined> {
    const spare = this.spare;
    if (!spare) return undefined;
    if (spare.primed && kind !== 'selection') return undefined; // kept for the batch it was primed for
    this.spare = undefined;
    clearTimeout(spare.timer);
    return spare.session;
  }

  /**
   * Close the spare. A primed one unused for SPARE_MAX_MS is ended politely, with an empty file
   * list (a no-op transfer), so the daemon logs a normal session rather than a broken stream.
   */
  private async dropSpare(politely = false): Promise<void> {
    const spare = this.spare;
    this.spare = undefined;
    if (!spare) return;
    clearTimeout(spare.timer);
    const s = await spare.session;
    if (!s) return;
    if (!('route' in s)) return void s.socket.destroy();
    if (!politely) return void s.session.socket.destroy();
    const noop = { source: `${this.o.source}/`, target: this.targetOf(''), transfer: this.o.transfer, session: this.o.session, selection: [], primed: s };
    await push(noop).then(
      () => undefined,
      () => void s.session.socket.destroy(),
    );
  }

  /** No more sessions opened ahead: the daemon limits its connections. */
  private stepBack(): void {
    if (this.noSpares) return;
    this.noSpares = true;
    this.o.log('info', `${this.name}: the daemon limits its connections; no session is opened ahead any more`);
  }

  /** Run a push on the pre-opened session if there is one (and again on a fresh one if it died). */
  private async withSpare(kind: 'selection' | 'other', run: (session?: Spare) => Promise<PushResult>): Promise<PushResult> {
    const preopened = await this.takeSpare(kind);
    if (!preopened) return run(await this.connect());
    try {
      return await run(preopened);
    } catch (e) {
      // The spare may have been closed by the daemon while it waited (a module `timeout`): a
      // push is idempotent, so go again at once on a fresh connection.
      if (!isUnreachable(e)) throw e;
      this.o.log('debug', `${this.name}: the pre-opened session failed (${(e as Error).message}); reconnecting`);
      return run(await this.connect());
    }
  }

  /**
   * A connection of ours to the target, whose polite close waits for the daemon's process to end
   * (see connection.ts); none with a test's push function, which connects on its own.
   */
  private async connect(): Promise<DaemonSession | undefined> {
    if (this.o.pushFn) return undefined;
    return openTargetSession({ ...this.o.session, host: this.o.target.host, port: this.o.target.port }, this.o.target.module);
  }
}

/** One batch, as plan() takes it from the pending set. */
interface BatchPlan {
  taken: ReadonlyMap<string, PendingEntry>;
  /** Renames the watcher paired since the last batch (new path → old path). */
  moves: ReadonlyMap<string, Move>;
  /** The whole tree is to be compared (startup, overflow, resync). */
  full: boolean;
  /** The startup sync (not yet synced): its transfer options. */
  startup: boolean;
  /** One session for the whole batch (else one push per root). */
  selective: boolean;
  roots: PushRoot[];
}

/** What the batch's pushes came to (settle() acts on it). */
interface BatchOutcome {
  /** Roots whose push failed or was skipped: pending again, after a backoff. */
  failed: PushRoot[];
  /** Roots whose push ended with exit 24: pending again, at once. */
  vanished: PushRoot[];
  /** The target did not answer (the roots after it were skipped). */
  unreachable: boolean;
  /** A push threw for another reason than reachability. */
  thrown: boolean;
  /** The last failure, for the log and status(). */
  error: string | undefined;
  /** rsync's code of the last failure. */
  exitCode: number | undefined;
  started: number;
  /** Files transferred and bytes sent by the batch's pushes. */
  files: number;
  bytes: number;
  /** Messages that only said the tree changed under the push. */
  churn: number;
}

/** What differs between the runner's pushes; pushOptions() adds the rest. */
interface PushSpec {
  /** The directory pushed ('' = the source root), onto the same path under the target. */
  dir: string;
  /** Only these paths of `dir` (the single-session batch, renamed files); else all of it. */
  selection?: SelectionItem[];
  /** Changes to the runner's transfer options (the rename pre-pushes' --copy-dest, --fuzzy). */
  transfer?: Partial<TransferOptions>;
  /** No filter rules (renamed files: named one by one, nothing deleted). */
  unfiltered?: boolean;
  /** A rename pre-push, by name: its daemon errors go to the debug log, no progress. */
  rename?: string;
  /** A push of the startup sync (its transfer options, RunnerOptions.startupTransfer). */
  startup?: boolean;
}

/** A session opened ahead: connected and authenticated, or primed for a single-session batch. */
type Spare = DaemonSession | PrimedSession;

function spareOption(spare: Spare | undefined): Pick<PushOptions, 'preopened' | 'primed'> {
  if (!spare) return {};
  return 'route' in spare ? { primed: spare } : { preopened: spare };
}

/** Renamed files of one batch from one directory into another (or the same). */
export interface FileMoveGroup {
  toDir: string;
  fromDir: string;
  /** New names, relative to toDir. */
  names: string[];
}

/** Below this many bytes a group of renamed files is cheaper to send again than to pre-push. */
export const FUZZY_MIN_BYTES = 32 * 1024;

/**
 * The renamed regular files of a batch worth a --fuzzy pre-push, grouped by (new directory, old
 * directory): still a file at the new name, and not moved out of a renamed directory (those go
 * with the directory). Names with non-UTF-8 bytes are left to the batch.
 */
export function fileMoveGroups(moves: ReadonlyMap<string, Move>, taken: ReadonlyMap<string, PendingEntry>, source: string): FileMoveGroup[] {
  const groups = new Map<string, FileMoveGroup & { bytes: number }>();
  for (const [to, move] of moves) {
    if (move.isDir || taken.get(to)?.kind !== 'create' || hasEscapes(to) || hasEscapes(move.from)) continue;
    let size: number;
    try {
      const st = lstatSync(join(source, to));
      if (!st.isFile() || st.size === 0) continue;
      size = st.size;
    } catch {
      continue;
    }
    const toDir = parentOf(to);
    const fromDir = parentOf(move.from);
    const key = `${toDir}\0${fromDir}`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { toDir, fromDir, names: [], bytes: 0 }));
    group.names.push(toDir === '' ? to : to.slice(toDir.length + 1));
    group.bytes += size;
  }
  return [...groups.values()].filter((g) => g.bytes >= FUZZY_MIN_BYTES).map(({ toDir, fromDir, names }) => ({ toDir, fromDir, names }));
}

/** How long a pre-opened session may wait for a batch before it is closed. */
const SPARE_MAX_MS = 30_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)).unref?.());
}
