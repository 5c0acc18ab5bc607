// One client connection of `lsyncd serve`, as one straight-line story, step for step the one
// rsync's daemon tells: greetings (and the MOTD), the module line or the listing, access, the
// connection limit, authentication, `@RSYNCD: OK`, the argument list, the refused options, the
// setup phase, then the role (roles.ts). Every error is confined to this connection: the client is
// told in rsync's words, the log gets rsync's line, and the socket is closed.
// Counterpart: rsync clientserver.c start_daemon, exchange_protocols, rsync_module; main.c
// start_server.
import { lookup, lookupService } from 'node:dns/promises';
import { readFileSync, statSync } from 'node:fs';
import type { Socket } from 'node:net';
import { ByteReader, ByteWriter } from '../../protocol/io.js';
import {
  checkClientGreeting,
  chooseDaemonAuthDigest,
  formatGreeting,
  formatModuleListing,
  negotiateProtocol,
  PROTOCOL_VERSION,
} from '../../protocol/daemon.js';
import { EXIT, RsyncError } from '../../protocol/errors.js';
import { wrapSocket, type DaemonSocket } from '../transfer/socket.js';
import { findModule, listedModules, missingPathError } from './config.js';
import type { DaemonConfig, ModuleConfig } from './config.js';
import {
  accessDeniedMessages,
  hostAllowed,
  moduleNeedsReverseLookup,
  normalizeClientAddress,
  tokensToResolve,
  UNDETERMINED_HOSTNAME,
  UNKNOWN_HOSTNAME,
} from './access.js';
import { authFailedLine, checkAuth, formatChallengeLine, makeChallenge, MAX_AUTH_LINE, parseAuthLine } from './auth.js';
import {
  logAccessDenied,
  logConnect,
  logMaxConnections,
  logModuleList,
  logModuleOpen,
  logText,
  logUnknownModule,
  type DaemonLog,
  type Peer,
} from './log.js';
import type { ConnectionSlots } from './slots.js';
import { moduleIds, runAs, userGroups } from './privileges.js';
import { runModuleSession } from './session.js';
import type { ModuleSession } from './request.js';

/** What every connection shares. */
export interface ServeContext {
  config: DaemonConfig;
  log: DaemonLog;
  slots: ConnectionSlots;
  /** Our version, for the "rsync error" lines a client shows. */
  version: string;
  /** The daemon runs as root (uid/gid defaults, secrets-file ownership). */
  asRoot: boolean;
  /** The text phase's bound in seconds (default HANDSHAKE_SECONDS; tests shorten it). */
  handshakeSeconds?: number;
}

/** How long the text phase may take before a silent or slow client is dropped (seconds). */
export const HANDSHAKE_SECONDS = 60;
const handshakeSeconds = (ctx: ServeContext): number => ctx.handshakeSeconds ?? HANDSHAKE_SECONDS;
/** A module line, or any text line before the binary phase, longer than this is refused. */
const MAX_MODULE_LINE = 1024;

/** A name lookup may take this long before it counts as failed (rsync waits on the resolver). */
const LOOKUP_SECONDS = 5;

function bounded<T>(work: Promise<T>, fallback: T): Promise<T> {
  const timeout = new Promise<T>((resolve) => setTimeout(() => resolve(fallback), LOOKUP_SECONDS * 1000).unref());
  return Promise.race([work, timeout]).catch(() => fallback);
}

/** The client's host name as rsync's client_name finds it (getnameinfo), or "UNKNOWN". */
// rsync/clientname.c: client_name
function clientName(addr: string): Promise<string> {
  return bounded(
    lookupService(addr, 0).then((r) => r.hostname),
    UNKNOWN_HOSTNAME,
  );
}

/** The addresses of the host names in a module's host lists, resolved up front (hostAllowed is synchronous). */
async function forwardLookups(module: ModuleConfig): Promise<(name: string) => string[] | null> {
  const names = tokensToResolve(module);
  const found = new Map<string, string[] | null>();
  await Promise.all(
    names.map(async (name) => {
      const addrs = await bounded(lookup(name, { all: true }).then((r) => r.map((a) => a.address)), null);
      found.set(name, addrs);
    }),
  );
  return (name) => found.get(name) ?? null;
}

// rsync/clientserver.c: start_daemon
export async function serveConnection(socket: Socket, ctx: ServeContext): Promise<void> {
  const addr = normalizeClientAddress(socket.remoteAddress ?? '');
  // rsync looks the name up once, before anything is read, when the global section or any module
  // asks for it; a module's own setting counts again when the module is opened.
  const anyReverse = ctx.config.global.reverseLookup || ctx.config.modules.some((m) => m.reverseLookup);
  const looked = anyReverse ? await clientName(addr) : undefined;
  const host = ctx.config.global.reverseLookup && looked ? looked : UNDETERMINED_HOSTNAME;
  const peer: Peer = { host, addr };
  logConnect(ctx.log, peer);
  const io = wrapSocket(socket, `${host} (${addr})`, handshakeSeconds(ctx));
  const reader = new ByteReader(io);
  const writer = new ByteWriter(io);
  const say = async (line: string): Promise<void> => {
    writer.writeLine(line);
    await writer.flush();
  };
  try {
    // 1. [greeting-ours] Our greeting, then the MOTD (read anew for each client, as rsync does).
    writer.writeLine(formatGreeting(PROTOCOL_VERSION));
    const motd = readMotd(ctx.config.global.motdFile);
    if (motd) writer.writeBuf(Buffer.concat([motd, Buffer.from('\n')]));
    await writer.flush();
    // 2. [greeting-theirs] The client's greeting, and the protocol both speak.
    const greetingLine = await reader.readLine(MAX_MODULE_LINE);
    if (greetingLine === null) return;
    const checked = checkClientGreeting(greetingLine.toString('latin1'));
    if ('error' in checked) return await say(checked.error);
    let protocol: number;
    try {
      protocol = negotiateProtocol(PROTOCOL_VERSION, checked.greeting);
    } catch (e) {
      return await say(`@ERROR: ${(e as Error).message}`);
    }
    reader.protocol = protocol;
    writer.protocol = protocol;
    // 3. [module-line] The module, or the listing.
    const moduleLine = await reader.readLine(MAX_MODULE_LINE);
    if (moduleLine === null) return;
    const name = moduleLine.toString('utf8');
    if (name === '' || name === '#list') {
      logModuleList(ctx.log, peer);
      for (const line of formatModuleListing(listedModules(ctx.config), protocol)) writer.writeLine(line);
      await writer.flush();
      return;
    }
    if (name.startsWith('#')) return await say(`@ERROR: Unknown command '${name}'`);
    const module = findModule(ctx.config, name);
    if (!module) {
      logUnknownModule(ctx.log, moduleLine, peer);
      return await say(`@ERROR: Unknown module '${name}'`);
    }
    const modulePeer = moduleNeedsReverseLookup(ctx.config, module) && looked ? { host: looked, addr } : peer;
    await rsyncModule(ctx, { reader, writer, io, peer: modulePeer, protocol, greetingDigests: checked.greeting.digests, module, say });
  } catch (e) {
    if (!(e instanceof RsyncError) || e.exitCode !== EXIT.SOCKETIO) logText(ctx.log, `connection from ${host} (${addr}) ended: ${(e as Error).message}`);
  } finally {
    io.destroy();
  }
}

interface Connection {
  reader: ByteReader;
  writer: ByteWriter;
  io: DaemonSocket;
  peer: Peer;
  protocol: number;
  greetingDigests: string[] | null;
  module: ModuleConfig;
  say: (line: string) => Promise<void>;
}

// rsync/clientserver.c: rsync_module
async function rsyncModule(ctx: ServeContext, c: Connection): Promise<void> {
  const { module, peer } = c;
  // 4. Access: hosts allow / hosts deny.
  const hostname = peer.host === UNDETERMINED_HOSTNAME ? undefined : peer.host;
  if (!hostAllowed(module, peer.addr, hostname, await forwardLookups(module))) {
    const denied = accessDeniedMessages(module, peer.addr, hostname);
    logAccessDenied(ctx.log, module.name, peer);
    return c.say(denied.line);
  }
  logModuleOpen(ctx.log, module.name, peer);
  // 5. The connection limit, before any authentication.
  if (!ctx.slots.claim(module)) {
    logMaxConnections(ctx.log, module.maxConnections);
    return c.say(`@ERROR: max connections (${module.maxConnections}) reached -- try again later`);
  }
  try {
    await openModule(ctx, c);
  } finally {
    ctx.slots.release(module);
  }
}

async function openModule(ctx: ServeContext, c: Connection): Promise<void> {
  const { module, peer, reader, protocol } = c;
  // 6. [auth] Authentication, when the module has `auth users`.
  let user = '';
  let readOnly = module.readOnly;
  if (module.authUsers.length) {
    const digest = chooseDaemonAuthDigest(protocol, c.greetingDigests);
    const challenge = makeChallenge(digest);
    await c.say(formatChallengeLine(challenge));
    const line = await reader.readLine(MAX_AUTH_LINE);
    const answer = line && parseAuthLine(line.toString('latin1'));
    const outcome = answer
      ? await checkAuth(module, { ...answer, challenge, digest, protocol, host: peer.host, addr: peer.addr, asRoot: ctx.asRoot, groupsOf: userGroups })
      : { ok: false as const, reason: 'invalid challenge response', log: [`auth failed on module ${module.name} from ${peer.host} (${peer.addr}): invalid challenge response`] };
    for (const text of outcome.log) logText(ctx.log, text);
    if (!outcome.ok) return c.say(authFailedLine(module.name));
    user = outcome.user;
    if (outcome.readOnly !== undefined) readOnly = outcome.readOnly;
  }
  // 7. The module's path must be there.
  const noPath = missingPathError(module);
  if (noPath) {
    logText(ctx.log, noPath.log);
    return c.say(noPath.line);
  }
  if (!isDirectory(module.path)) {
    logText(ctx.log, `chdir ${module.path} failed: not a directory`);
    return c.say('@ERROR: chdir failed');
  }
  // 8. The transfer runs with the module's uid/gid: in a process of its own when they are not ours
  // (rsync forks per connection and drops its privileges here).
  const ids = moduleIds(module, ctx.asRoot);
  if (ids && 'error' in ids) {
    logText(ctx.log, ids.error);
    return c.say(`@ERROR: ${ids.error}`);
  }
  const session: ModuleSession = { ...c, user, readOnly, log: ctx.log, version: ctx.version, argsSeconds: handshakeSeconds(ctx) };
  if (ids) return runAs(ids, session, ctx.log);
  return runModuleSession(session);
}

function readMotd(path: string | undefined): Buffer | null {
  if (!path) return null;
  try {
    return readFileSync(path);
  } catch {
    return null;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
