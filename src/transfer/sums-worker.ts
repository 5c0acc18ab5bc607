// The helper thread of src/sums-helper.ts sumsHelper. Each session that takes it first configures
// the session's Checksummer (a daemon keeps one idle helper for its next connection), then
// (1) for a block-sums job claims units of blocks from the shared counter until none is left and
// answers with one message; a unit that fails (the basis shrank) stays not done: the caller
// computes it again and meets the same error; (2) for a file being received, hashes its bytes
// from the file as the receiver reports them written, and answers the digest at its end.
import { readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { Checksummer, FileHasher } from '../../protocol/checksum.js';
import { createChecksummer } from './checksums.js';
import { workSharedSums, type SumsWorkerMessage } from './sums-helper.js';

/** Read size for hashing a received file: small enough that the hash reads it from the cache. */
const buf = Buffer.allocUnsafe(256 << 10);
let cs: Checksummer | null = null;
let file: { fd: number; pos: number; hasher: FileHasher; failed: boolean } | null = null;

function hashUpTo(upto: number): void {
  if (!file || file.failed) return;
  try {
    while (file.pos < upto) {
      const n = readSync(file.fd, buf, 0, Math.min(buf.length, upto - file.pos), file.pos);
      if (n === 0) throw new Error('short read');
      file.hasher.update(buf.subarray(0, n));
      file.pos += n;
    }
  } catch {
    file.failed = true; // answered as no digest: the receiver hashes the file itself
  }
}

/** Messages are handled in order; configuring is async (the WASM hashes load once). */
let queue: Promise<void> = Promise.resolve();
parentPort!.on('message', (m: SumsWorkerMessage) => {
  // A failure leaves no checksummer: the caller then does the work itself (see above).
  queue = queue.then(() => handle(m)).catch(() => {
    cs = null;
  });
});

async function handle(m: SumsWorkerMessage): Promise<void> {
  switch (m.kind) {
    case 'configure':
      file = null; // whatever an earlier session left unfinished
      cs = null;
      cs = await createChecksummer(m.name, m.options);
      return;
    case 'sums':
      try {
        if (cs) workSharedSums(cs, m.job);
      } catch {
        // left to the caller (see above)
      }
      parentPort!.postMessage({ kind: 'sums' });
      return;
    case 'file-start':
      file = cs ? { fd: m.fd, pos: 0, hasher: cs.startFile(), failed: false } : null;
      return;
    case 'file-upto':
      hashUpTo(m.upto);
      return;
    case 'file-end': {
      hashUpTo(m.upto);
      const digest = file && !file.failed ? file.hasher.digest() : undefined;
      file = null;
      parentPort!.postMessage({ kind: 'digest', ...(digest && { digest }) });
      return;
    }
  }
}
