// Block matching for the sender role (docs/protocol.md [sender-delta], [token]): roll the
// weak checksum over the new file, look blocks of the receiver's basis up by it, confirm with the
// strong sum, and decide which bytes travel as literal data and which as "copy block k".
// The whole-file checksum is computed over the same single pass. Streaming: the file arrives as
// chunks and only a bounded window is held. Counterpart: rsync match.c (build_hash_table,
// hash_search, matched, match_sums). With --inplace the receiver rebuilds the file over its basis,
// so no match may start behind the write offset, and a block found where it already is wins
// (docs/protocol.md [sender-inplace]).
import type { Checksummer } from './checksum.js';
import { RollingChecksum, getChecksum1 } from './checksum.js';
import { blockLength, type ChunkSource, type SumBlocks } from './sums.js';
import { ProtocolError } from './errors.js';
import { CHUNK_SIZE } from './constants.js';

/** rsync/match.c: TRADITIONAL_TABLESIZE, the 16-bit hash table used up to ~52k blocks. */
export const TRADITIONAL_TABLESIZE = 1 << 16;

/**
 * rsync/match.c: MAX_CHAIN_LEN. Candidates with an equal weak sum compared at one offset before
 * giving up there: bounds the work on bases full of identical blocks (rsync issue #217). Skipped
 * data goes as literals, so the output stays correct.
 */
export const MAX_CHAIN_LEN = 1024;

/** Bytes read ahead beyond what the search needs, so refills (and window compaction) are rare. */
const READ_AHEAD = 256 * 1024;

/** Where the token decisions go. Each callback may return a promise (back-pressure); it is awaited. */
export interface MatchSink {
  /**
   * Literal bytes, at most CHUNK_SIZE per call (one literal token each). The view is only valid
   * during the call (until its promise settles): copy it to keep it.
   */
  onLiteral(bytes: Uint8Array): void | Promise<void>;
  /**
   * "Copy block `index` of the receiver's basis" (token −(index+1)). `block` is the matched data
   * (what the zlib compression adds to its window); the view is only valid during the call.
   */
  onMatch(index: number, block: Uint8Array): void | Promise<void>;
}

export interface MatchResult {
  /** The whole-file checksum to send after the end-of-data token (digestLength bytes). */
  fileSum: Uint8Array;
  /** Length of the file as read. */
  length: number;
  literalBytes: number;
  matchedBytes: number;
  matches: number;
  /** Weak-sum hits whose strong sum differed (rsync's false_alarms). */
  falseAlarms: number;
}

export type { ChunkSource } from './sums.js';

export interface MatchOptions {
  /**
   * The receiver writes into its basis file (--inplace with the file itself as basis, rsync's
   * updating_basis_file): a block behind the current offset is already overwritten there, so it
   * matches only where it sits now; a block at its own offset is preferred (written not at all).
   */
  updatingBasis?: boolean;
}

/**
 * A reusable matcher: keeps its hash table and window between files, so a session allocates them
 * once. One file at a time.
 */
export class BlockMatcher {
  private table = new Int32Array(TRADITIONAL_TABLESIZE);
  private chain = new Int32Array(0);
  private tableSize = TRADITIONAL_TABLESIZE;
  private window = Buffer.alloc(0);
  private readonly roll = new RollingChecksum();

  constructor(private readonly checksummer: Checksummer) {}

  /**
   * Build the weak-sum hash table: for each bucket the last block index, chained through
   * `chain` to earlier ones (so a lookup visits the highest index first, as rsync does).
   */
  // rsync/match.c: build_hash_table
  private buildHashTable(sums: SumBlocks): void {
    const { count } = sums.head;
    // rsync sizes the table for ~80% load on big files; above 2^16 it must be odd so that
    // sum % size spans every bucket.
    let size = Math.floor(count / 8) * 10 + 11;
    if (size < TRADITIONAL_TABLESIZE) size = TRADITIONAL_TABLESIZE;
    if (this.table.length !== size) this.table = new Int32Array(size);
    this.table.fill(-1);
    if (this.chain.length < count) this.chain = new Int32Array(count);
    this.tableSize = size;
    const { sum1 } = sums;
    const table = this.table;
    const chain = this.chain;
    for (let i = 0; i < count; i++) {
      const sum = sum1[i]!;
      const t = size === TRADITIONAL_TABLESIZE ? ((sum & 0xffff) + (sum >>> 16)) & 0xffff : sum % size;
      chain[i] = table[t]!;
      table[t] = i;
    }
  }

  /**
   * Match the new file (`source`) against the receiver's block sums and report literal runs
   * and block matches to `sink`, in file order. `sums` null or count 0 = no basis: everything is
   * literal. Reads the source once; holds at most CHUNK_SIZE + blength + 256 KiB of it.
   */
  // rsync/match.c: match_sums
  async match(source: ChunkSource, sums: SumBlocks | null, sink: MatchSink, options: MatchOptions = {}): Promise<MatchResult> {
    const iterator: AsyncIterator<Uint8Array> | Iterator<Uint8Array> =
      Symbol.asyncIterator in source
        ? (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
        : (source as Iterable<Uint8Array>)[Symbol.iterator]();
    try {
      return await this.search(iterator, sums, sink, options.updatingBasis === true);
    } catch (e) {
      // Let the source release what it holds (a file stream's descriptor) before we give up.
      try {
        await iterator.return?.();
      } catch {
        // the first error is the one worth reporting
      }
      throw e;
    }
  }

  // rsync/match.c: hash_search + matched (and match_sums' no-sums branch)
  private async search(
    iterator: AsyncIterator<Uint8Array> | Iterator<Uint8Array>,
    sums: SumBlocks | null,
    sink: MatchSink,
    updatingBasis: boolean,
  ): Promise<MatchResult> {
    const cs = this.checksummer;
    const head = sums?.head ?? null;
    const count = head?.count ?? 0;
    const blength = count > 0 ? head!.blength : 0;
    const s2length = head?.s2length ?? 0;
    if (head && count > 0) {
      if (blength <= 0) throw new ProtocolError('block sums with a zero block length');
      if (s2length > cs.digestLength) throw new ProtocolError(`strong sum length ${s2length} exceeds the digest`);
      if (sums!.sum1.length < count || sums!.sum2.length < count * s2length) throw new RangeError('sum arrays shorter than count');
    }

    const fileHash = cs.startFile();
    // In place, a zero block may be realigned up to one block further on: room for a second block.
    const capacity = CHUNK_SIZE + (updatingBasis ? 2 * blength : blength) + 1 + READ_AHEAD;
    if (this.window.length < capacity) this.window = Buffer.allocUnsafe(capacity);
    const win = this.window;

    // --- the window: bytes [winStart, winStart + winLen) of the file sit at win[0, winLen) ---
    let pending: Uint8Array | null = null; // part of a source chunk not yet copied into the window
    let pendingAt = 0;
    let eof = false;
    let winStart = 0;
    let winLen = 0;
    let lastMatch = 0; // file offset of the first byte not yet sent (literal) or matched
    let length = 0; // bytes read so far; the file length once eof

    /** Make bytes up to file offset `upto` (exclusive) available, or reach the end of the file. */
    const fill = async (upto: number): Promise<void> => {
      while (winStart + winLen < upto) {
        if (pending === null) {
          if (eof) return;
          const next = await iterator.next();
          if (next.done) {
            eof = true;
            return;
          }
          if (next.value.length === 0) continue;
          pending = next.value;
          pendingAt = 0;
          fileHash.update(pending); // the file in order, once: the whole-file checksum
          length += pending.length;
        }
        if (winLen === win.length) {
          // Compact: keep only what is not yet sent. (lastMatch never trails by more than
          // CHUNK_SIZE plus the search window, which is what `capacity` reserves.)
          const keep = lastMatch - winStart;
          win.copyWithin(0, keep, winLen);
          winStart += keep;
          winLen -= keep;
          if (winLen === win.length) throw new Error('match window overflow'); // cannot happen
        }
        const n = Math.min(win.length - winLen, pending.length - pendingAt);
        win.set(pending.subarray(pendingAt, pendingAt + n), winLen);
        winLen += n;
        pendingAt += n;
        if (pendingAt === pending.length) pending = null;
      }
    };

    let literalBytes = 0;
    let matchedBytes = 0;
    let matches = 0;
    let falseAlarms = 0;

    /** Send file bytes [lastMatch, upto) as literal tokens of at most CHUNK_SIZE. */
    const sendLiteral = async (upto: number): Promise<void> => {
      while (lastMatch < upto) {
        const n = Math.min(CHUNK_SIZE, upto - lastMatch);
        const at = lastMatch - winStart;
        const r = sink.onLiteral(win.subarray(at, at + n));
        if (r) await r;
        lastMatch += n;
        literalBytes += n;
      }
    };

    /** Everything from lastMatch to the end of the file, as literal data. */
    const sendRest = async () => {
      for (;;) {
        await fill(lastMatch + CHUNK_SIZE);
        const upto = Math.min(winStart + winLen, lastMatch + CHUNK_SIZE);
        if (upto === lastMatch) break;
        await sendLiteral(upto);
      }
      return { fileSum: fileHash.digest(), length, literalBytes, matchedBytes, matches, falseAlarms };
    };

    // No basis: the whole file as literal data (match_sums' else branch).
    if (count === 0) return sendRest();

    this.buildHashTable(sums!);
    const table = this.table;
    const chain = this.chain;
    const traditional = this.tableSize === TRADITIONAL_TABLESIZE;
    const tableSize = this.tableSize;
    const { sum1, sum2 } = sums!;
    const lastLen = blockLength(head!, count - 1);
    const roll = this.roll;

    /** Is the strong sum of block `i` equal to `strong` (its first s2length bytes)? */
    const strongEquals = (strong: Uint8Array, i: number): boolean => {
      const base = i * s2length;
      for (let j = 0; j < s2length; j++) if (strong[j] !== sum2[base + j]) return false;
      return true;
    };

    // Prime the window: blength bytes plus one (to know whether the window can slide).
    await fill(blength + 1);
    if (winLen === 0) {
      return { fileSum: fileHash.digest(), length, literalBytes, matchedBytes, matches, falseAlarms };
    }
    let offset = 0;
    let k = Math.min(blength, winLen);
    roll.init(win, 0, k);
    let wantI = 0; // the block after the last match: preferred, so runs of blocks stay adjacent
    // In place: the first block boundary at or after offset, its index, and the blocks found where
    // they already are (rsync's SUMFLG_SAME_OFFSET), which stay usable behind the offset.
    let alignedOffset = 0;
    let alignedI = 0;
    const sameOffset = updatingBasis ? new Uint8Array(count) : null;
    /** In place, block `i` can no longer be used at `at`: it starts behind and is not where it was. */
    const bypassed = (i: number, at: number) => i * blength < at && sameOffset![i] === 0;

    const signed = new Int8Array(win.buffer, win.byteOffset, win.length);

    for (;;) {
      // Make sure the window [offset, offset + k) and the byte after it are here (or eof).
      if (winStart + winLen < offset + blength + 1 && !eof) {
        await fill(offset + blength + 1 + READ_AHEAD);
      }
      // rsync stops where even the (short) last block no longer fits: end = len + 1 − lastLen.
      const end = eof ? length + 1 - lastLen : Infinity;
      if (offset >= end) break;
      // Bytes before `offset` can no longer be part of a match: send full chunks of them now,
      // which bounds the window (rsync does the same to avoid re-reading).
      if (offset - lastMatch >= CHUNK_SIZE) await sendLiteral(lastMatch + CHUNK_SIZE);

      // Fast path: slide over offsets whose weak sum no block has, without leaving the window,
      // passing a literal chunk boundary, or entering the end zone where the window shrinks.
      const limit = Math.min(winStart + winLen - k, lastMatch + CHUNK_SIZE, end);
      if (offset < limit) {
        const stop = scanWeak(signed, offset - winStart, limit - winStart, k, roll, table, chain, sum1, tableSize);
        offset = stop + winStart;
        if (offset === limit) continue;
      }

      // A weak-sum candidate at `offset` (or the shrinking tail of the file): check it fully.
      const s1 = roll.s1;
      const s2 = roll.s2;
      const sum = ((s1 & 0xffff) | (s2 << 16)) >>> 0;
      const bucket = traditional ? (s1 + s2) & 0xffff : sum % tableSize;
      let i = table[bucket]!;
      let matched = -1;
      if (i >= 0) {
        let strong: Uint8Array | null = null; // computed lazily, once per offset
        let chainLen = 0;
        let prev = -1; // the chain entry before i (-1: the bucket's head)
        for (; i >= 0; i = chain[i]!) {
          if (updatingBasis && bypassed(i, offset)) {
            // Never usable again (the offset only grows): unlinked, as rsync does.
            if (prev < 0) table[bucket] = chain[i]!;
            else chain[prev] = chain[i]!;
            continue;
          }
          prev = i;
          if (sum1[i] !== sum) continue;
          if (++chainLen > MAX_CHAIN_LEN) break;
          // Only blocks of the window's length: the short last block matches only at the end.
          if (k !== blockLength(head!, i)) continue;
          if (strong === null) {
            const at = offset - winStart;
            strong = cs.blockSum(win.subarray(at, at + k));
          }
          if (!strongEquals(strong, i)) {
            falseAlarms++;
            continue;
          }
          let wantSum = sum; // what the want_i check below compares (rsync reuses its variables)
          let wantStrong = strong;
          if (updatingBasis) {
            // In place the best match is the block already at this offset: prefer it over want_i.
            // (All the generator's blocks start at multiples of blength.)
            while (alignedOffset < offset) {
              alignedOffset += blength;
              alignedI++;
            }
            // Zeros off the boundary: the next boundary may hold the same zero block.
            const zerosAhead = () => sum === 0 && k === blength && fill(alignedOffset + k).then(() => winStart + winLen >= alignedOffset + k);
            if (alignedI < count && (offset === alignedOffset || (await zerosAhead()))) {
              let sameSpot = true;
              if (i !== alignedI) {
                if (sum1[alignedI] !== sum || k !== blockLength(head!, alignedI) || !strongEquals(strong, alignedI)) sameSpot = false;
                else i = alignedI;
              }
              if (sameSpot && offset !== alignedOffset) {
                // Literal data up to the boundary, then the block where it already is (the receiver
                // seeks over it instead of writing), if the data there is that block too.
                const at = alignedOffset - winStart;
                const there = win.subarray(at, at + k);
                wantSum = getChecksum1(there);
                if (wantSum !== sum1[i]) sameSpot = false;
                else {
                  wantStrong = cs.blockSum(there).slice();
                  if (!strongEquals(wantStrong, i)) sameSpot = false;
                  else offset = alignedOffset;
                }
              }
              if (sameSpot) {
                sameOffset![i] = 1;
                wantI = i;
              }
            }
          }
          // A match; the next block in sequence is preferred when it is equally good.
          if (
            i !== wantI &&
            wantI < count &&
            (!updatingBasis || !bypassed(wantI, offset)) &&
            sum1[wantI] === wantSum &&
            k === blockLength(head!, wantI) &&
            strongEquals(wantStrong, wantI)
          ) {
            i = wantI;
          }
          matched = i;
          break;
        }
      }

      if (matched >= 0) {
        wantI = matched + 1;
        await sendLiteral(offset);
        const r = sink.onMatch(matched, win.subarray(offset - winStart, offset - winStart + k));
        if (r) await r;
        matches++;
        matchedBytes += k;
        offset += k;
        lastMatch = offset;
        // A run of matches: when the data here has the strong sum of the next block in sequence,
        // it is that block's data, so its weak sum is sum1[wantI] as well and rsync's search would
        // land on wantI too. Take it without summing the block byte by byte (the dominant cost of
        // long runs). Only with strong sums of 3+ bytes: a false positive needs a changed region
        // to collide (odds 2^-24 each), and even then the whole-file checksum catches it (a redo).
        // In place only where the next block sits at this very offset (rsync's aligned choice).
        while (s2length >= 3 && wantI < count && (!updatingBasis || wantI * blength === offset)) {
          if (winStart + winLen < offset + blength + 1 && !eof) await fill(offset + blength + 1 + READ_AHEAD);
          const len = blockLength(head!, wantI);
          const have = winStart + winLen - offset;
          // A short last block only at the very end of the file, as in the search below.
          if (have < len || (len !== blength && !(eof && have === len))) break;
          const at = offset - winStart;
          const block = win.subarray(at, at + len);
          if (!strongEquals(cs.blockSum(block), wantI)) break;
          const next = sink.onMatch(wantI, block);
          if (next) await next;
          wantI++;
          matches++;
          matchedBytes += len;
          offset += len;
          lastMatch = offset;
        }
        // Restart the rolling sum on the window after the matched block.
        if (winStart + winLen < offset + blength + 1 && !eof) {
          await fill(offset + blength + 1 + READ_AHEAD);
        }
        k = Math.min(blength, winStart + winLen - offset);
        roll.init(win, offset - winStart, k);
        continue;
      }

      // No match here: slide one byte (or shrink the window at the end of the file).
      const at = offset - winStart;
      if (offset + k < winStart + winLen) {
        roll.roll(win[at]!, win[at + k]!);
      } else {
        roll.shrink(win[at]!);
        k--;
      }
      offset++;
    }

    // The tail that no block can match, as literal data; then the rest of the file (if the
    // search stopped early) is read and sent the same way.
    return sendRest();
  }
}

/**
 * The hot loop of the search: from window position `at`, roll the weak sum one byte at a time
 * until some block has exactly that weak sum (return its position) or `stop` is reached (return
 * `stop`, with `roll` describing the window there). Every position in [at, stop) must have its
 * successor byte at `at + k` in the window. Reads the window as Int8 so bytes are signed chars, as
 * rsync's `schar *` (CHAR_OFFSET is 0). Allocates nothing.
 */
// rsync/match.c: hash_search (the null_hash path)
function scanWeak(
  win: Int8Array,
  at: number,
  stop: number,
  k: number,
  roll: RollingChecksum,
  table: Int32Array,
  chain: Int32Array,
  sum1: Uint32Array,
  tableSize: number,
): number {
  let s1 = roll.s1;
  let s2 = roll.s2;
  const traditional = tableSize === TRADITIONAL_TABLESIZE;
  for (; at < stop; at++) {
    const sum = ((s1 & 0xffff) | (s2 << 16)) >>> 0;
    let i = table[traditional ? (s1 + s2) & 0xffff : sum % tableSize]!;
    for (; i >= 0; i = chain[i]!) {
      if (sum1[i] === sum) {
        roll.s1 = s1;
        roll.s2 = s2;
        return at;
      }
    }
    const o = win[at]!;
    s1 = (s1 - o + win[at + k]!) | 0;
    s2 = (s2 - Math.imul(k, o) + s1) | 0;
  }
  roll.s1 = s1;
  roll.s2 = s2;
  return at;
}

/** One-shot form of BlockMatcher.match. */
export function matchSums(
  checksummer: Checksummer,
  source: ChunkSource,
  sums: SumBlocks | null,
  sink: MatchSink,
): Promise<MatchResult> {
  return new BlockMatcher(checksummer).match(source, sums, sink);
}
