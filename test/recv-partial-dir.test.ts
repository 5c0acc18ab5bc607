// --partial-dir on our receiving side (issue 13), against rsync: a transfer cut short keeps what
// arrived in the partial dir (relative, per directory; or absolute), the next run takes it as
// the basis (proof from the bytes: the matched data is what was kept, the literal data the rest)
// and removes it; an up-to-date file's stale partial copy goes; the partial dir is excluded and
// kept from --delete by the rule rsync's client adds. Each on a pull from a real rsyncd (against
// rsync's own pull) and on a stock push into lsyncd serve (against rsyncd). And DestTree's
// confinement of the partial dir.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rm, writeFile, mkdir, chmod, readFile, symlink } from 'node:fs/promises';
import { existsSync, lstatSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startDaemon, type TestDaemon, type ConfiguredDaemon } from './helpers/daemon.js';
import { CLI, lsyncd, run, type RunResult } from './helpers/cli.js';
import { pseudoRandom, setTimes, T0 } from './helpers/fstree.js';
import { interrupted, tempSize } from './helpers/interrupt.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { startOptionRig, type OptionRig, daemonUrl, runText, type OurDaemon } from './helpers/serve.js';
import { DestTree } from '../src/transfer/dest-tree.js';

let daemon: TestDaemon;
let rig: OptionRig;
let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;


test.before(async () => {
  daemon = await startDaemon({ extraModules: [{ name: 'src', comment: 'pull source', settings: { 'read only': true } }] });
  rig = await startOptionRig('partialdir', { push: 'rw' });
  ({ ours, theirs, work } = rig);
});
test.after(async () => {
  await daemon?.stop();
  await rig?.stop();
});

function statNumber(output: Buffer | string, label: string): number {
  const m = new RegExp(`${label}: ([\\d,]+)`).exec(output.toString());
  if (!m) throw new Error(`no "${label}" in output:\n${output}`);
  return Number(m[1]!.replace(/,/g, ''));
}

const STAT_LABELS = ['Number of files', 'Number of created files', 'Number of deleted files', 'Number of regular files transferred', 'Literal data', 'Matched data'];

function sameStats(ref: RunResult, got: RunResult, what: string): void {
  for (const label of STAT_LABELS) {
    const line = (text: string) => text.split('\n').find((l) => l.startsWith(label + ':'));
    const want = line(ref.stdout.toString());
    if (want !== undefined) assert.is(line(got.stdout.toString()), want, `${label} (${what})\n--- rsync:\n${ref.stdout}\n--- ours:\n${got.stdout}`);
  }
}

const SIZE = 96 * 1024 * 1024;

for (const where of ['relative', 'absolute'] as const) {
  test(`pull --partial-dir (${where}): cut short, kept in the partial dir; resumed from it and removed, as rsync`, async () => {
    const name = `cut-${where}`;
    const src = join(daemon.modulePath('src'), name);
    await rm(src, { recursive: true, force: true });
    await mkdir(join(src, 'sub'), { recursive: true });
    await writeFile(join(src, 'sub/big.bin'), randomBytes(SIZE));
    await setTimes(src);
    const url = `rsync://127.0.0.1:${daemon.port}/src/${name}/`;
    for (let attempt = 0, who: 'rsync' | 'lsyncd' = 'rsync'; ; attempt++) {
      const dest = join(work, 'cut', where, who, 'dest');
      const absolute = join(work, 'cut', where, who, 'partials');
      await rm(join(work, 'cut', where, who), { recursive: true, force: true });
      await mkdir(dest, { recursive: true });
      if (where === 'absolute') await mkdir(absolute);
      const option = `--partial-dir=${where === 'relative' ? '.rsync-partial' : absolute}`;
      const kept = where === 'relative' ? join(dest, 'sub/.rsync-partial/big.bin') : join(absolute, 'big.bin');
      const ready = () => tempSize(join(dest, 'sub'), 'big.bin') >= 8 * 1024 * 1024;
      const { status, stderr } =
        who === 'rsync'
          ? await interrupted('rsync', ['-rlpt', option, url, dest + '/'], ready)
          : await interrupted(process.execPath, [CLI, '--once', option, url, dest + '/'], ready);
      assert.is(status, 20, `${who}: ${stderr}`);
      // What arrived is in the partial dir; the file itself is not there.
      const partial = statSync(kept, { throwIfNoEntry: false });
      assert.ok(partial && partial.size >= 8 * 1024 * 1024 && partial.size < SIZE, `${who}: kept ${partial?.size}`);
      assert.not.ok(existsSync(join(dest, 'sub/big.bin')), who);
      if (where === 'relative') assert.is(statSync(join(dest, 'sub/.rsync-partial')).mode & 0o777, 0o700, `${who}: the partial dir is made 0700`);
      // The next run takes it as the basis: what was kept comes back as matched data.
      const resumed = who === 'rsync' ? await run('rsync', ['-rlpt', option, '--stats', url, dest + '/']) : await lsyncd(['--once', option, '--stats', url, dest + '/']);
      assert.is(resumed.status, 0, runText(resumed));
      const matched = statNumber(resumed.stdout, 'Matched data');
      const literal = statNumber(resumed.stdout, 'Literal data');
      // Seen once under CI load: the reference rsync's resumed run sent the file a second time
      // (its redo phase: 2x SIZE in all). That is rsync's hiccup, not the behaviour under test:
      // the reference is taken again (twice at most); ours gets no second try.
      if (who === 'rsync' && matched + literal !== SIZE && attempt < 2) continue;
      assert.ok(matched >= partial!.size * 0.9, `${who}: matched ${matched} of ${partial!.size} kept`);
      assert.is(matched + literal, SIZE, `${who}\n${runText(resumed)}`);
      assert.ok((await readFile(join(dest, 'sub/big.bin'))).equals(await readFile(join(src, 'sub/big.bin'))), who);
      // The partial copy is gone, and a relative partial dir with it.
      assert.not.ok(existsSync(kept), `${who}: partial copy removed`);
      if (where === 'relative') assert.not.ok(existsSync(join(dest, 'sub/.rsync-partial')), `${who}: partial dir removed`);
      if (who === 'lsyncd') break;
      who = 'lsyncd';
    }
  });
}

test('push --partial-dir: a stock push cut short leaves lsyncd serve what rsyncd keeps, and resumes from it', async () => {
  const name = 'cut-push';
  const src = join(work, 'push-src', name);
  await rm(src, { recursive: true, force: true });
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'big.bin'), randomBytes(SIZE));
  await setTimes(src);
  for (const d of [theirs, ours]) {
    const who = d === ours ? 'lsyncd serve' : 'rsyncd';
    const dest = join(d.dir, 'push', name);
    await rm(dest, { recursive: true, force: true });
    await mkdir(dest, { recursive: true });
    const url = daemonUrl(d, `push/${name}/`);
    const { status, stderr } = await interrupted('rsync', ['-rlpt', '--partial-dir=.part', src + '/', url], () => tempSize(dest, 'big.bin') >= 8 * 1024 * 1024);
    assert.is(status, 20, stderr);
    // The daemon sees the connection end; what arrived goes to the partial dir (it may still be at it).
    const kept = join(dest, '.part/big.bin');
    let st = statSync(kept, { throwIfNoEntry: false });
    for (let i = 0; i < 200 && (!st || tempSize(dest, 'big.bin') > 0); i++) {
      await new Promise((r) => setTimeout(r, 25));
      st = statSync(kept, { throwIfNoEntry: false });
    }
    assert.ok(st && st.size > 0 && st.size < SIZE, `${who}: kept ${st?.size}`);
    assert.not.ok(existsSync(join(dest, 'big.bin')), who);
    const resumed = await run('rsync', ['-rlpt', '--partial-dir=.part', '--stats', src + '/', url]);
    assert.is(resumed.status, 0, runText(resumed));
    assert.ok(statNumber(resumed.stdout, 'Matched data') >= st!.size * 0.9, `${who}: ${resumed.stdout}`);
    assert.ok((await readFile(join(dest, 'big.bin'))).equals(await readFile(join(src, 'big.bin'))), who);
    assert.not.ok(existsSync(join(dest, '.part')), `${who}: partial dir removed`);
  }
});

/** A source, and a destination with partial copies left by earlier runs (and one extra dir holding only one). */
async function source(root: string): Promise<void> {
  await mkdir(join(root, 'sub'), { recursive: true });
  await writeFile(join(root, 'grown.bin'), pseudoRandom(200_000, 3));
  await writeFile(join(root, 'missing.bin'), pseudoRandom(150_000, 4));
  await writeFile(join(root, 'same.txt'), 'up to date\n');
  await writeFile(join(root, 'sub/changed.bin'), pseudoRandom(120_000, 5));
  await setTimes(root);
}

async function staleDest(root: string, partialDir: string): Promise<void> {
  await mkdir(join(root, 'sub', partialDir), { recursive: true });
  await mkdir(join(root, partialDir), { recursive: true });
  await mkdir(join(root, 'gone', partialDir), { recursive: true });
  await writeFile(join(root, 'grown.bin'), pseudoRandom(200_000, 3).subarray(0, 50_000));
  await writeFile(join(root, partialDir, 'grown.bin'), pseudoRandom(200_000, 3).subarray(0, 120_000));
  await writeFile(join(root, partialDir, 'missing.bin'), pseudoRandom(150_000, 4).subarray(0, 90_000));
  await writeFile(join(root, 'same.txt'), 'up to date\n');
  await writeFile(join(root, partialDir, 'same.txt'), 'a stale partial copy\n');
  const changed = pseudoRandom(120_000, 5);
  changed.fill(7, 60_000, 61_000);
  await writeFile(join(root, 'sub/changed.bin'), changed);
  await writeFile(join(root, 'sub', partialDir, 'changed.bin'), pseudoRandom(120_000, 5).subarray(0, 100_000));
  await writeFile(join(root, 'gone', partialDir, 'old.bin'), 'left from a file since removed\n');
  await writeFile(join(root, 'extra.txt'), 'not in the source\n');
  await setTimes(root, T0 - 100);
  for (const dir of [join(root, partialDir), join(root, 'sub', partialDir), join(root, 'gone', partialDir)]) await chmod(dir, 0o700);
}

// (Protocol 29: no CF_INPLACE_PARTIAL_DIR, the copy is the basis of a temp file.)
const STATE_CASES: string[][] = [
  ['--partial-dir=.rsync-partial'],
  ['--partial-dir=.rsync-partial', '--delete'],
  ['--partial-dir=.rsync-partial', '-W'],
  ['--partial-dir=.rsync-partial', '--delete-after'],
  ['--partial-dir=.rsync-partial', '--protocol=29'],
];

for (const options of STATE_CASES) {
  const name = options.join(' ').replace(/[^a-z0-9]+/gi, '_');
  test(`pull ${options.join(' ')} over partial copies: the tree and the stats of rsync's pull`, async () => {
    const src = join(daemon.modulePath('src'), name);
    await rm(src, { recursive: true, force: true });
    await source(src);
    const ref = join(work, 'state-ref', name);
    const got = join(work, 'state-ours', name);
    for (const root of [ref, got]) {
      await rm(root, { recursive: true, force: true });
      await staleDest(root, '.rsync-partial');
    }
    const url = `rsync://127.0.0.1:${daemon.port}/src/${name}/`;
    const r = await run('rsync', ['-rlpt', ...options, '--stats', '--no-inc-recursive', url, ref + '/']);
    const o = await lsyncd(['--once', '--timeout', '20', '--stats', ...options, url, got + '/']);
    assert.is(r.status, 0, runText(r));
    assert.is(o.status, 0, runText(o));
    sameStats(r, o, options.join(' '));
    const diff = diffTrees(await snapshot(ref), await snapshot(got));
    assert.equal(diff, [], `${options.join(' ')}\n${diff.slice(0, 20).join('\n')}`);
    // The partial copies were used and removed (the one of a file up to date too).
    assert.not.ok(existsSync(join(got, '.rsync-partial/grown.bin')));
    assert.not.ok(existsSync(join(got, '.rsync-partial/same.txt')));
  });

  test(`push ${options.join(' ')} over partial copies: lsyncd serve leaves what rsyncd leaves`, async () => {
    const src = join(work, 'state-src', name);
    await rm(src, { recursive: true, force: true });
    await source(src);
    for (const d of [ours, theirs]) {
      await rm(join(d.dir, 'push', name), { recursive: true, force: true });
      await staleDest(join(d.dir, 'push', name), '.rsync-partial');
    }
    const args = (d: { port: number }) => ['-rlpt', ...options, '--stats', '--no-inc-recursive', src + '/', daemonUrl(d, `push/${name}/`)];
    const t = await run('rsync', args(theirs));
    const o = await run('rsync', args(ours));
    assert.is(t.status, 0, runText(t));
    assert.is(o.status, 0, runText(o));
    sameStats(t, o, options.join(' '));
    const diff = diffTrees(await snapshot(join(theirs.dir, 'push', name)), await snapshot(join(ours.dir, 'push', name)));
    assert.equal(diff, [], `${options.join(' ')}\n${diff.slice(0, 20).join('\n')}`);
  });
}

test('RSYNC_PARTIAL_DIR with --partial is the partial dir of a pull; --inplace and --append refuse --partial-dir', async () => {
  const name = 'env';
  const src = join(daemon.modulePath('src'), name);
  await rm(src, { recursive: true, force: true });
  await source(src);
  const url = `rsync://127.0.0.1:${daemon.port}/src/${name}/`;
  const ref = join(work, 'env-ref');
  const got = join(work, 'env-ours');
  for (const root of [ref, got]) {
    await rm(root, { recursive: true, force: true });
    await staleDest(root, '.envpart');
  }
  const env = { RSYNC_PARTIAL_DIR: '.envpart' };
  const r = await run('rsync', ['-rlpt', '--partial', '--stats', url, ref + '/'], env);
  const o = await lsyncd(['--once', '--partial', '--stats', url, got + '/'], env);
  assert.is(r.status, 0, runText(r));
  assert.is(o.status, 0, runText(o));
  sameStats(r, o, 'RSYNC_PARTIAL_DIR');
  const diff = diffTrees(await snapshot(ref), await snapshot(got));
  assert.equal(diff, [], diff.join('\n'));
  for (const [flag, word] of [['--inplace', 'inplace'], ['--append', 'append']] as const) {
    const bad = await lsyncd(['--once', flag, '--partial-dir=.p', url, join(work, 'never') + '/']);
    assert.is(bad.status, 1, runText(bad));
    assert.match(bad.stderr.toString(), new RegExp(`--${word} cannot be used with --partial-dir`));
  }
});

test('DestTree: a partial dir that is a symlink is never followed (no basis from it; a kept copy replaces the link)', async () => {
  const root = join(work, 'confined');
  await rm(root, { recursive: true, force: true });
  await mkdir(join(root, 'dest/sub'), { recursive: true });
  await mkdir(join(root, 'outside'));
  await writeFile(join(root, 'outside/f.bin'), 'outside the destination\n');
  await symlink(join(root, 'outside'), join(root, 'dest/sub/.p'));
  const attrs = { perms: true, times: true, owner: false, group: false, umask: 0o022, modifyWindow: 0 };
  const tree = new DestTree(join(root, 'dest'), attrs, { partialDir: { dir: '.p' } });
  const name = Buffer.from('sub/f.bin');
  assert.is(await tree.lstatPartial(name), null);
  assert.is(await tree.openPartial(name), null);
  const temp = await tree.createTemp(name);
  await temp.write(Buffer.from('what arrived\n'));
  assert.ok(await temp.keepPartial!({ name, mode: 0o100644, size: 100, mtime: T0, uid: 0, gid: 0 }));
  assert.ok(lstatSync(join(root, 'dest/sub/.p')).isDirectory(), 'the link was replaced by a directory');
  assert.is(await readFile(join(root, 'dest/sub/.p/f.bin'), 'utf8'), 'what arrived\n');
  assert.is(await readFile(join(root, 'outside/f.bin'), 'utf8'), 'outside the destination\n');
  // A daemon's rules may refuse the partial dir: then there is none.
  const refused = new DestTree(join(root, 'dest'), attrs, { partialDir: { dir: '.p', allowed: (n, isDir) => !(isDir && n.toString().endsWith('.p')) } });
  assert.is(await refused.lstatPartial(name), null);
  // A partial dir climbing with ".." stays in DEST: above it a file has none (pull-partial-dir-climb);
  // a ".." inside it (not cleaned away) is refused.
  await writeFile(join(root, 'outside/top.bin'), 'outside the destination\n');
  const climbing = new DestTree(join(root, 'dest'), attrs, { partialDir: { dir: '../../outside' } });
  assert.is(await climbing.lstatPartial(Buffer.from('sub/top.bin')), null, 'above DEST: none');
  assert.is(await climbing.lstatPartial(Buffer.from('top.bin')), null, 'above DEST: none');
  assert.throws(() => new DestTree(join(root, 'dest'), attrs, { partialDir: { dir: 'a/../p' } }), /partial dir with "\.\." inside it/);
});

test.run();
