// The zstd and lz4 codecs protocol/ is handed (protocol/compress-codecs.ts), made from the system's
// libzstd.so.1 and liblz4.so.1 that the addon opens with dlopen (native/compress-libs.cc). Looked
// up once per process, on the first transfer that compresses. A library that is missing (or the
// addon itself) only takes its name out of the list we offer, with why kept for a forced choice's
// refusal: what an rsync built without it does. docs/protocol.md [token-zstd] [token-lz4];
// docs/dependencies.md says why the system libraries and not an npm package.
// Counterpart: rsync's SUPPORT_ZSTD / SUPPORT_LZ4 build switches (compat.c valid_compressions).
import type { CompressCodecs, Lz4Codec, ZstdCodec } from '../protocol/compress-codecs.js';
import { ADDON_FIX, addonLoadError, compressLibs, type Lz4Lib, type ZstdLib } from './addon.js';

/**
 * The largest zstd window a peer may make our decompressor hold: 2^27 (128 MiB), zstd's own
 * default cap and what rsync's highest level (22) uses; a frame asking for more is refused.
 */
export const ZSTD_WINDOW_LOG_MAX = 27;

let cached: CompressCodecs | undefined;

/** This process's codecs (each present when its library opened), looked up once. */
export function compressCodecs(): CompressCodecs {
  cached ??= lookUp();
  return cached;
}

function lookUp(): CompressCodecs {
  const libs = compressLibs();
  if (!libs) {
    const why = addonLoadError
      ? `the lsyncd addon is not loaded (${addonLoadError.message.split('\n')[0]})`
      : `the lsyncd addon was built without zstd and lz4 (${ADDON_FIX})`;
    return { missing: { zstd: why, lz4: why } };
  }
  const codecs: CompressCodecs = {};
  const missing: NonNullable<CompressCodecs['missing']> = {};
  if ('error' in libs.zstd) missing.zstd = libs.zstd.error;
  else codecs.zstd = zstdCodec(libs.zstd);
  if ('error' in libs.lz4) missing.lz4 = libs.lz4.error;
  else codecs.lz4 = lz4Codec(libs.lz4);
  if (missing.zstd || missing.lz4) codecs.missing = missing;
  return codecs;
}

function zstdCodec(lib: ZstdLib): ZstdCodec {
  return {
    minLevel: lib.minLevel,
    maxLevel: lib.maxLevel,
    defaultLevel: lib.defaultLevel,
    outSize: lib.outSize,
    compressor(level) {
      const handle = lib.createCompressor(level);
      return {
        compress(input, inPos, out, flush) {
          const [inAt, outPos, remaining] = lib.compress(handle, input, inPos, out, flush);
          return { inPos: inAt, outPos, remaining };
        },
      };
    },
    decompressor() {
      const handle = lib.createDecompressor(ZSTD_WINDOW_LOG_MAX);
      return {
        decompress(input, inPos, inEnd, out) {
          const [inAt, outPos, remaining] = lib.decompress(handle, input, inPos, inEnd, out);
          return { inPos: inAt, outPos, remaining };
        },
      };
    },
  };
}

function lz4Codec(lib: Lz4Lib): Lz4Codec {
  return {
    compressBound: (n) => lib.compressBound(n),
    compress: (src, dst) => lib.compress(src, dst),
    decompress: (src, dst) => lib.decompress(src, dst),
  };
}

