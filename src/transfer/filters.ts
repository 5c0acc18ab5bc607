// The filter rules of the command line, in argv order, turned into the sender's matcher and the
// list the daemon receives. Reads --exclude-from/--include-from and merge files (protocol/ does no fs).
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { FilterList, compileFilter, sendFilterList, receiverWantsFilterList, type FilterMatcher, type FilterRule } from '../../protocol/filter.js';
import { UsageError } from '../../protocol/errors.js';
import type { ByteWriter } from '../../protocol/io.js';
import type { PushFilter } from './push.js';
import type { PathFilter } from './scan.js';

export type RuleSource =
  | { kind: 'exclude'; value: string }
  | { kind: 'include'; value: string }
  | { kind: 'filter'; value: string }
  | { kind: 'exclude-from'; value: string }
  | { kind: 'include-from'; value: string }
  /** --delete-excluded, at its place in argv: rules after it are marked sender-side (as rsync does). */
  | { kind: 'delete-excluded' };

function readListFile(path: string): Buffer {
  try {
    return path === '-' ? readFileSync(0) : readFileSync(path);
  } catch (e) {
    throw new UsageError(`failed to open filter file ${path}: ${(e as Error).message}`);
  }
}

/** Parse the rules in the order given. */
export function buildFilterList(sources: readonly RuleSource[]): FilterList {
  const list = new FilterList({ readMergeFile: (name) => readListFile(name) });
  for (const s of sources) {
    switch (s.kind) {
      case 'exclude':
        list.addExclude(s.value);
        break;
      case 'include':
        list.addInclude(s.value);
        break;
      case 'filter':
        list.addFilter(s.value);
        break;
      case 'exclude-from':
        list.addExcludeFrom(readListFile(s.value));
        break;
      case 'include-from':
        list.addIncludeFrom(readListFile(s.value));
        break;
      case 'delete-excluded':
        list.deleteExcluded = true;
        break;
    }
  }
  return list;
}

/**
 * The rule rsync's client adds for a relative --partial-dir (or --delay-updates' own dir): the
 * DIR/ directories excluded wherever they are, taken literally (no prefixes), perishable from
 * protocol 30 on (a sender below 30 sends it plain, which its peer can read). It goes after the
 * user's rules, so their includes come first.
 */
// rsync/compat.c: setup_protocol (parse_filter_str of partial_dir with FILTRULE_NO_PREFIXES|FILTRULE_DIRECTORY)
export function partialDirRule(dir: string, perishable: boolean): FilterRule {
  return { pattern: Buffer.from(dir), include: false, dirOnly: true, absPath: false, negate: false, senderSide: false, receiverSide: false, perishable };
}

/** The list with one rule more at its end (the list itself left as it is). */
function withRule(list: FilterList, rule: FilterRule): FilterList {
  const copy = new FilterList({ from0: list.from0, deleteExcluded: list.deleteExcluded });
  copy.rules.push(...list.rules, rule);
  return copy;
}

export interface PushFilterOptions {
  deleteExcluded: boolean;
  absRoot?: string;
  /**
   * --partial-dir (cleaned): a relative one is excluded from the walk and, with the list, from
   * the daemon's deletions (partialDirRule); an absolute one adds nothing, as in rsync.
   */
  partialDir?: string;
}

/** The push's view of the rules: local matching on the sender, and the daemon's list. */
export function pushFilter(list: FilterList, options: PushFilterOptions): PushFilter {
  const root = options.absRoot;
  const partialDir = options.partialDir !== undefined && !options.partialDir.startsWith('/') ? options.partialDir : undefined;
  const matcher = compileFilter(partialDir === undefined ? list : withRule(list, partialDirRule(partialDir, true)), {
    side: 'sender',
    ...(root !== undefined && { absRoot: root }),
    // Per-directory merge files (`:` rules) are read as the walk reaches each directory.
    readDirMergeFile: (path) => {
      const full = isAbsolute(path) || root === undefined ? path : join(root, path);
      try {
        return readFileSync(full);
      } catch {
        return null;
      }
    },
  });
  const wrap = (m: FilterMatcher): PathFilter => ({
    empty: m.empty,
    isExcluded: (relPath, isDir) => !m.empty && m.isExcluded(relPath, isDir),
    enter: (relDir) => wrap(m.enter(relDir)),
  });
  const top = wrap(matcher);
  return {
    ...top,
    wantsList: (protocol, deleteMode) => receiverWantsFilterList({ protocol, deleteMode, deleteExcluded: options.deleteExcluded, pruneEmptyDirs: false }),
    sendList: (writer: ByteWriter) => {
      const sent = partialDir === undefined ? list : withRule(list, partialDirRule(partialDir, writer.protocol >= 30));
      sendFilterList(writer, sent, { deleteExcluded: options.deleteExcluded });
    },
    withPartialDir: (dir) => (dir === options.partialDir ? undefined : pushFilter(list, { ...options, partialDir: dir })),
  };
}
