// The matcher's in-place rule (protocol/match.ts updatingBasis, rsync match.c updating_basis_file)
// on small files built to show each part: a block behind the write offset is not used, a block
// further on is, a block found where it already is stays usable and wins, and zeros off a block
// boundary are realigned to it. The whole-file result against rsyncd is push-inplace.test.ts.
import { test } from 'uvu';
import { randomBytes } from 'node:crypto';
import * as assert from 'uvu/assert';
import { createChecksummer } from '../protocol/checksum.js';
import { generateSums, sumSizesSqroot } from '../protocol/sums.js';
import { BlockMatcher } from '../protocol/match.js';

const BLOCK = 700;

/** `n` blocks of random bytes (no two alike). */
function blocks(n: number): Buffer {
  return randomBytes(n * BLOCK);
}

/** The tokens for `file` against `basis`: 'L<n>' literal runs (merged), 'M<i>' block matches. */
async function tokens(basis: Buffer, file: Buffer, updatingBasis: boolean): Promise<string[]> {
  const cs = await createChecksummer('md5', { protocol: 31, seed: 0 });
  const head = { ...sumSizesSqroot(basis.length, 31, cs.digestLength), blength: BLOCK };
  head.count = Math.ceil(basis.length / BLOCK);
  head.remainder = basis.length % BLOCK;
  const sums = await generateSums(cs, [basis], head);
  const out: string[] = [];
  let literal = 0;
  const flush = () => {
    if (literal) out.push(`L${literal}`);
    literal = 0;
  };
  await new BlockMatcher(cs).match([file], sums, {
    onLiteral: (b) => void (literal += b.length),
    onMatch: (i) => {
      flush();
      out.push(`M${i}`);
    },
  }, { updatingBasis });
  flush();
  return out;
}

test('a block behind the write offset is not used in place; further on it is', async () => {
  const basis = blocks(4); // A B C D
  const [a, b, c, d] = [0, 1, 2, 3].map((i) => basis.subarray(i * BLOCK, (i + 1) * BLOCK));
  // C D A B: C and D come from further on; A and B would be read from where C and D were written.
  const file = Buffer.concat([c!, d!, a!, b!]);
  assert.equal(await tokens(basis, file, false), ['M2', 'M3', 'M0', 'M1']);
  assert.equal(await tokens(basis, file, true), ['M2', 'M3', `L${2 * BLOCK}`]);
});

test('a block where it already is wins, and stays usable behind the offset', async () => {
  const basis = blocks(3);
  const [a, b] = [0, 1].map((i) => basis.subarray(i * BLOCK, (i + 1) * BLOCK));
  // A A B C: the first A is where it is (same offset) and so may be used again at block 1.
  const file = Buffer.concat([a!, a!, basis.subarray(BLOCK)]);
  assert.equal(await tokens(basis, file, true), ['M0', 'M0', `L${2 * BLOCK}`]);
  // B at block 0 then A: B is further on (usable); A is behind and not at its offset (not).
  assert.equal(await tokens(basis, Buffer.concat([b!, a!]), true), ['M1', `L${BLOCK}`]);
});

test('zeros off a block boundary are realigned to the boundary (literal up to it)', async () => {
  const basis = Buffer.alloc(4 * BLOCK);
  const file = Buffer.concat([Buffer.from('shifted by some bytes'), Buffer.alloc(4 * BLOCK - 21)]);
  const inPlace = await tokens(basis, file, true);
  // The zeros are matched at the boundaries where the basis has them: the receiver seeks over them.
  assert.equal(inPlace, [`L${BLOCK}`, 'M1', 'M2', 'M3']);
  // Not in place: the zeros are matched where they are, one block after the other.
  assert.equal(await tokens(basis, file, false), ['L21', 'M0', 'M1', 'M2', `L${BLOCK - 21}`]);
});

test.run();
