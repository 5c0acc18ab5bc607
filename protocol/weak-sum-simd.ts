// The generator's rolling sums (docs/protocol.md [checksum], get_checksum1) of many blocks, 16 bytes
// at a step with WebAssembly SIMD: the same value as sums.ts weakSum, four to five times faster,
// for the big bases of src/transfer/sums-helper.ts. The bytes are read straight into the module's
// memory (`area`), so nothing is copied to sum them. A host without WebAssembly SIMD gets null and
// the caller keeps weakSum.
// Counterpart: rsync checksum.c get_checksum1 (its SSE2/AVX2 variants in simd-checksum-x86_64.cpp
// compute the same sums the same way: per-vector byte sums and weighted sums).
//
// Per 16-byte vector x (signed bytes) of a block, with S1 the sum of all bytes before it:
//   s2 += 16·S1 + Σ_j (16 − j)·x_j        s1 += Σ_j x_j
// (the same as adding s1 after every byte). Lanes keep partial sums: vs1 (byte sums, pairwise
// widened), vprev (vs1 before each vector: Σ S1), vw (i32x4.dot_i16x8_s of the bytes widened to
// i16 with the weights 16..1). Everything wraps mod 2^32 as rsync's uint32 sums do. A tail of
// fewer than 16 bytes goes byte by byte.

/** The module, assembled here (no build step): one function `weak(ptr, len) -> i32`, one memory. */
function moduleBytes(): Uint8Array {
  const uleb = (n: number): number[] => {
    const out: number[] = [];
    do {
      let b = n & 0x7f;
      n >>>= 7;
      if (n) b |= 0x80;
      out.push(b);
    } while (n);
    return out;
  };
  const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
  const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'latin1')];
  const simd = (op: number, ...rest: number[]): number[] => [0xfd, ...uleb(op), ...rest];
  const i16x8 = (lanes: number[]): number[] => lanes.flatMap((v) => [v & 0xff, v >> 8]);
  // Locals: 0 ptr, 1 len (params); 2 end, 3 vend, 4 s1, 5 s2 (i32); 6 vs1, 7 vprev, 8 vw, 9 x (v128).
  const [PTR, LEN, END, VEND, S1, S2, VS1, VPREV, VW, X] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const get = (i: number) => [0x20, i];
  const set = (i: number) => [0x21, i];
  const I32_ADD = 0x6a;
  const V128_LOAD = simd(0x00, 0, 0);
  const I32X4_ADD = simd(0xae);
  const I32X4_DOT_I16X8_S = simd(0xba);
  const I16X8_EXTADD_PAIRWISE_I8X16_S = simd(0x7c);
  const I32X4_EXTADD_PAIRWISE_I16X8_S = simd(0x7e);
  const I16X8_EXTEND_LOW_I8X16_S = simd(0x87);
  const I16X8_EXTEND_HIGH_I8X16_S = simd(0x88);
  const hsum = (v: number) => [...get(v), ...simd(0x1b, 0), ...get(v), ...simd(0x1b, 1), I32_ADD, ...get(v), ...simd(0x1b, 2), I32_ADD, ...get(v), ...simd(0x1b, 3), I32_ADD];
  const code = [
    // end = ptr + len; vend = ptr + (len & ~15)
    ...get(PTR), ...get(LEN), I32_ADD, ...set(END),
    ...get(PTR), ...get(LEN), 0x41, 0x70 /* -16 */, 0x71 /* i32.and */, I32_ADD, ...set(VEND),
    0x02, 0x40, 0x03, 0x40, // block, loop
    ...get(PTR), ...get(VEND), 0x4f /* i32.ge_u */, 0x0d, 1, // br_if out of the block
    ...get(PTR), ...V128_LOAD, ...set(X),
    ...get(VPREV), ...get(VS1), ...I32X4_ADD, ...set(VPREV),
    ...get(VS1), ...get(X), ...I16X8_EXTADD_PAIRWISE_I8X16_S, ...I32X4_EXTADD_PAIRWISE_I16X8_S, ...I32X4_ADD, ...set(VS1),
    ...get(VW),
    ...get(X), ...I16X8_EXTEND_LOW_I8X16_S, ...simd(0x0c, ...i16x8([16, 15, 14, 13, 12, 11, 10, 9])), ...I32X4_DOT_I16X8_S, ...I32X4_ADD,
    ...get(X), ...I16X8_EXTEND_HIGH_I8X16_S, ...simd(0x0c, ...i16x8([8, 7, 6, 5, 4, 3, 2, 1])), ...I32X4_DOT_I16X8_S, ...I32X4_ADD,
    ...set(VW),
    ...get(PTR), 0x41, 16, I32_ADD, ...set(PTR),
    0x0c, 0, // br loop
    0x0b, 0x0b, // end loop, end block
    // s1 = Σvs1; s2 = 16·Σvprev + Σvw
    ...hsum(VS1), ...set(S1),
    ...hsum(VPREV), 0x41, 4, 0x74 /* i32.shl */, ...hsum(VW), I32_ADD, ...set(S2),
    0x02, 0x40, 0x03, 0x40,
    ...get(PTR), ...get(END), 0x4f, 0x0d, 1,
    ...get(S1), ...get(PTR), 0x2c, 0, 0 /* i32.load8_s */, I32_ADD, ...set(S1),
    ...get(S2), ...get(S1), I32_ADD, ...set(S2),
    ...get(PTR), 0x41, 1, I32_ADD, ...set(PTR),
    0x0c, 0,
    0x0b, 0x0b,
    // (s1 & 0xffff) | (s2 << 16)
    ...get(S1), 0x41, 0xff, 0xff, 0x03, 0x71, ...get(S2), 0x41, 16, 0x74, 0x72 /* i32.or */,
    0x0b,
  ];
  const body = [2, 4, 0x7f, 4, 0x7b, ...code]; // local groups: 4 × i32, 4 × v128
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 2, 0x7f, 0x7f, 1, 0x7f]), // type: (i32, i32) -> i32
    ...section(3, [1, 0]), // one function of type 0
    ...section(5, [1, 0x00, 1]), // one memory, at least one page
    ...section(7, [2, ...name('memory'), 0x02, 0, ...name('weak'), 0x00, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

/** The little of the WebAssembly API used here (the project's TypeScript libs do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

let compiled: object | null | undefined;

/** Bytes to read a basis into, in WebAssembly memory, and the rolling sum of a range of them. */
export interface WeakSumArea {
  /** `bytes` long, at offset 0 of the module's memory. */
  readonly buf: Buffer;
  /** get_checksum1 of buf[start, start + length), as sums.ts weakSum returns it. */
  weak(start: number, length: number): number;
}

/** An area of at least `bytes` bytes, or null when the host has no WebAssembly SIMD. */
// rsync/checksum.c: get_checksum1 (the SIMD variants)
export function weakSumArea(bytes: number): WeakSumArea | null {
  if (compiled === undefined) {
    try {
      compiled = wasm ? new wasm.Module(moduleBytes()) : null;
    } catch {
      compiled = null;
    }
  }
  if (!compiled || !wasm) return null;
  const instance = new wasm.Instance(compiled, {});
  const memory = instance.exports['memory'] as { buffer: ArrayBuffer; grow(pages: number): number };
  const weak = instance.exports['weak'] as (ptr: number, len: number) => number;
  const pages = Math.ceil(bytes / 65536);
  if (pages > 1) memory.grow(pages - 1);
  return {
    buf: Buffer.from(memory.buffer, 0, bytes),
    weak: (start, length) => weak(start, length) >>> 0,
  };
}
