// TCP to a daemon, adapted to the protocol library's ByteSource/ByteSink: pull-mode reads
// ('readable' + socket.read()), writes that wait for 'drain', TCP_NODELAY, and the two timeouts of
// rsync: --contimeout (connecting, exit 35) and --timeout (no I/O for that long, exit 30).
import { connect, isIP, type Socket } from 'node:net';
import { inputPending, quickAck } from '../addon.js';
import type { ByteSink, ByteSource } from '../../protocol/io.js';
import { SocketError, TimeoutError, EXIT } from '../../protocol/errors.js';
import { BandwidthLimiter } from './bwlimit.js';

export interface ConnectOptions {
  host: string;
  port: number;
  /** Seconds allowed for the TCP connection; 0 = the OS default. rsync's --contimeout. */
  contimeout?: number;
  /** Seconds without any I/O before giving up; 0 = never. rsync's --timeout. */
  timeout?: number;
  /** -4 / -6: resolve and connect over IPv4 or IPv6 only (rsync's default_af_hint). */
  family?: 4 | 6;
  /** --address: the local address to bind before connecting (rsync's bind_address). */
  localAddress?: string;
  /** --bwlimit in KiB/s (0 or unset: none): our writes are paced as rsync paces them. */
  bwlimit?: number;
}

export interface DaemonSocket extends ByteSource, ByteSink {
  readonly socket: Socket;
  /** Bytes read from / written to the connection so far. */
  readonly bytesRead: number;
  readonly bytesWritten: number;
  /**
   * Set or change the I/O timeout (seconds, 0 = none). `onExpire` makes the error the pending
   * read or write fails with; by default rsync's io timeout (exit 30).
   */
  setIoTimeout(seconds: number, onExpire?: () => Error): void;
  /** Pace our writes to `kibPerSecond` (rsync's --bwlimit; 0: no limit). */
  setBandwidthLimit(kibPerSecond: number): void;
  /** Half-close our side after the last write, then wait for the peer to close. */
  end(): Promise<void>;
  destroy(): void;
}

function describe(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

// rsync/socket.c: open_socket_out (connect with --contimeout) [connect]
export function connectDaemon(options: ConnectOptions): Promise<DaemonSocket> {
  const { host, port } = options;
  const where = describe(host, port);
  // -4/-6 with an address of the other family: refused as getaddrinfo refuses it for rsync.
  const literal = isIP(host);
  if (options.family && literal && literal !== options.family) {
    return Promise.reject(new SocketError(`failed to connect to ${where}: address family for ${host} not supported (-${options.family})`));
  }
  return new Promise((resolve, reject) => {
    const socket = connect({
      host,
      port,
      noDelay: true,
      ...(options.family && { family: options.family }),
      ...(options.localAddress !== undefined && { localAddress: options.localAddress }),
    });
    let timer: NodeJS.Timeout | undefined;
    if (options.contimeout && options.contimeout > 0) {
      timer = setTimeout(() => {
        socket.destroy();
        reject(new TimeoutError(`timed out connecting to ${where} after ${options.contimeout} s (--contimeout)`, EXIT.CONTIMEOUT));
      }, options.contimeout * 1000);
    }
    const onError = (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN' ? `cannot resolve host ${host}` : `${err.message}`;
      reject(new SocketError(`failed to connect to ${where}: ${why}`, { cause: err }));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      const wrapped = wrapSocket(socket, where, options.timeout ?? 0);
      if (options.bwlimit) wrapped.setBandwidthLimit(options.bwlimit);
      resolve(wrapped);
    });
  });
}

/**
 * The OS descriptor of a connected TCP socket, or undefined. Node has no public API for it: this
 * reads the private `_handle.fd` of its TCPWrap, the one place in the code base that does.
 * test/socket-fd.test.ts fails loudly if a Node release moves it (TCP_QUICKACK would then be lost
 * silently, and the ~40 ms delayed-ACK stalls would come back).
 */
export function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** One turn of the event loop with a poll phase in it (two check phases apart). */
function pollOnce(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

/** Pull-mode adapter: one outstanding read at a time, as the protocol reader asks. */
export function wrapSocket(socket: Socket, where: string, timeoutSeconds: number): DaemonSocket {
  socket.setNoDelay(true);
  // After each of our writes, leave delayed-ACK mode (native/quickack.cc): the daemon's next
  // write after one we just read is then not held by its Nagle for our ACK.
  const fd = socketFd(socket);
  const ackNow = fd !== undefined ? () => quickAck(fd) : () => false;
  const peerSpoke = fd !== undefined ? () => socket.readableLength < socket.readableHighWaterMark && inputPending(fd) > 0 : () => false;
  let failure: Error | null = null;
  let ended = false;
  let waiter: (() => void) | null = null;
  let timer: NodeJS.Timeout | undefined;
  let ioTimeout = timeoutSeconds;
  const ioTimeoutError = () =>
    new TimeoutError(`no data from ${where} for ${ioTimeout} s: io timeout (--timeout)`, EXIT.TIMEOUT);
  let expired: () => Error = ioTimeoutError;

  const wake = () => {
    const w = waiter;
    waiter = null;
    w?.();
  };
  // While a write waits for 'drain', keep reading what the peer sends: rsync's peers write while
  // they read, and a peer blocked on its own writes to us may stop reading ours (deadlock).
  const stash: Buffer[] = [];
  let writeBlocked = false;
  const drainIncoming = () => {
    if (!writeBlocked) return;
    for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) stash.push(chunk);
  };
  socket.on('readable', () => {
    drainIncoming();
    wake();
  });
  socket.on('end', () => {
    ended = true;
    wake();
  });
  socket.on('close', () => {
    ended = true;
    wake();
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    failure = new SocketError(`connection to ${where} failed: ${err.message}`, { cause: err });
    wake();
  });

  const fail = (err: Error) => {
    failure ??= err;
    socket.destroy();
    wake();
  };
  // rsync's io timeout: no bytes moving in either direction for that long while we wait on I/O.
  // Reads and writes may be pending at once (full duplex), so one clock serves both.
  let pending = 0;
  let lastActivity = Date.now();
  const touch = () => {
    lastActivity = Date.now();
  };
  const schedule = () => {
    clearTimeout(timer);
    if (ioTimeout <= 0 || pending === 0) return;
    const left = ioTimeout * 1000 - (Date.now() - lastActivity);
    timer = setTimeout(() => {
      if (pending > 0 && Date.now() - lastActivity >= ioTimeout * 1000) fail(expired());
      else schedule();
    }, Math.max(0, left));
  };
  const begin = () => {
    pending++;
    touch();
    schedule();
  };
  const finish = () => {
    pending--;
    touch();
    schedule();
  };
  // Never a 'data' listener: it would switch the socket to flowing mode and bypass read().
  socket.on('readable', touch);
  socket.on('drain', touch);

  let bytesRead = 0;
  let bytesWritten = 0;
  let limiter: BandwidthLimiter | undefined;
  const writeOnce = async (bytes: Uint8Array): Promise<void> => {
    // The daemon spoke while we were busy (no poll since): let node read it before we write. A
    // daemon that refuses and closes resets the connection, and a write into it makes node close
    // the descriptor with the daemon's reason unread (rsync's client polls both ways at once).
    if (!failure && !socket.destroyed && peerSpoke()) await pollOnce();
    if (failure) throw failure;
    if (socket.destroyed || socket.writableEnded) {
      throw new SocketError(`connection to ${where} closed by the daemon while we were still writing`);
    }
    begin();
    bytesWritten += bytes.length;
    try {
      const flowing = socket.write(bytes);
      ackNow();
      if (!flowing) {
        writeBlocked = true;
        drainIncoming();
        await new Promise<void>((resolve, reject) => {
          if (socket.destroyed) {
            writeBlocked = false;
            reject(failure ?? new SocketError(`connection to ${where} closed while writing`));
            return;
          }
          const done = () => {
            socket.off('drain', done);
            socket.off('close', done);
            writeBlocked = false;
            if (failure) reject(failure);
            else resolve();
          };
          socket.on('drain', done);
          socket.on('close', done);
        });
      }
    } finally {
      finish();
    }
  };
  return {
    socket,
    get bytesRead() {
      return bytesRead;
    },
    get bytesWritten() {
      return bytesWritten;
    },
    setIoTimeout(seconds, onExpire = ioTimeoutError) {
      ioTimeout = seconds;
      expired = onExpire;
      schedule();
    },
    async read() {
      begin();
      try {
        for (;;) {
          if (stash.length) {
            const stashed = stash.shift()!;
            bytesRead += stashed.length;
            return stashed;
          }
          // What arrived before a failure is still read first (node keeps it after an error): a
          // daemon that refuses and closes while we write leaves its reason there (EPIPE/ECONNRESET).
          const chunk = socket.read() as Buffer | null;
          if (chunk !== null) {
            bytesRead += chunk.length;
            return chunk;
          }
          if (failure) throw failure;
          if (ended) return null;
          await new Promise<void>((r) => (waiter = r));
        }
      } finally {
        finish();
      }
    },
    async write(bytes) {
      if (!limiter) return writeOnce(bytes);
      // rsync's --bwlimit: pieces of at most writeMax bytes, each paid for before the next.
      for (let at = 0; at < bytes.length; at += limiter.writeMax) {
        const piece = bytes.subarray(at, Math.min(bytes.length, at + limiter.writeMax));
        await writeOnce(piece);
        await limiter.wrote(piece.length);
      }
    },
    idle() {
      return socket.writableLength === 0;
    },
    setBandwidthLimit(kibPerSecond) {
      limiter = kibPerSecond > 0 ? new BandwidthLimiter(kibPerSecond) : undefined;
    },
    async end() {
      clearTimeout(timer);
      if (socket.destroyed) return;
      // [latency-close] Our FIN; like rsync's client we do not wait for the daemon's own close (it is done once
      // it sent its last NDX_DONE), and drop whatever it may still send.
      socket.end();
      socket.resume();
      socket.once('end', () => socket.destroy());
    },
    destroy() {
      clearTimeout(timer);
      socket.destroy();
    },
  };
}

/**
 * The daemon's MSG_IO_TIMEOUT (its module's `timeout`, protocol 31+): use it when it is shorter
 * than ours (`ours` seconds, 0 or undefined: none), as rsync's client does.
 */
// rsync/io.c: read_a_msg (MSG_IO_TIMEOUT)
export function adoptModuleTimeout(socket: DaemonSocket, payload: Buffer, ours: number | undefined): void {
  if (payload.length !== 4) return;
  const seconds = payload.readInt32LE(0);
  if (seconds > 0 && (!ours || seconds < ours)) socket.setIoTimeout(seconds);
}
