// rsyncd.conf as rsync reads it, parsed once into typed objects (docs/protocol.md [module]: the
// daemon's side of the module line needs a module table). The lexer follows params.c character by
// character (comments, continuation lines, whitespace folding in names, `&include`/`&merge`); the
// section semantics follow loadparm.c (the global section's values are the defaults of every module
// that comes after them, `--dparam` applies at the end of the first global section, a repeated
// module name reopens the earlier module). Defaults are rsync 3.5.0's daemon-parm.txt.
// Counterpart: rsync params.c (pm_process, Parse, Section, Parameter, include_config), loadparm.c
// (lp_load, do_section, do_parameter, map_parameter, set_boolean, set_dparams, lp_number),
// clientserver.c rsync_module (the connection-time defaults of use chroot, munge symlinks,
// numeric ids, uid, gid).
import { ChmodSyntaxError, parseChmod } from '../../protocol/chmod.js';
import { lstatSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RsyncError, EXIT } from '../../protocol/errors.js';
import { wildmatch } from '../../protocol/filter.js';
import { parseAuthUsers, type AuthUserRule } from './auth.js';
import { confStrtok } from './conf-list.js';

export type { AuthUserRule } from './auth.js';

/**
 * A config file rsync would refuse, or one we refuse on purpose where rsync only logs and goes on
 * with a value the operator did not mean: a line without `=`, a bad boolean, a non-numeric
 * integer, a NUL byte; also includes nested too deep. Exit code 1, as rsync's RERR_SYNTAX.
 */
export class ConfigError extends RsyncError {
  readonly file: string;
  /** 1-based line of the offending construct, or 0 when the error is not about one line. */
  readonly line: number;
  constructor(file: string, line: number, reason: string, options?: { cause?: unknown }) {
    super('ERR_RSYNC_CONFIG', line ? `${file}:${line}: ${reason}` : `${file}: ${reason}`, EXIT.SYNTAX, options);
    this.file = file;
    this.line = line;
  }
}

/** rsync's RSYNC_PORT: what `port = 0` (the default) means. */
export const DEFAULT_RSYNC_PORT = 873;
/** rsync.h DEFAULT_LOCK_FILE. */
export const DEFAULT_LOCK_FILE = '/var/run/rsyncd.lock';
/** rsync 3.5.0's DEFAULT_DONT_COMPRESS (generated from rsync.1.md's --skip-compress list). */
export const DEFAULT_DONT_COMPRESS =
  '*.3g2 *.3gp *.7z *.aac *.ace *.apk *.avi *.bz2 *.deb *.dmg *.ear *.f4v *.flac *.flv *.gpg *.gz *.iso *.jar ' +
  '*.jpeg *.jpg *.lrz *.lz *.lz4 *.lzma *.lzo *.m1a *.m1v *.m2a *.m2ts *.m2v *.m4a *.m4b *.m4p *.m4r *.m4v *.mka ' +
  '*.mkv *.mov *.mp1 *.mp2 *.mp3 *.mp4 *.mpa *.mpeg *.mpg *.mpv *.mts *.odb *.odf *.odg *.odi *.odm *.odp *.ods ' +
  '*.odt *.oga *.ogg *.ogm *.ogv *.ogx *.opus *.otg *.oth *.otp *.ots *.ott *.oxt *.png *.qt *.rar *.rpm *.rz ' +
  '*.rzip *.spx *.squashfs *.sxc *.sxd *.sxg *.sxm *.sxw *.sz *.tbz *.tbz2 *.tgz *.tlz *.ts *.txz *.tzo *.vob ' +
  '*.war *.webm *.webp *.xz *.z *.zip *.zst';
/** rsync's default `log format`. */
export const DEFAULT_LOG_FORMAT = '%o %h [%a] %m (%u) %f %l';
/** configure.ac NOBODY_USER. */
export const NOBODY_USER = 'nobody';

/** Most bytes of one config file we read (rsync has no bound; a config is small). */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
/** Deepest `&include`/`&merge` nesting (rsync has none: a file including itself recurses forever). */
export const MAX_INCLUDE_DEPTH = 16;
/** Most files one load reads through `&include`/`&merge`. */
export const MAX_INCLUDED_FILES = 1000;

/** The server-wide parameters (daemon-parm.txt "Globals"), plus the global section's log file. */
export interface GlobalConfig {
  /** `port`; rsync's 0 ("unset") already turned into 873. */
  port: number;
  address?: string;
  motdFile?: string;
  /** `log file` as set in the global section (the daemon's own log; modules may override theirs). */
  logFile?: string;
  pidFile?: string;
  socketOptions?: string;
  listenBacklog: number;
  daemonChroot?: string;
  daemonUid?: string;
  daemonGid?: string;
  proxyProtocol: boolean;
  proxyProtocolHosts?: string;
  /** `syslog facility` of the global section: the name as given (lower case) or a number. */
  syslogFacility: string;
  syslogTag: string;
  /**
   * `reverse lookup` of the global section (lp_reverse_lookup(-1)): when on, every connection's
   * host name is looked up, whatever its module says (see access.ts moduleNeedsReverseLookup).
   */
  reverseLookup: boolean;
}

/** Where a daemon-side filter rule comes from, in the order rsync_module adds them. */
export interface DaemonFilterSource {
  kind: 'filter' | 'include from' | 'include' | 'exclude from' | 'exclude';
  /** The parameter's value, verbatim (`filter`/`include`/`exclude` are word-split lists of rules). */
  value: string;
}

/** One `[module]`, the global defaults applied and the connection-time defaults resolved. */
export interface ModuleConfig {
  name: string;
  /** '' when the module has none: rsync refuses the module when a client opens it (missingPathError). */
  path: string;
  comment: string;
  list: boolean;
  readOnly: boolean;
  writeOnly: boolean;
  /** Resolved as rsync_module does for "unset": yes when the path has a `/./` or we run as root. */
  useChroot: boolean;
  /** Resolved as rsync_module does for "unset": on unless chrooted to the module root. */
  mungeSymlinks: boolean;
  /** Resolved as rsync_module does for "unset": on when chrooted (and no name converter). */
  numericIds: boolean;
  authUsers: AuthUserRule[];
  /** `auth users` verbatim (the source of authUsers). */
  authUsersText?: string;
  secretsFile?: string;
  strictModes: boolean;
  /** Lower-cased tokens (rsync lower-cases the list and splits it on space, comma and tab). */
  hostsAllow?: string[];
  hostsDeny?: string[];
  reverseLookup: boolean;
  forwardLookup: boolean;
  /** `uid`, or "nobody" when unset and running as root (rsync_module). */
  uid?: string;
  /** `gid` split as conf_strtok does, or [nobody group] when unset and running as root. */
  gid?: string[];
  maxConnections: number;
  lockFile: string;
  timeout: number;
  logFormat: string;
  transferLogging: boolean;
  /** `refuse options`, split on spaces as set_refuse_options does (`!name` kept as written). */
  refuseOptions: string[];
  /** `dont compress`, split on spaces, lower-cased as init_set_compression does. */
  dontCompress: string[];
  ignoreErrors: boolean;
  ignoreNonreadable: boolean;
  incomingChmod?: string;
  outgoingChmod?: string;
  /**
   * exclude/include/filter/exclude from/include from as rule texts, in rsync_module's order
   * (filter, include from, include, exclude from, exclude): each `filter` rule and each
   * `include`/`exclude` word as one rule (`+ pat` / `- pat`), each from-file as `merge,+ FILE` /
   * `merge,- FILE` (the file is read when a client opens the module, as rsync reads it).
   */
  filterRules: string[];
  /** The same rules as the parameters gave them (for a parser that wants rsync's exact flags). */
  daemonFilter: DaemonFilterSource[];
  maxVerbosity: number;
  fakeSuper: boolean;
  tempDir?: string;
  charset?: string;
  /** Kept but never run by lsyncd serve (a warning says so at load). */
  earlyExec?: string;
  preXferExec?: string;
  postXferExec?: string;
  nameConverter?: string;
  /** A module's own `log file` (or the global one). */
  logFile?: string;
  syslogFacility: string;
  syslogTag: string;
  authDigest?: string;
  insecureLinks: boolean;
  /** `open noatime`: undefined when unset. */
  openNoatime?: boolean;
  /** Where the module's section header first appeared. */
  declaredAt: { file: string; line: number };
}

export interface DaemonConfig {
  file: string;
  global: GlobalConfig;
  /** In the order rsync lists them (first appearance). */
  modules: ModuleConfig[];
  /** rsync's log lines for what it ignores (unknown parameter, ...), each with its file:line. */
  warnings: string[];
}

/** A directory met by `&include`/`&merge`: the names of its entries. */
export interface IncludeDirectory {
  directory: string[];
}

export interface ParseOptions {
  /** The file name used in errors and as the base of nothing (rsync resolves includes from the cwd). */
  file: string;
  /** `--dparam NAME=VALUE` pairs, applied as if set at the end of the first global section. */
  dparams?: Record<string, string>;
  /** Reads an `&include`/`&merge` target: a file's text or a directory's entry names. */
  include?: (path: string) => string | IncludeDirectory;
  /** Whether the daemon runs as root (default: our euid is 0): decides the uid/gid/use chroot defaults. */
  asRoot?: boolean;
  /** The group rsync's configure picked for "nobody" (default: nobody or nogroup, from /etc/group). */
  nobodyGroup?: string;
  /** Environment for `%VAR%` in non-string parameters, expanded at load as rsync does (default process.env). */
  env?: Record<string, string | undefined>;
}

// --- the parameter table (daemon-parm.txt) ---

type ParmType = 'string' | 'path' | 'integer' | 'bool' | 'bool3' | 'enum';
type Value = string | number | boolean | null;

interface Parm {
  /** Public name, as rsync's table spells it. */
  label: string;
  key: string;
  type: ParmType;
  global: boolean;
  def: Value;
}

const P = (label: string, type: ParmType, global: boolean, def: Value): Parm => ({
  label,
  key: label,
  type,
  global,
  def,
});

// rsync/daemon-parm.txt (3.5.0): the public names and defaults. null = NULL / Unset.
const PARM_TABLE: readonly Parm[] = [
  P('address', 'string', true, null),
  P('daemon chroot', 'string', true, null),
  P('daemon gid', 'string', true, null),
  P('daemon uid', 'string', true, null),
  P('motd file', 'string', true, null),
  P('pid file', 'string', true, null),
  P('proxy protocol hosts', 'string', true, null),
  P('socket options', 'string', true, null),
  P('listen backlog', 'integer', true, 5),
  P('port', 'integer', true, 0),
  P('proxy protocol', 'bool', true, false),

  P('auth digest', 'string', false, null),
  P('auth users', 'string', false, null),
  P('charset', 'string', false, null),
  P('comment', 'string', false, null),
  P('dont compress', 'string', false, DEFAULT_DONT_COMPRESS),
  P('early exec', 'string', false, null),
  P('exclude', 'string', false, null),
  P('exclude from', 'string', false, null),
  P('filter', 'string', false, null),
  P('gid', 'string', false, null),
  P('hosts allow', 'string', false, null),
  P('hosts deny', 'string', false, null),
  P('include', 'string', false, null),
  P('include from', 'string', false, null),
  P('incoming chmod', 'string', false, null),
  P('lock file', 'string', false, DEFAULT_LOCK_FILE),
  P('log file', 'string', false, null),
  P('log format', 'string', false, DEFAULT_LOG_FORMAT),
  P('name', 'string', false, null),
  P('name converter', 'string', false, null),
  P('outgoing chmod', 'string', false, null),
  P('post-xfer exec', 'string', false, null),
  P('pre-xfer exec', 'string', false, null),
  P('refuse options', 'string', false, null),
  P('secrets file', 'string', false, null),
  P('syslog tag', 'string', false, 'rsyncd'),
  P('uid', 'string', false, null),
  P('path', 'path', false, null),
  P('temp dir', 'path', false, null),
  P('max connections', 'integer', false, 0),
  P('max verbosity', 'integer', false, 1),
  P('timeout', 'integer', false, 0),
  P('syslog facility', 'enum', false, 'daemon'),
  P('fake super', 'bool', false, false),
  P('forward lookup', 'bool', false, true),
  P('ignore errors', 'bool', false, false),
  P('ignore nonreadable', 'bool', false, false),
  P('insecure links', 'bool', false, false),
  P('list', 'bool', false, true),
  P('read only', 'bool', false, true),
  P('reverse lookup', 'bool', false, true),
  P('strict modes', 'bool', false, true),
  P('transfer logging', 'bool', false, false),
  P('write only', 'bool', false, false),
  P('munge symlinks', 'bool3', false, null),
  P('numeric ids', 'bool3', false, null),
  P('open noatime', 'bool3', false, null),
  P('use chroot', 'bool3', false, null),
];

// rsync/loadparm.c: enum_syslog_facility (the names glibc defines)
const SYSLOG_FACILITIES = [
  'auth', 'authpriv', 'cron', 'daemon', 'ftp', 'kern', 'lpr', 'mail', 'news', 'security', 'syslog', 'user',
  'uucp', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7',
];

/** C isspace in the C locale. */
function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
}

/** The key strwiEQ compares by: white space removed, upper-cased (ASCII only, as toupper in C). */
function wiKey(s: string): string {
  return s.replace(/[ \t\n\v\f\r]/g, '').replace(/[a-z]/g, (c) => c.toUpperCase());
}

/** Case-insensitive, white-space-ignoring equality. */
// rsync/loadparm.c: strwiEQ
export function strwiEQ(a: string, b: string): boolean {
  return wiKey(a) === wiKey(b);
}

const PARM_BY_KEY = new Map(PARM_TABLE.map((p) => [wiKey(p.label), p]));

/** The table entry a parameter name names, or undefined. Underscores are not spaces: `read_only` is unknown, `readonly` is `read only`. */
// rsync/loadparm.c: map_parameter
function mapParameter(name: string): Parm | undefined {
  if (name.startsWith('-')) return undefined;
  return PARM_BY_KEY.get(wiKey(name));
}

/** Expand `%VAR%` from `env`; anything unknown or malformed stays as written. */
// rsync/loadparm.c: expand_vars (the unquoted variant used for ordinary parameters)
export function expandConfigVars(value: string, env: Record<string, string | undefined>): string {
  if (!value.includes('%')) return value;
  let out = '';
  for (let i = 0; i < value.length; ) {
    if (value[i] === '%' && /[A-Z]/.test(value[i + 1] ?? '')) {
      const close = value.indexOf('%', i + 1);
      const found = close > 0 ? env[value.slice(i + 1, close)] : undefined;
      if (found !== undefined) {
        out += found;
        i = close + 1;
        continue;
      }
    }
    out += value[i++];
  }
  return out;
}

// --- the lexer (params.c) ---

const EOF = '';

interface Located {
  file: string;
  line: number;
}

/** One file's characters, read as params.c reads them with getc, counting lines. */
class ConfigReader {
  private pos = 0;
  line = 1;
  constructor(
    readonly file: string,
    private readonly text: string,
  ) {}

  getc(): string {
    if (this.pos >= this.text.length) return EOF;
    const c = this.text[this.pos++]!;
    if (c === '\n') this.line++;
    return c;
  }

  /** Skip white space other than newline; return the next character. */
  // rsync/params.c: EatWhitespace
  eatWhitespace(): string {
    let c = this.getc();
    while (c !== EOF && c !== '\n' && isSpace(c)) c = this.getc();
    return c;
  }

  /** Skip to the end of the line; return the newline or EOF. */
  // rsync/params.c: EatComment
  eatComment(): string {
    let c = this.getc();
    while (c !== '\n' && c !== EOF) c = this.getc();
    return c;
  }

  /** The line of the character last read (a newline just read counts to the line it ends). */
  get lineOfLast(): number {
    return this.text[this.pos - 1] === '\n' ? this.line - 1 : this.line;
  }
}

/** The offset of a `\` that is the last non-space before `pos`, or -1. */
// rsync/params.c: Continuation
function continuation(buf: string[], pos: number): number {
  pos--;
  while (pos >= 0 && isSpace(buf[pos]!)) pos--;
  return pos >= 0 && buf[pos] === '\\' ? pos : -1;
}

/** What the section/parameter handlers need to know about where a token came from. */
interface Handlers {
  section(name: string, at: Located): void;
  parameter(name: string, value: string, at: Located): void;
  directive(name: string, value: string, at: Located): void;
}

/** Read a section header after its `[`. */
// rsync/params.c: Section
function readSection(r: ConfigReader, h: Handlers): void {
  const at = { file: r.file, line: r.line };
  const buf: string[] = [];
  let i = 0;
  let end = 0;
  let c = r.eatWhitespace();
  while (c !== EOF) {
    if (c === ']') {
      const name = buf.slice(0, end).join('');
      if (end === 0) throw new ConfigError(at.file, at.line, 'Empty section name in config file.');
      h.section(name, at);
      r.eatComment();
      return;
    }
    if (c === '\n') {
      i = continuation(buf, i);
      if (i < 0) {
        throw new ConfigError(at.file, at.line, `Badly formed line in config file: ${buf.slice(0, end).join('')}`);
      }
      end = i > 0 && buf[i - 1] === ' ' ? i - 1 : i;
      c = r.getc();
    } else if (isSpace(c)) {
      buf[end] = ' ';
      i = end + 1;
      c = r.eatWhitespace();
    } else {
      buf[i++] = c;
      end = i;
      c = r.getc();
    }
  }
  throw new ConfigError(at.file, at.line, `Unexpected EOF in the config file: ${buf.slice(0, end).join('')}`);
}

/**
 * Read `name = value` (or a `&directive value`) whose first character `first` was already read.
 * A line without `=` is our error; rsync logs "Ignoring badly formed line" and goes on.
 */
// rsync/params.c: Parameter
function readParameter(r: ConfigReader, first: string, onValue: (name: string, value: string, at: Located) => void): void {
  const at = { file: r.file, line: r.line };
  const buf: string[] = [];
  let i = 0;
  let end = 0;
  let vstart = 0;
  let c = first;
  let name = '';
  while (vstart === 0) {
    if (c === '=') {
      if (end === 0) throw new ConfigError(at.file, at.line, 'Invalid parameter name in config file.');
      name = buf.slice(0, end).join('');
      buf[end++] = '\0';
      i = vstart = end;
      c = r.eatWhitespace();
    } else if (c === '\n') {
      i = continuation(buf, i);
      if (i < 0) {
        throw new ConfigError(at.file, at.line, `badly formed line (no "=") in config file: ${buf.slice(0, end).join('')}`);
      }
      end = i > 0 && buf[i - 1] === ' ' ? i - 1 : i;
      c = r.getc();
    } else if (c === EOF) {
      throw new ConfigError(at.file, at.line, `Unexpected end-of-file at: ${buf.slice(0, i).join('')}`);
    } else if ((c === ' ' || c === '\t') && buf[0] === '&') {
      // A directive divides at the first space or tab; an `=` after it is optional.
      name = buf.slice(0, end).join('');
      buf[end++] = '\0';
      i = vstart = end;
      c = r.eatWhitespace();
      if (c === '=') c = r.eatWhitespace();
    } else if (isSpace(c)) {
      buf[end] = ' ';
      i = end + 1;
      c = r.eatWhitespace();
    } else {
      buf[i++] = c;
      end = i;
      c = r.getc();
    }
  }
  while (c !== EOF) {
    if (c === '\r') {
      c = r.getc(); // dropped for historic reasons
    } else if (c === '\n') {
      i = continuation(buf, i);
      if (i < 0) break;
      for (end = i; end >= 0 && isSpace(buf[end]!); end--);
      c = r.getc();
    } else {
      buf[i++] = c;
      if (!isSpace(c)) end = i;
      c = r.getc();
    }
  }
  onValue(name, buf.slice(vstart, Math.max(vstart, end)).join(''), at);
}

/** Scan one file: blank lines, comments, sections, directives, parameters. */
// rsync/params.c: Parse
function parseText(r: ConfigReader, h: Handlers): void {
  let c = r.eatWhitespace();
  while (c !== EOF) {
    switch (c) {
      case '\n':
        c = r.eatWhitespace();
        break;
      case ';':
      case '#':
        c = r.eatComment();
        break;
      case '[':
        readSection(r, h);
        c = r.eatWhitespace();
        break;
      case '\\': // a stray backslash at the start of a line is skipped
        c = r.eatWhitespace();
        break;
      case '&':
        readParameter(r, c, (n, v, at) => h.directive(n, v, at));
        c = r.eatWhitespace();
        break;
      default:
        readParameter(r, c, (n, v, at) => h.parameter(n, v, at));
        c = r.eatWhitespace();
        break;
    }
  }
}

// --- loadparm.c: the sections ---

type Vars = Map<string, Value>;
interface AllVars {
  g: Vars;
  l: Vars;
}
interface Section {
  name: string;
  vars: Vars;
  at: Located;
}

function defaults(global: boolean): Vars {
  return new Map(PARM_TABLE.filter((p) => p.global === global).map((p) => [p.key, p.def]));
}

const cloneVars = (v: AllVars): AllVars => ({ g: new Map(v.g), l: new Map(v.l) });

/** The group configure would have chosen for "nobody". */
function defaultNobodyGroup(): string {
  try {
    const groups = readFileSync('/etc/group', 'utf8');
    if (/^nobody:/m.test(groups)) return 'nobody';
    if (/^nogroup:/m.test(groups)) return 'nogroup';
  } catch {
    // no /etc/group: configure's fallback
  }
  return 'nobody';
}

/** Would rsync's parse_chmod take it? */
function validChmod(text: string): boolean {
  try {
    parseChmod(text, 0);
    return true;
  } catch (e) {
    if (e instanceof ChmodSyntaxError) return false;
    throw e;
  }
}

/** Parse rsyncd.conf text. Includes go through `options.include` (loadConfig reads them from disk). */
// rsync/loadparm.c: lp_load
export function parseConfig(text: string, options: ParseOptions): DaemonConfig {
  const warnings: string[] = [];
  const env = options.env ?? process.env;
  const sections: Section[] = [];
  const byKey = new Map<string, Section>();
  let vars: AllVars = { g: defaults(true), l: defaults(false) };
  const stack: AllVars[] = [];
  let inGlobal = true;
  let current: Section | undefined;
  let dparamsApplied = false;
  let filesRead = 1;
  const warn = (at: Located, message: string) => warnings.push(`${message} (${at.file}:${at.line})`);

  const setBoolean = (p: Parm, value: string, at: Located): boolean | null => {
    const v = wiKey(value);
    if (v === 'YES' || v === 'TRUE' || v === '1') return true;
    if (v === 'NO' || v === 'FALSE' || v === '0') return false;
    if (p.type === 'bool3' && (v === 'UNSET' || v === '-1')) return null;
    // rsync logs "Badly formed boolean" and keeps the old value; we stop: a mistyped "no" must not
    // leave a module writable or unchrooted.
    throw new ConfigError(at.file, at.line, `Badly formed boolean in configuration file: "${value}".`);
  };

  // rsync/loadparm.c: do_parameter
  const doParameter = (name: string, rawValue: string, at: Located): void => {
    const p = mapParameter(name);
    if (!p) {
      if (!name.startsWith('-')) warn(at, `Unknown Parameter encountered: "${name}"`);
      warn(at, `IGNORING unknown parameter "${name}"`);
      return;
    }
    let target: Vars;
    if (inGlobal) target = p.global ? vars.g : vars.l;
    else {
      if (p.global) {
        warn(at, `Global parameter ${name} found in module section!`);
        return;
      }
      target = current!.vars;
    }
    // Strings keep %VAR% for the connection (rsync expands them when read); the rest now.
    const value = p.type === 'string' || p.type === 'path' ? rawValue : expandConfigVars(rawValue, env);
    switch (p.type) {
      case 'bool':
      case 'bool3':
        target.set(p.key, setBoolean(p, value, at));
        break;
      case 'integer': {
        // rsync uses atoi (so "30s" is 30 and "ten" is 0); we want the whole value to be a number.
        const m = /^[ \t\n\v\f\r]*([+-]?\d+)$/.exec(value);
        if (!m || !Number.isSafeInteger(Number(m[1])) || Math.abs(Number(m[1])) > 0x7fffffff) {
          throw new ConfigError(at.file, at.line, `Badly formed integer in configuration file: "${value}".`);
        }
        target.set(p.key, Number(m[1]));
        break;
      }
      case 'path': {
        let v = value;
        while (v.length > 1 && v.endsWith('/')) v = v.slice(0, -1);
        target.set(p.key, v);
        break;
      }
      case 'string':
        // A chmod rsync cannot parse: rsyncd still serves the module, logging the value at each
        // connection and tweaking nothing (module-chmod.ts does the same); we also say so now.
        if ((p.key === 'incoming chmod' || p.key === 'outgoing chmod') && value && !value.includes('%') && !validChmod(value)) {
          warn(at, `Invalid "${p.key}" directive: ${value} (the module is served without it, as rsyncd does)`);
        }
        target.set(p.key, value);
        break;
      case 'enum': {
        const lower = value.toLowerCase();
        if (SYSLOG_FACILITIES.includes(lower)) target.set(p.key, lower);
        else if (/^\s*[+-]?\d/.test(value) && parseInt(value, 10) > 0) target.set(p.key, String(parseInt(value, 10)));
        else warn(at, `unknown syslog facility "${value}" ignored`);
        break;
      }
    }
  };

  // rsync/loadparm.c: set_dparams
  const applyDparams = (): void => {
    dparamsApplied = true;
    for (const [name, value] of Object.entries(options.dparams ?? {})) {
      // rsync/options.c checks the names first (set_dparams(1)) and exits with RERR_SYNTAX.
      if (!mapParameter(name)) throw new ConfigError('--dparam', 0, `Unknown parameter "${name}"`);
      doParameter(name, value.replace(/^[ \t\n\v\f\r]+/, ''), { file: '--dparam', line: 0 });
    }
  };

  // rsync/loadparm.c: do_section
  const doSection = (name: string, at: Located): void => {
    const isGlobal = strwiEQ(name, 'global');
    if (inGlobal && !isGlobal && sections.length === 0 && !dparamsApplied) applyDparams();
    inGlobal = isGlobal;
    if (isGlobal) return;
    if (name.includes('/')) throw new ConfigError(at.file, at.line, `invalid section name in configuration file: ${name}`);
    // rsync/loadparm.c: add_a_section, getsectionbyname: a name equal under strwiEQ reopens that module.
    const key = wiKey(name);
    let s = byKey.get(key);
    if (!s) {
      s = { name, vars: new Map(vars.l), at };
      sections.push(s);
      byKey.set(key, s);
    }
    current = s;
  };

  // rsync/params.c: include_config, parse_directives
  const doDirective = (name: string, value: string, at: Located, depth: number): void => {
    const manageGlobals = name.toLowerCase() === '&include';
    if (!manageGlobals && name.toLowerCase() !== '&merge') throw new ConfigError(at.file, at.line, `Unknown directive: ${name}.`);
    if (!options.include) throw new ConfigError(at.file, at.line, `${name} ${value}: includes are not available here`);
    if (depth >= MAX_INCLUDE_DEPTH) {
      throw new ConfigError(at.file, at.line, `${name} ${value}: includes nested deeper than ${MAX_INCLUDE_DEPTH}`);
    }
    let target: string | IncludeDirectory;
    try {
      target = options.include(value);
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      throw new ConfigError(at.file, at.line, `unable to stat config file "${value}": ${(e as Error).message}`, { cause: e });
    }
    const processFile = (path: string, text: string): void => {
      if (++filesRead > MAX_INCLUDED_FILES) throw new ConfigError(at.file, at.line, `more than ${MAX_INCLUDED_FILES} included files`);
      run(new ConfigReader(path, text), depth + 1);
    };
    // "]push"/"]pop"/"]reset" of do_section: an included file's globals last only for that file.
    const push = () => {
      inGlobal = true;
      stack.push(cloneVars(vars));
    };
    const restore = (pop: boolean) => {
      inGlobal = true;
      vars = cloneVars(stack[stack.length - 1]!);
      if (pop) stack.pop();
    };
    if (typeof target === 'string') {
      if (manageGlobals) push();
      processFile(value, target);
      if (manageGlobals) restore(true);
      return;
    }
    const pattern = manageGlobals ? '*.conf' : '*.inc';
    const names = target.directory.filter((n) => wildmatch(pattern, n)).map((n) => join(value, n));
    names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    if (!names.length) return;
    names.forEach((path, j) => {
      if (manageGlobals) {
        if (j === 0) push();
        else restore(false);
      }
      let text: string | IncludeDirectory;
      try {
        text = options.include!(path);
      } catch (e) {
        throw new ConfigError(at.file, at.line, `unable to open config file "${path}": ${(e as Error).message}`, { cause: e });
      }
      if (typeof text !== 'string') throw new ConfigError(at.file, at.line, `"${path}" is a directory, not a config file`);
      processFile(path, text);
    });
    if (manageGlobals) restore(true);
  };

  const run = (reader: ConfigReader, depth: number): void => {
    parseText(reader, {
      section: doSection,
      parameter: doParameter,
      directive: (n, v, at) => doDirective(n, v, at, depth),
    });
  };

  if (text.includes('\0')) throw new ConfigError(options.file, 0, 'the config file contains a NUL byte');
  run(new ConfigReader(options.file, text), 0);
  if (!dparamsApplied) applyDparams();

  const asRoot = options.asRoot ?? process.geteuid?.() === 0;
  const nobodyGroup = options.nobodyGroup ?? (asRoot ? defaultNobodyGroup() : 'nobody');
  const modules = sections.map((s) => buildModule(s, asRoot, nobodyGroup));
  for (const m of modules) {
    for (const [what, v] of [
      ['early exec', m.earlyExec],
      ['pre-xfer exec', m.preXferExec],
      ['post-xfer exec', m.postXferExec],
      ['name converter', m.nameConverter],
    ] as const) {
      if (v) warnings.push(`module ${m.name}: "${what}" is kept but not run by lsyncd serve`);
    }
  }
  return { file: options.file, global: buildGlobal(vars), modules, warnings };
}

const str = (v: Vars, key: string): string | undefined => {
  const x = v.get(key);
  return typeof x === 'string' && x !== '' ? x : undefined;
};
const num = (v: Vars, key: string): number => v.get(key) as number;
const bool = (v: Vars, key: string): boolean => v.get(key) as boolean;
const bool3 = (v: Vars, key: string): boolean | undefined => (v.get(key) === null ? undefined : (v.get(key) as boolean));

function buildGlobal(vars: AllVars): GlobalConfig {
  const g = vars.g;
  const l = vars.l;
  return {
    port: num(g, 'port') || DEFAULT_RSYNC_PORT,
    address: str(g, 'address'),
    motdFile: str(g, 'motd file'),
    logFile: str(l, 'log file'),
    pidFile: str(g, 'pid file'),
    socketOptions: str(g, 'socket options'),
    listenBacklog: num(g, 'listen backlog'),
    daemonChroot: str(g, 'daemon chroot'),
    daemonUid: str(g, 'daemon uid'),
    daemonGid: str(g, 'daemon gid'),
    proxyProtocol: bool(g, 'proxy protocol'),
    proxyProtocolHosts: str(g, 'proxy protocol hosts'),
    syslogFacility: l.get('syslog facility') as string,
    syslogTag: l.get('syslog tag') as string,
    reverseLookup: bool(l, 'reverse lookup'),
  };
}

/** Words of a word-split daemon rule list: `- pat`/`+ pat` pairs stay one rule, as parse_rule_tok reads them. */
function splitRuleWords(value: string, oldPrefixes: boolean): string[] {
  const words = value.split(/[ \t\n\v\f\r]+/).filter(Boolean);
  const rules: string[] = [];
  for (let k = 0; k < words.length; k++) {
    const w = words[k]!;
    const next = words[k + 1];
    // A bare prefix word (old style `-`/`+`, or a filter rule's `-`, `+,modifiers`, `exclude`, `merge` ...)
    // takes the next word as its pattern.
    const isPrefix = oldPrefixes
      ? w === '-' || w === '+'
      : /^(?:[-+.:PRHS](?:,?[a-zA-Z/!+-]*)?|exclude|include|merge|dir-merge|hide|show|protect|risk)(?:,[a-zA-Z/!+-]*)?$/.test(w);
    if (isPrefix && next !== undefined) {
      rules.push(`${w} ${next}`);
      k++;
    } else rules.push(w);
  }
  return rules;
}

function daemonFilters(v: Vars): { daemonFilter: DaemonFilterSource[]; filterRules: string[] } {
  const daemonFilter: DaemonFilterSource[] = [];
  const filterRules: string[] = [];
  // rsync/clientserver.c: rsync_module adds them in this order.
  for (const kind of ['filter', 'include from', 'include', 'exclude from', 'exclude'] as const) {
    const value = str(v, kind);
    if (!value) continue;
    daemonFilter.push({ kind, value });
    if (kind === 'filter') filterRules.push(...splitRuleWords(value, false));
    else if (kind === 'include from') filterRules.push(`merge,+ ${value}`);
    else if (kind === 'exclude from') filterRules.push(`merge,- ${value}`);
    else {
      const sign = kind === 'include' ? '+' : '-';
      for (const rule of splitRuleWords(value, true)) {
        // A lone "!" clears the list (XFLG_OLD_PREFIXES); "- x"/"+ x" chose their own side.
        filterRules.push(rule === '!' || /^[-+] /.test(rule) ? rule : `${sign} ${rule}`);
      }
    }
  }
  return { daemonFilter, filterRules };
}

function hostList(v: Vars, key: string): string[] | undefined {
  const s = str(v, key);
  if (!s) return undefined;
  // rsync/access.c: access_match (strlower, then strtok on " ,\t")
  return s.toLowerCase().split(/[ ,\t]+/).filter(Boolean);
}

function buildModule(s: Section, asRoot: boolean, nobodyGroup: string): ModuleConfig {
  const v = s.vars;
  const path = str(v, 'path') ?? '';
  // rsync/clientserver.c: rsync_module resolves "unset" use chroot by trying chroot("/"): it works as root.
  const chrootSet = bool3(v, 'use chroot');
  const useChroot = chrootSet ?? (path.includes('/./') || asRoot);
  // module_dirlen is non-zero when chrooted to an outer dir with an inner path other than "/".
  const inner = path.includes('/./') ? path.slice(path.indexOf('/./') + 2).replace(/\/+/g, '/') : '/';
  const chrootInnerDir = useChroot && inner !== '/' && inner !== '';
  const nameConverter = str(v, 'name converter');
  const numericSet = bool3(v, 'numeric ids');
  const authUsersText = str(v, 'auth users');
  const uid = str(v, 'uid') ?? (asRoot ? NOBODY_USER : undefined);
  const gidText = str(v, 'gid');
  const gid = gidText ? confStrtok(gidText) : asRoot ? [nobodyGroup] : undefined;
  const openNoatime = bool3(v, 'open noatime');
  return {
    name: s.name,
    path,
    comment: str(v, 'comment') ?? '',
    list: bool(v, 'list'),
    readOnly: bool(v, 'read only'),
    writeOnly: bool(v, 'write only'),
    useChroot,
    mungeSymlinks: bool3(v, 'munge symlinks') ?? (!useChroot || chrootInnerDir),
    numericIds: useChroot ? numericSet !== false && !nameConverter : numericSet === true,
    authUsers: authUsersText ? parseAuthUsers(authUsersText) : [],
    authUsersText,
    secretsFile: str(v, 'secrets file'),
    strictModes: bool(v, 'strict modes'),
    hostsAllow: hostList(v, 'hosts allow'),
    hostsDeny: hostList(v, 'hosts deny'),
    reverseLookup: bool(v, 'reverse lookup'),
    forwardLookup: bool(v, 'forward lookup'),
    uid,
    gid,
    maxConnections: num(v, 'max connections'),
    lockFile: str(v, 'lock file') ?? DEFAULT_LOCK_FILE,
    timeout: num(v, 'timeout'),
    logFormat: (v.get('log format') as string | null) ?? '',
    transferLogging: bool(v, 'transfer logging'),
    refuseOptions: (str(v, 'refuse options') ?? '').split(' ').filter(Boolean),
    dontCompress: (str(v, 'dont compress') ?? '').split(' ').filter(Boolean).map((w) => w.replace(/[A-Z]/g, (c) => c.toLowerCase())),
    ignoreErrors: bool(v, 'ignore errors'),
    ignoreNonreadable: bool(v, 'ignore nonreadable'),
    incomingChmod: str(v, 'incoming chmod'),
    outgoingChmod: str(v, 'outgoing chmod'),
    ...daemonFilters(v),
    maxVerbosity: num(v, 'max verbosity'),
    fakeSuper: bool(v, 'fake super'),
    tempDir: str(v, 'temp dir'),
    charset: str(v, 'charset'),
    earlyExec: str(v, 'early exec'),
    preXferExec: str(v, 'pre-xfer exec'),
    postXferExec: str(v, 'post-xfer exec'),
    nameConverter,
    logFile: str(v, 'log file'),
    syslogFacility: v.get('syslog facility') as string,
    syslogTag: (v.get('syslog tag') as string | null) ?? 'rsyncd',
    authDigest: str(v, 'auth digest'),
    insecureLinks: bool(v, 'insecure links'),
    ...(openNoatime === undefined ? {} : { openNoatime }),
    declaredAt: s.at,
  };
}

/** The module a client's module line names: exact, case-sensitive, as rsync looks it up. */
// rsync/loadparm.c: lp_number
export function findModule(config: DaemonConfig, name: string): ModuleConfig | undefined {
  for (let i = config.modules.length - 1; i >= 0; i--) if (config.modules[i]!.name === name) return config.modules[i];
  return undefined;
}

/** The modules a listing shows (`list = yes`), in config order. */
// rsync/clientserver.c: send_listing (the filter)
export function listedModules(config: DaemonConfig): ModuleConfig[] {
  return config.modules.filter((m) => m.list);
}

/**
 * What rsync says when a client opens a module without `path`: the log line and the `@ERROR`
 * line; undefined when the module has a path.
 */
// rsync/clientserver.c: rsync_module ("No path specified")
export function missingPathError(module: ModuleConfig): { log: string; line: string } | undefined {
  if (module.path) return undefined;
  return { log: `No path specified for module ${module.name}`, line: '@ERROR: no path setting.' };
}

/**
 * Read and parse a config file, with `&include`/`&merge` from disk (paths as written: rsync
 * resolves a relative one from the daemon's working directory). As rsync opens it, a symlink
 * owned by someone other than root or us is refused.
 */
// rsync/params.c: pm_process, OpenConfFile
export function loadConfig(path: string, options: Omit<ParseOptions, 'file' | 'include'> = {}): DaemonConfig {
  const readText = (p: string): string => {
    refuseAttackerSymlink(p);
    const st = statSync(p);
    if (st.size > MAX_CONFIG_BYTES) throw new ConfigError(p, 0, `config file is larger than ${MAX_CONFIG_BYTES} bytes`);
    return readFileSync(p, 'utf8');
  };
  let text: string;
  try {
    text = readText(path);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(path, 0, `unable to open config file "${path}": ${(e as Error).message}`, { cause: e });
  }
  return parseConfig(text, {
    ...options,
    file: path,
    include: (p) => {
      const st = statSync(p);
      if (st.isDirectory()) return { directory: readdirSync(p) };
      if (!st.isFile()) throw new Error('not a regular file or a directory');
      return readText(p);
    },
  });
}

// rsync/syscall.c: open_no_attacker_symlinks (the ownership test)
function refuseAttackerSymlink(path: string): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink() && st.uid !== 0 && st.uid !== process.geteuid?.()) {
    throw new ConfigError(path, 0, 'refusing to follow a symlink owned by another user');
  }
}
