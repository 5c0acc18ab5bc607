// protocol/compat.ts, the server's half of the setup phase: fed the client bytes of every recorded
// rsync 3.5.0 session, our daemon writes the stock daemon's compat flags and (given its seed) its
// seed, offers our checksum list where the stock daemon offered its own, and agrees with the client
// on the checksum; then both halves against each other at every protocol, and the edge cases.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ByteWriter } from '../protocol/io.js';
import { encodeVar } from '../protocol/varint.js';
import {
  CF_INC_RECURSE,
  CF_SYMLINK_TIMES,
  CF_VARINT_FLIST_FLAGS,
  CHECKSUM_NAMES,
  CLIENT_CAPABILITIES,
  serverCompatFlags,
  setupProtocol,
  type ChecksumName,
} from '../protocol/compat.js';
import { ProtocolError } from '../protocol/errors.js';
import { memorySink } from './helpers/capture.js';
import { readClientOpening } from './helpers/server-replay.js';
import { connection } from './helpers/pipe.js';

const root = fileURLToPath(new URL('../../fixtures/captures/', import.meta.url));
/** Every capture whose daemon got as far as the checksum seed. */
const SESSIONS = readdirSync(root).filter((name) => {
  try {
    return readFileSync(`${root}${name}/decoded.txt`, 'utf8').includes('checksum_seed');
  } catch {
    return false;
  }
});

const OUR_LIST = Buffer.from(CHECKSUM_NAMES.join(' '));
/** The compressions the stock daemon offered (push_compress_default). */
const STOCK_COMPRESSIONS = ['zstd', 'lz4', 'zlibx', 'zlib', 'none'];

/** A short vstring, encoded naively: one length byte (< 0x80), the bytes. */
function vstring(bytes: Buffer): Buffer {
  assert.ok(bytes.length < 0x80);
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

/** The stock daemon's setup as decoded.txt gives it: flags, checksum, where its flags and seed sit in s2c. */
function stockSetup(decoded: string) {
  const flags = /\[(\d+)\] compat_flags varint = 0x([0-9a-f]+)/.exec(decoded);
  const seed = /\[(\d+)\] checksum_seed int32 = (-?\d+)/.exec(decoded)!;
  const compress = /\[(\d+)\] server compress list/.exec(decoded);
  return {
    compression: /=> negotiated compression: (\w+)/.exec(decoded)?.[1],
    compressAt: compress ? Number(compress[1]) : -1,
    compatFlags: flags ? parseInt(flags[2]!, 16) : 0,
    compatAt: flags ? Number(flags[1]) : -1,
    checksum: /=> protocol \d+, checksum (\w+)/.exec(decoded)![1]!,
    seed: Number(seed[2]),
    seedAt: Number(seed[1]),
  };
}

test('the captures cover every protocol and the with/without-negotiation cases', () => {
  assert.ok(SESSIONS.length >= 30, `${SESSIONS.length} sessions`);
  for (const name of ['push_initial_noinc', 'push_cs_md5', 'pull_proto27', 'push_proto29', 'push_proto30', 'push_proto31', 'prototype_push_redo', 'push_initial']) {
    assert.ok(SESSIONS.includes(name), name);
  }
});

for (const name of SESSIONS) {
  test(`${name}: our server's setup is the stock daemon's (our checksum list aside)`, async () => {
    const o = await readClientOpening(name);
    const stock = stockSetup(o.decoded);
    const sink = memorySink();
    const writer = new ByteWriter(sink);
    writer.protocol = o.protocol;
    // A -z client without --compress-choice: we offer what the stock daemon offered.
    const compress = o.args.some((a) => /^-[^-e]*z/.test(a)) && !o.args.some((a) => a.startsWith('--compress-choice'));
    const ours = await setupProtocol(o.reader, writer, o.protocol, {
      side: 'server',
      clientInfo: o.clientInfo,
      ...(o.checksumChoice && { checksumChoice: o.checksumChoice }),
      symlinkTimes: true,
      seed: o.seed,
      ...(compress && { compressList: STOCK_COMPRESSIONS }),
    });
    // The stock daemon's flags (never incremental recursion), the checksum both ends took, the seed.
    assert.is(ours.compatFlags, stock.compatFlags & ~CF_INC_RECURSE);
    assert.is(ours.checksum, stock.checksum);
    assert.is(ours.seed, stock.seed);
    assert.is(ours.compression, stock.compression);
    // Our bytes: the flags, our list where the daemon sent its own, the seed (naively encoded).
    const negotiated = o.protocol >= 30 && o.clientInfo.includes('v') && !o.checksumChoice;
    const compat = o.protocol >= 30 ? Buffer.from(encodeVar(ours.compatFlags, 1, 4)) : Buffer.alloc(0);
    const seed = o.cap.s2c.subarray(stock.seedAt, stock.seedAt + 4);
    assert.is(seed.readInt32LE(0), o.seed);
    const compressList = stock.compressAt === -1 ? Buffer.alloc(0) : o.cap.s2c.subarray(stock.compressAt, stock.seedAt);
    const expected = Buffer.concat([compat, negotiated ? vstring(OUR_LIST) : Buffer.alloc(0), compressList, seed]);
    assert.is(sink.bytes().toString('hex'), expected.toString('hex'));
    if (o.protocol >= 30 && !(stock.compatFlags & CF_INC_RECURSE)) {
      // Byte for byte the stock daemon's flags.
      assert.is(compat.toString('hex'), o.cap.s2c.subarray(stock.compatAt, stock.compatAt + compat.length).toString('hex'));
    }
    if (!negotiated && !(stock.compatFlags & CF_INC_RECURSE)) {
      // No lists: everything the stock daemon wrote in its setup phase, byte for byte.
      const start = o.protocol >= 30 ? stock.compatAt : stock.seedAt;
      assert.is(sink.bytes().toString('hex'), o.cap.s2c.subarray(start, stock.seedAt + 4).toString('hex'));
    }
    // We read exactly the client's setup bytes: what follows is its first frame (or raw data below 30).
    const next = o.decoded.match(/c2s @(\d+) frame/);
    if (next) {
      const header = await o.reader.readBuf(4);
      assert.is(header.toString('hex'), o.cap.c2s.subarray(Number(next[1]), Number(next[1]) + 4).toString('hex'));
    }
  });
}

test('push_initial: the client offers incremental recursion (i), our daemon does not turn it on', async () => {
  const o = await readClientOpening('push_initial');
  assert.ok(o.clientInfo.includes('i'));
  assert.is(serverCompatFlags(o.clientInfo, { symlinkTimes: true }), 0x1fe);
  assert.is(stockSetup(o.decoded).compatFlags, 0x1ff, 'the stock daemon turned it on');
});

test('serverCompatFlags: one flag per capability letter, v and V for varint flags, no i', () => {
  assert.is(serverCompatFlags('', { symlinkTimes: false }), 0x4); // CF_SYMLINK_ICONV alone
  assert.is(serverCompatFlags('', { symlinkTimes: true }), 0x6);
  assert.is(serverCompatFlags(`.${CLIENT_CAPABILITIES}`, { symlinkTimes: true }), 0x1fe);
  assert.is(serverCompatFlags('.iLsfxCIvu', { symlinkTimes: true }) & CF_INC_RECURSE, 0);
  assert.is(serverCompatFlags('V', { symlinkTimes: false }) & CF_VARINT_FLIST_FLAGS, CF_VARINT_FLIST_FLAGS);
  assert.is(serverCompatFlags('.LsfxCIvu', { symlinkTimes: false }) & CF_SYMLINK_TIMES, 0);
});

/** Both halves of the setup over an in-memory connection. */
async function both(protocol: number, clientInfo: string, checksumChoice?: ChecksumName, clientList?: string) {
  const c = connection(protocol);
  const seed = -123456789;
  const client = clientList
    ? (async () => {
        // A client with its own list (a prototype's): compat flags, its list, our list, the seed.
        const flags = await c.client.reader.readVarint();
        c.client.writer.writeVstring(Buffer.from(clientList));
        await c.client.writer.flush();
        const theirs = (await c.client.reader.readVstring()).toString();
        return { flags, theirs, seed: await c.client.reader.readInt() };
      })()
    : setupProtocol(c.client.reader, c.client.writer, protocol, { side: 'client', ...(checksumChoice && { checksumChoice }) });
  const server = setupProtocol(c.server.reader, c.server.writer, protocol, {
    side: 'server',
    clientInfo,
    ...(checksumChoice && { checksumChoice }),
    symlinkTimes: true,
    seed,
  });
  const serverSide = await server; // first: a server that gives up leaves the client waiting
  return { client: await client, server: serverSide, c };
}

test('round trip: our client and our server agree at every protocol, with and without --checksum-choice', async () => {
  for (const protocol of [27, 28, 29, 30, 31, 32]) {
    const info = protocol >= 30 ? `.${CLIENT_CAPABILITIES}` : '';
    for (const choice of [undefined, 'md5', 'xxh64', 'md4'] as const) {
      const { client, server, c } = await both(protocol, info, choice);
      assert.equal(client, server, `protocol ${protocol} ${choice}`);
      assert.is(server.seed, -123456789);
      assert.is(server.checksum, choice ?? (protocol >= 30 ? 'xxh128' : 'md4'));
      assert.is(server.checksumImplied, !choice && protocol < 30);
      // Below 30 nothing but the seed crosses; the client writes nothing in the setup without lists.
      if (protocol < 30) assert.is(c.serverBytes().length, 4);
      if (protocol < 30 || choice) assert.is(c.clientBytes().length, 0);
    }
  }
});

test('the server picks its own most-preferred name the client offers (rsync 3.5 parse_negotiate_str)', async () => {
  const cases: Array<[string, ChecksumName]> = [
    ['md5', 'md5'],
    ['md4 md5', 'md5'],
    ['sha1 none xxhash', 'xxh64'],
    ['md4 xxh3 xxh128', 'xxh128'],
  ];
  for (const [list, pick] of cases) {
    const { client, server } = await both(32, '.LsfxCIvu', undefined, list);
    assert.is(server.checksum, pick, list);
    assert.is((client as { theirs: string }).theirs, OUR_LIST.toString());
  }
});

test('no name in common: the server fails with exit 4, as rsync does', async () => {
  try {
    await both(32, '.LsfxCIvu', undefined, 'sha1 none');
    assert.unreachable('agreed');
  } catch (e) {
    assert.ok(e instanceof ProtocolError && e.exitCode === 4 && /client offers sha1 none/.test(e.message), String(e));
  }
});

test("without 'v' no lists cross at 30+ (md5 implied), and a pre-release 'V' client gets its flags as one byte", async () => {
  {
    const { client, server, c } = await both(31, '.LsfxCIu');
    assert.equal(client, server);
    assert.is(server.checksum, 'md5');
    assert.is(server.checksumImplied, true);
    assert.is(c.serverBytes().length, 2 + 4);
  }
  const c = connection(31);
  const server = await setupProtocol(c.server.reader, c.server.writer, 31, { side: 'server', clientInfo: '.LsfxCIVu', symlinkTimes: true, seed: 7 });
  assert.is(c.serverBytes().toString('hex'), `${(server.compatFlags & 0xff).toString(16)}07000000`);
  assert.is(server.compatFlags & CF_VARINT_FLIST_FLAGS, CF_VARINT_FLIST_FLAGS);
  assert.is(server.checksumImplied, true);
});

test("compression: a -z client's list is read after the checksum list; without v, -z means zlib; no common name fails", async () => {
  const o = await readClientOpening('push_compress_default');
  const writer = new ByteWriter(memorySink());
  writer.protocol = 32;
  const ours = await setupProtocol(o.reader, writer, 32, { side: 'server', clientInfo: o.clientInfo, symlinkTimes: true, seed: 1, compressList: ['zlib', 'zstd'] });
  assert.is(ours.compression, 'zlib', 'our own preference first');
  for (const [info, list, pick] of [['.LsfxCIu', ['zlib'], 'zlib'], ['', ['zlibx', 'zlib'], 'zlib']] as const) {
    const c = connection(info ? 31 : 29);
    const server = await setupProtocol(c.server.reader, c.server.writer, info ? 31 : 29, { side: 'server', clientInfo: info, symlinkTimes: true, seed: 1, compressList: list });
    assert.is(server.compression, pick);
  }
  const c = connection(31);
  try {
    await setupProtocol(c.server.reader, c.server.writer, 31, { side: 'server', clientInfo: '.LsfxCIu', symlinkTimes: true, seed: 1, compressList: ['zstd'] });
    assert.unreachable('no zlib');
  } catch (e) {
    assert.ok(e instanceof ProtocolError && e.exitCode === 4, String(e));
  }
});

test('a hostile client list (longer than MAX_NSTR_STRLEN) is refused before it is read', async () => {
  const c = connection(32);
  const server = setupProtocol(c.server.reader, c.server.writer, 32, { side: 'server', clientInfo: '.LsfxCIvu', symlinkTimes: true, seed: 1 });
  c.client.writer.writeVstring(Buffer.alloc(300, 0x61));
  await c.client.writer.flush();
  try {
    await server;
    assert.unreachable('accepted');
  } catch (e) {
    assert.instance(e, ProtocolError);
  }
});

test.run();
