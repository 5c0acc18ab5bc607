// native/dir-prefetch.cc and the sender's walk that uses it (src/transfer/scan.ts walkTree): what
// the thread reads ahead is byte for byte what readDirStats reads; a directory the walk gets to
// first is left to the walk (null) and passed by; a failed read is null (the walk reads it again
// and words the error); the thread holds no more than its bound and reads on as the walk takes;
// closed, it answers nothing; exploring reads down a tree in the walk's order until the walk names
// its first batch. A walk with it lists the same entries as one without it, also with
// a directory excluded, one that vanishes and one that cannot be read.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAddon } from '../src/addon.js';
import { DEFAULT_TRANSFER } from '../protocol/args.js';
import { scanSource } from '../src/transfer/scan.js';

const addon = loadAddon(undefined, { quiet: true });
const b = (s: string): Buffer => Buffer.from(s);

function tree(dirs: number, files: number): { root: string; dirs: string[] } {
  const root = mkdtempSync(join(tmpdir(), 'lsyncd-prefetch-'));
  const made: string[] = [];
  for (let d = 0; d < dirs; d++) {
    const dir = join(root, `d${d}`);
    mkdirSync(dir);
    made.push(dir);
    for (let f = 0; f < files; f++) writeFileSync(join(dir, `f${f}`), 'x'.repeat(d + f));
  }
  return { root, dirs: made };
}

const settle = (ms = 50) => new Promise((r) => setTimeout(r, ms));

test('read ahead: the same records as readDirStats, for every directory of the batch', async () => {
  assert.ok(addon?.DirPrefetch && addon.readDirStats, 'the addon is built (npm install builds it)');
  const { root, dirs } = tree(12, 7);
  try {
    const ahead = new addon!.DirPrefetch!(64, 1 << 20);
    ahead.want(dirs.map(b));
    await settle();
    for (const dir of dirs) assert.equal(ahead.take(b(dir)), addon!.readDirStats!(b(dir)), dir);
    // Taken once: a second take has nothing left.
    assert.is(ahead.take(b(dirs[0]!)), null);
    ahead.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a directory the walk reaches before the thread is left to it, and the thread passes it by', async () => {
  const { root, dirs } = tree(4, 3);
  try {
    // One at a time held: the thread reads the batch from its end (d3) and waits there.
    const ahead = new addon!.DirPrefetch!(1, 1 << 20);
    ahead.want(dirs.map(b));
    await settle();
    // d0 is still queued: null, the walk reads it itself.
    assert.is(ahead.take(b(dirs[0]!)), null);
    // Changed after being passed by: had the thread read d0 later, d3's take would not free it.
    writeFileSync(join(dirs[2]!, 'late'), 'late');
    assert.equal(ahead.take(b(dirs[3]!)), addon!.readDirStats!(b(dirs[3]!)));
    await settle();
    // d2 was read after the take above made room: it has the late file.
    const d2 = ahead.take(b(dirs[2]!));
    assert.ok(d2 && d2.includes(b('late')), 'read after its change');
    assert.equal(d2, addon!.readDirStats!(b(dirs[2]!)));
    await settle();
    assert.equal(ahead.take(b(dirs[1]!)), addon!.readDirStats!(b(dirs[1]!)));
    // d0 was passed by: nothing read for it.
    assert.is(ahead.take(b(dirs[0]!)), null);
    ahead.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a failed read is null (the walk reads it again and words the error); closed, nothing is read', async () => {
  const { root, dirs } = tree(2, 1);
  try {
    const ahead = new addon!.DirPrefetch!(8, 1 << 20);
    const gone = join(root, 'gone');
    ahead.want([b(gone), b(join(dirs[0]!, 'f0')), b(dirs[1]!)]);
    await settle();
    assert.is(ahead.take(b(gone)), null);
    assert.is(ahead.take(b(join(dirs[0]!, 'f0'))), null, 'not a directory');
    ahead.close();
    assert.is(ahead.take(b(dirs[1]!)), null, 'dropped when closed');
    ahead.want([b(dirs[0]!)]);
    await settle();
    assert.is(ahead.take(b(dirs[0]!)), null, 'no reading after close');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('explore: read down from the top in the walk\'s order before the walk names anything; the first batch ends it', async () => {
  const { root, dirs } = tree(3, 2);
  try {
    for (const d of dirs) for (const sub of ['b', 'a-z', 'a']) mkdirSync(join(d, sub));
    writeFileSync(join(dirs[0]!, 'a', 'f'), 'f');
    const ahead = new addon!.DirPrefetch!(64, 1 << 20);
    ahead.explore(b(root));
    await settle();
    // Everything below the top was read (the budget is 64 directories), each as readDirStats reads it.
    for (const dir of [root, ...dirs, ...dirs.flatMap((d) => ['a', 'a-z', 'b'].map((s) => join(d, s)))]) {
      assert.equal(ahead.take(b(dir)), addon!.readDirStats!(b(dir)), dir);
    }
    ahead.close();
    // A budget of 2: the top and its first two subdirectories in the walk's order ('a-z' before
    // 'a': as if 'a-z/' and 'a/'), not 'b'.
    const small = new addon!.DirPrefetch!(2, 1 << 20);
    small.explore(b(dirs[0]!));
    await settle();
    assert.ok(small.take(b(dirs[0]!)), 'the top');
    await settle();
    assert.ok(small.take(b(join(dirs[0]!, 'a-z'))), 'its first subdirectory');
    await settle();
    assert.is(small.take(b(join(dirs[0]!, 'b'))), null, 'past the budget');
    // The first batch named ends exploring: what it read stays; the batch is read.
    small.want([b(dirs[1]!), b(join(dirs[0]!, 'a'))]);
    await settle();
    assert.ok(small.take(b(join(dirs[0]!, 'a'))), 'explored before the batch');
    assert.ok(small.take(b(dirs[1]!)), 'the batch named');
    small.close();
    // A batch named before exploring: explore does nothing.
    const named = new addon!.DirPrefetch!(8, 1 << 20);
    named.want([b(dirs[2]!)]);
    named.explore(b(root));
    await settle();
    assert.is(named.take(b(root)), null, 'not explored');
    assert.ok(named.take(b(dirs[2]!)));
    named.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a walk with the prefetcher lists what a walk without it lists (excluded, vanished and unreadable directories too)', async () => {
  const { root } = tree(30, 4);
  try {
    for (let d = 0; d < 30; d += 3) for (let s = 0; s < 3; s++) {
      mkdirSync(join(root, `d${d}`, `s${s}`));
      writeFileSync(join(root, `d${d}`, `s${s}`, 'deep'), String(d * s));
    }
    mkdirSync(join(root, 'd3', 's0', 'deeper'));
    symlinkSync('d1', join(root, 'link'));
    mkdirSync(join(root, 'closed'));
    writeFileSync(join(root, 'closed', 'secret'), 's');
    chmodSync(join(root, 'closed'), 0);
    const listed = async () => {
      const warnings: string[] = [];
      const scan = await scanSource(root + '/', {
        transfer: { ...DEFAULT_TRANSFER, recursive: true, links: true },
        filter: {
          isExcluded: (name) => {
            // d9/s1 vanishes after d9 is read, before the walk goes down into it.
            if (name.toString() === 'd9/f0') rmSync(join(root, 'd9', 's1'), { recursive: true });
            return name.toString() === 'd6';
          },
        },
        onWarning: (w) => warnings.push(w),
      });
      mkdirSync(join(root, 'd9', 's1'));
      writeFileSync(join(root, 'd9', 's1', 'deep'), '0');
      const entries = Array.from({ length: scan.list.count }, (_, i) => scan.list.entry(i));
      // d9 and d9/s1 are made again between the walks: their times are not compared.
      const remade = (e: (typeof entries)[number]) => ['d9', 'd9/s1'].includes(e.name.toString());
      return {
        entries: entries.map((e) => ({ ...e, name: e.name.toString('latin1'), localPath: e.localPath.toString('latin1'), symlink: e.symlink?.toString('latin1'), ...(remade(e) && { mtime: 0, mtimeNsec: 0, ino: 0 }) })),
        warnings,
      };
    };
    const withPrefetch = await listed();
    process.env['LSYNCD_DIR_PREFETCH'] = 'never';
    try {
      const without = await listed();
      assert.equal(withPrefetch.entries.map((e) => e.name), without.entries.map((e) => e.name));
      assert.equal(withPrefetch, without);
    } finally {
      delete process.env['LSYNCD_DIR_PREFETCH'];
    }
    const names = withPrefetch.entries.map((e) => e.name);
    assert.ok(names.includes('d3/s0/deeper') && names.includes('closed') && names.includes('link'));
    assert.ok(!names.includes('d6') && !names.includes('d6/f0') && !names.includes('d6/s0/deep'), 'd6 excluded with its tree');
    assert.ok(names.includes('d9/s1') && !names.includes('d9/s1/deep'), 'd9/s1 listed, its contents gone');
    assert.ok(withPrefetch.warnings.some((w) => w.includes('d9/s1')), withPrefetch.warnings.join('\n'));
    if (process.getuid?.() !== 0) assert.ok(withPrefetch.warnings.some((w) => w.includes('closed')), withPrefetch.warnings.join('\n'));
  } finally {
    chmodSync(join(root, 'closed'), 0o755);
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
