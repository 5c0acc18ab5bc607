// lsyncd 2's delete = 'startup' | 'running' (issue 14), against the real rsync daemon: with
// 'startup' a file deleted while we were down goes at start and one deleted while running stays on
// the mirror; with 'running' the reverse; with 'startup' and a `changed` restart, what the source
// lost while running is deleted at the next start (the state forgot nothing). The status says the
// startup mode, which phases delete, and what became of the state file. And the command line:
// --delete-only, --max-size, -b/--backup-dir reach the live mirror's pushes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, mkdir, unlink, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { setTime } from './helpers/fstree.js';
import { CLI, lsyncd } from './helpers/cli.js';
import { startLiveMirror, type LiveMirror, type LiveMirrorOptions } from '../src/live/index.js';
import { DEFAULT_TRANSFER } from '../protocol/args.js';
import type { DaemonTarget } from '../src/transfer/target.js';

let daemon: TestDaemon;
let work: string;
const logs: string[] = [];
const onLog = (level: string, message: string) => logs.push(`${level} ${message}`);

test.before(async () => {
  daemon = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'lsyncd-live-delete-'));
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

const target = (path: string): DaemonTarget => ({ host: '127.0.0.1', port: daemon.port, module: 'push', path });
const onMirror = (path: string) => join(daemon.modulePath('push'), path);

/** Poll `check` until it returns true (or fail after `ms`). */
async function eventually(check: () => Promise<boolean> | boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}\n--- log:\n${logs.slice(-20).join('\n')}`);
}

/** A source of files a, b, c and the mirror's copy of it plus `stale` (deleted from the source while we were down). */
async function prepare(name: string): Promise<string> {
  const src = join(work, name);
  await mkdir(src);
  await mkdir(onMirror(name), { recursive: true });
  for (const f of ['a', 'b', 'c']) {
    await writeFile(join(src, f), `${f}\n`);
    await setTime(join(src, f));
  }
  await writeFile(onMirror(`${name}/stale`), 'deleted while we were down\n');
  return src;
}

async function start(name: string, options: Partial<LiveMirrorOptions>): Promise<LiveMirror> {
  const mirror = await startLiveMirror({ source: join(work, name), targets: [{ target: target(`${name}/`), session: {} }], onLog, ...options });
  await mirror.ready;
  await mirror.whenIdle();
  return mirror;
}

/** Delete `a` from the source and write `marker`; wait until the marker is on the mirror and all is pushed. */
async function deleteWhileRunning(name: string, mirror: LiveMirror): Promise<void> {
  await unlink(join(work, name, 'a'));
  await writeFile(join(work, name, 'marker'), 'after the delete\n');
  await eventually(() => existsSync(onMirror(`${name}/marker`)), 'the marker on the mirror');
  await mirror.whenIdle();
}

test("delete only at startup: what went while we were down is deleted, what goes while running stays", async () => {
  await prepare('startup');
  const mirror = await start('startup', { deleteOnly: 'startup' });
  try {
    assert.not.ok(existsSync(onMirror('startup/stale')), 'the startup sync deleted the stale file');
    assert.ok(existsSync(onMirror('startup/c')));
    const status = mirror.status();
    assert.is(status.startup, 'full');
    assert.equal(status.deletes, { startup: true, running: false });
    assert.is(status.state, undefined);
    await deleteWhileRunning('startup', mirror);
    assert.ok(existsSync(onMirror('startup/a')), 'a file deleted while running stays on the mirror');
    // A deleted directory stays too (the batch's parent push does not delete).
    await mkdir(join(work, 'startup', 'dir'));
    await writeFile(join(work, 'startup', 'dir', 'f'), 'f\n');
    await eventually(() => existsSync(onMirror('startup/dir/f')), 'dir/f on the mirror');
    await mirror.whenIdle();
    await rm(join(work, 'startup', 'dir'), { recursive: true });
    await writeFile(join(work, 'startup', 'marker2'), 'after the rmdir\n');
    await eventually(() => existsSync(onMirror('startup/marker2')), 'marker2 on the mirror');
    await mirror.whenIdle();
    assert.ok(existsSync(onMirror('startup/dir/f')), 'a directory deleted while running stays on the mirror');
  } finally {
    await mirror.stop();
  }
});

test('delete only while running: what went while we were down stays, what goes while running is deleted', async () => {
  await prepare('running');
  const mirror = await start('running', { deleteOnly: 'running' });
  try {
    assert.ok(existsSync(onMirror('running/stale')), 'the startup sync kept the stale file');
    assert.ok(existsSync(onMirror('running/c')));
    assert.equal(mirror.status().deletes, { startup: false, running: true });
    await unlink(join(work, 'running', 'a'));
    await eventually(() => !existsSync(onMirror('running/a')), 'the deletion of a on the mirror');
    assert.ok(existsSync(onMirror('running/stale')), 'the batch did not touch the stale file');
  } finally {
    await mirror.stop();
  }
});

test('delete only at startup with a changed restart: what the source lost while running is deleted at the next start', async () => {
  await prepare('restart');
  const stateFile = join(work, 'restart.state');
  let mirror = await start('restart', { deleteOnly: 'startup', startup: 'changed', stateFile });
  let status = mirror.status();
  assert.is(status.startup, 'changed');
  assert.is(status.state?.path, stateFile);
  assert.is(status.state?.use, 'fresh');
  assert.match(status.state?.reason ?? '', 'no state file yet');
  assert.not.ok(existsSync(onMirror('restart/stale')), 'the first startup (a full one: no state yet) deleted');
  await deleteWhileRunning('restart', mirror);
  assert.ok(existsSync(onMirror('restart/a')), 'kept while running');
  await mirror.stop();
  logs.length = 0;
  mirror = await start('restart', { deleteOnly: 'startup', startup: 'changed', stateFile });
  try {
    status = mirror.status();
    assert.equal(status.state, { path: stateFile, use: 'used' });
    assert.not.ok(existsSync(onMirror('restart/a')), 'the changed startup deleted what the source lost while running');
    assert.ok(existsSync(onMirror('restart/marker')));
    assert.ok(logs.some((l) => /1 path\(s\) differ from the state file/.test(l)), logs.join('\n'));
  } finally {
    await mirror.stop();
  }
  // A full restart says why it did not use the state.
  mirror = await start('restart', { startup: 'full', stateFile, transfer: DEFAULT_TRANSFER });
  try {
    status = mirror.status();
    assert.is(status.state?.use, 'fresh');
    assert.match(status.state?.reason ?? '', 'full startup');
  } finally {
    await mirror.stop();
  }
});

function startCli(args: string[]): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function stopped(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  return done;
}

test('the command line: --delete-only running, --max-size and -b --backup-dir reach the live pushes; the status file says the phases', async () => {
  const name = 'cli';
  const src = await prepare(name);
  await writeFile(join(src, 'big'), 'x'.repeat(5000));
  const statusFile = join(work, 'cli.status');
  const url = `rsync://127.0.0.1:${daemon.port}/push/${name}/`;
  const child = startCli(['--nodaemon', '--delete-only', 'running', '--max-size', '1k', '-b', '--backup-dir', '.bak', '--status-file', statusFile, `${src}/`, url]);
  try {
    await eventually(() => existsSync(onMirror(`${name}/c`)), 'the startup sync');
    assert.ok(existsSync(onMirror(`${name}/stale`)), 'no deletion at startup');
    await writeFile(join(src, 'b'), 'b, changed while running\n');
    await eventually(async () => existsSync(onMirror(`${name}/b`)) && (await readFile(onMirror(`${name}/b`), 'utf8')).startsWith('b, changed'), 'the change of b');
    assert.is(await readFile(onMirror(`${name}/.bak/b`), 'utf8'), 'b\n', 'the replaced b was backed up into --backup-dir');
    await unlink(join(src, 'a'));
    await eventually(() => !existsSync(onMirror(`${name}/a`)), 'the deletion of a');
    assert.ok(existsSync(onMirror(`${name}/.bak/a`)), 'the deleted a was backed up');
    assert.not.ok(existsSync(onMirror(`${name}/big`)), '--max-size kept the big file off the mirror');
    await eventually(() => existsSync(statusFile), 'the status file');
    const status = JSON.parse(await readFile(statusFile, 'utf8')) as { mirrors: Array<{ startup: string; deletes: { startup: boolean; running: boolean } }> };
    assert.is(status.mirrors[0]!.startup, 'full');
    assert.equal(status.mirrors[0]!.deletes, { startup: false, running: true });
  } finally {
    assert.is(await stopped(child), 0);
  }
});

test("an lsyncd 2 Lua config: delete = 'startup' and 'running' side by side, rsync = { backup_dir = ... }; the status file names each sync's phases", async () => {
  const one = await prepare('lua-startup');
  const two = await prepare('lua-running');
  const statusFile = join(work, 'lua.status');
  const config = join(work, 'phases.lua');
  const base = `rsync://127.0.0.1:${daemon.port}/push`;
  await writeFile(
    config,
    [
      `settings { statusFile = ${JSON.stringify(statusFile)}, statusInterval = 1, nodaemon = true }`,
      `sync { default.rsync, source = ${JSON.stringify(one)}, target = "${base}/lua-startup/", delay = 0, delete = 'startup' }`,
      `sync { default.rsync, source = ${JSON.stringify(two)}, target = "${base}/lua-running/", delay = 0, delete = 'running', rsync = { backup_dir = ".old" } }`,
    ].join('\n'),
  );
  const child = startCli([config]);
  try {
    await eventually(() => existsSync(onMirror('lua-startup/c')) && existsSync(onMirror('lua-running/c')), 'both startup syncs');
    await eventually(() => !existsSync(onMirror('lua-startup/stale')), "the 'startup' sync's deletion");
    assert.ok(existsSync(onMirror('lua-running/stale')), "the 'running' sync deletes nothing at startup");
    for (const src of [one, two]) {
      await unlink(join(src, 'a'));
      await writeFile(join(src, 'marker'), 'after the delete\n');
    }
    await eventually(() => !existsSync(onMirror('lua-running/a')), "the 'running' sync's deletion");
    assert.is(await readFile(onMirror('lua-running/.old/a'), 'utf8'), 'a\n', 'backed up into backup_dir');
    await eventually(() => existsSync(onMirror('lua-startup/marker')), "the 'startup' sync's marker");
    await new Promise((r) => setTimeout(r, 300)); // a deletion would have come with the marker's batch or before it
    assert.ok(existsSync(onMirror('lua-startup/a')), "the 'startup' sync keeps what goes while running");
    await eventually(() => existsSync(statusFile), 'the status file');
    const status = JSON.parse(await readFile(statusFile, 'utf8')) as { mirrors: Array<{ name: string; deletes: { startup: boolean; running: boolean } }> };
    assert.equal(
      status.mirrors.map((m) => [m.name, m.deletes]),
      [
        [`${one}/`, { startup: true, running: false }],
        [`${two}/`, { startup: false, running: true }],
      ],
    );
  } finally {
    assert.is(await stopped(child), 0);
  }
});

test('the command line refuses what the live mirror cannot do, with a clear line', async () => {
  let r = await lsyncd(['--nodaemon', '--delete-only', 'startup', '--no-delete', `${work}/`, `rsync://127.0.0.1:${daemon.port}/push/x/`]);
  assert.is(r.status, 1);
  assert.match(r.stderr, '--delete-only startup and --no-delete contradict each other');
  r = await lsyncd(['--nodaemon', '-m', `${work}/`, `rsync://127.0.0.1:${daemon.port}/push/x/`]);
  assert.is(r.status, 1);
  assert.match(r.stderr, '-m/--prune-empty-dirs is not supported by the live mirror');
  r = await lsyncd(['--nodaemon', '--inplace', `${work}/`, `rsync://127.0.0.1:${daemon.port}/push/x/`]);
  assert.is(r.status, 1);
  assert.match(r.stderr, '--inplace is not supported by the live mirror');
  r = await lsyncd(['--once', '--delete-only', 'startup', `${work}/`, `rsync://127.0.0.1:${daemon.port}/push/x/`]);
  assert.is(r.status, 1);
  assert.match(r.stderr, '--delete-only startup is for the live mirror');
  r = await lsyncd(['--nodaemon', '--delete-only', 'sometimes', `${work}/`, `rsync://127.0.0.1:${daemon.port}/push/x/`]);
  assert.is(r.status, 1);
  assert.match(r.stderr, 'sometimes');
});

test.run();
