// Reading rsyncd's log in tests, to wait for a state rather than for a fixed time: how many
// sessions reached a module path, and which of them are still open (a session the live mirror
// opened ahead waits there for its file list).
//
// A session's end is its summary line, its "rsync error:" line, or its process gone: a daemon
// receiver whose transfer ends with code 23 or 24 (a file changed or vanished under the client)
// logs no closing line at all (seen with rsync 3.5.0).

const SESSION_LINE = /^\S+ \S+ \[(\d+)\] (.*)$/;

/** rsyncd's sessions for `to` (`module/path/`, as its "rsync to" line names it), by pid, with whether each has ended. */
function sessions(log: string, to: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const line of log.split('\n')) {
    const m = SESSION_LINE.exec(line);
    if (!m) continue;
    const [, pid, text] = m as unknown as [string, string, string];
    if (text.startsWith(`rsync to ${to} from `)) out.set(pid, false);
    // Each session ends with its transfer summary or with rsync's error line.
    else if (out.has(pid) && (/^sent \d+ bytes/.test(text) || text.startsWith('rsync error:'))) out.set(pid, true);
  }
  return out;
}

/** How many sessions for `to` rsyncd has accepted so far. */
export function sessionCount(log: string, to: string): number {
  return sessions(log, to).size;
}

/** How many sessions for `to` are open now (accepted, not ended, their daemon process alive). */
export function openSessionCount(log: string, to: string): number {
  let open = 0;
  for (const [pid, ended] of sessions(log, to)) if (!ended && isAlive(Number(pid))) open++;
  return open;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, under another user
  }
}
