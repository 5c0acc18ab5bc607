// --partial (no partial dir) and a file that fails verification twice: rsync keeps what it built
// as the file ("update retained", the mtime the clock's) where it would discard it without
// --partial. The receiver's basis is changed after its block sums went out and before the data
// comes back (helpers/damaged-basis.ts), so the copied blocks are wrong on both attempts:
// our pull against rsync's pull from rsyncd, and a stock push into lsyncd serve against rsyncd.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, run, type RunResult } from './helpers/cli.js';
import { pseudoRandom, setTime, T0 } from './helpers/fstree.js';
import { runText, startBoth, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';
import { withDamagedBasis } from './helpers/damaged-basis.js';

const ROOT = process.getuid?.() === 0;
const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
${ROOT ? 'uid = root\ngid = root\n' : ''}
[mod]
\tpath = ${dir}/mod
\tread only = no
`;

const SIZE = 1 << 20;
const SOURCE = pseudoRandom(SIZE, 7);
/** The old version: the source with its tail changed (the rest matches block for block). */
const STALE = Buffer.concat([SOURCE.subarray(0, 900_000), pseudoRandom(SIZE - 900_000, 8)]);
const errorLine = (r: RunResult) => r.stderr.split('\n').filter((l) => l.startsWith('ERROR:') && l.includes('failed verification'));

let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;

test.before(async () => {
  ({ ours, theirs } = await startBoth(CONFIG));
  work = await mkdtemp(join(tmpdir(), 'lsyncd-retained-'));
  const src = join(theirs.dir, 'mod', 'src');
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'big.bin'), SOURCE);
  await setTime(join(src, 'big.bin'));
  await mkdir(join(ours.dir, 'mod'), { recursive: true });
});
test.after(async () => {
  await ours.stop();
  await theirs.stop();
  await rm(work, { recursive: true, force: true });
});

/** A destination directory holding the old version, dated before the source. */
async function staleDest(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'big.bin'), STALE);
  await setTime(join(dir, 'big.bin'), T0 - 1000);
}

for (const partial of [true, false]) {
  test(`our pull ${partial ? '--partial' : 'without --partial'}: a file failing verification twice is ${partial ? 'retained' : 'discarded'}, as by rsync's pull`, async () => {
    const results: Record<'rsync' | 'ours', { r: RunResult; rounds: number; dest: string }> = {} as never;
    for (const who of ['rsync', 'ours'] as const) {
      const dest = join(work, `pull-${partial}-${who}`);
      await staleDest(dest);
      const opts = partial ? ['--partial'] : [];
      const got = await withDamagedBasis(theirs.port, 'toClient', join(dest, 'big.bin'), (port) => {
        const url = `rsync://127.0.0.1:${port}/mod/src/big.bin`;
        return who === 'rsync' ? run('rsync', ['-t', ...opts, url, dest + '/']) : run(process.execPath, [CLI, '--once', ...opts, url, dest + '/']);
      });
      results[who] = { ...got, dest };
    }
    const { rsync: t, ours: o } = results;
    assert.is(t.rounds, 2, runText(t.r));
    assert.is(o.rounds, 2, runText(o.r));
    assert.is(t.r.status, 23, runText(t.r));
    assert.is(o.r.status, 23, runText(o.r));
    const want = `ERROR: big.bin failed verification -- update discarded.`;
    assert.equal(errorLine(t.r), [want], runText(t.r));
    assert.equal(errorLine(o.r), [want], runText(o.r));
    const [tBytes, oBytes] = [await readFile(join(t.dest, 'big.bin')), await readFile(join(o.dest, 'big.bin'))];
    if (partial) {
      // What the second attempt built from its damaged basis, dated by the clock, not the source.
      assert.is(tBytes.length, SIZE);
      assert.ok(oBytes.equals(tBytes), 'the retained file is the one rsync retains');
      assert.not.ok(oBytes.equals(SOURCE));
      assert.not.ok(oBytes.subarray(0, 899_000).equals(STALE.subarray(0, 899_000)), 'not the old file');
      for (const dest of [t.dest, o.dest]) assert.is.not(Math.floor((await stat(join(dest, 'big.bin'))).mtimeMs / 1000), T0);
    } else {
      // The old file (damaged in place by the test): nothing replaced it.
      assert.ok(oBytes.equals(tBytes), 'the file is the one rsync leaves');
      assert.ok(oBytes.subarray(900_000).equals(STALE.subarray(900_000)), 'the old tail is still there');
    }
  });
}

test('a stock push --partial into lsyncd serve: a file failing verification twice is retained as by rsyncd', async () => {
  const src = join(theirs.dir, 'mod', 'src');
  const results: Array<{ r: RunResult; rounds: number; file: string }> = [];
  for (const d of [theirs, ours]) {
    const dest = join(d.dir, 'mod', 'pushed');
    await staleDest(dest);
    const file = join(dest, 'big.bin');
    const got = await withDamagedBasis(d.port, 'toDaemon', file, (port) => run('rsync', ['-t', '-i', '--partial', join(src, 'big.bin'), `rsync://127.0.0.1:${port}/mod/pushed/`]));
    results.push({ ...got, file });
  }
  const [t, o] = results as [(typeof results)[0], (typeof results)[0]];
  assert.is(t.rounds, 2, runText(t.r));
  assert.is(o.rounds, 2, runText(o.r));
  assert.is(t.r.status, 23, runText(t.r));
  assert.is(o.r.status, t.r.status, runText(o.r));
  // The client's words (-i: the first attempt's WARNING too), from rsyncd and from us.
  assert.is(o.r.stderr, t.r.stderr, `ours:\n${runText(o.r)}\nrsyncd:\n${runText(t.r)}`);
  assert.is(o.r.stdout.toString(), t.r.stdout.toString());
  assert.equal(errorLine(t.r), ['ERROR: big.bin failed verification -- update discarded.'], runText(t.r));
  assert.ok((await readFile(o.file)).equals(await readFile(t.file)), 'the retained file is the one rsyncd retains');
  assert.is.not(Math.floor((await stat(o.file)).mtimeMs / 1000), T0);
});

test.run();
