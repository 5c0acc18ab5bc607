// `lsyncd [options] SOURCE TARGET...` without --once: the live mirror as a long-running process.
// Checks the targets (unless --insist), detaches unless --nodaemon, then runs one live mirror per
// source (for %userwww: one per /home/USER/www, picked up and dropped while running) until
// SIGTERM/SIGINT, which push what is pending before exiting: 0, or rsync's code of a target's last
// failure when paths were left. SIGHUP reopens the log file. SOURCE follows rsync's trailing-slash
// rule. With a config file (liveConfig): one mirror per sync (src/live/group.ts), and SIGHUP also
// reloads the file. docs/live.md, docs/config.md; counterpart: lsyncd 2's daemon loop.
import { readdirSync, statSync, mkdtempSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { tmpdir } from 'node:os';
import { push } from '../transfer/push.js';
import { openTargetSession } from '../live/connection.js';
import { MirrorGroup, type GroupSync } from '../live/group.js';
import type { ConfigGlobals } from '../config/index.js';
import { startLiveMirror, describeTarget, isRefusal, refusalText, TargetRefusedError, type LiveMirror, type LiveTarget, type LogLevel, type DeletePhase } from '../live/index.js';
import type { FilterList } from '../../protocol/filter.js';
import type { TransferOptions } from '../../protocol/args.js';
import type { SentItem } from '../../protocol/sender.js';
import { RemoteError, UsageError } from '../../protocol/errors.js';
import { defaultStatePath, type StartupMode } from '../live/state.js';
import { releaseMemory } from '../addon.js';
import { Logger, claimPidfile, detachAndWait, isDetachedChild, reportReady, writeAtomically } from './process.js';

/** The special SOURCE: every HOME/USER/www goes to TARGET/USER/. */
export const USERWWW = '%userwww';

export interface LiveCliOptions {
  source: string;
  targets: LiveTarget[];
  transfer: TransferOptions;
  /** --delete-only: the one phase that deletes (lsyncd 2's delete = 'startup' | 'running'). */
  deleteOnly?: DeletePhase;
  filterList?: FilterList;
  foreground: boolean;
  /** Our argv (without node), for detaching. */
  argv: string[];
  delay?: number;
  logfile?: string;
  /** Log to syslog (forced by --syslog; the default when detached without --logfile). */
  syslog?: boolean;
  logIdent: string;
  logFacility: string;
  pidfile?: string;
  statusFile?: string;
  /** The startup sync (`true`/`false`: full/none). */
  startup: StartupMode | boolean;
  /** --state-file: what the targets were brought to (default with --startup changed: defaultStatePath). */
  stateFile?: string;
  level: LogLevel;
  insist: boolean;
  home: string;
}

/** How often %userwww looks for users whose www appeared or went away, and the status file is rewritten. */
const SCAN_MS = 2000;
const STATUS_MS = 3000;
/** On SIGTERM, how long the watcher gets to deliver what the kernel already queued. */
const SETTLE_MS = 200;

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** USER names under `home` that have a www directory. */
function wwwUsers(home: string): string[] {
  try {
    return readdirSync(home)
      .filter((user) => !user.startsWith('.') && isDir(join(home, user, 'www')))
      .sort();
  } catch {
    return [];
  }
}

/** The targets of one user: each target's path with USER/ appended. */
function userTargets(targets: readonly LiveTarget[], user: string): LiveTarget[] {
  return targets.map((t) => ({ ...t, target: { ...t.target, path: `${t.target.path.replace(/\/?$/, t.target.path ? '/' : '')}${user}/` } }));
}

/** A session to the target whose close waits for the daemon's process to end (max connections). */
function connect(t: LiveTarget) {
  return openTargetSession({ ...t.session, host: t.target.host, port: t.target.port }, t.target.module);
}

/**
 * Refuse at start a target that will not take pushes: exit 5 with the daemon's words for a
 * refusal (unknown module, auth failed, read-only module), rsync's code for the rest
 * (unreachable: 10). A module's read-only refusal comes only after the argument list and setup
 * (rsync/main.c: do_server_recv), so the probe is a whole push: a dry run of an empty directory,
 * which changes nothing. It ends as any push does, so the daemon's process has exited (and freed
 * its `max connections` slot) by the time the mirror connects.
 */
async function probe(targets: readonly LiveTarget[], transfer: TransferOptions): Promise<void> {
  for (const t of targets) {
    await pushEmptyDir(t, { ...transfer, dryRun: true }).catch((e: unknown) => {
      if (isRefusal(e)) throw new TargetRefusedError(describeTarget(t.target), refusalText(e), { cause: e });
      // A module that refuses only the probe's own option (`refuse options = dry-run`) takes pushes.
      if (e instanceof RemoteError && e.refusedOption !== undefined) return;
      throw e;
    });
  }
}

/**
 * Push an empty directory into a target with `transfer`'s settings, never recursing or deleting:
 * it changes nothing there but (without -n) creates the target's last directory.
 */
async function pushEmptyDir(t: LiveTarget, transfer: TransferOptions): Promise<void> {
  const empty = mkdtempSync(join(tmpdir(), 'lsyncd-empty-'));
  try {
    await push({
      source: `${empty}/`,
      target: t.target,
      transfer: { ...transfer, recursive: false, delete: false, deleteExcluded: false },
      session: t.session,
      preopened: await connect(t),
    });
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
}

/**
 * rsync's trailing-slash rule, as `--once` follows it: `SOURCE/` mirrors the contents of SOURCE
 * into each target's path, `SOURCE` mirrors the directory itself, into PATH/NAME/.
 */
// rsync/flist.c: send_file_list (a source without a trailing slash keeps its last component)
export function targetsForSource(source: string, targets: readonly LiveTarget[]): LiveTarget[] {
  if (source.endsWith('/') || source === USERWWW) return [...targets];
  const name = basename(source);
  if (name === '' || name === '.' || name === '..') return [...targets];
  return targets.map((t) => ({ ...t, target: { ...t.target, path: `${t.target.path.replace(/\/*$/, t.target.path ? '/' : '')}${name}/` } }));
}

/**
 * Make sure each target's base directory exists, as rsync creates only the last component of a
 * destination: %userwww pushes to TARGET/USER/, so TARGET/ itself must be there first. Pushing
 * an empty directory without --delete creates it and changes nothing else.
 */
async function ensureBase(targets: readonly LiveTarget[], transfer: TransferOptions): Promise<void> {
  // With --dryrun the base directory is only looked at, as the push is a dry run too.
  for (const t of targets) if (t.target.path) await pushEmptyDir(t, { ...transfer, perms: false, times: false });
}

/**
 * The state file of the mirror of `source`: --state-file (with %userwww, one per user: FILE.USER),
 * else with --startup changed a default path keyed by the source and its targets, else none.
 */
function stateFileFor(o: LiveCliOptions, source: string, targets: readonly LiveTarget[]): string | undefined {
  if (o.stateFile !== undefined) return o.source === USERWWW ? `${o.stateFile}.${basename(join(source, '..'))}` : o.stateFile;
  return defaultStateFile(o.startup, source, targets);
}

/** With --startup changed and no --state-file: the default state path keyed by the source and its targets. */
export function defaultStateFile(startup: StartupMode | boolean, source: string, targets: readonly LiveTarget[]): string | undefined {
  if (startup !== 'changed') return undefined;
  return defaultStatePath(source, targets.map((t) => describeTarget(t.target)));
}

export async function live(o: LiveCliOptions): Promise<number> {
  const userwww = o.source === USERWWW;
  if (userwww) {
    if (!isDir(o.home)) throw new UsageError(`%userwww: ${o.home} is not a directory (see --home)`);
  } else if (!isDir(o.source)) {
    throw new UsageError(`SOURCE ${o.source} is not a directory`);
  }
  // Detached: the same command in the foreground in a new session; we exit once it is up
  // (targets checked, pidfile written, watches set) or with its code and reason if it failed.
  if (!o.foreground && !isDetachedChild()) {
    return detachAndWait([...o.argv, '--nodaemon'], { ...(o.logfile && { stdout: o.logfile }), name: 'lsyncd' });
  }
  // --dryrun logs what it would push: the -i lines unless -v or -i chose the lines.
  if (o.transfer.dryRun && !o.transfer.itemize && !o.transfer.verbose) o = { ...o, transfer: { ...o.transfer, itemize: true } };
  if (!o.insist) await probe(o.targets, o.transfer);

  // lsyncd 2's default: detached without a log file, lines go to syslog (under systemd a
  // --nodaemon process logs to stderr, which the journal keeps).
  const toSyslog = o.syslog || (isDetachedChild() && !o.logfile);
  const logger = new Logger(toSyslog ? { syslog: { ident: o.logIdent, facility: o.logFacility } } : { ...(o.logfile && { file: o.logfile }) }, o.level);
  let progressShown = false; // a progress line is on the terminal: end it before a log line
  const log = (level: LogLevel, message: string) => {
    if (progressShown && !o.logfile) process.stderr.write('\n');
    progressShown = false;
    logger.log(level, message);
  };
  const releasePid = o.pidfile ? claimPidfile(o.pidfile) : () => {};
  const mirrors = new Map<string, LiveMirror>();

  // A progress line on a terminal during the startup sync: files and bytes sent, rate, time.
  const tty = Boolean(process.stderr.isTTY) && o.level !== 'error';
  const progress = { files: 0, bytes: 0, started: Date.now(), shown: 0, width: 0, active: true };
  const showProgress = (now: number) => {
    progress.shown = now;
    const seconds = (now - progress.started) / 1000;
    const rate = progress.bytes / Math.max(seconds, 0.001);
    const text = progress.files === 0
      ? `startup sync: listing the tree, ${seconds.toFixed(0)} s`
      : `startup sync: ${progress.files.toLocaleString('en-US')} files, ${(progress.bytes / 1e6).toFixed(1)} MB, ${(rate / 1e6).toFixed(1)} MB/s, ${seconds.toFixed(0)} s`;
    process.stderr.write(`\r${text.padEnd(progress.width)} `);
    progress.width = text.length;
    progressShown = true;
  };
  const onItem = (item: SentItem) => {
    if (!tty || !progress.active) return;
    progress.files++;
    progress.bytes += item.literalBytes + item.matchedBytes;
    const now = Date.now();
    if (now - progress.shown >= 200) showProgress(now);
  };
  // Between items the line moves too: nothing is answered while the tree is listed (no
  // incremental recursion: the daemon asks for files once it has the whole list), which on a
  // million files is many seconds.
  const ticker = tty ? setInterval(() => progress.active && Date.now() - progress.shown >= 1000 && showProgress(Date.now()), 1000) : undefined;
  ticker?.unref();

  const start = async (source: string, targets: LiveTarget[]) => {
    const stateFile = stateFileFor(o, source, targets);
    const mirror = await startLiveMirror({
      source,
      targets,
      transfer: o.transfer,
      ...(o.deleteOnly && { deleteOnly: o.deleteOnly }),
      ...(o.filterList && { filterList: o.filterList }),
      ...(o.delay !== undefined && { delay: o.delay }),
      startup: o.startup,
      ...(stateFile !== undefined && { stateFile }),
      onLog: log,
      onItem,
      releaseMemory: daemonRelease,
    });
    void mirror.ready.then(() => {
      progress.active = false;
      clearInterval(ticker);
    });
    mirrors.set(source, mirror);
    log('info', `watching ${source}`);
  };

  let scanTimer: NodeJS.Timeout | undefined;
  const scanUsers = async () => {
    const users = new Set(wwwUsers(o.home));
    for (const user of users) {
      const source = join(o.home, user, 'www');
      if (!mirrors.has(source)) await start(source, userTargets(o.targets, user)).catch((e: Error) => log('error', `${source}: ${e.message}`));
    }
    for (const [source, mirror] of mirrors) {
      if (!isDir(source) || mirror.status().rootGone) {
        mirrors.delete(source);
        await mirror.stop({ timeoutMs: 1000 });
        log('info', `stopped watching ${source}`);
      }
    }
  };

  const writeStatus = () => {
    if (!o.statusFile) return;
    // Every time in the file is ISO-8601 (the targets' lastPushAt too).
    const status = { pid: process.pid, time: new Date().toISOString(), mirrors: [...mirrors.values()].map((m) => m.status()) };
    try {
      writeAtomically(o.statusFile, JSON.stringify(status, null, 2) + '\n');
    } catch (e) {
      log('warn', `status file: ${(e as Error).message}`);
    }
  };

  if (userwww) {
    await ensureBase(o.targets, o.transfer).catch((e: Error) => log('warn', `creating the targets' base directories: ${e.message}`));
    await scanUsers();
    scanTimer = setInterval(() => void scanUsers(), SCAN_MS);
  } else {
    const targets = targetsForSource(o.source, o.targets);
    // `SOURCE` without a slash goes to PATH/NAME/: PATH/ must exist first (rsync creates only the last component).
    if (targets.some((t, i) => t.target.path !== o.targets[i]!.target.path)) {
      await ensureBase(o.targets, o.transfer).catch((e: Error) => log('warn', `creating the targets' base directories: ${e.message}`));
    }
    await start(o.source, targets);
  }
  writeStatus();
  const statusTimer = o.statusFile ? setInterval(writeStatus, STATUS_MS) : undefined;
  reportReady();

  return untilStopped(
    async (signal) => {
      log('info', `${signal}: pushing what is pending, then exiting`);
      clearInterval(scanTimer);
      clearInterval(statusTimer);
      // Changes made just before the signal are already in the kernel's queue: let the watcher
      // read them (and pair its held moves) before the last push.
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      const code = stopCode(await Promise.all([...mirrors.values()].map((m) => m.stop({ timeoutMs: 10_000 }))), log);
      writeStatus();
      releasePid();
      log('info', 'exiting');
      logger.close();
      return code;
    },
    () => {
      logger.reopen();
      log('info', 'SIGHUP: log file reopened');
    },
  );
}

/** One sync of a config file, resolved into the mirror's terms (main.ts parses its options). */
export interface ConfigSync {
  name: string;
  /** Equal for an unchanged sync across reloads. */
  identity: string;
  source: string;
  targets: LiveTarget[];
  transfer: TransferOptions;
  deleteOnly?: DeletePhase;
  filterList?: FilterList;
  delay?: number;
  startup: StartupMode;
  /** --state-file, or with --startup changed the default path for this source and its targets. */
  stateFile?: string;
}

/** A config file read and resolved: its own settings (before the command line's) and its syncs. */
export interface LoadedConfig {
  globals: ConfigGlobals;
  syncs: ConfigSync[];
}

export interface LiveConfigCliOptions {
  /** The config file, for the log. */
  file: string;
  /** The file as read at start. */
  first: LoadedConfig;
  /** Read the file again (SIGHUP); throws a ConfigError (FILE:LINE:COL) or UsageError when it cannot be used. */
  load: () => LoadedConfig;
  foreground: boolean;
  argv: string[];
  logfile?: string;
  syslog?: boolean;
  logIdent: string;
  logFacility: string;
  pidfile?: string;
  statusFile?: string;
  /** Seconds between rewrites of the status file. */
  statusInterval?: number;
  level: LogLevel;
  insist: boolean;
  maxPushes?: number;
}

/**
 * The daemon's release after a big push: the library's (collections, malloc_trim) and its hold
 * on node's own code pages, a whole-process choice the CLI makes (docs/live.md, "Memory").
 */
const daemonRelease = () => releaseMemory({ filePages: true });

/** A config's sync as the group runs it: its targets by rsync's trailing-slash rule, base directories made first. */
function groupSync(s: ConfigSync, warn: (message: string) => void): GroupSync {
  // --dryrun logs what it would push: the -i lines unless -v or -i chose the lines.
  const transfer = s.transfer.dryRun && !s.transfer.itemize && !s.transfer.verbose ? { ...s.transfer, itemize: true } : s.transfer;
  const targets = targetsForSource(s.source, s.targets);
  const needsBase = targets.some((t, i) => t.target.path !== s.targets[i]!.target.path);
  return {
    name: s.name,
    identity: s.identity,
    mirror: {
      source: s.source,
      targets,
      transfer,
      ...(s.deleteOnly && { deleteOnly: s.deleteOnly }),
      ...(s.filterList && { filterList: s.filterList }),
      ...(s.delay !== undefined && { delay: s.delay }),
      startup: s.startup,
      ...(s.stateFile !== undefined && { stateFile: s.stateFile }),
      releaseMemory: daemonRelease,
    },
    ...(needsBase && { prepare: () => ensureBase(s.targets, transfer).catch((e: Error) => warn(`[${s.name}] creating the targets' base directories: ${e.message}`)) }),
  };
}

/** Each sync's source must be a directory: a UsageError naming the sync otherwise. */
function checkSources(syncs: readonly ConfigSync[]): void {
  for (const s of syncs) if (!isDir(s.source)) throw new UsageError(`sync ${s.name}: SOURCE ${s.source} is not a directory`);
}

/**
 * `lsyncd --config FILE` (or `lsyncd FILE`): every sync of the file, each its own live mirror,
 * under one pidfile, log and status file. SIGHUP reopens the log and reloads the file: syncs
 * added start, removed ones stop after pushing what they have pending, changed ones restart,
 * unchanged ones are not touched; a file with errors is refused (its FILE:LINE:COL logged) and
 * the running syncs are kept. Settings other than the syncs take effect on the next start.
 */
// lsyncd/lsyncd.lua: runner.initialize (settings, Syncs.add for each sync{}), and its HUP reset
export async function liveConfig(o: LiveConfigCliOptions): Promise<number> {
  checkSources(o.first.syncs);
  if (!o.foreground && !isDetachedChild()) {
    return detachAndWait([...o.argv, '--nodaemon'], { ...(o.logfile && { stdout: o.logfile }), name: 'lsyncd' });
  }
  if (!o.insist) for (const s of o.first.syncs) await probe(s.targets, s.transfer);

  const toSyslog = o.syslog || (isDetachedChild() && !o.logfile);
  const logger = new Logger(toSyslog ? { syslog: { ident: o.logIdent, facility: o.logFacility } } : { ...(o.logfile && { file: o.logfile }) }, o.level);
  const log = (level: LogLevel, message: string) => logger.log(level, message);
  const releasePid = o.pidfile ? claimPidfile(o.pidfile) : () => {};
  const group = new MirrorGroup({ log, ...(o.maxPushes !== undefined && { maxPushes: o.maxPushes }) });
  const warn = (message: string) => log('warn', message);

  const writeStatus = () => {
    if (!o.statusFile) return;
    const slots = group.pushSlots();
    const status = { pid: process.pid, time: new Date().toISOString(), config: o.file, ...(slots && { pushSlots: slots }), mirrors: group.status() };
    try {
      writeAtomically(o.statusFile, JSON.stringify(status, null, 2) + '\n');
    } catch (e) {
      log('warn', `status file: ${(e as Error).message}`);
    }
  };

  log('info', `${o.file}: ${o.first.syncs.length} sync(s)${o.maxPushes !== undefined ? `, at most ${o.maxPushes} push(es) at once` : ''}`);
  const first = await group.apply(o.first.syncs.map((s) => groupSync(s, warn)));
  if (first.failed.length) {
    // A sync that cannot start at all (its source went away since the check) ends the start.
    await group.stop(1000);
    releasePid();
    logger.close();
    throw new UsageError(`sync(s) ${first.failed.join(', ')} could not start (see the log)`);
  }
  writeStatus();
  const statusTimer = o.statusFile ? setInterval(writeStatus, (o.statusInterval ?? STATUS_MS / 1000) * 1000) : undefined;
  reportReady();

  let globals = JSON.stringify(o.first.globals);
  const reload = async () => {
    let next: LoadedConfig;
    try {
      next = o.load();
    } catch (e) {
      log('error', `SIGHUP: ${o.file} refused, the running syncs are kept: ${(e as Error).message}`);
      return;
    }
    if (JSON.stringify(next.globals) !== globals) {
      globals = JSON.stringify(next.globals);
      log('warn', `SIGHUP: ${o.file}: settings other than the syncs take effect on the next start`);
    }
    const done = await group.apply(next.syncs.map((s) => groupSync(s, warn)));
    log(
      'info',
      `SIGHUP: ${o.file} reloaded: ${done.started.length} started, ${done.restarted.length} restarted, ${done.stopped.length} stopped, ${done.kept.length} unchanged` +
        (done.failed.length ? `, ${done.failed.length} could not start (${done.failed.join(', ')})` : ''),
    );
    writeStatus();
  };

  return untilStopped(
    async (signal) => {
      log('info', `${signal}: pushing what is pending, then exiting`);
      clearInterval(statusTimer);
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      const code = stopCode(await group.stop(10_000), log);
      writeStatus();
      releasePid();
      log('info', 'exiting');
      logger.close();
      return code;
    },
    () => {
      logger.reopen();
      log('info', `SIGHUP: log file reopened; reloading ${o.file}`);
      void reload();
    },
  );
}

/**
 * Run until SIGTERM or SIGINT: `stop` once (a second signal while it runs is ignored), resolving
 * with its exit code; SIGHUP calls `hup` unless stopping.
 */
function untilStopped(stop: (signal: string) => Promise<number>, hup: () => void): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      void stop(signal).then(resolve);
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGHUP', () => {
      if (!stopping) hup();
    });
  });
}

/**
 * The exit code once the mirrors have stopped: rsync's code of the worst failure, or 23 when
 * paths were left behind with none known; the paths left are logged (per sync when named).
 */
function stopCode(results: ReadonlyArray<{ name?: string; unpushed: readonly number[]; exitCodes: readonly number[] }>, log: (level: 'error', text: string) => void): number {
  let unpushed = 0;
  let code = 0;
  for (const r of results) {
    const left = r.unpushed.reduce((a, b) => a + b, 0);
    unpushed += left;
    code = Math.max(code, ...r.exitCodes);
    if (left && r.name !== undefined) log('error', `[${r.name}] ${left} path(s) could not be pushed before exiting`);
  }
  code ||= unpushed ? 23 : 0;
  if (unpushed) log('error', `${unpushed} path(s) could not be pushed before exiting (code ${code})`);
  return code;
}
