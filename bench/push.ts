// Push figures (issue 3), not a test: the same pushes with the rsync binary and with ours, side by
// side in one run, against a local rsync daemon, data on tmpfs. Run: node dist/bench/push.js
//   1. initial push of 20,000 files in 1,000 directories (~205 MB) into an empty module path;
//   2. the same re-pushed with nothing changed;
//   3. a 512 MiB file pushed once;
//   4. the same file again after 64 scattered 4 KiB regions changed (delta transfer).
// For each: wall time, client CPU (user+sys) and peak RSS (GNU time), and bytes on the wire as the
// daemon counts them (its log line `sent X bytes  received Y bytes`). Median of BENCH_REPS runs (3).
// rsync runs as `rsync -rlpt --delete --no-inc-recursive` (our client never recurses incrementally);
// rsync's default (incremental recursion) is shown too. Targets (issue 3): wire bytes <= 1.02x
// rsync's; wall <= 1.5x rsync's for the delta, <= 1.2x for the others.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestDaemon } from '../test/helpers/daemon.js';
import { commas, machine, makeBenchTree, makeTempDir, measure, median, startBenchDaemon, table, wireBytes, TREE_DIRS, TREE_FILES, type Measure, type WireBytes, makeBigPair, BIG_FILE_BYTES, BIG_REGIONS } from './common.js';

const REPS = Number(process.env['BENCH_REPS'] ?? 3);

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

interface Client {
  key: 'rsync' | 'ours' | 'rsyncIr';
  label: string;
  cmd: string;
  args(src: string, url: string): string[];
}

const haveRsync = spawnSync('rsync', ['--version']).status === 0;

const ALL_CLIENTS: Client[] = [
  { key: 'rsync', label: 'rsync -rlpt --delete --no-inc-recursive', cmd: 'rsync', args: (s, u) => ['-rlpt', '--delete', '--no-inc-recursive', s, u] },
  { key: 'ours', label: 'lsyncd --once', cmd: process.execPath, args: (s, u) => [CLI, '--once', s, u] },
  { key: 'rsyncIr', label: 'rsync -rlpt --delete (default incremental recursion)', cmd: 'rsync', args: (s, u) => ['-rlpt', '--delete', s, u] },
];
const CLIENTS = ALL_CLIENTS.filter((c) => haveRsync || c.key === 'ours');

const SCENARIOS = ['tree-initial', 'tree-nochange', 'big-initial', 'big-delta'] as const;
type Scenario = (typeof SCENARIOS)[number];
const TITLES: Record<Scenario, string> = {
  'tree-initial': '20,000 files / 1,000 dirs, initial',
  'tree-nochange': '20,000 files, re-push, no change',
  'big-initial': '512 MiB file, initial',
  'big-delta': `512 MiB file, ${BIG_REGIONS} x 4 KiB changed`,
};
const WALL_TARGET: Record<Scenario, number> = { 'tree-initial': 1.2, 'tree-nochange': 1.2, 'big-initial': 1.2, 'big-delta': 1.5 };
const WIRE_TARGET = 1.02;

interface Sample extends Measure, WireBytes {}
const samples = new Map<string, Sample[]>(); // `${client}/${scenario}`


async function run(daemon: TestDaemon, client: Client, scenario: Scenario, src: string, dest: string, nth: number): Promise<void> {
  const remote = `push/${dest}/`;
  const m = await measure(client.cmd, client.args(src + '/', `rsync://127.0.0.1:${daemon.port}/${remote}`));
  if (m.exitCode !== 0) throw new Error(`${client.label} ${scenario}: exit ${m.exitCode}\n${m.stderr}`);
  const wire = await wireBytes(daemon, remote, nth);
  const key = `${client.key}/${scenario}`;
  samples.set(key, [...(samples.get(key) ?? []), { ...m, ...wire }]);
}

function same(a: string, b: string): boolean {
  return spawnSync('diff', ['-rq', a, b], { stdio: 'ignore' }).status === 0;
}

const fmtS = (s: number) => (Number.isNaN(s) ? 'n/a' : `${s.toFixed(2)} s`);
const fmtMB = (b: number) => (Number.isNaN(b) ? 'n/a' : `${(b / 1e6).toFixed(1)} MB`);

function report(): string {
  const rows: string[][] = [['', 'rsync --no-i-r', 'lsyncd', 'ratio', 'target', 'met', 'rsync (i-r)']];
  const verdicts: string[] = [];
  for (const s of SCENARIOS) {
    const get = (c: Client['key']) => samples.get(`${c}/${s}`) ?? [];
    const metrics: [string, (x: Sample) => number, (n: number) => string, number | undefined][] = [
      ['wall', (x) => x.wall, fmtS, WALL_TARGET[s]],
      ['client CPU', (x) => x.cpu, fmtS, undefined],
      ['client peak RSS', (x) => x.rss, fmtMB, undefined],
      ['wire bytes (total)', (x) => x.sent + x.received, commas, WIRE_TARGET],
      ['  client -> daemon', (x) => x.received, commas, undefined],
    ];
    rows.push([TITLES[s], '', '', '', '', '', '']);
    for (const [name, pick, fmt, target] of metrics) {
      const r = median(get('rsync').map(pick));
      const o = median(get('ours').map(pick));
      const ir = median(get('rsyncIr').map(pick));
      const ratio = o / r;
      const met = target === undefined || Number.isNaN(ratio) ? '' : ratio <= target ? 'yes' : 'NO';
      const shown = Number.isFinite(ratio) ? `${ratio.toFixed(name.includes('bytes') || name.includes('->') ? 3 : 2)}x` : 'n/a';
      if (met) verdicts.push(`${TITLES[s]}: ${name.trim()} ${shown} (target <= ${target}x): ${met}`);
      rows.push([`  ${name}`, fmt(r), fmt(o), shown, target ? `<= ${target}x` : '', met, fmt(ir)]);
    }
  }
  return table(rows) + '\n\n' + verdicts.join('\n');
}

async function main(): Promise<void> {
  const root = makeTempDir('lsyncd-bench-push-');
  let daemon: TestDaemon | undefined;
  const cleanup = () => rmSync(root, { recursive: true, force: true });
  process.once('SIGINT', () => {
    cleanup();
    void daemon?.stop().finally(() => process.exit(130));
  });
  try {
    console.log('push bench (issue 3)');
    for (const line of machine()) console.log(`  ${line}`);
    if (!haveRsync) {
      console.log('  skipped: no rsync binary (the bench needs it for the daemon, and for the comparison)');
      return;
    }
    let t0 = performance.now();
    const tree = join(root, 'tree');
    mkdirSync(tree);
    const total = makeBenchTree(tree);
    makeBigPair(join(root, 'big-a'), join(root, 'big-b'));
    console.log(`  data: ${TREE_FILES} files, ${TREE_DIRS} dirs, ${commas(total)} bytes; ` +
      `${BIG_FILE_BYTES / 1048576} MiB file; made in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${REPS} run(s) each, medians`);
    daemon = await startBenchDaemon();
    const mod = daemon.modulePath('push');
    t0 = performance.now();
    for (let rep = 0; rep < REPS; rep++) {
      // Alternate the order so neither client always runs on a warmer machine.
      const order = rep % 2 ? [...CLIENTS].reverse() : CLIENTS;
      for (const client of order) {
        const dest = `${client.key}-${rep}`;
        await run(daemon, client, 'tree-initial', tree, `${dest}-tree`, 0);
        await run(daemon, client, 'tree-nochange', tree, `${dest}-tree`, 1);
        if (rep === 0 && !same(tree, join(mod, `${dest}-tree`))) throw new Error(`${client.label}: the mirror differs from the source tree`);
        rmSync(join(mod, `${dest}-tree`), { recursive: true, force: true });
        await run(daemon, client, 'big-initial', join(root, 'big-a'), `${dest}-big`, 0);
        await run(daemon, client, 'big-delta', join(root, 'big-b'), `${dest}-big`, 1);
        if (rep === 0 && !same(join(root, 'big-b'), join(mod, `${dest}-big`))) throw new Error(`${client.label}: the big file differs after the delta`);
        rmSync(join(mod, `${dest}-big`), { recursive: true, force: true });
      }
      process.stderr.write(`  run ${rep + 1}/${REPS} done (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
    }
    // The floor under every row of ours: starting node and loading the CLI, no transfer.
    const floor: Measure[] = [];
    for (let i = 0; i < REPS; i++) floor.push(await measure(process.execPath, [CLI, '--version']));
    console.log('');
    console.log(report());
    console.log(
      `\nfloor of ours (node start + CLI load, \`lsyncd --version\`): wall ${fmtS(median(floor.map((m) => m.wall)))}, ` +
        `CPU ${fmtS(median(floor.map((m) => m.cpu)))}, peak RSS ${fmtMB(median(floor.map((m) => m.rss)))}`,
    );
    if (process.env['BENCH_JSON']) {
      const raw = Object.fromEntries([...samples].map(([k, v]) => [k, v.map(({ stdout: _o, stderr: _e, ...x }) => x)]));
      writeFileSync(process.env['BENCH_JSON'], JSON.stringify(raw, null, 1));
    }
  } finally {
    await daemon?.stop();
    cleanup();
  }
}

await main();
