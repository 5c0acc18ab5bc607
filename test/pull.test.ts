// Conformance of the pull (issue 6): the same module tree pulled by the rsync binary into one local
// directory and by lsyncd into another must come out identical (names, types, sizes, content,
// modes, mtimes, symlink targets, hard-link groups), at protocols 29-32, through a sequence of
// changes on the daemon side: initial, no change, a one-byte change (only a delta crosses),
// grow/shrink, type swaps, deletes with --delete, chmod/touch; plus -c, -W, -n, -H, excludes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, appendFile, truncate, chmod, mkdir, unlink, symlink, readFile, link, lstat, chown, lchown } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, rsyncVersion, type TestDaemon } from './helpers/daemon.js';
import { lsyncd, run } from './helpers/cli.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { makeTree, setTimes, setTime, T0 } from './helpers/fstree.js';
import { setTimesPath } from '../src/addon.js';

let daemon: TestDaemon;
let work: string;

test.before(async () => {
  daemon = await startDaemon({ extraModules: [{ name: 'src', comment: 'pull source', settings: { 'read only': true } }] });
  work = await mkdtemp(join(tmpdir(), 'lsyncd-pull-'));
  await mkdir(join(work, 'ref'));
  await mkdir(join(work, 'ours'));
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

const url = (path: string) => `rsync://127.0.0.1:${daemon.port}/src/${path}/`;
const moduleDir = (name: string) => join(daemon.modulePath('src'), name);

/** Pull module path `name` with rsync into ref/name and with lsyncd into ours/name; return lsyncd's run. */
async function pullBoth(name: string, protocol: number, ours: string[] = [], theirs: string[] = ['-rlpt']) {
  const rsyncProtocol = Math.min(protocol, rsyncVersion().protocol);
  const ref = await run('rsync', [...theirs, '--stats', '--no-inc-recursive', `--protocol=${rsyncProtocol}`, url(name), join(work, 'ref', name) + '/']);
  assert.is(ref.status, 0, `rsync: ${ref.stderr}`);
  const got = await lsyncd(['--once', '--stats', '--timeout', '20', '--protocol', String(protocol), ...ours, url(name), join(work, 'ours', name) + '/']);
  assert.is(got.status, 0, `lsyncd: ${got.stderr}\n${got.stdout.toString()}`);
  // The --stats lines that do not depend on timing or on our wire choices are rsync's.
  for (const label of ['Number of files', 'Number of created files', 'Number of deleted files', 'Number of regular files transferred', 'Total file size', 'Total transferred file size']) {
    const line = (text: string) => text.split('\n').find((l) => l.startsWith(label + ':'));
    const theirs = line(ref.stdout.toString());
    if (theirs !== undefined || protocol >= 29) assert.is(line(got.stdout.toString()), theirs, `${label}\n--- rsync:\n${ref.stdout}\n--- ours:\n${got.stdout}`); // rsync < 29 prints no created/deleted counts
  }
  return got;
}

async function assertSame(name: string, message = '', options: { rootTimes?: boolean } = {}) {
  const rootTimes = options.rootTimes ?? true;
  const want = await snapshot(join(work, 'ref', name), { rootTimes });
  const have = await snapshot(join(work, 'ours', name), { rootTimes });
  const diff = diffTrees(want, have);
  assert.equal(diff, [], `${message}\n${diff.slice(0, 20).join('\n')}`);
}

function statNumber(output: string, label: string): number {
  const m = new RegExp(`${label}: ([\\d,]+)`).exec(output);
  if (!m) throw new Error(`no "${label}" in output:\n${output}`);
  return Number(m[1]!.replace(/,/g, ''));
}

for (const protocol of [27, 28, 29, 30, 31, 32]) {
  test(`protocol ${protocol}: initial pull, then a sequence of changes on the daemon side, identical to rsync's each time`, async () => {
    const name = `seq${protocol}`;
    const src = moduleDir(name);
    await makeTree(src);

    // 1. Initial pull into an empty (missing) DEST.
    const first = await pullBoth(name, protocol);
    await assertSame(name, 'initial pull');
    assert.ok(statNumber(first.stdout.toString(), 'Number of regular files transferred') >= 10);

    // 2. Nothing changed: nothing transferred.
    const again = await pullBoth(name, protocol);
    assert.is(statNumber(again.stdout.toString(), 'Number of regular files transferred'), 0);
    await assertSame(name, 'no-change pull');

    // 3. One byte changed in a 300 kB file: only a delta crosses the wire.
    const big = await readFile(join(src, 'big.bin'));
    big[150_000] ^= 0xff;
    await writeFile(join(src, 'big.bin'), big);
    await setTime(join(src, 'big.bin'), T0 + 60);
    const delta = await pullBoth(name, protocol);
    const out = delta.stdout.toString();
    assert.is(statNumber(out, 'Number of regular files transferred'), 1, out);
    assert.ok(statNumber(out, 'Literal data') < 5000, `literal data: ${out}`);
    assert.ok(statNumber(out, 'Matched data') > 290_000, out);
    assert.ok(statNumber(out, 'Total bytes received') < 10_000, out);
    await assertSame(name, 'one byte changed');

    // 4. Grow and shrink; chmod and touch only.
    await appendFile(join(src, 'a.txt'), 'one more line\n');
    await truncate(join(src, 'sub/deeper/c.bin'), 1000);
    await chmod(join(src, 'run.sh'), 0o700);
    await setTime(join(src, 'empty'), T0 + 3600);
    await setTimes(src, T0 + 120);
    await pullBoth(name, protocol);
    await assertSame(name, 'grow, shrink, chmod, touch');

    // 5. Type swaps: file -> dir, dir -> symlink, symlink -> file.
    await unlink(join(src, 'a.txt'));
    await mkdir(join(src, 'a.txt'));
    await writeFile(join(src, 'a.txt/inside'), 'was a file\n');
    await rm(join(src, 'sub'), { recursive: true });
    await symlink('private', join(src, 'sub'));
    await unlink(join(src, 'link'));
    await writeFile(join(src, 'link'), 'was a symlink\n');
    await setTimes(src, T0 + 180);
    // A non-empty directory in the way of a symlink goes only with --delete (rsync: "could not make way").
    // Both sides try without it first (exit 23, everything else done), then with it.
    const refusedRef = await run('rsync', ['-rlpt', '--no-inc-recursive', `--protocol=${Math.min(protocol, rsyncVersion().protocol)}`, url(name), join(work, 'ref', name) + '/']);
    assert.is(refusedRef.status, 23, refusedRef.stderr);
    const refused = await lsyncd(['--once', '--protocol', String(protocol), url(name), join(work, 'ours', name) + '/']);
    assert.is(refused.status, 23, refused.stderr);
    assert.match(refused.stderr, /could not make way for new symlink: sub/);
    await assertSame(name, 'type swaps refused without --delete');
    await pullBoth(name, protocol, ['--delete'], ['-rlpt', '--delete']);
    await assertSame(name, 'type swaps');
  });
}

test('an up-to-date file or directory with local attribute changes gets the daemon\'s mode back, as with rsync', async () => {
  const name = 'attrs';
  const src = moduleDir(name);
  await makeTree(src);
  await pullBoth(name, 31);
  for (const side of ['ref', 'ours']) {
    await chmod(join(work, side, name, 'run.sh'), 0o600);
    await chmod(join(work, side, name, 'sub'), 0o700);
  }
  const again = await pullBoth(name, 31);
  assert.is(statNumber(again.stdout.toString(), 'Number of regular files transferred'), 0);
  assert.is((await lstat(join(work, 'ours', name, 'run.sh'))).mode & 0o7777, (await lstat(join(src, 'run.sh'))).mode & 0o7777);
  assert.is((await lstat(join(work, 'ours', name, 'sub'))).mode & 0o7777, (await lstat(join(src, 'sub'))).mode & 0o7777);
  await assertSame(name, 'modes restored');
});

test('a 36 MiB file: block sums and the whole-file digest on the helper thread, the same delta and result as rsync', async () => {
  const name = 'bigdelta';
  const src = moduleDir(name);
  await mkdir(src, { recursive: true });
  const data = Buffer.alloc(36 * 1024 * 1024);
  let x = 1;
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((x = (Math.imul(x, 1664525) + 1013904223) >>> 0), i);
  await writeFile(join(src, 'big.bin'), data);
  await setTime(join(src, 'big.bin'), T0);
  await pullBoth(name, 31);
  for (const at of [5_000, 17 * 1024 * 1024, data.length - 100]) data.fill(0x5a, at, at + 64);
  await writeFile(join(src, 'big.bin'), data);
  await setTime(join(src, 'big.bin'), T0 + 60);
  const got = await pullBoth(name, 31);
  assert.is(statNumber(got.stdout.toString(), 'Number of regular files transferred'), 1);
  // Only the changed blocks travel as literal data (three blocks of ~6 KB at most).
  assert.ok(statNumber(got.stdout.toString(), 'Literal data') < 100_000, got.stdout.toString());
  assert.ok((await readFile(join(work, 'ours', name, 'big.bin'))).equals(data));
  // rsync's own copy of the top directory's mtime is racy here: its generator restores directory
  // times while its receiver may still be renaming the big file into place. Ours is compared with
  // the daemon's directory instead.
  await assertSame(name, 'big delta', { rootTimes: false });
  const mtime = async (dir: string) => (await lstat(dir, { bigint: true })).mtimeNs;
  assert.is(await mtime(join(work, 'ours', name)), await mtime(src), "the top directory's mtime");
});

test('--delete removes local extraneous files (only when asked), as rsync does', async () => {
  const name = 'del';
  const src = moduleDir(name);
  await makeTree(src);
  await pullBoth(name, 32);
  for (const side of ['ref', 'ours']) {
    await writeFile(join(work, side, name, 'extra.txt'), 'local only\n');
    await mkdir(join(work, side, name, 'extradir/deep'), { recursive: true });
    await writeFile(join(work, side, name, 'extradir/deep/x'), 'x\n');
    await symlink('/', join(work, side, name, 'sub/extralink'));
    for (const p of ['sub/extralink', 'extra.txt', 'extradir/deep/x', 'extradir/deep', 'extradir']) await setTime(join(work, side, name, p), T0);
    await setTime(join(work, side, name, 'sub'), T0);
  }
  // Without --delete the extras stay.
  await pullBoth(name, 32);
  assert.ok((await lstat(join(work, 'ours', name, 'extra.txt'))).isFile());
  await assertSame(name, 'without --delete');
  // With --delete they go (the symlink itself, not what it points to).
  await pullBoth(name, 32, ['--delete'], ['-rlpt', '--delete']);
  await assertSame(name, 'with --delete');
  assert.ok((await lstat('/etc/hostname').catch(() => null)) !== undefined);
});

test('-a -H: hard links pulled as hard links; -c and -W; excludes protect and filter', async () => {
  const name = 'hl';
  const src = moduleDir(name);
  await makeTree(src);
  await link(join(src, 'a.txt'), join(src, 'hard-a'));
  await link(join(src, 'sub/b.txt'), join(src, 'sub/deeper/hard-b'));
  await setTimes(src);
  await pullBoth(name, 32, ['-a', '-H'], ['-aH']);
  await assertSame(name, '-a -H');
  const a = await lstat(join(work, 'ours', name, 'a.txt'));
  const h = await lstat(join(work, 'ours', name, 'hard-a'));
  assert.is(a.ino, h.ino, 'hard-a is a hard link of a.txt');

  // -c: same size and mtime but different content is transferred only with -c.
  const content = await readFile(join(src, 'sub/b.txt'));
  content[0] = 0x53;
  await writeFile(join(src, 'sub/b.txt'), content);
  await setTime(join(src, 'sub/b.txt'), T0, 123456789);
  await setTime(join(src, 'sub'), T0, 123456789);
  await pullBoth(name, 32, ['-a', '-H', '-c'], ['-aHc']);
  await assertSame(name, '-c');
  assert.equal(await readFile(join(work, 'ours', name, 'sub/b.txt')), content);

  // -I: the same file is transferred although size and mtime match (here: identical, all matched).
  const again = await pullBoth(name, 32, ['-a', '-H', '-I'], ['-aHI']);
  assert.ok(statNumber(again.stdout.toString(), 'Number of regular files transferred') >= 10);
  assert.is(statNumber(again.stdout.toString(), 'Literal data'), 0);
  await assertSame(name, '-I');

  // -W: a change travels whole.
  const big = await readFile(join(src, 'big.bin'));
  big[10] ^= 1;
  await writeFile(join(src, 'big.bin'), big);
  await setTime(join(src, 'big.bin'), T0 + 5);
  const whole = await pullBoth(name, 32, ['-a', '-H', '-W'], ['-aHW']);
  assert.ok(statNumber(whole.stdout.toString(), 'Literal data') >= 300_000);
  await assertSame(name, '-W');
});

for (const protocol of [28, 29, 30]) {
  test(`protocol ${protocol}: -a -H hard-link groups as rsync pulls them`, async () => {
    const name = `hl${protocol}`;
    const src = moduleDir(name);
    await makeTree(src);
    await link(join(src, 'a.txt'), join(src, 'hard-a'));
    await link(join(src, 'a.txt'), join(src, 'sub/hard-a2'));
    await link(join(src, 'sub/deeper/c.bin'), join(src, 'private/hard-c'));
    await setTimes(src);
    await pullBoth(name, protocol, ['-a', '-H'], ['-aH']);
    await assertSame(name, '-a -H');
    // A new member of an existing group, and a group split up.
    await link(join(src, 'a.txt'), join(src, 'hard-a3'));
    await unlink(join(src, 'private/hard-c'));
    await writeFile(join(src, 'private/hard-c'), 'no longer a link\n');
    await setTimes(src, T0 + 7);
    await pullBoth(name, protocol, ['-a', '-H'], ['-aH']);
    await assertSame(name, '-a -H after changes');
  });
}

test('-a as root: owners and groups as rsync sets them (named ids, an id without a name)', async () => {
  const name = 'owners';
  const src = moduleDir(name);
  await makeTree(src);
  await chown(join(src, 'a.txt'), 1, 1); // daemon:daemon on Debian
  await chown(join(src, 'sub/b.txt'), 65534, 65534); // nobody:nogroup
  await chown(join(src, 'empty'), 12345, 23456); // no names: the numbers travel as they are
  await lchown(join(src, 'link'), 1, 12345);
  await setTimes(src);
  await pullBoth(name, 32, ['-a'], ['-a']);
  await assertSame(name, '-a owners');
  assert.is((await lstat(join(work, 'ours', name, 'empty'))).uid, 12345);
  await pullBoth(name, 30, ['-a', '--numeric-ids'], ['-a', '--numeric-ids']);
  await assertSame(name, '-a --numeric-ids');
});

test('-a as root: devices and fifos created as rsync creates them; a fifo replaced by a file', async () => {
  const name = 'devices';
  const src = moduleDir(name);
  await makeTree(src);
  const mk = async (...args: string[]) => assert.is((await run(args[0]!, args.slice(1))).status, 0, args.join(' '));
  await mk('mknod', '-m', '0640', join(src, 'null-like'), 'c', '1', '3');
  await mk('mknod', '-m', '0600', join(src, 'sub/blockdev'), 'b', '7', '200');
  await mk('mkfifo', '-m', '0644', join(src, 'a-fifo'));
  await mk('mkfifo', join(src, 'will-be-file'));
  await setTimes(src);
  await pullBoth(name, 32, ['-a'], ['-a']);
  await assertSame(name, 'devices');
  await unlink(join(src, 'will-be-file'));
  await writeFile(join(src, 'will-be-file'), 'now a file\n');
  await unlink(join(src, 'null-like'));
  await mk('mknod', '-m', '0640', join(src, 'null-like'), 'c', '1', '5');
  await setTimes(src, T0 + 3);
  await pullBoth(name, 30, ['-a'], ['-a']);
  await assertSame(name, 'devices changed');
});

test('excludes: not pulled, and protected from --delete; -n changes nothing', async () => {
  const name = 'excl';
  const src = moduleDir(name);
  await makeTree(src);
  const opts = ['--exclude', '*.bin', '--exclude', 'private/'];
  await pullBoth(name, 31, opts, ['-rlpt', ...opts]);
  await assertSame(name, 'excludes');
  for (const side of ['ref', 'ours']) {
    await writeFile(join(work, side, name, 'local.bin'), 'kept: excluded\n');
    await setTime(join(work, side, name, 'local.bin'), T0);
  }
  await pullBoth(name, 31, [...opts, '--delete'], ['-rlpt', '--delete', ...opts]);
  await assertSame(name, 'excluded local file kept by --delete');

  // --delete-excluded: the excluded local file goes too.
  await pullBoth(name, 31, [...opts, '--delete-excluded'], ['-rlpt', '--delete-excluded', ...opts]);
  await assertSame(name, '--delete-excluded');
  assert.is(await lstat(join(work, 'ours', name, 'local.bin')).catch(() => null), null);

  // -n: a change on the daemon side is listed but not applied.
  await writeFile(join(src, 'a.txt'), 'changed\n');
  const before = await snapshot(join(work, 'ours', name));
  const dry = await lsyncd(['--once', '-n', '-i', url(name), join(work, 'ours', name) + '/']);
  assert.is(dry.status, 0, dry.stderr);
  assert.match(dry.stdout.toString(), />f.st...... a.txt/);
  assert.equal(diffTrees(before, await snapshot(join(work, 'ours', name))), []);
});

for (const protocol of [29, 32]) {
  test(`protocol ${protocol}: -i prints rsync's itemized lines (escaped names, deletions, created directory)`, async () => {
    const name = `itemize${protocol}`;
    const src = moduleDir(name);
    await makeTree(src);
    const both = async (extra: string[] = []) => {
      const ref = await run('rsync', ['-rlpt', '-i', '--no-inc-recursive', `--protocol=${protocol}`, ...extra, url(name), join(work, 'ref', name) + '/']);
      const got = await lsyncd(['--once', '-i', '--protocol', String(protocol), ...extra, url(name), join(work, 'ours', name) + '/']);
      assert.is(got.status, ref.status, got.stderr);
      const lines = (out: Buffer, side: string) =>
        out
          .toString('latin1')
          .split('\n')
          .filter((l) => l && !l.startsWith('Welcome') && !l.startsWith('Second motd'))
          .map((l) => l.replace(join(work, side, name), 'DEST'))
          .sort();
      assert.equal(lines(got.stdout, 'ours'), lines(ref.stdout, 'ref'));
      return lines(got.stdout, 'ours');
    };
    const first = await both();
    assert.ok(first.includes('created directory DEST'));
    assert.ok(first.some((l) => l.startsWith('>f+++++++++ new\\#012line')), first.join('\n'));
    assert.equal(await both(), []);
    await appendFile(join(src, 'a.txt'), 'more\n');
    await chmod(join(src, 'run.sh'), 0o700);
    await setTime(join(src, 'empty'), T0 + 99);
    for (const side of ['ref', 'ours']) await writeFile(join(work, side, name, 'extra'), 'x');
    assert.ok((await both(['--delete'])).includes('*deleting   extra'));
  });
}

test('a missing path on the daemon: exit 23 like rsync, nothing created', async () => {
  const ref = await run('rsync', ['-rlpt', url('no-such-dir'), join(work, 'ref', 'missing') + '/']);
  const got = await lsyncd(['--once', url('no-such-dir'), join(work, 'ours', 'missing') + '/']);
  assert.is(ref.status, 23, ref.stderr);
  assert.is(got.status, 23, got.stderr);
  assert.match(got.stderr, 'no-such-dir');
  assert.is(await lstat(join(work, 'ours', 'missing')).catch(() => null), null);
  assert.is(await lstat(join(work, 'ref', 'missing')).catch(() => null), null);
});

test('the daemon\'s messages as rsync shows them: the bytes through, escaped by locale (UTF-8 kept or \\#ooo), control characters \\#ooo', async () => {
  const name = 'gone-é\x01';
  const failed = (stderr: string) => stderr.split('\n').find((l) => l.includes('(in src) failed'));
  for (const [env, shown] of [[{ LC_ALL: 'C.UTF-8' }, 'gone-é\\#001"'], [{ LC_ALL: 'C' }, 'gone-\\#303\\#251\\#001"']] as const) {
    const ref = await run('rsync', ['-rlpt', url(name), join(work, 'ref', 'gone') + '/'], env);
    const got = await lsyncd(['--once', url(name), join(work, 'ours', 'gone') + '/'], env);
    assert.is(got.status, ref.status, got.stderr);
    assert.is(failed(got.stderr), failed(ref.stderr), `${env.LC_ALL}\n--- rsync:\n${ref.stderr}\n--- ours:\n${got.stderr}`);
    assert.ok(failed(got.stderr)?.includes(shown), got.stderr);
  }
});

test('mtimes to the nanosecond (protocol 31+), as rsync sets them: files, directories, symlinks', async () => {
  const name = 'nsec';
  const src = moduleDir(name);
  await mkdir(join(src, 'dir'), { recursive: true });
  await writeFile(join(src, 'dir/file'), 'sub-microsecond mtime\n');
  await symlink('dir/file', join(src, 'link'));
  const nsTime = (path: string, sec: number, nsec: number) => assert.ok(setTimesPath(Buffer.from(path), sec, nsec, false), 'the addon sets nanoseconds');
  nsTime(join(src, 'dir/file'), T0, 123_456_789);
  nsTime(join(src, 'link'), T0 + 1, 987_654_321);
  nsTime(join(src, 'dir'), T0 + 2, 111_111_111);
  nsTime(src, T0 + 3, 999_999_999);
  // Node's own utimes keeps microseconds: check the tree really has the nanoseconds.
  assert.is((await lstat(join(src, 'dir/file'), { bigint: true })).mtimeNs % 1000n, 789n);
  await pullBoth(name, 32);
  await assertSame(name, 'nanosecond mtimes');
  assert.is((await lstat(join(work, 'ours', name, 'link'), { bigint: true })).mtimeNs % 1_000_000_000n, 987_654_321n);
});

test.run();
