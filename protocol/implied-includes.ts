// The names a pull asked for (docs/protocol.md [flist-recv-safe]): rsync 3.5's client turns each
// source argument, and each name of a local --files-from list it forwards, into "implied include"
// rules, and refuses a file-list entry none of them matches ("rejecting unrequested file-list
// name", exit 4), so a lying or sanitizing daemon cannot make it write names it never asked for.
// It also keeps a directory that is only a parent of a requested name from being a content
// directory (the scope of --delete). Pure: names in, answers out.
// Literal rules are kept in sets (a check costs a few lookups per entry, whatever the list's
// size); rules with wildcards are matched with protocol/filter.ts's rsync matcher.
// Counterpart: rsync exclude.c add_implied_include, maybe_add_literal_brackets_rule,
// is_implied_parent_dir; flist.c recv_file_entry (the check).
import { EXIT, ProtocolError } from './errors.js';
import { shownName } from './terminal-text.js';
import { compileFilter, type FilterMatcher, type FilterRule } from './filter.js';

const SLASH = 0x2f;
const DOT = 0x2e;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const EMPTY = Buffer.alloc(0);

const isWildChar = (c: number | undefined): boolean => c === 0x2a || c === OPEN_BRACKET || c === 0x3f;

/** A file-list entry no source argument or --files-from name asked for (rsync: exit 4). */
export class UnrequestedNameError extends ProtocolError {
  /** The offending name as received (raw bytes). */
  readonly rawName: Buffer;
  /** `shown`: the name as the caller's output shows names (default: escaped for a UTF-8 terminal). */
  constructor(rawName: Uint8Array, shown?: string) {
    super(`ERROR: rejecting unrequested file-list name: ${shown ?? shownName(rawName)}`, { code: 'ERR_RSYNC_UNREQUESTED_NAME', exitCode: EXIT.UNSUPPORTED });
    this.rawName = Buffer.from(rawName);
  }
}

/** The options that shape the rules (rsync's relative_paths, recurse, xfer_dirs). */
export interface ImpliedIncludeOptions {
  /** -R: an argument counts from its `/./` (or whole), and its parent directories are allowed. */
  relative: boolean;
  /** -r: everything under a requested directory is allowed. */
  recursive: boolean;
  /** -d without -r: a requested directory's direct entries are allowed. */
  dirs: boolean;
}

/**
 * The implied include rules of one pull, and the receiver's checks against them. Empty (every
 * name allowed) until a rule is added; rsync has no rule for an argument that names the module
 * itself without -r or -d.
 */
export class RequestedNames {
  /** Literal rules for any file type: the whole name (no leading '/'). */
  private readonly leaves = new Set<string>();
  /** Literal rules for directories only: the parents of a -R name. */
  private readonly parents = new Set<string>();
  /** `/P/**` with a literal P: every name below P ('' is the transfer root). */
  private readonly below = new Set<string>();
  /** `/P/*` with a literal P (-d): the direct entries of P. */
  private readonly children = new Set<string>();
  /** Rules with wildcards, for any type and for directories only. */
  private readonly wildLeaves: FilterMatcher[] = [];
  private readonly wildParents: FilterMatcher[] = [];
  /** The patterns of the rules with wildcards (the literal ones are the sets' keys). */
  private readonly wildPatterns = new Set<string>();
  private hasRules = false;

  constructor(private readonly options: ImpliedIncludeOptions) {}

  /** No rule yet: rsync then checks nothing. */
  get empty(): boolean {
    return !this.hasRules;
  }

  /**
   * Every name is asked for (`/**` from the transfer root: a recursive pull of a whole module or
   * directory): `check` and `isParentOnly` would pass every name, so a list decoder may skip them.
   */
  get allRequested(): boolean {
    return this.below.has('');
  }

  /**
   * The rules of one source argument (`skipModule`: a daemon argument, its module name stripped)
   * or one forwarded --files-from name (taken as sent).
   */
  // rsync/exclude.c: add_implied_include
  addArg(argIn: string | Uint8Array, skipModule: boolean): void {
    let arg: Buffer = typeof argIn === 'string' ? Buffer.from(argIn) : Buffer.from(argIn.buffer, argIn.byteOffset, argIn.length);
    if (skipModule) {
      const slash = arg.indexOf(SLASH);
      arg = slash === -1 ? EMPTY : arg.subarray(slash + 1);
    }
    if (this.options.relative) {
      const at = arg.indexOf('/./');
      if (at !== -1) arg = arg.subarray(at + 3);
    } else {
      const slash = arg.lastIndexOf(SLASH);
      if (slash !== -1) arg = arg.subarray(slash + 1);
    }
    if (arg.length === 1 && arg[0] === DOT) arg = EMPTY;

    let sawWild = false;
    let sawBracket = false;
    let backslashes = 0;
    let slashCount = 0;
    let pattern = EMPTY;
    let leafKey: string | null = null;
    if (arg.length) {
      sawWild = arg.some(isWildChar);
      const out: number[] = [SLASH];
      slashCount = 1;
      let i = 0;
      while (i < arg.length) {
        const c = arg[i]!;
        const last = out[out.length - 1];
        if (c === BACKSLASH) {
          if (arg[i + 1] === CLOSE_BRACKET) {
            // A \] in a pattern without wildcards is just ']'.
            if (!sawWild) i++;
          } else if (i + 1 >= arg.length || !isWildChar(arg[i + 1])) {
            backslashes++;
            if (sawWild) out.push(BACKSLASH);
          }
          out.push(arg[i++]!);
        } else if (c === SLASH) {
          if (last === SLASH) {
            if (++i >= arg.length) {
              slashCount--;
              out.pop();
            }
          } else if (i + 1 >= arg.length) {
            i++;
          } else {
            slashCount++;
            out.push(arg[i++]!);
          }
        } else if (c === DOT && last === SLASH) {
          if (arg[i + 1] === SLASH) {
            i += 2;
            if (i >= arg.length) {
              slashCount--;
              out.pop();
            }
          } else if (i + 1 >= arg.length) {
            i++;
            slashCount--;
            out.pop();
          } else {
            out.push(arg[i++]!);
          }
        } else {
          if (c === OPEN_BRACKET) sawBracket = true;
          out.push(arg[i++]!);
        }
      }
      pattern = Buffer.from(out);
      if (pattern.length) {
        leafKey = this.addRule(pattern, sawWild, false, sawBracket);
        if (this.options.relative && slashCount) this.addParents(pattern, sawWild, sawBracket);
      }
    }

    if (this.options.recursive || this.options.dirs) {
      const suffix = this.options.recursive ? '/**' : '/*';
      if (!sawWild) {
        // The prefix is literal: kept as a name (the leaf rule's own string), not a pattern.
        (this.options.recursive ? this.below : this.children).add(leafKey ?? pattern.subarray(1).toString('latin1'));
        this.hasRules = true;
      } else {
        this.addRule(Buffer.concat([pattern, Buffer.from(suffix)]), true, false, sawBracket);
      }
    }
  }

  /** Whether an entry of the received list was asked for (rsync: check_filter > 0). '.' always is. */
  // rsync/flist.c: recv_file_entry (the implied_filter_list check)
  isRequested(name: Uint8Array, isDir: boolean): boolean {
    const key = nameKey(name);
    if (key === '.') return true;
    return this.matchesLeaf(name, key, isDir) || (isDir && this.matchesParent(name, key));
  }

  /** Throw UnrequestedNameError unless the entry was asked for. */
  check(name: Uint8Array, isDir: boolean): void {
    if (!this.empty && !this.isRequested(name, isDir)) throw new UnrequestedNameError(name);
  }

  /**
   * A directory allowed only as the parent of a requested name, never asked for itself: it must
   * not be a content directory (--delete would sweep its other entries). '.' is one unless the
   * transfer root's contents were asked for.
   */
  // rsync/exclude.c: is_implied_parent_dir
  isParentOnly(name: Uint8Array): boolean {
    if (this.empty) return false;
    const key = nameKey(name);
    if (key === '.') return !this.below.has('') && !this.children.has('');
    return this.matchesParent(name, key) && !this.matchesLeaf(name, key, true);
  }

  private matchesLeaf(name: Uint8Array, key: string, isDir: boolean): boolean {
    if (this.leaves.has(key)) return true;
    if (this.below.size) {
      if (this.below.has('')) return true;
      for (let at = key.indexOf('/'); at !== -1; at = key.indexOf('/', at + 1)) {
        if (this.below.has(key.slice(0, at))) return true;
      }
    }
    if (this.children.size) {
      const slash = key.lastIndexOf('/');
      if (this.children.has(slash === -1 ? '' : key.slice(0, slash))) return true;
    }
    for (const m of this.wildLeaves) if (m.check(name, isDir) > 0) return true;
    return false;
  }

  private matchesParent(name: Uint8Array, key: string): boolean {
    if (this.parents.has(key)) return true;
    for (const m of this.wildParents) if (m.check(name, true) > 0) return true;
    return false;
  }

  // rsync/exclude.c: add_implied_include (the parent directories of a -R name)
  private addParents(pattern: Buffer, sawWild: boolean, sawBracket: boolean): void {
    for (let end = pattern.lastIndexOf(SLASH); end > 0; end = pattern.lastIndexOf(SLASH, end - 1)) {
      const parent = pattern.subarray(0, end);
      // (rsync stops at the first parent it has a rule for: the ones above it are there too)
      const key = parent.subarray(1).toString('latin1');
      if (this.parents.has(key) || this.leaves.has(key) || this.wildPatterns.has(parent.toString('latin1'))) break;
      const wild = sawWild && parent.some((c) => isWildChar(c) || c === BACKSLASH);
      this.addRule(parent, wild, true, sawBracket);
    }
  }

  /**
   * One anchored include rule; with `brackets`, also its twin with each live '[' escaped. Returns
   * the key of a literal rule (the name it matches), null for one with wildcards.
   */
  private addRule(pattern: Buffer, wild: boolean, dirOnly: boolean, brackets: boolean): string | null {
    this.hasRules = true;
    let key: string | null = null;
    if (wild) this.wildPatterns.add(pattern.toString('latin1'));
    if (wild && hasLiveWildcard(pattern)) {
      const rule: FilterRule = {
        pattern,
        include: true,
        dirOnly,
        absPath: false,
        negate: false,
        senderSide: false,
        receiverSide: false,
        perishable: false,
      };
      (dirOnly ? this.wildParents : this.wildLeaves).push(compileFilter([rule]));
    } else {
      const literal = wild ? unescaped(pattern) : pattern;
      key = literal.subarray(1).toString('latin1');
      (dirOnly ? this.parents : this.leaves).add(key);
    }
    if (brackets) {
      const twin = literalBrackets(pattern);
      if (twin) this.addRule(twin, wild, dirOnly, false);
    }
    return wild ? null : key;
  }
}

/** The name as a set key: latin1 (one char a byte), without a leading '/'. */
function nameKey(name: Uint8Array): string {
  const buf = Buffer.from(name.buffer, name.byteOffset, name.length);
  return (buf[0] === SLASH ? buf.subarray(1) : buf).toString('latin1');
}

/** Whether a pattern has a '*', '?' or '[' not escaped by a backslash. */
function hasLiveWildcard(pattern: Buffer): boolean {
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === BACKSLASH) i++;
    else if (isWildChar(pattern[i])) return true;
  }
  return false;
}

/** A wildcard pattern without live wildcards as the literal name it matches (each `\x` is `x`). */
function unescaped(pattern: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === BACKSLASH && i + 1 < pattern.length) i++;
    out.push(pattern[i]!);
  }
  return Buffer.from(out);
}

/** The pattern with each unescaped '[' escaped, or null when it has none. */
// rsync/exclude.c: maybe_add_literal_brackets_rule
function literalBrackets(pattern: Buffer): Buffer | null {
  const out: number[] = [];
  let live = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === BACKSLASH && i + 1 < pattern.length) {
      out.push(c, pattern[++i]!);
      continue;
    }
    if (c === OPEN_BRACKET) {
      live++;
      out.push(BACKSLASH);
    }
    out.push(c);
  }
  return live ? Buffer.from(out) : null;
}
