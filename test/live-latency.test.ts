// Latency of the live mirror (docs/live.md, "Figures"): from a file's close to its identical copy
// on the mirror, 20 trials each for a file in a small subdirectory (the push is that directory)
// and a file at the top of the tree (the push is the whole tree), real inotify, real daemon on
// loopback. Prints median/p90/max; asserts only a loose bound (the machine may be loaded).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { startDaemon, freePort, type TestDaemon } from './helpers/daemon.js';
import { startLiveMirror, type LiveMirror } from '../src/live/index.js';

let daemon: TestDaemon;
let work: string;
let mirror: LiveMirror;
let nodelay: ChildProcess | undefined;
let nodelayPort = 0;
const TRIALS = 20;

/** Answers with an rsync greeting? */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = '';
    const done = (ok: boolean) => (s.destroy(), resolve(ok));
    s.setTimeout(500, () => done(false));
    s.on('data', (c) => ((got += c.toString('latin1')), got.includes('\n') && done(got.startsWith('@RSYNCD:'))));
    s.on('error', () => done(false));
    s.on('close', () => done(false));
  });
}

/** A second daemon on the same module directory whose sockets set TCP_NODELAY (no Nagle stalls). */
async function startNodelayDaemon(): Promise<void> {
  nodelayPort = await freePort();
  const conf = join(daemon.dir, 'nodelay.conf');
  const asRoot = process.getuid?.() === 0;
  await writeFile(
    conf,
    ['use chroot = no', 'socket options = TCP_NODELAY', `pid file = ${join(daemon.dir, 'nodelay.pid')}`, asRoot ? 'uid = root\ngid = root' : '', '[push]', `    path = ${daemon.modulePath('push')}`, '    read only = no', ''].join('\n'),
  );
  nodelay = spawn('rsync', ['--daemon', '--no-detach', '--address', '127.0.0.1', '--port', String(nodelayPort), '--config', conf], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  while (!(await answers(nodelayPort))) {
    if (Date.now() > deadline) throw new Error('the TCP_NODELAY daemon does not answer');
    await new Promise((r) => setTimeout(r, 30));
  }
}

test.before(async () => {
  daemon = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'lsyncd-live-lat-'));
  // 200 files in 10 directories, 1 KiB each.
  for (let d = 0; d < 10; d++) {
    await mkdir(join(work, `d${d}`));
    for (let i = 0; i < 20; i++) await writeFile(join(work, `d${d}/f${i}`), Buffer.alloc(1024, i));
  }
  await startNodelayDaemon();
});

async function mirrorTo(port: number): Promise<void> {
  mirror = await startLiveMirror({ source: work, targets: [{ target: { host: '127.0.0.1', port, module: 'push', path: 'lat' }, session: {} }] });
  await mirror.ready;
  await mirror.whenIdle();
}
test.after(async () => {
  await mirror?.stop({ timeoutMs: 2000 });
  if (nodelay && nodelay.exitCode === null) {
    const exited = new Promise((r) => nodelay!.once('exit', r));
    nodelay.kill('SIGTERM');
    await exited;
  }
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

function stats(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
  return { median: at(0.5), p90: at(0.9), max: s[s.length - 1]! };
}

async function trials(name: (i: number) => string): Promise<ReturnType<typeof stats>> {
  const ms: number[] = [];
  for (let i = 0; i < TRIALS; i++) {
    const rel = name(i);
    const content = Buffer.from(`trial ${i} ${'x'.repeat(i * 13)}\n`);
    await writeFile(join(work, rel), content); // open, write, close
    const closed = performance.now();
    const copy = join(daemon.modulePath('push'), 'lat', rel);
    const deadline = closed + 10_000;
    for (;;) {
      try {
        if (readFileSync(copy).equals(content)) break;
      } catch {
        // not there yet
      }
      if (performance.now() > deadline) assert.unreachable(`${rel} not mirrored within 10 s`);
      await new Promise((r) => setImmediate(r));
    }
    ms.push(performance.now() - closed);
    await mirror.whenIdle();
  }
  return stats(ms);
}

const fmt = (s: ReturnType<typeof stats>) => `median ${s.median.toFixed(1)} ms, p90 ${s.p90.toFixed(1)} ms, max ${s.max.toFixed(1)} ms`;

for (const [label, port] of [
  ['default rsync daemon', () => daemon.port],
  ['daemon with socket options = TCP_NODELAY', () => nodelayPort],
] as const) {
  test(`latency, close -> identical copy, ${TRIALS} trials, ${label}`, async () => {
    await mirrorTo(port());
    try {
      const tag = port();
      const sub = await trials((i) => `d${i % 10}/new-${tag}-${i}`);
      const top = await trials((i) => `top-${tag}-${i}`);
      console.log(`  ${label}: file in a 20-file subdirectory: ${fmt(sub)}`);
      console.log(`  ${label}: file at the top of a 200-file tree: ${fmt(top)}`);
      assert.ok(sub.median < 2000 && top.median < 2000, 'latency within 2 s');
    } finally {
      await mirror.stop({ timeoutMs: 2000 });
    }
  });
}

test.run();
