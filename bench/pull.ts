// Pull figures (issue 6), not a test: the same pulls with the rsync binary and with ours, side by
// side in one run, from a local rsync daemon, data on tmpfs. Run: node dist/bench/pull.js
//   1. initial pull of 20,000 files in 1,000 directories (~205 MB) into an empty directory;
//   2. the same pulled again with nothing changed;
//   3. a 512 MiB file pulled onto a local copy that differs by 64 scattered 4 KiB regions (delta);
//   4. with BENCH_PULL_WIDE=1 (issue 12, about 2 more minutes): 200,000 files of 0-2 KiB in 10,000
//      directories, initial and no-change pulls.
// For each: wall time, client CPU (user+sys) and peak RSS (GNU time), and bytes on the wire as the
// daemon counts them (its log line `sent X bytes  received Y bytes`). Median of BENCH_REPS runs (3).
// rsync runs as `rsync -rlpt --delete --no-inc-recursive` (our client never recurses incrementally),
// ours as `lsyncd --once --delete`. BENCH_PULL_BEFORE=path/to/main.js adds another build as "before".
// Targets (issue 6): wire bytes <= 1.02x rsync's; wall <= 1.5x rsync's.
import { copyFileSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestDaemon } from '../test/helpers/daemon.js';
import { commas, machine, makeBenchTree, makeWideTree, WIDE_DIRS, WIDE_FILES, makeTempDir, measure, median, startBenchDaemon, table, wireBytes, TREE_DIRS, TREE_FILES, type Measure, type WireBytes, makeBigPair, BIG_FILE_BYTES, BIG_REGIONS } from './common.js';

const REPS = Number(process.env['BENCH_REPS'] ?? 3);
const ONLY = process.env['BENCH_PULL_ONLY']; // a scenario-name regex, to rerun part of the bench
const WIDE = Boolean(process.env['BENCH_PULL_WIDE']); // the 200k-file rows (issue 12)

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
/** Another build's CLI (path/to/main.js), measured as a third client "before" in the same run. */
const BEFORE = process.env['BENCH_PULL_BEFORE'];

interface Client {
  key: 'rsync' | 'ours' | 'before';
  label: string;
  cmd: string;
  args(url: string, dest: string): string[];
}

const haveRsync = spawnSync('rsync', ['--version']).status === 0;

const CLIENTS: Client[] = [
  { key: 'rsync', label: 'rsync -rlpt --delete --no-inc-recursive', cmd: 'rsync', args: (u, d) => ['-rlpt', '--delete', '--no-inc-recursive', u, d] },
  // --delete as rsync's: the same work (before 2026-12-06 ours ran without it, sparing it the deletion pass).
  { key: 'ours', label: 'lsyncd --once --delete', cmd: process.execPath, args: (u, d) => [CLI, '--once', '--delete', u, d] },
  ...(BEFORE ? [{ key: 'before' as const, label: 'lsyncd --once --delete (before)', cmd: process.execPath, args: (u: string, d: string) => [BEFORE, '--once', '--delete', u, d] }] : []),
];

const SCENARIOS = ['tree-initial', 'tree-nochange', 'big-delta', 'wide-initial', 'wide-nochange'] as const;
type Scenario = (typeof SCENARIOS)[number];
const TITLES: Record<Scenario, string> = {
  'tree-initial': '20,000 files / 1,000 dirs, initial pull',
  'tree-nochange': '20,000 files, re-pull, no change',
  'big-delta': `512 MiB file, ${BIG_REGIONS} x 4 KiB changed (delta)`,
  'wide-initial': `${commas(WIDE_FILES)} files / ${commas(WIDE_DIRS)} dirs (0-2 KiB), initial pull`,
  'wide-nochange': `${commas(WIDE_FILES)} files, re-pull, no change`,
};
const WALL_TARGET = 1.5;
const WIRE_TARGET = 1.02;

interface Sample extends Measure, WireBytes {}
const samples = new Map<string, Sample[]>(); // `${client}/${scenario}`

/** a/big.bin (random, older mtime: the client's basis) and b/big.bin (64 scattered 4 KiB regions rewritten: the daemon's). */

async function run(daemon: TestDaemon, client: Client, scenario: Scenario, remote: string, dest: string, nth: number): Promise<void> {
  const m = await measure(client.cmd, client.args(`rsync://127.0.0.1:${daemon.port}/${remote}`, dest + '/'));
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
  const rows: string[][] = [['', 'rsync --no-i-r', 'lsyncd', 'ratio', 'target', 'met', ...(BEFORE ? ['before', 'ratio'] : [])]];
  const verdicts: string[] = [];
  for (const s of SCENARIOS) {
    const get = (c: Client['key']) => samples.get(`${c}/${s}`) ?? [];
    if (!get('ours').length) continue;
    const metrics: [string, (x: Sample) => number, (n: number) => string, number | undefined][] = [
      ['wall', (x) => x.wall, fmtS, WALL_TARGET],
      ['client CPU', (x) => x.cpu, fmtS, undefined],
      ['client peak RSS', (x) => x.rss, fmtMB, undefined],
      ['wire bytes (total)', (x) => x.sent + x.received, commas, WIRE_TARGET],
      ['  client -> daemon', (x) => x.received, commas, undefined],
    ];
    rows.push([TITLES[s], '', '', '', '', '', ...(BEFORE ? ['', ''] : [])]);
    for (const [name, pick, fmt, target] of metrics) {
      const r = median(get('rsync').map(pick));
      const o = median(get('ours').map(pick));
      const ratio = o / r;
      const met = target === undefined || Number.isNaN(ratio) ? '' : ratio <= target ? 'yes' : 'NO';
      const shown = Number.isFinite(ratio) ? `${ratio.toFixed(name.includes('bytes') || name.includes('->') ? 3 : 2)}x` : 'n/a';
      if (met) verdicts.push(`${TITLES[s]}: ${name.trim()} ${shown} (target <= ${target}x): ${met}`);
      const b = median(get('before').map(pick));
      const before = BEFORE ? [fmt(b), Number.isFinite(b / r) ? `${(b / r).toFixed(name.includes('bytes') || name.includes('->') ? 3 : 2)}x` : 'n/a'] : [];
      rows.push([`  ${name}`, fmt(r), fmt(o), shown, target ? `<= ${target}x` : '', met, ...before]);
    }
  }
  return table(rows) + '\n\n' + verdicts.join('\n');
}

const wanted = (s: Scenario) => (WIDE || !s.startsWith('wide-')) && (!ONLY || new RegExp(ONLY).test(s));

async function main(): Promise<void> {
  const root = makeTempDir('lsyncd-bench-pull-');
  let daemon: TestDaemon | undefined;
  const cleanup = () => rmSync(root, { recursive: true, force: true });
  process.once('SIGINT', () => {
    cleanup();
    void daemon?.stop().finally(() => process.exit(130));
  });
  try {
    console.log('pull bench (issue 6)');
    for (const line of machine()) console.log(`  ${line}`);
    if (!haveRsync) {
      console.log('  skipped: no rsync binary (the bench needs it for the daemon, and for the comparison)');
      return;
    }
    daemon = await startBenchDaemon();
    const mod = daemon.modulePath('push');
    let t0 = performance.now();
    let total = 0;
    const tree = join(mod, 'tree');
    if (wanted('tree-initial') || wanted('tree-nochange')) {
      mkdirSync(tree);
      total = makeBenchTree(tree);
    }
    const wide = join(mod, 'wide');
    let wideTotal = 0;
    if (wanted('wide-initial') || wanted('wide-nochange')) {
      mkdirSync(wide);
      wideTotal = makeWideTree(wide);
    }
    const basis = join(root, 'basis');
    if (wanted('big-delta')) makeBigPair(basis, join(mod, 'big'));
    const made = [
      ...(total ? [`${TREE_FILES} files, ${TREE_DIRS} dirs, ${commas(total)} bytes`] : []),
      ...(wanted('big-delta') ? [`${BIG_FILE_BYTES / 1048576} MiB file`] : []),
      ...(wideTotal ? [`${WIDE_FILES} files, ${WIDE_DIRS} dirs, ${commas(wideTotal)} bytes`] : []),
    ];
    console.log(`  data (in the daemon's module): ${made.join('; ')}; made in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${REPS} run(s) each, medians`);
    t0 = performance.now();
    let pulls = 0; // the daemon log's nth connection for each remote path
    const nth = new Map<string, number>();
    const next = (remote: string) => {
      const n = nth.get(remote) ?? 0;
      nth.set(remote, n + 1);
      pulls++;
      return n;
    };
    for (let rep = 0; rep < REPS; rep++) {
      // Alternate the order so neither client always runs on a warmer machine.
      const order = rep % 2 ? [...CLIENTS].reverse() : CLIENTS;
      for (const client of order) {
        const dest = join(root, `${client.key}-${rep}`);
        if (wanted('tree-initial') || wanted('tree-nochange')) {
          const d = join(dest, 'tree');
          mkdirSync(d, { recursive: true });
          await run(daemon, client, 'tree-initial', 'push/tree/', d, next('push/tree/'));
          if (wanted('tree-nochange')) await run(daemon, client, 'tree-nochange', 'push/tree/', d, next('push/tree/'));
          if (rep === 0 && !same(tree, d)) throw new Error(`${client.label}: the pulled tree differs from the daemon's`);
          rmSync(d, { recursive: true, force: true });
        }
        if (wanted('big-delta')) {
          const d = join(dest, 'big');
          mkdirSync(d, { recursive: true });
          copyFileSync(join(basis, 'big.bin'), join(d, 'big.bin'));
          const now = Date.now() / 1000;
          utimesSync(join(d, 'big.bin'), now - 3600, now - 3600);
          await run(daemon, client, 'big-delta', 'push/big/', d, next('push/big/'));
          if (rep === 0 && !same(join(mod, 'big'), d)) throw new Error(`${client.label}: the big file differs after the delta`);
          rmSync(d, { recursive: true, force: true });
        }
        if (wanted('wide-initial') || wanted('wide-nochange')) {
          const d = join(dest, 'wide');
          mkdirSync(d, { recursive: true });
          await run(daemon, client, 'wide-initial', 'push/wide/', d, next('push/wide/'));
          if (wanted('wide-nochange')) await run(daemon, client, 'wide-nochange', 'push/wide/', d, next('push/wide/'));
          if (rep === 0 && !same(wide, d)) throw new Error(`${client.label}: the pulled wide tree differs from the daemon's`);
          rmSync(d, { recursive: true, force: true });
        }
        rmSync(dest, { recursive: true, force: true });
      }
      process.stderr.write(`  run ${rep + 1}/${REPS} done (${((performance.now() - t0) / 1000).toFixed(0)} s, ${pulls} pulls)\n`);
    }
    for (const s of SCENARIOS) if (!wanted(s)) for (const c of CLIENTS) samples.delete(`${c.key}/${s}`);
    console.log('');
    console.log(report());
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
