// The inotify watcher's state machine driven by synthetic kernel batches (fake addon, real
// temp tree for the directory reads): split rename halves, move-out by timer, unmount,
// overflow with a held half, IN_IGNORED before the parent's IN_DELETE, root deletion.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { InotifyWatcher } from '../src/watcher/index.js';
import { IN } from '../src/watcher/decode.js';
import { FakeInotify, fakeAddon } from './helpers/watch-fake.js';
import { Collector, removeDir, tempDir } from './helpers/watch-util.js';

async function withFake(fn: (root: string, k: FakeInotify, w: InotifyWatcher, c: Collector) => Promise<void>): Promise<void> {
  const root = tempDir('synthetic');
  try {
    mkdirSync(join(root, 'a/sub'), { recursive: true });
    mkdirSync(join(root, 'b'));
    mkdirSync(join(root, 'm'));
    const w = new InotifyWatcher(root, fakeAddon, { moveWait: 10 }).start();
    const c = new Collector(w);
    try {
      await fn(root, FakeInotify.last!, w, c);
    } finally {
      w.close();
    }
  } finally {
    removeDir(root);
  }
}

const D = IN.ISDIR;

test('a rename split across two reads is still one move, and the subtree follows', () =>
  withFake(async (root, k, w, c) => {
    const r = k.wd(root);
    const sub = k.wd(join(root, 'a/sub'));
    k.feed([{ wd: r, mask: IN.MOVED_FROM | D, cookie: 5, name: 'a' }]);
    assert.equal(c.events, [], 'the batch ending in a MOVED_FROM waits');
    renameSync(join(root, 'a'), join(root, 'z'));
    k.feed([{ wd: r, mask: IN.MOVED_TO | D, cookie: 5, name: 'z' }, { wd: sub, mask: IN.CREATE, name: 'f' }]);
    assert.equal(c.events, [
      { type: 'move', from: 'a', path: 'z', isDir: true },
      { type: 'create', path: 'z/sub/f', isDir: false },
    ]);
    assert.is(w.stats().watches, 5);
    assert.equal(k.removed, []);
  }));

test('an unpaired directory MOVED_FROM becomes a delete after moveWait, its watches removed', () =>
  withFake(async (root, k, w, c) => {
    const a = k.wd(join(root, 'a'));
    const sub = k.wd(join(root, 'a/sub'));
    k.feed([{ wd: k.wd(root), mask: IN.MOVED_FROM | D, cookie: 6, name: 'a' }]);
    await c.until(() => c.has('delete', 'a'), 1000, 'delete by timer');
    assert.equal(k.removed.sort(), [a, sub].sort());
    assert.is(w.stats().watches, 3);
    k.feed([{ wd: sub, mask: IN.CREATE, name: 'late' }]);
    assert.not.ok(c.events.some((e) => e.path.includes('late')), 'events of a forgotten watch are ignored');
  }));

test('a held MOVED_FROM not paired by the next read turns into a delete before that read\'s events', () =>
  withFake(async (root, k, _w, c) => {
    const r = k.wd(root);
    k.feed([{ wd: r, mask: IN.MOVED_FROM, cookie: 8, name: 'file' }]);
    k.feed([{ wd: r, mask: IN.CREATE, name: 'other' }, { wd: r, mask: IN.MOVED_TO, cookie: 8, name: 'late-to' }]);
    assert.equal(c.events, [
      { type: 'delete', path: 'file', isDir: false },
      { type: 'create', path: 'other', isDir: false },
      { type: 'create', path: 'late-to', isDir: false },
    ]);
  }));

test('IN_UNMOUNT below the root: rescan of that directory, and the mountpoint is watched again', () =>
  withFake(async (root, k, w, c) => {
    const m = k.wd(join(root, 'm'));
    k.forget(join(root, 'm'));
    k.feed([{ wd: m, mask: IN.UNMOUNT }, { wd: m, mask: IN.IGNORED }]);
    assert.equal(c.events, [{ type: 'rescan', path: 'm', isDir: true }]);
    assert.is(w.stats().watches, 5);
    const again = k.wd(join(root, 'm'));
    assert.is.not(again, m);
    k.feed([{ wd: again, mask: IN.CREATE, name: 'x' }]);
    assert.ok(c.has('create', 'm/x'));
  }));

test('overflow drops held halves, resyncs watches and asks for a rescan', () =>
  withFake(async (root, k, w, c) => {
    const r = k.wd(root);
    // while events were lost: b was removed, n was created
    rmSync(join(root, 'b'), { recursive: true });
    mkdirSync(join(root, 'n/deep'), { recursive: true });
    k.feed([{ wd: r, mask: IN.MOVED_FROM | D, cookie: 9, name: 'a' }, { wd: -1, mask: IN.Q_OVERFLOW }]);
    await new Promise((res) => setTimeout(res, 30)); // longer than moveWait
    assert.equal(c.events, [{ type: 'rescan', path: '', isDir: true }]);
    assert.is(w.stats().watches, 1 + 2 + 1 + 2, 'root, a, a/sub, m, n, n/deep');
    k.feed([{ wd: k.wd(join(root, 'n/deep')), mask: IN.CREATE, name: 'f' }]);
    assert.ok(c.has('create', 'n/deep/f'));
  }));

test('IN_IGNORED before the parent\'s IN_DELETE, events for unknown wds, root deletion', () =>
  withFake(async (root, k, w, c) => {
    const r = k.wd(root);
    const b = k.wd(join(root, 'b'));
    rmSync(join(root, 'b'), { recursive: true });
    k.feed([
      { wd: b, mask: IN.DELETE_SELF },
      { wd: b, mask: IN.IGNORED },
      { wd: r, mask: IN.DELETE | D, name: 'b' },
      { wd: 4242, mask: IN.CREATE, name: 'ghost' },
    ]);
    assert.equal(c.events, [{ type: 'delete', path: 'b', isDir: true }]);
    assert.is(w.stats().watches, 4);
    k.feed([{ wd: r, mask: IN.DELETE_SELF }, { wd: r, mask: IN.IGNORED }]);
    assert.ok(c.has('root-gone', ''));
    assert.ok(w.isClosed);
    assert.is(k.fd, -1, 'the fd is closed');
  }));

test.run();
