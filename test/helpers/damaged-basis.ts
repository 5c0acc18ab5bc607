// A file that fails verification on demand (partial-retained, pull-verification-warning): the
// receiver's basis is damaged after its block sums went out and before the data comes back (a
// relay holds the data meanwhile), so the blocks the sender matched are wrong on each attempt.
import { open } from 'node:fs/promises';
import type { RunResult } from './cli.js';
import { gatedRelay } from './gated-relay.js';

/** Where each attempt's basis is damaged: inside blocks the sender matches on that attempt (a 1 MiB file). */
const DAMAGE: Array<[number, number]> = [
  [0, 0xee],
  [500_000, 0xdd],
];

/** Bytes written over the basis in place (its length kept). */
async function damage(path: string, round: number): Promise<void> {
  const [at, byte] = DAMAGE[Math.min(round, DAMAGE.length - 1)]!;
  const f = await open(path, 'r+');
  try {
    await f.write(Buffer.alloc(4096, byte), 0, 4096, at);
  } finally {
    await f.close();
  }
}

/**
 * Run `start(port)` through a relay to `daemonPort` that holds the data going `direction` once the
 * other side's block sums went out; the basis at `basis` is damaged while it waits, each round.
 */
export async function withDamagedBasis(daemonPort: number, direction: 'toDaemon' | 'toClient', basis: string, start: (port: number) => Promise<RunResult>): Promise<{ r: RunResult; rounds: number }> {
  const sumsSent = (c: { sinceRelease: { fromClient: number; fromDaemon: number } }) =>
    (direction === 'toClient' ? c.sinceRelease.fromClient : c.sinceRelease.fromDaemon) >= 4096;
  const relay = await gatedRelay(daemonPort, direction, sumsSent);
  try {
    const done = start(relay.port);
    let rounds = 0;
    for (;;) {
      const next = await Promise.race([relay.held().then(() => 'held' as const), done.then(() => 'done' as const)]);
      if (next === 'done') break;
      await damage(basis, rounds++);
      relay.release();
    }
    return { r: await done, rounds };
  } finally {
    await relay.close();
  }
}
