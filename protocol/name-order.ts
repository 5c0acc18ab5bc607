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
