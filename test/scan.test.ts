// The local file source of the push (src/transfer/scan.ts localSource): each file is read through one
// descriptor, and that descriptor is let go however the sender ends with the file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localSource, type LocalEntry } from '../src/transfer/scan.js';
import { pseudoRandom } from './helpers/fstree.js';

let work: string;
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'lsyncd-scan-'));
});
test.after(async () => {
  await rm(work, { recursive: true, force: true });
});

const openFds = () => readdirSync('/proc/self/fd').length;
const entry = (path: string, size: number): LocalEntry => ({ name: Buffer.from('f'), localPath: Buffer.from(path), mode: 0o100644, size, mtime: 0, uid: 0, gid: 0 });

test('a big file opened and never read (the sender failed before reading it) does not keep its descriptor', async () => {
  const path = join(work, 'big');
  const data = pseudoRandom(3 * 2 ** 20, 5);
  await writeFile(path, data);
  const source = localSource();
  const before = openFds();
  const chunks = await source.open(entry(path, data.length), 0);
  assert.not.ok('error' in chunks);
  assert.is(openFds(), before + 1);
  (chunks as { close?: () => void }).close?.();
  assert.is(openFds(), before);
});

test('read to the end, then closed again: the same bytes, one descriptor released once', async () => {
  const path = join(work, 'big2');
  const data = pseudoRandom(3 * 2 ** 20 + 17, 6);
  await writeFile(path, data);
  const source = localSource();
  const before = openFds();
  const chunks = await source.open(entry(path, data.length), 0);
  if ('error' in chunks) throw new Error(chunks.error);
  const parts: Buffer[] = [];
  for await (const c of chunks as AsyncIterable<Uint8Array>) parts.push(Buffer.from(c));
  assert.ok(Buffer.concat(parts).equals(data));
  assert.is(openFds(), before);
  (chunks as { close?: () => void }).close?.();
  assert.is(openFds(), before);
});

test('small files share one buffer: each read is right while it is being used', async () => {
  const source = localSource();
  for (const [i, size] of [1000, 70_000, 10, 200_000].entries()) {
    const path = join(work, `small${i}`);
    const data = pseudoRandom(size, 10 + i);
    await writeFile(path, data);
    const chunks = await source.open(entry(path, size), i);
    if ('error' in chunks) throw new Error(chunks.error);
    const parts: Buffer[] = [];
    for await (const c of chunks as AsyncIterable<Uint8Array>) parts.push(Buffer.from(c));
    assert.ok(Buffer.concat(parts).equals(data), `file ${i} (${size} bytes)`);
  }
});

/** A source made with the addon's one-call read of small files, or the Node way (LSYNCD_JS_SCAN). */
function sourceOf(way: 'addon' | 'node') {
  if (way === 'addon') return localSource();
  process.env['LSYNCD_JS_SCAN'] = '1';
  try {
    return localSource();
  } finally {
    delete process.env['LSYNCD_JS_SCAN'];
  }
}

for (const way of ['addon', 'node'] as const) test(`read by the listed size without an fstat (${way}): grown, shrunk, a directory, a symlink or gone now`, async () => {
  const source = sourceOf(way);
  const read = async (path: string, listed: number) => {
    const chunks = await source.open(entry(path, listed), 0);
    if ('error' in chunks) return chunks;
    const parts: Buffer[] = [];
    for await (const c of chunks as AsyncIterable<Uint8Array>) parts.push(Buffer.from(c));
    return Buffer.concat(parts);
  };
  const grown = join(work, `grown-${way}`);
  const data = pseudoRandom(300_000, 21);
  await writeFile(grown, data);
  assert.ok((await read(grown, 1000) as Buffer).equals(data), 'grown since the scan: all of it');
  assert.ok((await read(grown, 500_000) as Buffer).equals(data), 'shrunk since the scan: what is there');
  const before = openFds();
  const dir = join(work, `now-a-dir-${way}`);
  await mkdir(dir);
  const gone = await read(dir, 10);
  assert.equal(gone, { error: `file has vanished: "${dir}"`, vanished: true, code: 'EISDIR' });
  assert.is(openFds(), before, 'the descriptor of the directory is closed');
  const link = join(work, `now-a-link-${way}`);
  await symlink(grown, link);
  assert.equal(await read(link, 10), { error: `file has vanished: "${link}"`, vanished: true, code: 'ELOOP' });
  const missing = join(work, 'never-there');
  assert.equal(await read(missing, 10), { error: `file has vanished: "${missing}"`, vanished: true, code: 'ENOENT' });
  const exact = join(work, `exact-${way}`);
  await writeFile(exact, data.subarray(0, 4096));
  assert.ok((await read(exact, 4096) as Buffer).equals(data.subarray(0, 4096)), 'exactly the listed size');
  assert.is(openFds(), before);
});

test('big files take turns in two read buffers: each chunk is right while the sender holds it, also after a file left half read', async () => {
  const source = localSource();
  const files = [pseudoRandom(5 * 2 ** 20 + 3, 31), pseudoRandom(4 * 2 ** 20, 32), pseudoRandom(3 * 2 ** 20 + 999, 33)];
  for (const [i, data] of files.entries()) await writeFile(join(work, `turns${i}`), data);
  // The first file: only two chunks taken, then let go (a read ahead is under way into a buffer).
  const first = await source.open(entry(join(work, 'turns0'), files[0]!.length), 0);
  if ('error' in first) throw new Error(first.error);
  const it = (first as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  await it.next();
  await it.next();
  (first as { close?: () => void }).close?.();
  for (const i of [1, 2, 0]) {
    const chunks = await source.open(entry(join(work, `turns${i}`), files[i]!.length), i);
    if ('error' in chunks) throw new Error(chunks.error);
    let at = 0;
    for await (const c of chunks as AsyncIterable<Uint8Array>) {
      // Compared while held, before the next chunk is asked for (the sender's contract).
      assert.ok(Buffer.from(c).equals(files[i]!.subarray(at, at + c.length)), `file ${i} at ${at}`);
      at += c.length;
    }
    assert.is(at, files[i]!.length);
  }
});

test.run();
