// The daemon's log, in rsyncd's formats (docs/serve.md, issue 10): the log file itself (each line
// `YYYY/MM/DD HH:MM:SS [PID] text`, control bytes escaped, reopened on demand for SIGHUP), the
// connection and module lines of clientserver.c and authenticate.c, the per-connection
// `sent X bytes  received Y bytes  total size Z` line, and transfer logging: `log format` escapes
// expanded for one item as log_formatted does. The connection code calls these functions and never
// builds log text itself; nothing here is given a password or a challenge response.
// Counterpart: rsync log.c (logit, log_formatted, log_format_has, log_item, maybe_log_item,
// log_delete, log_exit), clientserver.c (rsync_module, start_daemon), authenticate.c (auth_server).
import { closeSync, lstatSync, openSync, writeSync, constants as fsConstants } from 'node:fs';
import { RsyncError, EXIT, exitErrorLine, type ExitCode } from '../../protocol/errors.js';
import { ITEM_TRANSFER, MAXPATHLEN, SIGNIFICANT_ITEM_FLAGS } from '../../protocol/constants.js';
import { S_IFMT, S_IFDIR, S_IFLNK } from '../../protocol/modes.js';
import { digestLength } from '../../protocol/checksum.js';
import type { ChecksumName } from '../../protocol/compat.js';
import { bigNum, itemizeFlags, permString, timeString } from '../transfer/output.js';
import { DEFAULT_LOG_FORMAT } from './config.js';

/** rsyncd.conf(5) `log format` when the module sets none (rsync daemon-parm.txt: log_format). */

/** What %h shows when `reverse lookup = no` (rsync clientserver.c: undetermined_hostname). */


/**
 * The most bytes of one message that reach the log: rsync copies a message into a 2048-byte
 * buffer before logit (log.c rwrite), so the text is cut at 2047 bytes. We cut there too, and
 * still end the line (rsync loses the newline of a cut line).
 */
export const MAX_LOG_MESSAGE = 2047;

/** rsync's width digits stop where its 32-byte `fmt` scratch buffer would overflow (log.c LOG_FMT_SIZE - 8). */
const LOG_FMT_LIMIT = 32 - 8;

/** The log file cannot be opened or is refused (a symlink owned by someone else). */
export class LogFileError extends RsyncError {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('ERR_LOG_FILE', message, EXIT.FILEIO, options);
    this.path = path;
  }
}

/** A `log format` rsync itself would refuse (longer than MAXPATHLEN). */
export class LogFormatError extends RsyncError {
  constructor(message: string) {
    super('ERR_LOG_FORMAT', message, EXIT.SYNTAX);
  }
}

/** Where one message line goes: implemented by DaemonLog, and by the value of `DaemonLog.withPid`. */
export interface LogWriter {
  /** Write one message (no trailing newline needed) as one log line. Never throws. */
  line(text: string | Uint8Array): void;
}


/**
 * A message as rsyncd writes it into its log file: bytes below 0x20 other than tab, the C1
 * controls 0x80-0x9f, and a backslash that would read as such an escape become `\#ooo`, so a
 * client-chosen name cannot forge a line or a terminal sequence. Other bytes (UTF-8 or not) pass
 * through. A trailing newline or CR is dropped here: the caller ends the line.
 */
// rsync/log.c: logit (filtered_fwrite with escape_c1)
export function escapeLogText(text: Uint8Array): Buffer {
  let end = text.length;
  if (end > 0 && (text[end - 1] === 0x0a || text[end - 1] === 0x0d)) end--;
  const out: number[] = [];
  const isDigit = (i: number) => i < end && text[i]! >= 0x30 && text[i]! <= 0x39;
  for (let i = 0; i < end; i++) {
    const c = text[i]!;
    const fakeEscape = c === 0x5c && i < end - 4 && text[i + 1] === 0x23 && isDigit(i + 2) && isDigit(i + 3) && isDigit(i + 4);
    if (fakeEscape || (c !== 0x09 && (c < 0x20 || (c >= 0x80 && c <= 0x9f)))) {
      out.push(0x5c, 0x23, 0x30 + (c >> 6), 0x30 + ((c >> 3) & 7), 0x30 + (c & 7));
    } else out.push(c);
  }
  return Buffer.from(out);
}

const toBytes = (text: string | Uint8Array): Buffer => (typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.from(text.buffer, text.byteOffset, text.byteLength));

/** One whole log-file line: stamp, `[pid]`, the escaped message cut at MAX_LOG_MESSAGE, newline. */
// rsync/log.c: logit (the log-file branch) + rwrite's 2048-byte copy
export function formatLogFileLine(text: string | Uint8Array, pid: number, now: Date = new Date()): Buffer {
  let bytes = toBytes(text);
  if (bytes.length > MAX_LOG_MESSAGE) bytes = bytes.subarray(0, MAX_LOG_MESSAGE);
  const nul = bytes.indexOf(0); // logit measures the text with strlen
  if (nul >= 0) bytes = bytes.subarray(0, nul);
  return Buffer.concat([Buffer.from(`${timeString(now)} [${pid}] `), escapeLogText(bytes), Buffer.from('\n')]);
}

export interface DaemonLogOptions {
  /**
   * `log file` (rsyncd.conf) or `--log-file`. Empty or absent: lines go to `stderr` when given,
   * else nowhere (rsyncd then uses syslog, which Node cannot reach; see docs/serve.md).
   */
  file?: string;
  /**
   * An already open log descriptor (a connection's process inherits the daemon's: it may no
   * longer be allowed to open the file once its privileges are dropped). Never reopened here.
   */
  fd?: number;
  /** Where lines go without a log file (or while it fails), e.g. process.stderr with --no-detach. Same line format. */
  stderr?: { write(chunk: Uint8Array): unknown };
  /** The `[PID]` of lines written through `line` (default: this process). */
  pid?: number;
  /** Clock for the line stamps (tests). */
  now?: () => Date;
  /** Told once per failure to write (disk full, file removed...): the daemon keeps serving. */
  onError?: (error: LogFileError) => void;
}

/**
 * rsyncd's log: opened for append (mode 0644 when created), one synchronous write per line as
 * rsync's fflush per line, reopened by `reopen()` (SIGHUP: logfile_close + logfile_reopen, so a
 * rotated file is followed). A symlink at the path is refused unless owned by root or by us.
 */
// rsync/log.c: log_init, logfile_open, logfile_close, logfile_reopen, logit
export class DaemonLog implements LogWriter {
  readonly file: string;
  private fd: number | null = null;
  private readonly stderr: DaemonLogOptions['stderr'];
  private readonly pid: number;
  private readonly now: () => Date;
  private readonly onError: ((error: LogFileError) => void) | undefined;
  private failing = false;

  private readonly inherited: boolean;

  /** Lines go to the stderr sink (no log file). */
  get toStderr(): boolean {
    return !this.file && this.stderr !== undefined;
  }

  /** The open descriptor, for a connection's process to inherit (null without a log file). */
  get descriptor(): number | null {
    return this.fd;
  }

  constructor(options: DaemonLogOptions = {}) {
    this.file = options.file ?? (options.fd !== undefined ? `(descriptor ${options.fd})` : '');
    this.inherited = options.fd !== undefined;
    if (options.fd !== undefined) this.fd = options.fd;
    this.stderr = options.stderr;
    this.pid = options.pid ?? process.pid;
    this.now = options.now ?? (() => new Date());
    this.onError = options.onError;
  }

  /** Open the log file (no-op without one). Throws LogFileError; rsync then falls back to syslog with "failed to open log-file". */
  // rsync/log.c: logfile_open
  open(): void {
    if (!this.file || this.fd !== null || this.inherited) return;
    this.fd = openLogFile(this.file);
    this.failing = false;
  }

  /** Close and open again, following a rotated file (rsyncd does this on SIGHUP). */
  // rsync/log.c: logfile_close + logfile_reopen
  reopen(): void {
    if (this.inherited) return;
    this.close();
    this.open();
  }

  close(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch {
      // Closing a log whose disk is gone: nothing left to do with it.
    }
    this.fd = null;
  }

  line(text: string | Uint8Array): void {
    this.writeLine(text, this.pid);
  }

  /** A writer whose lines carry `pid` (a connection's child process, as each rsyncd connection is a process). */
  withPid(pid: number): LogWriter {
    return { line: (text) => this.writeLine(text, pid) };
  }

  private writeLine(text: string | Uint8Array, pid: number): void {
    const bytes = formatLogFileLine(text, pid, this.now());
    if (this.fd === null && this.file && !this.inherited) {
      try {
        this.open();
      } catch (e) {
        this.fail(e as LogFileError);
      }
    }
    if (this.fd !== null) {
      try {
        let at = 0;
        while (at < bytes.length) at += writeSync(this.fd, bytes, at);
        this.failing = false;
        return;
      } catch (e) {
        this.fail(new LogFileError(this.file, `failed to write log-file ${this.file}: ${(e as Error).message}`, { cause: e }));
      }
    }
    // No log file, or it failed: the fallback, if any (rsync falls back to syslog).
    this.stderr?.write(bytes);
  }

  private fail(error: LogFileError): void {
    if (this.failing) return; // one report per failure, not one per line
    this.failing = true;
    this.onError?.(error);
  }
}

/** Open `path` for append, refusing a symlink owned by someone other than root or us. */
// rsync/syscall.c: open_no_attacker_symlinks (as logfile_open uses it)
function openLogFile(path: string): number {
  try {
    const st = lstatSync(path, { throwIfNoEntry: false });
    const euid = process.geteuid?.() ?? 0;
    if (st?.isSymbolicLink() && st.uid !== 0 && st.uid !== euid) {
      throw new LogFileError(path, `failed to open log-file ${path}: a symlink owned by uid ${st.uid} (refused)`);
    }
    return openSync(path, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT, 0o644);
  } catch (e) {
    if (e instanceof LogFileError) throw e;
    throw new LogFileError(path, `failed to open log-file ${path}: ${(e as Error).message}`, { cause: e });
  }
}

// ---------------------------------------------------------------------------------------------
// Numbers



/**
 * %C's text: the checksum's hex the way rsync prints it (MD4/MD5 in wire order, the xxhash
 * family reversed, i.e. canonical), or blanks the width of the hex when there is no sum to show
 * or the algorithm is one rsync does not print (the seeded MD4 of protocols below 30: `implied`).
 */
// rsync/util2.c: sum_as_hex, and log.c log_formatted ('C', the blank case)
export function checksumText(name: ChecksumName, sum: Uint8Array | null, options: { implied?: boolean } = {}): string {
  const length = digestLength(name);
  const canonical = name === 'md4' && options.implied ? 0 : name === 'md4' || name === 'md5' ? -1 : 1;
  if (!sum || canonical === 0) return ' '.repeat(length * 2);
  const bytes = Buffer.from(sum.subarray(0, length));
  if (canonical > 0) bytes.reverse();
  return bytes.toString('hex');
}

// ---------------------------------------------------------------------------------------------
// Transfer logging

/** The operation of an item: %o. rsync's daemon logs `send` on a pull, `recv` on a push, `del.` for a deletion. */
export type LogOperation = 'send' | 'recv' | 'del.';

/** Bytes or text; text is taken as UTF-8. Names are best given as the file list's raw bytes. */
export type LogBytes = Uint8Array | string;

/** The connection's side of an item: the same for every item of one connection. */
export interface LogSession {
  /** %h: the client's host name, or UNDETERMINED_HOSTNAME without `reverse lookup`. */
  host: string;
  /** %a: the client's address. */
  addr: string;
  /** %m: the module name. */
  module: string;
  /** %P: the module's path (rsync's full_module_path). */
  modulePath: string;
  /** %u: the authenticated user, '' when the module has no `auth users`. */
  user: string;
  /** %p: the pid rsync would print (the process doing the transfer). Default: this process. */
  pid?: number;
  /** -t was given (%i shows a time change as 't', else 'T'). Default true. */
  preserveTimes?: boolean;
  /** The receiver sets symlink times (rsync's receiver_symlink_times: Linux receivers do, when the client's compat flags say so). Default true. */
  symlinkTimes?: boolean;
}

/** One file of the transfer, as log_formatted sees its file_struct. */
export interface LogItem {
  op: LogOperation;
  /** %n: the name in the file list (bytes as received; unprintables are escaped when the line is written). */
  name: LogBytes;
  /**
   * %f's directory: for a push, where the receiver runs relative to the module root (rsync's
   * curr_dir + module_dirlen: `dest` for `module/dest/`, '' for the root); for a pull, the
   * directory the sender's list was built from (F_PATHNAME, same convention).
   */
  dir: LogBytes;
  /** st_mode with the type bits (%B, %i, %n's trailing '/' for a directory, %L). */
  mode: number;
  /** %l: F_LENGTH (file size; a directory's st_size; a symlink's target length; 0 for a deletion). */
  length: number;
  /** %M: mtime in seconds (0 for a deletion, which rsync prints as the epoch). */
  mtime: number;
  /** %U: the uid, when -o is in effect (else rsync prints 0; a deletion also prints 0). */
  uid?: number;
  /** %G: the gid, when -g is in effect and the group is not skipped (else rsync prints DEFAULT; a deletion prints 0 with -g). */
  gid?: number;
  /** rsync's iflags for %i, %b, %c (ITEM_TRANSFER: data moved). A deletion needs none. */
  iflags: number;
  /**
   * For %b and %c, only when ITEM_TRANSFER is set: the bytes read from and written to the peer
   * for this file's data, as rsync counts them between remember_initial_stats and log_item
   * (receiver: the sum head, tokens and checksum read; sender: the request header and data
   * written, the sum head read). Multiplexing headers are not counted.
   */
  bytesRead?: number;
  bytesWritten?: number;
  /**
   * %C: `checksumText(...)`: with -c the file list's checksum of a regular file (not for a
   * deletion), else for a transferred regular file the whole-file checksum that followed its
   * data, else blanks (`checksumText(name, null)`).
   */
  checksum?: string;
  /** %L of a symlink: its target, as rsync holds it (a receiver: the stored, possibly munged, target). */
  symlink?: LogBytes;
  /** %L of a hard link: the name it is linked to (` => name`). */
  hardlink?: LogBytes;
}

/** Does `format` use escape `esc` (e.g. 'i' for `%10i`)? Decides what transfer logging records. */
// rsync/log.c: log_format_has
export function logFormatHas(format: string | null | undefined, esc: string): boolean {
  if (!format) return false;
  for (let p = format.indexOf('%'); p >= 0 && p < format.length; p = format.indexOf('%', p)) {
    p++;
    while (format[p] === "'") p++;
    let width = 1;
    if (format[p] === '-') p++, width++;
    while (p < format.length && /[0-9]/.test(format[p]!) && width < LOG_FMT_LIMIT) p++, width++;
    while (format[p] === "'") p++;
    if (p >= format.length) break;
    if (format[p] === esc) return true;
    if (format[p] === '%') p++;
  }
  return false;
}

/** Refuse a `log format` rsync would refuse ("log-format string is WAY too long!"); call it when the config is read. */
// rsync/log.c: log_formatted (its length check)
export function checkLogFormat(format: string): void {
  if (Buffer.byteLength(format) > MAXPATHLEN) throw new LogFormatError(`log format is too long (${Buffer.byteLength(format)} bytes, the limit is ${MAXPATHLEN})`);
}

/**
 * The transfer-logging format of a module, or null when it logs no transfers: `log format` (or
 * DEFAULT_LOG_FORMAT) with `transfer logging = yes`, else null.
 */
// rsync/clientserver.c: rsync_module (lp_transfer_logging && !logfile_format)
export function transferLogFormat(module: { transferLogging: boolean; logFormat?: string | null }): string | null {
  if (!module.transferLogging) return null;
  const format = module.logFormat ?? DEFAULT_LOG_FORMAT;
  return format === '' ? null : format;
}


/** Collapse '//' and interior './', drop a trailing '/'; '' becomes '.'. */
// rsync/util1.c: clean_fname (flags 0)
function cleanFname(name: Buffer): Buffer {
  const anchored = name[0] === 0x2f;
  const out: number[] = anchored ? [0x2f] : [];
  let f = anchored ? 1 : 0;
  while (f < name.length) {
    if (name[f] === 0x2f) {
      f++;
      continue;
    }
    if (name[f] === 0x2e && name[f + 1] === 0x2f) {
      f += 2;
      continue;
    }
    while (f < name.length) {
      const c = name[f++]!;
      out.push(c);
      if (c === 0x2f) break;
    }
  }
  if (out.length > (anchored ? 1 : 0) && out[out.length - 1] === 0x2f) out.pop();
  if (out.length === 0) out.push(0x2e);
  return Buffer.from(out);
}

/** %f: the name joined to the item's directory, cleaned, without a leading '/'. */
// rsync/log.c: log_formatted ('f', the daemon branches)
function fullName(item: LogItem): Buffer {
  const dir = toBytes(item.dir);
  const joined = Buffer.concat([dir, dir.length === 0 || dir[dir.length - 1] !== 0x2f ? Buffer.from('/') : Buffer.alloc(0), toBytes(item.name)]);
  const clean = cleanFname(joined);
  return clean[0] === 0x2f ? clean.subarray(1) : clean;
}

/** printf's `%-N s` / `%N s` on bytes: pad with spaces to `width` bytes (rsync counts bytes). */
function pad(value: Buffer, spec: { left: boolean; width: number }): Buffer {
  if (value.length >= spec.width) return value;
  const fill = Buffer.alloc(spec.width - value.length, 0x20);
  return spec.left ? Buffer.concat([value, fill]) : Buffer.concat([fill, value]);
}

/**
 * One transfer line: `format`'s escapes expanded for `item`, as rsync's log_formatted builds it
 * for the log file (before the line is escaped and stamped by DaemonLog). Bytes, because a name
 * may not be UTF-8 and rsync writes such bytes to the log as they are. Widths (`%10l`, `%-10n`)
 * count bytes; apostrophes humanize numbers (`%'l` 1,234, `%''l` 1.23K, `%'''l` 1.21K). An
 * unknown escape stays as written. Each expansion is bounded (MAXPATHLEN), and so is the line.
 */
// rsync/log.c: log_formatted
export function formatLogLine(format: string, item: LogItem, session: LogSession, now: Date = new Date()): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  const push = (b: Buffer) => {
    if (total >= MAXPATHLEN + 1024) return; // rsync's line buffer; past it rsync stops the transfer, we stop the line
    parts.push(b);
    total += b.length;
  };
  const sender = item.op === 'send';
  let literalFrom = 0;
  let p = format.indexOf('%');
  while (p >= 0) {
    const start = p;
    p++;
    let humanize = 0;
    while (format[p] === "'") humanize++, p++;
    let left = false;
    let digits = '';
    let fmtLen = 1;
    if (format[p] === '-') (left = true), p++, fmtLen++;
    while (p < format.length && /[0-9]/.test(format[p]!) && fmtLen < LOG_FMT_LIMIT) (digits += format[p]), p++, fmtLen++;
    while (format[p] === "'") humanize++, p++;
    if (p >= format.length) break; // a '%' at the end stays as written
    const hasSpec = left || digits !== '';
    const spec = { left, width: Math.min(digits === '' ? 0 : Number(digits), MAXPATHLEN - 1) };
    const n = expandEscape(format[p]!, item, session, sender, humanize, spec, hasSpec, now);
    if (n === null) {
      p = format.indexOf('%', p); // unknown: left in place, scanning resumes at the letter
      continue;
    }
    push(Buffer.from(format.slice(literalFrom, start), 'utf8'));
    push(n.subarray(0, MAXPATHLEN - 1));
    literalFrom = p + 1;
    p = format.indexOf('%', p + 1);
  }
  push(Buffer.from(format.slice(literalFrom), 'utf8'));
  const line = Buffer.concat(parts);
  return line.length > MAXPATHLEN + 1024 ? line.subarray(0, MAXPATHLEN + 1024) : line;
}

/** One escape's text, or null for a letter rsync does not know (the escape is then kept). */
function expandEscape(
  letter: string,
  item: LogItem,
  session: LogSession,
  sender: boolean,
  humanize: number,
  spec: { left: boolean; width: number },
  hasSpec: boolean,
  now: Date,
): Buffer | null {
  const str = (s: LogBytes) => pad(toBytes(s), spec);
  const type = item.mode & S_IFMT;
  switch (letter) {
    case 'h':
      return str(session.host);
    case 'a':
      return str(session.addr);
    case 'l':
      return str(bigNum(item.length, humanize));
    case 'U':
      return str(String(item.uid ?? 0));
    case 'G':
      return str(item.gid === undefined ? 'DEFAULT' : String(item.gid));
    case 'p':
      return str(String(session.pid ?? process.pid));
    case 'M':
      return str(timeString(item.mtime).replace(/ /g, '-'));
    case 'B':
      return str(permString(item.mode).slice(1));
    case 'o':
      return str(item.op);
    case 'f':
      return str(fullName(item));
    case 'n': {
      const name = toBytes(item.name);
      return str(type === S_IFDIR ? Buffer.concat([name, Buffer.from('/')]) : name);
    }
    case 'L': {
      // rsync: a hard link's target, else a symlink's (not for a deletion), else nothing
      let target: Buffer | null = null;
      let arrow = '    ';
      if (item.hardlink !== undefined && toBytes(item.hardlink).length > 0) (target = toBytes(item.hardlink)), (arrow = ' => ');
      else if (type === S_IFLNK && item.op !== 'del.') (target = toBytes(item.symlink ?? '')), (arrow = ' -> ');
      if (target === null) {
        if (!hasSpec) return Buffer.alloc(0);
        target = Buffer.alloc(0);
      }
      return Buffer.concat([Buffer.from(arrow), pad(target, spec)]);
    }
    case 'm':
      return str(session.module);
    case 't':
      return str(timeString(now));
    case 'P':
      return str(session.modulePath);
    case 'u':
      return str(session.user);
    case 'b':
    case 'c': {
      // %b: bytes of the file's data in its direction (written by a sender, read by a receiver); %c the other way
      let b = 0;
      if (item.iflags & ITEM_TRANSFER) b = sender !== (letter === 'c') ? (item.bytesWritten ?? 0) : (item.bytesRead ?? 0);
      return str(bigNum(b, humanize));
    }
    case 'C':
      return str(item.checksum ?? '');
    case 'i':
      if (item.op === 'del.') return str('*deleting  ');
      return str(
        itemizeFlags(item.iflags, item.mode, {
          transfer: sender ? '<' : '>',
          preserveTimes: session.preserveTimes ?? true,
          symlinkTimes: session.symlinkTimes ?? true,
        }),
      );
    case '%':
      return str('%');
    default:
      return null;
  }
}

/** The itemized item a role did not transfer: is it worth a log line? (Transferred files always are.) */
// rsync/log.c: maybe_log_item (the am_server branch)
export function shouldLogItem(format: string | null, iflags: number, options: { hardlink?: LogBytes; dryRun?: boolean } = {}): boolean {
  if (!format || options.dryRun) return false;
  const hasI = logFormatHas(format, 'i');
  const significant = (iflags & SIGNIFICANT_ITEM_FLAGS) !== 0;
  const xname = options.hardlink !== undefined && toBytes(options.hardlink).length > 0;
  return hasI && (significant || xname);
}

/**
 * Log one item with the module's transfer format: every transferred file, and the other items
 * `shouldLogItem` accepts. No-op when `format` is null (no transfer logging) and on a dry run.
 */
// rsync/log.c: log_item (the FLOG half)
export function logTransfer(log: LogWriter, format: string | null, item: LogItem, session: LogSession, options: { dryRun?: boolean } = {}): void {
  if (!format || options.dryRun) return;
  log.line(formatLogLine(format, item, session));
}

/**
 * Log a deletion: the module's format when it shows %o or %i, else `deleting %n` (no-op without
 * transfer logging, and on a dry run). `item.op` is taken as `del.`.
 */
// rsync/log.c: log_delete (the log-file half)
export function logDelete(log: LogWriter, format: string | null, item: Omit<LogItem, 'op' | 'iflags'> & { iflags?: number }, session: LogSession, options: { dryRun?: boolean } = {}): void {
  if (!format || options.dryRun) return;
  const fmt = logFormatHas(format, 'o') || logFormatHas(format, 'i') ? format : 'deleting %n';
  log.line(formatLogLine(fmt, { ...item, op: 'del.', iflags: item.iflags ?? 0 }, session));
}

// ---------------------------------------------------------------------------------------------
// The connection's lines

/** Who is connected: %h and %a of every connection line. */
export interface Peer {
  /** The client's name, or UNDETERMINED_HOSTNAME without `reverse lookup`. */
  host: string;
  addr: string;
}

/** `rsyncd version V starting, listening on port N`: the daemon's first line. */
// rsync/clientserver.c: daemon_main
export function logDaemonStart(log: LogWriter, version: string, port: number): void {
  log.line(`rsyncd version ${version} starting, listening on port ${port}`);
}

/** `connect from HOST (ADDR)`: a client connected. */
// rsync/clientserver.c: start_daemon
export function logConnect(log: LogWriter, peer: Peer): void {
  log.line(`connect from ${peer.host} (${peer.addr})`);
}

/** `module-list request from HOST (ADDR)`: the client asked for the listing. */
// rsync/clientserver.c: start_daemon
export function logModuleList(log: LogWriter, peer: Peer): void {
  log.line(`module-list request from ${peer.host} (${peer.addr})`);
}

/** `unknown module 'NAME' tried from HOST (ADDR)` (the client is told `@ERROR: Unknown module`). */
// rsync/clientserver.c: start_daemon
export function logUnknownModule(log: LogWriter, name: LogBytes, peer: Peer): void {
  log.line(Buffer.concat([Buffer.from("unknown module '"), toBytes(name), Buffer.from(`' tried from ${peer.host} (${peer.addr})`)]));
}

/** `rsync denied on module M from HOST (ADDR)`: `hosts allow`/`hosts deny` refused the client. */
// rsync/clientserver.c: rsync_module
export function logAccessDenied(log: LogWriter, module: string, peer: Peer): void {
  log.line(`rsync denied on module ${module} from ${peer.host} (${peer.addr})`);
}

/** `rsync allowed access on module M from HOST (ADDR)`: the module is opened to the client. */
// rsync/clientserver.c: rsync_module
export function logModuleOpen(log: LogWriter, module: string, peer: Peer): void {
  log.line(`rsync allowed access on module ${module} from ${peer.host} (${peer.addr})`);
}

/** `max connections (N) reached` (the client is told `@ERROR: max connections (N) reached -- try again later`). */
// rsync/clientserver.c: rsync_module
export function logMaxConnections(log: LogWriter, max: number): void {
  log.line(`max connections (${max}) reached`);
}

/** Why authentication failed, in rsync's words (authenticate.c auth_server, check_secret). */
export type AuthFailureReason =
  | 'invalid challenge response'
  | 'no matching rule'
  | 'denied by rule'
  | 'no secrets file'
  | 'ignoring secrets file'
  | 'invalid username'
  | 'secret not found'
  | 'password mismatch';

/**
 * `auth failed on module M from HOST (ADDR) for USER: REASON`, or without ` for USER` when the
 * client's answer had no user (`invalid challenge response`). Takes the user name only: the
 * response digest is never logged.
 */
// rsync/authenticate.c: auth_server
export function logAuthFailure(log: LogWriter, module: string, peer: Peer, failure: { user?: LogBytes; reason: AuthFailureReason }): void {
  const head = `auth failed on module ${module} from ${peer.host} (${peer.addr})`;
  if (failure.reason === 'invalid challenge response' || failure.user === undefined) log.line(`${head}: ${failure.reason}`);
  else log.line(Buffer.concat([Buffer.from(`${head} for `), toBytes(failure.user), Buffer.from(`: ${failure.reason}`)]));
}

/** `secrets file must not be other-accessible (see strict modes option)`, logged before the `ignoring secrets file` failure. */
// rsync/authenticate.c: check_secret
export function logSecretsFileMode(log: LogWriter, problem: 'other-accessible' | 'not owned by root'): void {
  log.line(
    problem === 'other-accessible'
      ? 'secrets file must not be other-accessible (see strict modes option)'
      : 'secrets file must be owned by root when running as root (see strict modes)',
  );
}

/**
 * The request as rsync logs it: the arguments after the `.` of the client's argument list,
 * joined by spaces, no more appended once 1024 bytes are reached.
 */
// rsync/io.c: read_args (request_p)
export function requestFromArgs(args: readonly LogBytes[]): Buffer {
  const dot = args.findIndex((a) => toBytes(a).equals(Buffer.from('.')));
  const parts: Buffer[] = [];
  let length = 0;
  for (const arg of dot >= 0 ? args.slice(dot + 1) : []) {
    if (length >= 1024) break;
    const b = toBytes(arg);
    if (parts.length) parts.push(Buffer.from(' ')), length++;
    parts.push(b);
    length += b.length;
  }
  return Buffer.concat(parts);
}

/**
 * `rsync to|on REQUEST from [USER@]HOST (ADDR)`: `on` when the daemon sends (a pull), `to` when it
 * receives (a push); REQUEST is `requestFromArgs` (e.g. `module/dest/`). Nothing when the
 * request is empty, as rsync.
 */
// rsync/clientserver.c: rsync_module
export function logRequest(log: LogWriter, request: { sender: boolean; request: LogBytes; user: string }, peer: Peer): void {
  const req = toBytes(request.request);
  if (req.length === 0) return;
  const from = request.user ? `${request.user}@${peer.host}` : peer.host;
  log.line(Buffer.concat([Buffer.from(`rsync ${request.sender ? 'on' : 'to'} `), req, Buffer.from(` from ${from} (${peer.addr})`)]));
}

/** `building file list` (a sending daemon) or `receiving file list` (a receiving one). */
// rsync/flist.c: send_file_list / recv_file_list
export function logFileListStart(log: LogWriter, sender: boolean): void {
  log.line(sender ? 'building file list' : 'receiving file list');
}

/** `created directory NAME`: a push created its destination directory. */
// rsync/main.c: get_local_name
export function logCreatedDirectory(log: LogWriter, name: LogBytes): void {
  log.line(Buffer.concat([Buffer.from('created directory '), toBytes(name)]));
}

/** A message the daemon also sends to the client (MSG_ERROR, MSG_WARNING, MSG_INFO text), logged as written. */
// rsync/log.c: rwrite (a daemon logs every message it sends)
export function logError(log: LogWriter, text: LogBytes): void {
  log.line(text);
}

/** A config problem (`Unknown Parameter encountered: "x"`, ...) or any other line rsyncd logs as is. */
export function logText(log: LogWriter, text: LogBytes): void {
  log.line(text);
}


/** The figures of the per-connection summary (rsync's stats.total_written, total_read, total_size). */
export interface ConnectionTotals {
  /** Bytes the daemon wrote to the client's socket. */
  sent: number;
  /** Bytes the daemon read from it. */
  received: number;
  /** Sum of the sizes of the list's regular files and symlink targets. */
  totalSize: number;
}

/** `sent X bytes  received Y bytes  total size Z` (two spaces between the parts, plain digits). */
// rsync/log.c: log_exit (the FLOG line)
export function summaryLine(totals: ConnectionTotals): string {
  return `sent ${bigNum(totals.sent)} bytes  received ${bigNum(totals.received)} bytes  total size ${bigNum(totals.totalSize)}`;
}

/**
 * The end of a connection's transfer: the summary line (on success, or always for a sending
 * daemon, whose figures are final), then for a failure `rsync error: NAME (code N) at WHERE
 * [WHO=VERSION]` (`rsync warning:` for code 24). `where` names our source position in rsync's
 * `file.c(line)` shape; `who` is rsync's role name (`sender`, `receiver`, `generator`, `Receiver`).
 */
// rsync/log.c: log_exit
export function logExit(log: LogWriter, exit: { code: ExitCode; sender: boolean; totals: ConnectionTotals; where: string; who: string; version: string }): void {
  if (exit.code === 0 || exit.sender) log.line(summaryLine(exit.totals));
  if (exit.code === 0) return;
  log.line(exitErrorLine(exit.code, exit.where, exit.who, exit.version));
}

