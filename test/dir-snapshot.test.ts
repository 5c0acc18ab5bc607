// src/transfer/dir-snapshot.ts and DestTree.lstatListed: a directory read in one addon call answers
// every name as lstat does (files, high-byte and prefix names, symlinks, fifos, directories,
// nanosecond mtimes), absent names with null; a walk through the tree in list order gives the same
// answers as lstat name by name, and falls back to lstat without the addon (LSYNCD_JS_SCAN); the
// same with the list's directories read ahead (walkAhead) and --delete's listing of each.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAddon } from '../src/addon.js';
import { DirSnapshot } from '../src/transfer/dir-snapshot.js';
import { DestTree } from '../src/transfer/dest-tree.js';
import type { LocalStat } from '../protocol/local-tree.js';
import { setTime, T0 } from './helpers/fstree.js';

const readDirStats = loadAddon(undefined, { quiet: true })?.readDirStats;
// Nanosecond mtimes (window -1): lstat's exact form, as the addon's.
const ATTRS = { perms: true, times: true, owner: true, group: true, umask: 0o022, modifyWindow: -1 };

/** Names that sort in awkward places: prefixes of each other, '-' and '.', a high byte, digits. */
const NAMES: Buffer[] = ['a', 'a-b', 'a.b', 'ab', 'abc', 'B', 'z9', 'z10', '\xe9t\xe9', 'x y'].map((n) => Buffer.from(n, 'latin1'));

async function makeDir(root: string): Promise<void> {
  mkdirSync(join(root, 'd'));
  for (const [i, name] of NAMES.entries()) {
    const p = Buffer.concat([Buffer.from(join(root, 'd') + '/'), name]);
    writeFileSync(p, Buffer.alloc(i * 37, i));
    await setTime(p, T0 + i, i * 1000 + 7);
  }
  symlinkSync('../elsewhere', join(root, 'd', 'link'));
  mkdirSync(join(root, 'd', 'sub'));
  spawnSync('mkfifo', [join(root, 'd', 'fifo')]);
  await setTime(join(root, 'd', 'sub'), T0 - 5);
}

/** The fields both give, comparable with assert.equal. */
const shape = (st: LocalStat | null | undefined) =>
  st && { ...st, dev: String(st.dev), ino: String(st.ino), symlink: st.symlink?.toString('latin1') };

test('a snapshot answers each name as lstat does, absent names with null', async () => {
  if (!readDirStats) return assert.unreachable('the addon (native/dirstat.cc) is not built');
  const root = mkdtempSync(join(tmpdir(), 'lsyncd-dirsnap-'));
  try {
    await makeDir(root);
    const dirPath = Buffer.from(join(root, 'd'));
    const snap = new DirSnapshot(dirPath, readDirStats(dirPath));
    const tree = new DestTree(root, ATTRS);
    const all = [...NAMES, Buffer.from('link'), Buffer.from('sub'), Buffer.from('fifo')];
    assert.is(snap.length, all.length);
    for (const base of all) {
      const full = Buffer.concat([Buffer.from('d/'), base]);
      const found = snap.find(full, 2, full.length);
      assert.equal(shape(found), shape(await tree.lstat(full)), base.toString('latin1'));
    }
    for (const missing of ['', 'a.', 'abcd', 'A', 'zz', 'sub/x']) {
      const full = Buffer.from(`d/${missing}`);
      assert.is(snap.find(full, 2, full.length), null, missing);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('lstatListed over a walk in list order equals lstat name by name (and without the addon)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lsyncd-dirsnap-'));
  try {
    await makeDir(root);
    writeFileSync(join(root, 'top'), 'x');
    const walk = ['top', 'd', ...NAMES.map((n) => 'd/' + n.toString('latin1')), 'd/fifo', 'd/link', 'd/missing', 'd/sub', 'd/sub/none', 'e', 'e/f'].map((n) =>
      Buffer.from(n, 'latin1'),
    );
    for (const jsOnly of [false, true]) {
      if (jsOnly) process.env['LSYNCD_JS_SCAN'] = '1';
      try {
        const listed = new DestTree(root, ATTRS);
        const plain = new DestTree(root, ATTRS);
        for (const name of walk) assert.equal(shape(await listed.lstatListed(name)), shape(await plain.lstat(name)), name.toString('latin1'));
        listed.endListWalk();
        // An entry changed after the walk is seen as it is now.
        writeFileSync(join(root, 'd', 'ab'), 'changed');
        assert.is((await listed.lstatListed(Buffer.from('d/ab')))!.size, 7);
        writeFileSync(join(root, 'd', 'ab'), Buffer.alloc(3 * 37, 3));
      } finally {
        delete process.env['LSYNCD_JS_SCAN'];
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a nested walk in list order, read-ahead hints and returns to parents, equals lstat name by name', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lsyncd-dirsnap-'));
  try {
    for (const dir of ['d', 'd/s1', 'd/s1/deep', 'd/s2', 'd/s3']) mkdirSync(join(root, dir));
    for (const [i, file] of ['e', 'd/a', 'd/b', 'd/s1/x', 'd/s1/y', 'd/s1/deep/z', 'd/s2/w'].entries()) {
      writeFileSync(join(root, file), Buffer.alloc(i * 11, i));
      await setTime(join(root, file), T0 + i);
    }
    // rsync's order: a directory's files, then each subdirectory followed by its contents.
    const walk = ['.', 'e', 'd', 'd/a', 'd/b', 'd/s1', 'd/s1/x', 'd/s1/y', 'd/s1/deep', 'd/s1/deep/z', 'd/s2', 'd/s2/w', 'd/s3', 'd/s4'].map((n) => Buffer.from(n));
    const dirOf = (n: Buffer) => n.subarray(0, Math.max(0, n.lastIndexOf(0x2f)));
    const listed = new DestTree(root, ATTRS);
    const plain = new DestTree(root, ATTRS);
    for (const [i, name] of walk.entries()) {
      const next = walk[i + 1];
      const hint = next !== undefined && dirOf(next).equals(dirOf(name));
      assert.equal(shape(await listed.lstatListed(name, hint)), shape(await plain.lstat(name)), name.toString());
    }
    listed.endListWalk();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('read ahead (walkAhead) with --delete\'s listing of each directory as the walk enters it: as lstat and readdir answer', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lsyncd-dirsnap-'));
  try {
    for (const dir of ['d', 'd/s1', 'd/s1/deep', 'd/s2', 'd/s3', 'gone']) mkdirSync(join(root, dir));
    for (const [i, file] of ['e', 'd/a', 'd/b', 'd/s1/x', 'd/s1/y', 'd/s1/deep/z', 'd/s2/w', 'd/unlisted', 'gone/q'].entries()) {
      writeFileSync(join(root, file), Buffer.alloc(i * 11, i));
      await setTime(join(root, file), T0 + i);
    }
    symlinkSync('s2', join(root, 'd', 'link'));
    const walk = ['.', 'e', 'd', 'd/a', 'd/b', 'd/link', 'd/s1', 'd/s1/x', 'd/s1/y', 'd/s1/deep', 'd/s1/deep/z', 'd/s2', 'd/s2/w', 'd/s3', 'd/s4', 'gone', 'gone/q'];
    const dirs = new Set(['.', 'd', 'd/s1', 'd/s1/deep', 'd/s2', 'd/s3', 'd/s4', 'gone']);
    const dirOf = (n: string) => n.slice(0, Math.max(0, n.lastIndexOf('/')));
    for (const prefetch of ['on', 'never']) {
      if (prefetch === 'never') process.env['LSYNCD_DIR_PREFETCH'] = 'never';
      try {
        const listed = new DestTree(root, ATTRS);
        const plain = new DestTree(root, ATTRS);
        // 'gone' is named ahead but gone before the walk starts: read by neither, it is listed empty.
        rmSync(join(root, 'gone'), { recursive: true });
        listed.walkAhead([...dirs].map((n) => Buffer.from(n)));
        for (const [i, n] of walk.entries()) {
          const name = Buffer.from(n);
          const next = walk[i + 1];
          // The generator's hint: a directory (its siblings follow its tree), or the next name is beside it.
          const hint = dirs.has(n) || (next !== undefined && dirOf(next) === dirOf(n));
          assert.equal(shape(await listed.lstatListed(name, hint)), shape(await plain.lstat(name)), `${prefetch}: ${n}`);
          if (dirs.has(n) && n !== '.') {
            const names = (await listed.list(name)).map((b) => b.toString()).sort();
            const expected = n === 'gone' || n === 'd/s4' ? [] : readdirSync(join(root, n)).sort();
            assert.equal(names, expected, `${prefetch}: list ${n}`);
          }
        }
        // A symlink to a directory is listed as nothing (no -K): deletion does not go through it.
        assert.equal(await listed.list(Buffer.from('d/link')), [], `${prefetch}: link`);
        listed.endListWalk();
      } finally {
        delete process.env['LSYNCD_DIR_PREFETCH'];
      }
      mkdirSync(join(root, 'gone'));
      writeFileSync(join(root, 'gone', 'q'), Buffer.alloc(88, 8));
      await setTime(join(root, 'gone', 'q'), T0 + 8);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('lstatListed refuses an unsafe name as lstat does', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lsyncd-dirsnap-'));
  try {
    const tree = new DestTree(root, ATTRS);
    for (const bad of ['../x', 'a/../b', '/etc', 'a//b']) {
      // A sync throw or a rejection alike (the tree answers at once where it can).
      await Promise.resolve().then(() => tree.lstatListed(Buffer.from(bad))).then(
        () => assert.unreachable(bad),
        (e: Error) => assert.is((e as { code?: string }).code, 'ERR_RSYNC_UNSAFE_PATH', bad),
      );
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
