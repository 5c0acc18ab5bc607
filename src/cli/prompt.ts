// The password prompt of the command line: `Password: ` on the controlling terminal with echo
// off, as rsync's client asks when no --password-file or $RSYNC_PASSWORD gave one.
// Counterpart: rsync authenticate.c auth_client (getpass), lib/getpass.c.
import { openSync, closeSync, writeSync } from 'node:fs';
import { isatty, ReadStream } from 'node:tty';

/** The longest password kept from the terminal (what a --password-file gives at most, too). */
const MAX_PASSWORD = 512;

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
          else if (bytes.length < MAX_PASSWORD) bytes.push(c);
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
