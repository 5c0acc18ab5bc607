// Shared pieces of the benchmarks (not tests): where the data lives (tmpfs), how a client process
// is measured (wall, CPU, peak RSS), the rsync daemon (the test helper's), the daemon's own byte
// counts, medians and a plain-text table.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, statfsSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, rsyncVersion, type DaemonImplementation, type TestDaemon } from '../test/helpers/daemon.js';

/** A tmpfs directory for bench data: /dev/shm when present, else the OS temp dir. */
export function tmpfsRoot(): string {
  for (const candidate of ['/dev/shm']) {
    try {
      if (existsSync(candidate) && statfsSync(candidate).type === 0x01021994 /* TMPFS_MAGIC */) return candidate;
    } catch {
      /* not usable */
    }
  }
  return tmpdir();
}

export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(tmpfsRoot(), prefix));
}

/** The test helper's rsync daemon, with its config, log and module directories on tmpfs too. */
export async function startBenchDaemon(implementation: DaemonImplementation = 'rsync'): Promise<TestDaemon> {
  const saved = process.env['TMPDIR'];
  process.env['TMPDIR'] = tmpfsRoot(); // os.tmpdir() reads it on every call
  try {
    return await startDaemon({ motd: [], implementation });
  } finally {
    if (saved === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = saved;
  }
}

export interface Measure {
  exitCode: number;
  /** Seconds, measured here around the child's whole life. */
  wall: number;
  /** Seconds of user + system CPU of the client process (and its children); NaN when unknown. */
  cpu: number;
  /** Peak resident set, bytes; NaN when unknown. */
  rss: number;
  stdout: string;
  stderr: string;
}

const GNU_TIME = '/usr/bin/time';
export const haveGnuTime = ((): boolean => {
  if (!existsSync(GNU_TIME) || process.env['BENCH_NO_GNU_TIME']) return false;
  const probe = spawnSync(GNU_TIME, ['-f', '%M', 'true'], { encoding: 'utf8' });
  return probe.status === 0 && /^\d+\s*$/m.test(probe.stderr);
})();

const TIME_MARK = '@@bench-time@@';

/** Run a command and measure it: GNU time when present, else by polling /proc (approximate). */
export async function measure(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Measure> {
  const argv = haveGnuTime ? [GNU_TIME, '-f', `${TIME_MARK} %U %S %M`, cmd, ...args] : [cmd, ...args];
  const started = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  let polled = { cpu: NaN, rss: NaN };
  let timer: NodeJS.Timeout | undefined;
  if (!haveGnuTime && child.pid) {
    const pid = child.pid;
    const tick = 100; // USER_HZ on Linux
    const poll = () => {
      try {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const cpu = (Number(fields[11]) + Number(fields[12])) / tick; // utime, stime
        polled = { cpu, rss: hwm ? Number(hwm[1]) * 1024 : polled.rss };
      } catch {
        /* gone */
      }
    };
    timer = setInterval(poll, 5);
  }
  const exitCode: number = await new Promise((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  const wall = (performance.now() - started) / 1000;
  if (timer) clearInterval(timer);
  let cpu = polled.cpu;
  let rss = polled.rss;
  if (haveGnuTime) {
    const lines = stderr.split('\n');
    const at = lines.findIndex((l) => l.startsWith(TIME_MARK));
    if (at >= 0) {
      const [, user, sys, kb] = lines[at]!.split(' ');
      cpu = Number(user) + Number(sys);
      rss = Number(kb) * 1024;
      lines.splice(at, 1);
      stderr = lines.join('\n');
    }
  }
  return { exitCode, wall, cpu, rss, stdout, stderr };
}

export interface WireBytes {
  /** What the daemon sent (the client received). */
  sent: number;
  /** What the daemon received (the client sent). */
  received: number;
}

/**
 * The daemon's byte counts for the connection that wrote to `module/path`: its log line
 * `[pid] rsync to module/path/ from ...` names the process whose `sent X bytes  received Y bytes`
 * line we take. The line is written as the daemon's process ends, maybe after the client exits: poll.
 */
export async function wireBytes(daemon: TestDaemon, remote: string, skip = 0): Promise<WireBytes> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const log = await daemon.log();
    const pids: string[] = [];
    for (const m of log.matchAll(/\[(\d+)\] rsync (?:to|on) (\S+) from /g)) if (m[2] === remote) pids.push(m[1]!);
    const pid = pids[skip];
    if (pid) {
      const m = new RegExp(`\\[${pid}\\] sent (\\d+) bytes\\s+received (\\d+) bytes`).exec(log);
      if (m) return { sent: Number(m[1]), received: Number(m[2]) };
    }
    if (Date.now() > deadline) throw new Error(`no byte counts in the daemon log for ${remote} (#${skip + 1})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function median(values: number[]): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

export function commas(n: number): string {
  return Number.isNaN(n) ? 'n/a' : Math.round(n).toLocaleString('en-US');
}

export function machine(): string[] {
  const rsync = (() => {
    try {
      const v = rsyncVersion();
      return `rsync ${v.version} (protocol ${v.protocol})`;
    } catch {
      return 'rsync: not installed';
    }
  })();
  const cpu = cpus();
  const mem = (() => {
    try {
      const m = /MemTotal:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
      return m ? `${(Number(m[1]) / 1048576).toFixed(0)} GiB RAM` : '';
    } catch {
      return '';
    }
  })();
  const nproc = spawnSync('nproc', [], { encoding: 'utf8' }).stdout?.trim() || String(cpu.length);
  return [
    `date ${new Date().toISOString()}`,
    `nproc ${nproc} (${cpu[0]?.model ?? 'unknown cpu'}), ${mem}`,
    `node ${process.version}, ${rsync}`,
    `data and daemon modules on ${tmpfsRoot()}; CPU/RSS via ${haveGnuTime ? 'GNU time' : '/proc polling (approximate)'}`,
  ];
}

/** A plain table: the first row is the header; columns are right-aligned except the first. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** Deterministic pseudo-random numbers (mulberry32), so every run pushes the same tree. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The many-files tree of the push and pull benches: 25 top dirs × (1 + 39 subdirs), 20 files each. */
export const TREE_SHAPE = { topDirs: 25, subDirs: 39, filesPerDir: 20, maxFile: 20480 } as const;
/** 1,000 directories. */
export const TREE_DIRS = TREE_SHAPE.topDirs * (TREE_SHAPE.subDirs + 1);
/** 20,000 files. */
export const TREE_FILES = TREE_DIRS * TREE_SHAPE.filesPerDir;

/** Make that tree under `root` (random contents, sizes uniform in 0..20 KiB, ~205 MB); returns its bytes. */
export function makeBenchTree(root: string): number {
  const { topDirs, subDirs, filesPerDir, maxFile } = TREE_SHAPE;
  const rnd = prng(20000);
  let total = 0;
  const buf = Buffer.alloc(maxFile);
  for (let t = 0; t < topDirs; t++) {
    const top = join(root, `top${String(t).padStart(2, '0')}`);
    const dirs = [top, ...Array.from({ length: subDirs }, (_, s) => join(top, `sub${String(s).padStart(2, '0')}`))];
    mkdirSync(top);
    for (const dir of dirs) {
      if (dir !== top) mkdirSync(dir);
      for (let f = 0; f < filesPerDir; f++) {
        const size = Math.floor(rnd() * maxFile);
        randomFillSync(buf, 0, size);
        writeFileSync(join(dir, `file${String(f).padStart(2, '0')}.dat`), buf.subarray(0, size));
        total += size;
      }
    }
  }
  return total;
}

/** The big-file scenarios: big-a/big.bin (random, older mtime) and big-b/big.bin (a copy with 64 scattered 4 KiB regions rewritten). */
export const BIG_FILE_BYTES = 512 * 1024 * 1024;
export const BIG_REGIONS = 64;
const BIG_REGION = 4096;

export function makeBigPair(a: string, b: string): void {
  mkdirSync(a, { recursive: true });
  mkdirSync(b, { recursive: true });
  const fd = openSync(join(a, 'big.bin'), 'w');
  const chunk = Buffer.alloc(8 << 20);
  for (let off = 0; off < BIG_FILE_BYTES; off += chunk.length) writeSync(fd, randomFillSync(chunk), 0, chunk.length, off);
  closeSync(fd);
  copyFileSync(join(a, 'big.bin'), join(b, 'big.bin'));
  const rnd = prng(64);
  const region = Buffer.alloc(BIG_REGION);
  const pages = BIG_FILE_BYTES / BIG_REGION;
  const fdb = openSync(join(b, 'big.bin'), 'r+');
  for (let i = 0; i < BIG_REGIONS; i++) {
    const page = Math.floor(((i + 0.1 + rnd() * 0.8) / BIG_REGIONS) * pages); // one region in each 64th of the file
    writeSync(fdb, randomFillSync(region), 0, BIG_REGION, page * BIG_REGION);
  }
  closeSync(fdb);
  const now = Date.now() / 1000;
  utimesSync(join(a, 'big.bin'), now - 3600, now - 3600);
  utimesSync(join(b, 'big.bin'), now - 60, now - 60);
}

/** The receiving side's big-tree rows (issue 12): 10,000 dirs × 20 files of 0-2 KiB = 200,000 files. */
export const WIDE_SHAPE = { topDirs: 100, subDirs: 99, filesPerDir: 20, maxFile: 2048 } as const;
export const WIDE_DIRS = WIDE_SHAPE.topDirs * (WIDE_SHAPE.subDirs + 1);
export const WIDE_FILES = WIDE_DIRS * WIDE_SHAPE.filesPerDir;

/** Make the 200k-file tree under `root` (fixed mtimes: T0 of the tests), return its total bytes. */
export function makeWideTree(root: string): number {
  const { topDirs, subDirs, filesPerDir, maxFile } = WIDE_SHAPE;
  const rnd = prng(200000);
  const buf = Buffer.alloc(maxFile);
  randomFillSync(buf);
  const when = 1_700_000_000;
  let total = 0;
  for (let t = 0; t < topDirs; t++) {
    const top = join(root, `d${String(t).padStart(3, '0')}`);
    mkdirSync(top);
    const dirs = [top, ...Array.from({ length: subDirs }, (_, s) => join(top, `s${String(s).padStart(2, '0')}`))];
    for (const dir of dirs) {
      if (dir !== top) mkdirSync(dir);
      for (let f = 0; f < filesPerDir; f++) {
        const size = Math.floor(rnd() * maxFile);
        const path = join(dir, `f${String(f).padStart(2, '0')}.txt`);
        writeFileSync(path, buf.subarray(0, size));
        utimesSync(path, when, when);
        total += size;
      }
      utimesSync(dir, when, when);
    }
  }
  return total;
}
