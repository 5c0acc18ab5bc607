// -K/--keep-dirlinks in our receiver (issue 13), checked against rsync in both places we receive:
// our pull from a real rsyncd against rsync 3.5's own pull, and a stock rsync pushing into
// `lsyncd serve` against the same push into rsyncd. A symlink on the receiving side that leads to
// a directory inside the destination stands for the list's directory (written through, the link
// kept); one that leads out of the destination (out of the module) is never gone through: what
// would land below it fails alone (exit 23) and nothing outside is written.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lstat, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { lsyncd, run, type RunResult } from './helpers/cli.js';
import { snapshot, diffTrees, type Tree } from './helpers/tree.js';
import { setTimes, T0 } from './helpers/fstree.js';
import { startOptionRig, daemonUrl, runText, type OptionRig } from './helpers/serve.js';
import { oldRsync } from './helpers/old-rsync.js';

let daemon: TestDaemon;
let rig: OptionRig;
/** An mtime at or after this was given by the clock during a sync (every time a test sets is before it). */
let started: bigint;

test.before(async () => {
  daemon = await startDaemon({ extraModules: [{ name: 'src', comment: 'pull source', settings: { 'read only': true } }] });
  rig = await startOptionRig('recvkeep', { push: 'rw' });
  started = BigInt(Math.floor(Date.now() / 1000) - 2) * 1_000_000_000n;
});
test.after(async () => {
  await daemon?.stop();
  await rig?.stop();
});

/** The source: directories `linked/` (with a subdirectory) and `out/`, a file beside them; every time T0. */
async function source(src: string): Promise<void> {
  await rm(src, { recursive: true, force: true });
  await mkdir(join(src, 'linked/deeper'), { recursive: true });
  await mkdir(join(src, 'out'), { recursive: true });
  await writeFile(join(src, 'top.txt'), 'top\n');
  await writeFile(join(src, 'linked/inside.txt'), 'through the link\n');
  await writeFile(join(src, 'linked/deeper/d.txt'), 'deeper\n');
  await writeFile(join(src, 'out/g.txt'), 'must not leave the destination\n');
  await setTimes(src);
}

/**
 * The receiving side: `linked` a symlink to `real/` beside it (which holds a file of its own),
 * and, with `outside`, `out` a symlink to that directory out of the destination.
 */
async function destWithLinks(dest: string, outside: string | null): Promise<void> {
  await rm(dest, { recursive: true, force: true });
  await mkdir(join(dest, 'real'), { recursive: true });
  await writeFile(join(dest, 'real/own.txt'), 'the destination\'s own\n');
  await symlink('real', join(dest, 'linked'));
  if (outside !== null) {
    await rm(outside, { recursive: true, force: true });
    await mkdir(outside, { recursive: true });
    await symlink(outside, join(dest, 'out'));
  }
  await setTimes(dest, T0 - 500);
}

/** `real/` gains entries during the sync: its mtime is the clock's on both sides (set to 0 after checking). */
function dropRealTime(tree: Tree): void {
  const real = tree.get('real')!;
  assert.ok(real.mtimeNs >= started, 'real/ changed during the sync');
  real.mtimeNs = 0n;
}

function assertSameTrees(ref: Tree, ours: Tree, what: string): void {
  dropRealTime(ref);
  dropRealTime(ours);
  const diff = diffTrees(ref, ours);
  assert.equal(diff, [], `${what}\n${diff.slice(0, 20).join('\n')}`);
}

/** The -i lines of a run, in order. */
function itemLines(r: RunResult): string[] {
  return r.stdout
    .toString()
    .split('\n')
    .filter((l) => /^[.<>ch*][dfLDS]/.test(l));
}

/** What -K must leave on a side: the links kept, the files gone through `linked`, nothing through `out`. */
async function assertKept(dest: string, outside: string | null, what: string): Promise<void> {
  assert.ok((await lstat(join(dest, 'linked'))).isSymbolicLink(), `${what}: linked is still a symlink`);
  assert.ok((await lstat(join(dest, 'real/inside.txt'))).isFile(), `${what}: inside.txt went through the link`);
  assert.ok((await lstat(join(dest, 'real/deeper/d.txt'))).isFile(), `${what}: deeper/ was made through the link`);
  assert.ok((await lstat(join(dest, 'real/own.txt'))).isFile(), `${what}: real/'s own file stays`);
  if (outside === null) return;
  assert.ok((await lstat(join(dest, 'out'))).isSymbolicLink(), `${what}: out is still a symlink`);
  assert.equal(await readdir(outside), [], `${what}: nothing written out of the destination`);
}

for (const protocol of [29, 32]) {
  test(`pull -K at protocol ${protocol}: the same tree, -i lines and exit code as rsync's pull; a link out of DEST not gone through`, async () => {
    const name = `keep${protocol}`;
    const src = join(daemon.modulePath('src'), name);
    await source(src);
    const url = `rsync://127.0.0.1:${daemon.port}/src/${name}/`;
    const root = (side: string) => join(rig.work, 'pull', name, side);
    for (const side of ['ref', 'ours']) await destWithLinks(join(root(side), 'dest'), join(root(side), 'outside'));
    const r = await run('rsync', ['-rlpt', '-K', '-i', '--no-inc-recursive', `--protocol=${protocol}`, url, join(root('ref'), 'dest') + '/']);
    const o = await lsyncd(['--once', '-K', '-i', '--protocol', String(protocol), url, join(root('ours'), 'dest') + '/']);
    assert.is(r.status, 23, `rsync: ${runText(r)}`);
    assert.is(o.status, 23, `ours: ${runText(o)}`);
    for (const run of [r, o]) assert.match(run.stderr.toString(), /recv_generator: failed to stat ".*out\/g\.txt": Too many levels of symbolic links \(40\)/);
    assert.equal(itemLines(o), itemLines(r), `-i lines\n--- rsync:\n${r.stdout}\n--- ours:\n${o.stdout}`);
    for (const side of ['ref', 'ours']) await assertKept(join(root(side), 'dest'), join(root(side), 'outside'), side);
    const ref = await snapshot(join(root('ref'), 'dest'));
    const ours = await snapshot(join(root('ours'), 'dest'));
    // The link out of DEST names each side's own directory.
    for (const tree of [ref, ours]) {
      delete tree.get('out')!.target;
      tree.get('out')!.size = 0;
    }
    assertSameTrees(ref, ours, `-K at ${protocol}`);
  });
}

for (const client of ['rsync', 'rsync 3.2.7'] as const) {
  test(`${client} push -K into lsyncd serve: the same tree and exit code as into rsyncd; a link out of the module not gone through`, async () => {
    const binary = client === 'rsync' ? 'rsync' : await oldRsync();
    const name = `keep${client === 'rsync' ? '' : '-old'}`;
    const src = join(rig.work, 'src', name);
    await source(src);
    const destOf = (dir: string) => join(dir, 'push', name);
    const outsideOf = (which: string) => join(rig.work, `outside-${name}-${which}`);
    await destWithLinks(destOf(rig.theirs.dir), outsideOf('theirs'));
    await destWithLinks(destOf(rig.ours.dir), outsideOf('ours'));
    const push = (port: number) => run(binary, ['-rlpt', '-K', '-i', src + '/', daemonUrl({ port }, `push/${name}/`)]);
    const t = await push(rig.theirs.port);
    const o = await push(rig.ours.port);
    assert.is(t.status, 23, `into rsyncd: ${runText(t)}`);
    assert.is(o.status, 23, `into ours: ${runText(o)}`);
    for (const run of [t, o]) assert.match(run.stderr.toString(), /failed to stat ".*out\/g\.txt".*Too many levels of symbolic links \(40\)/);
    assert.is(o.stderr.toString().includes('\n\n'), t.stderr.toString().includes('\n\n'), `blank lines told to the client\n--- rsyncd:\n${t.stderr}\n--- ours:\n${o.stderr}`);
    assert.equal(itemLines(o), itemLines(t), `-i lines\n--- rsyncd:\n${t.stdout}\n--- ours:\n${o.stdout}`);
    await assertKept(destOf(rig.theirs.dir), outsideOf('theirs'), 'rsyncd');
    await assertKept(destOf(rig.ours.dir), outsideOf('ours'), 'ours');
    const ref = await snapshot(destOf(rig.theirs.dir));
    const ours = await snapshot(destOf(rig.ours.dir));
    // The link out of the module names each daemon's own directory.
    for (const tree of [ref, ours]) {
      delete tree.get('out')!.target;
      tree.get('out')!.size = 0;
    }
    assertSameTrees(ref, ours, `${client} -K`);
  });
}

test.run();
