// How a one-off transfer (push, pull) is stopped from outside: the CLI's Ctrl-C or SIGTERM aborts
// an AbortSignal, and the session's socket is closed, so the roles fail where they stand and clean
// up as on any lost connection (a pull's temp files are discarded). Counterpart: rsync's
// sig_int handler (cleanup.c: exit_cleanup with RERR_SIGNAL).
import type { DaemonSocket } from './socket.js';

/** Close `socket` when `abort` fires (at once if it already has). */
// rsync/main.c: sig_int
export function closeOnAbort(socket: DaemonSocket, abort: AbortSignal | undefined): void {
  if (!abort) return;
  if (abort.aborted) {
    socket.destroy();
    return;
  }
  const close = (): void => {
    socket.destroy();
  };
  abort.addEventListener('abort', close, { once: true });
  socket.socket.once('close', () => abort.removeEventListener('abort', close));
}
