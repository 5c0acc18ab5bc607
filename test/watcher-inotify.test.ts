// The inotify watcher against the real kernel, in temp dirs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import {
  chmodSync, mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync, appendFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { watch, pathToBytes, type Watcher } from '../src/watcher/index.js';
import { Collector, removeDir, tempDir } from './helpers/watch-util.js';

async function withWatcher(
  fn: (root: string, w: Watcher, c: Collector) => Promise<void>,
  opts: Parameters<typeof watch>[1] = {},
  setup?: (root: string) => void,
): Promise<void> {
  const root = tempDir('inotify');
  try {
    setup?.(root);
    const w = watch(root, { backend: 'inotify', ...opts });
    const c = new Collector(w);
    try {
      assert.is(w.backend, 'inotify');
      await fn(root, w, c);
    } finally {
      w.close();
    }
  } finally {
    removeDir(root);
  }
}

/** A 1,000-file tree outside any watched root: 10 directories of 100 files. */
function makeTree(dir: string): string[] {
  const files: string[] = [];
  for (let d = 0; d < 10; d++) {
    mkdirSync(join(dir, `d${d}`), { recursive: true });
    for (let f = 0; f < 100; f++) {
      writeFileSync(join(dir, `d${d}`, `f${f}`), `${d}/${f}`);
      files.push(`d${d}/f${f}`);
    }
  }
  return files;
}

test('create, modify, chmod, touch, delete of a file', () =>
  withWatcher(async (root, _w, c) => {
    const f = join(root, 'a.txt');
    writeFileSync(f, 'one');
    await c.until((e) => e.some((x) => x.type === 'create' && x.path === 'a.txt' && !x.isDir), 2000, 'create');
    c.clear();
    appendFileSync(f, 'two');
    await c.until(() => c.has('modify', 'a.txt'), 2000, 'modify on close_write');
    c.clear();
    chmodSync(f, 0o600);
    await c.until(() => c.has('attrib', 'a.txt'), 2000, 'attrib on chmod');
    c.clear();
    utimesSync(f, new Date(1000), new Date(1000));
    await c.until(() => c.has('attrib', 'a.txt'), 2000, 'attrib on touch');
    c.clear();
    unlinkSync(f);
    await c.until(() => c.has('delete', 'a.txt'), 2000, 'delete');
    mkdirSync(join(root, 'sub'));
    await c.until(() => c.events.some((x) => x.type === 'create' && x.path === 'sub' && x.isDir), 2000, 'mkdir');
    rmSync(join(root, 'sub'), { recursive: true });
    await c.until(() => c.events.some((x) => x.type === 'delete' && x.path === 'sub' && x.isDir), 2000, 'rmdir');
  }));

test('IN_MODIFY is reported only with the modify option', () =>
  withWatcher(
    async (root, _w, c) => {
      writeFileSync(join(root, 'm'), '');
      await c.until(() => c.has('create', 'm'));
      c.clear();
      // the fd stays open: without IN_MODIFY nothing would be reported yet
      const { openSync, writeSync, closeSync } = await import('node:fs');
      const fd = openSync(join(root, 'm'), 'a');
      writeSync(fd, 'x');
      await c.until(() => c.has('modify', 'm'), 2000, 'modify before close');
      closeSync(fd);
    },
    { modify: true },
  ));

test('deep mkdir -p followed at once by writes is never lost', () =>
  withWatcher(async (root, w, c) => {
    const expected = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const dir = join(root, `t${i}`, 'b', 'c', 'd', 'e');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'f'), String(i));
      expected.add(`t${i}/b/c/d/e/f`);
      expected.add(`t${i}/b/c/d/e`);
    }
    await c.until(() => [...expected].every((p) => c.has('create', p)), 4000, 'all deep files');
    assert.is(w.stats().watches, 1 + 20 * 5);
    const creates = c.events.filter((e) => e.type === 'create').map((e) => e.path);
    assert.is(creates.length, new Set(creates).size, 'each path reported once');
    // and the new directories are really watched
    c.clear();
    writeFileSync(join(root, 't3/b/c/d/e/g'), 'late');
    await c.until(() => c.has('create', 't3/b/c/d/e/g'));
  }));

test('cp -r and mv of a 1,000-file tree in, then mv out', async () => {
  const outside = tempDir('outside');
  try {
    const files = makeTree(join(outside, 'src'));
    await withWatcher(async (root, w, c) => {
      execFileSync('cp', ['-r', join(outside, 'src'), join(root, 'copied')]);
      await c.until(() => files.every((f) => c.has('create', `copied/${f}`)), 8000, 'cp -r: 1,000 creates');
      assert.is(w.stats().watches, 1 + 11);

      c.clear();
      renameSync(join(outside, 'src'), join(root, 'moved'));
      await c.until(() => files.every((f) => c.has('create', `moved/${f}`)), 8000, 'mv in: scanned as created');
      assert.ok(c.events.some((e) => e.type === 'create' && e.path === 'moved' && e.isDir));
      assert.is(w.stats().watches, 1 + 22);

      c.clear();
      renameSync(join(root, 'moved'), join(outside, 'back'));
      await c.until(() => c.has('delete', 'moved'), 3000, 'mv out: one delete');
      await c.settle(100);
      assert.is(w.stats().watches, 1 + 11, 'moved-out directories are forgotten');
      c.clear();
      writeFileSync(join(outside, 'back', 'd0', 'new'), 'x');
      writeFileSync(join(root, 'marker'), 'x');
      await c.until(() => c.has('create', 'marker'));
      assert.not.ok(c.events.some((e) => e.path.includes('new')), 'nothing reported from outside the root');
    });
  } finally {
    removeDir(outside);
  }
});

test('renames of files and directories inside the tree are one move event', () =>
  withWatcher(
    async (root, _w, c) => {
      renameSync(join(root, 'a/file'), join(root, 'b/file2'));
      await c.until(() => c.has('move', 'b/file2', 'a/file'), 2000, 'file move');
      renameSync(join(root, 'a'), join(root, 'b/a2'));
      await c.until(() => c.events.some((e) => e.type === 'move' && e.from === 'a' && e.path === 'b/a2' && e.isDir), 2000, 'dir move');
      // the moved directory's watches follow it
      writeFileSync(join(root, 'b/a2/deep/new'), 'x');
      await c.until(() => c.has('create', 'b/a2/deep/new'), 2000, 'event under the new name');
      renameSync(join(root, 'b'), join(root, 'c'));
      writeFileSync(join(root, 'c/a2/deep/new2'), 'x');
      await c.until(() => c.has('create', 'c/a2/deep/new2'), 2000, 'after renaming an ancestor');
      assert.not.ok(c.events.some((e) => e.type === 'delete'), 'no delete for a rename');
    },
    {},
    (root) => {
      mkdirSync(join(root, 'a/deep'), { recursive: true });
      mkdirSync(join(root, 'b'));
      writeFileSync(join(root, 'a/file'), 'f');
    },
  ));

test('rename over existing files and directories, and a name moved out then re-created', async () => {
  const outside = tempDir('outside2');
  try {
    await withWatcher(
      async (root, w, c) => {
        renameSync(join(root, 'f1'), join(root, 'f2'));
        await c.until(() => c.has('move', 'f2', 'f1'), 2000, 'file renamed over a file');
        renameSync(join(root, 'd1'), join(root, 'd2'));
        await c.until(() => c.has('move', 'd2', 'd1'), 2000, 'dir renamed over an empty dir');
        assert.is(w.stats().watches, 3, 'root, d2 (was d1), d2/sub');
        writeFileSync(join(root, 'd2/sub/x'), '1');
        await c.until(() => c.has('create', 'd2/sub/x'));
        // mv out and immediately re-create the same name: the final state must have it
        renameSync(join(root, 'keep'), join(outside, 'keep'));
        writeFileSync(join(root, 'keep'), 'new');
        writeFileSync(join(root, 'end'), '');
        await c.until(() => c.has('create', 'end'));
        await c.settle(120);
        const last = c.events.filter((e) => e.path === 'keep').pop();
        assert.is(last?.type, 'create');
        chmodSync(root, 0o750);
        await c.until(() => c.has('attrib', ''), 2000, 'attrib of the root itself');
      },
      {},
      (root) => {
        writeFileSync(join(root, 'f1'), '1');
        writeFileSync(join(root, 'f2'), '2');
        mkdirSync(join(root, 'd1/sub'), { recursive: true });
        mkdirSync(join(root, 'd2'));
        writeFileSync(join(root, 'keep'), 'old');
      },
    );
  } finally {
    removeDir(outside);
  }
});

test('rapid create-then-delete leaves nothing behind', () =>
  withWatcher(async (root, _w, c) => {
    for (let i = 0; i < 200; i++) {
      const p = join(root, `tmp${i}`);
      writeFileSync(p, 'x');
      unlinkSync(p);
      mkdirSync(p);
      writeFileSync(join(p, 'inner'), 'y');
      rmSync(p, { recursive: true });
    }
    writeFileSync(join(root, 'end'), '');
    await c.until(() => c.has('create', 'end'));
    await c.settle(100);
    // replay: whatever the batches said, the final state must be "nothing but end"
    const live = new Set<string>();
    for (const e of c.events) {
      if (e.type === 'create') live.add(e.path);
      if (e.type === 'delete') for (const p of [...live]) if (p === e.path || p.startsWith(e.path + '/')) live.delete(p);
    }
    assert.equal([...live], ['end']);
  }));

test('symlinks are reported, never followed', async () => {
  const outside = tempDir('target');
  try {
    mkdirSync(join(outside, 'dir'));
    await withWatcher(async (root, w, c) => {
      symlinkSync(join(outside, 'dir'), join(root, 'link'));
      await c.until(() => c.events.some((e) => e.type === 'create' && e.path === 'link' && !e.isDir), 2000, 'symlink create');
      assert.is(w.stats().watches, 1, 'a symlink to a directory is not watched');
      writeFileSync(join(outside, 'dir', 'f'), 'x');
      writeFileSync(join(root, 'marker'), 'x');
      await c.until(() => c.has('create', 'marker'));
      assert.not.ok(c.events.some((e) => e.path.startsWith('link/')));
      unlinkSync(join(root, 'link'));
      await c.until(() => c.has('delete', 'link'));
    });
  } finally {
    removeDir(outside);
  }
});

test('a non-UTF-8 file name round-trips byte-exact', () =>
  withWatcher(async (root, _w, c) => {
    const name = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x2e, 0x74]); // "bad\xff\xfe.t"
    const abs = Buffer.concat([Buffer.from(root + '/'), name]);
    writeFileSync(abs, 'x');
    await c.until(() => c.events.some((e) => e.type === 'create'), 2000, 'create');
    const ev = c.events.find((e) => e.type === 'create')!;
    assert.equal(pathToBytes(ev.path), name);
    unlinkSync(abs);
    await c.until(() => c.events.some((e) => e.type === 'delete' && e.path === ev.path));
    // a non-UTF-8 directory is watched too (the addon gets the bytes)
    mkdirSync(abs);
    writeFileSync(Buffer.concat([abs, Buffer.from('/\xe9t\xe9', 'latin1')]), 'x');
    await c.until(() => c.events.some((e) => e.type === 'create' && e.path.endsWith('/\udce9t\udce9')), 2000, 'file in a non-UTF-8 dir');
    const inner = c.events.find((e) => e.path.endsWith('/\udce9t\udce9'))!;
    assert.equal(pathToBytes(inner.path), Buffer.concat([name, Buffer.from('/\xe9t\xe9', 'latin1')]));
  }));

test('filter rules decide which directories are watched at all', () =>
  withWatcher(
    async (root, w, c) => {
      assert.is(w.stats().watches, 2, 'root and keep/, not skip/');
      writeFileSync(join(root, 'skip', 'x'), '1');
      writeFileSync(join(root, 'keep', 'a.tmp'), '1');
      mkdirSync(join(root, 'keep', 'skip'));
      writeFileSync(join(root, 'keep', 'skip', 'y'), '1');
      writeFileSync(join(root, 'keep', 'a.txt'), '1');
      await c.until(() => c.has('create', 'keep/a.txt'));
      await c.settle(100);
      // Nothing of the excluded names themselves; their directory's mtime changed (a.tmp, skip/
      // came): an attrib of keep/, so the mirror carries it as rsync -a would.
      assert.equal(c.events.filter((e) => e.type !== 'attrib').map((e) => e.path), ['keep/a.txt']);
      assert.ok(c.has('attrib', 'keep'), 'the parent of an excluded name is reported');
      assert.equal([...c.paths('attrib')], ['keep']);
      assert.is(w.stats().watches, 2);
      renameSync(join(root, 'keep', 'a.txt'), join(root, 'keep', 'b.tmp'));
      await c.until(() => c.has('delete', 'keep/a.txt'), 2000, 'moved to an excluded name = delete');
      renameSync(join(root, 'skip'), join(root, 'keep', 'now-visible'));
      await c.until(() => c.has('create', 'keep/now-visible/x'), 2000, 'moved from an excluded name = create + scan');
      // Only an excluded name, created then removed at the top: the root's attributes each time.
      c.clear();
      writeFileSync(join(root, 'top.tmp'), '1');
      await c.until(() => c.has('attrib', ''), 2000, 'an excluded file created: attrib of its directory');
      c.clear();
      rmSync(join(root, 'top.tmp'));
      await c.until(() => c.has('attrib', ''), 2000, 'an excluded file removed: attrib of its directory');
      await c.settle(100);
      assert.equal(c.events.map((e) => `${e.type} ${e.path}`), ['attrib ']);
    },
    {
      filter: {
        isExcluded: (p, isDir) => p.endsWith('.tmp') || (isDir && (p === 'skip' || p.endsWith('/skip'))),
      },
    },
    (root) => {
      mkdirSync(join(root, 'skip'));
      mkdirSync(join(root, 'keep'));
    },
  ));

test('a root that disappears is reported and the watcher stops', async () => {
  const parent = tempDir('parent');
  try {
    const root = join(parent, 'root');
    mkdirSync(join(root, 'sub'), { recursive: true });
    const w = watch(root, { backend: 'inotify' });
    const c = new Collector(w);
    rmSync(root, { recursive: true });
    await c.until(() => c.has('root-gone', ''), 2000, 'root-gone');
    assert.ok(w.isClosed);
    w.close();
  } finally {
    removeDir(parent);
  }
});

test('a root moved away is reported as gone', async () => {
  const parent = tempDir('parent2');
  try {
    mkdirSync(join(parent, 'root'));
    const w = watch(join(parent, 'root'), { backend: 'inotify' });
    const c = new Collector(w);
    renameSync(join(parent, 'root'), join(parent, 'elsewhere'));
    await c.until(() => c.has('root-gone', ''), 2000, 'root-gone');
    assert.ok(w.isClosed);
  } finally {
    removeDir(parent);
  }
});

test('a missing root is a WatcherError EROOT', () => {
  try {
    watch('/nonexistent/lsyncd-root', { backend: 'inotify' });
    assert.unreachable('should throw');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'EROOT');
  }
});

test.run();
