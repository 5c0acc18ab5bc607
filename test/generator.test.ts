// The generator's steps on their own, over an in-memory destination and the file lists of real
// rsync 3.5.0 pulls (fixtures/captures): the quick check against the local tree, one entry through
// recvGenerator, and the whole phase script of a --delete pull (pull_delete) whose requests,
// NDX_DEL_STATS and NDX_DONEs must be rsync's client's bytes, in every --delete-WHEN mode; the
// receiving-side options: a basis dir's file or a fuzzy match as the basis (the capture's request
// with the basis type and xname added), --compare-dest/--copy-dest/--link-dest, --size-only,
// --ignore-existing, --existing, -u, --max-delete, --delete-missing-args, --max-size/--min-size,
// --append (the sum head alone).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadCapture, dataStream, memorySink, captureATxt, piecesSource, sessionOf } from './helpers/capture.js';
import { MemTree, ARCHIVE } from './helpers/memtree.js';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { receiveFileList, type ReceivedEntry } from '../protocol/flist-recv.js';
import { createChecksummer } from '../protocol/checksum.js';
import { doRecv } from '../protocol/receiver.js';
import { newGeneratorState, quickCheckOk, recvGenerator, RecvChannel, type GeneratedItem, type GeneratorOptions } from '../protocol/generator.js';
import { IOERR_DEL_LIMIT, ITEM_BASIS_TYPE_FOLLOWS, ITEM_IS_NEW, ITEM_REPORT_SIZE, ITEM_REPORT_TIME, ITEM_TRANSFER, ITEM_XNAME_FOLLOWS } from '../protocol/constants.js';
import { FNAMECMP_FUZZY } from '../protocol/basis.js';
import { S_IFDIR, S_IFLNK, S_IFREG } from '../protocol/modes.js';

/** The module's mtime for everything but a.txt (the captures' source tree). */
const T = 1704164645;


/** The daemon's file list of a capture, decoded as our pull decodes it, and the reader after it. */
async function capturedList(name: string) {
  const s = sessionOf(name);
  const reader = new ByteReader(piecesSource(dataStream(loadCapture(name).s2c, s.decoded, 's2c')));
  reader.protocol = s.protocol;
  const flist = await receiveFileList(reader, {
    protocol: s.protocol,
    compatFlags: s.compatFlags,
    preserveUid: true,
    preserveGid: true,
    preserveDevices: true,
    preserveSpecials: true,
    preserveLinks: true,
    checksumLength: 16,
  });
  const checksummer = await createChecksummer(s.checksum, { protocol: s.protocol, seed: s.seed, compatFlags: s.compatFlags, implied: s.implied });
  return { s, reader, files: flist.files, checksummer };
}

/** What pull_initial left locally (a.txt as the daemon had it then, 3025 bytes). */
function afterInitial(): MemTree {
  const tree = new MemTree();
  tree.put('.', S_IFDIR | 0o755, T);
  tree.put('link', S_IFLNK | 0o777, T, undefined, 'a.txt');
  tree.put('sub', S_IFDIR | 0o755, T);
  tree.put('a.txt', S_IFREG | 0o644, Date.UTC(2024, 2, 4, 5, 6, 7) / 1000, captureATxt(true));
  tree.put('sub/b.txt', S_IFREG | 0o644, T, Buffer.from('second file in subdir\n'));
  return tree;
}

/** Generator and receiver over a capture's daemon stream; what our side wrote. */
async function replay(name: string, tree: MemTree, options: Partial<GeneratorOptions> = {}) {
  const { s, reader, files, checksummer } = await capturedList(name);
  const sink = memorySink();
  const writer = new ByteWriter(sink);
  writer.protocol = s.protocol;
  const result = await doRecv(reader, writer, files, tree, checksummer, { ...ARCHIVE, ...options });
  await writer.flush();
  return { ours: sink.bytes(), theirs: dataStream(loadCapture(name).c2s, s.decoded, 'c2s'), result };
}

const byName = (files: readonly ReceivedEntry[], name: string): number => files.findIndex((f) => f.name.toString() === name);

test('quickCheckOk: the daemon\'s list (pull_delta) against the local tree (size, mtime, -I, redo, --modify-window, -c)', async () => {
  const { files, checksummer } = await capturedList('pull_delta');
  const tree = afterInitial();
  const writer = new ByteWriter(memorySink());
  writer.protocol = 32;
  const state = (options: Partial<GeneratorOptions> = {}) => newGeneratorState(writer, files, tree, checksummer, new RecvChannel(), { ...ARCHIVE, ...options });
  const b = files[byName(files, 'sub/b.txt')]!;
  const a = files[byName(files, 'a.txt')]!;
  const bStat = (await tree.lstat(b.name))!;
  const aStat = (await tree.lstat(a.name))!;

  // sub/b.txt: the same size and mtime as the daemon's.
  assert.ok(await quickCheckOk(state(), b, bStat, false));
  assert.not.ok(await quickCheckOk(state({ ignoreTimes: true }), b, bStat, false), '-I');
  assert.not.ok(await quickCheckOk(state(), b, bStat, true), 'a redo never passes');
  // a.txt: a byte longer on the daemon, whatever the times say.
  assert.equal([a.size, aStat.size], [3026, 3025]);
  assert.not.ok(await quickCheckOk(state({ modifyWindow: 1e9 }), a, aStat, false));
  // A later local mtime: only a window wide enough lets it pass.
  const later = { ...bStat, mtime: b.mtime + 2 };
  assert.not.ok(await quickCheckOk(state(), b, later, false));
  assert.not.ok(await quickCheckOk(state({ modifyWindow: 1 }), b, later, false));
  assert.ok(await quickCheckOk(state({ modifyWindow: 2 }), b, later, false));
  // Nanoseconds count only with --modify-window=-1 (the list's b.txt has none).
  const nsec = { ...bStat, mtimeNsec: 5 };
  assert.ok(await quickCheckOk(state(), b, nsec, false));
  assert.not.ok(await quickCheckOk(state({ modifyWindow: -1 }), b, nsec, false));
  // -c: the whole-file checksum decides, not the mtime (this list carries none: never equal).
  const digest = Buffer.alloc(16, 7);
  const withSum = { ...b, checksum: digest };
  const cs = (sum: Buffer | null) => state({ checksum: true, fileChecksum: async () => sum });
  assert.ok(await quickCheckOk(cs(digest), withSum, later, false));
  assert.not.ok(await quickCheckOk(cs(Buffer.alloc(16, 8)), withSum, bStat, false));
  assert.not.ok(await quickCheckOk(cs(digest), b, bStat, false), 'no checksum in the list');
});

test('recvGenerator: one entry at a time: nothing for an up-to-date file, rsync\'s request bytes for a changed one (pull_delta)', async () => {
  const { s, files, checksummer } = await capturedList('pull_delta');
  const sink = memorySink();
  const writer = new ByteWriter(sink);
  writer.protocol = s.protocol;
  const items: GeneratedItem[] = [];
  const state = newGeneratorState(writer, files, afterInitial(), checksummer, new RecvChannel(), { ...ARCHIVE, onItem: (item) => items.push(item) });

  await recvGenerator(state, byName(files, 'sub/b.txt'), false);
  await writer.flush();
  assert.is(sink.bytes().length, 0, 'an up-to-date file: nothing travels');
  assert.is(state.requested, 0);

  const a = byName(files, 'a.txt');
  await recvGenerator(state, a, false);
  await writer.flush();
  assert.is(state.requested, 1);
  assert.is(items.at(-1)!.ndx, a);
  assert.is(items.at(-1)!.iflags, ITEM_TRANSFER | ITEM_REPORT_SIZE | ITEM_REPORT_TIME);
  // rsync's client wrote the same request after its empty filter list (int32 0).
  const ours = sink.bytes();
  const theirs = dataStream(loadCapture('pull_delta').c2s, s.decoded, 'c2s').subarray(4, 4 + ours.length);
  assert.equal(ours.toString('hex'), theirs.toString('hex'));
});

test('--max-size/--min-size skip a changed file outside the bounds (not for a redo); --append sends the sum head alone and skips a file as long here', async () => {
  const { s, files, checksummer } = await capturedList('pull_delta');
  const a = byName(files, 'a.txt');
  const size = files[a]!.size;
  const run = async (options: Partial<GeneratorOptions>, redo = false, tree = afterInitial()) => {
    const sink = memorySink();
    const writer = new ByteWriter(sink);
    writer.protocol = s.protocol;
    const state = newGeneratorState(writer, files, tree, checksummer, new RecvChannel(), { ...ARCHIVE, ...options });
    await recvGenerator(state, a, redo);
    await writer.flush();
    return { bytes: sink.bytes(), requested: state.requested };
  };
  assert.is((await run({ maxSize: size - 1 })).requested, 0, 'over max-size');
  assert.is((await run({ minSize: size + 1 })).requested, 0, 'under min-size');
  assert.is((await run({ maxSize: size, minSize: size })).requested, 1, 'the bounds are inclusive');
  assert.is((await run({ maxSize: 0 }, true)).bytes.length > 0, true, 'a redo ignores the bounds');
  // --append: the request is the plain one cut after the sum head (no block sums).
  const plain = await run({});
  const appended = await run({ append: 1 });
  assert.is(appended.requested, 1);
  assert.ok(appended.bytes.length < plain.bytes.length, 'block sums left out');
  assert.equal(appended.bytes.toString('hex'), plain.bytes.subarray(0, appended.bytes.length).toString('hex'));
  // A local file at least as long is left alone.
  const longer = afterInitial();
  longer.put('a.txt', S_IFREG | 0o644, T - 5, Buffer.alloc(size + 10, 0x61));
  assert.is((await run({ append: 1 }, false, longer)).requested, 0);
});

test('pull_delete after pull_delta: the phase script with --delete; our requests, NDX_DEL_STATS and NDX_DONEs are rsync\'s bytes', async () => {
  const tree = afterInitial();
  await replay('pull_delta', tree);
  // The capture's destination root already had the module root's time (no itemize of '.').
  tree.nodes.get('.')!.stat.mtime = 1795552053;
  tree.put('stale.txt', S_IFREG | 0o644, T, Buffer.from('gone from the daemon\n'));
  // Protected by the receiver's excludes (--exclude=p2* --exclude=p3* --exclude=z* --exclude=bin).
  tree.put('p2-kept', S_IFREG | 0o644, T, Buffer.from('x'));
  tree.put('zz', S_IFREG | 0o644, T, Buffer.from('x'));
  tree.put('bin', S_IFDIR | 0o755, T);
  tree.put('bin/tool', S_IFREG | 0o755, T, Buffer.from('x'));
  const deleted: string[] = [];
  const { ours, theirs, result } = await replay('pull_delete', tree, {
    delete: true,
    isProtected: (name) => /^(p2|p3|z)/.test(name.toString()) || name.toString() === 'bin',
    onDeleted: (name) => deleted.push(name.toString()),
  });
  // The client's data stream after its filter list (the four rules: 39 bytes).
  assert.equal(ours.toString('hex'), theirs.subarray(39).toString('hex'));
  assert.equal(deleted, ['stale.txt']);
  assert.equal(result.generator.deleted, { files: 1, dirs: 0, symlinks: 0, devices: 0, specials: 0 });
  assert.equal(result.receiver.deleted, result.generator.deleted, 'the daemon echoed our counts');
  assert.is(result.receiver.failedFiles, 0);
  assert.not.ok(tree.nodes.has('stale.txt'));
  for (const kept of ['p2-kept', 'zz', 'bin', 'bin/tool']) assert.ok(tree.nodes.has(kept), kept);
  assert.is(tree.nodes.get('a.txt')!.data!.length, 3025);
  assert.is(tree.nodes.get('a.txt')!.stat.mtime, 1709528767);
});

for (const deleteWhen of ['before', 'during', 'delay', 'after'] as const) {
  test(`pull_delete replayed with --delete-${deleteWhen}: the same bytes as rsync's (late counts go after the same phase ends), the same deletion`, async () => {
    const tree = afterInitial();
    await replay('pull_delta', tree);
    tree.nodes.get('.')!.stat.mtime = 1795552053;
    tree.put('stale.txt', S_IFREG | 0o644, T, Buffer.from('gone from the daemon\n'));
    const { ours, theirs, result } = await replay('pull_delete', tree, {
      delete: true,
      deleteWhen,
      isProtected: (name) => /^(p2|p3|z)/.test(name.toString()) || name.toString() === 'bin',
    });
    assert.equal(ours.toString('hex'), theirs.subarray(39).toString('hex'));
    assert.equal(result.generator.deleted, { files: 1, dirs: 0, symlinks: 0, devices: 0, specials: 0 });
    assert.not.ok(tree.nodes.has('stale.txt'));
  });
}

test('pull_delete replayed with --max-delete=0: nothing deleted, IOERR_DEL_LIMIT and rsync\'s warning', async () => {
  const tree = afterInitial();
  await replay('pull_delta', tree);
  tree.put('stale.txt', S_IFREG | 0o644, T, Buffer.from('gone from the daemon\n'));
  const warnings: string[] = [];
  const { result } = await replay('pull_delete', tree, { delete: true, maxDelete: 0, onWarning: (t) => warnings.push(t) });
  assert.ok(tree.nodes.has('stale.txt'));
  assert.is(result.generator.skippedDeletes, 1);
  assert.is(result.generator.ioError, IOERR_DEL_LIMIT);
  assert.equal(warnings, ['Deletions stopped due to --max-delete limit (1 skipped)']);
});

/** One entry through recvGenerator over pull_delta's list; what it wrote and what it itemized. */
async function generateOne(tree: MemTree, name: string, options: Partial<GeneratorOptions>) {
  const { s, files, checksummer } = await capturedList('pull_delta');
  const sink = memorySink();
  const writer = new ByteWriter(sink);
  writer.protocol = s.protocol;
  const items: GeneratedItem[] = [];
  const state = newGeneratorState(writer, files, tree, checksummer, new RecvChannel(), { ...ARCHIVE, ...options, onItem: (item) => items.push(item) });
  await recvGenerator(state, byName(files, name), false);
  await writer.flush();
  // rsync's request for a.txt in the capture (after the empty filter list): ndx, iflags, sums.
  const theirs = dataStream(loadCapture('pull_delta').c2s, s.decoded, 'c2s').subarray(4);
  return { ours: sink.bytes(), theirs, items, state };
}

/** The destination after pull_initial without a.txt; its old a.txt is elsewhere. */
function withoutA(): MemTree {
  const tree = afterInitial();
  tree.nodes.delete('a.txt');
  return tree;
}

test('a basis dir\'s a.txt as the basis: the capture\'s request with ITEM_BASIS_TYPE_FOLLOWS and basis type 0, the same sums', async () => {
  const tree = withoutA();
  tree.basis.push(new MemTree(), afterInitial()); // found in the second basis dir: type 1
  const { ours, theirs, items } = await generateOne(tree, 'a.txt', { altDest: { kind: 'copy', count: 2 } });
  // ndx (1 byte), iflags (2), the basis type, then exactly the capture's sum head and sums.
  assert.is(ours[0], theirs[0]);
  const iflags = ours.readUInt16LE(1);
  assert.is(iflags, theirs.readUInt16LE(1) | ITEM_BASIS_TYPE_FOLLOWS, 'itemized against the basis dir\'s file');
  assert.is(ours[3], 1);
  assert.equal(ours.subarray(4).toString('hex'), theirs.subarray(3, 3 + ours.length - 4).toString('hex'));
  assert.is(items[0]!.iflags, iflags);
});

test('--fuzzy: a similar name in the directory as the basis: FNAMECMP_FUZZY and the xname, the capture\'s sums', async () => {
  const tree = withoutA();
  tree.put('a-old.txt', S_IFREG | 0o644, T, captureATxt(true));
  tree.put('b.dat', S_IFREG | 0o644, T, Buffer.from('far by name'));
  const { ours, theirs } = await generateOne(tree, 'a.txt', { fuzzy: 1 });
  const iflags = ours.readUInt16LE(1);
  assert.is(iflags, ITEM_TRANSFER | ITEM_IS_NEW | ITEM_BASIS_TYPE_FOLLOWS | ITEM_XNAME_FOLLOWS);
  assert.is(ours[3], FNAMECMP_FUZZY);
  assert.is(ours[4], 'a-old.txt'.length);
  assert.is(ours.subarray(5, 14).toString(), 'a-old.txt');
  assert.equal(ours.subarray(14).toString('hex'), theirs.subarray(3, 3 + ours.length - 14).toString('hex'));
  // -yy finds it in a basis dir's same directory instead (FUZZY + 1 + j).
  const other = withoutA();
  const base = new MemTree();
  base.put('a-old.txt', S_IFREG | 0o644, T, captureATxt(true));
  other.basis.push(base);
  const yy = await generateOne(other, 'a.txt', { fuzzy: 2, altDest: { kind: 'copy', count: 1 } });
  assert.is(yy.ours[3], FNAMECMP_FUZZY + 1);
  const y = await generateOne(withoutA(), 'a.txt', { fuzzy: 1, altDest: { kind: 'copy', count: 1 } });
  assert.is(y.ours.readUInt16LE(1) & ITEM_BASIS_TYPE_FOLLOWS, 0, 'one -y never looks in a basis dir');
});

test('identical in a basis dir: --compare-dest leaves it out, --copy-dest copies it, --link-dest links it; nothing travels', async () => {
  const { files } = await capturedList('pull_delta');
  const a = files[byName(files, 'a.txt')]!;
  for (const kind of ['compare', 'copy', 'link'] as const) {
    const tree = withoutA();
    const base = new MemTree();
    // The daemon's size and mtime (pull_delta's a.txt): identical by the quick check.
    base.put('a.txt', a.mode, a.mtime, Buffer.alloc(a.size, 0x61));
    base.nodes.get('a.txt')!.stat.uid = a.uid;
    base.nodes.get('a.txt')!.stat.gid = a.gid;
    tree.basis.push(base);
    const { ours, state } = await generateOne(tree, 'a.txt', { altDest: { kind, count: 1 } });
    assert.is(ours.length, 0, kind);
    assert.is(state.requested, 0, kind);
    if (kind === 'compare') assert.not.ok(tree.nodes.has('a.txt'));
    if (kind === 'copy') assert.ok(tree.nodes.get('a.txt')!.data!.equals(Buffer.alloc(a.size, 0x61)) && tree.nodes.get('a.txt') !== base.nodes.get('a.txt'));
    if (kind === 'link') assert.is(tree.nodes.get('a.txt'), base.nodes.get('a.txt'), 'the same node: a hard link');
  }
});

test('--size-only, --ignore-existing, --existing, -u: which local a.txt is left alone', async () => {
  const { files } = await capturedList('pull_delta');
  const a = files[byName(files, 'a.txt')]!;
  // Same size as the daemon's a.txt, another content and an older mtime.
  const sameSize = () => {
    const tree = afterInitial();
    tree.put('a.txt', S_IFREG | 0o644, a.mtime - 10, Buffer.alloc(a.size, 0x61));
    return tree;
  };
  assert.is((await generateOne(sameSize(), 'a.txt', { sizeOnly: true })).state.requested, 0, '--size-only');
  assert.is((await generateOne(sameSize(), 'a.txt', {})).state.requested, 1);
  assert.is((await generateOne(afterInitial(), 'a.txt', { ignoreExisting: true })).state.requested, 0, '--ignore-existing');
  assert.is((await generateOne(withoutA(), 'a.txt', { ignoreExisting: true })).state.requested, 1);
  assert.is((await generateOne(withoutA(), 'a.txt', { existing: true })).state.requested, 0, '--existing');
  assert.is((await generateOne(afterInitial(), 'a.txt', { existing: true })).state.requested, 1);
  const newer = afterInitial();
  newer.nodes.get('a.txt')!.stat.mtime = a.mtime + 1;
  assert.is((await generateOne(newer, 'a.txt', { update: true })).state.requested, 0, '-u: newer here');
  assert.is((await generateOne(afterInitial(), 'a.txt', { update: true })).state.requested, 1, '-u: older here');
});

test('--delete-missing-args: a mode-0 entry deletes what is here (a directory only with --delete or --force)', async () => {
  const { s, checksummer } = await capturedList('pull_delta');
  const run = async (tree: MemTree, options: Partial<GeneratorOptions>) => {
    const writer = new ByteWriter(memorySink());
    writer.protocol = s.protocol;
    const missing = [{ name: Buffer.from('gone'), mode: 0, size: 0, mtime: 0, uid: 0, gid: 0, wireIndex: 0, active: true }] as ReceivedEntry[];
    const state = newGeneratorState(writer, missing, tree, checksummer, new RecvChannel(), { ...ARCHIVE, ...options });
    await recvGenerator(state, 0, false);
    return state;
  };
  const file = new MemTree();
  file.put('gone', S_IFREG | 0o644, T, Buffer.from('x'));
  assert.is((await run(file, { deleteMissingArgs: true })).deleted.files, 1);
  assert.not.ok(file.nodes.has('gone'));
  const dir = () => {
    const t = new MemTree();
    t.put('gone', S_IFDIR | 0o755, T);
    t.put('gone/x', S_IFREG | 0o644, T, Buffer.from('x'));
    return t;
  };
  const kept = dir();
  const infos: string[] = [];
  await run(kept, { deleteMissingArgs: true, onInfo: (t) => infos.push(t) });
  assert.ok(kept.nodes.has('gone/x'));
  assert.equal(infos, ['cannot delete non-empty directory: gone']);
  const forced = dir();
  assert.equal((await run(forced, { deleteMissingArgs: true, force: true })).deleted, { files: 1, dirs: 1, symlinks: 0, devices: 0, specials: 0 });
  const refused = await run(file, {}).then(() => null, (e: Error) => e);
  assert.match(String(refused?.message), /without a mode/, 'a mode-0 entry without --delete-missing-args');
});

test.run();
