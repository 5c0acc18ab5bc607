// Push under faults: files that vanish or change size mid-transfer (a warning, the rest sent,
// exit 24, nothing deleted because of it), and a lying daemon (a scripted peer that replays a real
// rsync 3.5.0 daemon's setup, then sends hostile requests): typed errors, bounded memory, no hang.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Socket } from 'node:net';
import { mkdtemp, rm, writeFile, readFile, unlink, appendFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { loadCapture } from './helpers/capture.js';
import { push } from '../src/transfer/push.js';
import { DEFAULT_TRANSFER } from '../protocol/args.js';
import { encodeFrameHeader, MSG_DATA } from '../protocol/mplex.js';
import { ProtocolError, TimeoutError, RsyncError } from '../protocol/errors.js';
import { lines, pseudoRandom } from './helpers/fstree.js';

let daemon: TestDaemon;
let work: string;

test.before(async () => {
  daemon = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'lsyncd-faults-'));
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

async function makeSource(name: string): Promise<string> {
  const src = join(work, name);
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'a.txt'), lines(100));
  await writeFile(join(src, 'b.bin'), pseudoRandom(100_000, 5));
  await writeFile(join(src, 'c.txt'), 'third\n');
  return src;
}

test('a file that vanishes mid-push: warning, the others still sent, exit 24, the mirror copy kept', async () => {
  const src = await makeSource('vanish');
  const target = { host: '127.0.0.1', port: daemon.port, module: 'push', path: 'vanish/' };
  const first = await push({ source: `${src}/`, target, transfer: { ...DEFAULT_TRANSFER }, session: {} });
  assert.is(first.exitCode, 0);
  // Change every file, then make one vanish after the file list went out.
  await writeFile(join(src, 'a.txt'), lines(120));
  await writeFile(join(src, 'c.txt'), 'third, changed\n');
  await writeFile(join(src, 'b.bin'), pseudoRandom(100_001, 6));
  const warnings: string[] = [];
  const second = await push({
    source: `${src}/`,
    target,
    transfer: { ...DEFAULT_TRANSFER },
    session: {},
    onError: (t) => warnings.push(t),
    onFileList: () => unlink(join(src, 'b.bin')),
  });
  assert.is(second.exitCode, 24);
  assert.ok(warnings.some((w) => w.includes('file has vanished') && w.includes('b.bin')), warnings.join('|'));
  const mirror = daemon.modulePath('push');
  assert.is(await readFile(join(mirror, 'vanish/a.txt'), 'utf8'), lines(120));
  assert.is(await readFile(join(mirror, 'vanish/c.txt'), 'utf8'), 'third, changed\n');
  // The vanished file's mirror copy is not deleted because of the failure.
  assert.is((await readFile(join(mirror, 'vanish/b.bin'))).length, 100_000);
});

test('a file that grows mid-push: warning and exit 24; the mirror gets what was read', async () => {
  const src = await makeSource('grow');
  const target = { host: '127.0.0.1', port: daemon.port, module: 'push', path: 'grow/' };
  const warnings: string[] = [];
  const r = await push({
    source: `${src}/`,
    target,
    transfer: { ...DEFAULT_TRANSFER },
    session: {},
    onError: (t) => warnings.push(t),
    onFileList: () => appendFile(join(src, 'c.txt'), 'more\n'),
  });
  assert.is(r.exitCode, 24);
  assert.ok(warnings.some((w) => w.includes('changed size') && w.includes('c.txt')), warnings.join('|'));
  assert.is(await readFile(join(daemon.modulePath('push'), 'grow/c.txt'), 'utf8'), 'third\nmore\n');
});

// ---- a lying daemon --------------------------------------------------------------------------

/** The real daemon's bytes of push_initial_noinc up to the start of multiplexing (greeting .. seed). */
const SETUP = loadCapture('push_initial_noinc').s2c.subarray(0, 143);

function frame(payload: Buffer): Buffer {
  return Buffer.concat([encodeFrameHeader(MSG_DATA, payload.length), payload]);
}

function ints(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeInt32LE(v, i * 4));
  return b;
}

/** A daemon that plays the real setup, then `after` (raw bytes), and reads whatever we send. */
async function lyingDaemon(after: Buffer) {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.resume();
    socket.write(Buffer.concat([SETUP, after]));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

async function pushTo(port: number, source: string, extra: { timeout?: number } = {}) {
  return push({
    source: `${source}/`,
    target: { host: '127.0.0.1', port, module: 'push', path: '' },
    transfer: { ...DEFAULT_TRANSFER },
    session: extra.timeout ? { timeout: extra.timeout } : {},
  });
}

async function expectError(promise: Promise<unknown>): Promise<RsyncError> {
  try {
    await promise;
  } catch (e) {
    assert.instance(e, RsyncError, String(e));
    return e as RsyncError;
  }
  throw new Error('expected an error');
}

test('lying daemon: a huge block count is refused before anything is allocated', async () => {
  const src = await makeSource('lie1');
  // ndx 1 (a.txt; first positive ndx: diff 2), iflags ITEM_TRANSFER, sum head count 2^30.
  const fake = await lyingDaemon(frame(Buffer.concat([Buffer.from([0x02, 0x00, 0x80]), ints(2 ** 30, 700, 2, 0)])));
  try {
    const e = await expectError(pushTo(fake.port, src));
    assert.instance(e, ProtocolError);
    assert.match(e.message, 'invalid checksum count');
  } finally {
    fake.close();
  }
});

test('lying daemon: the largest allowed count, then a few sums and silence: memory follows the bytes', async () => {
  const src = await makeSource('lie2');
  const someSums = Buffer.alloc(100 * 20, 0x11);
  const fake = await lyingDaemon(frame(Buffer.concat([Buffer.from([0x02, 0x00, 0x80]), ints(2 ** 24, 700, 16, 0), someSums])));
  try {
    const before = process.memoryUsage().arrayBuffers;
    const e = await expectError(pushTo(fake.port, src, { timeout: 1 }));
    assert.is(e.exitCode, 30);
    const grown = process.memoryUsage().arrayBuffers - before;
    // 2^24 announced sums of 20 bytes would be 320 MiB if allocated up front.
    assert.ok(grown < 32 * 1024 * 1024, `grew by ${grown} bytes`);
  } finally {
    fake.close();
  }
});

test('lying daemon: an index beyond the file list is a protocol error (exit 2)', async () => {
  const src = await makeSource('lie3');
  // ndx 500 via the 2-byte diff form: FE 01 F5 (diff 501 from -1).
  const fake = await lyingDaemon(frame(Buffer.concat([Buffer.from([0xfe, 0x01, 0xf5, 0x00, 0x80])])));
  try {
    const e = await expectError(pushTo(fake.port, src));
    assert.instance(e, ProtocolError);
    assert.is(e.exitCode, 2);
    assert.match(e.message, 'invalid file index 500');
  } finally {
    fake.close();
  }
});

test('lying daemon: a garbled frame header is a stream error (exit 12)', async () => {
  const src = await makeSource('lie4');
  const fake = await lyingDaemon(Buffer.from([0x05, 0x00, 0x00, 0x03, 1, 2, 3, 4, 5]));
  try {
    const e = await expectError(pushTo(fake.port, src));
    assert.instance(e, ProtocolError);
    assert.is(e.exitCode, 12);
  } finally {
    fake.close();
  }
});

test('lying daemon: a stall after setup ends with --timeout (exit 30), not a hang', async () => {
  const src = await makeSource('lie5');
  const fake = await lyingDaemon(Buffer.alloc(0));
  try {
    const started = Date.now();
    const e = await expectError(pushTo(fake.port, src, { timeout: 1 }));
    assert.instance(e, TimeoutError);
    assert.is(e.exitCode, 30);
    assert.ok(Date.now() - started < 5000);
  } finally {
    fake.close();
  }
});

test.run();
