// The live mirror against a target that refuses or limits it (issue 11, defects 4 and 10), with a
// real rsyncd: a read-only module at start is exit 5 with the daemon's words; while running a
// refusal is logged once, not per retry; SIGTERM with a refusing target gives up after one try and
// exits with rsync's code naming the paths left; a module with `max connections = 1` never sees a
// second connection of ours (rsyncd's own log says so).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, freePort, type TestDaemon } from './helpers/daemon.js';
import { CLI, lsyncd, run as runCommand } from './helpers/cli.js';
import { untilSameTree } from './helpers/tree.js';
import { openSessionCount, sessionCount } from './helpers/daemon-log.js';

let daemon: TestDaemon;
let work: string;

test.before(async () => {
  daemon = await startDaemon({
    extraModules: [
      { name: 'one', comment: 'one connection at a time', settings: { 'read only': false, 'max connections': 1 } },
      { name: 'nodry', comment: 'refuses -n', settings: { 'read only': false, 'refuse options': 'dry-run' } },
    ],
  });
  work = await mkdtemp(join(tmpdir(), 'lsyncd-live-refusal-'));
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

const url = (module: string, path: string) => `rsync://127.0.0.1:${daemon.port}/${module}/${path}`;

function startCli(args: string[]): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return { child, stderr: () => err };
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));
}

async function eventually(check: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function sourceTree(name: string): Promise<string> {
  const src = join(work, name);
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'a.txt'), 'a\n');
  await writeFile(join(src, 'sub/b.txt'), 'b\n');
  return src;
}

test('a read-only module at start: exit 5 with the daemon text (foreground and detached), as rsync -a is refused', async () => {
  const src = await sourceTree('ro-start');
  const rsync = await runCommand('rsync', ['-a', `${src}/`, url('ro', 'x/')]);
  assert.match(rsync.stderr, 'ERROR: module is read only');
  const fg = await lsyncd(['--nodaemon', `${src}/`, url('ro', 'x/')]);
  assert.is(fg.status, 5, fg.stderr);
  assert.match(fg.stderr, /ro\/x\/: ERROR: module is read only\n/);
  assert.match(fg.stderr, '(code 5)');
  const bg = await lsyncd(['--logfile', join(work, 'ro.log'), `${src}/`, url('ro', 'x/')]);
  assert.is(bg.status, 5, bg.stderr);
  assert.match(bg.stderr, 'ERROR: module is read only');
});

test('a module that refuses only --dry-run (the start check\'s option) is no refusal: it is mirrored', async () => {
  const src = await sourceTree('nodry');
  const run = startCli(['--nodaemon', `${src}/`, url('nodry', 'n/')]);
  try {
    assert.equal(await untilSameTree(src, join(daemon.modulePath('nodry'), 'n'), { timeoutMs: 10_000, ignore: ['uid', 'gid'] }), [], run.stderr());
  } finally {
    run.child.kill('SIGTERM');
    assert.is(await exited(run.child), 0, run.stderr());
  }
});

test('a refusing target while running: said once, not per retry; SIGTERM tries once, then exits with rsync\'s code naming the paths left', async () => {
  const src = await sourceTree('ro-running');
  // --insist: past the start check, into the running mirror's retries (0.5 s doubling).
  const run = startCli(['--nodaemon', '--insist', `${src}/`, url('ro', 'y/')]);
  // Four attempts reached the daemon: the refusal met again on each retry.
  await eventually(async () => sessionCount(await daemon.log(), 'ro/y/') >= 4 || run.child.exitCode !== null, 30_000, 'four attempts');
  assert.is(run.child.exitCode, null, `still running:\n${run.stderr()}`);
  run.child.kill('SIGTERM');
  const code = await exited(run.child);
  const err = run.stderr();
  assert.is(code, 1, err); // rsync's code for the daemon's refusal (main.c: do_server_recv exits RERR_SYNTAX)
  assert.is(err.split('\n').filter((l) => l.includes('module is read only') && l.includes('retrying')).length, 1, err);
  assert.not.match(err, 'rsync error: syntax or usage error', 'the daemon summary line is not repeated at the default level');
  const afterSignal = err.slice(err.indexOf('SIGTERM'));
  assert.is(afterSignal.split('\n').filter((l) => l.includes('module is read only')).length, 1, `one attempt after SIGTERM:\n${afterSignal}`);
  assert.match(err, /1 path\(s\) could not be pushed before exiting \(code 1\)/);
  assert.not.match(err, 'retrying in 30.0 s');
});

test('an unreachable target on SIGTERM: no reconnect loop, exit 10 (rsync\'s socket I/O code)', async () => {
  const src = await sourceTree('gone');
  const closed = await freePort(); // nothing listens there
  const run = startCli(['--nodaemon', '--insist', `${src}/`, `rsync://127.0.0.1:${closed}/push/z/`]);
  // Past the start check, in the running mirror's retries: the line that says so.
  await eventually(() => /failed to connect[^\n]*retrying in/.test(run.stderr()) || run.child.exitCode !== null, 30_000, 'a failed attempt and its retry');
  assert.is(run.child.exitCode, null, `still running:\n${run.stderr()}`);
  const stopAt = Date.now();
  run.child.kill('SIGTERM');
  const code = await exited(run.child);
  assert.ok(Date.now() - stopAt < 3000, 'exits promptly');
  assert.is(code, 10, run.stderr());
  assert.match(run.stderr(), 'could not be pushed before exiting (code 10)');
});

test('max connections = 1: the mirror never holds a second connection (no refusal in rsyncd\'s log), startup, changes and renames', async () => {
  const src = await sourceTree('one');
  await writeFile(join(src, 'big.bin'), Buffer.alloc(256 * 1024, 7)); // worth a --fuzzy pre-push when renamed
  const run = startCli(['--nodaemon', `${src}/`, url('one', 'm/')]);
  const dest = join(daemon.modulePath('one'), 'm');
  try {
    await eventually(async () => (await untilSameTree(src, dest, { timeoutMs: 100, ignore: ['uid', 'gid'] }).catch(() => ['x'])).length === 0, 15_000, 'startup sync');
    for (let i = 0; i < 6; i++) {
      const pushed = (run.stderr().match(/ pushed \d+ change/g) ?? []).length;
      await writeFile(join(src, `sub/n${i}.txt`), `change ${i}\n`);
      // Its batch, then the session opened ahead for the next one (waiting for its file list).
      await eventually(() => (run.stderr().match(/ pushed \d+ change/g) ?? []).length > pushed, 15_000, `change ${i} pushed`);
      await eventually(async () => openSessionCount(await daemon.log(), 'one/m/') === 1, 15_000, `the session opened ahead after change ${i}`).catch(
        async (e: Error) => {
          throw new Error(`${e.message}\n--- rsyncd's log:\n${await daemon.log()}\n--- ours:\n${run.stderr()}`);
        },
      );
    }
    await rename(join(src, 'big.bin'), join(src, 'sub/big-moved.bin')); // a pre-push, then the batch
    await mkdir(join(src, 'newdir/deeper'), { recursive: true });
    await writeFile(join(src, 'newdir/deeper/c.txt'), 'c\n');
    assert.equal(await untilSameTree(src, dest, { timeoutMs: 10_000, ignore: ['uid', 'gid'] }), []);
  } finally {
    run.child.kill('SIGTERM');
    assert.is(await exited(run.child), 0, run.stderr());
  }
  const log = await daemon.log();
  assert.not.match(log, 'max connections', log.split('\n').filter((l) => l.includes('max connections')).join('\n'));
  assert.not.match(run.stderr(), 'max connections');
});

test.run();
