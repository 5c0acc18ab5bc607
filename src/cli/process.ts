// The live mirror and the daemon as processes: logging with timestamps (to stderr or --logfile,
// reopened on SIGHUP), --pidfile (refusing a live pid), --status-file rewritten atomically, and
// detaching into the background so that the starter exits only once the detached process is up
// (with 0) or has failed (with its code and reason). The mirror itself is src/live/.
import { openSync, writeSync, closeSync, readFileSync, writeFileSync, renameSync, unlinkSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { EXIT, UsageError } from '../../protocol/errors.js';
import type { LogLevel } from '../live/index.js';
import { openSyslog } from '../addon.js';

const LEVELS: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
/** syslog(3) priorities of our levels (LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR). */
const SYSLOG_PRIORITY: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };
/** syslog(3) facilities by name (sys/syslog.h: the code shifted left by 3), as lsyncd 2's logfacility takes them. */
export const SYSLOG_FACILITIES: Readonly<Record<string, number>> = Object.fromEntries(
  [
    ['kern', 0], ['user', 1], ['mail', 2], ['daemon', 3], ['auth', 4], ['syslog', 5], ['lpr', 6], ['news', 7],
    ['uucp', 8], ['cron', 9], ['authpriv', 10], ['ftp', 11],
    ...Array.from({ length: 8 }, (_, i) => [`local${i}`, 16 + i] as [string, number]),
  ].map(([name, code]) => [name, (code as number) << 3]),
);

/** Where log lines go: a file, syslog (ident and facility name), or stderr. */
export interface LogTarget {
  file?: string;
  syslog?: { ident: string; facility: string };
}

/**
 * Log lines to a file or stderr (timestamped), or to syslog (which stamps them itself).
 * `--scarce` keeps errors only, `--debug` adds debug.
 */
export class Logger {
  private fd: number | null = null;
  private readonly file: string | undefined;
  private readonly syslog: ((priority: number, message: string) => void) | null = null;
  constructor(
    target: LogTarget,
    private readonly minLevel: LogLevel,
  ) {
    this.file = target.file;
    if (target.syslog) {
      const facility = SYSLOG_FACILITIES[target.syslog.facility];
      if (facility === undefined) throw new UsageError(`--log-facility ${target.syslog.facility}: not a syslog facility (${Object.keys(SYSLOG_FACILITIES).join(', ')})`);
      this.syslog = openSyslog(target.syslog.ident, facility);
      if (!this.syslog) throw new UsageError('syslog needs the native addon, which did not load: use --logfile');
    }
    this.reopen();
  }

  /** Reopen the log file (after logrotate moved it: SIGHUP). An unopenable file is a UsageError. */
  reopen(): void {
    if (!this.file) return;
    const old = this.fd;
    this.fd = openLogFile(this.file, '--logfile');
    if (old !== null) closeSync(old);
  }

  log(level: LogLevel, message: string): void {
    if (LEVELS[level] < LEVELS[this.minLevel]) return;
    if (this.syslog) {
      for (const part of message.replace(/\n+$/, '').split('\n')) this.syslog(SYSLOG_PRIORITY[level], part);
      return;
    }
    const line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${message.replace(/\n+$/, '')}\n`;
    if (this.fd !== null) writeSync(this.fd, line);
    else process.stderr.write(line);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Open a log file for appending, or say in one line why not (an operator's mistake: exit 1). */
export function openLogFile(path: string, option: string): number {
  try {
    return openSync(path, 'a', 0o640);
  } catch (e) {
    throw new UsageError(`cannot open ${option} ${path}: ${describeFsError(e)}`);
  }
}

/** An fs error as one line: its code and what it means, without the stack. */
function describeFsError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const words: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EISDIR: 'is a directory',
    ENOTDIR: 'a component of the path is not a directory',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on device',
  };
  return err.code ? `${words[err.code] ?? err.message} (${err.code})` : String(err.message ?? e);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Write our pid; refuse to start over a live one (a stale file is replaced). */
export function claimPidfile(path: string): () => void {
  let existing = NaN;
  try {
    existing = Number(readFileSync(path, 'utf8').trim());
  } catch {
    // no pidfile yet
  }
  if (Number.isInteger(existing) && existing > 0 && existing !== process.pid && alive(existing)) {
    throw new UsageError(`pidfile ${path} names a running process (${existing}): is lsyncd already running?`);
  }
  try {
    writeAtomically(path, `${process.pid}\n`);
  } catch (e) {
    throw new UsageError(`cannot write pidfile ${path}: ${describeFsError(e)}`);
  }
  return () => {
    try {
      if (Number(readFileSync(path, 'utf8').trim()) === process.pid) unlinkSync(path);
    } catch {
      // already gone
    }
  };
}

/** Replace a file in one step (write a temp file beside it, then rename). */
export function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** Set in a detached process: it tells its starter over the IPC channel once it is up. */
const DETACHED_ENV = 'LSYNCD_REPORT_READY';

/** Whether this process was started by detachAndWait (and has a starter waiting for it). */
export function isDetachedChild(): boolean {
  return process.env[DETACHED_ENV] === '1' && typeof process.send === 'function';
}

/**
 * Tell the starter we are up: it exits 0 and closes its end of our stderr, so from here on our
 * lines go to the log file (or syslog) only. No-op in a process that was not detached.
 */
export function reportReady(): void {
  if (!isDetachedChild()) return;
  process.stderr.on('error', () => {}); // the starter's pipe is about to close
  process.send!({ ready: true });
  process.disconnect?.();
}

/**
 * Detach: start `argv` (this program's arguments, adjusted to run in the foreground) again as a
 * new session leader with no terminal, its stdout going to `stdout` (a log file) or nowhere, its
 * stderr to us until it reports ready. Resolves with 0 once it has, or with its exit code after
 * copying its stderr to ours if it ended first — so a start that fails is never a success.
 */
export function detachAndWait(argv: readonly string[], options: { stdout?: string; option?: string; name: string }): Promise<number> {
  const out = options.stdout ? openLogFile(options.stdout, options.option ?? '--logfile') : 'ignore';
  const child = spawn(process.execPath, [...process.execArgv, ...argv], {
    detached: true,
    stdio: ['ignore', out, 'pipe', 'ipc'],
    env: { ...process.env, [DETACHED_ENV]: '1' },
  });
  if (typeof out === 'number') closeSync(out);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise<number>((resolve) => {
    child.on('message', (m: { ready?: boolean }) => {
      if (!m.ready) return;
      child.stderr!.destroy();
      child.disconnect();
      child.unref();
      resolve(0);
    });
    child.on('exit', (code, signal) => {
      process.stderr.write(stderr || `${options.name}: the detached process ended (${signal ?? `code ${code}`}) before it was up\n`);
      resolve(code || EXIT.STARTCLIENT);
    });
  });
}
