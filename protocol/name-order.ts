// rsync's file-list order, f_name_cmp, written once for every list (docs/protocol.md
// [flist-order]): over byte ranges, so the sender's packed list, the received list and FileEntry
// objects all sort by the same code. Protocol >= 29: component-wise, a directory compares as
// 'name/', at each level the non-directories first, '.' first of all; below 29 plain byte order.
// Counterpart: rsync flist.c f_name_cmp.
import { isDir } from './modes.js';

const SLASH = new Uint8Array([0x2f]);
const NOTHING = new Uint8Array(0);

// f_name_cmp's states: comparing a path (a directory's name, as if followed by '/') or an item.
const PATH = 0;
const ITEM = 1;
const P_DIR = 0;
const P_SLASH = 1;
const P_BASE = 2;
const P_TRAILING = 3;

/** One side of a comparison: where it is in which piece of the name. */
interface Cursor {
  arr: Uint8Array;
  nameStart: number;
  nameEnd: number;
  /** Offset of the last '/' in the name, or -1. */
  slash: number;
  isDir: boolean;
  bytes: Uint8Array;
  at: number;
  end: number;
  piece: number;
  kind: number;
}

const newCursor = (): Cursor => ({ arr: NOTHING, nameStart: 0, nameEnd: 0, slash: -1, isDir: false, bytes: NOTHING, at: 0, end: 0, piece: P_DIR, kind: PATH });
/** The two cursors of a comparison, reused (a sort makes millions of comparisons). */
const C1 = newCursor();
const C2 = newCursor();

function lastSlash(arr: Uint8Array, start: number, end: number): number {
  for (let i = end - 1; i >= start; i--) if (arr[i] === 0x2f) return i;
  return -1;
}

/** Position a cursor on the basename; a directory named '.' compares as the empty string. */
function enterBase(c: Cursor, pathKind: number): void {
  c.kind = c.isDir ? pathKind : ITEM;
  const baseStart = c.slash < 0 ? c.nameStart : c.slash + 1;
  if (c.kind === PATH && c.nameEnd - baseStart === 1 && c.arr[baseStart] === 0x2e) {
    c.kind = ITEM;
    c.piece = P_TRAILING;
    c.bytes = NOTHING;
    c.at = 0;
    c.end = 0;
  } else {
    c.piece = P_BASE;
    c.bytes = c.arr;
    c.at = baseStart;
    c.end = c.nameEnd;
  }
}

function startCursor(c: Cursor, arr: Uint8Array, start: number, len: number, dir: boolean, slash: number, fromBase: boolean, pathKind: number): void {
  c.arr = arr;
  c.nameStart = start;
  c.nameEnd = start + len;
  c.slash = slash;
  c.isDir = dir;
  c.piece = P_DIR;
  c.kind = pathKind;
  if (fromBase || slash < 0) {
    enterBase(c, pathKind);
  } else {
    c.bytes = arr;
    c.at = start;
    c.end = slash;
  }
}

/** Move an exhausted cursor to its next piece (the trailing piece stays empty). */
function nextPiece(c: Cursor, pathKind: number): void {
  switch (c.piece) {
    case P_DIR:
      c.piece = P_SLASH;
      c.bytes = SLASH;
      c.at = 0;
      c.end = 1;
      return;
    case P_SLASH:
      enterBase(c, pathKind);
      return;
    case P_BASE:
      c.piece = P_TRAILING;
      c.at = 0;
      if (c.kind === PATH) {
        c.bytes = SLASH; // a directory compares as if its name ended in '/'
        c.end = 1;
        return;
      }
      c.bytes = NOTHING;
      c.end = 0;
      c.kind = ITEM;
      return;
    default:
      c.bytes = NOTHING; // past the end: compares as 0 from now on
      c.at = 0;
      c.end = 0;
      c.kind = ITEM;
  }
}

/**
 * rsync's f_name_cmp on two names given as byte ranges: negative, zero or positive as the first
 * sorts before, with, or after the second. Protocol >= 29: component-wise, a directory compares
 * as 'name/', at each level non-directories first, '.' first of all; below 29 plain byte order.
 */
// rsync/flist.c: f_name_cmp [flist-order]
export function compareNames(
  a: Uint8Array,
  aStart: number,
  aLen: number,
  aDir: boolean,
  b: Uint8Array,
  bStart: number,
  bLen: number,
  bDir: boolean,
  protocol: number,
  /** The caller knows both names lie in one directory (a walk's parent index): skip that check. */
  knownSameDir = false,
): number {
  const pathKind = protocol >= 29 ? PATH : ITEM;
  const s1 = lastSlash(a, aStart, aStart + aLen);
  const s2 = lastSlash(b, bStart, bStart + bLen);
  // Same directory: only the basenames matter (rsync shares the dirname string between them).
  let sameDir = knownSameDir;
  if (!knownSameDir && s1 >= 0 && s2 >= 0) {
    // Both names have a dirname: both cursors start in it, as one kind (PATH or, below 29, ITEM),
    // so a byte that differs inside both dirnames decides (most comparisons across directories).
    const d1 = s1 - aStart;
    const d2 = s2 - bStart;
    const n = d1 < d2 ? d1 : d2;
    let i = 0;
    while (i < n && a[aStart + i] === b[bStart + i]) i++;
    if (i < n) return a[aStart + i]! - b[bStart + i]!;
    sameDir = d1 === d2;
  }
  // Two non-directories of one directory (most comparisons of a big list), or any two names of one
  // directory below protocol 29: their basenames in byte order, the shorter first when one is the
  // other's start (what the cursors below give).
  if (sameDir && (pathKind === ITEM || (!aDir && !bDir))) return compareRanges(a, s1 < 0 ? aStart : s1 + 1, aStart + aLen, b, s2 < 0 ? bStart : s2 + 1, bStart + bLen);
  const c1 = C1;
  const c2 = C2;
  startCursor(c1, a, aStart, aLen, aDir, s1, sameDir, pathKind);
  startCursor(c2, b, bStart, bLen, bDir, s2, sameDir, pathKind);
  if (c1.kind !== c2.kind) return c1.kind === PATH ? 1 : -1;
  for (;;) {
    if (c1.at >= c1.end) {
      nextPiece(c1, pathKind);
      if (c2.at < c2.end && c1.kind !== c2.kind) return c1.kind === PATH ? 1 : -1;
    }
    if (c2.at >= c2.end) {
      if (c2.piece === P_TRAILING && c1.at >= c1.end) return 0;
      nextPiece(c2, pathKind);
      if (c1.kind !== c2.kind) return c1.kind === PATH ? 1 : -1;
    }
    const x = c1.at < c1.end ? c1.bytes[c1.at]! : 0;
    const y = c2.at < c2.end ? c2.bytes[c2.at]! : 0;
    if (x !== y) return x - y;
    c1.at++;
    c2.at++;
  }
}

/** Byte order of two ranges, the shorter first when one is the other's start (strcmp's). */
function compareRanges(a: Uint8Array, aStart: number, aEnd: number, b: Uint8Array, bStart: number, bEnd: number): number {
  const n = Math.min(aEnd - aStart, bEnd - bStart);
  for (let i = 0; i < n; i++) {
    const d = a[aStart + i]! - b[bStart + i]!;
    if (d) return d;
  }
  return aEnd - aStart - (bEnd - bStart);
}

/** compareNames on two entries' names and modes (the FileEntry form: the sender's sort, deletion's order, tests). */
export function compareEntryNames(a: { name: Uint8Array; mode: number }, b: { name: Uint8Array; mode: number }, protocol: number): number {
  return compareNames(a.name, 0, a.name.length, isDir(a.mode), b.name, 0, b.name.length, isDir(b.mode), protocol);
}

/** A stable merge sort of `a[lo..hi)` by `cmp` (rsync's fsort is a merge sort too). */
// rsync/flist.c: fsort, fsort_tmp
export function mergeSort(a: Uint32Array, tmp: Uint32Array, lo: number, hi: number, cmp: (x: number, y: number) => number): void {
  if (hi - lo <= 16) {
    // Insertion sort for short runs (stable).
    for (let i = lo + 1; i < hi; i++) {
      const v = a[i]!;
      let j = i - 1;
      while (j >= lo && cmp(a[j]!, v) > 0) {
        a[j + 1] = a[j]!;
        j--;
      }
      a[j + 1] = v;
    }
    return;
  }
  const mid = (lo + hi) >>> 1;
  mergeSort(a, tmp, lo, mid, cmp);
  mergeSort(a, tmp, mid, hi, cmp);
  if (cmp(a[mid - 1]!, a[mid]!) <= 0) return; // already in order (a sender's sorted list)
  let i = lo;
  let j = mid;
  let k = lo;
  while (i < mid && j < hi) tmp[k++] = cmp(a[j]!, a[i]!) < 0 ? a[j++]! : a[i++]!;
  while (i < mid) tmp[k++] = a[i++]!;
  while (j < hi) tmp[k++] = a[j++]!;
  a.set(tmp.subarray(lo, hi), lo);
}

/** Names in one arena, as a packed list holds them: entry i is `arena[start[i] .. start[i] + length[i])`. */
export interface ArenaNames {
  arena: Buffer;
  start: Uint32Array;
  length: Uint16Array | Uint32Array;
  count: number;
  isDir(i: number): boolean;
}

/**
 * The stable sort by compareNames (protocol >= 29) of a list's names, the indexes in order, made
 * by directory rather than by pairs. Each entry belongs to a directory: a non-directory to its
 * dirname, a directory to itself ('.' to the top). At protocol >= 29, f_name_cmp puts every entry
 * of a directory before those of a directory that sorts later, a directory before its own
 * contents (it compares as 'name/'), and within one directory the files by their basenames'
 * bytes. So the directories are sorted (a few thousand comparisons for a list of hundreds of
 * thousands), the entries are dealt out by their directory's rank, and each directory's files
 * are sorted by basename alone. The result is then checked pair by pair against compareNames;
 * null if any pair disagrees (names no sender makes: '//', a trailing '/', 'a/.'), and the
 * caller sorts by pairs. What a merge sort by compareNames gives, with ~5x fewer comparisons.
 */
// rsync/flist.c: fsort over f_name_cmp (the same order, reached by directory) [flist-order]
export function sortByDirectory(names: ArenaNames): Uint32Array | null {
  const { arena, start, length, count } = names;
  // 1. Each entry's directory, by id in order of first sight; its basename's start; whether it is
  // a directory (asked once: the steps below ask it of every pair).
  const dirOf = new Uint32Array(count);
  const baseAt = new Uint32Array(count);
  const isDirAt = new Uint8Array(count);
  const ids = new Map<string, number>();
  const dirStart: number[] = [];
  const dirLength: number[] = [];
  let lastId = -1;
  let lastStart = 0;
  let lastLength = -1;
  for (let i = 0; i < count; i++) {
    const s = start[i]!;
    const n = length[i]!;
    let keyStart = s;
    let keyLength: number;
    if (names.isDir(i)) {
      isDirAt[i] = 1;
      keyLength = n === 1 && arena[s] === 0x2e ? 0 : n; // '.' is the top directory
      baseAt[i] = s + n; // unused: a directory sorts first in its own group
    } else {
      const slash = lastSlash(arena, s, s + n);
      keyLength = slash < 0 ? 0 : slash - s;
      baseAt[i] = slash < 0 ? s : slash + 1;
    }
    if (keyLength === 0) keyStart = 0;
    // The list comes a directory at a time: most entries share the previous one's directory.
    if (keyLength !== lastLength || !sameBytes(arena, keyStart, lastStart, keyLength)) {
      const key = arena.toString('latin1', keyStart, keyStart + keyLength);
      let id = ids.get(key);
      if (id === undefined) {
        id = dirStart.length;
        ids.set(key, id);
        dirStart.push(keyStart);
        dirLength.push(keyLength);
      }
      lastId = id;
      lastStart = keyStart;
      lastLength = keyLength;
    }
    dirOf[i] = lastId;
  }
  // 2. The directories in rsync's order (as directories: 'name/'), the top one first.
  const dirs = dirStart.length;
  const byRank = new Uint32Array(dirs);
  for (let d = 0; d < dirs; d++) byRank[d] = d;
  mergeSort(byRank, new Uint32Array(dirs), 0, dirs, (x, y) => {
    if (dirLength[x] === 0 || dirLength[y] === 0) return dirLength[x]! - dirLength[y]!;
    return compareNames(arena, dirStart[x]!, dirLength[x]!, true, arena, dirStart[y]!, dirLength[y]!, true, 29);
  });
  // 3. Entries dealt out by their directory's rank (a counting sort: stable, wire order kept).
  const rank = new Uint32Array(dirs);
  for (let r = 0; r < dirs; r++) rank[byRank[r]!] = r;
  const first = new Uint32Array(dirs + 1);
  for (let i = 0; i < count; i++) first[rank[dirOf[i]!]! + 1]++;
  for (let r = 0; r < dirs; r++) first[r + 1] += first[r]!;
  const order = new Uint32Array(count);
  const fill = first.slice(0, dirs);
  for (let i = 0; i < count; i++) order[fill[rank[dirOf[i]!]!]!++] = i;
  // 4. Within each directory: the directory itself first, then its files by basename bytes.
  const tmp = new Uint32Array(count);
  const basenames = (x: number, y: number): number => compareRanges(arena, baseAt[x]!, start[x]! + length[x]!, arena, baseAt[y]!, start[y]! + length[y]!);
  const inDir = (x: number, y: number): number => (isDirAt[x] || isDirAt[y] ? isDirAt[y]! - isDirAt[x]! : basenames(x, y));
  for (let r = 0; r < dirs; r++) if (first[r + 1]! - first[r]! > 1) mergeSort(order, tmp, first[r]!, first[r + 1]!, inDir);
  // 5. The check: every neighbouring pair in compareNames' order, ties in the order received.
  for (let k = 1; k < count; k++) {
    const x = order[k - 1]!;
    const y = order[k]!;
    const c = dirOf[x] === dirOf[y] && !isDirAt[x] && !isDirAt[y]
      ? basenames(x, y)
      : compareNames(arena, start[x]!, length[x]!, isDirAt[x] === 1, arena, start[y]!, length[y]!, isDirAt[y] === 1, 29);
    if (c > 0 || (c === 0 && x > y)) return null;
  }
  return order;
}

/** Two ranges of one array hold the same bytes (short: a loop beats Buffer#compare's call). */
function sameBytes(arena: Uint8Array, a: number, b: number, n: number): boolean {
  for (let i = n - 1; i >= 0; i--) if (arena[a + i] !== arena[b + i]) return false;
  return true;
}

/**
 * Whether compareNames could call two names equal (as directories or not, any protocol): only the
 * same bytes can, or a name that ends in '/' or whose basename is '.' (which compares as nothing).
 * Any other pair differs without walking the comparator (the received list's duplicate check).
 */
// rsync/flist.c: f_name_cmp (when it returns 0)
export function mayCompareEqual(arena: Buffer, aStart: number, aLength: number, bStart: number, bLength: number): boolean {
  if (aLength === bLength && sameBytes(arena, aStart, bStart, aLength)) return true;
  return oddEnding(arena, aStart, aLength) || oddEnding(arena, bStart, bLength);
}

/** A name that ends in '/' or whose basename is '.' (f_name_cmp's special cases). */
function oddEnding(bytes: Uint8Array, start: number, length: number): boolean {
  if (length === 0) return true;
  const last = bytes[start + length - 1];
  return last === 0x2f || (last === 0x2e && (length === 1 || bytes[start + length - 2] === 0x2f));
}
