// A module session once the client is in (access, limit and authentication done): `@RSYNCD: OK`,
// the argument list read and checked against `refuse options`, the module's timeout, then the
// role. It runs in the daemon's process, or in a process of the connection's own that has
// dropped to the module's uid/gid (worker.ts), the same code either way.
// Counterpart: rsync clientserver.c rsync_module (from "@RSYNCD: OK" on), main.c start_server.
import { randomInt } from 'node:crypto';
import { recvArgs } from '../../protocol/args.js';
import { parseServerArgs, ServerArgsError, type ServerArgs } from '../../protocol/server-args.js';
import { startServer } from '../../protocol/session.js';
import { MSG_ERROR, MSG_ERROR_EXIT, writeMessage, writeMessageInt } from '../../protocol/mplex.js';
import { exitErrorLine } from '../../protocol/errors.js';
import { logError, logExit, logRequest, requestFromArgs } from './log.js';
import { serveRole } from './roles.js';
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
  if (failed) return failAfterSetup(s, sender, failed.seen?.clientInfo ?? '', failed.text, failed.exitCode);
  const args = parsed as ServerArgs;
  // 3. The module's timeout from here on (a client asking for a shorter one keeps its own).
  const timeout = module.timeout && (!args.timeout || module.timeout < args.timeout) ? module.timeout : (args.timeout ?? 0);
  s.io.setIoTimeout(timeout);
  // 4. The role: receiver + generator for a client's push, sender for its pull or listing.
  let result: RoleResult;
  try {
    result = await serveRole({ ...s, args, timeout });
  } catch (e) {
    logError(s.log, (e as Error).message);
    throw e;
  }
  logExit(s.log, {
    code: result.exitCode,
    sender: args.sender,
    totals: { sent: s.io.bytesWritten, received: s.io.bytesRead, totalSize: result.totalSize },
    where: 'serve/session.ts',
    who: args.sender ? 'sender' : 'Receiver',
    version: s.version,
  });
}


/**
 * The client's options are wrong for this module: rsync finishes the setup phase so the error can
 * travel multiplexed, sends its text and the closing "rsync error" line, then (31+) MSG_ERROR_EXIT.
 */
// rsync/clientserver.c: rsync_module (the !ret || err_msg branch) + cleanup.c _exit_cleanup
async function failAfterSetup(s: ModuleSession, sender: boolean, clientInfo: string, text: string, code: number): Promise<void> {
  const { reader, writer, protocol } = s;
  await startServer(reader, writer, { clientInfo, symlinkTimes: true, seed: randomInt(0x7fffffff) });
  logError(s.log, text);
  await writeMessage(writer, MSG_ERROR, Buffer.from(text));
  const closing = `${exitErrorLine(code, 'serve/session.ts', sender ? 'sender' : 'Receiver', `lsyncd ${s.version}`)}\n`;
  logError(s.log, closing);
  await writeMessage(writer, MSG_ERROR, Buffer.from(closing));
  if (protocol >= 31) await writeMessageInt(writer, MSG_ERROR_EXIT, code);
  await writer.flush();
}
