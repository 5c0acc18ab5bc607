// Where the daemon password comes from, as rsync's client takes it: --password-file (refused when
// others can read it, or, for root, when root does not own it; first line only), else
// $RSYNC_PASSWORD, else what the caller's prompt gives (the CLI's: `Password: ` on the terminal,
// src/cli/prompt.ts). Never logged. Counterpart: rsync authenticate.c auth_client, getpassf.
import { open, lstat } from 'node:fs/promises';
import { constants } from 'node:fs';
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
  /** Ask the user (null: cannot). What it gives is kept for the source's later sessions. */
  prompt?: () => Promise<Buffer | null>;
  /** Told when the daemon asked and nothing gave a password (for the CLI's hint). */
  onMissing?: () => void;
}

/**
 * The password source for a session: the file if given, else $RSYNC_PASSWORD, else the prompt
 * (asked once), else none (the daemon then refuses, and `onMissing` has been told).
 */
// rsync/authenticate.c: auth_client (getpassf, RSYNC_PASSWORD, then getpass)
export function passwordSource(passwordFile: string | undefined, env: NodeJS.ProcessEnv = process.env, fallback: PasswordFallback = {}): () => Promise<Buffer | null> {
  let typed: Buffer | null = null;
  return async () => {
    if (passwordFile) {
      const fromFile = await readPasswordFile(passwordFile);
      if (fromFile) return fromFile;
    }
    if (env.RSYNC_PASSWORD !== undefined) return Buffer.from(env.RSYNC_PASSWORD, 'utf8');
    // Asked once: a live mirror's reconnections do not ask again.
    typed ??= (await fallback.prompt?.()) ?? null;
    if (typed === null) fallback.onMissing?.();
    return typed;
  };
}
