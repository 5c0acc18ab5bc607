// Tokens of the delta stream, the one home for token I/O: the simple (uncompressed) format here
// (docs/protocol.md [token]): int32 n > 0 then n literal bytes; int32 -(k+1) "copy block k of the
// basis"; int32 0 ends the file's data. With -z the compressed formats: deflated for zlib and
// zlibx (token-deflate.ts, [token-deflate]), zstd (token-zstd.ts, [token-zstd]), lz4
// (token-lz4.ts, [token-lz4]); tokenWriter/tokenReader pick one for a session.
// Counterpart: rsync token.c simple_send_token / simple_recv_token, send_token / recv_token.
import { ProtocolError, EXIT } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';
import type { MatchSink } from './match.js';
import { CHUNK_SIZE } from './constants.js';
import { DeflatedTokenReader, DeflatedTokenWriter } from './token-deflate.js';
import { ZstdTokenReader, ZstdTokenWriter } from './token-zstd.js';
import { Lz4TokenReader, Lz4TokenWriter } from './token-lz4.js';
import type { TokenCompression } from './compress-codecs.js';

/** Where a sender's tokens go: the match decisions, then the end of each file's data. */
export interface TokenSink extends MatchSink {
  /** The end-of-data token of the current file (buffered; the caller flushes). */
  end(): void;
  /**
   * Optional: onLiteral without waiting, when the output has room for `bytes` below its flush
   * mark (true: written); false, nothing written: the caller awaits onLiteral instead.
   */
  literalNow?(bytes: Uint8Array): boolean;
}

/** Where a receiver's tokens come from. */
export interface TokenSource {
  /** The next token; `maxBlock` bounds block references (the basis's block count). */
  read(maxBlock: number): Promise<Token>;
  /**
   * True when each matched block's data must be shown back (zlib's shared window): call
   * seeBlock(length), then seeData with the block's bytes in order, after the token is read.
   */
  readonly seesBlocks: boolean;
  seeBlock?(length: number): void;
  seeData?(piece: Uint8Array): void;
}

/** The session's token writer: simple, or in the format of the compression -z chose. */
// rsync/token.c: send_token
export function tokenWriter(writer: ByteWriter, compression?: TokenCompression | null): TokenSink {
  if (!compression) return new TokenWriter(writer);
  switch (compression.algorithm) {
    case 'zstd':
      return new ZstdTokenWriter(writer, compression.codec, compression.level);
    case 'lz4':
      return new Lz4TokenWriter(writer, compression.codec);
    default:
      return new DeflatedTokenWriter(writer, compression);
  }
}

/** The session's token reader: simple, or in the format of the compression -z chose. */
// rsync/token.c: recv_token
export function tokenReader(reader: ByteReader, compression?: TokenCompression | null): TokenSource {
  if (!compression) return new SimpleTokenReader(reader);
  switch (compression.algorithm) {
    case 'zstd':
      return new ZstdTokenReader(reader, compression.codec);
    case 'lz4':
      return new Lz4TokenReader(reader, compression.codec);
    default:
      return new DeflatedTokenReader(reader, compression.algorithm);
  }
}

/** Simple tokens, read one at a time. */
// rsync/token.c: simple_recv_token
export class SimpleTokenReader implements TokenSource {
  readonly seesBlocks = false;
  constructor(private readonly reader: ByteReader) {}
  read(maxBlock: number): Promise<Token> {
    return readToken(this.reader, maxBlock);
  }
}

/** Flush to the socket once this much is buffered, so a large file streams. */
const FLUSH_AT = 64 * 1024;
/** ... and after this many block matches (hundreds of KB to a few MB of the file). */
const FLUSH_MATCHES = 64;

/** Writes the match decisions as tokens; flushes as it goes (awaiting back-pressure). */
// rsync/token.c: simple_send_token [token]
export class TokenWriter implements TokenSink {
  private matchesSinceFlush = 0;
  constructor(private readonly writer: ByteWriter) {}

  literalNow(bytes: Uint8Array): boolean {
    if (this.writer.pending + bytes.length >= FLUSH_AT) return false;
    for (let at = 0; at < bytes.length; at += CHUNK_SIZE) {
      const end = Math.min(bytes.length, at + CHUNK_SIZE);
      this.writer.writeInt(end - at);
      this.writer.writeBuf(at === 0 && end === bytes.length ? bytes : bytes.subarray(at, end));
    }
    return true;
  }

  async onLiteral(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length; at += CHUNK_SIZE) {
      const piece = bytes.subarray(at, Math.min(bytes.length, at + CHUNK_SIZE));
      this.writer.writeInt(piece.length);
      this.writer.writeBuf(piece);
      // Flush as we go: the output buffer stays small however large the caller's chunk is.
      if (this.writer.pending >= FLUSH_AT) await this.writer.flush();
    }
  }

  async onMatch(index: number): Promise<void> {
    this.writer.writeInt(-(index + 1));
    // Matched tokens are 4 bytes for a whole block: flush every few of them too, so the daemon's
    // receiver rebuilds the file while we are still searching (as it would with literal data).
    if (this.writer.pending >= FLUSH_AT || ++this.matchesSinceFlush >= FLUSH_MATCHES) {
      this.matchesSinceFlush = 0;
      await this.writer.flush();
    }
  }

  /** The end-of-data token. */
  end(): void {
    this.writer.writeInt(0);
  }
}

export type Token = { literal: Buffer } | { block: number } | { end: true };

/** Read one token; `maxBlock` bounds block references (the basis's block count). */
// rsync/token.c: simple_recv_token [token]
export async function readToken(reader: ByteReader, maxBlock: number): Promise<Token> {
  const n = await reader.readInt();
  if (n === 0) return { end: true };
  if (n > 0) {
    if (n > CHUNK_SIZE) throw new ProtocolError(`invalid uncompressed token length ${n}`, { exitCode: EXIT.STREAMIO });
    return { literal: await reader.readBuf(n) };
  }
  const block = -(n + 1);
  if (block >= maxBlock) throw new ProtocolError(`token refers to block ${block} of ${maxBlock}`, { exitCode: EXIT.STREAMIO });
  return { block };
}
