// `lsyncd serve` as a listener: one TCP server, one straight-line story per connection
// (connection.ts), the counts `max connections` is checked against, and a clean stop. The
// listener never awaits a client: each connection runs on its own and its errors stay in it.
// Counterpart: rsync clientserver.c daemon_main, socket.c start_accept_loop, connection.c
// claim_connection.
import { warmSumsHelper } from '../transfer/sums-helper.js';
import { createServer, type Server, type Socket } from 'node:net';
import type { DaemonConfig } from './config.js';
import { ConnectionSlots } from './slots.js';
import { serveConnection, type ServeContext } from './connection.js';
import type { DaemonLog } from './log.js';
import { logDaemonStart } from './log.js';


export interface DaemonOptions {
  config: DaemonConfig;
  log: DaemonLog;
  /** Overrides the config's `port` (rsync's --port); 0 picks a free port. */
  port?: number;
  /** Overrides the config's `address` (rsync's --address). */
  address?: string;
  /** Our version, for the daemon's log and its "rsync error" lines. */
  version: string;
  /** How long the text phase (greetings to the argument list) may take, in seconds; default 60. */
  handshakeSeconds?: number;
}

/** A running daemon. */
export interface RsyncDaemon {
  /** The port it listens on. */
  readonly port: number;
  readonly address: string;
  /** Stop listening, end every connection, and resolve once all are gone. */
  close(): Promise<void>;
}

/** Listen, and serve every connection as rsync's daemon does. Rejects if the port cannot be had. */
// rsync/clientserver.c: daemon_main
export async function startDaemon(options: DaemonOptions): Promise<RsyncDaemon> {
  const sockets = new Set<Socket>();
  const running = new Set<Promise<void>>();
  const context: ServeContext = {
    config: options.config,
    log: options.log,
    slots: new ConnectionSlots(),
    version: options.version,
    asRoot: process.geteuid?.() === 0,
    ...(options.handshakeSeconds !== undefined && { handshakeSeconds: options.handshakeSeconds }),
  };
  const server: Server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    const served = serveConnection(socket, context)
      .catch((e: unknown) => options.log.line(`connection failed: ${(e as Error).message}`))
      .finally(() => {
        sockets.delete(socket);
        socket.destroy();
        running.delete(served);
      });
    running.add(served);
  });
  const port = options.port ?? options.config.global.port;
  const address = options.address ?? options.config.global.address;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, ...(address && { host: address }), backlog: options.config.global.listenBacklog }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // A failing accept (EMFILE...) is logged; the listener keeps going.
  server.on('error', (e) => options.log.line(`accept failed: ${e.message}`));
  const bound = server.address();
  const actualPort = typeof bound === 'object' && bound ? bound.port : port;
  logDaemonStart(options.log, options.version, actualPort);
  // The block sums' helper thread, started now rather than by the first push's delta.
  warmSumsHelper();
  return {
    port: actualPort,
    address: typeof bound === 'object' && bound ? bound.address : (address ?? ''),
    async close() {
      // Stop listening now; do not wait for the server's own count of connections, which never
      // drops for a socket handed to a connection process (privileges.ts).
      server.close();
      for (const s of sockets) s.destroy();
      await Promise.allSettled([...running]);
    },
  };
}
