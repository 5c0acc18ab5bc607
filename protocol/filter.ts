// Filter rules (--exclude, --include, --filter, --exclude-from, --include-from): parsing them as
// rsync does, matching names on the sender with rsync's wildmatch, and the filter list the client
// sends first in the data stream (docs/protocol.md [filter]: `{int32 len; rule text}`..., int32 0),
// and its receiving half for a server.
// Pure: the caller reads list, merge and per-directory merge files and hands their text in.
// Refused: the `C` (cvs-exclude) and `x` (xattr) modifiers, merge rules inside per-directory files.
// Counterpart: rsync exclude.c (parse_rule_tok, parse_filter_str, parse_filter_file, add_rule,
// setup_merge_file, push_local_filters, rule_matches, check_filter, get_rule_prefix, send_rules,
// recv_filter_list)
// and lib/wildmatch.c.
import type { ByteReader, ByteWriter } from './io.js';
import { EXIT, ProtocolError, UsageError, type MemoryBudget } from './errors.js';

/** One parsed rule. `pattern` is raw bytes, without the trailing `/` of a dir-only rule. */
export interface FilterRule {
  readonly pattern: Buffer;
  /** `+`, `S`, `R`: a match includes; otherwise it excludes. */
  readonly include: boolean;
  /** The pattern ended in `/`: only directories match. */
  readonly dirOnly: boolean;
  /** `/` modifier: matched against the absolute path of the file. */
  readonly absPath: boolean;
  /** `!` modifier: the rule takes effect when the pattern does NOT match. */
  readonly negate: boolean;
  /** `s` modifier, or hide/show. */
  readonly senderSide: boolean;
  /** `r` modifier, or protect/risk. */
  readonly receiverSide: boolean;
  /** `p` modifier: ignored by the receiver when it deletes a directory's contents. */
  readonly perishable: boolean;
  /** Set on a `dir-merge`/`:` rule: `pattern` is then the per-directory file's name. */
  readonly dirMerge?: DirMerge;
}

/** The modifiers of a dir-merge rule that shape how its files are read. */
export interface DirMerge {
  /** `n`: rules are not inherited by subdirectories. */
  readonly noInherit: boolean;
  /** `w`: the file is split on whitespace, not lines. */
  readonly wordSplit: boolean;
  /** `-`/`+`: every token is a pattern (an include with `+`, `include` then set). */
  readonly noPrefixes: boolean;
}

/** Supplies the contents of the file named by a `merge`/`.` rule (the caller reads it). */
export type MergeFileReader = (name: string, rawName: Buffer) => string | Uint8Array;

export interface FilterListOptions {
  /** Needed only when a rule names a merge file. */
  readMergeFile?: MergeFileReader;
  /** Initial value of FilterList.deleteExcluded. */
  deleteExcluded?: boolean;
  /** --from0: list and merge files hold NUL-terminated rules (CR and LF are then ordinary bytes). */
  from0?: boolean;
}

// exclude.c: MAX_MERGE_DEPTH (merge files naming merge files)
const MAX_MERGE_DEPTH = 32;

// exclude.c: MAX_RULE_PREFIX - 1, the prefix room from protocol 29 on
const MAX_PREFIX = 15;

/** Rule flags while parsing (exclude.c: FILTRULE_*; only those this module needs). */
interface Flags {
  include: boolean;
  dirOnly: boolean;
  absPath: boolean;
  negate: boolean;
  senderSide: boolean;
  receiverSide: boolean;
  perishable: boolean;
  merge: boolean;
  perDirMerge: boolean;
  noPrefixes: boolean;
  wordSplit: boolean;
  noInherit: boolean;
  excludeSelf: boolean;
  clearList: boolean;
}

function noFlags(): Flags {
  return {
    include: false,
    dirOnly: false,
    absPath: false,
    negate: false,
    senderSide: false,
    receiverSide: false,
    perishable: false,
    merge: false,
    perDirMerge: false,
    noPrefixes: false,
    wordSplit: false,
    noInherit: false,
    excludeSelf: false,
    clearList: false,
  };
}

/** How a piece of text is parsed: full filter syntax, or the --exclude/--include syntax. */
const enum Syntax {
  /** --filter and merge files: a rule name/character, modifiers, then the pattern. */
  Full,
  /** --exclude/--include and their -from lists (XFLG_OLD_PREFIXES): optional `- `/`+ `, `!` clears. */
  Old,
}

const SP = 0x20;
const UNDERSCORE = 0x5f;
const COMMA = 0x2c;
const SLASH = 0x2f;
const SLASH_BUF = Buffer.from('/');

// C isspace in the "C" locale
function isSpace(c: number | undefined): boolean {
  return c === 0x20 || (c !== undefined && c >= 0x09 && c <= 0x0d);
}

function toBytes(text: string | Uint8Array): Buffer {
  return typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.from(text.buffer, text.byteOffset, text.length);
}

function show(text: Buffer): string {
  return JSON.stringify(text.toString('utf8'));
}

const RULE_NAMES: ReadonlyArray<readonly [string, number]> = [
  ['clear', 0x21], // '!'
  ['dir-merge', 0x3a], // ':'
  ['exclude', 0x2d], // '-'
  ['hide', 0x48], // 'H'
  ['include', 0x2b], // '+'
  ['merge', 0x2e], // '.'
  ['protect', 0x50], // 'P'
  ['risk', 0x52], // 'R'
  ['show', 0x53], // 'S'
];

/** Where parsed rules go, and what the parse may do (one per list or per-directory file). */
interface ParseContext {
  rules: FilterRule[];
  readMergeFile: MergeFileReader | undefined;
  deleteExcluded: boolean;
  depth: number;
  /**
   * Set while reading a per-directory merge file (XFLG_ANCHORED2ABS): anchored rules are anchored
   * at that directory, given relative to the transfer root (`rel`) or, above the root, absolutely.
   */
  perDir: { rel: Buffer } | { abs: Buffer } | null;
  /** A `!` was read: in a per-directory file it also drops the inherited rules. */
  cleared: boolean;
  /** --from0 (rsync's eol_nulls). */
  from0: boolean;
}

/**
 * An ordered filter list, built in command-line order. First match wins when matching; a `!`
 * (clear) rule empties what came before it.
 */
export class FilterList {
  readonly rules: FilterRule[] = [];
  /**
   * --delete-excluded seen so far: rules parsed from now on without a side become sender-side
   * (parse_rule_tok does this, so rsync's output depends on where --delete-excluded stands in
   * argv: before a rule a pull sends it as `-s x`, after it as `- x`; both mean the same to the
   * daemon). Set it up front when argv order is not tracked.
   */
  deleteExcluded: boolean;
  /** --from0, also used for the per-directory files of a matcher compiled from this list. */
  readonly from0: boolean;
  private readonly readMergeFile: MergeFileReader | undefined;
  /** How many -F options were seen. */
  private fCount = 0;

  constructor(options: FilterListOptions = {}) {
    this.readMergeFile = options.readMergeFile;
    this.deleteExcluded = options.deleteExcluded ?? false;
    this.from0 = options.from0 ?? false;
  }

  private context(): ParseContext {
    return { rules: this.rules, readMergeFile: this.readMergeFile, deleteExcluded: this.deleteExcluded, depth: 0, perDir: null, cleared: false, from0: this.from0 };
  }

  /** --filter RULE / -f RULE: one rule in the full syntax (`- *.o`, `P keep/`, `merge,s file`, `!`). */
  addFilter(rule: string | Uint8Array): this {
    parseStr(this.context(), toBytes(rule), noFlags(), Syntax.Full);
    return this;
  }

  /** --exclude PATTERN (a leading `- `/`+ ` is honoured; `!` alone clears the list). */
  addExclude(pattern: string | Uint8Array): this {
    parseStr(this.context(), toBytes(pattern), noFlags(), Syntax.Old);
    return this;
  }

  /** --include PATTERN. */
  addInclude(pattern: string | Uint8Array): this {
    parseStr(this.context(), toBytes(pattern), { ...noFlags(), include: true }, Syntax.Old);
    return this;
  }

  /** --exclude-from FILE, given the file's text: one pattern a line, `- `/`+ ` prefixes honoured. */
  addExcludeFrom(text: string | Uint8Array): this {
    parseFile(this.context(), toBytes(text), noFlags(), Syntax.Old);
    return this;
  }

  /** --include-from FILE, given the file's text. */
  addIncludeFrom(text: string | Uint8Array): this {
    parseFile(this.context(), toBytes(text), { ...noFlags(), include: true }, Syntax.Old);
    return this;
  }

  /** -F: the first adds `dir-merge /.rsync-filter`, the second `- .rsync-filter`, more do nothing. */
  addF(): this {
    this.fCount++;
    if (this.fCount === 1) this.addFilter(': /.rsync-filter');
    else if (this.fCount === 2) this.addFilter('- .rsync-filter');
    return this;
  }
}

// exclude.c: parse_filter_str
function parseStr(ctx: ParseContext, text: Buffer, template: Flags, syntax: Syntax): void {
  let pos = 0;
  for (;;) {
    const tok = parseRuleTok(text, pos, template, syntax);
    if (!tok) return;
    pos = tok.end;
    const { flags, pattern } = tok;
    // parse_rule_tok: --delete-excluded turns an unsided include/exclude into a sender-side one
    if (ctx.deleteExcluded && !flags.senderSide && !flags.receiverSide && !flags.merge) flags.senderSide = true;
    if (flags.clearList) {
      ctx.rules.length = 0;
      ctx.cleared = true;
      continue;
    }
    if (flags.merge) {
      if (ctx.perDir) {
        throw new UsageError(`merge rules inside a per-directory merge file are not supported: ${show(text)}`);
      }
      if (flags.excludeSelf) {
        // The merge file's own basename becomes a plain exclude rule, ahead of the merge rule.
        const base = pattern.subarray(pattern.lastIndexOf(SLASH) + 1);
        addRule(ctx, base, noFlags());
        flags.excludeSelf = false;
      }
      if (flags.perDirMerge) addRule(ctx, pattern, flags);
      else mergeFile(ctx, pattern, flags);
      continue;
    }
    addRule(ctx, pattern, flags);
  }
}

function mergeFile(ctx: ParseContext, name: Buffer, template: Flags): void {
  if (!ctx.readMergeFile) {
    throw new UsageError(`merge file ${show(name)} named in a filter rule, but no merge-file reader was given`);
  }
  if (ctx.depth >= MAX_MERGE_DEPTH) {
    throw new UsageError(`merge-file include depth limit (${MAX_MERGE_DEPTH}) exceeded at ${show(name)}`, EXIT.FILEIO);
  }
  const text = toBytes(ctx.readMergeFile(name.toString('utf8'), Buffer.from(name)));
  ctx.depth++;
  try {
    parseFile(ctx, text, template, template.noPrefixes ? Syntax.Old : Syntax.Full);
  } finally {
    ctx.depth--;
  }
}

// exclude.c: parse_filter_file (lines end at LF, CR or CRLF, or at NUL only with --from0; `;`/`#`
// lines are comments unless the file is word-split)
function parseFile(ctx: ParseContext, text: Buffer, template: Flags, syntax: Syntax): void {
  const wordSplit = template.wordSplit;
  const from0 = ctx.from0;
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = text[i];
    const ends = i === text.length || (wordSplit && isSpace(c)) || (from0 ? c === 0 : c === 0x0a || c === 0x0d);
    if (!ends) continue;
    let line = text.subarray(start, i);
    const nul = line.indexOf(0);
    if (nul !== -1) line = line.subarray(0, nul); // rsync holds the line as a C string
    if (!from0 && c === 0x0d && text[i + 1] === 0x0a) i++; // CRLF is one line end
    start = i + 1;
    if (line.length === 0) continue;
    if (!wordSplit && (line[0] === 0x3b || line[0] === 0x23)) continue;
    parseStr(ctx, line, template, syntax);
  }
}

// exclude.c: add_rule (the trailing '/' becomes the dir-only flag)
function addRule(ctx: ParseContext, pat: Buffer, flags: Flags): void {
  let pattern = pat;
  let dirOnly = flags.dirOnly;
  let absPath = flags.absPath;
  if (pattern.length > 1 && pattern[pattern.length - 1] === SLASH) {
    pattern = pattern.subarray(0, pattern.length - 1);
    dirOnly = true;
  }
  if (ctx.perDir && !absPath && pattern[0] === SLASH) {
    // An anchored rule in a per-directory file is anchored at that file's directory.
    if ('rel' in ctx.perDir) {
      if (ctx.perDir.rel.length) pattern = Buffer.concat([SLASH_BUF, ctx.perDir.rel, pattern]);
    } else {
      absPath = true;
      pattern = Buffer.concat([ctx.perDir.abs, pattern]);
    }
  }
  const rule: FilterRule = {
    pattern: Buffer.from(pattern),
    include: flags.include,
    dirOnly,
    absPath,
    negate: flags.negate,
    senderSide: flags.senderSide,
    receiverSide: flags.receiverSide,
    perishable: flags.perishable,
    ...(flags.perDirMerge && {
      dirMerge: { noInherit: flags.noInherit, wordSplit: flags.wordSplit, noPrefixes: flags.noPrefixes },
    }),
  };
  ctx.rules.push(rule);
}

interface Token {
  flags: Flags;
  pattern: Buffer;
  end: number;
}

// exclude.c: rule_strcmp (a long rule name ends at whitespace, '_', ',' or the end)
function ruleName(text: Buffer, s: number, name: string): number | null {
  for (let i = 0; i < name.length; i++) if (text[s + i] !== name.charCodeAt(i)) return null;
  const next = text[s + name.length];
  if (next === undefined || isSpace(next) || next === UNDERSCORE) return s + name.length - 1;
  if (next === COMMA) return s + name.length;
  return null;
}

// exclude.c: parse_rule_tok
function parseRuleTok(text: Buffer, pos: number, template: Flags, syntax: Syntax): Token | null {
  let s = pos;
  if (template.wordSplit) while (isSpace(text[s])) s++;
  const ruleStart = s;
  if (s >= text.length) return null;
  const whole = text.subarray(ruleStart);

  // Inherited from the containing rule (FILTRULES_FROM_CONTAINER); sides are checked below.
  const flags = noFlags();
  flags.absPath = template.absPath;
  flags.include = template.include;
  flags.dirOnly = template.dirOnly;
  flags.negate = template.negate;
  flags.perishable = template.perishable;

  if (template.noPrefixes) {
    // Every token is a pattern of the template's kind.
  } else if (syntax === Syntax.Old) {
    if (text[s] === 0x2d && text[s + 1] === SP) {
      flags.include = false;
      s += 2;
    } else if (text[s] === 0x2b && text[s + 1] === SP) {
      flags.include = true;
      s += 2;
    } else if (text[s] === 0x21) {
      flags.clearList = true; // tentative: only a lone "!" clears
    }
  } else {
    let ch = 0;
    let sideFromName = false;
    const first = text[s]!;
    const long = RULE_NAMES.find(([name]) => name.charCodeAt(0) === first);
    if (long && first >= 0x61 && first <= 0x7a) {
      const at = ruleName(text, s, long[0]);
      if (at === null) throw new UsageError(`Unknown filter rule: ${show(whole)}`);
      s = at;
      ch = long[1];
    } else {
      ch = first;
      if (text[s + 1] === COMMA) s++;
    }
    switch (ch) {
      case 0x3a: // ':' dir-merge
        flags.perDirMerge = true;
        flags.merge = true;
        break;
      case 0x2e: // '.' merge
        flags.merge = true;
        break;
      case 0x2b: // '+'
        flags.include = true;
        break;
      case 0x2d: // '-'
        break;
      case 0x53: // 'S' show = sender-side include
        flags.include = true;
        flags.senderSide = true;
        sideFromName = true;
        break;
      case 0x48: // 'H' hide = sender-side exclude
        flags.senderSide = true;
        sideFromName = true;
        break;
      case 0x52: // 'R' risk = receiver-side include
        flags.include = true;
        flags.receiverSide = true;
        sideFromName = true;
        break;
      case 0x50: // 'P' protect = receiver-side exclude
        flags.receiverSide = true;
        sideFromName = true;
        break;
      case 0x21: // '!' clear
        flags.clearList = true;
        break;
      default:
        throw new UsageError(`Unknown filter rule: ${show(whole)}`);
    }
    // Modifiers run from after the rule character up to a space or '_' (a tab is NOT a separator
    // here: rsync reports it as an invalid modifier).
    while (ch !== 0x21) {
      s++;
      const m = text[s];
      if (m === undefined || m === SP || m === UNDERSCORE) break;
      if (template.wordSplit && isSpace(m)) {
        s--;
        break;
      }
      const invalid = (): UsageError =>
        new UsageError(`invalid modifier '${String.fromCharCode(m)}' at position ${s - ruleStart} in filter rule: ${show(whole)}`);
      switch (m) {
        case 0x2d: // '-' merge file of excludes, no prefixes
        case 0x2b: // '+' merge file of includes
          if (!flags.merge || flags.noPrefixes) throw invalid();
          flags.noPrefixes = true;
          if (m === 0x2b) flags.include = true;
          break;
        case 0x2f: // '/'
          flags.absPath = true;
          break;
        case 0x21: // '!'
          // Negation belongs to a pattern, so it is no default for a merge file's rules.
          if (flags.merge) throw invalid();
          flags.negate = true;
          break;
        case 0x43: // 'C'
          if (flags.noPrefixes || sideFromName) throw invalid();
          throw new UsageError(`the 'C' (cvs-exclude) filter modifier is not supported: ${show(whole)}`);
        case 0x65: // 'e'
          if (!flags.merge) throw invalid();
          flags.excludeSelf = true;
          break;
        case 0x6e: // 'n'
          if (!flags.merge) throw invalid();
          flags.noInherit = true;
          break;
        case 0x70: // 'p'
          flags.perishable = true;
          break;
        case 0x72: // 'r'
          if (sideFromName) throw invalid();
          flags.receiverSide = true;
          break;
        case 0x73: // 's'
          if (sideFromName) throw invalid();
          flags.senderSide = true;
          break;
        case 0x77: // 'w'
          if (!flags.merge) throw invalid();
          flags.wordSplit = true;
          break;
        case 0x78: // 'x'
          throw new UsageError(`the 'x' (xattr) filter modifier is not supported (lsyncd does not copy xattrs): ${show(whole)}`);
        default:
          throw invalid();
      }
    }
    if (s < text.length) s++; // the separator (or, for '!', the rule character itself)
  }

  if (template.senderSide || template.receiverSide) {
    if (flags.senderSide || flags.receiverSide) {
      throw new UsageError(`specified-side merge file contains specified-side filter: ${show(whole)}`);
    }
    flags.senderSide = template.senderSide;
    flags.receiverSide = template.receiverSide;
  }

  let end = text.length;
  if (template.wordSplit) {
    end = s;
    while (end < text.length && !isSpace(text[end])) end++;
  }
  const len = end - s;
  if (flags.clearList) {
    if (!template.noPrefixes && syntax === Syntax.Full && len) {
      throw new UsageError(`'!' rule has trailing characters: ${show(whole)}`);
    }
    if (len > 1) flags.clearList = false;
  } else if (!len) {
    throw new UsageError(`unexpected end of filter rule: ${show(whole)}`);
  }
  return { flags, pattern: text.subarray(s, end), end };
}

// ---------------------------------------------------------------------------------------------
// Matching

const TRUE = 1;
const FALSE = 0;
const ABORT_ALL = -1;
const ABORT_TO_STARSTAR = -2;

// ASCII ctype, as in the C locale (bytes >= 0x80 are in no class)
function inClass(name: string, c: number): boolean | null {
  const upper = c >= 0x41 && c <= 0x5a;
  const lower = c >= 0x61 && c <= 0x7a;
  const digit = c >= 0x30 && c <= 0x39;
  const graph = c >= 0x21 && c <= 0x7e;
  switch (name) {
    case 'alnum':
      return upper || lower || digit;
    case 'alpha':
      return upper || lower;
    case 'blank':
      return c === 0x20 || c === 0x09;
    case 'cntrl':
      return c < 0x20 || c === 0x7f;
    case 'digit':
      return digit;
    case 'graph':
      return graph;
    case 'lower':
      return lower;
    case 'print':
      return graph || c === 0x20;
    case 'punct':
      return graph && !upper && !lower && !digit;
    case 'space':
      return isSpace(c);
    case 'upper':
      return upper;
    case 'xdigit':
      return digit || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
    default:
      return null;
  }
}

// wildmatch.c: dowild. Pattern and text are bytes; past the end reads as NUL, as in C.
function dowild(p: Uint8Array, pi: number, t: Uint8Array, ti: number): number {
  const P = (i: number): number => (i < p.length ? p[i]! : 0);
  for (; pi < p.length; ti++, pi++) {
    let pch = p[pi]!;
    let tch: number;
    if (ti >= t.length) {
      if (pch !== 0x2a) return ABORT_ALL;
      tch = 0;
    } else {
      tch = t[ti]!;
    }
    switch (pch) {
      case 0x5c: // '\\' escapes the next pattern byte (a trailing one matches nothing)
        pch = P(++pi);
        if (tch !== pch) return FALSE;
        continue;
      default:
        if (tch !== pch) return FALSE;
        continue;
      case 0x3f: // '?' is any byte but '/'
        if (tch === SLASH) return FALSE;
        continue;
      case 0x2a: {
        // '*' stops at '/'; '**' (or more) crosses it
        let special = false;
        if (P(++pi) === 0x2a) {
          while (P(++pi) === 0x2a) {}
          special = true;
        }
        if (pi >= p.length) {
          if (!special && t.indexOf(SLASH, ti) !== -1) return FALSE;
          return TRUE;
        }
        for (;;) {
          if (ti >= t.length) break;
          const matched = dowild(p, pi, t, ti);
          if (matched !== FALSE) {
            if (!special || matched !== ABORT_TO_STARSTAR) return matched;
          } else if (!special && t[ti] === SLASH) {
            return ABORT_TO_STARSTAR;
          }
          ti++;
        }
        return ABORT_ALL;
      }
      case 0x5b: {
        // '[...]' class; '!' or '^' negates; ']' first is literal; a-z ranges; [:name:]
        pch = P(++pi);
        if (pch === 0x5e) pch = 0x21;
        const negated = pch === 0x21;
        if (negated) pch = P(++pi);
        let prev = 0;
        let matched = false;
        do {
          if (!pch) return ABORT_ALL;
          if (pch === 0x5c) {
            pch = P(++pi);
            if (!pch) return ABORT_ALL;
            if (tch === pch) matched = true;
          } else if (pch === 0x2d && prev && P(pi + 1) && P(pi + 1) !== 0x5d) {
            pch = P(++pi);
            if (pch === 0x5c) {
              pch = P(++pi);
              if (!pch) return ABORT_ALL;
            }
            if (tch <= pch && tch >= prev) matched = true;
            pch = 0; // no range may start at a range's end
          } else if (pch === 0x5b && P(pi + 1) === 0x3a) {
            const s = pi + 2;
            pi = s;
            while ((pch = P(pi)) && pch !== 0x5d) pi++;
            if (!pch) return ABORT_ALL;
            const n = pi - s - 1;
            if (n < 0 || P(pi - 1) !== 0x3a) {
              // no ":]": the '[' is an ordinary member
              pi = s - 2;
              pch = 0x5b;
              if (tch === pch) matched = true;
              continue;
            }
            const hit = inClass(Buffer.from(p.subarray(s, s + n)).toString('latin1'), tch);
            if (hit === null) return ABORT_ALL; // unknown class name
            if (hit) matched = true;
            pch = 0;
          } else if (tch === pch) {
            matched = true;
          }
        } while (((prev = pch), (pch = P(++pi))) !== 0x5d);
        if (matched === negated || tch === SLASH) return FALSE;
        continue;
      }
    }
  }
  return ti >= t.length ? TRUE : FALSE;
}

// wildmatch.c: trailing_N_elements (the start of the last `count` '/'-separated elements)
function trailingElements(t: Uint8Array, count: number): number {
  for (let i = t.length - 1; i >= 0; i--) {
    if (t[i] === SLASH && !--count) return i + 1;
  }
  return count === 1 ? 0 : -1;
}

// wildmatch.c: wildmatch_array (where > 0: last N elements; < 0: at the start or after any '/')
function wildmatchWhere(p: Uint8Array, t: Uint8Array, where: number): boolean {
  let ti = 0;
  if (where > 0) {
    ti = trailingElements(t, where);
    if (ti < 0) return false;
  }
  let matched = dowild(p, 0, t, ti);
  if (matched !== TRUE && where < 0 && matched !== ABORT_ALL) {
    for (;;) {
      if (ti >= t.length) return false;
      if (t[ti++] === SLASH) {
        matched = dowild(p, 0, t, ti);
        if (matched !== FALSE && matched !== ABORT_TO_STARSTAR) break;
      }
    }
  }
  return matched === TRUE;
}

// wildmatch.c: litmatch_array (where > 0: last N elements)
function litmatchWhere(s: Uint8Array, t: Uint8Array, where: number): boolean {
  let ti = 0;
  if (where > 0) {
    ti = trailingElements(t, where);
    if (ti < 0) return false;
  }
  return Buffer.compare(Buffer.from(s.buffer, s.byteOffset, s.length), Buffer.from(t.buffer, t.byteOffset + ti, t.length - ti)) === 0;
}

/** A rule with what add_rule works out about its pattern. */
interface Compiled {
  rule: FilterRule;
  wild: boolean;
  wild2: boolean;
  wild2Prefix: boolean;
  wild3Suffix: boolean;
  slashCount: number;
  anchored: boolean;
  /** The pattern without its anchoring '/'. */
  body: Buffer;
}

// exclude.c: add_rule (the FILTRULE_WILD* flags and slash count)
function compileRule(rule: FilterRule): Compiled {
  const pat = rule.pattern;
  let slashCount = 0;
  for (const c of pat) if (c === SLASH) slashCount++;
  const wild = pat.includes(0x2a) || pat.includes(0x5b) || pat.includes(0x3f);
  const star2 = wild ? pat.indexOf('**') : -1;
  const n = pat.length;
  return {
    rule,
    wild,
    wild2: star2 !== -1,
    wild2Prefix: star2 === 0,
    wild3Suffix: star2 !== -1 && n >= 3 && pat[n - 1] === 0x2a && pat[n - 2] === 0x2a && pat[n - 3] === 0x2a,
    slashCount,
    anchored: pat[0] === SLASH,
    body: pat[0] === SLASH ? pat.subarray(1) : pat,
  };
}

/** Reads a per-directory merge file: `path` is relative to the transfer root, or absolute for the
 * parent directories a dir-merge name with a leading '/' asks to scan. null when there is none. */
export type DirMergeReader = (path: string, rawPath: Buffer) => string | Uint8Array | null;

export interface MatcherOptions {
  /**
   * Whose rules apply: 'sender' (the default; a push, our local file list) skips receiver-only
   * rules (`r`, protect/risk); 'receiver' (a pull, protecting files from --delete) skips
   * sender-only rules (`s`, hide/show), and with `deleteExcluded` the plain ones too.
   */
  side?: 'sender' | 'receiver';
  deleteExcluded?: boolean;
  /**
   * Absolute path of the transfer root; needed only by rules with the `/` modifier and by
   * dir-merge names with a leading '/' (their parent directories are scanned).
   */
  absRoot?: string | Uint8Array;
  /** Skip perishable (`p`) rules, as the receiver does while deleting. */
  ignorePerishable?: boolean;
  /** Needed when the list has dir-merge rules. */
  readDirMergeFile?: DirMergeReader;
  /** --from0 for per-directory files (default: the FilterList's). */
  from0?: boolean;
}

/**
 * Compiled rules for the entries of one directory. Paths are relative to the transfer root,
 * '/'-separated, no leading '/'. The matcher compileFilter returns is the transfer root's.
 */
export interface FilterMatcher {
  /** check_filter: -1 excluded, 1 included, 0 when no rule matched. */
  check(relPath: string | Uint8Array, isDir: boolean): -1 | 0 | 1;
  /**
   * True when the name is excluded. An excluded directory must not be descended into: rsync never
   * looks inside it, so an include rule for something below it has no effect.
   */
  isExcluded(relPath: string | Uint8Array, isDir: boolean): boolean;
  /**
   * The matcher for the entries of directory `relDir` (a subdirectory of this one, not excluded),
   * with its per-directory merge files read (push_local_filters). Returns `this` when the list
   * has no dir-merge rules.
   */
  enter(relDir: string | Uint8Array): FilterMatcher;
  /** No rule can apply on this side: every name is kept (lets a walker skip the checks). */
  readonly empty: boolean;
}

/** One step of check_filter: a rule, or the slot of a dir-merge rule's per-directory rules. */
type Entry = { kind: 'rule'; c: Compiled } | { kind: 'slot'; slot: number; rule: FilterRule; name: Buffer };

interface Shared {
  from0: boolean;
  entries: Entry[];
  slots: Array<Extract<Entry, { kind: 'slot' }>>;
  options: MatcherOptions;
  absPrefix: Buffer | null;
}

function applies(rule: FilterRule, options: MatcherOptions): boolean {
  // exclude.c: send_rules marks each rule local, remote or both; rule_matches skips remote ones
  const side = options.side ?? 'sender';
  if (side === 'sender' && rule.receiverSide && !rule.senderSide) return false;
  if (side === 'receiver') {
    if (rule.senderSide && !rule.receiverSide) return false;
    if (options.deleteExcluded && !rule.senderSide && !rule.receiverSide && !(rule.dirMerge && !rule.dirMerge.noPrefixes)) return false;
  }
  if (options.ignorePerishable && rule.perishable) return false;
  return true;
}

function absRootBytes(options: MatcherOptions, why: Buffer): Buffer {
  if (options.absRoot === undefined) {
    throw new UsageError(`the filter rule ${show(why)} needs the transfer root's absolute path`);
  }
  let root = toBytes(options.absRoot);
  while (root.length > 1 && root[root.length - 1] === SLASH) root = root.subarray(0, root.length - 1);
  if (root[0] !== SLASH) throw new UsageError(`the transfer root ${show(root)} is not an absolute path`);
  return root;
}

/** Compile rules for matching (first match wins, in list order). */
export function compileFilter(rules: FilterList | readonly FilterRule[], options: MatcherOptions = {}): FilterMatcher {
  const list = rules instanceof FilterList ? rules.rules : rules;
  const shared: Shared = { entries: [], slots: [], options, absPrefix: null, from0: options.from0 ?? (rules instanceof FilterList && rules.from0) };
  const needAbs = (why: Buffer): void => {
    if (shared.absPrefix !== null) return;
    const root = absRootBytes(options, why);
    // rule_matches prefixes the current directory without its leading '/', then a '/'
    shared.absPrefix = root.length > 1 ? Buffer.concat([root.subarray(1), SLASH_BUF]) : Buffer.alloc(0);
  };
  if (options.absRoot !== undefined) needAbs(Buffer.alloc(0));
  for (const rule of list) {
    if (!applies(rule, options)) continue;
    if (rule.dirMerge) {
      if (!options.readDirMergeFile) {
        throw new UsageError(`dir-merge rule ${show(rule.pattern)} needs a per-directory file reader`);
      }
      const name = rule.pattern.subarray(rule.pattern.lastIndexOf(SLASH) + 1);
      const entry = { kind: 'slot' as const, slot: shared.slots.length, rule, name };
      shared.slots.push(entry);
      shared.entries.push(entry);
      continue;
    }
    if (rule.absPath) needAbs(rule.pattern);
    shared.entries.push({ kind: 'rule', c: compileRule(rule) });
  }
  const top = new Scope(shared, shared.slots.map(() => []));
  if (!shared.slots.length) return top;
  // setup_merge_file: a dir-merge name with a '/' that names a parent of the transfer root has the
  // file read in every directory from there down to the root's parent, as inherited rules.
  const inherited: Compiled[][] = shared.slots.map(() => []);
  for (const slot of shared.slots) {
    const pat = slot.rule.pattern;
    if (pat.indexOf(SLASH) === -1) continue;
    const root = absRootBytes(options, pat);
    const dir = pat.subarray(0, pat.lastIndexOf(SLASH));
    const start = cleanPath(pat[0] === SLASH ? dir : Buffer.concat([root, SLASH_BUF, dir]));
    const rootDirs = splitPath(root);
    const startDirs = splitPath(start);
    if (startDirs.length > rootDirs.length || !startDirs.every((d, i) => d.equals(rootDirs[i]!))) continue;
    for (let depth = startDirs.length; depth < rootDirs.length; depth++) {
      const abs = Buffer.concat(rootDirs.slice(0, depth).flatMap((d) => [SLASH_BUF, d]));
      const file = Buffer.concat([abs, SLASH_BUF, slot.name]);
      const local = readPerDir(shared, slot, file, { abs });
      inherited[slot.slot] = slot.rule.dirMerge!.noInherit ? [] : [...local.rules, ...(local.cleared ? [] : inherited[slot.slot]!)];
    }
  }
  return new Scope(shared, inherited).enterDir(Buffer.alloc(0));
}

// util.c: clean_fname (collapse '//', '.', and '..' of an absolute path)
function cleanPath(p: Buffer): Buffer {
  const out: Buffer[] = [];
  for (const part of splitPath(p)) {
    if (part.length === 1 && part[0] === 0x2e) continue;
    if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) out.pop();
    else out.push(part);
  }
  return Buffer.concat(out.flatMap((d) => [SLASH_BUF, d]));
}

function splitPath(p: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let from = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i === p.length || p[i] === SLASH) {
      if (i > from) parts.push(p.subarray(from, i));
      from = i + 1;
    }
  }
  return parts;
}

// exclude.c: parse_filter_file for one per-directory file (XFLG_ANCHORED2ABS)
function readPerDir(
  shared: Shared,
  slot: Extract<Entry, { kind: 'slot' }>,
  path: Buffer,
  perDir: { rel: Buffer } | { abs: Buffer },
): { rules: Compiled[]; cleared: boolean } {
  const text = shared.options.readDirMergeFile!(path.toString('utf8'), Buffer.from(path));
  if (text === null) return { rules: [], cleared: false };
  const dm = slot.rule.dirMerge!;
  const template: Flags = {
    ...noFlags(),
    include: slot.rule.include,
    absPath: slot.rule.absPath,
    perishable: slot.rule.perishable,
    senderSide: slot.rule.senderSide,
    receiverSide: slot.rule.receiverSide,
    noPrefixes: dm.noPrefixes,
    wordSplit: dm.wordSplit,
  };
  const ctx: ParseContext = {
    rules: [],
    readMergeFile: undefined,
    deleteExcluded: !!shared.options.deleteExcluded,
    depth: 0,
    perDir,
    cleared: false,
    from0: shared.from0,
  };
  parseFile(ctx, toBytes(text), template, dm.noPrefixes ? Syntax.Old : Syntax.Full);
  const out: Compiled[] = [];
  for (const rule of ctx.rules) {
    // add_rule drops a per-directory rule meant only for the other side
    if (!applies(rule, { ...shared.options, deleteExcluded: false })) continue;
    if (rule.absPath && shared.absPrefix === null) absRootBytes(shared.options, rule.pattern);
    out.push(compileRule(rule));
  }
  return { rules: out, cleared: ctx.cleared };
}

class Scope implements FilterMatcher {
  readonly empty: boolean;
  constructor(
    private readonly shared: Shared,
    /** Per dir-merge slot: this directory's rules, then the inherited ones. */
    private readonly slotRules: Compiled[][],
  ) {
    this.empty = shared.entries.length === 0;
  }

  // exclude.c: check_filter
  check(relPath: string | Uint8Array, isDir: boolean): -1 | 0 | 1 {
    const name = toBytes(relPath);
    const abs = this.shared.absPrefix;
    for (const e of this.shared.entries) {
      if (e.kind === 'rule') {
        if (ruleMatches(name, e.c, isDir, abs)) return e.c.rule.include ? 1 : -1;
        continue;
      }
      for (const c of this.slotRules[e.slot]!) {
        if (ruleMatches(name, c, isDir, abs)) return c.rule.include ? 1 : -1;
      }
    }
    return 0;
  }

  isExcluded(relPath: string | Uint8Array, isDir: boolean): boolean {
    return this.check(relPath, isDir) < 0;
  }

  enter(relDir: string | Uint8Array): FilterMatcher {
    if (!this.shared.slots.length) return this;
    let rel = toBytes(relDir);
    while (rel[0] === SLASH) rel = rel.subarray(1);
    while (rel.length && rel[rel.length - 1] === SLASH) rel = rel.subarray(0, rel.length - 1);
    return this.enterDir(rel);
  }

  // exclude.c: push_local_filters
  enterDir(rel: Buffer): Scope {
    const next = this.shared.slots.map((slot) => {
      const path = rel.length ? Buffer.concat([rel, SLASH_BUF, slot.name]) : slot.name;
      const local = readPerDir(this.shared, slot, path, { rel });
      const inherited = slot.rule.dirMerge!.noInherit || local.cleared ? [] : this.slotRules[slot.slot]!;
      return local.rules.length ? [...local.rules, ...inherited] : inherited;
    });
    return new Scope(this.shared, next);
  }
}

// exclude.c: rule_matches
function ruleMatches(fname: Buffer, c: Compiled, isDir: boolean, absPrefix: Buffer | null): boolean {
  const hit = !c.rule.negate;
  let name = fname[0] === SLASH ? fname.subarray(1) : fname;
  if (name.length === 0) return false;
  const parts: Uint8Array[] = [];
  if (!c.slashCount && !c.wild2) {
    // No '/' and no '**': only the last component is matched.
    name = name.subarray(name.lastIndexOf(SLASH) + 1);
  } else if (c.rule.absPath && absPrefix && absPrefix.length) {
    parts.push(absPrefix);
  } else if (c.wild2Prefix) {
    // Lets a leading "**/" match at the very start.
    parts.push(SLASH_BUF);
  }
  parts.push(name);
  if (isDir) {
    // Lets a trailing "/***" match the directory itself.
    if (c.wild3Suffix) parts.push(SLASH_BUF);
  } else if (c.rule.dirOnly) {
    // Quirk kept from rsync: a negated dir-only rule matches every non-directory.
    return !hit;
  }
  const text = parts.length === 1 ? name : Buffer.concat(parts);
  let where: number;
  if (!c.anchored && c.slashCount && !c.wild2) where = c.slashCount + 1;
  else if (!c.anchored && !c.wild2Prefix && c.wild2) where = -1;
  else where = 0;

  let matched: boolean;
  if (c.wild) matched = wildmatchWhere(c.body, text, where);
  else if (parts.length > 1) matched = litmatchWhere(c.body, text, where);
  else if (c.anchored) matched = name.equals(c.body);
  else {
    const l1 = name.length;
    const l2 = c.body.length;
    matched = l2 <= l1 && name.subarray(l1 - l2).equals(c.body) && (l1 === l2 || name[l1 - l2 - 1] === SLASH);
  }
  return matched ? hit : !hit;
}

/** rsync's wildmatch() on its own: the whole text against the pattern. */
export function wildmatch(pattern: string | Uint8Array, text: string | Uint8Array): boolean {
  return dowild(toBytes(pattern), 0, toBytes(text), 0) === TRUE;
}

// ---------------------------------------------------------------------------------------------
// The wire

export interface SendFilterOptions {
  /** --delete-excluded: plain include/exclude rules stay local. */
  deleteExcluded: boolean;
  /** Our role: 'sender' for a push (the default), 'receiver' for a pull. */
  role?: 'sender' | 'receiver';
}

/**
 * Whether a push sends a filter list at all (send_filter_list's receiver_wants_list): only for [filter-when]
 * --delete* (before protocol 29 not with --delete-excluded) or --prune-empty-dirs. A pull always
 * sends one.
 */
export function receiverWantsFilterList(o: {
  protocol: number;
  deleteMode: boolean;
  deleteExcluded: boolean;
  pruneEmptyDirs: boolean;
}): boolean {
  return o.pruneEmptyDirs || (o.deleteMode && (!o.deleteExcluded || o.protocol >= 29));
}

// exclude.c: get_rule_prefix (for_xfer): the prefix as the peer's protocol can take it, or null
function rulePrefix(rule: FilterRule, protocol: number, amSender: boolean, deleteExcluded: boolean): string | null {
  let legal = protocol < 29 ? 1 : MAX_PREFIX;
  let op = '';
  const pat = rule.pattern;
  if (rule.dirMerge) {
    if (legal === 1) return null;
    op += ':';
  } else if (rule.include) op += '+';
  else if (legal !== 1 || ((pat[0] === 0x2d || pat[0] === 0x2b) && pat[1] === SP)) op += '-';
  else legal = 0; // old protocols: a bare pattern is an exclude
  if (rule.absPath) op += '/';
  if (rule.negate) op += '!';
  if (rule.dirMerge) {
    if (rule.dirMerge.noInherit) op += 'n';
    if (rule.dirMerge.wordSplit) op += 'w';
    if (rule.dirMerge.noPrefixes) op += rule.include ? '+' : '-';
  }
  if (rule.senderSide && protocol >= 29) op += 's';
  // Before 29 an 'r' is only added for --delete-excluded, which then makes the rule too modern.
  if (rule.receiverSide && (protocol >= 29 || (deleteExcluded && amSender))) op += 'r';
  if (rule.perishable) {
    if (protocol >= 30) op += 'p';
    else if (amSender) return null;
  }
  if (op.length > legal) return null;
  return legal ? op + ' ' : op;
}

/** Which rules travel and the text each goes as (send_rules without the writing). */
export function filterListTexts(
  rules: FilterList | readonly FilterRule[],
  protocol: number,
  options: SendFilterOptions,
): Buffer[] {
  const list = rules instanceof FilterList ? rules.rules : rules;
  const amSender = (options.role ?? 'sender') === 'sender';
  const out: Buffer[] = [];
  for (const rule of list) {
    // exclude.c: send_rules decides local-only (not sent) per rule
    let local = false;
    let remote = false;
    if (rule.senderSide) (amSender ? (local = true) : (remote = true));
    if (rule.receiverSide) {
      if (local || remote) local = remote = false; // both sides: sent and used locally
      else if (amSender) remote = true;
      else local = true;
    } else if (options.deleteExcluded && !local && !remote && (!rule.dirMerge || rule.dirMerge.noPrefixes)) {
      if (amSender) local = true;
      else remote = true;
    }
    if (local) continue;
    const prefix = rulePrefix(rule, protocol, amSender, options.deleteExcluded);
    if (prefix === null) {
      throw new UsageError(`filter rules are too modern for remote rsync (protocol ${protocol}): ${show(rule.pattern)}`, EXIT.PROTOCOL);
    }
    const text = Buffer.concat([Buffer.from(prefix, 'latin1'), rule.pattern, Buffer.from(rule.dirOnly ? '/' : '')]);
    if (text.length) out.push(text);
  }
  return out;
}

/**
 * The client's filter list: `{int32 len; text}` per rule that travels, then int32 0, using
 * `writer.protocol` for the prefixes. The caller flushes (and decides whether a push sends a list
 * at all: receiverWantsFilterList).
 */
// exclude.c: send_filter_list [filter-format] [filter-which]
export function sendFilterList(writer: ByteWriter, rules: FilterList | readonly FilterRule[], options: SendFilterOptions): void {
  for (const text of filterListTexts(rules, writer.protocol, options)) {
    writer.writeInt(text.length);
    writer.writeBuf(text);
  }
  writer.writeInt(0);
}

/**
 * Longest rule text a server takes from the client: rsync reads each into a BIGPATHBUFLEN buffer
 * (4096 + 1024 on Linux) with room for the NUL, and gives up on a longer one.
 */
export const MAX_FILTER_RULE = 4096 + 1024 - 1;

export interface RecvFilterOptions {
  /** Our role as the server: a sender always reads the client's list, a receiver only when it wants one. */
  role: 'sender' | 'receiver';
  /** The client's --delete* options and --prune-empty-dirs, as in receiverWantsFilterList. */
  deleteMode: boolean;
  deleteExcluded: boolean;
  pruneEmptyDirs: boolean;
  /** The connection's memory cap: each rule is charged before it is kept (a peer may send any number). */
  budget?: MemoryBudget;
}

/** What one kept rule costs beyond its text (the rule object, its compiled pattern parts): an estimate. */
const FILTER_RULE_BYTES = 512;

/**
 * The server's half: read the client's filter list (`{int32 len; text}`..., int32 0), each rule
 * parsed as rsync's server parses it: the full syntax from protocol 29, the old `- `/`+ ` prefixes
 * before. With --delete-excluded an unsided rule becomes sender-side, as on the client. Rules we
 * cannot honour are refused as rsync refuses a bad rule (UsageError, exit 1): `merge`, which would
 * read a file of the daemon's, and the `C` modifier. Returns the rules, or an empty list when none
 * travel.
 */
// exclude.c: recv_filter_list [filter-format] [side-filter]
export async function recvFilterList(reader: ByteReader, options: RecvFilterOptions): Promise<FilterList> {
  const list = new FilterList({ deleteExcluded: options.deleteExcluded });
  const travels = options.role === 'sender' || receiverWantsFilterList({ ...options, protocol: reader.protocol });
  if (!travels) return list;
  for (;;) {
    const length = await reader.readInt();
    if (length === 0) return list;
    if (length < 0 || length > MAX_FILTER_RULE) {
      throw new ProtocolError(`filter rule of ${length} bytes from the client (at most ${MAX_FILTER_RULE})`);
    }
    options.budget?.charge(FILTER_RULE_BYTES + 2 * length, 'filter list');
    let text = await reader.readBuf(length);
    const nul = text.indexOf(0);
    if (nul !== -1) text = text.subarray(0, nul); // rsync holds the rule as a C string
    if (reader.protocol >= 29) list.addFilter(text);
    else list.addExclude(text);
  }
}
