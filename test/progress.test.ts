// --progress, --info=progress2, -h and -q of `--once` (issue 11, visibility), against what rsync
// prints for the same transfer with its stdout to a pipe (updates separated by \r, as on a
// terminal); and the progress line's timing and figures on a clock we drive (rsync progress.c).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, findRsync, type TestDaemon } from './helpers/daemon.js';
import { lsyncd, run } from './helpers/cli.js';
import { pseudoRandom, setTimes } from './helpers/fstree.js';
import { TransferProgress } from '../src/transfer/progress.js';

let daemon: TestDaemon;
let work: string;
let src: string;

test.before(async () => {
  daemon = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'lsyncd-progress-'));
  src = join(work, 'src');
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'big'), pseudoRandom(8_000_000, 5));
  await writeFile(join(src, 'small'), 'hi\n');
  await writeFile(join(src, 'sub/a'), 'x\n');
  await setTimes(src);
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

const url = (path: string) => `rsync://127.0.0.1:${daemon.port}/push/${path}`;

/**
 * Output with what depends on speed made comparable: each progress line's rate and time become
 * placeholders, and a file's updates before its last line (how many depends on how fast the
 * data went, their offsets on the sender's chunk size) become one `<updates>`.
 */
function normalized(out: Buffer): string {
  return out
    .toString()
    .replace(/ +[\d.]+[kMG]B\/s +(\d+:\d\d:\d\d|\?\?:\?\?:\?\?)/g, ' <rate> <time>')
    .replace(/(\r +[\d,.]+[KMGTP]? +\d+% <rate> <time>  (?=\r))+/g, '\r<updates>');
}

test('--progress: names, updates with \\r, the last line with xfr#/to-chk, as rsync prints them (push)', async () => {
  const ours = await lsyncd(['--once', '--progress', `${src}/`, url('p-ours/')]);
  const theirs = await run(findRsync(), ['-rlpt', '--delete', '--no-inc-recursive', '--progress', `${src}/`, url('p-rsync/')]);
  assert.is(ours.status, 0, ours.stderr);
  assert.is(theirs.status, 0, theirs.stderr);
  // Before this work the line came once, after the file, in another format.
  assert.match(ours.stdout.toString(), /\r +\d[\d,]* +\d+% +[\d.]+[kMG]B\/s +\d+:\d\d:\d\d  \r +8,000,000 100% /);
  assert.is(normalized(ours.stdout), normalized(theirs.stdout));
});

test('--progress: a pull shows each file as rsync does', async () => {
  const ours = await lsyncd(['--once', '--progress', url('p-ours/'), join(work, 'pull-ours')]);
  const theirs = await run(findRsync(), ['-rlpt', '--no-inc-recursive', '--progress', url('p-ours/'), join(work, 'pull-rsync')]);
  assert.is(ours.status, 0, ours.stderr);
  assert.is(theirs.status, 0, theirs.stderr);
  assert.is(normalized(ours.stdout).replace('pull-ours', 'DEST'), normalized(theirs.stdout).replace('pull-rsync', 'DEST'));
});

test('--info=progress2 -h: one line for the whole transfer, sizes in units, as rsync prints it', async () => {
  const ours = await lsyncd(['--once', '--info=progress2', '-h', `${src}/`, url('p2-ours/')]);
  const theirs = await run(findRsync(), ['-rlpt', '--delete', '--no-inc-recursive', '--info=progress2', '-h', `${src}/`, url('p2-rsync/')]);
  assert.is(ours.status, 0, ours.stderr);
  assert.is(theirs.status, 0, theirs.stderr);
  assert.match(ours.stdout.toString(), /8\.00M 100% .*\(xfr#3, to-chk=0\/5\)\n$/);
  assert.is(normalized(ours.stdout), normalized(theirs.stdout));
});

test('-q: nothing but errors, even with -v and --progress (as rsync)', async () => {
  await writeFile(join(src, 'small'), 'changed\n');
  const ours = await lsyncd(['--once', '-q', '-v', '--progress', '--stats', `${src}/`, url('q-ours/')]);
  const theirs = await run(findRsync(), ['-rlpt', '--delete', '-q', '-v', '--progress', '--stats', `${src}/`, url('q-rsync/')]);
  assert.is(ours.status, 0, ours.stderr);
  assert.is(ours.stdout.toString(), theirs.stdout.toString());
  assert.is(ours.stdout.length, 0);
  // An error still shows.
  const failed = await lsyncd(['--once', '-q', `${src}/`, `rsync://127.0.0.1:${daemon.port}/no-such-module/`]);
  assert.is(failed.status, 5);
  assert.match(failed.stderr, /no-such-module/);
});

test('the progress line on a driven clock: first update at once, then at most once a second, rates and times as rsync computes them', () => {
  let now = 10_000;
  let text = '';
  const p = new TransferProgress({ level: 1, humanReadable: 1, write: (t) => (text += t), now: () => now });
  p.fileList(2, 10_000_000);
  p.fileStarted(1, 10_000_000);
  p.advance(1_000_000, 10_000_000); // the first: shown, rate 0 (no history yet)
  now += 500;
  p.advance(1_500_000, 10_000_000); // within the second: not shown
  now += 500;
  p.advance(2_048_000, 10_000_000); // (2,048,000 - 1,000,000) B over 1 s = 1023.44 kB/s; 7,952,000 B left = 7 s
  assert.ok(p.needsNewline);
  now += 3000;
  p.fileDone(10_000_000); // the whole file over 4 s: (10,000,000 - 1,000,000) / 4 / 1024 = 2197.27 kB/s = 2.15 MB/s
  assert.is(p.needsNewline, false);
  assert.is(
    text,
    '\r      1,000,000  10%    0.00kB/s    0:00:00  ' +
      '\r      2,048,000  20% 1023.44kB/s    0:00:07  ' +
      '\r     10,000,000 100%    2.15MB/s    0:00:04 (xfr#1, to-chk=0/2)\n',
  );
});

test.run();
