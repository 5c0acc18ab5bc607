// What a transfer prints, in rsync's formats: terminal text escaped as rsync escapes it (the
// daemon's messages, listing lines, received names), itemized changes (-i, "%i %n%L"), names
// (-v), the --stats block and the closing summary of a push or a pull (one TransferSummary).
// Counterpart: rsync log.c rwrite, log_formatted; main.c output_summary.
import type { FileEntry } from '../../protocol/flist.js';
import { exitCodeName, type ExitCode } from '../../protocol/errors.js';
import { S_IFMT, S_IFDIR, S_IFLNK, S_IFREG, S_IFBLK, S_IFCHR, S_IFSOCK, S_IFIFO, S_ISUID, S_ISGID, S_ISVTX, S_IXUSR, S_IXGRP, S_IXOTH } from '../../protocol/modes.js';
import {
  ITEM_LOCAL_CHANGE,
  ITEM_XNAME_FOLLOWS,
  ITEM_TRANSFER,
  ITEM_REPORT_TIME,
  ITEM_REPORT_SIZE,
  ITEM_REPORT_CHANGE,
  ITEM_REPORT_PERMS,
  ITEM_REPORT_OWNER,
  ITEM_REPORT_GROUP,
  ITEM_REPORT_ATIME,
  ITEM_REPORT_CRTIME,
  ITEM_REPORT_ACL,
  ITEM_REPORT_XATTR,
  ITEM_IS_NEW,
  ITEM_MISSING_DATA,
  ITEM_REPORT_TIMEFAIL,
  type DeleteStats,
} from '../../protocol/constants.js';

import { escapeLine, shownName, type OutputCharset } from '../../protocol/terminal-text.js';
export { escapeLine, shownName, type OutputCharset };

/** The locale's charset as rsync would see it (setlocale(LC_CTYPE, "") then nl_langinfo(CODESET)). */
export function charsetFromEnv(env: NodeJS.ProcessEnv): OutputCharset {
  const locale = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  return /utf-?8/i.test(locale) ? 'utf8' : 'ascii';
}

/**
 * A daemon's message text (MSG_INFO, MSG_ERROR, ...) as rsync shows it: the bytes written
 * through, escaped as escapeLine escapes them, since rsync passes these texts to the same rwrite.
 * The result is ASCII or valid UTF-8, so the string loses nothing of what is printed.
 */
// rsync/log.c: rwrite (a message from read_a_msg)
export function messageText(bytes: Uint8Array, charset: OutputCharset): string {
  return escapeLine(bytes, charset).toString('utf8');
}


/** rsync's 11-character %i for an item we sent (direction '<'). */
// rsync/log.c: log_formatted ('i')
export function itemizeString(iflags: number, mode: number, preserveTimes = true): string {
  return itemizeFlags(iflags, mode, { transfer: '<', preserveTimes, symlinkTimes: true });
}

/**
 * rsync's 11-character %i, from either side: `transfer` is the first character of an item that
 * moves data ('<' sent, '>' received), `preserveTimes` is -t, `symlinkTimes` whether the receiver
 * sets symlink times (rsync's receiver_symlink_times; without it a symlink's time shows as 'T').
 */
// rsync/log.c: log_formatted ('i')
export function itemizeFlags(iflags: number, mode: number, options: { transfer: '<' | '>'; preserveTimes: boolean; symlinkTimes: boolean }): string {
  const { transfer, preserveTimes, symlinkTimes } = options;
  const type = mode & S_IFMT;
  const c: string[] = [];
  c[0] = iflags & ITEM_LOCAL_CHANGE ? (iflags & ITEM_XNAME_FOLLOWS ? 'h' : 'c') : !(iflags & ITEM_TRANSFER) ? '.' : transfer;
  if (type === S_IFLNK) {
    c[1] = 'L';
    c[3] = '.';
    c[4] = !(iflags & ITEM_REPORT_TIME) ? '.' : !preserveTimes || !symlinkTimes || iflags & ITEM_REPORT_TIMEFAIL ? 'T' : 't';
  } else {
    c[1] = type === S_IFDIR ? 'd' : type === S_IFREG ? 'f' : type === S_IFBLK || type === S_IFCHR ? 'D' : 'S';
    c[3] = iflags & ITEM_REPORT_SIZE ? 's' : '.';
    c[4] = !(iflags & ITEM_REPORT_TIME) ? '.' : !preserveTimes ? 'T' : 't';
  }
  c[2] = iflags & ITEM_REPORT_CHANGE ? 'c' : '.';
  c[5] = iflags & ITEM_REPORT_PERMS ? 'p' : '.';
  c[6] = iflags & ITEM_REPORT_OWNER ? 'o' : '.';
  c[7] = iflags & ITEM_REPORT_GROUP ? 'g' : '.';
  const times = iflags & (ITEM_REPORT_ATIME | ITEM_REPORT_CRTIME);
  c[8] = !times ? '.' : times === (ITEM_REPORT_ATIME | ITEM_REPORT_CRTIME) ? 'b' : iflags & ITEM_REPORT_ATIME ? 'u' : 'n';
  c[9] = iflags & ITEM_REPORT_ACL ? 'a' : '.';
  c[10] = iflags & ITEM_REPORT_XATTR ? 'x' : '.';
  if (iflags & (ITEM_IS_NEW | ITEM_MISSING_DATA)) {
    const ch = iflags & ITEM_IS_NEW ? '+' : '?';
    for (let i = 2; i < 11; i++) c[i] = ch;
  } else if ((c[0] === '.' || c[0] === 'h' || c[0] === 'c') && c.slice(2).every((x) => x === '.')) {
    for (let i = 2; i < 11; i++) c[i] = ' ';
  }
  return c.join('');
}

/** %n%L as bytes: the name (directories with a trailing slash, '.' as './'), and " -> target" for symlinks. */
// rsync/log.c: log_formatted ('n', 'L')
export function itemNameBytes(entry: FileEntry): Buffer {
  const type = entry.mode & S_IFMT;
  if (type === S_IFDIR) return Buffer.concat([entry.name, Buffer.from('/')]);
  if (type === S_IFLNK && entry.symlink) return Buffer.concat([entry.name, Buffer.from(' -> '), entry.symlink]);
  return Buffer.from(entry.name);
}

/** %n%L as text for a log line: escaped as rsync escapes it (a newline as \#012, invalid UTF-8 as \#ooo). */
export function itemName(entry: FileEntry): string {
  return shownName(itemNameBytes(entry));
}


/**
 * One output line of parts (text and raw names), escaped as rsync escapes terminal output, with
 * its newline: what -v, -i and the deletions print.
 */
// rsync/log.c: rwrite
export function outputLine(parts: ReadonlyArray<string | Uint8Array>, charset: OutputCharset): Buffer {
  return escapeLine(Buffer.concat([...parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)), Buffer.from('\n')]), charset);
}

/** What a client prints per item: -i's "%i %n%L", -v's "%n%L" (rsync's stdout_format). */
export interface ItemLineOptions {
  itemize: boolean;
  verbose: number;
  /** -t: a changed time shows as 't', else 'T'. */
  times: boolean;
}

/**
 * The line -i or -v prints for one item of a push (parts for outputLine), or null when it prints
 * none: -i every item the daemon itemized, -v the transferred and the new ones. `--once` prints
 * it, the live mirror logs it: one home for both.
 */
// rsync/log.c: log_item (the client's stdout_format)
export function sentItemLine(item: { iflags: number; entry: FileEntry }, o: ItemLineOptions): Array<string | Uint8Array> | null {
  if (o.itemize) return [`${itemizeString(item.iflags, item.entry.mode, o.times)} `, itemNameBytes(item.entry)];
  if (o.verbose && item.iflags & (ITEM_TRANSFER | ITEM_IS_NEW)) return [itemNameBytes(item.entry)];
  return null;
}

/** The line -i or -v prints for a deletion the daemon reports (MSG_DELETED), or null. */
// rsync/log.c: log_delete (the client's side)
export function deletedLine(name: Uint8Array, isDir: boolean, o: ItemLineOptions): Array<string | Uint8Array> | null {
  const shown = isDir ? Buffer.concat([name, Buffer.from('/')]) : name;
  if (o.itemize) return ['*deleting   ', shown];
  if (o.verbose) return ['deleting ', shown];
  return null;
}

/** One line of parts as a log line's text: escaped as outputLine escapes it, without the newline. */
export function logText(parts: ReadonlyArray<string | Uint8Array>): string {
  return outputLine(parts, 'utf8').subarray(0, -1).toString('utf8');
}

/**
 * What a client prints once the file list is built or received: -v's "building file list ...
 * done"; with --progress (rsync's FLIST2) the count instead, after " N files...\r" for every
 * hundredth entry the sender added (the receiver shows none below 100).
 */
// rsync/flist.c: start_filelist_progress, maybe_emit_filelist_progress, finish_filelist_progress
export function fileListText(kind: 'building' | 'receiving', count: number, progress: boolean): string {
  if (!progress) return `${kind} file list ... done\n`;
  let text = `${kind} file list ... `;
  const counted: number[] = [];
  if (kind === 'building') for (let n = 0; n < count; n += 100) counted.push(n);
  else for (let n = 100; n <= count; n += 100) counted.push(n);
  if (counted.length) text += '\n' + counted.map((n) => ` ${n} files...\r`).join('');
  return `${text}${count} file${count === 1 ? ' ' : 's '}to consider\n`;
}

/** rsync's comma-grouped numbers (human_num with the default --human-readable level 1). */
export function commas(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function counts(entries: readonly FileEntry[]): string {
  let reg = 0,
    dir = 0,
    link = 0,
    dev = 0,
    special = 0;
  for (const e of entries) {
    const t = e.mode & S_IFMT;
    if (t === S_IFREG) reg++;
    else if (t === S_IFDIR) dir++;
    else if (t === S_IFLNK) link++;
    else if (t === S_IFBLK || t === S_IFCHR) dev++;
    else special++;
  }
  const parts = [
    reg && `reg: ${commas(reg)}`,
    dir && `dir: ${commas(dir)}`,
    link && `link: ${commas(link)}`,
    dev && `dev: ${commas(dev)}`,
    special && `special: ${commas(special)}`,
  ].filter(Boolean);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/**
 * What a finished push or pull reports for rsync's --stats block and closing summary. A figure
 * rsync does not print for the transfer is absent (see PullResult and PushResult for which).
 */
export interface TransferSummary {
  exitCode: number;
  /** The protocol spoken. */
  protocol: number;
  /** The file list as counted by "Number of files" (a pull: its active entries). */
  entries: readonly FileEntry[];
  /** Entries new at the destination ("Number of created files"). */
  created?: readonly FileEntry[];
  stats: {
    transferredFiles: number;
    totalTransferredSize: number;
    literalBytes: number;
    matchedBytes: number;
    /** Items deleted at the destination ("Number of deleted files"; null: none). */
    deleted?: DeleteStats | null;
  };
  /** Sizes of the regular files and symlinks of the list. */
  totalSize: number;
  /** Bytes of the file list on the wire. */
  flistBytes: number;
  /** Seconds spent building the file list and sending it ("File list generation/transfer time"). */
  flistSeconds?: { build: number; transfer: number };
  bytesSent: number;
  bytesReceived: number;
}

/**
 * The closing lines of a transfer: with --stats the statistics block, with --stats or -v the
 * two summary lines, each block after an empty line.
 */
// rsync/main.c: output_summary
export function outputSummary(
  summary: TransferSummary,
  options: { stats: boolean; verbose: number; dryRun: boolean; elapsedSeconds: number; humanReadable?: number },
): string[] {
  const lines: string[] = [];
  const human = options.humanReadable ?? 1;
  if (options.stats) lines.push('', ...statsLines(summary, human));
  if (options.stats || options.verbose) lines.push('', ...summaryLines(summary, options.elapsedSeconds, options.dryRun, human));
  return lines;
}

/** The --stats block: the figures the transfer has, in rsync's order. */
function statsLines(summary: TransferSummary, human: number): string[] {
  const size = (n: number) => bigNum(Math.round(n), human);
  const s = summary.stats;
  const lines = [`Number of files: ${commas(summary.entries.length)}${counts(summary.entries)}`];
  if (summary.created) lines.push(`Number of created files: ${commas(summary.created.length)}${counts(summary.created)}`);
  if (s.deleted !== undefined) {
    const deleted = s.deleted;
    const deletedTotal = deleted ? deleted.files + deleted.dirs + deleted.symlinks + deleted.devices + deleted.specials : 0;
    lines.push(
      `Number of deleted files: ${commas(deletedTotal)}${
        deleted && deletedTotal
          ? ` (${[
              deleted.files && `reg: ${commas(deleted.files)}`,
              deleted.dirs && `dir: ${commas(deleted.dirs)}`,
              deleted.symlinks && `link: ${commas(deleted.symlinks)}`,
              deleted.devices && `dev: ${commas(deleted.devices)}`,
              deleted.specials && `special: ${commas(deleted.specials)}`,
            ]
              .filter(Boolean)
              .join(', ')})`
          : ''
      }`,
    );
  }
  lines.push(
    `Number of regular files transferred: ${commas(s.transferredFiles)}`,
    `Total file size: ${size(summary.totalSize)} bytes`,
    `Total transferred file size: ${size(s.totalTransferredSize)} bytes`,
    `Literal data: ${size(s.literalBytes)} bytes`,
    `Matched data: ${size(s.matchedBytes)} bytes`,
    `File list size: ${size(summary.flistBytes)}`,
  );
  if (summary.flistSeconds) {
    lines.push(`File list generation time: ${summary.flistSeconds.build.toFixed(3)} seconds`, `File list transfer time: ${summary.flistSeconds.transfer.toFixed(3)} seconds`);
  }
  lines.push(`Total bytes sent: ${size(summary.bytesSent)}`, `Total bytes received: ${size(summary.bytesReceived)}`);
  return lines;
}

/**
 * "sent X bytes  received Y bytes  Z bytes/sec" and "total size is N  speedup is M", the sizes
 * at rsync's --human-readable level `human` (1: commas; -h: units of 1000; -hh: of 1024).
 */
function summaryLines(summary: TransferSummary, elapsedSeconds: number, dryRun: boolean, human: number): string[] {
  const rate = (summary.bytesSent + summary.bytesReceived) / Math.max(elapsedSeconds, 0.001);
  const moved = summary.bytesSent + summary.bytesReceived;
  const speedup = moved ? summary.totalSize / moved : 0;
  const size = (n: number) => bigNum(Math.round(n), human);
  const twoDecimals = (x: number) => x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  return [
    `sent ${size(summary.bytesSent)} bytes  received ${size(summary.bytesReceived)} bytes  ${humanRate(rate, human, twoDecimals)} bytes/sec`,
    `total size is ${size(summary.totalSize)}  speedup is ${twoDecimals(speedup)}${dryRun ? ' (DRY RUN)' : ''}`,
  ];
}

/** A rate as rsync's human_dnum(rate, 2) prints it: two decimals below 1000, else as a size. */
// rsync/lib/compat.c: do_big_dnum
function humanRate(rate: number, human: number, twoDecimals: (x: number) => string): string {
  if (human <= 1 || rate < 1000) return twoDecimals(rate);
  return bigNum(Math.trunc(rate), human);
}

/** `drwxr-xr-x`: the type character, then the permissions with s/S/t/T. */
// rsync/lib/permstring.c: permstring
export function permString(mode: number): string {
  const chars = '----------'.split('');
  const map = 'rwxrwxrwx';
  for (let i = 0; i < 9; i++) if (mode & (1 << i)) chars[9 - i] = map[8 - i]!;
  if (mode & S_ISUID) chars[3] = mode & S_IXUSR ? 's' : 'S';
  if (mode & S_ISGID) chars[6] = mode & S_IXGRP ? 's' : 'S';
  if (mode & S_ISVTX) chars[9] = mode & S_IXOTH ? 't' : 'T';
  const type = mode & S_IFMT;
  if (type === S_IFDIR) chars[0] = 'd';
  else if (type === S_IFLNK) chars[0] = 'l';
  else if (type === S_IFBLK) chars[0] = 'b';
  else if (type === S_IFCHR) chars[0] = 'c';
  else if (type === S_IFSOCK) chars[0] = 's';
  else if (type === S_IFIFO) chars[0] = 'p';
  return chars.join('');
}

/** `YYYY/MM/DD hh:mm:ss` in local time (seconds or a Date), cut to 19 characters as rsync's 20-byte buffer cuts it. */
// rsync/util1.c: timestring
export function timeString(when: number | Date): string {
  const d = typeof when === 'number' ? new Date(when * 1000) : when;
  if (Number.isNaN(d.getTime())) return '(time out of range)';
  const two = (n: number) => String(n).padStart(2, '0');
  const text = `${String(d.getFullYear()).padStart(4, ' ')}/${two(d.getMonth() + 1)}/${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  return text.slice(0, 19);
}

/**
 * rsync's numbers: plain digits (`big_num`); with `humanize` (the listing's -h level 1, or the
 * apostrophes of a daemon's `log format` escape): one groups thousands with ',' (rsync in the C locale, as a daemon runs), two give
 * K/M/G/T/P units of 1000, three or more units of 1024, with two decimals.
 */
// rsync/lib/compat.c: do_big_num
export function bigNum(value: number | bigint, humanize = 0): string {
  const num = BigInt(value);
  if (humanize > 1) {
    const mult = humanize === 2 ? 1000 : 1024;
    if (num >= BigInt(mult) || num <= -BigInt(mult)) {
      let dnum = Math.abs(Number(num)) / mult;
      let units = 'K';
      if (dnum >= mult) {
        const next = ['M', 'G', 'T'];
        units = 'P';
        for (const u of next) {
          dnum /= mult;
          if (dnum < mult) {
            units = u;
            break;
          }
        }
        if (units === 'P') dnum /= mult;
      }
      return `${num < 0n ? '-' : ''}${toFixed2(dnum)}${units}`;
    }
  }
  const digits = (num < 0n ? -num : num).toString();
  let grouped = digits;
  if (humanize > 0) grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (num < 0n ? '-' : '') + grouped;
}

/** printf's "%.2f": like toFixed(2), but an exact tie (a double on an odd eighth) rounds to even as glibc does. */
function toFixed2(x: number): string {
  if (Number.isInteger(x * 8) && !Number.isInteger(x * 4)) {
    const lo = Math.floor(x * 100);
    return ((lo % 2 === 0 ? lo : lo + 1) / 100).toFixed(2);
  }
  return x.toFixed(2);
}

/**
 * The line a failed run of ours ends with: rsync's name for the exit code (log.c rerr_names, as
 * its client's closing `rsync error:` line gives it), without rsync's source position.
 */
// rsync/log.c: log_exit (the client's closing line)
export function closingLine(code: ExitCode): string {
  return `lsyncd error: ${exitCodeName(code)} (code ${code})`;
}
