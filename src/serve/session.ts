// A module session once the client is in (access, limit and authentication done): `@RSYNCD: OK`,
// the argument list read and checked against `refuse options`, the module's timeout, then the
// role. It runs in the daemon's process, or in a process of the connection's own that has
// dropped to the module's uid/gid (worker.ts), the same code either way.
// Counterpart: rsync clientserver.c rsync_module (from "@RSYNCD: OK" on), main.c start_server.
import { randomInt } from 'node:crypto';
import { recvArgs } from '../../protocol/args.js';
import { parseServerArgs, ServerArgsError, type ServerArgs } from '../../protocol/server-args.js';
import { startServer } from '../../protocol/session.js';
import { logError, logExit, logRequest, requestFromArgs } from './log.js';
import { ConnectionMemory } from './memory.js';
import { serveRole } from './roles.js';
import { ERROR_WHERE, tellClient } from './role-exit.js';
import type { ModuleSession, RoleResult } from './request.js';



// rsync/clientserver.c: rsync_module (from "@RSYNCD: OK") + main.c start_server
export async function runModuleSession(s: ModuleSession): Promise<void> {
  const { module, peer, reader, protocol, user } = s;
  const say = async (line: string): Promise<void> => {
    s.writer.writeLine(line);
    await s.writer.flush();
  };
  // 1. The module is open: the client sends its argument list.
  s.io.setIoTimeout(s.argsSeconds);
  await say('@RSYNCD: OK');
  const raw = (await recvArgs(reader)).map((a) => a.toString('utf8'));
  let parsed: ServerArgs | ServerArgsError;
  try {
    // [args-content] rsync's option table and popt's rules; `refuse options` answered as rsyncd
    // answers it, at the point its parse meets the option.
    const refuse = { refuse: module.refuseOptions };
    parsed = parseServerArgs(raw, protocol, refuse);
    if (parsed.secluded) {
      const second = (await recvArgs(reader, true)).map((a) => a.toString('utf8'));
      parsed = parseServerArgs(raw, protocol, { ...refuse, secluded: second });
    }
  } catch (e) {
    if (!(e instanceof ServerArgsError)) throw e;
    parsed = e;
  }
  const failed = parsed instanceof ServerArgsError ? parsed : undefined;
  const sender = failed ? (failed.seen?.sender ?? raw.includes('--sender')) : (parsed as ServerArgs).sender;
  logRequest(s.log, { sender, request: requestFromArgs(raw), user }, peer);
  // 2. Options refused or not understood: rsyncd finishes the setup phase so its text can travel
  // multiplexed, then ends the session with exit code 4.
  if (failed) {
    await startServer(reader, s.writer, { clientInfo: failed.seen?.clientInfo ?? '', symlinkTimes: true, seed: randomInt(0x7fffffff) });
    await tellClient(s, sender, failed.text, failed.exitCode);
    return endSession(s, sender, failed.exitCode, 0);
  }
  const args = parsed as ServerArgs;
  // 3. The module's timeout from here on (a client asking for a shorter one keeps its own).
  const timeout = module.timeout && (!args.timeout || module.timeout < args.timeout) ? module.timeout : (args.timeout ?? 0);
  s.io.setIoTimeout(timeout);
  // --bwlimit: our writes to this client are paced as rsyncd paces them.
  if (args.bwlimit) s.io.setBandwidthLimit(args.bwlimit);
  // 4. The role: receiver + generator for a client's push, sender for its pull or listing.
  let result: RoleResult;
  const memory = new ConnectionMemory(args.sender ? 'sender' : 'receiver', { clientMaxAlloc: args.maxAlloc });
  try {
    result = await serveRole({ ...s, args, timeout, memory });
  } catch (e) {
    logError(s.log, (e as Error).message);
    throw e;
  } finally {
    memory.release();
  }
  endSession(s, args.sender, result.exitCode, result.totalSize);
}

/** The session's last log lines: the byte counts, and rsync's closing line for a failure (once). */
// rsync/log.c: log_exit
function endSession(s: ModuleSession, sender: boolean, code: number, totalSize: number): void {
  logExit(s.log, {
    code,
    sender,
    totals: { sent: s.io.bytesWritten, received: s.io.bytesRead, totalSize },
    where: ERROR_WHERE,
    who: sender ? 'sender' : 'Receiver',
    version: `lsyncd ${s.version}`,
  });
}
