// zstd tokens of the delta stream (docs/protocol.md [token-zstd]), what `-z` sends when both sides
// offer zstd (rsync 3.5's first choice): the block references of the deflated format
// (token-runs.ts), and data frames holding the output of ONE zstd stream for the whole session —
// never reset between files, so a file's data may refer to earlier files' — flushed
// (ZSTD_e_flush) before each block reference and at each file's end, so the receiver can return
// all data before it. Matched data never enters the window (no see_token for zstd).
// The codec comes from the caller (compress-codecs.ts): protocol/ stays pure.
// Counterpart: rsync token.c send_zstd_token, recv_zstd_token.
import { ProtocolError, EXIT } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';
import type { Token, TokenSink, TokenSource } from './token.js';
import type { ZstdCodec, ZstdCompressor, ZstdDecompressor, StreamStep } from './compress-codecs.js';
import { DEFLATED_DATA, END_FLAG, MAX_DATA_COUNT, TokenNumberReader, TokenRunWriter, writeDataFrame } from './token-runs.js';

/** Hand output to the socket once this much is buffered, so a large file streams. */
const FLUSH_AT = 64 * 1024;
/** ... and after this many block matches. */
const FLUSH_MATCHES = 64;

const NO_INPUT = new Uint8Array(0);

/**
 * The level a side compresses zstd at (rsync init_compression_level, the zstd case): unset or 0
 * is the library's default (3); others clamp to the library's range (negative levels are the
 * fast ones). Never "off": a zstd session keeps compressing whatever the level.
 */
// rsync/token.c: init_compression_level (the CPRES_ZSTD case)
export function zstdLevel(requested: number | undefined, codec: Pick<ZstdCodec, 'minLevel' | 'maxLevel' | 'defaultLevel'>): number {
  if (requested === undefined || requested === 0) return codec.defaultLevel;
  return Math.max(codec.minLevel, Math.min(codec.maxLevel, requested));
}

/** The zstd stream is damaged, or the library failed: rsync's "ZSTD decomp returned …" (exit 12). */
function streamError(what: string, cause?: unknown): ProtocolError {
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new ProtocolError(`zstd token stream: ${what}${detail}`, { exitCode: EXIT.STREAMIO });
}

/**
 * Writes the match decisions as zstd tokens: literal data goes into the session's stream
 * (ZSTD_e_continue), whatever output that makes goes out in frames of at most MAX_DATA_COUNT; a
 * block reference or the file's end first flushes the stream (ZSTD_e_flush).
 */
// rsync/token.c: send_zstd_token [token-zstd] [zstd-stream]
export class ZstdTokenWriter implements TokenSink {
  private compressor: ZstdCompressor | null = null;
  /** rsync's obuf: one frame's worth of compressed output. */
  private readonly out = new Uint8Array(MAX_DATA_COUNT);
  /** Literal data went into the stream since its last flush (rsync's flush_pending). */
  private dataPending = false;
  private readonly runs: TokenRunWriter;
  private matchesSinceFlush = 0;

  constructor(
    private readonly writer: ByteWriter,
    private readonly codec: ZstdCodec,
    /** The level, already resolved (zstdLevel). */
    private readonly level: number,
  ) {
    this.runs = new TokenRunWriter(writer);
  }

  async onLiteral(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    this.runs.flush();
    this.compress(bytes, false);
    this.dataPending = true;
    if (this.writer.pending >= FLUSH_AT) await this.writer.flush();
  }

  async onMatch(index: number): Promise<void> {
    this.flushData();
    this.runs.add(index);
    if (this.writer.pending >= FLUSH_AT || ++this.matchesSinceFlush >= FLUSH_MATCHES) {
      this.matchesSinceFlush = 0;
      await this.writer.flush();
    }
  }

  /** The end of the file's data: the stream flushed, the last run, END_FLAG (the stream goes on). */
  end(): void {
    this.flushData();
    this.runs.end();
  }

  private flushData(): void {
    if (!this.dataPending) return;
    this.compress(NO_INPUT, true);
    this.dataPending = false;
  }

  /**
   * Feed `input` to the stream (all of it; with `flush`, until the stream holds nothing back),
   * each call's output as one frame, as rsync sends it.
   */
  private compress(input: Uint8Array, flush: boolean): void {
    this.compressor ??= this.codec.compressor(this.level);
    let inPos = 0;
    for (;;) {
      let step: StreamStep;
      try {
        step = this.compressor.compress(input, inPos, this.out, flush);
      } catch (e) {
        throw streamError('compression failed', e);
      }
      if (step.outPos > 0) writeDataFrame(this.writer, this.out.subarray(0, step.outPos));
      inPos = step.inPos;
      if (flush ? step.remaining === 0 : inPos === input.length) return;
    }
  }
}

/**
 * Reads zstd tokens: literal data as the session's stream decompresses (at most twice
 * ZSTD_DStreamOutSize per token, rsync's buffer, whatever a frame expands to), block references
 * from flags and runs.
 */
// rsync/token.c: recv_zstd_token [token-zstd] [zstd-bounds]
export class ZstdTokenReader implements TokenSource {
  readonly seesBlocks = false;
  private decompressor: ZstdDecompressor | null = null;
  private readonly cbuf = new Uint8Array(MAX_DATA_COUNT);
  /** rsync's dbuf: two decompressed blocks. */
  private readonly dbuf: Uint8Array;
  private inPos = 0;
  private inEnd = 0;
  private state: 'idle' | 'inflating' | 'running' = 'idle';
  private readonly numbers: TokenNumberReader;

  constructor(
    private readonly reader: ByteReader,
    private readonly codec: ZstdCodec,
  ) {
    this.dbuf = new Uint8Array(2 * codec.outSize);
    this.numbers = new TokenNumberReader(reader);
  }

  async read(maxBlock: number): Promise<Token> {
    for (;;) {
      switch (this.state) {
        case 'running': {
          const token = this.numbers.nextInRun(maxBlock);
          if (!this.numbers.running) this.state = 'idle';
          return token;
        }
        case 'inflating': {
          this.decompressor ??= this.codec.decompressor();
          const before = this.inPos;
          let step: StreamStep;
          try {
            step = this.decompressor.decompress(this.cbuf, this.inPos, this.inEnd, this.dbuf);
          } catch (e) {
            throw streamError('damaged data', e);
          }
          this.inPos = step.inPos;
          const n = step.outPos;
          // All input used and room left over: the frame gave all it had, read the next flag.
          if (this.inPos === this.inEnd && n < this.dbuf.length) this.state = 'idle';
          if (n !== 0) return { literal: Buffer.from(this.dbuf.subarray(0, n)) };
          if (this.state === 'inflating' && this.inPos === before) throw streamError('the decompressor made no progress');
          break;
        }
        case 'idle': {
          const flag = await this.reader.readByte();
          if ((flag & 0xc0) === DEFLATED_DATA) {
            const n = ((flag & 0x3f) << 8) + (await this.reader.readByte());
            this.cbuf.set(await this.reader.readBuf(n, MAX_DATA_COUNT));
            this.inPos = 0;
            this.inEnd = n;
            this.state = 'inflating';
            break;
          }
          if (flag === END_FLAG) {
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
}
