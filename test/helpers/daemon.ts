// The one helper that runs a real `rsync --daemon` for tests: 127.0.0.1, a free port, a generated
// config in a temp dir, stopped by its PID. Every conformance test starts its daemon through here.
import { fileURLToPath } from 'node:url';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, chmod, rm, readFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ModuleConfig {
  name: string;
  comment?: string;
  /** Extra `key = value` lines for the module section. */
  settings?: Record<string, string | number | boolean>;
}

export interface DaemonOptions {
  /** Modules beyond the standard three (`push`, `secure`, `ro`). */
  extraModules?: ModuleConfig[];
  /** Lines of the message of the day; none when empty. */
  motd?: string[];
  /** Extra global `key = value` lines, e.g. `socket options = TCP_NODELAY`. */
  globalSettings?: string[];
  /**
   * Which daemon serves the config: the real `rsync --daemon` (default), or ours, `lsyncd serve`
   * (the same command line, so a suite can run against both).
   */
  implementation?: DaemonImplementation;
}

export type DaemonImplementation = 'rsync' | 'lsyncd';

/** Our CLI, compiled (dist/src/cli/main.js). */
const LSYNCD_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** The daemon command line: rsync's, or ours with the same options. */
function daemonCommand(implementation: DaemonImplementation): [string, string[]] {
  return implementation === 'lsyncd' ? [process.execPath, [LSYNCD_CLI, 'serve']] : [findRsync(), ['--daemon']];
}

export interface TestDaemon {
  host: string;
  port: number;
  /** PID of the daemon process (changes on restart). */
  pid: number;
  /** The temp dir holding the config, secrets, log and the module directories. */
  dir: string;
  /** Directory of a module. */
  modulePath(name: string): string;
  /** The daemon's log so far. */
  log(): Promise<string>;
  /** Path of the daemon's `log file` (read it as bytes where names may not be UTF-8). */
  logPath: string;
  /** Stop the daemon process but keep its directory (an outage); `restart` brings it back. */
  kill(): Promise<void>;
  /** Start the daemon again on the same port with the same config and modules. */
  restart(): Promise<void>;
  /** A second daemon process on `port` serving the same modules (stopped with the first). */
  serveAlso(port: number): Promise<{ stop(): Promise<void> }>;
  stop(): Promise<void>;
}

export const AUTH_USER = 'alice';
export const AUTH_PASSWORD = 's3cret-for-tests';
export const DEFAULT_MOTD = ['Welcome to the lsyncd test daemon', 'Second motd line'];

/** Path of the rsync binary, or an Error saying how to get one. */
export function findRsync(): string {
  const probe = spawnSync('rsync', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      'rsync is not installed, and this test runs a real rsync daemon. ' +
        'Install it (Debian/Ubuntu: `apt-get install -y rsync`; Fedora: `dnf install rsync`; ' +
        'macOS: `brew install rsync`), or run `bash .ci/run`, which installs it.',
    );
  }
  return 'rsync';
}

/** Version line of the rsync binary, e.g. "3.5.0 protocol 32". */
export function rsyncVersion(): { version: string; protocol: number } {
  const out = spawnSync(findRsync(), ['--version'], { encoding: 'utf8' }).stdout;
  const m = /version\s+(\S+)\s+protocol version (\d+)/.exec(out);
  if (!m) throw new Error(`cannot parse rsync --version: ${out.split('\n')[0]}`);
  return { version: m[1]!, protocol: Number(m[2]) };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function moduleSection(m: ModuleConfig, path: string): string {
  const lines = [`[${m.name}]`, `    path = ${path}`, `    comment = ${m.comment ?? ''}`];
  for (const [k, v] of Object.entries(m.settings ?? {})) {
    lines.push(`    ${k} = ${typeof v === 'boolean' ? (v ? 'yes' : 'no') : v}`);
  }
  return lines.join('\n') + '\n';
}

/** True once the daemon sends its `@RSYNCD:` greeting on a fresh connection. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let got = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('data', (chunk) => {
      got += chunk.toString('latin1');
      if (got.includes('\n')) done(got.startsWith('@RSYNCD: '));
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}

export async function startDaemon(options: DaemonOptions = {}): Promise<TestDaemon> {
  const rsync = daemonCommand(options.implementation ?? 'rsync');
  const dir = await mkdtemp(join(tmpdir(), 'lsyncd-rsyncd-'));
  const asRoot = process.getuid?.() === 0;
  const modules: ModuleConfig[] = [
    { name: 'push', comment: 'writable module', settings: { 'read only': false } },
    {
      name: 'secure',
      comment: 'needs auth',
      settings: { 'read only': false, 'auth users': AUTH_USER, 'secrets file': join(dir, 'secrets') },
    },
    { name: 'ro', comment: 'read-only module', settings: { 'read only': true } },
    ...(options.extraModules ?? []),
  ];
  const motd = options.motd ?? DEFAULT_MOTD;
  await writeFile(join(dir, 'secrets'), `${AUTH_USER}:${AUTH_PASSWORD}\n`);
  await chmod(join(dir, 'secrets'), 0o600);
  if (motd.length) await writeFile(join(dir, 'motd.txt'), motd.map((l) => l + '\n').join(''));
  const global = [
    `pid file = ${join(dir, 'rsyncd.pid')}`,
    `lock file = ${join(dir, 'rsyncd.lock')}`,
    `log file = ${join(dir, 'rsyncd.log')}`,
    motd.length ? `motd file = ${join(dir, 'motd.txt')}` : '',
    'use chroot = no',
    'munge symlinks = no',
    // Conformance compares owners and modes; as root the daemon would otherwise drop to nobody.
    asRoot ? 'uid = root' : '',
    asRoot ? 'gid = root' : '',
    ...(options.globalSettings ?? []),
  ].filter(Boolean);
  let config = global.join('\n') + '\n\n';
  for (const m of modules) {
    const path = join(dir, 'modules', m.name);
    await mkdir(path, { recursive: true });
    config += moduleSection(m, path) + '\n';
  }
  await writeFile(join(dir, 'rsyncd.conf'), config);

  // The port is free when we look but may be taken before rsync binds it: retry a few times.
  const configPath = join(dir, 'rsyncd.conf');
  let current: Launched | undefined;
  for (let attempt = 0; attempt < 5 && !current; attempt++) {
    const port = await freePort();
    try {
      current = await launch(rsync, configPath, port);
    } catch (e) {
      if (attempt === 4 || !(e as { exitedEarly?: boolean }).exitedEarly) throw e;
    }
  }
  const others: Launched[] = [];
  const daemon: TestDaemon = {
    host: '127.0.0.1',
    port: current!.port,
    pid: current!.child.pid!,
    dir,
    modulePath: (name) => join(dir, 'modules', name),
    log: async () => readFile(join(dir, 'rsyncd.log'), 'utf8').catch(() => ''),
    logPath: join(dir, 'rsyncd.log'),
    kill: async () => {
      await current?.stop();
    },
    restart: async () => {
      await current?.stop();
      await rm(join(dir, 'rsyncd.pid'), { force: true });
      current = await launch(rsync, configPath, daemon.port);
      daemon.pid = current.child.pid!;
    },
    serveAlso: async (port) => {
      const other = await launch(rsync, configPath, port, join(dir, `rsyncd.${port}.pid`));
      others.push(other);
      return { stop: () => other.stop() };
    },
    stop: async () => {
      for (const l of [current, ...others]) await l?.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return daemon;
}

interface Launched {
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Start `rsync --daemon` with `config` on `port` and wait until it greets; stop() ends it by PID. */
async function launch(rsync: string | [string, string[]], config: string, port: number, pidFile?: string): Promise<Launched> {
  const [command, first] = typeof rsync === 'string' ? [rsync, ['--daemon']] : rsync;
  const child: ChildProcess = spawn(
    command,
    [...first, '--no-detach', '--address', '127.0.0.1', '--port', String(port), '--config', config, ...(pidFile ? ['--dparam', `pidfile=${pidFile}`] : [])],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    child.on('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const stop = async () => {
    if (!exited) {
      process.kill(child.pid!, 'SIGTERM');
      await gone;
    }
  };
  const deadline = Date.now() + 10_000;
  while (!exited && Date.now() < deadline) {
    if (await answers(port)) return { port, child, stop };
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!exited) {
    process.kill(child.pid!, 'SIGKILL');
    throw new Error(`rsync daemon did not answer on port ${port} within 10 s: ${stderr}`);
  }
  // Exited early: most likely the port was taken.
  throw Object.assign(new Error(`rsync daemon failed to start on port ${port}: ${stderr}`), { exitedEarly: true });
}

export interface ConfiguredDaemon {
  host: string;
  port: number;
  /** The temp dir holding the config (`rsyncd.conf`) and whatever the config text put there. */
  dir: string;
  configPath: string;
  /** What the daemon wrote to stderr so far. */
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * Start a real `rsync --daemon --no-detach` on 127.0.0.1 and a free port with exactly the given
 * config text (a function of the temp dir it lives in, for paths). Nothing is added to the text.
 */
export async function startDaemonWithConfig(config: string | ((dir: string) => string)): Promise<ConfiguredDaemon> {
  const rsync = findRsync();
  const dir = await mkdtemp(join(tmpdir(), 'lsyncd-rsyncd-conf-'));
  const configPath = join(dir, 'rsyncd.conf');
  await writeFile(configPath, typeof config === 'string' ? config : config(dir));
  let launched: Launched | undefined;
  try {
    for (let attempt = 0; attempt < 5 && !launched; attempt++) {
      try {
        launched = await launch(rsync, configPath, await freePort(), join(dir, 'rsyncd.pid'));
      } catch (e) {
        if (attempt === 4 || !(e as { exitedEarly?: boolean }).exitedEarly) throw e;
      }
    }
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const l = launched!;
  let stderr = '';
  l.child.stderr!.on('data', (c) => (stderr += c));
  return {
    host: '127.0.0.1',
    port: l.port,
    dir,
    configPath,
    stderr: () => stderr,
    stop: async () => {
      await l.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
