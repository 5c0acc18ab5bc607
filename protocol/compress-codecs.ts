// The codecs of the zstd and lz4 token formats as interfaces (docs/protocol.md [token-zstd]
// [token-lz4]): protocol/ stays pure, so the session's caller hands them in (src/compress-codecs.ts
// provides them from the system's libzstd and liblz4 through the addon). Also what a session's
// tokens are compressed with, once the compression is known.
// Counterpart: what rsync token.c calls of libzstd (ZSTD_compressStream2, ZSTD_decompressStream)
// and liblz4 (LZ4_compress_default, LZ4_decompress_safe).

/** One step of a streaming codec: input read up to inPos, output written to [0, outPos), the library's return. */
export interface StreamStep {
  inPos: number;
  outPos: number;
  /** zstd: bytes still held for a flush (0: all out), or the decompressor's hint. */
  remaining: number;
}

/** A streaming zstd compressor (one per session: rsync never resets it between files). */
export interface ZstdCompressor {
  /** ZSTD_compressStream2 on input[inPos..] into out[0..]: ZSTD_e_flush when `flush`, else ZSTD_e_continue. Throws on a library error. */
  compress(input: Uint8Array, inPos: number, out: Uint8Array, flush: boolean): StreamStep;
}

/** A streaming zstd decompressor (one per session). */
export interface ZstdDecompressor {
  /** ZSTD_decompressStream on input[inPos..inEnd) into out[0..]; writes at most out.length. Throws on damaged data. */
  decompress(input: Uint8Array, inPos: number, inEnd: number, out: Uint8Array): StreamStep;
}

export interface ZstdCodec {
  /** The library's level range and default (ZSTD_minCLevel, ZSTD_maxCLevel, ZSTD_CLEVEL_DEFAULT). */
  readonly minLevel: number;
  readonly maxLevel: number;
  readonly defaultLevel: number;
  /** ZSTD_DStreamOutSize(): rsync's receiver decompresses into twice this. */
  readonly outSize: number;
  compressor(level: number): ZstdCompressor;
  decompressor(): ZstdDecompressor;
}

/** lz4's block codec (stateless: each frame stands alone). */
export interface Lz4Codec {
  /** LZ4_compressBound(n): the most `n` bytes compress to. */
  compressBound(n: number): number;
  /** LZ4_compress_default: bytes written to dst, 0 when dst was too small. */
  compress(src: Uint8Array, dst: Uint8Array): number;
  /** LZ4_decompress_safe: bytes written to dst (never more than dst.length), negative for damaged data. */
  decompress(src: Uint8Array, dst: Uint8Array): number;
}

/** The codecs this process has; a missing one says why (its name is then left out of our list). */
export interface CompressCodecs {
  zstd?: ZstdCodec;
  lz4?: Lz4Codec;
  /** Why zstd or lz4 is missing (e.g. "libzstd.so.1: cannot open shared object file"). */
  missing?: { zstd?: string; lz4?: string };
}

/** The deflating compressions (pako, in token-deflate.ts). */
export type DeflateAlgorithm = 'zlib' | 'zlibx';

/** What a session's tokens are compressed with: the algorithm, the level this side sends at, the codec. */
export type TokenCompression =
  | { algorithm: DeflateAlgorithm; /** 0 (stored) to 9; rsync's default is 6. Only the sending side uses it. */ level: number }
  | { algorithm: 'zstd'; level: number; codec: ZstdCodec }
  | { algorithm: 'lz4'; level: 0; codec: Lz4Codec };
