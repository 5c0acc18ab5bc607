// A client's --backup-dir and --partial-dir as rsyncd sanitizes them (issue 13): an absolute one
// is rooted at the module dir, a climbing '..' is dropped, so nothing lands outside the module.
// A stock rsync pushes into a subdirectory of a module of rsyncd and of `lsyncd serve`; the module
// trees (where the backups and partial files are) and the exit codes compared. Counterpart: rsync
// util1.c sanitize_path, options.c parse_arguments (backup_dir), main.c do_server_recv (partial_dir).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { snapshot, diffTrees, type Tree } from './helpers/tree.js';
import { setTime, T0 } from './helpers/fstree.js';
import { runBoth, runText, startOptionRig, type OptionRig } from './helpers/serve.js';

let rig: OptionRig;
let src: string;

/** The source: two files and one in a subdirectory, version `v` of their contents. */
async function writeSource(v: number): Promise<void> {
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'a'), `file a, version ${v}\n`.repeat(200 * v));
  await writeFile(join(src, 'b'), `file b, version ${v}\n`);
  await writeFile(join(src, 'sub/c'), `file c, version ${v}\n`.repeat(50));
  for (const rel of ['a', 'b', 'sub/c']) await setTime(join(src, rel), T0 + v * 10 + rel.length);
  await setTime(join(src, 'sub'), T0);
  await setTime(src, T0);
}

test.before(async () => {
  rig = await startOptionRig('sanitized-dirs', { mod: 'rw' });
  src = join(rig.work, 'src');
});

test.after(async () => {
  await rig?.stop();
});

/** Both modules emptied, then `dest/deeper` made in each and the version-1 source pushed there. */
async function freshDest(): Promise<void> {
  for (const dir of [rig.ours.dir, rig.theirs.dir]) {
    await rm(join(dir, 'mod'), { recursive: true, force: true });
    await mkdir(join(dir, 'mod/dest/deeper'), { recursive: true });
  }
  await rm(src, { recursive: true, force: true });
  await writeSource(1);
  const r = await runBoth(rig, ['-a', `${src}/`, 'ADDR/mod/dest/deeper/']);
  assert.is(r.t.status, 0, runText(r.t));
  assert.is(r.o.status, 0, runText(r.o));
}

/** A daemon's module tree; a directory's mtime left out (made or changed now: a backup dir, the test's own). */
async function moduleTree(daemonDir: string): Promise<Tree> {
  const tree = await snapshot(join(daemonDir, 'mod'));
  for (const info of tree.values()) if (info.type === 'dir') info.mtimeNs = 0n;
  return tree;
}

/** The same push into both; the same exit code and module trees. */
async function pushBoth(options: string[], context: string): Promise<number> {
  const r = await runBoth(rig, [...options, `${src}/`, 'ADDR/mod/dest/deeper/']);
  assert.is(r.o.status, r.t.status, `${context}: ours ${runText(r.o)}\n--- rsyncd: ${runText(r.t)}`);
  assert.equal(diffTrees(await moduleTree(rig.theirs.dir), await moduleTree(rig.ours.dir)), [], `${context}: module trees`);
  return r.t.status ?? -1;
}

/** Nothing but the module (and the daemon's own files) in a daemon's dir. */
async function assertNothingOutside(context: string): Promise<void> {
  for (const dir of [rig.ours.dir, rig.theirs.dir]) {
    const names = (await readdir(dir)).filter((n) => !/^(rsyncd\.(conf|pid)|lsyncd-serve\.log)$/.test(n));
    assert.equal(names, ['mod'], `${context}: ${dir}`);
  }
  assert.equal((await readdir(rig.work)).filter((n) => n !== 'src'), [], `${context}: the work dir`);
}

test('an absolute --backup-dir: rooted at the module dir, as rsyncd roots it', async () => {
  await freshDest();
  await writeSource(2);
  assert.is(await pushBoth(['-a', '-b', '--backup-dir=/bak'], '--backup-dir=/bak'), 0);
  // The backups are at mod/bak, not under the destination.
  const backups = await readdir(join(rig.ours.dir, 'mod/bak')).catch(() => []);
  assert.equal(backups.sort(), ['a', 'b', 'sub']);
  await writeSource(3);
  assert.is(await pushBoth(['-a', '-b', '--backup-dir=/bak//later/./', '--suffix=.old'], 'a second, with a suffix'), 0);
  assert.ok((await readdir(join(rig.ours.dir, 'mod/bak/later'))).includes('a.old'));
  await assertNothingOutside('absolute');
});

test('a climbing --backup-dir (../../x, /../../x): the ".." dropped, never outside the module', async () => {
  // ../../x is x under the destination; /../../y is y under the module.
  const landing: Array<[string, string]> = [['../../x', 'dest/deeper/x'], ['/../../y', 'y'], ['../../../../../../../../tmp/z', 'dest/deeper/tmp/z']];
  for (const [dir, at] of landing) {
    await freshDest();
    await writeSource(2);
    assert.is(await pushBoth(['-a', '-b', `--backup-dir=${dir}`], `--backup-dir=${dir}`), 0);
    assert.equal((await readdir(join(rig.ours.dir, 'mod', at))).sort(), ['a', 'b', 'sub'], `${dir}: the backups at ${at}`);
    await assertNothingOutside(dir);
  }
});

test('an absolute --partial-dir: a partial file at the module\'s /part is the basis, then removed', async () => {
  await freshDest();
  await writeSource(2);
  // An interrupted transfer's leftover: the first half of the new `a`, in the module's /part.
  const half = `file a, version 2\n`.repeat(200);
  for (const dir of [rig.ours.dir, rig.theirs.dir]) {
    await mkdir(join(dir, 'mod/part'), { recursive: true });
    await writeFile(join(dir, 'mod/part/a'), half);
    await setTime(join(dir, 'mod/part/a'), T0);
    await setTime(join(dir, 'mod/part'), T0);
  }
  const r = await runBoth(rig, ['-a', '--stats', '--partial-dir=/part', `${src}/`, 'ADDR/mod/dest/deeper/']);
  assert.is(r.t.status, 0, runText(r.t));
  assert.is(r.o.status, 0, runText(r.o));
  // The leftover served as the basis: the same data matched from it in both.
  const matched = (text: string) => /Matched data: ([\d,]+)/.exec(text)?.[1];
  assert.is(matched(r.o.stdout.toString()), matched(r.t.stdout.toString()), 'matched data');
  assert.is.not(matched(r.t.stdout.toString()), '0', 'rsyncd used the partial file');
  const t = await moduleTree(rig.theirs.dir);
  assert.equal(diffTrees(t, await moduleTree(rig.ours.dir)), [], 'module trees');
  assert.not.ok(t.has('part/a'), 'the partial file is gone');
  await assertNothingOutside('partial');
});

test('--delay-updates with an absolute --partial-dir: staged at the module\'s /stage, as rsyncd does', async () => {
  await freshDest();
  await writeSource(2);
  assert.is(await pushBoth(['-a', '--delay-updates', '--partial-dir=/stage'], '--delay-updates --partial-dir=/stage'), 0);
  await assertNothingOutside('delay-updates');
});

test.run();
