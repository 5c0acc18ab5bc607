// Cutting a transfer short in the --partial suites (recv-options, recv-partial-dir): a client
// stopped as a terminal's Ctrl-C stops it, once its temp file shows the transfer under way.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Runs `command` in a process group of its own and stops the group with SIGTERM once `ready()`
 * holds (a transfer is under way), as a terminal's Ctrl-C reaches rsync's two processes.
 */
export function interrupted(command: string, args: string[], ready: () => boolean): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    let closed = false;
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const poll = setInterval(() => {
      if (!closed && ready()) {
        clearInterval(poll);
        process.kill(-child.pid!, 'SIGTERM');
      }
    }, 5);
    child.on('error', reject);
    child.on('close', (status) => {
      closed = true;
      clearInterval(poll);
      clearTimeout(killer);
      resolve({ status, stderr });
    });
  });
}

/** The size of the temp file (`.NAME.XXXXXX`) being written in `dir`, 0 when there is none. */
export function tempSize(dir: string, name: string): number {
  if (!existsSync(dir)) return 0;
  const temp = readdirSync(dir).find((n) => n.startsWith(`.${name}.`));
  return temp ? (statSync(join(dir, temp), { throwIfNoEntry: false })?.size ?? 0) : 0;
}
