// Kernel limits: queue overflow, running out of watches, fd leaks; and the addon's error shape.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, utimesSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { watch, InotifyWatcher, WatcherError, loadAddon } from '../src/watcher/index.js';
import { IN } from '../src/watcher/decode.js';
import { Collector, openFds, removeDir, sleep, tempDir } from './helpers/watch-util.js';

test('addon errors look like Node fs errors', () => {
  const addon = loadAddon();
  assert.ok(addon !== null, 'the addon is built by npm install');
  const h = new addon!.Inotify(() => undefined);
  try {
    assert.type(h.fd, 'number');
    assert.ok(h.fd >= 0);
    try {
      h.addWatch('/nonexistent/lsyncd', IN.CREATE | IN.ONLYDIR);
      assert.unreachable();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      assert.instance(e, Error);
      assert.is(e.code, 'ENOENT');
      assert.is(e.errno, -2);
      assert.is(e.syscall, 'inotify_add_watch');
      assert.is(e.path, '/nonexistent/lsyncd');
      assert.is(e.message, "ENOENT: no such file or directory, inotify_add_watch '/nonexistent/lsyncd'");
    }
    try {
      h.addWatch('/etc/hostname', IN.CREATE | IN.ONLYDIR);
      assert.unreachable();
    } catch (err) {
      assert.is((err as NodeJS.ErrnoException).code, 'ENOTDIR');
    }
  } finally {
    h.close();
  }
  assert.is(h.fd, -1);
  assert.throws(() => h.addWatch('/tmp', IN.CREATE), (e: NodeJS.ErrnoException) => e.code === 'EBADF');
  h.close(); // idempotent
});

test('flooding the kernel queue yields a rescan, and the watcher is whole again afterwards', async () => {
  const root = tempDir('overflow');
  try {
    writeFileSync(join(root, 'f0'), '');
    writeFileSync(join(root, 'f1'), '');
    const w = watch(root, { backend: 'inotify' }) as InotifyWatcher;
    const c = new Collector(w);
    try {
      const max = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'));
      w.pause();
      // a directory created while events are being lost must still end up watched
      mkdirSync(join(root, 'made-during-overflow'));
      // alternate two names so the kernel cannot merge identical consecutive events
      for (let i = 0; i < max + 2000; i++) utimesSync(join(root, `f${i & 1}`), i, i);
      w.resume();
      await c.until(() => c.has('rescan', ''), 5000, 'rescan after IN_Q_OVERFLOW');
      assert.ok(c.events.length < 1000, `events were lost and summarised (${c.events.length})`);
      c.clear();
      writeFileSync(join(root, 'made-during-overflow', 'x'), '1');
      await c.until(() => c.has('create', 'made-during-overflow/x'), 2000, 'watch added by the resync');
    } finally {
      w.close();
    }
  } finally {
    removeDir(root);
  }
});

test('out of watches: a loud report, and the unwatched subtrees are polled', async () => {
  const root = tempDir('enospc');
  try {
    for (const d of ['a', 'b', 'c']) mkdirSync(join(root, d, 'x', 'y'), { recursive: true });
    const warnings: WatcherError[] = [];
    const w = watch(root, { backend: 'inotify', maxWatches: 4, pollInterval: 50, persistent: false }) as InotifyWatcher;
    w.on('warning', (e) => warnings.push(e));
    const c = new Collector(w);
    try {
      const st = w.stats();
      assert.is(st.watches, 4);
      assert.is(st.polledDirs, 10 - 4);
      // a new directory when already out of watches is polled too, and reported loudly
      mkdirSync(join(root, 'd', 'e'), { recursive: true });
      await c.until(() => c.has('create', 'd/e'), 2000, 'contents of an unwatchable new dir');
      await c.until(() => warnings.length === 1, 1000, 'the start-up report reaches a listener added after watch()');
      assert.is(warnings[0]!.code, 'EWATCHLIMIT');
      assert.is(warnings[0]!.limit?.needed, 10);
      // changes deep in the polled subtrees still arrive
      writeFileSync(join(root, 'c', 'x', 'y', 'deep.txt'), 'v1');
      writeFileSync(join(root, 'd', 'e', 'f.txt'), 'v1');
      await c.until(() => c.has('create', 'c/x/y/deep.txt') && c.has('create', 'd/e/f.txt'), 3000, 'polled creates');
      writeFileSync(join(root, 'c', 'x', 'y', 'deep.txt'), 'v2 longer');
      await c.until(() => c.has('modify', 'c/x/y/deep.txt'), 3000, 'polled modify');
    } finally {
      w.close();
    }
  } finally {
    removeDir(root);
  }
});

test('the ENOSPC report names the limit, the need and the command', async () => {
  const root = tempDir('enospc2');
  try {
    for (let i = 0; i < 5; i++) mkdirSync(join(root, `d${i}`));
    const seen: WatcherError[] = [];
    const onWarning = (w: Error): void => {
      if (w.message.includes('out of inotify watches')) seen.push(w as WatcherError);
    };
    process.on('warning', onWarning);
    const w = watch(root, { backend: 'inotify', maxWatches: 2, persistent: false });
    try {
      // no 'warning' listener on the watcher: it goes to process.emitWarning
      for (let i = 0; i < 50 && seen.length === 0; i++) await sleep(5);
      assert.is(seen.length, 1);
      const msg = seen[0]!.message;
      const max = readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8').trim();
      assert.match(msg, `fs.inotify.max_user_watches is ${max}`);
      assert.match(msg, '2 directories are watched and 6 are needed');
      assert.match(msg, 'sudo sysctl -w fs.inotify.max_user_watches=');
      assert.match(msg, 'polling scan');
    } finally {
      w.close();
      process.off('warning', onWarning);
    }
    // with a listener it is a typed error carrying the figures
    const w2 = new InotifyWatcher(root, loadAddon()!, { maxWatches: 3, persistent: false });
    const got: WatcherError[] = [];
    w2.on('warning', (e) => got.push(e));
    w2.start();
    w2.close();
    await sleep(1);
    assert.is(got.length, 1);
    assert.is(got[0]!.code, 'EWATCHLIMIT');
    assert.is(got[0]!.limit?.watched, 3);
    assert.is(got[0]!.limit?.needed, 6);
  } finally {
    removeDir(root);
  }
});

test('no inotify instance left (EMFILE): the whole tree is polled instead', async () => {
  const root = tempDir('emfile');
  const addon = loadAddon()!;
  const hoard: { close(): void }[] = [];
  try {
    // take every instance fs.inotify.max_user_instances allows this user
    for (let i = 0; i < 4096; i++) {
      try {
        hoard.push(new addon.Inotify(() => undefined));
      } catch (err) {
        assert.is((err as NodeJS.ErrnoException).code, 'EMFILE');
        assert.is((err as NodeJS.ErrnoException).syscall, 'inotify_init1');
        break;
      }
    }
    const w = watch(root, { pollInterval: 30 });
    const c = new Collector(w);
    try {
      assert.is(w.backend, 'poll');
      writeFileSync(join(root, 'f'), '1');
      await c.until(() => c.has('create', 'f'), 2000, 'polled create');
    } finally {
      w.close();
    }
  } finally {
    for (const h of hoard) h.close();
    removeDir(root);
  }
});

test('closing releases the fd: 1,000 open/close cycles leak nothing', async () => {
  const root = tempDir('leak');
  try {
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    const before = openFds();
    for (let i = 0; i < 1000; i++) {
      const w = watch(root, { backend: 'inotify' });
      assert.is(w.stats().watches, 3);
      w.close();
    }
    await new Promise((r) => setImmediate(r)); // uv_close callbacks
    assert.is(openFds(), before);
  } finally {
    removeDir(root);
  }
});

test.run();
