// Our daemon (`lsyncd serve`'s startDaemon) in the test process, on 127.0.0.1 and a free port,
// from a config text, with its log in the temp dir; and a real rsyncd started from the same text
// (test/helpers/daemon.ts startDaemonWithConfig), so a test runs one client against both
// (runBoth), with the URL and message helpers the serve suites share.
import { chmod, mkdir, mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/serve/config.js';
import { startDaemon, type RsyncDaemon } from '../../src/serve/daemon.js';
import { DaemonLog } from '../../src/serve/log.js';
import { startDaemonWithConfig, type ConfiguredDaemon } from './daemon.js';
import { run, type RunResult } from './cli.js';

export interface OurDaemon {
  port: number;
  dir: string;
  logPath: string;
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** Start our daemon from `config(dir)`; the log goes to dir/lsyncd-serve.log. */
export async function startOurDaemon(config: (dir: string) => string, options: { handshakeSeconds?: number } = {}): Promise<OurDaemon> {
  const dir = await mkdtemp(join(tmpdir(), 'lsyncd-serve-'));
  const text = config(dir);
  await writeFile(join(dir, 'rsyncd.conf'), text);
  const logPath = join(dir, 'lsyncd-serve.log');
  const log = new DaemonLog({ file: logPath });
  log.open();
  let daemon: RsyncDaemon;
  try {
    daemon = await startDaemon({ config: parseConfig(text, { file: join(dir, 'rsyncd.conf') }), log, version: 'test', port: 0, address: '127.0.0.1', ...options });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    port: daemon.port,
    dir,
    logPath,
    log: () => readFile(logPath, 'utf8'),
    stop: async () => {
      await daemon.close();
      log.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The same config text served by ours and by a real rsyncd, each in its own temp dir. */
export async function startBoth(config: (dir: string) => string): Promise<{ ours: OurDaemon; theirs: ConfiguredDaemon }> {
  const ours = await startOurDaemon(config);
  try {
    const theirs = await startDaemonWithConfig(config);
    return { ours, theirs };
  } catch (e) {
    await ours.stop();
    throw e;
  }
}

/** A daemon's rsync:// URL for `path` (module and path inside it). */
export const daemonUrl = (d: { port: number }, path: string): string => `rsync://127.0.0.1:${d.port}/${path}`;

/** A client's run as an assertion message: exit code, stdout, stderr. */
export const runText = (r: RunResult): string => `exit ${r.status}\nstdout:\n${r.stdout.toString()}\nstderr:\n${r.stderr.toString()}`;

/**
 * The same client command line against our daemon (`o`) and rsyncd (`t`): an argument starting
 * with `ADDR/` becomes each daemon's URL for the rest, one starting with `DEST/` a local directory
 * of each (`dests.o`/`dests.t`) when `dests` is given.
 */
export async function runBoth(
  daemons: { ours: { port: number }; theirs: { port: number } },
  args: string[],
  options: { env?: NodeJS.ProcessEnv; client?: string; dests?: { o: string; t: string } } = {},
): Promise<{ o: RunResult; t: RunResult }> {
  const withUrl = (d: { port: number }, dest: string | undefined) =>
    args.map((a) => (a.startsWith('ADDR/') ? daemonUrl(d, a.slice(5)) : dest !== undefined && a.startsWith('DEST/') ? dest + a.slice(4) : a));
  const o = await run(options.client ?? 'rsync', withUrl(daemons.ours, options.dests?.o), options.env ?? {});
  const t = await run(options.client ?? 'rsync', withUrl(daemons.theirs, options.dests?.t), options.env ?? {});
  return { o, t };
}

const ROOT = process.getuid?.() === 0;

/**
 * The option suites' rsyncd.conf: no lookups, no chroot, no munging, `uid`/`gid` root when we
 * are root (rsyncd would drop to nobody), `globals(dir)` (a log, say), and per module a directory
 * of the daemon's temp dir, writable (`rw`) or read-only (`ro`).
 */
export function optionSuiteConfig(modules: Record<string, 'rw' | 'ro'>, globals: (dir: string) => string = () => ''): (dir: string) => string {
  return (dir) =>
    `reverse lookup = no\nuse chroot = no\nmunge symlinks = no\n${globals(dir)}${ROOT ? 'uid = root\ngid = root\n' : ''}` +
    Object.entries(modules)
      .map(([name, access]) => `[${name}]\n\tpath = ${dir}/${name}\n\tread only = ${access === 'rw' ? 'no' : 'yes'}\n`)
      .join('');
}

/** Our daemon and rsyncd serving the same modules, and a work dir of the suite's own. */
export interface OptionRig {
  ours: OurDaemon;
  theirs: ConfiguredDaemon;
  work: string;
  stop(): Promise<void>;
}

/**
 * startBoth on optionSuiteConfig(modules, globals), each module's directory made in both daemons'
 * dirs (those world-readable when root, for rsyncd's checks), and a temp work dir `lsyncd-SUITE-*`.
 */
export async function startOptionRig(suite: string, modules: Record<string, 'rw' | 'ro'>, globals?: (dir: string) => string): Promise<OptionRig> {
  const { ours, theirs } = await startBoth(optionSuiteConfig(modules, globals));
  const stopDaemons = async () => {
    await ours.stop();
    await theirs.stop();
  };
  let work: string;
  try {
    for (const dir of [ours.dir, theirs.dir]) {
      for (const name of Object.keys(modules)) await mkdir(join(dir, name));
      if (ROOT) await chmod(dir, 0o755);
    }
    work = await mkdtemp(join(tmpdir(), `lsyncd-${suite}-`));
  } catch (e) {
    await stopDaemons();
    throw e;
  }
  return {
    ours,
    theirs,
    work,
    stop: async () => {
      await stopDaemons();
      await rm(work, { recursive: true, force: true });
    },
  };
}
