// The received file list as packed data (docs/protocol.md [flist-recv-sort], [flist-order]): one
// arena for the name bytes, typed arrays for mode, size, mtime, uid, gid and flags, and the sort
// as an index array, so a big list costs tens of bytes per entry rather than an object, a Buffer
// and their slots. The decoder (flist-recv.ts) appends entries in wire order; `sortAndClean` then
// orders them with rsync's comparator and clears duplicates. Callers read by ndx through small
// accessors (`name`, `mode`, `size`, ...) or take a whole `ReceivedEntry` with `at(ndx)`, made on
// demand and dropped after use. Pure: no fs. Counterpart: rsync flist.c (struct file_list, its
// file_struct pool, fsort/f_name_cmp, flist_sort_and_clean, flist_find).
import { ProtocolError } from './errors.js';
import type { FileEntry } from './flist.js';
import { isDir, S_IFDIR, S_IFMT } from './modes.js';
import { compareNames, mayCompareEqual, mergeSort, sortByDirectory } from './name-order.js';
import { resizedColumn } from './column-growth.js';

/** One received entry as an object: rsync's file_struct, as much of it as the protocol carries. */
export interface ReceivedEntry extends FileEntry {
  /** Position in the order received (what a protocol >= 30 hard-link reference names). */
  wireIndex: number;
  /**
   * False for a duplicate name cleared by the sort (rsync's clear_file): the slot keeps its ndx so
   * later indexes do not shift, but nothing may use it (rsync refuses requests for it).
   */
  active: boolean;
  /** -H: rsync's F_HL_GNUM, the same for every member of a hard-link group; absent otherwise. */
  hlinkGroup?: number;
  /** -H, protocol >= 30: this member carried the group's attributes (XMIT_HLINK_FIRST). */
  hlinkFirst?: boolean;
  /** A name sent inline with the uid (XMIT_USER_NAME_FOLLOWS, incremental recursion only). */
  userName?: Buffer;
  /** A name sent inline with the gid (XMIT_GROUP_NAME_FOLLOWS). */
  groupName?: Buffer;
}

/**
 * What the generator, receiver and deletion need of a list: its length and the entry at an ndx.
 * A plain `ReceivedEntry[]` is one (tests build them by hand); a `ReceivedList` is the packed one.
 */
export interface FileListView {
  readonly length: number;
  at(ndx: number): ReceivedEntry | undefined;
  /** Whether the entry after `ndx` is in the same directory (the generator's walk reads a directory once for both). */
  sameDirAsNext?(ndx: number): boolean;
  /** The entry's mode and name alone (no entry object made), where the list can give them so. */
  mode?(ndx: number): number;
  name?(ndx: number): Buffer;
}

// The per-entry flag bits.
const F_ACTIVE = 1;
const F_TOP_DIR = 2;
const F_CONTENT_DIR = 4;
/** hlinkFirst is present (protocol >= 30 with -H) ... */
const F_HLINK_FIRST_SET = 8;
/** ... and true. */
const F_HLINK_FIRST = 16;
const F_CHECKSUM = 32;

/**
 * What one entry costs in the packed arrays (name start 4, length 2, mode 4, size 8, mtime 8,
 * nsec 4, uid 4, gid 4, flags 1, sort index 4, group 4: 47 bytes), doubled for the growth slack
 * of the arrays; its name bytes are charged beside it.
 */
export const PACKED_ENTRY_BYTES = 96;

const INITIAL_CAPACITY = 256;
/** Name suffixes up to this long are copied byte by byte (a view would cost more). */
const SMALL_NAME = 48;
/** The arena's offsets are 32-bit. */
const MAX_ARENA = 0xffff_ffff;


/**
 * The received list, packed. Entries are added in wire order (`add*`, by the decoder), then
 * `sortAndClean` fixes rsync's order; from then on every accessor takes an ndx (the sorted
 * position, what the sender means), and `wireIndex(ndx)` gives back the order received.
 */
export class ReceivedList implements FileListView {
  /** Entries so far. */
  private count = 0;
  private capacity = 0;
  private arena: Buffer = Buffer.allocUnsafe(16 * 1024);
  private arenaUsed = 0;
  private nameStart = new Uint32Array(0);
  private nameLen = new Uint16Array(0);
  private modes = new Uint32Array(0);
  private sizes = new Float64Array(0);
  private mtimes = new Float64Array(0);
  private nsecs = new Uint32Array(0);
  private uids = new Uint32Array(0);
  private gids = new Uint32Array(0);
  private flags = new Uint8Array(0);
  /** -H: the group number of each entry, -1 for none (allocated only with hard links). */
  private groups: Int32Array | null = null;
  /** -c: checksumLength bytes per entry (allocated only with -c). */
  private sums: Uint8Array | null = null;
  private readonly checksumLength: number;
  /** ndx → wire index, once sorted (identity before). */
  private order: Uint32Array | null = null;
  // The rare fields, by wire index.
  private readonly symlinks = new Map<number, Buffer>();
  private readonly rdevs = new Map<number, { major: number; minor: number }>();
  private readonly hardlinks = new Map<number, { dev: bigint; ino: bigint }>();
  private readonly userNames = new Map<number, Buffer>();
  private readonly groupNames = new Map<number, Buffer>();

  constructor(
    private readonly protocol: number,
    options: { hardLinks?: boolean; checksumLength?: number } = {},
  ) {
    this.checksumLength = options.checksumLength ?? 0;
    if (options.hardLinks) this.groups = new Int32Array(0);
    if (this.checksumLength) this.sums = new Uint8Array(0);
  }

  get length(): number {
    return this.count;
  }

  // --- building (wire order), for the decoder ---

  /**
   * Start the next entry: its name is the first `shared` bytes of the previous entry's name and
   * then `suffix`. Returns its wire index; the name is readable at once with `wireName`.
   */
  addName(shared: number, suffix: Uint8Array): number {
    return this.addNameFrom(shared, suffix, 0, suffix.length);
  }

  /** addName with the suffix as `src[from..to)` (the reader's buffer: no view is made). */
  addNameFrom(shared: number, src: Uint8Array, from: number, to: number): number {
    const w = this.count;
    if (w === this.capacity) this.grow();
    const len = shared + (to - from);
    if (this.arenaUsed + len > this.arena.length) {
      if (this.arenaUsed + len > MAX_ARENA) throw new ProtocolError('file list: more name bytes than a list can hold (4 GiB)');
      const next = Buffer.allocUnsafe(Math.min(MAX_ARENA, Math.max(this.arena.length * 2, this.arenaUsed + len)));
      this.arena.copy(next, 0, 0, this.arenaUsed);
      this.arena = next;
    }
    const start = this.arenaUsed;
    if (shared) {
      const from = this.nameStart[w - 1]!;
      this.arena.copyWithin(start, from, from + shared);
    }
    const arena = this.arena;
    if (to - from <= SMALL_NAME) for (let i = from, o = start + shared; i < to; i++, o++) arena[o] = src[i]!;
    else arena.set(src.subarray(from, to), start + shared);
    this.arenaUsed += len;
    this.nameStart[w] = start;
    this.nameLen[w] = len;
    this.flags[w] = F_ACTIVE;
    if (this.groups) this.groups[w] = -1;
    this.count++;
    return w;
  }

  /**
   * Take back the last entry added: the decoder undoes an entry whose bytes had not all arrived
   * and parses it again when they have (which sets again whatever the first try set at its index).
   */
  dropLast(): void {
    this.count--;
    this.arenaUsed = this.nameStart[this.count]!;
  }

  /** Length of the name of the last entry added (0 before the first): what XMIT_SAME_NAME may reuse. */
  lastNameLength(): number {
    return this.count ? this.nameLen[this.count - 1]! : 0;
  }

  /** The arena the names are in (valid until the next addName: it may grow). */
  get arenaBytes(): Buffer {
    return this.arena;
  }

  /** Where the name of the entry received `w`-th starts in the arena, and its length. */
  wireNameStart(w: number): number {
    return this.nameStart[w]!;
  }

  wireNameLength(w: number): number {
    return this.nameLen[w]!;
  }

  /** The name of the entry received `w`-th (a view into the arena). */
  wireName(w: number): Buffer {
    const start = this.nameStart[w]!;
    return this.arena.subarray(start, start + this.nameLen[w]!);
  }

  /** The attributes of the entry received `w`-th. */
  setAttrs(w: number, mode: number, size: number, mtime: number, nsec: number, uid: number, gid: number): void {
    this.modes[w] = mode;
    this.sizes[w] = size;
    this.mtimes[w] = mtime;
    this.nsecs[w] = nsec;
    this.uids[w] = uid;
    this.gids[w] = gid;
  }

  /** A directory's XMIT_TOP_DIR and content-dir flags. */
  setDirFlags(w: number, topDir: boolean, contentDir: boolean): void {
    this.flags[w] = (this.flags[w]! & ~(F_TOP_DIR | F_CONTENT_DIR)) | (topDir ? F_TOP_DIR : 0) | (contentDir ? F_CONTENT_DIR : 0);
  }

  /** -H: the entry's group, and (protocol >= 30) whether it carried the group's attributes. */
  setHlink(w: number, group: number, first: boolean | null): void {
    this.groups![w] = group;
    if (first !== null) this.flags[w] = this.flags[w]! | F_HLINK_FIRST_SET | (first ? F_HLINK_FIRST : 0);
  }

  setHardlink(w: number, dev: bigint, ino: bigint): void {
    this.hardlinks.set(w, { dev, ino });
  }

  setSymlink(w: number, target: Buffer): void {
    this.symlinks.set(w, target);
  }

  setRdev(w: number, rdev: { major: number; minor: number }): void {
    this.rdevs.set(w, rdev);
  }

  setChecksum(w: number, sum: Uint8Array): void {
    this.sums!.set(sum, w * this.checksumLength);
    this.flags[w] = this.flags[w]! | F_CHECKSUM;
  }

  setIdNames(w: number, user: Buffer | undefined, group: Buffer | undefined): void {
    if (user) this.userNames.set(w, user);
    if (group) this.groupNames.set(w, group);
  }

  /** A protocol >= 30 hard-link follower: every attribute is entry `first`'s (both wire indexes). */
  copyAttrs(w: number, first: number): void {
    this.setAttrs(w, this.modes[first]!, this.sizes[first]!, this.mtimes[first]!, this.nsecs[first]!, this.uids[first]!, this.gids[first]!);
    const symlink = this.symlinks.get(first);
    if (symlink) this.symlinks.set(w, symlink);
    const rdev = this.rdevs.get(first);
    if (rdev) this.rdevs.set(w, { ...rdev });
    if (this.flags[first]! & F_CHECKSUM) this.setChecksum(w, this.sums!.subarray(first * this.checksumLength, (first + 1) * this.checksumLength));
  }

  wireMode(w: number): number {
    return this.modes[w]!;
  }

  wireUid(w: number): number {
    return this.uids[w]!;
  }

  wireGid(w: number): number {
    return this.gids[w]!;
  }

  wireMtime(w: number): number {
    return this.mtimes[w]!;
  }

  wireRdev(w: number): { major: number; minor: number } | undefined {
    return this.rdevs.get(w);
  }

  private grow(): void {
    const capacity = Math.max(INITIAL_CAPACITY, this.capacity * 2);
    this.resize(capacity, this.count);
    this.capacity = capacity;
  }

  /**
   * Every column to `length` entries, the first `keep` kept; the old columns are freed at once
   * (column-growth.ts: nothing outside holds a column). The arena is not a column: names are
   * handed out as views of it.
   */
  private resize(length: number, keep: number): void {
    this.nameStart = resizedColumn(this.nameStart, length, keep, Uint32Array);
    this.nameLen = resizedColumn(this.nameLen, length, keep, Uint16Array);
    this.modes = resizedColumn(this.modes, length, keep, Uint32Array);
    this.sizes = resizedColumn(this.sizes, length, keep, Float64Array);
    this.mtimes = resizedColumn(this.mtimes, length, keep, Float64Array);
    this.nsecs = resizedColumn(this.nsecs, length, keep, Uint32Array);
    this.uids = resizedColumn(this.uids, length, keep, Uint32Array);
    this.gids = resizedColumn(this.gids, length, keep, Uint32Array);
    this.flags = resizedColumn(this.flags, length, keep, Uint8Array);
    if (this.groups) this.groups = resizedColumn(this.groups, length, keep, Int32Array);
    if (this.sums) this.sums = resizedColumn(this.sums, length * this.checksumLength, keep * this.checksumLength, Uint8Array);
  }

  // --- sorting ---

  /**
   * rsync's order (a stable sort by f_name_cmp), then the duplicates cleared: a name given twice
   * keeps one entry (the first, or the directory when a directory and a non-directory collide) and
   * the other slot is cleared in place, so indexes do not shift. Also drops the growth slack.
   */
  // rsync/flist.c: flist_sort_and_clean (receiver side) [flist-recv-sort]
  sortAndClean(): void {
    this.trim();
    const n = this.count;
    const modes = this.modes;
    const isDirAt = (i: number): boolean => (modes[i]! & S_IFMT) === S_IFDIR;
    // By directory where the names allow it (protocol >= 29), else a merge sort on the index
    // array by pairs: both stable as rsync's, no object per entry.
    let order = this.protocol >= 29 ? sortByDirectory({ arena: this.arena, start: this.nameStart, length: this.nameLen, count: n, isDir: isDirAt }) : null;
    if (!order) {
      order = new Uint32Array(n);
      for (let i = 0; i < n; i++) order[i] = i;
      mergeSort(order, new Uint32Array(n), 0, n, (a, b) => this.compareWire(a, b, isDirAt(a), isDirAt(b)));
    }
    this.order = order;
    this.cleanDuplicates();
  }

  /** Shrink every array to the entries received. */
  private trim(): void {
    const n = this.count;
    this.resize(n, n);
    this.arena = Buffer.from(this.arena.subarray(0, this.arenaUsed));
    this.capacity = n;
  }

  /** rsync's f_name_cmp on two entries by wire index, each compared as a directory or not as given. */
  // rsync/flist.c: f_name_cmp [flist-order]
  private compareWire(a: number, b: number, aDir: boolean, bDir: boolean): number {
    const arena = this.arena;
    return compareNames(arena, this.nameStart[a]!, this.nameLen[a]!, aDir, arena, this.nameStart[b]!, this.nameLen[b]!, bDir, this.protocol);
  }

  /** The cleaning half of flist_sort_and_clean, on the sorted index. */
  // rsync/flist.c: flist_sort_and_clean (the clean half, receiver side) [flist-recv-sort]
  private cleanDuplicates(): void {
    const order = this.order!;
    const protocol = this.protocol;
    let prevI = 0;
    for (let i = 1; i < order.length; i++) {
      const file = order[i]!;
      const fileDir = isDir(this.modes[file]!);
      let j = -1;
      const prev = order[prevI]!;
      if (mayCompareEqual(this.arena, this.nameStart[file]!, this.nameLen[file]!, this.nameStart[prev]!, this.nameLen[prev]!) && this.compareWire(file, prev, fileDir, isDir(this.modes[prev]!)) === 0) j = prevI;
      else if (protocol >= 29 && fileDir) j = this.findNonDir(file, 0, prevI);
      if (j < 0) {
        prevI = i;
        continue;
      }
      const other = order[j]!;
      let drop: number;
      if (fileDir && !isDir(this.modes[other]!)) {
        drop = j; // keep the directory: it may have contents in the list
        prevI = i;
      } else {
        drop = i;
        if (fileDir) {
          // Two directories: the kept one takes the other's top/content flags.
          this.flags[other] = this.flags[other]! | (this.flags[file]! & (F_TOP_DIR | F_CONTENT_DIR));
        }
      }
      const dropped = order[drop]!;
      this.flags[dropped] = this.flags[dropped]! & ~F_ACTIVE;
    }
  }

  /**
   * The ndx of an active non-directory named like directory `dir` (a wire index) among
   * ndx `low..high`, or -1: rsync's flist_find with the directory's mode turned into S_IFREG.
   */
  // rsync/flist.c: flist_find (as flist_sort_and_clean uses it)
  private findNonDir(dir: number, low: number, high: number): number {
    const order = this.order!;
    while (low <= high) {
      const mid = (low + high) >> 1;
      let at = mid;
      while (at <= high && !(this.flags[order[at]!]! & F_ACTIVE)) at++;
      if (at > high) {
        high = mid - 1;
        continue;
      }
      const w = order[at]!;
      const atDir = isDir(this.modes[w]!);
      const diff = this.compareWire(w, dir, atDir, false);
      if (diff === 0) return atDir ? -1 : at;
      if (diff < 0) low = at + 1;
      else high = mid - 1;
    }
    return -1;
  }

  // --- reading by ndx (rsync's sorted order) ---

  /** The wire index of the entry at `ndx`. */
  wireIndex(ndx: number): number {
    return this.order ? this.order[ndx]! : ndx;
  }

  /** The entry's name: a view of the arena (copy it to keep it past the list). */
  name(ndx: number): Buffer {
    return this.wireName(this.wireIndex(ndx));
  }

  mode(ndx: number): number {
    return this.modes[this.wireIndex(ndx)]!;
  }

  sameDirAsNext(ndx: number): boolean {
    if (ndx < 0 || ndx + 1 >= this.count) return false;
    const arena = this.arena;
    const a = this.nameStart[this.wireIndex(ndx)]!;
    const b = this.nameStart[this.wireIndex(ndx + 1)]!;
    const aDir = dirLength(arena, a, a + this.nameLen[this.wireIndex(ndx)]!);
    if (aDir !== dirLength(arena, b, b + this.nameLen[this.wireIndex(ndx + 1)]!)) return false;
    for (let i = 0; i < aDir; i++) if (arena[a + i] !== arena[b + i]) return false;
    return true;
  }

  /**
   * Whether some entry, active or not, is named exactly `name`: a scan of the arena that makes
   * nothing per entry (a pull asks whether the list has a '.' before it makes DEST).
   */
  hasName(name: Uint8Array): boolean {
    const arena = this.arena;
    for (let w = 0; w < this.count; w++) {
      if (this.nameLen[w] !== name.length) continue;
      const start = this.nameStart[w]!;
      let i = 0;
      while (i < name.length && arena[start + i] === name[i]) i++;
      if (i === name.length) return true;
    }
    return false;
  }

  /** Change an entry's mode (a daemon's incoming chmod); the file type stays. */
  setMode(ndx: number, mode: number): void {
    this.modes[this.wireIndex(ndx)] = mode;
  }

  size(ndx: number): number {
    return this.sizes[this.wireIndex(ndx)]!;
  }

  mtime(ndx: number): number {
    return this.mtimes[this.wireIndex(ndx)]!;
  }

  /** False for a duplicate the sort cleared. */
  isActive(ndx: number): boolean {
    return (this.flags[this.wireIndex(ndx)]! & F_ACTIVE) !== 0;
  }

  /** Take an entry out of the transfer (rsync's clear_file): its ndx stays, nothing may use it. */
  clear(ndx: number): void {
    const w = this.wireIndex(ndx);
    this.flags[w] = this.flags[w]! & ~F_ACTIVE;
  }

  /** Map every entry's uid and gid (-o/-g by name: the sender's ids to ours); null leaves that id. */
  mapIds(mapUid: ((id: number) => number) | null, mapGid: ((id: number) => number) | null): void {
    for (let w = 0; w < this.count; w++) {
      if (mapUid) this.uids[w] = mapUid(this.uids[w]!);
      if (mapGid) this.gids[w] = mapGid(this.gids[w]!);
    }
  }

  /** The symlink target of the entry at `ndx`, if it has one. */
  symlink(ndx: number): Buffer | undefined {
    return this.symlinks.get(this.wireIndex(ndx));
  }

  /** Replace a symlink's target (a daemon's munged or sanitized form). */
  replaceSymlink(ndx: number, target: Buffer): void {
    this.symlinks.set(this.wireIndex(ndx), target);
  }

  /** A directory whose contents are part of the transfer (what --delete works through). */
  isContentDir(ndx: number): boolean {
    return (this.flags[this.wireIndex(ndx)]! & F_CONTENT_DIR) !== 0;
  }

  /** The entry at `ndx` as an object, made now (undefined past the end, as an array's at()). */
  at(ndx: number): ReceivedEntry | undefined {
    if (!Number.isInteger(ndx) || ndx < 0 || ndx >= this.count) return undefined;
    return this.entryAtWire(this.wireIndex(ndx));
  }

  /** Every entry in ndx order, each made as it is reached. */
  *[Symbol.iterator](): IterableIterator<ReceivedEntry> {
    for (let ndx = 0; ndx < this.count; ndx++) yield this.entryAtWire(this.wireIndex(ndx));
  }

  /** The whole list as objects (tests, small lists). */
  toArray(): ReceivedEntry[] {
    return [...this];
  }

  /** The entry received `w`-th, as the object the decoder used to build (the same keys present). */
  private entryAtWire(w: number): ReceivedEntry {
    const mode = this.modes[w]!;
    const flags = this.flags[w]!;
    const entry: ReceivedEntry = {
      name: this.wireName(w),
      mode,
      size: this.sizes[w]!,
      mtime: this.mtimes[w]!,
      uid: this.uids[w]!,
      gid: this.gids[w]!,
      wireIndex: w,
      active: (flags & F_ACTIVE) !== 0,
    };
    const nsec = this.nsecs[w]!;
    if (nsec) entry.mtimeNsec = nsec;
    const symlink = this.symlinks.get(w);
    if (symlink) entry.symlink = symlink;
    const rdev = this.rdevs.get(w);
    if (rdev) entry.rdev = { ...rdev };
    const user = this.userNames.get(w);
    if (user) entry.userName = user;
    const group = this.groupNames.get(w);
    if (group) entry.groupName = group;
    if (isDir(mode)) {
      entry.topDir = (flags & F_TOP_DIR) !== 0;
      entry.contentDir = (flags & F_CONTENT_DIR) !== 0;
    }
    const gnum = this.groups ? this.groups[w]! : -1;
    if (gnum >= 0) {
      entry.hlinkGroup = gnum;
      if (flags & F_HLINK_FIRST_SET) entry.hlinkFirst = (flags & F_HLINK_FIRST) !== 0;
    }
    const hardlink = this.hardlinks.get(w);
    if (hardlink) entry.hardlink = { ...hardlink };
    if (flags & F_CHECKSUM) entry.checksum = Buffer.from(this.sums!.subarray(w * this.checksumLength, (w + 1) * this.checksumLength));
    return entry;
  }
}

/** The length of the dirname of the name `bytes[from..to)` (0 for a top-level name). */
function dirLength(bytes: Uint8Array, from: number, to: number): number {
  for (let i = to - 1; i >= from; i--) if (bytes[i] === 0x2f) return i - from;
  return 0;
}

