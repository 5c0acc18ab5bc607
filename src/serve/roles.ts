// The daemon's roles, driven from the other side of the wire with the same code the client uses:
// for a client's pull (or listing) the sender over the module's tree (send.ts); for a client's
// push the generator and receiver into the module through a DestTree (receive.ts). What differs
// is only the session's side (startServer, recvClientFilters, amServer) — never a copy of a role.
// Counterpart: rsync main.c start_server.
import { randomInt } from 'node:crypto';
import { parseChecksumName } from '../../protocol/compat.js';
import { startServer } from '../../protocol/session.js';
import { EXIT } from '../../protocol/errors.js';
import type { RoleRequest, RoleResult } from './request.js';
import { endRole, refuseRole } from './role-exit.js';
import { receiveIntoModule } from './receive.js';
import { serveSender } from './send.js';

// rsync/main.c: start_server
export async function serveRole(r: RoleRequest): Promise<RoleResult> {
  const { reader, writer, args } = r;
  // -z: we have no compression codec, so we offer only "none" (rsync's own name for "-z, but send
  // plain tokens"); a client that can only speak zlib (no negotiation: protocol < 30, an old
  // client, or its own --compress-choice) is refused once the setup phase has been done.
  const negotiates = r.protocol >= 30 && args.clientInfo.includes('v');
  const compress = args.compress;
  const compressList = compress && !compress.choice && negotiates ? (['none'] as const) : undefined;
  // 1. [side-setup] The setup phase, the daemon's half; our output framed; the module's timeout.
  const setup = await startServer(reader, writer, {
    clientInfo: args.clientInfo,
    ...(args.checksumChoice && { checksumChoice: parseChecksumName(args.checksumChoice) }),
    symlinkTimes: true,
    seed: randomInt(0x7fffffff),
    ...(r.timeout && { ioTimeout: r.timeout }),
    ...(compressList && { compressList }),
  });
  try {
    if (compress && !compressList && compress.choice !== 'none') {
      throw refuseRole(`rsync: this daemon (lsyncd serve) does not compress: use --compress-choice=none or leave out -z`, EXIT.UNSUPPORTED);
    }
    return args.sender ? await serveSender(r, setup) : await receiveIntoModule(r, setup);
  } catch (e) {
    return endRole(r, e);
  }
}
