// lz4 tokens of the delta stream (docs/protocol.md [token-lz4]): the block references of the
// deflated format (token-runs.ts), and data frames that each hold one lz4 block standing alone —
// literal data cut into pieces of at most MAX_DATA_COUNT bytes, a piece halved until its
// compressed form fits a frame. No stream state crosses frames, files or matched data; there is
// no level. The codec comes from the caller (compress-codecs.ts): protocol/ stays pure.
// Counterpart: rsync token.c send_compressed_token, recv_compressed_token.
import { ProtocolError, EXIT } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';
import type { Token, TokenSink, TokenSource } from './token.js';
import type { Lz4Codec } from './compress-codecs.js';
import { CHUNK_SIZE } from './constants.js';
import { DEFLATED_DATA, END_FLAG, MAX_DATA_COUNT, TokenNumberReader, TokenRunWriter, writeDataFrame } from './token-runs.js';

/** Hand output to the socket once this much is buffered, so a large file streams. */
const FLUSH_AT = 64 * 1024;
/** ... and after this many block matches. */
const FLUSH_MATCHES = 64;

/** rsync's lz4 buffer: what a CHUNK_SIZE piece may compress to, and never less than a frame (32912 with lz4 1.9). */
function lz4BufferSize(codec: Lz4Codec): number {
  return Math.max(codec.compressBound(CHUNK_SIZE), MAX_DATA_COUNT + 2);
}

function streamError(what: string): ProtocolError {
  return new ProtocolError(`lz4 token stream: ${what}`, { exitCode: EXIT.STREAMIO });
}

/** Writes the match decisions as lz4 tokens: each piece of literal data one compressed frame. */
// rsync/token.c: send_compressed_token [token-lz4] [token-lz4-frames]
export class Lz4TokenWriter implements TokenSink {
  private readonly out: Uint8Array;
  private readonly runs: TokenRunWriter;
  private matchesSinceFlush = 0;

  constructor(
    private readonly writer: ByteWriter,
    private readonly codec: Lz4Codec,
  ) {
    this.out = new Uint8Array(lz4BufferSize(codec) - 2);
    this.runs = new TokenRunWriter(writer);
  }

  async onLiteral(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    this.runs.flush();
    let at = 0;
    let take = Math.min(bytes.length, MAX_DATA_COUNT);
    while (at < bytes.length) {
      const n = this.codec.compress(bytes.subarray(at, at + take), this.out);
      if (n <= 0) throw streamError(`compress returned ${n}`);
      if (n > MAX_DATA_COUNT) {
        // Incompressible data grew past a frame: try half as much (rsync's available_in /= 2).
        take = Math.max(1, take >> 1);
        continue;
      }
      writeDataFrame(this.writer, this.out.subarray(0, n));
      at += take;
      take = Math.min(bytes.length - at, MAX_DATA_COUNT);
    }
    if (this.writer.pending >= FLUSH_AT) await this.writer.flush();
  }

  async onMatch(index: number): Promise<void> {
    this.runs.add(index);
    if (this.writer.pending >= FLUSH_AT || ++this.matchesSinceFlush >= FLUSH_MATCHES) {
      this.matchesSinceFlush = 0;
      await this.writer.flush();
    }
  }

  end(): void {
    this.runs.end();
  }
}

/**
 * Reads lz4 tokens: each data frame decompresses into rsync's buffer (32912 bytes with lz4 1.9):
 * a frame that claims more is damaged, never a larger allocation.
 */
// rsync/token.c: recv_compressed_token [token-lz4] [token-lz4-bounds]
export class Lz4TokenReader implements TokenSource {
  readonly seesBlocks = false;
  private readonly cbuf = new Uint8Array(MAX_DATA_COUNT);
  private readonly dbuf: Uint8Array;
  private readonly numbers: TokenNumberReader;

  constructor(
    private readonly reader: ByteReader,
    private readonly codec: Lz4Codec,
  ) {
    this.dbuf = new Uint8Array(lz4BufferSize(codec));
    this.numbers = new TokenNumberReader(reader);
  }

  async read(maxBlock: number): Promise<Token> {
    if (this.numbers.running) return this.numbers.nextInRun(maxBlock);
    for (;;) {
      const flag = await this.reader.readByte();
      if ((flag & 0xc0) === DEFLATED_DATA) {
        const n = ((flag & 0x3f) << 8) + (await this.reader.readByte());
        this.cbuf.set(await this.reader.readBuf(n, MAX_DATA_COUNT));
        const got = this.codec.decompress(this.cbuf.subarray(0, n), this.dbuf);
        if (got < 0) throw streamError(`uncompress failed: ${got} (a frame of ${n} bytes)`);
        // An empty block would read as the file's end in rsync; it carries nothing: skip it.
        if (got > 0) return { literal: Buffer.from(this.dbuf.subarray(0, got)) };
        continue;
      }
      if (flag === END_FLAG) {
        this.numbers.reset();
        return { end: true };
      }
      return this.numbers.fromFlag(flag, maxBlock);
    }
  }
}
