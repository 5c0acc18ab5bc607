// -S/--sparse on the receiving side: a file's data written with its runs of zeros left as holes,
// as rsync's write_sparse leaves them (docs/options.md, `-S, --sparse`). Zeros at either end of a
// write are held back (they may join the zeros of the next write), a run of SPARSE_WRITE_SIZE
// zeros or more inside one is a hole, shorter runs are written with the data around them; a hole
// is made by moving the write position past it, and `end` gives the file its length
// (ftruncate), so a file that ends in zeros ends in a hole. In place (--inplace), a hole inside
// the file's old data is punched (fallocate through the addon, as rsync's do_punch_hole), or its
// zeros written where the filesystem (or a missing addon) cannot.
// Counterpart: rsync fileio.c write_sparse, flush_sparse_hole, sparse_end; syscall.c
// do_punch_hole; receiver.c receive_data (the ftruncate to 0 of a whole file rewritten in place).
import { ftruncateSync, writeSync } from 'node:fs';
import { punchHole } from '../addon.js';

/** rsync.h SPARSE_WRITE_SIZE: the shortest run of zeros inside a write that becomes a hole. */
export const SPARSE_WRITE_SIZE = 1024;

/** Zeros for a hole inside a file's old data where none can be punched (rsync's last resort). */
const ZEROS = Buffer.alloc(64 * 1024);

/**
 * One file's sparse writer over an open descriptor. `offset` is where the data starts (an
 * --append starts past the kept part); `keepBelow` is the file's old length when it is rewritten
 * in place: a hole starting below it is punched (or written as zeros).
 */
// rsync/fileio.c: write_sparse (its static sparse_seek / sparse_past_write state, one per file here)
export class SparseWriter {
  /** Where the next byte written lands (after the held-back zeros). */
  private at: number;
  /** Zeros held back at `at` (rsync's sparse_seek). */
  private held = 0;

  constructor(
    private readonly fd: number,
    offset = 0,
    private readonly keepBelow = 0,
  ) {
    this.at = offset;
  }

  /** The file's length so far: what was written, and the zeros held back. */
  get length(): number {
    return this.at + this.held;
  }

  // rsync/fileio.c: write_sparse
  write(bytes: Uint8Array): void {
    this.scan(bytes, false);
  }

  /**
   * In place: `length` bytes already right on disk, passed over (rsync's skip_matched). Given
   * those bytes, their runs of zeros become holes as a write's would (punched into the old data,
   * as rsync's --inplace --sparse keeps a basis sparse); without them the part is passed whole.
   */
  // rsync/fileio.c: skip_matched (sparse_files: write_file with use_seek)
  skip(length: number, bytes?: Uint8Array): void {
    if (bytes && bytes.length === length) return this.scan(bytes, true);
    this.flushHole();
    this.at += length;
  }

  /** write_sparse's scan; `seek`: the data is on disk already and is passed over, not written. */
  // rsync/fileio.c: write_sparse (use_seek)
  private scan(bytes: Uint8Array, seek: boolean): void {
    const len = bytes.length;
    let lead = 0;
    while (lead < len && bytes[lead] === 0) lead++;
    this.held += lead;
    if (lead === len) return;
    let trail = 0;
    while (trail < len - lead && bytes[len - 1 - trail] === 0) trail++;
    const end = len - trail;
    let start = lead;
    for (let i = lead; i < end; ) {
      if (bytes[i] !== 0) {
        i++;
        continue;
      }
      let run = 1;
      while (i + run < end && bytes[i + run] === 0) run++;
      if (run >= SPARSE_WRITE_SIZE) {
        if (i > start) this.emit(bytes, start, i, seek);
        this.held += run;
        start = i + run;
      }
      i += run;
    }
    if (end > start) this.emit(bytes, start, end, seek);
    this.held = trail;
  }

  /** The end of the data: the file cut or extended to its length (a final hole included). */
  // rsync/fileio.c: sparse_end
  end(): number {
    const length = this.length;
    this.flushHole();
    ftruncateSync(this.fd, length);
    return length;
  }

  /** The held-back zeros: passed over, or written where they lie inside old data (rsync's flush_sparse_hole). */
  // rsync/fileio.c: flush_sparse_hole
  private flushHole(): void {
    if (!this.held) return;
    // Past the old data a hole is passed over; inside it rsync punches one (the whole run, its
    // length kept), or writes the zeros where neither punching nor zeroing a range works.
    if (this.at < this.keepBelow && !punchHole(this.fd, this.at, this.held)) {
      for (let pos = this.at, stop = Math.min(this.at + this.held, this.keepBelow); pos < stop; ) {
        pos += writeSync(this.fd, ZEROS, 0, Math.min(ZEROS.length, stop - pos), pos);
      }
    }
    this.at += this.held;
    this.held = 0;
  }

  /** Data that is not a hole, written at its place after any hole before it (`seek`: passed over). */
  // rsync/fileio.c: emit_sparse_span
  private emit(bytes: Uint8Array, from: number, to: number, seek: boolean): void {
    this.flushHole();
    if (seek) {
      this.at += to - from;
      return;
    }
    for (let at = from; at < to; ) {
      const n = writeSync(this.fd, bytes, at, to - at, this.at);
      at += n;
      this.at += n;
    }
  }
}
