// Conformance: our module listing is byte-for-byte what the rsync binary prints, against a real
// daemon, at protocols 29, 30, 31 and 32; address forms; --no-motd; a replayed 3.5.0 daemon.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:net';
import { startDaemon, findRsync, rsyncVersion, type TestDaemon } from './helpers/daemon.js';
import { lsyncd, run } from './helpers/cli.js';
import { loadCapture, recordedStdout } from './helpers/capture.js';

let daemon: TestDaemon;

test.before(async () => {
  findRsync();
  daemon = await startDaemon({
    extraModules: [
      { name: 'a-much-longer-module-name', comment: 'longer than 15 columns' },
      { name: 'hidden', comment: 'not listed', settings: { list: false } },
      { name: 'nocomment' },
    ],
  });
});
test.after(async () => daemon?.stop());

for (const protocol of [29, 30, 31, 32]) {
  test(`listing at protocol ${protocol} equals rsync's, byte for byte`, async () => {
    const url = `rsync://127.0.0.1:${daemon.port}/`;
    const ours = await lsyncd(['--protocol', String(protocol), url]);
    // An rsync older than 3.4 speaks at most 31 and refuses --protocol=32; its default is then the reference.
    const theirs = await run('rsync', protocol <= rsyncVersion().protocol ? [`--protocol=${protocol}`, url] : [url]);
    assert.is(theirs.status, 0, theirs.stderr);
    assert.is(ours.status, 0, ours.stderr);
    assert.is(ours.stdout.toString('latin1'), theirs.stdout.toString('latin1'));
    assert.ok(ours.stdout.includes('push           \twritable module\n'));
    assert.not.ok(ours.stdout.includes('hidden'));
  });
}

test('default protocol, HOST:: with --port, user@ forms: all the same listing', async () => {
  const reference = await run('rsync', [`rsync://127.0.0.1:${daemon.port}/`]);
  for (const args of [
    [`rsync://127.0.0.1:${daemon.port}/`],
    [`rsync://127.0.0.1:${daemon.port}`],
    ['--port', String(daemon.port), '127.0.0.1::'],
    ['--port', String(daemon.port), 'alice@127.0.0.1::'],
    [`rsync://alice@127.0.0.1:${daemon.port}/`],
  ]) {
    const ours = await lsyncd(args);
    assert.is(ours.status, 0, `${args.join(' ')}: ${ours.stderr}`);
    assert.is(ours.stdout.toString('latin1'), reference.stdout.toString('latin1'), args.join(' '));
  }
});

test('--no-motd keeps the module lines and drops the MOTD', async () => {
  const ours = await lsyncd(['--no-motd', `rsync://127.0.0.1:${daemon.port}/`]);
  assert.is(ours.status, 0);
  const text = ours.stdout.toString();
  assert.not.ok(text.includes('Welcome'));
  assert.ok(text.startsWith('push           \twritable module\n'), text);
});

test('a daemon without a MOTD lists the same as rsync', async () => {
  const bare = await startDaemon({ motd: [] });
  try {
    const url = `rsync://127.0.0.1:${bare.port}/`;
    const ours = await lsyncd([url]);
    const theirs = await run('rsync', [url]);
    assert.is(ours.stdout.toString(), theirs.stdout.toString());
    const noMotd = await lsyncd(['--no-motd', url]);
    assert.is(noMotd.stdout.toString(), theirs.stdout.toString());
  } finally {
    await bare.stop();
  }
});

/** Plays a captured daemon side to whoever connects. */
function replayServer(bytes: Buffer): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer((socket) => {
      socket.on('error', () => {});
      socket.end(bytes);
    });
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : 0 });
    });
  });
}

test('a replayed rsync 3.5.0 daemon (capture "list"): output equals what rsync 3.5.0 printed', async () => {
  const cap = loadCapture('list');
  const { server, port } = await replayServer(cap.s2c);
  try {
    const ours = await lsyncd([`rsync://127.0.0.1:${port}/`]);
    assert.is(ours.status, 0, ours.stderr);
    assert.is(ours.stdout.toString(), recordedStdout(cap));
  } finally {
    server.close();
  }
});

test.run();
