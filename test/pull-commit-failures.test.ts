// Files received whole are put in place off the JS thread (src/transfer/whole-commits.ts,
// native/file-commit.cc); their failures must still come out as rsync's receiver tells them.
// Against rsync's pull from rsyncd: a full disk (a tiny tmpfs: the run ends, exit 11, "write
// failed on"), a read-only directory (a read-only bind mount: "mkstemp ... failed", the other
// files in place, exit 23); the same pushed into our daemon and into rsyncd (the client told, in
// the module's names, exit 23), and a push whose destination directory cannot be made (exit 11).
// The queue itself with the real addon: a directory removed under it,
// a target that became a directory. Mounting needs root (the suite runs as root here).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, run, type RunResult } from './helpers/cli.js';
import { pseudoRandom, setTime } from './helpers/fstree.js';
import { runText } from './helpers/serve.js';
import { startDaemonWithConfig, type ConfiguredDaemon } from './helpers/daemon.js';
import { startBoth } from './helpers/serve.js';
import { fileCommitter } from '../src/addon.js';
import { CommitQueue } from '../src/transfer/whole-commits.js';

const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
uid = root
gid = root
[mod]
\tpath = ${dir}/mod
`;

let daemon: ConfiguredDaemon;
let work: string;
const mounts: string[] = [];

/** Files a/f00..f39 (16 KiB each) and b/g00..g09. */
test.before(async () => {
  daemon = await startDaemonWithConfig(CONFIG);
  work = await mkdtemp(join(tmpdir(), 'lsyncd-commit-fail-'));
  for (const dir of ['a', 'b']) mkdirSync(join(daemon.dir, 'mod', dir), { recursive: true });
  for (let i = 0; i < 40; i++) writeFileSync(join(daemon.dir, 'mod', 'a', `f${String(i).padStart(2, '0')}`), pseudoRandom(16384, i + 1));
  for (let i = 0; i < 10; i++) writeFileSync(join(daemon.dir, 'mod', 'b', `g${String(i).padStart(2, '0')}`), pseudoRandom(1000 + i, i + 100));
  for (const dir of ['a', 'b']) {
    for (const name of readdirSync(join(daemon.dir, 'mod', dir))) await setTime(join(daemon.dir, 'mod', dir, name));
  }
});
test.after(async () => {
  for (const m of mounts.reverse()) execFileSync('umount', [m]);
  await daemon.stop();
  await rm(work, { recursive: true, force: true });
});

const url = () => `rsync://127.0.0.1:${daemon.port}/mod/`;
const pull = (who: 'rsync' | 'ours' | 'ours-no-addon', flags: string[], dest: string): Promise<RunResult> =>
  who === 'rsync'
    ? run('rsync', ['-rlpt', ...flags, url(), dest + '/'])
    : run(process.execPath, [CLI, '--once', ...flags, url(), dest + '/'], who === 'ours-no-addon' ? { LSYNCD_NO_ADDON: '1' } : {});

/** Temp files (".NAME.XXXXXX") left anywhere under `dir`. */
function leftovers(dir: string): string[] {
  const found: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.name.startsWith('.')) found.push(e.name);
  return found;
}

test('a full disk ends the pull as rsync ends it: "write failed on" the file, exit 11, no temp file left', async () => {
  for (const who of ['rsync', 'ours', 'ours-no-addon'] as const) {
    const disk = join(work, `full-${who}`);
    mkdirSync(disk);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', disk]);
    mounts.push(disk);
    const r = await pull(who, [], join(disk, 'd'));
    assert.is(r.status, 11, `${who}: ${runText(r)}`);
    const line = r.stderr.split('\n').find((l) => l.includes('write failed on'));
    assert.ok(line, `${who}: ${runText(r)}`);
    assert.match(line!, new RegExp(`write failed on "${disk}/d/a/f\\d\\d": No space left on device \\(28\\)$`), who);
    if (who !== 'rsync') assert.equal(leftovers(disk), [], who);
  }
});

test('a read-only directory: each file there told as rsync tells it ("mkstemp ... failed"), the rest in place, exit 23', async () => {
  const told: Record<string, string[]> = {};
  for (const who of ['rsync', 'ours', 'ours-no-addon'] as const) {
    const dest = join(work, `ro-${who}`);
    mkdirSync(join(dest, 'a'), { recursive: true });
    execFileSync('mount', ['--bind', join(dest, 'a'), join(dest, 'a')]);
    mounts.push(join(dest, 'a'));
    execFileSync('mount', ['-o', 'remount,ro,bind', join(dest, 'a')]);
    // -O: rsync (and we) would fail to set the read-only directory's own time too.
    const r = await pull(who, ['-O'], dest);
    if (who === 'ours-no-addon') {
      // Without the addon every file goes through a temp file, whose failure still ends the run.
      assert.is(r.status, 11, runText(r));
      assert.match(r.stderr, /open ".*\/a\/\.f00\.\w{6}" failed: EROFS/);
      continue;
    }
    assert.is(r.status, 23, `${who}: ${runText(r)}`);
    told[who] = r.stderr
      .split('\n')
      .filter((l) => l.includes('mkstemp'))
      .map((l) => l.replace(/^rsync: \[receiver\] /, '').replace(dest, 'DEST').replace(/\.\w{6}"/, '.XXXXXX"'))
      .sort();
    assert.is(told[who]!.length, 40, runText(r));
    for (let i = 0; i < 10; i++) {
      const name = `g${String(i).padStart(2, '0')}`;
      assert.equal(readFileSync(join(dest, 'b', name)), readFileSync(join(daemon.dir, 'mod', 'b', name)), `${who}: b/${name}`);
    }
    assert.equal(leftovers(dest), [], who);
  }
  assert.equal(told['ours'], told['rsync']);
  assert.is(told['ours']![0], 'mkstemp "DEST/a/.f00.XXXXXX" failed: Read-only file system (30)');
});

test('a directory whose time cannot be set (read-only): told as rsync tells it ("failed to set times on"), the rest done, exit 23', async () => {
  const told: Record<string, string[]> = {};
  for (const who of ['rsync', 'ours'] as const) {
    const dest = join(work, `ro-times-${who}`);
    // Every file of a/ already in place (only a/'s own time differs), so nothing is written in it.
    mkdirSync(dest, { recursive: true });
    execFileSync('cp', ['-a', join(daemon.dir, 'mod', 'a'), join(dest, 'a')]);
    execFileSync('touch', ['-d', '2001-01-01', join(dest, 'a')]);
    execFileSync('mount', ['--bind', join(dest, 'a'), join(dest, 'a')]);
    mounts.push(join(dest, 'a'));
    execFileSync('mount', ['-o', 'remount,ro,bind', join(dest, 'a')]);
    const r = await pull(who, [], dest);
    assert.is(r.status, 23, `${who}: ${runText(r)}`);
    told[who] = r.stderr
      .split('\n')
      .filter((l) => l.includes('failed to set'))
      .map((l) => l.replace(/^(rsync|lsyncd): (\[generator\] )?/, '').replace(dest, 'DEST'));
    for (let i = 0; i < 10; i++) {
      const name = `g${String(i).padStart(2, '0')}`;
      assert.equal(readFileSync(join(dest, 'b', name)), readFileSync(join(daemon.dir, 'mod', 'b', name)), `${who}: b/${name}`);
    }
  }
  assert.equal(told['ours'], told['rsync']);
  assert.equal(told['ours'], ['failed to set times on "DEST/a": Read-only file system (30)']);
});

/** A writable module `up` (for pushes into a read-only part of it). */
const UP_CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
uid = root
gid = root
[up]
\tpath = ${dir}/up
\tread only = no
`;

/** `fn` with `dir` (made if missing) bind-mounted read-only over itself; unmounted after. */
async function readOnly(dir: string, fn: () => Promise<void>): Promise<void> {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['--bind', dir, dir]);
  try {
    execFileSync('mount', ['-o', 'remount,ro,bind', dir]);
    await fn();
  } finally {
    // rsyncd's session may still be in the module a moment after its client ended.
    for (let i = 0; ; i++) {
      try {
        execFileSync('umount', [dir], { stdio: 'ignore' });
        break;
      } catch (e) {
        if (i >= 40) throw e;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }
}

test('a push into a read-only directory of the module: the client told as rsyncd tells it, exit 23', async () => {
  const { ours, theirs } = await startBoth(UP_CONFIG);
  const told: Record<string, string[]> = {};
  try {
    for (const [who, d] of [['ours', ours], ['rsyncd', theirs]] as const) {
      await readOnly(join(d.dir, 'up', 'a'), async () => {
        const r = await run('rsync', ['-rlpt', join(daemon.dir, 'mod') + '/', `rsync://127.0.0.1:${d.port}/up/`]);
        assert.is(r.status, 23, `${who}: ${runText(r)}`);
        told[who] = r.stderr
          .split('\n')
          .filter((l) => l.includes('mkstemp') || l.includes('failed to set'))
          .map((l) => l.replace(/\.\w{6}" \(in up\)/, '.XXXXXX" (in up)'))
          .sort();
        for (let i = 0; i < 10; i++) {
          const name = `g${String(i).padStart(2, '0')}`;
          assert.equal(readFileSync(join(d.dir, 'up', 'b', name)), readFileSync(join(daemon.dir, 'mod', 'b', name)), `${who}: b/${name}`);
        }
      });
    }
  } finally {
    await ours.stop();
    await theirs.stop();
  }
  assert.is(told['ours']!.length, 41, told['ours']!.join('\n'));
  assert.equal(told['ours'], told['rsyncd']);
  assert.ok(told['ours']!.some((l) => l.startsWith('rsync: [generator] failed to set times on "a" (in up): Read-only file system (30)')), told['rsyncd']!.join('\n'));
  assert.ok(told['ours']!.includes('rsync: [receiver] mkstemp "a/.f00.XXXXXX" (in up) failed: Read-only file system (30)'), told['ours']!.join('\n'));
});

test('a push whose destination directory cannot be made (read-only module): the client told as rsyncd tells it, exit 11', async () => {
  const { ours, theirs } = await startBoth(UP_CONFIG);
  const told: Record<string, string> = {};
  try {
    for (const [who, d] of [['ours', ours], ['rsyncd', theirs]] as const) {
      await readOnly(join(d.dir, 'up'), async () => {
        const r = await run('rsync', ['-rlpt', join(daemon.dir, 'mod') + '/', `rsync://127.0.0.1:${d.port}/up/new/`]);
        assert.is(r.status, 11, `${who}: ${runText(r)}`);
        told[who] = r.stderr.toString().split('\n')[0]!;
      });
    }
  } finally {
    await ours.stop();
    await theirs.stop();
  }
  assert.is(told['ours'], 'rsync: [Receiver] mkdir "new" (in up) failed: Read-only file system (30)');
  assert.is(told['ours'], told['rsyncd']);
});

test('the queue: a directory removed under it, a target that became a directory (rsync\'s words, nothing left behind)', async () => {
  const commitFile = fileCommitter();
  assert.ok(commitFile, 'the addon is built');
  const dir = join(work, 'queue');
  const queue = new CommitQueue(commitFile!, (name) => `"${dir}/${name.toString()}"`);
  mkdirSync(join(dir, 'sub'), { recursive: true });
  mkdirSync(join(dir, 'taken', 'inside'), { recursive: true });
  const failed: string[] = [];
  const onFailed = (text: string) => failed.push(text);
  const commit = (name: string, tmp: string) =>
    queue.commit(Buffer.from(name), Buffer.from(join(dir, tmp)), Buffer.from(join(dir, name)), Buffer.from('data'), 0o644, 1, 1704164645, 0, -1, -1, onFailed);
  rmSync(join(dir, 'sub'), { recursive: true });
  await commit('sub/x', 'sub/.x.abcdef');
  await commit('taken', '.taken.abcdef');
  await commit('fine', '.fine.abcdef');
  await queue.settle();
  assert.equal(failed.sort(), [
    `mkstemp "${dir}/sub/.x.abcdef" failed: No such file or directory (2)`,
    `rename "${dir}/.taken.abcdef" -> "taken": Is a directory (21)`,
  ]);
  assert.is(readFileSync(join(dir, 'fine'), 'utf8'), 'data');
  assert.not.ok(existsSync(join(dir, '.taken.abcdef')));
  assert.equal(leftovers(dir), []);
});

test.run();
