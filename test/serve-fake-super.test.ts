// A module with `fake super = yes` (issue 13): the same tree — owners, a setuid file, a device, a
// fifo, a symlink — pushed by a stock rsync into rsyncd and into `lsyncd serve` with the same
// module; the stored trees are compared exactly, the `user.rsync.%stat` records included, then
// pulled back from each into a fresh destination and compared with the source. Protocols 30-32 and
// a 3.2.7 client. Counterpart: rsync xattrs.c set_stat_xattr/get_stat_xattr, clientserver.c.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { snapshot, diffTrees } from './helpers/tree.js';
import { setTime, T0 } from './helpers/fstree.js';
import { runBoth, runText, startBoth, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';
import { oldRsync } from './helpers/old-rsync.js';
import { lsyncd, run } from './helpers/cli.js';
import { makeFakeSuperSource } from './helpers/fake-super-tree.js';
import { daemonUrl } from './helpers/serve.js';
import { calls, diffXattrTrees, setX, xattrTree } from './helpers/xattrs.js';
import { formatStatRecord, parseStatRecord, XSTAT_ATTR } from '../src/transfer/fake-super.js';

const ROOT = process.getuid?.() === 0;

// `use chroot = no` leaves `munge symlinks` on (rsyncd's default): the fake links hold munged targets.
const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
${ROOT ? 'uid = root\ngid = root\n' : ''}
[fake]
\tpath = ${dir}/fake
\tread only = no
\tfake super = yes
[plain]
\tpath = ${dir}/plain
\tread only = no
\tmunge symlinks = no
\tfake super = yes
[real]
\tpath = ${dir}/real
\tread only = no
\tmunge symlinks = no
`;

let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;
let src: string;

/** Both daemons' copy of a module, emptied. */
async function freshModules(name: string): Promise<void> {
  for (const dir of [ours.dir, theirs.dir]) {
    await rm(join(dir, name), { recursive: true, force: true });
    await mkdir(join(dir, name));
  }
}

test.before(async () => {
  ({ ours, theirs } = await startBoth(CONFIG));
  if (ROOT) for (const dir of [ours.dir, theirs.dir]) await chmod(dir, 0o755);
  work = await mkdtemp(join(tmpdir(), 'lsyncd-fake-super-'));
  src = join(work, 'src');
  await mkdir(src);
  await makeFakeSuperSource(src);
});

test.after(async () => {
  await ours?.stop();
  await theirs?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** The two stored copies of a module: trees and xattrs equal, exactly. */
async function assertSameStore(module: string, context: string): Promise<void> {
  const o = join(ours.dir, module);
  const t = join(theirs.dir, module);
  assert.equal(diffTrees(await snapshot(t, { rootTimes: true }), await snapshot(o, { rootTimes: true })), [], `${context}: stored trees`);
  assert.equal(diffXattrTrees(xattrTree(t), xattrTree(o)), [], `${context}: stored xattrs`);
}

/** A push with the given client and options into both daemons, both exiting 0 with the same output. */
async function pushBoth(module: string, options: string[], client = 'rsync'): Promise<void> {
  const r = await runBoth({ ours, theirs }, [...options, `${src}/`, `ADDR/${module}/`], { client });
  assert.is(r.t.status, 0, runText(r.t));
  assert.is(r.o.status, 0, runText(r.o));
  assert.is(r.o.stdout.toString(), r.t.stdout.toString(), 'the client sees the same output');
}

/** A pull from both daemons into fresh destinations: both equal to the source, exactly. */
async function pullBothAndCompare(module: string, options: string[], client = 'rsync'): Promise<void> {
  const dests = { o: join(work, `pull-o-${module}`), t: join(work, `pull-t-${module}`) };
  for (const d of Object.values(dests)) await rm(d, { recursive: true, force: true });
  const r = await runBoth({ ours, theirs }, [...options, `ADDR/${module}/`, 'DEST/'], { client, dests });
  assert.is(r.t.status, 0, runText(r.t));
  assert.is(r.o.status, 0, runText(r.o));
  assert.is(r.o.stdout.toString(), r.t.stdout.toString(), 'the pulling client sees the same output');
  const got = await snapshot(dests.o, { rootTimes: true });
  assert.equal(diffTrees(await snapshot(dests.t, { rootTimes: true }), got), [], 'pulled from ours = pulled from rsyncd');
  // Munged targets come back as pushed only where the module does not munge (rsyncd's own rule).
  const ignore: Array<'target' | 'size'> = module === 'fake' ? ['target', 'size'] : [];
  assert.equal(diffTrees(await snapshot(src, { rootTimes: true }), got, { ignore }), [], 'pulled = the source');
}

test('record format: rsync\'s "%o %d,%d %d:%d" both ways, a corrupt one refused', () => {
  const r = { mode: 0o20644, rdev: { major: 1, minor: 3 }, uid: 0, gid: 6 };
  assert.is(formatStatRecord(r).toString(), '20644 1,3 0:6');
  assert.equal(parseStatRecord(formatStatRecord(r)), r);
  assert.equal(parseStatRecord(Buffer.from('100755 0,0 -1:-1')), { mode: 0o100755, rdev: { major: 0, minor: 0 }, uid: 4294967295, gid: 4294967295 });
  assert.is(parseStatRecord(Buffer.from('100755 0,0 12')), null);
  assert.is(parseStatRecord(Buffer.from('8 0,0 1:1')), null);
  assert.is(parseStatRecord(Buffer.alloc(300, 0x31)), null);
});

for (const protocol of [30, 31, 32]) {
  test(`protocol ${protocol}: rsync -a into fake super stores what rsyncd stores; pulled back, the source`, async () => {
    for (const module of ['fake', 'plain']) {
      await freshModules(module);
      await pushBoth(module, ['-ai', `--protocol=${protocol}`]);
      await assertSameStore(module, `protocol ${protocol} ${module}`);
      // Stored as the daemon's user: the setuid file a plain 0755 file with its record.
      const setuid = join(ours.dir, module, 'setuid');
      assert.is(calls().get(Buffer.from(setuid), XSTAT_ATTR)?.toString(), ROOT ? '104755 0,0 1234:4321' : undefined);
      await pullBothAndCompare(module, ['-a', `--protocol=${protocol}`]);
    }
  });
}

test('a second push changes nothing; changed owners and modes are stored again as rsyncd stores them', async () => {
  await freshModules('plain');
  await pushBoth('plain', ['-a']);
  // Nothing to do: the stored attributes are what the source has (each stat read with its record).
  await pushBoth('plain', ['-ai']);
  await chmod(join(src, 'plain'), 0o4644);
  await chmod(join(src, 'sub/deep/setgid'), 0o750);
  if (ROOT) await chown(join(src, 'fifo'), 5, 5);
  await pushBoth('plain', ['-ai']);
  await assertSameStore('plain', 'after changes');
  await pullBothAndCompare('plain', ['-a']);
  await chmod(join(src, 'plain'), 0o444);
  await chmod(join(src, 'sub/deep/setgid'), 0o2750);
  if (ROOT) await chown(join(src, 'fifo'), 2, 3);
  // Rewritten in place and through a temp file: the record follows the new attributes.
  await writeFile(join(src, 'setuid'), 'suid program, version 2\n');
  await chmod(join(src, 'setuid'), 0o4755);
  await setTime(join(src, 'setuid'), T0 + 100);
  await pushBoth('plain', ['-ai', '--inplace']);
  await assertSameStore('plain', '--inplace');
  await writeFile(join(src, 'setuid'), 'suid program\n');
  await chmod(join(src, 'setuid'), 0o4755);
  await setTime(join(src, 'setuid'), T0 + 'setuid'.length);
  await pushBoth('plain', ['-aic']);
  await assertSameStore('plain', '-c');
  await pullBothAndCompare('plain', ['-a']);
});

test('-X into fake super: user xattrs copied, the records kept and hidden from a pull', async () => {
  await freshModules('plain');
  setX(join(src, 'plain'), 'user.colour', 'blue');
  setX(join(src, 'sub'), 'user.note', 'a directory note');
  try {
    await pushBoth('plain', ['-aX']);
    await assertSameStore('plain', '-X');
    await pushBoth('plain', ['-aXi']);
    await assertSameStore('plain', '-X again');
    const dests = { o: join(work, 'x-o'), t: join(work, 'x-t') };
    for (const d of Object.values(dests)) await rm(d, { recursive: true, force: true });
    const r = await runBoth({ ours, theirs }, ['-aX', 'ADDR/plain/', 'DEST/'], { dests });
    assert.is(r.o.status, 0, runText(r.o));
    assert.is(r.t.status, 0, runText(r.t));
    assert.equal(diffXattrTrees(xattrTree(dests.t), xattrTree(dests.o)), [], 'pulled xattrs');
    assert.equal(diffXattrTrees(xattrTree(src), xattrTree(dests.o)), [], 'pulled xattrs = the source');
  } finally {
    calls().remove(Buffer.from(join(src, 'plain')), Buffer.from('user.colour'));
    calls().remove(Buffer.from(join(src, 'sub')), Buffer.from('user.note'));
  }
});

test('rsync 3.2.7 pushes into and pulls from fake super', async () => {
  const old = await oldRsync();
  await freshModules('fake');
  await pushBoth('fake', ['-a'], old);
  await assertSameStore('fake', '3.2.7');
  await pullBothAndCompare('fake', ['-a'], old);
});

test('a client\'s --fake-super into a module without it is --super (accepted), as rsyncd takes it', async () => {
  const cfgModule = 'real';
  await freshModules(cfgModule);
  const r = await runBoth({ ours, theirs }, ['-a', '-M--fake-super', `${src}/`, `ADDR/${cfgModule}/`]);
  assert.is(r.t.status, 0, runText(r.t));
  assert.is(r.o.status, 0, runText(r.o));
  await assertSameStore(cfgModule, '-M--fake-super');
});

test('-A into a fake super module: refused by name (rsync keeps ACLs in records we do not write), nothing written', async () => {
  await freshModules('plain');
  const r = await runBoth({ ours, theirs }, ['-aA', `${src}/`, 'ADDR/plain/']);
  assert.is(r.o.status, 4, runText(r.o));
  assert.match(r.o.stderr.toString(), '--acls (-A) in a fake super module');
  assert.equal(spawnSync('ls', ['-A', join(ours.dir, 'plain')], { encoding: 'utf8' }).stdout, '');
});

test('a corrupt record: the pull fails as from rsyncd (rsync\'s "Corrupt" error, exit 11 there), nothing else read', async () => {
  await freshModules('plain');
  await pushBoth('plain', ['-a']);
  for (const dir of [ours.dir, theirs.dir]) setX(join(dir, 'plain/plain'), 'user.rsync.%stat', 'not a record\x1b');
  const dests = { o: join(work, 'corrupt-o'), t: join(work, 'corrupt-t') };
  for (const d of Object.values(dests)) await rm(d, { recursive: true, force: true });
  const r = await runBoth({ ours, theirs }, ['-a', 'ADDR/plain/', 'DEST/'], { dests });
  assert.is.not(r.t.status, 0, runText(r.t));
  assert.is(r.o.status, r.t.status, `${runText(r.o)}\n--- rsyncd:\n${runText(r.t)}`);
  assert.match(r.o.stderr.toString(), 'Corrupt user.rsync.%stat xattr attached to');
  assert.match(r.o.stderr.toString(), 'not a record\\#033', 'the record escaped as rsync escapes names');
});

test('a corrupt record in the way of a push: the push fails as into rsyncd, the file left as it was', async () => {
  await freshModules('plain');
  await pushBoth('plain', ['-a']);
  for (const dir of [ours.dir, theirs.dir]) setX(join(dir, 'plain/plain'), 'user.rsync.%stat', '12');
  const r = await runBoth({ ours, theirs }, ['-a', `${src}/`, 'ADDR/plain/']);
  assert.is.not(r.t.status, 0, runText(r.t));
  assert.is(r.o.status, r.t.status, `${runText(r.o)}\n--- rsyncd:\n${runText(r.t)}`);
  assert.match(r.o.stderr.toString(), 'Corrupt user.rsync.%stat xattr attached to');
  assert.is(calls().get(Buffer.from(join(ours.dir, 'plain/plain')), XSTAT_ATTR)?.toString(), '12');
});

test('our pull with --fake-super stores what rsync -a --fake-super stores; -XX refused in rsync\'s words (the push: push-fake-super)', async () => {
  await freshModules('real');
  const pushed = await run('rsync', ['-a', `${src}/`, daemonUrl(theirs, 'real/')]);
  assert.is(pushed.status, 0, runText(pushed));
  for (const protocol of [30, 32]) {
    const t = join(work, `fs-pull-t-${protocol}`);
    const o = join(work, `fs-pull-o-${protocol}`);
    for (const d of [t, o]) await rm(d, { recursive: true, force: true });
    const theirsPull = await run('rsync', ['-ai', '--fake-super', `--protocol=${protocol}`, daemonUrl(theirs, 'real/'), `${t}/`]);
    assert.is(theirsPull.status, 0, runText(theirsPull));
    const oursPull = await lsyncd(['--once', '-ai', '--fake-super', `--protocol=${protocol}`, daemonUrl(theirs, 'real/'), `${o}/`]);
    assert.is(oursPull.status, 0, runText(oursPull));
    assert.is(oursPull.stdout.toString().replace(o, 'DEST'), theirsPull.stdout.toString().replace(t, 'DEST'), 'the same itemized lines');
    assert.equal(diffTrees(await snapshot(t, { rootTimes: true }), await snapshot(o, { rootTimes: true })), [], 'pulled trees');
    assert.equal(diffXattrTrees(xattrTree(t), xattrTree(o)), [], 'pulled records');
    // A second pull: nothing to do for either (each stat read with its record).
    const again = await lsyncd(['--once', '-ai', '--fake-super', daemonUrl(theirs, 'real/'), `${o}/`]);
    assert.is(again.status, 0, runText(again));
    assert.is(again.stdout.toString(), '');
  }
  const xx = await lsyncd(['--once', '-aXX', '--fake-super', daemonUrl(theirs, 'real/'), join(work, 'fs-xx')]);
  assert.is(xx.status, 1, runText(xx));
  assert.match(xx.stderr.toString(), '--fake-super conflicts with -XX');
});

test.run();
