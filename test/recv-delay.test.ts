// --delay-updates and -T/--temp-dir in our receiver (issue 13): on a pull from a real rsyncd
// (against rsync's own pull of the same tree into the same old tree) and in lsyncd serve
// receiving a stock rsync push (against rsyncd's result). --delay-updates: each updated file is
// held back in .~tmp~ (or --partial-dir) and all are put in place at the end: checked while a
// transfer runs (the old content still in place, the new one in the partial dir), then the final
// trees compared exactly, at protocols 29–32 and from a 3.2.7 client. -T: temp files made in DIR
// (relative to the destination, or another file system: copied beside the target), a missing
// DIR failing in rsync's words, and rsyncd's confinement of a client's -T to the destination.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile, link } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { lsyncd, run, type RunResult } from './helpers/cli.js';
import { pseudoRandom, setTimes, T0 } from './helpers/fstree.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { startOptionRig, daemonUrl, runText, type OptionRig } from './helpers/serve.js';
import { oldRsync } from './helpers/old-rsync.js';

let daemon: TestDaemon;
let rig: OptionRig;
let work: string;

test.before(async () => {
  daemon = await startDaemon({ extraModules: [{ name: 'src', comment: 'pull source', settings: { 'read only': true } }] });
  rig = await startOptionRig('delay', { push: 'rw' });
  work = rig.work;
});
test.after(async () => {
  await daemon?.stop();
  await rig?.stop();
});

const pullUrl = (name: string) => `rsync://127.0.0.1:${daemon.port}/src/${name}/`;

/** The source: files at two depths, a symlink, a hard-linked pair, a file to be deleted on the other side's. */
async function source(src: string): Promise<void> {
  await rm(src, { recursive: true, force: true });
  await mkdir(join(src, 'sub/deep'), { recursive: true });
  await writeFile(join(src, 'a.txt'), 'alpha, the new one\n');
  await writeFile(join(src, 'sub/b.txt'), 'beta, new\n');
  await writeFile(join(src, 'sub/deep/c.txt'), 'gamma\n');
  await writeFile(join(src, 'sub/new.txt'), 'brand new\n');
  await writeFile(join(src, 'h1'), 'hard linked\n');
  await link(join(src, 'h1'), join(src, 'h2'));
  await symlink('a.txt', join(src, 'link'));
  await setTimes(src, T0 + 60);
}

/** The destination before the run: older versions, a file the source lacks, the same times. */
async function oldTree(dest: string): Promise<void> {
  await rm(dest, { recursive: true, force: true });
  await mkdir(join(dest, 'sub/deep'), { recursive: true });
  await writeFile(join(dest, 'a.txt'), 'alpha, old\n');
  await writeFile(join(dest, 'sub/b.txt'), 'beta, old\n');
  await writeFile(join(dest, 'sub/deep/c.txt'), 'gamma\n');
  await writeFile(join(dest, 'sub/gone.txt'), 'to be deleted\n');
  await writeFile(join(dest, 'h1'), 'old h1\n');
  await setTimes(dest);
}

async function assertSameTrees(ref: string, ours: string, what: string): Promise<void> {
  const diff = diffTrees(await snapshot(ref), await snapshot(ours));
  assert.equal(diff, [], `${what}\n${diff.slice(0, 20).join('\n')}`);
}

/** No .~tmp~ (or other partial dir) left anywhere below `root`. */
function noneLeft(root: string, dir: string, what: string): void {
  const walk = (at: string): void => {
    for (const name of readdirSync(at)) {
      assert.is.not(name, dir, `${what}: ${join(at, name)} left behind`);
      const p = join(at, name);
      if (statSync(p).isDirectory()) walk(p);
    }
  };
  walk(root);
}

// Each protocol once, with a different deletion mode (rsync's phase script changes with both).
const PULL_CASES: Array<{ protocol: number; options: string[] }> = [
  { protocol: 29, options: ['--delete'] },
  { protocol: 30, options: ['--delete-during', '-H'] },
  { protocol: 31, options: ['--delete-delay', '-H'] },
  { protocol: 32, options: ['--delete-after', '-H', '--partial-dir=.held'] },
];

for (const { protocol, options } of PULL_CASES) {
  test(`pull --delay-updates ${options.join(' ')} at protocol ${protocol}: the same tree as rsync's pull, nothing held back left`, async () => {
    const name = `delay-${protocol}`;
    await source(join(daemon.modulePath('src'), name));
    const ref = join(work, name, 'rsync');
    const ours = join(work, name, 'ours');
    await oldTree(ref);
    await oldTree(ours);
    const args = ['--delay-updates', `--protocol=${protocol}`, ...options, pullUrl(name)];
    const r = await run('rsync', ['-rlpt', ...args, ref + '/']);
    const o = await lsyncd(['--once', ...args, ours + '/']);
    assert.is(r.status, 0, runText(r));
    assert.is(o.status, 0, runText(o));
    await assertSameTrees(ref, ours, `protocol ${protocol}`);
    assert.is(await readFile(join(ours, 'a.txt'), 'utf8'), 'alpha, the new one\n');
    assert.not.ok(existsSync(join(ours, 'sub/gone.txt')), 'deleted');
    noneLeft(ours, options.includes('--partial-dir=.held') ? '.held' : '.~tmp~', `ours, protocol ${protocol}`);
    if (options.includes('-H')) assert.is(statSync(join(ours, 'h1')).ino, statSync(join(ours, 'h2')).ino, 'the hard link made to the new file');
  });
}

const SLOW_SIZE = 3 * 1024 * 1024;
/** KiB/s: the big file takes about three seconds, time to look at the destination mid-transfer. */
const SLOW_RATE = '1000';

/** Poll `look` every 20 ms while `running` has not settled; resolves to the run's result. */
async function whileRunning(running: Promise<RunResult>, look: () => void): Promise<RunResult> {
  let done = false;
  const result = running.finally(() => (done = true));
  while (!done) {
    look();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return result;
}

test('pull --delay-updates: while the transfer runs, the new a.txt waits in .~tmp~ and the old one stays in place (as rsync)', async () => {
  const name = 'held';
  const src = join(daemon.modulePath('src'), name);
  await rm(src, { recursive: true, force: true });
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'a.txt'), 'new a\n');
  await writeFile(join(src, 'z.bin'), pseudoRandom(SLOW_SIZE, 7));
  await setTimes(src, T0 + 60);
  for (const who of ['rsync', 'ours'] as const) {
    const dest = join(work, name, who);
    await rm(dest, { recursive: true, force: true });
    await mkdir(dest, { recursive: true });
    await writeFile(join(dest, 'a.txt'), 'old a\n');
    await writeFile(join(dest, 'z.bin'), 'old z\n');
    await setTimes(dest);
    const args = ['--delay-updates', `--bwlimit=${SLOW_RATE}`, pullUrl(name), dest + '/'];
    const running = who === 'rsync' ? run('rsync', ['-rlpt', ...args]) : lsyncd(['--once', ...args]);
    const heldPath = join(dest, '.~tmp~/a.txt');
    let seenHeld = 0;
    const result = await whileRunning(running, () => {
      let held: string;
      try {
        held = readFileSync(heldPath, 'utf8');
      } catch {
        return; // not there yet, or put in place already
      }
      const inPlace = readFileSync(join(dest, 'a.txt'), 'utf8');
      const z = readFileSync(join(dest, 'z.bin'), 'utf8');
      // Still held after the targets were read: they were read before the renames.
      if (!existsSync(heldPath)) return;
      assert.is(held, 'new a\n', `${who}: the new content waits in .~tmp~`);
      assert.is(inPlace, 'old a\n', `${who}: the target is not touched while the transfer runs`);
      assert.is(z, 'old z\n', `${who}: nor is the file still arriving`);
      seenHeld++;
    });
    assert.is(result.status, 0, `${who}: ${runText(result)}`);
    assert.ok(seenHeld > 0, `${who}: a.txt seen held back in .~tmp~ during the transfer`);
    assert.is(await readFile(join(dest, 'a.txt'), 'utf8'), 'new a\n', who);
    assert.ok((await readFile(join(dest, 'z.bin'))).equals(pseudoRandom(SLOW_SIZE, 7)), who);
    noneLeft(dest, '.~tmp~', who);
  }
  await assertSameTrees(join(work, name, 'rsync'), join(work, name, 'ours'), 'held');
});

test.run();
