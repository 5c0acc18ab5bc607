// The live mirror's connections to a target: opened by the runner itself (not by push()), so that
// a session's polite close waits until the daemon's process has gone. rsyncd counts a module's
// `max connections` with a lock held by that process until it exits (rsync/connection.c:
// claim_connection), and it exits only after reading our last goodbye: a next connection opened
// the moment a push returns would find the slot still taken (`max connections (1) reached`).
// Counterpart: src/transfer/client.ts openModule, whose close() only half-closes.
import { openModule, type DaemonSession, type SessionOptions } from '../transfer/client.js';

/** How long a close waits for the daemon's end of the connection before going on anyway. */
export const CLOSE_WAIT_MS = 2000;

/** openModule, with a close() that resolves once the daemon has closed its end (its process is gone). */
export async function openTargetSession(options: SessionOptions, module: string): Promise<DaemonSession> {
  const session = await openModule(options, module);
  return { ...session, close: () => closeAndWait(session, CLOSE_WAIT_MS) };
}

/**
 * Half-close, then read (and drop) whatever the daemon still sends until its end of file: the
 * daemon closes the connection when its process exits. Bounded by `ms`: a daemon that lingers
 * costs a wait, never a hang.
 */
export function closeAndWait(session: DaemonSession, ms: number): Promise<void> {
  const socket = session.socket.socket;
  return new Promise<void>((resolve) => {
    if (socket.destroyed || socket.readableEnded) return resolve();
    const done = () => {
      clearTimeout(timer);
      socket.off('readable', drain);
      resolve();
    };
    const drain = () => {
      while (socket.read() !== null) {
        // the session is over: what is left is dropped
      }
    };
    const timer = setTimeout(done, ms);
    timer.unref?.();
    socket.once('end', done);
    socket.once('close', done);
    socket.once('error', done);
    socket.on('readable', drain);
    socket.end();
    drain();
  });
}
