// Daemon figures (issue 10), not a test: the stock rsync client pushing into and pulling from a
// real rsyncd and our `lsyncd serve`, side by side in one run, the same modules and data on tmpfs.
// Run: node dist/bench/serve.js
//   push: 20,000 files initial, the same again with no change, a 512 MiB file, then its delta;
//   pull: the 20,000 files into an empty directory.
// For each: the client's wall time, and the daemon's CPU (its process and the children it reaped:
// rsyncd forks one per connection) and peak RSS (for rsyncd, the largest connection process seen
// while polling /proc). Median of BENCH_REPS runs (3). The client is `rsync -rlpt --delete` as a
// user types it (rsyncd then recurses incrementally; ours never offers it). Target (issue 10):
// wall <= 1.5x rsyncd's on every row.
// BENCH_SCENARIOS=push-delta,... runs only those rows (push-delta brings push-big, which it updates;
// push-nochange brings push-tree). BENCH_SCENARIOS=push-wide,push-wide-nochange (issue 12, not run by
// default): the client pushing 200,000 files of 0-2 KiB in 10,000 dirs, initial and unchanged.
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TestDaemon } from '../test/helpers/daemon.js';
import { commas, machine, makeBenchTree, makeWideTree, WIDE_DIRS, WIDE_FILES, makeBigPair, makeTempDir, measure, median, startBenchDaemon, table, BIG_FILE_BYTES, TREE_DIRS, TREE_FILES } from './common.js';

const REPS = Number(process.env['BENCH_REPS'] ?? 3);
const WALL_TARGET = 1.5;
const SCENARIOS = ['push-tree', 'push-nochange', 'push-big', 'push-delta', 'pull-tree', 'push-wide', 'push-wide-nochange'] as const;
type Scenario = (typeof SCENARIOS)[number];
const DEFAULT_SCENARIOS = SCENARIOS.filter((s) => !s.startsWith('push-wide'));
const wanted = new Set((process.env['BENCH_SCENARIOS'] ?? DEFAULT_SCENARIOS.join(',')).split(',').map((x) => x.trim()));
for (const name of wanted) if (!(SCENARIOS as readonly string[]).includes(name)) throw new Error(`BENCH_SCENARIOS: no scenario ${name} (${SCENARIOS.join(', ')})`);
/** The rows run: those asked for, and the ones they build on. */
const RUN = new Set<Scenario>(
  SCENARIOS.filter(
    (s) =>
      wanted.has(s) ||
      (s === 'push-big' && wanted.has('push-delta')) ||
      (s === 'push-tree' && (wanted.has('push-nochange') || wanted.has('pull-tree'))) ||
      (s === 'push-wide' && wanted.has('push-wide-nochange')),
  ),
);
const TITLES: Record<Scenario, string> = {
  'push-tree': 'push: 20,000 files / 1,000 dirs, initial',
  'push-nochange': 'push: the same, no change',
  'push-big': 'push: 512 MiB file, initial',
  'push-delta': 'push: 512 MiB file, 64 x 4 KiB changed',
  'pull-tree': 'pull: 20,000 files into an empty dir',
  'push-wide': `push: ${commas(WIDE_FILES)} files / ${commas(WIDE_DIRS)} dirs (0-2 KiB), initial`,
  'push-wide-nochange': 'push: the same, no change',
};

interface Sample {
  wall: number;
  daemonCpu: number;
  daemonRss: number;
}
const samples = new Map<string, Sample[]>(); // `${daemon}/${scenario}`

/** utime + stime + cutime + cstime of a process, seconds (reaped children included). */
function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
}

function hwm(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The daemon's peak RSS during `work`: its own, and that of any child it forked (polled). */
async function watchRss(pid: number, work: Promise<unknown>): Promise<number> {
  let peak = hwm(pid);
  let done = false;
  void work.finally(() => (done = true));
  while (!done) {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const status = readFileSync(`/proc/${entry}/status`, 'utf8');
        if (Number(/PPid:\s+(\d+)/.exec(status)?.[1]) === pid) peak = Math.max(peak, hwm(Number(entry)));
      } catch {
        // gone
      }
    }
    peak = Math.max(peak, hwm(pid));
    await new Promise((r) => setTimeout(r, 20));
  }
  return peak;
}

/** Whether `pid` has a child process still (rsyncd's connection process, not reaped yet). */
function hasChild(pid: number): boolean {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (Number(/PPid:\s+(\d+)/.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1]) === pid) return true;
    } catch {
      // gone
    }
  }
  return false;
}

async function once(which: string, daemon: TestDaemon, scenario: Scenario, args: string[]): Promise<void> {
  const before = cpuOf(daemon.pid);
  const run = measure('rsync', args);
  const rss = await watchRss(daemon.pid, run);
  const m = await run;
  if (m.exitCode !== 0) throw new Error(`${which} ${scenario}: exit ${m.exitCode}\n${m.stderr}`);
  // rsyncd reaps its connection process a moment after the client ends: its CPU counts once it has.
  for (let waited = 0; waited < 3000 && hasChild(daemon.pid); waited += 10) await new Promise((r) => setTimeout(r, 10));
  const key = `${which}/${scenario}`;
  samples.set(key, [...(samples.get(key) ?? []), { wall: m.wall, daemonCpu: cpuOf(daemon.pid) - before, daemonRss: rss }]);
}

const fmtS = (s: number) => (Number.isNaN(s) ? 'n/a' : `${s.toFixed(2)} s`);
const fmtMB = (b: number) => (Number.isNaN(b) || b === 0 ? 'n/a' : `${(b / 1e6).toFixed(1)} MB`);

function report(): string {
  const rows: string[][] = [['', 'rsyncd', 'lsyncd serve', 'ratio', 'target', 'met']];
  for (const s of SCENARIOS) {
    if (!RUN.has(s)) continue;
    rows.push([TITLES[s], '', '', '', '', '']);
    const metrics: [string, (x: Sample) => number, (n: number) => string, number | undefined][] = [
      ['client wall', (x) => x.wall, fmtS, WALL_TARGET],
      ['daemon CPU', (x) => x.daemonCpu, fmtS, undefined],
      ['daemon peak RSS', (x) => x.daemonRss, fmtMB, undefined],
    ];
    for (const [name, pick, fmt, target] of metrics) {
      const r = median((samples.get(`rsyncd/${s}`) ?? []).map(pick));
      const o = median((samples.get(`ours/${s}`) ?? []).map(pick));
      const ratio = o / r;
      const met = target === undefined || !Number.isFinite(ratio) ? '' : ratio <= target ? 'yes' : 'NO';
      rows.push([`  ${name}`, fmt(r), fmt(o), Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : 'n/a', target ? `<= ${target}x` : '', met]);
    }
  }
  return table(rows);
}

async function main(): Promise<void> {
  const root = makeTempDir('lsyncd-bench-serve-');
  const daemons: [string, TestDaemon][] = [];
  try {
    console.log('serve bench (issue 10): the stock rsync client against rsyncd and lsyncd serve');
    for (const line of machine()) console.log(`  ${line}`);
    const tree = join(root, 'tree');
    mkdirSync(tree);
    const total = RUN.has('push-tree') ? makeBenchTree(tree) : 0;
    if (RUN.has('push-big')) makeBigPair(join(root, 'big-a'), join(root, 'big-b'));
    const wide = join(root, 'wide');
    if (RUN.has('push-wide')) {
      mkdirSync(wide);
      console.log(`  wide tree: ${WIDE_FILES} files, ${WIDE_DIRS} dirs, ${commas(makeWideTree(wide))} bytes`);
    }
    console.log(`  data: ${TREE_FILES} files, ${TREE_DIRS} dirs, ${commas(total)} bytes; ${BIG_FILE_BYTES / 1048576} MiB file; ${REPS} run(s) each, medians`);
    daemons.push(['rsyncd', await startBenchDaemon('rsync')], ['ours', await startBenchDaemon('lsyncd')]);
    for (let rep = 0; rep < REPS; rep++) {
      const order = rep % 2 ? [...daemons].reverse() : daemons;
      for (const [which, d] of order) {
        const url = (path: string) => `rsync://127.0.0.1:${d.port}/push/${path}`;
        const dest = `r${rep}`;
        if (RUN.has('push-tree')) {
          await once(which, d, 'push-tree', ['-rlpt', '--delete', `${tree}/`, url(`${dest}-tree/`)]);
          if (RUN.has('push-nochange')) await once(which, d, 'push-nochange', ['-rlpt', '--delete', `${tree}/`, url(`${dest}-tree/`)]);
          if (RUN.has('pull-tree')) {
            const pulled = join(root, `pulled-${which}-${rep}`);
            await once(which, d, 'pull-tree', ['-rlpt', url(`${dest}-tree/`), `${pulled}/`]);
            rmSync(pulled, { recursive: true, force: true });
          }
          rmSync(join(d.modulePath('push'), `${dest}-tree`), { recursive: true, force: true });
        }
        if (RUN.has('push-big')) {
          await once(which, d, 'push-big', ['-rlpt', '--delete', `${join(root, 'big-a')}/`, url(`${dest}-big/`)]);
          if (RUN.has('push-delta')) await once(which, d, 'push-delta', ['-rlpt', '--delete', `${join(root, 'big-b')}/`, url(`${dest}-big/`)]);
          rmSync(join(d.modulePath('push'), `${dest}-big`), { recursive: true, force: true });
        }
        if (RUN.has('push-wide')) {
          await once(which, d, 'push-wide', ['-rlpt', '--delete', `${wide}/`, url(`${dest}-wide/`)]);
          if (RUN.has('push-wide-nochange')) await once(which, d, 'push-wide-nochange', ['-rlpt', '--delete', `${wide}/`, url(`${dest}-wide/`)]);
          rmSync(join(d.modulePath('push'), `${dest}-wide`), { recursive: true, force: true });
        }
      }
      process.stderr.write(`  run ${rep + 1}/${REPS} done\n`);
    }
    console.log('');
    console.log(report());
  } finally {
    for (const [, d] of daemons) await d.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
