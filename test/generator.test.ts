// The generator's steps on their own, over an in-memory destination and the file lists of real
// rsync 3.5.0 pulls (fixtures/captures): the quick check against the local tree, one entry through
// recvGenerator, and the whole phase script of a --delete pull (pull_delete) whose requests,
// NDX_DEL_STATS and NDX_DONEs must be rsync's client's bytes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadCapture, dataStream, memorySink, captureATxt, piecesSource, sessionOf } from './helpers/capture.js';
import { MemTree, ARCHIVE } from './helpers/memtree.js';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { receiveFileList, type ReceivedEntry } from '../protocol/flist-recv.js';
import { createChecksummer } from '../protocol/checksum.js';
import { doRecv } from '../protocol/receiver.js';
import { newGeneratorState, quickCheckOk, recvGenerator, RecvChannel, type GeneratedItem, type GeneratorOptions } from '../protocol/generator.js';
import { ITEM_REPORT_SIZE, ITEM_REPORT_TIME, ITEM_TRANSFER } from '../protocol/constants.js';
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

test.run();
