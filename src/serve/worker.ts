// The process one connection's transfer runs in when its module has a uid/gid of its own
// (privileges.ts): handed the client's socket and the daemon's log descriptor (fd 4), it drops to
// the module's groups and user before anything else, writes `@RSYNCD: OK` and runs the module
// session as the daemon would.
// Counterpart: the forked child of rsync's daemon (rsync_module's setgid/setgroups/setuid).
import { fstatSync } from 'node:fs';
import type { Socket } from 'node:net';
import { ByteReader, ByteWriter } from '../../protocol/io.js';
import { wrapSocket } from '../transfer/socket.js';
import { DaemonLog, logText } from './log.js';
import type { ModuleIds, WorkerStart } from './privileges.js';
import { runModuleSession } from './session.js';
import { tuneProcessMemory } from '../process-memory.js';

/** The daemon's log descriptor in this process (stdio slot 4 of the fork). */
const LOG_FD = 4;

tuneProcessMemory();
process.once('message', (start: WorkerStart, socket: Socket | undefined) => {
  if (!socket) process.exit(1);
  const log = new DaemonLog(start.logToStderr ? { stderr: process.stderr } : hasLog() ? { fd: LOG_FD } : {});
  const refused = dropPrivileges(start.ids);
  if (refused) {
    logText(log, refused.logged);
    socket.end(`@ERROR: ${refused.told}\n`, () => process.exit(0));
    return;
  }
  const io = wrapSocket(socket, `${start.peer.host} (${start.peer.addr})`, start.argsSeconds);
  const reader = new ByteReader(io);
  const writer = new ByteWriter(io);
  reader.protocol = start.protocol;
  writer.protocol = start.protocol;
  runModuleSession({ reader, writer, io, peer: start.peer, protocol: start.protocol, module: start.module, user: start.user, readOnly: start.readOnly, log, version: start.version, argsSeconds: start.argsSeconds })
    .catch((e: unknown) => logText(log, `connection from ${start.peer.host} (${start.peer.addr}) ended: ${(e as Error).message}`))
    .finally(() => {
      io.destroy();
      process.exit(0);
    });
});

/**
 * The module's ids, in rsync's order: the primary group, the group list, then the user (after
 * which no way back). Returns what to log and tell the client when the system refuses a step.
 */
// rsync/clientserver.c: rsync_module (setgid, setgroups, setuid)
function dropPrivileges(ids: ModuleIds): { logged: string; told: string } | null {
  const steps: [string, () => void][] = [
    [`setgid ${ids.gid}`, () => process.setgid!(ids.gid)],
    ['setgroups', () => process.setgroups!(ids.groups)],
    [`setuid ${ids.uid}`, () => process.setuid!(ids.uid)],
  ];
  for (const [what, step] of steps) {
    try {
      step();
    } catch (e) {
      return { logged: `${what} failed: ${(e as Error).message}`, told: `${what.split(' ')[0]} failed` };
    }
  }
  return null;
}

function hasLog(): boolean {
  try {
    return fstatSync(LOG_FD).isFile();
  } catch {
    return false;
  }
}
