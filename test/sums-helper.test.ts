// src/transfer/sums-helper.ts: the helper thread a process keeps for its next session (a daemon
// serves many). Sessions one after another with other algorithms and seeds get their own sums and
// digests from the kept thread, also after a session that ended in the middle of a file; without
// the thread the sums are the same.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { randomFillSync } from 'node:crypto';
import { join } from 'node:path';
import { createChecksummer, type ChecksumOptions } from '../protocol/checksum.js';
import type { ChecksumName } from '../protocol/compat.js';
import { generateSums, sumSizesSqroot } from '../protocol/sums.js';
import { sumsHelper } from '../src/transfer/sums-helper.js';

const SESSIONS: [ChecksumName, number][] = [
  ['xxh128', 1],
  ['xxh128', 2],
  ['xxh3', -5],
  ['md4', 31337],
];

test('sessions in turn on the kept helper thread: each its own algorithm and seed, sums and digests right', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lsyncd-helper-'));
  try {
    const data = randomFillSync(Buffer.allocUnsafe(40 * 1024 * 1024 + 999));
    const basis = join(dir, 'basis');
    writeFileSync(basis, data);
    for (const [name, seed] of SESSIONS) {
      const options: ChecksumOptions = { protocol: 31, seed, implied: false };
      const cs = await createChecksummer(name, options);
      const helper = sumsHelper(name, options);
      const fd = openSync(basis, 'r');
      const out = openSync(join(dir, `out-${name}-${seed}`), 'w+');
      try {
        // 1,000-byte blocks: many units, so both threads take some.
        const head = sumSizesSqroot(data.length, 31, cs.digestLength, { blockSize: 1000 });
        const want = await generateSums(cs, [data], head);
        const got = await helper.sums(cs, fd, head);
        assert.equal([...got.sum1], [...want.sum1], `${name}/${seed} sum1`);
        assert.ok(Buffer.from(got.sum2).equals(Buffer.from(want.sum2)), `${name}/${seed} sum2`);
        const digest = helper.fileDigest(cs, out);
        if (!digest) {
          assert.ok(availableParallelism() < 2, 'no helper only on a one-core machine');
          continue;
        }
        const piece = data.subarray(0, 9 << 20);
        let written = 0;
        for (let k = 0; k < 2; k++) {
          written += writeSync(out, piece, 0, piece.length, written);
          digest.advance(written);
        }
        if (seed === 2) continue; // this session ends in the middle of its file
        const whole = cs.startFile();
        whole.update(piece);
        whole.update(piece);
        assert.equal(Buffer.from(await digest.digest(written)), Buffer.from(whole.digest()), `${name}/${seed} digest`);
      } finally {
        closeSync(fd);
        closeSync(out);
        await helper.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without the thread: the same sums on the calling thread, and no file digest to hand off', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lsyncd-helper-'));
  try {
    const data = randomFillSync(Buffer.allocUnsafe(3 * 1024 * 1024 + 77));
    const basis = join(dir, 'basis');
    writeFileSync(basis, data);
    const options: ChecksumOptions = { protocol: 32, seed: 99, implied: false };
    const cs = await createChecksummer('xxh128', options);
    const helper = sumsHelper('xxh128', options, { thread: false });
    const fd = openSync(basis, 'r');
    try {
      const head = sumSizesSqroot(data.length, 32, cs.digestLength, {});
      const want = await generateSums(cs, [data], head);
      const got = await helper.sums(cs, fd, head);
      assert.equal([...got.sum1], [...want.sum1], 'sum1');
      assert.ok(Buffer.from(got.sum2).equals(Buffer.from(want.sum2)), 'sum2');
      assert.is(helper.fileDigest(cs, fd), null);
    } finally {
      closeSync(fd);
      await helper.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
