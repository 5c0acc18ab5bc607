// The local file source of the push (src/transfer/scan.ts localSource): each file is read through one
// descriptor, and that descriptor is let go however the sender ends with the file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
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

test('read by the listed size without an fstat: grown, shrunk, or a directory now', async () => {
  const source = localSource();
  const read = async (path: string, listed: number) => {
    const chunks = await source.open(entry(path, listed), 0);
    if ('error' in chunks) return chunks;
    const parts: Buffer[] = [];
    for await (const c of chunks as AsyncIterable<Uint8Array>) parts.push(Buffer.from(c));
    return Buffer.concat(parts);
  };
  const grown = join(work, 'grown');
  const data = pseudoRandom(300_000, 21);
  await writeFile(grown, data);
  assert.ok((await read(grown, 1000) as Buffer).equals(data), 'grown since the scan: all of it');
  assert.ok((await read(grown, 500_000) as Buffer).equals(data), 'shrunk since the scan: what is there');
  const before = openFds();
  const dir = join(work, 'now-a-dir');
  await mkdir(dir);
  const gone = await read(dir, 10);
  assert.equal(gone, { error: `file has vanished: "${dir}"`, vanished: true, code: 'EISDIR' });
  assert.is(openFds(), before, 'the descriptor of the directory is closed');
});

test.run();
