// The sender's file list as packed data (docs/protocol.md [flist]: [flist-order], [flist-entry]):
// one arena for the name bytes (in 1 MiB chunks) and one typed array per attribute, so a list of a million entries
// is a few dozen arrays instead of a million objects and Buffers. It is sorted by an index array
// with rsync's comparator and encoded straight from the arrays, each entry built in one scratch
// buffer and handed to the writer in one piece. The rare extras (symlink targets, device numbers,
// hard-link identities) live in maps keyed by index. `FileEntry` (flist.ts) stays the public form:
// `entry(i)` makes one on demand, and `addEntry` takes one. Pure: the caller stats the tree.
// Counterpart: rsync flist.c (struct file_struct in its pools, f_name_cmp, send_file_entry).
import { MAXPATHLEN } from './constants.js';
import { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, S_IFBLK, S_IFCHR, S_IFIFO, S_IFSOCK, type DevNumbers } from './modes.js';
import { checkName, type FileEntry, type FileTable } from './flist.js';
import { compareNames } from './name-order.js';
import { resizedColumn, type Column } from './column-growth.js';

/** Entry flags (the `flags` column). */
export const PACKED_TOP_DIR = 1;
/** A directory whose contents are not part of the transfer (XMIT_NO_CONTENT_DIR). */
export const PACKED_NO_CONTENT = 2;
/** A -c checksum was stored for this entry. */
export const PACKED_HAS_CHECKSUM = 4;
/** Left out of the list (a duplicate a selection found later): sortedOrder skips it. */
export const PACKED_DROPPED = 8;

/** (st_dev, st_ino) of a hard-linked file. */
export interface FileIdentity {
  dev: bigint;
  ino: bigint;
}

const INITIAL_ENTRIES = 1024;

const INITIAL_ARENA = 64 * 1024;
/**
 * The arena is a list of chunks of at most 2^CHUNK_BITS bytes, a name never split between two:
 * a full chunk is left as it is and a new one started, so a growing list copies only its first,
 * small chunk and never leaves a big outgrown copy to the next full collection.
 */
const CHUNK_BITS = 20;
const CHUNK_SIZE = 1 << CHUNK_BITS;
const OFFSET_MASK = CHUNK_SIZE - 1;
/** A name's place is (chunk << CHUNK_BITS) + offset in a 32-bit column: at most this many chunks (4 GiB). */
const MAX_CHUNKS = 2 ** (32 - CHUNK_BITS);

/**
 * A growing table of file-list entries. Indexes are the order of adding (the walk's order);
 * `sortedOrder` gives rsync's order as an index array.
 */
export class PackedFileList {
  count = 0;
  /**
   * Name bytes of every entry, back to back in chunks: entry i is nameLength[i] bytes at
   * `chunkOf(i)[offsetOf(i)]` (nameStart[i] is the chunk's number and the offset in it).
   */
  readonly chunks: Uint8Array[] = [new Uint8Array(INITIAL_ARENA)];
  /** Bytes used in the last chunk. */
  private chunkUsed = 0;
  nameStart = new Uint32Array(INITIAL_ENTRIES);
  nameLength = new Uint16Array(INITIAL_ENTRIES);
  /** Offset of the basename inside the name (0 at the top level: no '/'). */
  baseOffset = new Uint16Array(INITIAL_ENTRIES);
  /**
   * Index of the entry's parent directory in this list when the producer knows it (a walk), else
   * -1: entries with the same known parent compare by basename alone.
   */
  parent = new Int32Array(INITIAL_ENTRIES);
  mode = new Uint32Array(INITIAL_ENTRIES);
  size = new Float64Array(INITIAL_ENTRIES);
  mtime = new Float64Array(INITIAL_ENTRIES);
  mtimeNsec = new Uint32Array(INITIAL_ENTRIES);
  uid = new Uint32Array(INITIAL_ENTRIES);
  gid = new Uint32Array(INITIAL_ENTRIES);
  /** st_ino as a number (0 when not known): not sent; a change detector for the live mirror's state file. */
  ino = new Float64Array(INITIAL_ENTRIES);
  flags = new Uint8Array(INITIAL_ENTRIES);
  /** Which `roots` prefix makes the entry's local path (callers that read files use it). */
  root = new Uint16Array(INITIAL_ENTRIES);
  /** Local path prefixes: entry i lives at roots[root[i]] + name (the name '.' at the prefix itself). */
  roots: Buffer[] = [];
  readonly symlinks = new Map<number, Buffer>();
  readonly rdevs = new Map<number, DevNumbers>();
  readonly hardlinks = new Map<number, FileIdentity>();
  /** -c digests, `checksumLength` bytes per entry (allocated by the first setChecksum). */
  checksums: Uint8Array | null = null;
  checksumLength = 0;

  private grow(): void {
    const cap = this.mode.length * 2;
    // The outgrown columns are freed at once (column-growth.ts): nobody keeps a view of one.
    const widen = <T extends Column>(a: T, make: new (n: number) => T): T => resizedColumn(a, cap, a.length, make);
    this.nameStart = widen(this.nameStart, Uint32Array);
    this.nameLength = widen(this.nameLength, Uint16Array);
    this.baseOffset = widen(this.baseOffset, Uint16Array);
    this.parent = widen(this.parent, Int32Array);
    this.mode = widen(this.mode, Uint32Array);
    this.size = widen(this.size, Float64Array);
    this.mtime = widen(this.mtime, Float64Array);
    this.mtimeNsec = widen(this.mtimeNsec, Uint32Array);
    this.uid = widen(this.uid, Uint32Array);
    this.gid = widen(this.gid, Uint32Array);
    this.ino = widen(this.ino, Float64Array);
    this.flags = widen(this.flags, Uint8Array);
    this.root = widen(this.root, Uint16Array);
    if (this.checksums) {
      const c = new Uint8Array(cap * this.checksumLength);
      c.set(this.checksums);
      this.checksums = c;
    }
  }

  /** Append the name bytes `dir + '/' + base` (or `base` alone when dir is empty); returns its place. */
  private putName(dir: Uint8Array | null, base: Uint8Array): number {
    const length = (dir && dir.length ? dir.length + 1 : 0) + base.length;
    if (length === 0 || length >= MAXPATHLEN) throw new RangeError(`file-list name of ${length} bytes (limit ${MAXPATHLEN - 1})`);
    let chunk = this.chunks[this.chunks.length - 1]!;
    if (this.chunkUsed + length > chunk.length) {
      if (chunk.length < CHUNK_SIZE) {
        // The first chunk grows by doubling up to a whole chunk (small lists stay small).
        const next = new Uint8Array(Math.min(CHUNK_SIZE, chunk.length * 2));
        next.set(chunk.subarray(0, this.chunkUsed));
        chunk = next;
      } else {
        if (this.chunks.length === MAX_CHUNKS) throw new RangeError('file list: more than 4 GiB of names');
        chunk = new Uint8Array(CHUNK_SIZE);
        this.chunks.push(chunk);
        this.chunkUsed = 0;
      }
      this.chunks[this.chunks.length - 1] = chunk;
    }
    const start = this.chunkUsed;
    let at = start;
    if (dir && dir.length) {
      chunk.set(dir, at);
      at += dir.length;
      chunk[at++] = 0x2f;
    }
    chunk.set(base, at);
    this.chunkUsed = at + base.length;
    return (this.chunks.length - 1) * CHUNK_SIZE + start;
  }

  /** The chunk holding entry i's name. */
  chunkOf(i: number): Uint8Array {
    return this.chunks[this.nameStart[i]! >>> CHUNK_BITS]!;
  }

  /** Where entry i's name starts in its chunk. */
  offsetOf(i: number): number {
    return this.nameStart[i]! & OFFSET_MASK;
  }

  /**
   * Add an entry named `dir/base` (dir empty or null at the top level) with its attributes; returns
   * its index. `parentIndex` is the index of the entry of `dir`, or -1 when unknown.
   */
  add(dir: Uint8Array | null, base: Uint8Array, parentIndex: number, mode: number, size: number, mtime: number, mtimeNsec: number, uid: number, gid: number): number {
    const i = this.count;
    if (i === this.mode.length) this.grow();
    this.nameStart[i] = this.putName(dir, base);
    const length = (dir && dir.length ? dir.length + 1 : 0) + base.length;
    this.nameLength[i] = length;
    this.baseOffset[i] = length - base.length;
    this.parent[i] = parentIndex;
    this.mode[i] = mode;
    this.size[i] = size;
    this.mtime[i] = mtime;
    this.mtimeNsec[i] = mtimeNsec;
    this.uid[i] = uid;
    this.gid[i] = gid;
    this.ino[i] = 0;
    // The root '.' is a top dir by default (FileEntry.topDir's default).
    this.flags[i] = base.length === 1 && base[0] === 0x2e && (mode & S_IFMT) === S_IFDIR && !(dir && dir.length) ? PACKED_TOP_DIR : 0;
    this.root[i] = 0;
    this.count = i + 1;
    return i;
  }

  /** Add a FileEntry as it is (the public form: tests, the API); returns its index. */
  addEntry(e: FileEntry, rootIndex = 0): number {
    checkName(e.name);
    const slash = e.name.lastIndexOf(0x2f);
    const i = slash < 0
      ? this.add(null, e.name, -1, e.mode, e.size, e.mtime, e.mtimeNsec ?? 0, e.uid, e.gid)
      : this.add(e.name.subarray(0, slash), e.name.subarray(slash + 1), -1, e.mode, e.size, e.mtime, e.mtimeNsec ?? 0, e.uid, e.gid);
    if (e.topDir !== undefined) this.setFlag(i, PACKED_TOP_DIR, e.topDir);
    if (e.contentDir === false) this.setFlag(i, PACKED_NO_CONTENT, true);
    if (e.symlink) this.symlinks.set(i, e.symlink);
    if (e.rdev) this.rdevs.set(i, e.rdev);
    if (e.hardlink) this.hardlinks.set(i, { dev: BigInt(e.hardlink.dev), ino: BigInt(e.hardlink.ino) });
    if (e.checksum) this.setChecksum(i, e.checksum);
    this.root[i] = rootIndex;
    return i;
  }

  /** Copy entry `i` of another list (attributes and extras, not the parent link); returns its index here. */
  addFrom(other: PackedFileList, i: number, rootIndex: number): number {
    const name = other.name(i);
    const base = other.baseOffset[i]!;
    const j = this.add(base ? name.subarray(0, base - 1) : null, name.subarray(base), -1,
      other.mode[i]!, other.size[i]!, other.mtime[i]!, other.mtimeNsec[i]!, other.uid[i]!, other.gid[i]!);
    this.flags[j] = other.flags[i]! & ~PACKED_HAS_CHECKSUM;
    this.ino[j] = other.ino[i]!;
    const symlink = other.symlinks.get(i);
    if (symlink) this.symlinks.set(j, symlink);
    const rdev = other.rdevs.get(i);
    if (rdev) this.rdevs.set(j, rdev);
    const id = other.hardlinks.get(i);
    if (id) this.hardlinks.set(j, id);
    const sum = other.checksum(i);
    if (sum) this.setChecksum(j, sum);
    this.root[j] = rootIndex;
    return j;
  }

  setFlag(i: number, flag: number, on: boolean): void {
    this.flags[i] = on ? this.flags[i]! | flag : this.flags[i]! & ~flag;
  }

  /** The name bytes of entry i: a view into the arena (bytes once written there never change). */
  name(i: number): Buffer {
    const chunk = this.chunkOf(i);
    return Buffer.from(chunk.buffer, chunk.byteOffset + this.offsetOf(i), this.nameLength[i]!);
  }

  /** Where entry i lives here (its root prefix and name). */
  localPath(i: number): Buffer {
    const prefix = this.roots[this.root[i]!] ?? Buffer.alloc(0);
    const length = this.nameLength[i]!;
    const chunk = this.chunkOf(i);
    const start = this.offsetOf(i);
    if (length === 1 && chunk[start] === 0x2e && prefix.length) return prefix;
    const out = Buffer.allocUnsafe(prefix.length + length);
    prefix.copy(out, 0);
    out.set(chunk.subarray(start, start + length), prefix.length);
    return out;
  }

  setChecksum(i: number, digest: Uint8Array): void {
    if (!this.checksums) {
      this.checksumLength = digest.length;
      this.checksums = new Uint8Array(this.mode.length * digest.length);
    }
    if (digest.length !== this.checksumLength) throw new RangeError(`checksum of ${digest.length} bytes (the list's are ${this.checksumLength})`);
    this.checksums.set(digest, i * this.checksumLength);
    this.flags[i] |= PACKED_HAS_CHECKSUM;
  }

  checksum(i: number): Uint8Array | null {
    if (!(this.flags[i]! & PACKED_HAS_CHECKSUM) || !this.checksums) return null;
    return this.checksums.subarray(i * this.checksumLength, (i + 1) * this.checksumLength);
  }

  /** Entry i in the public form, with its local path (made on demand: nothing keeps it). */
  entry(i: number): FileEntry & { localPath: Buffer; ino: number } {
    const e: FileEntry & { localPath: Buffer; ino: number } = {
      name: this.name(i), // a view: the arena's bytes are never overwritten
      localPath: this.localPath(i),
      mode: this.mode[i]!,
      size: this.size[i]!,
      mtime: this.mtime[i]!,
      mtimeNsec: this.mtimeNsec[i]!,
      uid: this.uid[i]!,
      gid: this.gid[i]!,
      ino: this.ino[i]!,
    };
    const flags = this.flags[i]!;
    if ((this.mode[i]! & S_IFMT) === S_IFDIR) {
      e.topDir = (flags & PACKED_TOP_DIR) !== 0;
      if (flags & PACKED_NO_CONTENT) e.contentDir = false;
    }
    const symlink = this.symlinks.get(i);
    if (symlink) e.symlink = symlink;
    const rdev = this.rdevs.get(i);
    if (rdev) e.rdev = rdev;
    const id = this.hardlinks.get(i);
    if (id) e.hardlink = id;
    const sum = this.checksum(i);
    if (sum) e.checksum = Buffer.from(sum);
    return e;
  }

  /** Every entry not dropped, in the order of adding, each made on demand. */
  *entries(): Generator<FileEntry & { localPath: Buffer; ino: number }> {
    for (let i = 0; i < this.count; i++) if (!(this.flags[i]! & PACKED_DROPPED)) yield this.entry(i);
  }

  /** Regular files' and symlinks' sizes, summed (rsync's total size). */
  totalSize(order?: ArrayLike<number>): number {
    let total = 0;
    const n = order ? order.length : this.count;
    for (let k = 0; k < n; k++) {
      const i = order ? order[k]! : k;
      if (this.flags[i]! & PACKED_DROPPED) continue;
      const type = this.mode[i]! & S_IFMT;
      if (type === S_IFREG || type === S_IFLNK) total += this.size[i]!;
    }
    return total;
  }

  /**
   * rsync's order (a stable sort by f_name_cmp, dropped entries left out): position k of the
   * result is the index of the entry whose ndx is k.
   */
  // rsync/flist.c: fsort (the sort half of flist_sort_and_clean) [flist-order]
  sortedOrder(protocol: number): Uint32Array {
    let kept = 0;
    for (let i = 0; i < this.count; i++) if (!(this.flags[i]! & PACKED_DROPPED)) kept++;
    const order = new Uint32Array(kept);
    for (let i = 0, k = 0; i < this.count; i++) if (!(this.flags[i]! & PACKED_DROPPED)) order[k++] = i;
    // A walk that went in rsync's order (the scan does, at protocol >= 29) needs one look at each
    // neighbour pair; anything else is sorted (stable, like rsync's merge sort: Array#sort).
    let inOrder = true;
    for (let k = 1; k < order.length && inOrder; k++) inOrder = comparePacked(this, order[k - 1]!, order[k]!, protocol) <= 0;
    if (inOrder) return order;
    const indexes = Array.from(order);
    indexes.sort((a, b) => comparePacked(this, a, b, protocol));
    return Uint32Array.from(indexes);
  }
}

const isDirMode = (mode: number): boolean => (mode & S_IFMT) === S_IFDIR;

/**
 * Negative, zero or positive as entry a sorts before, with or after entry b: rsync's order over
 * the arena's bytes (name-order.ts), told when a walk knows both share a parent.
 */
// rsync/flist.c: f_name_cmp [flist-order]
export function comparePacked(l: PackedFileList, a: number, b: number, protocol: number): number {
  const pa = l.parent[a]!;
  return compareNames(
    l.chunkOf(a), l.offsetOf(a), l.nameLength[a]!, isDirMode(l.mode[a]!),
    l.chunkOf(b), l.offsetOf(b), l.nameLength[b]!, isDirMode(l.mode[b]!),
    protocol, pa >= 0 && pa === l.parent[b],
  );
}

/** Device or special entries (encoder helpers). */
export const isDeviceMode = (mode: number): boolean => (mode & S_IFMT) === S_IFBLK || (mode & S_IFMT) === S_IFCHR;
export const isSpecialMode = (mode: number): boolean => (mode & S_IFMT) === S_IFIFO || (mode & S_IFMT) === S_IFSOCK;

/**
 * A packed list in rsync's order, as the sender reads it: ndx → entry, each made on demand (with
 * its local path) and kept by nobody, so a million entries stay packed while the generator asks.
 */
export class SortedFileList<T extends FileEntry = FileEntry & { localPath: Buffer }> implements FileTable<T> {
  constructor(
    readonly list: PackedFileList,
    /** order[ndx] is the list index of the entry the generator means by ndx. */
    readonly order: Uint32Array,
  ) {}

  get length(): number {
    return this.order.length;
  }

  at(ndx: number): T | undefined {
    if (!Number.isInteger(ndx) || ndx < 0 || ndx >= this.order.length) return undefined;
    return this.list.entry(this.order[ndx]!) as unknown as T;
  }

  /** Regular files' and symlinks' sizes, summed (rsync's total size). */
  totalSize(): number {
    return this.list.totalSize(this.order);
  }

  /** How many regular files the list holds (a progress total). */
  regularFiles(): number {
    let n = 0;
    for (let k = 0; k < this.order.length; k++) if ((this.list.mode[this.order[k]!]! & S_IFMT) === S_IFREG) n++;
    return n;
  }

  /** Every entry made at once (for callers that want an array: --stats counts, tests). */
  toArray(): T[] {
    const out: T[] = [];
    for (let ndx = 0; ndx < this.order.length; ndx++) out.push(this.at(ndx)!);
    return out;
  }
}
