// Big-tree push figures (issue 12), not a test: a generated tree of many small files pushed into a
// real rsync daemon by the rsync binary and by ours, side by side in one run, data and daemon on
// tmpfs. Run: node dist/bench/bigtree.js
//   1. initial push of 200,000 files in 10,000 dirs (0-2 KiB each) into an empty module path;
//   2. the same re-pushed with nothing changed;
//   3. `-n` (dry run) into an empty module path: the file list and the generator's answers only.
// For each: wall, client CPU (user+sys) and peak client RSS (GNU time). `BENCH_BIG_FILES=1000000`
// makes it 50,000 dirs x 20 files (the 1M rows); `BENCH_REPS` (default 1) runs per figure, medians.
// `BENCH_BIG_OURS=path/to/main.js` measures another build of our CLI; `BENCH_BIG_BEFORE=path/to/main.js`
// adds that build as a third client, "before" (a before/after in one run, each with its ratio to rsync).
// rsync runs as `rsync -rlpt --delete --no-inc-recursive` (our client never recurses incrementally).
// Targets (issue 12): wall <= 1.0x rsync's, peak RSS <= 100 MB at 200k (<= 300 MB at 1M).
import { mkdirSync, rmSync, writeFileSync, utimesSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestDaemon } from '../test/helpers/daemon.js';
import { commas, machine, makeTempDir, measure, median, prng, startBenchDaemon, table, type Measure } from './common.js';

const REPS = Number(process.env['BENCH_REPS'] ?? 1);
const FILES = Number(process.env['BENCH_BIG_FILES'] ?? 200_000);
const FILES_PER_DIR = 20;
const DIRS = Math.ceil(FILES / FILES_PER_DIR);
/** Dirs per top-level dir: a two-level tree (top/sub), as a real tree has depth. */
const SUBDIRS_PER_TOP = 100;
const MAX_FILE = 2048;

const CLI = process.env['BENCH_BIG_OURS'] ?? fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const BEFORE = process.env['BENCH_BIG_BEFORE'];
const haveRsync = spawnSync('rsync', ['--version']).status === 0;

interface Client {
  key: 'rsync' | 'ours' | 'before';
  label: string;
  cmd: string;
  args(extra: string[], src: string, url: string): string[];
}
const CLIENTS: Client[] = [
  { key: 'rsync', label: 'rsync -rlpt --delete --no-inc-recursive', cmd: 'rsync', args: (x, s, u) => ['-rlpt', '--delete', '--no-inc-recursive', ...x, s, u] },
  { key: 'ours', label: 'lsyncd --once', cmd: process.execPath, args: (x, s, u) => [CLI, '--once', ...x, s, u] },
  ...(BEFORE ? [{ key: 'before' as const, label: 'lsyncd --once (before)', cmd: process.execPath, args: (x: string[], s: string, u: string) => [BEFORE, '--once', ...x, s, u] }] : []),
];

const SCENARIOS = ['initial', 'nochange', 'listonly'] as const;
type Scenario = (typeof SCENARIOS)[number];
const TITLES: Record<Scenario, string> = {
  initial: `${commas(FILES)} files / ${commas(DIRS)} dirs, initial push`,
  nochange: 'same, re-push, no change',
  listonly: 'same, -n into an empty path (file list only)',
};
const samples = new Map<string, Measure[]>();

/** The tree: DIRS directories of FILES_PER_DIR files (0-2 KiB of pseudo-random bytes), fixed mtimes. */
function makeTree(root: string): number {
  const rnd = prng(12);
  const buf = Buffer.alloc(MAX_FILE);
  for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(rnd() * 256);
  const t0 = 1_700_000_000;
  let total = 0;
  let made = 0;
  for (let d = 0; d < DIRS && made < FILES; d++) {
    const top = join(root, `t${String(Math.floor(d / SUBDIRS_PER_TOP)).padStart(3, '0')}`);
    if (d % SUBDIRS_PER_TOP === 0) mkdirSync(top);
    const dir = join(top, `d${String(d % SUBDIRS_PER_TOP).padStart(2, '0')}`);
    mkdirSync(dir);
    for (let f = 0; f < FILES_PER_DIR && made < FILES; f++, made++) {
      const size = Math.floor(rnd() * (MAX_FILE + 1));
      const path = join(dir, `f${String(f).padStart(2, '0')}-${(made * 2654435761 >>> 0).toString(36)}.dat`);
      writeFileSync(path, buf.subarray((made * 7) % 64, (made * 7) % 64 + Math.min(size, MAX_FILE - 64)));
      utimesSync(path, t0 + (made % 1000), t0 + (made % 1000));
      total += size;
    }
    utimesSync(dir, t0, t0);
  }
  return total;
}

async function run(daemon: TestDaemon, client: Client, scenario: Scenario, src: string, dest: string): Promise<void> {
  const extra = scenario === 'listonly' ? ['-n'] : [];
  const m = await measure(client.cmd, client.args(extra, src + '/', `rsync://127.0.0.1:${daemon.port}/push/${dest}/`));
  if (m.exitCode !== 0) throw new Error(`${client.label} ${scenario}: exit ${m.exitCode}\n${m.stderr.slice(0, 2000)}`);
  const key = `${client.key}/${scenario}`;
  samples.set(key, [...(samples.get(key) ?? []), m]);
}

const fmtS = (s: number) => (Number.isNaN(s) ? 'n/a' : `${s.toFixed(2)} s`);
const fmtMB = (b: number) => (Number.isNaN(b) ? 'n/a' : `${(b / 1e6).toFixed(1)} MB`);

function report(): string {
  const rows: string[][] = [['', 'rsync --no-i-r', 'lsyncd', 'ratio', ...(BEFORE ? ['before', 'ratio'] : [])]];
  for (const s of SCENARIOS) {
    rows.push([TITLES[s], '', '', '', ...(BEFORE ? ['', ''] : [])]);
    const metrics: [string, (x: Measure) => number, (n: number) => string][] = [
      ['wall', (x) => x.wall, fmtS],
      ['client CPU', (x) => x.cpu, fmtS],
      ['client peak RSS', (x) => x.rss, fmtMB],
    ];
    for (const [name, pick, fmt] of metrics) {
      const r = median((samples.get(`rsync/${s}`) ?? []).map(pick));
      const o = median((samples.get(`ours/${s}`) ?? []).map(pick));
      const ratio = (x: number) => (Number.isFinite(x / r) ? `${(x / r).toFixed(2)}x` : 'n/a');
      const b = median((samples.get(`before/${s}`) ?? []).map(pick));
      rows.push([`  ${name}`, fmt(r), fmt(o), ratio(o), ...(BEFORE ? [fmt(b), ratio(b)] : [])]);
    }
  }
  return table(rows);
}

async function main(): Promise<void> {
  console.log(`big-tree push bench (issue 12)`);
  for (const line of machine()) console.log(`  ${line}`);
  if (!haveRsync) {
    console.log('  skipped: no rsync binary (the bench needs it for the daemon, and for the comparison)');
    return;
  }
  const root = makeTempDir('lsyncd-bench-big-');
  let daemon: TestDaemon | undefined;
  const cleanup = () => rmSync(root, { recursive: true, force: true });
  process.once('SIGINT', () => {
    cleanup();
    void daemon?.stop().finally(() => process.exit(130));
  });
  try {
    const t0 = performance.now();
    const tree = join(root, 'tree');
    mkdirSync(tree);
    const total = makeTree(tree);
    console.log(`  data: ${commas(FILES)} files, ${commas(DIRS)} dirs, ${commas(total)} bytes; made in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${REPS} run(s) each, medians`);
    console.log(`  ours: ${CLI}${BEFORE ? `; before: ${BEFORE}` : ''}`);
    daemon = await startBenchDaemon();
    const mod = daemon.modulePath('push');
    for (let rep = 0; rep < REPS; rep++) {
      const order = rep % 2 ? [...CLIENTS].reverse() : CLIENTS;
      for (const client of order) {
        const dest = `${client.key}-${rep}`;
        await run(daemon, client, 'initial', tree, dest);
        await run(daemon, client, 'nochange', tree, dest);
        rmSync(join(mod, dest), { recursive: true, force: true });
        await run(daemon, client, 'listonly', tree, `${dest}-n`);
        rmSync(join(mod, `${dest}-n`), { recursive: true, force: true });
      }
    }
    console.log(`  load average after the runs: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log('');
    console.log(report());
  } finally {
    await daemon?.stop();
    cleanup();
  }
}

await main();
