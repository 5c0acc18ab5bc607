// Our push with --fake-super (issue 13): a tree stored by `rsync --fake-super` (owners, set-id
// bits, devices, fifos and symlinks kept in user.rsync.%stat records) pushed back by a stock
// `rsync --fake-super` and by ours into two modules of one rsyncd running as root; the daemon's
// trees compared exactly. -XX and -A refused, a device record skipped without -D as rsync skips
// it, a corrupt record failing as rsync's. Protocols 30-32. Counterpart: rsync xattrs.c
// get_stat_xattr, x_lstat (as flist.c make_file calls them).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { snapshot, diffTrees } from './helpers/tree.js';
import { daemonUrl, optionSuiteConfig, runText } from './helpers/serve.js';
import { startDaemonWithConfig, type ConfiguredDaemon } from './helpers/daemon.js';
import { lsyncd, run } from './helpers/cli.js';
import { makeFakeSuperSource } from './helpers/fake-super-tree.js';
import { calls, setX } from './helpers/xattrs.js';
import { XSTAT_ATTR } from '../src/transfer/fake-super.js';

const ROOT = process.getuid?.() === 0;

let theirs: ConfiguredDaemon;
let work: string;
let src: string;
/** The tree as a fake-super backup keeps it: pulled from rsyncd by `rsync -a --fake-super`. */
let stored: string;


test.before(async () => {
  theirs = await startDaemonWithConfig(optionSuiteConfig({ seed: 'rw', t: 'rw', o: 'rw' }));
  if (ROOT) await chmod(theirs.dir, 0o755);
  work = await mkdtemp(join(tmpdir(), 'lsyncd-push-fake-super-'));
  src = join(work, 'src');
  stored = join(work, 'stored');
  await mkdir(src);
  await makeFakeSuperSource(src);
  await mkdir(join(theirs.dir, 'seed'));
  const seeded = await run('rsync', ['-a', `${src}/`, daemonUrl(theirs, 'seed/')]);
  assert.is(seeded.status, 0, runText(seeded));
  const backed = await run('rsync', ['-a', '--fake-super', daemonUrl(theirs, 'seed/'), `${stored}/`]);
  assert.is(backed.status, 0, runText(backed));
});

test.after(async () => {
  await theirs?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Both pushed modules, emptied. */
async function freshModules(): Promise<void> {
  for (const name of ['t', 'o']) {
    await rm(join(theirs.dir, name), { recursive: true, force: true });
    await mkdir(join(theirs.dir, name));
  }
}

/**
 * `rsync OPTIONS stored/ …/t/` and `lsyncd --once OPTIONS stored/ …/o/` (or OURS): both exit 0
 * with the same lines (rsync prints "skipping non-regular file" on stdout, we on stderr).
 */
async function pushBoth(options: string[], ours = options): Promise<void> {
  const t = await run('rsync', [...options, `${stored}/`, daemonUrl(theirs, 't/')]);
  assert.is(t.status, 0, runText(t));
  const o = await lsyncd(['--once', ...ours, `${stored}/`, daemonUrl(theirs, 'o/')]);
  assert.is(o.status, 0, runText(o));
  assert.is(o.stdout.toString() + o.stderr.toString(), t.stdout.toString() + t.stderr.toString(), 'the same lines');
}

/** The two pushed trees: equal, exactly (owners, modes, devices, fifos, links, times). */
async function assertSamePushed(context: string): Promise<void> {
  const t = await snapshot(join(theirs.dir, 't'), { rootTimes: true });
  assert.equal(diffTrees(t, await snapshot(join(theirs.dir, 'o'), { rootTimes: true })), [], `${context}: pushed trees`);
}

test('the backup holds records (the setuid file a plain file, the fifo an empty one)', () => {
  const record = calls().get(Buffer.from(join(stored, 'setuid')), XSTAT_ATTR)?.toString();
  assert.ok(record?.startsWith('104755 0,0 '), record);
  if (ROOT) assert.is(record, '104755 0,0 1234:4321');
  assert.ok(calls().get(Buffer.from(join(stored, 'fifo')), XSTAT_ATTR)?.toString().startsWith('10640 '));
});

for (const protocol of [30, 31, 32]) {
  test(`protocol ${protocol}: pushed back with --fake-super, ours = rsync's, and = the original tree`, async () => {
    await freshModules();
    await pushBoth(['-ai', '--fake-super', `--protocol=${protocol}`]);
    await assertSamePushed(`protocol ${protocol}`);
    // The records undone: the daemon holds the original owners, modes, devices and links.
    assert.equal(diffTrees(await snapshot(src, { rootTimes: true }), await snapshot(join(theirs.dir, 'o'), { rootTimes: true })), [], 'pushed = the original');
    // A second push finds nothing to do (the same list).
    await pushBoth(['-ai', '--fake-super', `--protocol=${protocol}`]);
  });
}

test('without -D: the device and fifo records are skipped as rsync skips them', async () => {
  await freshModules();
  // Our push is -rlpt unless told otherwise (no -D without -a).
  await pushBoth(['-rlptgo', '--fake-super'], ['-o', '-g', '--fake-super']);
  await assertSamePushed('no -D');
  assert.not.ok((await readdir(join(theirs.dir, 'o'))).includes('fifo'));
});

test('-X with --fake-super: the records are not sent as xattrs (the user ones are)', async () => {
  setX(join(stored, 'plain'), 'user.colour', 'blue');
  try {
    await freshModules();
    await pushBoth(['-aX', '--fake-super']);
    await assertSamePushed('-X');
    for (const name of ['t', 'o']) {
      const path = Buffer.from(join(theirs.dir, name, 'setuid'));
      assert.is(calls().get(path, XSTAT_ATTR), null, `${name}: no record on the daemon`);
      assert.is(calls().get(Buffer.from(join(theirs.dir, name, 'plain')), Buffer.from('user.colour'))?.toString(), 'blue');
    }
  } finally {
    calls().remove(Buffer.from(join(stored, 'plain')), Buffer.from('user.colour'));
  }
});

test('-XX conflicts with --fake-super (rsync\'s words), -A refused by name; nothing written', async () => {
  await freshModules();
  const theirsXX = await run('rsync', ['-aXX', '--fake-super', `${stored}/`, daemonUrl(theirs, 't/')]);
  assert.match(theirsXX.stderr.toString(), '--fake-super conflicts with -XX');
  const xx = await lsyncd(['--once', '-aXX', '--fake-super', `${stored}/`, daemonUrl(theirs, 'o/')]);
  assert.is(xx.status, 1, runText(xx));
  assert.match(xx.stderr.toString(), '--fake-super conflicts with -XX');
  const acls = await lsyncd(['--once', '-aA', '--fake-super', `${stored}/`, daemonUrl(theirs, 'o/')]);
  assert.is(acls.status, 1, runText(acls));
  assert.match(acls.stderr.toString(), '--fake-super with -A/--acls');
  assert.equal(await readdir(join(theirs.dir, 'o')), []);
});

test('a corrupt record: the push fails with rsync\'s error and exit code', async () => {
  const bad = join(work, 'bad');
  await rm(bad, { recursive: true, force: true });
  await mkdir(bad);
  await writeFile(join(bad, 'f'), 'x');
  setX(join(bad, 'f'), 'user.rsync.%stat', 'not a record');
  await freshModules();
  const t = await run('rsync', ['-a', '--fake-super', `${bad}/`, daemonUrl(theirs, 't/')]);
  const o = await lsyncd(['--once', '-a', '--fake-super', `${bad}/`, daemonUrl(theirs, 'o/')]);
  assert.is.not(t.status, 0, runText(t));
  assert.is(o.status, t.status, `${runText(o)}\n--- rsync:\n${runText(t)}`);
  assert.match(t.stderr.toString(), 'Corrupt user.rsync.%stat xattr attached to');
  assert.match(o.stderr.toString(), 'Corrupt user.rsync.%stat xattr attached to');
  assert.equal(await readdir(join(theirs.dir, 'o')), []);
});

test.run();
