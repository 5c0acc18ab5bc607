// --usermap / --groupmap (and --chown, which makes them): the receiving side's rules that turn the
// sender's owner ids into local ones before the usual match by name (docs/protocol.md [flist]: the
// id lists). A rule is FROM:TO, comma-separated; FROM is a name, a wildcard name, `*`, an id or an
// id range LOW-HIGH; TO is a local name or id. The first rule that matches wins.
// Counterpart: rsync uidlist.c (parse_name_map, recv_add_id, id_parse).
import { wildmatch } from '../../protocol/filter.js';
import { UsageError } from '../../protocol/errors.js';

/** One FROM:TO rule, compiled (rsync's struct idlist of uidmap/gidmap). */
export interface IdMapRule {
  match: { name: string; wild: boolean } | { low: number; high: number };
  to: number;
}

/** Longest map text taken (rsync takes any length; a real map is far shorter). */
export const MAX_NAME_MAP = 65536;

const MAX_ID = 2 ** 32 - 1;

/** An id as rsync's id_parse reads it: digits only, within 32 bits. */
// rsync/uidlist.c: id_parse
function parseId(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > MAX_ID) throw new UsageError(`Invalid ID number: ${text}`);
  return Number(text);
}

/**
 * Compile a --usermap (`kind` 'user') or --groupmap text. `local` maps local names to ids; a TO
 * that is neither a local name nor a number is reported through `onError` with rsync's text and
 * its rule dropped, as rsync's receiver does. Syntax errors throw UsageError with rsync's text.
 */
// rsync/uidlist.c: parse_name_map
export function parseNameMap(text: string, kind: 'user' | 'group', local: ReadonlyMap<string, number>, onError: (text: string) => void): IdMapRule[] {
  if (text.length > MAX_NAME_MAP) throw new UsageError(`--${kind}map is longer than ${MAX_NAME_MAP} bytes`);
  const rules: IdMapRule[] = [];
  for (const clause of text.split(',')) {
    const colon = clause.indexOf(':');
    if (colon === -1) throw new UsageError(`No colon found in --${kind}map: ${clause}`);
    const from = clause.slice(0, colon);
    const toText = clause.slice(colon + 1);
    if (!toText) throw new UsageError(`No name found after colon --${kind}map: ${clause}`);
    let match: IdMapRule['match'];
    if (/^\d/.test(from)) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(from);
      if (!m) throw new UsageError(`Invalid number in --${kind}map: ${from}`);
      const low = parseId(m[1]!);
      match = { low, high: m[2] !== undefined ? parseId(m[2]) : low };
    } else {
      match = { name: from, wild: /[*[?]/.test(from) };
    }
    const to = /^\d+$/.test(toText) ? parseId(toText) : local.get(toText);
    if (to === undefined) {
      onError(`Unknown --${kind}map name on receiver: ${toText}`);
      continue;
    }
    rules.push({ match, to });
  }
  return rules;
}

/** The first rule's id for a sender's id and name ('' when it sent none), or undefined. */
// rsync/uidlist.c: recv_add_id (the idmap walk)
export function mappedId(rules: readonly IdMapRule[], id: number, name: string): number | undefined {
  for (const { match, to } of rules) {
    if ('name' in match) {
      if (match.wild ? wildmatch(match.name, name) : match.name === name) return to;
    } else if (id >= match.low && id <= match.high) return to;
  }
  return undefined;
}

/**
 * --chown=USER:GROUP as rsync's client turns it into maps: `*:USER` and `*:GROUP` (either part
 * may be empty). Conflicts with an explicit --usermap/--groupmap are rsync's errors.
 */
// rsync/options.c: parse_arguments (OPT_CHOWN, OPT_USERMAP, OPT_GROUPMAP)
export function ownerMaps(o: { chown?: string; usermap?: readonly string[]; groupmap?: readonly string[] }): { usermap?: string; groupmap?: string } {
  if ((o.usermap?.length ?? 0) > 1) throw new UsageError('You can only specify --usermap once.');
  if ((o.groupmap?.length ?? 0) > 1) throw new UsageError('You can only specify --groupmap once.');
  let usermap = o.usermap?.[0];
  let groupmap = o.groupmap?.[0];
  if (o.chown !== undefined) {
    const colon = o.chown.indexOf(':');
    const user = colon === -1 ? o.chown : o.chown.slice(0, colon);
    const group = colon === -1 ? '' : o.chown.slice(colon + 1);
    if (user) {
      if (usermap !== undefined) throw new UsageError('--chown conflicts with --usermap.');
      usermap = `*:${user}`;
    }
    if (group) {
      if (groupmap !== undefined) throw new UsageError('--chown conflicts with --groupmap.');
      groupmap = `*:${group}`;
    }
  }
  return { ...(usermap !== undefined && { usermap }), ...(groupmap !== undefined && { groupmap }) };
}
