// XXH64 throughput of the two WASM hashes in node_modules (issue 15, docs/dependencies.md
// "xxhash-wasm"): hash-wasm (what protocol/checksum.ts uses for rsync's xxh64 [checksum]) against
// xxhash-wasm, on rsync's block sizes (700 B to 128 KiB: sum_sizes_sqroot's range) and on a whole
// file fed in 256 KiB pieces, each producing rsync's 8-byte little-endian digest. Both must agree.
// Run: npx tsc -p . && node dist/bench/xxh64.js
import { createXXHash64 } from 'hash-wasm';
import xxhash from 'xxhash-wasm';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';

const SEED = 0x1234567;
const BLOCK_SIZES = [700, 2048, 8192, 32 * 1024, 128 * 1024];
const BLOCK_BYTES = 64 * 1024 * 1024; // hashed per block size and library
const FILE_BYTES = 128 * 1024 * 1024;
const FILE_PIECE = 256 * 1024;

async function main(): Promise<void> {
  const hw = await createXXHash64(SEED, 0);
  const { h64Raw, create64 } = await xxhash();
  const seed = BigInt(SEED);
  const out = Buffer.alloc(8);
  const viaHashWasm = (b: Uint8Array): Uint8Array => {
    hw.init();
    hw.update(b);
    return hw.digest('binary').reverse();
  };
  const viaXxhashWasm = (b: Uint8Array): Uint8Array => {
    out.writeBigUInt64LE(h64Raw(b, seed));
    return out;
  };
  const data = randomBytes(BLOCK_BYTES + 128 * 1024);
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('block size   hash-wasm MB/s   xxhash-wasm MB/s   ratio (xxhash-wasm / hash-wasm)');
  for (const size of BLOCK_SIZES) {
    const blocks = Math.floor(BLOCK_BYTES / size);
    const views = Array.from({ length: blocks }, (_, i) => data.subarray(i * size, (i + 1) * size));
    if (!Buffer.from(viaHashWasm(views[0]!)).equals(Buffer.from(viaXxhashWasm(views[0]!)))) throw new Error('the digests differ');
    const rate = (fn: (b: Uint8Array) => Uint8Array): number => {
      let best = 0;
      for (let round = 0; round < 3; round++) {
        const t0 = process.hrtime.bigint();
        for (const v of views) fn(v);
        const s = Number(process.hrtime.bigint() - t0) / 1e9;
        best = Math.max(best, (blocks * size) / s / 1e6);
      }
      return best;
    };
    const a = rate(viaHashWasm);
    const b = rate(viaXxhashWasm);
    console.log(`${String(size).padStart(10)}   ${a.toFixed(0).padStart(14)}   ${b.toFixed(0).padStart(16)}   ${(b / a).toFixed(2)}`);
  }
  // A whole file in pieces (the unseeded whole-file sum).
  const file = await createXXHash64(0, 0);
  const pieces = Array.from({ length: FILE_BYTES / FILE_PIECE }, (_, i) => data.subarray((i * FILE_PIECE) % BLOCK_BYTES, ((i * FILE_PIECE) % BLOCK_BYTES) + FILE_PIECE));
  const whole = (name: string, fn: () => Uint8Array): Uint8Array => {
    let best = 0;
    let digest: Uint8Array = new Uint8Array();
    for (let round = 0; round < 3; round++) {
      const t0 = process.hrtime.bigint();
      digest = fn();
      best = Math.max(best, FILE_BYTES / (Number(process.hrtime.bigint() - t0) / 1e9) / 1e6);
    }
    console.log(`whole file (${FILE_BYTES >> 20} MiB in ${FILE_PIECE >> 10} KiB pieces), ${name}: ${best.toFixed(0)} MB/s`);
    return digest;
  };
  const d1 = whole('hash-wasm', () => {
    file.init();
    for (const p of pieces) file.update(p);
    return file.digest('binary').reverse();
  });
  const d2 = whole('xxhash-wasm', () => {
    const h = create64(0n);
    for (const p of pieces) h.update(p);
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(h.digest());
    return b;
  });
  if (!Buffer.from(d1).equals(Buffer.from(d2))) throw new Error('the whole-file digests differ');
}

await main();
