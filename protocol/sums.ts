// Block checksum lists (docs/protocol.md [pull-request], [sender-delta]): the
// sum head (count, blength, s2length, remainder) that precedes a file's block sums, the sums
// themselves, and how a generator sizes them. Counterpart: rsync io.c read_sum_head /
// write_sum_head, sender.c receive_sums, generator.c sum_sizes_sqroot.
import { ProtocolError } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';
import { SUM_LENGTH, type Checksummer } from './checksum.js';

/** rsync.h: BLOCK_SIZE, the smallest block the square-root rule picks. */
export const BLOCK_SIZE = 700;
/** rsync.h: MAX_BLOCK_SIZE, the largest block from protocol 30 on. */
export const MAX_BLOCK_SIZE = 1 << 17;
/** rsync.h: OLD_MAX_BLOCK_SIZE, the largest block before protocol 30. */
export const OLD_MAX_BLOCK_SIZE = 1 << 29;
/** rsync.h: BLOCKSUM_BIAS, the bits of safety in the strong-sum length estimate. */
export const BLOCKSUM_BIAS = 10;
/** rsync.h: SHORT_SUM_LENGTH, the strong-sum length of a first attempt (csum_length). */
export const SHORT_SUM_LENGTH = 2;

/**
 * Our cap on the block count a peer may announce (rsync only guards against size_t overflow).
 * 2^24 blocks is a 2 TiB basis at the 128 KiB block the square-root rule uses for any file over
 * 16 GiB, and at most 2^24 × (4 + 16) = 320 MiB of sums in memory; beyond that a hostile or
 * broken peer could make us allocate without bound.
 */
export const MAX_SUM_COUNT = 1 << 24;

/** The sum head of one file: rsync's struct sum_struct without the sums. */
export interface SumHead {
  /** Number of blocks. 0 = no basis: send everything as literal data. */
  count: number;
  /** Block length (0 only when count is 0). */
  blength: number;
  /** Bytes of each strong sum that travel (a prefix of the full digest). */
  s2length: number;
  /** Length of the last block when it is short; 0 when every block is blength long. */
  remainder: number;
}

/** A file's block sums as the generator sent them: flat typed arrays, no per-block objects. */
export interface SumBlocks {
  head: SumHead;
  /** Rolling checksum of block i (unsigned). */
  sum1: Uint32Array;
  /** Strong sums: block i is bytes [i*s2length, (i+1)*s2length). */
  sum2: Uint8Array;
}

/** Where file bytes come from: any async (or sync) iterable of chunks, e.g. a file read stream. */
export type ChunkSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** The all-zero head: "no basis, send the whole file" (write_sum_head with NULL). */
export const NULL_SUM_HEAD: Readonly<SumHead> = Object.freeze({ count: 0, blength: 0, s2length: 0, remainder: 0 });

/** Length of block `i` (the last one may be short). */
export function blockLength(head: SumHead, i: number): number {
  return i === head.count - 1 && head.remainder !== 0 ? head.remainder : head.blength;
}

/** Bytes of the basis the sums describe. */
export function basisLength(head: SumHead): number {
  if (head.count === 0) return 0;
  return (head.count - 1) * head.blength + blockLength(head, head.count - 1);
}

/**
 * Read and bound-check a sum head. `digestLength` is the negotiated checksum's xfer_sum_len:
 * the longest strong sum the peer may ask to compare. The protocol comes from the reader.
 */
// rsync/io.c: read_sum_head
export async function readSumHead(
  reader: ByteReader,
  digestLength: number,
  options: { maxCount?: number } = {},
): Promise<SumHead> {
  const maxCount = options.maxCount ?? MAX_SUM_COUNT;
  const count = checkCount(await reader.readInt(), maxCount);
  const blength = checkBlength(await reader.readInt(), count, reader.protocol);
  // Before protocol 27 the strong-sum length was implied (2); we mirror it for completeness.
  const s2length = checkS2length(reader.protocol < 27 ? SHORT_SUM_LENGTH : await reader.readInt(), digestLength);
  const remainder = checkRemainder(await reader.readInt(), blength);
  return { count, blength, s2length, remainder };
}

/**
 * readSumHead without waiting: the head when all of it is already buffered (consumed, checked
 * alike), else null with nothing consumed. The sender's loop tries it first: most heads arrive in
 * the same read as their request, and an await per field cost ~1.5 KB of garbage per file.
 */
export function readBufferedSumHead(reader: ByteReader, digestLength: number, options: { maxCount?: number } = {}): SumHead | null {
  const old = reader.protocol < 27;
  const bytes = old ? 12 : 16;
  if (reader.buffered < bytes) return null;
  const count = checkCount(reader.peekInt(0), options.maxCount ?? MAX_SUM_COUNT);
  const blength = checkBlength(reader.peekInt(4), count, reader.protocol);
  const s2length = checkS2length(old ? SHORT_SUM_LENGTH : reader.peekInt(8), digestLength);
  const remainder = checkRemainder(reader.peekInt(bytes - 4), blength);
  reader.skip(bytes);
  return { count, blength, s2length, remainder };
}

function checkCount(count: number, maxCount: number): number {
  if (count < 0 || count > maxCount) throw new ProtocolError(`invalid checksum count ${count} (limit ${maxCount})`);
  return count;
}

function checkBlength(blength: number, count: number, protocol: number): number {
  const maxBlength = protocol < 30 ? OLD_MAX_BLOCK_SIZE : MAX_BLOCK_SIZE;
  if (blength < 0 || blength > maxBlength) {
    throw new ProtocolError(`invalid block length ${blength} (limit ${maxBlength})`);
  }
  if (count > 0 && blength === 0) throw new ProtocolError('invalid zero block length');
  return blength;
}

function checkS2length(s2length: number, digestLength: number): number {
  if (s2length < 0 || s2length > digestLength) {
    throw new ProtocolError(`invalid checksum length ${s2length} (digest is ${digestLength} bytes)`);
  }
  return s2length;
}

function checkRemainder(remainder: number, blength: number): number {
  // rsync accepts remainder == blength (a full last block); only larger is an error.
  if (remainder < 0 || remainder > blength) {
    throw new ProtocolError(`invalid remainder length ${remainder} (block length ${blength})`);
  }
  return remainder;
}

// rsync/io.c: write_sum_head
export function writeSumHead(writer: ByteWriter, head: SumHead | null): void {
  const h = head ?? NULL_SUM_HEAD;
  writer.writeInt(h.count);
  writer.writeInt(h.blength);
  if (writer.protocol >= 27) writer.writeInt(h.s2length);
  writer.writeInt(h.remainder);
}

/** Block records decoded per await: one readBuf of at most this many records. */
const SUMS_PER_READ = 4096;

/**
 * Read the `head.count` block records (int32 sum1, then s2length bytes) that follow a head.
 * Awaits once per batch of records and decodes each batch synchronously.
 */
// rsync/sender.c: receive_sums
export async function readSumBlocks(reader: ByteReader, head: SumHead): Promise<SumBlocks> {
  const { count, s2length } = head;
  // The arrays grow as records arrive (doubling), so a peer that announces a huge count and
  // sends nothing costs nothing: memory follows the bytes actually received.
  let capacity = Math.min(count, SUMS_PER_READ);
  let sum1 = new Uint32Array(capacity);
  let sum2 = new Uint8Array(capacity * s2length);
  const record = 4 + s2length;
  for (let done = 0; done < count; ) {
    const n = Math.min(SUMS_PER_READ, count - done);
    const bytes = await reader.readBuf(n * record);
    if (done + n > capacity) {
      capacity = Math.min(count, Math.max(capacity * 2, done + n));
      const grown1 = new Uint32Array(capacity);
      grown1.set(sum1);
      const grown2 = new Uint8Array(capacity * s2length);
      grown2.set(sum2);
      sum1 = grown1;
      sum2 = grown2;
    }
    for (let j = 0, at = 0; j < n; j++, at += record) {
      sum1[done + j] = bytes.readUInt32LE(at);
      sum2.set(bytes.subarray(at + 4, at + record), (done + j) * s2length);
    }
    done += n;
  }
  return { head, sum1, sum2 };
}

/** Write block records in the layout readSumBlocks reads (for the generator role). */
export function writeSumBlocks(writer: ByteWriter, sums: SumBlocks): void {
  const { count, s2length } = sums.head;
  for (let i = 0; i < count; i++) {
    writer.writeInt(sums.sum1[i]! | 0);
    writer.writeBuf(sums.sum2.subarray(i * s2length, (i + 1) * s2length));
  }
}

export interface SumSizeOptions {
  /** `-B` / --block-size: a fixed block length. */
  blockSize?: number;
  /** The redo pass (csum_length == SUM_LENGTH): full-length strong sums. */
  fullSums?: boolean;
}

/**
 * Block length and strong-sum length a generator picks for a basis of `fileLength` bytes, as
 * rsync's generator does, plus the count and remainder that follow from them. `digestLength` is
 * the negotiated checksum's xfer_sum_len (it caps s2length).
 */
// rsync/generator.c: sum_sizes_sqroot [pull-request]
export function sumSizesSqroot(
  fileLength: number,
  protocol: number,
  digestLength: number,
  options: SumSizeOptions = {},
): SumHead {
  if (!Number.isSafeInteger(fileLength) || fileLength < 0) throw new RangeError(`bad file length ${fileLength}`);
  const csumLength = options.fullSums ? SUM_LENGTH : SHORT_SUM_LENGTH;
  const maxS2length = Math.min(SUM_LENGTH, digestLength);
  let blength: number;
  if (options.blockSize) {
    blength = options.blockSize;
  } else if (fileLength <= BLOCK_SIZE * BLOCK_SIZE) {
    blength = BLOCK_SIZE;
  } else {
    const maxBlength = protocol < 30 ? OLD_MAX_BLOCK_SIZE : MAX_BLOCK_SIZE;
    // c = 2^floor(log4(len)): the highest bit the square root can have.
    let c = 1;
    for (let l = Math.floor(fileLength / 4); l > 0; l = Math.floor(l / 4)) c *= 2;
    if (c >= maxBlength) {
      blength = maxBlength;
    } else {
      // Set bits from c down to 8 while blength² stays ≤ len: the largest multiple of 8 whose
      // square fits. BigInt keeps blength² exact past 2^53.
      const len = BigInt(fileLength);
      blength = 0;
      do {
        blength |= c;
        if (len < BigInt(blength) * BigInt(blength)) blength &= ~c;
        c >>= 1;
      } while (c >= 8);
      blength = Math.max(blength, BLOCK_SIZE);
    }
  }

  let s2length: number;
  if (protocol < 27) {
    s2length = csumLength;
  } else if (csumLength === SUM_LENGTH) {
    s2length = maxS2length;
  } else {
    // bits = BLOCKSUM_BIAS + 2·log2(len) − log2(blength), computed the way rsync does (integer
    // halvings, the second loop stopping at 0); then bytes = (bits + 1 − 32 + 7) / 8, where the
    // 32 bits of the rolling sum already count. C division truncates toward zero.
    let b = BLOCKSUM_BIAS;
    for (let l = Math.floor(fileLength / 2); l > 0; l = Math.floor(l / 2)) b += 2;
    for (let c = blength >> 1; c !== 0 && b !== 0; c >>= 1) b--;
    s2length = Math.trunc((b + 1 - 32 + 7) / 8);
    s2length = Math.max(s2length, csumLength);
    s2length = Math.min(s2length, maxS2length);
  }

  const remainder = fileLength % blength;
  const count = Math.floor(fileLength / blength) + (remainder !== 0 ? 1 : 0);
  return { count, blength, s2length, remainder };
}

/** Words per segment of weakSum: keeps every lane and partial sum of a segment within int32. */
const WEAK_SEGMENT = 128;

/**
 * get_checksum1 of `buf[start, end)` (checksum.ts getChecksum1 gives the same value), computed a
 * 32-bit word at a time for the generator's block sums. With v = byte ^ 0x80 (so a signed byte is
 * v − 128), a segment of k words (m = 4k bytes) has s1 = Σv − 128m and
 * s2 = Σ(m − i)·v_i − 128·m(m+1)/2 = m·Σv − Σi·v_i − 64·m(m+1), where
 * Σi·v_i = 4·Σj·S_j + Σ(v1 + 2v2 + 3v3) over the words (S_j is word j's byte sum). The byte sums
 * of a word come two at a time from 16-bit lanes (w & 0x00ff00ff and (w >>> 8) & 0x00ff00ff);
 * Σj·S_j = k·Σv − Σ(running Σv); the lane totals give the per-word weights. Segments combine as
 * s2 += m·s1 + s2', s1 += s1' (mod 2^32); the unaligned head and the tail go byte by byte.
 */
// rsync/checksum.c: get_checksum1 (the same sum; rsync unrolls by 4 bytes)
export function weakSum(buf: Uint8Array, start = 0, end = buf.length): number {
  let s1 = 0;
  let s2 = 0;
  let i = start;
  while (i < end && (buf.byteOffset + i) & 3) {
    s1 = (s1 + ((buf[i]! << 24) >> 24)) | 0;
    s2 = (s2 + s1) | 0;
    i++;
  }
  const words = LITTLE_ENDIAN && i < end ? (end - i) >> 2 : 0;
  if (words > 0) {
    const w32 = new Int32Array(buf.buffer, buf.byteOffset + i, words);
    for (let j = 0; j < words; ) {
      const k = words - j < WEAK_SEGMENT ? words - j : WEAK_SEGMENT;
      const stop = j + k;
      let a = 0; // Σv so far in this segment
      let r = 0; // Σ of the running a, after each word
      let lanesLo = 0; // v0 (low 16 bits) and v2 (high 16 bits), summed over the segment
      let lanesHi = 0; // v1 and v3
      for (; j < stop; j++) {
        const w = w32[j]! ^ 0x80808080;
        const lo = w & 0xff00ff;
        const hi = (w >>> 8) & 0xff00ff;
        lanesLo += lo;
        lanesHi += hi;
        const pair = lo + hi;
        a += (pair & 0xffff) + (pair >>> 16);
        r += a;
      }
      const t = (lanesHi & 0xffff) + 2 * (lanesLo >>> 16) + 3 * (lanesHi >>> 16);
      const m = 4 * k;
      const segS1 = a - 128 * m;
      const segS2 = m * a - (4 * (k * a - r) + t) - 64 * m * (m + 1);
      s2 = (s2 + Math.imul(m, s1) + segS2) | 0;
      s1 = (s1 + segS1) | 0;
    }
    i += words * 4;
  }
  for (; i < end; i++) {
    s1 = (s1 + ((buf[i]! << 24) >> 24)) | 0;
    s2 = (s2 + s1) | 0;
  }
  return ((s1 & 0xffff) | (s2 << 16)) >>> 0;
}

/** Int32 views read words in host order; weakSum's word loop assumes little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * The block sums of a basis file for `head` (from sumSizesSqroot of the basis length): rolling
 * sum and the first s2length bytes of the strong sum of each block, read in one pass over
 * `source`. Throws if the source is not exactly the length the head describes (the basis
 * changed while we read it).
 */
// rsync/generator.c: generate_and_send_sums (computing the sums; sending is writeSumHead + writeSumBlocks)
export async function generateSums(cs: Checksummer, source: ChunkSource, head: SumHead): Promise<SumBlocks> {
  const { count, s2length } = head;
  if (s2length > cs.digestLength) throw new RangeError(`s2length ${s2length} exceeds the ${cs.digestLength}-byte digest`);
  const sum1 = new Uint32Array(count);
  const sum2 = new Uint8Array(count * s2length);
  const total = basisLength(head);
  const block = Buffer.allocUnsafe(head.blength);
  let filled = 0;
  let i = 0;
  let seen = 0;
  const finish = (bytes: Uint8Array): void => {
    sum1[i] = weakSum(bytes);
    sum2.set(cs.blockSum(bytes).subarray(0, s2length), i * s2length);
    i++;
  };
  for await (const chunk of source) {
    seen += chunk.length;
    if (seen > total) throw new RangeError(`basis grew while reading it (more than ${total} bytes)`);
    for (let at = 0; at < chunk.length; ) {
      const want = blockLength(head, i);
      if (filled === 0 && chunk.length - at >= want) {
        finish(chunk.subarray(at, at + want)); // whole block inside the chunk: no copy
        at += want;
        continue;
      }
      const n = Math.min(want - filled, chunk.length - at);
      block.set(chunk.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === want) {
        finish(block.subarray(0, want));
        filled = 0;
      }
    }
  }
  if (seen !== total) throw new RangeError(`basis shrank while reading it (${seen} of ${total} bytes)`);
  return { head, sum1, sum2 };
}

/** Below this basis size a helper thread is not worth its start-up and messages. */
export const PARALLEL_SUMS_MIN = 32 << 20;

/**
 * A helper thread for block sums and whole-file digests, started on first use and reused for
 * every basis of a pull. The roles only see this interface; src/sums-helper.ts implements it
 * (threads and file reads are not protocol/'s business).
 */
export interface SumsHelper {
  /** The block sums of the basis open as `fd` (of head's length), on this thread and the helper's. */
  sums(cs: Checksummer, fd: number, head: SumHead): Promise<SumBlocks>;
  /**
   * The whole-file digest (cs.startFile's) of a file being written through `fd` (open for reading
   * too), computed on the helper thread from the bytes already on disk; null when there is no
   * helper.
   */
  fileDigest(cs: Checksummer, fd: number): HelperFileDigest | null;
  close(): Promise<void>;
}

/** See SumsHelper.fileDigest. */
export interface HelperFileDigest {
  /** Bytes [0, upto) of the file are written: the helper may hash them. */
  advance(upto: number): void;
  /** The file is complete at `length` bytes: its digest (read back on this thread if the helper died). */
  digest(length: number): Promise<Uint8Array>;
}
