// -X/--xattrs against real rsync (issue 13): the same tree with xattrs (small, long, empty,
// binary values, many names, shared sets, a directory's, rsync's own user.rsync.%stat, as root a
// trusted.* name) and the same changes (names added, changed, removed), synced with `rsync -aX` and
// with ours: pushed into rsyncd, pulled from it, and a stock rsync client pushing into and pulling
// from `lsyncd serve` beside rsyncd; names and values compared exactly (test/helpers/xattrs.ts),
// and the itemized lines (`x` in the last column) compared where both print them. Protocols 30-32;
// below 30 -X is refused in rsync's words.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { lsyncd, run, type RunResult } from './helpers/cli.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { startOptionRig, type OptionRig, daemonUrl, runText, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';
import { oldRsync } from './helpers/old-rsync.js';
import { changeXattrs, diffXattrTrees, makeXattrTree, xattrTree } from './helpers/xattrs.js';

const ROOT = process.getuid?.() === 0;
let rig: OptionRig;
let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;


test.before(async () => {
  rig = await startOptionRig('xattrs', { push: 'rw', src: 'rw' });
  ({ ours, theirs, work } = rig);
});
test.after(async () => {
  await rig?.stop();
});

function ok(r: RunResult, what: string): void {
  assert.is(r.status, 0, `${what}\n${runText(r)}`);
}

/** Two trees hold the same names and values, and the same files with the same attributes. */
async function assertSame(expected: string, actual: string, what: string): Promise<void> {
  assert.equal(diffXattrTrees(xattrTree(expected), xattrTree(actual)), [], `${what}: xattrs`);
  assert.equal(diffTrees(await snapshot(expected), await snapshot(actual)), [], `${what}: tree`);
}

/** A tree's xattrs without rsync's own user.rsync.% names (which one -X leaves behind). */
const withoutRsyncNames = (tree: Map<string, string>) =>
  new Map([...tree].map(([path, text]) => [path, text.split('\n').filter((l) => !l.startsWith('user.rsync.%')).join('\n')]));

const lines = (r: RunResult) => r.stdout.toString().split('\n').filter((l) => /^[.<>ch*][fdLDS][.+?a-zA-Z]{9} /.test(l)).sort();

for (const protocol of [30, 31, 32]) {
  test(`push -aX at protocol ${protocol}: ours and rsync's into rsyncd end as the source, before and after changes`, async () => {
    const src = join(work, `push-src-${protocol}`);
    await mkdir(src);
    await makeXattrTree(src);
    const proto = `--protocol=${protocol}`;
    for (const round of ['first', 'changed']) {
      ok(await run('rsync', ['-aX', proto, `${src}/`, daemonUrl(theirs, `push/rsync-${protocol}/`)]), `rsync push (${round})`);
      ok(await lsyncd(['--once', '-aX', proto, `${src}/`, daemonUrl(theirs, `push/ours-${protocol}/`)]), `our push (${round})`);
      const theirsPush = join(theirs.dir, 'push');
      await assertSame(join(theirsPush, `rsync-${protocol}`), join(theirsPush, `ours-${protocol}`), `push ${round}`);
      // user.rsync.%stat stays behind with one -X, as rsync leaves it.
      const sent = xattrTree(join(theirsPush, `ours-${protocol}`)).get('none.txt')!;
      assert.not.match(sent, /rsync\.%stat/, 'user.rsync.% names need -XX');
      if (ROOT) assert.match(xattrTree(join(theirsPush, `ours-${protocol}`)).get('small.txt')!, /trusted\.lsyncd-test=/, 'root keeps trusted.*');
      await changeXattrs(src);
    }
  });

  test(`pull -aXi at protocol ${protocol}: ours and rsync's from rsyncd, the same lines and the same xattrs`, async () => {
    const module = join(theirs.dir, 'src', `p${protocol}`);
    await mkdir(module);
    await makeXattrTree(module);
    const o = join(work, `pull-ours-${protocol}`);
    const t = join(work, `pull-rsync-${protocol}`);
    const proto = `--protocol=${protocol}`;
    for (const round of ['first', 'changed']) {
      const r = await run('rsync', ['-aXi', proto, daemonUrl(theirs, `src/p${protocol}/`), `${t}/`]);
      const l = await lsyncd(['--once', '-aXi', proto, daemonUrl(theirs, `src/p${protocol}/`), `${o}/`]);
      ok(r, `rsync pull (${round})`);
      ok(l, `our pull (${round})`);
      assert.equal(lines(l), lines(r), `itemized lines (${round})`);
      if (round === 'changed') assert.ok(lines(l).some((x) => /^\.f\.{8}x /.test(x)), `an xattr-only change is itemized: ${lines(l).join('\n')}`);
      await assertSame(t, o, `pull ${round}`);
      assert.equal(diffXattrTrees(withoutRsyncNames(xattrTree(module)), xattrTree(o)), [], `pull ${round}: the module's xattrs but user.rsync.%`);
      await changeXattrs(module);
    }
  });
}

test('pull -aXn: a dry run changes no xattr and itemizes as rsync does', async () => {
  const module = join(theirs.dir, 'src', 'dry');
  await mkdir(module);
  await makeXattrTree(module);
  const o = join(work, 'dry-ours');
  const t = join(work, 'dry-rsync');
  ok(await run('rsync', ['-aX', daemonUrl(theirs, 'src/dry/'), `${t}/`]), 'rsync pull');
  ok(await lsyncd(['--once', '-aX', daemonUrl(theirs, 'src/dry/'), `${o}/`]), 'our pull');
  const before = xattrTree(o);
  await changeXattrs(module);
  const r = await run('rsync', ['-aXin', daemonUrl(theirs, 'src/dry/'), `${t}/`]);
  const l = await lsyncd(['--once', '-aXin', daemonUrl(theirs, 'src/dry/'), `${o}/`]);
  ok(r, 'rsync -n');
  ok(l, 'our -n');
  assert.equal(lines(l), lines(r));
  assert.equal(diffXattrTrees(before, xattrTree(o)), [], 'nothing set by a dry run');
});

test('a stock rsync -aXi pushing into lsyncd serve and pulling from it: the same lines and xattrs as with rsyncd', async () => {
  const src = join(work, 'serve-src');
  await mkdir(src);
  await makeXattrTree(src);
  for (const round of ['first', 'changed']) {
    const pt = await run('rsync', ['-aXi', `${src}/`, daemonUrl(theirs, 'push/from-client/')]);
    const po = await run('rsync', ['-aXi', `${src}/`, daemonUrl(ours, 'push/from-client/')]);
    ok(pt, `push into rsyncd (${round})`);
    ok(po, `push into ours (${round})`);
    assert.equal(lines(po), lines(pt), `push lines (${round})`);
    await assertSame(join(theirs.dir, 'push/from-client'), join(ours.dir, 'push/from-client'), `serve receiving ${round}`);
    const dt = join(work, 'serve-pull-rsyncd');
    const dOurs = join(work, 'serve-pull-ours');
    const gt = await run('rsync', ['-aXi', daemonUrl(theirs, 'push/from-client/'), `${dt}/`]);
    const go = await run('rsync', ['-aXi', daemonUrl(ours, 'push/from-client/'), `${dOurs}/`]);
    ok(gt, `pull from rsyncd (${round})`);
    ok(go, `pull from ours (${round})`);
    assert.equal(lines(go), lines(gt), `pull lines (${round})`);
    await assertSame(dt, dOurs, `serve sending ${round}`);
    await changeXattrs(src);
  }
});

test("rsync 3.2.7's client with -aX into lsyncd serve and back: as with rsyncd", async () => {
  const old = await oldRsync();
  const src = join(work, 'old-src');
  await mkdir(src);
  await makeXattrTree(src);
  ok(await run(old, ['-aX', `${src}/`, daemonUrl(theirs, 'push/old/')]), 'old rsync into rsyncd');
  ok(await run(old, ['-aX', `${src}/`, daemonUrl(ours, 'push/old/')]), 'old rsync into ours');
  await assertSame(join(theirs.dir, 'push/old'), join(ours.dir, 'push/old'), 'old client pushing');
  ok(await run(old, ['-aX', daemonUrl(ours, 'push/old/'), `${join(work, 'old-back')}/`]), 'old rsync from ours');
  await assertSame(join(ours.dir, 'push/old'), join(work, 'old-back'), 'old client pulling');
});

test('-X below protocol 30: refused in rsync words (exit 2), nothing sent', async () => {
  const src = join(work, 'p29');
  await mkdir(src);
  await makeXattrTree(src);
  const r = await run('rsync', ['-aX', '--protocol=29', `${src}/`, daemonUrl(theirs, 'push/p29/')]);
  const l = await lsyncd(['--once', '-aX', '--protocol=29', `${src}/`, daemonUrl(theirs, 'push/p29/')]);
  assert.is(r.status, 2, runText(r));
  assert.is(l.status, 2, runText(l));
  const words = '--xattrs requires protocol 30 or higher (negotiated 29).';
  assert.ok(r.stderr.toString().includes(words), runText(r));
  assert.ok(l.stderr.toString().includes(words), runText(l));
  const pulled = await lsyncd(['--once', '-aX', '--protocol=29', daemonUrl(theirs, 'src/'), `${join(work, 'p29-pull')}/`]);
  assert.is(pulled.status, 2, runText(pulled));
  assert.ok(pulled.stderr.toString().includes(words), runText(pulled));
});

test('the live mirror takes -X (test/live-xattrs.test.ts), and below protocol 30 stops at its start check in rsync\'s words', async () => {
  const l = await lsyncd(['-X', '--protocol=29', '--nodaemon', work, daemonUrl(theirs, 'push/live/')]);
  assert.is(l.status, 2, runText(l));
  assert.match(l.stderr.toString(), '--xattrs requires protocol 30 or higher (negotiated 29).');
});

test.run();
