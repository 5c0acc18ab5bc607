// protocol/flist-recv.ts: the file lists stock rsync 3.5.0 put on the wire (fixtures/captures: the
// daemon's on pulls and listings, the client's on pushes) decoded at protocols 27-32, every
// segmentation; round trips against sendFileList at every protocol with a varied tree; hostile
// lists (a real capture's bytes edited, or a scripted peer written with our encoder): each a
// typed error.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { startMultiplexIn } from '../protocol/mplex.js';
import { CF_ID0_NAMES, CF_SAFE_FLIST } from '../protocol/compat.js';
import { ProtocolError, UnsafeNameError, ConnectionClosedError } from '../protocol/errors.js';
import { type FileEntry, type FlistOptions } from '../protocol/flist.js';
import { sendFileList } from '../protocol/flist-packed-send.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK } from '../protocol/modes.js';
import { XMIT_HLINKED, XMIT_LONG_NAME, XMIT_SAME_GID, XMIT_SAME_UID } from '../protocol/constants.js';
import { checkReceivedName, receiveFileList, type FlistRecvOptions, type ReceivedEntry } from '../protocol/flist-recv.js';
import { byteAtATime, memorySink, piecesSource } from './helpers/capture.js';

const root = fileURLToPath(new URL('../../fixtures/captures/', import.meta.url));
const read = (name: string, file: string): Buffer => readFileSync(`${root}${name}/${file}`);
const decodedText = (name: string): string => read(name, 'decoded.txt').toString('utf8');

type Dir = 'c2s' | 's2c';

/** The demultiplexed data stream of one direction of a capture (multiplexed in every one used here). */
async function dataStream(name: string, dir: Dir): Promise<Buffer> {
  const text = decodedText(name);
  const frame = new RegExp(`^  ${dir} @(\\d+) frame`, 'm').exec(text);
  if (!frame) {
    // A client below protocol 30 does not multiplex: its data follows the newline-terminated args.
    const argsAt = Number(/^ {2}\[(\d+)\] args \(newline-terminated/m.exec(text)![1]);
    const bytes = read(name, `${dir}.bin`);
    return bytes.subarray(bytes.indexOf('\n\n', argsAt) + 2);
  }
  const reader = new ByteReader(piecesSource(read(name, `${dir}.bin`).subarray(Number(frame[1]))));
  startMultiplexIn(reader, () => {});
  const parts: Buffer[] = [];
  try {
    for (let some = await reader.readSome(1 << 16); some; some = await reader.readSome(1 << 16)) parts.push(Buffer.from(some));
  } catch {
    // error_pull_missing_path: the stream ends after a MSG_ERROR_XFER; what came before is the data
  }
  return Buffer.concat(parts);
}

function section(name: string, dir: Dir): string[] {
  const lines = decodedText(name).split('\n');
  const start = lines.findIndex((l) => l.startsWith(`== ${dir} data stream`));
  const end = lines.findIndex((l, i) => i > start && l.startsWith('== '));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Where the decoder says the list ended: the offset of the first record after it (or the end). */
function offsetAfterList(lines: string[], streamLength: number): number {
  const marker = lines.findIndex((l) => /end-of-flist/.test(l));
  const next = lines.find((l, i) => i > marker && /^\s+\[\d+\] /.test(l));
  return next ? Number(/\[(\d+)\]/.exec(next)![1]) : streamLength;
}

/** The session's options as the capture shows them: protocol, compat flags, the -e/short flags. */
function sessionOf(name: string): FlistRecvOptions {
  const text = decodedText(name);
  const protocol = Math.min(...[...text.matchAll(/greeting line '@RSYNCD: (\d+)\.0/g)].map((m) => Number(m[1])));
  const compat = /compat_flags varint = 0x([0-9a-f]+)/.exec(text);
  const args = /args \([^)]*\): \[(.*)\]/.exec(text)![1]!;
  const flags = /'(-[a-zA-Z]+)(?:e\.[A-Za-z]+)?'/.exec(args)![1]!;
  return {
    protocol,
    compatFlags: compat ? parseInt(compat[1]!, 16) : 0,
    preserveUid: flags.includes('o'),
    preserveGid: flags.includes('g'),
    preserveDevices: flags.includes('D'),
    preserveSpecials: flags.includes('D'),
    preserveLinks: flags.includes('l'),
    alwaysChecksum: flags.includes('c'),
    checksumLength: 16,
    recursive: flags.includes('r'),
  };
}

/** The entries as decoded.txt lists them, in the order sent (omitted fields carry over). */
function expectedEntries(lines: string[]): FileEntry[] {
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

/** The attributes a test compares, as plain data. */
function plain(e: FileEntry) {
  return {
    name: e.name.toString('latin1'),
    mode: e.mode.toString(8),
    size: e.size,
    mtime: e.mtime,
    nsec: e.mtimeNsec ?? 0,
    uid: e.uid,
    gid: e.gid,
    symlink: e.symlink?.toString('latin1'),
    checksum: e.checksum?.toString('hex'),
  };
}

const byWire = (files: ReceivedEntry[]) => [...files].sort((a, b) => a.wireIndex - b.wireIndex);

const CAPTURES: [string, Dir][] = [
  ['pull_initial', 's2c'],
  ['pull_delta', 's2c'],
  ['pull_delete', 's2c'],
  ['pull_proto30', 's2c'],
  ['pull_proto29', 's2c'],
  ['pull_proto27', 's2c'],
  ['module_contents_listing', 's2c'],
  ['error_pull_missing_path', 's2c'],
  ['push_initial_noinc', 'c2s'],
  ['push_checksum_mode', 'c2s'],
  ['push_binary_delta', 'c2s'],
  ['push_proto29', 'c2s'],
  ['push_proto27', 'c2s'],
];

test('decodes every captured list (protocols 27-32) as decoded.txt reads it, and stops where it ends', async () => {
  for (const [name, dir] of CAPTURES) {
    const opts = sessionOf(name);
    const lines = section(name, dir);
    const stream = await dataStream(name, dir);
    const reader = new ByteReader(piecesSource(stream));
    reader.protocol = opts.protocol;
    const list = await receiveFileList(reader, opts);
    assert.equal(byWire(list.files).map(plain), expectedEntries(lines).map(plain), `${name}: entries`);
    assert.is(reader.consumed, offsetAfterList(lines, stream.length), `${name}: bytes of the list`);
    assert.is(list.ioError, 0, name);
    assert.ok(list.files.every((f) => f.active), name);
    if (opts.preserveUid && opts.protocol >= 30) assert.equal(list.userNames.get(0)?.toString(), 'root', `${name}: id-0 name`);
  }
});

test('every segmentation of a real list gives the same result (pull_proto29, one byte per read)', async () => {
  const opts = sessionOf('pull_proto29');
  const stream = await dataStream('pull_proto29', 's2c');
  const whole = new ByteReader(piecesSource(stream));
  whole.protocol = 29;
  const expected = (await receiveFileList(whole, opts)).files.map(plain);
  const slow = new ByteReader(byteAtATime(stream));
  slow.protocol = 29;
  assert.equal((await receiveFileList(slow, opts)).files.map(plain), expected);
  const end = offsetAfterList(section('pull_proto29', 's2c'), stream.length);
  for (let cut = 1; cut < end; cut += 7) {
    const r = new ByteReader(piecesSource(stream, [cut, cut + 3]));
    r.protocol = 29;
    assert.equal((await receiveFileList(r, opts)).files.map(plain), expected, `cut at ${cut}`);
  }
});

test('sorted order is the ndx the daemon used: each whole-file literal matches files[ndx].size', async () => {
  for (const name of ['pull_initial', 'pull_proto30', 'pull_proto29', 'pull_proto27']) {
    const opts = sessionOf(name);
    const r = new ByteReader(piecesSource(await dataStream(name, 's2c')));
    r.protocol = opts.protocol;
    const { files } = await receiveFileList(r, opts);
    const lines = section(name, 's2c');
    let checked = 0;
    for (let i = 0; i < lines.length; i++) {
      const ndx = /snd ndx=(\d+)/.exec(lines[i]!);
      if (!ndx || !/count=0 /.test(lines[i + 1] ?? '')) continue;
      const literal = /literal (\d+) bytes/.exec(lines[i + 2]!)!;
      assert.is(files[Number(ndx[1])]!.size, Number(literal[1]), `${name} ndx ${ndx[1]}`);
      assert.is(files[Number(ndx[1])]!.mode & 0o170000, S_IFREG, `${name} ndx ${ndx[1]}`);
      checked++;
    }
    assert.ok(checked >= 2, `${name}: ${checked} transfers checked`);
  }
});

test('module_contents_listing: sorted names are the order rsync printed; dirs below the top are not content dirs', async () => {
  const opts = sessionOf('module_contents_listing');
  const r = new ByteReader(piecesSource(await dataStream('module_contents_listing', 's2c')));
  r.protocol = 32;
  const { files } = await receiveFileList(r, opts);
  const printed = /--- client stdout\n([\s\S]*?)--- client stderr/.exec(read('module_contents_listing', 'client.txt').toString())![1]!;
  const names = printed.split('\n').filter((l) => /^[-dl]r/.test(l)).map((l) => l.split(' ').pop());
  assert.equal(files.map((f) => f.name.toString()), names);
  assert.is(files[0]!.contentDir, true);
  assert.ok(files.filter((f) => f.name.toString() !== '.' && (f.mode & 0o170000) === S_IFDIR).every((f) => f.contentDir === false));
  assert.is(files.find((f) => f.name.toString() === 'link')!.symlink, undefined); // no -l: no target on the wire
});

// ---------------------------------------------------------------------------------------------
// Round trips against our own sender.

const MODERN = 0x1fe; // what a 3.5.0 daemon answers a client without 'i'

const TREE: FileEntry[] = [
  { name: Buffer.from('.'), mode: S_IFDIR | 0o755, size: 4096, mtime: 1_700_000_000, mtimeNsec: 7, uid: 0, gid: 0 },
  { name: Buffer.from('a dir'), mode: S_IFDIR | 0o700, size: 4096, mtime: -86400, uid: 1000, gid: 100 },
  { name: Buffer.from('a dir/f\nnew line'), mode: S_IFREG | 0o644, size: 5_000_000_000, mtime: 4_102_444_800, uid: 1000, gid: 100, checksum: Buffer.alloc(16, 9) },
  { name: Buffer.from('a dir/h1'), mode: S_IFREG | 0o600, size: 3, mtime: 2, uid: 1001, gid: 100, hardlink: { dev: 66, ino: 7 }, checksum: Buffer.alloc(16, 1) },
  { name: Buffer.from('a dir/h2'), mode: S_IFREG | 0o600, size: 3, mtime: 2, uid: 1001, gid: 100, hardlink: { dev: 66, ino: 7 }, checksum: Buffer.alloc(16, 1) },
  { name: Buffer.from('blk'), mode: S_IFBLK | 0o660, size: 0, mtime: 1, uid: 0, gid: 6, rdev: { major: 8, minor: 1 } },
  { name: Buffer.from('chr'), mode: S_IFCHR | 0o666, size: 0, mtime: 1, uid: 0, gid: 5, rdev: { major: 300, minor: 70000 } },
  { name: Buffer.from('fifo'), mode: S_IFIFO | 0o644, size: 0, mtime: 1, uid: 0, gid: 0 },
  { name: Buffer.from('sock'), mode: S_IFSOCK | 0o644, size: 0, mtime: 1, uid: 0, gid: 0 },
  { name: Buffer.from('l'), mode: S_IFLNK | 0o777, size: 9, mtime: 2, uid: 0, gid: 0, symlink: Buffer.from('../target') },
  { name: Buffer.from('\xff\xfe non-utf8 \x80', 'latin1'), mode: S_IFREG | 0o644, size: 1, mtime: 3, uid: 0, gid: 0, checksum: Buffer.alloc(16, 3) },
  { name: Buffer.from('d/' + 'z'.repeat(300) + '/' + 'w'.repeat(255)), mode: S_IFREG | 0o644, size: 1, mtime: 3, uid: 0, gid: 0, checksum: Buffer.alloc(16, 4) },
  { name: Buffer.from('d'), mode: S_IFDIR | 0o755, size: 4096, mtime: 3, uid: 0, gid: 0 },
  { name: Buffer.from('d/' + 'z'.repeat(300)), mode: S_IFDIR | 0o755, size: 4096, mtime: 3, uid: 0, gid: 0 },
  { name: Buffer.from('r'), mode: S_IFREG | 0o644, size: 3, mtime: 2, uid: 0, gid: 0, hardlink: { dev: 66n, ino: 2n ** 60n }, checksum: Buffer.alloc(16, 2) },
];

const NAMES = new Map<number, string>([[0, 'root'], [1000, 'alice'], [1001, 'bob'], [100, 'users'], [6, 'disk']]);

test('round trip: sendFileList → receiveFileList at every protocol 27-32, every flag encoding', async () => {
  const cases: [number, number][] = [[32, MODERN], [31, MODERN], [31, 0], [30, MODERN], [30, CF_SAFE_FLIST], [30, 0], [29, 0], [28, 0], [27, 0]];
  for (const [protocol, compatFlags] of cases) {
    for (const numericIds of [false, true]) {
      const label = `protocol ${protocol} compat 0x${compatFlags.toString(16)}${numericIds ? ' numeric' : ''}`;
      // Below 28 -H means dev/ino for every regular file.
      const tree = TREE.map((e) => (protocol < 28 && (e.mode & 0o170000) === S_IFREG && !e.hardlink ? { ...e, hardlink: { dev: 1, ino: e.name.length + 1000 } } : e));
      const send: FlistOptions = {
        protocol,
        compatFlags,
        preserveUid: true,
        preserveGid: true,
        preserveLinks: true,
        preserveDevices: true,
        preserveSpecials: true,
        preserveHardLinks: true,
        alwaysChecksum: true,
        checksumLength: 16,
        numericIds,
        userNames: NAMES,
        groupNames: NAMES,
        ioError: 1,
      };
      const sink = memorySink();
      const writer = new ByteWriter(sink);
      const sent = sendFileList(writer, tree, send);
      writer.writeInt(-1); // what follows the list must be left unread
      await writer.flush();
      const reader = new ByteReader(byteAtATime(sink.bytes()));
      reader.protocol = protocol;
      const got = await receiveFileList(reader, { ...send, recursive: true });
      assert.is(await reader.readInt(), -1, `${label}: stopped at the end of the list`);
      assert.is(reader.buffered, 0, label);

      const expected = sent.sorted.map((e) => {
        const p = plain(e);
        const type = e.mode & 0o170000;
        if (type === S_IFBLK || type === S_IFCHR || type === S_IFIFO || type === S_IFSOCK) p.size = 0;
        if (protocol < 31) p.nsec = 0;
        if (protocol < 30) p.mtime = e.mtime >>> 0; // 32 bits, read unsigned
        if (type !== S_IFREG) p.checksum = undefined;
        return p;
      });
      assert.equal(got.files.map(plain), expected, label);
      assert.equal(got.files.map((f) => f.rdev), sent.sorted.map((e) => e.rdev), `${label}: rdev`);
      // Hard-link groups: h1 and h2 together, r alone.
      const group = (n: string) => got.files.find((f) => f.name.toString() === n)!.hlinkGroup;
      assert.ok(group('a dir/h1') !== undefined && group('a dir/h1') === group('a dir/h2'), `${label}: h1/h2 grouped`);
      assert.ok(group('r') !== undefined && group('r') !== group('a dir/h1'), `${label}: r apart`);
      if (protocol < 30) assert.equal(got.files.find((f) => f.name.toString() === 'r')!.hardlink, { dev: 66n, ino: 2n ** 60n }, label);
      // io_error: in the marker when the list is safe, the trailer below 30; at 30 unsafe it is a message.
      assert.is(got.ioError, protocol === 30 && !(compatFlags & CF_SAFE_FLIST) ? 0 : 1, `${label}: io_error`);
      assert.is(sent.msgIoError, protocol === 30 && !(compatFlags & CF_SAFE_FLIST) ? 1 : 0, label);
      if (numericIds) {
        assert.is(got.userNames.size + got.groupNames.size, 0, label);
      } else {
        assert.equal(got.userNames.get(1000)?.toString(), 'alice', label);
        assert.equal(got.userNames.get(1001)?.toString(), 'bob', label);
        assert.equal(got.groupNames.get(100)?.toString(), 'users', label);
        assert.is(got.userNames.get(0)?.toString(), compatFlags & CF_ID0_NAMES ? 'root' : undefined, label);
      }
      assert.is(got.totalSize, tree.reduce((s, e) => s + ((e.mode & 0o170000) === S_IFREG || (e.mode & 0o170000) === S_IFLNK ? e.size : 0), 0), label);
    }
  }
});

test('round trip: without -o -g -l -D -H -c nothing extra is read; specials and devices keep their type', async () => {
  for (const protocol of [27, 28, 29, 30, 31, 32]) {
    const opts = { protocol, compatFlags: protocol >= 30 ? MODERN : 0 };
    const tree = TREE.map(({ hardlink: _h, checksum: _c, ...e }) => e);
    const sink = memorySink();
    const writer = new ByteWriter(sink);
    const sent = sendFileList(writer, tree, opts);
    await writer.flush();
    const reader = new ByteReader(piecesSource(sink.bytes()));
    reader.protocol = protocol;
    const got = await receiveFileList(reader, opts);
    assert.is(reader.buffered, 0, `protocol ${protocol}`);
    assert.equal(got.files.map((f) => f.name), sent.sorted.map((e) => e.name));
    assert.equal(got.files.map((f) => f.mode), sent.sorted.map((e) => e.mode));
    assert.ok(got.files.every((f) => f.uid === 0 && f.gid === 0 && f.symlink === undefined && f.hlinkGroup === undefined));
  }
});

// ---------------------------------------------------------------------------------------------
// Duplicates: rsync's flist_sort_and_clean.

async function roundTrip(entries: FileEntry[], protocol: number): Promise<ReceivedEntry[]> {
  // sendFileList refuses duplicate names, so the duplicate list is two lists sent back to back
  // with the first one's end marker dropped (the bytes a sender listing a name twice would write).
  const opts = { protocol, compatFlags: protocol >= 30 ? MODERN : 0 };
  const parts: Buffer[] = [];
  for (const e of entries) {
    const sink = memorySink();
    const w = new ByteWriter(sink);
    sendFileList(w, [e], opts);
    await w.flush();
    parts.push(sink.bytes());
  }
  const marker = protocol >= 30 ? 2 : 5; // varint 0 + io_error varint; byte 0 + the int32 io_error trailer
  const bytes = Buffer.concat(parts.map((p, i) => (i < parts.length - 1 ? p.subarray(0, p.length - marker) : p)));
  const reader = new ByteReader(piecesSource(bytes));
  reader.protocol = protocol;
  return (await receiveFileList(reader, opts)).files;
}

test('duplicates: the second of two names is cleared in place; a directory beats a file', async () => {
  const file = (name: string, size: number): FileEntry => ({ name: Buffer.from(name), mode: S_IFREG | 0o644, size, mtime: 5, uid: 0, gid: 0 });
  const dir = (name: string): FileEntry => ({ name: Buffer.from(name), mode: S_IFDIR | 0o755, size: 4096, mtime: 5, uid: 0, gid: 0 });
  for (const protocol of [27, 29, 30, 32]) {
    // (each single-entry list starts its prefix state afresh, which the receiver's carried state matches
    // only when no prefix is shared: these names share none with their predecessor)
    const two = await roundTrip([file('x', 1), file('x', 2)], protocol);
    assert.equal(two.map((f) => [f.name.toString(), f.size, f.active]), [['x', 1, true], ['x', 2, false]], `protocol ${protocol}`);
    const mixed = await roundTrip([file('y', 1), dir('y')], protocol);
    const active = mixed.filter((f) => f.active);
    assert.is(active.length, 1, `protocol ${protocol}`);
    assert.is(active[0]!.mode & 0o170000, S_IFDIR, `protocol ${protocol}: the dir is kept`);
    assert.is(mixed.length, 2, 'the cleared slot keeps its index');
    // The file and the directory apart in the sorted list (another file between them).
    const apart = await roundTrip([file('y', 1), file('z', 1), dir('y')], protocol);
    assert.equal(
      apart.map((f) => [f.name.toString(), (f.mode & 0o170000) === S_IFDIR, f.active]),
      protocol >= 29 ? [['y', false, false], ['z', false, true], ['y', true, true]] : [['y', false, false], ['y', true, true], ['z', false, true]],
      `protocol ${protocol}: apart`,
    );
  }
});

// ---------------------------------------------------------------------------------------------
// Hostile lists.

const isUnsafe = (e: unknown) => e instanceof UnsafeNameError && e.exitCode === 2 && e.code === 'ERR_RSYNC_UNSAFE_NAME';
const isProtocol = (e: unknown) => e instanceof ProtocolError && e.exitCode === 2;

async function rejects(bytes: Buffer, opts: FlistRecvOptions, check: (e: unknown) => boolean, label: string) {
  const reader = new ByteReader(piecesSource(bytes));
  reader.protocol = opts.protocol;
  try {
    await receiveFileList(reader, opts);
  } catch (e) {
    assert.ok(check(e), `${label}: ${String(e)}`);
    return;
  }
  assert.unreachable(`${label}: accepted`);
}

test("hostile names in a real list (pull_initial, 'sub/b.txt' rewritten in place): each an UnsafeNameError", async () => {
  const opts = sessionOf('pull_initial');
  const stream = await dataStream('pull_initial', 's2c');
  const at = stream.indexOf('sub/b.txt');
  assert.ok(at > 0);
  for (const evil of ['../../etc', '/etc/pass', 'sub//.txt', 'sub/./txt', 'sub/b/../', 'sub/\0.txt', './b.txtxx']) {
    const bytes = Buffer.from(stream);
    bytes.write(evil, at, 'latin1');
    await rejects(bytes, opts, isUnsafe, JSON.stringify(evil));
  }
  // the same bytes untouched are fine
  const reader = new ByteReader(piecesSource(stream));
  reader.protocol = 32;
  assert.is((await receiveFileList(reader, opts)).files.length, 5);
});

test('hostile lengths and counts: refused before allocating', async () => {
  const proto32 = { protocol: 32, compatFlags: MODERN };
  const script = async (build: (w: ByteWriter) => void): Promise<Buffer> => {
    const sink = memorySink();
    const w = new ByteWriter(sink);
    build(w);
    await w.flush();
    return sink.bytes();
  };
  // A name of 2^31-1 bytes (XMIT_LONG_NAME with a huge varint): refused without waiting for the bytes.
  await rejects(await script((w) => (w.writeVarint(XMIT_LONG_NAME), w.writeVarint(0x7fffffff))), proto32, isUnsafe, 'huge name');
  // A name reusing more of the previous name than there is.
  const first = await script((w) => sendFileList(w, [{ name: Buffer.from('a'), mode: S_IFREG | 0o644, size: 1, mtime: 1, uid: 0, gid: 0 }], proto32));
  const reuse = await script((w) => (w.writeVarint(0x20 | XMIT_SAME_UID | XMIT_SAME_GID), w.writeByte(200), w.writeByte(1), w.writeByte(0x62)));
  await rejects(Buffer.concat([first.subarray(0, first.length - 2), reuse]), proto32, isProtocol, 'l1 beyond the previous name');
  // More entries than the bound.
  const opts = sessionOf('pull_proto29');
  await rejects(await dataStream('pull_proto29', 's2c'), { ...opts, maxEntries: 10 }, isProtocol, 'maxEntries');
  // A symlink target of 1 MiB.
  const link = await script((w) => {
    w.writeVarint(XMIT_SAME_UID | XMIT_SAME_GID);
    w.writeByte(1);
    w.writeByte(0x6c);
    w.writeVarlong(0, 3);
    w.writeVarlong(1, 4);
    w.writeInt(S_IFLNK | 0o777);
    w.writeVarint(1 << 20);
  });
  await rejects(link, { ...proto32, preserveLinks: true }, isProtocol, 'symlink length');
  // An endless uid list.
  const listed = await script((w) => {
    sendFileList(w, [{ name: Buffer.from('a'), mode: S_IFREG | 0o644, size: 1, mtime: 1, uid: 5, gid: 0 }], { ...proto32, preserveUid: true, numericIds: true });
    for (let id = 1; id < 10; id++) (w.writeVarint(id), w.writeByte(1), w.writeByte(0x61));
  });
  await rejects(listed, { ...proto32, preserveUid: true }, isProtocol, 'id list');
  // A mode with no file type, and a truncated list.
  const badMode = await script((w) => (w.writeVarint(XMIT_SAME_UID | XMIT_SAME_GID), w.writeByte(1), w.writeByte(0x61), w.writeVarlong(0, 3), w.writeVarlong(1, 4), w.writeInt(0o644)));
  await rejects(badMode, proto32, isProtocol, 'mode without a type');
  await rejects(first.subarray(0, 4), proto32, (e) => e instanceof ConnectionClosedError, 'truncated');
});

test('hostile hard links (protocol >= 30): an index past the list, or to a directory', async () => {
  const opts = { protocol: 32, compatFlags: MODERN, preserveHardLinks: true };
  const sink = memorySink();
  const w = new ByteWriter(sink);
  sendFileList(w, [{ name: Buffer.from('.'), mode: S_IFDIR | 0o755, size: 1, mtime: 1, uid: 0, gid: 0 }], opts);
  await w.flush();
  const head = sink.bytes().subarray(0, -2); // without its end marker
  for (const [index, label] of [[5, 'past the end'], [1, 'itself'], [0, 'a directory']] as const) {
    const s2 = memorySink();
    const w2 = new ByteWriter(s2);
    w2.writeVarint(XMIT_HLINKED | XMIT_SAME_UID | XMIT_SAME_GID);
    w2.writeByte(1);
    w2.writeByte(0x68);
    w2.writeVarint(index);
    w2.writeVarint(0);
    w2.writeVarint(0);
    await w2.flush();
    await rejects(Buffer.concat([head, s2.bytes()]), opts, isProtocol, `hard link ${label}`);
  }
});

test('checkReceivedName: the rules on their own', () => {
  for (const ok of ['.', 'a', 'a/b', '.hidden', '..dots', 'a/...', 'x'.repeat(4095), 'sp ace/\n\xff']) {
    checkReceivedName(Buffer.from(ok, 'latin1'));
  }
  for (const bad of ['', '/', '/a', 'a/', 'a//b', '..', '../a', 'a/..', 'a/../b', './a', 'a/.', 'a\0b', 'x'.repeat(4096)]) {
    assert.throws(() => checkReceivedName(Buffer.from(bad, 'latin1')), isUnsafe, JSON.stringify(bad));
  }
});

test.run();
