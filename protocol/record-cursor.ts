// A synchronous cursor over the bytes a ByteReader has buffered (docs/protocol.md [codec]): a
// record of unknown size (a file-list entry) is parsed in place with no await and no Buffer per
// field. A read that runs past the buffered bytes throws NEED_MORE; the caller undoes what it
// did, waits until `wanted` bytes are buffered (ByteReader.fill) and parses the record again.
// The reads decode and refuse exactly as ByteReader's do (the same errors), so a record parses to
// the same result, or fails with the same error, however the stream was cut into chunks.
// Counterpart: rsync io.c (read_byte, read_int, read_varint, read_varlong, read_longint, read_buf),
// which block where this one throws.
import { ProtocolError } from './errors.js';
import type { ByteReader } from './io.js';
import { decodeVarint, decodeVarlong, varExtraBytes } from './varint.js';

/** Thrown by a cursor read past the buffered bytes: how many bytes the record needs so far. */
export class NeedMoreBytes {
  wanted = 0;
}

/** The one NEED_MORE signal (no allocation per short read). */
export const NEED_MORE = new NeedMoreBytes();

// rsync/io.c: the read_* family, over bytes already buffered [codec-int] [codec-varint]
export class RecordCursor {
  /** The reader's buffer; fields are read at `pos`. */
  buf: Buffer = Buffer.alloc(0);
  /** Where the record started (the reader's position when `begin` ran). */
  private start = 0;
  pos = 0;
  private end = 0;

  /** Start a record at the reader's read position. */
  begin(reader: ByteReader): void {
    this.buf = reader.window;
    this.start = this.pos = reader.windowStart;
    this.end = this.buf.length;
  }

  /** Bytes of the record read so far (what the reader skips once the record is parsed). */
  get length(): number {
    return this.pos - this.start;
  }

  /** Throw NEED_MORE unless `n` more bytes are buffered. */
  need(n: number): void {
    if (this.end - this.pos < n) {
      NEED_MORE.wanted = this.pos - this.start + n;
      throw NEED_MORE;
    }
  }

  byte(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  // rsync/io.c: read_int
  int(): number {
    this.need(4);
    const v = this.buf.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  // rsync/io.c: read_varint
  varint(): number {
    this.need(1);
    const extra = varExtraBytes(this.buf[this.pos]!);
    if (extra > 4) throw new ProtocolError(`overflow in varint: prefix byte 0x${this.buf[this.pos]!.toString(16)}`);
    this.need(1 + extra);
    const v = decodeVarint(this.buf, this.pos);
    this.pos += 1 + extra;
    return v;
  }

  // rsync/io.c: read_varlong
  varlong(minBytes: number): number {
    this.need(minBytes);
    const extra = varExtraBytes(this.buf[this.pos]!);
    if (minBytes + extra > 9) throw new ProtocolError(`overflow in varlong: prefix byte 0x${this.buf[this.pos]!.toString(16)}`);
    this.need(minBytes + extra);
    const v = decodeVarlong(this.buf, this.pos, minBytes);
    this.pos += minBytes + extra;
    return v;
  }

  /** int32 before protocol 30, varint from 30 on (by the record's protocol). */
  // rsync/io.h: read_varint30
  varint30(protocol: number): number {
    return protocol < 30 ? this.int() : this.varint();
  }

  /** 64-bit value of protocols < 30: int32, or -1 then an int64 (within 2^53). */
  // rsync/io.c: read_longint
  longint(): number {
    const low = this.int();
    if (low !== -1) {
      if (low < 0) throw new ProtocolError(`negative longint ${low}`);
      return low;
    }
    this.need(8);
    const big = this.buf.readBigInt64LE(this.pos);
    this.pos += 8;
    if (big < 0n || big > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError(`longint out of range: ${big}`);
    return Number(big);
  }

  /** rsync's read_longint as a full 64-bit value (dev and ino do not fit a number). */
  longint64(): bigint {
    const low = this.int();
    if (low !== -1) return BigInt(low);
    this.need(8);
    const v = this.buf.readBigInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Skip `n` bytes, returning where they start in `buf` (the caller bounded `n`). */
  // rsync/io.c: read_buf
  bytes(n: number): number {
    this.need(n);
    const at = this.pos;
    this.pos += n;
    return at;
  }
}
