// -m/--prune-empty-dirs on the receiving side (docs/protocol.md [flist-recv-sort]): once the list
// is sorted and cleaned, every directory chain that holds no non-directory is taken out of it, as
// rsync's receiver does before its generator starts (the sender has no part in it: rsync's client
// sends -m to the daemon only when it sends). A directory the receiver's filter rules exclude
// keeps the directories above it. The walk is rsync's own: a chain of the directories not yet
// known to hold anything, kept when a non-directory (or an excluded directory) follows them,
// dropped when the walk comes back up past their depth.
// Counterpart: rsync flist.c flist_sort_and_clean (its prune_empty_dirs half).
import type { ReceivedList } from './received-list.js';
import { isDir } from './modes.js';

/** A directory's depth as rsync counts it (F_DEPTH): its components, '.' being 0. */
function depthOf(name: Buffer): number {
  if (name.length === 1 && name[0] === 0x2e) return 0;
  let depth = 1;
  for (const byte of name) if (byte === 0x2f) depth++;
  return depth;
}

/**
 * Clear the directories of `list` (sorted, cleaned) that lead to no non-directory. `excluded`
 * tells whether the receiver's rules exclude a directory (such a directory is kept, and so are
 * the ones above it). Returns how many were cleared.
 */
// rsync/flist.c: flist_sort_and_clean (prune_empty_dirs && !am_sender)
export function pruneEmptyDirs(list: ReceivedList, excluded?: (name: Buffer) => boolean): number {
  const n = list.length;
  let low = 0;
  while (low < n && !list.isActive(low)) low++;
  let high = n - 1;
  while (high >= low && !list.isActive(high)) high--;
  if (low > high) return 0;
  // rsync keeps the chain in F_DEPTH: >= 0 a depth, -(k + 1) "pending, the previous directory
  // of the chain is ndx k". A cleared entry counts as depth 1 (clear_file), a non-directory too.
  const depth = new Int32Array(n).fill(1);
  for (let ndx = low; ndx <= high; ndx++) if (list.isActive(ndx) && isDir(list.mode(ndx))) depth[ndx] = depthOf(list.name(ndx));
  let cleared = 0;
  const clear = (ndx: number): void => {
    list.clear(ndx);
    depth[ndx] = 1;
    cleared++;
  };
  let prevDepth = 0;
  let prev = 0; // "It's OK that this isn't really true" (rsync): entry 0 ends the chain
  // The pending directories from `prev` back are kept: they lead to something.
  const keepChain = (from: number): void => {
    for (let j = from; ; j--) {
      const fp = prev;
      if (depth[fp]! >= 0) break;
      prev = -depth[fp]! - 1;
      depth[fp] = j;
    }
  };
  for (let i = low; i <= high; i++) {
    // A cleared duplicate has no mode (rsync's clear_file): it keeps the chain like a file.
    const dir = list.isActive(i) && isDir(list.mode(i)) && depth[i]! > 0;
    if (!dir) {
      keepChain(prevDepth);
      continue;
    }
    // Coming back up: the pending directories at this depth or deeper held nothing.
    for (let j = prevDepth; j >= depth[i]!; j--) {
      const fp = prev;
      if (depth[fp]! >= 0) break;
      prev = -depth[fp]! - 1;
      clear(fp);
    }
    prevDepth = depth[i]!;
    if (excluded?.(list.name(i))) keepChain(prevDepth - 1);
    else depth[i] = -prev - 1;
    prev = i;
  }
  // The directories still pending at the end held nothing either.
  for (;;) {
    const fp = prev;
    if (depth[fp]! >= 0) break;
    prev = -depth[fp]! - 1;
    clear(fp);
  }
  return cleared;
}
