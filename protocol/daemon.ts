// The daemon's text phase (docs/protocol.md [greeting], [module], [auth]): greetings and protocol
// negotiation, the module line, MOTD and listing lines, `@ERROR`, `@RSYNCD: EXIT`/`OK`, and the
// AUTHREQD challenge/response. Counterpart: rsync clientserver.c exchange_protocols,
// start_inband_exchange; compat.c output_daemon_greeting, negotiate_daemon_auth; authenticate.c.
import { DaemonRefusalError, NotADaemonError, ProtocolError, EXIT } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';

/** The newest protocol we speak (rsync 3.4+). 32 is wire-identical to 31. */
export const PROTOCOL_VERSION = 32;
/** The oldest protocol we speak (rsync 2.6.0). */
export const MIN_PROTOCOL_VERSION = 27;

/** Daemon-auth digests we implement, strongest first: upstream's own order. */
export const AUTH_DIGESTS = ['sha512', 'sha256', 'sha1', 'md5', 'md4'] as const;
export type AuthDigest = (typeof AUTH_DIGESTS)[number] | 'md4old';

/** Most lines we accept between our module line and `@RSYNCD: OK`/`EXIT` (MOTD + listing). */
export const MAX_INFO_LINES = 10_000;

const PREFIX = '@RSYNCD: ';

export interface Greeting {
  protocol: number;
  subprotocol: number;
  /** The digest names after the version, or null when the peer sent none. */
  digests: string[] | null;
}

/** Our greeting line. Below protocol 30 we greet as the clients of that era did: no digest list. */
// rsync/compat.c: output_daemon_greeting [greeting-ours]
export function formatGreeting(protocol: number): string {
  return protocol >= 30 ? `${PREFIX}${protocol}.0 ${AUTH_DIGESTS.join(' ')}` : `${PREFIX}${protocol}.0`;
}

/** Parse the daemon's greeting line. A line that is not a greeting means this is not a daemon. */
// rsync/clientserver.c: exchange_protocols (parsing half) [greeting-theirs]
export function parseGreeting(line: string): Greeting {
  const m = /^@RSYNCD: (\d+)(?:\.(\d+))?/.exec(line);
  if (!m) throw new NotADaemonError(`server sent "${printable(line)}" rather than an rsync greeting`);
  const protocol = Number(m[1]);
  const hasSub = m[2] !== undefined;
  if (!hasSub && protocol >= 30) {
    throw new ProtocolError(`the server omitted the subprotocol value: ${printable(line)}`, { exitCode: EXIT.STARTCLIENT });
  }
  const space = line.indexOf(' ', PREFIX.length);
  const digests = space === -1 ? null : line.slice(space + 1).split(' ').filter(Boolean);
  if (digests === null && protocol > 31) {
    throw new ProtocolError(`the server omitted the digest name list: ${printable(line)}`, { exitCode: EXIT.STARTCLIENT });
  }
  return { protocol, subprotocol: hasSub ? Number(m[2]) : 0, digests };
}

/**
 * The daemon's reading of a client's greeting line: the greeting, or the `@ERROR` line rsync's
 * daemon answers a bad one with (its own texts, as a stock client shows them to its user).
 */
// rsync/clientserver.c: exchange_protocols (the daemon's parsing half) [greeting-theirs]
export function checkClientGreeting(line: string): { greeting: Greeting } | { error: string } {
  const m = /^@RSYNCD: (\d+)(?:\.(\d+))?/.exec(line);
  if (!m) return { error: '@ERROR: protocol startup error' };
  const protocol = Number(m[1]);
  const hasSub = m[2] !== undefined;
  if (!hasSub && protocol >= 30) return { error: `@ERROR: your client omitted the subprotocol value: ${line}` };
  const space = line.indexOf(' ', PREFIX.length);
  const digests = space === -1 ? null : line.slice(space + 1).split(' ').filter(Boolean);
  if (digests === null && protocol > 31) return { error: `@ERROR: your client omitted the digest name list: ${line}` };
  return { greeting: { protocol, subprotocol: hasSub ? Number(m[2]) : 0, digests } };
}

/** The daemon's answer to an empty module line or `#list`: one line per listable module, then EXIT. */
// rsync/clientserver.c: send_listing [module-listing]
export function formatModuleListing(modules: readonly { name: string; comment: string }[], protocol: number): string[] {
  const lines = modules.map((m) => `${m.name.padEnd(15)}\t${m.comment}`);
  if (protocol >= 25) lines.push(`${PREFIX}EXIT`);
  return lines;
}

/** The protocol both sides speak: the lower one, minus one for a peer's pre-release subprotocol. */
// rsync/clientserver.c: exchange_protocols (negotiation half) [greeting-negotiate]
export function negotiateProtocol(ours: number, theirs: Greeting): number {
  let protocol = ours;
  if (ours > theirs.protocol) {
    protocol = theirs.protocol;
    if (theirs.subprotocol) protocol--;
  } else if (ours === theirs.protocol && theirs.subprotocol !== 0) {
    protocol--;
  }
  if (protocol < MIN_PROTOCOL_VERSION) {
    throw new ProtocolError(
      `the daemon speaks protocol ${theirs.protocol}; we support ${MIN_PROTOCOL_VERSION} to ${PROTOCOL_VERSION} (rsync 2.6.0 and later)`,
      { exitCode: EXIT.PROTOCOL, code: 'ERR_RSYNC_PROTOCOL_VERSION' },
    );
  }
  return protocol;
}

/**
 * The digest both sides will use for the challenge response. When both greetings carry a list,
 * the first of ours the daemon offers (our order is upstream's, so old and new daemons agree);
 * when either side sent none, the implied md5 (protocol >= 30) or the seeded MD4 (below 30).
 */
// rsync/compat.c: negotiate_daemon_auth [auth-digest]
export function chooseAuthDigest(protocol: number, daemonDigests: string[] | null, weSentList: boolean): AuthDigest {
  if (!daemonDigests || !weSentList) return protocol >= 30 ? 'md5' : 'md4old';
  const offered = new Set(daemonDigests);
  const pick = AUTH_DIGESTS.find((d) => offered.has(d));
  if (!pick) {
    throw new ProtocolError(`the daemon offers no auth digest we support: ${daemonDigests.join(' ')}`, {
      exitCode: EXIT.UNSUPPORTED,
    });
  }
  return pick;
}

/**
 * The daemon's side of the same choice: among the digests the client's greeting listed, the one
 * we prefer most (our list is upstream's, so both sides land on the same one); without a client
 * list, md5 (protocol >= 30) or the seeded MD4 (below 30). No digest in common is the `@ERROR`
 * rsync sends (the error's message is that line), exit 4.
 */
// rsync/compat.c: negotiate_daemon_auth (am_client = 0), parse_negotiate_str [auth-digest]
export function chooseDaemonAuthDigest(protocol: number, clientDigests: string[] | null): AuthDigest {
  if (!clientDigests) return protocol >= 30 ? 'md5' : 'md4old';
  const offered = new Set(clientDigests);
  const pick = AUTH_DIGESTS.find((d) => offered.has(d));
  if (!pick) {
    throw new ProtocolError(`@ERROR: your client does not support one of our daemon-auth checksums: ${AUTH_DIGESTS.join(' ')}`, {
      exitCode: EXIT.UNSUPPORTED,
      code: 'ERR_RSYNC_AUTH_DIGEST',
    });
  }
  return pick;
}

/** hash-wasm's build of MD4 alone (a path the package has no types for: typed where it is used). */
const MD4_BUILD: string = 'hash-wasm/dist/md4.umd.min.js';

/** base64 without `=` padding, as rsync's base64_encode(pad = 0). */
function base64NoPad(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64').replace(/=+$/, '');
}

/** The response to an AUTHREQD challenge: base64(DIGEST(password ++ challenge)), unpadded. */
// rsync/authenticate.c: generate_hash [auth-response]
export async function authResponse(digest: AuthDigest, password: Uint8Array, challenge: string): Promise<string> {
  const input = Buffer.concat([password, Buffer.from(challenge, 'latin1')]);
  // hash-wasm and node:crypto are loaded on use: every CLI start (--version) would pay for them.
  // MD4 from hash-wasm's build of it alone (the package index carries every algorithm: ~100 ms more).
  const md4 = async (data: Uint8Array) => ((await import(MD4_BUILD)) as { default: { md4(data: Uint8Array): Promise<string> } }).default.md4(data);
  switch (digest) {
    case 'md4old':
      // The seeded MD4 sum of protocols < 30 begins with the 4-byte seed, which is 0 here.
      return base64NoPad(Buffer.from(await md4(Buffer.concat([Buffer.alloc(4), input])), 'hex'));
    case 'md4':
      return base64NoPad(Buffer.from(await md4(input), 'hex'));
    default: {
      const { createHash } = await import('node:crypto');
      return base64NoPad(createHash(digest).update(input).digest());
    }
  }
}

/** What the caller knows about the daemon after the greetings. */
export interface DaemonHello {
  /** The protocol both sides now speak. */
  protocol: number;
  greeting: Greeting;
  /** True when our greeting carried a digest list. */
  sentDigestList: boolean;
}

/**
 * Exchange greetings: ours first (as rsync does: a non-daemon then shows itself by what it
 * answers), then the daemon's, which must be its first line.
 */
// rsync/clientserver.c: exchange_protocols
export async function exchangeGreetings(reader: ByteReader, writer: ByteWriter, protocol = PROTOCOL_VERSION): Promise<DaemonHello> {
  if (protocol < MIN_PROTOCOL_VERSION || protocol > PROTOCOL_VERSION) {
    throw new ProtocolError(`protocol ${protocol} is outside ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}`, {
      exitCode: EXIT.SYNTAX,
    });
  }
  writer.writeLine(formatGreeting(protocol));
  await writer.flush();
  let line: Buffer | null;
  try {
    line = await reader.readLine();
  } catch (e) {
    if (e instanceof ProtocolError) {
      throw new NotADaemonError(`server sent something other than an rsync greeting (${e.message})`, { cause: e });
    }
    throw e;
  }
  if (line === null) throw new NotADaemonError('the server closed the connection without sending an rsync greeting');
  const greeting = parseGreeting(line.toString('latin1'));
  const negotiated = negotiateProtocol(protocol, greeting);
  reader.protocol = negotiated;
  writer.protocol = negotiated;
  return { protocol: negotiated, greeting, sentDigestList: protocol >= 30 };
}

export interface ModuleRequest {
  /** The module to open, or '' to ask for the module listing. */
  module: string;
  /** User name for AUTHREQD (rsync falls back to "nobody"). */
  user?: string;
  /** Called only when the daemon asks for authentication. */
  password?: () => Promise<Uint8Array | null>;
  /** Every MOTD/listing line, raw, in order. */
  onLine?: (line: Buffer) => void;
}

/** How the daemon ended the text phase. */
export type ModuleOutcome = 'ok' | 'exit';

/**
 * Send the module line and read until `@RSYNCD: OK` (module open, ready for the argument list),
 * `@RSYNCD: EXIT` (listing finished) or `@ERROR` (refused: the daemon's line, verbatim).
 */
// rsync/clientserver.c: start_inband_exchange (module line and reply loop) [module-line] [module-reply] [module-listing]
export async function requestModule(
  reader: ByteReader,
  writer: ByteWriter,
  hello: DaemonHello,
  request: ModuleRequest,
): Promise<ModuleOutcome> {
  if (/[\n\r\0]/.test(request.module)) throw new ProtocolError('module name contains a line break or NUL', { exitCode: EXIT.SYNTAX });
  writer.writeLine(request.module);
  await writer.flush();
  for (let lines = 0; lines < MAX_INFO_LINES; lines++) {
    const raw = await reader.readLine();
    if (raw === null) throw new NotADaemonError("the daemon closed the connection before its startup line (@RSYNCD: OK)");
    const line = raw.toString('latin1');
    if (line.startsWith(`${PREFIX}AUTHREQD `)) {
      const challenge = line.slice(`${PREFIX}AUTHREQD `.length);
      await sendAuthResponse(writer, hello, request, challenge);
      continue;
    }
    if (line === `${PREFIX}OK`) return 'ok';
    if (line === `${PREFIX}EXIT`) return 'exit';
    if (line.startsWith('@ERROR')) throw new DaemonRefusalError(raw.toString('utf8'));
    request.onLine?.(raw);
  }
  throw new ProtocolError(`the daemon sent more than ${MAX_INFO_LINES} lines before its startup line`, {
    exitCode: EXIT.STARTCLIENT,
  });
}

// rsync/authenticate.c: auth_client [auth-response]
async function sendAuthResponse(writer: ByteWriter, hello: DaemonHello, request: ModuleRequest, challenge: string): Promise<void> {
  if (!/^[A-Za-z0-9+/]{1,128}$/.test(challenge)) {
    throw new ProtocolError(`malformed auth challenge from the daemon`, { exitCode: EXIT.STARTCLIENT });
  }
  const user = request.user || 'nobody';
  if (/[\s\0]/.test(user)) throw new ProtocolError(`user name "${user}" contains white space`, { exitCode: EXIT.SYNTAX });
  const digest = chooseAuthDigest(hello.protocol, hello.greeting.digests, hello.sentDigestList);
  const password = (await request.password?.()) ?? new Uint8Array(0);
  writer.writeLine(`${user} ${await authResponse(digest, password, challenge)}`);
  await writer.flush();
}

/** Show a peer's line in a message without control bytes. */
function printable(text: string): string {
  const cut = text.length > 200 ? text.slice(0, 200) + '…' : text;
  return cut.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
