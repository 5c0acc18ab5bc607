// The live mirror as a process: logging with timestamps (to stderr or --logfile, reopened on
// SIGHUP), --pidfile (refusing a live pid), --status-file rewritten atomically, detaching into the
// background, and the signals that end it cleanly. The mirror itself is src/live/.
import { openSync, writeSync, closeSync, readFileSync, writeFileSync, renameSync, unlinkSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { UsageError } from '../../protocol/errors.js';
import type { LogLevel } from '../live/index.js';

const LEVELS: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Timestamped log lines to stderr or a file. `--scarce` keeps errors only, `--debug` adds debug. */
export class Logger {
  private fd: number | null = null;
  constructor(
    private readonly file: string | undefined,
    private readonly minLevel: LogLevel,
  ) {
    this.reopen();
  }

  /** Reopen the log file (after logrotate moved it: SIGHUP). */
  reopen(): void {
    if (!this.file) return;
    const old = this.fd;
    this.fd = openSync(this.file, 'a', 0o640);
    if (old !== null) closeSync(old);
  }

  log(level: LogLevel, message: string): void {
    if (LEVELS[level] < LEVELS[this.minLevel]) return;
    const line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${message.replace(/\n+$/, '')}\n`;
    if (this.fd !== null) writeSync(this.fd, line);
    else process.stderr.write(line);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
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
  writeAtomically(path, `${process.pid}\n`);
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

/**
 * Detach: start this same command again in the foreground (`--nodaemon`) as a new session
 * leader with no terminal, its output going to the log file (or nowhere), and return its pid.
 */
export function detach(argv: readonly string[], logfile: string | undefined): number {
  const out = logfile ? openSync(logfile, 'a', 0o640) : 'ignore';
  const child = spawn(process.execPath, [...process.execArgv, ...argv, '--nodaemon'], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  child.unref();
  if (typeof out === 'number') closeSync(out);
  return child.pid ?? -1;
}
