// protocol/flist-packed.ts and flist-packed-send.ts: the packed sender list writes the same bytes
// as flist.ts sendFileList (itself checked against rsync's captures in flist.test.ts) for the
// captured lists and for generated ones at every protocol 27-32, and sorts as rsync does: the
// captured orders, and the order the installed rsync lists a tree of nasty names in.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { receiveFileList } from '../protocol/flist-recv.js';
import { CF_ID0_NAMES, CF_SAFE_FLIST, CF_VARINT_FLIST_FLAGS } from '../protocol/compat.js';
import { sortFileList, type FileEntry, type FlistOptions } from '../protocol/flist.js';
import { PackedFileList, SortedFileList } from '../protocol/flist-packed.js';
import { sendFileList, sendPackedFileList } from '../protocol/flist-packed-send.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK } from '../protocol/modes.js';
import { DEFAULT_TRANSFER } from '../protocol/args.js';
import { scanSource, startSourceScan } from '../src/transfer/scan.js';
import { streamLocalFileList, writeLocalFileList } from '../src/transfer/send-list.js';
import { linkSync } from 'node:fs';
import { memorySink, piecesSource } from './helpers/capture.js';

const captures = fileURLToPath(new URL('../../fixtures/captures/', import.meta.url));
const MODERN = 0x1fe;

/** Deterministic pseudo-random numbers in [0, 1) (an LCG: the lists are the same every run). */
function prng(seed: number): () => number {
  let x = seed >>> 0;
  return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 4294967296);
}

async function bytesOf(write: (w: ByteWriter) => number): Promise<{ hex: string; msgIoError: number }> {
  const sink = memorySink();
  const writer = new ByteWriter(sink);
  const msgIoError = write(writer);
  await writer.flush();
  return { hex: sink.bytes().toString('hex'), msgIoError };
}

/** Both encoders over the same entries in the same order: the same bytes and the same owed io_error. */
async function assertSameBytes(entries: FileEntry[], opts: FlistOptions, label: string): Promise<void> {
  const old = await bytesOf((w) => sendFileList(w, entries, opts).msgIoError);
  const list = new PackedFileList();
  for (const e of entries) list.addEntry(e);
  const order = Uint32Array.from(entries.keys());
  const packed = await bytesOf((w) => sendPackedFileList(w, list, order, opts));
  assert.is(packed.hex, old.hex, `${label}: bytes`);
  assert.is(packed.msgIoError, old.msgIoError, `${label}: io_error owed`);
}

/** The packed sort's order as names, and sortFileList's. */
function sortedNames(entries: FileEntry[], protocol: number): { packed: string[]; old: string[] } {
  const list = new PackedFileList();
  for (const e of entries) list.addEntry(e);
  const view = new SortedFileList(list, list.sortedOrder(protocol));
  return {
    packed: view.toArray().map((e) => e.name.toString('latin1')),
    old: sortFileList(entries, protocol).map((e) => e.name.toString('latin1')),
  };
}

/** The entries a capture's decoded.txt lists, in the order sent (fields left out keep the previous value). */
function captureEntries(name: string, dir: 'c2s' | 's2c'): FileEntry[] {
  const lines = readFileSync(join(captures, name, 'decoded.txt'), 'utf8').split('\n');
  const start = lines.findIndex((l) => l.startsWith(`== ${dir} data stream`));
  const out: FileEntry[] = [];
  let mode = 0;
  let mtime = 0;
  let uid = 0;
  let gid = 0;
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('== ')) break;
    if (!/^\s+\[\d+\] xflags=/.test(line)) continue;
    const field = (key: string) => new RegExp(` ${key}=(\\S+)`).exec(line)?.[1];
    const quoted = (key: string) => new RegExp(` ${key}='([^']*)'`).exec(line)?.[1];
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
  assert.ok(out.length > 0, `${name}: entries`);
  return out;
}

const ROOT_NAMES = new Map<number, string>([[0, 'root']]);
const ARCHIVE = { preserveUid: true, preserveGid: true, preserveLinks: true, preserveDevices: true, preserveSpecials: true, userNames: ROOT_NAMES, groupNames: ROOT_NAMES };

test('captured lists: the packed encoder writes the bytes sendFileList writes (protocols 27-32)', async () => {
  const cases: [string, 'c2s' | 's2c', FlistOptions][] = [
    ['push_initial_noinc', 'c2s', { protocol: 32, compatFlags: MODERN, ...ARCHIVE }],
    ['push_proto31', 'c2s', { protocol: 31, compatFlags: MODERN, ...ARCHIVE }],
    ['push_proto30', 'c2s', { protocol: 30, compatFlags: MODERN, ...ARCHIVE }],
    ['push_proto29', 'c2s', { protocol: 29, compatFlags: 0, ...ARCHIVE }],
    ['push_proto27', 'c2s', { protocol: 27, compatFlags: 0, ...ARCHIVE }],
    ['push_ndx_jump', 'c2s', { protocol: 32, compatFlags: MODERN, ...ARCHIVE }],
    ['push_checksum_mode', 'c2s', { protocol: 32, compatFlags: MODERN, ...ARCHIVE, alwaysChecksum: true, checksumLength: 16 }],
    ['pull_proto29', 's2c', { protocol: 29, compatFlags: 0, ...ARCHIVE }],
    ['pull_proto27', 's2c', { protocol: 27, compatFlags: 0, ...ARCHIVE }],
    ['module_contents_listing', 's2c', { protocol: 32, compatFlags: MODERN }],
    ['push_binary_delta', 'c2s', { protocol: 32, compatFlags: MODERN }],
    ['delete_missing_args_relative', 'c2s', { protocol: 32, compatFlags: MODERN, ioError: 2 }],
  ];
  for (const [name, dir, opts] of cases) {
    const entries = captureEntries(name, dir);
    // The -d listing: the dirs below the top are sent without their contents.
    if (name === 'module_contents_listing') for (const e of entries) if ((e.mode & 0o170000) === S_IFDIR && e.name.toString() !== '.') e.contentDir = false;
    await assertSameBytes(entries, opts, name);
    const { packed, old } = sortedNames(entries, opts.protocol);
    assert.equal(packed, old, `${name}: order`);
  }
});

/** A generated list: nasty names, every file type, hard links, -c sums, several uids/gids. */
function generated(seed: number, count: number): FileEntry[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const parts = ['a', 'a.b', 'a-b', 'a b', 'A', 'z', '\xff\xfe', 'caf\xc3\xa9', 'new\nline', 'x'.repeat(200), '.hidden', '~', '\\', 'sub'];
  const dirs = ['.'];
  const names = new Set<string>(['.']);
  const entries: FileEntry[] = [{ name: Buffer.from('.'), mode: S_IFDIR | 0o755, size: 4096, mtime: 1_700_000_000, mtimeNsec: 17, uid: 0, gid: 0 }];
  while (entries.length < count) {
    const parent = pick(dirs);
    const base = pick(parts) + (rnd() < 0.5 ? String(Math.floor(rnd() * 50)) : '');
    const name = parent === '.' ? base : `${parent}/${base}`;
    if (names.has(name) || name.length > 1500) continue;
    names.add(name);
    const kind = rnd();
    const common = { name: Buffer.from(name, 'latin1'), mtime: rnd() < 0.05 ? -86400 * Math.floor(rnd() * 100) : 1_700_000_000 + Math.floor(rnd() * 3), uid: pick([0, 0, 1000, 65534]), gid: pick([0, 100, 1000]) };
    const nsec = rnd() < 0.3 ? Math.floor(rnd() * 1e9) : 0;
    if (kind < 0.25) {
      dirs.push(name);
      entries.push({ ...common, mode: S_IFDIR | 0o755, size: 4096, mtimeNsec: nsec, ...(rnd() < 0.1 && { contentDir: false }), ...(rnd() < 0.1 && { topDir: true }) });
    } else if (kind < 0.8) {
      const sizes = [0, 1, 4095, 2 ** 31, 5_000_000_000];
      const linked = rnd() < 0.15;
      entries.push({
        ...common,
        mode: S_IFREG | pick([0o644, 0o600, 0o755]),
        size: pick(sizes),
        mtimeNsec: nsec,
        checksum: Buffer.alloc(16, Math.floor(rnd() * 256)),
        hardlink: linked ? { dev: 66n, ino: BigInt(Math.floor(rnd() * 4)) } : { dev: pick([66n, 2n ** 40n]), ino: BigInt(1000 + entries.length) },
      });
    } else if (kind < 0.9) {
      entries.push({ ...common, mode: S_IFLNK | 0o777, size: 5, symlink: Buffer.from(pick(['../x', 'a b', '\xff', 'y'.repeat(300)]), 'latin1') });
    } else {
      const type = pick([S_IFBLK, S_IFCHR, S_IFIFO, S_IFSOCK]);
      entries.push({ ...common, mode: type | 0o640, size: 0, ...((type === S_IFBLK || type === S_IFCHR) && { rdev: { major: pick([8, 300]), minor: pick([1, 255, 256, 70000]) } }) });
    }
  }
  return entries;
}

test('generated lists at every protocol 27-32, flag encoding and option set: the same bytes', async () => {
  const protocols: [number, number][] = [[32, MODERN], [32, CF_VARINT_FLIST_FLAGS], [31, MODERN], [31, 0], [30, MODERN], [30, CF_SAFE_FLIST | CF_ID0_NAMES], [30, 0], [29, 0], [28, 0], [27, 0]];
  const names = new Map<number, string>([[0, 'root'], [1000, 'user\xe9'], [100, 'users']]);
  for (const seed of [1, 2, 3]) {
    const entries = generated(seed, 400);
    for (const [protocol, compatFlags] of protocols) {
      for (const set of ['archive', 'hardlinks-checksum', 'bare', 'numeric'] as const) {
        const opts: FlistOptions = {
          protocol,
          compatFlags,
          ioError: seed === 2 ? 1 : 0,
          ...(set !== 'bare' && { preserveUid: true, preserveGid: true, preserveLinks: true, preserveDevices: true, preserveSpecials: true, userNames: names, groupNames: names }),
          ...(set === 'numeric' && { numericIds: true }),
          ...(set === 'hardlinks-checksum' && { preserveHardLinks: true, alwaysChecksum: true, checksumLength: 16 }),
        };
        const sorted = sortFileList(entries, protocol);
        await assertSameBytes(sorted, opts, `seed ${seed} protocol ${protocol} compat ${compatFlags} ${set}`);
      }
      const { packed, old } = sortedNames(entries, protocol);
      assert.equal(packed, old, `seed ${seed} protocol ${protocol}: order`);
    }
  }
});

test('names in several arena chunks (over 3 MiB of names): sorted and sent as the decoder reads them back', async () => {
  // 1 MiB chunks (flist-packed.ts CHUNK_BITS): long names so the list fills several, each name
  // whole in one, the shared prefix of neighbours in different chunks still found.
  const rnd = prng(7);
  const entries: FileEntry[] = [];
  const dirs = ['d'.repeat(900), 'e'.repeat(1500), 'f'.repeat(300)];
  for (const dir of dirs) entries.push({ name: Buffer.from(dir), mode: S_IFDIR | 0o755, size: 0, mtime: 1_700_000_000, uid: 0, gid: 0 });
  for (let n = 0; n < 3000; n++) {
    const dir = dirs[n % dirs.length]!;
    const base = `file-${n}-${'x'.repeat(Math.floor(rnd() * 900))}`;
    entries.push({ name: Buffer.from(`${dir}/${base}`), mode: S_IFREG | 0o644, size: n, mtime: 1_700_000_000 + n, uid: 0, gid: 0 });
  }
  const list = new PackedFileList();
  for (const e of entries) list.addEntry(e);
  assert.ok(list.chunks.length >= 3, `${list.chunks.length} chunks`);
  for (let i = 0; i < entries.length; i++) assert.ok(list.name(i).equals(entries[i]!.name), `name ${i}`);
  const { packed, old } = sortedNames(entries, 31);
  assert.equal(packed, old, 'order');
  const opts: FlistOptions = { protocol: 31, compatFlags: MODERN };
  const order = list.sortedOrder(31);
  const sink = memorySink();
  const writer = new ByteWriter(sink);
  sendPackedFileList(writer, list, order, opts);
  await writer.flush();
  const reader = new ByteReader(piecesSource(sink.bytes()));
  reader.protocol = 31;
  const back = await receiveFileList(reader, { ...opts, checksumLength: 16 });
  const wire = [...back.files].sort((a, b) => a.wireIndex - b.wireIndex);
  assert.equal(wire.map((e) => e.name.toString('latin1')), packed);
  assert.equal(wire.map((e) => e.size), Array.from(order, (i) => entries[i]!.size));
});

test('bad input is refused: names, duplicates, missing symlink targets, wrong checksum length', async () => {
  const list = new PackedFileList();
  for (const bad of ['', '/abs', 'a/', 'a//b', 'a/../b', './a', 'nul\0', 'x'.repeat(4096)]) {
    assert.throws(() => list.addEntry({ name: Buffer.from(bad, 'latin1'), mode: S_IFREG | 0o644, size: 0, mtime: 0, uid: 0, gid: 0 }), RangeError, JSON.stringify(bad));
  }
  const file = (name: string): FileEntry => ({ name: Buffer.from(name), mode: S_IFREG | 0o644, size: 0, mtime: 0, uid: 0, gid: 0 });
  const twice = new PackedFileList();
  twice.addEntry(file('a'));
  twice.addEntry(file('a'));
  assert.throws(() => sendPackedFileList(new ByteWriter(memorySink()), twice, twice.sortedOrder(32), { protocol: 32, compatFlags: MODERN }), /duplicate name/);
  const link = new PackedFileList();
  link.addEntry({ ...file('l'), mode: S_IFLNK | 0o777 });
  assert.throws(() => sendPackedFileList(new ByteWriter(memorySink()), link, link.sortedOrder(32), { protocol: 32, compatFlags: MODERN, preserveLinks: true }), /without a target/);
  const sums = new PackedFileList();
  sums.addEntry({ ...file('f'), checksum: Buffer.alloc(8) });
  assert.throws(() => sendPackedFileList(new ByteWriter(memorySink()), sums, sums.sortedOrder(32), { protocol: 32, compatFlags: MODERN, alwaysChecksum: true, checksumLength: 16 }), /checksum must be 16 bytes/);
  assert.throws(() => sendPackedFileList(new ByteWriter(memorySink()), sums, sums.sortedOrder(32), { protocol: 26, compatFlags: 0 }), /unsupported protocol/);
});

/** rsync's --list-only names, with its \#ooo escapes undone. */
function rsyncListed(dir: string, protocol: number): string[] {
  const r = spawnSync('rsync', ['-r', '--no-inc-recursive', '--list-only', `--protocol=${protocol}`, dir + '/'], { encoding: 'latin1' });
  assert.is(r.status, 0, r.stderr);
  return r.stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => /^\S+\s+[\d,]+ \S+ \S+ (.*)$/.exec(l)![1]!.replace(/\\#(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

test('a tree of nasty names: the scan sorts it as the installed rsync lists it (protocols 27-32)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lsyncd-flist-packed-'));
  try {
    const t = join(root, 't');
    const names = ['a', 'a-b', 'a.b', 'a b', 'ab', 'A', 'B', '~', '.hidden', 'caf\xc3\xa9', '\xff', 'tab\tx', 'nl\nx', 'z'];
    const b = (s: string) => Buffer.from(s, 'latin1');
    mkdirSync(t);
    for (const d of ['a', 'a-b', 'a.b', 'B', '\xff', 'a/x', 'a/x.d', 'a/x-1']) mkdirSync(Buffer.concat([b(t + '/'), b(d)]));
    for (const dir of ['', 'a/', 'a-b/', '\xff/', 'a/x/', 'a/x.d/']) {
      for (const n of names) {
        const path = Buffer.concat([b(t + '/'), b(dir + n)]);
        try {
          writeFileSync(path, n);
        } catch {
          /* a directory of that name already */
        }
      }
    }
    symlinkSync('a', join(t, 'link'));
    for (const protocol of [32, 31, 30, 29, 28, 27]) {
      const scan = await scanSource(t + '/', { transfer: { ...DEFAULT_TRANSFER, recursive: true, links: true } });
      const view = new SortedFileList(scan.list, scan.list.sortedOrder(protocol));
      const ours = view.toArray().map((e) => e.name.toString('latin1'));
      assert.equal(ours, rsyncListed(t, protocol), `protocol ${protocol}`);
      assert.ok(ours.length > 60, 'the whole tree');
    }
    // The addon's directory reads (native/dirstat.cc) and Node's readdir + lstat make the same list.
    const entriesOf = async () => {
      const scan = await scanSource(t + '/', { transfer: { ...DEFAULT_TRANSFER, recursive: true, links: true } });
      return Array.from({ length: scan.list.count }, (_, i) => scan.list.entry(i));
    };
    const withAddon = await entriesOf();
    process.env['LSYNCD_JS_SCAN'] = '1';
    try {
      assert.equal(await entriesOf(), withAddon);
    } finally {
      delete process.env['LSYNCD_JS_SCAN'];
    }
    // The walk's parent links (the fast path for siblings) sort as the name-only comparison does.
    const scan = await scanSource(t + '/', { transfer: { ...DEFAULT_TRANSFER, recursive: true } });
    const plain = new PackedFileList();
    for (let i = 0; i < scan.list.count; i++) plain.addEntry(scan.list.entry(i));
    assert.equal(Array.from(scan.list.sortedOrder(32)), Array.from(plain.sortedOrder(32)));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('entries made on demand: local paths, extras and the total size', () => {
  const list = new PackedFileList();
  list.roots.push(Buffer.from('/src/'));
  list.addEntry({ name: Buffer.from('.'), mode: S_IFDIR | 0o755, size: 4096, mtime: 5, uid: 0, gid: 0 });
  list.addEntry({ name: Buffer.from('d/l'), mode: S_IFLNK | 0o777, size: 3, mtime: 5, uid: 0, gid: 0, symlink: Buffer.from('abc') });
  list.addEntry({ name: Buffer.from('d'), mode: S_IFDIR | 0o755, size: 4096, mtime: 5, uid: 0, gid: 0, contentDir: false });
  list.addEntry({ name: Buffer.from('d/f'), mode: S_IFREG | 0o644, size: 10, mtime: 5, mtimeNsec: 9, uid: 1, gid: 2, checksum: Buffer.alloc(16, 7) });
  const view = new SortedFileList(list, list.sortedOrder(32));
  assert.equal(view.toArray().map((e) => [e.name.toString(), e.localPath.toString()]), [
    ['.', '/src/'],
    ['d', '/src/d'],
    ['d/f', '/src/d/f'],
    ['d/l', '/src/d/l'],
  ]);
  assert.is(view.at(1)!.contentDir, false);
  assert.is(view.at(0)!.topDir, true);
  assert.equal(view.at(3)!.symlink, Buffer.from('abc'));
  assert.equal(view.at(2)!.checksum, Buffer.alloc(16, 7));
  assert.is(view.at(2)!.mtimeNsec, 9);
  assert.is(view.at(4), undefined);
  assert.is(view.totalSize(), 13);
});

test('a list sent while the tree is read: the bytes of the list sent after the walk, in rsync\'s order (protocols 29-32)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lsyncd-flist-stream-'));
  try {
    const t = join(root, 't');
    mkdirSync(t);
    // Enough entries for several flushes (256 KiB each), nasty names, hard links, a symlink.
    for (const d of ['a', 'a-b', 'a.b', 'B', '\xff']) {
      const dir = Buffer.from(`${t}/${d}`, 'latin1');
      mkdirSync(dir);
      for (let f = 0; f < 2500; f++) writeFileSync(Buffer.concat([dir, Buffer.from(`/f${f}-${'x'.repeat(f % 40)}`)]), String(f));
    }
    for (const n of ['a', 'a b', 'ab', '~', 'tab\tx']) writeFileSync(Buffer.from(`${t}/${n}.f`, 'latin1'), n);
    linkSync(join(t, 'a', 'f1-x'), join(t, 'hard'));
    symlinkSync('a', join(t, 'link'));
    for (const protocol of [29, 30, 31, 32]) {
      for (const extra of [{}, { hardLinks: true, checksum: true, owner: true, group: true }]) {
        const transfer = { ...DEFAULT_TRANSFER, recursive: true, links: true, ...extra };
        const negotiated = { compatFlags: protocol >= 30 ? MODERN : 0, checksum: protocol >= 30 ? ('md5' as const) : ('md4' as const) };
        const after = memorySink();
        const afterWriter = new ByteWriter(after);
        afterWriter.protocol = protocol;
        const scan = await scanSource(t + '/', { transfer });
        const written = await writeLocalFileList(afterWriter, scan, transfer, negotiated);
        await afterWriter.flush();
        const streamed = memorySink();
        const streamWriter = new ByteWriter(streamed);
        streamWriter.protocol = protocol;
        const sent = await streamLocalFileList(streamWriter, await startSourceScan(t + '/', { transfer }), transfer, negotiated);
        await streamWriter.flush();
        const label = `protocol ${protocol} ${JSON.stringify(extra)}`;
        assert.ok(sent.flistBytes > 256 * 1024, `${label}: several flushes (${sent.flistBytes} bytes)`);
        assert.is(streamed.bytes().toString('hex'), after.bytes().toString('hex'), label);
        assert.is(sent.flistBytes, written.flistBytes, label);
        assert.equal(Array.from(sent.sorted.order), Array.from(written.sorted.order), label);
        // The walk's order is rsync's order: the ndx of each entry is its place in the walk.
        assert.equal(Array.from(sent.sorted.order), Array.from({ length: sent.sorted.length }, (_, i) => i), label);
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
