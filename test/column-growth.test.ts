// protocol/column-growth.ts and the lists that use it: an outgrown column is copied and released
// (its buffer detached, so V8 frees it at the next scavenge), never a slice of a shared buffer;
// PackedFileList and ReceivedList keep every value across many growths, and name views handed
// out before a growth stay valid (the arenas are never released). ReceivedList.hasName.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { releaseColumn, resizedColumn } from '../protocol/column-growth.js';
import { PackedFileList } from '../protocol/flist-packed.js';
import { ReceivedList } from '../protocol/received-list.js';
import { S_IFDIR, S_IFREG } from '../protocol/modes.js';

test('resizedColumn grows and trims, keeping the first values; the old column is released', () => {
  const old = Float64Array.from({ length: 1000 }, (_, i) => i * 1.5);
  const grown = resizedColumn(old, 2000, 1000, Float64Array);
  assert.is(grown.length, 2000);
  for (let i = 0; i < 1000; i++) assert.is(grown[i], i * 1.5);
  assert.is(grown[1999], 0);
  assert.is(old.length, 0, 'the outgrown column is detached');
  assert.is(old.buffer.byteLength, 0);
  const trimmed = resizedColumn(grown, 10, 10, Float64Array);
  assert.equal(Array.from(trimmed), [0, 1.5, 3, 4.5, 6, 7.5, 9, 10.5, 12, 13.5]);
  assert.is(grown.length, 0);
});

test('releaseColumn leaves views of a shared buffer alone (Buffer pool slices, sub-ranges)', () => {
  const pooled = Buffer.from([1, 2, 3, 4]); // a slice of Buffer's shared pool
  releaseColumn(pooled);
  assert.equal([...pooled], [1, 2, 3, 4]);
  const whole = new Uint32Array(64).fill(7);
  const part = whole.subarray(8, 16);
  releaseColumn(part);
  assert.is(whole.length, 64);
  assert.is(whole[63], 7);
  const empty = new Uint16Array(0);
  releaseColumn(empty);
  assert.is(empty.length, 0);
});

test('PackedFileList: values and early name views survive many growths', () => {
  const list = new PackedFileList();
  const views: Buffer[] = [];
  const n = 5000; // the columns start at 1,024 entries and the arena at 64 KiB: several growths of each
  for (let i = 0; i < n; i++) {
    const dir = Buffer.from(`dir-${i % 37}-${'x'.repeat(i % 23)}`);
    const base = Buffer.from(`file-${i}.dat`);
    const at = list.add(dir, base, -1, S_IFREG | 0o644, i * 3, 1_700_000_000 + i, i * 7, i % 5, i % 11);
    assert.is(at, i);
    if (i % 100 === 0) views.push(list.name(i));
  }
  for (let i = 0; i < n; i++) {
    assert.is(list.size[i], i * 3);
    assert.is(list.mtime[i], 1_700_000_000 + i);
    assert.is(list.mtimeNsec[i], i * 7);
    assert.is(list.uid[i], i % 5);
    assert.is(list.gid[i], i % 11);
    assert.is(list.mode[i], S_IFREG | 0o644);
    assert.is(list.name(i).toString(), `dir-${i % 37}-${'x'.repeat(i % 23)}/file-${i}.dat`);
  }
  views.forEach((v, k) => {
    const i = k * 100;
    assert.is(v.toString(), `dir-${i % 37}-${'x'.repeat(i % 23)}/file-${i}.dat`, `view of entry ${i} taken before the growths`);
  });
});

test('ReceivedList: values across growths and the trim; hasName matches whole names only', () => {
  const list = new ReceivedList(31);
  const n = 3000; // from 256 entries: several growths, then the trim in sortAndClean
  const early = [] as Buffer[];
  for (let i = 0; i < n; i++) {
    const name = i === 0 ? '.' : `d${i % 13}/f${String(i).padStart(5, '0')}`;
    const w = list.addName(0, Buffer.from(name));
    list.setAttrs(w, i === 0 ? S_IFDIR | 0o755 : S_IFREG | 0o600, i, 1_600_000_000 + i, 0, 0, 0);
    if (i < 5) early.push(list.wireName(w));
  }
  list.sortAndClean();
  assert.is(list.length, n);
  const seen = new Set<number>();
  for (let ndx = 0; ndx < n; ndx++) {
    const w = list.wireIndex(ndx);
    seen.add(w);
    assert.is(list.size(ndx), w);
    assert.is(list.mtime(ndx), 1_600_000_000 + w);
  }
  assert.is(seen.size, n);
  assert.equal(early.map(String), ['.', 'd1/f00001', 'd2/f00002', 'd3/f00003', 'd4/f00004']);
  assert.ok(list.hasName(Buffer.from('.')));
  assert.ok(list.hasName(Buffer.from('d9/f02999')));
  assert.not.ok(list.hasName(Buffer.from('d9/f0299')), 'a prefix is not a name');
  assert.not.ok(list.hasName(Buffer.from('d9')));
  assert.not.ok(new ReceivedList(31).hasName(Buffer.from('.')));
});

test.run();
