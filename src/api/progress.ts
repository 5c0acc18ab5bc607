// onProgress for push() and pull(): how far the file on the wire has come, while it goes, and
// the transfer's totals beside it, as plain numbers and names (a string, its raw bytes beside it).
// Fed by the same hooks the CLI's --progress uses (the sender's onTransferStart/onFileBytes, the
// receiver's onReceiveStart/onReceiveBytes/onReceived), throttled: a call when a file starts, at
// most one per PROGRESS_BYTES or PROGRESS_MS while it goes, and one when it has gone.
// Counterpart: rsync progress.c (show_progress, end_progress), without the terminal.
import type { FileEntry } from '../../protocol/flist.js';
import { shownName } from '../transfer/output.js';

/** One report of a running transfer. */
export interface TransferProgress {
  /** The file whose data is going, relative to the transfer's root, escaped as rsync shows names. */
  path: string;
  /** The same name as its raw bytes (names need not be UTF-8). */
  pathBytes: Buffer;
  /** How far this file has come: its bytes read for sending (push) or written (pull). */
  bytes: number;
  /** This file's size in the file list. */
  size: number;
  /** Files whose data has gone completely so far (rsync's xfr#). */
  filesDone: number;
  /** Regular files in the file list: the most that can be transferred. */
  filesTotal: number;
  /** Bytes of every file's data so far, this one's included. */
  bytesDone: number;
}

export type ProgressFn = (progress: TransferProgress) => void;

/** A file's report waits for this many more bytes ... */
export const PROGRESS_BYTES = 1 << 20;
/** ... or, once some have come, this many ms since the last one. */
export const PROGRESS_MS = 100;

/** The throttled reports of one transfer: feed it the file list, each file's start, bytes and end. */
export class ProgressReporter {
  private filesTotal = 0;
  private filesDone = 0;
  /** Bytes of the files done. */
  private doneBytes = 0;
  private current: { ndx: number; entry: FileEntry; pathBytes: Buffer; path: string } | undefined;
  private lastBytes = 0;
  private lastTime = 0;

  constructor(
    private readonly onProgress: ProgressFn,
    private readonly now: () => number = Date.now,
  ) {}

  /** The file list is known: how many regular files it holds. */
  fileList(regularFiles: number): void {
    this.filesTotal = regularFiles;
  }

  /** A file's data starts (again, for a redo: its bytes count from 0). */
  // rsync/sender.c: send_files (set_current_file_index before the data)
  started(ndx: number, entry: FileEntry): void {
    const name = Buffer.from(entry.name);
    this.current = { ndx, entry, pathBytes: name, path: shownName(entry.name) };
    this.report(0, true);
  }

  /** `bytes` of the current file have come. */
  // rsync/progress.c: show_progress
  advanced(entry: FileEntry, bytes: number): void {
    if (!this.current || this.current.entry !== entry) return;
    const now = this.now();
    if (bytes - this.lastBytes < PROGRESS_BYTES && (bytes === this.lastBytes || now - this.lastTime < PROGRESS_MS)) return;
    this.report(bytes, false, now);
  }

  /** The file `ndx` has gone (its request answered, or its data received). */
  // rsync/progress.c: end_progress
  finished(ndx: number): void {
    const current = this.current;
    if (!current || current.ndx !== ndx) return;
    this.filesDone++;
    this.doneBytes += current.entry.size;
    this.report(current.entry.size, true, this.now(), true);
    this.current = undefined;
  }

  private report(bytes: number, force: boolean, now = this.now(), done = false): void {
    const current = this.current!;
    if (!force && bytes === this.lastBytes) return;
    this.lastBytes = bytes;
    this.lastTime = now;
    this.onProgress({
      path: current.path,
      pathBytes: current.pathBytes,
      bytes,
      size: current.entry.size,
      filesDone: this.filesDone,
      filesTotal: this.filesTotal,
      bytesDone: this.doneBytes + (done ? 0 : bytes),
    });
  }
}
