// Deflated tokens of the delta stream (docs/protocol.md [token-deflate]), what `-z` sends with
// the zlibx and zlib compressions: flag bytes for block references (runs, relative numbers) and
// DEFLATED_DATA frames holding raw deflate output (the sync-flush trailer 00 00 ff ff cut off);
// END_FLAG ends a file. With zlib the matched blocks also enter both windows (the sender's
// compressor, the receiver's decompressor), so later literal data can refer to them; zlibx leaves
// them out. The codec is pako (pure JS; docs/dependencies.md says why). One deflate and one
// inflate stream per session, reset at each file's end.
// Counterpart: rsync token.c send_deflated_token, recv_deflated_token, see_deflate_token.
import {
  ZStream,
  zlibDeflateInit2,
  zlibDeflate,
  zlibDeflateReset,
  zlibDeflateSetDictionary,
  zlibInflateInit2,
  zlibInflate,
  zlibInflateReset,
  Z_NO_FLUSH,
  Z_SYNC_FLUSH,
  Z_OK,
  Z_BUF_ERROR,
  Z_DEFAULT_STRATEGY,
} from 'pako';
import { ProtocolError, EXIT } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';
import { CHUNK_SIZE } from './constants.js';
import type { Token, TokenSink, TokenSource } from './token.js';
import type { DeflateAlgorithm } from './compress-codecs.js';
import { DEFLATED_DATA, END_FLAG, MAX_DATA_COUNT, TokenNumberReader, TokenRunWriter, writeDataFrame } from './token-runs.js';

export { END_FLAG, TOKEN_LONG, TOKENRUN_LONG, DEFLATED_DATA, TOKEN_REL, TOKENRUN_REL, MAX_DATA_COUNT } from './token-runs.js';
export type { DeflateAlgorithm, TokenCompression } from './compress-codecs.js';

/** rsync/token.c AVAIL_OUT_SIZE(CHUNK_SIZE): the most data one inflate step yields (32816). */
export const MAX_INFLATED_PIECE = Math.floor((CHUNK_SIZE * 1001) / 1000) + 16;

/** Matched data enters the window in stored-block-sized pieces (rsync's see_deflate_token). */
const MAX_STORED = 0xffff;

/** The sync-flush trailer deflate ends each flush with; it never travels. */
const SYNC_TRAILER = [0x00, 0x00, 0xff, 0xff] as const;

/** Hand output to the socket once this much is buffered, so a large file streams. */
const FLUSH_AT = 64 * 1024;

/** A deflating session's compression: the algorithm and, for the sending side, the level (0 to 9). */
export interface DeflateCompression {
  algorithm: DeflateAlgorithm;
  level: number;
}

/** rsync's default deflate level (init_compression_level: Z_DEFAULT_COMPRESSION means 6). */
export const DEFAULT_DEFLATE_LEVEL = 6;

/**
 * The level a side compresses at (rsync init_compression_level): unset or -1 is 6, others clamp
 * to 1..9; 0 turns compression off (null), unless it comes from a skip list of `*`, which keeps
 * the deflated format at level 0 (stored blocks).
 */
// rsync/token.c: init_compression_level (the zlib cases)
export function deflateLevel(requested: number | undefined): number | null {
  if (requested === undefined || requested === -1) return DEFAULT_DEFLATE_LEVEL;
  if (requested === 0) return null;
  return Math.max(1, Math.min(9, requested));
}

/** The stream is damaged: rsync's "inflate returned …" (exit 12). */
function streamError(what: string): ProtocolError {
  return new ProtocolError(`compressed token stream: ${what}`, { exitCode: EXIT.STREAMIO });
}

/**
 * Writes the match decisions as deflated tokens. Literal data is deflated without flushing; a
 * block reference (or the end of the file) first sync-flushes it, so the receiver can return all
 * data before the reference. Adjacent block references are coded as runs.
 */
// rsync/token.c: send_deflated_token [token-deflate]
export class DeflatedTokenWriter implements TokenSink {
  private readonly strm = new ZStream();
  /** Deflate output not yet framed: [0, held). Holds two frames and the trailer. */
  private readonly out = new Uint8Array(2 * MAX_DATA_COUNT + 64);
  private held = 0;
  /** Literal data deflated since the last sync flush. */
  private dataPending = false;
  private readonly runs: TokenRunWriter;
  private matchesSinceFlush = 0;

  constructor(
    private readonly writer: ByteWriter,
    private readonly compression: DeflateCompression,
    /** Below 31, rsync repeats the first 64 KiB of a long matched block into the window (a bug kept for compatibility). */
    private readonly protocol = writer.protocol,
  ) {
    this.runs = new TokenRunWriter(writer);
    // Raw deflate (no zlib header), a 32 KiB window, memLevel 8: as rsync's deflateInit2.
    if (zlibDeflateInit2(this.strm, compression.level, 8, -15, 8, Z_DEFAULT_STRATEGY, true) !== Z_OK) {
      throw new ProtocolError(`compression init failed (level ${compression.level})`);
    }
  }

  async onLiteral(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    this.runs.flush();
    this.deflate(bytes, Z_NO_FLUSH);
    this.dataPending = true;
    if (this.writer.pending >= FLUSH_AT) await this.writer.flush();
  }

  async onMatch(index: number, block?: Uint8Array): Promise<void> {
    this.flushData();
    this.runs.add(index);
    if (this.compression.algorithm === 'zlib') {
      if (!block) throw new Error('internal: zlib compression needs the matched block');
      this.insert(block);
    }
    // As the simple writer does: flush every few matches so the receiver rebuilds as we search.
    if (this.writer.pending >= FLUSH_AT || ++this.matchesSinceFlush >= 64) {
      this.matchesSinceFlush = 0;
      await this.writer.flush();
    }
  }

  /** The end of the file's data: flush, the last run, END_FLAG; the stream starts afresh. */
  end(): void {
    this.flushData();
    this.runs.end();
    zlibDeflateReset(this.strm);
  }

  /** Sync-flush the deflated literal data; the trailer is cut off (the receiver re-adds it). */
  // rsync/token.c: send_deflated_token (the Z_SYNC_FLUSH branch) [deflate-data]
  private flushData(): void {
    if (!this.dataPending) return;
    this.deflate(new Uint8Array(0), Z_SYNC_FLUSH);
    const end = this.held - 4;
    if (end < 0 || SYNC_TRAILER.some((b, i) => this.out[end + i] !== b)) throw new Error('internal: deflate sync flush without its trailer');
    this.writeFrames(end);
    this.held = 0;
    this.dataPending = false;
  }

  /** Run deflate over `input` until it is consumed (and, flushing, until all output is out). */
  private deflate(input: Uint8Array, flush: typeof Z_NO_FLUSH | typeof Z_SYNC_FLUSH): void {
    const s = this.strm;
    s.input = input;
    s.next_in = 0;
    s.avail_in = input.length;
    for (;;) {
      s.output = this.out as Uint8Array<ArrayBuffer>;
      s.next_out = this.held;
      s.avail_out = this.out.length - this.held;
      const r = zlibDeflate(s, flush);
      if (r !== Z_OK && r !== Z_BUF_ERROR) throw new ProtocolError(`deflate returned ${r}`, { exitCode: EXIT.STREAMIO });
      this.held = s.next_out;
      const full = s.avail_out === 0;
      // Frame what is certainly not the trailer (all but the last 4 bytes), in whole frames as rsync's.
      if (this.held >= MAX_DATA_COUNT + 4) this.writeFrames(this.held - 4 - ((this.held - 4) % MAX_DATA_COUNT));
      if (s.avail_in === 0 && !full) break;
    }
  }

  /** out[0, upto) as DEFLATED_DATA frames of at most MAX_DATA_COUNT; the rest moves to the front. */
  private writeFrames(upto: number): void {
    let at = 0;
    while (at < upto) {
      const n = Math.min(MAX_DATA_COUNT, upto - at);
      writeDataFrame(this.writer, this.out.subarray(at, at + n));
      at += n;
    }
    this.out.copyWithin(0, upto, this.held);
    this.held -= upto;
  }

  /**
   * zlib: put a matched block into the compressor's window and hash, sending nothing (rsync's
   * deflate(Z_INSERT_ONLY)); raw deflate takes a dictionary at any flushed point, which is that.
   */
  // rsync/token.c: send_deflated_token (the CPRES_ZLIB tail) [deflate-window]
  private insert(block: Uint8Array): void {
    for (const piece of windowPieces(block, this.protocol)) {
      if (zlibDeflateSetDictionary(this.strm, piece) !== Z_OK) throw new Error('internal: deflateSetDictionary refused');
    }
  }
}

/**
 * The pieces in which a matched block enters a window, in order. From protocol 31 the block in
 * slices of at most 64 KiB − 1; below it rsync forgot to advance, so every slice is taken from
 * the block's start (what counts is that both sides do the same).
 */
// rsync/token.c: see_deflate_token (the protocol_version >= 31 test)
export function* windowPieces(block: Uint8Array, protocol: number): Generator<Uint8Array> {
  for (let at = 0; at < block.length; at += MAX_STORED) {
    const n = Math.min(MAX_STORED, block.length - at);
    yield protocol >= 31 ? block.subarray(at, at + n) : block.subarray(0, n);
  }
}

type RecvState = 'idle' | 'running' | 'inflating' | 'inflated';

/**
 * Reads deflated tokens: literal data as it inflates (at most MAX_INFLATED_PIECE bytes per
 * token, whatever the peer sent), block references from flags and runs. With zlib the caller
 * shows each block's data to `seeBlock` after it is returned.
 */
// rsync/token.c: recv_deflated_token [token-deflate] [deflate-bounds]
export class DeflatedTokenReader implements TokenSource {
  private readonly strm = new ZStream();
  private readonly cbuf = new Uint8Array(MAX_DATA_COUNT);
  private readonly dbuf = new Uint8Array(MAX_INFLATED_PIECE);
  /** A stored block being fed to inflate: 5 header bytes and up to 64 KiB − 1 of data. */
  private readonly sbuf = new Uint8Array(5 + MAX_STORED);
  private state: RecvState = 'idle';
  private savedFlag = -1;
  private readonly numbers: TokenNumberReader;
  /** zlib below protocol 31: the head of the block being seen (rsync's slices all come from it). */
  private seeHead: Uint8Array | null = null;
  private seeLeft = 0;
  private seeLength = 0;
  private seeHeld = 0;

  constructor(
    private readonly reader: ByteReader,
    readonly algorithm: DeflateAlgorithm,
    private readonly protocol = reader.protocol,
  ) {
    this.numbers = new TokenNumberReader(reader);
    if (zlibInflateInit2(this.strm, -15) !== Z_OK) throw new ProtocolError('inflate init failed');
  }

  /** Whether the caller must show matched blocks to seeBlock (zlib). */
  get seesBlocks(): boolean {
    return this.algorithm === 'zlib';
  }

  async read(maxBlock: number): Promise<Token> {
    const s = this.strm;
    for (;;) {
      switch (this.state) {
        case 'running': {
          const token = this.numbers.nextInRun(maxBlock);
          if (!this.numbers.running) this.state = 'idle';
          return token;
        }
        case 'inflating': {
          s.output = this.dbuf as Uint8Array<ArrayBuffer>;
          s.next_out = 0;
          s.avail_out = this.dbuf.length;
          const before = s.avail_in;
          const r = zlibInflate(s, Z_NO_FLUSH);
          const n = s.next_out;
          if (r !== Z_OK) throw streamError(`inflate returned ${r} (${n} bytes)`);
          if (s.avail_in === 0) this.state = 'inflated';
          if (n !== 0) return { literal: Buffer.from(this.dbuf.subarray(0, n)) };
          if (s.avail_in === before) throw streamError('inflate made no progress');
          break;
        }
        case 'idle':
        case 'inflated': {
          let flag: number;
          if (this.savedFlag >= 0) {
            flag = this.savedFlag;
            this.savedFlag = -1;
          } else {
            flag = await this.reader.readByte();
          }
          if ((flag & 0xc0) === DEFLATED_DATA) {
            const n = ((flag & 0x3f) << 8) + (await this.reader.readByte());
            const data = await this.reader.readBuf(n, MAX_DATA_COUNT);
            this.cbuf.set(data);
            s.input = this.cbuf;
            s.next_in = 0;
            s.avail_in = n;
            this.state = 'inflating';
            break;
          }
          if (this.state === 'inflated') {
            // The data before this flag ended with a sync flush: drain what inflate still holds.
            s.input = this.cbuf;
            s.next_in = 0;
            s.avail_in = 0;
            s.output = this.dbuf as Uint8Array<ArrayBuffer>;
            s.next_out = 0;
            s.avail_out = this.dbuf.length;
            const r = zlibInflate(s, Z_SYNC_FLUSH);
            const n = s.next_out;
            if (r !== Z_OK && r !== Z_BUF_ERROR) throw streamError(`inflate flush returned ${r} (${n} bytes)`);
            if (n !== 0 && r !== Z_BUF_ERROR) {
              this.savedFlag = flag;
              return { literal: Buffer.from(this.dbuf.subarray(0, n)) };
            }
            // Now inflate must be waiting for the stored block's length: give it the trailer.
            if (!atSyncPoint(s)) throw streamError('decompressor lost sync');
            this.cbuf.set(SYNC_TRAILER);
            s.next_in = 0;
            s.avail_in = 4;
            s.next_out = 0;
            s.avail_out = this.dbuf.length;
            zlibInflate(s, Z_SYNC_FLUSH);
            this.state = 'idle';
          }
          if (flag === END_FLAG) {
            zlibInflateReset(s);
            this.numbers.reset();
            return { end: true };
          }
          const token = await this.numbers.fromFlag(flag, maxBlock);
          if (this.numbers.running) this.state = 'running';
          return token;
        }
      }
    }
  }

  /** zlib: the next matched block is `length` bytes; its data follows through seeData. */
  seeBlock(length: number): void {
    if (this.seeLeft !== 0) throw new Error('internal: seeBlock before the previous block was seen');
    this.seeLeft = this.seeLength = length;
    this.seeHeld = 0;
  }

  /**
   * zlib: part of the matched block's data, in order: it enters the decompressor's window as
   * stored blocks, as rsync's receiver feeds it (the output, the same bytes, is dropped).
   */
  // rsync/token.c: see_deflate_token [deflate-window]
  seeData(piece: Uint8Array): void {
    if (piece.length > this.seeLeft) throw new Error('internal: more block data than announced');
    this.seeLeft -= piece.length;
    if (this.protocol >= 31) {
      for (const slice of windowPieces(piece, 31)) this.storeIntoWindow(slice);
      return;
    }
    // Below 31 every slice comes from the block's first 64 KiB: keep that, feed at the end.
    this.seeHead ??= new Uint8Array(MAX_STORED);
    const take = Math.min(piece.length, MAX_STORED - this.seeHeld);
    if (take > 0) this.seeHead.set(piece.subarray(0, take), this.seeHeld);
    this.seeHeld += take;
    if (this.seeLeft === 0) {
      const head = this.seeHead.subarray(0, this.seeHeld);
      for (let left = this.seeLength; left > 0; left -= MAX_STORED) this.storeIntoWindow(head.subarray(0, Math.min(MAX_STORED, left)));
    }
  }

  /** Inflate a stored block holding `data` (at most 64 KiB − 1): the data joins the window. */
  private storeIntoWindow(data: Uint8Array): void {
    const s = this.strm;
    const n = data.length;
    const input = this.sbuf.subarray(0, 5 + n);
    input[0] = 0; // BFINAL 0, BTYPE 00 (stored); the stream sits on a byte boundary here
    input[1] = n & 0xff;
    input[2] = n >> 8;
    input[3] = ~n & 0xff;
    input[4] = (~n >> 8) & 0xff;
    input.set(data, 5);
    s.input = input;
    s.next_in = 0;
    s.avail_in = input.length;
    do {
      s.output = this.dbuf as Uint8Array<ArrayBuffer>;
      s.next_out = 0;
      s.avail_out = this.dbuf.length;
      const r = zlibInflate(s, Z_SYNC_FLUSH);
      if (r !== Z_OK && r !== Z_BUF_ERROR) throw streamError(`inflate (token) returned ${r}`);
    } while (s.avail_in !== 0 || s.avail_out === 0);
  }
}

/**
 * zlib's inflateSyncPoint, which pako lacks: inflate is at a stored block's length field with no
 * bits pending. Reads pako 3's inflate state (mode STORED = 16193 there; pinned by package-lock).
 */
function atSyncPoint(s: ZStream): boolean {
  const state = s.state as { mode?: unknown; bits?: unknown } | null;
  return state !== null && state.mode === PAKO_INFLATE_STORED && state.bits === 0;
}
const PAKO_INFLATE_STORED = 16193;
