// Extended attributes of test trees, read and written through the addon (native/xattr.cc): a
// tree's names and values for exact comparison, and the tree with xattrs the -X suites sync.
import { lstatSync, readdirSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { xattrCalls, type XattrCalls } from '../../src/addon.js';
import { readXattrPairs } from '../../src/transfer/local-xattrs.js';
import { setTimes } from './fstree.js';

export function calls(): XattrCalls {
  const c = xattrCalls();
  if (!c) throw new Error('the addon has no xattr calls (build it: npx node-gyp build)');
  return c;
}

/** Every path of a tree (relative, '.' for the root) → its xattrs but system.* (ACLs) as "name=hex" lines, sorted; symlinks not followed. */
export function xattrTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (rel: string): void => {
    const abs = rel === '.' ? root : join(root, rel);
    const pairs = readXattrPairs(calls(), Buffer.from(abs), (n) => !n.toString('latin1').startsWith('system.'));
    out.set(rel, pairs.map((p) => `${p.name.toString('latin1')}=${p.value.toString('hex')}`).sort().join('\n'));
    if (lstatSync(abs).isDirectory()) for (const name of readdirSync(abs).sort()) visit(rel === '.' ? name : join(rel, name));
  };
  visit('.');
  return out;
}

/** The differences between two trees' xattrs, one line each (empty when equal). */
export function diffXattrTrees(expected: Map<string, string>, actual: Map<string, string>): string[] {
  const diffs: string[] = [];
  for (const [path, want] of expected) {
    const got = actual.get(path);
    if (got === undefined) diffs.push(`${path}: missing`);
    else if (got !== want) diffs.push(`${path}: want [${want.replace(/\n/g, ' ')}] got [${got.replace(/\n/g, ' ')}]`);
  }
  for (const path of actual.keys()) if (!expected.has(path)) diffs.push(`${path}: extra`);
  return diffs;
}

export function setX(path: string, name: string, value: string | Buffer): void {
  calls().set(Buffer.from(path), Buffer.from(name), Buffer.isBuffer(value) ? value : Buffer.from(value));
}

export function removeX(path: string, name: string): void {
  calls().remove(Buffer.from(path), Buffer.from(name));
}

/** A value of `length` bytes (every byte value, NULs included). */
export function binaryValue(length: number, seed = 7): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/**
 * A tree whose files and directories carry user.* xattrs: small (≤ 32 bytes), long (> 32: sent as
 * digests), empty and binary values, a file with many names, two files with the same set (sent
 * once, then by index), rsync's own user.rsync.%stat (copied only with -XX), as root a trusted.*
 * name, a symlink; times fixed at T0.
 */
export async function makeXattrTree(root: string): Promise<void> {
  await mkdir(join(root, 'sub/deeper'), { recursive: true });
  await writeFile(join(root, 'small.txt'), 'small\n');
  await writeFile(join(root, 'long.txt'), 'long\n');
  await writeFile(join(root, 'same-a.txt'), 'a\n');
  await writeFile(join(root, 'same-b.txt'), 'b\n');
  await writeFile(join(root, 'many.txt'), 'many\n');
  await writeFile(join(root, 'none.txt'), 'none\n');
  await writeFile(join(root, 'sub/file.bin'), binaryValue(5000));
  await writeFile(join(root, 'sub/deeper/leaf.txt'), 'leaf\n');
  await symlink('small.txt', join(root, 'link'));
  setX(join(root, 'small.txt'), 'user.short', 'hello');
  setX(join(root, 'small.txt'), 'user.empty', '');
  setX(join(root, 'long.txt'), 'user.long', 'x'.repeat(200));
  setX(join(root, 'long.txt'), 'user.exactly32', 'y'.repeat(32));
  setX(join(root, 'long.txt'), 'user.just33', 'z'.repeat(33));
  for (const f of ['same-a.txt', 'same-b.txt']) {
    setX(join(root, f), 'user.shared', 'the same set on two files, long enough to be a digest');
    setX(join(root, f), 'user.tag', 'same');
  }
  for (let k = 0; k < 40; k++) setX(join(root, 'many.txt'), `user.n${String(k).padStart(2, '0')}`, k % 3 ? `v${k}` : binaryValue(40 + k, k));
  setX(join(root, 'sub'), 'user.dir', 'a directory value');
  setX(join(root, 'sub'), 'user.dirlong', binaryValue(100, 3));
  setX(join(root, 'sub/file.bin'), 'user.bin', binaryValue(64, 9));
  setX(join(root, 'sub/deeper'), 'user.deep', '');
  setX(join(root, 'none.txt'), 'user.rsync.%stat', '100644 0,0 0:0');
  setX(root, 'user.root', 'the top');
  if (process.getuid?.() === 0) setX(join(root, 'small.txt'), 'trusted.lsyncd-test', 'root only');
  await setTimes(root);
}

/** A change of every kind: a name added, a long value changed, a name removed, a set emptied, a file's set given to another. */
export async function changeXattrs(root: string): Promise<void> {
  setX(join(root, 'small.txt'), 'user.added', 'new');
  setX(join(root, 'long.txt'), 'user.long', 'w'.repeat(300));
  removeX(join(root, 'same-a.txt'), 'user.tag');
  setX(join(root, 'sub'), 'user.dirlong', binaryValue(90, 5));
  removeX(join(root, 'sub/deeper'), 'user.deep');
  setX(join(root, 'none.txt'), 'user.shared', 'the same set on two files, long enough to be a digest');
  setX(join(root, 'none.txt'), 'user.tag', 'same');
  await setTimes(root);
}
