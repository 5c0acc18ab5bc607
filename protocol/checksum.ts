// Checksums of the transfer phase (docs/protocol.md [checksum]): the rolling weak sum (sum1) that the
// generator sends per block and the sender rolls over its file, the strong block sum (sum2) with
// the session seed, and the whole-file checksum sent after each file's tokens.
// Counterpart: rsync checksum.c (get_checksum1, get_checksum2, sum_init/sum_update/sum_end) and
// the rolling update inside match.c hash_search.
import { createHash } from 'node:crypto';
import type { IHasher } from 'hash-wasm';
import { CF_CHKSUM_SEED_FIX, type ChecksumName } from './compat.js';
import { ProtocolError, EXIT } from './errors.js';

/** rsync.h: added to every byte of the rolling sum; 0 in every rsync since 2.x. */
export const CHAR_OFFSET = 0;

/** Int32 views read words in host order; the word-at-a-time sum assumes little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const EMPTY_WORDS = new Int32Array(0);

/**
 * rsync.h: CSUM_CHUNK. rsync feeds its built-in MD4 in 64-byte pieces; for protocol >= 27 that
 * gives plain MD4, so we only keep the name for reference.
 */
export const CSUM_CHUNK = 64;

/** rsync.h: SUM_LENGTH, the longest strong block sum the generator asks for. */
export const SUM_LENGTH = 16;

/** Bytes of a full digest (xfer_sum_len) of each algorithm we speak. */
// rsync/checksum.c: csum_len_for_type
export function digestLength(name: ChecksumName): number {
  return name === 'xxh64' || name === 'xxh3' ? 8 : 16;
}

/**
 * The rolling checksum of `buf[start, end)`. Bytes are *signed* chars (rsync casts the buffer to
 * `schar *`): 0x80..0xff count as -128..-1. s1 is the sum of bytes, s2 the sum of the running s1,
 * both mod 2^32; the result packs s1's low 16 bits with s2 shifted up (mod 2^32), unsigned.
 */
// rsync/checksum.c: get_checksum1 [checksum]
export function getChecksum1(buf: Uint8Array, start = 0, end = buf.length): number {
  let s1 = 0;
  let s2 = 0;
  for (let i = start; i < end; i++) {
    s1 = (s1 + ((buf[i]! << 24) >> 24) + CHAR_OFFSET) | 0;
    s2 = (s2 + s1) | 0;
  }
  return ((s1 & 0xffff) | (s2 << 16)) >>> 0;
}

/**
 * The rolling state of match.c's search: s1 and s2 as int32 (wrapping), over a window of `k`
 * bytes. No allocation per step; the sender keeps one of these per file.
 */
// rsync/match.c: the s1/s2 update in hash_search
export class RollingChecksum {
  s1 = 0;
  s2 = 0;
  /** Current window length (shrinks at the end of the file). */
  k = 0;

  /** Start over on `buf[start, start + k)`. */
  init(buf: Uint8Array, start: number, k: number): void {
    // Signed bytes, read four at a time as one little-endian int32 word where the host allows:
    // s2 gains 4·s1 plus each byte weighted by how many of the four sums it enters (CHAR_OFFSET
    // is 0, so it drops out). Unaligned head and the tail go byte by byte.
    let s1 = 0;
    let s2 = 0;
    let i = start;
    const end = start + k;
    if (LITTLE_ENDIAN) {
      while (i < end && (buf.byteOffset + i) & 3) {
        s1 = (s1 + ((buf[i]! << 24) >> 24)) | 0;
        s2 = (s2 + s1) | 0;
        i++;
      }
      const n = i < end ? (end - i) >> 2 : 0;
      const words = n ? new Int32Array(buf.buffer, buf.byteOffset + i, n) : EMPTY_WORDS;
      for (let j = 0; j < n; j++) {
        const w = words[j]!;
        const a = (w << 24) >> 24;
        const b = (w << 16) >> 24;
        const c = (w << 8) >> 24;
        const d = w >> 24;
        s2 = (s2 + 4 * s1 + 4 * a + 3 * b + 2 * c + d) | 0;
        s1 = (s1 + a + b + c + d) | 0;
      }
      i += n * 4;
    }
    for (; i < end; i++) {
      s1 = (s1 + ((buf[i]! << 24) >> 24) + CHAR_OFFSET) | 0;
      s2 = (s2 + s1) | 0;
    }
    this.s1 = s1;
    this.s2 = s2;
    this.k = k;
  }

  /** Slide one byte: drop `oldByte` (the window's first), append `newByte`. Window length stays. */
  roll(oldByte: number, newByte: number): void {
    const o = ((oldByte << 24) >> 24) + CHAR_OFFSET; // signed char, as rsync
    const n = ((newByte << 24) >> 24) + CHAR_OFFSET;
    // s1 first, then s2 with the updated s1 (match.c order); k·old removes old's weight.
    this.s1 = (this.s1 - o + n) | 0;
    this.s2 = (this.s2 - Math.imul(this.k, o) + this.s1) | 0;
  }

  /** Drop `oldByte` without a successor (end of file): the window shrinks by one. */
  shrink(oldByte: number): void {
    const o = ((oldByte << 24) >> 24) + CHAR_OFFSET;
    this.s1 = (this.s1 - o) | 0;
    this.s2 = (this.s2 - Math.imul(this.k, o)) | 0;
    this.k--;
  }

  /** The packed sum1, as get_checksum1 of the current window returns it (unsigned). */
  get sum(): number {
    return ((this.s1 & 0xffff) | (this.s2 << 16)) >>> 0;
  }
}

/** A streaming whole-file digest. One per Checksummer is live at a time (like rsync's sum_init). */
export interface FileHasher {
  update(bytes: Uint8Array): void;
  /** The `digestLength` bytes sent after the file's tokens. Ends this hasher. */
  digest(): Uint8Array;
}

export interface Checksummer {
  readonly name: ChecksumName;
  /** xfer_sum_len: bytes of a full strong sum and of the whole-file checksum. */
  readonly digestLength: number;
  /** The full strong sum of one block (callers compare the first s2length bytes). */
  // rsync/checksum.c: get_checksum2
  blockSum(bytes: Uint8Array): Uint8Array;
  /** Start the whole-file checksum of one file; any earlier hasher of this Checksummer is ended. */
  // rsync/checksum.c: sum_init
  startFile(): FileHasher;
}

export interface ChecksumOptions {
  /** Negotiated protocol version (27..32). */
  protocol: number;
  /** The session's checksum seed (int32, from the setup phase). */
  seed: number;
  /** Compat flags from the setup phase (CF_CHKSUM_SEED_FIX decides MD5's seed order). */
  compatFlags?: number;
  /**
   * True when the algorithm is the one the protocol implies (no negotiation, no
   * --checksum-choice): below protocol 30 that is rsync's CSUM_MD4_OLD, whose whole-file sum is
   * seeded. A named `md4` (negotiated or --checksum-choice) is CSUM_MD4 and its whole-file sum
   * is not. Default: `protocol < 30`.
   */
  implied?: boolean;
}

/** A hash-wasm constructor (the xxhash ones take the 64-bit seed as two 32-bit halves). */
type HasherFactory = (seedLow?: number, seedHigh?: number) => Promise<IHasher>;

/**
 * One algorithm's constructor from hash-wasm's build of that algorithm alone: the package's index
 * carries every algorithm's WebAssembly inline, and loading it costs about 120 ms of CPU and 13 MB
 * per thread (the sums helper's too); one algorithm's build about 30 ms and 6 MB.
 */
async function hashWasm(build: 'md4' | 'xxhash64' | 'xxhash3' | 'xxhash128', factory: string): Promise<HasherFactory> {
  const mod = (await import(`hash-wasm/dist/${build}.umd.min.js`)) as { default: Record<string, HasherFactory | undefined> };
  const make = mod.default[factory];
  if (!make) throw new Error(`hash-wasm/dist/${build}.umd.min.js has no ${factory}`);
  return make;
}

/**
 * rsync's xxhash sums from elsewhere (the program hands in the addon's C build: protocol/ loads no
 * native code). `kind`: 0 xxh64, 1 xxh3 (64-bit), 2 xxh128; the seed as two uint32 halves.
 * Digests in rsync's byte order (SIVAL64: little-endian, xxh128's low 64 bits first).
 */
export interface XxhashProvider {
  once(kind: 0 | 1 | 2, seedLow: number, seedHigh: number, bytes: Uint8Array): Uint8Array;
  stream(kind: 0 | 1 | 2, seedLow: number, seedHigh: number): { init(): void; update(bytes: Uint8Array): void; digest(): Uint8Array };
}

let xxhashProvider: XxhashProvider | null = null;

/** Use `provider` for xxh64/xxh3/xxh128 in the checksummers made from now on (null: hash-wasm's). */
export function useXxhash(provider: XxhashProvider | null): void {
  xxhashProvider = provider;
}

/** The seed as 4 bytes little-endian (rsync SIVAL). */
function seedBytes(seed: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(seed | 0, 0);
  return b;
}

/** xxhash seeds are uint64: rsync passes its int32 seed, which C sign-extends. */
function seedParts(seed: number): [number, number] {
  return [seed >>> 0, seed < 0 ? 0xffffffff : 0];
}

/** hash-wasm gives xxhash digests in canonical (big-endian) order; rsync stores them with SIVAL64. */
function reversed(digest: Uint8Array): Uint8Array {
  return digest.reverse();
}

/**
 * The checksums of one session. Async only because the WASM hashes load once; every method of
 * the result is synchronous.
 */
// rsync/checksum.c: parse_checksum_choice + get_checksum2 + sum_init/sum_update/sum_end [checksum]
export async function createChecksummer(name: ChecksumName, options: ChecksumOptions): Promise<Checksummer> {
  const { protocol } = options;
  const seed = options.seed | 0;
  const compatFlags = options.compatFlags ?? 0;
  const implied = options.implied ?? protocol < 30;
  if (protocol < 27) {
    // Older protocols use a different MD4 tail and 2-byte file-list sums; we never speak them.
    throw new ProtocolError(`protocol ${protocol} checksums are not supported (need 27 or later)`, {
      exitCode: EXIT.UNSUPPORTED,
    });
  }
  const length = digestLength(name);
  let generation = 0;

  /** Wrap a hasher whose state is per-file; stale handles throw rather than mix files. */
  const fileHandle = (update: (b: Uint8Array) => void, digest: () => Uint8Array): FileHasher => {
    const mine = ++generation;
    const live = (): void => {
      if (mine !== generation) throw new Error('whole-file hasher used after another file started');
    };
    return {
      update(bytes) {
        live();
        update(bytes);
      },
      digest() {
        live();
        generation++;
        return digest();
      },
    };
  };

  switch (name) {
    case 'md4': {
      const createMD4 = await hashWasm('md4', 'createMD4');
      const block = await createMD4();
      const file = await createMD4();
      const seedBuf = seedBytes(seed);
      return {
        name,
        digestLength: length,
        blockSum(bytes) {
          // Built-in MD4 appends the seed, only when it is non-zero (verified: push_cs_md4).
          block.init();
          block.update(bytes);
          if (seed !== 0) block.update(seedBuf);
          return block.digest('binary');
        },
        startFile() {
          file.init();
          // CSUM_MD4_OLD (implied, protocol 27..29) prefixes the seed, even a zero one
          // (verified: push_proto29, push_proto27); a named md4 (CSUM_MD4) has no seed
          // (verified: push_cs_md4).
          if (implied) file.update(seedBuf);
          return fileHandle(
            (b) => file.update(b),
            () => file.digest('binary'),
          );
        },
      };
    }
    case 'md5': {
      const seedBuf = seedBytes(seed);
      // With CF_CHKSUM_SEED_FIX (proper_seed_order) the seed goes first (verified:
      // push_cs_md5, prototype_push_redo_basis); without it rsync's built-in MD5 appends it
      // (source only). The seed is skipped when zero.
      const seedFirst = (compatFlags & CF_CHKSUM_SEED_FIX) !== 0;
      return {
        name,
        digestLength: length,
        blockSum(bytes) {
          const h = createHash('md5');
          if (seed !== 0 && seedFirst) h.update(seedBuf);
          h.update(bytes);
          if (seed !== 0 && !seedFirst) h.update(seedBuf);
          return new Uint8Array(h.digest());
        },
        startFile() {
          // Whole-file MD5 has no seed (verified: push_cs_md5).
          const h = createHash('md5');
          return fileHandle(
            (b) => h.update(b),
            () => new Uint8Array(h.digest()),
          );
        },
      };
    }
    case 'xxh64':
    case 'xxh3':
    case 'xxh128': {
      const [low, high] = seedParts(seed);
      if (xxhashProvider) {
        // The same sums from the C library (rsync's own), already in rsync's byte order.
        const x = xxhashProvider;
        const kind = name === 'xxh64' ? 0 : name === 'xxh3' ? 1 : 2;
        const file = x.stream(kind, 0, 0);
        return {
          name,
          digestLength: length,
          blockSum: (bytes) => x.once(kind, low, high, bytes),
          startFile() {
            file.init();
            return fileHandle(
              (b) => file.update(b),
              () => file.digest(),
            );
          },
        };
      }
      const make =
        name === 'xxh64'
          ? await hashWasm('xxhash64', 'createXXHash64')
          : name === 'xxh3'
            ? await hashWasm('xxhash3', 'createXXHash3')
            : await hashWasm('xxhash128', 'createXXHash128');
      // Block sums use the session seed as the hash seed; the whole-file sum is unseeded
      // (verified: push_cs_xxh64, push_cs_xxh3, push_delta / push_checksum_mode for xxh128).
      const block = await make(low, high);
      const file = await make(0, 0);
      // xxh128 is stored low64 LE then high64 LE: exactly the reverse of the canonical
      // big-endian high64 ++ low64; xxh64/xxh3 likewise are the reverse of canonical.
      return {
        name,
        digestLength: length,
        blockSum(bytes) {
          block.init();
          block.update(bytes);
          return reversed(block.digest('binary'));
        },
        startFile() {
          file.init();
          return fileHandle(
            (b) => file.update(b),
            () => reversed(file.digest('binary')),
          );
        },
      };
    }
    default: {
      const never: never = name;
      throw new ProtocolError(`unknown checksum ${String(never)}`, { exitCode: EXIT.UNSUPPORTED });
    }
  }
}
