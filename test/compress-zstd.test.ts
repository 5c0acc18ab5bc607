// -z with zstd and lz4 (protocol/token-zstd.ts, token-lz4.ts, token-runs.ts; the codecs of
// src/compress-codecs.ts from the system's libzstd and liblz4 through native/compress-libs.cc; the
// negotiation in compat.ts). Round trips of our writers through our readers with the real
// libraries, hostile streams (typed errors, bounded output), levels and lists as rsync's. End to
// end: stock rsync 3.5 and Debian's 3.2.7 pushing into and pulling from `lsyncd serve` vs rsyncd
// (trees compared exactly), and our client against rsyncd with its wire bytes compared with rsync's
// by the daemon's own counters.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { ProtocolError } from '../protocol/errors.js';
import { blockLength } from '../protocol/sums.js';
import { ZstdTokenReader, ZstdTokenWriter, zstdLevel } from '../protocol/token-zstd.js';
import { Lz4TokenReader, Lz4TokenWriter } from '../protocol/token-lz4.js';
import { DEFLATED_DATA, END_FLAG, MAX_DATA_COUNT } from '../protocol/token-runs.js';
import type { Token, TokenSink, TokenSource } from '../protocol/token.js';
import type { CompressCodecs } from '../protocol/compress-codecs.js';
import { clientCompressList, clientCompressOptions, compressNames, parseCompressName, tokenCompression } from '../protocol/compat.js';
import { compressCodecs } from '../src/compress-codecs.js';
import { piecesSource, byteAtATime, memorySink } from './helpers/capture.js';
import { pseudoRandom, lines } from './helpers/fstree.js';
import { run, lsyncd, CLI, type RunResult } from './helpers/cli.js';
import { untilSameTree } from './helpers/tree.js';
import { spawn } from 'node:child_process';
import { daemonUrl as url, runText as shown, startOurDaemon, type OurDaemon } from './helpers/serve.js';
import { freePort, startDaemonWithConfig, type ConfiguredDaemon } from './helpers/daemon.js';
import { oldRsync } from './helpers/old-rsync.js';
import { assertSameTrees, editCompressSource, makeCompressSource, statCount } from './helpers/compress-tree.js';

const codecs = compressCodecs();
const zstd = codecs.zstd!;
const lz4 = codecs.lz4!;

test('the system libraries open through the addon: zstd and lz4 are both here (Debian/Ubuntu always have them)', () => {
  assert.ok(codecs.zstd, `zstd missing: ${codecs.missing?.zstd}`);
  assert.ok(codecs.lz4, `lz4 missing: ${codecs.missing?.lz4}`);
  assert.is(zstd.defaultLevel, 3);
  assert.ok(zstd.minLevel < 0 && zstd.maxLevel === 22, `${zstd.minLevel}..${zstd.maxLevel}`);
  assert.is(compressNames(codecs).join(' '), 'zstd lz4 zlibx zlib none', "rsync 3.5's list");
});

// ---- our writers through our readers ------------------------------------------------------------

interface Step {
  literal?: Uint8Array;
  match?: number;
}

type Algorithm = 'zstd' | 'lz4';
const NO_BLOCK = new Uint8Array(0);

function writerFor(algorithm: Algorithm, writer: ByteWriter, level = 3): TokenSink {
  return algorithm === 'zstd' ? new ZstdTokenWriter(writer, zstd, level) : new Lz4TokenWriter(writer, lz4);
}

function readerFor(algorithm: Algorithm, reader: ByteReader): TokenSource {
  return algorithm === 'zstd' ? new ZstdTokenReader(reader, zstd) : new Lz4TokenReader(reader, lz4);
}

/** Write `files` files of the same steps with one writer (one session); return the bytes. */
async function encode(algorithm: Algorithm, steps: Step[], files = 1, level = 3): Promise<Buffer> {
  const sink = memorySink();
  const writer = new ByteWriter(sink);
  writer.protocol = 31;
  const tokens = writerFor(algorithm, writer, level);
  for (let f = 0; f < files; f++) {
    for (const s of steps) {
      if (s.literal) await tokens.onLiteral(s.literal);
      else await tokens.onMatch(s.match!, NO_BLOCK); // zstd and lz4 never look at the block
    }
    tokens.end();
  }
  await writer.flush();
  return sink.bytes();
}

/** Read tokens up to END_FLAG, rebuilding from the basis; literal pieces bounded by `maxPiece`. */
async function readAll(tokens: TokenSource, basis: { data: Buffer; blength: number; count: number }, maxPiece: number) {
  const parts: Buffer[] = [];
  const blocks: number[] = [];
  for (;;) {
    const t: Token = await tokens.read(basis.count);
    if ('end' in t) break;
    if ('literal' in t) {
      assert.ok(t.literal.length > 0 && t.literal.length <= maxPiece, `piece of ${t.literal.length}`);
      parts.push(t.literal);
      continue;
    }
    blocks.push(t.block);
    const len = blockLength({ count: basis.count, blength: basis.blength, remainder: 0, s2length: 0 }, t.block);
    parts.push(basis.data.subarray(t.block * basis.blength, t.block * basis.blength + len));
  }
  return { data: Buffer.concat(parts), blocks };
}

/** A basis and a new file of its blocks (a run, one far back) and literal runs: text, noise over several frames. */
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
  for (let i = 0; i < count; i++) add({ match: i }, block(i));
  add({ literal: Buffer.from(lines(3000)).subarray(0, 32 * 1024) }, Buffer.from(lines(3000)).subarray(0, 32 * 1024));
  add({ match: 0 }, block(0));
  add({ match: count - 1 }, block(count - 1));
  const noise = pseudoRandom(70_000, 9);
  for (let at = 0; at < noise.length; at += 32 * 1024) add({ literal: noise.subarray(at, at + 32 * 1024) }, noise.subarray(at, at + 32 * 1024));
  return { basis, steps, expected: Buffer.concat(expected) };
}

const MAX_PIECE = { zstd: 2 * zstd.outSize, lz4: 32912 };

for (const algorithm of ['zstd', 'lz4'] as const) {
  for (const blength of [700, 70_000]) {
    test(`round trip: ${algorithm}, blocks of ${blength} (two files in one session, read a byte at a time)`, async () => {
      const { basis, steps, expected } = scenario(blength, 4);
      const bytes = await encode(algorithm, steps, 2);
      const reader = new ByteReader(byteAtATime(bytes));
      reader.protocol = 31;
      const tokens = readerFor(algorithm, reader);
      for (let f = 0; f < 2; f++) {
        const got = await readAll(tokens, { data: basis, blength, count: 4 }, MAX_PIECE[algorithm]);
        assert.ok(got.data.equals(expected), `file ${f} rebuilt`);
        assert.equal(got.blocks, [0, 1, 2, 3, 0, 3]);
      }
    });
  }
}

test("zstd's stream spans the session (rsync never resets it): a second file equal to the first costs a fraction; lz4's frames stand alone", async () => {
  const noise = pseudoRandom(150_000, 11); // incompressible on its own: only the window can help
  const steps = [0, 1, 2, 3, 4].map((i) => ({ literal: noise.subarray(i * 32 * 1024, (i + 1) * 32 * 1024) }));
  const one = (await encode('zstd', steps, 1)).length;
  const two = (await encode('zstd', steps, 2)).length;
  assert.ok(two - one < one / 5, `first file ${one} bytes, the second ${two - one}`);
  const l1 = (await encode('lz4', steps, 1)).length;
  const l2 = (await encode('lz4', steps, 2)).length;
  assert.is(l2, 2 * l1, 'lz4: the same frames again');
});

test('frames are at most MAX_DATA_COUNT: incompressible lz4 pieces are halved until they fit (rsync\'s rule), zstd output is cut', async () => {
  const noise = pseudoRandom(32 * 1024, 3);
  for (const algorithm of ['zstd', 'lz4'] as const) {
    const bytes = await encode(algorithm, [{ literal: noise }]);
    // Walk the frames by their headers: each within a frame's limit, END_FLAG last.
    let at = 0;
    let frames = 0;
    while (bytes[at] !== END_FLAG) {
      assert.is(bytes[at]! & 0xc0, DEFLATED_DATA);
      const n = ((bytes[at]! & 0x3f) << 8) + bytes[at + 1]!;
      assert.ok(n > 0 && n <= MAX_DATA_COUNT);
      at += 2 + n;
      frames++;
    }
    assert.is(at, bytes.length - 1);
    // lz4: 16383 random bytes grow past a frame, so each becomes two halves: more than 2 frames.
    assert.ok(frames >= (algorithm === 'lz4' ? 4 : 3), `${algorithm}: ${frames} frames`);
  }
});

test("levels as rsync's init_compression_level: zstd unset or 0 is 3, clamped to the library's range, never off; lz4 has none; `dont compress = *` leaves both alone", () => {
  assert.is(zstdLevel(undefined, zstd), 3);
  assert.is(zstdLevel(0, zstd), 3);
  assert.is(zstdLevel(19, zstd), 19);
  assert.is(zstdLevel(99, zstd), 22);
  assert.is(zstdLevel(-5, zstd), -5);
  assert.is(zstdLevel(-9_999_999, zstd), zstd.minLevel);
  assert.equal(tokenCompression('zstd', 0, false, codecs), { algorithm: 'zstd', level: 3, codec: zstd });
  assert.equal(tokenCompression('zstd', 7, true, codecs), { algorithm: 'zstd', level: 7, codec: zstd });
  assert.equal(tokenCompression('lz4', 9, true, codecs), { algorithm: 'lz4', level: 0, codec: lz4 });
  assert.is(tokenCompression('zstd', 3, false, {}), undefined, 'no codec: no token format');
  assert.is(tokenCompression('zlib', 0, false, codecs), null, 'zlib 0 is still off');
});

test("lists as rsync's: a client offers no \"none\"; without a library its name is left out and a forced choice fails with why", () => {
  assert.equal(clientCompressList(codecs), ['zstd', 'lz4', 'zlibx', 'zlib']);
  const noZstd: CompressCodecs = { lz4, missing: { zstd: 'libzstd.so.1: cannot open shared object file' } };
  assert.equal(compressNames(noZstd), ['lz4', 'zlibx', 'zlib', 'none']);
  assert.equal(clientCompressOptions({}, () => noZstd), { compressList: ['lz4', 'zlibx', 'zlib'], codecs: noZstd });
  assert.equal(clientCompressOptions({ choice: 'ZSTD', level: 5 }, () => codecs), { compressChoice: 'zstd', compressLevel: 5, codecs });
  assert.throws(() => parseCompressName('zstd', noZstd), /compress name zstd is not available here: libzstd\.so\.1: cannot open shared object file/);
  assert.is(parseCompressName('LZ4', noZstd), 'lz4');
});

// ---- hostile streams ----------------------------------------------------------------------------

async function readFrom(algorithm: Algorithm, bytes: Uint8Array | number[], maxBlock = 10): Promise<Token[]> {
  const reader = new ByteReader(piecesSource(Buffer.from(bytes)));
  reader.protocol = 31;
  const tokens = readerFor(algorithm, reader);
  const out: Token[] = [];
  for (;;) {
    const t = await tokens.read(maxBlock);
    out.push(t);
    if ('end' in t) return out;
  }
}

async function rejects(algorithm: Algorithm, bytes: Uint8Array | number[], pattern: RegExp, exitCode: number): Promise<void> {
  try {
    await readFrom(algorithm, bytes);
    assert.unreachable('accepted');
  } catch (e) {
    assert.instance(e, ProtocolError);
    assert.match((e as Error).message, pattern);
    assert.is((e as ProtocolError).exitCode, exitCode);
  }
}

const frame = (payload: Uint8Array | number[]) => [DEFLATED_DATA + (payload.length >> 8), payload.length & 0xff, ...payload];

test('hostile zstd: garbage, a damaged block mid-stream, a window over 2^27, bad flags and blocks → typed errors (exit 12 / 2)', async () => {
  await rejects('zstd', [...frame([1, 2, 3, 4, 5, 6, 7, 8]), END_FLAG], /zstd token stream: damaged data: ZSTD_decompressStream: Unknown frame descriptor/, 12);
  // A good first file, then a block header of the reserved type 3 in the same stream.
  const good = (await encode('zstd', [{ literal: Buffer.from(lines(20)) }])).subarray(0, -1); // without its END_FLAG
  await rejects('zstd', [...good, ...frame([0x07, 0x00, 0x00, 0x41]), END_FLAG], /zstd token stream: damaged data/, 12);
  // Frame header: magic, no flags, window descriptor of exponent 20 (2^30): refused, not allocated.
  await rejects('zstd', [...frame([0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3, 0x01, 0x00, 0x00]), END_FLAG], /damaged data: .*(memory|window)/i, 12);
  await rejects('zstd', [0x22], /invalid flag byte 0x22/, 2);
  await rejects('zstd', [0x80 + 12, END_FLAG], /block 12 of 10/, 12);
});

test('hostile lz4: garbage, and a frame that would inflate past rsync\'s buffer → typed errors, nothing larger allocated', async () => {
  await rejects('lz4', [...frame([0xff, 0xff, 0xff, 0xff, 0x01]), END_FLAG], /lz4 token stream: uncompress failed/, 12);
  const big = new Uint8Array(lz4.compressBound(100_000));
  const n = lz4.compress(new Uint8Array(100_000), big);
  assert.ok(n <= MAX_DATA_COUNT);
  await rejects('lz4', [...frame(big.subarray(0, n)), END_FLAG], /lz4 token stream: uncompress failed/, 12);
  await rejects('lz4', [0xc0 + 1, 0x00, 0x00], /invalid token number/, 2);
});

test('a zstd frame that decompresses to 4 MiB comes out in pieces of at most twice ZSTD_DStreamOutSize (rsync\'s buffer)', async () => {
  const bytes = await encode('zstd', [{ literal: new Uint8Array(4 * 1024 * 1024) }]);
  assert.ok(bytes.length < MAX_DATA_COUNT, `${bytes.length} bytes: one frame`);
  let total = 0;
  for (const t of await readFrom('zstd', bytes)) {
    if ('literal' in t) {
      assert.ok(t.literal.length <= 2 * zstd.outSize);
      total += t.literal.length;
    }
  }
  assert.is(total, 4 * 1024 * 1024);
});

// ---- end to end -------------------------------------------------------------------------------------

const ROOT = process.getuid?.() === 0;
const MODULES = (dir: string) => `
[push]
\tpath = ${dir}/push
\tread only = no
[stored]
\tpath = ${dir}/stored
\tread only = no
\tdont compress = *
[nocompress]
\tpath = ${dir}/push
\tread only = no
\trefuse options = compress
`;
const HEAD = `reverse lookup = no\nuse chroot = no\n${ROOT ? 'uid = root\ngid = root\n' : ''}`;

let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;
/** rsyncd's own log: its per-transfer counters ("sent N bytes  received M bytes"). */
let theirLog: string;

test.before(async () => {
  ours = await startOurDaemon((dir) => HEAD + MODULES(dir));
  theirs = await startDaemonWithConfig((dir) => `${HEAD}log file = ${dir}/rsyncd.log\n${MODULES(dir)}`);
  theirLog = join(theirs.dir, 'rsyncd.log');
  for (const dir of [ours.dir, theirs.dir]) for (const m of ['push', 'stored']) await mkdir(join(dir, m));
  work = await mkdtemp(join(tmpdir(), 'lsyncd-compress-zstd-test-'));
});

test.after(async () => {
  await ours?.stop();
  await theirs?.stop();
  await rm(work, { recursive: true, force: true });
});


/** A stale copy of the source for a pull: two files that differ, so deltas travel. */
async function staleCopy(src: string, dest: string): Promise<void> {
  await run('rsync', ['-a', `${src}/`, `${dest}/`]);
  await writeFile(join(dest, 'text.txt'), lines(6001));
  await writeFile(join(dest, 'random.bin'), pseudoRandom(200_001, 5));
}

const STOCK: Array<{ name: string; args: string[] }> = [
  { name: 'zstd', args: ['--zc=zstd'] },
  { name: 'zstd-l19', args: ['--zc=zstd', '--compress-level=19'] },
  { name: 'zstd-neg', args: ['--zc=zstd', '--zl=-7'] },
  { name: 'lz4', args: ['--zc=lz4'] },
  { name: 'z', args: ['-z'] },
  { name: 'z-p30', args: ['-z', '--protocol=30'] },
  { name: 'lz4-p29', args: ['--zc=lz4', '--protocol=29'] },
];

for (const c of STOCK) {
  test(`stock rsync ${c.args.join(' ')}: push (initial, delta) into and pull from lsyncd serve land as with rsyncd`, async () => {
    const src = join(work, `src-${c.name}`);
    await makeCompressSource(src, { repeat: true });
    const push = async () => {
      const o = await run('rsync', ['-a', '--stats', ...c.args, `${src}/`, url(ours, `push/${c.name}/`)]);
      const t = await run('rsync', ['-a', '--stats', ...c.args, `${src}/`, url(theirs, `push/${c.name}/`)]);
      assert.is(o.status, 0, shown(o));
      assert.is(t.status, 0, shown(t));
      await assertSameTrees(join(theirs.dir, 'push', c.name), join(ours.dir, 'push', c.name), `push ${c.args.join(' ')}`);
      await assertSameTrees(src, join(ours.dir, 'push', c.name), 'the source');
      return [o, t] as const;
    };
    const [first] = await push();
    assert.ok(statCount(first, 'Total bytes sent') < 400_000, `compressed: ${shown(first)}`);
    await editCompressSource(src);
    const [delta] = await push();
    assert.ok(statCount(delta, 'Matched data') > 200_000, shown(delta));
    for (const [d, tag] of [[ours, 'o'], [theirs, 't']] as const) {
      const dest = join(work, `pull-${c.name}-${tag}`);
      await staleCopy(src, dest);
      const r = await run('rsync', ['-a', '-I', '--stats', ...c.args, url(d, `push/${c.name}/`), `${dest}/`]);
      assert.is(r.status, 0, shown(r));
      await assertSameTrees(src, dest, `pull ${c.args.join(' ')} from ${tag}`);
    }
  });
}

test("Debian 12's rsync 3.2.7 (its list: zstd lz4 zlibx zlib none) -z, --zc=zstd, --zc=lz4: push and pull with lsyncd serve land as with rsyncd", async () => {
  const old = await oldRsync();
  const version = await run(old, ['--version']);
  assert.match(version.stdout.toString(), /Compress list:\s+zstd lz4 zlibx zlib none/);
  for (const [name, args] of [['old-z', ['-z']], ['old-zstd', ['--zc=zstd']], ['old-lz4', ['--zc=lz4']]] as const) {
    const src = join(work, `src-${name}`);
    await makeCompressSource(src, { repeat: true });
    for (const step of [0, 1]) {
      if (step === 1) await editCompressSource(src);
      for (const d of [ours, theirs]) {
        const r = await run(old, ['-a', ...args, `${src}/`, url(d, `push/${name}/`)]);
        assert.is(r.status, 0, shown(r));
      }
      await assertSameTrees(join(theirs.dir, 'push', name), join(ours.dir, 'push', name), `3.2.7 ${args.join(' ')} push ${step}`);
    }
    const dest = join(work, `pull-${name}`);
    await staleCopy(src, dest);
    const r = await run(old, ['-a', '-I', ...args, url(ours, `push/${name}/`), `${dest}/`]);
    assert.is(r.status, 0, shown(r));
    await assertSameTrees(src, dest, `3.2.7 ${args.join(' ')} pull`);
  }
});

test('stock rsync -z with lsyncd serve negotiates zstd both ways (push and pull), as with rsyncd', async () => {
  const src = join(work, 'src-nstr');
  await makeCompressSource(src, { repeat: true });
  for (const d of [ours, theirs]) {
    const p = await run('rsync', ['-a', '-z', '--debug=NSTR', `${src}/`, url(d, 'push/nstr/')]);
    assert.is(p.status, 0, shown(p));
    assert.match(p.stdout.toString(), /negotiated compress: zstd/);
    const q = await run('rsync', ['-a', '-z', '--debug=NSTR', url(d, 'push/nstr/'), join(work, `nstr-pull-${d.port}/`)]);
    assert.is(q.status, 0, shown(q));
    assert.match(q.stdout.toString(), /negotiated compress: zstd/);
  }
});

test("a module's `dont compress = *` and `refuse options = compress` treat zstd and lz4 as rsyncd does", async () => {
  const src = join(work, 'src-stored');
  await makeCompressSource(src, { repeat: true });
  for (const d of [ours, theirs]) {
    const r = await run('rsync', ['-a', `${src}/`, url(d, 'stored/')]);
    assert.is(r.status, 0, shown(r));
  }
  for (const choice of ['zstd', 'lz4']) {
    const bytes: number[] = [];
    for (const [d, tag] of [[ours, 'o'], [theirs, 't']] as const) {
      const dest = join(work, `stored-${choice}-${tag}`);
      const r = await run('rsync', ['-a', `--zc=${choice}`, '--stats', url(d, 'stored/'), `${dest}/`]);
      assert.is(r.status, 0, shown(r));
      await assertSameTrees(src, dest, `stored pull from ${tag}`);
      bytes.push(statCount(r, 'Total bytes received'));
    }
    assert.ok(bytes[0]! <= bytes[1]! * 1.01, `${choice}: ours ${bytes[0]} vs rsyncd ${bytes[1]}`);
    const refused: Array<{ status: number | null; line: string }> = [];
    for (const d of [ours, theirs]) {
      const r = await run('rsync', ['-a', `--zc=${choice}`, `${src}/`, url(d, 'nocompress/refused/')]);
      assert.ok(r.status !== 0, shown(r));
      refused.push({ status: r.status, line: /rsync: (.*)/.exec(r.stderr)![1]! });
    }
    assert.equal(refused[0], refused[1], 'the same exit and words as rsyncd');
    assert.match(refused[0]!.line, /refuse --compress/);
  }
});

// ---- our client against rsyncd, wire bytes by the daemon's counters -------------------------------

/** rsyncd's counters of its transfers so far, in order: what it sent and received. */
async function daemonCounters(): Promise<Array<{ sent: number; received: number }>> {
  const text = await readFile(theirLog, 'utf8').catch(() => '');
  return [...text.matchAll(/sent (\d+) bytes\s+received (\d+) bytes/g)].map((m) => ({ sent: Number(m[1]), received: Number(m[2]) }));
}

/** Run `transfer`, then wait for rsyncd's log line of it (written as the connection ends). */
async function counted(transfer: () => Promise<RunResult>): Promise<{ result: RunResult; sent: number; received: number }> {
  const before = (await daemonCounters()).length;
  const result = await transfer();
  assert.is(result.status, 0, shown(result));
  for (let i = 0; i < 100; i++) {
    const now = await daemonCounters();
    if (now.length > before) return { result, ...now[before]! };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('rsyncd logged no counters for the transfer');
}

const RATIOS: string[] = [];
/** Per case: what the daemon received of our initial and delta pushes and of rsync's. */
const PUSHED = new Map<string, { ours: number[]; rsync: number[] }>();

for (const [label, args] of [
  ['none (the baseline: what differs outside the tokens)', []],
  ['zstd', ['--zc=zstd']],
  ['zstd level 19', ['--zc=zstd', '--compress-level=19']],
  ['zstd level -7', ['--zc=zstd', '--compress-level=-7']],
  ['lz4', ['--zc=lz4']],
  ['-z (negotiated: zstd)', ['-z']],
] as const) {
  test(`our client ${args.join(' ') || '(no -z)'} pushing to and pulling from rsyncd: trees as rsync's, the daemon's byte counts beside rsync's (${label})`, async () => {
    const tag = label.replace(/\W+/g, '-');
    const src = join(work, `csrc-${tag}`);
    await makeCompressSource(src, { repeat: true });
    const target = (who: string) => url(theirs, `push/client-${tag}-${who}/`);
    const pushed = { ours: [] as number[], rsync: [] as number[] };
    for (const step of [0, 1]) {
      if (step === 1) await editCompressSource(src);
      const o = await counted(() => lsyncd(['--once', ...args, `${src}/`, target('ours')]));
      const r = await counted(() => run('rsync', ['-rlpt', '--delete', ...args, `${src}/`, target('rsync')]));
      await assertSameTrees(src, join(theirs.dir, 'push', `client-${tag}-ours`), `our push step ${step}`);
      pushed.ours.push(o.received);
      pushed.rsync.push(r.received);
    }
    PUSHED.set(label, pushed);
    const pulled: number[] = [];
    for (const who of ['ours', 'rsync']) {
      const dest = join(work, `cpull-${tag}-${who}`);
      await staleCopy(src, dest);
      const r = await counted(() =>
        who === 'ours' ? lsyncd(['--once', '-I', ...args, target('rsync'), `${dest}/`]) : run('rsync', ['-rlpt', '-I', ...args, target('rsync'), `${dest}/`]),
      );
      await assertSameTrees(src, dest, `${who} pull`);
      pulled.push(r.sent);
    }
    const ratio = (a: number, b: number) => (a / b).toFixed(4);
    RATIOS.push(
      `${label}: initial push ${pushed.ours[0]}/${pushed.rsync[0]} = ${ratio(pushed.ours[0]!, pushed.rsync[0]!)}, ` +
        `delta push ${pushed.ours[1]}/${pushed.rsync[1]} = ${ratio(pushed.ours[1]!, pushed.rsync[1]!)}, ` +
        `pull (daemon sent) ${pulled[0]}/${pulled[1]} = ${ratio(pulled[0]!, pulled[1]!)}`,
    );
    const base = PUSHED.get('none (the baseline: what differs outside the tokens)')!;
    if (args.length) {
      // Our compressed data costs no more than rsync's: beyond what both spend outside the tokens
      // (the baseline's difference: arguments, lists), no byte more, initial and delta.
      for (const step of [0, 1]) {
        const extra = pushed.ours[step]! - pushed.rsync[step]!;
        const outside = base.ours[step]! - base.rsync[step]!;
        assert.ok(extra <= outside, `step ${step}: ours ${pushed.ours[step]} vs rsync ${pushed.rsync[step]}, outside the tokens ${outside}: ${RATIOS.at(-1)}`);
      }
      assert.ok(pushed.ours[0]! < 400_000, `compressed: ${RATIOS.at(-1)}`);
    }
  });
}

test('our -z against rsyncd negotiates zstd: its bytes are --zc=zstd\'s, not zlibx\'s', () => {
  const z = PUSHED.get('-z (negotiated: zstd)')!.ours[0]!;
  const named = PUSHED.get('zstd')!.ours[0]!;
  assert.ok(Math.abs(z - named) < 64, `-z ${z} vs --zc=zstd ${named}`);
});

test('without the libraries (LSYNCD_NO_ADDON=1) our -z offers zlibx and zlib only and still works; --zc=zstd fails with one clear line', async () => {
  const src = join(work, 'src-nolib');
  await makeCompressSource(src, { repeat: true });
  const env = { LSYNCD_NO_ADDON: '1', NODE_NO_WARNINGS: '1' };
  const z = await counted(() => lsyncd(['--once', '-z', `${src}/`, url(theirs, 'push/nolib-z/')], env));
  await assertSameTrees(src, join(theirs.dir, 'push', 'nolib-z'), 'no-lib -z push');
  const named = PUSHED.get('zstd')!.ours[0]!;
  assert.ok(Math.abs(z.received - named) > 1000, `zlibx ${z.received} is not zstd's ${named}`);
  const forced = await lsyncd(['--once', '--zc=zstd', `${src}/`, url(theirs, 'push/nolib-zstd/')], env);
  assert.is(forced.status, 4, shown(forced));
  // One line says what and why (then the usual exit-code line, as for every error).
  const said = forced.stderr.trim().split('\n');
  assert.is(said.filter((l) => l.includes('zstd')).length, 1, forced.stderr);
  assert.match(said[0]!, /^lsyncd: compress name zstd is not available here: the lsyncd addon is not loaded/);
  assert.match(said.at(-1)!, /\(code 4\)/);
});

test('the live mirror with --zc=lz4 and with -z: the startup sync and a live change land, compressed (rsyncd counts far fewer bytes than the tree holds)', async () => {
  for (const [name, args] of [['live-lz4', ['--zc=lz4']], ['live-z', ['-z']]] as const) {
    const src = join(work, `src-${name}`);
    await makeCompressSource(src, { repeat: true });
    const before = (await daemonCounters()).length;
    const child = spawn(process.execPath, [CLI, '--nodaemon', ...args, `${src}/`, url(theirs, `push/${name}/`)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    try {
      const dest = join(theirs.dir, 'push', name);
      assert.equal(await untilSameTree(src, dest, { timeoutMs: 20_000, ignore: ['uid', 'gid'] }), [], `startup sync: ${stderr}`);
      await writeFile(join(src, 'sub', 'live.txt'), lines(2000));
      assert.equal(await untilSameTree(src, dest, { timeoutMs: 20_000, ignore: ['uid', 'gid'] }), [], `live change: ${stderr}`);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    }
    const startup = (await daemonCounters())[before]!;
    // The tree is 695 kB of which 330 kB text and 160 kB its copy: compressed, well under 400 kB.
    assert.ok(startup.received < 400_000, `${name}: the startup push sent ${startup.received} bytes`);
  }
});

test('lsyncd serve without the libraries (LSYNCD_NO_ADDON=1) offers zlibx zlib none, as an rsyncd built without them: rsync -z gets zlibx, --zc=zstd is refused', async () => {
  const src = join(work, 'src-serve-nolib');
  await makeCompressSource(src, { repeat: true });
  const dir = join(work, 'serve-nolib');
  await mkdir(dir, { recursive: true });
  const config = join(dir, 'rsyncd.conf');
  await writeFile(config, `${HEAD}[m]\n\tpath = ${src}\n\tread only = yes\n`);
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--no-detach', '--config', config, '--address', '127.0.0.1', '--port', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LSYNCD_NO_ADDON: '1', NODE_NO_WARNINGS: '1' },
  });
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  try {
    const deadline = Date.now() + 10_000;
    while (!/listening on port/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(err, /listening on port/);
    const z = await run('rsync', ['-a', '-z', '--debug=NSTR', `rsync://127.0.0.1:${port}/m/`, join(dir, 'z/')]);
    assert.is(z.status, 0, shown(z));
    assert.match(z.stdout.toString(), /negotiated compress: zlibx/);
    await assertSameTrees(src, join(dir, 'z'), 'pulled with zlibx');
    const forced = await run('rsync', ['-a', '--zc=zstd', `rsync://127.0.0.1:${port}/m/`, join(dir, 'zstd/')]);
    assert.is(forced.status, 4, shown(forced));
    assert.match(forced.stderr, /unknown compress name: zstd/);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  }
});

test('ratios (for the report)', () => {
  for (const line of RATIOS) console.log(`  daemon byte counts ours/rsync — ${line}`);
  assert.is(RATIOS.length, 6);
});

test.run();
