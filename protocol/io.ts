// The typed codec over one connection (docs/protocol.md [codec]): a single buffered reader that
// serves the text greeting and then the binary phase, and a growable writer. Multiplexing
// (mplex.ts) plugs in underneath the reader and inside the writer's flush, so callers never see
// frames. Counterpart: rsync io.c (read_int, read_varint, ..., write_int, ...).
import { ConnectionClosedError, ProtocolError } from './errors.js';
import {
  decodeVarint,
  decodeVarlong,
  encodeLongint,
  encodeNdxInto,
  encodeVar,
  newNdxState,
  varExtraBytes,
  type NdxState,
} from './varint.js';
import { NDX_DONE } from './constants.js';

/** Where bytes come from: a socket, a pipe, a capture. `null` means end of stream. */
export interface ByteSource {
  read(): Promise<Uint8Array | null>;
}

/**
 * Where bytes go. `write` resolves when the sink can take more (back-pressure). The sink may keep
 * `bytes` (a socket's queue): the writer never writes into a range it has handed over.
 */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<void>;
  /**
   * Optional: true when the sink holds none of the bytes written so far (a socket whose every write
   * went to the kernel). The writer then reuses its slab from the start instead of taking a new one.
   */
  idle?(): boolean;
}

const EMPTY = Buffer.alloc(0);

/** Longest text line we accept before the binary phase (rsync's line buffer is BIGPATHBUFLEN). */
export const MAX_LINE = 4096;

/** Longest vstring the protocol allows (write_vstring's two-byte length form). */
export const MAX_VSTRING = 0x7fff;

// rsync/io.c: the read_* family [codec-int] [codec-vstring] [codec-line]
export class ByteReader {
  /** Negotiated protocol version: selects the encodings of varint30/varlong30/ndx. */
  protocol = 32;
  /** Our copy of the peer's ndx encoding state (one per direction). */
  readonly ndxState: NdxState = newNdxState();

  private buf: Buffer = EMPTY;
  private pos = 0;
  private pull: () => Promise<Uint8Array | null>;
  /** Bytes consumed so far by the typed reads (the logical stream, after demultiplexing). */
  consumed = 0;
  /**
   * Runs right before the reader asks the connection itself for more bytes (its buffer is empty
   * and the next read may wait on the peer): where rsync's perform_io writes out what is pending
   * while it waits for input. A role that writes answers sets it to flush them then, and not each
   * time a read might wait. After `detachRaw` it runs at the raw stream's pulls (below the
   * demultiplexer), not at the ends of frames. [sender-flush]
   */
  beforeWait: (() => Promise<void> | void) | null = null;
  /** Set once `detachRaw` moved the connection below this reader: the raw reader runs the hook. */
  private waitsBelow = false;

  constructor(source: ByteSource | (() => Promise<Uint8Array | null>)) {
    this.pull = typeof source === 'function' ? source : () => source.read();
  }

  /** Bytes already buffered and not yet consumed. */
  get buffered(): number {
    return this.buf.length - this.pos;
  }

  /**
   * Swap the supply of the logical stream (used when multiplexing starts). Returns a reader that
   * owns the bytes read ahead so far and the old supply: the raw stream the demultiplexer reads.
   */
  detachRaw(): ByteReader {
    const raw = new ByteReader(this.pull);
    raw.beforeWait = () => this.beforeWait?.();
    this.waitsBelow = true;
    raw.buf = this.buf.subarray(this.pos);
    this.buf = EMPTY;
    this.pos = 0;
    return raw;
  }

  /** Replace the supply of the logical stream. */
  setSupply(pull: () => Promise<Uint8Array | null>): void {
    this.pull = pull;
  }

  /** The next chunk of the supply, the wait hook run first. */
  private async pullMore(): Promise<Uint8Array | null> {
    if (this.beforeWait && !this.waitsBelow) await this.beforeWait();
    return this.pull();
  }

  /** Make sure `n` bytes are buffered; the one place that awaits. */
  private async need(n: number, what: string): Promise<void> {
    let have = this.buf.length - this.pos;
    if (have >= n) return;
    // Gather chunks and join once, so a large record costs one copy, not one per chunk.
    const pieces: Buffer[] = have ? [this.buf.subarray(this.pos)] : [];
    while (have < n) {
      const chunk = await this.pullMore();
      if (chunk === null) {
        this.buf = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
        this.pos = 0;
        throw new ConnectionClosedError(n, have, what);
      }
      if (chunk.length === 0) continue;
      pieces.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      have += chunk.length;
    }
    this.buf = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, have);
    this.pos = 0;
  }

  /** Consume `n` buffered bytes already decoded in place (no view is made: hot loops call this). */
  private advance(n: number): void {
    this.pos += n;
    this.consumed += n;
  }

  /** Consume `n` buffered bytes, returning a view (valid as long as the caller keeps it). */
  private take(n: number): Buffer {
    const view = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.consumed += n;
    return view;
  }

  /** Bytes exactly; `max` bounds what a peer may ask us to hold. */
  // rsync/io.c: read_buf
  async readBuf(n: number, max = n): Promise<Buffer> {
    if (!Number.isInteger(n) || n < 0 || n > max) {
      throw new ProtocolError(`refusing to read ${n} bytes (limit ${max})`);
    }
    await this.need(n, `${n} bytes`);
    return this.take(n);
  }

  /** Whatever is buffered now, or the next chunk (up to `max` bytes); null at end of stream. */
  async readSome(max: number): Promise<Buffer | null> {
    if (this.buffered === 0) {
      const chunk = await this.pullMore();
      if (chunk === null) return null;
      this.buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
      this.pos = 0;
    }
    return this.take(Math.min(max, this.buffered));
  }

  async readByte(): Promise<number> {
    if (this.buf.length - this.pos < 1) await this.need(1, 'a byte');
    const b = this.buf[this.pos]!;
    this.advance(1);
    return b;
  }

  /** uint16, little-endian. */
  // rsync/io.c: read_shortint
  async readShort(): Promise<number> {
    if (this.buf.length - this.pos < 2) await this.need(2, 'a short int');
    const v = this.buf.readUInt16LE(this.pos);
    this.advance(2);
    return v;
  }

  /** int32, little-endian. */
  // rsync/io.c: read_int
  async readInt(): Promise<number> {
    if (this.buf.length - this.pos < 4) await this.need(4, 'an int');
    const v = this.buf.readInt32LE(this.pos);
    this.advance(4);
    return v;
  }

  // rsync/io.c: read_varint
  async readVarint(): Promise<number> {
    if (this.buf.length - this.pos < 1) await this.need(1, 'a varint');
    const extra = varExtraBytes(this.buf[this.pos]!);
    if (extra > 4) throw new ProtocolError(`overflow in varint: prefix byte 0x${this.buf[this.pos]!.toString(16)}`);
    if (this.buf.length - this.pos < 1 + extra) await this.need(1 + extra, 'a varint');
    const v = decodeVarint(this.buf, this.pos);
    this.advance(1 + extra);
    return v;
  }

  // rsync/io.c: read_varlong
  async readVarlong(minBytes: number): Promise<number> {
    if (this.buf.length - this.pos < minBytes) await this.need(minBytes, 'a varlong');
    const extra = varExtraBytes(this.buf[this.pos]!);
    if (minBytes + extra > 9) throw new ProtocolError(`overflow in varlong: prefix byte 0x${this.buf[this.pos]!.toString(16)}`);
    if (this.buf.length - this.pos < minBytes + extra) await this.need(minBytes + extra, 'a varlong');
    const v = decodeVarlong(this.buf, this.pos, minBytes);
    this.advance(minBytes + extra);
    return v;
  }

  /** 64-bit value of protocols < 30: int32, or -1 then an int64. */
  // rsync/io.c: read_longint
  async readLongint(): Promise<number> {
    const low = await this.readInt();
    if (low !== -1) {
      if (low < 0) throw new ProtocolError(`negative longint ${low}`);
      return low;
    }
    await this.need(8, 'a longint');
    const big = this.take(8).readBigInt64LE(0);
    if (big < 0n || big > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError(`longint out of range: ${big}`);
    return Number(big);
  }

  /** int32 before protocol 30, varint from 30 on. */
  // rsync/io.h: read_varint30
  readVarint30(): Promise<number> {
    return this.protocol < 30 ? this.readInt() : this.readVarint();
  }

  /** longint before protocol 30, varlong(minBytes) from 30 on. */
  // rsync/io.h: read_varlong30
  readVarlong30(minBytes: number): Promise<number> {
    return this.protocol < 30 ? this.readLongint() : this.readVarlong(minBytes);
  }

  /** File-list index: int32 before protocol 30, the byte-diff encoding from 30 on. */
  // rsync/io.c: read_ndx
  async readNdx(): Promise<number> {
    for (;;) {
      const length = this.peekNdx();
      if (length) return this.takeNdx(length);
      await this.need(this.buffered + 1, 'an ndx');
    }
  }

  /** Set by peekNdx: the value of the ndx it measured, and which state it moves (0 none, 1 +, 2 -). */
  private peeked = 0;
  private peekedMoves = 0;

  /**
   * The byte length of the ndx `offset` bytes past the read position when all of it is buffered,
   * else 0. Nothing is consumed and the ndx state does not move: `takeNdx` does both. Lets a role
   * parse a whole request without waiting when the daemon sent it in a batch (the common case).
   */
  // rsync/io.c: read_ndx [codec-ndx]
  peekNdx(offset = 0): number {
    const buf = this.buf;
    const start = this.pos + offset;
    const end = buf.length;
    if (this.protocol < 30) {
      if (end - start < 4) return 0;
      this.peeked = buf.readInt32LE(start);
      this.peekedMoves = 0;
      return 4;
    }
    let p = start;
    if (p >= end) return 0;
    let b = buf[p++]!;
    if (b === 0) {
      this.peeked = NDX_DONE;
      this.peekedMoves = 0;
      return 1;
    }
    const negative = b === 0xff;
    if (negative) {
      if (p >= end) return 0;
      b = buf[p++]!;
    }
    const prev = negative ? this.ndxState.prevNegative : this.ndxState.prevPositive;
    let num: number;
    if (b === 0xfe) {
      if (end - p < 2) return 0;
      if (buf[p]! & 0x80) {
        // 4-byte absolute form: (x>>24)|0x80, x, x>>8, x>>16
        if (end - p < 4) return 0;
        num = ((buf[p]! & 0x7f) << 24) | buf[p + 1]! | (buf[p + 2]! << 8) | (buf[p + 3]! << 16);
        p += 4;
      } else {
        num = (buf[p]! << 8) + buf[p + 1]! + prev;
        p += 2;
      }
    } else {
      num = b + prev;
    }
    this.peeked = negative ? -num : num;
    this.peekedMoves = negative ? 2 : 1;
    return p - start;
  }

  /** The value of the ndx peekNdx just measured. */
  get peekedNdx(): number {
    return this.peeked;
  }

  /** Consume the ndx peekNdx just measured (`length` bytes at the read position); returns its value. */
  takeNdx(length: number): number {
    const value = this.peeked;
    if (this.peekedMoves === 1) this.ndxState.prevPositive = value;
    else if (this.peekedMoves === 2) this.ndxState.prevNegative = -value;
    this.advance(length);
    return value;
  }

  /** The buffered byte `offset` bytes past the read position (the caller checked `buffered`). */
  peekByte(offset: number): number {
    return this.buf[this.pos + offset]!;
  }

  /** The buffered int32 `offset` bytes past the read position (the caller checked `buffered`). */
  peekInt(offset: number): number {
    return this.buf.readInt32LE(this.pos + offset);
  }

  /**
   * The buffer the typed reads consume, and (`windowStart`) the read position in it: a role parses
   * a record in place (record-cursor.ts) and then `skip`s it. Valid until the next await.
   */
  get window(): Buffer {
    return this.buf;
  }

  get windowStart(): number {
    return this.pos;
  }

  /** Wait until `n` bytes are buffered (ConnectionClosedError, about `what`, if the stream ends first). */
  async fill(n: number, what: string): Promise<void> {
    if (this.buf.length - this.pos < n) await this.need(n, what);
  }

  /** Skip `n` buffered bytes (the caller checked `buffered`). */
  skip(n: number): void {
    this.advance(n);
  }

  /** Length-prefixed string (one byte, or two with the top bit set). */
  // rsync/io.c: read_vstring
  async readVstring(max = MAX_VSTRING): Promise<Buffer> {
    let len = await this.readByte();
    if (len & 0x80) len = ((len & 0x7f) << 8) | (await this.readByte());
    if (len > max) throw new ProtocolError(`vstring of ${len} bytes exceeds the limit of ${max}`);
    return this.readBuf(len);
  }

  /**
   * The bytes up to the next `terminator` (consumed with it, not returned), keeping at most `keep`
   * of them: the rest of a longer line is read and dropped, as rsync's read_line drops it.
   */
  // rsync/io.c: read_line (over the socket)
  async readUntil(terminator: number, keep: number, what: string): Promise<Buffer> {
    const kept: Buffer[] = [];
    let keptLength = 0;
    for (;;) {
      const end = this.buf.indexOf(terminator, this.pos);
      const stop = end === -1 ? this.buf.length : end;
      const room = Math.min(keep - keptLength, stop - this.pos);
      if (room > 0) {
        kept.push(Buffer.from(this.buf.subarray(this.pos, this.pos + room)));
        keptLength += room;
      }
      this.advance(stop - this.pos);
      if (end !== -1) {
        this.advance(1);
        return kept.length === 1 ? kept[0]! : Buffer.concat(kept, keptLength);
      }
      const chunk = await this.pullMore();
      if (chunk === null) throw new ConnectionClosedError(1, 0, what);
      this.buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
      this.pos = 0;
    }
  }

  /**
   * One text line of the greeting phase, without its `\n` (a `\r` is dropped, as rsync does).
   * Bounded: a line longer than `max` bytes, or one with a NUL, is a protocol error. Returns null
   * if the stream ends before any byte of a new line.
   */
  // rsync/io.c: read_line_old [greeting-bounds]
  async readLine(max = MAX_LINE): Promise<Buffer | null> {
    for (;;) {
      const nl = this.buf.indexOf(0x0a, this.pos);
      if (nl !== -1) {
        if (nl - this.pos > max) break;
        const line = this.take(nl - this.pos);
        this.take(1);
        return cleanLine(line);
      }
      if (this.buffered > max) break;
      const chunk = await this.pullMore();
      if (chunk === null) {
        if (this.buffered === 0) return null;
        throw new ConnectionClosedError(this.buffered + 1, this.buffered, 'a text line');
      }
      const rest = this.buf.subarray(this.pos);
      this.buf = Buffer.concat([rest, Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)]);
      this.pos = 0;
    }
    throw new ProtocolError(`text line longer than ${max} bytes from the daemon`);
  }
}

function cleanLine(line: Buffer): Buffer {
  if (line.includes(0)) throw new ProtocolError('NUL byte in a text line from the daemon');
  if (!line.includes(0x0d)) return line;
  return Buffer.from(line.filter((b) => b !== 0x0d));
}

/** Payload bytes per MSG_DATA frame of ours, like rsync's own writer (IO_BUFFER_SIZE). */
export const OUT_FRAME = 32 * 1024;
/** Tag byte of a MSG_DATA frame (MPLEX_BASE 7 + MSG_DATA 0; see mplex.ts). */
const DATA_TAG = 7;

// rsync/io.c: the write_* family [codec-int] [codec-vstring]
export class ByteWriter {
  protocol = 32;
  readonly ndxState: NdxState = newNdxState();
  /**
   * A slab that output is written into: [start, length) is pending. A flush hands that range to
   * the sink as a view and moves `start` past it, so the next output goes into the same slab;
   * a new slab is allocated only when this one is full (the sink may hold the views meanwhile).
   */
  private chunk: Buffer = Buffer.allocUnsafe(SLAB);
  private start = 0;
  private length = 0;
  /** Multiplexing: data goes out as MSG_DATA frames built in place (no extra copy). */
  private framing = false;
  /** Offset of the open frame's 4 reserved header bytes, or -1 when no frame is open. */
  private frameStart = -1;
  private readonly scratch = Buffer.allocUnsafe(8);
  /** Bytes written so far to the logical stream (payload, without frame headers). */
  written = 0;

  constructor(readonly sink: ByteSink) {}

  /** From now on, flushed data travels in MSG_DATA frames (mplex.ts startMultiplexOut). */
  startFraming(): void {
    if (this.length !== this.start) throw new Error('start framing with output pending');
    this.framing = true;
  }

  get multiplexed(): boolean {
    return this.framing;
  }

  /** Bytes buffered and not yet handed to the sink. */
  get pending(): number {
    return this.length - this.start;
  }

  /** Make room for n more bytes: a new slab (with the pending bytes moved over) if needed. */
  private room(n: number): void {
    if (this.length + n <= this.chunk.length) return;
    const pending = this.length - this.start;
    const next = Buffer.allocUnsafe(Math.max(SLAB, 2 * (pending + n)));
    this.chunk.copy(next, 0, this.start, this.length);
    if (this.frameStart >= 0) this.frameStart -= this.start;
    this.chunk = next;
    this.start = 0;
    this.length = pending;
  }

  private closeFrame(): void {
    if (this.frameStart < 0) return;
    const payload = this.length - this.frameStart - 4;
    if (payload === 0) this.length -= 4;
    else this.chunk.writeUInt32LE(((DATA_TAG << 24) | payload) >>> 0, this.frameStart);
    this.frameStart = -1;
  }

  writeBuf(bytes: Uint8Array): void {
    this.put(bytes, 0, bytes.length);
  }

  /** bytes[from, to) into the slab, framed when multiplexing; small pieces copied by hand (no view made). */
  private put(bytes: Uint8Array, from: number, to: number): void {
    let at = from;
    while (at < to) {
      let n = to - at;
      if (this.framing) {
        if (this.frameStart < 0) {
          this.room(4);
          this.frameStart = this.length;
          this.length += 4;
        }
        const space = OUT_FRAME - (this.length - this.frameStart - 4);
        if (space === 0) {
          this.closeFrame();
          continue;
        }
        n = Math.min(n, space);
      }
      this.room(n);
      if (n <= SMALL_COPY) {
        const chunk = this.chunk;
        for (let k = 0, o = this.length; k < n; k++) chunk[o + k] = bytes[at + k]!;
      } else {
        this.chunk.set(at === 0 && n === bytes.length ? bytes : bytes.subarray(at, at + n), this.length);
      }
      this.length += n;
      at += n;
    }
    this.written += to - from;
  }

  writeByte(value: number): void {
    this.scratch[0] = value & 0xff;
    this.put(this.scratch, 0, 1);
  }

  // rsync/io.c: write_shortint
  writeShort(value: number): void {
    this.scratch.writeUInt16LE(value & 0xffff, 0);
    this.put(this.scratch, 0, 2);
  }

  // rsync/io.c: write_int
  writeInt(value: number): void {
    this.scratch.writeInt32LE(value | 0, 0);
    this.put(this.scratch, 0, 4);
  }

  // rsync/io.c: write_varint
  writeVarint(value: number): void {
    this.writeBuf(encodeVar(value, 1, 4));
  }

  // rsync/io.c: write_varlong
  writeVarlong(value: number, minBytes: number): void {
    this.writeBuf(encodeVar(value, minBytes, 8));
  }

  // rsync/io.c: write_longint
  writeLongint(value: number): void {
    this.writeBuf(encodeLongint(value));
  }

  // rsync/io.h: write_varint30
  writeVarint30(value: number): void {
    if (this.protocol < 30) this.writeInt(value);
    else this.writeVarint(value);
  }

  // rsync/io.h: write_varlong30
  writeVarlong30(value: number, minBytes: number): void {
    if (this.protocol < 30) this.writeLongint(value);
    else this.writeVarlong(value, minBytes);
  }

  // rsync/io.c: write_ndx
  writeNdx(ndx: number): void {
    if (this.protocol < 30) this.writeInt(ndx);
    else this.put(this.scratch, 0, encodeNdxInto(this.scratch, 0, ndx, this.ndxState));
  }

  // rsync/io.c: write_vstring
  writeVstring(bytes: Uint8Array): void {
    if (bytes.length > MAX_VSTRING) throw new RangeError(`vstring too long: ${bytes.length}`);
    if (bytes.length >= 0x80) {
      this.writeByte(0x80 | (bytes.length >> 8));
      this.writeByte(bytes.length & 0xff);
    } else {
      this.writeByte(bytes.length);
    }
    this.writeBuf(bytes);
  }

  /** A text line of the greeting phase (`\n` appended). */
  writeLine(text: string | Uint8Array): void {
    this.writeBuf(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
    this.writeByte(0x0a);
  }

  /** Hand everything written so far to the sink (framed when multiplexing); no copy is made. */
  async flush(): Promise<void> {
    this.closeFrame();
    if (this.length === this.start) return;
    const out = this.chunk.subarray(this.start, this.length);
    this.start = this.length;
    if (this.chunk.length - this.length < SLAB_TAIL) {
      this.chunk = Buffer.allocUnsafe(SLAB);
      this.start = this.length = 0;
    }
    await this.sink.write(out);
    // Nothing written meanwhile, and the sink let go of every byte: the slab starts over, so a
    // big file streams through one slab instead of fresh memory for every 256 KiB.
    if (this.start === this.length && this.sink.idle?.()) this.start = this.length = 0;
  }
}

/** Pieces up to this long are copied byte by byte (a typed-array view would cost more). */
const SMALL_COPY = 16;
/** Output slab size: thousands of small flushes (one per file answered) share one allocation. */
const SLAB = 256 * 1024;
/** Below this much room left, a flush starts a new slab. */
const SLAB_TAIL = 8 * 1024;
