// The two places that lean on something Node does not promise: the socket descriptor read from
// a private field (for TCP_QUICKACK), and the addon loader's one-time warning.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, connect, type Socket } from 'node:net';
import { readlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { socketFd } from '../src/transfer/socket.js';
import { quickAck } from '../src/addon.js';

test('socketFd: a connected TCP socket yields its real descriptor (Node still keeps _handle.fd)', async () => {
  const server = createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const socket: Socket = connect(port, '127.0.0.1');
  await new Promise<void>((r, j) => socket.once('connect', r).once('error', j));
  try {
    const fd = socketFd(socket);
    assert.type(fd, 'number', 'Node no longer exposes the socket descriptor as _handle.fd: find its new home');
    assert.match(readlinkSync(`/proc/self/fd/${fd}`), /^socket:\[\d+\]$/);
    assert.is(quickAck(fd!), true, 'TCP_QUICKACK set through the addon');
  } finally {
    socket.destroy();
    await new Promise((r) => server.close(r));
  }
});

test('loadAddon: a quiet probe does not hide the missing-addon warning from a later caller', () => {
  const addon = fileURLToPath(new URL('../src/addon.js', import.meta.url));
  const script = `
    const { loadAddon } = await import(${JSON.stringify(addon)});
    loadAddon('/nonexistent/inotify.node', { quiet: true });
    loadAddon('/nonexistent/inotify.node');
    loadAddon('/nonexistent/inotify.node');`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.is(run.status, 0, run.stderr);
  const err = run.stderr;
  assert.is(err.match(/LSYNCD_NO_ADDON/g)?.length, 1, err);
  assert.match(err, /the inotify addon could not be loaded/);
});

test.run();
