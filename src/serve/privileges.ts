// The module's `uid` and `gid`: a connection whose module names other ids than the daemon's runs
// its transfer in a process of its own that takes those ids (worker.ts), as rsync's daemon
// forks per connection and drops its privileges before the transfer — files are then created by
// that user, not chowned afterwards. The daemon's log descriptor and the client's socket are
// handed to that process; the daemon waits for it, so `max connections` still counts it.
// The process starts as the daemon's user and drops to the module's ids before it reads a byte of
// the client's: setgroups (every group of the module's `gid` list, or the user's own groups for
// `gid = *`), setgid, setuid — rsync's order.
// Counterpart: rsync clientserver.c rsync_module (user_to_uid, add_a_group, want_all_groups,
// setgid, setgroups, setuid).
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { localIds } from '../transfer/receive.js';
import type { ModuleConfig } from './config.js';
import { logText, type DaemonLog } from './log.js';
import type { ModuleSession } from './request.js';

/** The ids a module's transfer runs with, when they differ from ours. */
export interface ModuleIds {
  uid: number;
  /** The primary group (the first of `groups`). */
  gid: number;
  /** Every group the transfer holds (setgroups), the primary one first. */
  groups: number[];
}

/** The connection process (worker.ts, compiled beside this file). */
const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

/** A user or group by name or number, as rsync's user_to_uid / group_to_gid take it. */
function lookup(file: string, nameOrId: string): number | undefined {
  if (/^\d+$/.test(nameOrId)) return Number(nameOrId);
  return localIds(file).get(nameOrId);
}

/** `gid = *`: every group of the user with this uid, its primary group first (getgrouplist). */
// rsync/uidlist.c: getallgroups
function allGroupsOf(uid: number): number[] | undefined {
  for (const [name, id] of localIds('/etc/passwd')) {
    if (id !== uid) continue;
    const primary = primaryGroupOf(name);
    const ids = userGroups(name).map((g) => lookup('/etc/group', g)).filter((g): g is number => g !== undefined);
    return primary === undefined ? ids : [primary, ...ids.filter((g) => g !== primary)];
  }
  return undefined;
}

/** A user's primary gid, from /etc/passwd. */
function primaryGroupOf(user: string): number | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'latin1').split('\n')) {
      const f = line.split(':');
      if (f[0] === user && f[3] !== undefined && /^\d+$/.test(f[3])) return Number(f[3]);
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/**
 * The module's uid and gid, or null when they are ours (nothing to drop), or rsyncd's error when
 * a name is unknown or we cannot switch (not root).
 */
// rsync/clientserver.c: rsync_module (the uid/gid part)
export function moduleIds(module: ModuleConfig, asRoot: boolean): ModuleIds | { error: string } | null {
  const ourUid = process.getuid?.() ?? 0;
  const ourGid = process.getgid?.() ?? 0;
  if (module.uid === undefined && !module.gid?.length) return null;
  const uid = module.uid === undefined ? ourUid : lookup('/etc/passwd', module.uid);
  if (uid === undefined) return { error: `invalid uid ${module.uid}` };
  // rsync's add_a_group for each word; a leading `*` (want_all_groups) for all of the user's.
  const groups: number[] = [];
  for (const [i, word] of (module.gid ?? []).entries()) {
    const ids = word === '*' && i === 0 ? allGroupsOf(uid) : [lookup('/etc/group', word)];
    if (ids === undefined || ids.some((g) => g === undefined)) return { error: `invalid gid ${word}` };
    groups.push(...(ids as number[]));
  }
  if (groups.length === 0) groups.push(ourGid);
  const gid = groups[0]!;
  if (uid === ourUid && gid === ourGid && groups.length === 1) return null;
  if (!asRoot) return { error: uid !== ourUid ? 'setuid failed' : 'setgid failed' };
  return { uid, gid, groups };
}

/**
 * The groups a user belongs to, by name: its primary group and every group that lists it, as
 * getgrouplist gives them to rsync for `@group` in `auth users` (none for an unknown user).
 */
// rsync/authenticate.c: auth_server (getallgroups)
export function userGroups(user: string): string[] {
  const uid = localIds('/etc/passwd').get(user);
  if (uid === undefined) return [];
  let primary: number | undefined;
  try {
    for (const line of readFileSync('/etc/passwd', 'latin1').split('\n')) {
      const f = line.split(':');
      if (f[0] === user) primary = Number(f[3]);
    }
  } catch {
    return [];
  }
  const groups: string[] = [];
  try {
    for (const line of readFileSync('/etc/group', 'latin1').split('\n')) {
      const f = line.split(':');
      if (!f[0] || f.length < 4) continue;
      if (Number(f[2]) === primary || f[3]!.split(',').includes(user)) groups.push(f[0]);
    }
  } catch {
    return [];
  }
  return groups;
}

/** What the connection process is told (the socket travels beside it). */
export interface WorkerStart {
  peer: ModuleSession['peer'];
  protocol: number;
  module: ModuleConfig;
  user: string;
  readOnly: boolean;
  version: string;
  argsSeconds: number;
  /** Whether the daemon logs to stderr (foreground, no log file). */
  logToStderr: boolean;
  /** The ids to drop to before anything else. */
  ids: ModuleIds;
}

/** Run the module session in a process with the module's ids; resolves when it has ended. */
export async function runAs(ids: ModuleIds, s: ModuleSession, log: DaemonLog): Promise<void> {
  // The client sends nothing until it sees @RSYNCD: OK, which the new process writes: nothing of
  // the client's may sit unread in our buffer.
  if (s.reader.buffered !== 0) throw new Error('client data arrived before @RSYNCD: OK');
  const logFd = log.descriptor;
  // Started with our ids: it drops to the module's itself (worker.ts dropPrivileges), so it can
  // set the supplementary groups first, which a process started with other ids no longer may.
  const child = fork(WORKER, [], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc', ...(logFd !== null ? [logFd] : [])],
    serialization: 'advanced',
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const start: WorkerStart = {
    peer: s.peer,
    protocol: s.protocol,
    module: s.module,
    user: s.user,
    readOnly: s.readOnly,
    version: s.version,
    argsSeconds: s.argsSeconds,
    logToStderr: logFd === null && log.toStderr,
    ids,
  };
  child.send(start, s.io.socket);
  const code = await exited;
  if (code !== 0) logText(log, `connection process for module ${s.module.name} ended with code ${code}`);
}
