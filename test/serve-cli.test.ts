// `lsyncd serve` as a command: rsync --daemon's options, a start that fails says why and exits
// non-zero (detached or not), a detached daemon answers real rsync clients and stops by its pid
// file's pid, and SIGTERM stops a foreground one with exit 0.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lsyncd, run, CLI } from './helpers/cli.js';
import { freePort } from './helpers/daemon.js';

let work: string;
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'lsyncd-serve-cli-'));
});
test.after(async () => {
  await rm(work, { recursive: true, force: true });
});

test('a config that cannot be read: one line naming it, exit 1, detached or not', async () => {
  for (const detach of [[], ['--no-detach']]) {
    const r = await lsyncd(['serve', ...detach, '--config', join(work, 'missing.conf')]);
    assert.is(r.status, 1, r.stderr.toString());
    assert.match(r.stderr.toString(), /^lsyncd serve: .*missing\.conf/);
    assert.is(r.stderr.toString().trim().split('\n').length, 1, r.stderr.toString());
  }
  await writeFile(join(work, 'bad.conf'), '[m]\npath = /tmp\nthis line has no equals sign\n');
  const bad = await lsyncd(['serve', '--no-detach', '--config', join(work, 'bad.conf')]);
  assert.is(bad.status, 1);
  assert.match(bad.stderr.toString(), /bad\.conf:3/);
});

test('a port in use: the reason on stderr, exit 10, detached or not', async () => {
  const blocker = createServer();
  const port = await freePort();
  await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
  try {
    for (const detach of [[], ['--no-detach']]) {
      const r = await lsyncd(['serve', ...detach, '--address', '127.0.0.1', '--port', String(port), '--module', `m=${work}`]);
      assert.is(r.status, 10, r.stderr.toString());
      assert.match(r.stderr.toString(), new RegExp(`failed to bind to port ${port}.*EADDRINUSE`));
    }
  } finally {
    blocker.close();
  }
});

test('detached: returns once it listens, serves real rsync clients, stops by the pid in its pid file', async () => {
  const port = await freePort();
  const pidFile = join(work, 'serve.pid');
  await writeFile(join(work, 'hello.txt'), 'hello\n');
  const started = await lsyncd(['serve', '--address', '127.0.0.1', '--port', String(port), '--module', `files=${work}`, '--read-only', '--dparam', `pidfile=${pidFile}`]);
  assert.is(started.status, 0, started.stderr.toString());
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  try {
    const listing = await run('rsync', [`rsync://127.0.0.1:${port}/`]);
    assert.is(listing.status, 0, listing.stderr.toString());
    assert.match(listing.stdout.toString(), /^files\s+\t/m);
    const files = await run('rsync', [`rsync://127.0.0.1:${port}/files/hello.txt`]);
    assert.match(files.stdout.toString(), /hello\.txt/);
  } finally {
    process.kill(pid, 'SIGTERM');
  }
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.throws(() => process.kill(pid, 0), 'the daemon stopped on SIGTERM');
});

test('--no-detach: SIGTERM stops it with exit 0', async () => {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--no-detach', '--address', '127.0.0.1', '--port', String(port), '--module', `m=${work}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  const deadline = Date.now() + 10_000;
  while (!/listening on port/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.match(err, /listening on port/);
  child.kill('SIGTERM');
  assert.is(await exited, 0, err);
});

test.run();
