// protocol/checksum.ts and protocol/sums.ts: the rolling sum, strong block sums and whole-file sums
// of every algorithm, checked against real 3.5.0 sessions (block sums the daemon's generator sent,
// whole-file sums the stock client sent); sum heads read from and written to real streams.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { NDX_DONE } from '../protocol/constants.js';
import { CF_CHKSUM_SEED_FIX, type ChecksumName } from '../protocol/compat.js';
import { ProtocolError } from '../protocol/errors.js';
import { createChecksummer, getChecksum1, RollingChecksum, digestLength, useXxhash } from '../protocol/checksum.js';
import { nativeXxhash } from '../src/addon.js';
import {
  basisLength,
  blockLength,
  generateSums,
  MAX_BLOCK_SIZE,
  OLD_MAX_BLOCK_SIZE,
  readSumBlocks,
  readSumHead,
  readBufferedSumHead,
  sumSizesSqroot,
  weakSum,
  writeSumBlocks,
  writeSumHead,
  type SumBlocks,
} from '../protocol/sums.js';
import { sumsHelper } from '../src/transfer/sums-helper.js';
import { dataStream as demuxedStream, memorySink, piecesSource } from './helpers/capture.js';
import { captureATxt } from './helpers/capture.js';

const root = fileURLToPath(new URL('../../fixtures/captures/', import.meta.url));

interface Session {
  c2s: Buffer;
  s2c: Buffer;
  decoded: string;
  seed: number;
  compatFlags: number;
  protocol: number;
}

function session(name: string): Session {
  const decoded = readFileSync(`${root}${name}/decoded.txt`, 'utf8');
  const seed = Number(/checksum_seed int32 = (-?\d+)/.exec(decoded)![1]);
  const flags = /compat_flags varint = 0x([0-9a-f]+)/.exec(decoded);
  const protocol = Number(/=> protocol (\d+)/.exec(decoded)![1]);
  return {
    c2s: readFileSync(`${root}${name}/c2s.bin`),
    s2c: readFileSync(`${root}${name}/s2c.bin`),
    decoded,
    seed,
    compatFlags: flags ? parseInt(flags[1]!, 16) : 0,
    protocol,
  };
}

/** The concatenated MSG_DATA payloads of one direction, from its first frame (offset in decoded.txt). */
function dataStream(s: Session, dir: 's2c' | 'c2s'): Buffer {
  return demuxedStream(s[dir], s.decoded, dir);
}

/** The generator's first transfer request in a push: its sum head and block sums, via our reader. */
async function generatorSums(s: Session): Promise<SumBlocks> {
  const reader = new ByteReader(piecesSource(dataStream(s, 's2c'), [1, 5, 17, 30]));
  reader.protocol = s.protocol;
  for (;;) {
    const ndx = await reader.readNdx();
    if (ndx === NDX_DONE) throw new Error('no transfer request in the capture');
    const iflags = await reader.readShort();
    if (iflags & 0x8000) {
      const head = await readSumHead(reader, 16);
      return readSumBlocks(reader, head);
    }
  }
}

const aTxt = captureATxt;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The hex of a decoded.txt "whole-file checksum" line (the n-th, from 0). */
function recordedFileSum(s: Session, n = 0): string {
  const all = [...s.decoded.matchAll(/whole-file checksum \(\d+ bytes\): ([0-9a-f]+)/g)];
  return all[n]![1]!;
}

/** Check our block sums of `basis` against the generator's, block by block. */
async function checkBlocks(name: string, algo: ChecksumName, basis: Buffer, only?: number[]): Promise<void> {
  const s = session(name);
  const sums = await generatorSums(s);
  const cs = await createChecksummer(algo, { protocol: s.protocol, seed: s.seed, compatFlags: s.compatFlags, implied: false });
  const { blength, s2length, count } = sums.head;
  for (let i = 0; i < count; i++) {
    if (only && !only.includes(i)) continue;
    const block = basis.subarray(i * blength, i * blength + blockLength(sums.head, i));
    assert.is(getChecksum1(block), sums.sum1[i], `${name} block ${i} sum1`);
    const strong = cs.blockSum(block);
    assert.is(strong.length, digestLength(algo));
    assert.is(hex(strong.subarray(0, s2length)), hex(sums.sum2.subarray(i * s2length, (i + 1) * s2length)), `${name} block ${i} sum2`);
  }
}

// ---- rolling checksum -------------------------------------------------------------------------

test('get_checksum1: the daemon sums of a.txt (push_delta: original a.txt in the module)', async () => {
  const s = session('push_delta');
  const sums = await generatorSums(s);
  assert.equal(sums.head, { count: 5, blength: 700, s2length: 2, remainder: 225 });
  assert.equal([...sums.sum1], [0xd74ff0bd, 0xdac8f059, 0x212df08e, 0xf5c6f1e1, 0xb1794d16]);
  const a = aTxt(false);
  assert.is(basisLength(sums.head), a.length);
  for (let i = 0; i < 5; i++) assert.is(getChecksum1(a, i * 700, Math.min(a.length, i * 700 + 700)), sums.sum1[i]);
});

test('weakSum (word at a time) equals get_checksum1 at every alignment, length and byte value', () => {
  let seed = 12345;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16) & 0xff;
  const random = Uint8Array.from({ length: 140_000 }, rnd);
  const fills = [random, new Uint8Array(140_000).fill(0xff), new Uint8Array(140_000).fill(0x80), new Uint8Array(140_000).fill(0x7f), new Uint8Array(140_000)];
  const lengths = [0, 1, 2, 3, 4, 5, 7, 8, 511, 512, 513, 515, 700, 2048, 23_168, 131_072, 131_077];
  let checked = 0;
  for (const buf of fills) {
    for (const start of [0, 1, 2, 3, 4, 5, 6, 7]) {
      for (const len of lengths) {
        assert.is(weakSum(buf, start, start + len), getChecksum1(buf, start, start + len), `start ${start} len ${len}`);
        checked++;
      }
    }
  }
  // A view that starts at an odd byte offset of its ArrayBuffer.
  const view = random.subarray(3, 3 + 23_169);
  assert.is(weakSum(view), getChecksum1(view));
  assert.is(weakSum(Uint8Array.of(0xff)), 0xffffffff);
  assert.is(checked, fills.length * 8 * lengths.length);
});

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return e instanceof RangeError ? e.message : `not a RangeError: ${String(e)}`;
  }
  return 'no error';
}

test('sumsHelper: block sums on two threads equal generateSums (xxh128 and md5, seeded); a shrunk basis is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lsyncd-sums-'));
  try {
    let seed = 99;
    const data = Buffer.allocUnsafe(20 * 1024 * 1024 + 12_345);
    for (let i = 0; i < data.length; i++) data[i] = (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) >>> 24;
    const path = join(dir, 'basis');
    writeFileSync(path, data);
    for (const name of ['xxh128', 'md5'] as const) {
      const options = { protocol: 31, seed: -123456, compatFlags: CF_CHKSUM_SEED_FIX, implied: false };
      const cs = await createChecksummer(name, options);
      // 3,000-byte blocks: 8 MiB units of 2,796 blocks, a short last unit and a short last block.
      const head = sumSizesSqroot(data.length, 31, cs.digestLength, { blockSize: 3000 });
      const helper = sumsHelper(name, options);
      const fd = openSync(path, 'r');
      try {
        const want = await generateSums(cs, [data], head);
        for (let round = 0; round < 2; round++) {
          const got = await helper.sums(cs, fd, head);
          assert.equal([...got.sum1], [...want.sum1], `${name} sum1`);
          assert.ok(Buffer.from(got.sum2).equals(Buffer.from(want.sum2)), `${name} sum2`);
        }
        // The head describes more than the file has: the basis shrank.
        const longer = sumSizesSqroot(data.length + 5000, 31, cs.digestLength, { blockSize: 3000 });
        assert.match(await failure(helper.sums(cs, fd, longer)), /shrank/);
        // And less: the basis grew.
        const shorter = sumSizesSqroot(data.length - 1, 31, cs.digestLength, { blockSize: 3000 });
        assert.match(await failure(helper.sums(cs, fd, shorter)), /grew/);
      } finally {
        closeSync(fd);
        await helper.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sumsHelper.fileDigest: the whole-file digest of a file as it is written, from the helper thread', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lsyncd-digest-'));
  const options = { protocol: 31, seed: 777, compatFlags: CF_CHKSUM_SEED_FIX, implied: false };
  const cs = await createChecksummer('xxh128', options);
  const helper = sumsHelper('xxh128', options);
  try {
    const piece = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < piece.length; i++) piece[i] = (i * 2654435761) >>> 27;
    const fd = openSync(join(dir, 'f'), 'w+');
    const want = cs.startFile();
    const digest = helper.fileDigest(cs, fd);
    if (!digest) {
      assert.ok(availableParallelism() < 2, 'no helper only on a one-core machine');
      closeSync(fd);
      return;
    }
    let written = 0;
    for (let k = 0; k < 5; k++) {
      written += writeSync(fd, piece, 0, piece.length, written);
      want.update(piece);
      digest.advance(written);
    }
    const got = await digest.digest(written);
    assert.equal(Buffer.from(got), Buffer.from(want.digest()));
    // Block sums and digests in turn on the same helper.
    const head = sumSizesSqroot(written, 31, cs.digestLength);
    const sums = await helper.sums(cs, fd, head);
    assert.is(sums.sum1.length, head.count);
    closeSync(fd);
    // After close there is no helper: no digest, the caller hashes itself.
    await helper.close();
    assert.is(helper.fileDigest(cs, 0), null);
  } finally {
    await helper.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('get_checksum1: signed chars — bytes >= 0x80 count as negative', () => {
  // s1 = -1, s2 = -1 for one 0xff byte: (0xffff) | (0xffff << 16)
  assert.is(getChecksum1(Uint8Array.of(0xff)), 0xffffffff);
  assert.is(getChecksum1(Uint8Array.of(0x80)), ((-128 & 0xffff) | (-128 << 16)) >>> 0);
  assert.is(getChecksum1(Uint8Array.of(0x7f, 0x01)), (0x80 | ((0x7f + 0x80) << 16)) >>> 0);
  assert.is(getChecksum1(new Uint8Array(0)), 0);
});

test('get_checksum1: signed form agrees with the daemon on random binary data (push_binary_delta)', async () => {
  // The capture holds the new bytes 700..1400 (the literal) and the daemon's sums of the old file,
  // whose block 1 differs from them only in 10 bytes at file offset 1000 (block offset 300..309).
  // So old.s1 − new.s1 = Σd (|Σd| ≤ 2550) and old.s2 − new.s2 = 400·Σd − Σ j·d_j (|Σ j·d_j| ≤
  // 255·45), both mod 2^16. The signed sum of the literal satisfies both; the unsigned one
  // (0x80..0xff as 128..255) does not.
  const s = session('push_binary_delta');
  const sums = await generatorSums(s);
  assert.equal(sums.head, { count: 3, blength: 700, s2length: 2, remainder: 600 });
  assert.is(sums.sum1[0], 0x97a801db);
  const c2s = dataStream(s, 'c2s');
  // tokens: block 0 (ff ff ff ff), then the literal (int32 700 = bc 02 00 00) and its bytes
  const at = c2s.indexOf(Buffer.from('ffffffffbc020000', 'hex')) + 4;
  const literal = c2s.subarray(at + 4, at + 704);
  assert.is(c2s.subarray(at + 704, at + 712).toString('hex'), 'fdffffff00000000'); // block 2, end
  assert.ok(literal.some((b) => b >= 0x80));
  const old = sums.sum1[1]!;
  const centered = (x: number): number => ((((x + 0x8000) % 0x10000) + 0x10000) % 0x10000) - 0x8000;
  const explains = (s1: number, s2: number): boolean => {
    const d1 = centered((old & 0xffff) - (s1 & 0xffff));
    const d2 = centered((old >>> 16) - (s2 & 0xffff) - 400 * d1);
    return Math.abs(d1) <= 2550 && Math.abs(d2) <= 255 * 45;
  };
  const signed = getChecksum1(literal);
  assert.ok(explains(signed & 0xffff, signed >>> 16), 'signed sum explains the daemon value');
  let u1 = 0;
  let u2 = 0;
  for (const b of literal) {
    u1 = (u1 + b) | 0;
    u2 = (u2 + u1) | 0;
  }
  assert.not.ok(explains(u1, u2), 'unsigned sum does not');
});

test('RollingChecksum: rolling equals recomputing, over bytes of every value, then shrinking', () => {
  const data = new Uint8Array(3000);
  let x = 12345;
  for (let i = 0; i < data.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) | 0;
    data[i] = i % 7 === 0 ? 0xff : (x >>> 16) & 0xff;
  }
  for (const k of [1, 2, 5, 64, 700]) {
    const r = new RollingChecksum();
    r.init(data, 0, k);
    assert.is(r.sum, getChecksum1(data, 0, k));
    let off = 0;
    for (; off + k < data.length; off++) {
      r.roll(data[off]!, data[off + k]!);
      assert.is(r.sum, getChecksum1(data, off + 1, off + 1 + k));
    }
    for (; r.k > 0; off++) {
      r.shrink(data[off]!);
      assert.is(r.sum, getChecksum1(data, off + 1, data.length));
    }
  }
});

// ---- strong block sums and whole-file sums, per algorithm ---------------------------------------

// Each xxhash test twice: hash-wasm's WebAssembly build, and the addon's C build (native/xxhash.cc,
// which the program installs through src/transfer/checksums.ts).
const XXHASH_WAYS = [
  ['hash-wasm', null],
  ['addon', nativeXxhash()],
] as const;

for (const [way, provider] of XXHASH_WAYS) {
const withProvider = (fn: () => Promise<void>) => async () => {
  assert.ok(way === 'hash-wasm' || provider, 'the addon is built');
  useXxhash(provider);
  try {
    await fn();
  } finally {
    useXxhash(null);
  }
};
test(`xxh128 (negotiated, ${way}): seeded block sums, unseeded whole file, low64 LE then high64 LE (push_delta)`, withProvider(async () => {
  await checkBlocks('push_delta', 'xxh128', aTxt(false));
  const s = session('push_delta');
  const cs = await createChecksummer('xxh128', { protocol: 32, seed: s.seed, compatFlags: s.compatFlags });
  const h = cs.startFile();
  h.update(aTxt(true));
  assert.is(hex(h.digest()), recordedFileSum(s));
  assert.is(recordedFileSum(s), '1a0f290e6fc789940b65048d21a2c3ef');
}));

test(`xxh128 (${way}): push_checksum_mode (another seed; module a.txt had line 0040 edited)`, withProvider(async () => {
  // Blocks 0..2 and the short block 4 match the source; block 3 holds the edited line.
  const s = session('push_checksum_mode');
  const sums = await generatorSums(s);
  const src = aTxt(true);
  const basis = Buffer.concat([src.subarray(0, 2100), Buffer.alloc(700), src.subarray(2799)]);
  assert.is(basis.length, basisLength(sums.head));
  await checkBlocks('push_checksum_mode', 'xxh128', basis, [0, 1, 2, 4]);
  const cs = await createChecksummer('xxh128', { protocol: 32, seed: s.seed, compatFlags: s.compatFlags });
  const h = cs.startFile();
  h.update(src.subarray(0, 1000));
  h.update(src.subarray(1000));
  assert.is(hex(h.digest()), recordedFileSum(s));
  // -c file-list checksum is the same unseeded digest (file_checksum)
  assert.match(s.decoded, `csum=${recordedFileSum(s)}`);
}));

test(`xxh3 (--checksum-choice, ${way}): seeded block sums, unseeded whole file (push_cs_xxh3)`, withProvider(async () => {
  await checkBlocks('push_cs_xxh3', 'xxh3', aTxt(false));
  const s = session('push_cs_xxh3');
  const cs = await createChecksummer('xxh3', { protocol: 32, seed: s.seed, compatFlags: s.compatFlags });
  const h = cs.startFile();
  h.update(aTxt(true));
  assert.is(hex(h.digest()), recordedFileSum(s));
}));

test(`xxh64 (--checksum-choice, ${way}): seeded block sums, unseeded whole file (push_cs_xxh64)`, withProvider(async () => {
  await checkBlocks('push_cs_xxh64', 'xxh64', aTxt(false));
  const s = session('push_cs_xxh64');
  const cs = await createChecksummer('xxh64', { protocol: 32, seed: s.seed, compatFlags: s.compatFlags });
  const h = cs.startFile();
  h.update(aTxt(true));
  assert.is(hex(h.digest()), recordedFileSum(s));
}));

}

test('the addon\'s xxhash equals hash-wasm\'s at every length class and seed (block and streamed whole-file sums)', async () => {
  const native = nativeXxhash();
  assert.ok(native, 'the addon is built');
  const data = Buffer.alloc(70_001);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  for (const name of ['xxh64', 'xxh3', 'xxh128'] as const) {
    for (const seed of [0, 1, -1, 0x12345678, -0x7fffffff]) {
      useXxhash(null);
      const wasm = await createChecksummer(name, { protocol: 32, seed });
      useXxhash(native);
      const c = await createChecksummer(name, { protocol: 32, seed });
      useXxhash(null);
      for (const n of [0, 1, 3, 4, 8, 9, 16, 17, 128, 129, 240, 241, 700, 1024, 4096, 70_001]) {
        const bytes = data.subarray(0, n);
        assert.equal(hex(c.blockSum(bytes)), hex(wasm.blockSum(bytes)), `${name} seed ${seed} block of ${n}`);
        const a = c.startFile();
        const b = wasm.startFile();
        for (let at = 0; at < n; at += 997) {
          a.update(bytes.subarray(at, Math.min(n, at + 997)));
          b.update(bytes.subarray(at, Math.min(n, at + 997)));
        }
        assert.equal(hex(a.digest()), hex(b.digest()), `${name} seed ${seed} file of ${n}`);
      }
    }
  }
});

test('md5 with CF_CHKSUM_SEED_FIX: MD5(seed ++ block); whole file MD5(data) (push_cs_md5)', async () => {
  const s = session('push_cs_md5');
  assert.ok(s.compatFlags & CF_CHKSUM_SEED_FIX);
  await checkBlocks('push_cs_md5', 'md5', aTxt(false));
  const cs = await createChecksummer('md5', { protocol: 32, seed: s.seed, compatFlags: s.compatFlags });
  const h = cs.startFile();
  h.update(aTxt(true));
  assert.is(hex(h.digest()), recordedFileSum(s));
  // Without the flag the seed goes last: a different digest (the daemon would compute that too).
  const old = await createChecksummer('md5', { protocol: 32, seed: s.seed, compatFlags: 0 });
  assert.is.not(hex(old.blockSum(aTxt(false).subarray(0, 700))), hex(cs.blockSum(aTxt(false).subarray(0, 700))));
});

test('md5: the full 16-byte seed-first block sum of a redo request (prototype_push_redo_basis)', async () => {
  const s = session('prototype_push_redo_basis');
  // The basis is the 33-byte x.txt pushed (as one literal) in prototype_push_redo.
  const first = dataStream(session('prototype_push_redo'), 'c2s');
  const lit = first.indexOf(Buffer.from('21000000', 'hex'));
  const basis = first.subarray(lit + 4, lit + 4 + 33);
  const reader = new ByteReader(piecesSource(dataStream(s, 's2c')));
  reader.protocol = s.protocol;
  const heads: SumBlocks[] = [];
  while (heads.length < 2) {
    const ndx = await reader.readNdx();
    if (ndx === NDX_DONE) continue;
    if ((await reader.readShort()) & 0x8000) heads.push(await readSumBlocks(reader, await readSumHead(reader, 16)));
  }
  assert.equal(heads[1]!.head, { count: 1, blength: 700, s2length: 16, remainder: 33 });
  const cs = await createChecksummer('md5', { protocol: s.protocol, seed: s.seed, compatFlags: s.compatFlags });
  assert.is(getChecksum1(basis), heads[1]!.sum1[0]);
  assert.is(hex(cs.blockSum(basis)), hex(heads[1]!.sum2));
  assert.is(hex(cs.blockSum(basis).subarray(0, 2)), hex(heads[0]!.sum2));
  // The second (correct) whole-file checksum of the 1950-byte file the prototype sent.
  const c2s = dataStream(s, 'c2s');
  const at = c2s.indexOf(Buffer.from('9e070000', 'hex'));
  const h = cs.startFile();
  h.update(c2s.subarray(at + 4, at + 4 + 1950));
  assert.is(hex(h.digest()), recordedFileSum(s, 1));
});

test('md4 (--checksum-choice, CSUM_MD4): MD4(block ++ seed); whole file MD4(data) unseeded (push_cs_md4)', async () => {
  await checkBlocks('push_cs_md4', 'md4', aTxt(false));
  const s = session('push_cs_md4');
  const cs = await createChecksummer('md4', { protocol: 32, seed: s.seed, compatFlags: s.compatFlags });
  const h = cs.startFile();
  h.update(aTxt(true));
  assert.is(hex(h.digest()), recordedFileSum(s));
});

test('md4 implied at protocol 29 and 27 (CSUM_MD4_OLD): whole file MD4(seed LE ++ data)', async () => {
  for (const name of ['push_proto29', 'push_proto27']) {
    const s = session(name);
    assert.is(s.compatFlags, 0);
    const cs = await createChecksummer('md4', { protocol: s.protocol, seed: s.seed });
    const files = [aTxt(true), Buffer.from('second file in subdir\n')];
    for (let n = 0; n < 2; n++) {
      const h = cs.startFile();
      h.update(files[n]!);
      assert.is(hex(h.digest()), recordedFileSum(s, n), `${name} file ${n}`);
    }
    // The literal really is the file we hash: check it against the raw client stream.
    assert.ok(s.c2s.includes(files[0]!));
  }
});

test('md4 implied: seed placement of the block sum (source: appended, as the negotiated md4 verified above)', async () => {
  const block = aTxt(false).subarray(0, 700);
  const implied = await createChecksummer('md4', { protocol: 29, seed: 0x6b0890ec });
  const named = await createChecksummer('md4', { protocol: 32, seed: 0x6b0890ec, implied: false });
  assert.is(hex(implied.blockSum(block)), hex(named.blockSum(block)));
  // seed 0: nothing appended, so plain MD4; the whole-file sum still gets 4 zero bytes first
  const zero = await createChecksummer('md4', { protocol: 29, seed: 0 });
  const plain = await createChecksummer('md4', { protocol: 32, seed: 0, implied: false });
  const h1 = plain.startFile();
  h1.update(block);
  assert.is(hex(zero.blockSum(block)), hex(h1.digest()));
  const h2 = zero.startFile();
  h2.update(block);
  const h3 = plain.startFile();
  h3.update(Buffer.alloc(4));
  h3.update(block);
  assert.is(hex(h2.digest()), hex(h3.digest()));
});

test('checksummer: negative seeds (sign-extended for xxhash), stale hashers, old protocols', async () => {
  const block = aTxt(false).subarray(0, 700);
  for (const algo of ['xxh64', 'xxh3', 'xxh128', 'md5', 'md4'] as const) {
    const neg = await createChecksummer(algo, { protocol: 32, seed: -5, compatFlags: CF_CHKSUM_SEED_FIX });
    const pos = await createChecksummer(algo, { protocol: 32, seed: 5, compatFlags: CF_CHKSUM_SEED_FIX });
    assert.is(neg.digestLength, digestLength(algo));
    assert.is.not(hex(neg.blockSum(block)), hex(pos.blockSum(block)));
    // block sums are repeatable (the hasher is reset each time)
    assert.is(hex(neg.blockSum(block)), hex(neg.blockSum(block)));
    const a = neg.startFile();
    neg.startFile();
    assert.throws(() => a.update(block));
  }
  try {
    await createChecksummer('md4', { protocol: 26, seed: 1 });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, ProtocolError);
  }
});

// ---- sum heads -----------------------------------------------------------------------------------

/** The head read both ways: awaiting field by field, and at once from a buffer that holds it all. */
async function headFrom(ints: number[], protocol = 32, digest = 16) {
  const w = new ByteWriter(memorySink());
  for (const i of ints) w.writeInt(i);
  const sink = w.sink as ReturnType<typeof memorySink>;
  await w.flush();
  const reader = new ByteReader(piecesSource(sink.bytes()));
  reader.protocol = protocol;
  let buffered: unknown;
  try {
    // A byte ahead of the head: reading it buffers the rest of the stream.
    const again = new ByteReader(piecesSource(Buffer.concat([Buffer.from([9]), sink.bytes()])));
    again.protocol = protocol;
    await again.readByte();
    buffered = readBufferedSumHead(again, digest);
    assert.is(again.buffered, sink.bytes().length - (protocol < 27 ? 12 : 16));
  } catch (e) {
    buffered = e;
  }
  try {
    const head = await readSumHead(reader, digest);
    assert.equal(buffered, head, 'the buffered read agrees');
    return head;
  } catch (e) {
    assert.instance(buffered, ProtocolError, 'the buffered read refuses it too');
    assert.is((buffered as Error).message, (e as Error).message);
    throw e;
  }
}

test('readBufferedSumHead: nothing consumed until the whole head is buffered', async () => {
  const reader = new ByteReader(piecesSource(Buffer.from([9, 1, 0, 0, 0, 0, 4, 0, 0, 16, 0, 0, 0, 7, 0, 0, 0]), [7, 11]));
  await reader.readByte();
  assert.is(reader.buffered, 6);
  assert.is(readBufferedSumHead(reader, 16), null);
  assert.is(reader.buffered, 6);
  assert.equal(await readSumHead(reader, 16), { count: 1, blength: 1024, s2length: 16, remainder: 7 });
});

test('readSumHead: bounds (count, blength, s2length vs digest, remainder)', async () => {
  assert.equal(await headFrom([0, 0, 0, 0]), { count: 0, blength: 0, s2length: 0, remainder: 0 });
  assert.equal(await headFrom([3, MAX_BLOCK_SIZE, 16, MAX_BLOCK_SIZE]), { count: 3, blength: MAX_BLOCK_SIZE, s2length: 16, remainder: MAX_BLOCK_SIZE });
  assert.equal((await headFrom([1, OLD_MAX_BLOCK_SIZE, 2, 0], 29)).blength, OLD_MAX_BLOCK_SIZE);
  const bad: Array<[number[], number?, number?]> = [
    [[-1, 700, 2, 0]],
    [[(1 << 24) + 1, 700, 2, 0]],
    [[1, MAX_BLOCK_SIZE + 1, 2, 0]],
    [[1, OLD_MAX_BLOCK_SIZE + 1, 2, 0], 29],
    [[1, -700, 2, 0]],
    [[1, 0, 2, 0]],
    [[1, 700, 17, 0]],
    [[1, 700, 9, 0], 32, 8],
    [[1, 700, -1, 0]],
    [[1, 700, 2, 701]],
    [[1, 700, 2, -1]],
  ];
  for (const [ints, protocol, digest] of bad) {
    try {
      await headFrom(ints, protocol, digest);
      assert.unreachable(`accepted ${ints.join(' ')}`);
    } catch (e) {
      assert.instance(e, ProtocolError, ints.join(' '));
    }
  }
});

test('sum head + block sums: read from the daemon stream, written back byte for byte', async () => {
  const s = session('push_delta');
  const stream = dataStream(s, 's2c');
  const sums = await generatorSums(s);
  const w = new ByteWriter(memorySink());
  writeSumHead(w, sums.head);
  writeSumBlocks(w, sums);
  await w.flush();
  const out = (w.sink as ReturnType<typeof memorySink>).bytes();
  assert.is(out.length, 16 + 5 * 6);
  assert.ok(stream.subarray(3, 3 + out.length).equals(out));
  // the client echoed the same head (c2s)
  assert.ok(dataStream(s, 'c2s').includes(out.subarray(0, 16)));
  // null head, and protocol 26's three ints
  const w2 = new ByteWriter(memorySink());
  writeSumHead(w2, null);
  w2.protocol = 26;
  writeSumHead(w2, { count: 1, blength: 700, s2length: 2, remainder: 0 });
  await w2.flush();
  assert.is((w2.sink as ReturnType<typeof memorySink>).bytes().toString('hex'), '00'.repeat(16) + '01000000bc02000000000000');
});

test('readSumBlocks: many blocks over many reads, one flat array each', async () => {
  const count = 10_000;
  const w = new ByteWriter(memorySink());
  for (let i = 0; i < count; i++) {
    w.writeInt((i * 2654435761) | 0);
    w.writeBuf(Uint8Array.of(i & 0xff, (i >> 8) & 0xff, 7));
  }
  await w.flush();
  const bytes = (w.sink as ReturnType<typeof memorySink>).bytes();
  const cuts = Array.from({ length: 50 }, (_, i) => i * 613 + 1);
  const reader = new ByteReader(piecesSource(bytes, cuts));
  const sums = await readSumBlocks(reader, { count, blength: 700, s2length: 3, remainder: 0 });
  assert.is(sums.sum2.length, count * 3);
  for (const i of [0, 1, 4095, 4096, 9999]) {
    assert.is(sums.sum1[i], ((i * 2654435761) | 0) >>> 0);
    assert.equal([...sums.sum2.subarray(i * 3, i * 3 + 3)], [i & 0xff, (i >> 8) & 0xff, 7]);
  }
});

test('generateSums: the exact sum head and block sums of the daemon generator (push_delta) and the stock client generator (pull_delta)', async () => {
  const cases: Array<[string, 's2c' | 'c2s', number, Buffer]> = [
    ['push_delta', 's2c', 3, aTxt(false)], // daemon's generator, over the module's original a.txt
    ['pull_delta', 'c2s', 7, aTxt(true)], // rsync client's generator (after the 4-byte filter list), over its CAT a.txt
  ];
  for (const [name, dir, at, basis] of cases) {
    const s = session(name);
    const cs = await createChecksummer('xxh128', { protocol: s.protocol, seed: s.seed, compatFlags: s.compatFlags });
    const head = sumSizesSqroot(basis.length, s.protocol, cs.digestLength);
    for (const cut of [basis.length, 1, 333, 700, 1400]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < basis.length; i += cut) chunks.push(basis.subarray(i, i + cut));
      const sums = await generateSums(cs, chunks, head);
      const w = new ByteWriter(memorySink());
      writeSumHead(w, sums.head);
      writeSumBlocks(w, sums);
      await w.flush();
      const ours = (w.sink as ReturnType<typeof memorySink>).bytes();
      assert.is(hex(ours), hex(dataStream(s, dir).subarray(at, at + ours.length)), `${name} cut ${cut}`);
    }
    // a basis that changed while read is refused
    const head2 = sumSizesSqroot(basis.length + 1, s.protocol, cs.digestLength);
    try {
      await generateSums(cs, [basis], head2);
      assert.unreachable();
    } catch (e) {
      assert.instance(e, RangeError);
    }
  }
});

test('sumSizesSqroot: block and strong-sum sizes as the 3.5.0 generator picks them', () => {
  // 3025 bytes: push_delta's sum head
  assert.equal(sumSizesSqroot(3025, 32, 16), { count: 5, blength: 700, s2length: 2, remainder: 225 });
  // 33 bytes, redo pass: prototype_push_redo_basis's two heads
  assert.equal(sumSizesSqroot(33, 31, 16), { count: 1, blength: 700, s2length: 2, remainder: 33 });
  assert.equal(sumSizesSqroot(33, 31, 16, { fullSums: true }), { count: 1, blength: 700, s2length: 16, remainder: 33 });
  assert.is(sumSizesSqroot(33, 32, 8, { fullSums: true }).s2length, 8);
  // rsync generator.c sum_sizes_sqroot (verified against a 3.5.0 generator)
  assert.is(sumSizesSqroot(1_000_000, 32, 16).blength, 1000);
  assert.is(sumSizesSqroot(30_000_000, 32, 16).blength, 5472);
  assert.equal(sumSizesSqroot(490_000, 32, 16), { count: 700, blength: 700, s2length: 2, remainder: 0 });
  assert.equal(sumSizesSqroot(0, 32, 16), { count: 0, blength: 700, s2length: 2, remainder: 0 });
  // big files: 2^17 cap from protocol 30, 2^29 before; longer strong sums
  assert.equal(sumSizesSqroot(2 ** 40, 32, 16), { count: 2 ** 23, blength: MAX_BLOCK_SIZE, s2length: 6, remainder: 0 });
  assert.is(sumSizesSqroot(2 ** 40, 29, 16).blength, 2 ** 20);
  assert.is(sumSizesSqroot(1e9, 32, 16).s2length, 3);
  assert.is(sumSizesSqroot(5000, 32, 16, { blockSize: 1024 }).count, 5);
  assert.is(sumSizesSqroot(5000, 26, 16).s2length, 2);
});

test.run();
