// The live mirror under churn (issue 11, "calm and quick under churn"), with a real rsyncd: a tree
// changing without pause for ~5 s (creates, writes, renames, deletes, type swaps) while the mirror
// runs; the mirror must equal the source within 2 s of the last change. A push that failed only
// because the tree changed under it is pushed again at once (no backoff), and the per-file
// "vanished"/"changed" words stay out of the default log: one line per batch.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, mkdir, rename, symlink, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { untilSameTree } from './helpers/tree.js';
import { startLiveMirror, type LogLevel } from '../src/live/index.js';

let daemon: TestDaemon;
let work: string;

test.before(async () => {
  daemon = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'lsyncd-live-churn-'));
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

/** A small deterministic PRNG (mulberry32): the same churn on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DIRS = 8;
const NAMES = 12;

/**
 * One change at a random place: a file created or rewritten, appended to, renamed (also across
 * directories), deleted, swapped for a directory or a symlink and back, a directory made or removed.
 */
async function churnOnce(root: string, rnd: () => number, n: number): Promise<void> {
  const pick = (k: number) => Math.floor(rnd() * k);
  const dir = join(root, `d${pick(DIRS)}`);
  const path = join(dir, `n${pick(NAMES)}`);
  const op = pick(9);
  try {
    switch (op) {
      case 0:
      case 1:
        await writeFile(path, `write ${n} `.repeat(1 + pick(400)));
        break;
      case 2:
        await appendFile(path, `append ${n}\n`);
        break;
      case 3:
        await rename(path, join(root, `d${pick(DIRS)}`, `n${pick(NAMES)}`));
        break;
      case 4:
        await rm(path, { recursive: true, force: true });
        break;
      case 5: // a file becomes a directory with a file in it
        await rm(path, { recursive: true, force: true });
        await mkdir(path);
        await writeFile(join(path, 'inner'), `inner ${n}\n`);
        break;
      case 6: // something becomes a symlink
        await rm(path, { recursive: true, force: true });
        await symlink(`target-${n}`, path);
        break;
      case 7: // a directory becomes a file
        await rm(path, { recursive: true, force: true });
        await writeFile(path, `was something else ${n}\n`);
        break;
      case 8: // a whole directory renamed away and back (its contents move with it)
        await rename(dir, `${dir}.moving`);
        await rename(`${dir}.moving`, dir);
        break;
    }
  } catch (e) {
    // A parent that is a file or a symlink now, a name that is gone: the churn goes on.
    const code = (e as NodeJS.ErrnoException).code;
    if (!['ENOENT', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ENOTEMPTY'].includes(code ?? '')) throw e;
  }
}

test('churn for ~5 s with the mirror running: exact within 2 s of the last change, no backoff, one line per batch', async () => {
  const src = join(work, 'src');
  for (let d = 0; d < DIRS; d++) {
    await mkdir(join(src, `d${d}`), { recursive: true });
    for (let i = 0; i < NAMES / 2; i++) await writeFile(join(src, `d${d}`, `n${i}`), `start ${d}/${i}\n`);
  }
  const dest = join(daemon.modulePath('push'), 'churn');
  const logs: Array<[LogLevel, string]> = [];
  const mirror = await startLiveMirror({
    source: src,
    targets: [{ target: { host: '127.0.0.1', port: daemon.port, module: 'push', path: 'churn/' }, session: {} }],
    onLog: (level, message) => logs.push([level, message]),
  });
  try {
    await mirror.ready;
    const rnd = random(11);
    const started = Date.now();
    let changes = 0;
    while (Date.now() - started < 5000) {
      // Bursts of changes with no pause, then yield a moment to let the watcher read.
      for (let i = 0; i < 40; i++) await churnOnce(src, rnd, changes++);
      await new Promise((r) => setImmediate(r));
    }
    const lastChange = Date.now();
    const diff = await untilSameTree(src, dest, { timeoutMs: 8000, ignore: ['uid', 'gid'] });
    const converged = Date.now() - lastChange;
    const status = mirror.status().targets[0]!;
    const said = logs.filter(([level]) => level !== 'debug').map(([level, m]) => `${level} ${m}`);
    console.log(`  churn: ${changes} changes in 5 s, ${status.batches} batches, ${status.vanishedRetries} pushed again at once after the tree changed under them, ${status.failures} failures; converged ${converged} ms after the last change`);
    assert.equal(diff, [], `the mirror did not converge:\n${diff.slice(0, 20).join('\n')}\n--- log:\n${said.slice(-20).join('\n')}`);
    assert.ok(converged < 2000, `converged ${converged} ms after the last change (limit 2000 ms)`);
    // The tree changing under a push is no failure: nothing waited in a backoff.
    assert.is(status.failures, 0, said.filter((l) => !l.startsWith('info')).join('\n'));
    // No per-file warning at the default level: the batch lines carry the counts.
    assert.is(said.filter((l) => /vanished|changed size|failed verification/.test(l) && !/pushed \d+ change/.test(l)).length, 0, said.join('\n'));
    assert.ok(said.some((l) => /^info .*churn\/: pushed \d+ change\(s\): \d+ file\(s\), \d+ bytes in \d+ ms/.test(l)), said.slice(0, 5).join('\n'));
  } finally {
    await mirror.stop({ timeoutMs: 2000 });
  }
});

test.run();
