// One destination directory's names and lstats, read in one addon call (native/dirstat.cc
// readDirStats), for the generator's walk through the received list (docs/protocol.md
// [pull-generate]): a directory of many list entries is read once instead of one lstat (and one
// Node Stats object) per entry. Looked up by basename with a binary search over the packed
// records (the addon gives them in strcmp order), nothing made per record until a name is found.
// Counterpart: none in rsync (its generator lstats each name: generator.c recv_generator's
// link_stat); this is the per-directory batch docs/bench.md measures.
import { readlinkSync } from 'node:fs';
import type { LocalStat } from '../../protocol/local-tree.js';
import { DirRecords } from './dir-records.js';

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFBLK = 0o060000;
const S_IFCHR = 0o020000;

export class DirSnapshot {
  private readonly records: DirRecords;
  /** Offset of each record, in the buffer's (strcmp) order. */
  private readonly offsets: Uint32Array;

  /** `dirPath`: the directory's absolute path (a symlink's target is read below it). */
  constructor(
    private readonly dirPath: Buffer,
    buf: Buffer,
  ) {
    const r = (this.records = new DirRecords(buf));
    let count = 0;
    for (let at = 0; r.has(at); at = r.next(at)) count++;
    this.offsets = new Uint32Array(count);
    for (let i = 0, at = 0; i < count; i++, at = r.next(at)) this.offsets[i] = at;
  }

  /** Entries in the directory. */
  get length(): number {
    return this.offsets.length;
  }

  /** The directory's names (strcmp order), as readdir gives them: views of the read, no copies. */
  names(): Buffer[] {
    const r = this.records;
    return Array.from(this.offsets, (at) => r.buf.subarray(r.nameStart(at), r.nameStart(at) + r.nameLength(at)));
  }

  /**
   * The lstat of `base` (bytes `start..end` of `name`): null when the directory has no such
   * name, undefined when its stat failed in the addon (the caller asks lstat itself).
   */
  find(name: Uint8Array, start: number, end: number): LocalStat | null | undefined {
    const { records: r, offsets } = this;
    let low = 0;
    let high = offsets.length - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const at = offsets[mid]!;
      const from = r.nameStart(at);
      const diff = compareBytes(r.buf, from, from + r.nameLength(at), name, start, end);
      if (diff < 0) low = mid + 1;
      else if (diff > 0) high = mid - 1;
      else return this.stat(at, name, start, end);
    }
    return null;
  }

  /** The record at `at` as a LocalStat (the same fields DestTree.lstat gives). */
  private stat(at: number, name: Uint8Array, start: number, end: number): LocalStat | undefined {
    const r = this.records;
    if (r.failed(at)) return undefined;
    const mode = r.mode(at);
    const type = mode & S_IFMT;
    const st: LocalStat = {
      mode,
      size: r.size(at),
      mtime: r.mtime(at),
      mtimeNsec: r.mtimeNsec(at),
      uid: r.uid(at),
      gid: r.gid(at),
      dev: r.dev(at),
      ino: r.ino(at),
    };
    if (type === S_IFBLK || type === S_IFCHR) st.rdev = r.rdev(at);
    if (type === S_IFLNK) {
      try {
        st.symlink = readlinkSync(Buffer.concat([this.dirPath, Buffer.from('/'), name.subarray(start, end)]), { encoding: 'buffer' });
      } catch {
        return undefined; // changed since the read: the caller's own lstat says what it is now
      }
    }
    return st;
  }
}

/** strcmp on two byte ranges. */
function compareBytes(a: Uint8Array, aStart: number, aEnd: number, b: Uint8Array, bStart: number, bEnd: number): number {
  const n = Math.min(aEnd - aStart, bEnd - bStart);
  for (let i = 0; i < n; i++) {
    const d = a[aStart + i]! - b[bStart + i]!;
    if (d) return d;
  }
  return aEnd - aStart - (bEnd - bStart);
}
