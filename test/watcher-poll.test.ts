// The polling fallback: what runs when the addon cannot be loaded. Same event interface.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { watch, loadAddon, PollWatcher, type Watcher } from '../src/watcher/index.js';
import { Collector, removeDir, tempDir } from './helpers/watch-util.js';

const MISSING = '/nonexistent/lsyncd/build/Release/inotify.node';

test('an unloadable addon falls back to polling, announced once', async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => {
    if (w.message.includes('inotify addon could not be loaded')) warnings.push(w);
  };
  process.on('warning', onWarning);
  const root = tempDir('fallback');
  try {
    assert.is(loadAddon(MISSING), null);
    const w1 = watch(root, { addonPath: MISSING, pollInterval: 30 });
    const w2 = watch(root, { addonPath: MISSING, pollInterval: 30 });
    assert.is(w1.backend, 'poll');
    assert.is(w2.backend, 'poll');
    w1.close();
    w2.close();
    await new Promise((r) => setImmediate(r));
    assert.is(warnings.length, 1, 'said once');
    assert.throws(() => watch(root, { addonPath: MISSING, backend: 'inotify' }), (e: { code?: string }) => e.code === 'EADDON');
  } finally {
    process.off('warning', onWarning);
    removeDir(root);
  }
});

async function withPoll(fn: (root: string, w: Watcher, c: Collector) => Promise<void>, setup?: (root: string) => void): Promise<void> {
  const root = tempDir('poll');
  try {
    setup?.(root);
    const w = watch(root, { addonPath: MISSING, pollInterval: 30 });
    const c = new Collector(w);
    try {
      assert.instance(w, PollWatcher);
      await fn(root, w, c);
    } finally {
      w.close();
    }
  } finally {
    removeDir(root);
  }
}

test('polling reports create, modify, attrib, delete and deep trees', () =>
  withPoll(async (root, _w, c) => {
    mkdirSync(join(root, 'a/b/c'), { recursive: true });
    writeFileSync(join(root, 'a/b/c/f'), '1');
    symlinkSync('/etc', join(root, 'ln'));
    await c.until(() => c.has('create', 'a/b/c/f') && c.has('create', 'a') && c.has('create', 'ln'), 3000, 'creates');
    assert.ok(c.events.find((e) => e.path === 'ln')!.isDir === false, 'symlink not followed');
    assert.not.ok(c.events.some((e) => e.path.startsWith('ln/')));
    c.clear();
    writeFileSync(join(root, 'a/b/c/f'), '22');
    await c.until(() => c.has('modify', 'a/b/c/f'), 3000, 'modify');
    chmodSync(join(root, 'a/b/c/f'), 0o600);
    await c.until(() => c.has('attrib', 'a/b/c/f'), 3000, 'attrib');
    c.clear();
    renameSync(join(root, 'a'), join(root, 'z'));
    await c.until(() => c.has('delete', 'a') && c.has('create', 'z/b/c/f'), 3000, 'rename = delete + create');
    assert.not.ok(c.has('delete', 'a/b'), 'a removed subtree is one delete');
    unlinkSync(join(root, 'ln'));
    await c.until(() => c.has('delete', 'ln'), 3000, 'delete');
  }));

test('polling honours the filter and reports a vanished root', async () => {
  const parent = tempDir('pollroot');
  try {
    const root = join(parent, 'r');
    mkdirSync(join(root, 'skip'), { recursive: true });
    const w = watch(root, {
      addonPath: MISSING,
      pollInterval: 30,
      filter: { isExcluded: (p) => p === 'skip' || p.endsWith('.tmp') },
    });
    const c = new Collector(w);
    writeFileSync(join(root, 'skip/x'), '1');
    writeFileSync(join(root, 'y.tmp'), '1');
    writeFileSync(join(root, 'keep'), '1');
    await c.until(() => c.has('create', 'keep'));
    // y.tmp may land in a scan of its own: then the root's new mtime is an attrib of ''.
    assert.equal(c.events.filter((e) => !(e.type === 'attrib' && e.path === '')).map((e) => e.path), ['keep']);
    // Only an excluded name comes or goes: its directory's mtime, as an attrib.
    c.clear();
    writeFileSync(join(root, 'skip/z.tmp'), '1'); // inside an excluded directory: nothing
    writeFileSync(join(root, 'z.tmp'), '1');
    await c.until(() => c.has('attrib', ''), 3000, 'attrib of the root');
    assert.equal(c.events.map((e) => `${e.type} ${e.path}`), ['attrib ']);
    rmSync(root, { recursive: true });
    await c.until(() => c.has('root-gone', ''), 3000, 'root-gone');
    assert.ok(w.isClosed);
  } finally {
    removeDir(parent);
  }
});

test.run();
