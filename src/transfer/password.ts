// Where the daemon password comes from, as rsync's client takes it: --password-file (refused when
// others can read it, or, for root, when root does not own it; first line only), else
// $RSYNC_PASSWORD, else a `Password: ` prompt on the controlling terminal with echo off (none
// without a terminal). Never logged. Counterpart: rsync authenticate.c auth_client, getpassf.
import { open, lstat } from 'node:fs/promises';
import { constants, openSync, closeSync, writeSync } from 'node:fs';
import { isatty, ReadStream } from 'node:tty';
import { UsageError } from '../../protocol/errors.js';
import { S_IROTH, S_IWOTH } from '../../protocol/modes.js';

const MAX_PASSWORD_FILE = 512;

// rsync/authenticate.c: getpassf [auth-password]
export async function readPasswordFile(path: string): Promise<Buffer | null> {
  let bytes: Buffer;
  if (path === '-') {
    bytes = await readStdinLine();
  } else {
    const link = await lstat(path).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`could not open password file ${path}: ${e.message}`);
    });
    const euid = process.geteuid?.() ?? -1;
    // A planted symlink could make us send someone else's file to the daemon.
    if (link.isSymbolicLink() && link.uid !== 0 && link.uid !== euid) {
      throw new UsageError(`password file ${path} is a symlink owned by another user: refused`);
    }
    const handle = await open(path, constants.O_RDONLY).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`could not open password file ${path}: ${e.message}`);
    });
    try {
      const st = await handle.stat();
      if ((st.mode & (S_IROTH | S_IWOTH)) !== 0) throw new UsageError('password file must not be other-accessible');
      if (euid === 0 && st.uid !== 0) throw new UsageError('password file must be owned by root when running as root');
      const buf = Buffer.alloc(MAX_PASSWORD_FILE);
      const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
      bytes = buf.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }
  // The first non-empty run of bytes up to a line break, as strtok("\n\r") gives.
  const text = bytes.toString('latin1');
  const first = text.split(/[\r\n]+/).find((part) => part.length > 0);
  return first === undefined ? null : Buffer.from(first, 'latin1');
}

async function readStdinLine(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const buf = chunk as Buffer;
    chunks.push(buf);
    size += buf.length;
    if (buf.includes(0x0a) || size >= MAX_PASSWORD_FILE) break;
  }
  return Buffer.concat(chunks).subarray(0, MAX_PASSWORD_FILE);
}

/** What a session's password source does when none was given. */
export interface PasswordFallback {
  /** Ask on the controlling terminal (default: when there is one). */
  prompt?: () => Promise<Buffer | null>;
  /** Told when the daemon asked and nothing gave a password (for the CLI's hint). */
  onMissing?: () => void;
}

/**
 * The password source for a session: the file if given, else $RSYNC_PASSWORD, else the prompt
 * on the terminal, else none (the daemon then refuses, and `onMissing` has been told).
 */
// rsync/authenticate.c: auth_client (getpassf, RSYNC_PASSWORD, then getpass)
export function passwordSource(passwordFile: string | undefined, env: NodeJS.ProcessEnv = process.env, fallback: PasswordFallback = {}): () => Promise<Buffer | null> {
  return async () => {
    if (passwordFile) {
      const fromFile = await readPasswordFile(passwordFile);
      if (fromFile) return fromFile;
    }
    if (env.RSYNC_PASSWORD !== undefined) return Buffer.from(env.RSYNC_PASSWORD, 'utf8');
    const typed = await (fallback.prompt ?? promptOnTerminal)();
    if (typed === null) fallback.onMissing?.();
    return typed;
  };
}

/**
 * `Password: ` on the controlling terminal (/dev/tty, as rsync's getpass reads it, so a pipe on
 * stdin does not matter), read with echo off up to Enter; null when there is no terminal. Ctrl-C
 * while typing is passed on as SIGINT.
 */
// rsync/lib/getpass.c: getpass
export async function promptOnTerminal(): Promise<Buffer | null> {
  let fd: number;
  try {
    fd = openSync('/dev/tty', 'r+');
  } catch {
    return null;
  }
  if (!isatty(fd)) {
    closeSync(fd);
    return null;
  }
  const input = new ReadStream(fd);
  try {
    input.setRawMode(true);
    writeSync(fd, 'Password: ');
    const typed = await new Promise<Buffer | 'interrupt'>((resolve) => {
      const bytes: number[] = [];
      input.on('data', (chunk: Buffer) => {
        for (const c of chunk) {
          if (c === 0x0d || c === 0x0a) return resolve(Buffer.from(bytes));
          if (c === 0x03) return resolve('interrupt');
          if (c === 0x7f || c === 0x08) bytes.pop();
          else if (bytes.length < MAX_PASSWORD_FILE) bytes.push(c);
        }
      });
      input.on('end', () => resolve(Buffer.from(bytes)));
    });
    input.setRawMode(false);
    // The newline the terminal did not echo.
    writeSync(fd, '\n');
    if (typed === 'interrupt') {
      process.kill(process.pid, 'SIGINT');
      return null;
    }
    return typed;
  } finally {
    input.destroy();
  }
}
