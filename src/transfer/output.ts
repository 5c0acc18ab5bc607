// What a push prints, in rsync's formats: itemized changes (-i, "%i %n%L"), names (-v),
// deletions, the --stats block and the closing summary. Counterpart: rsync log.c log_formatted,
// main.c output_summary.
import type { FileEntry } from '../../protocol/flist.js';
import { S_IFMT, S_IFDIR, S_IFLNK, S_IFREG, S_IFBLK, S_IFCHR } from '../../protocol/modes.js';
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
} from '../../protocol/constants.js';
import type { PushResult } from './push.js';

/** rsync's 11-character %i for an item we sent (direction '<'). */
// rsync/log.c: log_formatted ('i')
export function itemizeString(iflags: number, mode: number, preserveTimes = true): string {
  const type = mode & S_IFMT;
  const c: string[] = [];
  c[0] = iflags & ITEM_LOCAL_CHANGE ? (iflags & ITEM_XNAME_FOLLOWS ? 'h' : 'c') : !(iflags & ITEM_TRANSFER) ? '.' : '<';
  if (type === S_IFLNK) {
    c[1] = 'L';
    c[3] = '.';
    c[4] = !(iflags & ITEM_REPORT_TIME) ? '.' : !preserveTimes || iflags & ITEM_REPORT_TIMEFAIL ? 'T' : 't';
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

/** %n%L: the name (directories with a trailing slash), and " -> target" for symlinks. */
export function itemName(entry: FileEntry): string {
  const type = entry.mode & S_IFMT;
  let name = entry.name.toString();
  if (type === S_IFDIR) name = name === '.' ? './' : `${name}/`;
  if (type === S_IFLNK && entry.symlink) name += ` -> ${entry.symlink.toString()}`;
  return name;
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

/** The --stats block (without the closing summary). */
// rsync/main.c: output_summary
export function statsLines(result: PushResult, entries: readonly FileEntry[], created: readonly FileEntry[], seconds: { flistBuild: number; flistXfer: number }): string[] {
  const s = result.stats;
  const deleted = s.deleted;
  const deletedTotal = deleted ? deleted.files + deleted.dirs + deleted.symlinks + deleted.devices + deleted.specials : 0;
  return [
    `Number of files: ${commas(entries.length)}${counts(entries)}`,
    `Number of created files: ${commas(created.length)}${counts(created)}`,
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
    `Number of regular files transferred: ${commas(s.transferredFiles)}`,
    `Total file size: ${commas(result.totalSize)} bytes`,
    `Total transferred file size: ${commas(s.totalTransferredSize)} bytes`,
    `Literal data: ${commas(s.literalBytes)} bytes`,
    `Matched data: ${commas(s.matchedBytes)} bytes`,
    `File list size: ${commas(result.flistBytes)}`,
    `File list generation time: ${seconds.flistBuild.toFixed(3)} seconds`,
    `File list transfer time: ${seconds.flistXfer.toFixed(3)} seconds`,
    `Total bytes sent: ${commas(result.bytesSent)}`,
    `Total bytes received: ${commas(result.bytesReceived)}`,
  ];
}

/** "sent X bytes  received Y bytes  Z bytes/sec" and "total size is N  speedup is M". */
export function summaryLines(result: PushResult, elapsedSeconds: number, dryRun: boolean): string[] {
  const rate = (result.bytesSent + result.bytesReceived) / Math.max(elapsedSeconds, 0.001);
  const moved = result.bytesSent + result.bytesReceived;
  const speedup = moved ? result.totalSize / moved : 0;
  return [
    `sent ${commas(result.bytesSent)} bytes  received ${commas(result.bytesReceived)} bytes  ${rate.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })} bytes/sec`,
    `total size is ${commas(result.totalSize)}  speedup is ${speedup.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}${dryRun ? ' (DRY RUN)' : ''}`,
  ];
}
