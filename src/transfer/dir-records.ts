// The addon's one-call directory read (native/dirstat.cc readDirStats): its packed records, read
// in one place for both of its users — the sender's walk (scan.ts) and the generator's phase-0
// stats (dir-snapshot.ts). Each record, in host byte order: u32 err (0, or the errno of that
// entry's fstatat), u32 mode, u32 uid, u32 gid, u32 mtime_nsec, u32 nlink, u32 rdev_major,
// u32 rdev_minor, f64 size, f64 mtime_sec, u64 dev, u64 ino, u16 name_len, the name's bytes.
// Names come in strcmp order. Nothing is made per record: fields are read by offset.
// Counterpart: none in rsync (it lstats each name: flist.c make_file, generator.c link_stat).
import { endianness } from 'node:os';
import { loadAddon, type DirPrefetcher } from '../addon.js';

/** The addon's call: a directory's records, packed (throws an fs-style error); `noFollow`: O_NOFOLLOW on `path`. */
export type ReadDirStats = (path: Buffer, noFollow?: boolean) => Buffer;

/**
 * The addon's directory read, unless LSYNCD_JS_SCAN is set or the addon is missing: then the
 * callers use Node's readdir and lstat.
 */
export function nativeDirStats(): ReadDirStats | null {
  if (process.env['LSYNCD_JS_SCAN']) return null;
  return loadAddon(undefined, { quiet: true })?.readDirStats ?? null;
}

/** How many directories, and how many bytes of their records, a prefetcher holds read ahead at most. */
const PREFETCH_DIRS = 1024;
const PREFETCH_BYTES = 8 * 1024 * 1024;

/**
 * A reader of directories ahead of the sender's walk on a thread of its own (native/dir-prefetch.cc),
 * under the same switch as nativeDirStats; LSYNCD_DIR_PREFETCH=never turns it off alone.
 */
export function nativeDirPrefetch(options: { noFollow?: boolean } = {}): DirPrefetcher | null {
  if (process.env['LSYNCD_JS_SCAN'] || process.env['LSYNCD_DIR_PREFETCH'] === 'never') return null;
  const Prefetch = loadAddon(undefined, { quiet: true })?.DirPrefetch;
  return Prefetch ? new Prefetch(PREFETCH_DIRS, PREFETCH_BYTES, !!options.noFollow) : null;
}

/** How long an explorer waits for its walk to take it over before it is closed. */
const EXPLORER_WAIT_MS = 30_000;

/** A prefetcher exploring a source's tree before its walk starts (exploreAhead), and that tree's top. */
let explorer: { root: Buffer; prefetch: DirPrefetcher } | null = null;

/**
 * Start reading SOURCE's tree on the prefetcher's thread now, while the push is still loading and
 * connecting: the walk of that tree takes the prefetcher over (adoptExplorer) and finds its first
 * directories read. The top is the walk's: SOURCE without its trailing slashes.
 */
export function exploreAhead(source: string): void {
  explorer?.prefetch.close();
  explorer = null;
  const prefetch = nativeDirPrefetch();
  if (!prefetch) return;
  const root = Buffer.from(source.replace(/\/+$/, '') || '/');
  prefetch.explore(root);
  const mine = { root, prefetch };
  explorer = mine;
  // Not taken over soon (the walk went elsewhere, or never came): what it read is let go.
  setTimeout(() => {
    if (explorer !== mine) return;
    explorer = null;
    prefetch.close();
  }, EXPLORER_WAIT_MS).unref();
}

/** The prefetcher exploring from `dirPath`, for the walk from there; one exploring elsewhere is closed. */
export function adoptExplorer(dirPath: Buffer): DirPrefetcher | null {
  const found = explorer;
  explorer = null;
  if (!found) return null;
  if (found.root.equals(dirPath)) return found.prefetch;
  found.prefetch.close();
  return null;
}

/** How many of a list's directories the generator's walk has named to the prefetcher ahead of it. */
const AHEAD_WINDOW = 64;

/**
 * The directories of a received list read ahead of the generator's walk (DestTree), in list
 * order: a window of them is named to the prefetcher, topped up as the walk takes them; those the
 * walk passes by without reading are dropped when it takes a later one. Links are not followed
 * (a symlinked directory is read by the walk itself, after its checks).
 */
export class ListDirsAhead {
  /** Named to the prefetcher and not yet taken or dropped, in list order (latin1 keys). */
  private named: string[] = [];
  private ended = false;

  constructor(
    private readonly prefetch: DirPrefetcher,
    private readonly paths: Iterator<Buffer>,
  ) {
    this.topUp();
  }

  /** The records of `dirPath` when read ahead; null: the caller reads it. */
  take(dirPath: Buffer): Buffer | null {
    const at = this.named.indexOf(dirPath.toString('latin1'));
    if (at < 0) return null;
    // Those named before it were passed by: what was read of them is dropped.
    for (let i = 0; i < at; i++) this.prefetch.take(Buffer.from(this.named[i]!, 'latin1'));
    this.named = this.named.slice(at + 1);
    const records = this.prefetch.take(dirPath);
    this.topUp();
    return records;
  }

  close(): void {
    this.prefetch.close();
  }

  private topUp(): void {
    const batch: Buffer[] = [];
    while (!this.ended && this.named.length + batch.length < AHEAD_WINDOW) {
      const next = this.paths.next();
      if (next.done) {
        this.ended = true;
        break;
      }
      batch.push(next.value);
    }
    if (!batch.length) return;
    for (const path of batch) this.named.push(path.toString('latin1'));
    this.prefetch.want(batch, true);
  }
}

/** The addon's whole-file read of a small file (native/read-small.cc), under the same switch as nativeDirStats. */
export function nativeSmallFileRead(): ((path: Buffer, follow: boolean, into: Buffer) => number) | null {
  if (process.env['LSYNCD_JS_SCAN']) return null;
  return loadAddon(undefined, { quiet: true })?.readSmallFile ?? null;
}

const LE = endianness() === 'LE';
/** Bytes of a record before its name. */
const RECORD_FIXED = 66;

/** One directory's records; `at` is a record's offset (0 for the first, then `next(at)`). */
export class DirRecords {
  private readonly view: DataView;

  constructor(readonly buf: Buffer) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  }

  /** Is there a record at `at`? */
  has(at: number): boolean {
    return at + RECORD_FIXED <= this.buf.length;
  }

  /** The offset of the record after the one at `at`. */
  next(at: number): number {
    return at + RECORD_FIXED + this.nameLength(at);
  }

  /** Did the entry's fstatat fail (then only its name is known)? */
  failed(at: number): boolean {
    return this.view.getUint32(at, LE) !== 0;
  }

  mode(at: number): number {
    return this.view.getUint32(at + 4, LE);
  }

  uid(at: number): number {
    return this.view.getUint32(at + 8, LE);
  }

  gid(at: number): number {
    return this.view.getUint32(at + 12, LE);
  }

  mtimeNsec(at: number): number {
    return this.view.getUint32(at + 16, LE);
  }

  nlink(at: number): number {
    return this.view.getUint32(at + 20, LE);
  }

  rdev(at: number): { major: number; minor: number } {
    return { major: this.view.getUint32(at + 24, LE), minor: this.view.getUint32(at + 28, LE) };
  }

  size(at: number): number {
    return this.view.getFloat64(at + 32, LE);
  }

  mtime(at: number): number {
    return this.view.getFloat64(at + 40, LE);
  }

  dev(at: number): bigint {
    return this.view.getBigUint64(at + 48, LE);
  }

  ino(at: number): bigint {
    return this.view.getBigUint64(at + 56, LE);
  }

  /** st_ino as a number (exact below 2^53), without a BigInt. */
  inoNumber(at: number): number {
    return this.view.getUint32(at + (LE ? 60 : 56), LE) * 0x1_0000_0000 + this.view.getUint32(at + (LE ? 56 : 60), LE);
  }

  /** Where the record's name starts in `buf`. */
  nameStart(at: number): number {
    return at + RECORD_FIXED;
  }

  nameLength(at: number): number {
    return this.view.getUint16(at + 64, LE);
  }

  /** The record's name: a view into `buf`. */
  name(at: number): Buffer {
    return this.buf.subarray(at + RECORD_FIXED, at + RECORD_FIXED + this.nameLength(at));
  }
}
