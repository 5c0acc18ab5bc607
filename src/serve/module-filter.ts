// A module's own rules (rsyncd.conf `filter`, `include from`, `include`, `exclude from`,
// `exclude`), compiled once per connection and shared by both roles: the sender hides what they
// exclude from every client, the receiving side refuses to receive it and never deletes it
// (docs/protocol.md [filter]). rsync matches these rules against names relative to the module
// root (an anchored rule is anchored there, whatever directory the transfer is in), so each use
// says which directory of the module its names are relative to.
// Counterpart: rsync clientserver.c rsync_module (daemon_filter_list), exclude.c name_is_excluded,
// flist.c path_is_daemon_excluded.
import { readFileSync, statSync } from 'node:fs';
import { compileFilter, FilterList, type FilterMatcher } from '../../protocol/filter.js';
import { EXIT, RsyncError } from '../../protocol/errors.js';
import type { ModuleConfig } from './config.js';

/** `include from`/`exclude from` files larger than this are refused (rsync reads any size). */
export const MAX_DAEMON_FILTER_FILE = 4 * 1024 * 1024;

/** The module's rules, or a name check against them, for names relative to one directory of the module. */
export interface ModuleFilter {
  /** True when the module's rules exclude `relPath` (relative to the directory this filter is for). */
  isExcluded(relPath: Buffer, isDir: boolean): boolean;
  /** The same rules for the entries of subdirectory `relDir` (per-directory merge files apply below it). */
  enter(relDir: Buffer): ModuleFilter;
}

/** An `include from`/`exclude from` file, read when the client opens the module, as rsync reads it. */
function readRuleFile(name: string): string {
  try {
    const size = statSync(name).size;
    if (size > MAX_DAEMON_FILTER_FILE) throw new Error(`larger than ${MAX_DAEMON_FILTER_FILE} bytes`);
    return readFileSync(name, 'latin1');
  } catch (e) {
    throw new RsyncError('ERR_RSYNC_DAEMON_FILTER', `failed to open include/exclude file ${name}: ${(e as Error).message}`, EXIT.FILEIO, { cause: e });
  }
}

/**
 * rsync's XFLG_DIR2WILD3, which it sets for the module's rules: a pattern ending in `/` also covers
 * everything below the directory (`secret/` → `secret/***`), so a path inside it is excluded even
 * when checked on its own (a push's destination, a pull's path). Merge rules are left as they are.
 */
function dirToWild3(rule: string): string {
  const m = /^([^ _]+)([ _])(.*\/)$/.exec(rule);
  if (!m || /^(merge|dir-merge|\.|:)/.test(m[1]!)) return rule;
  return `${m[1]}${m[2]}${m[3]}***`;
}

/** The module's rules compiled (null when it has none). */
// rsync/clientserver.c: rsync_module (parse_filter_str / parse_filter_file into daemon_filter_list)
export function compileModuleRules(module: Pick<ModuleConfig, 'filterRules'>): FilterMatcher | null {
  if (!module.filterRules.length) return null;
  const list = new FilterList({ readMergeFile: readRuleFile });
  for (const rule of module.filterRules) list.addFilter(dirToWild3(rule));
  // A rule with the `/` modifier matches the whole path, which for a module starts at its root.
  const matcher = compileFilter(list, { side: 'sender', absRoot: '/' });
  return matcher.empty ? null : matcher;
}

const SLASH = Buffer.from('/');

/** `base/name`, or `name` at the module root. */
function under(base: Buffer, name: Buffer): Buffer {
  return base.length ? Buffer.concat([base, SLASH, name]) : name;
}

/**
 * The module's rules for names relative to `base` (a module-relative directory, '' for the root):
 * each name is checked as `base/name`, as rsync prefixes its current directory to anchored rules.
 */
// rsync/exclude.c: name_is_excluded (the daemon_filter_list half)
export function moduleFilterAt(matcher: FilterMatcher, base: string | Buffer): ModuleFilter {
  const prefix = Buffer.from(base);
  return {
    isExcluded: (relPath, isDir) => matcher.isExcluded(under(prefix, relPath), isDir),
    enter: (relDir) => moduleFilterAt(matcher.enter(under(prefix, relDir)), prefix),
  };
}

/**
 * A client's path argument the module's rules exclude: the path itself or any directory on the
 * way to it (each checked as a directory, as rsync checks them). `parts` are module-relative.
 */
// rsync/flist.c: path_is_daemon_excluded
export function pathIsModuleExcluded(matcher: FilterMatcher, parts: readonly string[]): boolean {
  for (let i = 1; i <= parts.length; i++) {
    if (matcher.isExcluded(parts.slice(0, i).join('/'), true)) return true;
  }
  return false;
}

/**
 * A push's destination the module's rules exclude (the path as a file or as a directory, its
 * trailing `/` or `/.` taken off): rsync refuses the whole transfer.
 */
// rsync/main.c: get_local_name (the daemon_filter_list check)
export function destinationIsModuleExcluded(matcher: FilterMatcher, parts: readonly string[]): boolean {
  if (!parts.length) return false;
  const name = parts.join('/');
  return matcher.isExcluded(name, false) || matcher.isExcluded(name, true);
}
