// The block references of the compressed token formats (docs/protocol.md [deflate-flags]), the
// same for zlib, zlibx, zstd and lz4: flag bytes with a token number relative to the last run's
// end, or a long number; adjacent blocks as runs with a 16-bit count; END_FLAG ends a file; data
// frames (DEFLATED_DATA) carry up to MAX_DATA_COUNT bytes of the codec's output.
// Counterpart: rsync token.c (the run coding of send_deflated_token and its siblings,
// recv_compressed_token_num, recv_compressed_token_run).
import { ProtocolError, EXIT } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';
import type { Token } from './token.js';

// rsync/token.c: the flag bytes of the compressed stream [deflate-flags]
export const END_FLAG = 0x00;
export const TOKEN_LONG = 0x20; // then int32 token number
export const TOKENRUN_LONG = 0x21; // then int32 token number, 16-bit run count
export const DEFLATED_DATA = 0x40; // + 6 high bits of the length, then the low byte
export const TOKEN_REL = 0x80; // + 6-bit increment of the token number
export const TOKENRUN_REL = 0xc0; // the same, then a 16-bit run count

/** rsync/token.c MAX_DATA_COUNT: the largest data frame (a 14-bit length). */
export const MAX_DATA_COUNT = 16383;

/** rsync/token.c MAX_TOKEN_INDEX: the largest block number a compressed stream may name. */
const MAX_TOKEN_INDEX = 0x7ffffffe;

/** A run of adjacent blocks is at most this long (its count travels in 16 bits). */
const MAX_RUN = 65536;

/** Write one data frame: its flag byte with the length's high bits, the low byte, the bytes. */
export function writeDataFrame(writer: ByteWriter, data: Uint8Array): void {
  const n = data.length;
  writer.writeByte(DEFLATED_DATA + (n >> 8));
  writer.writeByte(n & 0xff);
  writer.writeBuf(data);
}

/**
 * A sender's pending run of adjacent block references: a block extends it or first writes it out
 * (relative when it can be), as rsync does when the next token is not the run's next block.
 */
// rsync/token.c: send_deflated_token (the "output previous run" branch), shared by its siblings
export class TokenRunWriter {
  /** The pending run [runStart, runEnd], or runStart −1. */
  private runStart = -1;
  private runEnd = -1;
  /** The last block of the previous run: relative numbers count from it. */
  private lastRunEnd = 0;

  constructor(private readonly writer: ByteWriter) {}

  /** Block `index` is next: extend the run, or write the run and start another. */
  add(index: number): void {
    if (this.runStart >= 0 && index === this.runEnd + 1 && index < this.runStart + MAX_RUN) {
      this.runEnd = index;
    } else {
      this.flush();
      this.runStart = this.runEnd = index;
    }
  }

  /** The pending run as a flag byte, its number, its count (before data or the file's end). */
  flush(): void {
    if (this.runStart < 0) return;
    const rel = this.runStart - this.lastRunEnd;
    const count = this.runEnd - this.runStart;
    if (rel >= 0 && rel <= 63) {
      this.writer.writeByte((count === 0 ? TOKEN_REL : TOKENRUN_REL) + rel);
    } else {
      this.writer.writeByte(count === 0 ? TOKEN_LONG : TOKENRUN_LONG);
      this.writer.writeInt(this.runStart);
    }
    if (count !== 0) {
      this.writer.writeByte(count & 0xff);
      this.writer.writeByte(count >> 8);
    }
    this.lastRunEnd = this.runEnd;
    this.runStart = this.runEnd = -1;
  }

  /** The file's end: the last run out, END_FLAG, numbering from 0 again. */
  end(): void {
    this.flush();
    this.writer.writeByte(END_FLAG);
    this.lastRunEnd = 0;
  }
}

/** rsync's "invalid token number in compressed stream" (exit 2). */
function invalidToken(detail: string): ProtocolError {
  return new ProtocolError(`invalid token number in compressed stream (${detail})`, { exitCode: EXIT.PROTOCOL });
}

/** A receiver's side of the block references: the token number, the run being handed out. */
export class TokenNumberReader {
  private rxToken = 0;
  private rxRun = 0;

  constructor(private readonly reader: ByteReader) {}

  /** Whether blocks of a run are still to come (read them with nextInRun). */
  get running(): boolean {
    return this.rxRun > 0;
  }

  /** A new file: numbers count from 0 again. */
  reset(): void {
    this.rxToken = 0;
    this.rxRun = 0;
  }

  /** The block a flag byte (not data, not END_FLAG) names, reading its number and run count. */
  // rsync/token.c: recv_compressed_token_num
  async fromFlag(flag: number, maxBlock: number): Promise<Token> {
    if (flag & TOKEN_REL) {
      const incr = flag & 0x3f;
      if (this.rxToken > MAX_TOKEN_INDEX - incr) throw invalidToken(`${this.rxToken} + ${incr}`);
      this.rxToken += incr;
      flag >>= 6;
    } else if ((flag & 0xfe) === TOKEN_LONG) {
      const token = await this.reader.readInt();
      if (token < 0 || token > MAX_TOKEN_INDEX) throw invalidToken(String(token));
      this.rxToken = token;
    } else {
      throw new ProtocolError(`invalid flag byte 0x${flag.toString(16)} in compressed stream`, { exitCode: EXIT.PROTOCOL });
    }
    if (flag & 1) {
      const run = (await this.reader.readByte()) + ((await this.reader.readByte()) << 8);
      if (run <= 0 || this.rxToken > MAX_TOKEN_INDEX - run) throw invalidToken(`run of ${run} from ${this.rxToken}`);
      this.rxRun = run;
    }
    return this.block(maxBlock);
  }

  /** The next block of the run. */
  // rsync/token.c: recv_compressed_token_run
  nextInRun(maxBlock: number): Token {
    this.rxToken++;
    this.rxRun--;
    return this.block(maxBlock);
  }

  private block(maxBlock: number): Token {
    if (this.rxToken >= maxBlock) {
      throw new ProtocolError(`token refers to block ${this.rxToken} of ${maxBlock}`, { exitCode: EXIT.STREAMIO });
    }
    return { block: this.rxToken };
  }
}
