// lsyncd 2 (the Lua/C original, run with rsync) as the yardstick of the live bench (bench/live.ts,
// issue 5): finding its binary by absolute path (it shares the name `lsyncd` with ours), a
// generated Lua config, and watching the process: its startup line, its rsync children, RSS and CPU.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where lsyncd 2 is looked for: $LSYNCD2, else Debian's /usr/bin/lsyncd. Never a PATH lookup. */
export const LSYNCD2_PATH = process.env['LSYNCD2'] || '/usr/bin/lsyncd';

export interface Lsyncd2 {
  binary: string;
  /** e.g. "2.2.3" */
  version: string;
}

/** The lsyncd 2 binary if it is there and `-version` says 2.x; else a sentence saying why not. */
export function findLsyncd2(): Lsyncd2 | string {
  const install = 'install it with `apt-get install -y lsyncd` (Debian/Ubuntu), or point LSYNCD2=/abs/path/lsyncd at one';
  if (!LSYNCD2_PATH.startsWith('/')) return `LSYNCD2 must be an absolute path (got ${LSYNCD2_PATH}); ${install}`;
  if (!existsSync(LSYNCD2_PATH)) return `lsyncd 2 is not installed (no ${LSYNCD2_PATH}); ${install}`;
  const real = realpathSync(LSYNCD2_PATH);
  if (/\.(c|m)?js$/.test(real)) return `${LSYNCD2_PATH} is ours (${real}), not lsyncd 2; ${install}`;
  const probe = spawnSync(LSYNCD2_PATH, ['-version'], { encoding: 'utf8', timeout: 5000 });
  const m = /Version:\s*(2\.\S+)/.exec(`${probe.stdout ?? ''}${probe.stderr ?? ''}`);
  if (!m) return `${LSYNCD2_PATH} -version does not say 2.x (${probe.error ? String(probe.error) : (probe.stdout || probe.stderr || 'no output').trim().split('\n')[0]}); ${install}`;
  return { binary: LSYNCD2_PATH, version: m[1]! };
}

export interface Lsyncd2Options {
  source: string;
  /** rsync://HOST:PORT/module/path/ */
  target: string;
  /** Seconds; undefined keeps lsyncd 2's default (15 s for default.rsync). */
  delay?: number;
  /** Give its rsync client `--sockopts=TCP_NODELAY` (rsync's client leaves Nagle on by default). */
  nodelay?: boolean;
}

/** The generated config: default.rsync with -rlpt semantics (ours pushes -rlpt --delete too). */
export function lsyncd2Config(o: Lsyncd2Options): string {
  const lua = (s: string) => JSON.stringify(s); // a JSON string of plain paths is a valid Lua string
  return [
    'settings { nodaemon = true }',
    'sync {',
    '  default.rsync,',
    `  source = ${lua(o.source.endsWith('/') ? o.source : o.source + '/')},`,
    `  target = ${lua(o.target)},`,
    o.delay === undefined ? '' : `  delay = ${o.delay},`,
    `  rsync = { binary = "/usr/bin/rsync", links = true, perms = true, times = true${o.nodelay ? ', _extra = { "--sockopts=TCP_NODELAY" }' : ''} },`,
    '}',
    '',
  ]
    .filter((l) => l !== '')
    .join('\n');
}

export interface MirrorProcess {
  pid: number;
  /** Resolves when the process logs that its startup sync is done. */
  started: Promise<void>;
  /** PIDs of its children now (its rsync processes). */
  children(): number[];
  /** Resolves once it has had no child for `quietMs` in a row (nothing in flight). */
  settle(quietMs?: number): Promise<void>;
  /** Resident set of the process itself, bytes. */
  rss(): number;
  /** CPU seconds (user + sys) of the process and of the children it has reaped. */
  cpuSeconds(): number;
  output(): string;
  stop(): Promise<void>;
}

/** lsyncd 2 on a generated config (in a temp dir, removed by stop()). */
export async function startLsyncd2(binary: string, o: Lsyncd2Options): Promise<MirrorProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'lsyncd2-bench-'));
  const config = join(dir, 'lsyncd2.lua');
  await writeFile(config, lsyncd2Config(o));
  const proc = startMirrorProcess(binary, [config], /Normal: Startup of .* finished\./);
  return { ...proc, stop: async () => {
    await proc.stop();
    await rm(dir, { recursive: true, force: true });
  } };
}

/** A mirror daemon as a child process (lsyncd 2, or ours as `lsyncd --nodaemon`), watched through its output and /proc. */
export function startMirrorProcess(command: string, args: string[], startedLine: RegExp): MirrorProcess {
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid!;
  let out = '';
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    child.on('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const started = new Promise<void>((resolve, reject) => {
    const check = (c: Buffer) => {
      out += c.toString();
      if (startedLine.test(out)) resolve();
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    void gone.then(() => reject(new Error(`${command} exited before its startup sync finished:\n${out}`)));
  });
  started.catch(() => undefined); // observed by the caller; no unhandled rejection after stop()
  const children = (): number[] => {
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const statFields = () => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  };
  return {
    pid,
    started,
    children,
    async settle(quietMs = 100) {
      let quietSince = performance.now();
      for (;;) {
        if (children().length) quietSince = performance.now();
        else if (performance.now() - quietSince >= quietMs) return;
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    rss() {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : NaN;
    },
    cpuSeconds() {
      const f = statFields();
      // utime, stime, cutime, cstime in clock ticks (USER_HZ = 100 on Linux)
      return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
    },
    output: () => out,
    async stop() {
      if (!exited) {
        process.kill(pid, 'SIGTERM');
        const timer = setTimeout(() => !exited && process.kill(pid, 'SIGKILL'), 3000);
        await gone;
        clearTimeout(timer);
      }
    },
  };
}
