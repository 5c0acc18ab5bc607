// Conformance of the receiving side's options (issue 10: what a daemon's generator and receiver
// must do for a client's push, tested now through our pull): the same pull done by the rsync binary
// and by lsyncd from one real rsync daemon, into two local trees prepared alike, must leave them
// identical (names, types, sizes, content, modes, mtimes, symlink targets, hard-link groups), with
// rsync's exit code and --stats counts: the --delete-WHEN modes (each with --delete-excluded),
// --max-delete, --force, --ignore-errors, --compare-dest/--copy-dest/--link-dest (with proof from
// the bytes: the daemon sends only the changed blocks against a basis dir's file), --fuzzy and
// -yy (a renamed big file costs a few bytes), --size-only, --ignore-existing, --existing,
// --update, --ignore-missing-args.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, mkdir, symlink, readFile, chmod, cp, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { startDaemon, rsyncVersion, type TestDaemon } from './helpers/daemon.js';
import { lsyncd, run, type RunResult } from './helpers/cli.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { pseudoRandom, setTime, setTimes, T0 } from './helpers/fstree.js';
import { DestTree, UnsafePathError } from '../src/transfer/dest-tree.js';
import { createServer, type AddressInfo } from 'node:net';
import { serverArgs, DEFAULT_TRANSFER, type TransferOptions } from '../protocol/args.js';

let daemon: TestDaemon;
let work: string;

test.before(async () => {
  daemon = await startDaemon({
    extraModules: [
      { name: 'src', comment: 'pull source', settings: { 'read only': true } },
      // A sender that cannot read everything (an unreadable directory gives it IOERR_GENERAL).
      { name: 'nobody', comment: 'pull source as nobody', settings: { 'read only': true, uid: 'nobody', gid: 'nogroup' } },
    ],
  });
  work = await mkdtemp(join(tmpdir(), 'lsyncd-pullopt-'));
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

const moduleDir = (name: string, module = 'src') => join(daemon.modulePath(module), name);
const side = (which: 'ref' | 'ours', name: string, sub = 'dest') => join(work, which, name, sub);

/** The same local state on both sides: `prepare` runs once per side, on that side's case directory. */
async function prepareBoth(name: string, prepare: (root: string) => Promise<void>): Promise<void> {
  for (const which of ['ref', 'ours'] as const) {
    await rm(join(work, which, name), { recursive: true, force: true });
    await mkdir(join(work, which, name), { recursive: true });
    await prepare(join(work, which, name));
  }
}

const STAT_LABELS = [
  'Number of files',
  'Number of created files',
  'Number of deleted files',
  'Number of regular files transferred',
  'Total file size',
  'Total transferred file size',
  'Literal data',
  'Matched data',
];

interface Both {
  ref: RunResult;
  got: RunResult;
}

/**
 * Pull module path `path` (default `name`) with rsync into ref/NAME/dest and with lsyncd into
 * ours/NAME/dest, the options given to both; both must exit `status` and print the same counts.
 */
async function pullBoth(name: string, options: string[], o: { protocol?: number; status?: number; module?: string; path?: string } = {}): Promise<Both> {
  const protocol = o.protocol ?? 32;
  const url = `rsync://127.0.0.1:${daemon.port}/${o.module ?? 'src'}/${o.path ?? name + '/'}`;
  const ref = await run('rsync', ['-rlpt', ...options, '--stats', '--no-inc-recursive', `--protocol=${Math.min(protocol, rsyncVersion().protocol)}`, url, side('ref', name) + '/']);
  const got = await lsyncd(['--once', '--stats', '--timeout', '20', '--protocol', String(protocol), ...options, url, side('ours', name) + '/']);
  const status = o.status ?? 0;
  assert.is(ref.status, status, `rsync ${options.join(' ')}: ${ref.stderr}\n${ref.stdout}`);
  assert.is(got.status, status, `lsyncd ${options.join(' ')}: ${got.stderr}\n${got.stdout}`);
  for (const label of STAT_LABELS) {
    const line = (text: string) => text.split('\n').find((l) => l.startsWith(label + ':'));
    const theirs = line(ref.stdout.toString());
    if (theirs !== undefined) assert.is(line(got.stdout.toString()), theirs, `${label} (${options.join(' ')})\n--- rsync:\n${ref.stdout}\n--- ours:\n${got.stdout}`);
  }
  return { ref, got };
}

/** ref/NAME and ours/NAME (dest and any basis dirs beside it, hard links across them) are the same. */
async function assertSame(name: string, message: string): Promise<void> {
  const want = await snapshot(join(work, 'ref', name));
  const have = await snapshot(join(work, 'ours', name));
  const diff = diffTrees(want, have);
  assert.equal(diff, [], `${message}\n${diff.slice(0, 20).join('\n')}`);
}

function statNumber(output: Buffer | string, label: string): number {
  const m = new RegExp(`${label}: ([\\d,]+)`).exec(output.toString());
  if (!m) throw new Error(`no "${label}" in output:\n${output}`);
  return Number(m[1]!.replace(/,/g, ''));
}

/** A small module tree: files in two levels, a symlink, an excluded-looking file. */
async function sourceTree(src: string): Promise<void> {
  await mkdir(join(src, 'sub/deeper'), { recursive: true });
  await writeFile(join(src, 'a.txt'), 'a new version of a\n');
  await writeFile(join(src, 'keep.txt'), 'kept as it is\n');
  await writeFile(join(src, 'sub/b.txt'), 'second file in subdir\n');
  await writeFile(join(src, 'sub/deeper/c.bin'), pseudoRandom(5000, 3));
  await symlink('a.txt', join(src, 'link'));
  await setTimes(src);
}

/** The destination before a deleting pull: older files, and extraneous ones at every level. */
async function staleDest(dest: string): Promise<void> {
  await mkdir(join(dest, 'sub/old/inner'), { recursive: true });
  await mkdir(join(dest, 'sub/deeper'), { recursive: true });
  await writeFile(join(dest, 'a.txt'), 'the old a\n');
  await writeFile(join(dest, 'keep.txt'), 'kept as it is\n');
  await writeFile(join(dest, 'extra.txt'), 'not on the daemon\n');
  await writeFile(join(dest, 'scratch.tmp'), 'excluded, deleted only with --delete-excluded\n');
  await writeFile(join(dest, 'sub/old/inner/x.txt'), 'deep extraneous\n');
  await writeFile(join(dest, 'sub/deeper/stale.bin'), 'extraneous too\n');
  await symlink('nowhere', join(dest, 'sub/extra-link'));
  await setTimes(dest, T0 - 100);
  await setTime(join(dest, 'keep.txt'), T0, 123456789);
}

/** The -i lines of an output: transfers ('>f') and deletions ('*deleting'), in order. */
function itemLines(out: Buffer): string[] {
  return out
    .toString()
    .split('\n')
    .filter((l) => l.startsWith('>f') || l.startsWith('*deleting'));
}

/** Whether every deletion is printed before (or after) every transfer. */
function deletionsOrdered(lines: string[], when: 'before' | 'after'): boolean {
  const del = lines.map((l, i) => (l.startsWith('*deleting') ? i : -1)).filter((i) => i >= 0);
  const xfer = lines.map((l, i) => (l.startsWith('>f') ? i : -1)).filter((i) => i >= 0);
  if (!del.length || !xfer.length) return false;
  return when === 'before' ? Math.max(...del) < Math.min(...xfer) : Math.min(...del) > Math.max(...xfer);
}

for (const protocol of [29, 30, 31, 32]) {
  test(`protocol ${protocol}: --delete, --delete-before, --delete-during, --del, --delete-delay, --delete-after leave rsync's tree, counts and order`, async () => {
    const name = `when${protocol}`;
    await sourceTree(moduleDir(name));
    for (const option of ['--delete', '--delete-before', '--delete-during', '--del', '--delete-delay', '--delete-after']) {
      await prepareBoth(name, (root) => staleDest(join(root, 'dest')));
      const { ref, got } = await pullBoth(name, [option, '-i', '--exclude=*.tmp'], { protocol });
      await assertSame(name, option);
      if (protocol >= 31) assert.ok(statNumber(got.stdout, 'Number of deleted files') > 0, option);
      // The same deletions (the excluded file protected), and when they happen.
      const deletions = (out: Buffer) => itemLines(out).filter((l) => l.startsWith('*deleting')).sort();
      assert.equal(deletions(got.stdout), deletions(ref.stdout), option);
      // A bare --delete is --delete-before below protocol 30 (rsync's choice), --delete-during from 30.
      const before = option === '--delete-before' || (option === '--delete' && protocol < 30);
      const when = before ? 'before' : option === '--delete-after' || option === '--delete-delay' ? 'after' : null;
      if (when) {
        assert.ok(deletionsOrdered(itemLines(ref.stdout), when), `rsync ${option}:\n${ref.stdout}`);
        assert.ok(deletionsOrdered(itemLines(got.stdout), when), `lsyncd ${option}:\n${got.stdout}`);
      }
    }
  });
}

test('--delete-excluded with every --delete-WHEN: the excluded local file goes too', async () => {
  const name = 'delexcl';
  await sourceTree(moduleDir(name));
  for (const option of ['--delete-before', '--delete-during', '--delete-delay', '--delete-after']) {
    await prepareBoth(name, (root) => staleDest(join(root, 'dest')));
    await pullBoth(name, [option, '--delete-excluded', '--exclude=*.tmp', '-i']);
    await assertSame(name, `${option} --delete-excluded`);
    for (const which of ['ref', 'ours'] as const) assert.not.ok(existsSync(join(side(which, name), 'scratch.tmp')), `${which} ${option}`);
  }
});

test('--max-delete=N: N deletions, the rest skipped with rsync\'s warning and exit 25; a directory left non-empty', async () => {
  const name = 'maxdel';
  await mkdir(moduleDir(name), { recursive: true });
  await writeFile(join(moduleDir(name), 'a.txt'), 'only file\n');
  await setTimes(moduleDir(name));
  for (const [option, max] of [['--delete', 3], ['--delete-after', 3], ['--delete-before', 0], ['--delete-delay', 6]] as const) {
    await prepareBoth(name, async (root) => {
      const dest = join(root, 'dest');
      await mkdir(join(dest, 'd'), { recursive: true });
      for (const f of ['x1', 'x2', 'x3', 'x4', 'x5']) await writeFile(join(dest, f), f);
      for (const f of ['d/f1', 'd/f2']) await writeFile(join(dest, f), f);
      await setTimes(dest);
    });
    const { ref, got } = await pullBoth(name, [option, `--max-delete=${max}`], { status: 25 });
    await assertSame(name, `${option} --max-delete=${max}`);
    const warning = (text: string) => /Deletions stopped due to --max-delete limit \(\d+ skipped\)/.exec(text)?.[0];
    assert.ok(warning(ref.stderr), ref.stderr);
    assert.is(warning(got.stderr), warning(ref.stderr), `${option} --max-delete=${max}`);
    const nonEmpty = (out: Buffer) => out.toString().includes('cannot delete non-empty directory: d');
    assert.is(nonEmpty(got.stdout), nonEmpty(ref.stdout), `"cannot delete non-empty directory"\n${ref.stdout}\n${got.stdout}`);
  }
});

test('--force: a non-empty directory makes way for a file without --delete, as rsync\'s', async () => {
  const name = 'force';
  await sourceTree(moduleDir(name));
  await prepareBoth(name, async (root) => {
    await mkdir(join(root, 'dest/a.txt/inside'), { recursive: true });
    await writeFile(join(root, 'dest/a.txt/inside/f'), 'in the way\n');
    await setTimes(join(root, 'dest'), T0 - 100);
  });
  await pullBoth(name, [], { status: 23 });
  await assertSame(name, 'without --force');
  await pullBoth(name, ['--force']);
  await assertSame(name, '--force');
});

test('--ignore-errors: the sender\'s I/O error stops deletion unless given (rsync\'s note, exit 23 both ways)', async () => {
  const name = 'ioerr';
  // The daemon runs this module as nobody: its directories must be reachable, one of them not.
  for (let dir = daemon.modulePath('nobody'); dir !== dirname(daemon.dir); dir = dirname(dir)) await chmod(dir, 0o755);
  await chmod(daemon.dir, 0o755);
  const src = moduleDir(name, 'nobody');
  await mkdir(join(src, 'locked'), { recursive: true });
  await writeFile(join(src, 'a.txt'), 'readable\n');
  await writeFile(join(src, 'locked/hidden'), 'unreadable to nobody\n');
  await setTimes(src);
  await chmod(join(src, 'locked'), 0);
  await chmod(src, 0o755);
  try {
    for (const options of [['--delete'], ['--delete', '--ignore-errors'], ['--delete-after', '--ignore-errors']]) {
      await prepareBoth(name, async (root) => {
        await mkdir(join(root, 'dest'), { recursive: true });
        await writeFile(join(root, 'dest/extra.txt'), 'extraneous\n');
        await setTimes(join(root, 'dest'), T0 - 100);
      });
      const { ref, got } = await pullBoth(name, options, { module: 'nobody', status: 23 });
      await assertSame(name, options.join(' '));
      const note = (out: Buffer) => out.toString().includes('IO error encountered -- skipping file deletion');
      assert.is(note(got.stdout), note(ref.stdout), `${options.join(' ')}\n--- rsync:\n${ref.stdout}\n--- ours:\n${got.stdout}`);
      assert.is(note(got.stdout), !options.includes('--ignore-errors'));
    }
  } finally {
    await chmod(join(src, 'locked'), 0o755);
  }
});

/** The module's tree for the basis-dir cases, and the basis dir beside each DEST. */
async function basisCase(name: string): Promise<{ big: Buffer }> {
  const src = moduleDir(name);
  await mkdir(join(src, 'sub'), { recursive: true });
  const big = pseudoRandom(300_000, 11);
  await writeFile(join(src, 'same.txt'), 'identical in the basis dir\n');
  await writeFile(join(src, 'touched.txt'), 'same data, another mtime there\n');
  await writeFile(join(src, 'sub/changed.bin'), big);
  await writeFile(join(src, 'new.txt'), 'in no basis dir\n');
  await writeFile(join(src, 'present.txt'), 'the daemon\'s version\n');
  await writeFile(join(src, 'only2.txt'), 'identical in the second basis dir only\n');
  await setTimes(src);
  await prepareBoth(name, async (root) => {
    const base = join(root, 'base');
    await mkdir(join(base, 'sub'), { recursive: true });
    await cp(join(src, 'same.txt'), join(base, 'same.txt'), { preserveTimestamps: true });
    await writeFile(join(base, 'touched.txt'), 'same data, another mtime there\n');
    const old = Buffer.from(big);
    old[150_000] ^= 0xff;
    await writeFile(join(base, 'sub/changed.bin'), old);
    await cp(join(src, 'present.txt'), join(base, 'present.txt'), { preserveTimestamps: true });
    await setTimes(base);
    await setTime(join(base, 'touched.txt'), T0 - 3600);
    await setTime(join(base, 'sub/changed.bin'), T0 - 60);
    const base2 = join(root, 'base2');
    await mkdir(base2, { recursive: true });
    await writeFile(join(base2, 'only2.txt'), 'identical in the second basis dir only\n');
    await setTimes(base2);
    await mkdir(join(root, 'dest'), { recursive: true });
    await writeFile(join(root, 'dest/present.txt'), 'a local version of another size\n');
    await setTimes(join(root, 'dest'), T0 - 7200);
  });
  return { big };
}

for (const kind of ['compare', 'copy', 'link'] as const) {
  for (const protocol of [28, 30, 32]) {
    // Below 29 one basis dir only (no basis type travels: the receiver falls back to it).
    const dirs = protocol >= 29 ? [`--${kind}-dest=../base`, `--${kind}-dest=../base2`] : [`--${kind}-dest=../base`];
    test(`protocol ${protocol}: --${kind}-dest (${dirs.length === 2 ? 'twice, ' : ''}relative to DEST): rsync's tree, hard links and delta against the basis dir's file`, async () => {
      const name = `${kind}dest${protocol}`;
      const { big } = await basisCase(name);
      const { got } = await pullBoth(name, dirs, { protocol });
      await assertSame(name, `--${kind}-dest`);
      // The 300 kB file was missing here: its basis dir's old copy served as the basis, so only
      // the changed block and the small new files crossed as literal data.
      const out = got.stdout.toString();
      assert.ok(statNumber(out, 'Literal data') < 5000, out);
      assert.ok(statNumber(out, 'Matched data') > 290_000, out);
      assert.ok(statNumber(out, 'Total bytes received') < 10_000, out);
      assert.ok((await readFile(join(side('ours', name), 'sub/changed.bin'))).equals(big));
    });
  }
}

test('--fuzzy: a renamed big file is rebuilt from its old name in the directory (few bytes), as rsync picks it', async () => {
  const name = 'fuzzy';
  const src = moduleDir(name);
  await mkdir(join(src, 'data'), { recursive: true });
  const big = pseudoRandom(400_000, 21);
  await writeFile(join(src, 'data/report-2025.csv'), big);
  await writeFile(join(src, 'data/notes.txt'), 'notes\n');
  await setTimes(src);
  await prepareBoth(name, async (root) => {
    await mkdir(join(root, 'dest/data'), { recursive: true });
    const old = Buffer.from(big);
    old.fill(0x41, 200_000, 200_010);
    await writeFile(join(root, 'dest/data/report-2024.csv'), old);
    // Other candidates, farther by name or by size.
    await writeFile(join(root, 'dest/data/zzz.dat'), pseudoRandom(1000, 5));
    await writeFile(join(root, 'dest/data/report-2024.txt'), pseudoRandom(400_000, 99));
    await setTimes(join(root, 'dest'), T0 - 100);
  });
  const { got } = await pullBoth(name, ['-y']);
  await assertSame(name, '-y');
  const out = got.stdout.toString();
  assert.ok(statNumber(out, 'Literal data') < 5000, out);
  assert.ok(statNumber(out, 'Matched data') > 390_000, out);
  assert.ok(statNumber(out, 'Total bytes received') < 10_000, out);
  // Without --fuzzy the whole file crosses.
  await prepareBoth(name, async (root) => {
    await mkdir(join(root, 'dest/data'), { recursive: true });
    await writeFile(join(root, 'dest/data/report-2024.csv'), big);
  });
  const plain = await pullBoth(name, []);
  assert.ok(statNumber(plain.got.stdout, 'Literal data') >= 400_000);
});

test('-yy with --copy-dest: a file moved to another directory is rebuilt from the old directory\'s similar file', async () => {
  const name = 'fuzzy2';
  const src = moduleDir(name);
  await mkdir(join(src, 'new'), { recursive: true });
  const big = pseudoRandom(300_000, 31);
  await writeFile(join(src, 'new/video-final.bin'), big);
  await setTimes(src);
  await prepareBoth(name, async (root) => {
    // The old copy sits in the basis dir's "new/" under another name (a rename across directories
    // as the live mirror pushes it).
    await mkdir(join(root, 'old/new'), { recursive: true });
    const old = Buffer.from(big);
    old.fill(0x42, 1000, 1010);
    await writeFile(join(root, 'old/new/video-draft.bin'), old);
    await setTimes(join(root, 'old'), T0 - 100);
    await mkdir(join(root, 'dest'), { recursive: true });
  });
  const { got } = await pullBoth(name, ['-yy', '--copy-dest=../old']);
  await assertSame(name, '-yy --copy-dest');
  const out = got.stdout.toString();
  assert.ok(statNumber(out, 'Literal data') < 5000, out);
  assert.ok(statNumber(out, 'Total bytes received') < 10_000, out);
  // One -y looks only in the destination's own directory: the whole file crosses.
  await prepareBoth(name, async (root) => {
    await mkdir(join(root, 'old/new'), { recursive: true });
    await writeFile(join(root, 'old/new/video-draft.bin'), big);
    await setTimes(join(root, 'old'), T0 - 100);
    await mkdir(join(root, 'dest'), { recursive: true });
  });
  const one = await pullBoth(name, ['-y', '--copy-dest=../old']);
  await assertSame(name, '-y --copy-dest');
  assert.ok(statNumber(one.got.stdout, 'Literal data') >= 300_000);
});

test('below protocol 29: --fuzzy and a second basis dir refused with rsync\'s words (exit 2)', async () => {
  const name = 'old-protocol';
  await sourceTree(moduleDir(name));
  for (const options of [['-y'], ['--copy-dest=../a', '--copy-dest=../b']]) {
    await prepareBoth(name, async () => {});
    const { ref, got } = await pullBoth(name, options, { protocol: 28, status: 2 });
    const reason = (text: string) => /(--fuzzy requires|Using more than one --copy-dest option requires) protocol 29 or higher \(negotiated 28\)\./.exec(text)?.[0];
    assert.ok(reason(ref.stderr), ref.stderr);
    assert.is(reason(got.stderr), reason(ref.stderr), got.stderr);
  }
});

test('--size-only, --ignore-existing, --existing, --update: which local files stay, as rsync decides', async () => {
  const name = 'skips';
  const src = moduleDir(name);
  await mkdir(join(src, 'newdir'), { recursive: true });
  await writeFile(join(src, 'same-size.txt'), 'daemon version 1\n');
  await writeFile(join(src, 'newer-here.txt'), 'the daemon has an older one\n');
  await writeFile(join(src, 'older-here.txt'), 'the daemon has a newer one\n');
  await writeFile(join(src, 'new.txt'), 'only on the daemon\n');
  await writeFile(join(src, 'newdir/x.txt'), 'in a new directory\n');
  await setTimes(src);
  for (const option of ['--size-only', '--ignore-existing', '--existing', '--ignore-non-existing', '--update', '-u']) {
    await prepareBoth(name, async (root) => {
      const dest = join(root, 'dest');
      await mkdir(dest, { recursive: true });
      await writeFile(join(dest, 'same-size.txt'), 'LOCAL  version 2\n');
      await writeFile(join(dest, 'newer-here.txt'), 'a local one, newer\n');
      await writeFile(join(dest, 'older-here.txt'), 'a local one, older\n');
      await setTimes(dest, T0 - 500);
      await setTime(join(dest, 'newer-here.txt'), T0 + 500);
    });
    await pullBoth(name, [option]);
    await assertSame(name, option);
  }
});

test('--ignore-missing-args: a missing path is no error (rsync\'s exit 0, nothing made)', async () => {
  const name = 'missing';
  await prepareBoth(name, async () => {});
  // A missing file named without a trailing slash (with one, the sender's chdir fails whatever the option).
  const { ref, got } = await pullBoth(name, ['--ignore-missing-args'], { path: 'not-there' });
  assert.not.match(got.stderr, /error/i, got.stderr);
  assert.is(got.stderr.includes('No such file'), ref.stderr.includes('No such file'));
  await assertSame(name, '--ignore-missing-args');
});

test('DestTree basis dirs: confined to the module for a daemon, no symlink followed on the way to a basis file', async () => {
  const root = join(work, 'confine');
  const module = join(root, 'module');
  await mkdir(join(module, 'dest'), { recursive: true });
  await mkdir(join(module, 'base/sub'), { recursive: true });
  await mkdir(join(root, 'outside'), { recursive: true });
  await writeFile(join(module, 'base/sub/f'), 'basis\n');
  await writeFile(join(root, 'outside/f'), 'secret\n');
  await symlink('../../outside', join(module, 'base/escape'));
  await symlink(join(root, 'outside'), join(module, 'linked-base'));
  await symlink('f', join(module, 'base/sub/link-to-f'));
  const attrs = { perms: true, times: true, owner: false, group: false, umask: 0o022, modifyWindow: 0 };
  const threw = (f: () => unknown) => {
    try {
      f();
      return null;
    } catch (e) {
      return e;
    }
  };
  // Lexically outside the module: refused at once.
  assert.instance(threw(() => new DestTree(join(module, 'dest'), attrs, { basisDirs: ['../../outside'], confineBasisTo: module })), UnsafePathError);
  const tree = new DestTree(join(module, 'dest'), attrs, { basisDirs: ['../base', '../linked-base', '../missing'], confineBasisTo: module });
  // A basis file below the basis dir is read; one through a symlinked parent is refused; a final symlink is no basis.
  assert.is((await tree.lstat(Buffer.from('sub/f'), 0))?.size, 6);
  const basis = await tree.openBasis(Buffer.from('sub/f'), 0);
  assert.is(basis?.size, 6);
  await basis?.close();
  assert.instance(await Promise.resolve().then(() => tree.lstat(Buffer.from('escape/f'), 0)).catch((e: unknown) => e), UnsafePathError);
  assert.is(await tree.openBasis(Buffer.from('sub/link-to-f'), 0), null);
  // A basis dir that is itself a symlink inside the module: refused; a missing one is empty.
  assert.instance(await Promise.resolve().then(() => tree.lstat(Buffer.from('f'), 1)).catch((e: unknown) => e), UnsafePathError);
  assert.is(await tree.lstat(Buffer.from('f'), 2), null);
  assert.equal(await tree.list(Buffer.from('.'), 2), []);
  assert.is(await tree.lstat(Buffer.from('f'), 7), null, 'an index past the basis dirs');
  // --link-dest: a hard link to the basis file; never to a directory.
  await tree.link(Buffer.from('f'), Buffer.from('sub/f'), 0);
  assert.is((await lstat(join(module, 'dest/f'))).ino, (await lstat(join(module, 'base/sub/f'))).ino);
  assert.ok(await tree.link(Buffer.from('d'), Buffer.from('sub'), 0).then(() => false, () => true));
  // Unconfined (our own pull): the operator's basis path is followed as given.
  const operator = new DestTree(join(module, 'dest'), attrs, { basisDirs: ['../linked-base'] });
  assert.is((await operator.lstat(Buffer.from('f'), 0))?.size, 7);
});

/**
 * The argument list a real rsync client sends for `args` (a pull from, or a push to, a listening
 * stand-in daemon that greets at protocol 32, takes the module and records the list).
 */
async function rsyncClientArgs(args: string[], push: boolean): Promise<string[]> {
  let got: string[] = [];
  const server = createServer((socket) => {
    let buf = Buffer.alloc(0);
    let stage = 0;
    socket.write('@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n');
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (stage < 2) {
          const nl = buf.indexOf(0x0a);
          if (nl < 0) return;
          buf = buf.subarray(nl + 1);
          if (++stage === 2) socket.write('@RSYNCD: OK\n');
          continue;
        }
        const end = buf.indexOf(Buffer.from([0, 0]));
        if (end < 0) return;
        got = buf.subarray(0, end).toString().split('\0');
        socket.destroy();
        return;
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const local = join(work, 'argsrc');
  await mkdir(local, { recursive: true });
  const url = `rsync://127.0.0.1:${port}/mod/path/`;
  await run('rsync', ['-rlpt', '--no-inc-recursive', ...args, ...(push ? [local + '/', url] : [url, join(work, 'argdest') + '/'])]);
  server.close();
  return got;
}

/** Our list for the same options, the client's capability letters (after 'e') left out of both. */
const withoutCapabilities = (args: string[]) => args.map((a) => (/^-[a-zA-Z]*e\./.test(a) ? a.replace(/e\.[A-Za-z]*$/, '') : a));

test('serverArgs: what rsync\'s client sends for the receiving side\'s options, on a pull (most stay home) and on a push', async () => {
  const base: TransferOptions = { ...DEFAULT_TRANSFER, delete: false };
  const cases: Array<{ args: string[]; push: boolean; ours: Partial<TransferOptions> }> = [
    {
      args: ['-u', '--delete-missing-args', '--ignore-errors', '--size-only', '--delete-after', '--max-delete=3', '--copy-dest=x', '-y', '--existing', '--ignore-existing', '--force'],
      push: false,
      ours: { update: true, deleteMissingArgs: true, ignoreErrors: true, sizeOnly: true, deleteWhen: 'after', maxDelete: 3, altDest: { kind: 'copy', dirs: ['x'] }, fuzzy: 1, existing: true, ignoreExisting: true, force: true },
    },
    { args: ['--ignore-missing-args', '--delete'], push: false, ours: { ignoreMissingArgs: true, delete: true } },
    {
      args: ['--delete-delay', '--max-delete=0', '--force', '--size-only', '--ignore-existing', '--existing', '-u', '--link-dest=a', '--link-dest=b c', '-yy', '--ignore-errors', '--delete-excluded', '--delete-missing-args'],
      push: true,
      ours: { deleteWhen: 'delay', maxDelete: 0, force: true, sizeOnly: true, ignoreExisting: true, existing: true, update: true, altDest: { kind: 'link', dirs: ['a', 'b c'] }, fuzzy: 2, ignoreErrors: true, deleteExcluded: true, deleteMissingArgs: true },
    },
    { args: ['--delete-before', '--ignore-missing-args', '--compare-dest=../old', '--compare-dest=od\\d [1]*$x'], push: true, ours: { deleteWhen: 'before', ignoreMissingArgs: true, altDest: { kind: 'compare', dirs: ['../old', 'od\\d [1]*$x'] } } },
    { args: ['--delete', '--delete-during', '--max-delete=7'], push: true, ours: { deleteWhen: 'during', delete: true, maxDelete: 7 } },
  ];
  for (const c of cases) {
    const theirs = await rsyncClientArgs(c.args, c.push);
    assert.ok(theirs.length > 3, `rsync ${c.args.join(' ')}: nothing recorded`);
    const ours = serverArgs({ ...base, ...c.ours }, 32, 'mod/path/', !c.push);
    assert.equal(withoutCapabilities(ours), withoutCapabilities(theirs), c.args.join(' '));
  }
});

test('option mistakes: the reason in one line, as rsync words it (exit 1)', async () => {
  const url = `rsync://127.0.0.1:${daemon.port}/src/x/`;
  const cases: Array<[string[], RegExp]> = [
    [['--delete-before', '--delete-after'], /You may not combine multiple --delete-WHEN options/],
    [['--copy-dest=a', '--link-dest=b'], /the --link-dest option conflicts with the --copy-dest option/],
    [Array.from({ length: 21 }, (_, i) => `--compare-dest=d${i}`), /more than 20 --compare-dest options/],
    [['-yyy'], /--fuzzy/],
  ];
  for (const [options, message] of cases) {
    const got = await lsyncd(['--once', ...options, url, join(work, 'never') + '/']);
    assert.is(got.status, 1, `${options.join(' ')}: ${got.stderr}`);
    // One line with the reason, then the exit line, as for every usage error of ours.
    const [reason, ...rest] = got.stderr.trim().split('\n');
    assert.match(reason!, message);
    assert.equal(rest, ['lsyncd error: syntax or usage error (code 1)'], got.stderr);
  }
});

test.run();
