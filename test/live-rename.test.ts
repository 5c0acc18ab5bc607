// Renames on the live mirror cost checksums, not data (issue 5): a renamed directory is pushed
// with the mirror's old copy as --copy-dest, so its files are copied on the daemon; the mirror
// still ends up exactly equal to the source. A daemon refusing --copy-dest falls back to a plain
// transfer (said once in the log) and is still exact; the refused options are tried again after
// `retry.refusedMs` on a new connection. A pre-push that fails for another reason (the mirror
// changed under it) leaves renames on.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, mkdir, writeFile, rename, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { untilSameTree } from './helpers/tree.js';
import { pseudoRandom } from './helpers/fstree.js';
import { startLiveMirror, type LiveMirror } from '../src/live/index.js';

let daemon: TestDaemon;
let work: string;

test.before(async () => {
  daemon = await startDaemon({
    extraModules: [
      { name: 'nocopy', comment: 'refuses --copy-dest', settings: { 'read only': false, 'refuse options': 'copy-dest' } },
      { name: 'short', comment: 'module timeout 1 s', settings: { 'read only': false, timeout: '1' } },
      { name: 'nomissing', comment: 'refuses --delete-missing-args', settings: { 'read only': false, 'refuse options': 'delete-missing-args' } },
      { name: 'norename', comment: 'refuses --copy-dest and --fuzzy', settings: { 'read only': false, 'refuse options': 'copy-dest fuzzy' } },
    ],
  });
  work = await mkdtemp(join(tmpdir(), 'lsyncd-rename-'));
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

async function converge(src: string, dst: string): Promise<void> {
  const diff = await untilSameTree(src, dst, { timeoutMs: 15_000, rootTimes: true });
  assert.equal(diff, [], `not converged:\n${diff.slice(0, 10).join('\n')}`);
}

/** Poll `check` until it holds (or fail after `ms`). */
async function until(check: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function makeSite(root: string): Promise<void> {
  await mkdir(join(root, 'site/pages'), { recursive: true });
  for (let i = 0; i < 300; i++) await writeFile(join(root, 'site/pages', `p${i}.html`), pseudoRandom(4096, i + 1));
  await writeFile(join(root, 'site/index.html'), '<p>index</p>\n');
}

for (const module of ['push', 'nocopy']) {
  test(`renaming a 300-file directory (module ${module}): exact mirror, ${module === 'push' ? 'no file data re-sent' : 'plain transfer, said once'}`, async () => {
    const src = join(work, module);
    await makeSite(src);
    const logs: string[] = [];
    const mirror: LiveMirror = await startLiveMirror({
      source: src,
      targets: [{ target: { host: '127.0.0.1', port: daemon.port, module, path: 'r' }, session: {} }],
      onLog: (level, message) => logs.push(`${level} ${message}`),
    });
    try {
      await mirror.ready;
      await mirror.whenIdle();
      const dst = join(daemon.modulePath(module), 'r');
      await converge(src, dst);
      const before = mirror.status().targets[0]!.bytesSent;
      await rename(join(src, 'site/pages'), join(src, 'site/articles'));
      await converge(src, dst);
      await mirror.whenIdle();
      const sent = mirror.status().targets[0]!.bytesSent - before;
      if (module === 'push') {
        // 300 × 4 KiB = 1.2 MiB of data; a rename must cost file lists and checksums only.
        assert.ok(sent < 100_000, `a rename sent ${sent} bytes`);
      } else {
        assert.ok(sent > 1_200_000, `the plain transfer sent ${sent} bytes`);
        assert.is(logs.filter((l) => l.includes('refused --copy-dest')).length, 1, logs.join('\n'));
      }
    } finally {
      await mirror.stop({ timeoutMs: 2000 });
    }
  });
}

test('renamed files (same directory, another directory): exact mirror, their data not re-sent (--fuzzy)', async () => {
  const src = join(work, 'files');
  await mkdir(join(src, 'a'), { recursive: true });
  await mkdir(join(src, 'b'), { recursive: true });
  await writeFile(join(src, 'a/one.bin'), pseudoRandom(600_000, 11));
  await writeFile(join(src, 'a/two.bin'), pseudoRandom(600_000, 12));
  await writeFile(join(src, 'a/small.txt'), 'small files are simply sent again\n');
  const logs: string[] = [];
  const mirror: LiveMirror = await startLiveMirror({
    source: src,
    targets: [{ target: { host: '127.0.0.1', port: daemon.port, module: 'push', path: 'f' }, session: {} }],
    onLog: (level, message) => logs.push(`${level} ${message}`),
  });
  try {
    await mirror.ready;
    await mirror.whenIdle();
    const dst = join(daemon.modulePath('push'), 'f');
    await converge(src, dst);
    const before = mirror.status().targets[0]!.bytesSent;
    await rename(join(src, 'a/one.bin'), join(src, 'a/one-renamed.bin'));
    await rename(join(src, 'a/two.bin'), join(src, 'b/two.bin'));
    await rename(join(src, 'a/small.txt'), join(src, 'b/small.txt'));
    await converge(src, dst);
    await mirror.whenIdle();
    const sent = mirror.status().targets[0]!.bytesSent - before;
    // 1.2 MB of data moved; the renames cost file lists and checksums.
    assert.ok(sent < 100_000, `the renames sent ${sent} bytes\n${logs.join('\n')}`);
    assert.ok(logs.some((l) => l.includes('renamed file(s)')), logs.join('\n'));
  } finally {
    await mirror.stop({ timeoutMs: 2000 });
  }
});

test('a rename pre-push failing on the daemon (its destination parent removed from the mirror): renames stay on', async () => {
  const src = join(work, 'transient');
  await makeSite(src);
  await mkdir(join(src, 'other')); // empty: the batch after the failed pre-push creates it again
  const logs: string[] = [];
  const mirror: LiveMirror = await startLiveMirror({
    source: src,
    targets: [{ target: { host: '127.0.0.1', port: daemon.port, module: 'push', path: 't' }, session: {} }],
    onLog: (level, message) => logs.push(`${level} ${message}`),
  });
  try {
    await mirror.ready;
    await mirror.whenIdle();
    const dst = join(daemon.modulePath('push'), 't');
    await converge(src, dst);
    // The mirror changes under the live mirror: the pre-push of other/articles cannot create its
    // directory on the daemon (a real mkdir failure, not a refusal).
    await rm(join(dst, 'other'), { recursive: true });
    await rename(join(src, 'site/pages'), join(src, 'other/articles'));
    await converge(src, dst);
    await mirror.whenIdle();
    assert.ok(logs.some((l) => /rename site\/pages -> other\/articles failed, its data goes with the batch \(.*mkdir/.test(l)), logs.join('\n'));
    // Renames are still on: the next one costs file lists and checksums only.
    const before = mirror.status().targets[0]!.bytesSent;
    await rename(join(src, 'other/articles'), join(src, 'other/posts'));
    await converge(src, dst);
    await mirror.whenIdle();
    const sent = mirror.status().targets[0]!.bytesSent - before;
    assert.ok(sent < 100_000, `a rename after the failed pre-push sent ${sent} bytes\n${logs.join('\n')}`);
    assert.is(logs.filter((l) => l.includes('the daemon refused')).length, 0, logs.join('\n'));
  } finally {
    await mirror.stop({ timeoutMs: 2000 });
  }
});

test('refuse options = copy-dest fuzzy: renames off, said once; tried again after retry.refusedMs, back on once the daemon takes them', async () => {
  const src = join(work, 'norename');
  await makeSite(src);
  await writeFile(join(src, 'big.bin'), pseudoRandom(600_000, 21));
  const logs: string[] = [];
  // Long enough for two renames (1.5 MB sent plainly) inside the window on a loaded host.
  const refusedMs = 5000;
  /** When the last refusal was said: the runner's window starts just before. */
  let refusedAt = 0;
  const mirror: LiveMirror = await startLiveMirror({
    source: src,
    targets: [{ target: { host: '127.0.0.1', port: daemon.port, module: 'norename', path: 'n' }, session: {} }],
    retry: { refusedMs },
    onLog: (level, message) => {
      logs.push(`${level} ${message}`);
      if (/the daemon refused --(copy-dest|fuzzy)/.test(message)) refusedAt = Date.now();
    },
  });
  /** Until the window of the last refusal is over (the next rename tries the options again). */
  const windowOver = async () => {
    while (Date.now() <= refusedAt + refusedMs) await new Promise((r) => setTimeout(r, refusedAt + refusedMs + 20 - Date.now()));
  };
  const dst = join(daemon.modulePath('norename'), 'n');
  /** Rename `from` to `to` in the source; the bytes the mirror sent for it. */
  const renamed = async (from: string, to: string): Promise<number> => {
    const before = mirror.status().targets[0]!.bytesSent;
    await rename(join(src, from), join(src, to));
    await converge(src, dst);
    await mirror.whenIdle();
    return mirror.status().targets[0]!.bytesSent - before;
  };
  const refusals = (level: string) => logs.filter((l) => l.startsWith(`${level} `) && /the daemon refused --(copy-dest|fuzzy)/.test(l)).length;
  try {
    await mirror.ready;
    await mirror.whenIdle();
    await converge(src, dst);
    // Refused: a plain transfer, said once.
    assert.ok((await renamed('site/pages', 'site/articles')) > 1_200_000);
    assert.is(refusals('info'), 1, logs.join('\n'));
    // Within refusedMs nothing is tried: a renamed file is simply sent again.
    const tries = logs.length;
    assert.ok((await renamed('big.bin', 'big-renamed.bin')) > 600_000);
    assert.ok(Date.now() < refusedAt + refusedMs, 'the rename was pushed within the window');
    assert.is(refusals('info') + refusals('debug'), 1, logs.slice(tries).join('\n'));
    // After refusedMs a pre-push tries again; still refused: said at debug level only.
    await windowOver();
    assert.ok((await renamed('site/articles', 'site/posts')) > 1_200_000);
    assert.is(refusals('info'), 1, logs.join('\n'));
    assert.is(refusals('debug'), 1, logs.join('\n'));
    // The daemon's config changes (it reads it on every connection): after refusedMs renames are back.
    const config = join(daemon.dir, 'rsyncd.conf');
    await writeFile(config, (await readFile(config, 'utf8')).replace('    refuse options = copy-dest fuzzy\n', ''));
    await windowOver();
    assert.ok((await renamed('site/posts', 'site/news')) < 100_000, logs.join('\n'));
    assert.is(logs.filter((l) => l.startsWith('info ') && l.includes('takes --copy-dest and --fuzzy again')).length, 1, logs.join('\n'));
    assert.is(refusals('info'), 1, logs.join('\n'));
  } finally {
    await mirror.stop({ timeoutMs: 2000 });
  }
});

test('a daemon refusing --delete-missing-args: deletions go out as subtree pushes, said once', async () => {
  const src = join(work, 'nomissing');
  await mkdir(join(src, 'd'), { recursive: true });
  for (let i = 0; i < 5; i++) await writeFile(join(src, 'd', `f${i}`), `file ${i}\n`);
  const logs: string[] = [];
  const mirror: LiveMirror = await startLiveMirror({
    source: src,
    targets: [{ target: { host: '127.0.0.1', port: daemon.port, module: 'nomissing', path: 'm' }, session: {} }],
    retry: { initialMs: 50, maxMs: 200 },
    onLog: (level, message) => logs.push(`${level} ${message}`),
  });
  try {
    await mirror.ready;
    const dst = join(daemon.modulePath('nomissing'), 'm');
    await converge(src, dst);
    await rm(join(src, 'd/f1'));
    await converge(src, dst);
    await rm(join(src, 'd/f2'));
    await writeFile(join(src, 'd/f3'), 'changed\n');
    await converge(src, dst);
    assert.is(logs.filter((l) => l.includes('refused a single-session batch')).length, 1, logs.join('\n'));
  } finally {
    await mirror.stop({ timeoutMs: 2000 });
  }
});

test('a module timeout shorter than the idle time: the session opened ahead has expired, the change still goes out at once', async () => {
  const src = join(work, 'short');
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'f'), 'first\n');
  // Only this module times sessions out: counted before the mirror starts, since under load the
  // session opened ahead may expire before the startup push has been seen to converge.
  const timeouts = async () => ((await daemon.log()).match(/\[Receiver\] io timeout after 1 seconds/g) ?? []).length;
  const before = await timeouts();
  const logs: string[] = [];
  const mirror: LiveMirror = await startLiveMirror({
    source: src,
    targets: [{ target: { host: '127.0.0.1', port: daemon.port, module: 'short', path: 's' }, session: {} }],
    onLog: (level, message) => logs.push(`${level} ${message}`),
  });
  try {
    await mirror.ready;
    const dst = join(daemon.modulePath('short'), 's');
    await converge(src, dst);
    // The session opened ahead, timed out by the daemon (its `timeout = 1`) while it waited.
    await until(async () => (await timeouts()) > before, 'the daemon timing the waiting session out');
    await writeFile(join(src, 'f'), 'second\n');
    await converge(src, dst);
    assert.is(mirror.status().targets[0]!.failures, 0, logs.join('\n'));
  } finally {
    await mirror.stop({ timeoutMs: 2000 });
  }
});

test.run();
