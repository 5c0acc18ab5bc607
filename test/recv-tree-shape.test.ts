// The receiving options that shape the tree (issue 13), against rsync: -m/--prune-empty-dirs
// (directory chains without a file are left out, as rsync's receiver prunes its list) on a pull
// from a real rsyncd against rsync's own pull, and on a stock push into lsyncd serve against the
// same push into rsyncd; -R --no-implied-dirs on a pull (the path's directories are not made from
// the list: a missing one is made bare, an existing one is left alone). Trees compared exactly;
// pruneEmptyDirs on its own over a built list.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rm, writeFile, mkdir, chmod, symlink } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, type TestDaemon, type ConfiguredDaemon } from './helpers/daemon.js';
import { lsyncd, run } from './helpers/cli.js';
import { setTimes, T0 } from './helpers/fstree.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { startOptionRig, type OptionRig, daemonUrl, runText, type OurDaemon } from './helpers/serve.js';
import { ReceivedList } from '../protocol/received-list.js';
import { pruneEmptyDirs } from '../protocol/prune-empty-dirs.js';

let daemon: TestDaemon;
let rig: OptionRig;
let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;


test.before(async () => {
  daemon = await startDaemon({ extraModules: [{ name: 'src', comment: 'pull source', settings: { 'read only': true } }] });
  rig = await startOptionRig('shape', { push: 'rw' });
  ({ ours, theirs, work } = rig);
});
test.after(async () => {
  await daemon?.stop();
  await rig?.stop();
});

/** Empty chains, chains leading to a file or a symlink, files beside empty dirs, odd names. */
async function source(root: string): Promise<void> {
  for (const dir of ['a/b/c', 'd/e', 'g/h', 'j', 'k/l', 'm/n/o/p', 'm/q', 'r s/t', 'u.v/w', 'x/y.tmp']) await mkdir(join(root, dir), { recursive: true });
  await writeFile(join(root, 'top.txt'), 'top\n');
  await writeFile(join(root, 'd/e/f.txt'), 'f\n');
  await writeFile(join(root, 'g/i.txt'), 'i\n');
  await symlink('../../top.txt', join(root, 'k/l/link'));
  await writeFile(join(root, 'm/n/o/p/deep.txt'), 'deep\n');
  await writeFile(join(root, 'r s/t/u.log'), 'log\n');
  await writeFile(join(root, 'u.v/w/skip.tmp'), 'only a tmp file\n');
  await writeFile(join(root, 'x/y.tmp/z.txt'), 'z\n');
  await setTimes(root);
}

async function assertSameTrees(want: string, have: string, what: string): Promise<void> {
  const diff = diffTrees(await snapshot(want), await snapshot(have));
  assert.equal(diff, [], `${what}\n${diff.slice(0, 20).join('\n')}`);
}

const PRUNE_CASES: string[][] = [
  ['-m'],
  ['-m', '--include=*/', '--include=*.txt', '--exclude=*'],
  ['-m', '--exclude=*.tmp'],
  ['-m', '--delete', '--exclude=*.log'],
];

for (const options of PRUNE_CASES) {
  const name = options.join(' ').replace(/[^a-z0-9]+/gi, '_');
  test(`pull ${options.join(' ')}: the tree rsync's pull leaves`, async () => {
    const src = join(daemon.modulePath('src'), name);
    await rm(src, { recursive: true, force: true });
    await source(src);
    const ref = join(work, 'pull-ref', name);
    const got = join(work, 'pull-ours', name);
    for (const root of [ref, got]) {
      await rm(root, { recursive: true, force: true });
      // An empty dir already here stays (pruning drops list entries, it deletes nothing by itself).
      await mkdir(join(root, 'here/empty'), { recursive: true });
      await mkdir(join(root, 'j'), { recursive: true });
      await setTimes(root, T0 - 50);
    }
    const url = `rsync://127.0.0.1:${daemon.port}/src/${name}/`;
    const r = await run('rsync', ['-rlpt', ...options, '--no-inc-recursive', url, ref + '/']);
    const o = await lsyncd(['--once', '--timeout', '20', ...options, url, got + '/']);
    assert.is(r.status, 0, runText(r));
    assert.is(o.status, 0, runText(o));
    await assertSameTrees(ref, got, `pull ${options.join(' ')}`);
    // Something was pruned, and something kept.
    assert.not.ok(statSync(join(got, 'a'), { throwIfNoEntry: false }), 'a/b/c is an empty chain');
    assert.ok(statSync(join(got, 'm/n/o/p/deep.txt')).isFile());
  });

  test(`push ${options.join(' ')}: a stock rsync into lsyncd serve leaves what rsyncd leaves`, async () => {
    const src = join(work, 'push-src', name);
    await rm(src, { recursive: true, force: true });
    await source(src);
    for (const d of [ours, theirs]) {
      await rm(join(d.dir, 'push', name), { recursive: true, force: true });
      await mkdir(join(d.dir, 'push', name, 'j'), { recursive: true });
      await setTimes(join(d.dir, 'push', name), T0 - 50);
    }
    const args = (d: { port: number }) => ['-rlpt', ...options, '--no-inc-recursive', src + '/', daemonUrl(d, `push/${name}/`)];
    const t = await run('rsync', args(theirs));
    const o = await run('rsync', args(ours));
    assert.is(t.status, 0, runText(t));
    assert.is(o.status, 0, runText(o));
    await assertSameTrees(join(theirs.dir, 'push', name), join(ours.dir, 'push', name), `push ${options.join(' ')}`);
  });
}

test('pull -R --no-implied-dirs: the path dirs made bare (or left as they are), as rsync makes them', async () => {
  const name = 'implied';
  const src = join(daemon.modulePath('src'), name);
  await rm(src, { recursive: true, force: true });
  await mkdir(join(src, 'x/y/z'), { recursive: true });
  await mkdir(join(src, 'p/q'), { recursive: true });
  await writeFile(join(src, 'x/y/z/file.txt'), 'file\n');
  await writeFile(join(src, 'p/q/other.txt'), 'other\n');
  await setTimes(src);
  // The source's dirs have modes and times a receiver making them from the list would copy.
  for (const dir of ['x', 'x/y', 'p', 'p/q']) await chmod(join(src, dir), 0o750);
  const base = `rsync://127.0.0.1:${daemon.port}/src/${name}/./`;
  for (const implied of [false, true]) {
    const flags = implied ? ['-R'] : ['-R', '--no-implied-dirs'];
    const ref = join(work, 'implied-ref', String(implied));
    const got = join(work, 'implied-ours', String(implied));
    for (const root of [ref, got]) {
      await rm(root, { recursive: true, force: true });
      // p exists here with its own mode: --no-implied-dirs leaves it so.
      await mkdir(join(root, 'p'), { recursive: true, mode: 0o700 });
      await chmod(join(root, 'p'), 0o700);
    }
    // One pull per source (ours takes one SOURCE): a path into an empty tree, one beside a dir already here.
    for (const source of [`${base}x/y/z`, `${base}p/q/other.txt`]) {
      const r = await run('rsync', ['-rlpt', ...flags, '--no-inc-recursive', source, ref + '/']);
      const o = await lsyncd(['--once', '--timeout', '20', ...flags, source, got + '/']);
      assert.is(r.status, 0, runText(r));
      assert.is(o.status, 0, runText(o));
    }
    // The dirs made bare are dated by the clock: compare their times apart.
    const want = await snapshot(ref);
    const have = await snapshot(got);
    for (const tree of [want, have]) for (const dir of ['x', 'x/y', 'p/q', 'p']) if (!implied && tree.get(dir)) tree.get(dir)!.mtimeNs = 0n;
    const diff = diffTrees(want, have);
    assert.equal(diff, [], `${flags.join(' ')}\n${diff.join('\n')}`);
    const mode = (p: string) => statSync(join(got, p)).mode & 0o7777;
    if (!implied) {
      assert.is(mode('x'), 0o777 & ~process.umask(), 'x is made bare');
      assert.is(mode('p'), 0o700, 'p is left as it was');
      assert.is.not(Math.floor(statSync(join(got, 'x/y')).mtimeMs / 1000), T0, 'x/y is not dated from the list');
    } else {
      assert.is(mode('x'), 0o750, 'x is made from the list');
    }
  }
});

test('push -R --no-implied-dirs: a stock rsync into lsyncd serve makes the path dirs as rsyncd makes them', async () => {
  const src = join(work, 'implied-push-src');
  await rm(src, { recursive: true, force: true });
  await mkdir(join(src, 'x/y/z'), { recursive: true });
  await writeFile(join(src, 'x/y/z/file.txt'), 'file\n');
  await setTimes(src);
  for (const dir of ['x', 'x/y']) await chmod(join(src, dir), 0o750);
  for (const d of [ours, theirs]) {
    await rm(join(d.dir, 'push', 'implied'), { recursive: true, force: true });
    await mkdir(join(d.dir, 'push', 'implied'), { recursive: true });
  }
  const args = (d: { port: number }) => ['-rlpt', '-R', '--no-implied-dirs', '--no-inc-recursive', `${src}/./x/y/z`, daemonUrl(d, 'push/implied/')];
  const t = await run('rsync', args(theirs));
  const o = await run('rsync', args(ours));
  assert.is(t.status, 0, runText(t));
  assert.is(o.status, 0, runText(o));
  const want = await snapshot(join(theirs.dir, 'push', 'implied'));
  const have = await snapshot(join(ours.dir, 'push', 'implied'));
  // The dirs made bare are dated by the clock.
  for (const tree of [want, have]) for (const dir of ['x', 'x/y']) tree.get(dir)!.mtimeNs = 0n;
  assert.equal(diffTrees(want, have), []);
  assert.is(statSync(join(ours.dir, 'push', 'implied', 'x')).mode & 0o777, 0o777 & ~process.umask());
});

test('pruneEmptyDirs: the chains rsync prunes, a file or an excluded dir keeping those above', () => {
  const list = new ReceivedList(32);
  const entries: Array<[string, boolean]> = [
    ['.', true], ['a', true], ['a/b', true], ['a/b/c', true], ['d', true], ['d/f.txt', false], ['d/e', true],
    ['g', true], ['g/h', true], ['g/h/keep', true], ['z.txt', false],
  ];
  for (const [name, dir] of entries) {
    const w = list.addName(0, Buffer.from(name));
    list.setAttrs(w, dir ? 0o040755 : 0o100644, 0, T0, 0, 0, 0);
  }
  list.sortAndClean();
  const cleared = pruneEmptyDirs(list, (name) => name.toString() === 'g/h/keep');
  const left = list.toArray().filter((e) => e.active).map((e) => e.name.toString()).sort();
  assert.equal(left, ['.', 'd', 'd/f.txt', 'g', 'g/h', 'g/h/keep', 'z.txt']);
  assert.is(cleared, 4);
});

test.run();
