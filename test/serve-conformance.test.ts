// `lsyncd serve` against stock rsync clients, the cases test/serve.test.ts leaves out (issue 10):
// protocols 28 and 27 from the daemon's side, a 20,000-file tree, `munge symlinks` and the
// sanitized targets of a module without chroot, and a single file pushed under another name.
// Each runs the same client command against our daemon and a real rsyncd started from the same
// config text, and compares exit codes, what the client prints where it must match, and the
// resulting trees (names as bytes, types, sizes, content, modes, mtimes, symlink targets, links).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, link, mkdir, mkdtemp, readFile, readlink, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lsyncd, run, type RunResult } from './helpers/cli.js';
import { snapshot, snapshotSync, diffTrees, type Tree } from './helpers/tree.js';
import { makeTree, setTime, T0 } from './helpers/fstree.js';
import { daemonUrl, runBoth, runText, startBoth, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';
import { oldRsync } from './helpers/old-rsync.js';

const ROOT = process.getuid?.() === 0;

/** Modules: `push` (no chroot, no munging), `munged` (munge symlinks = yes), `plain` (munge left
 * at its default, which for `use chroot = no` is on), `sanitized` (no chroot, munge off), `ro`. */
const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
${ROOT ? 'uid = root\ngid = root\n' : ''}
[push]
\tpath = ${dir}/push
\tread only = no
\tmunge symlinks = no
[munged]
\tpath = ${dir}/munged
\tread only = no
\tmunge symlinks = yes
[plain]
\tpath = ${dir}/plain
\tread only = no
[sanitized]
\tpath = ${dir}/sanitized
\tread only = no
\tmunge symlinks = no
[ro]
\tpath = ${dir}/ro
`;
const MODULES = ['push', 'munged', 'plain', 'sanitized', 'ro'];

let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;

test.before(async () => {
  ({ ours, theirs } = await startBoth(CONFIG));
  for (const dir of [ours.dir, theirs.dir]) {
    for (const m of MODULES) await mkdir(join(dir, m));
    if (ROOT) await chmod(dir, 0o755);
    await writeFile(join(dir, 'ro', 'readme.txt'), 'read me\n');
    await setTime(join(dir, 'ro', 'readme.txt'), T0);
  }
  work = await mkdtemp(join(tmpdir(), 'lsyncd-serve-conf-'));
});

test.after(async () => {
  await ours?.stop();
  await theirs?.stop();
  await rm(work, { recursive: true, force: true });
});

const url = daemonUrl;
const text = runText;

/** The same rsync command line against both daemons (ADDR/ in args is each one's URL). */
const both = (args: string[], client = 'rsync') => runBoth({ ours, theirs }, args, { client });

/** Both runs ended as rsyncd's did (the same exit code, 0 here). */
function bothOk(r: { o: RunResult; t: RunResult }, what: string): void {
  assert.is(r.t.status, 0, `rsyncd, ${what}: ${text(r.t)}`);
  assert.is(r.o.status, 0, `ours, ${what}: ${text(r.o)}`);
}

/**
 * The trees below `want` and `have` are the same. With `dirTimes: false`, directory mtimes are
 * left out (a directory a file was just written into has the time of that write on each side).
 */
async function sameTree(want: string, have: string, message: string, options: { dirTimes?: boolean } = {}): Promise<void> {
  const [w, h] = [await snapshot(want), await snapshot(have)];
  if (options.dirTimes === false) for (const tree of [w, h]) for (const node of tree.values()) if (node.type === 'dir') node.mtimeNs = 0n;
  assertSame(w, h, message);
}

function assertSame(want: Tree, have: Tree, message: string): void {
  const diff = diffTrees(want, have);
  assert.equal(diff, [], `${message}\n${diff.slice(0, 20).join('\n')}`);
}

const sameModuleTree = (path: string, message: string, options: { dirTimes?: boolean } = {}) =>
  sameTree(join(theirs.dir, path), join(ours.dir, path), message, options);

/** The `Number of files: …` line of a --stats output. */
function numberOfFiles(r: RunResult): string {
  const m = /^Number of files: .*$/m.exec(r.stdout.toString());
  assert.ok(m, `no "Number of files" line\n${text(r)}`);
  return m![0];
}

/** The lines of a --stats output that depend only on the trees (not on wire sizes or times). */
function treeStats(r: RunResult): string[] {
  const keep = /^(Number of (files|created files|deleted files|regular files transferred)|Total (file size|transferred file size)|Literal data|Matched data):/;
  return r.stdout.toString().split('\n').filter((l) => keep.test(l));
}

// 1. Protocols 28 and 27: no checksum negotiation (MD4 with the seed), no incremental recursion,
// the old stats layout, and (27) the file list without the 28+ flag bits.
for (const protocol of [28, 27]) {
  test(`protocol ${protocol}: push (initial, delta, deletes, symlinks, -H links) and pull, rsync 3.5 and 3.2.7, as rsyncd`, async () => {
    const clients: [string, string][] = [['rsync', '3.5'], [await oldRsync(), '3.2.7']];
    for (const [client, version] of clients) {
      const src = join(work, `p${protocol}-${version}`);
      await makeTree(src);
      await link(join(src, 'a.txt'), join(src, 'sub', 'a-again.txt'));
      await link(join(src, 'run.sh'), join(src, 'run-too.sh'));
      for (const p of ['sub', '.']) await setTime(join(src, p), T0);
      const name = `p${protocol}-${version}`;
      const push = () => both(['-aH', '--delete', '--stats', `--protocol=${protocol}`, `${src}/`, `ADDR/push/${name}/`], client);
      // Initial.
      let r = await push();
      bothOk(r, `${version} initial push at ${protocol}`);
      assert.equal(treeStats(r.o), treeStats(r.t), `${version} initial push stats at ${protocol}`);
      await sameModuleTree(`push/${name}`, `${version} initial push at ${protocol}`);
      // No change: nothing sent again.
      r = await push();
      bothOk(r, `${version} no-change push at ${protocol}`);
      assert.match(r.o.stdout.toString(), /Number of regular files transferred: 0/);
      // A one-byte change in a 300 kB file: only a delta crosses; deletes; a new symlink.
      const big = await readFile(join(src, 'big.bin'));
      big[150_000] ^= 0xff;
      await writeFile(join(src, 'big.bin'), big);
      await setTime(join(src, 'big.bin'), T0 + 60);
      await unlink(join(src, 'a.txt'));
      await rm(join(src, 'sub', 'deeper'), { recursive: true });
      await symlink('run.sh', join(src, 'newlink'));
      for (const p of ['newlink', 'sub', '.']) await setTime(join(src, p), T0 + 120);
      r = await push();
      bothOk(r, `${version} delta push at ${protocol}`);
      const literal = Number(/Literal data: ([\d,]+)/.exec(r.o.stdout.toString())![1]!.replace(/,/g, ''));
      assert.ok(literal < 5000, `literal data ${literal}\n${text(r.o)}`);
      await sameModuleTree(`push/${name}`, `${version} delta, deletes at ${protocol}`);
      // A pull of what was pushed, into a fresh directory and then again with a change.
      const destO = join(work, `pullO-${name}`);
      const destT = join(work, `pullT-${name}`);
      const pull = async () => {
        const o = await run(client, ['-aH', '--delete', '--stats', `--protocol=${protocol}`, url(ours, `push/${name}/`), `${destO}/`]);
        const t = await run(client, ['-aH', '--delete', '--stats', `--protocol=${protocol}`, url(theirs, `push/${name}/`), `${destT}/`]);
        bothOk({ o, t }, `${version} pull at ${protocol}`);
        assert.equal(treeStats(o), treeStats(t), `${version} pull stats at ${protocol}`);
        await sameTree(destT, destO, `${version} pull at ${protocol}`);
      };
      await pull();
      for (const d of [ours.dir, theirs.dir]) {
        await writeFile(join(d, 'push', name, 'sub', 'b.txt'), 'changed on the server\n');
        await setTime(join(d, 'push', name, 'sub', 'b.txt'), T0 + 200);
      }
      await pull();
    }
  });
}

// 2. A tree of 20,000 small files in nested directories: push, no-change push, pull.
test('20,000 files: push, no-change push and pull equal rsyncd\'s (trees, exit codes, Number of files)', async () => {
  const src = join(work, 'many');
  // 20 × 10 directories of 100 files each, written synchronously (nothing else runs meanwhile).
  for (let a = 0; a < 20; a++) {
    for (let b = 0; b < 10; b++) {
      const dir = join(src, `d${a}`, `e${b}`);
      mkdirSync(dir, { recursive: true });
      for (let f = 0; f < 100; f++) {
        const file = join(dir, `f${f}.txt`);
        writeFileSync(file, `${a}/${b}/${f}\n`);
        utimesSync(file, T0, T0);
      }
      utimesSync(dir, T0, T0);
    }
    utimesSync(join(src, `d${a}`), T0, T0);
  }
  utimesSync(src, T0, T0);
  const push = () => both(['-a', '--stats', `${src}/`, 'ADDR/push/many/']);
  let r = await push();
  bothOk(r, 'initial push of 20,000 files');
  assert.match(numberOfFiles(r.o), /reg: 20,000, dir: 221/);
  assert.is(numberOfFiles(r.o), numberOfFiles(r.t));
  assertSame(snapshotSync(join(theirs.dir, 'push/many')), snapshotSync(join(ours.dir, 'push/many')), '20,000 files pushed');
  r = await push();
  bothOk(r, 'no-change push of 20,000 files');
  assert.is(numberOfFiles(r.o), numberOfFiles(r.t));
  assert.match(r.o.stdout.toString(), /Number of regular files transferred: 0\n/);
  const destO = join(work, 'many-pullO');
  const destT = join(work, 'many-pullT');
  const o = await run('rsync', ['-a', '--stats', url(ours, 'push/many/'), `${destO}/`]);
  const t = await run('rsync', ['-a', '--stats', url(theirs, 'push/many/'), `${destT}/`]);
  bothOk({ o, t }, 'pull of 20,000 files');
  assert.is(numberOfFiles(o), numberOfFiles(t));
  const pulled = snapshotSync(destO);
  assertSame(snapshotSync(destT), pulled, '20,000 files pulled');
  assertSame(snapshotSync(src), pulled, '20,000 files pulled, against the source');
});

// 3. Symlink targets in a module without chroot: munged (`munge symlinks = yes`, and its default
// there), or, with munging off, cleaned by sanitize_path to stay below the link's own directory.
// A pull from a munging module sends the targets back without the prefix.
test('use chroot = no: symlink targets stored as rsyncd stores them (munged, by default munged, sanitized) and pulled back as rsyncd sends them', async () => {
  const src = join(work, 'links-src');
  await mkdir(join(src, 'sub', 'deeper'), { recursive: true });
  await writeFile(join(src, 'file.txt'), 'target\n');
  const links: [string, string][] = [
    ['abs', '/etc/hostname'],
    ['up', '../../escape'],
    ['ok', 'file.txt'],
    ['dots', './a//b/./c/'],
    ['premunged', '/rsyncd-munged/x'],
    ['sub/up1', '../file.txt'],
    ['sub/up2', '../../out'],
    ['sub/mid', 'x/../../../y'],
    ['sub/deeper/up2', '../../file.txt'],
    ['sub/deeper/abs', '//double//slash'],
    ['sub/deeper/only-dots', '../../../..'],
    ['back', 'a/b/..'],
    ['dot-end', 'x/.'],
    ['just-up', '..'],
    ['sub/just-up', '..'],
    ['sub/deeper/up-then-in', '../../../a/../b//c'],
    ['...', '.../..x/...'],
  ];
  for (const [name, target] of links) await symlink(target, join(src, name));
  for (const p of ['file.txt', ...links.map(([n]) => n), 'sub/deeper', 'sub', '.']) await setTime(join(src, p), T0);
  for (const module of ['munged', 'plain', 'sanitized']) {
    const r = await both(['-a', `${src}/`, `ADDR/${module}/`]);
    bothOk(r, `push into ${module}`);
    await sameModuleTree(module, `symlinks pushed into ${module}`);
    // An operator's own links: shorter than the prefix plus a name, and an ordinary one.
    for (const d of [ours.dir, theirs.dir]) {
      await symlink('/rsyncd-munged/', join(d, module, 'admin-prefix'));
      await symlink('file.txt', join(d, module, 'admin-plain'));
      for (const l of ['admin-prefix', 'admin-plain']) await setTime(join(d, module, l), T0);
    }
    const destO = join(work, `links-pullO-${module}`);
    const destT = join(work, `links-pullT-${module}`);
    const o = await run('rsync', ['-a', url(ours, `${module}/`), `${destO}/`]);
    const t = await run('rsync', ['-a', url(theirs, `${module}/`), `${destT}/`]);
    bothOk({ o, t }, `pull from ${module}`);
    await sameTree(destT, destO, `symlinks pulled from ${module}`, { dirTimes: false });
    const listing = await both(['-r', `ADDR/${module}/`]);
    bothOk(listing, `listing of ${module}`);
    assert.is(listing.o.stdout.toString(), listing.t.stdout.toString(), `listing of ${module}`);
  }
  // What the modules hold, spelled out: munged (both), cleaned (sanitized), and the pull un-munged.
  assert.is((await readlink(join(ours.dir, 'munged', 'up'))).toString(), '/rsyncd-munged/../../escape');
  assert.is((await readlink(join(ours.dir, 'plain', 'abs'))).toString(), '/rsyncd-munged//etc/hostname');
  assert.is((await readlink(join(ours.dir, 'sanitized', 'up'))).toString(), 'escape');
  assert.is((await readlink(join(ours.dir, 'sanitized', 'sub', 'up1'))).toString(), '../file.txt');
  assert.is((await readlink(join(work, 'links-pullO-munged', 'up'))).toString(), '../../escape');
  assert.is((await readlink(join(work, 'links-pullO-munged', 'premunged'))).toString(), '/rsyncd-munged/x');
});

// 4. A single file pushed under another name (rsync main.c get_local_name: the destination's last
// component replaces the file's name, unless it is an existing directory).
test('a single file pushed under another name lands as in rsyncd (new name, in a subdir, over a file, into a dir)', async () => {
  const src = join(work, 'single');
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'file.txt'), 'one file\n');
  await writeFile(join(src, 'other.txt'), 'another file, longer than the first\n');
  await chmod(join(src, 'other.txt'), 0o640);
  for (const f of ['file.txt', 'other.txt']) await setTime(join(src, f), T0);
  for (const d of [ours.dir, theirs.dir]) {
    await mkdir(join(d, 'push', 'single', 'dir', 'existing'), { recursive: true });
    for (const p of ['dir/existing', 'dir', '.']) await setTime(join(d, 'push', 'single', p), T0);
  }
  const cases: [string[], string][] = [
    [['-t', `${src}/file.txt`, 'ADDR/push/single/newname.txt'], 'a new name in the module dir'],
    [['-t', `${src}/file.txt`, 'ADDR/push/single/dir/newname'], 'a new name in an existing dir'],
    [['-t', `${src}/file.txt`, 'ADDR/push/single/dir/existing'], 'an existing dir: lands inside'],
    [['-tp', `${src}/other.txt`, 'ADDR/push/single/newname.txt'], 'over an existing file'],
    [['-t', '-v', `${src}/file.txt`, 'ADDR/push/single/dir/fresh/'], 'a missing name with a slash: a new dir'],
  ];
  for (const [args, what] of cases) {
    const r = await both(args);
    bothOk(r, what);
    await sameModuleTree('push/single', what, { dirTimes: false });
  }
  const single = await snapshot(join(ours.dir, 'push', 'single'));
  for (const name of ['newname.txt', 'dir/newname', 'dir/existing/file.txt', 'dir/fresh/file.txt']) assert.ok(single.has(name), `${name} missing`);
  // A missing parent (one file; two files into a new dir): both refuse with the same first line
  // and exit code, and nothing lands.
  for (const args of [
    ['-t', `${src}/file.txt`, 'ADDR/push/single/nodir/newname'],
    ['-t', `${src}/file.txt`, `${src}/other.txt`, 'ADDR/push/single/nodir/newdir'],
  ]) {
    const missing = await both(args);
    assert.is(missing.o.status, missing.t.status, `${text(missing.o)}\n${text(missing.t)}`);
    assert.is.not(missing.o.status, 0);
    assert.is(missing.o.stderr.split('\n')[0], missing.t.stderr.split('\n')[0]);
  }
  await sameModuleTree('push/single', 'a missing parent', { dirTimes: false });
});

test('lsyncd --once pulls a single file under another name as rsync does', async () => {
  const destO = join(work, 'pull-single-ours');
  const destT = join(work, 'pull-single-rsync');
  for (const d of [destO, destT]) await mkdir(d);
  for (const [client, dest] of [['ours', destO], ['rsync', destT]] as const) {
    const pull = (args: string[]) => (client === 'ours' ? lsyncd(['--once', ...args]) : run('rsync', args));
    // A new name, the same over an existing file, into `dir/` (created), into an existing dir.
    for (const target of ['pf.txt', 'pf.txt', 'made/', 'made']) {
      const r = await pull(['-a', url(ours, 'ro/readme.txt'), join(dest, target)]);
      assert.is(r.status, 0, `${client} -> ${target}: ${text(r)}`);
    }
    // Into a missing parent: refused with rsync's exit code (3).
    const r = await pull(['-a', url(ours, 'ro/readme.txt'), join(dest, 'nodir', 'x')]);
    assert.is(r.status, 3, `${client} into a missing parent: ${text(r)}`);
  }
  await sameTree(destT, destO, 'single-file pulls', { dirTimes: false });
  const have = await snapshot(destO);
  assert.ok(have.has('pf.txt') && have.has('made/readme.txt'), [...have.keys()].join(' '));
});

test.run();
