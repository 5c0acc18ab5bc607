// The compression suites' tree (test/compress.test.ts, compress-zstd.test.ts): a compressible
// text, a random binary and a small file, with whole-second times; edits that leave most blocks
// matching, so deltas travel; and the --stats counters the suites compare.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { pseudoRandom, setTime, T0, lines } from './fstree.js';
import { snapshot, diffTrees } from './tree.js';
import type { RunResult } from './cli.js';

/** A --stats counter of a run's output ("Literal data", "Total bytes sent", ...). */
export const statCount = (r: RunResult, what: string): number => Number(new RegExp(`${what}: ([\\d,]+)`).exec(r.stdout.toString())![1]!.replace(/,/g, ''));

/**
 * The source tree; `repeat` adds sub/copy.txt, text.txt's first half again (a stream compressor
 * with a session-long window, zstd's, finds it).
 */
export async function makeCompressSource(dir: string, options: { repeat?: boolean } = {}): Promise<void> {
  await mkdir(join(dir, 'sub'), { recursive: true });
  await writeFile(join(dir, 'text.txt'), lines(6000));
  await writeFile(join(dir, 'random.bin'), pseudoRandom(200_000, 5));
  await writeFile(join(dir, 'sub', 'small.txt'), 'a small file\n');
  if (options.repeat) await writeFile(join(dir, 'sub', 'copy.txt'), lines(3000));
  await stampTree(dir, T0);
}

/** Whole-second mtimes everywhere (below protocol 31 nanoseconds do not travel), so a copy equals its source exactly. */
export async function stampTree(dir: string, seconds: number): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) await stampTree(join(dir, e.name), seconds);
    await setTime(join(dir, e.name), seconds);
  }
  await setTime(dir, seconds);
}

/** Lines inserted into text.txt and a run of random.bin overwritten: most blocks still match. */
export async function editCompressSource(dir: string): Promise<void> {
  const t = Buffer.from(await readFile(join(dir, 'text.txt')));
  const edited = Buffer.concat([t.subarray(0, 100_000), Buffer.from('AN INSERTED LINE THAT WAS NOT THERE\n'.repeat(40)), t.subarray(100_000)]);
  await writeFile(join(dir, 'text.txt'), edited);
  const r = Buffer.from(await readFile(join(dir, 'random.bin')));
  r.fill(0x41, 50_000, 50_500);
  await writeFile(join(dir, 'random.bin'), r);
  await stampTree(dir, T0 + 60);
}

/** Two trees equal in every compared attribute, else the first differences as the message. */
export async function assertSameTrees(a: string, b: string, message: string): Promise<void> {
  const diff = diffTrees(await snapshot(a), await snapshot(b));
  assert.equal(diff, [], `${message}\n${diff.slice(0, 20).join('\n')}`);
}
