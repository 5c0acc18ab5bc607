// Our sender's half of --inplace, --append and --append-verify (issue 13): the same stale
// destination, pushed to with `rsync OPTION` and with ours into a real rsyncd, must end as the same
// tree with the same --stats literal/matched counts and the same per-file byte counts in rsyncd's
// log (%b: what its receiver read), the proof that our matcher keeps behind the receiver's write
// offset as rsync's does (match.c updating_basis_file) and that --append sends only the tail. The
// same sender serves `lsyncd serve`: a stock rsync pulling with each option from ours and from
// rsyncd must get the same trees and counts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rm, writeFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lsyncd, run, type RunResult } from './helpers/cli.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { pseudoRandom, setTimes, T0 } from './helpers/fstree.js';
import { startOptionRig, type OptionRig, daemonUrl, runText, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';

let rig: OptionRig;
let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;


test.before(async () => {
  rig = await startOptionRig('push-inplace', { push: 'rw', src: 'ro' }, (dir) => `log file = ${dir}/daemon.log\ntransfer logging = yes\nlog format = %o %n %b\n`);
  ({ ours, theirs, work } = rig);
});
test.after(async () => {
  await rig?.stop();
});

const OLD = pseudoRandom(300_000, 11);
const ZEROS = Buffer.alloc(200_000);

/** The new versions: each change a different case for a matcher that may not look behind. */
async function source(src: string): Promise<void> {
  await mkdir(join(src, 'sub'), { recursive: true });
  const changed = Buffer.from(OLD);
  changed.fill(0x55, 150_000, 152_000);
  await writeFile(join(src, 'changed.bin'), changed); // one region rewritten: matched in place around it
  await writeFile(join(src, 'cut.bin'), OLD.subarray(20_000)); // the head cut: every block comes from further on
  await writeFile(join(src, 'inserted.bin'), Buffer.concat([pseudoRandom(20_000, 12), OLD])); // blocks now behind: literal
  await writeFile(join(src, 'moved.bin'), Buffer.concat([OLD.subarray(200_000), OLD.subarray(0, 200_000)])); // a tail moved to the front
  await writeFile(join(src, 'zeros.bin'), Buffer.concat([pseudoRandom(100, 13), ZEROS])); // zeros realigned to block boundaries
  await writeFile(join(src, 'grow.log'), 'a line of the log\n'.repeat(4000));
  await writeFile(join(src, 'edited.log'), 'X' + 'a line of the log\n'.repeat(3000)); // the kept part differs
  await writeFile(join(src, 'shrunk.txt'), 'tiny\n');
  await writeFile(join(src, 'sub/new.txt'), 'a new file\n'.repeat(500));
  await setTimes(src);
}

/** The destination before the push: the old versions. */
async function staleDest(dest: string): Promise<void> {
  await mkdir(join(dest, 'sub'), { recursive: true });
  for (const name of ['changed.bin', 'cut.bin', 'inserted.bin', 'moved.bin']) await writeFile(join(dest, name), OLD);
  await writeFile(join(dest, 'zeros.bin'), ZEROS);
  await writeFile(join(dest, 'grow.log'), 'a line of the log\n'.repeat(1500));
  await writeFile(join(dest, 'edited.log'), 'a line of the log\n'.repeat(1500));
  await writeFile(join(dest, 'shrunk.txt'), 'was bigger before\n');
  await setTimes(dest, T0 - 100);
}

const STAT_LABELS = ['Number of regular files transferred', 'Total transferred file size', 'Literal data', 'Matched data'];

function sameStats(ref: RunResult, got: RunResult, what: string): void {
  const line = (r: RunResult, label: string) => r.stdout.toString().split('\n').find((l) => l.startsWith(label + ':'));
  for (const label of STAT_LABELS) {
    assert.ok(line(ref, label), `rsync prints ${label}`);
    assert.is(line(got, label), line(ref, label), `${label} (${what})\n--- rsync:\n${ref.stdout}\n--- ours:\n${got.stdout}`);
  }
}

/** rsyncd's log lines of the connection that pushed to `dir`: name → %b (what its receiver read). */
function byteCounts(log: string, dir: string): Map<string, string> {
  const lines = log.split('\n');
  const start = lines.find((l) => l.endsWith(` to push/${dir}/ from UNDETERMINED (127.0.0.1)`));
  const pid = start && /\[(\d+)\]/.exec(start)![1];
  const counts = new Map<string, string>();
  for (const line of lines) {
    const m = /\[(\d+)\] recv (\S+) (\d+)$/.exec(line);
    if (m && m[1] === pid) counts.set(m[2]!, m[3]!);
  }
  return counts;
}

/** -b implies -O: directory mtimes are left to the clock then, not compared. */
async function assertSameTrees(a: string, b: string, message: string, dirTimes = true): Promise<void> {
  const [want, have] = [await snapshot(a), await snapshot(b)];
  if (!dirTimes) for (const tree of [want, have]) for (const node of tree.values()) if (node.type === 'dir') node.mtimeNs = 0n;
  const diff = diffTrees(want, have);
  assert.equal(diff, [], `${message}\n${diff.slice(0, 20).join('\n')}`);
}

const CASES: string[][] = [['--inplace'], ['--append'], ['--append-verify'], ['--inplace', '-b'], ['--inplace', '--protocol=29'], ['--append', '--protocol=29'], ['--inplace', '-z', '--zc=zlib'], ['--append', '-z', '--zc=zlibx']];

for (const options of CASES) {
  const name = options.join('').replace(/[^a-z0-9]/g, '');

  test(`push ${options.join(' ')}: ours into rsyncd as rsync's push (trees, stats, rsyncd's %b)`, async () => {
    const src = join(work, 'src', name);
    await rm(src, { recursive: true, force: true });
    await source(src);
    const dests = { rsync: `${name}-rsync`, ours: `${name}-ours` };
    for (const d of Object.values(dests)) {
      await rm(join(theirs.dir, 'push', d), { recursive: true, force: true });
      await staleDest(join(theirs.dir, 'push', d));
    }
    const url = (d: string) => daemonUrl(theirs, `push/${d}/`);
    const r = await run('rsync', ['-rlpt', ...options, '--stats', '--no-inc-recursive', src + '/', url(dests.rsync)]);
    const o = await lsyncd(['--once', '--stats', '--timeout', '20', ...options, src + '/', url(dests.ours)]);
    assert.is(r.status, 0, runText(r));
    assert.is(o.status, 0, runText(o));
    sameStats(r, o, options.join(' '));
    await assertSameTrees(join(theirs.dir, 'push', dests.rsync), join(theirs.dir, 'push', dests.ours), `push ${options.join(' ')}`, !options.includes('-b'));
    const log = await readFile(join(theirs.dir, 'daemon.log'), 'utf8');
    const want = byteCounts(log, dests.rsync);
    assert.ok(want.size >= 5, log);
    const got = byteCounts(log, dests.ours);
    if (!options.includes('-z')) {
      assert.equal(Object.fromEntries(got), Object.fromEntries(want), `rsyncd's %b per file (${options.join(' ')})`);
    } else {
      // Compressed, the same tokens; our deflate frames long literal runs in whole frames where
      // rsync cuts one per call: a few bytes fewer, never more (docs/options.md).
      assert.equal([...got.keys()], [...want.keys()]);
      for (const [file, bytes] of want) assert.ok(Number(got.get(file)) <= Number(bytes), `${file}: ours ${got.get(file)}, rsync ${bytes}`);
    }
  });
}

// A pull from `lsyncd serve` is our sender too: against the same pull from rsyncd.
for (const options of [['--inplace'], ['--append'], ['--append-verify'], ['--inplace', '--protocol=29']]) {
  const name = 'pull' + options.join('').replace(/[^a-z0-9]/g, '');
  test(`pull ${options.join(' ')}: stock rsync from lsyncd serve as from rsyncd`, async () => {
    for (const d of [ours, theirs]) {
      await rm(join(d.dir, 'src', name), { recursive: true, force: true });
      await source(join(d.dir, 'src', name));
    }
    const results: RunResult[] = [];
    for (const d of [theirs, ours]) {
      const dest = join(work, name, d === ours ? 'ours' : 'rsyncd');
      await rm(dest, { recursive: true, force: true });
      await staleDest(dest);
      results.push(await run('rsync', ['-rlpt', ...options, '--stats', '--no-inc-recursive', daemonUrl(d, `src/${name}/`), dest + '/']));
    }
    const [t, o] = results as [RunResult, RunResult];
    assert.is(t.status, 0, runText(t));
    assert.is(o.status, 0, runText(o));
    sameStats(t, o, options.join(' '));
    await assertSameTrees(join(work, name, 'rsyncd'), join(work, name, 'ours'), `pull ${options.join(' ')}`);
  });
}

// Our pull below protocol 30: --append is --append-verify on both sides (rsync's compat.c), so our
// receiver hashes the kept part too (else every file fails its checksum and is redone).
const failed = (text: string) => text.split('\n').filter((l) => l.includes('failed verification')).map((l) => /WARNING: (\S+) failed/.exec(l)?.[1]);
test('our pull --append --protocol=29 from rsyncd: as rsync\'s pull (only the changed kept parts redone)', async () => {
  const name = 'ourpull29';
  await rm(join(theirs.dir, 'src', name), { recursive: true, force: true });
  await source(join(theirs.dir, 'src', name));
  const url = daemonUrl(theirs, `src/${name}/`);
  const dests = { rsync: join(work, name, 'rsync'), ours: join(work, name, 'ours') };
  for (const d of Object.values(dests)) await staleDest(d);
  const r = await run('rsync', ['-rlpt', '--append', '--protocol=29', '--stats', url, dests.rsync + '/']);
  const o = await lsyncd(['--once', '-v', '--append', '--protocol=29', '--stats', url, dests.ours + '/']);
  assert.is(r.status, 0, runText(r));
  assert.is(o.status, 0, runText(o));
  // The files whose kept part changed fail and are redone, the others not: the literal and
  // matched counts (redos included) are rsync's. (Ours, as rsync's, names the failures only with -v or -i.)
  assert.equal(failed(o.stderr), ['edited.log', 'inserted.bin', 'zeros.bin']);
  sameStats(r, o, '--append --protocol=29');
  await assertSameTrees(dests.rsync, dests.ours, 'our pull --append --protocol=29');
});

test.run();
