// The helper thread of src/sums-helper.ts sumsHelper. It makes the session's Checksummer once, then
// (1) for a block-sums job claims units of blocks from the shared counter until none is left and
// answers with one message; a unit that fails (the basis shrank) stays not done: the caller
// computes it again and meets the same error; (2) for a file being received, hashes its bytes
// from the file as the receiver reports them written, and answers the digest at its end.
import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { createChecksummer, type ChecksumOptions, type FileHasher } from '../../protocol/checksum.js';
import type { ChecksumName } from '../../protocol/compat.js';
import { workSharedSums, type SumsWorkerMessage } from './sums-helper.js';

const data = workerData as { name: ChecksumName; options: ChecksumOptions };
const cs = await createChecksummer(data.name, data.options);
const buf = Buffer.allocUnsafe(4 << 20);
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

parentPort!.on('message', (m: SumsWorkerMessage) => {
  switch (m.kind) {
    case 'sums':
      try {
        workSharedSums(cs, m.job);
      } catch {
        // left to the caller (see above)
      }
      parentPort!.postMessage({ kind: 'sums' });
      return;
    case 'file-start':
      file = { fd: m.fd, pos: 0, hasher: cs.startFile(), failed: false };
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
});
