// Deletion on its own (protocol/delete.ts) over an in-memory destination: the list's names per
// directory from a real file list (pull_initial), delete_in_dir's order and counts, protected
// names, -n, making room for an entry of another type, and the NDX_DEL_STATS record against the
// bytes of a real --delete pull (pull_delete: rsync's client wrote it, the daemon echoed it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadCapture, dataStream, memorySink, piecesSource, sessionOf } from './helpers/capture.js';
import { MemTree } from './helpers/memtree.js';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { receiveFileList } from '../protocol/flist-recv.js';
import { deleteInDir, makeRoom, namesByDir, newDeleteContextFields, newDeleteStats, readDelStats, writeDelStats, type DeleteContext } from '../protocol/delete.js';
import { NDX_DEL_STATS } from '../protocol/constants.js';
import { S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG } from '../protocol/modes.js';

const T = 1704164645;

/** A destination with what pull_initial brought, plus local extras the daemon does not have. */
function localTree(): MemTree {
  const tree = new MemTree();
  tree.put('.', S_IFDIR | 0o755, T);
  tree.put('a.txt', S_IFREG | 0o644, T, Buffer.from('a'));
  tree.put('link', S_IFLNK | 0o777, T, undefined, 'a.txt');
  tree.put('sub', S_IFDIR | 0o755, T);
  tree.put('sub/b.txt', S_IFREG | 0o644, T, Buffer.from('b'));
  // Not in the list:
  tree.put('old', S_IFDIR | 0o755, T);
  tree.put('old/x', S_IFREG | 0o644, T, Buffer.from('x'));
  tree.put('old/y', S_IFLNK | 0o777, T, undefined, 'x');
  tree.put('old.txt', S_IFREG | 0o644, T, Buffer.from('o'));
  tree.put('pipe', S_IFIFO | 0o644, T);
  tree.put('sub/c.txt', S_IFREG | 0o644, T, Buffer.from('c'));
  tree.put('zkeep', S_IFREG | 0o644, T, Buffer.from('z'));
  return tree;
}

async function initialList() {
  const s = sessionOf('pull_initial');
  const reader = new ByteReader(piecesSource(dataStream(loadCapture('pull_initial').s2c, s.decoded, 's2c')));
  reader.protocol = s.protocol;
  const flist = await receiveFileList(reader, { protocol: s.protocol, compatFlags: s.compatFlags, preserveUid: true, preserveGid: true, preserveLinks: true, preserveDevices: true, preserveSpecials: true, checksumLength: 16 });
  return flist.files;
}

async function context(tree: MemTree, over: Partial<DeleteContext & { protect: RegExp }> = {}) {
  const deleted: string[] = [];
  const warnings: string[] = [];
  const ctx: DeleteContext = {
    tree,
    doXfers: over.doXfers ?? true,
    listed: namesByDir(await initialList()),
    ...newDeleteContextFields(),
    options: {
      delete: over.options?.delete ?? true,
      ...(over.protect && { isProtected: (name: Buffer) => over.protect!.test(name.toString()) }),
      onDeleted: (name, isDir) => deleted.push(name.toString() + (isDir ? '/' : '')),
      onWarning: (text) => warnings.push(text),
    },
  };
  return { ctx, deleted, warnings };
}

test('namesByDir: the names of a real file list per directory, without the root entry', async () => {
  const listed = namesByDir(await initialList());
  assert.equal([...listed.keys()].sort(), ['.', 'sub']);
  assert.equal([...listed.get('.')!].sort(), ['a.txt', 'link', 'sub']);
  assert.equal([...listed.get('sub')!], ['b.txt']);
});

test('namesByDir: a duplicate cleared by the sort does not keep a local name', async () => {
  const files = await initialList();
  const cleared = files.map((f) => (f.name.toString() === 'sub/b.txt' ? { ...f, active: false } : f));
  assert.not.ok(namesByDir(cleared).has('sub'));
});

test('deleteInDir: extraneous names go, last name first, a directory after its contents; each counted by type', async () => {
  const tree = localTree();
  const { ctx, deleted } = await context(tree, { protect: /^zkeep$/ });
  await deleteInDir(ctx, Buffer.from('.'));
  await deleteInDir(ctx, Buffer.from('sub'));
  assert.equal(deleted, ['pipe', 'old.txt', 'old/y', 'old/x', 'old/', 'sub/c.txt']);
  assert.equal(ctx.deleted, { files: 3, dirs: 1, symlinks: 1, devices: 0, specials: 1 });
  assert.equal([...tree.nodes.keys()].sort(), ['.', 'a.txt', 'link', 'sub', 'sub/b.txt', 'zkeep']);
});

test('deleteInDir with -n: the same names are counted and reported, nothing is removed', async () => {
  const tree = localTree();
  const before = [...tree.nodes.keys()].sort();
  const { ctx, deleted } = await context(tree, { doXfers: false, protect: /^zkeep$/ });
  await deleteInDir(ctx, Buffer.from('.'));
  assert.equal(deleted, ['pipe', 'old.txt', 'old/y', 'old/x', 'old/']);
  assert.equal(ctx.deleted, { files: 2, dirs: 1, symlinks: 1, devices: 0, specials: 1 });
  assert.equal([...tree.nodes.keys()].sort(), before);
});

test('makeRoom: a non-empty directory stays without --delete ("could not make way"); otherwise it goes, uncounted but its contents counted', async () => {
  const tree = localTree();
  const old = (await tree.lstat(Buffer.from('old')))!;
  const kept = await context(tree, { options: { delete: false } });
  assert.not.ok(await makeRoom(kept.ctx, Buffer.from('old'), old, 'file'));
  assert.equal(kept.warnings, ['could not make way for new file: old']);
  assert.is(kept.ctx.failed, 1);
  assert.ok(tree.nodes.has('old/x'));

  const gone = await context(tree);
  assert.ok(await makeRoom(gone.ctx, Buffer.from('old'), old, 'file'));
  assert.not.ok(tree.nodes.has('old'));
  assert.equal(gone.deleted, ['old/y', 'old/x']);
  assert.equal(gone.ctx.deleted, { files: 1, dirs: 0, symlinks: 1, devices: 0, specials: 0 });

  // A file in the way, and an empty directory without --delete: removed, nothing counted.
  tree.put('empty', S_IFDIR | 0o755, T);
  const quiet = await context(tree, { options: { delete: false } });
  assert.ok(await makeRoom(quiet.ctx, Buffer.from('old.txt'), (await tree.lstat(Buffer.from('old.txt')))!, 'directory'));
  assert.ok(await makeRoom(quiet.ctx, Buffer.from('empty'), (await tree.lstat(Buffer.from('empty')))!, 'symlink'));
  assert.not.ok(tree.nodes.has('old.txt') || tree.nodes.has('empty'));
  assert.equal(quiet.deleted, []);
  assert.equal(quiet.ctx.deleted, newDeleteStats());
});

test('writeDelStats / readDelStats: the NDX_DEL_STATS record of pull_delete, both ways', async () => {
  const s = sessionOf('pull_delete');
  const cap = loadCapture('pull_delete');
  const stats = { files: 1, dirs: 0, symlinks: 0, devices: 0, specials: 0 };
  // Ours as rsync's client wrote it (c2s data stream at 91, after its three NDX_DONEs).
  const sink = memorySink();
  const writer = new ByteWriter(sink);
  writer.protocol = s.protocol;
  for (let i = 0; i < 3; i++) writer.writeNdx(-1);
  writeDelStats(writer, stats);
  await writer.flush();
  assert.equal(sink.bytes().subarray(3).toString('hex'), dataStream(cap.c2s, s.decoded, 'c2s').subarray(91, 98).toString('hex'));
  // The daemon's echo (s2c data stream at 884) read back.
  const reader = new ByteReader(piecesSource(dataStream(cap.s2c, s.decoded, 's2c').subarray(884)));
  reader.protocol = s.protocol;
  assert.is(await reader.readNdx(), NDX_DEL_STATS);
  assert.equal(await readDelStats(reader), stats);
});

test.run();
