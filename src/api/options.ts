// The library's options as a caller writes them: targets as strings or objects, durations in
// milliseconds, passwords as a string or a function, rsync's transfer flags as a partial object
// with rsync's defaults for the direction. Turned here into the internals' typed options
// (src/transfer/target.ts DaemonTarget, client.ts SessionOptions, protocol/args.ts TransferOptions).
// Counterpart: rsync options.c (defaults), main.c check_for_hostspec.
import { DEFAULT_TRANSFER, type TransferOptions, type DeleteWhen } from '../../protocol/args.js';
import { UsageError } from '../../protocol/errors.js';
import type { FilterList } from '../../protocol/filter.js';
import { DEFAULT_PORT, isDaemonAddress, parseDaemonAddress, type DaemonTarget } from '../transfer/target.js';
import { passwordSource } from '../transfer/password.js';
import { buildFilterList, type RuleSource } from '../transfer/filters.js';
import type { SessionOptions } from '../transfer/client.js';

/** A daemon address as an object (what `host::module/path` and `rsync://host:port/module/path` say). */
export interface TargetObject {
  host: string;
  /** Default 873, or the call's `port`. */
  port?: number;
  module: string;
  /** Inside the module; '' or absent: the module's root. */
  path?: string;
  user?: string;
}

/** `[user@]host::module/path`, `rsync://[user@]host[:port]/module/path`, or an object. */
export type Target = string | TargetObject;

/** A password, or a function asked when the daemon wants one (null: none). Never logged. */
export type Password = string | Uint8Array | (() => string | Uint8Array | null | Promise<string | Uint8Array | null>);

/** How to reach a daemon: what every call takes. */
export interface ConnectOptions {
  /** Port for `host::module` strings and objects without one (rsync's --port). Default 873. */
  port?: number;
  /** User for the daemon's `auth users`, when the target names none. */
  user?: string;
  /** The daemon password. Default: $RSYNC_PASSWORD, as rsync's client. */
  password?: Password;
  /** rsync's --password-file (checked as rsync checks it), before $RSYNC_PASSWORD. */
  passwordFile?: string;
  /** Speak at most this protocol (rsync's --protocol). */
  protocol?: number;
  /** rsync's --contimeout, in ms (rounded up to seconds). */
  connectTimeoutMs?: number;
  /** rsync's --timeout: the longest silence, in ms (rounded up to seconds; also sent to the daemon). */
  timeoutMs?: number;
  /** Cancels the call: its connection is closed and it rejects with an AbortError. */
  signal?: AbortSignal;
}

/** rsync's transfer flags, each optional: what is left out takes rsync's default for the direction. */
export interface TransferFlags {
  /** -r (default true) */
  recursive?: boolean;
  /** -l (default true) */
  links?: boolean;
  /** -p (default true) */
  perms?: boolean;
  /** -t (default true) */
  times?: boolean;
  /** -o */
  owner?: boolean;
  /** -g */
  group?: boolean;
  /** -D */
  devices?: boolean;
  /** -H */
  hardLinks?: boolean;
  /** -c */
  checksum?: boolean;
  /** -W */
  wholeFile?: boolean;
  /** -n */
  dryRun?: boolean;
  /** --delete: remove what the source lacks from the destination. Default false (true for mirror()). */
  delete?: boolean;
  /** --delete-before/-during/-delay/-after (implies delete). */
  deleteWhen?: DeleteWhen;
  /** --delete-excluded */
  deleteExcluded?: boolean;
  /** --max-delete */
  maxDelete?: number;
  /** --numeric-ids */
  numericIds?: boolean;
  /** --size-only */
  sizeOnly?: boolean;
  /** --ignore-existing */
  ignoreExisting?: boolean;
  /** --existing */
  existing?: boolean;
  /** -u */
  update?: boolean;
  /** --checksum-choice */
  checksumChoice?: string;
  /** --modify-window, seconds as rsync takes it (-1: nanoseconds). */
  modifyWindow?: number;
  /** -z: true, or rsync's --compress-choice / --compress-level. */
  compress?: boolean | { choice?: string; level?: number };
  /** rsync filter rules in order (`--filter`: "- *.tmp", "+ keep/", "P protected/" ...). */
  filter?: readonly string[];
  /** `--exclude` patterns, after the `filter` rules. */
  exclude?: readonly string[];
}

const FLAG_KEYS = [
  'recursive', 'links', 'perms', 'times', 'owner', 'group', 'devices', 'hardLinks', 'checksum', 'wholeFile', 'dryRun',
  'delete', 'deleteWhen', 'deleteExcluded', 'maxDelete', 'numericIds', 'sizeOnly', 'ignoreExisting', 'existing', 'update',
  'checksumChoice', 'modifyWindow',
] as const;

/** A duration given in ms as rsync's whole seconds (0 or absent: none). */
export function msToSeconds(ms: number | undefined, what: string): number | undefined {
  if (ms === undefined) return undefined;
  if (!Number.isFinite(ms) || ms < 0) throw new UsageError(`${what} must be a number of milliseconds >= 0, got ${ms}`);
  return ms === 0 ? undefined : Math.ceil(ms / 1000);
}

/** The daemon address of a call. `needsModule`: a transfer or listing (not a module listing). */
export function resolveTarget(target: Target, options: ConnectOptions, needsModule: boolean): DaemonTarget {
  const port = options.port ?? DEFAULT_PORT;
  let parsed: DaemonTarget;
  if (typeof target === 'string') {
    if (!isDaemonAddress(target)) throw new UsageError(`not a daemon address (host::module/path or rsync://host/module/path): ${target}`);
    parsed = parseDaemonAddress(target, port);
  } else {
    if (typeof target !== 'object' || target === null || typeof target.host !== 'string' || !target.host) throw new UsageError('a target object needs a host');
    const module = target.module ?? '';
    if (typeof module !== 'string' || module.includes('/')) throw new UsageError(`bad module name: ${String(module)}`);
    const p = target.port ?? port;
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new UsageError(`bad port: ${p}`);
    parsed = { host: target.host, port: p, module, path: (target.path ?? '').replace(/^\/+/, ''), ...(target.user !== undefined && { user: target.user }) };
  }
  if (needsModule && !parsed.module) throw new UsageError(`${typeof target === 'string' ? target : parsed.host} names no module`);
  const user = parsed.user ?? options.user;
  return user === undefined ? parsed : { ...parsed, user };
}

function passwordBytes(value: string | Uint8Array | null): Buffer | null {
  if (value === null) return null;
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
}

/** The session options of a call (host and port come from the target). */
export function sessionOf(options: ConnectOptions, target: DaemonTarget): Omit<SessionOptions, 'host' | 'port'> {
  const given = options.password;
  const fallback = passwordSource(options.passwordFile);
  const password =
    given === undefined
      ? fallback
      : typeof given === 'function'
        ? async () => passwordBytes(await given())
        : async () => passwordBytes(given);
  const contimeout = msToSeconds(options.connectTimeoutMs, 'connectTimeoutMs');
  const timeout = msToSeconds(options.timeoutMs, 'timeoutMs');
  return {
    ...(target.user !== undefined && { user: target.user }),
    ...(options.protocol !== undefined && { protocol: options.protocol }),
    ...(contimeout !== undefined && { contimeout }),
    ...(timeout !== undefined && { timeout }),
    password,
  };
}

/** rsync's defaults for a push or a pull: -rlpt, and nothing deleted unless asked. */
export const TRANSFER_DEFAULTS: Readonly<TransferOptions> = Object.freeze({ ...DEFAULT_TRANSFER, delete: false });

/** The internals' TransferOptions from a call's flags over `defaults` (the direction's). */
export function transferOf(flags: TransferFlags & ConnectOptions, defaults: Readonly<TransferOptions> = TRANSFER_DEFAULTS): TransferOptions {
  const transfer: TransferOptions = { ...defaults };
  const target = transfer as unknown as Record<string, unknown>;
  for (const key of FLAG_KEYS) {
    const value = flags[key];
    if (value === undefined) continue;
    const expected = key === 'deleteWhen' || key === 'checksumChoice' ? 'string' : key === 'maxDelete' || key === 'modifyWindow' ? 'number' : 'boolean';
    if (typeof value !== expected) throw new UsageError(`option ${key} must be a ${expected}, got ${JSON.stringify(value)}`);
    target[key] = value;
  }
  if (flags.deleteWhen !== undefined && !['before', 'during', 'delay', 'after'].includes(flags.deleteWhen)) {
    throw new UsageError(`option deleteWhen must be before, during, delay or after, got ${JSON.stringify(flags.deleteWhen)}`);
  }
  // rsync: a --delete-WHEN or --delete-excluded implies --delete.
  if (flags.deleteWhen || flags.deleteExcluded) transfer.delete = true;
  if (flags.compress) transfer.compress = flags.compress === true ? {} : { ...flags.compress };
  const timeout = msToSeconds(flags.timeoutMs, 'timeoutMs');
  if (timeout !== undefined) transfer.timeout = timeout;
  return transfer;
}

/** The call's filter rules (`filter`, then `exclude`), or undefined when it has none. */
export function filterListOf(flags: TransferFlags): FilterList | undefined {
  const rules: RuleSource[] = [
    ...(flags.filter ?? []).map((value) => ({ kind: 'filter' as const, value })),
    ...(flags.exclude ?? []).map((value) => ({ kind: 'exclude' as const, value })),
  ];
  if (!rules.length) return undefined;
  const list = buildFilterList(rules);
  if (flags.deleteExcluded) list.deleteExcluded = true;
  return list;
}
