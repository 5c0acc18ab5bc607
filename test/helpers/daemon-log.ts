// Reading rsyncd's log in tests, to wait for a state rather than for a fixed time: how many
// sessions reached a module path, and which of them are still open (a session the live mirror
// opened ahead waits there for its file list).

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

/** How many sessions for `to` are open now (accepted, not ended). */
export function openSessionCount(log: string, to: string): number {
  let open = 0;
  for (const ended of sessions(log, to).values()) if (!ended) open++;
  return open;
}
