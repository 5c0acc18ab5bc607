// Integer encodings of the rsync wire (docs/protocol.md [codec-*]), as pure functions over byte
// arrays. Counterpart: rsync io.c write_varint/read_varint, write_varlong/read_varlong,
// write_longint/read_longint, write_ndx/read_ndx, and io.h int_byte_extra[].
// The async reader in io.ts awaits the bytes a record needs, then decodes with these synchronously.
import { ProtocolError } from './errors.js';
import { NDX_DONE } from './constants.js';

/**
 * Extra bytes that follow the first byte of a varint/varlong: the number of leading 1 bits of
 * that byte, capped at 6 (rsync's int_byte_extra table, indexed by byte >> 2).
 */
export function varExtraBytes(firstByte: number): number {
  if (firstByte < 0x80) return 0;
  if (firstByte < 0xc0) return 1;
  if (firstByte < 0xe0) return 2;
  if (firstByte < 0xf0) return 3;
  if (firstByte < 0xf8) return 4;
  if (firstByte < 0xfc) return 5;
  return 6;
}

const TWO_32 = 0x1_0000_0000;

/** Little-endian bytes of a non-negative integer below 2^64 (as far as a JS number reaches). */
function leBytes(value: number, out: Uint8Array): void {
  let lo = value % TWO_32;
  let hi = Math.floor(value / TWO_32);
  for (let i = 0; i < 4; i++) {
    out[i] = lo & 0xff;
    lo = Math.floor(lo / 256);
  }
  for (let i = 4; i < 8; i++) {
    out[i] = hi & 0xff;
    hi = Math.floor(hi / 256);
  }
}

const scratch = new Uint8Array(9);

/**
 * Encode `value` in rsync's varlong scheme with `minBytes` fixed bytes, over a `width`-byte integer
 * (varint is width 4 / min 1, varlong width 8). Returns the encoding as a fresh array.
 */
// rsync/io.c: write_varlong (and write_varint, the same scheme over 4 bytes) [codec-varint]
export function encodeVar(value: number, minBytes: number, width: 4 | 8): Uint8Array {
  // b[0] is the prefix byte, b[1..width] the value's little-endian bytes.
  const b = scratch;
  b.fill(0);
  if (width === 4) {
    const v = value >>> 0; // varints are int32 on the wire; negative values travel as two's complement
    b[1] = v & 0xff;
    b[2] = (v >>> 8) & 0xff;
    b[3] = (v >>> 16) & 0xff;
    b[4] = (v >>> 24) & 0xff;
  } else {
    if (value < 0 || !Number.isSafeInteger(value)) throw new RangeError(`varlong out of range: ${value}`);
    leBytes(value, b.subarray(1));
  }
  let count = width;
  while (count > minBytes && b[count] === 0) count--;
  const bit = 1 << (7 - count + minBytes);
  if (b[count]! >= bit) {
    count++;
    b[0] = ~(bit - 1) & 0xff;
  } else if (count > minBytes) {
    b[0] = (b[count]! | ~(bit * 2 - 1)) & 0xff;
  } else {
    b[0] = b[count]!;
  }
  return b.slice(0, count);
}

/** Length in bytes of a varint/varlong record, given its first `minBytes` bytes are at `bytes[at]`. */
export function varRecordLength(bytes: Uint8Array, at: number, minBytes: number): number {
  return minBytes + varExtraBytes(bytes[at]!);
}

/** Decode a varint (int32, sign-interpreted) from `bytes[at..]`, which must hold the whole record. */
// rsync/io.c: read_varint [codec-varint]
export function decodeVarint(bytes: Uint8Array, at: number): number {
  const first = bytes[at]!;
  const extra = varExtraBytes(first);
  if (extra > 4) throw new ProtocolError(`overflow in varint: prefix byte 0x${first.toString(16)}`);
  if (extra === 0) return first;
  let value = 0;
  for (let i = 0; i < extra; i++) value += bytes[at + 1 + i]! * 2 ** (8 * i);
  value += (first & ((1 << (8 - extra)) - 1)) * 2 ** (8 * extra);
  return value | 0; // rsync stores the result in an int32
}

/**
 * Decode a varlong with `minBytes` fixed bytes from `bytes[at..]` (the whole record present). Like
 * rsync's read_varlong it yields an int64: negative values come in the nine-byte form.
 */
// rsync/io.c: read_varlong [codec-varint]
export function decodeVarlong(bytes: Uint8Array, at: number, minBytes: number): number {
  const first = bytes[at]!;
  const extra = varExtraBytes(first);
  if (minBytes + extra > 9) throw new ProtocolError(`overflow in varlong: prefix byte 0x${first.toString(16)}`);
  // Value bytes, little-endian: bytes[at+1 .. at+minBytes-1], then the extra bytes, then the
  // prefix's low bits (or the prefix itself when there are no extra bytes) as the top byte.
  if (minBytes + extra === 9) {
    // All eight value bytes are on the wire: an int64, which may be negative (a pre-1970 mtime).
    // rsync drops the prefix's low bits here: they would be a ninth byte of an 8-byte integer.
    const big = Buffer.from(bytes.buffer, bytes.byteOffset + at + 1, 8).readBigInt64LE(0);
    if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new ProtocolError(`varlong beyond 2^53: refusing`);
    }
    return Number(big);
  }
  let value = 0;
  let shift = 0;
  for (let i = 1; i < minBytes + extra; i++, shift++) value += bytes[at + i]! * 2 ** (8 * shift);
  const top = extra ? first & ((1 << (8 - extra)) - 1) : first;
  value += top * 2 ** (8 * shift);
  if (!Number.isSafeInteger(value)) throw new ProtocolError(`varlong beyond 2^53: refusing`);
  return value;
}

/** rsync's 64-bit "longint" of protocols < 30: int32, or int32 -1 followed by an int64. */
// rsync/io.c: write_longint [codec-longint]
export function encodeLongint(value: number): Uint8Array {
  if (value >= 0 && value <= 0x7fffffff) {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setInt32(0, value, true);
    return out;
  }
  if (value < 0 || !Number.isSafeInteger(value)) throw new RangeError(`longint out of range: ${value}`);
  const out = new Uint8Array(12);
  const view = new DataView(out.buffer);
  view.setInt32(0, -1, true);
  view.setBigInt64(4, BigInt(value), true);
  return out;
}

/** The per-direction state of the ndx encoding (protocol >= 30). */
export interface NdxState {
  prevPositive: number;
  prevNegative: number;
}

export function newNdxState(): NdxState {
  return { prevPositive: -1, prevNegative: 1 };
}

/** Encode a file-list index for protocol >= 30 (byte-diff encoding), updating `state`. */
// rsync/io.c: write_ndx [codec-ndx]
export function encodeNdx(ndx: number, state: NdxState): Uint8Array {
  const out = new Uint8Array(MAX_NDX_BYTES);
  return out.slice(0, encodeNdxInto(out, 0, ndx, state));
}

/** The longest ndx encoding: 0xff, 0xfe and four bytes. */
export const MAX_NDX_BYTES = 6;

/** encodeNdx written into `out` at `at` (room for MAX_NDX_BYTES); returns the bytes written. */
export function encodeNdxInto(out: Uint8Array, at: number, ndx: number, state: NdxState): number {
  if (ndx === NDX_DONE) {
    out[at] = 0;
    return 1;
  }
  let p = at;
  let diff: number;
  let value = ndx;
  if (ndx >= 0) {
    diff = ndx - state.prevPositive;
    state.prevPositive = ndx;
  } else {
    out[p++] = 0xff;
    value = -ndx;
    diff = value - state.prevNegative;
    state.prevNegative = value;
  }
  if (diff > 0 && diff < 0xfe) {
    out[p++] = diff;
  } else if (diff < 0 || diff > 0x7fff) {
    out[p++] = 0xfe;
    out[p++] = ((value >>> 24) | 0x80) & 0xff;
    out[p++] = value & 0xff;
    out[p++] = (value >>> 8) & 0xff;
    out[p++] = (value >>> 16) & 0xff;
  } else {
    out[p++] = 0xfe;
    out[p++] = (diff >>> 8) & 0xff;
    out[p++] = diff & 0xff;
  }
  return p - at;
}
