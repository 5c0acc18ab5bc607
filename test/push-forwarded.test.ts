// The receiving side's options our push simply forwards to the daemon (-K, -O, -J, -E,
// --delay-updates, -T): the same source and changes pushed into one rsyncd by `rsync -rlpt OPTION`
// and by ours (separate paths), the trees compared exactly; and their refusal on a pull and in
// the live mirror. The argument lists are checked in transfer-options.test.ts (PUSH_ARGS).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, lstat, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { lsyncd, run, type RunResult } from './helpers/cli.js';
import { snapshot, diffTrees, type Tree } from './helpers/tree.js';
import { setTimes, T0 } from './helpers/fstree.js';
import { runText } from './helpers/serve.js';
import { tmpdir } from 'node:os';

let daemon: TestDaemon;
let work: string;

test.before(async () => {
  daemon = await startDaemon({ extraModules: [{ name: 'src', comment: 'pull source', settings: { 'read only': true } }] });
  work = await mkdtemp(join(tmpdir(), 'lsyncd-fwd-'));
});
test.after(async () => {
  await daemon?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const pushUrl = (path: string) => `rsync://127.0.0.1:${daemon.port}/push/${path}/`;
const onDaemon = (path: string) => join(daemon.modulePath('push'), path);

/** A small source: files, a nested directory, an executable, symlinks; every time T0. */
async function source(src: string): Promise<void> {
  await rm(src, { recursive: true, force: true });
  await mkdir(join(src, 'sub/deep'), { recursive: true });
  await writeFile(join(src, 'a.txt'), 'alpha\n');
  await writeFile(join(src, 'run.sh'), '#!/bin/sh\n');
  await writeFile(join(src, 'sub/b.txt'), 'beta\n');
  await writeFile(join(src, 'sub/deep/c.txt'), 'gamma\n');
  await symlink('a.txt', join(src, 'link'));
  await symlink('../a.txt', join(src, 'sub/up-link'));
  await setTimes(src);
}

/** The same change to the source between two pushes: a file edited, one added, one removed. */
async function change(src: string): Promise<void> {
  await writeFile(join(src, 'a.txt'), 'alpha, longer now\n');
  await writeFile(join(src, 'sub/new.txt'), 'new\n');
  await rm(join(src, 'sub/deep/c.txt'));
  await setTimes(src, T0 + 60);
}

/** rsync's push (`rsync -rlpt --delete OPTIONS`) and ours (`lsyncd --once OPTIONS`), each to its own path. */
async function pushBoth(src: string, name: string, options: string[], rsyncOptions = ['-rlpt', '--delete', ...options]): Promise<{ r: RunResult; o: RunResult }> {
  const r = await run('rsync', [...rsyncOptions, src + '/', pushUrl(`ref-${name}`)]);
  const o = await lsyncd(['--once', ...options, src + '/', pushUrl(`ours-${name}`)]);
  return { r, o };
}

function assertOk({ r, o }: { r: RunResult; o: RunResult }, what: string): void {
  assert.is(r.status, 0, `rsync ${what}: ${runText(r)}`);
  assert.is(o.status, 0, `ours ${what}: ${runText(o)}`);
}

/** The two pushes' trees on the daemon, `drop` removing what the option leaves to the clock. */
async function assertSameTrees(name: string, what: string, drop: (tree: Tree) => void = () => {}): Promise<void> {
  const ref = await snapshot(onDaemon(`ref-${name}`));
  const ours = await snapshot(onDaemon(`ours-${name}`));
  drop(ref);
  drop(ours);
  const diff = diffTrees(ref, ours);
  assert.equal(diff, [], `${what}\n${diff.slice(0, 20).join('\n')}`);
}

/** A tree with the mtimes of one type zeroed (what -O / -J leave to the push's time), after checking none is the source's. */
function timesLeftAlone(type: 'dir' | 'symlink', what: string): (tree: Tree) => void {
  return (tree) => {
    let seen = 0;
    for (const [path, node] of tree) {
      if (node.type !== type) continue;
      seen++;
      const seconds = Number(node.mtimeNs / 1_000_000_000n);
      assert.ok(seconds !== T0 && seconds !== T0 + 60, `${what}: ${path} has the source's mtime`);
      node.mtimeNs = 0n;
    }
    assert.ok(seen > 0, `${what}: no ${type} to look at`);
  };
}

for (const [option, type] of [['-O', 'dir'], ['-J', 'symlink']] as const) {
  test(`push ${option}: the daemon leaves ${type} mtimes alone, as for rsync's push`, async () => {
    const name = `omit${option.slice(1)}`;
    const src = join(work, name);
    await source(src);
    assertOk(await pushBoth(src, name, [option]), option);
    await assertSameTrees(name, option, timesLeftAlone(type, option));
    await change(src);
    assertOk(await pushBoth(src, name, [option]), `${option} again`);
    await assertSameTrees(name, `${option} after the change`, timesLeftAlone(type, option));
  });
}

test('push -O -b: -b without --backup-dir implies -O on the daemon (rsync sends no O), the same trees', async () => {
  const name = 'omitOb';
  const src = join(work, name);
  await source(src);
  assertOk(await pushBoth(src, name, ['-O', '-b']), '-O -b');
  await change(src);
  assertOk(await pushBoth(src, name, ['-O', '-b']), '-O -b again');
  await assertSameTrees(name, '-O -b', timesLeftAlone('dir', '-O -b'));
});

test('push -K: a symlink to a directory on the daemon stays a symlink, as for rsync\'s push', async () => {
  const name = 'keepK';
  const src = join(work, name);
  await source(src);
  await mkdir(join(src, 'linked'));
  await writeFile(join(src, 'linked/inside.txt'), 'through the link\n');
  await setTimes(src);
  for (const side of ['ref', 'ours']) {
    const dest = onDaemon(`${side}-${name}`);
    await rm(dest, { recursive: true, force: true });
    await mkdir(join(dest, 'real'), { recursive: true });
    await symlink('real', join(dest, 'linked'));
  }
  // Without --delete: the daemon's `real` is not in the source.
  assertOk(await pushBoth(src, name, ['-K', '--no-delete'], ['-rlpt', '-K']), '-K');
  // `real` gains a file during each push: its mtime is that moment's (the source has no `real`).
  await assertSameTrees(name, '-K', (tree) => {
    tree.get('real')!.mtimeNs = 0n;
  });
  for (const side of ['ref', 'ours']) {
    assert.ok((await lstat(join(onDaemon(`${side}-${name}`), 'linked'))).isSymbolicLink(), `${side}: linked is still a symlink`);
    assert.ok((await lstat(join(onDaemon(`${side}-${name}`), 'real/inside.txt'))).isFile(), `${side}: the file went through the link`);
  }
});

test('push -E --no-perms: an executable bit change reaches the daemon, as for rsync\'s push', async () => {
  const name = 'execE';
  const src = join(work, name);
  await source(src);
  assertOk(await pushBoth(src, name, ['--no-perms', '-E'], ['-rlt', '--delete', '-E']), '-E');
  await chmod(join(src, 'run.sh'), 0o755);
  assertOk(await pushBoth(src, name, ['--no-perms', '-E'], ['-rlt', '--delete', '-E']), '-E after chmod +x');
  await assertSameTrees(name, '-E');
  for (const side of ['ref', 'ours']) {
    const mode = (await lstat(join(onDaemon(`${side}-${name}`), 'run.sh'))).mode;
    assert.ok((mode & 0o111) !== 0, `${side}: run.sh is executable (mode ${mode.toString(8)})`);
  }
  // Without -E the bit stays behind (what -E changed).
  await chmod(join(src, 'run.sh'), 0o644);
  const o = await lsyncd(['--once', '--no-perms', src + '/', pushUrl(`ours-${name}`)]);
  assert.is(o.status, 0, runText(o));
  assert.ok(((await lstat(join(onDaemon(`ours-${name}`), 'run.sh'))).mode & 0o111) !== 0, 'without -E the mode is left alone');
});

test('push --delay-updates: the same final tree as rsync\'s push, no .~tmp~ left', async () => {
  for (const extra of [[], ['--partial-dir=.held']]) {
    const name = `delay${extra.length}`;
    const src = join(work, name);
    await source(src);
    // A source dir named as the partial dir is left out by both clients (their rule goes with the list).
    await mkdir(join(src, 'sub', extra.length ? '.held' : '.~tmp~'));
    await writeFile(join(src, 'sub', extra.length ? '.held' : '.~tmp~', 'stray.txt'), 'stray\n');
    await setTimes(src);
    const options = ['--delay-updates', ...extra];
    assertOk(await pushBoth(src, name, options), options.join(' '));
    await change(src);
    assertOk(await pushBoth(src, name, options), `${options.join(' ')} again`);
    await assertSameTrees(name, options.join(' '));
    for (const side of ['ref', 'ours']) {
      const left = await listAll(onDaemon(`${side}-${name}`));
      assert.ok(!left.some((p) => p.includes('.~tmp~') || p.includes('.held')), `${side}: ${left.join(' ')}`);
    }
  }
});

/** Every path below `root`. */
async function listAll(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).map(String);
}

test('push -T DIR: the daemon writes its temp files in DIR (a missing one fails both), the same tree', async () => {
  const name = 'tempT';
  const src = join(work, name);
  await source(src);
  // The daemon sanitizes the path (use chroot = no): an absolute one is taken below the module.
  const missing = await pushBoth(src, name, ['-T', '/no-such-temp-dir']);
  assert.is(missing.o.status, missing.r.status, `rsync: ${runText(missing.r)}\nours: ${runText(missing.o)}`);
  assert.ok(missing.r.status !== 0, runText(missing.r));
  for (const r of [missing.r, missing.o]) assert.match(r.stderr.toString(), /temp-dir does not exist/);
  await mkdir(onDaemon('temp-dir'), { recursive: true });
  assertOk(await pushBoth(src, name, ['-T', '/temp-dir']), '-T');
  await change(src);
  assertOk(await pushBoth(src, name, ['-T', '/temp-dir']), '-T again');
  await assertSameTrees(name, '-T');
  assert.equal(await readdir(onDaemon('temp-dir')), [], 'the temp dir is left empty');
});

// A pull does all six itself (test/recv-times, recv-keep-dirlinks, recv-delay).
test('-K, -O, -J, -E, --delay-updates, -T: refused in the live mirror, by name (exit 1)', async () => {
  const cases: Array<[string[], string]> = [
    [['-K'], '-K/--keep-dirlinks'],
    [['-O'], '-O/--omit-dir-times'],
    [['-J'], '-J/--omit-link-times'],
    [['-E'], '-E/--executability'],
    [['--delay-updates'], '--delay-updates'],
    [['-T', '/tmp'], '-T/--temp-dir'],
  ];
  const src = join(work, 'refused');
  await mkdir(src, { recursive: true });
  for (const [options, name] of cases) {
    const live = await lsyncd(['--nodaemon', ...options, src, pushUrl('refused-live')]);
    assert.is(live.status, 1, runText(live));
    assert.ok(live.stderr.toString().includes(`${name} is not supported by the live mirror`), runText(live));
  }
});

test('--delay-updates and --inplace, and an over-long -T: refused in rsync\'s words', async () => {
  const src = join(work, 'refused');
  await mkdir(src, { recursive: true });
  for (const options of [['--inplace', '--delay-updates'], ['--append', '--delay-updates', '--partial-dir=.p'], ['-T', 'x'.repeat(4086)]]) {
    const r = await run('rsync', [...options, src + '/', pushUrl('refused')]);
    const o = await lsyncd(['--once', ...options, src + '/', pushUrl('refused')]);
    const first = r.stderr.toString().split('\n')[0]!.replace(/^rsync: /, '');
    assert.ok(first.length > 0, runText(r));
    assert.is(o.status, 1, runText(o));
    assert.ok(o.stderr.toString().includes(first), `rsync: ${first}\nours: ${runText(o)}`);
  }
});

test.run();
