// protocol/flist.ts: the sender's file list against what stock rsync 3.5.0 put on the wire
// (fixtures/captures: the client's list on pushes, the daemon's on pulls), at protocols 27-32;
// rsync's sort order; unusual names through the encoder and a small decoder.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, linkSync, writeFileSync, chownSync, lchownSync, utimesSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { startMultiplexIn } from '../protocol/mplex.js';
import { decodeVarint, decodeVarlong, varExtraBytes } from '../protocol/varint.js';
import { CF_ID0_NAMES, CF_SAFE_FLIST, CF_VARINT_FLIST_FLAGS } from '../protocol/compat.js';
import { compareFileEntries, sortFileList, type FileEntry, type FlistOptions } from '../protocol/flist.js';
import { sendFileList } from '../protocol/flist-packed-send.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from '../protocol/modes.js';
import {
  XMIT_EXTENDED_FLAGS,
  XMIT_HLINK_FIRST,
  XMIT_HLINKED,
  XMIT_LONG_NAME,
  XMIT_MOD_NSEC,
  XMIT_RDEV_MINOR_8_pre30,
  XMIT_SAME_DEV_pre30,
  XMIT_SAME_GID,
  XMIT_SAME_MODE,
  XMIT_SAME_NAME,
  XMIT_SAME_RDEV_MAJOR,
  XMIT_SAME_RDEV_pre28,
  XMIT_SAME_TIME,
  XMIT_SAME_UID,
} from '../protocol/constants.js';
import { memorySink, piecesSource } from './helpers/capture.js';
import { rsyncVersion } from './helpers/daemon.js';

const root = fileURLToPath(new URL('../../fixtures/captures/', import.meta.url));
const read = (name: string, file: string): Buffer => readFileSync(`${root}${name}/${file}`);
const decodedText = (name: string): string => read(name, 'decoded.txt').toString('utf8');

// ---------------------------------------------------------------------------------------------
// Capture plumbing: the logical (demultiplexed) stream of one direction, and the entries as the
// capture's decoded.txt lists them.

type Dir = 'c2s' | 's2c';

/** The data stream of one direction: MSG_DATA payloads when multiplexed, else the raw bytes after the args. */
async function dataStream(name: string, dir: Dir): Promise<Buffer> {
  const text = decodedText(name);
  const bytes = read(name, `${dir}.bin`);
  const frame = new RegExp(`^  ${dir} @(\\d+) frame`, 'm').exec(text);
  if (!frame) {
    // Protocol < 30 client: unmultiplexed, right after the newline-terminated args (empty line ends).
    assert.is(dir, 'c2s');
    const argsAt = Number(/^ {2}\[(\d+)\] args \(newline-terminated/m.exec(text)![1]);
    return bytes.subarray(bytes.indexOf('\n\n', argsAt) + 2);
  }
  const reader = new ByteReader(piecesSource(bytes.subarray(Number(frame[1]))));
  startMultiplexIn(reader, () => {});
  const parts: Buffer[] = [];
  for (;;) {
    const some = await reader.readSome(1 << 16);
    if (some === null) break;
    parts.push(Buffer.from(some));
  }
  return Buffer.concat(parts);
}

/** The decoded.txt section of the direction that carried the file list. */
function section(name: string, dir: Dir): string[] {
  const lines = decodedText(name).split('\n');
  const start = lines.findIndex((l) => l.startsWith(`== ${dir} data stream`));
  assert.ok(start >= 0, `${name}: no ${dir} data stream`);
  const end = lines.findIndex((l, i) => i > start && l.startsWith('== '));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Byte range of the file list in the data stream: first entry to the first ndx/NDX_DONE after it. */
function flistRange(lines: string[]): [number, number] {
  const at = (l: string) => Number(/^\s+\[(\d+)\]/.exec(l)![1]);
  const first = lines.findIndex((l) => /^\s+\[\d+\] xflags=/.test(l));
  const after = lines.findIndex((l, i) => i > first && /^\s+\[\d+\] (--|NDX_DONE)/.test(l));
  return [at(lines[first]!), at(lines[after]!)];
}

/**
 * The entries, in the order they were sent, rebuilt from decoded.txt. A field the line leaves
 * out (SAME_MODE, SAME_TIME, SAME_UID/GID, or not preserved) keeps the previous entry's value,
 * which starts at 0 as on the wire.
 */
function entriesOf(lines: string[]): FileEntry[] {
  const out: FileEntry[] = [];
  let mode = 0;
  let mtime = 0;
  let uid = 0;
  let gid = 0;
  for (const line of lines) {
    if (!/^\s+\[\d+\] xflags=/.test(line)) continue;
    const field = (key: string): string | undefined => new RegExp(` ${key}=(\\S+)`).exec(line)?.[1];
    const quoted = (key: string): string | undefined => new RegExp(` ${key}='([^']*)'`).exec(line)?.[1];
    if (field('mode') !== undefined) mode = parseInt(field('mode')!, 8);
    if (field('mtime') !== undefined) mtime = Number(field('mtime'));
    if (field('uid') !== undefined) uid = Number(field('uid'));
    if (field('gid') !== undefined) gid = Number(field('gid'));
    const entry: FileEntry = { name: Buffer.from(quoted('name')!, 'latin1'), mode, size: Number(field('size')), mtime, uid, gid };
    if (field('nsec') !== undefined) entry.mtimeNsec = Number(field('nsec'));
    if (quoted('symlink') !== undefined) entry.symlink = Buffer.from(quoted('symlink')!, 'latin1');
    if (field('csum') !== undefined) entry.checksum = Buffer.from(field('csum')!, 'hex');
    out.push(entry);
  }
  return out;
}

async function encode(entries: readonly FileEntry[], opts: FlistOptions): Promise<{ bytes: Buffer; msgIoError: number; sorted: FileEntry[] }> {
  const sink = memorySink();
  const writer = new ByteWriter(sink);
  const sent = sendFileList(writer, entries, opts);
  await writer.flush();
  return { bytes: sink.bytes(), ...sent };
}

const ROOT_NAMES = new Map<number, string>([[0, 'root']]);
const MODERN = 0x1fe; // what a 3.5.0 daemon answers a client without 'i' (no incremental recursion)
// -a = -rlptgoD
const ARCHIVE: Omit<FlistOptions, 'protocol' | 'compatFlags'> = {
  preserveUid: true,
  preserveGid: true,
  preserveLinks: true,
  preserveDevices: true,
  preserveSpecials: true,
  userNames: ROOT_NAMES,
  groupNames: ROOT_NAMES,
};

/** Assert our list is byte-for-byte the one in the capture. */
async function matchesCapture(name: string, dir: Dir, opts: FlistOptions, tweak?: (e: FileEntry[]) => void) {
  const lines = section(name, dir);
  const entries = entriesOf(lines);
  tweak?.(entries);
  const [from, to] = flistRange(lines);
  const expected = (await dataStream(name, dir)).subarray(from, to);
  const ours = await encode(entries, opts);
  assert.is(ours.bytes.toString('hex'), expected.toString('hex'), `${name}: file list bytes`);
  return { entries, ours, lines };
}

// ---------------------------------------------------------------------------------------------
// Golden bytes: the pushes (our role), protocol 32 down to 27.

test('push_initial_noinc (32): the reference push, uid/gid lists with id-0 names', async () => {
  const { ours, entries } = await matchesCapture('push_initial_noinc', 'c2s', { protocol: 32, compatFlags: MODERN, ...ARCHIVE });
  assert.is(entries.length, 5);
  assert.is(ours.msgIoError, 0);
  // The Appendix/§8.2 worked example, spelled out.
  assert.is(ours.bytes.subarray(0, 16).toString('hex'), '01012e00001065257d93ed4100000000');
  assert.is(ours.bytes.subarray(-14).toString('hex'), '0000' + '0004726f6f74'.repeat(2)); // marker+io_error, uid list, gid list
});

for (const protocol of [31, 30]) {
  test(`push_proto${protocol}: varint flags, varint ids, mtime varlong`, async () => {
    await matchesCapture(`push_proto${protocol}`, 'c2s', { protocol, compatFlags: MODERN, ...ARCHIVE });
  });
}

for (const protocol of [29, 27]) {
  test(`push_proto${protocol}: byte flags, int32 times/modes/ids, empty id lists, io_error trailer`, async () => {
    const { ours } = await matchesCapture(`push_proto${protocol}`, 'c2s', { protocol, compatFlags: 0, ...ARCHIVE });
    // id lists are just their int32 0 terminators (uid 0 is never listed), then io_error int32 0.
    assert.is(ours.bytes.subarray(-13).toString('hex'), '00' + '00000000' + '00000000' + '00000000');
  });
}

test('push_binary_delta (32, -rt): no uid/gid on the wire, no id lists', async () => {
  const { ours, entries } = await matchesCapture('push_binary_delta', 'c2s', { protocol: 32, compatFlags: MODERN });
  assert.is(entries.length, 2);
  assert.is(ours.bytes[0], 0x19); // TOP_DIR|SAME_UID|SAME_GID on the first entry when -o/-g are off
  assert.is(ours.bytes.subarray(-2).toString('hex'), '0000');
});

test('push_ndx_jump (32): 600 entries, name-prefix compression, XMIT_MOD_NSEC on "."', async () => {
  const { ours, entries } = await matchesCapture('push_ndx_jump', 'c2s', { protocol: 32, compatFlags: MODERN, ...ARCHIVE });
  assert.is(entries.length, 601);
  assert.is(entries[0]!.mtimeNsec, 278832658);
  assert.is(ours.bytes.readUInt16BE(0), 0xa001); // varint 0x2001 = TOP_DIR|MOD_NSEC
});

test('push_checksum_mode (32, -c): the 16-byte xxh128 after each regular file', async () => {
  const { entries } = await matchesCapture('push_checksum_mode', 'c2s', {
    protocol: 32,
    compatFlags: MODERN,
    ...ARCHIVE,
    alwaysChecksum: true,
    checksumLength: 16,
  });
  assert.is(entries.filter((e) => e.checksum).length, 2);
});

test('delete_missing_args_relative (32): mode-0 entry, io_error 2 in the end marker', async () => {
  // --delete-missing-args -dR: the missing file travels with mode 0 (SAME_MODE against the initial 0).
  const { ours } = await matchesCapture('delete_missing_args_relative', 'c2s', { protocol: 32, compatFlags: MODERN, ioError: 2 });
  assert.is(ours.bytes.subarray(-2).toString('hex'), '0002');
  assert.is(ours.msgIoError, 0);
});

// The same encoder is what a daemon sender runs: its lists on pulls are golden bytes too.
test('pull_proto29 / pull_proto27 (daemon sender): 25 entries with prefix compression', async () => {
  for (const protocol of [29, 27]) {
    await matchesCapture(`pull_proto${protocol}`, 's2c', { protocol, compatFlags: 0, ...ARCHIVE });
  }
});

test('module_contents_listing (32, -d): XMIT_NO_CONTENT_DIR on the dirs below the top', async () => {
  await matchesCapture('module_contents_listing', 's2c', { protocol: 32, compatFlags: MODERN }, (entries) => {
    for (const e of entries) if ((e.mode & S_IFMT) === S_IFDIR && e.name.toString() !== '.') e.contentDir = false;
  });
});

// ---------------------------------------------------------------------------------------------
// End marker, io_error and id lists beyond what the captures show (§8.3, write_end_of_flist).

const one: FileEntry[] = [{ name: Buffer.from('f'), mode: S_IFREG | 0o644, size: 1, mtime: 1, uid: 1000, gid: 100 }];

test('io_error: in the marker when safe, as MSG_IO_ERROR at 30 without CF_SAFE_FLIST, int32 below 30', async () => {
  // Everything after the one entry (no -o/-g here, so no id lists follow the marker).
  const tail = async (opts: FlistOptions) => {
    const plain = await encode(one, { ...opts, ioError: 0 });
    const varint = opts.protocol >= 30 && (opts.compatFlags & CF_VARINT_FLIST_FLAGS) !== 0;
    const entryLength = plain.bytes.length - (varint ? 2 : 1) - (opts.protocol < 30 ? 4 : 0);
    const withErr = await encode(one, opts);
    assert.ok(withErr.bytes.subarray(0, entryLength).equals(plain.bytes.subarray(0, entryLength)));
    return { hex: withErr.bytes.subarray(entryLength).toString('hex'), msg: withErr.msgIoError };
  };
  assert.equal(await tail({ protocol: 32, compatFlags: MODERN, ioError: 1 }), { hex: '0001', msg: 0 });
  // Safe (>= 31) without varint flags: short XMIT_EXTENDED_FLAGS|XMIT_IO_ERROR_ENDLIST, varint io_error.
  assert.equal(await tail({ protocol: 31, compatFlags: 0, ioError: 3 }), { hex: '041003', msg: 0 });
  assert.equal(await tail({ protocol: 30, compatFlags: CF_SAFE_FLIST, ioError: 3 }), { hex: '041003', msg: 0 });
  assert.equal(await tail({ protocol: 30, compatFlags: 0, ioError: 3 }), { hex: '00', msg: 3 });
  assert.equal(await tail({ protocol: 29, compatFlags: 0, ioError: 2 }), { hex: '0002000000', msg: 0 });
  assert.equal(await tail({ protocol: 29, compatFlags: 0, ioError: 2, ignoreErrors: true }), { hex: '0000000000', msg: 0 });
});

test('id lists: named non-zero ids newest first, unnamed ones left out, id-0 name, numeric ids', async () => {
  const entries: FileEntry[] = [
    { name: Buffer.from('.'), mode: S_IFDIR | 0o755, size: 4096, mtime: 5, uid: 0, gid: 0 },
    { name: Buffer.from('a'), mode: S_IFREG | 0o644, size: 1, mtime: 5, uid: 1000, gid: 100 },
    { name: Buffer.from('b'), mode: S_IFREG | 0o644, size: 1, mtime: 5, uid: 1001, gid: 100 },
    { name: Buffer.from('c'), mode: S_IFREG | 0o644, size: 1, mtime: 5, uid: 1000, gid: 4242 },
  ];
  const opts: FlistOptions = {
    protocol: 32,
    compatFlags: CF_VARINT_FLIST_FLAGS | CF_ID0_NAMES,
    preserveUid: true,
    preserveGid: true,
    userNames: new Map([[0, 'root'], [1000, 'alice'], [1001, 'bob']]),
    groupNames: new Map([[100, 'users']]),
  };
  const full = (await encode(entries, opts)).bytes;
  assert.ok(full.toString('hex').endsWith('0000' + '83e903626f62' + '83e805616c696365' + '0004726f6f74' + '64057573657273' + '0000'));
  const numeric = (await encode(entries, { ...opts, numericIds: true })).bytes;
  assert.is(numeric.length, full.length - (6 + 8 + 6 + 7 + 2));
  assert.ok(numeric.toString('hex').endsWith('0000'));
  // Without CF_ID0_NAMES the terminator is a bare 0.
  const old = (await encode(entries, { ...opts, compatFlags: CF_VARINT_FLIST_FLAGS })).bytes;
  assert.ok(old.toString('hex').endsWith('0000' + '83e903626f62' + '83e805616c696365' + '00' + '6405757365727300'));
});

// ---------------------------------------------------------------------------------------------
// Sorting (f_name_cmp): checked against the ndx the real peers used, and rsync 3.5.0's own order.

/** For every `snd ndx=N` followed by `literal L bytes`, the file at sorted[N] must be L bytes long. */
function literalSizes(lines: string[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let ndx = -1;
  for (const l of lines) {
    const n = /snd ndx=(\d+)/.exec(l);
    if (n) ndx = Number(n[1]);
    const lit = /literal (\d+) bytes/.exec(l);
    if (lit && ndx >= 0) out.push([ndx, Number(lit[1])]);
  }
  return out;
}

test('sort: the indexes the captured sessions used', () => {
  for (const [name, dir, protocol] of [
    ['push_initial_noinc', 'c2s', 32],
    ['pull_proto29', 's2c', 29],
    ['pull_proto27', 's2c', 27],
  ] as const) {
    const lines = section(name, dir);
    const sorted = sortFileList(entriesOf(lines), protocol);
    const pairs = literalSizes(lines);
    assert.ok(pairs.length >= 2, name);
    for (const [ndx, size] of pairs) {
      assert.is((sorted[ndx]!.mode & S_IFMT) === S_IFREG && sorted[ndx]!.size, size, `${name} ndx ${ndx}`);
    }
  }
  // §8.4's verified order for the pulled module.
  const pulled = sortFileList(entriesOf(section('pull_proto29', 's2c')), 29).map((e) => e.name.toString());
  assert.equal(pulled.slice(0, 9), ['.', 'a.txt', 'link', 'p27', 'p27/a.txt', 'p27/link', 'p27/sub', 'p27/sub/b.txt', 'p29']);
  assert.equal(pulled.slice(-2), ['sub', 'sub/b.txt']);

  // push_ndx_jump: the generator asked for ndx 2 and 521: the two files rewritten with a newer mtime.
  const jump = section('push_ndx_jump', 'c2s');
  const sorted = sortFileList(entriesOf(jump), 32);
  const asked = jump.flatMap((l) => /snd ndx=(\d+)/.exec(l)?.[1] ?? []).map(Number);
  assert.equal(asked, [2, 521]);
  const newer = sorted.flatMap((e, i) => (e.mtime === 1706832000 ? [i] : []));
  assert.equal(newer, asked);
  assert.equal([sorted[2]!.name.toString(), sorted[521]!.name.toString()], ['f001.txt', 'f520.txt']);
});

test('sort: files before dirs at each level (the module listing rsync printed)', () => {
  const entries = entriesOf(section('module_contents_listing', 's2c'));
  const stdout = /--- client stdout\n([\s\S]*?)--- client stderr/.exec(read('module_contents_listing', 'client.txt').toString())![1]!;
  const listed = stdout
    .split('\n')
    .filter((l) => /^[dl-][rwx-]{9} /.test(l))
    .map((l) => l.split(' ').pop()!);
  assert.equal(sortFileList(entries, 32).map((e) => e.name.toString()), listed);
  assert.equal(listed.slice(0, 4), ['.', 'a.txt', 'link', 'bin']);
});

// A tree with '.', '-', '/', upper case, a space, UTF-8 and a non-UTF-8 byte. The expected orders
// are what rsync 3.5.0 printed for it with `rsync -r --list-only --protocol=N t/` (N = 32, 29:
// identical; N = 28, 27: identical).
const TRICKY_DIRS = ['.', 'a', 'a-b', 'ab', 'B', 'sub.d', 'a/x.d'];
const TRICKY_FILES = ['a/x', 'a-b/y', 'ab/c', 'sub.d/z', 'a.txt', 'a0', 'b', 'a b', '~', 'caf\xc3\xa9', '\xff', '.hidden', 'A', 'a/x.d/q', 'a/x-1'];
const tricky: FileEntry[] = [
  ...TRICKY_DIRS.map((n) => ({ name: Buffer.from(n, 'latin1'), mode: S_IFDIR | 0o755, size: 4096, mtime: 0, uid: 0, gid: 0 })),
  ...TRICKY_FILES.map((n) => ({ name: Buffer.from(n, 'latin1'), mode: S_IFREG | 0o644, size: 0, mtime: 0, uid: 0, gid: 0 })),
];

test('sort: protocol >= 29 (a dir compares as "name/", files first at each level)', () => {
  const expected = ['.', '.hidden', 'A', 'a b', 'a.txt', 'a0', 'b', 'caf\xc3\xa9', '~', '\xff', 'B', 'a-b', 'a-b/y', 'a', 'a/x', 'a/x-1', 'a/x.d', 'a/x.d/q', 'ab', 'ab/c', 'sub.d', 'sub.d/z'];
  for (const protocol of [29, 30, 31, 32]) {
    // Same result from any starting order.
    for (const input of [tricky, [...tricky].reverse()]) {
      assert.equal(sortFileList(input, protocol).map((e) => e.name.toString('latin1')), expected);
    }
  }
});

test('sort: protocol < 29 is plain byte order of the whole name', () => {
  const expected = ['.', '.hidden', 'A', 'B', 'a', 'a b', 'a-b', 'a-b/y', 'a.txt', 'a/x', 'a/x-1', 'a/x.d', 'a/x.d/q', 'a0', 'ab', 'ab/c', 'b', 'caf\xc3\xa9', 'sub.d', 'sub.d/z', '~', '\xff'];
  for (const protocol of [27, 28]) {
    assert.equal(sortFileList([...tricky].reverse(), protocol).map((e) => e.name.toString('latin1')), expected);
  }
});

test('compareFileEntries: antisymmetric, equal only for the same name', () => {
  for (const a of tricky) {
    for (const b of tricky) {
      const ab = Math.sign(compareFileEntries(a, b, 32));
      assert.is(ab, -Math.sign(compareFileEntries(b, a, 32)) || 0);
      assert.is(ab === 0, a === b);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Round trip through a small receiver (recv_file_entry's reading order), for what the captures
// cannot show: odd names, long names, devices, hard links, every protocol.

interface Decoded {
  xflags: number;
  name: Buffer;
  hlinkFrom?: number;
  size?: number;
  mtime?: number;
  nsec?: number;
  mode?: number;
  uid?: number;
  gid?: number;
  rdev?: [number, number];
  symlink?: Buffer;
  devIno?: [bigint, bigint];
  checksum?: Buffer;
}

async function decodeList(bytes: Buffer, opts: FlistOptions): Promise<{ entries: Decoded[]; rest: Buffer }> {
  const p = opts.protocol;
  const varint = p >= 30 && (opts.compatFlags & CF_VARINT_FLIST_FLAGS) !== 0;
  const r = new ByteReader(piecesSource(bytes));
  r.protocol = p;
  const out: Decoded[] = [];
  let prevName = Buffer.alloc(0);
  let mode = 0;
  const modes: number[] = [];
  const readLong = async (): Promise<bigint> => {
    const low = await r.readInt();
    return low === -1 ? (await r.readBuf(8)).readBigUInt64LE(0) : BigInt(low);
  };
  // varlong(4) as int64: the codec's reader refuses what does not fit 2^53, so a pre-1970 time
  // (9 bytes, two's complement) is read here.
  const readMtime = async (): Promise<number> => {
    const head = await r.readBuf(4);
    const record = Buffer.concat([head, await r.readBuf(varExtraBytes(head[0]!))]);
    return record.length === 9 ? Number(record.readBigInt64LE(1)) : decodeVarlong(record, 0, 4);
  };
  for (;;) {
    let xflags = varint ? await r.readVarint() : await r.readByte();
    if (xflags === 0) break;
    if (!varint && p >= 28 && xflags & XMIT_EXTENDED_FLAGS) xflags |= (await r.readByte()) << 8;
    const l1 = xflags & XMIT_SAME_NAME ? await r.readByte() : 0;
    const l2 = xflags & XMIT_LONG_NAME ? await r.readVarint30() : await r.readByte();
    const name = Buffer.concat([prevName.subarray(0, l1), await r.readBuf(l2)]);
    prevName = name;
    const d: Decoded = { xflags, name };
    out.push(d);
    if (p >= 30 && xflags & XMIT_HLINKED && !(xflags & XMIT_HLINK_FIRST)) {
      d.hlinkFrom = await r.readVarint();
      mode = modes[d.hlinkFrom]!; // the receiver takes the group's first entry's attributes
      modes.push(mode);
      continue;
    }
    d.size = await r.readVarlong30(3);
    if (!(xflags & XMIT_SAME_TIME)) d.mtime = p >= 30 ? await readMtime() : await r.readInt();
    if (xflags & XMIT_MOD_NSEC) d.nsec = await r.readVarint();
    if (!(xflags & XMIT_SAME_MODE)) mode = d.mode = await r.readInt();
    modes.push(mode);
    if (opts.preserveUid && !(xflags & XMIT_SAME_UID)) d.uid = await r.readVarint30();
    if (opts.preserveGid && !(xflags & XMIT_SAME_GID)) d.gid = await r.readVarint30();
    const type = mode & S_IFMT;
    const device = opts.preserveDevices && (type === S_IFCHR || type === S_IFBLK);
    const special = opts.preserveSpecials && (type === S_IFIFO || type === S_IFSOCK) && p < 31;
    if ((device || special) && p < 28) {
      if (!(xflags & XMIT_SAME_RDEV_pre28)) d.rdev = [await r.readInt(), -1]; // dev_t as int32
    } else if (device || special) {
      const major = xflags & XMIT_SAME_RDEV_MAJOR ? -1 : await r.readVarint30();
      const minor = p >= 30 ? await r.readVarint() : xflags & XMIT_RDEV_MINOR_8_pre30 ? await r.readByte() : await r.readInt();
      d.rdev = [major, minor];
    }
    if (opts.preserveLinks && type === S_IFLNK) d.symlink = await r.readBuf(await r.readVarint30());
    if (opts.preserveHardLinks && p < 30 && (p < 28 ? type === S_IFREG : xflags & XMIT_HLINKED)) {
      const dev = p >= 28 && xflags & XMIT_SAME_DEV_pre30 ? -1n : await readLong();
      d.devIno = [dev, await readLong()];
    }
    if (opts.alwaysChecksum && (type === S_IFREG || p < 28)) d.checksum = await r.readBuf(opts.checksumLength!);
  }
  const rest: Buffer[] = [];
  for (let some = await r.readSome(1 << 16); some; some = await r.readSome(1 << 16)) rest.push(Buffer.from(some));
  return { entries: out, rest: Buffer.concat(rest) };
}

const ODD_NAMES = [
  'new\nline',
  'tab\there and spaces  ',
  '\xff\xfe non-utf8 \x80',
  'x'.repeat(255),
  'x'.repeat(254) + 'y', // shares 254 bytes with the previous name
  'd/' + 'z'.repeat(255) + '/' + 'w'.repeat(255), // a 513-byte path: XMIT_LONG_NAME
  '-leading-dash',
  '\\back\\slash',
];

test('round trip: unusual names at every protocol and both flag encodings', async () => {
  const entries: FileEntry[] = [
    { name: Buffer.from('.'), mode: S_IFDIR | 0o755, size: 4096, mtime: 1_700_000_000, mtimeNsec: 5, uid: 0, gid: 0 },
    ...ODD_NAMES.map((n, i) => ({
      name: Buffer.from(n, 'latin1'),
      mode: S_IFREG | 0o600,
      size: i === 2 ? 5_000_000_000 : i, // > 4 GiB: a longint below 30, a wide varlong above
      mtime: 1_700_000_000 + (i % 2),
      uid: 1000,
      gid: 1000,
    })),
  ];
  for (const [protocol, compatFlags] of [[32, MODERN], [31, MODERN], [31, 0], [30, MODERN], [30, 0], [29, 0], [28, 0], [27, 0]] as const) {
    const opts: FlistOptions = { protocol, compatFlags, preserveUid: true, preserveGid: true };
    const { bytes } = await encode(entries, opts);
    const { entries: back, rest } = await decodeList(bytes, opts);
    const label = `protocol ${protocol} compat ${compatFlags}`;
    assert.equal(back.map((d) => d.name.toString('latin1')), ['.', ...ODD_NAMES], label);
    assert.equal(back.map((d) => d.size), entries.map((e) => e.size), label);
    assert.is(back[0]!.nsec, protocol >= 31 ? 5 : undefined, label);
    assert.is(back[0]!.uid, 0, label);
    assert.is(back[1]!.uid, 1000, label);
    assert.is(back[6]!.xflags & XMIT_LONG_NAME, XMIT_LONG_NAME, label);
    assert.is(back[5]!.xflags & XMIT_SAME_NAME, XMIT_SAME_NAME, label);
    // What follows the marker: the io_error (varint marker form), the two id lists, and the int32 trailer below 30.
    const expectedRest = compatFlags & CF_VARINT_FLIST_FLAGS ? '00' + '0000' + '0000' : protocol < 30 ? '00000000'.repeat(3) : '0000';
    assert.is(rest.toString('hex'), expectedRest, label);
  }
});

test('round trip: symlinks, devices, fifos, hard links, -c, pre-1970 mtime', async () => {
  const entries: FileEntry[] = [
    { name: Buffer.from('.'), mode: S_IFDIR | 0o755, size: 4096, mtime: -86400, uid: 0, gid: 0 },
    { name: Buffer.from('blk'), mode: S_IFBLK | 0o660, size: 0, mtime: 1, uid: 0, gid: 6, rdev: { major: 8, minor: 1 } },
    { name: Buffer.from('chr'), mode: S_IFCHR | 0o666, size: 0, mtime: 1, uid: 0, gid: 5, rdev: { major: 8, minor: 300 } },
    { name: Buffer.from('fifo'), mode: S_IFIFO | 0o644, size: 0, mtime: 1, uid: 0, gid: 0 },
    { name: Buffer.from('h1'), mode: S_IFREG | 0o644, size: 3, mtime: 2, uid: 0, gid: 0, hardlink: { dev: 66, ino: 7 }, checksum: Buffer.alloc(16, 1) },
    { name: Buffer.from('h2'), mode: S_IFREG | 0o644, size: 3, mtime: 2, uid: 0, gid: 0, hardlink: { dev: 66, ino: 7 }, checksum: Buffer.alloc(16, 1) },
    { name: Buffer.from('i'), mode: S_IFREG | 0o644, size: 1, mtime: 2, uid: 0, gid: 0, checksum: Buffer.alloc(16, 3) },
    { name: Buffer.from('l'), mode: S_IFLNK | 0o777, size: 2, mtime: 2, uid: 0, gid: 0, symlink: Buffer.from('h1') },
    { name: Buffer.from('r'), mode: S_IFREG | 0o644, size: 3, mtime: 2, uid: 0, gid: 0, hardlink: { dev: 66n, ino: 2n ** 60n }, checksum: Buffer.alloc(16, 2) },
  ];
  for (const protocol of [32, 30, 29, 28]) {
    const opts: FlistOptions = {
      protocol,
      compatFlags: protocol >= 30 ? MODERN : 0,
      preserveUid: true,
      preserveGid: true,
      preserveLinks: true,
      preserveDevices: true,
      preserveSpecials: true,
      preserveHardLinks: true,
      alwaysChecksum: true,
      checksumLength: 16,
    };
    const { bytes } = await encode(entries, opts);
    const { entries: back } = await decodeList(bytes, opts);
    const label = `protocol ${protocol}`;
    assert.equal(back.map((d) => d.name.toString()), entries.map((e) => e.name.toString()), label);
    if (protocol >= 30) assert.is(back[0]!.mtime, -86400, label);
    assert.equal(back[1]!.rdev, [8, 1], label);
    assert.equal(back[2]!.rdev, [-1, 300], label); // same major: not sent again
    assert.is(back[1]!.xflags & XMIT_RDEV_MINOR_8_pre30, protocol < 30 ? XMIT_RDEV_MINOR_8_pre30 : 0, label);
    assert.is(back[2]!.xflags & XMIT_RDEV_MINOR_8_pre30, 0, label);
    assert.equal(back[3]!.rdev, protocol < 31 ? [-1, 0] : undefined, label); // fifo: a dummy rdev below 31
    assert.equal(back[6]!.checksum, Buffer.alloc(16, 3), label); // SAME_MODE after an abbreviated entry
    assert.equal(back[7]!.symlink?.toString(), 'h1', label);
    assert.equal(back[4]!.checksum, Buffer.alloc(16, 1), label);
    if (protocol >= 30) {
      assert.is(back[4]!.xflags & (XMIT_HLINKED | XMIT_HLINK_FIRST), XMIT_HLINKED | XMIT_HLINK_FIRST, label);
      assert.is(back[5]!.hlinkFrom, 4, label); // abbreviated: points at h1's position in the list
      assert.is(back[5]!.size, undefined, label);
      assert.is(back[8]!.xflags & XMIT_HLINK_FIRST, XMIT_HLINK_FIRST, label);
    } else {
      assert.equal(back[4]!.devIno, [67n, 7n], label); // dev travels + 1
      assert.equal(back[5]!.devIno, [-1n, 7n], label); // XMIT_SAME_DEV_pre30
      assert.equal(back[8]!.devIno, [-1n, 2n ** 60n], label);
      assert.equal(back[8]!.checksum, Buffer.alloc(16, 2), label);
    }
  }
});

test('flag-byte rules: zero flags never look like the end marker', async () => {
  // Second entry equal in everything but name and no shared prefix: all SAME_* bits are set, so
  // force a case with no bits: a first entry that is a regular file with mode/time/ids != 0.
  const e: FileEntry[] = [{ name: Buffer.from('f'), mode: S_IFREG | 0o644, size: 1, mtime: 9, uid: 0, gid: 0 }];
  assert.is((await encode(e, { protocol: 32, compatFlags: MODERN })).bytes[0], 0x18);
  const bare = { protocol: 29, compatFlags: 0, preserveUid: true, preserveGid: true };
  // uid/gid sent (first entry), nothing shared: 0 → XMIT_TOP_DIR as filler at 28+ ...
  assert.is((await encode(e, bare)).bytes[0], 0x01);
  assert.is((await encode(e, { ...bare, protocol: 27 })).bytes[0], 0x01);
  // ... and a dir at 27 gets XMIT_LONG_NAME (an int32 length) instead.
  const d: FileEntry[] = [{ name: Buffer.from('d'), mode: S_IFDIR | 0o755, size: 1, mtime: 9, uid: 0, gid: 0 }];
  assert.is((await encode(d, { ...bare, protocol: 27 })).bytes.subarray(0, 6).toString('hex'), '400100000064');
  // A dir at 28/29 with no flags: two bytes, XMIT_EXTENDED_FLAGS set.
  assert.is((await encode(d, bare)).bytes.subarray(0, 2).toString('hex'), '0400');
  // Varint flags: zero becomes XMIT_EXTENDED_FLAGS.
  assert.is((await encode(d, { ...bare, protocol: 32, compatFlags: MODERN })).bytes[0], 0x04);
});

const isRange = (e: unknown): boolean => e instanceof RangeError;

test('refuses what the daemon would reject or misread', () => {
  const w = new ByteWriter(memorySink());
  const base: FlistOptions = { protocol: 32, compatFlags: MODERN };
  const f = (name: string, mode = S_IFREG | 0o644): FileEntry => ({ name: Buffer.from(name, 'latin1'), mode, size: 0, mtime: 0, uid: 0, gid: 0 });
  for (const bad of ['', '/abs', 'a/../b', '..', 'a//b', 'trail/', './a', 'a/.', 'nul\0', 'x'.repeat(4096)]) {
    assert.throws(() => sendFileList(w, [f(bad)], base), isRange, JSON.stringify(bad));
  }
  assert.throws(() => sendFileList(w, [f('.')], base), isRange); // '.' must be a dir
  assert.throws(() => sendFileList(w, [f('a'), f('a')], base), isRange); // duplicate
  assert.throws(() => sendFileList(w, [f('l', S_IFLNK | 0o777)], { ...base, preserveLinks: true }), isRange);
  assert.throws(() => sendFileList(w, [f('c', S_IFCHR | 0o600)], { ...base, preserveDevices: true }), isRange);
  assert.throws(() => sendFileList(w, [{ ...f('r'), checksum: Buffer.alloc(8) }], { ...base, alwaysChecksum: true, checksumLength: 16 }), isRange);
  assert.throws(() => sendFileList(w, [f('r')], { protocol: 27, compatFlags: 0, preserveHardLinks: true }), isRange);
  assert.throws(() => sendFileList(w, [f('r')], { protocol: 26, compatFlags: 0 }), isRange);
  assert.throws(() => sendFileList(w, [f('r')], { protocol: 32, compatFlags: MODERN | 1 }), isRange);
  assert.is(w.pending, 0); // nothing written when the list is refused
});

// ---------------------------------------------------------------------------------------------
// Live cross-check against the installed rsync: its batch file (--only-write-batch) records the
// sender's stream unmultiplexed, after a small header (int32 stream flags, int32 protocol, varint
// compat flags at >= 30, int32 seed). We rebuild the entries from lstat in the order rsync sent
// them and compare bytes: hard links, devices, fifos, long names and prefixes, > 4 GiB, pre-1970
// and nanosecond mtimes, named and unnamed ids, every protocol the binary speaks.

function idNames(file: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = line.split(':');
    if (f.length > 2 && !names.has(Number(f[2]))) names.set(Number(f[2]), f[0]!);
  }
  return names;
}

function makeLiveTree(src: string, asRoot: boolean): void {
  const at = (name: string) => join(src, name);
  mkdirSync(src);
  writeFileSync(at('a'), 'hi\n');
  linkSync(at('a'), at('b'));
  mkdirSync(at('sub'));
  writeFileSync(at('sub/c'), 'x\n');
  linkSync(at('sub/c'), at('sub/d'));
  linkSync(at('a'), at('sub/e'));
  symlinkSync('a', at('link'));
  symlinkSync('t'.repeat(300), at('longlink'));
  const deep = 'p'.repeat(200);
  mkdirSync(at(deep));
  writeFileSync(at(`${deep}/${'q'.repeat(100)}1`), '');
  writeFileSync(at(`${deep}/${'q'.repeat(100)}2`), '');
  writeFileSync(at('n'.repeat(255)), '');
  writeFileSync(at('new\nline'), '');
  writeFileSync(Buffer.from(`${src}/\xff\xfe`, 'latin1'), '');
  writeFileSync(at('big'), '');
  truncateSync(at('big'), 5 * 2 ** 30); // sparse: > 4 GiB without the disk space
  utimesSync(at('sub/c'), 1704164645.123456, 1704164645.123456);
  utimesSync(at('a'), -315619200, -315619200); // 1960
  if (spawnSync('mkfifo', [at('fifo')]).status !== 0) throw new Error('mkfifo failed');
  if (asRoot) {
    for (const [name, kind, major, minor] of [['chr', 'c', 1, 3], ['blk', 'b', 8, 300], ['blk2', 'b', 259, 1]] as const) {
      if (spawnSync('mknod', [at(name), kind, String(major), String(minor)]).status !== 0) throw new Error('mknod failed');
    }
    chownSync(at('a'), 1234, 4321); // no names for these
    chownSync(at('new\nline'), 2, 2);
    lchownSync(at('link'), 1, 1);
  }
}

test('live: byte-identical to the installed rsync sender at every protocol it speaks', async () => {
  const { protocol: newest } = rsyncVersion();
  const versionText = spawnSync('rsync', ['--version'], { encoding: 'utf8' }).stdout;
  const asRoot = process.getuid?.() === 0;
  const work = mkdtempSync(join(tmpdir(), 'lsyncd-flist-'));
  try {
    const src = join(work, 'src');
    makeLiveTree(src, asRoot);
    mkdirSync(join(work, 'dst'));
    const users = idNames('/etc/passwd');
    const groups = idNames('/etc/group');
    const variants: Array<{ args: string[]; opts: Partial<FlistOptions> }> = [
      { args: ['-aH'], opts: {} },
      { args: ['-aHc', '--exclude=big'], opts: { alwaysChecksum: true } }, // (reading 5 GiB of zeros takes a while)
      { args: ['-aH', '--numeric-ids'], opts: { numericIds: true } },
      { args: ['-rlptDH'], opts: { preserveUid: false, preserveGid: false } },
    ];
    let checked = 0;
    for (let protocol = 27; protocol <= Math.min(32, newest); protocol++) {
      for (const { args, opts: extra } of variants) {
        const batch = join(work, `batch-${protocol}-${checked}`);
        const run = spawnSync('rsync', [...args, '--no-inc-recursive', '--existing', `--protocol=${protocol}`, `--only-write-batch=${batch}`, `${src}/`, `${join(work, 'dst')}/`]);
        assert.is(run.status, 0, `rsync ${args.join(' ')} --protocol=${protocol}: ${run.stderr}`);
        const bytes = readFileSync(batch);
        assert.is(bytes.readInt32LE(4), protocol);
        let at = 12;
        let compatFlags = 0;
        if (protocol >= 30) {
          compatFlags = decodeVarint(bytes, 8);
          at = 8 + 1 + varExtraBytes(bytes[8]!) + 4;
        }
        // Digest of -c: md4 below 30; above, the first of rsync's list this binary has.
        const checksumLength = protocol < 30 || /xxh128|md5/.test(versionText.split(/xxh64|xxhash/)[0]!) ? 16 : 8;
        const opts: FlistOptions = {
          protocol,
          compatFlags,
          ...ARCHIVE,
          preserveHardLinks: true,
          userNames: users,
          groupNames: groups,
          checksumLength,
          ...extra,
        };
        const label = `rsync ${args.join(' ')} --protocol=${protocol}`;
        const { entries: sent } = await decodeList(bytes.subarray(at), opts);
        const entries = sent.map((d): FileEntry => {
          const path = Buffer.concat([Buffer.from(`${src}/`), d.name]);
          const st = lstatSync(path, { bigint: true });
          const mode = Number(st.mode);
          const type = mode & S_IFMT;
          const ns = st.mtimeNs;
          const sec = ns >= 0n ? ns / 1_000_000_000n : -((-ns + 999_999_999n) / 1_000_000_000n);
          const e: FileEntry = { name: d.name, mode, size: Number(st.size), mtime: Number(sec), mtimeNsec: Number(ns - sec * 1_000_000_000n), uid: Number(st.uid), gid: Number(st.gid) };
          if (type === S_IFLNK) e.symlink = readlinkSync(path, { encoding: 'buffer' });
          if (type === S_IFCHR || type === S_IFBLK) {
            const rd = st.rdev; // glibc's dev_t packing
            e.rdev = { major: Number(((rd >> 8n) & 0xfffn) | ((rd >> 32n) & ~0xfffn)), minor: Number((rd & 0xffn) | ((rd >> 12n) & ~0xffn)) };
          }
          if (protocol < 28 ? type === S_IFREG : type !== S_IFDIR && st.nlink > 1n) e.hardlink = { dev: st.dev, ino: st.ino };
          if (d.checksum) e.checksum = d.checksum; // its value is the digest module's business; here only its place
          return e;
        });
        assert.ok(entries.length >= 17, label);
        const ours = (await encode(entries, opts)).bytes;
        assert.is(ours.toString('hex'), bytes.subarray(at, at + ours.length).toString('hex'), label);
        checked++;
      }
    }
    assert.ok(checked >= 16);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test.run();
