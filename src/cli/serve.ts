// `lsyncd serve`: an rsync daemon, started with `rsync --daemon`'s options and spellings, so an
// existing rsyncd.conf and a unit file's command line work with `lsyncd serve` in its place;
// plus `--module NAME=PATH` for use without a config file. Detaches unless --no-detach; a start
// that fails (bad config, port in use) exits non-zero with the reason on stderr either way.
// Counterpart: rsync clientserver.c daemon_main, options.c (the daemon's options).
import { Command, Option } from 'commander';
import { EXIT, RsyncError, UsageError } from '../../protocol/errors.js';
import { loadConfig, parseConfig, type DaemonConfig } from '../serve/config.js';
import { startDaemon, type RsyncDaemon } from '../serve/daemon.js';
import { DaemonLog } from '../serve/log.js';
import { claimPidfile, detachAndWait, isDetachedChild, reportReady } from './process.js';

/** rsync's default config file for a daemon. */
export const RSYNCD_CONF = '/etc/rsyncd.conf';

interface ServeOptions {
  config?: string;
  port?: number;
  address?: string;
  detach: boolean;
  logFile?: string;
  dparam: string[];
  module: string[];
  readOnly?: boolean;
  ipv4?: boolean;
  ipv6?: boolean;
}

function program(): Command {
  const collect = (value: string, previous: string[]) => [...previous, value];
  return new Command('lsyncd serve')
    .description('an rsync daemon (rsyncd) in TypeScript: stock rsync clients push to and pull from its modules')
    .usage('[--config FILE] [--port N] [--address ADDR] [--no-detach] [--log-file FILE] [--dparam NAME=VALUE]... [--module NAME=PATH]...')
    .option('--config <FILE>', `the rsyncd.conf to read (default ${RSYNCD_CONF}, or none with --module)`)
    .option('--port <N>', 'listen on port N instead of the config\'s (default 873)', (v) => port(v))
    .option('--address <ADDR>', 'listen on this address only')
    .option('--no-detach', 'stay in the foreground')
    .option('--log-file <FILE>', 'log to FILE instead of the config\'s `log file`')
    .option('-M, --dparam <NAME=VALUE>', 'set a global parameter, as if in the config\'s global section', collect, [])
    .option('--module <NAME=PATH>', 'serve PATH as module NAME (writable unless --read-only); needs no config file', collect, [])
    .option('--read-only', 'the --module modules are read-only')
    .option('-4, --ipv4', 'listen on IPv4 only')
    .option('-6, --ipv6', 'listen on IPv6 only')
    .addOption(new Option('--daemon', 'accepted for `rsync --daemon` command lines').hideHelp())
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--port: not a port number: ${value}`);
  return n;
}

/** `--dparam NAME=VALUE` pairs. */
function dparams(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`--dparam: expected NAME=VALUE, got "${v}"`);
    out[v.slice(0, eq).trim()] = v.slice(eq + 1).trim();
  }
  return out;
}

/** The --module modules as an rsyncd.conf text (parsed like any config, so every default is rsync's). */
export function moduleConfigText(modules: readonly string[], readOnly: boolean): string {
  const lines: string[] = [];
  for (const m of modules) {
    const eq = m.indexOf('=');
    const name = m.slice(0, eq);
    const path = m.slice(eq + 1);
    if (eq <= 0 || !path) throw new UsageError(`--module: expected NAME=PATH, got "${m}"`);
    if (/[\]\n\r\0]/.test(name) || /[\n\r\0]/.test(path)) throw new UsageError(`--module: a name or path with a line break, NUL or ']' cannot be served: "${m}"`);
    // Confinement is ours (no chroot needed), so symlinks are stored as sent, as under chroot.
    // The files belong to whoever runs lsyncd serve (rsyncd as root would drop to nobody).
    const ids = process.getuid ? [`\tuid = ${process.getuid()}`, `\tgid = ${process.getgid!()}`] : [];
    lines.push(`[${name}]`, `\tpath = ${path}`, `\tread only = ${readOnly ? 'yes' : 'no'}`, '\tuse chroot = yes', ...ids, '');
  }
  return lines.join('\n');
}

function readConfig(o: ServeOptions): DaemonConfig {
  const params = dparams(o.dparam);
  if (o.module.length && !o.config) return parseConfig(moduleConfigText(o.module, o.readOnly ?? false), { file: '--module', dparams: params });
  const config = loadConfig(o.config ?? RSYNCD_CONF, { dparams: params });
  if (o.module.length) {
    const extra = parseConfig(moduleConfigText(o.module, o.readOnly ?? false), { file: '--module', dparams: params });
    config.modules.push(...extra.modules);
  }
  return config;
}

/** Run `lsyncd serve ARGS`; resolves with the exit code once the daemon has stopped (or failed to start). */
export async function serveMain(args: readonly string[], version: string): Promise<number> {
  const cli = program();
  try {
    cli.parse(args, { from: 'user' });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.help' || code === 'commander.version') return EXIT.OK;
    if (e instanceof UsageError) process.stderr.write(`lsyncd serve: ${e.message}\n`);
    return EXIT.SYNTAX;
  }
  const o = cli.opts<ServeOptions>();
  // Detached: the same command in a new session; we exit once it listens, or with its failure.
  if (o.detach && !isDetachedChild()) return detachAndWait([process.argv[1]!, 'serve', ...args], { name: 'lsyncd serve' });
  (await import('../process-memory.js')).tuneProcessMemory();
  let daemon: RsyncDaemon | undefined;
  let releasePid: (() => void) | undefined;
  const detached = isDetachedChild();
  // SIGTERM/SIGINT stop the daemon: taken from the start, so one that comes while it is still
  // starting (its log already says it listens) is not lost to the default action.
  const stopRequested = new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  try {
    const config = readConfig(o);
    const logFile = o.logFile ?? config.global.logFile;
    const log = new DaemonLog({
      ...(logFile && { file: logFile }),
      // In the foreground without a log file, lines go to stderr (rsyncd would use syslog).
      ...(!detached && !logFile && { stderr: process.stderr }),
      onError: (e) => process.stderr.write(`lsyncd serve: ${e.message}\n`),
    });
    log.open();
    for (const warning of config.warnings) log.line(warning);
    if (config.global.pidFile) releasePid = claimPidfile(config.global.pidFile);
    const address = o.address ?? config.global.address ?? (o.ipv4 ? '0.0.0.0' : o.ipv6 ? '::' : undefined);
    daemon = await startDaemon({ config, log, version, ...(o.port !== undefined && { port: o.port }), ...(address && { address }) }).catch((e: NodeJS.ErrnoException) => {
      throw new RsyncError('ERR_RSYNC_BIND', `failed to bind to port ${o.port ?? config.global.port}${address ? ` on ${address}` : ''}: ${e.code ?? e.message}`, EXIT.SOCKETIO, { cause: e });
    });
    if (detached) reportReady();
    else process.stderr.write(`lsyncd serve: listening on port ${daemon.port}\n`);
    process.on('SIGHUP', () => log.reopen());
    await stopRequested;
    await daemon.close();
    log.close();
    return EXIT.OK;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`lsyncd serve: ${message}\n`);
    const code = e instanceof RsyncError ? e.exitCode : EXIT.STARTCLIENT;
    await daemon?.close();
    return code;
  } finally {
    releasePid?.();
  }
}
