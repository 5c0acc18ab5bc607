// Live-mirror figures (issue 5), ours side by side with lsyncd 2 + rsync when it is installed
// (bench/lsyncd2.ts; LSYNCD2=/abs/path overrides /usr/bin/lsyncd). Both tools go through the same
// scenario code below, each against its own fresh rsync daemon (test/helpers/daemon.ts) on
// loopback, data on tmpfs unless TMPDIR says otherwise:
// latency from a file's close to its identical copy on the mirror (20 trials; a file in a small
// subdirectory and a file at the top of a 200-file tree; a default daemon and one with
// `socket options = TCP_NODELAY`; lsyncd 2 with `delay = 0` and once with its default delay),
// a burst of 1,000 files in 50 new dirs, the rename of a 1,000 × 4 KiB directory (time, and bytes
// on the wire from the daemon's log), the startup sync of 20,000 files (200 MB), idle RSS and CPU.
// Prints one table: ours, lsyncd 2, ours / lsyncd 2. `node dist/bench/live.js` (npm run bench runs it too).
// Environment: BENCH_LIVE_TRIALS=N (latency trials, default 20), BENCH_LIVE_SKIP_DEFAULT_DELAY=1
// (skip lsyncd 2's default-delay latency run, 20 × ~15 s), LSYNCD2=PATH, BENCH_DEBUG=1,
// BENCH_LIVE_ONLY=memory (only the idle-memory rows below, issue 12), BENCH_LIVE_BIG=1 (add the
// 50,000-directory tree to them: a few minutes).
import { mkdtemp, rm, mkdir, writeFile, rename, readdir } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { startDaemon, type TestDaemon } from '../test/helpers/daemon.js';
import { startLiveMirror } from '../src/live/index.js';
import { machine, table, tmpfsRoot } from './common.js';
import { findLsyncd2, startLsyncd2, startMirrorProcess, type MirrorProcess } from './lsyncd2.js';

process.env['TMPDIR'] ??= tmpfsRoot(); // os.tmpdir() reads it on every call (daemon, trees)

const TRIALS = Number(process.env['BENCH_LIVE_TRIALS']) || 20;

/** A running mirror, whichever tool: what the scenarios need to wait for it and to measure it. */
interface RunningMirror {
  /** Resolves when nothing is in flight (ours: whenIdle; lsyncd 2: no rsync child for 100 ms). */
  settle(): Promise<void>;
  /** Resident set, bytes (ours: this whole bench process; lsyncd 2: its own process). */
  rss(): number;
  /** CPU seconds used so far, user + sys (ours: this process; lsyncd 2: it and its reaped rsyncs). */
  cpuSeconds(): number;
  /** Bytes we counted as sent (ours only). */
  sentBytes?(): number;
  stop(): Promise<void>;
}

interface LiveTool {
  name: string;
  /** Mirror `source` to `push/PATH/` of the daemon; resolves once the startup sync is done. */
  start(source: string, daemon: TestDaemon, path: string, variant: Variant): Promise<RunningMirror>;
}

/** lsyncd 2's knobs (ours has one default: no fixed wait, TCP_NODELAY on every socket). */
interface Variant {
  /** lsyncd 2's `delay` in seconds, or its default (15 s). */
  delay: number | 'default';
  /** lsyncd 2's rsync client gets `--sockopts=TCP_NODELAY`. */
  clientNodelay?: boolean;
}
const DELAY_0: Variant = { delay: 0 };

const ours: LiveTool = {
  name: 'ours',
  async start(source, daemon, path) {
    const mirror = await startLiveMirror({ source, targets: [{ target: { host: '127.0.0.1', port: daemon.port, module: 'push', path }, session: {} }] });
    try {
      await mirror.ready;
      await mirror.whenIdle();
    } catch (e) {
      await mirror.stop({ timeoutMs: 2000 });
      throw e;
    }
    return {
      settle: () => mirror.whenIdle(),
      rss: () => process.memoryUsage().rss,
      cpuSeconds: () => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1e6;
      },
      sentBytes: () => mirror.status().targets[0]!.bytesSent,
      stop: async () => void (await mirror.stop({ timeoutMs: 2000 })),
    };
  },
};

/** A mirror running as its own process: wait on its rsync children, measure it from /proc. */
function processMirror(proc: MirrorProcess): RunningMirror {
  return {
    settle: () => proc.settle(),
    rss: () => proc.rss(),
    cpuSeconds: () => proc.cpuSeconds(),
    stop: async () => {
      if (process.env['BENCH_DEBUG']) console.log(proc.output());
      await proc.stop();
    },
  };
}

async function whenStarted(proc: MirrorProcess): Promise<RunningMirror> {
  try {
    await proc.started;
    await proc.settle();
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return processMirror(proc);
}

/** Ours as a process, `node dist/src/cli/main.js --nodaemon SOURCE/ TARGET` (startup and idle only: like for like with lsyncd 2's process). */
const oursProcess: LiveTool = {
  name: 'ours as a process',
  async start(source, daemon, path) {
    const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
    const target = `rsync://127.0.0.1:${daemon.port}/push/${path}/`;
    return whenStarted(startMirrorProcess(process.execPath, [cli, '--nodaemon', source + '/', target], /startup sync done/));
  },
};

function lsyncd2Tool(binary: string): LiveTool {
  return {
    name: 'lsyncd 2',
    async start(source, daemon, path, { delay, clientNodelay }) {
      const target = `rsync://127.0.0.1:${daemon.port}/push/${path}/`;
      return whenStarted(await startLsyncd2(binary, { source, target, nodelay: !!clientNodelay, ...(delay === 'default' ? {} : { delay }) }));
    },
  };
}

// ---- results: one row per figure, one column per tool

type Unit = 'ms' | 'bytes' | 'MB' | '%';
interface Row {
  figure: string;
  unit: Unit;
  values: Map<string, number>;
  /** Every value recorded per tool (BENCH_LIVE_ROUNDS > 1); `values` holds their median. */
  samples: Map<string, number[]>;
}
const rows: Row[] = [];

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
function record(figure: string, unit: Unit, tool: string, value: number): void {
  let row = rows.find((r) => r.figure === figure);
  if (!row) rows.push((row = { figure, unit, values: new Map(), samples: new Map() }));
  // Repeated rounds (BENCH_LIVE_ROUNDS): the table shows each tool's median.
  const samples = row.samples.get(tool) ?? [];
  row.samples.set(tool, [...samples, value]);
  row.values.set(tool, median([...samples, value]));
  console.log(`  ${tool}: ${figure}: ${format(value, unit)}`);
}
function format(v: number | undefined, unit: Unit): string {
  if (v === undefined || Number.isNaN(v)) return 'n/a';
  switch (unit) {
    case 'ms':
      return `${v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')} ms`;
    case 'bytes':
      return Math.round(v).toLocaleString('en-US');
    case 'MB':
      return `${(v / 1e6).toFixed(1)} MB`;
    case '%':
      return `${v.toFixed(2)} %`;
  }
}

// ---- measurement helpers

function stats(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
  return { median: at(0.5), p90: at(0.9), max: s[s.length - 1]! };
}

/** Latency trials: write a file (open, write, close), poll its copy on every event-loop turn, then wait until the mirror settles. */
async function trials(work: string, dst: string, mirror: RunningMirror, name: (i: number) => string, timeoutMs: number) {
  const ms: number[] = [];
  for (let i = 0; i < TRIALS; i++) {
    const rel = name(i);
    const content = Buffer.from(`trial ${i} ${'x'.repeat(i * 13)}\n`);
    await writeFile(join(work, rel), content); // open, write, close
    const closed = performance.now();
    const copy = join(dst, rel);
    for (;;) {
      try {
        if (readFileSync(copy).equals(content)) break;
      } catch {
        // not there yet
      }
      if (performance.now() - closed > timeoutMs) throw new Error(`${rel} not mirrored within ${timeoutMs} ms`);
      await new Promise((r) => setImmediate(r));
    }
    ms.push(performance.now() - closed);
    await mirror.settle();
  }
  return stats(ms);
}

/** Poll until every file of `expect` is on the mirror with its content (or fail after 30 s). */
async function waitMirrored(dst: string, expect: Map<string, Buffer>): Promise<number> {
  const started = performance.now();
  for (;;) {
    let ok = true;
    for (const [rel, content] of expect) {
      try {
        if (!readFileSync(join(dst, rel)).equals(content)) ok = false;
      } catch {
        ok = false;
      }
      if (!ok) break;
    }
    if (ok) return performance.now() - started;
    if (performance.now() - started > 30_000) throw new Error('not mirrored within 30 s');
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Poll until `path` is gone (or fail after 30 s). */
async function waitGone(path: string): Promise<void> {
  const started = performance.now();
  while (existsSync(path)) {
    if (performance.now() - started > 30_000) throw new Error(`${path} still there after 30 s`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Bytes both ways of every daemon session logged after `from` (the daemon's own `sent X bytes  received Y bytes`). */
async function daemonWireBytes(daemon: TestDaemon, from: number): Promise<number> {
  const log = (await daemon.log()).slice(from);
  if (process.env['BENCH_DEBUG']) console.log(log);
  let wire = 0;
  for (const m of log.matchAll(/sent (\d+) bytes\s+received (\d+) bytes/g)) wire += Number(m[1]) + Number(m[2]);
  return wire;
}

// ---- scenarios

/** Latency from a file's close to its identical copy on the mirror, for a file in a 20-file subdirectory and one at the top of a 200-file tree. */
async function latency(tool: LiveTool, daemonLabel: string, globalSettings: string[], variant: Variant, tag: string, placements: ('sub' | 'top')[]): Promise<void> {
  const daemon = await startDaemon({ globalSettings });
  const work = await mkdtemp(join(tmpdir(), 'lsyncd-bench-live-'));
  try {
    for (let d = 0; d < 10; d++) {
      await mkdir(join(work, `d${d}`));
      for (let i = 0; i < 20; i++) await writeFile(join(work, `d${d}/f${i}`), Buffer.alloc(1024, i));
    }
    const mirror = await tool.start(work, daemon, 'lat', variant);
    const timeoutMs = 10_000 + (variant.delay === 'default' ? 30_000 : variant.delay * 1000);
    try {
      const dst = join(daemon.modulePath('push'), 'lat');
      for (const placement of placements) {
        const s =
          placement === 'sub'
            ? await trials(work, dst, mirror, (i) => `d${i % 10}/new-${i}`, timeoutMs)
            : await trials(work, dst, mirror, (i) => `top-${i}`, timeoutMs);
        const where = placement === 'sub' ? 'file in a 20-file subdir' : 'file at the top of 200';
        record(`latency ${where}, ${daemonLabel}${tag}: median`, 'ms', tool.name, s.median);
        record(`latency ${where}, ${daemonLabel}${tag}: p90`, 'ms', tool.name, s.p90);
      }
    } finally {
      await mirror.stop();
    }
  } finally {
    await daemon.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** The burst (1,000 files into 50 new directories: time until the mirror matches after the last close) and rename (a 1,000 × 4 KiB directory: time and bytes on the wire). */
async function burstAndRename(tool: LiveTool): Promise<void> {
  const daemon = await startDaemon();
  const work = await mkdtemp(join(tmpdir(), 'lsyncd-bench-burst-'));
  try {
    const mirror = await tool.start(work, daemon, 'b', DELAY_0);
    try {
      const dst = join(daemon.modulePath('push'), 'b');
      // Burst: 1,000 files of 1 KiB written into 50 new directories, as fast as we can.
      const expect = new Map<string, Buffer>();
      const t0 = performance.now();
      for (let d = 0; d < 50; d++) {
        await mkdir(join(work, `burst${d}`));
        for (let i = 0; i < 20; i++) {
          const content = Buffer.alloc(1024, (d * 20 + i) & 0xff);
          await writeFile(join(work, `burst${d}`, `f${i}`), content);
          expect.set(`burst${d}/f${i}`, content);
        }
      }
      const written = performance.now() - t0;
      const after = await waitMirrored(dst, expect);
      await mirror.settle();
      console.log(`  ${tool.name}: burst written in ${written.toFixed(0)} ms`);
      record('burst: 1,000 files in 50 new dirs, mirror complete after the last close', 'ms', tool.name, after);
      // Rename: a directory of 1,000 × 4 KiB files.
      await mkdir(join(work, 'site/pages'), { recursive: true });
      for (let i = 0; i < 1000; i++) await writeFile(join(work, 'site/pages', `p${i}`), Buffer.alloc(4096, i & 0xff));
      const renamed = new Map<string, Buffer>();
      for (let i = 0; i < 1000; i++) renamed.set(`site/articles/p${i}`, Buffer.alloc(4096, i & 0xff));
      await mirror.settle();
      await waitMirrored(dst, new Map([...renamed].map(([k, v]) => [k.replace('articles', 'pages'), v])));
      await mirror.settle();
      // The daemon writes its per-session log line after the session: let those of the setup land.
      await new Promise((r) => setTimeout(r, 500));
      const sentBefore = mirror.sentBytes?.();
      const logBefore = (await daemon.log()).length;
      const r0 = performance.now();
      await rename(join(work, 'site/pages'), join(work, 'site/articles'));
      const took = await waitMirrored(dst, renamed);
      await waitGone(join(dst, 'site/pages'));
      await mirror.settle();
      const total = performance.now() - r0;
      await new Promise((r) => setTimeout(r, 500));
      const wire = await daemonWireBytes(daemon, logBefore);
      record('rename of a 1,000 x 4 KiB dir: every file in place', 'ms', tool.name, took);
      record('rename: old path gone and the mirror idle', 'ms', tool.name, total);
      record('rename: bytes on the wire, both ways (daemon log)', 'bytes', tool.name, wire);
      if (sentBefore !== undefined) console.log(`  ${tool.name}: rename: we counted ${(mirror.sentBytes!() - sentBefore).toLocaleString('en-US')} bytes sent`);
    } finally {
      await mirror.stop();
    }
  } finally {
    await daemon.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** Startup sync of 20,000 files (~200 MB) in 1,000 directories (watches set up included), then idle RSS and CPU over 5 s. */
async function startupAndIdle(tool: LiveTool, work: string, tag = '', column = tool.name): Promise<void> {
  const daemon = await startDaemon();
  try {
    const t0 = performance.now();
    const mirror = await tool.start(work, daemon, 's', DELAY_0);
    try {
      const startup = performance.now() - t0;
      const dst = join(daemon.modulePath('push'), 's');
      let files = 0;
      for (const d of await readdir(dst)) files += (await readdir(join(dst, d))).length;
      if (files !== 20_000) throw new Error(`${tool.name}: startup left ${files} files on the mirror, not 20,000`);
      record(`startup sync of 20,000 files (200 MB) in 1,000 dirs${tag}`, 'ms', column, startup);
      (globalThis as { gc?: () => void }).gc?.();
      await new Promise((r) => setTimeout(r, 1000));
      const cpu0 = mirror.cpuSeconds();
      const w0 = performance.now();
      await new Promise((r) => setTimeout(r, 5000));
      const idleCpu = ((mirror.cpuSeconds() - cpu0) * 1000 / (performance.now() - w0)) * 100;
      record(`idle, 1,001 dirs watched: RSS${tag || ' (ours: whole bench process)'}`, 'MB', column, mirror.rss());
      record(`idle, 1,001 dirs watched: CPU over 5 s${tag}`, '%', column, idleCpu);
    } finally {
      await mirror.stop();
    }
  } finally {
    await daemon.stop();
  }
}

/** A tree of `dirs` directories (one level of `a*`, each with `b*` subdirectories) with `perDir` 1,000-byte files in each. */
async function makeDirTree(root: string, dirs: number, perDir: number): Promise<number> {
  const fan = Math.ceil(Math.sqrt(dirs));
  let made = 0;
  let files = 0;
  const fill = async (dir: string) => {
    await mkdir(dir);
    made++;
    for (let i = 0; i < perDir; i++, files++) await writeFile(join(dir, `f${i}`), Buffer.alloc(1000, i));
  };
  for (let a = 0; made < dirs; a++) {
    await fill(join(root, `a${a}`));
    for (let b = 0; b < fan && made < dirs; b++) await fill(join(root, `a${a}`, `b${b}`));
  }
  return files;
}

/** Peak resident set of a process so far (VmHWM), bytes. */
function peakRss(pid: number): number {
  return procStatus(pid, 'VmHWM');
}

/** One `kB` figure of /proc/PID/status (VmHWM, RssAnon, RssFile), bytes. */
function procStatus(pid: number, field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/**
 * The live daemon's memory (issue 12): `lsyncd --nodaemon` as its own process after its startup
 * sync of a tree of `dirs` directories (the root included), idle for 3 s: RSS, and the peak during
 * the startup; with the inotify addon and without it (LSYNCD_NO_ADDON=1: the polling watcher), and
 * lsyncd 2 on the same tree.
 */
async function idleMemory(dirs: number, perDir: number, lsyncd2: string | undefined): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'lsyncd-bench-idle-'));
  try {
    const files = await makeDirTree(work, dirs - 1, perDir);
    const label = `${dirs.toLocaleString('en-US')} dirs, ${files.toLocaleString('en-US')} files`;
    const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
    const runs: Array<[string, string, (target: string) => MirrorProcess | Promise<MirrorProcess>]> = [
      [ours.name, '', (target) => startMirrorProcess(process.execPath, [cli, '--nodaemon', work + '/', target], /startup sync done/)],
      [ours.name, ' [ours without the addon: polling]', (target) => {
        process.env['LSYNCD_NO_ADDON'] = '1'; // read by the child at its start
        try {
          return startMirrorProcess(process.execPath, [cli, '--nodaemon', work + '/', target], /startup sync done/);
        } finally {
          delete process.env['LSYNCD_NO_ADDON'];
        }
      }],
      ...(lsyncd2 ? [['lsyncd 2', '', (target: string) => startLsyncd2(lsyncd2, { source: work, target, nodelay: false, delay: 0 })] as [string, string, (target: string) => Promise<MirrorProcess>]] : []),
    ];
    // BENCH_LIVE_ROUNDS: the runs interleaved that many times (the table shows medians), so a
    // shared machine's load falls on every tool alike; BENCH_LIVE_NO_POLLING skips the polling run.
    const rounds = Math.max(1, Number(process.env['BENCH_LIVE_ROUNDS'] ?? 1) || 1);
    const chosen = process.env['BENCH_LIVE_NO_POLLING'] ? runs.filter(([, tag]) => !tag.includes('polling')) : runs;
    for (let round = 0; round < rounds; round++) for (const [column, tag, start] of chosen) {
      const daemon = await startDaemon();
      try {
        const t0 = performance.now();
        const proc = await start(`rsync://127.0.0.1:${daemon.port}/push/s/`);
        try {
          await proc.started;
          await proc.settle();
          record(`idle memory: startup sync, ${label}${tag}`, 'ms', column, performance.now() - t0);
          await new Promise((r) => setTimeout(r, 3000));
          record(`idle memory: RSS after the startup sync, ${label}${tag}`, 'MB', column, proc.rss());
          record(`idle memory: · of it anonymous (RssAnon), ${label}${tag}`, 'MB', column, procStatus(proc.pid, 'RssAnon'));
          record(`idle memory: · of it file pages (RssFile), ${label}${tag}`, 'MB', column, procStatus(proc.pid, 'RssFile'));
          record(`idle memory: peak RSS during the startup sync, ${label}${tag}`, 'MB', column, peakRss(proc.pid));
          // One change once idle (the first after the release: the code it runs is faulted back
          // in), then what the daemon holds once it has worked again.
          const changed = new Map([[`a0/changed-${Date.now()}`, Buffer.alloc(1000, 7)]]);
          const c0 = performance.now();
          for (const [rel, content] of changed) await writeFile(join(work, rel), content);
          await waitMirrored(join(daemon.modulePath('push'), 's'), changed);
          record(`idle memory: first change after the startup sync, until mirrored, ${label}${tag}`, 'ms', column, performance.now() - c0);
          await proc.settle();
          await new Promise((r) => setTimeout(r, 1000));
          record(`idle memory: RSS 1 s after that change, ${label}${tag}`, 'MB', column, proc.rss());
          for (const rel of changed.keys()) await rm(join(work, rel));
        } finally {
          await proc.stop();
        }
      } finally {
        await daemon.stop();
      }
    }
    // The tagged rows compare ours without the addon with the same lsyncd 2 run.
    for (const what of ['startup sync', 'RSS after the startup sync', '· of it anonymous (RssAnon)', '· of it file pages (RssFile)', 'peak RSS during the startup sync', 'first change after the startup sync, until mirrored', 'RSS 1 s after that change']) {
      const v = rows.find((r) => r.figure === `idle memory: ${what}, ${label}`)?.values.get('lsyncd 2');
      if (v !== undefined) rows.find((r) => r.figure === `idle memory: ${what}, ${label} [ours without the addon: polling]`)?.values.set('lsyncd 2', v);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const found = findLsyncd2();
  const tools: LiveTool[] = [ours];
  console.log(`live-mirror figures (issue 5), ${TRIALS} latency trials each`);
  for (const line of machine().filter((l) => !l.startsWith('data and'))) console.log(`  ${line}`);
  console.log(`  data and daemon modules under ${tmpdir()}; lsyncd 2's RSS and CPU from /proc`);
  if (typeof found === 'string') console.log(`  ${found}: running ours alone`);
  else {
    console.log(`  lsyncd 2: ${found.binary}, version ${found.version}`);
    tools.push(lsyncd2Tool(found.binary));
  }
  const lsyncd2 = tools[1];
  const onlyMemory = process.env['BENCH_LIVE_ONLY'] === 'memory';

  // The live daemon's memory (issue 12): 1,076 directories, and 50,000 with BENCH_LIVE_BIG=1.
  const lsyncd2Binary = typeof found === 'string' ? undefined : found.binary;
  await idleMemory(1076, 19, lsyncd2Binary);
  if (process.env['BENCH_LIVE_BIG']) await idleMemory(50_000, 1, lsyncd2Binary);

  for (const [label, globalSettings] of onlyMemory ? [] : [
    ['default daemon', []],
    ['TCP_NODELAY daemon', ['socket options = TCP_NODELAY']],
  ] as const) {
    for (const tool of tools) await latency(tool, label, [...globalSettings], DELAY_0, '', ['sub', 'top']);
  }
  // lsyncd 2-only variants; ours has one setting, so its column repeats its figure of the run named.
  const oursFrom = (figure: string, tag: string) => {
    for (const suffix of [': median', ': p90']) {
      const v = rows.find((r) => r.figure === figure + suffix)?.values.get(ours.name);
      const row = rows.find((r) => r.figure === figure + tag + suffix);
      if (row && v !== undefined) row.values.set(ours.name, v);
    }
  };
  if (lsyncd2 && !onlyMemory) {
    // Its rsync client with TCP_NODELAY too (the 10.8 ms figure), against the TCP_NODELAY daemon.
    const tag = ' [+ rsync --sockopts=TCP_NODELAY]';
    await latency(lsyncd2, 'TCP_NODELAY daemon', ['socket options = TCP_NODELAY'], { delay: 0, clientNodelay: true }, tag, ['sub', 'top']);
    oursFrom('latency file in a 20-file subdir, TCP_NODELAY daemon', tag);
    oursFrom('latency file at the top of 200, TCP_NODELAY daemon', tag);
  }
  if (lsyncd2 && !onlyMemory && !process.env['BENCH_LIVE_SKIP_DEFAULT_DELAY']) {
    // lsyncd 2's default delay (15 s): the subdirectory case only (20 trials take ~5 minutes).
    const tag = ' [lsyncd 2 default delay]';
    await latency(lsyncd2, 'default daemon', [], { delay: 'default' }, tag, ['sub']);
    oursFrom('latency file in a 20-file subdir, default daemon', tag);
  }
  for (const tool of onlyMemory ? [] : tools) await burstAndRename(tool);

  const work = await mkdtemp(join(tmpdir(), 'lsyncd-bench-startup-'));
  try {
    for (let d = 0; d < (onlyMemory ? 0 : 1000); d++) {
      await mkdir(join(work, `d${d}`));
      for (let i = 0; i < 20; i++) await writeFile(join(work, `d${d}`, `f${i}`), Buffer.alloc(10_000, (d + i) & 0xff));
    }
    for (const tool of onlyMemory ? [] : tools) await startupAndIdle(tool, work);
    // Ours as its own process, as lsyncd 2 is: its column is "ours", lsyncd 2's repeats the run above.
    const tag = ' [ours as lsyncd --nodaemon]';
    if (!onlyMemory) await startupAndIdle(oursProcess, work, tag, ours.name);
    if (lsyncd2 && !onlyMemory) {
      for (const [plain, tagged] of [
        ['startup sync of 20,000 files (200 MB) in 1,000 dirs', `startup sync of 20,000 files (200 MB) in 1,000 dirs${tag}`],
        ['idle, 1,001 dirs watched: RSS (ours: whole bench process)', `idle, 1,001 dirs watched: RSS${tag}`],
        ['idle, 1,001 dirs watched: CPU over 5 s', `idle, 1,001 dirs watched: CPU over 5 s${tag}`],
      ]) {
        const v = rows.find((r) => r.figure === plain)?.values.get(lsyncd2.name);
        if (v !== undefined) rows.find((r) => r.figure === tagged)?.values.set(lsyncd2.name, v);
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }

  console.log('');
  const header = ['figure', 'ours', lsyncd2 ? `lsyncd 2 ${typeof found === 'string' ? '' : found.version}`.trim() : 'lsyncd 2', 'ours / lsyncd 2'];
  const body = rows.map((r) => {
    const a = r.values.get(ours.name);
    const b = lsyncd2 ? r.values.get(lsyncd2.name) : undefined;
    const ratio = a !== undefined && b !== undefined && b > 0 ? `${a / b < 0.1 ? (a / b).toPrecision(2) : (a / b).toFixed(2)}x` : '';
    return [r.figure, format(a, r.unit), lsyncd2 ? format(b, r.unit) : 'not installed', ratio];
  });
  console.log(table([header, ...body]));
  console.log('lsyncd 2 runs with delay = 0 except where marked; ours with its default (no fixed wait).');
  console.log('targets (issue 5): latency median <= 5 ms, p90 <= 20 ms; burst <= 150 ms; rename <= 100 KB, <= 150 ms; startup <= 1.1 s; idle <= 64 MB, <= 1 % CPU');
  console.log('targets (issue 12): idle <= 48 MB with 1,076 dirs watched, <= 150 MB with 50,000; live startup <= 1.0x lsyncd 2 + rsync');
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
