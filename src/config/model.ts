// What a config file says, whatever its format: global settings and a list of syncs, each sync
// already in the command line's own words (the options it stands for), so that the file and the
// command line can never mean different things. docs/config.md; counterpart: lsyncd 2's
// `settings{}` table and its list of `sync{}` configs (lsyncd.lua: uSettings, Syncs).
import { UsageError } from '../../protocol/errors.js';

/** Whether `file`'s name says it is a config file (what `lsyncd FILE` takes without --config). */
export function looksLikeConfig(file: string): boolean {
  return /\.(ya?ml|lua)$/i.test(file);
}

/** Where something is in a config file (1-based; `col` is 0 when the format gives no column: Lua). */
export interface ConfigPosition {
  file: string;
  line: number;
  col: number;
}

/** `FILE:LINE:COL` (or `FILE:LINE` without a column, as Lua's own messages are). */
export function positionText(at: ConfigPosition): string {
  return at.col > 0 ? `${at.file}:${at.line}:${at.col}` : at.line > 0 ? `${at.file}:${at.line}` : at.file;
}

/**
 * A config file that cannot be used: `FILE:LINE:COL: what was expected`. An operator's mistake,
 * so it exits 1 with this one line (a UsageError).
 */
export class ConfigError extends UsageError {
  readonly at: ConfigPosition;
  readonly what: string;
  constructor(at: ConfigPosition, what: string) {
    super(`${positionText(at)}: ${what}`);
    this.at = at;
    this.what = what;
  }
}

/** The log levels a file may choose (the command line's --debug and --scarce). */
export type ConfigLogLevel = 'debug' | 'info' | 'error';

/** The settings of the whole process (lsyncd 2's `settings{}`). */
export interface ConfigGlobals {
  logfile?: string;
  syslog?: boolean;
  logIdent?: string;
  logFacility?: string;
  logLevel?: ConfigLogLevel;
  pidfile?: string;
  statusFile?: string;
  /** Seconds between rewrites of the status file. */
  statusInterval?: number;
  insist?: boolean;
  nodaemon?: boolean;
  /** How many pushes may run at once over all syncs (lsyncd 2's maxProcesses); none: no cap. */
  maxPushes?: number;
}

/** One option of a sync, as command-line words, with the place in the file that asked for it. */
export interface SyncOption {
  /** The file's own name for it (`exclude`, `rsync.compress`), for error messages. */
  key: string;
  args: string[];
  at: ConfigPosition;
}

/** One sync: a source, its targets, and its own options. */
export interface SyncConfig {
  /** Names the sync in the log and the status file (default: the source path). */
  name: string;
  source: string;
  /** Daemon addresses (HOST::MODULE/PATH or rsync://HOST/MODULE/PATH). */
  targets: string[];
  options: SyncOption[];
  /** Where the sync is defined (its `- source:` item, or the line of the Lua `sync{}` call). */
  at: ConfigPosition;
}

export interface LsyncdConfig {
  file: string;
  globals: ConfigGlobals;
  syncs: SyncConfig[];
}

/**
 * What makes two versions of a sync the same sync (a reload keeps it running): its source, targets
 * and options, not where in the file it is written.
 */
export function syncIdentity(sync: SyncConfig): string {
  return JSON.stringify([sync.name, sync.source, sync.targets, sync.options.map((o) => o.args)]);
}

/**
 * Give each sync without a `name` its default, the source path (with ` -> TARGET` when several syncs
 * share a source, as lsyncd 2's FAQ does for several targets), and refuse two syncs of one name:
 * the log and the status file tell them apart by it.
 */
export function nameSyncs(syncs: ReadonlyArray<Omit<SyncConfig, 'name'> & { name?: string }>): SyncConfig[] {
  const sources = new Map<string, number>();
  for (const s of syncs) if (s.name === undefined) sources.set(s.source, (sources.get(s.source) ?? 0) + 1);
  const named = syncs.map((s) => ({ ...s, name: s.name ?? (sources.get(s.source)! > 1 ? `${s.source} -> ${s.targets.join(',')}` : s.source) }));
  const seen = new Map<string, SyncConfig>();
  for (const sync of named) {
    const first = seen.get(sync.name);
    if (first) throw new ConfigError(sync.at, `a second sync named ${JSON.stringify(sync.name)} (the first is at ${positionText(first.at)}): give each a distinct name`);
    seen.set(sync.name, sync);
  }
  return named;
}
