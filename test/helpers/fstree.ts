// Building source trees for push tests: deterministic content, unusual names, fixed mtimes.
import { mkdir, writeFile, symlink, utimes, chmod, lutimes } from 'node:fs/promises';
import { join } from 'node:path';

/** Deterministic bytes (xorshift), so a failing test can be reproduced exactly. */
export function pseudoRandom(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export const T0 = 1704164645; // 2024-01-02 03:04:05 UTC

/** Set a fixed mtime (seconds + nanoseconds) without following symlinks. */
export async function setTime(path: string | Buffer, seconds = T0, nsec = 0): Promise<void> {
  const t = seconds + nsec / 1e9;
  await lutimes(path, t, t);
}

export function lines(count: number): string {
  let s = '';
  for (let i = 0; i < count; i++) s += `line ${String(i).padStart(4, '0')}: the quick brown fox jumps over the lazy dog\n`;
  return s;
}

/** Raw-byte path join (names may be non-UTF-8). */
export function bjoin(dir: string, name: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from(dir), Buffer.from('/'), typeof name === 'string' ? Buffer.from(name) : name]);
}

/** The standard source tree of the push tests. */
export async function makeTree(root: string): Promise<void> {
  await mkdir(join(root, 'sub/deeper'), { recursive: true });
  await mkdir(join(root, 'private'), { recursive: true });
  await writeFile(join(root, 'a.txt'), lines(55));
  await writeFile(join(root, 'big.bin'), pseudoRandom(300_000, 7));
  await writeFile(join(root, 'empty'), '');
  await writeFile(join(root, 'sub/b.txt'), 'second file in subdir\n');
  await writeFile(join(root, 'sub/deeper/c.bin'), pseudoRandom(5000, 3));
  await writeFile(join(root, 'private/secret'), 'mode 0600\n');
  await chmod(join(root, 'private/secret'), 0o600);
  await chmod(join(root, 'private'), 0o700);
  await writeFile(join(root, 'run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(root, 'run.sh'), 0o755);
  await symlink('a.txt', join(root, 'link'));
  await symlink('does/not/exist', join(root, 'dangling'));
  await symlink('/etc/hostname', join(root, 'absolute'));
  // Unusual names: spaces, a newline, a backslash, a leading dash, glob characters, non-UTF-8,
  // UTF-8, the longest name Linux allows.
  for (const name of ['with space', 'new\nline', 'back\\slash', '-leading-dash', '[glob]*?', 'été.txt', 'x'.repeat(255)]) {
    await writeFile(bjoin(root, name), `content of ${name}\n`);
  }
  await writeFile(bjoin(root, Buffer.from([0x6e, 0xff, 0xfe, 0x41])), 'not utf-8\n');
  await setTimes(root);
}

/** Give every entry below `root` (and root) a fixed mtime with nanoseconds, symlinks included. */
export async function setTimes(root: string, seconds = T0): Promise<void> {
  const { readdir, lstat } = await import('node:fs/promises');
  const walk = async (dir: Buffer): Promise<void> => {
    for (const name of await readdir(dir, { encoding: 'buffer' })) {
      const path = Buffer.concat([dir, Buffer.from('/'), name]);
      const st = await lstat(path);
      if (st.isDirectory()) await walk(path);
      await setTime(path, seconds, 123456789);
    }
  };
  await walk(Buffer.from(root));
  await utimes(root, seconds, seconds);
}
