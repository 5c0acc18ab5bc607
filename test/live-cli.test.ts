// The live mirror through the command line (issue 5's process side): foreground runs with a pidfile
// and a status file, SIGTERM pushing what is pending, a refused target at start (exit 5 unless
// --insist), detaching into the background, and %userwww picking up users while running.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir, readFile, utimes } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { CLI, lsyncd, run } from './helpers/cli.js';
import { untilSameTree } from './helpers/tree.js';
import { makeTree as makeFullTree, T0 } from './helpers/fstree.js';

/**
 * The push tests' tree without its absolute symlink: a `use chroot = no` daemon strips the leading
 * slash of such targets (rsync's own pushes too), and here the mirror is compared with the source.
 */
async function makeTree(root: string): Promise<void> {
  await makeFullTree(root);
  await rm(join(root, 'absolute'));
}

let daemon: TestDaemon;
let work: string;

test.before(async () => {
  daemon = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'lsyncd-livecli-'));
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

const url = (path: string) => `rsync://127.0.0.1:${daemon.port}/push/${path}`;

function startCli(args: string[]): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return { child, stderr: () => err };
}

/** Poll `check` until it returns true (or fail after `ms`). */
async function eventually(check: () => Promise<boolean> | boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Whether the mirror at `path` equals `src` (owners aside), within `ms`. */
async function mirrored(src: string, path: string, ms = 200): Promise<boolean> {
  const dest = join(daemon.modulePath('push'), path);
  return existsSync(dest) && (await untilSameTree(src, dest, { timeoutMs: ms, ignore: ['uid', 'gid'] })).length === 0;
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));
}

test('foreground: startup sync, live changes, pidfile, status file; SIGTERM pushes what is pending and exits 0', async () => {
  const src = join(work, 'fg');
  await makeTree(src);
  const pidfile = join(work, 'fg.pid');
  const statusFile = join(work, 'fg.status');
  const run = startCli(['--nodaemon', '--pidfile', pidfile, '--status-file', statusFile, `${src}/`, url('fg/')]);
  await eventually(() => mirrored(src, 'fg'), 15_000, 'startup sync');
  assert.is(Number((await readFile(pidfile, 'utf8')).trim()), run.child.pid);
  await writeFile(join(src, 'live.txt'), 'written while running\n');
  await eventually(() => mirrored(src, 'fg'), 10_000, 'a live change');
  await eventually(() => existsSync(statusFile));
  const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
  await eventually(async () => iso.test((JSON.parse(await readFile(statusFile, 'utf8')) as { mirrors: Array<{ targets: Array<{ lastPushAt?: string }> }> }).mirrors[0]?.targets[0]?.lastPushAt ?? ''), 10_000, 'lastPushAt in the status file');
  const status = JSON.parse(await readFile(statusFile, 'utf8')) as { pid: number; time: string; mirrors: Array<{ overflows: number; targets: Array<{ state: string; lastPushAt: string }> }> };
  assert.is(status.pid, run.child.pid);
  assert.is(status.mirrors.length, 1);
  // One time format in the file: ISO-8601 (lastPushAt was epoch ms).
  assert.match(status.time, iso);
  assert.match(status.mirrors[0]!.targets[0]!.lastPushAt, iso);
  assert.is(status.mirrors[0]!.overflows, 0);
  // A second instance on the same pidfile is refused.
  const second = await lsyncd(['--nodaemon', '--pidfile', pidfile, `${src}/`, url('fg2/')]);
  assert.is(second.status, 1);
  assert.match(second.stderr, 'running process');
  // Changes made just before SIGTERM are pushed before the process exits.
  await mkdir(join(src, 'late/deeper'), { recursive: true });
  for (let i = 0; i < 50; i++) await writeFile(join(src, 'late/deeper', `f${i}`), `late ${i}\n`);
  run.child.kill('SIGTERM');
  assert.is(await exited(run.child), 0, run.stderr());
  assert.ok(await mirrored(src, 'fg', 0), 'everything pushed before exit');
  assert.not.ok(existsSync(pidfile), 'pidfile removed');
  assert.match(run.stderr(), 'SIGTERM');
});

test('a target refused at start: exit 5 with the daemon text; --insist keeps trying, and exits 5 naming the paths left', async () => {
  const src = join(work, 'refused');
  await makeTree(src);
  const r = await lsyncd(['--nodaemon', `${src}/`, `rsync://127.0.0.1:${daemon.port}/nosuch/`]);
  assert.is(r.status, 5);
  assert.match(r.stderr, "@ERROR: Unknown module 'nosuch'");
  const insist = startCli(['--nodaemon', '--insist', `${src}/`, `rsync://127.0.0.1:${daemon.port}/nosuch/`]);
  // Refused, and going on: the line that says it retries.
  await eventually(() => /Unknown module 'nosuch'[^\n]*retrying in/.test(insist.stderr()) || insist.child.exitCode !== null, 30_000, 'a refused attempt and its retry');
  assert.is(insist.child.exitCode, null, `still running:\n${insist.stderr()}`);
  insist.child.kill('SIGTERM');
  assert.is(await exited(insist.child), 5, insist.stderr());
  assert.match(insist.stderr(), '1 path(s) could not be pushed before exiting (code 5)');
});

for (const slash of [false, true]) {
  test(`rsync's trailing-slash rule: SOURCE${slash ? '/ mirrors its contents' : ' mirrors the directory itself'} into the target, as rsync -a does`, async () => {
    const src = join(work, `tsrc${slash ? 'slash' : ''}`);
    await makeTree(src);
    // A fixed time for the directory itself: rsync leaves a new item's mtime alone when it
    // equals the source's to the second, which a tree made just now would.
    await utimes(src, T0, T0);
    const arg = slash ? `${src}/` : src;
    const ours = `ns-ours-${slash}/`;
    const theirs = `ns-rsync-${slash}/`;
    const rsync = await run('rsync', ['-a', arg, url(theirs)]);
    assert.is(rsync.status, 0, rsync.stderr);
    const live = startCli(['--nodaemon', arg, url(ours)]);
    try {
      const expected = join(daemon.modulePath('push'), theirs);
      const diff = await untilSameTree(expected, join(daemon.modulePath('push'), ours), { timeoutMs: 15_000, ignore: ['uid', 'gid'] });
      assert.equal(diff, [], live.stderr());
      assert.is(existsSync(join(daemon.modulePath('push'), ours, `tsrc${slash ? 'slash' : ''}`)), !slash);
    } finally {
      live.child.kill('SIGTERM');
      assert.is(await exited(live.child), 0, live.stderr());
    }
  });
}

test('detached by default: the command returns at once, the background process mirrors and stops on SIGTERM', async () => {
  const src = join(work, 'bg');
  await makeTree(src);
  const pidfile = join(work, 'bg.pid');
  const logfile = join(work, 'bg.log');
  const r = await lsyncd(['--pidfile', pidfile, '--logfile', logfile, `${src}/`, url('bg/')]);
  assert.is(r.status, 0, r.stderr);
  await eventually(() => existsSync(pidfile), 10_000, 'the pidfile');
  const pid = Number((await readFile(pidfile, 'utf8')).trim());
  await eventually(() => mirrored(src, 'bg'), 15_000, 'startup sync');
  await writeFile(join(src, 'bg-live.txt'), 'live\n');
  await eventually(() => mirrored(src, 'bg'), 10_000, 'a live change');
  process.kill(pid, 'SIGTERM');
  await eventually(() => !existsSync(pidfile), 10_000, 'exit');
  assert.match(await readFile(logfile, 'utf8'), 'startup sync done');
});

test('detached: the command returns once the background process is up, and a start that fails is no success', async () => {
  const src = join(work, 'bg2');
  await makeTree(src);
  const pidfile = join(work, 'bg2.pid');
  const logfile = join(work, 'bg2.log');
  const r = await lsyncd(['--pidfile', pidfile, '--logfile', logfile, `${src}/`, url('bg2/')]);
  assert.is(r.status, 0, r.stderr);
  // Up when the command returns: the pidfile is already written.
  const pid = Number((await readFile(pidfile, 'utf8')).trim());
  assert.ok(pid > 0);
  try {
    // A second instance on the same pidfile: refused, with its reason on stderr and exit 1.
    const second = await lsyncd(['--pidfile', pidfile, '--logfile', logfile, `${src}/`, url('bg3/')]);
    assert.is(second.status, 1, second.stderr);
    assert.match(second.stderr, `pidfile ${pidfile} names a running process (${pid})`);
    assert.not.match(second.stderr, 'internal error');
  } finally {
    process.kill(pid, 'SIGTERM');
    await eventually(() => !existsSync(pidfile), 10_000, 'exit');
  }
  // A pidfile that cannot be written: exit 1, one line.
  const badPid = await lsyncd(['--pidfile', join(work, 'no/such/dir/x.pid'), `${src}/`, url('bg2/')]);
  assert.is(badPid.status, 1, badPid.stderr);
  assert.match(badPid.stderr, /^lsyncd: cannot write pidfile .*no such file or directory \(ENOENT\)\n/);
  // An unreachable target: the detached start fails with rsync's code and the reason.
  const refused = await lsyncd([`${src}/`, `rsync://127.0.0.1:${daemon.port}/nosuch/`]);
  assert.is(refused.status, 5, refused.stderr);
  assert.match(refused.stderr, /Unknown module 'nosuch'/);
});

for (const detached of [false, true]) {
  test(`a --logfile that cannot be opened (${detached ? 'detached' : '--nodaemon'}): one line, exit 1, no stack`, async () => {
    const src = join(work, `badlog-${detached}`);
    await makeTree(src);
    const r = await lsyncd([...(detached ? [] : ['--nodaemon']), '--logfile', join(work, 'no/such/dir/x.log'), `${src}/`, url('badlog/')]);
    assert.is(r.status, 1, r.stderr);
    assert.match(r.stderr, /^lsyncd: cannot open --logfile .*x\.log: no such file or directory \(ENOENT\)\n/);
    assert.is(r.stderr.trim().split('\n').filter((l) => !l.startsWith('lsyncd error:')).length, 1, r.stderr);
  });
}

test('detached without --logfile: lines go to syslog (ident, facility and pid as lsyncd 2 logs them)', async () => {
  const src = join(work, 'sys');
  await makeTree(src);
  const pidfile = join(work, 'sys.pid');
  const received = join(work, 'syslog.out');
  const receiverPid = join(work, 'syslog-receiver.pid');
  // A private /dev in a mount namespace of its own, with a syslog socket that writes what it
  // receives to a file: the host's /dev/log (if any) is never touched.
  const receiver = "import socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.bind('/dev/log')\nwhile True: print(s.recv(65536).decode('utf8', 'replace'), flush=True)";
  const script = [
    'set -e',
    'mount -t tmpfs tmpfs /dev',
    'mknod -m 666 /dev/null c 1 3; mknod -m 666 /dev/urandom c 1 9; mknod -m 666 /dev/random c 1 8',
    `python3 -u -c "$RECEIVER" > '${received}' 2>&1 < /dev/null & echo $! > '${receiverPid}'`,
    'while [ ! -S /dev/log ]; do sleep 0.05; done',
    `exec '${process.execPath}' '${CLI}' "$@"`,
  ].join('\n');
  const r = await run('unshare', ['-m', 'sh', '-c', script, 'sh', '--pidfile', pidfile, '--log-ident', 'lsyncd-test', '--log-facility', 'local3', `${src}/`, url('sys/')], { RECEIVER: receiver });
  assert.is(r.status, 0, r.stderr);
  const pid = Number((await readFile(pidfile, 'utf8')).trim());
  try {
    await eventually(async () => /startup sync done/.test(await readFile(received, 'utf8').catch(() => '')), 15_000, 'the startup sync logged');
    const lines = (await readFile(received, 'utf8')).split('\n').filter(Boolean);
    // <priority> = local3 (19) * 8 + info (6); ident[pid]: as openlog(LOG_PID) writes them.
    assert.ok(lines.some((l) => l.startsWith('<158>') && l.includes(`lsyncd-test[${pid}]: watching ${src}`)), lines.join('\n'));
  } finally {
    process.kill(pid, 'SIGTERM');
    await eventually(() => !existsSync(pidfile), 10_000, 'exit');
    process.kill(Number((await readFile(receiverPid, 'utf8')).trim()), 'SIGTERM');
  }
  // A facility syslog does not have: one line, exit 1.
  const bad = await lsyncd(['--nodaemon', '--syslog', '--log-facility', 'nosuch', `${src}/`, url('sys/')]);
  assert.is(bad.status, 1, bad.stderr);
  assert.match(bad.stderr, /^lsyncd: --log-facility nosuch: not a syslog facility/);
});

test('%userwww: every HOME/USER/www goes to TARGET/USER/, users appearing later are picked up', async () => {
  const home = join(work, 'home');
  await mkdir(join(home, 'alice/www'), { recursive: true });
  await writeFile(join(home, 'alice/www/index.html'), '<p>alice</p>\n');
  await mkdir(join(home, 'nowww'), { recursive: true });
  const run = startCli(['--nodaemon', '--home', home, '%userwww', url('users/')]);
  try {
    await eventually(() => mirrored(join(home, 'alice/www'), 'users/alice'), 15_000, 'alice');
    await mkdir(join(home, 'bob/www/sub'), { recursive: true });
    await writeFile(join(home, 'bob/www/sub/page.html'), '<p>bob</p>\n');
    await eventually(() => mirrored(join(home, 'bob/www'), 'users/bob'), 15_000, 'bob, added while running');
    assert.not.ok(existsSync(join(daemon.modulePath('push'), 'users/nowww')));
  } finally {
    run.child.kill('SIGTERM');
    await exited(run.child);
  }
});

test.run();
