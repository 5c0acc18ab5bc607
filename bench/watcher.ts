// Watcher figures (not a test): setup time and RSS for 10,000 and 100,000 directories,
// sustained events per second, and close-to-event latency. Run: node --expose-gc dist/bench/watcher.js
// (BENCH_WATCHER_ONLY=setup: the setup rows alone).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { watch, type Watcher } from '../src/watcher/index.js';
import { IN, InotifyCursor, encodeRecords } from '../src/watcher/decode.js';

const mb = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function makeDirs(root: string, n: number): void {
  const fan = Math.ceil(Math.sqrt(n / 10));
  let made = 0;
  for (let a = 0; made < n; a++) {
    mkdirSync(join(root, `a${a}`));
    made++;
    for (let b = 0; b < fan && made < n; b++) {
      mkdirSync(join(root, `a${a}`, `b${b}`));
      made++;
      for (let c = 0; c < 9 && made < n; c++) {
        mkdirSync(join(root, `a${a}`, `b${b}`, `c${c}`));
        made++;
      }
    }
  }
}

function setup(n: number): void {
  const root = mkdtempSync(join(tmpdir(), 'lsyncd-bench-'));
  try {
    makeDirs(root, n);
    gc();
    const rss0 = process.memoryUsage().rss;
    const heap0 = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    const w = watch(root, { backend: 'inotify' });
    const ms = performance.now() - t0;
    gc();
    const m = process.memoryUsage();
    const st = w.stats();
    console.log(
      `setup ${n} dirs: ${ms.toFixed(0)} ms (${((ms * 1000) / n).toFixed(1)} us/dir), watches ${st.watches}, ` +
        `RSS +${mb(m.rss - rss0)} (total ${mb(m.rss)}), JS heap +${mb(m.heapUsed - heap0)}`,
    );
    w.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** A child process creates files as fast as it can; we count what arrives. */
async function throughput(files: number, dirs: number): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'lsyncd-bench-'));
  try {
    for (let d = 0; d < dirs; d++) mkdirSync(join(root, `d${d}`));
    const w: Watcher = watch(root, { backend: 'inotify' });
    const seen = new Set<string>();
    let rescans = 0;
    let done: () => void = () => undefined;
    const finished = new Promise<void>((r) => (done = r));
    w.on('events', (b) => {
      for (const e of b) {
        if (e.type === 'create' || e.type === 'modify') seen.add(e.path);
        else if (e.type === 'rescan') rescans++;
      }
      if (seen.has('end') || rescans > 0) done();
    });
    const script =
      `const fs=require('fs');const t=process.hrtime.bigint();` +
      `for(let i=0;i<${files};i++){fs.writeFileSync(${JSON.stringify(root)}+'/d'+(i%${dirs})+'/f'+i,'x');fs.appendFileSync(${JSON.stringify(root)}+'/d'+(i%${dirs})+'/f'+i,'y');}` +
      `fs.writeFileSync(${JSON.stringify(root)}+'/end','');console.log(Number(process.hrtime.bigint()-t)/1e6)`;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timeout = setTimeout(done, 60_000);
    await finished;
    clearTimeout(timeout);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    await new Promise((r) => child.on('exit', r));
    const genMs = Number.parseFloat(out);
    // each file: IN_CREATE + IN_CLOSE_WRITE + IN_CLOSE_WRITE (3 kernel records); events after collapsing are fewer
    const records = files * 3 + 2;
    if (rescans === 0 && seen.size !== files + 1) throw new Error(`missed events: ${seen.size - 1} of ${files} files`);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    console.log(
      `throughput: ${files} files x 2 writes in ${dirs} dirs (${records} kernel records): generator ${genMs.toFixed(0)} ms, ` +
        `all events in ${ms.toFixed(0)} ms (${rescans > 0 ? 'OVERFLOW' : 'no overflow'}), ` +
        `${Math.round(records / (ms / 1000))} records/s wall, watcher CPU ${cpuMs.toFixed(0)} ms = ${Math.round(records / (cpuMs / 1000))} records per CPU-second`,
    );
    w.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Write a file synchronously (so its close has happened), then time until its event is in JS. */
async function latency(n: number): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'lsyncd-bench-'));
  try {
    writeFileSync(join(root, 'f'), '');
    const w = watch(root, { backend: 'inotify' });
    const samples: number[] = [];
    let resolve: () => void = () => undefined;
    w.on('events', (b) => {
      if (b.some((e) => e.type === 'modify' && e.path === 'f')) resolve();
    });
    for (let i = 0; i < n; i++) {
      const got = new Promise<void>((r) => (resolve = r));
      writeFileSync(join(root, 'f'), String(i));
      const t0 = performance.now(); // the close(2) has returned
      await got;
      samples.push(performance.now() - t0);
    }
    samples.sort((a, b) => a - b);
    const q = (p: number): string => `${(samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]! * 1000).toFixed(0)} us`;
    console.log(`latency close -> JS event (${n} samples): median ${q(0.5)}, p99 ${q(0.99)}, max ${q(1)}`);
    w.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** The decoder alone, on a synthetic 1,000,000-record buffer. */
function decoder(): void {
  const one = encodeRecords(Array.from({ length: 1000 }, (_, i) => ({ wd: 1 + (i % 50), mask: IN.CLOSE_WRITE, name: `file-${i}.txt` })));
  const t0 = performance.now();
  let n = 0;
  let chars = 0;
  for (let r = 0; r < 1000; r++) {
    const c = new InotifyCursor(one);
    while (c.next()) {
      n++;
      chars += c.name().length;
    }
  }
  const ms = performance.now() - t0;
  console.log(`decoder: ${n} records (with names, ${chars} chars) in ${ms.toFixed(0)} ms = ${Math.round(n / (ms / 1000))} records/s`);
}

console.log(`node ${process.version}, max_user_watches ${readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8').trim()}, ` +
  `max_queued_events ${readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8').trim()}`);
decoder();
setup(10_000);
setup(100_000);
if (process.env['BENCH_WATCHER_ONLY'] !== 'setup') {
  await throughput(20_000, 100);
  await latency(2000);
}
