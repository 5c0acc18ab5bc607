// serve(): `lsyncd serve` as a library call: an rsync daemon in this process, from module
// definitions, an rsyncd.conf text or file. Wraps src/serve/config.ts (parsed as rsyncd parses
// it) and src/serve/daemon.ts startDaemon. See docs/serve.md.
// Counterpart: rsync clientserver.c daemon_main, loadparm.c.
import { readFileSync } from 'node:fs';
import { loadConfig, parseConfig, type DaemonConfig } from '../serve/config.js';
import { startDaemon } from '../serve/daemon.js';
import { DaemonLog } from '../serve/log.js';
import { EXIT, RsyncError, UsageError } from '../../protocol/errors.js';
import { asRsyncError } from './errors.js';

/** A module, as an rsyncd.conf section. */
export interface ServeModule {
  name: string;
  path: string;
  comment?: string;
  /** rsyncd's default: true (clients may only pull). */
  readOnly?: boolean;
  /** More rsyncd.conf parameters of the section (`'hosts allow': '127.0.0.1'`, `'max connections': 4`). */
  settings?: Readonly<Record<string, string | number | boolean>>;
}

export interface ServeOptions {
  /** Modules to serve. Their files belong to the user running this process (uid/gid set to ours). */
  modules?: readonly ServeModule[];
  /** An rsyncd.conf to load (its modules come before `modules`). */
  configFile?: string;
  /** An rsyncd.conf text (instead of configFile). */
  configText?: string;
  /** Port to listen on; 0 picks a free one (see `port` of the result). Default: the config's, 873. */
  port?: number;
  /** Address to listen on. Default: the config's, else every address. */
  address?: string;
  /** The daemon's log lines (rsyncd's log file format), when the config names no log file. */
  onLog?: (line: string) => void;
}

/** A running daemon. */
export interface Server {
  readonly port: number;
  readonly address: string;
  /** Stop listening, end every connection, resolve once all are gone. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function settingLine(key: string, value: string | number | boolean): string {
  const text = typeof value === 'boolean' ? (value ? 'yes' : 'no') : String(value);
  if (/[\n\r\0=[\]]/.test(key) || /[\n\r\0]/.test(text)) throw new UsageError(`serve: a parameter with a line break, NUL, '=' or bracket cannot be written: ${JSON.stringify(key)}`);
  return `\t${key} = ${text}`;
}

/** The modules as an rsyncd.conf text, so every default is rsyncd's (config.ts parses it). */
function modulesText(modules: readonly ServeModule[]): string {
  const lines: string[] = [];
  for (const m of modules) {
    if (typeof m.name !== 'string' || !m.name || /[\]\n\r\0/]/.test(m.name)) throw new UsageError(`serve: bad module name ${JSON.stringify(m.name)}`);
    if (typeof m.path !== 'string' || !m.path) throw new UsageError(`serve: module ${m.name} needs a path`);
    // Confinement is ours (no chroot needed), so symlinks are stored as sent, as under chroot; the
    // files belong to whoever runs us (rsyncd as root would drop to nobody).
    const ids: Record<string, number> = process.getuid ? { uid: process.getuid(), gid: process.getgid!() } : {};
    const settings: Record<string, string | number | boolean> = { path: m.path, 'read only': m.readOnly ?? true, 'use chroot': true, ...ids };
    if (m.comment !== undefined) settings.comment = m.comment;
    Object.assign(settings, m.settings);
    lines.push(`[${m.name}]`, ...Object.entries(settings).map(([k, v]) => settingLine(k, v)), '');
  }
  return lines.join('\n');
}

function configOf(options: ServeOptions): DaemonConfig {
  if (options.configFile !== undefined && options.configText !== undefined) throw new UsageError('serve: give configFile or configText, not both');
  const base =
    options.configFile !== undefined
      ? loadConfig(options.configFile)
      : parseConfig(options.configText ?? '', { file: options.configText !== undefined ? 'configText' : 'modules' });
  if (options.modules?.length) base.modules.push(...parseConfig(modulesText(options.modules), { file: 'modules' }).modules);
  if (!base.modules.length) throw new UsageError('serve: no module to serve');
  return base;
}

/** Start an rsync daemon serving the modules; resolves once it listens. */
// rsync/clientserver.c: daemon_main
export async function serve(options: ServeOptions): Promise<Server> {
  let log: DaemonLog | undefined;
  try {
    const config = configOf(options);
    const onLog = options.onLog;
    log = new DaemonLog({
      ...(config.global.logFile && { file: config.global.logFile }),
      ...(onLog && { stderr: { write: (chunk: Uint8Array) => onLog(Buffer.from(chunk).toString('utf8').replace(/\n$/, '')) } }),
    });
    log.open();
    for (const warning of config.warnings) log.line(warning);
    const daemonLog = log;
    const daemon = await startDaemon({
      config,
      log: daemonLog,
      version: VERSION,
      ...(options.port !== undefined && { port: options.port }),
      ...(options.address !== undefined && { address: options.address }),
    }).catch((e: NodeJS.ErrnoException) => {
      throw new RsyncError('ERR_RSYNC_BIND', `failed to bind to port ${options.port ?? config.global.port}: ${e.code ?? e.message}`, EXIT.SOCKETIO, { cause: e });
    });
    let closing: Promise<void> | undefined;
    const close = () => (closing ??= daemon.close().finally(() => daemonLog.close()));
    return { port: daemon.port, address: daemon.address, close, [Symbol.asyncDispose]: close };
  } catch (e) {
    log?.close();
    throw asRsyncError(e);
  }
}
