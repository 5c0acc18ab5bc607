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
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile, link } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
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

/** The two trees equal; `clockTimes`: paths whose mtime is the clock's (a -T dir the temp files went through). */
async function assertSameTrees(ref: string, ours: string, what: string, clockTimes: string[] = []): Promise<void> {
  const [r, o] = [await snapshot(ref), await snapshot(ours)];
  for (const tree of [r, o]) for (const path of clockTimes) tree.get(path)!.mtimeNs = 0n;
  const diff = diffTrees(r, o);
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

/** The same push (`client OPTIONS src/ URL/push/NAME/`) into lsyncd serve and into rsyncd. */
async function pushBoth(client: string, src: string, name: string, options: string[]): Promise<{ o: RunResult; t: RunResult }> {
  const o = await run(client, [...options, src + '/', daemonUrl(rig.ours, `push/${name}/`)]);
  const t = await run(client, [...options, src + '/', daemonUrl(rig.theirs, `push/${name}/`)]);
  return { o, t };
}

const inModule = (d: { dir: string }, path: string) => join(d.dir, 'push', path);

for (const { client, options } of [
  { client: 'rsync', options: ['--delete-delay'] },
  { client: 'rsync', options: ['--delete-after', '--partial-dir=.held'] },
  { client: '3.2.7', options: ['--delete'] },
]) {
  test(`lsyncd serve receiving ${client} --delay-updates ${options.join(' ')}: the tree rsyncd makes`, async () => {
    const name = `serve-delay-${options.length}-${client}`;
    const src = join(work, name, 'src');
    await source(src);
    for (const d of [rig.ours, rig.theirs]) await oldTree(inModule(d, name));
    const binary = client === 'rsync' ? 'rsync' : await oldRsync();
    const { o, t } = await pushBoth(binary, src, name, ['-rlptH', '--delay-updates', ...options]);
    assert.is(t.status, 0, runText(t));
    assert.is(o.status, 0, runText(o));
    await assertSameTrees(inModule(rig.theirs, name), inModule(rig.ours, name), `${client} ${options.join(' ')}`);
    noneLeft(inModule(rig.ours, name), options.includes('--partial-dir=.held') ? '.held' : '.~tmp~', 'lsyncd serve');
  });
}

test('lsyncd serve --delay-updates: the old file stays in place while a push runs, the new one in .~tmp~ (as rsyncd)', async () => {
  const name = 'serve-held';
  const src = join(work, name, 'src');
  await rm(src, { recursive: true, force: true });
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'a.txt'), 'new a\n');
  await writeFile(join(src, 'z.bin'), pseudoRandom(SLOW_SIZE, 9));
  await setTimes(src, T0 + 60);
  for (const d of [rig.theirs, rig.ours]) {
    const who = d === rig.ours ? 'lsyncd serve' : 'rsyncd';
    const dest = inModule(d, name);
    await rm(dest, { recursive: true, force: true });
    await mkdir(dest, { recursive: true });
    await writeFile(join(dest, 'a.txt'), 'old a\n');
    await setTimes(dest);
    const heldPath = join(dest, '.~tmp~/a.txt');
    let seenHeld = 0;
    const result = await whileRunning(run('rsync', ['-rlpt', '--delay-updates', `--bwlimit=${SLOW_RATE}`, src + '/', daemonUrl(d, `push/${name}/`)]), () => {
      let held: string;
      try {
        held = readFileSync(heldPath, 'utf8');
      } catch {
        return;
      }
      const inPlace = readFileSync(join(dest, 'a.txt'), 'utf8');
      if (!existsSync(heldPath)) return;
      assert.is(held, 'new a\n', who);
      assert.is(inPlace, 'old a\n', `${who}: the target is not touched while the transfer runs`);
      assert.not.ok(existsSync(join(dest, 'z.bin')), `${who}: nor is the file still arriving put in place`);
      seenHeld++;
    });
    assert.is(result.status, 0, `${who}: ${runText(result)}`);
    assert.ok(seenHeld > 0, `${who}: a.txt seen held back`);
  }
  await assertSameTrees(inModule(rig.theirs, name), inModule(rig.ours, name), 'serve-held');
});

/** Whether `dir` holds, during `running`, a temp file of `base` (rsync's names: BASE.XXXXXX in a -T dir, .BASE.XXXXXX beside). */
async function tempSeen(running: Promise<RunResult>, dir: string, beside: string, base: string): Promise<{ result: RunResult; inDir: number; besideSeen: number }> {
  let inDir = 0;
  let besideSeen = 0;
  const result = await whileRunning(running, () => {
    const names = (at: string) => (existsSync(at) ? readdirSync(at) : []);
    if (names(dir).some((n) => n.startsWith(`${base}.`))) inDir++;
    if (names(beside).some((n) => n.startsWith(`.${base}.`))) besideSeen++;
  });
  return { result, inDir, besideSeen };
}

test('pull -T DIR (relative to the destination, and on another file system): temp files made there, the tree rsync makes', async () => {
  const name = 'tempdir';
  const src = join(daemon.modulePath('src'), name);
  await rm(src, { recursive: true, force: true });
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'sub/a.txt'), 'alpha\n');
  await writeFile(join(src, 'z.bin'), pseudoRandom(SLOW_SIZE, 11));
  await setTimes(src);
  // /dev/shm is a tmpfs: another file system than the work dir's, where rsync copies rather than renames.
  const shm = existsSync('/dev/shm') && statSync('/dev/shm').dev !== statSync(work).dev ? await mkdtemp('/dev/shm/lsyncd-recv-delay-') : null;
  try {
    for (const where of ['relative', ...(shm ? ['other-fs'] : [])]) {
      for (const who of ['rsync', 'ours'] as const) {
        const dest = join(work, name, where, who);
        await rm(dest, { recursive: true, force: true });
        await mkdir(join(dest, 'tmp'), { recursive: true });
        const dir = where === 'relative' ? 'tmp' : join(shm!, who);
        if (where !== 'relative') await mkdir(dir, { recursive: true });
        const args = ['-T', dir, `--bwlimit=${SLOW_RATE}`, pullUrl(name), dest + '/'];
        const running = who === 'rsync' ? run('rsync', ['-rlpt', ...args]) : lsyncd(['--once', ...args]);
        const { result, inDir, besideSeen } = await tempSeen(running, where === 'relative' ? join(dest, 'tmp') : dir, dest, 'z.bin');
        assert.is(result.status, 0, `${who} ${where}: ${runText(result)}`);
        assert.ok(inDir > 0, `${who} ${where}: the temp file was made in the temp dir`);
        // Across file systems rsync copies into the target's own name (robust_rename's copy_file);
        // ours copies to a temp file beside it and renames that (the target is never half
        // written), so only the same-file-system case has nothing beside the target.
        if (who === 'rsync' || where === 'relative') assert.is(besideSeen, 0, `${who} ${where}: no temp file beside the target`);
        assert.equal(readdirSync(where === 'relative' ? join(dest, 'tmp') : dir), [], `${who} ${where}: the temp dir is left empty`);
      }
      await assertSameTrees(join(work, name, where, 'rsync'), join(work, name, where, 'ours'), where, ['tmp']);
    }
  } finally {
    if (shm) await rm(shm, { recursive: true, force: true });
  }
});

test('pull -T to a missing or non-directory DIR: rsync\'s message and exit code, nothing received', async () => {
  const name = 'tempdir';
  for (const dir of ['missing', 'afile']) {
    const results: RunResult[] = [];
    for (const who of ['rsync', 'ours'] as const) {
      const dest = join(work, 'tempdir-missing', who);
      await rm(dest, { recursive: true, force: true });
      await mkdir(dest, { recursive: true });
      await writeFile(join(dest, 'afile'), 'not a dir\n');
      const args = ['-T', dir, pullUrl(name), dest + '/'];
      const r = who === 'rsync' ? await run('rsync', ['-rlpt', ...args]) : await lsyncd(['--once', ...args]);
      assert.equal(readdirSync(dest), ['afile'], `${who}: nothing received`);
      results.push(r);
    }
    const [r, o] = results as [RunResult, RunResult];
    assert.is(o.status, r.status, `${dir}\nrsync: ${runText(r)}\nours: ${runText(o)}`);
    const first = r.stderr.split('\n')[0]!;
    assert.match(first, /^The temp-dir (does not exist|is not a directory): /);
    assert.ok(o.stderr.includes(first), `rsync: ${first}\nours: ${runText(o)}`);
  }
});

test('lsyncd serve -T: DIR confined as rsyncd sanitizes it (-T ../../x is DEST/x, -T /../x is MODULE/x), the tree rsyncd makes', async () => {
  const name = 'serve-tempdir';
  const src = join(work, name, 'src');
  await source(src);
  for (const d of [rig.ours, rig.theirs]) {
    await rm(inModule(d, name), { recursive: true, force: true });
    await mkdir(inModule(d, name), { recursive: true });
    // What an unsanitized ../../outside would name (the daemon's dir, beside the module): there, and empty.
    await mkdir(join(d.dir, 'outside'), { recursive: true });
  }
  // Missing inside the destination: both refuse in the same words, though ../../outside exists.
  const missing = await pushBoth('rsync', src, name, ['-rlpt', '-T', '../../outside']);
  assert.is(missing.o.status, missing.t.status, `rsyncd: ${runText(missing.t)}\nours: ${runText(missing.o)}`);
  const first = missing.t.stderr.split('\n')[0]!;
  assert.is(first, 'The temp-dir does not exist: outside');
  assert.ok(missing.o.stderr.includes(first), runText(missing.o));
  for (const d of [rig.ours, rig.theirs]) await mkdir(join(inModule(d, name), 'outside'));
  const ok = await pushBoth('rsync', src, name, ['-rlpt', '-T', '../../outside']);
  assert.is(ok.t.status, 0, runText(ok.t));
  assert.is(ok.o.status, 0, runText(ok.o));
  await assertSameTrees(inModule(rig.theirs, name), inModule(rig.ours, name), '-T ../../outside', ['outside']);
  for (const d of [rig.ours, rig.theirs]) assert.equal(readdirSync(join(d.dir, 'outside')), [], 'nothing written outside the module');
  // An absolute -T is the module's (sanitize_path roots it at the module dir): MODULE/outside.
  await writeFile(join(src, 'a.txt'), 'alpha, changed again\n');
  await setTimes(src, T0 + 120);
  const absentAtRoot = await pushBoth('rsync', src, name, ['-rlpt', '-T', '/../outside']);
  assert.is(absentAtRoot.o.status, absentAtRoot.t.status, `rsyncd: ${runText(absentAtRoot.t)}\nours: ${runText(absentAtRoot.o)}`);
  for (const [d, r] of [[rig.theirs, absentAtRoot.t], [rig.ours, absentAtRoot.o]] as const) {
    assert.ok(r.stderr.includes(`The temp-dir does not exist: ${join(d.dir, 'push')}/outside\n`), runText(r));
  }
  for (const d of [rig.ours, rig.theirs]) await mkdir(join(d.dir, 'push/outside'));
  const absolute = await pushBoth('rsync', src, name, ['-rlpt', '-T', '/../outside']);
  assert.is(absolute.t.status, 0, runText(absolute.t));
  assert.is(absolute.o.status, 0, runText(absolute.o));
  await assertSameTrees(inModule(rig.theirs, name), inModule(rig.ours, name), '-T /../outside', ['outside']);
  for (const d of [rig.ours, rig.theirs]) {
    assert.equal(readdirSync(join(d.dir, 'push/outside')), [], 'the module\'s temp dir is left empty');
    assert.equal(readdirSync(join(d.dir, 'outside')), [], 'nothing written outside the module');
  }
});

test('lsyncd serve -T through a symlink in the module that leads out of it: nothing written outside', async () => {
  const name = 'serve-tempdir-link';
  const src = join(work, name, 'src');
  await source(src);
  const dest = inModule(rig.ours, name);
  const outside = join(rig.ours.dir, 'outside-link-target');
  await rm(dest, { recursive: true, force: true });
  await mkdir(dest, { recursive: true });
  await mkdir(outside, { recursive: true });
  await symlink(outside, join(dest, 'tmp'));
  const { result, inDir } = await tempSeen(run('rsync', ['-rlpt', '-T', 'tmp', src + '/', daemonUrl(rig.ours, `push/${name}/`)]), outside, dest, 'a.txt');
  assert.is.not(result.status, 0, runText(result));
  assert.is(inDir, 0, 'no temp file made through the symlink');
  assert.equal(readdirSync(outside), [], 'nothing written outside the module');
});

test.run();
