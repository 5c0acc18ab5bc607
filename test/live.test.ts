// The live mirror end to end (issue 5): the real watcher on a temp tree, a real rsync daemon, and
// after each change the module equals the source exactly (names, types, sizes, content, modes,
// mtimes with nanoseconds, symlink targets; the root directory's mode and mtime too).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, appendFile, mkdir, rename, unlink, symlink, chmod } from 'node:fs/promises';
import { existsSync, readFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, freePort, type TestDaemon } from './helpers/daemon.js';
import { snapshot, diffTrees, untilSameTree } from './helpers/tree.js';
import { makeTree } from './helpers/fstree.js';
import { startLiveMirror, type LiveMirror } from '../src/live/index.js';
import { DEFAULT_TRANSFER } from '../protocol/args.js';
import { FilterList } from '../protocol/filter.js';
import { WatcherError, type InotifyWatcher } from '../src/watcher/index.js';
import { releaseMemory } from '../src/addon.js';
import type { DaemonTarget } from '../src/transfer/target.js';

// `?daemon=lsyncd` in this module's URL (test/live-serve.test.ts) runs the whole suite against
// our own daemon, `lsyncd serve`, instead of rsync's.
const implementation = new URL(import.meta.url).searchParams.get('daemon') === 'lsyncd' ? 'lsyncd' : 'rsync';

let daemon: TestDaemon;
let work: string;
const logs: string[] = [];
const onLog = (level: string, message: string) => logs.push(`${new Date().toISOString()} ${level} ${message}`);

test.before(async () => {
  daemon = await startDaemon({ implementation });
  work = await mkdtemp(join(tmpdir(), 'lsyncd-live-'));
});
test.after(async () => {
  await mirror?.stop({ timeoutMs: 2000 });
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

function target(d: { port: number }, path: string, module = 'push'): DaemonTarget {
  return { host: '127.0.0.1', port: d.port, module, path };
}

/** The tree as compared: everything exact, mtimes with nanoseconds (the mirror pushes with --modify-window=-1). */
async function tree(root: string) {
  return snapshot(root, { rootTimes: true });
}

/** Poll until `dst` equals `src` exactly (≤ 10 s); fail with the differences and the log. */
async function converge(src: string, dst: string, what: string, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  const diff = await untilSameTree(src, dst, { timeoutMs, rootTimes: true });
  if (diff.length) {
    assert.unreachable(`${what}: mirror did not converge in ${timeoutMs} ms:\n${diff.slice(0, 20).join('\n')}\n--- log:\n${logs.slice(-30).join('\n')}`);
  }
  return Date.now() - started;
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.unreachable(`timed out waiting for ${what}\n${logs.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test(`the daemon under test is ${implementation === 'lsyncd' ? 'lsyncd serve' : "rsync's"}`, async () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  const first = (await daemon.log()).split('\n')[0]!;
  if (implementation === 'lsyncd') assert.match(first, `rsyncd version ${pkg.version} starting`);
  else assert.not.match(first, `rsyncd version ${pkg.version} starting`);
});

let mirror: LiveMirror | undefined;
let src: string;
let dst: string;

test('startup: an existing tree (files, modes, symlinks, nested dirs) is mirrored exactly', async () => {
  src = join(work, 'main');
  await makeTree(src);
  // A daemon without chroot strips the leading '/' of absolute symlink targets (rsync's
  // sanitize_path, whoever the sender is): not ours to mirror exactly.
  await unlink(join(src, 'absolute'));
  dst = join(daemon.modulePath('push'), 'main');
  mirror = await startLiveMirror({
    source: src,
    targets: [{ target: target(daemon, 'main'), session: {} }],
    transfer: DEFAULT_TRANSFER,
    retry: { initialMs: 100, maxMs: 1000 },
    onLog,
  });
  await mirror.ready;
  await converge(src, dst, 'startup');
  const status = mirror.status();
  assert.is(status.targets[0]!.synced, true);
  assert.is(status.watcher?.backend, 'inotify');
});

test('a single file edit', async () => {
  await appendFile(join(src, 'a.txt'), 'one more line\n');
  await converge(src, dst, 'append');
  await writeFile(join(src, 'sub/new.txt'), 'fresh\n');
  await converge(src, dst, 'new file in a subdirectory');
  await chmod(join(src, 'sub/new.txt'), 0o604);
  await converge(src, dst, 'chmod');
});

test('a burst of 200 files in 10 new directories', async () => {
  const started = Date.now();
  for (let d = 0; d < 10; d++) {
    await mkdir(join(src, `burst/d${d}`), { recursive: true });
    for (let f = 0; f < 20; f++) await writeFile(join(src, `burst/d${d}/f${f}.txt`), `dir ${d} file ${f}\n`.repeat(f + 1));
  }
  const wrote = Date.now() - started;
  const after = await converge(src, dst, 'burst');
  console.log(`  burst: 200 files in 10 new directories written in ${wrote} ms; the mirror matched ${after} ms after the last close (30 ms polling)`);
});

test('deep mkdir -p plus writes', async () => {
  const deep = join(src, 'x/y/z/w/v/u');
  await mkdir(deep, { recursive: true });
  await writeFile(join(deep, 'leaf.txt'), 'deep leaf\n');
  await writeFile(join(src, 'x/y/mid.txt'), 'middle\n');
  await converge(src, dst, 'deep mkdir');
});

test('deleting a file and a tree', async () => {
  await unlink(join(src, 'burst/d3/f7.txt'));
  await rm(join(src, 'x/y/z'), { recursive: true });
  await rm(join(src, 'burst/d9'), { recursive: true });
  await converge(src, dst, 'deletes');
});

test('renaming a file and a directory', async () => {
  await rename(join(src, 'a.txt'), join(src, 'sub/a-renamed.txt'));
  await rename(join(src, 'burst/d1'), join(src, 'moved-d1'));
  await converge(src, dst, 'renames');
  await rename(join(src, 'moved-d1'), join(src, 'burst/d1'));
  await rename(join(src, 'burst/d2/f0.txt'), join(src, 'burst/d2/f1.txt')); // over an existing file
  await converge(src, dst, 'renames back, rename over a file');
});

test('type swaps: file -> dir, dir -> file, file -> symlink', async () => {
  await unlink(join(src, 'run.sh'));
  await mkdir(join(src, 'run.sh'));
  await writeFile(join(src, 'run.sh/inside'), 'now a directory\n');
  await rm(join(src, 'burst/d4'), { recursive: true });
  await writeFile(join(src, 'burst/d4'), 'now a file\n');
  await unlink(join(src, 'burst/d5/f5.txt'));
  await symlink('../d6', join(src, 'burst/d5/f5.txt'));
  await converge(src, dst, 'type swaps');
});

test('non-UTF-8 names: a directory and a file inside it (pushed from the nearest UTF-8 parent)', async () => {
  const dir = Buffer.concat([Buffer.from(join(src, 'sub') + '/'), Buffer.from([0x62, 0xff, 0x01])]);
  await mkdir(dir);
  await writeFile(Buffer.concat([dir, Buffer.from('/'), Buffer.from([0xe9, 0x2e, 0x74])]), 'latin-1 name\n');
  await converge(src, dst, 'non-UTF-8 directory');
  await writeFile(Buffer.concat([dir, Buffer.from('/plain')]), 'then a change inside it\n');
  await converge(src, dst, 'a change inside the non-UTF-8 directory');
});

test('a change whose parents vanished from the mirror: the batch lists the parents, so the daemon recreates them', async () => {
  await rm(join(dst, 'x'), { recursive: true }); // behind our back
  const failures = mirror!.status().targets[0]!.failures;
  await writeFile(join(src, 'x/y/mid.txt'), 'middle, changed after the mirror lost x/\n');
  // (The mirror's top directory keeps the mtime our removal gave it until something pushes it.)
  await converge(join(src, 'x'), join(dst, 'x'), 'parents recreated');
  assert.is(mirror!.status().targets[0]!.failures, failures, 'no failed push on the way');
});

test('resync(): a mirror changed behind our back is repaired', async () => {
  await rm(join(dst, 'sub/new.txt'));
  await writeFile(join(dst, 'burst/d0/f3.txt'), 'tampered, and longer than the original\n');
  await mkdir(join(dst, 'intruder'));
  mirror!.resync('burst');
  await until('the burst resync', () => mirror!.status().targets[0]!.state === 'idle' && mirror!.status().targets[0]!.pending === 0);
  await mirror!.whenIdle();
  assert.ok(diffTrees(await tree(src), await tree(dst)).length > 0, 'outside burst/: not repaired yet');
  mirror!.resync();
  await converge(src, dst, 'full resync');
});

test('stop(): pending changes are pushed before it resolves', async () => {
  await writeFile(join(src, 'last.txt'), 'written right before stop\n');
  await mkdir(join(src, 'last-dir'));
  await writeFile(join(src, 'last-dir/f'), 'inside\n');
  await new Promise((r) => setTimeout(r, 20)); // let inotify deliver (the watcher reads on the loop)
  const result = await mirror!.stop({ timeoutMs: 5000 });
  assert.equal(result.unpushed, [0]);
  const diff = diffTrees(await tree(src), await tree(dst));
  assert.equal(diff, [], diff.join('\n'));
  mirror = undefined;
});

test('filters: excluded paths are neither sent nor deleted on the mirror', async () => {
  const s = join(work, 'filtered');
  const out = join(daemon.modulePath('push'), 'flt');
  await mkdir(join(s, 'cache'), { recursive: true });
  await mkdir(join(s, 'sub'));
  await writeFile(join(s, 'keep.txt'), 'kept\n');
  await writeFile(join(s, 'junk.tmp'), 'excluded\n');
  await writeFile(join(s, 'cache/c1'), 'excluded dir\n');
  await writeFile(join(s, 'sub/x.tmp'), 'excluded\n');
  await writeFile(join(s, 'sub/y'), 'kept\n');
  await mkdir(join(out, 'sub'), { recursive: true });
  await writeFile(join(out, 'old.tmp'), 'only on the mirror, protected\n');
  await writeFile(join(out, 'sub/gone'), 'only on the mirror, deleted\n');
  const m = await startLiveMirror({
    source: s,
    targets: [{ target: target(daemon, 'flt'), session: {} }],
    filterList: new FilterList().addExclude('*.tmp').addExclude('cache/'),
    onLog,
  });
  const expected = ['missing "cache" (dir)', 'missing "cache/c1" (file)', 'missing "junk.tmp" (file)', 'missing "sub/x.tmp" (file)', 'extra "old.tmp" (file)'];
  const check = async (what: string, want: string[]) => {
    const deadline = Date.now() + 10_000;
    let diff: string[] = [];
    while (Date.now() < deadline) {
      diff = diffTrees(await tree(s), await tree(out)).sort();
      if (JSON.stringify(diff) === JSON.stringify([...want].sort())) return;
      await new Promise((r) => setTimeout(r, 30));
    }
    assert.equal(diff, [...want].sort(), what);
  };
  try {
    await m.ready;
    await check('startup', expected);
    await writeFile(join(s, 'sub/z.tmp'), 'excluded, live\n');
    await writeFile(join(s, 'sub/w'), 'kept, live\n');
    await writeFile(join(s, 'cache/c2'), 'excluded dir, live\n');
    await check('live changes', [...expected, 'missing "sub/z.tmp" (file)', 'missing "cache/c2" (file)']);
    assert.ok(m.status().watcher!.watches >= 2);
  } finally {
    await m.stop({ timeoutMs: 1000 });
  }
});

test('stop() with an unreachable target returns within its time bound and reports what is left', async () => {
  const s = join(work, 'nowhere');
  await mkdir(s, { recursive: true });
  const m = await startLiveMirror({ source: s, targets: [{ target: target({ port: await freePort() }, 'x'), session: { contimeout: 1 } }], retry: { initialMs: 50, maxMs: 100 }, onLog });
  await writeFile(join(s, 'f'), 'never pushed\n');
  await until('a failed attempt', () => m.status().targets[0]!.failures > 0);
  const started = Date.now();
  const result = await m.stop({ timeoutMs: 400 });
  assert.ok(Date.now() - started < 1500, `stop took ${Date.now() - started} ms`);
  assert.ok(result.unpushed[0]! > 0);
  assert.is(m.status().targets[0]!.state, 'stopped');
});

test('after a big transfer the mirror gives memory back once idle (and the addon can)', async () => {
  assert.ok(releaseMemory(), 'the addon exports releaseMemory');
  const s = join(work, 'release');
  await mkdir(s, { recursive: true });
  await writeFile(join(s, 'big'), Buffer.alloc(17 * 2 ** 20, 7)); // over RELEASE_AFTER_BYTES
  let released = 0;
  const m = await startLiveMirror({ source: s, targets: [{ target: target(daemon, 'release'), session: {} }], onLog, releaseMemory: () => released++ });
  try {
    await m.ready;
    await until('a release after the startup sync', () => released === 1, 5000);
    await writeFile(join(s, 'small'), 'a small change does not call for one\n');
    await converge(s, join(daemon.modulePath('push'), 'release'), 'small change');
    await new Promise((r) => setTimeout(r, 1500));
    assert.is(released, 1);
  } finally {
    await m.stop({ timeoutMs: 1000 });
  }
});

test('a kernel queue overflow: the watcher\'s rescan becomes a full resync that catches the lost changes', async () => {
  const s = join(work, 'overflow');
  await mkdir(join(s, 'd'), { recursive: true });
  await writeFile(join(s, 'f0'), '0\n');
  await writeFile(join(s, 'f1'), '1\n');
  await writeFile(join(s, 'd/victim'), 'deleted while events are lost\n');
  const out = join(daemon.modulePath('push'), 'ovf');
  const m = await startLiveMirror({ source: s, targets: [{ target: target(daemon, 'ovf'), session: {} }], onLog });
  try {
    await m.ready;
    await converge(s, out, 'before the overflow');
    const w = m.watcher as InotifyWatcher;
    const max = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'));
    const batches = m.status().targets[0]!.batches;
    let rescans = 0;
    w.on('events', (batch) => (rescans += batch.filter((e) => e.type === 'rescan' && e.path === '').length));
    w.pause();
    await rm(join(s, 'd/victim'));
    await mkdir(join(s, 'made-during-overflow/deeper'), { recursive: true });
    await writeFile(join(s, 'made-during-overflow/deeper/x'), 'new while events are lost\n');
    await writeFile(join(s, 'd/changed'), 'also new\n');
    // Alternate two names so the kernel cannot merge identical consecutive events.
    for (let i = 0; i < max + 2000; i++) utimesSync(join(s, `f${i & 1}`), 1_700_000_000 + i, 1_700_000_000 + i);
    w.resume();
    await converge(s, out, 'after the overflow');
    assert.ok(rescans > 0, 'the kernel queue overflowed');
    // Logged once (as lsyncd 2's OVERFLOW line), counted in the status.
    assert.ok(m.status().overflows >= 1);
    assert.is(logs.filter((l) => l.includes('OVERFLOW in the kernel event queue')).length, 1, logs.join('\n'));
    assert.ok(m.status().targets[0]!.batches > batches);
    // The watches were re-synced too: a change in the directory made during the overflow is seen.
    await writeFile(join(s, 'made-during-overflow/deeper/y'), 'after\n');
    await converge(s, out, 'after the overflow, a new change');
  } finally {
    await m.stop({ timeoutMs: 1000 });
  }
});

test('the source directory moved away: reported, nothing pending, the mirror keeps its copy', async () => {
  const s = join(work, 'vanishing');
  await mkdir(join(s, 'd'), { recursive: true });
  await writeFile(join(s, 'd/f'), 'still on the mirror afterwards\n');
  const out = join(daemon.modulePath('push'), 'vanishing');
  const m = await startLiveMirror({ source: s, targets: [{ target: target(daemon, 'vanishing'), session: {} }], onLog });
  try {
    await m.ready;
    await converge(s, out, 'before the removal');
    const before = await tree(out);
    await rename(s, `${s}-moved`);
    await until('root-gone', () => m.status().rootGone);
    await m.whenIdle();
    assert.is(m.status().targets[0]!.pending, 0);
    assert.equal(diffTrees(before, await tree(out)), []);
  } finally {
    await m.stop({ timeoutMs: 1000 });
  }
});

test('a missing source: startLiveMirror throws the watcher\'s EROOT', async () => {
  try {
    await startLiveMirror({ source: join(work, 'does-not-exist'), targets: [{ target: target(daemon, 'none'), session: {} }] });
    assert.unreachable('no error');
  } catch (e) {
    assert.instance(e, WatcherError);
    assert.is((e as WatcherError).code, 'EROOT');
  }
});

test('the daemon stopped and restarted mid-stream: the mirror converges after the restart', async () => {
  const d2 = await startDaemon({ implementation });
  const s = join(work, 'restart');
  await mkdir(join(s, 'dir'), { recursive: true });
  await writeFile(join(s, 'dir/one'), '1\n');
  const m = await startLiveMirror({
    source: s,
    targets: [{ target: target(d2, 'r'), session: { contimeout: 2 } }],
    retry: { initialMs: 100, maxMs: 800 },
    onLog,
  });
  const out = join(d2.modulePath('push'), 'r');
  let writing = false;
  let writer: Promise<void> = Promise.resolve();
  try {
    await m.ready;
    await converge(s, out, 'before the outage');
    // A writer keeps changing the tree (a file every few ms) across the outage and the restart.
    writing = true;
    writer = (async () => {
      for (let i = 0; writing || i < 40; i++) {
        await mkdir(join(s, `stream/${i % 7}`), { recursive: true });
        await writeFile(join(s, `stream/${i % 7}/f${i}`), `streamed ${i}\n`);
        if (i % 5 === 4) await rm(join(s, `stream/${(i + 3) % 7}/f${i - 4}`), { force: true });
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await until('the stream to be mirrored in part', () => existsSync(join(out, 'stream/4/f11')));
    // Down: kill the daemon (its module directory stays), change things, see the target fail.
    await d2.kill();
    const failuresBefore = m.status().targets[0]!.failures;
    await writeFile(join(s, 'dir/two'), '2\n');
    await rm(join(s, 'dir/one'));
    await mkdir(join(s, 'new/deep'), { recursive: true });
    await writeFile(join(s, 'new/deep/three'), '3\n');
    await until('a failed batch', () => m.status().targets[0]!.failures > failuresBefore);
    await writeFile(join(s, 'while-down'), 'queued while the daemon was down\n');
    // Up again on the same port: the pending changes are pushed.
    await d2.restart();
    writing = false;
    await writer;
    await converge(s, out, 'after the restart');
    await m.whenIdle();
    assert.is(m.status().targets[0]!.consecutiveFailures, 0);
  } finally {
    writing = false;
    await writer.catch(() => {});
    await m.stop({ timeoutMs: 1000 });
    await d2.stop();
  }
});

test('a target unreachable at start comes up later; a second, healthy target is not held up', async () => {
  const s = join(work, 'two');
  await mkdir(join(s, 'a'), { recursive: true });
  await writeFile(join(s, 'a/file'), 'content\n');
  const port = await freePort(); // nothing listens here yet
  const m = await startLiveMirror({
    source: s,
    targets: [
      { target: target({ port }, 'late'), session: { contimeout: 2 } },
      { target: target(daemon, 'healthy'), session: {} },
    ],
    retry: { initialMs: 100, maxMs: 500 },
    onLog,
  });
  let second: { stop(): Promise<void> } | undefined;
  try {
    await converge(s, join(daemon.modulePath('push'), 'healthy'), 'healthy target while the other is down');
    await writeFile(join(s, 'a/more'), 'more\n');
    await converge(s, join(daemon.modulePath('push'), 'healthy'), 'healthy target, a change');
    assert.ok(m.status().targets[0]!.failures > 0, 'the unreachable target failed');
    assert.is(m.status().targets[0]!.synced, false);
    second = await daemon.serveAlso(port); // a second daemon process on the same modules
    await converge(s, join(daemon.modulePath('push'), 'late'), 'late target once it is up');
    await m.ready;
  } finally {
    await m.stop({ timeoutMs: 1000 });
    await second?.stop();
  }
});

test.run();
