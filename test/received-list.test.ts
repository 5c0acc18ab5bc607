// protocol/received-list.ts: the packed received list. The shared comparator (name-order.ts) on
// nasty names at protocols 27-32 (byte order below 29, the shared-parent hint); its sort and
// clean against sortFileList on shuffled generated lists (symlinks, devices, hard links, -c, id
// names); its accessors against the entries it makes; the per-entry memory charge; deletion's
// per-directory names from the packed list and from plain entries alike.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { CF_ID0_NAMES, CF_SAFE_FLIST, CF_VARINT_FLIST_FLAGS } from '../protocol/compat.js';
import { MemoryCapError, type MemoryBudget } from '../protocol/errors.js';
import type { FileEntry } from '../protocol/flist.js';
import { sendFileList } from '../protocol/flist-packed-send.js';
import { receiveFileList } from '../protocol/flist-recv.js';
import { PACKED_ENTRY_BYTES, ReceivedList } from '../protocol/received-list.js';
import { compareEntryNames, compareNames, mayCompareEqual, mergeSort, sortByDirectory } from '../protocol/name-order.js';
import { namesByDir } from '../protocol/delete.js';
import { isDir, S_IFBLK, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG } from '../protocol/modes.js';
import { memorySink, piecesSource } from './helpers/capture.js';

const MODERN = CF_VARINT_FLIST_FLAGS | CF_SAFE_FLIST | CF_ID0_NAMES;
const PROTOCOLS = [27, 28, 29, 30, 31, 32];

/** A small deterministic generator (the same lists every run). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Name bytes that stress the order: '.', '-', ' ', control and high bytes, digits, case. */
const ALPHABET = [0x61, 0x62, 0x2e, 0x2d, 0x20, 0x01, 0xff, 0x80, 0x41, 0x30, 0x5f, 0x7e];

function component(rnd: () => number): Buffer {
  for (;;) {
    const len = 1 + Math.floor(rnd() * 4);
    const bytes = Buffer.from(Array.from({ length: len }, () => ALPHABET[Math.floor(rnd() * ALPHABET.length)]!));
    const s = bytes.toString('latin1');
    if (s !== '.' && s !== '..') return bytes;
  }
}

/** Unique valid names (with every parent directory listed), some of them directories. */
function nastyTree(seed: number, count: number): FileEntry[] {
  const rnd = prng(seed);
  const byName = new Map<string, FileEntry>();
  const dirs: Buffer[] = [];
  const add = (name: Buffer, mode: number, extra: Partial<FileEntry> = {}) => {
    const key = name.toString('latin1');
    if (byName.has(key)) return;
    byName.set(key, { name, mode, size: Math.floor(rnd() * 5000), mtime: 1_600_000_000 + Math.floor(rnd() * 1000), uid: rnd() < 0.5 ? 1000 : 0, gid: rnd() < 0.5 ? 100 : 0, ...extra });
    if (isDir(mode)) dirs.push(name);
  };
  add(Buffer.from('.'), S_IFDIR | 0o755, { size: 4096 });
  while (byName.size < count) {
    const parent = rnd() < 0.3 || dirs.length === 1 ? null : dirs[1 + Math.floor(rnd() * (dirs.length - 1))]!;
    const name = parent ? Buffer.concat([parent, Buffer.from('/'), component(rnd)]) : component(rnd);
    const kind = rnd();
    if (kind < 0.25) add(name, S_IFDIR | 0o755, { size: 4096 });
    else if (kind < 0.3) add(name, S_IFLNK | 0o777, { symlink: Buffer.from('target-' + byName.size) });
    else if (kind < 0.33) add(name, S_IFBLK | 0o600, { rdev: { major: 8, minor: byName.size % 256 } });
    else if (kind < 0.35) add(name, S_IFIFO | 0o644);
    else add(name, S_IFREG | 0o644, { checksum: Buffer.alloc(16, byName.size % 256) });
  }
  return [...byName.values()];
}

function shuffled<T>(items: T[], seed: number): T[] {
  const rnd = prng(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

test("f_name_cmp (name-order.ts) on nasty names, files and dirs: plain byte order below 29, and a known shared parent changes nothing, protocols 27-32", () => {
  const entries = nastyTree(7, 180);
  // The same names as the other type too: a file and a directory of one name compare apart.
  const both = [...entries, ...entries.map((e) => ({ ...e, mode: isDir(e.mode) ? S_IFREG | 0o644 : S_IFDIR | 0o755 }))];
  const dirOf = (name: Buffer) => name.subarray(0, Math.max(0, name.lastIndexOf(0x2f)));
  for (const protocol of PROTOCOLS) {
    let siblings = 0;
    for (const a of both) {
      for (const b of both) {
        const got = Math.sign(compareEntryNames(a, b, protocol));
        const shown = `protocol ${protocol}: ${JSON.stringify(a.name.toString('latin1'))} vs ${JSON.stringify(b.name.toString('latin1'))}`;
        assert.is(Math.sign(compareEntryNames(b, a, protocol)), -got || 0, `${shown}: not antisymmetric`);
        if (protocol < 29 && got !== Math.sign(Buffer.compare(a.name, b.name))) assert.unreachable(`${shown}: ${got}, want byte order`);
        if (!dirOf(a.name).equals(dirOf(b.name))) continue;
        const hinted = compareNames(a.name, 0, a.name.length, isDir(a.mode), b.name, 0, b.name.length, isDir(b.mode), protocol, true);
        if (Math.sign(hinted) !== got) assert.unreachable(`${shown}: ${Math.sign(hinted)} with the shared parent known, ${got} without`);
        siblings++;
      }
    }
    assert.ok(siblings > both.length, `protocol ${protocol}: only ${siblings} sibling pairs`);
  }
});

/** The names packed as a list holds them, with the order a merge sort by compareNames gives. */
function packed(entries: Array<{ name: Buffer; mode: number }>) {
  const arena = Buffer.concat(entries.map((e) => e.name));
  const start = new Uint32Array(entries.length);
  const length = new Uint16Array(entries.length);
  for (let i = 0, at = 0; i < entries.length; at += entries[i]!.name.length, i++) {
    start[i] = at;
    length[i] = entries[i]!.name.length;
  }
  const names = { arena, start, length, count: entries.length, isDir: (i: number) => isDir(entries[i]!.mode) };
  const byPairs = Uint32Array.from(entries.keys());
  mergeSort(byPairs, new Uint32Array(entries.length), 0, entries.length, (a, b) => compareEntryNames(entries[a]!, entries[b]!, 32));
  return { names, byPairs };
}

test('sortByDirectory gives what a merge sort by compareNames gives: shuffled trees, duplicates, missing parents, and null (not a wrong order) on names no sender makes', () => {
  const file = (name: string) => ({ name: Buffer.from(name, 'latin1'), mode: S_IFREG | 0o644 });
  const dir = (name: string) => ({ name: Buffer.from(name, 'latin1'), mode: S_IFDIR | 0o755 });
  let fast = 0;
  for (let seed = 1; seed <= 30; seed++) {
    const tree = nastyTree(seed, 50 + seed * 20);
    const rnd = prng(seed);
    // Duplicates (the same entry twice, a file and a directory of one name) and entries whose parents are not listed.
    const extra = tree.filter(() => rnd() < 0.1).map((e) => (rnd() < 0.5 ? { ...e } : { ...e, mode: isDir(e.mode) ? S_IFREG | 0o644 : S_IFDIR | 0o755 }));
    const orphans = tree.filter((e) => rnd() < 0.05 && e.name.toString() !== '.').map((e) => ({ ...e, name: Buffer.concat([Buffer.from('gone/'), e.name]) }));
    const list = shuffled([...tree, ...extra, ...orphans], seed);
    const { names, byPairs } = packed(list);
    const got = sortByDirectory(names);
    assert.ok(got, `seed ${seed}: the fast path refused a list a sender makes`);
    assert.equal(Array.from(got), Array.from(byPairs), `seed ${seed}`);
    fast++;
  }
  assert.is(fast, 30);
  // Names no rsync sender makes: whatever comes back is the merge sort's order, or null.
  const odd = [dir('.'), file('a//b'), dir('a'), file('a/'), dir('a/.'), file('a/./c'), dir('a/b/'), file('/x'), file(''), dir('b'), file('b/c'), dir('a/b')];
  for (let seed = 1; seed <= 20; seed++) {
    const list = shuffled(odd, seed);
    const { names, byPairs } = packed(list);
    const got = sortByDirectory(names);
    if (got) assert.equal(Array.from(got), Array.from(byPairs), `odd names, seed ${seed}`);
  }
  // An empty list and a lone entry.
  assert.equal(Array.from(sortByDirectory(packed([]).names)!), []);
  assert.equal(Array.from(sortByDirectory(packed([file('x')]).names)!), [0]);
});

test("mayCompareEqual is true of every pair f_name_cmp calls equal (the same bytes, or a name ending in '/' or in a basename '.'), and false of other pairs, protocols 27-32", () => {
  const names: string[] = [''];
  for (let len = 1; len <= 3; len++) for (const n of names.filter((x) => x.length === len - 1)) for (const c of ['a', 'b', '.', '/']) names.push(n + c);
  const odd = (s: string) => s === '' || s.endsWith('/') || s === '.' || s.endsWith('/.');
  const may = (x: string, y: string) => {
    const arena = Buffer.from(x + y, 'latin1');
    return mayCompareEqual(arena, 0, x.length, x.length, y.length);
  };
  for (const x of names) for (const y of names) assert.is(may(x, y), x === y || odd(x) || odd(y), `${JSON.stringify(x)} ${JSON.stringify(y)}`);
  let equalPairs = 0;
  for (const protocol of PROTOCOLS) {
    for (const x of names) {
      for (const y of names) {
        for (const [xDir, yDir] of [[false, false], [false, true], [true, false], [true, true]] as const) {
          const a = Buffer.from(x, 'latin1');
          const b = Buffer.from(y, 'latin1');
          if (compareNames(a, 0, a.length, xDir, b, 0, b.length, yDir, protocol) !== 0) continue;
          equalPairs++;
          if (!may(x, y)) assert.unreachable(`protocol ${protocol}: ${JSON.stringify(x)} (${xDir ? 'dir' : 'file'}) = ${JSON.stringify(y)} (${yDir ? 'dir' : 'file'})`);
        }
      }
    }
  }
  assert.ok(equalPairs > names.length * PROTOCOLS.length, `only ${equalPairs} equal pairs seen`);
});

const NAMES = new Map<number, string>([[0, 'root'], [1000, 'alice'], [100, 'users']]);

async function sendAndReceive(entries: FileEntry[], protocol: number, budget?: MemoryBudget) {
  const opts = {
    protocol,
    compatFlags: protocol >= 30 ? MODERN : 0,
    preserveUid: true,
    preserveGid: true,
    preserveLinks: true,
    preserveDevices: true,
    preserveSpecials: true,
    alwaysChecksum: true,
    checksumLength: 16,
    userNames: NAMES,
    groupNames: NAMES,
  };
  const sink = memorySink();
  const writer = new ByteWriter(sink);
  const sent = sendFileList(writer, entries, opts);
  await writer.flush();
  const reader = new ByteReader(piecesSource(sink.bytes(), [3, 100, 1000]));
  reader.protocol = protocol;
  const got = await receiveFileList(reader, { ...opts, ...(budget && { budget }) });
  return { sent, got };
}

test('a shuffled list is sorted as sortFileList sorts it, and the accessors read what at() makes (protocols 27-32)', async () => {
  const tree = nastyTree(11, 400);
  for (const protocol of PROTOCOLS) {
    const { sent, got } = await sendAndReceive(shuffled(tree, protocol), protocol);
    const { list } = got;
    assert.ok(list instanceof ReceivedList);
    assert.is(list.length, tree.length);
    assert.equal(
      Array.from({ length: list.length }, (_, ndx) => list.name(ndx).toString('latin1')),
      sent.sorted.map((e) => e.name.toString('latin1')),
      `protocol ${protocol}: order`,
    );
    for (let ndx = 0; ndx < list.length; ndx++) {
      const e = list.at(ndx)!;
      const label = `protocol ${protocol} ndx ${ndx}`;
      assert.ok(e.name.equals(list.name(ndx)), label);
      assert.is(list.mode(ndx), e.mode, label);
      assert.is(list.size(ndx), e.size, label);
      assert.is(list.mtime(ndx), e.mtime, label);
      assert.is(list.isActive(ndx), e.active, label);
      assert.is(list.wireIndex(ndx), e.wireIndex, label);
      assert.equal(list.symlink(ndx), e.symlink, label);
      if (isDir(e.mode)) assert.is(list.isContentDir(ndx), e.contentDir, label);
      const want = sent.sorted[ndx]!;
      assert.is(e.uid, want.uid, label);
      assert.is(e.gid, want.gid, label);
      if ((want.mode & 0o170000) === S_IFREG) assert.equal(e.checksum, want.checksum, label);
      if ((want.mode & 0o170000) === S_IFBLK) assert.equal(e.rdev, want.rdev, label);
    }
    // The objects made are the same as files (made once, kept) and the iterator.
    assert.equal(got.files, [...list]);
    assert.is(list.at(list.length), undefined);
    assert.is(list.at(-1), undefined);
  }
});

test('setMode, replaceSymlink and mapIds change what every reader sees', async () => {
  const tree = nastyTree(5, 60);
  const { got } = await sendAndReceive(tree, 32);
  const { list } = got;
  const file = Array.from({ length: list.length }, (_, i) => i).find((i) => (list.mode(i) & 0o170000) === S_IFREG)!;
  list.setMode(file, S_IFREG | 0o600);
  assert.is(list.at(file)!.mode, S_IFREG | 0o600);
  const link = Array.from({ length: list.length }, (_, i) => i).find((i) => (list.mode(i) & 0o170000) === S_IFLNK)!;
  list.replaceSymlink(link, Buffer.from('/rsyncd-munged/x'));
  assert.equal(list.at(link)!.symlink, Buffer.from('/rsyncd-munged/x'));
  list.mapIds((uid) => uid + 1, null);
  for (let ndx = 0; ndx < list.length; ndx++) {
    const before = tree.find((e) => e.name.equals(list.name(ndx)))!;
    assert.is(list.at(ndx)!.uid, before.uid + 1);
    assert.is(list.at(ndx)!.gid, before.gid);
  }
});

test('every entry is charged to the budget (the packed slots and its name), and a cap stops the list', async () => {
  const tree = nastyTree(3, 300);
  let charged = 0;
  await sendAndReceive(tree, 31, { charge: (bytes) => (charged += bytes) });
  const names = tree.reduce((sum, e) => sum + e.name.length, 0);
  assert.ok(charged >= tree.length * PACKED_ENTRY_BYTES + names, `charged ${charged}`);
  let left = 40 * PACKED_ENTRY_BYTES;
  const capped: MemoryBudget = {
    charge(bytes, what) {
      left -= bytes;
      if (left < 0) throw new MemoryCapError(`${what} passed the cap`);
    },
  };
  try {
    await sendAndReceive(tree, 31, capped);
    assert.unreachable('the cap did not stop the list');
  } catch (e) {
    assert.instance(e, MemoryCapError);
    assert.match((e as Error).message, /file list passed the cap/);
  }
});

test('the budget is charged once per entry however the bytes arrive (an entry parsed again after NEED_MORE is not charged twice)', async () => {
  const tree = nastyTree(5, 120);
  const opts = { protocol: 31, compatFlags: MODERN, preserveUid: true, preserveGid: true, preserveLinks: true, preserveDevices: true, preserveSpecials: true, userNames: NAMES, groupNames: NAMES };
  const sink = memorySink();
  const writer = new ByteWriter(sink);
  sendFileList(writer, tree, opts);
  await writer.flush();
  const bytes = sink.bytes();
  const chargedWith = async (cuts: number[]) => {
    let charged = 0;
    const reader = new ByteReader(piecesSource(bytes, cuts));
    reader.protocol = 31;
    const got = await receiveFileList(reader, { ...opts, budget: { charge: (n) => (charged += n) } });
    return { charged, names: got.list.length };
  };
  const whole = await chargedWith([]);
  assert.is(whole.names, tree.length);
  const everyByte = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
  assert.equal(await chargedWith(everyByte), whole);
  assert.equal(await chargedWith([5, 17, 400, 401, 2000]), whole);
});

test('sameDirAsNext: whether the next ndx is in the same directory (the generator reads a directory at its first name then)', async () => {
  const names = ['.', 'a', 'b', 'd', 'd/x', 'd/y', 'd/sub', 'd/sub/z', 'e', 'ee/f'];
  const entries: FileEntry[] = names.map((n) => ({ name: Buffer.from(n), mode: ['.', 'd', 'd/sub'].includes(n) ? S_IFDIR | 0o755 : S_IFREG | 0o644, size: 1, mtime: 1, uid: 0, gid: 0 }));
  const { got } = await sendAndReceive(entries, 31);
  const list = got.list;
  const dirOf = (n: Buffer) => n.subarray(0, Math.max(0, n.lastIndexOf(0x2f)));
  let same = 0;
  for (let ndx = 0; ndx < list.length; ndx++) {
    const want = ndx + 1 < list.length && dirOf(list.name(ndx)).equals(dirOf(list.name(ndx + 1)));
    assert.is(list.sameDirAsNext(ndx), want, list.name(ndx).toString());
    if (want) same++;
  }
  assert.ok(same >= 4 && same < list.length - 1, `${same} of ${list.length}`);
  assert.is(list.sameDirAsNext(-1), false);
  assert.is(list.sameDirAsNext(list.length - 1), false);
});

test("deletion's names per directory are the same from the packed list and from its entries", async () => {
  const tree = nastyTree(13, 250);
  const { got } = await sendAndReceive(shuffled(tree, 1), 30);
  const packed = namesByDir(got.list);
  const plain = namesByDir(got.files);
  assert.equal([...packed.keys()].sort(), [...plain.keys()].sort());
  for (const dir of plain.keys()) assert.equal([...packed.get(dir)!].sort(), [...plain.get(dir)!].sort(), dir);
  assert.not.ok(packed.has('no such dir'));
  // '.' itself is never a name to keep.
  assert.not.ok([...packed.keys()].some((dir) => packed.get(dir)!.has('.')));
});

test.run();
