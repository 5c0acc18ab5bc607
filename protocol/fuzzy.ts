// --fuzzy (docs/protocol.md [pull-request]): for a file missing at the destination, a similar
// regular file of the same directory (and with -yy of the same directory in each basis
// directory) becomes the delta's basis: first one of the same size and mtime, else the one whose
// name is nearest by rsync's weighted Levenshtein distance (the suffix counting ten times). The
// choice must be rsync's own, bit for bit, since the name travels as the request's xname.
// Counterpart: rsync generator.c find_fuzzy, util1.c find_filename_suffix / fuzzy_distance.

/** One regular file a fuzzy search may pick (a directory listing, already filtered to files). */
export interface FuzzyCandidate {
  /** The basename. */
  name: Buffer;
  size: number;
  mtime: number;
}

/** What was picked: the candidate and the directory it is in (0: the destination, 1 + j: basis dir j). */
export interface FuzzyMatch {
  candidate: FuzzyCandidate;
  dirIndex: number;
}

const UNIT = 1 << 16;
const DOT = 0x2e;
const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;
/** C's signed char, as rsync sums name bytes for an empty counterpart. */
const signedChar = (c: number): number => (c << 24) >> 24;

/**
 * The significant suffix of a name (".txt" of "a.txt", ".tar.gz" stays ".gz"; ".bak", ".old",
 * ".orig" and "~N~" are looked past, an all-digit suffix is kept looking before), as a subarray.
 */
// rsync/util1.c: find_filename_suffix
export function filenameSuffix(fn: Buffer): Buffer {
  let start = 0;
  let len = fn.length;
  while (len && fn[start] === DOT) {
    start++;
    len--;
  }
  let hadTilde = false;
  if (len > 1 && fn[start + len - 1] === 0x7e) {
    len--;
    hadTilde = true;
  }
  let suf: Buffer = Buffer.alloc(0);
  let s = start + len;
  while (len > 1) {
    do s--;
    while (fn[s] !== DOT && s !== start);
    if (s === start) break;
    let sLen = len - (s - start);
    len = s - start;
    // rsync compares with strcmp: the rest of the whole name, so only a last suffix without '~' matches.
    const word = fn.toString('latin1', s + 1);
    if (sLen === 4 && (word === 'bak' || word === 'old')) continue;
    if (sLen === 5 && word === 'orig') continue;
    if (sLen !== 4 && sLen !== 5 && sLen > 2 && hadTilde && fn[s + 1] === 0x7e && isDigit(fn[s + 2])) continue;
    suf = fn.subarray(s, s + sLen);
    if (sLen === 1) break;
    // An all-digit suffix may not be significant: keep looking before it.
    let p = s + 1;
    for (sLen--; sLen > 0; p++, sLen--) if (!isDigit(fn[p])) return suf;
  }
  return suf;
}

/**
 * rsync's Levenshtein distance in units of 1<<16, each change weighted by how far apart the
 * bytes are; past `upperLimit` (by the length difference alone) it gives up with 0xFFFF0001.
 */
// rsync/util1.c: fuzzy_distance
export function fuzzyDistance(s1: Buffer, s2: Buffer, upperLimit: number): number {
  let len1 = s1.length;
  const len2 = s2.length;
  if (Math.abs(len1 - len2) * UNIT > upperLimit) return (0xffff * UNIT + 1) >>> 0;
  if (!len1 || !len2) {
    if (!len1) {
      s1 = s2;
      len1 = len2;
    }
    let cost = 0;
    for (let i = 0; i < len1; i++) cost += signedChar(s1[i]!);
    return (len1 * UNIT + cost) >>> 0;
  }
  const a = new Array<number>(len2);
  for (let i2 = 0; i2 < len2; i2++) a[i2] = (i2 + 1) * UNIT;
  for (let i1 = 0; i1 < len1; i1++) {
    let diag = i1 * UNIT;
    let above = (i1 + 1) * UNIT;
    const c1 = s1[i1]!;
    for (let i2 = 0; i2 < len2; i2++) {
      const left = a[i2]!;
      const c2 = s2[i2]!;
      let cost = c1 - c2;
      if (cost !== 0) cost = cost < 0 ? UNIT - cost : UNIT + cost;
      const diagInc = diag + cost;
      const leftInc = left + UNIT + c1;
      const aboveInc = above + UNIT + c2;
      above = left < above ? Math.min(leftInc, diagInc) : Math.min(aboveInc, diagInc);
      a[i2] = above;
      diag = left;
    }
  }
  return a[len2 - 1]! >>> 0;
}

/**
 * The fuzzy basis of `file` among `dirs` (index 0: the file's own directory at the destination,
 * 1 + j: that directory in basis dir j; each listing in rsync's sorted order, null when absent).
 * Empty files and names in `exclude` (files already being changed) never serve.
 */
// rsync/generator.c: find_fuzzy [pull-request]
export function findFuzzy(
  file: { name: Buffer; size: number; mtime: number },
  dirs: ReadonlyArray<readonly FuzzyCandidate[] | null>,
  exclude?: (dirIndex: number, name: Buffer) => boolean,
  modifyWindow = 0,
): FuzzyMatch | null {
  // rsync's same_time with both nanoseconds 0: whole seconds, or within the window.
  const sameTime = (a: number, b: number) => (modifyWindow > 0 ? Math.abs(a - b) <= modifyWindow : a === b);
  const usable = (i: number, c: FuzzyCandidate) => c.size > 0 && !exclude?.(i, c.name);
  // An exact size+mtime match first.
  for (let i = 0; i < dirs.length; i++) {
    for (const c of dirs[i] ?? []) {
      if (usable(i, c) && c.size === file.size && sameTime(c.mtime, file.mtime)) return { candidate: c, dirIndex: i };
    }
  }
  const fileSuffix = filenameSuffix(file.name);
  let lowest = (25 << 16) >>> 0; // a distance above 25 is ignored
  let best: FuzzyMatch | null = null;
  for (let i = 0; i < dirs.length; i++) {
    for (const c of dirs[i] ?? []) {
      if (!usable(i, c)) continue;
      let dist = fuzzyDistance(c.name, file.name, lowest);
      // The suffixes weigh ten times, unless the name is already out of the running.
      if (dist < 0xffff0000) dist = (dist + Math.imul(fuzzyDistance(filenameSuffix(c.name), fileSuffix, 0xffff0000), 10)) >>> 0;
      if (dist <= lowest) {
        lowest = dist;
        best = { candidate: c, dirIndex: i };
      }
    }
  }
  return best;
}
