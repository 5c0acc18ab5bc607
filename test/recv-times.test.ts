// -O/--omit-dir-times, -J/--omit-link-times and -E/--executability in our receiver (issue 13),
// each checked against rsync in both places we receive: our pull from a real rsyncd against
// rsync 3.5's own pull (the same module tree, the same local tree before, then a change), and a
// stock rsync pushing into `lsyncd serve` against the same push into rsyncd. Trees are compared
// exactly (test/helpers/tree.ts) and the -i lines must be rsync's; protocols 29 to 32, and once
// Debian 12's rsync 3.2.7 as the pushing client.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { lsyncd, run, type RunResult } from './helpers/cli.js';
import { snapshot, diffTrees, type Tree } from './helpers/tree.js';
import { setTime, setTimes, T0 } from './helpers/fstree.js';
import { startOptionRig, daemonUrl, runText, type OptionRig } from './helpers/serve.js';
import { oldRsync } from './helpers/old-rsync.js';

let daemon: TestDaemon;
let rig: OptionRig;
/** Every mtime a test sets is before this; one at or after it was given by the clock during a sync. */
let started: bigint;

test.before(async () => {
  daemon = await startDaemon({ extraModules: [{ name: 'src', comment: 'pull source', settings: { 'read only': true } }] });
  rig = await startOptionRig('recvtimes', { push: 'rw' });
  started = BigInt(Math.floor(Date.now() / 1000) - 2) * 1_000_000_000n;
});
test.after(async () => {
  await daemon?.stop();
  await rig?.stop();
});

/** The time the destination's entries had before a sync (not the source's). */
const BEFORE = T0 - 500;

/**
 * The source: nested directories, files with and without x bits, symlinks (one into a parent);
 * every time T0.
 */
async function source(src: string): Promise<void> {
  await rm(src, { recursive: true, force: true });
  await mkdir(join(src, 'sub/deep'), { recursive: true });
  await mkdir(join(src, 'quiet'), { recursive: true });
  const files: Array<[string, string, number]> = [
    ['a.txt', 'alpha\n', 0o644],
    ['run.sh', '#!/bin/sh\necho run\n', 0o755],
    ['data.bin', 'data, never executable\n', 0o644],
    ['sub/b.sh', '#!/bin/sh\necho b, the new version\n', 0o750],
    ['sub/plain.txt', 'plain, the new version\n', 0o600],
    ['sub/deep/c.txt', 'gamma\n', 0o644],
    ['sub/deep/new.sh', '#!/bin/sh\necho new\n', 0o711],
    ['quiet/q.txt', 'unchanged\n', 0o644],
  ];
  for (const [name, text, mode] of files) {
    await writeFile(join(src, name), text);
    await chmod(join(src, name), mode);
  }
  await symlink('a.txt', join(src, 'link'));
  await symlink('../a.txt', join(src, 'sub/up-link'));
  await symlink('q.txt', join(src, 'quiet/q-link'));
  await setTimes(src);
}

/**
 * The destination before the sync: the same names mostly, its own times (BEFORE) and modes: files
 * that are the same but for their x bits, two whose content differs (written through a temp
 * file), symlinks that are the same but for their mtime, a directory (quiet/) nothing changes in.
 */
async function staleDest(dest: string): Promise<void> {
  await rm(dest, { recursive: true, force: true });
  await mkdir(join(dest, 'sub/deep'), { recursive: true });
  await mkdir(join(dest, 'quiet'), { recursive: true });
  const files: Array<[string, string, number]> = [
    ['a.txt', 'alpha\n', 0o640],
    ['run.sh', '#!/bin/sh\necho run\n', 0o604],
    ['data.bin', 'data, never executable\n', 0o755],
    ['sub/b.sh', '#!/bin/sh\necho b\n', 0o640],
    ['sub/plain.txt', 'plain\n', 0o751],
    ['quiet/q.txt', 'unchanged\n', 0o644],
  ];
  for (const [name, text, mode] of files) {
    await writeFile(join(dest, name), text);
    await chmod(join(dest, name), mode);
  }
  await symlink('a.txt', join(dest, 'link'));
  await symlink('q.txt', join(dest, 'quiet/q-link'));
  await setTimes(dest, BEFORE);
  // Files with the source's times: only attributes can differ (the quick check passes).
  for (const name of ['a.txt', 'run.sh', 'data.bin', 'quiet/q.txt']) await setTime(join(dest, name), T0, 123456789);
}

/** The change between two syncs: a file edited, one added, one removed, run.sh no longer executable. */
async function change(src: string): Promise<void> {
  await writeFile(join(src, 'a.txt'), 'alpha, longer now\n');
  await writeFile(join(src, 'sub/added.txt'), 'added\n');
  await rm(join(src, 'sub/deep/c.txt'));
  await chmod(join(src, 'run.sh'), 0o644);
  await setTimes(src, T0 + 60);
  // quiet/'s contents stay as they were (nothing is written in it): only its own time changes.
  for (const name of ['quiet/q.txt', 'quiet/q-link']) await setTime(join(src, name), T0, 123456789);
}

/**
 * Both trees, with the mtimes of the entries of `type` (what -O / -J leave alone) checked and
 * normalised: each is either what it was before (kept, compared exactly) or the clock's (a new
 * entry, or a directory that gained or lost one: set to 0), never the source's.
 */
function timesLeftAlone(type: 'dir' | 'symlink', what: string): (tree: Tree) => void {
  return (tree) => {
    let kept = 0;
    for (const [path, node] of tree) {
      if (node.type !== type) continue;
      const seconds = Number(node.mtimeNs / 1_000_000_000n);
      assert.ok(seconds !== T0 && seconds !== T0 + 60, `${what}: ${path} has the source's mtime`);
      if (node.mtimeNs >= started) node.mtimeNs = 0n;
      else kept++;
    }
    assert.ok(kept > 0, `${what}: no ${type} kept its mtime`);
  };
}

function assertSameTrees(ref: Tree, ours: Tree, what: string): void {
  const diff = diffTrees(ref, ours);
  assert.equal(diff, [], `${what}\n${diff.slice(0, 20).join('\n')}`);
}

/** The -i lines of a run (itemized changes), in order; the --stats and other lines left out. */
function itemLines(r: RunResult): string[] {
  return r.stdout
    .toString()
    .split('\n')
    .filter((l) => /^[.<>ch*][dfLDS]/.test(l) || l.startsWith('*deleting'));
}

interface Case {
  option: string;
  /** Our CLI's spelling (lsyncd is -a-like: -E needs --no-perms) and rsync's. */
  ours: string[];
  rsync: string[];
  drop: (tree: Tree) => void;
  /** What the option must leave, checked on rsync's tree (so that the comparison proves something). */
  check: (root: string, tree: Tree, round: number) => void;
}

const mode = (tree: Tree, path: string) => tree.get(path)!.mode & 0o7777;

const CASES: Case[] = [
  {
    option: '-O',
    ours: ['-O'],
    rsync: ['-rlpt', '-O'],
    drop: timesLeftAlone('dir', '-O'),
    check: (root, tree) => assert.is(Number(tree.get('quiet')!.mtimeNs / 1_000_000_000n), BEFORE, `${root}: quiet/ keeps its mtime`),
  },
  {
    option: '-J',
    ours: ['-J'],
    rsync: ['-rlpt', '-J'],
    drop: timesLeftAlone('symlink', '-J'),
    check: (root, tree) => assert.is(Number(tree.get('link')!.mtimeNs / 1_000_000_000n), BEFORE, `${root}: link keeps its mtime`),
  },
  {
    option: '-E',
    ours: ['--no-perms', '-E'],
    rsync: ['-rlt', '-E'],
    drop: () => {},
    check: (root, tree, round) => {
      // x on for whoever may read, off when the source has none; the other bits stay.
      assert.is(mode(tree, 'run.sh'), round === 0 ? 0o705 : 0o604, `${root}: run.sh`);
      assert.is(mode(tree, 'data.bin'), 0o644, `${root}: data.bin`);
      assert.is(mode(tree, 'sub/b.sh'), 0o750, `${root}: sub/b.sh (rewritten)`);
      assert.is(mode(tree, 'sub/plain.txt'), 0o640, `${root}: sub/plain.txt (rewritten)`);
      assert.is(mode(tree, 'a.txt'), 0o640, `${root}: a.txt`);
    },
  },
];

const pullRoot = (name: string) => join(rig.work, 'pull', name);

for (const c of CASES) {
  for (const protocol of [29, 30, 31, 32]) {
    test(`pull ${c.option} at protocol ${protocol}: the same tree and -i lines as rsync's pull`, async () => {
      const name = `pull${c.option.slice(1)}${protocol}`;
      const src = join(daemon.modulePath('src'), name);
      await source(src);
      const url = `rsync://127.0.0.1:${daemon.port}/src/${name}/`;
      for (const side of ['ref', 'ours']) await staleDest(join(pullRoot(name), side));
      for (let round = 0; round < 2; round++) {
        const r = await run('rsync', [...c.rsync, '-i', '--no-inc-recursive', `--protocol=${protocol}`, url, join(pullRoot(name), 'ref') + '/']);
        const o = await lsyncd(['--once', ...c.ours, '-i', '--protocol', String(protocol), url, join(pullRoot(name), 'ours') + '/']);
        assert.is(r.status, 0, `rsync: ${runText(r)}`);
        assert.is(o.status, 0, `ours: ${runText(o)}`);
        assert.equal(itemLines(o), itemLines(r), `-i lines, round ${round}\n--- rsync:\n${r.stdout}\n--- ours:\n${o.stdout}`);
        const ref = await snapshot(join(pullRoot(name), 'ref'));
        const ours = await snapshot(join(pullRoot(name), 'ours'));
        c.check('rsync', ref, round);
        c.check('ours', ours, round);
        c.drop(ref);
        c.drop(ours);
        assertSameTrees(ref, ours, `${c.option} at ${protocol}, round ${round}`);
        if (round === 0) await change(src);
      }
    });
  }
}

test('pull without -O, -J, -E: the times and modes are the source\'s (what the options change)', async () => {
  const name = 'plain';
  const src = join(daemon.modulePath('src'), name);
  await source(src);
  await staleDest(join(pullRoot(name), 'ours'));
  const o = await lsyncd(['--once', '--no-perms', `rsync://127.0.0.1:${daemon.port}/src/${name}/`, join(pullRoot(name), 'ours') + '/']);
  assert.is(o.status, 0, runText(o));
  const tree = await snapshot(join(pullRoot(name), 'ours'));
  assert.is(Number(tree.get('quiet')!.mtimeNs / 1_000_000_000n), T0, 'quiet/ gets the source\'s mtime');
  assert.is(Number(tree.get('link')!.mtimeNs / 1_000_000_000n), T0, 'link gets the source\'s mtime');
  assert.is(mode(tree, 'run.sh'), 0o604, 'run.sh stays as it was without -E');
  assert.is(mode(tree, 'data.bin'), 0o755, 'data.bin stays as it was without -E');
});

/** A stock client's push into our daemon and into rsyncd, each into its own path of the `push` module. */
for (const c of CASES) {
  for (const client of ['rsync', 'rsync 3.2.7'] as const) {
    if (client !== 'rsync' && c.option !== '-E') continue;
    test(`${client} push ${c.option} into lsyncd serve: the same tree and -i lines as into rsyncd`, async () => {
      const binary = client === 'rsync' ? 'rsync' : await oldRsync();
      const name = `push${c.option.slice(1)}${client === 'rsync' ? '' : '-old'}`;
      const src = join(rig.work, 'src', name);
      await source(src);
      const destOf = (dir: string) => join(dir, 'push', name);
      for (const dir of [rig.ours.dir, rig.theirs.dir]) await staleDest(destOf(dir));
      for (let round = 0; round < 2; round++) {
        const push = (port: number) => run(binary, [...c.rsync, '-i', src + '/', daemonUrl({ port }, `push/${name}/`)]);
        const t = await push(rig.theirs.port);
        const o = await push(rig.ours.port);
        assert.is(t.status, 0, `into rsyncd: ${runText(t)}`);
        assert.is(o.status, 0, `into ours: ${runText(o)}`);
        assert.equal(itemLines(o), itemLines(t), `-i lines, round ${round}\n--- rsyncd:\n${t.stdout}\n--- ours:\n${o.stdout}`);
        const ref = await snapshot(destOf(rig.theirs.dir));
        const ours = await snapshot(destOf(rig.ours.dir));
        c.check('rsyncd', ref, round);
        c.check('ours', ours, round);
        c.drop(ref);
        c.drop(ours);
        assertSameTrees(ref, ours, `${client} ${c.option}, round ${round}`);
        if (round === 0) await change(src);
      }
    });
  }
}

test.run();
