// protocol/io.ts: the typed reader over real captured streams, fed in every segmentation;
// truncation; bounded lines and lengths; the writer's golden bytes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { ConnectionClosedError, ProtocolError } from '../protocol/errors.js';
import { formatGreeting } from '../protocol/daemon.js';
import { byteAtATime, loadCapture, memorySink, piecesSource } from './helpers/capture.js';

const noinc = loadCapture('push_initial_noinc');

/** The client's side of push_initial_noinc up to and including the first file-list entry. */
async function readClientPrologue(reader: ByteReader) {
  const greeting = (await reader.readLine())!.toString();
  const module = (await reader.readLine())!.toString();
  const args: string[] = [];
  for (;;) {
    let arg = '';
    for (let b = await reader.readByte(); b !== 0; b = await reader.readByte()) arg += String.fromCharCode(b);
    if (arg === '') break;
    args.push(arg);
  }
  const checksums = (await reader.readVstring()).toString();
  return { greeting, module, args, checksums };
}

test('reads the client prologue of a real push, one byte per read', async () => {
  const reader = new ByteReader(byteAtATime(noinc.c2s));
  const got = await readClientPrologue(reader);
  assert.is(got.greeting, '@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4');
  assert.is(got.module, 'push');
  assert.equal(got.args, ['--server', '-logDtpre.LsfxCIvu', '.', 'push/']);
  assert.is(got.checksums, 'xxh128 xxh3 xxh64 md5 md4 sha1');
  assert.is(reader.consumed, 114);
});

test('reads the daemon setup of a real push split at every offset', async () => {
  const end = 143; // greeting, MOTD, OK, compat flags, checksum list, seed
  for (let cut = 1; cut < end; cut++) {
    const reader = new ByteReader(piecesSource(noinc.s2c.subarray(0, end), [cut, cut + 3]));
    const lines: string[] = [];
    for (let i = 0; i < 5; i++) lines.push((await reader.readLine())!.toString());
    assert.equal(lines, ['@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4', 'Welcome to the capture daemon', 'Second motd line', '', '@RSYNCD: OK']);
    assert.is(await reader.readVarint(), 0x1fe);
    assert.is((await reader.readVstring()).toString(), 'xxh128 xxh3 xxh64 md5 md4 sha1 none');
    assert.is(await reader.readInt(), 1796189240);
    assert.is(reader.buffered, 0, `cut ${cut}`);
  }
});

test('truncation anywhere is a ConnectionClosedError naming what was wanted', async () => {
  for (let len = 100; len < 143; len++) {
    const reader = new ByteReader(piecesSource(noinc.s2c.subarray(0, len)));
    try {
      for (let i = 0; i < 5; i++) await reader.readLine();
      await reader.readVarint();
      await reader.readVstring();
      await reader.readInt();
      assert.unreachable(`length ${len} read through`);
    } catch (e) {
      assert.instance(e, ConnectionClosedError, `length ${len}`);
      assert.ok((e as ConnectionClosedError).wanted > (e as ConnectionClosedError).had);
    }
  }
});

test('readLine drops \\r, refuses NUL and over-long lines, returns null at a clean end', async () => {
  const r1 = new ByteReader(piecesSource(Buffer.from('one\r\ntwo\n')));
  assert.is((await r1.readLine())!.toString(), 'one');
  assert.is((await r1.readLine())!.toString(), 'two');
  assert.is(await r1.readLine(), null);
  const r2 = new ByteReader(piecesSource(Buffer.from('bad\0line\n')));
  await r2.readLine().then(() => assert.unreachable(), (e) => assert.instance(e, ProtocolError));
  // An endless line: the reader stops at the bound instead of buffering forever.
  let served = 0;
  const endless = new ByteReader({ read: async () => ((served += 1024), Buffer.alloc(1024, 0x41)) });
  await endless.readLine(4096).then(() => assert.unreachable(), (e) => assert.instance(e, ProtocolError));
  assert.ok(served <= 8192, `read ${served} bytes before refusing`);
});

test('hostile lengths are refused before allocating', async () => {
  const r = new ByteReader(piecesSource(Buffer.from([0xff, 0xff])));
  await r.readVstring(256).then(() => assert.unreachable(), (e) => assert.instance(e, ProtocolError));
  const r2 = new ByteReader(piecesSource(Buffer.alloc(4)));
  await r2.readBuf(1 << 30, 1 << 20).then(() => assert.unreachable(), (e) => assert.instance(e, ProtocolError));
  const r3 = new ByteReader(piecesSource(Buffer.from('f8ffffffffff', 'hex')));
  await r3.readVarint().then(() => assert.unreachable(), (e) => assert.instance(e, ProtocolError));
  const r4 = new ByteReader(piecesSource(Buffer.from('ffffffff00000000000000f0', 'hex')));
  await r4.readLongint().then(() => assert.unreachable(), (e) => assert.instance(e, ProtocolError));
});

test('writer produces the client bytes of the real session', async () => {
  const sink = memorySink();
  const w = new ByteWriter(sink);
  w.writeLine(formatGreeting(32));
  w.writeLine('push');
  for (const arg of ['--server', '-logDtpre.LsfxCIvu', '.', 'push/', '']) {
    w.writeBuf(Buffer.from(arg));
    w.writeByte(0);
  }
  w.writeVstring(Buffer.from('xxh128 xxh3 xxh64 md5 md4 sha1'));
  await w.flush();
  assert.is(sink.bytes().toString('hex'), noinc.c2s.subarray(0, 114).toString('hex'));
});

test('writer and reader agree on every type, protocol 29 and 32', async () => {
  for (const protocol of [29, 32]) {
    const sink = memorySink();
    const w = new ByteWriter(sink);
    w.protocol = protocol;
    w.writeByte(0xab);
    w.writeShort(0xa000);
    w.writeInt(-5);
    w.writeVarint(123456);
    w.writeVarlong(2 ** 40, 3);
    w.writeLongint(2 ** 33);
    w.writeVarint30(7);
    w.writeVarlong30(2 ** 35, 3);
    for (const n of [0, 1, 2, 500, 40000, 3, -1, -3, -101]) w.writeNdx(n);
    w.writeVstring(Buffer.alloc(300, 0x61));
    await w.flush();
    const r = new ByteReader(byteAtATime(sink.bytes()));
    r.protocol = protocol;
    assert.is(await r.readByte(), 0xab);
    assert.is(await r.readShort(), 0xa000);
    assert.is(await r.readInt(), -5);
    assert.is(await r.readVarint(), 123456);
    assert.is(await r.readVarlong(3), 2 ** 40);
    assert.is(await r.readLongint(), 2 ** 33);
    assert.is(await r.readVarint30(), 7);
    assert.is(await r.readVarlong30(3), 2 ** 35);
    for (const n of [0, 1, 2, 500, 40000, 3, -1, -3, -101]) assert.is(await r.readNdx(), n, `ndx ${n} at ${protocol}`);
    assert.is((await r.readVstring()).length, 300);
    assert.is(r.buffered, 0);
  }
});

test('readVarlong returns negative int64s (the nine-byte form), one byte per read', async () => {
  const bytes = Buffer.alloc(18);
  bytes[0] = 0xf8;
  bytes.writeBigInt64LE(-86400n, 1); // 1969-12-31 00:00:00 as write_varlong(min 4) sends it
  bytes[9] = 0xfc;
  bytes.writeBigInt64LE(-5n, 10); // min 3: six extra bytes
  const r = new ByteReader(byteAtATime(bytes));
  assert.is(await r.readVarlong(4), -86400);
  assert.is(await r.readVarlong(3), -5);
  assert.is(r.buffered, 0);
});

test.run();
