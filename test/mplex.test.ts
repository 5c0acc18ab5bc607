// protocol/mplex.ts (+ daemon.ts, compat.ts on the way in): real daemon byte streams replayed through
// the whole client path; out-of-band messages; MSG_ERROR_EXIT rejecting the pending read;
// hostile frames; the writer's framing; the peer's notices handed to a sink as bytes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { exchangeGreetings, requestModule } from '../protocol/daemon.js';
import { setupProtocol } from '../protocol/compat.js';
import {
  decodeFrameHeader,
  encodeFrameHeader,
  startMultiplexIn,
  startMultiplexOut,
  writeMessage,
  writeMessageInt,
  PeerMessages,
  MSG_DATA,
  MSG_DELETED,
  MSG_ERROR,
  MSG_ERROR_EXIT,
  MSG_ERROR_XFER,
  MSG_INFO,
  MSG_IO_ERROR,
  MSG_IO_TIMEOUT,
  MSG_WARNING,
  MSG_REDO,
  MAX_MESSAGE,
} from '../protocol/mplex.js';
import { ConnectionClosedError, ProtocolError, RemoteError } from '../protocol/errors.js';
import { loadCapture, memorySink, piecesSource } from './helpers/capture.js';
import type { ByteSource } from '../protocol/io.js';

/** Replay a capture's daemon side through greeting, module, setup; return the demultiplexed reader. */
async function replay(name: string, source?: (bytes: Buffer) => ByteSource) {
  const cap = loadCapture(name);
  const reader = new ByteReader(source ? source(cap.s2c) : piecesSource(cap.s2c));
  const sink = memorySink();
  const writer = new ByteWriter(sink);
  const hello = await exchangeGreetings(reader, writer);
  const lines: string[] = [];
  const outcome = await requestModule(reader, writer, hello, { module: 'push', onLine: (l) => lines.push(l.toString()) });
  const setup = await setupProtocol(reader, writer, hello.protocol);
  const messages: Array<[number, Buffer]> = [];
  const demux = startMultiplexIn(reader, (code, payload) => messages.push([code, payload]));
  return { reader, writer, sink, hello, lines, outcome, setup, messages, demux, cap };
}

test('frame header golden bytes', () => {
  assert.is(encodeFrameHeader(MSG_DATA, 3).toString('hex'), '03000007');
  assert.is(encodeFrameHeader(MSG_IO_TIMEOUT, 4).toString('hex'), '04000028');
  assert.is(encodeFrameHeader(MSG_ERROR_EXIT, 0).toString('hex'), '0000005d');
  assert.equal(decodeFrameHeader(Buffer.from('440c0007', 'hex')), { code: MSG_DATA, length: 3140 });
  assert.throws(() => decodeFrameHeader(Buffer.from('00000006', 'hex')), (e: unknown) => e instanceof ProtocolError);
});

test('a real push session: setup, then the generator stream through the demultiplexer', async () => {
  const s = await replay('push_initial_noinc');
  assert.is(s.outcome, 'ok');
  assert.is(s.hello.protocol, 32);
  assert.equal(s.lines, ['Welcome to the capture daemon', 'Second motd line', '']);
  assert.equal(s.setup, { compatFlags: 0x1fe, checksum: 'xxh128', checksumImplied: false, seed: 1796189240, tokens: null }); // no -z: simple tokens
  const r = s.reader;
  const expect = [
    [0, 0x0008, false],
    [1, 0xa000, true],
    [2, 0x6002, false],
    [3, 0x6000, false],
    [4, 0xa000, true],
  ] as const;
  for (const [ndx, iflags, sumHead] of expect) {
    assert.is(await r.readNdx(), ndx);
    assert.is(await r.readShort(), iflags);
    if (sumHead) for (let i = 0; i < 4; i++) assert.is(await r.readInt(), 0);
  }
  for (let i = 0; i < 5; i++) assert.is(await r.readNdx(), -1);
  await r.readNdx().then(() => assert.unreachable(), (e) => assert.instance(e, ConnectionClosedError));
  assert.equal(s.messages, []);
  // What we wrote in reply: our greeting, the module line and our checksum list.
  assert.is(s.sink.bytes().toString('latin1'), '@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\npush\n\x19xxh128 xxh3 xxh64 md5 md4');
});

test('the same stream split at every offset decodes the same', async () => {
  const cap = loadCapture('push_ndx_jump');
  const total = cap.s2c.length;
  for (let cut = 90; cut < total; cut += 1) {
    const s = await replay('push_ndx_jump', (b) => piecesSource(b, [cut, cut + 1, cut + 5]));
    const r = s.reader;
    assert.is(await r.readNdx(), 2);
    assert.is(await r.readShort(), 0x800c);
    assert.equal([await r.readInt(), await r.readInt(), await r.readInt(), await r.readInt()], [1, 700, 2, 9]);
    assert.is((await r.readInt()) >>> 0, 0x0e8c025b);
    assert.is((await r.readBuf(2)).toString('hex'), '370d');
    assert.is(await r.readNdx(), 521);
    assert.is(await r.readShort(), 0x8008);
    assert.equal([await r.readInt(), await r.readInt(), await r.readInt(), await r.readInt()], [1, 700, 2, 9]);
    assert.is((await r.readInt()) >>> 0, 0x0ea40261);
    assert.is((await r.readBuf(2)).toString('hex'), 'fbe7');
    for (let i = 0; i < 5; i++) assert.is(await r.readNdx(), -1, `cut ${cut}`);
  }
});

test('MSG_IO_TIMEOUT goes to the handler, data flows on', async () => {
  const s = await replay('timeout_module');
  assert.is(await s.reader.readByte(), s.cap.s2c[155]); // first data byte after the 8-byte message frame
  assert.is(s.messages.length, 1);
  assert.is(s.messages[0]![0], MSG_IO_TIMEOUT);
  assert.is(s.messages[0]![1].readInt32LE(0), 30);
});

test('MSG_ERROR then MSG_ERROR_EXIT rejects the pending read with the daemon text and code', async () => {
  const s = await replay('error_readonly');
  try {
    await s.reader.readNdx();
    assert.unreachable();
  } catch (e) {
    assert.instance(e, RemoteError);
    const err = e as RemoteError;
    assert.is(err.exitCode, 1);
    assert.is(err.messages[0], 'ERROR: module is read only\n');
    assert.ok(err.message.startsWith('ERROR: module is read only'));
  }
  assert.is(s.demux.peerExitCode, 1);
  assert.equal(s.messages.map(([c]) => c), [MSG_ERROR, MSG_ERROR]);
});

test('hostile frames: unknown code, oversized message, garbled tag', async () => {
  const frames = (...parts: Buffer[]) => new ByteReader(piecesSource(Buffer.concat(parts)));
  const start = (r: ByteReader) => startMultiplexIn(r, () => {});
  const r1 = frames(encodeFrameHeader(MSG_REDO, 4), Buffer.alloc(4));
  start(r1);
  await r1.readByte().then(() => assert.unreachable(), (e) => assert.instance(e, ProtocolError));
  // A length the header allows (16 MiB) but no text message needs: refused before it is read.
  const r2 = frames(encodeFrameHeader(MSG_INFO, MAX_MESSAGE + 1));
  start(r2);
  await r2.readByte().then(() => assert.unreachable(), (e) => assert.instance(e, ProtocolError));
  const r3 = frames(Buffer.from('01000002', 'hex'), Buffer.alloc(1));
  start(r3);
  await r3.readByte().then(() => assert.unreachable(), (e) => assert.instance(e, ProtocolError));
  // Zero-length MSG_DATA frames are keep-alives; a large MSG_DATA frame is streamed, not held.
  const r4 = frames(encodeFrameHeader(MSG_DATA, 0), encodeFrameHeader(MSG_DATA, 2), Buffer.from('hi'));
  start(r4);
  assert.is((await r4.readBuf(2)).toString(), 'hi');
  // A text message cut short is a closed connection.
  const r5 = frames(encodeFrameHeader(MSG_INFO, 10), Buffer.from('abc'));
  start(r5);
  await r5.readByte().then(() => assert.unreachable(), (e) => assert.instance(e, ConnectionClosedError));
});

test('writer frames data in MSG_DATA frames of at most 32 KiB, messages in order', async () => {
  const sink = memorySink();
  const w = new ByteWriter(sink);
  startMultiplexOut(w);
  w.writeBuf(Buffer.alloc(70000, 1));
  await writeMessage(w, MSG_ERROR_EXIT, new Uint8Array(0));
  const out = sink.bytes();
  const seen: Array<[number, number]> = [];
  for (let at = 0; at < out.length; ) {
    const h = decodeFrameHeader(out, at);
    seen.push([h.code, h.length]);
    at += 4 + h.length;
  }
  assert.equal(seen, [[0, 32768], [0, 32768], [0, 4464], [MSG_ERROR_EXIT, 0]]);
  const demuxed = new ByteReader(piecesSource(out.subarray(0, out.length - 4)));
  startMultiplexIn(demuxed, () => {});
  const all = await demuxed.readBuf(70000);
  assert.ok(all.equals(Buffer.alloc(70000, 1)));
});

test('writeMessageInt: one frame with the int32 little-endian', async () => {
  const sink = memorySink();
  const w = new ByteWriter(sink);
  startMultiplexOut(w);
  await writeMessageInt(w, MSG_ERROR_EXIT, 23);
  await writeMessageInt(w, MSG_IO_ERROR, -2);
  assert.equal([...sink.bytes()], [4, 0, 0, MSG_ERROR_EXIT + 7, 23, 0, 0, 0, 4, 0, 0, MSG_IO_ERROR + 7, 0xfe, 0xff, 0xff, 0xff]);
});

test('PeerMessages: texts as the bytes sent, MSG_ERROR_XFER counted, a directory\'s NUL dropped, no callback: dropped', () => {
  const got: string[] = [];
  const messages = new PeerMessages({
    info: (text) => got.push(`info ${text.toString('hex')}`),
    error: (text) => got.push(`error ${text.toString('hex')}`),
    deleted: (name, isDir) => got.push(`deleted ${name.toString('latin1')} ${isDir}`),
  });
  messages.handle(MSG_INFO, Buffer.from('caf\xc3\xa9 \xff\x01\n', 'latin1'));
  messages.handle(MSG_WARNING, Buffer.from('w\n'));
  messages.handle(MSG_ERROR, Buffer.from('e\n'));
  messages.handle(MSG_ERROR_XFER, Buffer.from('x\n'));
  messages.handle(MSG_DELETED, Buffer.from('dir\0', 'latin1'));
  messages.handle(MSG_DELETED, Buffer.from('file'));
  messages.handle(MSG_IO_TIMEOUT, Buffer.from([30, 0, 0, 0]));
  assert.equal(got, ['info 636166c3a920ff010a', 'error 770a', 'error 650a', 'error 780a', 'deleted dir true', 'deleted file false']);
  assert.is(messages.xferErrors, 1);
});

test.run();
