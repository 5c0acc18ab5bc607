// Daemon addresses as rsync writes them: `[user@]HOST::[MODULE[/PATH]]` (port from --port) and
// `rsync://[user@]HOST[:PORT]/[MODULE[/PATH]]`; IPv6 hosts in brackets.
import { UsageError } from '../../protocol/errors.js';

export const DEFAULT_PORT = 873;

export interface DaemonTarget {
  user?: string;
  host: string;
  port: number;
  /** '' when the address names no module (a module listing). */
  module: string;
  /** What follows `MODULE/`, '' when nothing does. */
  path: string;
}

/** True if `arg` is a daemon address rather than a local path. */
export function isDaemonAddress(arg: string): boolean {
  return /^rsync:\/\//i.test(arg) || /^[^/]*::/.test(arg);
}

function splitUser(hostPart: string): { user?: string; host: string } {
  const at = hostPart.lastIndexOf('@');
  if (at === -1) return { host: hostPart };
  return { user: hostPart.slice(0, at), host: hostPart.slice(at + 1) };
}

function unbracket(host: string, arg: string): string {
  if (host.startsWith('[')) {
    if (!host.endsWith(']')) throw new UsageError(`malformed IPv6 address in ${arg}`);
    return host.slice(1, -1);
  }
  return host;
}

function splitModule(rest: string): { module: string; path: string } {
  const slash = rest.indexOf('/');
  if (slash === -1) return { module: rest, path: '' };
  return { module: rest.slice(0, slash), path: rest.slice(slash + 1) };
}

// rsync/main.c: check_for_hostspec / parse_hostspec
export function parseDaemonAddress(arg: string, port = DEFAULT_PORT): DaemonTarget {
  let user: string | undefined;
  let host: string;
  let rest: string;
  const url = /^rsync:\/\/([^/]*)(?:\/(.*))?$/is.exec(arg);
  if (url) {
    const authority = splitUser(url[1]!);
    user = authority.user;
    let hostPort = authority.host;
    const portMatch = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(hostPort);
    if (!portMatch) throw new UsageError(`malformed daemon address ${arg}`);
    hostPort = portMatch[1]!;
    if (portMatch[2]) port = Number(portMatch[2]);
    host = unbracket(hostPort, arg);
    rest = url[2] ?? '';
  } else {
    const sep = arg.indexOf('::');
    if (sep === -1) throw new UsageError(`not a daemon address: ${arg}`);
    const authority = splitUser(arg.slice(0, sep));
    user = authority.user;
    host = unbracket(authority.host, arg);
    rest = arg.slice(sep + 2);
  }
  if (!host) throw new UsageError(`no host name in ${arg}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`bad port in ${arg}`);
  if (rest.startsWith('/')) throw new UsageError('the remote path must start with a module name, not a /');
  const { module, path } = splitModule(rest);
  return user === undefined ? { host, port, module, path } : { user, host, port, module, path };
}

/** The remote path argument as rsync sends it: `module/path`, or `module/` for the module itself. */
export function remotePath(target: DaemonTarget): string {
  return target.path ? `${target.module}/${target.path}` : `${target.module}/`;
}
