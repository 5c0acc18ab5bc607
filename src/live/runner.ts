// One target of the live mirror: its pending set, its batches (one at a time), its retries.
// The mirror (mirror.ts) feeds every target the same watcher batches; each target collapses
// and pushes them on its own, so a slow or unreachable target never holds up the others.
import { lstatSync } from 'node:fs';
import { join, posix } from 'node:path';
import { push, primeSession, type PrimedSession, type PushFilter, type PushOptions, type PushResult } from '../transfer/push.js';
import { openModule, type DaemonSession } from '../transfer/client.js';
import { ConnectionClosedError, DaemonRefusalError, NotADaemonError, RemoteError, SocketError, TimeoutError } from '../../protocol/errors.js';
import { EXIT } from '../../protocol/errors.js';
import { PendingSet, pushRoots, parentOf, type Move, type PendingEntry, type PushRoot } from './plan.js';
import { pathToBytes, hasEscapes } from '../watcher/index.js';
import type { SelectionItem } from '../transfer/scan.js';
import type { DaemonTarget } from '../transfer/target.js';
import type { TransferOptions } from '../../protocol/args.js';
import type { SentItem } from '../../protocol/sender.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFn = (level: LogLevel, message: string) => void;

export interface RetryOptions {
  /** First wait after a failure, ms (default 500). */
  initialMs?: number;
  /** Cap of the doubling wait, ms (default 30,000). */
  maxMs?: number;
}

/** The push function (tests may wrap it); defaults to src/transfer/push.ts push(). */
export type PushFn = (options: PushOptions) => Promise<PushResult>;

export interface RunnerOptions {
  /** Absolute path of the local root (no trailing slash). */
  source: string;
  target: DaemonTarget;
  session: PushOptions['session'];
  transfer: TransferOptions;
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
  lastPushAt?: number;
  bytesSent: number;
}

/** Failures that say "not reachable now", as opposed to "this push went wrong". */
function isUnreachable(e: unknown): boolean {
  return e instanceof SocketError || e instanceof TimeoutError || e instanceof ConnectionClosedError || e instanceof NotADaemonError || e instanceof DaemonRefusalError;
}

export function describeTarget(t: DaemonTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return `rsync://${t.user ? t.user + '@' : ''}${host}:${t.port}/${t.module}/${t.path}`;
}

export class TargetRunner {
  readonly pending: PendingSet;
  private state: TargetState = 'startup';
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private running: Promise<void> | undefined;
  private backoffMs = 0;
  private escalate = 0;
  private stopped = false;
  private synced = false;
  private readonly name: string;
  private readonly stats = { batches: 0, pushes: 0, failures: 0, vanishedRetries: 0, consecutiveFailures: 0, bytesSent: 0, lastError: undefined as string | undefined, lastPushAt: undefined as number | undefined };
  private idleWaiters: Array<() => void> = [];
  private syncWaiters: Array<() => void> = [];

  constructor(private readonly o: RunnerOptions) {
    this.pending = new PendingSet({ ...(o.maxPending !== undefined && { maxPaths: o.maxPending }) });
    this.name = describeTarget(o.target);
  }

  /** Begin: the whole tree is pending (the startup push), or nothing with `startup: false`. */
  start(startup: boolean): void {
    if (startup) this.pending.add('', { kind: 'rescan', isDir: true });
    else this.synced = true;
    this.state = 'idle';
    this.schedule(0); // the startup push does not wait for the delay window
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
   * Stop: let the running batch end, then push what is pending (retries included) until
   * `deadline` (ms since the epoch). Returns the number of paths left unpushed.
   */
  async stop(deadline: number): Promise<number> {
    this.clearTimer();
    // Flush: ignore backoff and delay, one batch after another while time is left.
    while (Date.now() < deadline) {
      if (this.running) {
        await Promise.race([this.running, sleep(deadline - Date.now())]);
        continue;
      }
      if (this.pending.size === 0) break;
      const attempt = this.runBatch();
      await Promise.race([attempt, sleep(deadline - Date.now())]);
      if (this.pending.size > 0 && !this.running) await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
    }
    this.stopped = true;
    this.clearTimer();
    this.dropSpare();
    this.state = 'stopped';
    // A batch still running at the deadline holds paths taken out of the pending set: count them too.
    let left = this.pending.size;
    if (this.running) for (const path of this.inFlight) if (!this.pending.has(path)) left++;
    if (left) this.o.log('warn', `${this.name}: stopped with ${left} path(s) not pushed`);
    for (const w of this.idleWaiters.splice(0)) w(); // nothing will run any more
    return left;
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
  }

  /** Start a batch when one may start: idle, something pending, not backing off. */
  private schedule(delayMs = this.o.delayMs): void {
    if (this.stopped || this.running || this.state === 'backoff' || this.pending.size === 0) return;
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

  private isLocalDir = (rel: string): boolean => {
    try {
      return lstatSync(rel === '' ? this.o.source : join(this.o.source, rel)).isDirectory();
    } catch {
      return false;
    }
  };

  private async batch(): Promise<void> {
    const taken = this.pending.take();
    if (taken.size === 0) return;
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
          isLocalDir: this.isLocalDir,
          subtrees: this.o.subtrees,
          escalate: this.escalate,
          ...(this.o.maxRoots !== undefined && { maxRoots: this.o.maxRoots }),
        });
    // Directory renames first: the new directory is pushed with the old one (still on the mirror)
    // as --copy-dest, so its files are copied on the daemon instead of sent; the pushes below then
    // find them in place and only delete the old path.
    const moves = this.pending.takeMoves();
    if (!full && this.renames) {
      const refused = (e: Error) => {
        // The daemon refusing --copy-dest or --fuzzy (refuse options): say so once and stop
        // trying. Any other failure is left to the pushes below, which send the data plainly.
        if (!(e instanceof RemoteError) || !this.renames) return;
        this.renames = false;
        this.o.log('info', `${this.name}: the daemon refused --copy-dest or --fuzzy; renames are sent as plain transfers (${e.message.trim()})`);
      };
      for (const [to, move] of moves) {
        if (!move.isDir || taken.get(to)?.kind !== 'create' || !this.isLocalDir(to)) continue;
        await this.pushRename(to, move.from).catch(refused);
      }
      if (selective && this.renames) {
        for (const group of fileMoveGroups(moves, taken, this.o.source)) {
          await this.pushFileMoves(group).catch(refused);
        }
      }
    }
    const failed: PushRoot[] = [];
    let unreachable = false;
    let thrown = false;
    const vanished: PushRoot[] = [];
    let error: string | undefined;
    const started = Date.now();
    for (const root of roots) {
      if (unreachable) {
        failed.push(root);
        continue;
      }
      try {
        const result = selective ? await this.pushSelection(taken) : await this.pushRoot(root.root);
        this.protocol = result.protocol;
        this.o.onPushed?.(result);
        this.stats.pushes++;
        this.stats.bytesSent += result.bytesSent;
        if (result.exitCode === EXIT.VANISHED) {
          // Files vanished between the scan and the send (the tree is changing under us): keep
          // the paths pending and go again at once; the watcher reports what became of them.
          vanished.push(root);
        } else if (result.exitCode !== EXIT.OK) {
          // 23: some files were not transferred; others: keep them pending, retry after a wait.
          failed.push(root);
          error = `push of /${root.root} ended with exit code ${result.exitCode}`;
        }
      } catch (e) {
        failed.push(root);
        error = (e as Error).message;
        if (isUnreachable(e)) unreachable = true;
        else thrown = true;
        if (selective && e instanceof RemoteError && /configured to refuse|invalid file mode 0+ /.test(e.message)) {
          // A module refusing an option of the batch (`refuse options = delete-missing-args`
          // drops it quietly: the daemon then rejects the mode-0 entries): batches go back to
          // subtree pushes for good, said once.
          this.selectiveRefused = true;
          this.o.log('info', `${this.name}: the daemon refused a single-session batch; changes are pushed as subtrees (${e.message.trim()})`);
        }
      }
    }
    if (vanished.length) {
      const back: Array<[string, PendingEntry]> = [];
      for (const root of vanished) for (const path of root.paths) back.push([path, taken.get(path)!]);
      this.pending.restore(back);
      this.stats.vanishedRetries++;
      this.o.log('debug', `${this.name}: files vanished during the push of ${vanished.map((r) => '/' + r.root).join(' ')}: pushing again`);
    }
    if (failed.length === 0) {
      this.backoffMs = 0;
      this.escalate = 0;
      this.stats.consecutiveFailures = 0;
      this.stats.lastPushAt = Date.now();
      const how = selective ? 'one session' : `${roots.length} subtree(s) (${roots.map((r) => '/' + r.root).join(' ')})`;
      this.o.log('debug', `${this.name}: pushed ${taken.size} change(s) in ${how} in ${Date.now() - started} ms`);
      if (full && !this.synced) this.markSynced(); // files that vanished meanwhile are not part of the tree
      // The target answers: have the next session ready before the next change arrives.
      this.openSpare();
      return;
    }
    // Put back what the failed roots covered (older than whatever arrived meanwhile), then retry later.
    const back: Array<[string, PendingEntry]> = [];
    for (const root of failed) for (const path of root.paths) back.push([path, taken.get(path)!]);
    this.pending.restore(back);
    if (full && !this.synced && !failed.some((r) => r.root === '')) this.markSynced();
    this.stats.failures++;
    this.stats.consecutiveFailures++;
    this.stats.lastError = error;
    // A push that broke off for another reason than reachability (e.g. the daemon cannot create
    // the subtree because its parent is missing on the mirror) is retried one level higher each
    // time it fails again. Partial transfers (exit 23/24) are retried as they are.
    if (thrown && !unreachable && this.stats.consecutiveFailures >= 2) this.escalate++;
    this.backoffMs = this.backoffMs === 0 ? this.o.retry.initialMs : Math.min(this.backoffMs * 2, this.o.retry.maxMs);
    this.o.log(
      unreachable ? 'warn' : 'error',
      `${this.name}: ${error}; ${this.pending.size} path(s) pending, retrying in ${(this.backoffMs / 1000).toFixed(1)} s`,
    );
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
    for (const w of this.syncWaiters.splice(0)) w();
  }

  /** The daemon refused an option of the single-session batch (e.g. delete-missing-args). */
  private selectiveRefused = false;

  /** The protocol of the last push (selective batches need 30 or later). */
  private protocol: number | undefined;

  /** The paths of the running batch (out of the pending set until it ends). */
  private inFlight: string[] = [];

  /** Whether the daemon took --copy-dest so far (a refusal turns rename pushes off). */
  private renames = true;

  /** Push the renamed directory `to` with the mirror's copy at `from` as the basis. */
  private async pushRename(to: string, from: string): Promise<void> {
    const base = this.o.target.path.replace(/\/+$/, '');
    const path = [base, to].filter(Boolean).join('/');
    const filter = this.o.filterFor?.(to);
    const result = await this.withSpare('other', (session) => (this.o.pushFn ?? push)({
      source: `${this.o.source}/${to}/`,
      target: { ...this.o.target, path: `${path}/` },
      // Relative to the destination directory, as rsync takes --copy-dest.
      transfer: { ...this.o.transfer, copyDest: posix.relative(to, from) },
      session: this.o.session,
      ...(filter && { filter }),
      onInfo: (text) => this.o.log('debug', `${this.name}: ${text.trimEnd()}`),
      onError: (text) => this.o.log('debug', `${this.name}: rename ${from} -> ${to}: ${text.trimEnd()}`),
      ...spareOption(session),
    }));
    this.stats.pushes++;
    this.stats.bytesSent += result.bytesSent;
    this.o.log('debug', `${this.name}: rename ${from} -> ${to} pushed with the old copy as basis (${result.stats.literalBytes} literal bytes)`);
  }

  /**
   * A session opened ahead of the next batch (connect, greetings, auth done; the daemon waits
   * for the argument list), so a change costs only its file list and data. Dropped after
   * SPARE_MAX_MS unused, or when the daemon closes it.
   */
  private spare: { session: Promise<Spare | undefined>; timer: NodeJS.Timeout; primed: boolean } | undefined;

  private openSpare(): void {
    if (this.stopped || this.spare || this.o.pushFn) return;
    // When the next batch will be a single-session push, take the session through its argument
    // list and setup phase too: the change then costs only its file list and data.
    const prime = this.canSelect();
    const session = openModule({ ...this.o.session, host: this.o.target.host, port: this.o.target.port }, this.o.target.module)
      .then((opened): Promise<Spare | undefined> | Spare => {
        if (!prime) return opened;
        return primeSession(opened, { transfer: this.o.transfer, target: this.selectionTarget(), selection: [] }).catch(() => {
          opened.socket.destroy();
          return undefined;
        });
      })
      .catch(() => undefined); // unreachable now: the next batch connects (and reports) on its own
    const timer = setTimeout(() => this.dropSpare(true), SPARE_MAX_MS);
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
  private dropSpare(politely = false): void {
    const spare = this.spare;
    this.spare = undefined;
    if (!spare) return;
    clearTimeout(spare.timer);
    void spare.session.then((s) => {
      if (!s) return;
      if (!('route' in s)) return s.socket.destroy();
      if (!politely) return s.session.socket.destroy();
      const noop = { source: `${this.o.source}/`, target: this.selectionTarget(), transfer: this.o.transfer, session: this.o.session, selection: [], primed: s };
      void push(noop).catch(() => s.session.socket.destroy());
    });
  }

  /** Whether the next batch will be a single-session push (see batch()). */
  private canSelect(full = false): boolean {
    return !full && this.o.subtrees && this.escalate === 0 && !this.selectiveRefused && (this.protocol ?? 0) >= 30;
  }

  /** The target of a single-session push: the target's own path. */
  private selectionTarget(): DaemonTarget {
    const base = this.o.target.path.replace(/\/+$/, '');
    return { ...this.o.target, path: base ? `${base}/` : '' };
  }

  /** The subtree `root` ('' = the whole tree), recursively, with --delete inside it. */
  private pushRoot(root: string): Promise<PushResult> {
    const base = this.o.target.path.replace(/\/+$/, '');
    const path = [base, root].filter(Boolean).join('/');
    const filter = this.o.filterFor?.(root);
    return this.withSpare('other', (session) => (this.o.pushFn ?? push)({
      source: root === '' ? `${this.o.source}/` : `${this.o.source}/${root}/`,
      target: { ...this.o.target, path: path ? `${path}/` : '' },
      transfer: this.o.transfer,
      session: this.o.session,
      ...(filter && { filter }),
      onInfo: (text) => this.o.log('debug', `${this.name}: ${text.trimEnd()}`),
      onError: (text) => this.o.log('warn', `${this.name}: ${text.trimEnd()}`),
      ...spareOption(session),
      ...(this.o.onItem && { onItem: this.o.onItem }),
    }));
  }

  /**
   * The whole batch in one session: each changed path with its parents, new directories with
   * their subtrees, deleted paths as --delete-missing-args entries, nothing else.
   */
  private pushSelection(taken: ReadonlyMap<string, PendingEntry>): Promise<PushResult> {
    const filter = this.o.filterFor?.('');
    const selection: SelectionItem[] = [];
    for (const [path, entry] of taken) selection.push({ path: pathToBytes(path), recurse: entry.kind === 'create' || entry.kind === 'rescan' });
    return this.withSpare('selection', (session) => (this.o.pushFn ?? push)({
      source: `${this.o.source}/`,
      target: this.selectionTarget(),
      transfer: this.o.transfer,
      session: this.o.session,
      selection,
      ...(filter && { filter }),
      onInfo: (text) => this.o.log('debug', `${this.name}: ${text.trimEnd()}`),
      onError: (text) => this.o.log('warn', `${this.name}: ${text.trimEnd()}`),
      ...spareOption(session),
      ...(this.o.onItem && { onItem: this.o.onItem }),
    }));
  }

  /**
   * Renamed files of one directory pair, before the batch: pushed into their new directory with
   * --fuzzy, so the daemon finds the old copy (same size and mtime, still in place: the batch
   * deletes it afterwards) and uses it as the basis, and only checksums cross the wire. From
   * another directory, that directory is the --copy-dest and the fuzzy search looks there (-yy).
   */
  private async pushFileMoves(group: FileMoveGroup): Promise<void> {
    const base = this.o.target.path.replace(/\/+$/, '');
    const path = [base, group.toDir].filter(Boolean).join('/');
    const across = group.fromDir !== group.toDir;
    const result = await this.withSpare('other', (session) => (this.o.pushFn ?? push)({
      source: group.toDir === '' ? `${this.o.source}/` : `${this.o.source}/${group.toDir}/`,
      target: { ...this.o.target, path: path ? `${path}/` : '' },
      transfer: {
        ...this.o.transfer,
        delete: false,
        deleteExcluded: false,
        fuzzy: across ? 2 : 1,
        ...(across && { copyDest: posix.relative(group.toDir, group.fromDir) || '.' }),
      },
      session: this.o.session,
      selection: group.names.map((name) => ({ path: pathToBytes(name), recurse: false })),
      onInfo: (text) => this.o.log('debug', `${this.name}: ${text.trimEnd()}`),
      onError: (text) => this.o.log('debug', `${this.name}: renamed files into /${group.toDir}: ${text.trimEnd()}`),
      ...spareOption(session),
    }));
    this.stats.pushes++;
    this.stats.bytesSent += result.bytesSent;
    this.o.log('debug', `${this.name}: ${group.names.length} renamed file(s) into /${group.toDir} pushed with their old copies as basis (${result.stats.literalBytes} literal bytes)`);
  }

  /** Run a push on the pre-opened session if there is one (and again on a fresh one if it died). */
  private async withSpare(kind: 'selection' | 'other', run: (session?: Spare) => Promise<PushResult>): Promise<PushResult> {
    const preopened = await this.takeSpare(kind);
    if (!preopened) return run();
    try {
      return await run(preopened);
    } catch (e) {
      // The spare may have been closed by the daemon while it waited (a module `timeout`): a
      // push is idempotent, so go again at once on a fresh connection.
      if (!isUnreachable(e)) throw e;
      this.o.log('debug', `${this.name}: the pre-opened session failed (${(e as Error).message}); reconnecting`);
      return run();
    }
  }
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
