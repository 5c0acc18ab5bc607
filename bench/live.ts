// Live-mirror latency (issue 5): from a file's close to its identical copy on the mirror, 20
// trials each for a file in a small subdirectory (the push is that directory) and a file at the top
// of a 200-file tree (the push is the whole tree); real inotify, a real daemon on loopback, once
// with rsync's default socket options and once with `socket options = TCP_NODELAY` on the daemon.
// Prints median / p90 / max. `node dist/bench/live.js` (npm run bench runs it too).
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startDaemon, type TestDaemon } from '../test/helpers/daemon.js';
import { startLiveMirror, type LiveMirror } from '../src/live/index.js';

const TRIALS = 20;

function stats(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
  return { median: at(0.5), p90: at(0.9), max: s[s.length - 1]! };
}
const fmt = (s: ReturnType<typeof stats>) => `median ${s.median.toFixed(1)} ms, p90 ${s.p90.toFixed(1)} ms, max ${s.max.toFixed(1)} ms`;

async function trials(work: string, daemon: TestDaemon, mirror: LiveMirror, name: (i: number) => string) {
  const ms: number[] = [];
  for (let i = 0; i < TRIALS; i++) {
    const rel = name(i);
    const content = Buffer.from(`trial ${i} ${'x'.repeat(i * 13)}\n`);
    await writeFile(join(work, rel), content); // open, write, close
    const closed = performance.now();
    const copy = join(daemon.modulePath('push'), 'lat', rel);
    for (;;) {
      try {
        if (readFileSync(copy).equals(content)) break;
      } catch {
        // not there yet
      }
      if (performance.now() - closed > 10_000) throw new Error(`${rel} not mirrored within 10 s`);
      await new Promise((r) => setImmediate(r));
    }
    ms.push(performance.now() - closed);
    await mirror.whenIdle();
  }
  return stats(ms);
}

async function main(): Promise<void> {
  console.log(`live-mirror latency (issue 5), ${TRIALS} trials each, node ${process.version}`);
  for (const [label, globalSettings] of [
    ['default rsync daemon', []],
    ['daemon with socket options = TCP_NODELAY', ['socket options = TCP_NODELAY']],
  ] as const) {
    const daemon = await startDaemon({ globalSettings: [...globalSettings] });
    const work = await mkdtemp(join(tmpdir(), 'lsyncd-bench-live-'));
    try {
      for (let d = 0; d < 10; d++) {
        await mkdir(join(work, `d${d}`));
        for (let i = 0; i < 20; i++) await writeFile(join(work, `d${d}/f${i}`), Buffer.alloc(1024, i));
      }
      const mirror = await startLiveMirror({ source: work, targets: [{ target: { host: '127.0.0.1', port: daemon.port, module: 'push', path: 'lat' }, session: {} }] });
      try {
        await mirror.ready;
        await mirror.whenIdle();
        const sub = await trials(work, daemon, mirror, (i) => `d${i % 10}/new-${i}`);
        const top = await trials(work, daemon, mirror, (i) => `top-${i}`);
        console.log(`  ${label}: file in a 20-file subdirectory: ${fmt(sub)}`);
        console.log(`  ${label}: file at the top of a 200-file tree: ${fmt(top)}`);
      } finally {
        await mirror.stop({ timeoutMs: 2000 });
      }
    } finally {
      await daemon.stop();
      await rm(work, { recursive: true, force: true });
    }
  }
  console.log('targets (issue 5): median <= 5 ms, p90 <= 20 ms');
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
