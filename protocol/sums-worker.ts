// The helper thread of protocol/sums.ts sumsHelper: the second half of a pull's block sums. It
// makes the session's Checksummer once, then for each job claims units of blocks from the shared
// counter until none is left and answers with one message. A unit that fails (the basis shrank)
// stays not done: the caller computes it again and meets the same error.
import { parentPort, workerData } from 'node:worker_threads';
import { createChecksummer, type ChecksumOptions } from './checksum.js';
import type { ChecksumName } from './compat.js';
import { workSharedSums, type SharedSumsJob } from './sums.js';

const data = workerData as { name: ChecksumName; options: ChecksumOptions };
const cs = await createChecksummer(data.name, data.options);
parentPort!.on('message', (job: SharedSumsJob) => {
  try {
    workSharedSums(cs, job);
  } catch {
    // left to the caller (see above)
  }
  parentPort!.postMessage(0);
});
