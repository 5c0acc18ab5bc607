// The config file's schema, written as data: each key a sync or the whole process may set, what
// type it takes, and the command-line option it stands for. A file and the command line cannot
// drift apart: a sync's keys become that command line's words, parsed by the same parser.
// docs/config.md; counterpart: lsyncd 2's checkgauge tables (default.lua, lsyncd.lua).
import { ConfigError, nameSyncs, type ConfigGlobals, type ConfigLogLevel, type LsyncdConfig, type SyncConfig, type SyncOption } from './model.js';
import { describeValue, type ConfigEntry, type ConfigValue } from './value.js';

/** At most this many syncs in one file, and items in one list: a file cannot make us allocate without bound. */
export const MAX_SYNCS = 1000;
export const MAX_LIST_ITEMS = 10_000;

/** How a key's value becomes command-line words. */
export type OptionSpec =
  /** true → OPTION; false → nothing (or `off` when given). */
  | { type: 'flag'; option: string; off?: string }
  /** A string or a number → OPTION VALUE. */
  | { type: 'value'; option: string; number?: { min: number; max: number; integer?: boolean }; what: string }
  /** One value or a list → OPTION VALUE for each, in order. */
  | { type: 'repeat'; option: string; what: string }
  /** true, or how many times → OPTION repeated (-v, -z). */
  | { type: 'count'; option: string; max: number }
  /** One of the given words, each with its own words. */
  | { type: 'choice'; choices: Readonly<Record<string, readonly string[]>> };

/** A sync's keys in a YAML file: the command line's long option names. */
export const SYNC_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  delay: { type: 'value', option: '--delay', number: { min: 0, max: 86400 }, what: 'seconds (0 to 86400)' },
  exclude: { type: 'repeat', option: '--exclude', what: 'a pattern' },
  include: { type: 'repeat', option: '--include', what: 'a pattern' },
  'exclude-from': { type: 'repeat', option: '--exclude-from', what: 'a file of patterns' },
  'include-from': { type: 'repeat', option: '--include-from', what: 'a file of patterns' },
  filter: { type: 'repeat', option: '--filter', what: 'an rsync filter rule' },
  // lsyncd 2's delete = true | false | 'startup' | 'running'.
  delete: { type: 'choice', choices: { true: ['--delete'], false: ['--no-delete'], startup: ['--delete-only', 'startup'], running: ['--delete-only', 'running'] } },
  'delete-excluded': { type: 'flag', option: '--delete-excluded' },
  startup: { type: 'choice', choices: { true: [], false: ['--no-startup'], full: [], none: ['--no-startup'], changed: ['--startup', 'changed'] } },
  'state-file': { type: 'value', option: '--state-file', what: 'a file for what the targets were brought to (see --startup changed)' },
  archive: { type: 'flag', option: '--archive' },
  perms: { type: 'flag', option: '--perms', off: '--no-perms' },
  times: { type: 'flag', option: '--times', off: '--no-times' },
  owner: { type: 'flag', option: '--owner' },
  group: { type: 'flag', option: '--group' },
  devices: { type: 'flag', option: '-D' },
  'hard-links': { type: 'flag', option: '--hard-links' },
  acls: { type: 'flag', option: '--acls' },
  xattrs: { type: 'count', option: '--xattrs', max: 2 },
  'numeric-ids': { type: 'flag', option: '--numeric-ids' },
  checksum: { type: 'flag', option: '--checksum' },
  'checksum-choice': { type: 'value', option: '--checksum-choice', what: 'a checksum name (xxh128, xxh3, xxh64, md5, md4)' },
  'whole-file': { type: 'flag', option: '--whole-file' },
  compress: { type: 'count', option: '--compress', max: 2 },
  'compress-choice': { type: 'value', option: '--compress-choice', what: 'zlibx, zlib or none' },
  'compress-level': { type: 'value', option: '--compress-level', number: { min: 0, max: 9, integer: true }, what: 'a level from 0 to 9' },
  chmod: { type: 'repeat', option: '--chmod', what: "rsync's chmod rules (D755,F644)" },
  chown: { type: 'value', option: '--chown', what: 'USER:GROUP' },
  usermap: { type: 'repeat', option: '--usermap', what: 'FROM:TO,...' },
  groupmap: { type: 'repeat', option: '--groupmap', what: 'FROM:TO,...' },
  'safe-links': { type: 'flag', option: '--safe-links' },
  ipv4: { type: 'flag', option: '--ipv4' },
  ipv6: { type: 'flag', option: '--ipv6' },
  address: { type: 'value', option: '--address', what: 'a local address to connect from' },
  bwlimit: { type: 'value', option: '--bwlimit', what: 'a rate (KiB/s, or with a unit: 1.5M)' },
  'max-size': { type: 'value', option: '--max-size', what: "a size (bytes, or rsync's units: 10k, 1.5M)" },
  'min-size': { type: 'value', option: '--min-size', what: "a size (bytes, or rsync's units: 10k, 1.5M)" },
  partial: { type: 'flag', option: '--partial' },
  'partial-dir': { type: 'value', option: '--partial-dir', what: 'a directory on the daemon for partial files' },
  sparse: { type: 'flag', option: '--sparse' },
  backup: { type: 'flag', option: '--backup' },
  'backup-dir': { type: 'value', option: '--backup-dir', what: 'a directory on the daemon for backups (implies backup)' },
  suffix: { type: 'value', option: '--suffix', what: 'a backup suffix' },
  'dry-run': { type: 'flag', option: '--dry-run' },
  verbose: { type: 'count', option: '--verbose', max: 4 },
  'itemize-changes': { type: 'flag', option: '--itemize-changes' },
  'password-file': { type: 'value', option: '--password-file', what: 'a file holding the password' },
  port: { type: 'value', option: '--port', number: { min: 1, max: 65535, integer: true }, what: 'a TCP port' },
  protocol: { type: 'value', option: '--protocol', number: { min: 0, max: 99, integer: true }, what: 'a protocol version' },
  contimeout: { type: 'value', option: '--contimeout', number: { min: 0, max: 1e6, integer: true }, what: 'seconds' },
  timeout: { type: 'value', option: '--timeout', number: { min: 0, max: 1e6, integer: true }, what: 'seconds' },
};

/** The keys of a sync that are not options. */
const SYNC_KEYS = ['name', 'source', 'target', 'targets'];

/** The file's top-level keys, the process's settings (the command line's names). */
const GLOBAL_KEYS = ['logfile', 'syslog', 'log-ident', 'log-facility', 'log-level', 'pidfile', 'status-file', 'status-interval', 'insist', 'nodaemon', 'max-pushes', 'syncs'];

const LOG_LEVELS: readonly ConfigLogLevel[] = ['debug', 'info', 'error'];

/** The closest known key to a misspelt one (at most two edits away), for "did you mean". */
function closest(word: string, known: readonly string[]): string | undefined {
  const distance = (a: string, b: string): number => {
    let row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      const next = [i];
      for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      row = next;
    }
    return row[b.length]!;
  };
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = distance(word.toLowerCase(), k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/**
 * A sync's name: it starts every log line of the sync, so it may not hold a control character
 * (a newline would forge a line of its own).
 */
export function asName(v: ConfigValue, key: string): string {
  const name = asString(v, key, 'a name');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name) || name.length > 200) throw expected(v, key, 'a name of at most 200 characters without control characters');
  return name;
}

/** An unknown key: named, with the likely intended one. */
export function unknownKey(entry: ConfigEntry, where: string, known: readonly string[]): ConfigError {
  const guess = closest(entry.key, known);
  return new ConfigError(entry.keyAt, `unknown key ${JSON.stringify(entry.key)} in ${where}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}`);
}

function expected(v: ConfigValue, key: string, what: string): ConfigError {
  return new ConfigError(v.at, `${key}: expected ${what}, got ${describeValue(v)}`);
}

export function asString(v: ConfigValue, key: string, what = 'a string'): string {
  if (v.kind === 'scalar' && typeof v.value === 'string' && v.value !== '') return v.value;
  throw expected(v, key, what);
}

export function asBoolean(v: ConfigValue, key: string): boolean {
  if (v.kind === 'scalar' && typeof v.value === 'boolean') return v.value;
  throw expected(v, key, 'true or false');
}

function asNumber(v: ConfigValue, key: string, range: { min: number; max: number; integer?: boolean }, what: string): number {
  if (v.kind === 'scalar' && typeof v.value === 'number' && v.value >= range.min && v.value <= range.max && (!range.integer || Number.isInteger(v.value))) return v.value;
  throw expected(v, key, what);
}

/** One value or a list of them, each a non-empty string. */
export function asStrings(v: ConfigValue, key: string, what: string): string[] {
  const items = v.kind === 'list' ? v.items : [v];
  if (items.length > MAX_LIST_ITEMS) throw new ConfigError(v.at, `${key}: more than ${MAX_LIST_ITEMS} items`);
  return items.map((item) => asString(item, key, v.kind === 'list' ? what : `${what} or a list of them`));
}

/** The command-line words for one option key. */
// lsyncd/default-rsync.lua: rsync.prepare (a config table's keys become rsync's options)
export function optionArgs(spec: OptionSpec, v: ConfigValue, key: string): string[] {
  switch (spec.type) {
    case 'flag':
      return asBoolean(v, key) ? [spec.option] : spec.off ? [spec.off] : [];
    case 'value': {
      if (spec.number) return [spec.option, String(asNumber(v, key, spec.number, spec.what))];
      // A size or rate may be written as a bare number.
      if (v.kind === 'scalar' && typeof v.value === 'number' && Number.isFinite(v.value) && v.value >= 0) return [spec.option, String(v.value)];
      return [spec.option, asString(v, key, spec.what)];
    }
    case 'repeat':
      return asStrings(v, key, spec.what).flatMap((s) => [spec.option, s]);
    case 'count': {
      if (v.kind === 'scalar' && typeof v.value === 'boolean') return v.value ? [spec.option] : [];
      const n = asNumber(v, key, { min: 0, max: spec.max, integer: true }, `true, false or a count up to ${spec.max}`);
      return Array.from({ length: n }, () => spec.option);
    }
    case 'choice': {
      const word = v.kind === 'scalar' && v.value !== null ? String(v.value) : undefined;
      const args = word !== undefined && Object.hasOwn(spec.choices, word) ? spec.choices[word] : undefined;
      if (!args) throw expected(v, key, `one of ${Object.keys(spec.choices).join(', ')}`);
      return [...args];
    }
  }
}

function asMap(v: ConfigValue, what: string): Extract<ConfigValue, { kind: 'map' }> {
  if (v.kind !== 'map') throw new ConfigError(v.at, `expected ${what}, got ${describeValue(v)}`);
  return v;
}

/** One item of `syncs:`. */
function syncFromMap(value: ConfigValue): Omit<SyncConfig, 'name'> & { name?: string } {
  const map = asMap(value, 'a sync (a map with source: and target:)');
  let name: string | undefined;
  let source: string | undefined;
  const targets: string[] = [];
  const options: SyncOption[] = [];
  for (const entry of map.entries) {
    const { key, value: v } = entry;
    if (key === 'name') name = asName(v, key);
    else if (key === 'source') source = asString(v, key, 'a local directory');
    else if (key === 'target' || key === 'targets') targets.push(...asStrings(v, key, 'a daemon address (HOST::MODULE/PATH or rsync://HOST/MODULE/PATH)'));
    else if (Object.hasOwn(SYNC_OPTIONS, key)) options.push({ key, args: optionArgs(SYNC_OPTIONS[key]!, v, key), at: entry.keyAt });
    else throw unknownKey(entry, 'a sync', [...SYNC_KEYS, ...Object.keys(SYNC_OPTIONS)]);
  }
  if (source === undefined) throw new ConfigError(map.at, 'a sync needs source: (the local directory to mirror)');
  if (!targets.length) throw new ConfigError(map.at, 'a sync needs target: (a daemon address, or a list under targets:)');
  return { ...(name !== undefined && { name }), source, targets, options, at: map.at };
}

/** A whole YAML config: the settings at the top, `syncs:` a list of syncs. */
export function configFromValue(root: ConfigValue, file: string): LsyncdConfig {
  const map = asMap(root, 'a map of settings with a syncs: list');
  const globals: ConfigGlobals = {};
  let syncs: Array<Omit<SyncConfig, 'name'> & { name?: string }> | undefined;
  for (const entry of map.entries) {
    const { key, value: v } = entry;
    switch (key) {
      case 'logfile':
        globals.logfile = asString(v, key, 'a file');
        break;
      case 'syslog':
        globals.syslog = asBoolean(v, key);
        break;
      case 'log-ident':
        globals.logIdent = asString(v, key);
        break;
      case 'log-facility':
        globals.logFacility = asString(v, key, 'a syslog facility (user, daemon, local0..local7)');
        break;
      case 'log-level': {
        const level = v.kind === 'scalar' ? LOG_LEVELS.find((l) => l === v.value) : undefined;
        if (!level) throw expected(v, key, 'debug, info or error');
        globals.logLevel = level;
        break;
      }
      case 'pidfile':
        globals.pidfile = asString(v, key, 'a file');
        break;
      case 'status-file':
        globals.statusFile = asString(v, key, 'a file');
        break;
      case 'status-interval':
        globals.statusInterval = asNumber(v, key, { min: 1, max: 86400 }, 'seconds (1 to 86400)');
        break;
      case 'insist':
        globals.insist = asBoolean(v, key);
        break;
      case 'nodaemon':
        globals.nodaemon = asBoolean(v, key);
        break;
      case 'max-pushes':
        globals.maxPushes = asNumber(v, key, { min: 1, max: 1000, integer: true }, 'a count from 1 to 1000');
        break;
      case 'syncs': {
        if (v.kind !== 'list' || !v.items.length) throw expected(v, key, 'a list of syncs');
        if (v.items.length > MAX_SYNCS) throw new ConfigError(v.at, `syncs: more than ${MAX_SYNCS}`);
        syncs = v.items.map(syncFromMap);
        break;
      }
      default:
        throw unknownKey(entry, 'the settings', [...GLOBAL_KEYS, ...Object.keys(SYNC_OPTIONS)]);
    }
  }
  if (!syncs) throw new ConfigError(map.at, 'no syncs: expected a list of syncs, each with source: and target:');
  return { file, globals, syncs: nameSyncs(syncs) };
}
