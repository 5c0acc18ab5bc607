// The daemon's roles, driven from the other side of the wire with the same code the client uses:
// for a client's pull (or listing) the sender over the module's tree (send.ts); for a client's
// push the generator and receiver into the module through a DestTree (receive.ts). What differs
// is only the session's side (startServer, recvClientFilters, amServer) — never a copy of a role.
// Counterpart: rsync main.c start_server.
import { randomInt } from 'node:crypto';
import { compressNames, parseChecksumName } from '../../protocol/compat.js';
import { compressCodecs } from '../compress-codecs.js';
import { startServer } from '../../protocol/session.js';
import { EXIT } from '../../protocol/errors.js';
import type { RoleRequest, RoleResult } from './request.js';
import { endRole, refuseRole } from './role-exit.js';
import { receiveIntoModule } from './receive.js';
import { serveSender } from './send.js';
import { refusedOption } from './refused-options.js';

// rsync/main.c: start_server
export async function serveRole(r: RoleRequest): Promise<RoleResult> {
  const { reader, writer, args } = r;
  // -z: we offer zstd, lz4 (each when the system has its library), zlibx, zlib and none (rsync's
  // order) to a client that negotiates; a client that names its choice (--compress-choice,
  // --old/--new-compress, or plain -z below protocol 30, which means zlib) gets it if we speak it,
  // or a refusal once the setup phase is done. `dont compress = *` keeps the deflated formats at
  // level 0, as rsync's daemon does (zstd and lz4 ignore it there too).
  const negotiates = r.protocol >= 30 && args.clientInfo.includes('v');
  const compress = args.compress;
  const choice = compress?.choice?.toLowerCase();
  const named = choice !== undefined && choice !== 'auto' ? choice : undefined;
  const codecs = compress ? compressCodecs() : undefined;
  const speaks: readonly string[] = compressNames(codecs);
  const known = named === undefined || speaks.includes(named);
  const compressList = compress && named === undefined && negotiates ? speaks : undefined;
  // rsync/clientserver.c: rsync_module (the parse), compat.c: parse_compress_choice
  const compressOptions = compress
    ? {
        ...(compressList ? { compressList } : { compressChoice: known ? (named ?? 'zlib') : 'none' }),
        ...(compress.level !== undefined && { compressLevel: compress.level }),
        ...(r.module.dontCompress.includes('*') && { skipCompressAll: true }),
        ...(codecs && { codecs }),
      }
    : {};
  // 1. [side-setup] The setup phase, the daemon's half; our output framed; the module's timeout.
  const setup = await startServer(reader, writer, {
    clientInfo: args.clientInfo,
    ...(args.checksumChoice && { checksumChoice: parseChecksumName(args.checksumChoice) }),
    symlinkTimes: true,
    seed: randomInt(0x7fffffff),
    ...(r.timeout && { ioTimeout: r.timeout }),
    ...compressOptions,
  });
  try {
    if (!known) throw refuseRole(`unknown compress name: ${named}`, EXIT.UNSUPPORTED);
    const unsupported = refusedOption(args, r.module);
    if (unsupported) throw refuseRole(unsupported, EXIT.UNSUPPORTED);
    return args.sender ? await serveSender(r, setup) : await receiveIntoModule(r, setup);
  } catch (e) {
    return endRole(r, e);
  }
}
