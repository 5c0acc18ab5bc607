// The tree the fake-super suites store and bring back: what needs root to keep (owners, set-id
// bits, a sticky dir, devices), a fifo and symlinks. Devices and owners only as root.
import { chmod, chown, mkdir, symlink, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { setTime, T0 } from './fstree.js';

const ROOT = process.getuid?.() === 0;

/** The source: owners (as root), a setuid and a setgid file, a sticky dir, a device (as root), a fifo, symlinks, a plain file. */
export async function makeFakeSuperSource(root: string): Promise<void> {
  await mkdir(join(root, 'sub/deep'), { recursive: true });
  await writeFile(join(root, 'setuid'), 'suid program\n');
  await writeFile(join(root, 'plain'), 'nothing special\n');
  await writeFile(join(root, 'sub/owned'), 'owned by another\n');
  await writeFile(join(root, 'sub/deep/setgid'), 'sgid\n');
  await symlink('../setuid', join(root, 'sub/link'));
  await symlink('plain', join(root, 'rel-link'));
  spawnSync('mkfifo', ['-m', '0640', join(root, 'fifo')]);
  if (ROOT) {
    spawnSync('mknod', ['-m', '0660', join(root, 'null-like'), 'c', '1', '3']);
    spawnSync('mknod', ['-m', '0600', join(root, 'sub/block'), 'b', '7', '200']);
    await chown(join(root, 'setuid'), 1234, 4321);
    await chown(join(root, 'sub/owned'), 1, 1); // daemon:daemon: ids with names
    await chown(join(root, 'sub'), 65534, 65534);
    await chown(join(root, 'fifo'), 2, 3);
    await chown(join(root, 'null-like'), 0, 6);
    spawnSync('chown', ['-h', '777:888', join(root, 'rel-link')]);
  }
  // After chown (which clears the set-id bits).
  await chmod(join(root, 'setuid'), 0o4755);
  await chmod(join(root, 'sub/deep/setgid'), 0o2750);
  await chmod(join(root, 'plain'), 0o444);
  await chmod(join(root, 'sub/deep'), 0o1777);
  await chmod(join(root, 'sub/owned'), 0o640);
  for (const rel of ['setuid', 'plain', 'sub/owned', 'sub/deep/setgid', 'fifo', 'sub/deep', 'sub', ...(ROOT ? ['null-like', 'sub/block'] : [])]) {
    await setTime(join(root, rel), T0 + rel.length);
  }
  spawnSync('touch', ['-h', '-d', `@${T0}`, join(root, 'sub/link'), join(root, 'rel-link')]);
  await setTime(root, T0);
}
