// -S/--sparse on our receiving side (issue 13), against rsync: the same files pulled by rsync
// from a real rsyncd and by us, and pushed by a stock rsync into rsyncd and into lsyncd serve,
// must have the same content and the same allocated blocks (st_blocks: the holes rsync's
// write_sparse leaves). Files: holes at the start, inside and at the end, all zeros, zero runs
// just under and over rsync's 1 KiB hole size, and a delta against an old version (matched
// blocks copied from the basis go through the same rules). Also SparseWriter on its own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rm, writeFile, mkdir, readFile, open } from 'node:fs/promises';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, type TestDaemon, type ConfiguredDaemon } from './helpers/daemon.js';
import { lsyncd, run } from './helpers/cli.js';
import { pseudoRandom, setTimes, T0 } from './helpers/fstree.js';
import { startOptionRig, type OptionRig, daemonUrl, runText, type OurDaemon } from './helpers/serve.js';
import { SparseWriter, SPARSE_WRITE_SIZE } from '../src/transfer/sparse-write.js';

let daemon: TestDaemon;
let rig: OptionRig;
let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;


test.before(async () => {
  daemon = await startDaemon({ extraModules: [{ name: 'src', comment: 'pull source', settings: { 'read only': true } }] });
  rig = await startOptionRig('sparse', { push: 'rw' });
  ({ ours, theirs, work } = rig);
});
test.after(async () => {
  await daemon?.stop();
  await rig?.stop();
});

/** Data with zeros where `holes` say (offset, length), the rest pseudo-random (never a zero byte). */
function withHoles(size: number, holes: Array<[number, number]>, seed: number): Buffer {
  const data = pseudoRandom(size, seed);
  for (let i = 0; i < data.length; i++) if (data[i] === 0) data[i] = 1;
  for (const [at, length] of holes) data.fill(0, at, at + length);
  return data;
}

/** The source files (written whole: every block allocated there). */
const FILES: Record<string, Buffer> = {
  'holes.bin': withHoles(600_000, [[0, 65_536], [200_000, 100_000], [550_000, 50_000]], 1),
  'zeros.bin': Buffer.alloc(1_048_576),
  'short-runs.bin': withHoles(200_000, Array.from({ length: 40 }, (_, i) => [i * 5000, SPARSE_WRITE_SIZE - 1] as [number, number]), 2),
  'mid-runs.bin': withHoles(200_000, Array.from({ length: 20 }, (_, i) => [i * 10_000 + 17, 3000 + i * 300] as [number, number]), 3),
  'page-runs.bin': withHoles(300_000, Array.from({ length: 20 }, (_, i) => [i * 15_000 + 100, 9000] as [number, number]), 4),
  'sub/tail.bin': withHoles(100_000, [[10_000, 90_000]], 5),
  'plain.txt': Buffer.from('no zeros here\n'.repeat(500)),
};

async function writeSource(root: string): Promise<void> {
  await mkdir(join(root, 'sub'), { recursive: true });
  for (const [name, data] of Object.entries(FILES)) await writeFile(join(root, name), data);
  await setTimes(root);
}

/** An older version of some files: a delta then copies their matched blocks (zeros among them). */
async function writeStale(root: string): Promise<void> {
  await mkdir(join(root, 'sub'), { recursive: true });
  const holes = Buffer.from(FILES['holes.bin']!);
  holes.fill(0x33, 400_000, 402_000);
  await writeFile(join(root, 'holes.bin'), holes);
  await writeFile(join(root, 'sub/tail.bin'), FILES['sub/tail.bin']!.subarray(0, 60_000));
  await setTimes(root, T0 - 100);
}

/** Every regular file of `root` with its allocated blocks. */
function files(root: string, dir = ''): Map<string, { blocks: number }> {
  const out = new Map<string, { blocks: number }>();
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const name = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) for (const [k, v] of files(root, name)) out.set(k, v);
    else if (e.isFile()) out.set(name, { blocks: statSync(join(root, name)).blocks });
  }
  return out;
}

async function assertSameSparseFiles(want: string, have: string, what: string): Promise<void> {
  const a = files(want);
  const b = files(have);
  assert.equal([...b.keys()].sort(), [...a.keys()].sort(), what);
  for (const [name, { blocks }] of a) {
    const mine = b.get(name)!;
    assert.ok((await readFile(join(have, name))).equals(await readFile(join(want, name))), `${what}: ${name} content`);
    assert.is(mine.blocks, blocks, `${what}: ${name} allocated blocks (rsync ${blocks}, ours ${mine.blocks})`);
  }
}

const PULLS: Array<{ name: string; options: string[]; stale: boolean }> = [
  { name: 'new', options: ['-S'], stale: false },
  { name: 'delta', options: ['-S'], stale: true },
  { name: 'whole', options: ['-S', '-W'], stale: true },
  { name: 'inplace-new', options: ['-S', '--inplace'], stale: false },
  { name: 'inplace-whole', options: ['-S', '--inplace', '-W'], stale: true },
  // The old files rewritten over themselves: the holes inside their old data are punched.
  { name: 'inplace-delta', options: ['-S', '--inplace'], stale: true },
];

for (const { name, options, stale } of PULLS) {
  test(`pull ${options.join(' ')} (${name}): the holes rsync's pull leaves`, async () => {
    const src = join(daemon.modulePath('src'), name);
    await rm(src, { recursive: true, force: true });
    await writeSource(src);
    const ref = join(work, 'pull-ref', name);
    const got = join(work, 'pull-ours', name);
    for (const root of [ref, got]) {
      await rm(root, { recursive: true, force: true });
      await mkdir(root, { recursive: true });
      if (stale) await writeStale(root);
    }
    const url = `rsync://127.0.0.1:${daemon.port}/src/${name}/`;
    const r = await run('rsync', ['-rlpt', ...options, '--no-inc-recursive', url, ref + '/']);
    const o = await lsyncd(['--once', '--timeout', '20', ...options, url, got + '/']);
    assert.is(r.status, 0, runText(r));
    assert.is(o.status, 0, runText(o));
    await assertSameSparseFiles(ref, got, `pull ${options.join(' ')}`);
    // Not a vacuous comparison: the holes are there.
    assert.ok(statSync(join(got, 'zeros.bin')).blocks === 0, 'zeros.bin is one hole');
    assert.ok(statSync(join(got, 'holes.bin')).blocks * 512 < 600_000 - 150_000, 'holes.bin has its holes');
  });
}

test('push -S: a stock rsync into lsyncd serve leaves the holes rsyncd leaves (new files and a delta)', async () => {
  const src = join(work, 'push-src');
  await rm(src, { recursive: true, force: true });
  await writeSource(src);
  for (const stale of [false, true]) {
    const name = stale ? 'delta' : 'new';
    for (const d of [ours, theirs]) {
      const dest = join(d.dir, 'push', name);
      await rm(dest, { recursive: true, force: true });
      await mkdir(dest, { recursive: true });
      if (stale) await writeStale(dest);
    }
    const args = (d: { port: number }) => ['-rlpt', '-S', '--no-inc-recursive', src + '/', daemonUrl(d, `push/${name}/`)];
    const t = await run('rsync', args(theirs));
    const o = await run('rsync', args(ours));
    assert.is(t.status, 0, runText(t));
    assert.is(o.status, 0, runText(o));
    await assertSameSparseFiles(join(theirs.dir, 'push', name), join(ours.dir, 'push', name), `push -S (${name})`);
  }
});

test('push -S --inplace: a stock rsync into lsyncd serve punches the holes rsyncd punches into the old files', async () => {
  const src = join(work, 'push-src-inplace');
  await rm(src, { recursive: true, force: true });
  await writeSource(src);
  for (const d of [ours, theirs]) {
    const dest = join(d.dir, 'push', 'inplace');
    await rm(dest, { recursive: true, force: true });
    await mkdir(dest, { recursive: true });
    await writeStale(dest);
  }
  const args = (d: { port: number }) => ['-rlpt', '-S', '--inplace', '--no-inc-recursive', src + '/', daemonUrl(d, 'push/inplace/')];
  const t = await run('rsync', args(theirs));
  const o = await run('rsync', args(ours));
  assert.is(t.status, 0, runText(t));
  assert.is(o.status, 0, runText(o));
  await assertSameSparseFiles(join(theirs.dir, 'push', 'inplace'), join(ours.dir, 'push', 'inplace'), 'push -S --inplace');
  // Not vacuous: the old holes.bin was written whole; its holes are punched now.
  assert.ok(statSync(join(ours.dir, 'push', 'inplace', 'holes.bin')).blocks * 512 < 600_000 - 150_000, 'holes.bin has its holes');
});

test('SparseWriter: zeros held back across writes, runs under 1 KiB written, a final hole by the length', async () => {
  const path = join(work, 'writer.bin');
  const handle = await open(path, 'w+');
  try {
    const w = new SparseWriter(handle.fd);
    const a = withHoles(8192, [[4000, 4192]], 9); // ends in zeros: held back
    const b = withHoles(8192, [[0, 8192]], 9); // all zeros: joins the run
    const c = withHoles(8192, [[0, 100], [5000, 500]], 9); // a short run inside is written
    for (const part of [a, b, c, Buffer.alloc(20_000)]) w.write(part);
    assert.is(w.length, 8192 * 3 + 20_000);
    assert.is(w.end(), 8192 * 3 + 20_000);
    const back = await readFile(path);
    assert.ok(back.equals(Buffer.concat([a, b, c, Buffer.alloc(20_000)])));
    // 4000 bytes of data, the hole, 8092 bytes of data, the final hole: 1 + 2 or 3 pages, never all 11.
    assert.ok(statSync(path).blocks * 512 <= 4 * 4096, `blocks ${statSync(path).blocks}`);
  } finally {
    await handle.close();
  }
});

test.run();
