// protocol/weak-sum-simd.ts: the SIMD rolling sums of blocks equal rsync's get_checksum1 as
// checksum.ts getChecksum1 computes it byte by byte, at every length and offset around the
// 16-byte steps, on bytes that stress the signed sums (all 0x80, all 0xff) and on random ones.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomFillSync } from 'node:crypto';
import { getChecksum1 } from '../protocol/checksum.js';
import { weakSumArea } from '../protocol/weak-sum-simd.js';

test('weakSumArea: an area of at least the bytes asked for, in WebAssembly memory (node has SIMD)', () => {
  const area = weakSumArea(3 << 20);
  assert.ok(area, 'node 20 has WebAssembly SIMD');
  assert.ok(area.buf.length >= 3 << 20);
});

test('weak: every length 0..80 at every offset 0..17 equals getChecksum1', () => {
  const area = weakSumArea(4096)!;
  randomFillSync(area.buf);
  for (let start = 0; start < 18; start++) {
    for (let len = 0; len <= 80; len++) assert.is(area.weak(start, len), getChecksum1(area.buf, start, start + len), `start ${start} len ${len}`);
  }
});

test('weak: long blocks of 0x80, 0xff, 0x7f and random bytes (the sums wrap mod 2^32) equal getChecksum1', () => {
  const size = 8 << 20;
  const area = weakSumArea(size)!;
  for (const fill of [0x80, 0xff, 0x7f, -1]) {
    if (fill < 0) randomFillSync(area.buf, 0, size);
    else area.buf.fill(fill, 0, size);
    for (const [start, len] of [[0, size], [1, size - 1], [7, 131072], [3, 23173], [100, 700]] as const) {
      assert.is(area.weak(start, len), getChecksum1(area.buf, start, start + len), `fill ${fill} start ${start} len ${len}`);
    }
  }
});

test.run();
