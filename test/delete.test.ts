// Deletion on its own (protocol/delete.ts) over an in-memory destination: the list's names per
// directory from a real file list (pull_initial), delete_in_dir's order and counts, protected
// names, -n, making room for an entry of another type, and the NDX_DEL_STATS record against the
// bytes of a real --delete pull (pull_delete: rsync's client wrote it, the daemon echoed it); the
// passes of --delete-before/-after, --delete-delay's noting, --max-delete, --ignore-errors, --force.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadCapture, dataStream, memorySink, piecesSource, sessionOf } from './helpers/capture.js';
import { MemTree } from './helpers/memtree.js';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { receiveFileList } from '../protocol/flist-recv.js';
import {
  deleteInDir,
  doDelayedDeletions,
  doDeletePass,
  makeRoom,
  namesByDir,
  newDeleteContextFields,
  newDeleteStats,
  readDelStats,
  writeDelStats,
  type DeleteContext,
} from '../protocol/delete.js';
import { IOERR_GENERAL, NDX_DEL_STATS } from '../protocol/constants.js';
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
  const infos: string[] = [];
  const ctx: DeleteContext = {
    tree,
    doXfers: over.doXfers ?? true,
    listed: namesByDir(await initialList()),
    ...newDeleteContextFields(),
    options: {
      ...over.options,
      delete: over.options?.delete ?? true,
      ...(over.protect && { isProtected: (name: Buffer) => over.protect!.test(name.toString()) }),
      onDeleted: (name, isDir) => deleted.push(name.toString() + (isDir ? '/' : '')),
      onWarning: (text) => warnings.push(text),
      onInfo: (text) => infos.push(text),
    },
  };
  return { ctx, deleted, warnings, infos };
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

// rsync walks a directory's listing in file-list order, backwards: from protocol 29 the
// directories sort after the files, so they go first (the --max-delete case of pull-options shows
// it against rsync).
test('deleteInDir: extraneous names go, last name first in file-list order, a directory after its contents; each counted by type', async () => {
  const tree = localTree();
  const { ctx, deleted } = await context(tree, { protect: /^zkeep$/ });
  await deleteInDir(ctx, Buffer.from('.'));
  await deleteInDir(ctx, Buffer.from('sub'));
  assert.equal(deleted, ['old/y', 'old/x', 'old/', 'pipe', 'old.txt', 'sub/c.txt']);
  assert.equal(ctx.deleted, { files: 3, dirs: 1, symlinks: 1, devices: 0, specials: 1 });
  assert.equal([...tree.nodes.keys()].sort(), ['.', 'a.txt', 'link', 'sub', 'sub/b.txt', 'zkeep']);
});

test('deleteInDir with -n: the same names are counted and reported, nothing is removed', async () => {
  const tree = localTree();
  const before = [...tree.nodes.keys()].sort();
  const { ctx, deleted } = await context(tree, { doXfers: false, protect: /^zkeep$/ });
  await deleteInDir(ctx, Buffer.from('.'));
  assert.equal(deleted, ['old/y', 'old/x', 'old/', 'pipe', 'old.txt']);
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

test('doDeletePass (--delete-before, --delete-after): every directory of the list that is one here, in list order', async () => {
  const tree = localTree();
  const { ctx, deleted } = await context(tree, { protect: /^zkeep$/ });
  await doDeletePass(ctx, await initialList());
  assert.equal(deleted, ['old/y', 'old/x', 'old/', 'pipe', 'old.txt', 'sub/c.txt']);
  // A listed directory that is a file here is passed over (it is made room for later).
  const swapped = localTree();
  swapped.nodes.delete('sub/b.txt');
  swapped.nodes.delete('sub/c.txt');
  swapped.put('sub', S_IFREG | 0o644, T, Buffer.from('not a dir'));
  const other = await context(swapped, { protect: /^zkeep$/ });
  await doDeletePass(other.ctx, await initialList());
  assert.ok(swapped.nodes.has('sub'));
});

test('--delete-delay: deleteInDir only notes; doDelayedDeletions removes them later, counted then', async () => {
  const tree = localTree();
  const { ctx, deleted } = await context(tree, { protect: /^zkeep$/, options: { delete: true, deleteWhen: 'delay' } });
  await deleteInDir(ctx, Buffer.from('.'));
  assert.equal(deleted, []);
  assert.ok(tree.nodes.has('old/x'));
  assert.equal(ctx.delayed.map((d) => d.name.toString()), ['old', 'pipe', 'old.txt']);
  await doDelayedDeletions(ctx);
  assert.equal(deleted, ['old/y', 'old/x', 'old/', 'pipe', 'old.txt']);
  assert.equal(ctx.delayed, []);
});

test('--max-delete: deletions stop at N, the rest counted as skipped; a directory with a skipped content stays', async () => {
  const tree = localTree();
  const { ctx, deleted, infos } = await context(tree, { protect: /^zkeep$/, options: { delete: true, maxDelete: 1 } });
  await deleteInDir(ctx, Buffer.from('.'));
  assert.equal(deleted, ['old/y']);
  assert.is(ctx.skippedDeletes, 3, 'old/x, pipe, old.txt (old/ itself is not tried)');
  assert.equal(infos, ['cannot delete non-empty directory: old']);
  assert.ok(tree.nodes.has('old/x') && tree.nodes.has('old'));
  // Making room is never limited.
  const room = await context(localTree(), { options: { delete: true, maxDelete: 0 } });
  assert.ok(await makeRoom(room.ctx, Buffer.from('old.txt'), (await room.ctx.tree.lstat(Buffer.from('old.txt')))!, 'directory'));
  // A negative limit is rsync's 0: nothing goes.
  const none = await context(localTree(), { options: { delete: true, maxDelete: -5 } });
  await deleteInDir(none.ctx, Buffer.from('.'));
  assert.equal(none.deleted, []);
});

test('the sender\'s IOERR_GENERAL: nothing deleted and one note, unless --ignore-errors', async () => {
  const stopped = await context(localTree(), { options: { delete: true, ioError: () => IOERR_GENERAL } });
  await deleteInDir(stopped.ctx, Buffer.from('.'));
  await deleteInDir(stopped.ctx, Buffer.from('sub'));
  assert.equal(stopped.deleted, []);
  assert.equal(stopped.infos, ['IO error encountered -- skipping file deletion']);
  const forced = await context(localTree(), { protect: /^zkeep$/, options: { delete: true, ioError: () => IOERR_GENERAL, ignoreErrors: true } });
  await deleteInDir(forced.ctx, Buffer.from('.'));
  assert.equal(forced.deleted, ['old/y', 'old/x', 'old/', 'pipe', 'old.txt']);
});

test('--force: a non-empty directory makes room without --delete, its contents counted', async () => {
  const tree = localTree();
  const { ctx, deleted, warnings } = await context(tree, { options: { delete: false, force: true } });
  assert.ok(await makeRoom(ctx, Buffer.from('old'), (await tree.lstat(Buffer.from('old')))!, 'file'));
  assert.equal(warnings, []);
  assert.equal(deleted, ['old/y', 'old/x']);
  assert.not.ok(tree.nodes.has('old'));
});

test.run();
