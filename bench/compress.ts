// Compression figures (issue 13), not a test: the same pushes and pulls with the rsync binary and
// with ours, for each compression (none, zlibx, zlib, zstd at its default level and at 19, lz4),
// against a local rsync daemon, data on tmpfs. Run: node dist/bench/compress.js
//   1. initial push of a mixed tree (200 text files of generated prose and code, 20 random files, ~24 MB);
//   2. a delta push after 20 of the text files had lines inserted;
//   3. a pull of the tree into an empty directory (the daemon's sender compresses, our receiver decompresses).
// For each: wall time, client CPU (user+sys, GNU time) and the bytes on the wire as the daemon
// counts them (its log line). Ratios are ours / rsync's with the same compression and level.
// Target (issue 13): wire bytes <= 1.0x rsync's (what differs outside the tokens is the `none` row).
import { mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestDaemon } from '../test/helpers/daemon.js';
import { commas, machine, makeTempDir, measure, median, prng, startBenchDaemon, table, wireBytes, type Measure, type WireBytes } from './common.js';

const REPS = Number(process.env['BENCH_REPS'] ?? 1);
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

const COMPRESSIONS: Array<{ key: string; args: string[] }> = [
  { key: 'none', args: [] },
  { key: 'zlibx', args: ['--zc=zlibx'] },
  { key: 'zlib', args: ['--zc=zlib'] },
  { key: 'zstd', args: ['--zc=zstd'] },
  { key: 'zstd-19', args: ['--zc=zstd', '--compress-level=19'] },
  { key: 'lz4', args: ['--zc=lz4'] },
];
const SCENARIOS = ['initial', 'delta', 'pull'] as const;
type Scenario = (typeof SCENARIOS)[number];

const WORDS = ('the of and to in is that for it as with was on be by this are from or at an which not have but ' +
  'file directory mirror daemon module transfer checksum block token compress window stream literal match ' +
  'function return const let if else for while await async export import interface class new throw').split(' ');

/** A text file of generated prose and code-like lines: compressible, not trivially. */
function textFile(rnd: () => number, bytes: number): Buffer {
  const lines: string[] = [];
  let size = 0;
  while (size < bytes) {
    const n = 4 + Math.floor(rnd() * 12);
    const words = Array.from({ length: n }, () => WORDS[Math.floor(rnd() * WORDS.length)]!);
    const line = (rnd() < 0.3 ? '  '.repeat(1 + Math.floor(rnd() * 3)) : '') + words.join(' ') + (rnd() < 0.2 ? ` ${Math.floor(rnd() * 1e6)};` : '.');
    lines.push(line);
    size += line.length + 1;
  }
  return Buffer.from(lines.join('\n') + '\n');
}

function makeTree(root: string): number {
  const rnd = prng(1313);
  let total = 0;
  for (let d = 0; d < 10; d++) {
    const dir = join(root, `dir${d}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 20; f++) {
      const data = textFile(rnd, 40_000 + Math.floor(rnd() * 160_000));
      writeFileSync(join(dir, `text${f}.txt`), data);
      total += data.length;
    }
    for (let f = 0; f < 2; f++) {
      const data = Buffer.alloc(100_000 + Math.floor(rnd() * 100_000));
      for (let i = 0; i < data.length; i++) data[i] = Math.floor(rnd() * 256);
      writeFileSync(join(dir, `random${f}.bin`), data);
      total += data.length;
    }
  }
  return total;
}

/** Insert a few new lines into two text files of each directory (the delta scenario). */
function editTree(root: string): void {
  const rnd = prng(77);
  for (let d = 0; d < 10; d++) {
    for (const f of [3, 11]) {
      const path = join(root, `dir${d}`, `text${f}.txt`);
      const data = readFileSync(path);
      const at = data.indexOf(10, Math.floor(data.length / 2)) + 1;
      writeFileSync(path, Buffer.concat([data.subarray(0, at), textFile(rnd, 3000), data.subarray(at)]));
    }
  }
}

interface Sample extends Measure, WireBytes {}
const samples = new Map<string, Sample[]>(); // `${client}/${compression}/${scenario}`

function same(a: string, b: string): boolean {
  return spawnSync('diff', ['-rq', a, b], { stdio: 'ignore' }).status === 0;
}

async function once(daemon: TestDaemon, who: 'rsync' | 'ours', compression: (typeof COMPRESSIONS)[number], scenario: Scenario, src: string, dest: string, remote: string, nth: number): Promise<void> {
  const url = `rsync://127.0.0.1:${daemon.port}/${remote}`;
  const [from, to] = scenario === 'pull' ? [url, dest + '/'] : [src + '/', url];
  const m =
    who === 'rsync'
      ? await measure('rsync', ['-rlpt', '--delete', '--no-inc-recursive', ...compression.args, from, to])
      : await measure(process.execPath, [CLI, '--once', ...compression.args, from, to]);
  if (m.exitCode !== 0) throw new Error(`${who} ${compression.key} ${scenario}: exit ${m.exitCode}\n${m.stderr}`);
  const wire = await wireBytes(daemon, remote, nth);
  const key = `${who}/${compression.key}/${scenario}`;
  samples.set(key, [...(samples.get(key) ?? []), { ...m, ...wire }]);
}

function report(): string {
  const rows: string[][] = [['', 'rsync', 'lsyncd', 'ratio', 'rsync CPU', 'lsyncd CPU', 'CPU ratio', 'rsync wall', 'lsyncd wall']];
  const fmtS = (s: number) => (Number.isNaN(s) ? 'n/a' : `${s.toFixed(2)} s`);
  for (const c of COMPRESSIONS) {
    rows.push([c.key + (c.args.length ? ` (${c.args.join(' ')})` : ''), '', '', '', '', '', '', '', '']);
    for (const s of SCENARIOS) {
      const get = (who: string) => samples.get(`${who}/${c.key}/${s}`) ?? [];
      // Bytes the compressing side put on the wire: the client's for a push, the daemon's for a pull.
      const bytes = (x: Sample) => (s === 'pull' ? x.sent : x.received);
      const rb = median(get('rsync').map(bytes));
      const ob = median(get('ours').map(bytes));
      const rc = median(get('rsync').map((x) => x.cpu));
      const oc = median(get('ours').map((x) => x.cpu));
      rows.push([
        `  ${s} (wire bytes, ${s === 'pull' ? 'daemon -> client' : 'client -> daemon'})`,
        commas(rb),
        commas(ob),
        `${(ob / rb).toFixed(4)}x`,
        fmtS(rc),
        fmtS(oc),
        `${(oc / rc).toFixed(2)}x`,
        fmtS(median(get('rsync').map((x) => x.wall))),
        fmtS(median(get('ours').map((x) => x.wall))),
      ]);
    }
  }
  return table(rows);
}

async function main(): Promise<void> {
  const root = makeTempDir('lsyncd-bench-compress-');
  let daemon: TestDaemon | undefined;
  try {
    console.log('compression bench (issue 13)');
    for (const line of machine()) console.log(`  ${line}`);
    const src = join(root, 'src');
    const total = makeTree(src);
    console.log(`  data: 200 text files, 20 random files, ${commas(total)} bytes; ${REPS} run(s) each, medians`);
    daemon = await startBenchDaemon();
    const mod = daemon.modulePath('push');
    for (let rep = 0; rep < REPS; rep++) {
      for (const c of COMPRESSIONS) {
        const work = join(root, `src-${c.key}-${rep}`);
        spawnSync('cp', ['-a', src, work]);
        for (const who of rep % 2 ? (['ours', 'rsync'] as const) : (['rsync', 'ours'] as const)) {
          const dest = `${who}-${c.key}-${rep}`;
          const remote = `push/${dest}/`;
          spawnSync('cp', ['-a', src + '/.', work]); // the unedited tree again
          await once(daemon, who, c, 'initial', work, '', remote, 0);
          editTree(work);
          await once(daemon, who, c, 'delta', work, '', remote, 1);
          if (rep === 0 && !same(work, join(mod, dest))) throw new Error(`${who} ${c.key}: the mirror differs from the source`);
          const pulled = join(root, `pull-${dest}`);
          await once(daemon, who, c, 'pull', '', pulled, remote, 2);
          if (rep === 0 && !same(work, pulled)) throw new Error(`${who} ${c.key}: the pulled tree differs`);
          rmSync(pulled, { recursive: true, force: true });
          rmSync(join(mod, dest), { recursive: true, force: true });
        }
        rmSync(work, { recursive: true, force: true });
      }
    }
    console.log('');
    console.log(report());
  } finally {
    await daemon?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
