// A TCP relay between one client and a daemon on 127.0.0.1 that can hold one direction's bytes
// at a point of the session (after the file list, after a batch of block sums), so a test can
// change a file at a moment of the transfer the peers agree on, then let the bytes go on.
import { connect, createServer, type Server, type Socket } from 'node:net';

/** The bytes relayed so far, each way, in all and since the last release. */
export interface RelayCounts {
  fromClient: number;
  fromDaemon: number;
  sinceRelease: { fromClient: number; fromDaemon: number };
  releases: number;
}

export interface GatedRelay {
  port: number;
  /** Resolves when a chunk is held (the next time, after a release). */
  held(): Promise<void>;
  /** The bytes relayed so far (live). */
  counts: RelayCounts;
  /** Let the held bytes go, and the ones after them until `shouldHold` says so again. */
  release(): void;
  close(): Promise<void>;
}

/**
 * Relay to 127.0.0.1:`port`. A chunk going `direction` is held (with all after it that way) when
 * `shouldHold` says so for the counts as they are when it arrives.
 */
export async function gatedRelay(port: number, direction: 'toDaemon' | 'toClient', shouldHold: (c: RelayCounts) => boolean): Promise<GatedRelay> {
  const counts: RelayCounts = { fromClient: 0, fromDaemon: 0, sinceRelease: { fromClient: 0, fromDaemon: 0 }, releases: 0 };
  let holding = false;
  const queue: Buffer[] = [];
  let onHeld: (() => void) | null = null;
  let heldPromise = new Promise<void>((resolve) => (onHeld = resolve));
  let gatedSink: Socket | null = null;
  const sockets: Socket[] = [];
  const server: Server = createServer((client) => {
    const daemon = connect(port, '127.0.0.1');
    sockets.push(client, daemon);
    gatedSink = direction === 'toDaemon' ? daemon : client;
    const pass = (to: Socket, gated: boolean) => (c: Buffer) => {
      if (gated && (holding || shouldHold(counts))) {
        if (!holding) {
          holding = true;
          onHeld?.();
        }
        queue.push(c);
      } else to.write(c);
    };
    const toDaemon = pass(daemon, direction === 'toDaemon');
    const toClient = pass(client, direction === 'toClient');
    client.on('data', (c: Buffer) => {
      toDaemon(c);
      counts.fromClient += c.length;
      counts.sinceRelease.fromClient += c.length;
    });
    daemon.on('data', (c: Buffer) => {
      toClient(c);
      counts.fromDaemon += c.length;
      counts.sinceRelease.fromDaemon += c.length;
    });
    client.on('end', () => daemon.end());
    daemon.on('end', () => client.end());
    client.on('error', () => daemon.destroy());
    daemon.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    held: () => heldPromise,
    counts,
    release() {
      holding = false;
      counts.releases++;
      counts.sinceRelease = { fromClient: 0, fromDaemon: 0 };
      heldPromise = new Promise<void>((resolve) => (onHeld = resolve));
      for (const c of queue.splice(0)) gatedSink?.write(c);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
