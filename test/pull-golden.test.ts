// The pull roles against real bytes: the daemon's side of recorded rsync 3.5.0 pulls
// (fixtures/captures pull_initial, pull_delta, pull_proto27/29/30) is fed to receiveFileList and
// to doRecv (generator + receiver) over an in-memory destination; what our generator writes must
// be byte for byte what rsync's client wrote (requests, iflags, sum heads, block sums with the
// session's seed, NDX_DONE choreography per protocol), and every rebuilt file must pass the
// daemon's whole-file checksum. Also every segmentation of the input for one capture.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadCapture, dataStream, memorySink, captureATxt, piecesSource, sessionOf, type Capture } from './helpers/capture.js';
import { MemTree, ARCHIVE } from './helpers/memtree.js';
import { ByteReader, ByteWriter, type ByteSource } from '../protocol/io.js';
import { receiveFileList } from '../protocol/flist-recv.js';
import { createChecksummer } from '../protocol/checksum.js';
import { doRecv } from '../protocol/receiver.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../protocol/modes.js';

/** Run our roles on the daemon's recorded stream; return what our side wrote and the tree. */
async function replay(name: string, tree: MemTree, source?: (bytes: Buffer) => ByteSource, slowSink = false) {
  const cap: Capture = loadCapture(name);
  const s = sessionOf(name);
  const s2c = dataStream(cap.s2c, s.decoded, 's2c');
  const reader = new ByteReader(source ? source(s2c) : piecesSource(s2c));
  reader.protocol = s.protocol;
  const sink = memorySink();
  // A slow socket: each write completes on a later turn, so the receiver runs meanwhile.
  const writer = new ByteWriter(slowSink ? { write: (b) => new Promise<void>((r) => setTimeout(() => void sink.write(b).then(r), 2)) } : sink);
  writer.protocol = s.protocol;
  // -a as the captures ran it (-logDtpr), as root.
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
  const cs = await createChecksummer(s.checksum, { protocol: s.protocol, seed: s.seed, compatFlags: s.compatFlags, implied: s.implied });
  const result = await doRecv(reader, writer, flist.files, tree, cs, ARCHIVE);
  await writer.flush();
  // The client's data stream: the filter list (empty: int32 0), then the generator's output.
  const ours = Buffer.concat([Buffer.alloc(4), sink.bytes()]);
  const theirs = s.protocol >= 30 ? dataStream(cap.c2s, s.decoded, 'c2s') : cap.c2s.subarray(cap.c2s.length - ours.length);
  return { ours, theirs, result, flist, reader };
}

for (const name of ['pull_initial', 'pull_proto30', 'pull_proto29', 'pull_proto27']) {
  test(`${name}: into an empty destination, our requests are rsync's bytes and every file verifies`, async () => {
    const tree = new MemTree();
    const { ours, theirs, result, flist } = await replay(name, tree);
    assert.ok(ours.length > 40, `${ours.length} bytes`);
    assert.equal(ours.toString('hex'), theirs.toString('hex'));
    assert.is(result.receiver.failedFiles, 0);
    const regular = flist.files.filter((f) => (f.mode & S_IFMT) === S_IFREG);
    assert.ok(regular.length >= 2);
    assert.is(result.receiver.transferredFiles, regular.length);
    for (const f of regular) assert.is(tree.nodes.get(f.name.toString('latin1'))?.data?.length, f.size, f.name.toString());
    assert.equal(tree.nodes.get('a.txt')?.data?.subarray(0, 30).toString(), 'line 0000: the quick brown fox');
  });
}

/** The destination pull_initial left (a.txt before the daemon-side edit: the push_delta version). */
function afterInitial(): MemTree {
  const tree = new MemTree();
  const T = 1704164645;
  tree.put('.', S_IFDIR | 0o755, T);
  tree.put('link', S_IFLNK | 0o777, T, undefined, 'a.txt');
  tree.put('sub', S_IFDIR | 0o755, T);
  tree.put('a.txt', S_IFREG | 0o644, Date.UTC(2024, 2, 4, 5, 6, 7) / 1000, captureATxt(true));
  tree.put('sub/b.txt', S_IFREG | 0o644, T, Buffer.from('second file in subdir\n'));
  return tree;
}

test('pull_delta: block sums of the local basis as rsync sent them; the delta rebuilds the daemon file', async () => {
  const tree = afterInitial();
  const { ours, theirs, result } = await replay('pull_delta', tree);
  assert.is(ours.length, 4 + 50 + 3 + 1);
  assert.equal(ours.toString('hex'), theirs.toString('hex'));
  assert.is(result.receiver.transferredFiles, 1);
  assert.is(result.receiver.failedFiles, 0);
  assert.is(result.receiver.matchedBytes, 4 * 700 - 700 + 225);
  assert.is(result.receiver.literalBytes, 701);
  const a = tree.nodes.get('a.txt')!.data!;
  assert.is(a.length, 3026);
  assert.match(a.toString(), 'line 0040: A SLOW');
  assert.is(tree.nodes.get('a.txt')!.stat.mtime, 1714979289);
  assert.equal(result.receiver.totals, { totalRead: 69, totalWritten: 874, totalSize: 3068, flistBuildTime: 1, flistXferTime: 0 });
});

test('pull_delta: the daemon stream split at every offset gives the same requests', async () => {
  const whole = (await replay('pull_delta', afterInitial())).ours;
  const cap = loadCapture('pull_delta');
  const length = dataStream(cap.s2c, sessionOf('pull_delta').decoded, 's2c').length;
  for (let cut = 1; cut < length; cut += 7) {
    const { ours } = await replay('pull_delta', afterInitial(), (bytes) => piecesSource(bytes, [cut, cut + 1, cut + 3]));
    assert.equal(ours, whole, `cut at ${cut}`);
  }
});

test('a slow socket: the receiver reports phase ends while the generator writes, and nothing is lost', async () => {
  for (const name of ['pull_delta', 'pull_proto29', 'pull_proto27']) {
    const tree = name === 'pull_delta' ? afterInitial() : new MemTree();
    // The daemon's bytes trickle in too, a few at a time on later turns.
    const trickle = (bytes: Buffer): ByteSource => {
      let at = 0;
      const step = bytes.length > 4000 ? 97 : 3;
      return { read: () => new Promise((r) => setTimeout(() => r(at < bytes.length ? bytes.subarray(at, (at += step)) : null), 1)) };
    };
    const run = replay(name, tree, trickle, true);
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${name}: the roles hung`)), 5000));
    const { ours, theirs } = await Promise.race([run, timeout]);
    assert.equal(ours.toString('hex'), theirs.toString('hex'), name);
  }
});

test.run();
