// Opening a daemon session over TCP: connect, greet, pick the module (or list modules),
// authenticate. The session is then ready for the argument list and the setup phase.
import { ByteReader, ByteWriter } from '../../protocol/io.js';
import { exchangeGreetings, requestModule, PROTOCOL_VERSION, type DaemonHello } from '../../protocol/daemon.js';
import { NotADaemonError, TimeoutError, EXIT } from '../../protocol/errors.js';
import { connectDaemon, type DaemonSocket } from './socket.js';

/** Seconds we wait for the daemon's text phase when neither --contimeout nor --timeout is set. */
export const DEFAULT_STARTUP_SECONDS = 30;

export interface SessionOptions {
  host: string;
  port: number;
  user?: string;
  /** Force a lower protocol, as rsync's --protocol. */
  protocol?: number;
  /** rsync's --contimeout, seconds. Also bounds the wait for the daemon's greeting. */
  contimeout?: number;
  /** rsync's --timeout, seconds of no I/O. */
  timeout?: number;
  /** -4 / -6: IPv4 or IPv6 only. */
  family?: 4 | 6;
  /** --address: the local address to bind before connecting. */
  localAddress?: string;
  /** --bwlimit in KiB/s: our writes are paced (the daemon is told too, in the argument list). */
  bwlimit?: number;
  /** Bound on the text phase when neither timeout is set (seconds). */
  startupSeconds?: number;
  password?: () => Promise<Uint8Array | null>;
  /** MOTD (and listing) lines, raw. */
  onLine?: (line: Buffer) => void;
}

export interface DaemonSession {
  socket: DaemonSocket;
  reader: ByteReader;
  writer: ByteWriter;
  hello: DaemonHello;
  /** Close politely (half-close, wait for the daemon's close). */
  close(): Promise<void>;
}

function where(options: SessionOptions): string {
  return options.host.includes(':') ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
}

/** Until the daemon's startup line, a silent peer must not hang us: bound the wait. */
function boundStartup(socket: DaemonSocket, options: SessionOptions): void {
  const at = where(options);
  if (options.contimeout) {
    socket.setIoTimeout(
      options.contimeout,
      () => new TimeoutError(`${at} sent no rsync greeting within ${options.contimeout} s (--contimeout)`, EXIT.CONTIMEOUT),
    );
  } else if (options.timeout) {
    socket.setIoTimeout(
      options.timeout,
      () => new TimeoutError(`no data from ${at} for ${options.timeout} s during the daemon greeting (--timeout)`, EXIT.TIMEOUT),
    );
  } else {
    const seconds = options.startupSeconds ?? DEFAULT_STARTUP_SECONDS;
    socket.setIoTimeout(
      seconds,
      () => new NotADaemonError(`${at} sent no rsync greeting within ${seconds} s: is it an rsync daemon?`),
    );
  }
}

async function open(options: SessionOptions, module: string): Promise<{ session: DaemonSession; outcome: 'ok' | 'exit' }> {
  const socket = await connectDaemon(options);
  try {
    const reader = new ByteReader(socket);
    const writer = new ByteWriter(socket);
    boundStartup(socket, options);
    const hello = await exchangeGreetings(reader, writer, options.protocol ?? PROTOCOL_VERSION);
    const outcome = await requestModule(reader, writer, hello, {
      module,
      ...(options.user !== undefined && { user: options.user }),
      ...(options.password && { password: options.password }),
      ...(options.onLine && { onLine: options.onLine }),
    });
    socket.setIoTimeout(options.timeout ?? 0);
    const session: DaemonSession = { socket, reader, writer, hello, close: () => socket.end() };
    return { session, outcome };
  } catch (e) {
    socket.destroy();
    throw e;
  }
}

/** Open a module: after this the daemon waits for the argument list. */
// rsync/clientserver.c: start_socket_client + start_inband_exchange
export async function openModule(options: SessionOptions, module: string): Promise<DaemonSession> {
  if (!module) throw new Error('openModule needs a module name');
  const { session, outcome } = await open(options, module);
  if (outcome !== 'ok') {
    session.socket.destroy();
    throw new NotADaemonError(`the daemon ended the session instead of opening module ${module}`);
  }
  return session;
}

/** The daemon's module listing: every line it sends (MOTD first), raw, in order. */
export async function listModules(options: SessionOptions): Promise<Buffer[]> {
  const lines: Buffer[] = [];
  const { session, outcome } = await open({ ...options, onLine: (line) => lines.push(line) }, '');
  session.socket.destroy();
  if (outcome !== 'exit') throw new NotADaemonError('the daemon answered a module listing request with @RSYNCD: OK');
  return lines;
}

/**
 * Separate the MOTD from the listing lines. The daemon ends its MOTD with an empty line and module
 * lines are never empty, so everything up to the last empty line is MOTD. (rsync itself cannot
 * tell them apart and hides both with --no-motd; a MOTD file without a final newline defeats this.)
 */
export function splitMotd(lines: Buffer[]): { motd: Buffer[]; modules: Buffer[] } {
  let last = -1;
  lines.forEach((line, i) => {
    if (line.length === 0) last = i;
  });
  return { motd: lines.slice(0, last + 1), modules: lines.slice(last + 1) };
}
