// The ways out of a server role, as rsync's daemon takes them: a refusal (a read-only or
// write-only module, an option we cannot serve) told to the client in rsync's words with its
// closing line and exit code, and an abort on a client's protocol fault, told first, then the
// connection drained and closed so the message is not lost to a reset.
// Counterpart: rsync cleanup.c _exit_cleanup, io.c noop_io_until_death.
import { MSG_ERROR, MSG_ERROR_EXIT, writeMessage, writeMessageInt } from '../../protocol/mplex.js';
import { EXIT, exitErrorLine, MemoryCapError, ProtocolError, RsyncError, UnsafeNameError } from '../../protocol/errors.js';
import type { DaemonSocket } from '../transfer/socket.js';
import { logError } from './log.js';
import { CorruptStatRecordError } from '../transfer/fake-super.js';
import type { ModuleSession, RoleRequest } from './request.js';

/** A role that cannot go on: the client is told `text` and rsync's closing line, with `code`. */
export class RoleRefusal extends RsyncError {
  constructor(text: string, code: number) {
    super('ERR_RSYNC_SERVE_REFUSED', text, code);
  }
}

/** Client faults already told (by abortRole, before the connection was cut). */
const told = new WeakSet<object>();

/**
 * The generator and receiver stop together on the first failure, and the connection is cut so
 * the other's pending read ends; a fault of the client's is told to it first, as rsync does
 * before it exits.
 */
// rsync/cleanup.c: _exit_cleanup (the message before the exit)
export async function abortRole(r: RoleRequest, reason: unknown): Promise<void> {
  try {
    const fault = clientFault(reason);
    if (fault && typeof reason === 'object' && reason !== null && !told.has(reason)) {
      told.add(reason);
      await tellClient(r, r.args.sender, fault.text, fault.code).catch(() => {});
    }
  } finally {
    r.io.destroy();
  }
}

/** How long a client told of its fault may take to close before we cut the connection (seconds). */
const ERROR_LINGER_SECONDS = 5;

/**
 * After an error told to the client: our FIN, and whatever the client still sends read and
 * dropped until it closes (bounded), so closing with its bytes unread does not reset the
 * connection and lose our error text on its way to the client.
 */
// rsync/io.c: noop_io_until_death
async function closeAfterError(io: DaemonSocket): Promise<void> {
  const socket = io.socket;
  if (socket.destroyed) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      socket.off('end', done);
      socket.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ERROR_LINGER_SECONDS * 1000);
    socket.once('end', done);
    socket.once('close', done);
    socket.end();
    socket.resume();
  });
  io.destroy();
}

/** Why a protocol library error is the client's doing, in the words its user is shown; or null. */
// rsync/flist.c: recv_file_entry ("ABORTING due to unsafe pathname from sender")
function clientFault(e: unknown): { text: string; code: number } | null {
  if (e instanceof MemoryCapError) return { text: e.message, code: e.exitCode };
  // Not the client's fault, but rsync's generator tells it the same way before it exits (exit 11).
  if (e instanceof CorruptStatRecordError) return { text: e.message, code: e.exitCode };
  if (!(e instanceof ProtocolError)) return null;
  // The library words a peer's faults from a client's chair ("from the daemon"); here the peer is the client.
  const text = e.message.replace(/ from the daemon\b/, ' from the client');
  if (e instanceof UnsafeNameError && UNSAFE_SHAPE.test(e.message)) {
    return { text: `ABORTING due to unsafe pathname from sender: ${e.rawName.toString('utf8')}`, code: EXIT.UNSUPPORTED };
  }
  return { text: `ERROR: ${text}`, code: e.exitCode };
}

/** The unsafe-name errors about a name's shape (rsync's "unsafe pathname"), not its length. */
const UNSAFE_SHAPE = /\((absolute|'\.\.' component|'\.' component|empty component|NUL byte)\)/;

/** Where our closing "rsync error" lines say they come from (rsync names its C file and line). */
export const ERROR_WHERE = 'lsyncd serve';

/**
 * rsync's way out of a server session: the error text and the closing line to the client, (31+)
 * MSG_ERROR_EXIT, then the connection drained and closed. The text is logged here; the closing line is logged once, with the byte counts,
 * when the session ends (session.ts).
 */
// rsync/cleanup.c: _exit_cleanup (a server's error exit)
export async function tellClient(s: ModuleSession, sender: boolean, text: string, code: number): Promise<void> {
  const { writer } = s;
  const message = `${text.replace(/\n$/, '')}\n`;
  logError(s.log, message);
  await writeMessage(writer, MSG_ERROR, Buffer.from(message));
  const closing = `${exitErrorLine(code, ERROR_WHERE, sender ? 'sender' : 'Receiver', `lsyncd ${s.version}`)}\n`;
  await writeMessage(writer, MSG_ERROR, Buffer.from(closing));
  if (writer.protocol >= 31) await writeMessageInt(writer, MSG_ERROR_EXIT, code);
  await writer.flush();
  await closeAfterError(s.io);
}

/** The refusal of a role, for receive.ts too. */
export function refuseRole(text: string, code: number): RoleRefusal {
  return new RoleRefusal(text, code);
}

/**
 * How a role that failed ends: a refusal told to the client with its code; a fault of the
 * client's (an unsafe name, a count out of bounds, a list past the memory cap) told once, as rsync's server tells it
 * before exiting, then the connection closed; anything else is rethrown.
 */
export async function endRole(r: RoleRequest, e: unknown): Promise<{ exitCode: number; totalSize: number }> {
  if (e instanceof RoleRefusal) {
    await tellClient(r, r.args.sender, e.message, e.exitCode);
    return { exitCode: e.exitCode, totalSize: 0 };
  }
  const fault = clientFault(e);
  if (!fault) throw e;
  if (!told.has(e as object)) {
    await tellClient(r, r.args.sender, fault.text, fault.code).catch(() => {});
  }
  return { exitCode: fault.code, totalSize: 0 };
}
