// The sender-side walk options (src/transfer/walk-options.ts): -L, --copy-unsafe-links, -x, -xx,
// -R and --no-implied-dirs. One tree (links inside and outside it, a dangling link, a tmpfs mount
// point) pushed into rsyncd by `rsync OPTION` and by ours, the trees compared exactly; and stock
// rsync pulling with OPTION from lsyncd serve and from rsyncd, the trees compared exactly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, mkdir, chmod, symlink, truncate } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type TestDaemon, type ConfiguredDaemon } from './helpers/daemon.js';
import { lsyncd, run, type RunResult } from './helpers/cli.js';
import { snapshot, diffTrees, type Tree } from './helpers/tree.js';
import { setTimes } from './helpers/fstree.js';
import { startBoth, runBoth, runText, type OurDaemon } from './helpers/serve.js';
import { readFilesFrom, relativeSource, FILES_FROM_MAX_BYTES } from '../src/transfer/walk-options.js';
import { RsyncError } from '../protocol/errors.js';

const ROOT = process.getuid?.() === 0;
let daemon: TestDaemon;
let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;
const mounts: string[] = [];

const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
${ROOT ? 'uid = root\ngid = root\n' : ''}
[src]
\tpath = ${dir}/src
\tread only = yes
`;

/**
 * `base/src`: files, a safe link to a file and to a directory, links pointing out of the tree
 * (relative and, when `absolute`, absolute) to a file and a directory of `base/outside`, a
 * dangling link, and `mnt`, a tmpfs mount point with a file inside.
 */
async function makeWalkTree(base: string, absolute: boolean): Promise<void> {
  const src = join(base, 'src');
  const outside = join(base, 'outside');
  await mkdir(join(src, 'sub', 'deep'), { recursive: true });
  await mkdir(join(outside, 'od'), { recursive: true });
  await writeFile(join(src, 'a'), 'top file\n');
  await writeFile(join(src, 'sub', 'b'), 'in sub\n');
  await writeFile(join(src, 'sub', 'deep', 'c'), 'deep file\n');
  await writeFile(join(outside, 'f'), 'outside file\n');
  await writeFile(join(outside, 'od', 'g'), 'outside dir file\n');
  await symlink('../a', join(src, 'sub', 'in'));
  await symlink('sub/deep', join(src, 'dirlink'));
  await symlink('../../outside/f', join(src, 'sub', 'up'));
  await symlink('../outside/od', join(src, 'outdir'));
  await symlink('nowhere', join(src, 'dangling'));
  if (absolute) await symlink(join(outside, 'f'), join(src, 'abs'));
  const mnt = join(src, 'mnt');
  await mkdir(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', mnt]);
  mounts.push(mnt);
  await mkdir(join(mnt, 'inner'));
  await writeFile(join(mnt, 'inner', 'm'), 'on the mount\n');
  await setTimes(src);
  await setTimes(outside);
}

test.before(async () => {
  assert.ok(ROOT, 'this suite mounts a tmpfs: it runs as root');
  daemon = await startDaemon();
  ({ ours, theirs } = await startBoth(CONFIG));
  work = await mkdtemp(join(tmpdir(), 'lsyncd-walkopt-'));
  await makeWalkTree(work, true);
  for (const dir of [ours.dir, theirs.dir]) {
    await chmod(dir, 0o755);
    await makeWalkTree(dir, false);
  }
});
test.after(async () => {
  for (const mnt of mounts) execFileSync('umount', [mnt]);
  await daemon?.stop();
  await ours?.stop();
  await theirs?.stop();
  await rm(work, { recursive: true, force: true });
});

const pushUrl = (dest: string) => `rsync://127.0.0.1:${daemon.port}/push/${dest}/`;

/**
 * The trees compared exactly, except the mtimes of `bare` directories: --no-implied-dirs makes
 * them as new directories, dated when they are made.
 */
function treeDiff(expected: Tree, actual: Tree, bare: readonly string[]): string[] {
  for (const name of bare) {
    for (const tree of [expected, actual]) {
      const node = tree.get(name);
      assert.ok(node, `${name} is there`);
      node.mtimeNs = 0n;
    }
  }
  return diffTrees(expected, actual);
}

/** rsync's push and ours with the same options into rsyncd: the same exit code, the same tree. */
async function comparePush(label: string, options: string[], source: string, bare: readonly string[] = []): Promise<{ r: RunResult; o: RunResult }> {
  const r = await run('rsync', ['-rlpt', '--delete', ...options, source, pushUrl(`r-${label}`)]);
  const o = await lsyncd(['--once', ...options, source, pushUrl(`o-${label}`)]);
  assert.is(o.status, r.status, `exit codes (${options.join(' ')})\nrsync: ${runText(r)}\nours: ${runText(o)}`);
  const theirTree = await snapshot(daemon.modulePath('push') + `/r-${label}`);
  const ourTree = await snapshot(daemon.modulePath('push') + `/o-${label}`);
  if (r.status === 0) assert.ok(theirTree.size > 0, 'rsync pushed something');
  assert.equal(treeDiff(theirTree, ourTree, bare), [], `trees differ (${options.join(' ')})\nrsync: ${runText(r)}\nours: ${runText(o)}`);
  return { r, o };
}

/** rsync pulling from lsyncd serve and from rsyncd with the same options: the same exit code, the same tree. */
async function comparePull(label: string, options: string[], path: string, bare: readonly string[] = []): Promise<{ o: RunResult; t: RunResult }> {
  const dests = { o: join(work, `pull-o-${label}`), t: join(work, `pull-t-${label}`) };
  const { o, t } = await runBoth({ ours, theirs }, ['-rlpt', ...options, `ADDR/${path}`, 'DEST/'], { dests });
  assert.is(o.status, t.status, `exit codes (${options.join(' ')})\nfrom ours: ${runText(o)}\nfrom rsyncd: ${runText(t)}`);
  const theirTree = await snapshot(dests.t);
  const ourTree = await snapshot(dests.o);
  assert.ok(theirTree.size > 0, 'rsyncd sent something');
  assert.equal(treeDiff(theirTree, ourTree, bare), [], `trees differ (${options.join(' ')})\nfrom ours: ${runText(o)}\nfrom rsyncd: ${runText(t)}`);
  return { o, t };
}

test('the tree has a mount point on another device', () => {
  const dev = (p: string) => Number(execFileSync('stat', ['-c', '%d', p]).toString());
  assert.is.not(dev(join(work, 'src', 'mnt')), dev(join(work, 'src')));
});

test('push: no walk option (links kept as links, the mount point walked)', async () => {
  const { o } = await comparePush('plain', [], `${work}/src/`);
  assert.is(o.status, 0, runText(o));
  const tree = await snapshot(daemon.modulePath('push') + '/o-plain');
  assert.is(tree.get('sub/up')?.type, 'symlink');
  assert.is(tree.get('mnt/inner/m')?.type, 'file');
});

test('push: -L lists every link as its referent; a dangling one is an error (exit 23)', async () => {
  const { o } = await comparePush('L', ['-L'], `${work}/src/`);
  assert.is(o.status, 23);
  assert.match(o.stderr, /symlink has no referent/);
  const tree = await snapshot(daemon.modulePath('push') + '/o-L');
  assert.is(tree.get('sub/up')?.type, 'file');
  assert.is(tree.get('abs')?.size, 'outside file\n'.length);
  assert.is(tree.get('outdir/g')?.type, 'file');
  assert.is(tree.get('dirlink/c')?.type, 'file');
});

test('push: --copy-unsafe-links follows only the links that leave the tree', async () => {
  const { o } = await comparePush('unsafe', ['--copy-unsafe-links'], `${work}/src/`);
  assert.is(o.status, 0, runText(o));
  const tree = await snapshot(daemon.modulePath('push') + '/o-unsafe');
  assert.is(tree.get('sub/in')?.type, 'symlink');
  assert.is(tree.get('dirlink')?.type, 'symlink');
  assert.is(tree.get('sub/up')?.type, 'file');
  assert.is(tree.get('abs')?.type, 'file');
  assert.is(tree.get('outdir')?.type, 'dir');
});

test('push: --copy-unsafe-links judges a link by its name with the source directory in it', async () => {
  // Without the trailing slash the names start with "src/": "../outside/od" from "src/outdir" stays inside.
  await comparePush('unsafe-noslash', ['--copy-unsafe-links'], `${work}/src`);
});

test('push: -x lists a mount point without its contents, -xx not at all', async () => {
  await comparePush('x', ['-x'], `${work}/src/`);
  const x = await snapshot(daemon.modulePath('push') + '/o-x');
  assert.is(x.get('mnt')?.type, 'dir');
  assert.not.ok(x.has('mnt/inner'));
  await comparePush('xx', ['-xx'], `${work}/src/`);
  assert.not.ok((await snapshot(daemon.modulePath('push') + '/o-xx')).has('mnt'));
});

test('push: -x with -L (a followed link to a directory on the same device is walked)', async () => {
  await comparePush('xL', ['-x', '-L'], `${work}/src/`);
});

test('push: -R keeps the path after "/./", its directories sent as implied ones', async () => {
  const { o } = await comparePush('R', ['-R'], `${work}/./src/sub/deep`);
  assert.is(o.status, 0, runText(o));
  const tree = await snapshot(daemon.modulePath('push') + '/o-R');
  assert.equal([...tree.keys()].sort(), ['src', 'src/sub', 'src/sub/deep', 'src/sub/deep/c']);
  await comparePush('R-slash', ['-R'], `${work}/./src/sub/`);
  await comparePush('R-dot', ['-R'], `${work}/src/./`);
});

test('push: -R --no-implied-dirs at protocol 32 and 29', async () => {
  await comparePush('R-noimp', ['-R', '--no-implied-dirs'], `${work}/./src/sub/deep`, ['src', 'src/sub']);
  // rsync 3.5's receiver refuses what it did not ask for below 30 ("ABORTING due to invalid path
  // from sender": the path's directories are missing); ours is refused the same way.
  const { o } = await comparePush('R-noimp29', ['-R', '--no-implied-dirs', '--protocol=29'], `${work}/./src/sub/deep`);
  assert.is(o.status, 12, runText(o));
  await comparePush('R-29', ['-R', '--protocol=29'], `${work}/./src/sub/deep`);
});

test('push: -R refuses a ".." in the kept path, as rsync does', async () => {
  const r = await run('rsync', ['-rlpt', '-R', `${work}/./src/../src/a`, pushUrl('r-dotdot')]);
  const o = await lsyncd(['--once', '-R', `${work}/./src/../src/a`, pushUrl('o-dotdot')]);
  assert.is(o.status, r.status, `${runText(r)}\n${runText(o)}`);
  assert.match(o.stderr, /found "\.\." dir in relative path/);
});

test('push: --files-from (a local list, with comments, dirs and nested names; and --from0)', async () => {
  const list = join(work, 'list.txt');
  await writeFile(list, '# a comment\n; another\nsub/deep\n\na\r\nsub/in\noutdir/\n');
  await comparePush('ff', [`--files-from=${list}`], `${work}/src/`);
  const tree = await snapshot(daemon.modulePath('push') + '/o-ff');
  assert.ok(tree.has('sub/deep/c') && tree.has('a') && tree.has('sub/in'));
  assert.not.ok(tree.has('sub/b'));
  const list0 = join(work, 'list0.txt');
  await writeFile(list0, 'sub/deep/c\0#a\0dirlink\0');
  await writeFile(join(work, 'src', '#a'), 'hash\n');
  await setTimes(join(work, 'src'));
  await comparePush('ff0', [`--files-from=${list0}`, '--from0'], `${work}/src/`);
  await comparePush('ffL', [`--files-from=${list}`, '-L'], `${work}/src/`);
});

test('serve: rsync pulling with no walk option, -L, --copy-unsafe-links (links out of the module listed, never read)', async () => {
  await comparePull('plain', [], 'src/');
  const { o } = await comparePull('L', ['-L'], 'src/');
  assert.is(o.status, 23);
  await comparePull('unsafe', ['--copy-unsafe-links'], 'src/');
});

test('serve: rsync pulling with -x and -xx', async () => {
  await comparePull('x', ['-x'], 'src/');
  await comparePull('xx', ['-xx'], 'src/');
});

test('serve: rsync pulling with -R (and --no-implied-dirs)', async () => {
  await comparePull('R', ['-R'], 'src/sub/deep');
  await comparePull('R-slash', ['-R'], 'src/sub/');
  await comparePull('R-noimp', ['-R', '--no-implied-dirs'], 'src/sub/deep', ['sub']);
});

test('--files-from: a "/./" inside a name marks its base; an oversized list is refused with a typed error; -R refuses ".."', async () => {
  const dotted = join(work, 'dotted.txt');
  await writeFile(dotted, 'sub/./deep\n');
  assert.equal(readFilesFrom(dotted, false).map((s) => [s.baseDir, s.name.toString()]), [['sub', 'deep']]);
  const big = join(work, 'big.txt');
  await writeFile(big, '');
  await truncate(big, FILES_FROM_MAX_BYTES + 1); // sparse: refused from its size, never read
  assert.throws(() => readFilesFrom(big, false), (e: unknown) => e instanceof RsyncError && /more than/.test(e.message));
  assert.throws(() => readFilesFrom(join(work, 'no-such-list'), false), (e: unknown) => e instanceof RsyncError && e.exitCode === 3);
  assert.throws(() => relativeSource('a/./b/../c'), (e: unknown) => e instanceof RsyncError && e.code === 'ERR_RSYNC_RELATIVE_DOTDOT');
  // Names keep their bytes (not UTF-8 here), leading slashes and climbing ".." sanitized away.
  const raw = join(work, 'raw.txt');
  await writeFile(raw, Buffer.from([0x2f, 0x2f, 0x61, 0xff, 0x2f, 0x2e, 0x2e, 0x2f, 0x2e, 0x2e, 0x2f, 0x62, 0x0a]));
  assert.equal(readFilesFrom(raw, false).map((s) => s.name), [Buffer.from('b')]);
  await writeFile(raw, Buffer.from([0x78, 0xff, 0x0a]));
  assert.equal(readFilesFrom(raw, false).map((s) => s.name), [Buffer.from([0x78, 0xff])]);
});

test('the live mirror still refuses the walk options by name', async () => {
  const r = await lsyncd(['-L', `${work}/src/`, pushUrl('live')]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /-L\/--copy-links is not supported by the live mirror/);
});

test.run();
