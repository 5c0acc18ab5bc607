// -z (protocol/token-deflate.ts, the compression parts of compat.ts and args.ts, the daemon's
// offer in src/serve/roles.ts). Golden: the deflated token streams the stock 3.5.0 client sent
// (fixtures/captures/push_compress_*) decode to the files it pushed. Round trips of our writer
// through our reader, zlib's shared window, hostile streams. End to end: stock rsync -z pushing
// into and pulling from `lsyncd serve` vs rsyncd (trees compared exactly), and our client pushing
// to and pulling from a real rsyncd, wire bytes compared with rsync's for the same case.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { ProtocolError } from '../protocol/errors.js';
import { createChecksummer } from '../protocol/checksum.js';
import { readSumHead, blockLength } from '../protocol/sums.js';
import {
  DeflatedTokenReader,
  DeflatedTokenWriter,
  MAX_DATA_COUNT,
  MAX_INFLATED_PIECE,
  DEFLATED_DATA,
  END_FLAG,
  windowPieces,
  type DeflateCompression,
} from '../protocol/token-deflate.js';
import type { Token } from '../protocol/token.js';
import { clientCompressOptions, tokenCompression, parseCompressName } from '../protocol/compat.js';
import { serverArgs, DEFAULT_TRANSFER, compressArgs } from '../protocol/args.js';
import { parseServerArgs } from '../protocol/server-args.js';
import { loadCapture, dataStream, captureATxt, sessionOf, memorySink, piecesSource, byteAtATime } from './helpers/capture.js';
import { pseudoRandom, T0, lines } from './helpers/fstree.js';
import { run, lsyncd, type RunResult } from './helpers/cli.js';
import { daemonUrl, runText, startBoth, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';
import { oldRsync } from './helpers/old-rsync.js';
import { assertSameTrees, editCompressSource, makeCompressSource, stampTree, statCount } from './helpers/compress-tree.js';

// ---- decoding the stock client's streams -------------------------------------------------------

/** Read tokens up to END_FLAG: the literal bytes, the blocks in order. */
async function readAll(tokens: DeflatedTokenReader, maxBlock: number, basis?: { data: Buffer; blength: number; count: number; remainder: number }) {
  const parts: Buffer[] = [];
  const blocks: number[] = [];
  for (;;) {
    const t: Token = await tokens.read(maxBlock);
    if ('end' in t) break;
    if ('literal' in t) {
      assert.ok(t.literal.length <= MAX_INFLATED_PIECE);
      parts.push(t.literal);
      continue;
    }
    blocks.push(t.block);
    if (basis) {
      const len = blockLength({ count: basis.count, blength: basis.blength, remainder: basis.remainder, s2length: 0 }, t.block);
      const data = basis.data.subarray(t.block * basis.blength, t.block * basis.blength + len);
      if (tokens.seesBlocks) {
        tokens.seeBlock(len);
        tokens.seeData(data);
      }
      parts.push(data);
    }
  }
  return { data: Buffer.concat(parts), blocks };
}

/** The client's data stream of a capture, with a reader positioned at offset `at`. */
function streamOf(name: string, at: number, cut: 'whole' | 'bytes' = 'whole') {
  const capture = loadCapture(name);
  const { decoded, protocol } = sessionOf(name);
  const stream = dataStream(capture.c2s, decoded, 'c2s').subarray(at);
  const reader = new ByteReader(cut === 'bytes' ? byteAtATime(stream) : piecesSource(stream));
  reader.protocol = protocol;
  return { reader, protocol, decoded };
}

for (const cut of ['whole', 'bytes'] as const) {
  test(`push_compress_zlibx (${cut === 'bytes' ? 'one byte per read' : 'one read'}): the stock client's deflated tokens rebuild a.txt and sub/b.txt, checksums equal`, async () => {
    const { reader, protocol, decoded } = streamOf('push_compress_zlibx', 102, cut);
    const seed = Number(/checksum_seed int32 = (-?\d+)/.exec(decoded)![1]);
    const cs = await createChecksummer('xxh128', { protocol, seed, compatFlags: 0x1fe });
    const tokens = new DeflatedTokenReader(reader, 'zlibx');
    // ndx 1 (a.txt): ndx byte, iflags, the empty sum head echo, the tokens, the checksum.
    assert.is(await reader.readByte(), 0x01); // ndx 1: one past the previous request's 0
    assert.is(await reader.readShort(), 0xa000);
    assert.equal(await readSumHead(reader, 16), { count: 0, blength: 0, s2length: 0, remainder: 0 });
    const a = await readAll(tokens, 0);
    assert.ok(a.data.equals(captureATxt(true)), 'a.txt as pushed');
    const sum = await reader.readBuf(16);
    const h = cs.startFile();
    h.update(a.data);
    assert.ok(Buffer.from(h.digest()).equals(sum), 'whole-file checksum');
    // ndx 2 and 3 are echoes; ndx 4 (sub/b.txt) is deflated afresh (the stream reset at END_FLAG).
    for (const iflags of [0x6002, 0x6000]) {
      await reader.readByte();
      assert.is(await reader.readShort(), iflags);
    }
    await reader.readByte();
    assert.is(await reader.readShort(), 0xa000);
    await readSumHead(reader, 16);
    const b = await readAll(tokens, 0);
    assert.is(b.data.toString(), 'second file in subdir\n');
  });
}

test('push_compress_zlibx_delta: runs (TOKENRUN_REL) around deflated literal data rebuild the edited file from the basis', async () => {
  const { reader, protocol, decoded } = streamOf('push_compress_zlibx_delta', 99);
  const seed = Number(/checksum_seed int32 = (-?\d+)/.exec(decoded)![1]);
  const cs = await createChecksummer('xxh128', { protocol, seed, compatFlags: 0x1fe });
  await reader.readByte();
  assert.is(await reader.readShort(), 0x800c);
  const head = await readSumHead(reader, 16);
  assert.equal(head, { count: 5, blength: 700, s2length: 2, remainder: 225 });
  const basis = captureATxt(true);
  const tokens = new DeflatedTokenReader(reader, 'zlibx');
  const got = await readAll(tokens, head.count, { data: basis, ...head });
  assert.equal(got.blocks, [0, 1, 3, 4], 'blocks 0-1 and 3-4 as two runs');
  assert.is(got.data.length, 3027);
  const h = cs.startFile();
  h.update(got.data);
  assert.ok(Buffer.from(h.digest()).equals(await reader.readBuf(16)), 'whole-file checksum of the rebuilt file');
  assert.match(got.data.toString('latin1'), /^line 0030: /m);
});

test('push_compress_default: the stock client offers its compression list after the checksum list (zstd wins between two 3.5 peers)', () => {
  const { decoded } = sessionOf('push_compress_default');
  assert.match(decoded, /zstd lz4 zlibx zlib/);
});

// ---- our writer through our reader --------------------------------------------------------------

interface Step {
  literal?: Uint8Array;
  match?: number;
}

/** Write one file's steps with our writer; return the bytes. */
async function encode(steps: Step[], basis: Buffer, blength: number, compression: DeflateCompression, protocol: number, files = 1): Promise<Buffer> {
  const sink = memorySink();
  const writer = new ByteWriter(sink);
  writer.protocol = protocol;
  const tokens = new DeflatedTokenWriter(writer, compression);
  for (let f = 0; f < files; f++) {
    for (const s of steps) {
      if (s.literal) await tokens.onLiteral(s.literal);
      else await tokens.onMatch(s.match!, basis.subarray(s.match! * blength, Math.min(basis.length, (s.match! + 1) * blength)));
    }
    tokens.end();
  }
  await writer.flush();
  return sink.bytes();
}

/** A basis and a new file made of its blocks (in and out of order) and literal runs that repeat it. */
function scenario(blength: number, count: number) {
  const basis = pseudoRandom(blength * count, 7);
  const steps: Step[] = [];
  const expected: Buffer[] = [];
  const add = (s: Step, data: Uint8Array) => {
    steps.push(s);
    expected.push(Buffer.from(data));
  };
  const block = (i: number) => basis.subarray(i * blength, (i + 1) * blength);
  add({ literal: Buffer.from(lines(50)) }, Buffer.from(lines(50)));
  for (let i = 0; i < count; i++) add({ match: i }, block(i)); // one run
  // literal data equal to a block just matched: zlib finds it in the window, zlibx cannot
  const again = Buffer.from(block(count - 1).subarray(0, Math.min(blength, 20_000)));
  add({ literal: again }, again);
  add({ match: 0 }, block(0)); // far back: TOKEN_LONG or REL
  add({ match: count - 1 }, block(count - 1));
  const noise = pseudoRandom(70_000, 9); // more than MAX_DATA_COUNT of output: several frames
  for (let at = 0; at < noise.length; at += 32 * 1024) add({ literal: noise.subarray(at, at + 32 * 1024) }, noise.subarray(at, at + 32 * 1024));
  return { basis, steps, expected: Buffer.concat(expected) };
}

for (const algorithm of ['zlibx', 'zlib'] as const) {
  for (const protocol of [30, 31]) {
    for (const blength of [700, 70_000]) {
      test(`round trip: ${algorithm}, protocol ${protocol}, blocks of ${blength} (two files, read a byte at a time)`, async () => {
        const { basis, steps, expected } = scenario(blength, 4);
        const bytes = await encode(steps, basis, blength, { algorithm, level: 6 }, protocol, 2);
        const reader = new ByteReader(byteAtATime(bytes));
        reader.protocol = protocol;
        const tokens = new DeflatedTokenReader(reader, algorithm);
        const head = { count: 4, blength, remainder: 0 };
        for (let f = 0; f < 2; f++) {
          const got = await readAll(tokens, 4, { data: basis, ...head });
          assert.ok(got.data.equals(expected), `file ${f} rebuilt`);
        }
      });
    }
  }
}

test('zlib primes both windows with matched data: literal data repeating a matched block costs far less than with zlibx', async () => {
  const { basis, steps } = scenario(700 * 20, 3);
  const x = await encode(steps, basis, 700 * 20, { algorithm: 'zlibx', level: 6 }, 31);
  const z = await encode(steps, basis, 700 * 20, { algorithm: 'zlib', level: 6 }, 31);
  assert.ok(z.length + 10_000 < x.length, `zlib ${z.length} vs zlibx ${x.length}`);
});

test('a zlib stream read as zlibx (no window priming) fails, typed, or rebuilds wrong data: the windows are really shared', async () => {
  const { basis, steps, expected } = scenario(14_000, 3);
  const bytes = await encode(steps, basis, 14_000, { algorithm: 'zlib', level: 6 }, 31);
  const reader = new ByteReader(piecesSource(bytes));
  reader.protocol = 31;
  try {
    const got = await readAll(new DeflatedTokenReader(reader, 'zlibx'), 3, { data: basis, count: 3, blength: 14_000, remainder: 0 });
    assert.not.ok(got.data.equals(expected));
  } catch (e) {
    assert.instance(e, ProtocolError);
  }
});

test('below protocol 31 a long block enters the window as slices of its first 64 KiB (rsync\'s kept bug); from 31 in order', () => {
  const block = pseudoRandom(150_000, 3);
  const old = [...windowPieces(block, 30)];
  assert.equal(old.map((p) => p.length), [65535, 65535, 18930]);
  assert.ok(old.every((p) => Buffer.from(p).equals(block.subarray(0, p.length))));
  const now = [...windowPieces(block, 31)];
  assert.ok(Buffer.concat(now).equals(block));
});

test('level 0 (dont compress = *) keeps the deflated format with stored blocks; levels clamp as rsync clamps them', async () => {
  const { basis, steps, expected } = scenario(700, 4);
  const bytes = await encode(steps, basis, 700, { algorithm: 'zlibx', level: 0 }, 31);
  const reader = new ByteReader(piecesSource(bytes));
  reader.protocol = 31;
  const got = await readAll(new DeflatedTokenReader(reader, 'zlibx'), 4, { data: basis, count: 4, blength: 700, remainder: 0 });
  assert.ok(got.data.equals(expected));
  assert.equal(tokenCompression('zlibx', undefined), { algorithm: 'zlibx', level: 6 });
  assert.equal(tokenCompression('zlib', 42), { algorithm: 'zlib', level: 9 });
  assert.equal(tokenCompression('zlib', -5), { algorithm: 'zlib', level: 1 });
  assert.is(tokenCompression('zlib', 0), null, '--compress-level=0 turns compression off');
  assert.equal(tokenCompression('zlib', 9, true), { algorithm: 'zlib', level: 0 });
  assert.is(tokenCompression('none', 6), null);
});

// ---- hostile streams -----------------------------------------------------------------------------

async function readFrom(bytes: number[] | Buffer, maxBlock = 10, algorithm: 'zlib' | 'zlibx' = 'zlibx'): Promise<Token[]> {
  const reader = new ByteReader(piecesSource(Buffer.from(bytes)));
  reader.protocol = 31;
  const tokens = new DeflatedTokenReader(reader, algorithm);
  const out: Token[] = [];
  for (;;) {
    const t = await tokens.read(maxBlock);
    out.push(t);
    if ('end' in t) return out;
  }
}

async function rejects(bytes: number[] | Buffer, pattern: RegExp, exitCode: number, maxBlock = 10): Promise<void> {
  try {
    await readFrom(bytes, maxBlock);
    assert.unreachable('accepted');
  } catch (e) {
    assert.instance(e, ProtocolError);
    assert.match((e as Error).message, pattern);
    assert.is((e as ProtocolError).exitCode, exitCode);
  }
}

test('hostile: unknown flags, blocks past the basis, runs past MAX_TOKEN_INDEX, garbage deflate data, an empty frame', async () => {
  await rejects([0x22], /invalid flag byte 0x22/, 2);
  await rejects([0x80 + 5, END_FLAG], /block 5 of 5/, 12, 5);
  await rejects([0x20, 0xfe, 0xff, 0xff, 0x7f, END_FLAG], /block 2147483646 of 10/, 12);
  await rejects([0x20, 0xff, 0xff, 0xff, 0xff], /invalid token number/, 2);
  await rejects([0x21, 0xfe, 0xff, 0xff, 0x7f, 0x05, 0x00], /invalid token number/, 2);
  await rejects([0xc0, 0x00, 0x00], /invalid token number/, 2); // a run of 0
  await rejects([DEFLATED_DATA, 4, 0xff, 0xff, 0xff, 0xff, END_FLAG], /compressed token stream/, 12);
  await rejects([DEFLATED_DATA, 0, END_FLAG], /compressed token stream/, 12);
});

test('hostile: a frame that inflates a lot comes out in pieces of at most 32816 bytes (rsync\'s buffer), never all at once', async () => {
  const { deflateRawSync, constants } = await import('node:zlib');
  const bomb = deflateRawSync(Buffer.alloc(4 * 1024 * 1024), { level: 9, finishFlush: constants.Z_SYNC_FLUSH });
  assert.ok(bomb.length - 4 <= MAX_DATA_COUNT);
  const payload = bomb.subarray(0, bomb.length - 4);
  const tokens = await readFrom([DEFLATED_DATA + (payload.length >> 8), payload.length & 0xff, ...payload, END_FLAG]);
  let total = 0;
  for (const t of tokens) {
    if ('literal' in t) {
      assert.ok(t.literal.length <= MAX_INFLATED_PIECE);
      total += t.literal.length;
    }
  }
  assert.is(total, 4 * 1024 * 1024);
});

// ---- options and negotiation ----------------------------------------------------------------------

test("client arguments are rsync's: -z adds z; zlibx travels as --new-compress, a chosen zlib as z + --old-compress; level and skip list", () => {
  const a = (compress: { choice?: string; level?: number } | undefined, pull = false, skipCompress?: string) =>
    serverArgs({ ...DEFAULT_TRANSFER, ...(compress && { compress }), ...(skipCompress && { skipCompress }) }, 31, 'm/', pull).join(' ');
  assert.is(a({}), '--server -ltprze.LsfxCIvu --delete . m/');
  assert.is(a({ choice: 'zlibx' }), '--server -ltpre.LsfxCIvu --new-compress --delete . m/');
  assert.is(a({ choice: 'zlib', level: 3 }), '--server -ltprze.LsfxCIvu --compress-level=3 --old-compress --delete . m/');
  assert.is(a({ choice: 'none' }), '--server -ltpre.LsfxCIvu --delete . m/');
  assert.is(a({}, true, 'gz/jpg'), '--server --sender -ltprze.LsfxCIvu --skip-compress=gz/jpg . m/');
  assert.equal(compressArgs(undefined), { zFlag: false });
  // Without codecs (no zstd, no lz4) the deflated formats only; a client's list never holds "none".
  assert.equal(clientCompressOptions({}), { compressList: ['zlibx', 'zlib'] });
  assert.equal(clientCompressOptions({ choice: 'ZLIB', level: 2 }), { compressChoice: 'zlib', compressLevel: 2 });
  assert.throws(() => parseCompressName('zstd'), /compress name zstd is not available here/);
  assert.throws(() => parseCompressName('brotli'), /unknown or unsupported compress name: brotli/);
  // Our daemon reads them back as rsync's would.
  const parsed = parseServerArgs(a({ choice: 'zlibx', level: 4 }).split(' '), 31);
  assert.equal(parsed.compress, { level: 4, choice: 'zlibx' });
});

// ---- end to end -------------------------------------------------------------------------------------

const ROOT = process.getuid?.() === 0;
const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
${ROOT ? 'uid = root\ngid = root\n' : ''}
[push]
\tpath = ${dir}/push
\tread only = no
[stored]
\tpath = ${dir}/stored
\tread only = no
\tdont compress = *
`;

let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;

test.before(async () => {
  ({ ours, theirs } = await startBoth(CONFIG));
  for (const dir of [ours.dir, theirs.dir]) for (const m of ['push', 'stored']) await mkdir(join(dir, m));
  work = await mkdtemp(join(tmpdir(), 'lsyncd-compress-test-'));
});

test.after(async () => {
  await ours?.stop();
  await theirs?.stop();
  await rm(work, { recursive: true, force: true });
});

const url = daemonUrl;
const shown = runText;

const CASES: Array<{ name: string; args: string[] }> = [
  { name: 'z', args: ['-z'] },
  { name: 'zlib', args: ['-z', '--zc=zlib'] },
  { name: 'zlibx', args: ['--zc=zlibx'] },
  { name: 'p29', args: ['-z', '--protocol=29'] },
  { name: 'p30-zlib-l9', args: ['-z', '--zc=zlib', '--compress-level=9', '--protocol=30'] },
];

for (const c of CASES) {
  test(`stock rsync ${c.args.join(' ')}: push (initial, delta) into and pull from lsyncd serve land as with rsyncd`, async () => {
    const src = join(work, `src-${c.name}`);
    await makeCompressSource(src);
    const push = async () => {
      const o = await run('rsync', ['-a', '--stats', ...c.args, `${src}/`, url(ours, `push/${c.name}/`)]);
      const t = await run('rsync', ['-a', '--stats', ...c.args, `${src}/`, url(theirs, `push/${c.name}/`)]);
      assert.is(o.status, 0, shown(o));
      assert.is(t.status, 0, shown(t));
      await assertSameTrees(join(theirs.dir, 'push', c.name), join(ours.dir, 'push', c.name), `push ${c.args.join(' ')}`);
      await assertSameTrees(src, join(ours.dir, 'push', c.name), 'the source');
      return o;
    };
    await push();
    await editCompressSource(src);
    const delta = await push();
    assert.ok(statCount(delta, 'Matched data') > 200_000, shown(delta));
    // A pull of the module into a stale copy: deltas from our sender, deflated.
    for (const [d, tag] of [[ours, 'o'], [theirs, 't']] as const) {
      const dest = join(work, `pull-${c.name}-${tag}`);
      await run('rsync', ['-a', join(work, `src-${c.name}`) + '/', dest + '/']);
      await writeFile(join(dest, 'text.txt'), lines(6001));
      await writeFile(join(dest, 'random.bin'), pseudoRandom(200_001, 5));
      const r = await run('rsync', ['-a', '-I', '--stats', ...c.args, url(d, `push/${c.name}/`), `${dest}/`]);
      assert.is(r.status, 0, shown(r));
      await assertSameTrees(src, dest, `pull ${c.args.join(' ')} from ${tag}`);
    }
  });
}

test('zlib with blocks over 64 KiB (rsync -B 100000) at protocols 30 and 31: the window pieces agree with the stock client both ways', async () => {
  // Below 31 a long block enters the window as repeats of its first 64 KiB − 1 ([deflate-window]).
  const src = join(work, 'src-longblock');
  await mkdir(src, { recursive: true });
  const text = Buffer.from(lines(30_000)); // 1.6 MB: 17 blocks of 100,000
  await writeFile(join(src, 'big.txt'), text);
  await stampTree(src, T0);
  for (const protocol of [30, 31]) {
    const module = `push/longblock${protocol}`;
    const args = ['-a', '--zc=zlib', '-B', '100000', `--protocol=${protocol}`, '--stats'];
    let r = await run('rsync', [...args, `${src}/`, url(ours, `${module}/`)]);
    assert.is(r.status, 0, shown(r));
    // A delta both ways: an edit in the middle; literal data after it repeats text from earlier blocks.
    const edited = Buffer.concat([text.subarray(0, 800_000), Buffer.from('EDITED '.repeat(50)), text.subarray(800_000)]);
    await writeFile(join(src, 'big.txt'), edited);
    await stampTree(src, T0 + 60);
    r = await run('rsync', [...args, `${src}/`, url(ours, `${module}/`)]);
    assert.is(r.status, 0, shown(r));
    assert.ok(statCount(r, 'Matched data') > 1_000_000, shown(r));
    await assertSameTrees(src, join(ours.dir, module), `push at ${protocol}`);
    const dest = join(work, `longblock-pull${protocol}`);
    await mkdir(dest, { recursive: true });
    await writeFile(join(dest, 'big.txt'), text);
    r = await run('rsync', [...args, '-I', url(ours, `${module}/`), `${dest}/`]);
    assert.is(r.status, 0, shown(r));
    assert.ok(statCount(r, 'Matched data') > 1_000_000, shown(r));
    await assertSameTrees(src, dest, `pull at ${protocol}`);
    await writeFile(join(src, 'big.txt'), text);
  }
});

test("Debian 12's rsync 3.2.7 -z (negotiated) and --zc=zlib: push and pull with lsyncd serve land as with rsyncd", async () => {
  const old = await oldRsync();
  for (const [name, args] of [['old-z', ['-z']], ['old-zlib', ['--zc=zlib']]] as const) {
    const src = join(work, `src-${name}`);
    await makeCompressSource(src);
    for (const step of [0, 1]) {
      if (step === 1) await editCompressSource(src);
      for (const d of [ours, theirs]) {
        const r = await run(old, ['-a', ...args, `${src}/`, url(d, `push/${name}/`)]);
        assert.is(r.status, 0, shown(r));
      }
      await assertSameTrees(join(theirs.dir, 'push', name), join(ours.dir, 'push', name), `3.2.7 ${args.join(' ')} push ${step}`);
    }
    const dest = join(work, `pull-${name}`);
    await mkdir(dest, { recursive: true });
    await writeFile(join(dest, 'text.txt'), lines(6001));
    const r = await run(old, ['-a', '-I', ...args, url(ours, `push/${name}/`), `${dest}/`]);
    assert.is(r.status, 0, shown(r));
    await assertSameTrees(src, dest, `3.2.7 ${args.join(' ')} pull`);
  }
});

test('stock rsync -z against lsyncd serve negotiates zstd (the system has libzstd), as rsyncd does', async () => {
  const src = join(work, 'src-nstr');
  await makeCompressSource(src);
  const o = await run('rsync', ['-a', '-z', '--debug=NSTR', `${src}/`, url(ours, 'push/nstr/')]);
  assert.is(o.status, 0, shown(o));
  assert.match(o.stdout.toString() + o.stderr, /negotiated compress: zstd/i);
  const t = await run('rsync', ['-a', '-z', '--debug=NSTR', `${src}/`, url(theirs, 'push/nstr/')]);
  assert.match(t.stdout.toString() + t.stderr, /negotiated compress: zstd/i);
});

test("a module's `dont compress = *`: pulls still deflate (level 0, stored), trees equal rsyncd's", async () => {
  const src = join(work, 'src-stored');
  await makeCompressSource(src);
  for (const d of [ours, theirs]) {
    const r = await run('rsync', ['-a', `${src}/`, url(d, 'stored/')]);
    assert.is(r.status, 0, shown(r));
  }
  const bytes: number[] = [];
  for (const [d, tag] of [[ours, 'o'], [theirs, 't']] as const) {
    const dest = join(work, `stored-${tag}`);
    const r = await run('rsync', ['-a', '--zc=zlibx', '--stats', url(d, 'stored/'), `${dest}/`]);
    assert.is(r.status, 0, shown(r));
    await assertSameTrees(src, dest, `stored pull from ${tag}`);
    bytes.push(statCount(r, 'Total bytes received'));
  }
  // Stored blocks: about the files' size (text.txt alone would deflate to a small fraction).
  assert.ok(bytes[0]! > 300_000 && bytes[1]! > 300_000, `received ${bytes.join(' / ')}`);
  assert.ok(bytes[0]! <= bytes[1]! * 1.01, `ours ${bytes[0]} vs rsyncd ${bytes[1]}`);
});

/** Ratios of our wire bytes to rsync's, for the report. */
const RATIOS: string[] = [];

for (const [label, args, cliArgs] of [
  ['zlibx', ['--zc=zlibx'], ['--zc=zlibx']],
  ['zlib', ['--zc=zlib'], ['--zc=zlib']],
  ['-z (negotiated: zstd)', ['-z'], ['-z']],
  ['zlib at protocol 29', ['-z', '--protocol=29'], ['-z', '--protocol=29']],
  ['no compression (the baseline: what differs outside the tokens)', [], []],
] as const) {
  test(`our client ${cliArgs.join(' ')} pushing to and pulling from rsyncd: trees as rsync's, wire bytes compared (${label})`, async () => {
    const tag = label.replace(/\W+/g, '-');
    const src = join(work, `csrc-${tag}`);
    await makeCompressSource(src);
    const target = (who: string) => url(theirs, `push/client-${tag}-${who}/`);
    // Initial push, then a delta push: ours and rsync's into two module dirs.
    const pushes: Record<string, RunResult[]> = { ours: [], rsync: [] };
    for (const step of [0, 1]) {
      if (step === 1) await editCompressSource(src);
      const o = await lsyncd(['--once', '--stats', ...cliArgs, `${src}/`, target('ours')]);
      const r = await run('rsync', ['-rlpt', '--delete', '--stats', ...args, `${src}/`, target('rsync')]);
      assert.is(o.status, 0, shown(o));
      assert.is(r.status, 0, shown(r));
      await assertSameTrees(src, join(theirs.dir, 'push', `client-${tag}-ours`), `our push step ${step}`);
      pushes.ours!.push(o);
      pushes.rsync!.push(r);
    }
    // A pull into a stale copy.
    const pulls: RunResult[] = [];
    for (const who of ['ours', 'rsync']) {
      const dest = join(work, `cpull-${tag}-${who}`);
      await mkdir(dest, { recursive: true });
      await writeFile(join(dest, 'text.txt'), lines(6001));
      await writeFile(join(dest, 'random.bin'), pseudoRandom(200_001, 5));
      const r =
        who === 'ours'
          ? await lsyncd(['--once', '-I', '--stats', ...cliArgs, target('rsync'), `${dest}/`])
          : await run('rsync', ['-rlpt', '-I', '--stats', ...args, target('rsync'), `${dest}/`]);
      assert.is(r.status, 0, shown(r));
      await assertSameTrees(src, dest, `${who} pull`);
      pulls.push(r);
    }
    const sent = (r: RunResult) => statCount(r, 'Total bytes sent');
    const received = (r: RunResult) => statCount(r, 'Total bytes received');
    const ratio = (a: number, b: number) => (a / b).toFixed(3);
    RATIOS.push(
      `${label}: initial push ${sent(pushes.ours![0]!)}/${sent(pushes.rsync![0]!)} = ${ratio(sent(pushes.ours![0]!), sent(pushes.rsync![0]!))}, ` +
        `delta push ${sent(pushes.ours![1]!)}/${sent(pushes.rsync![1]!)} = ${ratio(sent(pushes.ours![1]!), sent(pushes.rsync![1]!))}, ` +
        `pull received ${received(pulls[0]!)}/${received(pulls[1]!)} = ${ratio(received(pulls[0]!), received(pulls[1]!))}`,
    );
    // Our initial push costs what rsync's does (within 1%); compressed, less than half the data.
    assert.ok(sent(pushes.ours![0]!) <= sent(pushes.rsync![0]!) * 1.01, RATIOS.at(-1));
    if (cliArgs.length) assert.ok(sent(pushes.ours![0]!) < 250_000, `compressed: ${RATIOS.at(-1)}`);
  });
}

test('ratios (for the report)', () => {
  for (const line of RATIOS) console.log(`  wire bytes ours/rsync — ${line}`);
  assert.is(RATIOS.length, 5);
});

test.run();
