// `lsyncd serve` against hostile clients (issue 10, "Safety"): scripted clients over raw TCP that
// speak the real protocol (our own client pieces build the bytes) and lie at one point — garbage,
// endless lines, silence, hundreds of wrong passwords, too many connections, `..` and absolute
// names, a symlink then a file through it, huge counts, a disconnect mid-file — while a real rsync
// keeps listing the modules and nothing is written outside the module.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lstat, mkdir, readdir, rm, writeFile, chmod } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { authResponse, chooseAuthDigest, exchangeGreetings, formatGreeting, requestModule, type DaemonHello } from '../protocol/daemon.js';
import { DEFAULT_TRANSFER, sendArgs, serverArgs, type TransferOptions } from '../protocol/args.js';
import { startPull, startTransfer } from '../protocol/session.js';
import { type FileEntry } from '../protocol/flist.js';
import { sendFileList } from '../protocol/flist-packed-send.js';
import { flistOptionsFor } from '../protocol/flist-recv.js';
import { digestLength } from '../protocol/checksum.js';
import { MSG_ERROR } from '../protocol/mplex.js';
import { ITEM_TRANSFER } from '../protocol/constants.js';
import { readFinalGoodbye, sendFiles, type SenderSource } from '../protocol/sender.js';
import { DaemonRefusalError } from '../protocol/errors.js';
import type { SetupResult } from '../protocol/compat.js';
import { connectDaemon, type DaemonSocket } from '../src/transfer/socket.js';
import { sessionChecksummer } from '../src/transfer/send-list.js';
import { run } from './helpers/cli.js';
import { startOurDaemon, type OurDaemon } from './helpers/serve.js';
import { startDaemonWithConfig, type ConfiguredDaemon } from './helpers/daemon.js';

const PASSWORD = 'hostile-test-secret';

const ROOT = process.getuid?.() === 0;

const CONFIG = (dir: string) => `
reverse lookup = no
${ROOT ? 'uid = root\ngid = root' : ''}
use chroot = no
munge symlinks = no
lock file = ${dir}/rsyncd.lock
[push]
\tpath = ${dir}/push
\tcomment = writable
\tread only = no
[src]
\tpath = ${dir}/src
\tcomment = pull source
[secure]
\tpath = ${dir}/secure
\tread only = no
\tauth users = alice
\tsecrets file = ${dir}/secrets
[limited]
\tpath = ${dir}/limited
\tread only = no
\tmax connections = 2
[timed]
\tpath = ${dir}/push
\tread only = no
\ttimeout = 1
`;

let ours: OurDaemon;
/** A second daemon of ours whose text phase is bounded at 1 s (the silence test). */
let quick: OurDaemon;
let theirs: ConfiguredDaemon;

async function prepare(dir: string): Promise<void> {
  for (const m of ['push', 'src', 'secure', 'limited']) await mkdir(join(dir, m));
  await writeFile(join(dir, 'secrets'), `alice:${PASSWORD}\n`);
  await chmod(join(dir, 'secrets'), 0o600);
  await writeFile(join(dir, 'src', 'file.bin'), randomBytes(64 * 1024));
}

test.before(async () => {
  ours = await startOurDaemon(CONFIG);
  quick = await startOurDaemon(CONFIG, { handshakeSeconds: 1 });
  theirs = await startDaemonWithConfig(CONFIG);
  for (const d of [ours.dir, quick.dir, theirs.dir]) await prepare(d);
});

test.after(async () => {
  await ours?.stop();
  await quick?.stop();
  await theirs?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The control client: the real rsync lists our daemon's modules, whatever else is going on. */
async function controlListing(d: { port: number } = ours): Promise<void> {
  const r = await run('rsync', [`rsync://127.0.0.1:${d.port}/`], {}, 20_000);
  assert.is(r.status, 0, `control listing failed: ${r.stderr}`);
  assert.match(r.stdout.toString(), /^push\s+writable$/m);
}

/** Everything the daemon sends until it closes (or `ms` pass: then `closed` is false). */
function readUntilClosed(socket: Socket, ms = 10_000): Promise<{ text: string; closed: boolean; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const done = (closed: boolean) => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed, ms: Date.now() - started });
    };
    const timer = setTimeout(() => done(false), ms);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => done(true));
  });
}

function rawConnect(d: { port: number }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: d.port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Write `total` bytes of `fill` (no newline) in 1 MB pieces until done or the daemon hangs up. */
async function flood(socket: Socket, total: number, fill = 0x41): Promise<number> {
  const piece = Buffer.alloc(1 << 20, fill);
  let sent = 0;
  while (sent < total && !socket.destroyed && socket.writable) {
    const ok = socket.write(piece);
    sent += piece.length;
    if (!ok) {
      await new Promise<void>((r) => {
        socket.once('drain', r);
        socket.once('close', r);
      });
    }
  }
  return sent;
}

interface Session {
  io: DaemonSocket;
  reader: ByteReader;
  writer: ByteWriter;
  hello: DaemonHello;
}

async function dial(d: { port: number }): Promise<Session> {
  const io = await connectDaemon({ host: '127.0.0.1', port: d.port, timeout: 20 });
  const reader = new ByteReader(io);
  const writer = new ByteWriter(io);
  const hello = await exchangeGreetings(reader, writer);
  return { io, reader, writer, hello };
}

/** A session with `module` open (`@RSYNCD: OK` read): the daemon now waits for the arguments. */
async function openModule(d: { port: number }, module: string): Promise<Session> {
  const s = await dial(d);
  const outcome = await requestModule(s.reader, s.writer, s.hello, { module });
  assert.is(outcome, 'ok');
  return s;
}

const MB = 1 << 20;
function rss(): number {
  return process.memoryUsage().rss;
}

// ---------------------------------------------------------------------------------------------
// 1. Garbage, endless lines, silence.

test('garbage instead of a greeting: the same refusal as rsyncd, the connection closed', async () => {
  const replies: string[] = [];
  for (const d of [ours, theirs]) {
    const s = await rawConnect(d);
    const reply = readUntilClosed(s);
    s.write('GET / HTTP/1.1\r\nHost: example\r\n\r\n');
    const r = await reply;
    assert.ok(r.closed, 'the daemon closes the connection');
    replies.push(r.text.split('\n').slice(1).join('\n'));
  }
  assert.is(replies[0], replies[1], 'what follows the greeting is what rsyncd says');
  assert.match(replies[0]!, /@ERROR: protocol startup error/);
  await controlListing();
});

test('binary garbage (NUL bytes, no newline): closed, the daemon keeps serving', async () => {
  const s = await rawConnect(ours);
  const reply = readUntilClosed(s);
  s.write(randomBytes(64 * 1024));
  const listing = controlListing();
  const r = await reply;
  assert.ok(r.closed);
  await listing;
});

test('an endless greeting line (megabytes, no newline) is cut off early; memory stays put', async () => {
  const before = rss();
  const s = await rawConnect(ours);
  const reply = readUntilClosed(s);
  const listing = controlListing();
  const sent = await flood(s, 64 * MB);
  const r = await reply;
  assert.ok(r.closed, 'closed');
  assert.ok(sent < 64 * MB, `the daemon hung up before taking 64 MB (${sent} bytes written)`);
  assert.ok(rss() - before < 48 * MB, `rss grew by ${((rss() - before) / MB).toFixed(1)} MB`);
  await listing;
});

test('an endless module line is cut off early', async () => {
  const s = await rawConnect(ours);
  const reply = readUntilClosed(s);
  s.write(`${formatGreeting(32)}\n`);
  const listing = controlListing();
  const sent = await flood(s, 64 * MB, 0x6d);
  const r = await reply;
  assert.ok(r.closed);
  assert.ok(sent < 64 * MB, `${sent} bytes written`);
  await listing;
});

test('silence after connecting: dropped at the handshake bound', async () => {
  const s = await rawConnect(quick);
  const r = await readUntilClosed(s, 8000);
  assert.ok(r.closed, 'a silent client is dropped');
  assert.match(r.text, /^@RSYNCD: 32\.0/);
  assert.ok(r.ms < 5000, `dropped after ${r.ms} ms (bound 1 s)`);
  await controlListing(quick);
});

test('silence after @RSYNCD: OK (no argument list): dropped at the handshake bound', async () => {
  const s = await openModule(quick, 'push');
  const started = Date.now();
  const got = await s.reader.readByte().then(
    () => 'data',
    (e: Error) => e.constructor.name,
  );
  assert.is.not(got, 'data');
  assert.ok(Date.now() - started < 5000, `dropped after ${Date.now() - started} ms`);
  s.io.destroy();
});

test('silence in the middle of a push (no file list): dropped at the module timeout', async () => {
  const s = await openModule(ours, 'timed');
  const started = Date.now();
  const ended = await startTransfer(s.reader, s.writer, serverArgs({ ...DEFAULT_TRANSFER, delete: false }, s.hello.protocol, 'timed/'))
    .then(async () => {
      for (;;) await s.reader.readByte();
    })
    .catch((e: Error) => e);
  s.io.destroy();
  assert.ok(ended instanceof Error);
  assert.ok(Date.now() - started < 6000, `dropped after ${Date.now() - started} ms (timeout 1 s)`);
  await controlListing();
});

// ---------------------------------------------------------------------------------------------
// 2. Hundreds of wrong passwords.

test('300 wrong passwords in a row: each refused, no password or response in the log', async () => {
  const responses: string[] = [];
  const passwords: string[] = [];
  const listing = controlListing();
  for (let i = 0; i < 300; i++) {
    const s = await dial(ours);
    s.writer.writeLine('secure');
    await s.writer.flush();
    const challengeLine = (await s.reader.readLine())!.toString('latin1');
    assert.match(challengeLine, /^@RSYNCD: AUTHREQD /);
    const challenge = challengeLine.slice('@RSYNCD: AUTHREQD '.length);
    const password = `wrong-${i}-${randomBytes(6).toString('hex')}`;
    const digest = chooseAuthDigest(s.hello.protocol, s.hello.greeting.digests, s.hello.sentDigestList);
    const response = await authResponse(digest, Buffer.from(password), challenge);
    passwords.push(password);
    responses.push(response);
    s.writer.writeLine(`alice ${response}`);
    await s.writer.flush();
    const reply = (await s.reader.readLine())!.toString('latin1');
    assert.is(reply, '@ERROR: auth failed on module secure');
    s.io.destroy();
  }
  await listing;
  // The right password still gets in: no lock-out, nothing broken.
  const s = await dial(ours);
  assert.is(await requestModule(s.reader, s.writer, s.hello, { module: 'secure', user: 'alice', password: async () => Buffer.from(PASSWORD) }), 'ok');
  s.io.destroy();
  const log = await ours.log();
  assert.match(log, /auth failed on module secure/);
  for (const secret of [PASSWORD, ...passwords, ...responses]) assert.not.ok(log.includes(secret), `the log shows ${secret}`);
});

// ---------------------------------------------------------------------------------------------
// 3. max connections.

test('max connections = 2: the third is refused as rsyncd refuses it; after two close, a new one gets in', async () => {
  for (const d of [ours, theirs]) {
    // A connection to a module without a limit takes no slot (rsync claims one only with a limit).
    const other = await openModule(d, 'push');
    const a = await openModule(d, 'limited');
    const b = await openModule(d, 'limited');
    const listing = controlListing(d);
    const c = await dial(d);
    let refusal = '';
    await requestModule(c.reader, c.writer, c.hello, { module: 'limited' }).catch((e: unknown) => {
      assert.instance(e, DaemonRefusalError);
      refusal = (e as Error).message;
    });
    assert.is(refusal, '@ERROR: max connections (2) reached -- try again later', `daemon on ${d.port}`);
    c.io.destroy();
    await listing;
    a.io.destroy();
    b.io.destroy();
    let admitted = false;
    for (let i = 0; i < 50 && !admitted; i++) {
      await sleep(100);
      const n = await dial(d);
      admitted = await requestModule(n.reader, n.writer, n.hello, { module: 'limited' }).then(
        () => true,
        () => false,
      );
      n.io.destroy();
    }
    assert.ok(admitted, 'a new client gets in once the first two are gone');
    other.io.destroy();
  }
});

// ---------------------------------------------------------------------------------------------
// 4. Names outside the module.

const PUSH: TransferOptions = { ...DEFAULT_TRANSFER, recursive: true, links: true, perms: true, times: true, delete: false };
const T = 1_700_000_000;

function dirEntry(name: string): FileEntry {
  return { name: Buffer.from(name), mode: 0o040755, size: 4096, mtime: T, uid: 0, gid: 0 };
}
function fileEntry(name: string, size: number): FileEntry {
  return { name: Buffer.from(name), mode: 0o100644, size, mtime: T, uid: 0, gid: 0 };
}

/** Our encoder's bytes for `entries`, then `lie` applied to them (the one point a test lies). */
function fileListBytes(entries: FileEntry[], negotiated: Omit<SetupResult, 'seed'>, protocol: number, lie: (bytes: Buffer) => Buffer): Buffer {
  const chunks: Buffer[] = [];
  const capture = new ByteWriter({ write: async (b) => void chunks.push(Buffer.from(b)) });
  capture.protocol = protocol;
  sendFileList(capture, entries, {
    ...flistOptionsFor(PUSH),
    protocol,
    compatFlags: negotiated.compatFlags,
    checksumLength: digestLength(negotiated.checksum),
  });
  void capture.flush();
  return lie(Buffer.concat(chunks));
}

/** Replace a placeholder name's bytes in an encoded list by the hostile name (same length). */
function swapName(placeholder: string, hostile: string): (bytes: Buffer) => Buffer {
  assert.is(placeholder.length, hostile.length);
  return (bytes) => {
    const at = bytes.indexOf(placeholder);
    assert.ok(at >= 0, 'placeholder in the encoded list');
    const out = Buffer.from(bytes);
    out.write(hostile, at, 'latin1');
    return out;
  };
}

/** A push into `module/` whose file list is `bytes`; what the daemon says before it hangs up. */
async function pushList(d: { port: number }, module: string, list: (n: Omit<SetupResult, 'seed'>, protocol: number) => Buffer): Promise<{ errors: string; closed: boolean }> {
  const s = await openModule(d, module);
  const errors: string[] = [];
  const onMessage = (code: number, payload: Uint8Array) => {
    if (code === MSG_ERROR) errors.push(Buffer.from(payload).toString('utf8'));
  };
  let closed = false;
  try {
    await startTransfer(s.reader, s.writer, serverArgs(PUSH, s.hello.protocol, `${module}/`), {
      onMessage,
      sendEarly: async (negotiated) => {
        s.writer.writeBuf(list(negotiated, s.hello.protocol));
        await s.writer.flush();
      },
    });
    // The daemon answers with requests (a good list) or its error and a hangup (a bad one).
    for (let i = 0; i < 1 << 20; i++) await s.reader.readByte();
  } catch {
    closed = true;
  } finally {
    s.io.destroy();
  }
  return { errors: errors.join(''), closed };
}

async function outsideUntouched(d: OurDaemon, planted: string[]): Promise<void> {
  const known = new Set(['limited', 'lsyncd-serve.log', 'push', 'rsyncd.conf', 'rsyncd.lock', 'secrets', 'secure', 'src']);
  for (const e of await readdir(d.dir)) assert.ok(known.has(e), `${e} appeared beside the modules`);
  for (const p of planted) assert.not.ok(existsSync(p), `${p} was written`);
}

for (const [hostile, placeholder] of [
  ['../escape', 'QQQescape'],
  ['/abs-hostile', 'Qabs-hostile'],
  ['a/../../x-hostile', 'a/QQ/QQ/x-hostile'],
] as const) {
  test(`a pushed file list naming ${JSON.stringify(hostile)} is refused; nothing lands outside the module`, async () => {
    const listing = controlListing();
    const r = await pushList(ours, 'push', (n, protocol) =>
      fileListBytes([dirEntry('.'), fileEntry(placeholder, 0)], n, protocol, swapName(placeholder, hostile)),
    );
    assert.ok(r.closed, 'the connection is closed');
    // rsyncd's words and exit code for the same bytes (its closing line names its own source file).
    const t = await pushList(theirs, 'push', (n, protocol) =>
      fileListBytes([dirEntry('.'), fileEntry(placeholder, 0)], n, protocol, swapName(placeholder, hostile)),
    );
    const firstLine = (text: string) => text.split('\n')[0];
    const code = (text: string) => /\(code (\d+)\)/.exec(text)?.[1];
    assert.is(firstLine(r.errors), firstLine(t.errors), `ours: ${JSON.stringify(r.errors)}\nrsyncd: ${JSON.stringify(t.errors)}`);
    assert.is(code(r.errors), code(t.errors));
    await listing;
    await outsideUntouched(ours, [join(ours.dir, 'escape'), '/abs-hostile', join(ours.dir, 'x-hostile'), join(dirname(ours.dir), 'escape'), join(dirname(ours.dir), 'x-hostile')]);
    assert.equal(await readdir(join(ours.dir, 'push')), []);
  });
}

/** File contents for scripted pushes: `size` bytes, optionally a hook after each MB. */
function patternSource(onChunk?: (sent: number) => void): SenderSource {
  return {
    async open(entry) {
      return (async function* () {
        let sent = 0;
        while (sent < entry.size) {
          const n = Math.min(MB, entry.size - sent);
          yield Buffer.alloc(n, 0x5a);
          sent += n;
          onChunk?.(sent);
        }
      })();
    },
  };
}

/** A push of `entries` (already in rsync's order) with their data; what came of it. */
async function pushEntries(d: { port: number }, entries: FileEntry[], source: SenderSource): Promise<{ errors: string; outcome: string }> {
  const s = await openModule(d, 'push');
  const errors: string[] = [];
  let outcome = 'done';
  try {
    const start = await startTransfer(s.reader, s.writer, serverArgs(PUSH, s.hello.protocol, 'push/'), {
      onMessage: (code, payload) => {
        if (code === MSG_ERROR) errors.push(Buffer.from(payload).toString());
      },
      sendEarly: async (n) => {
        sendFileList(s.writer, entries, { ...flistOptionsFor(PUSH), protocol: s.hello.protocol, compatFlags: n.compatFlags, checksumLength: digestLength(n.checksum) });
        await s.writer.flush();
      },
    });
    const checksummer = await sessionChecksummer(s.hello.protocol, start.setup);
    const sent = await sendFiles(s.reader, s.writer, entries, checksummer, source);
    await readFinalGoodbye(s.reader, s.writer, sent.stats);
  } catch (e) {
    outcome = (e as Error).message;
  } finally {
    s.io.destroy();
  }
  return { errors: errors.join(''), outcome };
}

test('a symlink to /tmp then a file through it: nothing written through the link, as with rsyncd', async () => {
  const planted = `lsyncd-hostile-${process.pid}-${Date.now()}`;
  const entries = [dirEntry('.'), { name: Buffer.from('link'), mode: 0o120777, size: 4, mtime: T, uid: 0, gid: 0, symlink: Buffer.from('/tmp') }, fileEntry(`link/${planted}`, 1000)];
  const listing = controlListing();
  const o = await pushEntries(ours, entries, patternSource());
  await listing;
  const t = await pushEntries(theirs, entries, patternSource());
  // rsyncd refuses the file for its parent not being a directory in the list; we refuse to write
  // through the symlink. Both tell the client and end with code 2.
  assert.match(t.errors, /ABORTING due to invalid path from sender/);
  assert.match(o.errors, /symlink/, `the client is told why: ${JSON.stringify(o)}`);
  const code = (text: string) => /\(code (\d+)\)/.exec(text)?.[1];
  assert.is(code(o.errors), code(t.errors));
  assert.not.ok(existsSync(join('/tmp', planted)), `/tmp/${planted} was written through the symlink`);
  assert.not.ok(existsSync(join(tmpdir(), planted)));
  // The link itself may be stored (as a symlink); no directory was made in its place to hold the file.
  const st = await lstat(join(ours.dir, 'push', 'link')).catch(() => null);
  if (st) assert.ok(st.isSymbolicLink(), 'push/link is a symlink');
  await rm(join(ours.dir, 'push', 'link'), { force: true });
});

// ---------------------------------------------------------------------------------------------
// 5. Huge counts.

test('a file-list entry with an enormous name length: refused before any allocation', async () => {
  const before = rss();
  const long = 'L'.repeat(300); // long enough for XMIT_LONG_NAME: the length travels as a varint
  const r = await pushList(ours, 'push', (n, protocol) =>
    fileListBytes([dirEntry('.'), fileEntry(long, 0)], n, protocol, (bytes) => {
      const at = bytes.indexOf(long);
      // The 300 was written as a 2-byte varint just before the name: claim 2^31-1 bytes instead.
      const huge = Buffer.from([0xf0, 0xff, 0xff, 0xff, 0x7f]);
      return Buffer.concat([bytes.subarray(0, at - 2), huge, Buffer.alloc(64, 0x4c)]);
    }),
  );
  assert.ok(r.closed);
  assert.match(r.errors, /limit|unsafe|length/i, JSON.stringify(r.errors));
  assert.ok(rss() - before < 48 * MB, `rss grew by ${((rss() - before) / MB).toFixed(1)} MB`);
  await controlListing();
});

test('a pull whose sum head announces 2^31-1 blocks: refused, memory sane', async () => {
  const before = rss();
  const s = await openModule(ours, 'src');
  const pull: TransferOptions = { ...DEFAULT_TRANSFER, recursive: true, delete: false };
  const errors: string[] = [];
  const start = await startPull(s.reader, s.writer, serverArgs(pull, s.hello.protocol, 'src/', true), {
    flist: flistOptionsFor(pull),
    onMessage: (code, payload) => {
      if (code === MSG_ERROR) errors.push(Buffer.from(payload).toString());
    },
  });
  const ndx = start.flist.files.findIndex((f) => f.name.toString() === 'file.bin');
  assert.ok(ndx >= 0);
  s.writer.writeNdx(ndx);
  s.writer.writeShort(ITEM_TRANSFER);
  s.writer.writeInt(0x7fffffff); // count
  s.writer.writeInt(700); // blength
  s.writer.writeInt(16); // s2length
  s.writer.writeInt(0); // remainder
  await s.writer.flush();
  const listing = controlListing();
  const ended = await (async () => {
    try {
      for (;;) await s.reader.readByte();
    } catch (e) {
      return e as Error;
    }
  })();
  s.io.destroy();
  assert.ok(ended, 'the daemon ends the session');
  assert.match(errors.join(''), /checksum count/, `the client is told: ${JSON.stringify(errors)}`);
  assert.ok(rss() - before < 48 * MB, `rss grew by ${((rss() - before) / MB).toFixed(1)} MB`);
  await listing;
});

test('an argument list of 100 000 arguments: refused, the connection closed', async () => {
  const s = await openModule(ours, 'push');
  const listing = controlListing();
  const args = Array.from({ length: 100_000 }, (_, i) => `--arg${i}`);
  const sending = sendArgs(s.writer, ['--server', ...args, '.', 'push/']).catch(() => {});
  const ended = await s.reader.readByte().then(
    () => null,
    (e: Error) => e,
  );
  await sending;
  s.io.destroy();
  assert.ok(ended, 'closed');
  await listing;
  assert.match(await ours.log(), /too many daemon arguments/);
});

test('one argument of 100 MB: refused at its bound, memory sane', async () => {
  const before = rss();
  const s = await rawConnect(ours);
  const reply = readUntilClosed(s, 20_000);
  s.write(`${formatGreeting(32)}\npush\n`);
  await sleep(200);
  const listing = controlListing();
  const sent = await flood(s, 100 * MB, 0x61);
  const r = await reply;
  assert.ok(r.closed);
  assert.match(r.text, /@RSYNCD: OK/);
  assert.ok(sent < 100 * MB, `${sent} bytes written before the hangup`);
  assert.ok(rss() - before < 48 * MB, `rss grew by ${((rss() - before) / MB).toFixed(1)} MB`);
  await listing;
  assert.match(await ours.log(), /argument from the client is longer than/);
});

// ---------------------------------------------------------------------------------------------
// 6. A disconnect mid-file.

test('a client that disconnects mid-file leaves no temp file in the module', async () => {
  const s = await openModule(ours, 'push');
  const entries = [dirEntry('.'), fileEntry('big.bin', 64 * MB)];
  const listing = controlListing();
  let cut = false;
  let sawTemp = false;
  try {
    const start = await startTransfer(s.reader, s.writer, serverArgs(PUSH, s.hello.protocol, 'push/'), {
      sendEarly: async (n) => {
        sendFileList(s.writer, entries, { ...flistOptionsFor(PUSH), protocol: s.hello.protocol, compatFlags: n.compatFlags, checksumLength: digestLength(n.checksum) });
        await s.writer.flush();
      },
    });
    const checksummer = await sessionChecksummer(s.hello.protocol, start.setup);
    await sendFiles(
      s.reader,
      s.writer,
      entries,
      checksummer,
      patternSource((sent) => {
        // Cut once the daemon's temp file is there (so its cleanup is what the test sees).
        if (cut || sent < 4 * MB) return;
        if (!readdirSync(join(ours.dir, 'push')).some((n) => n.startsWith('.big.bin.')) && sent < 60 * MB) return;
        sawTemp = sent < 60 * MB;
        cut = true;
        s.io.destroy();
      }),
    );
  } catch (e) {
    if (!cut) throw e;
  }
  assert.ok(cut, 'the data phase was reached and cut');
  assert.ok(sawTemp, 'the daemon had its temp file when the client vanished');
  await listing;
  let left: string[] = [];
  for (let i = 0; i < 50; i++) {
    left = await readdir(join(ours.dir, 'push'));
    if (!left.some((n) => n.startsWith('.big.bin.'))) break;
    await sleep(100);
  }
  assert.equal(left.filter((n) => n.startsWith('.big.bin.')), [], 'no temp file left behind');
  assert.not.ok(left.includes('big.bin'), 'no partial file under the real name');
});

test('an endless file list: the connection ends at its memory cap (exit 22), memory sane, others served', async () => {
  // The daemon's cap as rsync takes it from its environment (RSYNC_MAX_ALLOC), read when a session starts.
  const saved = process.env.RSYNC_MAX_ALLOC;
  process.env.RSYNC_MAX_ALLOC = '4M';
  try {
    const before = rss();
    const listing = controlListing();
    const names = Array.from({ length: 60_000 }, (_, i) => fileEntry(`d/${'n'.repeat(80)}-${i}`, 0));
    const r = await pushList(ours, 'push', (n, protocol) => fileListBytes([dirEntry('.'), dirEntry('d'), ...names], n, protocol, (b) => b));
    assert.ok(r.closed, 'the connection is closed');
    assert.match(r.errors, /file list passed this connection's memory cap \(--max-alloc=4194304 bytes\)/, JSON.stringify(r.errors));
    assert.match(r.errors, /\(code 22\)/);
    assert.ok(rss() - before < 64 * MB, `rss grew by ${((rss() - before) / MB).toFixed(1)} MB`);
    await listing;
    assert.equal(await readdir(join(ours.dir, 'push')), [], 'nothing written');
  } finally {
    if (saved === undefined) delete process.env.RSYNC_MAX_ALLOC;
    else process.env.RSYNC_MAX_ALLOC = saved;
  }
});

test("a client's --max-alloc lowers its own connection's cap: the stock client is told, exit 22", async () => {
  const src = join(ours.dir, 'many');
  await mkdir(join(src, 'd'), { recursive: true });
  // 12,000 entries: more than 1 MiB of the packed list's charge (about 100 bytes each).
  for (let i = 0; i < 12_000; i++) await writeFile(join(src, 'd', `f${i}`), '');
  try {
    const r = await run('rsync', ['-r', '--max-alloc=1M', `${src}/`, `rsync://127.0.0.1:${ours.port}/push/many/`], {}, 30_000);
    assert.is(r.status, 22, r.stderr.toString());
    assert.match(r.stderr.toString(), /\[receiver\] the file list passed this connection's memory cap \(--max-alloc=1048576 bytes\)/);
    // A client that asks for nothing special is not held to it.
    const ok = await run('rsync', ['-r', `${src}/`, `rsync://127.0.0.1:${ours.port}/push/many/`], {}, 30_000);
    assert.is(ok.status, 0, ok.stderr.toString());
  } finally {
    await rm(src, { recursive: true, force: true });
    await rm(join(ours.dir, 'push', 'many'), { recursive: true, force: true });
  }
});

test('after all of it, the daemon still serves a real push and listing', async () => {
  const work = join(ours.dir, '..', `lsyncd-hostile-src-${process.pid}`);
  await mkdir(work, { recursive: true });
  try {
    await writeFile(join(work, 'ok.txt'), 'fine\n');
    const r = await run('rsync', ['-a', `${work}/`, `rsync://127.0.0.1:${ours.port}/push/after/`]);
    assert.is(r.status, 0, r.stderr);
    assert.ok(existsSync(join(ours.dir, 'push', 'after', 'ok.txt')));
    await controlListing();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test.run();
