// The pull's helper thread (protocol/sums.ts SumsHelper): block sums of big bases computed on this
// thread and a worker together, and the whole-file digest of a big received file hashed on the
// worker as it is written. Both threads read the files with pread. A process keeps one idle helper
// thread for its next session (a daemon serves many), so a connection does not wait for a thread
// to start. Counterpart: rsync runs its generator and receiver as two processes; this is our way
// to use a second core.
import { readSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type Checksummer, type ChecksumOptions } from '../../protocol/checksum.js';
import type { ChecksumName } from '../../protocol/compat.js';
import { basisLength, blockLength, weakSum, type SumHead, type SumsHelper } from '../../protocol/sums.js';
import { RsyncError, EXIT } from '../../protocol/errors.js';
import { weakSumArea } from '../../protocol/weak-sum-simd.js';

/** Bytes of basis per unit of work in the shared sums below (whole blocks, at least one). */
const UNIT_BYTES = 1 << 20;

/**
 * The work of one parallel block-sum computation, in shared memory: the sums themselves, a unit
 * counter both threads claim units from (Atomics.add), and a done flag per unit.
 */
export interface SharedSumsJob {
  fd: number;
  head: SumHead;
  unitBlocks: number;
  sum1: Uint32Array;
  sum2: Uint8Array;
  /** [0]: the next unit to claim. */
  ctl: Int32Array;
  /** 1 once unit u is complete. */
  done: Uint8Array;
}

/** Where a thread reads basis bytes to sum them, and their rolling sums. */
interface ReadArea {
  buf: Buffer;
  weak(start: number, length: number): number;
}

/** This thread's read area, kept for its next job. */
let spareArea: ReadArea | null = null;

/** A read area of at least `bytes`: WebAssembly memory summed with SIMD, else a Buffer and weakSum. */
function readArea(bytes: number): ReadArea {
  if (spareArea && spareArea.buf.length >= bytes) return spareArea;
  const simd = weakSumArea(bytes);
  if (simd) return (spareArea = simd);
  const buf = Buffer.allocUnsafe(bytes);
  return (spareArea = { buf, weak: (start, length) => weakSum(buf, start, start + length) });
}

/**
 * Sums of blocks [first, first + n) of the basis open as `fd`, read with pread in large pieces
 * (whole blocks) straight into `sum1`/`sum2` at the blocks' own indexes. Throws RangeError when
 * the file is shorter than the head says.
 */
function sumRange(cs: Checksummer, fd: number, head: SumHead, first: number, n: number, area: ReadArea, sum1: Uint32Array, sum2: Uint8Array): void {
  const { blength, s2length } = head;
  const end = first + n === head.count ? basisLength(head) : (first + n) * blength;
  const buf = area.buf;
  let pos = first * blength;
  let i = first;
  while (pos < end) {
    const want = Math.min(buf.length, end - pos);
    for (let got = 0; got < want; ) {
      const r = readSync(fd, buf, got, want - got, pos + got);
      if (r === 0) throw new RangeError(`basis shrank while reading it (${pos + got} of ${basisLength(head)} bytes)`);
      got += r;
    }
    for (let at = 0; at < want; i++) {
      const len = blockLength(head, i);
      sum1[i] = area.weak(at, len);
      sum2.set(cs.blockSum(buf.subarray(at, at + len)).subarray(0, s2length), i * s2length);
      at += len;
    }
    pos += want;
  }
}

/** Claim units of `job` until none is left, computing each (both threads run this). */
export function workSharedSums(cs: Checksummer, job: SharedSumsJob): void {
  const { head, unitBlocks } = job;
  const area = readArea(unitBlocks * head.blength);
  for (;;) {
    const u = Atomics.add(job.ctl, 0, 1);
    const first = u * unitBlocks;
    if (first >= head.count) return;
    sumRange(cs, job.fd, head, first, Math.min(unitBlocks, head.count - first), area, job.sum1, job.sum2);
    Atomics.store(job.done, u, 1);
  }
}

/** The helper hashes a file being received in steps of at least this many bytes. */
const HASH_STEP = 4 << 20;

/** The messages a sums worker takes (src/sums-worker.ts). */
export type SumsWorkerMessage =
  | { kind: 'configure'; name: ChecksumName; options: ChecksumOptions }
  | { kind: 'sums'; job: SharedSumsJob }
  | { kind: 'file-start'; fd: number }
  | { kind: 'file-upto'; upto: number }
  | { kind: 'file-end'; upto: number };

/** A worker's answers: a sums job done, a file's digest (none: it could not read the file). */
type Reply = { kind: 'sums' } | { kind: 'digest'; digest?: Uint8Array };

/** A helper thread, and the session it works for now (its answers and its death go there). */
interface HelperThread {
  worker: Worker;
  owner: { reply(reply: Reply): void; died(): void } | null;
}

/**
 * A helper thread no session holds, kept (unref'd: it keeps no process alive) for the next
 * session: starting one costs about 150 ms of the second core, most of a big file's block sums.
 */
let idleThread: HelperThread | null = null;

/** Take the idle helper thread, or start one. */
function takeThread(): HelperThread {
  const idle = idleThread;
  if (idle) {
    idleThread = null;
    return idle;
  }
  const thread: HelperThread = { worker: new Worker(new URL('./sums-worker.js', import.meta.url)), owner: null };
  thread.worker.on('message', (reply: Reply) => thread.owner?.reply(reply));
  const died = (): void => {
    if (idleThread === thread) idleThread = null;
    thread.owner?.died();
  };
  thread.worker.on('error', died);
  thread.worker.on('exit', died);
  return thread;
}

/** Keep `thread` as the idle helper (the first one given back), else end it. */
function giveBackThread(thread: HelperThread): Promise<unknown> {
  thread.owner = null;
  if (idleThread) return thread.worker.terminate();
  idleThread = thread;
  thread.worker.unref();
  return Promise.resolve();
}

/**
 * Whether a helper thread pays for itself now: a core that other work does not hold (the
 * one-minute load average below the number of cores). Measured on the 512 MiB delta pull with the
 * two cores held by other work (load 12): without the thread 1.48 s CPU and 75 MB, with it 1.84 s
 * and 90 MB, and slower (its start costs 80-190 ms of CPU, and both threads contend for one core).
 * LSYNCD_SUMS_HELPER=always or =never decides instead (tests, benches). docs/bench.md "The 512 MiB
 * delta pull, round 3".
 */
export function spareCoreForHelper(): boolean {
  const forced = process.env['LSYNCD_SUMS_HELPER'];
  if (forced === 'always') return true;
  if (forced === 'never') return false;
  const cores = availableParallelism();
  return cores >= 2 && loadavg()[0]! < cores;
}

/**
 * Start the idle helper thread ahead of the first session (a daemon does, once it listens), so
 * that session does not wait for a thread to start. No-op with one core or a thread already idle.
 */
export function warmSumsHelper(): void {
  if (idleThread || availableParallelism() < 2) return;
  try {
    void giveBackThread(takeThread());
  } catch {
    // no thread now: the first session starts one (or computes alone)
  }
}

/**
 * A SumsHelper whose worker (src/sums-worker.ts) makes the same Checksummer (`name`,
 * `options`: the session's seeded one). On a one-core machine, without `thread`, or if the
 * worker cannot start, every unit is simply computed on the calling thread (still with the SIMD
 * rolling sums and one reused read area) and there is no file digest to hand off.
 */
export function sumsHelper(name: ChecksumName, options: ChecksumOptions, { thread: useThread = true }: { thread?: boolean } = {}): SumsHelper {
  let thread: HelperThread | null = null;
  let worker: Worker | null = null;
  let broken = !useThread || availableParallelism() < 2;
  // The answers awaited: one sums job and one file digest at most at a time each (the generator
  // and the receiver run side by side). null: the helper died.
  let waitingSums: ((reply: Reply | null) => void) | null = null;
  let waitingDigest: ((reply: Reply | null) => void) | null = null;
  const wake = (reply: Reply | null): void => {
    if (reply === null || reply.kind === 'sums') {
      const w = waitingSums;
      waitingSums = null;
      w?.(reply);
    }
    if (reply === null || reply.kind === 'digest') {
      const w = waitingDigest;
      waitingDigest = null;
      w?.(reply);
    }
    if (!waitingSums && !waitingDigest) worker?.unref();
  };
  const start = (): Worker | null => {
    if (broken) return null;
    if (worker) return worker;
    try {
      thread = takeThread();
      thread.owner = {
        reply: wake,
        died: () => {
          broken = true;
          worker = null;
          thread = null;
          wake(null);
        },
      };
      worker = thread.worker;
      send(worker, { kind: 'configure', name, options });
      return worker;
    } catch {
      broken = true;
      return null;
    }
  };
  const send = (w: Worker, m: SumsWorkerMessage): void => w.postMessage(m);
  return {
    async sums(cs, fd, head) {
      const { count, s2length, blength } = head;
      const unitBlocks = Math.max(1, Math.floor(UNIT_BYTES / blength));
      const units = Math.ceil(count / unitBlocks);
      const job: SharedSumsJob = {
        fd,
        head,
        unitBlocks,
        sum1: new Uint32Array(new SharedArrayBuffer(count * 4)),
        sum2: new Uint8Array(new SharedArrayBuffer(count * s2length)),
        ctl: new Int32Array(new SharedArrayBuffer(4)),
        done: new Uint8Array(new SharedArrayBuffer(units)),
      };
      const w = start();
      const finished = w ? new Promise<unknown>((resolve) => (waitingSums = resolve)) : Promise.resolve(null);
      if (w) {
        w.ref();
        send(w, { kind: 'sums', job });
      }
      try {
        workSharedSums(cs, job);
      } finally {
        await finished; // the helper ends its unit (or died); never leave it reading a closed fd
      }
      // Units a dead helper claimed but did not finish are computed here.
      const area = readArea(unitBlocks * blength);
      for (let u = 0; u < units; u++) {
        if (job.done[u]) continue;
        const first = u * unitBlocks;
        sumRange(cs, fd, head, first, Math.min(unitBlocks, count - first), area, job.sum1, job.sum2);
      }
      if (readSync(fd, area.buf, 0, 1, basisLength(head)) !== 0) {
        throw new RangeError(`basis grew while reading it (more than ${basisLength(head)} bytes)`);
      }
      return { head, sum1: job.sum1, sum2: job.sum2 };
    },
    fileDigest(cs, fd) {
      const w = start();
      if (!w) return null;
      send(w, { kind: 'file-start', fd });
      let posted = 0;
      return {
        advance(upto) {
          if (upto - posted < HASH_STEP || !worker) return;
          posted = upto;
          send(worker, { kind: 'file-upto', upto });
        },
        async digest(length) {
          // The helper stopped, or could not read the file: hash it here, read back.
          if (!worker) return digestOf(cs, fd, length);
          const answer = new Promise<Reply | null>((resolve) => (waitingDigest = resolve));
          worker.ref();
          send(worker, { kind: 'file-end', upto: length });
          const reply = await answer;
          return reply?.kind === 'digest' && reply.digest ? reply.digest : digestOf(cs, fd, length);
        },
      };
    },
    async close() {
      const t = thread;
      broken = true;
      worker = null;
      thread = null;
      if (!t) return;
      // A helper still at work for this session (it failed mid-file or mid-sums) is ended; an idle
      // one is kept for the next session.
      if (waitingSums || waitingDigest) {
        t.owner = null;
        await t.worker.terminate();
      } else {
        await giveBackThread(t);
      }
    },
  };
}

/** The whole-file digest of what `fd` holds, read back (when the helper could not give it). */
function digestOf(cs: Checksummer, fd: number, length: number): Uint8Array {
  const h = cs.startFile();
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let pos = 0; pos < length; ) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, length - pos), pos);
    if (n === 0) throw new RsyncError('ERR_RSYNC_FILEIO', 'temporary file shrank while hashing it', EXIT.FILEIO);
    h.update(buf.subarray(0, n));
    pos += n;
  }
  return h.digest();
}
