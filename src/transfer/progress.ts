// --progress and --info=progress2 of a client, in rsync's format: per file, the line
// "\r  1,234,567  45%   12.34MB/s    0:00:01  " rewritten at most once a second while the data
// goes, then the file's last line ending " (xfr#N, to-chk=M/T)\n"; with progress2 one line for
// the whole transfer, never ended until something else is printed. Rates are rsync's: the last
// five seconds while a file goes, the whole file (progress2: the whole transfer) at its end.
// Counterpart: rsync progress.c (show_progress, end_progress, rprint_progress).
import { bigNum } from './output.js';

/** How many seconds of history the rate of a running file is taken over (rsync's PROGRESS_HISTORY_SECS). */
const HISTORY_SECS = 5;
/** A file's line is rewritten at most this often, ms. */
const UPDATE_MS = 1000;
/** rsync guesses a file's data started when the last one's ended, if that was this recent, ms. */
const START_GUESS_MS = 1500;

interface Mark {
  /** ms (0: never). */
  time: number;
  ofs: number;
}

export interface ProgressOptions {
  /** 1: --progress (per file), 2: --info=progress2 (the whole transfer). */
  level: 1 | 2;
  /** rsync's --human-readable level (1: commas, 2: units of 1000, 3: of 1024). */
  humanReadable: number;
  /** Where the text goes (stdout, unescaped: it carries no names). */
  write: (text: string) => void;
  /** The clock, ms (tests). Default: Date.now. */
  now?: () => number;
}

export class TransferProgress {
  /** A line without its newline is on the output: whatever is printed next starts with one. */
  needsNewline = false;
  private readonly now: () => number;
  private start: Mark = { time: 0, ofs: 0 };
  private readonly history: Mark[] = Array.from({ length: HISTORY_SECS }, () => ({ time: 0, ofs: 0 }));
  private newest = 0;
  private oldest = 0;
  private lastEolLength = 0;
  // rsync's stats the lines show: files started, their bytes, the list's files and bytes.
  private transferredFiles = 0;
  private transferredSize = 0;
  private totalSize = 0;
  private numFiles = 0;
  private currentIndex = 0;

  constructor(private readonly o: ProgressOptions) {
    this.now = o.now ?? Date.now;
  }

  /** The file list is known: how many entries, how many bytes (regular files and symlinks). */
  fileList(numFiles: number, totalSize: number): void {
    this.numFiles = numFiles;
    this.totalSize = totalSize;
  }

  /** A file's data starts (rsync counts it as transferred from here). */
  // rsync/sender.c: send_files (stats.xferred_files++, set_current_file_index)
  fileStarted(ndx: number, size: number): void {
    this.transferredFiles++;
    this.transferredSize += size;
    this.currentIndex = ndx;
  }

  /** `ofs` bytes of a file of `size` have gone: a line if the last one is a second old. */
  // rsync/progress.c: show_progress
  advance(ofs: number, size: number): void {
    const now = this.now();
    if (this.o.level === 2) {
      ofs = this.transferredSize - size + ofs;
      size = this.totalSize;
    }
    if (this.start.time === 0) {
      const last = this.history[this.newest]!;
      this.start = now - last.time <= START_GUESS_MS ? { time: last.time, ofs: 0 } : { time: now, ofs };
      for (let i = 0; i < HISTORY_SECS; i++) this.history[i] = { ...this.start };
    } else {
      if (now - this.history[this.newest]!.time < UPDATE_MS) return;
      this.newest = this.oldest;
      this.oldest = (this.oldest + 1) % HISTORY_SECS;
      this.history[this.newest] = { time: now, ofs };
    }
    this.print(ofs, size, now, false);
  }

  /** A file's data has gone (`size` bytes): its last line. */
  // rsync/progress.c: end_progress
  fileDone(size: number): void {
    const now = this.now();
    if (this.o.level === 2) return this.print(this.transferredSize, this.totalSize, now, true);
    this.print(size, size, now, true);
    this.start = { time: 0, ofs: 0 };
  }

  /** A phase of the transfer ended: progress2 shows the whole transfer's line again. */
  // rsync/sender.c: send_files (NDX_DONE: set_current_file_index(NULL), end_progress(0))
  phaseDone(): void {
    if (this.o.level !== 2) return;
    this.currentIndex = this.numFiles - 1;
    this.fileDone(0);
  }

  /** The line left open (progress2, or a file cut short) is ended. */
  finish(): void {
    if (this.needsNewline) this.o.write('\n');
    this.needsNewline = false;
  }

  // rsync/progress.c: rprint_progress
  private print(ofs: number, size: number, now: number, isLast: boolean): void {
    let eol: string;
    let rate: number;
    let remain: number;
    if (isLast) {
      eol = ` (xfr#${this.transferredFiles}, to-chk=${this.numFiles - this.currentIndex - 1}/${this.numFiles})`;
      if (this.o.level === 2) {
        // No newline: the line stays to be rewritten, padded where it got shorter.
        this.lastEolLength = Math.max(this.lastEolLength, eol.length);
        eol = eol.padEnd(this.lastEolLength);
        isLast = false;
      } else {
        eol += '\n';
      }
      const diff = this.start.time === 0 ? 1 : now - this.start.time || 1;
      rate = ((ofs - this.start.ofs) * 1000) / diff / 1024;
      remain = diff / 1000;
    } else {
      eol = '  ';
      const oldest = this.history[this.oldest]!;
      const diff = now - oldest.time || 1;
      rate = ((ofs - oldest.ofs) * 1000) / diff / 1024;
      remain = rate ? (size - ofs) / rate / 1000 : 0;
    }
    let units = 'kB/s';
    if (rate > 1024 * 1024) {
      rate /= 1024 * 1024;
      units = 'GB/s';
    } else if (rate > 1024) {
      rate /= 1024;
      units = 'MB/s';
    }
    const two = (n: number) => String(n).padStart(2, '0');
    const left =
      remain < 0 || remain > 9999 * 3600
        ? '  ??:??:??'
        : `${String(Math.trunc(remain / 3600)).padStart(4)}:${two(Math.trunc(remain / 60) % 60)}:${two(Math.trunc(remain) % 60)}`;
    const pct = ofs === size ? 100 : Math.trunc((100 * ofs) / size);
    this.o.write(`\r${bigNum(ofs, this.o.humanReadable).padStart(15)} ${String(pct).padStart(3)}% ${rate.toFixed(2).padStart(7)}${units} ${left}${eol}`);
    this.needsNewline = !isLast;
  }
}
