// Process-wide memory settings for the commands that hold a big file list (issue 12; figures in
// docs/bench.md, "Peak memory"). Three things made a 200k-file push or pull peak at 105–120 MB
// where the work itself is about 20 MB of packed list and 10 MB of live heap:
//  - V8's young generation grows from 1 MB to 16 MB semi-spaces (48 MB reserved, up to 33 MB
//    resident) as soon as a few MB survive scavenges, which any walk of a big tree does. Growth
//    is held at the starting size: `--semi-space-growth-factor` is the one young-generation flag
//    V8 still reads after start (the size limits are fixed when the heap is set up; node gives
//    no other way to set them from inside the process).
//  - V8 lets the old generation grow to up to 4× what the last full collection found alive before
//    it collects again; the per-file objects of a transfer that live across an await are promoted
//    and die there, so an initial pull's heap swung between 15 and 45 MB. `--heap-growing-percent`
//    (also read after start) holds the step at HEAP_GROWING_PERCENT: more full collections of a
//    small heap (a few ms each).
//  - glibc makes an arena per thread that mallocs concurrently (libuv's pool, V8's workers), each
//    keeping the blocks freed into it; the addon caps them (native/memory.cc).
// Measured on the 200k tree (docs/bench.md): peak RSS −12 to −20 MB, client CPU unchanged within
// noise. `LSYNCD_NO_MEMORY_TUNING=1` leaves V8 and glibc as they are (to compare).
// Only the CLI calls this: a library caller's process is its own to tune. No rsync counterpart.
import { setFlagsFromString } from 'node:v8';
import { limitMallocArenas } from './addon.js';

/** How far the old generation may grow past its live size before the next full collection. */
export const HEAP_GROWING_PERCENT = 30;

/** glibc arenas once tuned: the main one and one for every other thread to share. */
export const MALLOC_ARENAS = 2;

let tuned = false;

/** Apply the settings above once per process; later calls do nothing. */
export function tuneProcessMemory(): void {
  if (tuned) return;
  tuned = true;
  if (process.env['LSYNCD_NO_MEMORY_TUNING']) return;
  applyHeapFlags();
  // Starting a worker thread (the sums helper a pull or the daemon keeps) sets V8's flags anew from
  // node's options, ours included: put them back once it runs (a serve daemon's young generation
  // had grown to 16 MB semi-spaces at its first connection).
  process.on('worker', (worker) => worker.once('online', applyHeapFlags));
  limitMallocArenas(MALLOC_ARENAS);
}

function applyHeapFlags(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
