// A selective push (one live-mirror batch in one session): only the listed paths travel, each
// with its parent directories; new directories with their whole subtree; deleted paths as
// --delete-missing-args entries. Afterwards the mirror equals what `rsync -a --delete` makes of
// the source (module `ref`), apart from what was planted on the mirror outside the selection,
// which proves nothing else was touched.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, mkdir, chmod, symlink, unlink, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, rsyncVersion, type TestDaemon } from './helpers/daemon.js';
import { run } from './helpers/cli.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { makeTree, setTimes, setTime, pseudoRandom, T0 } from './helpers/fstree.js';
import { push, primeSession, type PushOptions } from '../src/transfer/push.js';
import { openModule } from '../src/transfer/client.js';
import { DEFAULT_TRANSFER } from '../protocol/args.js';
import { RsyncError } from '../protocol/errors.js';
import type { SelectionItem } from '../src/transfer/scan.js';

let daemon: TestDaemon;
let work: string;

test.before(async () => {
  daemon = await startDaemon({ extraModules: [{ name: 'ref', comment: 'pushed by rsync', settings: { 'read only': false } }] });
  work = await mkdtemp(join(tmpdir(), 'lsyncd-selection-'));
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

const url = (module: string, path: string) => `rsync://127.0.0.1:${daemon.port}/${module}/${path}/`;
const transfer = { ...DEFAULT_TRANSFER, modifyWindow: -1 };

function ours(source: string, name: string, extra: Partial<PushOptions> = {}) {
  return push({ source: `${source}/`, target: { host: '127.0.0.1', port: daemon.port, module: 'push', path: `${name}/` }, transfer, session: {}, ...extra });
}

async function rsyncInto(source: string, name: string, protocol = rsyncVersion().protocol): Promise<void> {
  const ref = await run('rsync', ['-rlpt', '--delete', `--protocol=${protocol}`, `${source}/`, url('ref', name)]);
  assert.is(ref.status, 0, `rsync: ${ref.stderr}`);
}

const items = (spec: Array<[string, boolean]>): SelectionItem[] => spec.map(([path, recurse]) => ({ path: Buffer.from(path), recurse }));

for (const protocol of [30, 31, 32]) {
  test(`protocol ${protocol}: a batch of changes in one session; nothing outside the selection is touched`, async () => {
    const name = `sel${protocol}`;
    const src = join(work, name);
    await makeTree(src);
    await mkdir(join(src, 'old/inner'), { recursive: true });
    await writeFile(join(src, 'old/inner/f'), 'to be deleted with its directory\n');
    await writeFile(join(src, 'sub/gone.txt'), 'to be deleted\n');
    await writeFile(join(src, 'swap'), 'a file that becomes a directory\n');
    await setTimes(src);
    const session = { protocol };
    const first = await ours(src, name, { session });
    assert.is(first.exitCode, 0);
    // (rsync leaves the mtime of a destination directory it creates as it is: start from a copy.)
    await rsyncInto(src, name, Math.min(protocol, rsyncVersion().protocol));
    const mirror = join(daemon.modulePath('push'), name);

    // Behind our back, on the mirror: an extra file and a tampered one, outside the selection.
    await writeFile(join(mirror, 'sub/planted'), 'not in the source\n');
    await writeFile(join(mirror, 'a.txt'), 'tampered\n');

    // The changes of one batch.
    await writeFile(join(src, 'sub/deeper/c.bin'), pseudoRandom(6000, 9)); // modified
    await mkdir(join(src, 'new/dir/deep'), { recursive: true }); // a new subtree
    await writeFile(join(src, 'new/dir/deep/x'), 'new\n');
    await writeFile(join(src, 'new/top.txt'), 'new too\n');
    await unlink(join(src, 'sub/gone.txt')); // deleted file
    await rm(join(src, 'old'), { recursive: true }); // deleted tree
    await chmod(join(src, 'private'), 0o750); // attributes of a directory
    await rm(join(src, 'swap'));
    await mkdir(join(src, 'swap')); // type swap
    await writeFile(join(src, 'swap/inside'), 'now a directory\n');
    await unlink(join(src, 'link'));
    await symlink('sub/b.txt', join(src, 'link')); // a symlink retargeted
    for (const p of ['sub/deeper/c.bin', 'new/dir/deep/x', 'new/top.txt', 'swap/inside', 'new/dir/deep', 'new/dir', 'new', 'swap', 'link']) await setTime(join(src, p), T0 + 60);
    await setTime(join(src, 'sub'), T0 + 61); // what the deletion did to its parent
    const selection = items([
      ['sub/deeper/c.bin', false],
      ['new', true],
      ['sub/gone.txt', false],
      ['old/inner/f', false], // below a deleted directory: the deletion is at its top ("old")
      ['old', false],
      ['private', false],
      ['swap', true],
      ['link', false],
    ]);
    const got = await ours(src, name, { session, selection });
    assert.is(got.exitCode, 0);
    assert.is(got.protocol, protocol);
    const listed = got.entries.map((e) => `${e.name.toString()}${e.mode === 0 ? ' (missing)' : ''}`).sort();
    assert.equal(listed, [
      '.', 'link', 'new', 'new/dir', 'new/dir/deep', 'new/dir/deep/x', 'new/top.txt', 'old (missing)', 'private',
      'sub', 'sub/deeper', 'sub/deeper/c.bin', 'sub/gone.txt (missing)', 'swap', 'swap/inside',
    ]);

    await rsyncInto(src, name, Math.min(protocol, rsyncVersion().protocol));
    const planted = (d: string) => d.startsWith('"a.txt"') || d.includes('sub/planted');
    // Against rsync's result (whose top directory's mtime rsync 3.5 does not always restore after
    // deleting in it, so the top's times are left out here) and against the source itself.
    const diff = diffTrees(await snapshot(join(daemon.modulePath('ref'), name)), await snapshot(mirror));
    assert.equal(diff.filter((d) => !planted(d)), [], diff.join('\n'));
    const seconds = async (dir: string) => (await stat(dir, { bigint: true })).mtimeNs / 1_000_000_000n;
    assert.is(await seconds(mirror), await seconds(src), "the top directory's mtime (changed by the deletion in it)");
    assert.ok(diff.some((d) => d.includes('sub/planted')), 'the planted file outside the selection is still there');
    assert.is(await readFile(join(mirror, 'a.txt'), 'utf8'), 'tampered\n', 'a file outside the selection was not sent');
  });
}

test('below protocol 30 a selective push is refused before anything is sent (no content-dir flag)', async () => {
  const src = join(work, 'old-protocol');
  await makeTree(src);
  try {
    await ours(src, 'old-protocol', { session: { protocol: 29 }, selection: items([['a.txt', false]]) });
    assert.unreachable('protocol 29 took a selection');
  } catch (e) {
    assert.instance(e, RsyncError);
    assert.is((e as RsyncError).code, 'ERR_RSYNC_SELECTION_PROTOCOL');
  }
  const mirror = join(daemon.modulePath('push'), 'old-protocol');
  assert.is(await readFile(join(mirror, 'a.txt')).catch(() => null), null);
});

test('without --delete, missing paths are left on the mirror (no --delete-missing-args)', async () => {
  const src = join(work, 'keep');
  await makeTree(src);
  assert.is((await ours(src, 'keep')).exitCode, 0);
  await unlink(join(src, 'a.txt'));
  const got = await ours(src, 'keep', { transfer: { ...transfer, delete: false }, selection: items([['a.txt', false]]) });
  assert.is(got.exitCode, 0);
  assert.equal(got.entries.map((e) => e.name.toString()), ['.'], 'just the parent directory (its mtime changed)');
  assert.ok((await readFile(join(daemon.modulePath('push'), 'keep/a.txt'))).length > 0);
});

test('a primed session (arguments and setup done ahead) carries the next selective push; an empty one ends it cleanly', async () => {
  const src = join(work, 'primed');
  await makeTree(src);
  assert.is((await ours(src, 'primed')).exitCode, 0);
  const target = { host: '127.0.0.1', port: daemon.port, module: 'push', path: 'primed/' };
  const prime = async () => primeSession(await openModule({ host: '127.0.0.1', port: daemon.port }, 'push'), { transfer, target, selection: [] });

  let primed = await prime();
  await new Promise((r) => setTimeout(r, 50)); // the daemon waits for our file list meanwhile
  await writeFile(join(src, 'sub/b.txt'), 'changed while the session waited\n');
  const got = await ours(src, 'primed', { primed, selection: items([['sub/b.txt', false]]) });
  assert.is(got.exitCode, 0);
  assert.is(await readFile(join(daemon.modulePath('push'), 'primed/sub/b.txt'), 'utf8'), 'changed while the session waited\n');

  // Primed for other arguments (here: no --delete): closed, and the push connects afresh.
  primed = await prime();
  const other = await ours(src, 'primed', { primed, transfer: { ...transfer, delete: false }, selection: items([['a.txt', false]]) });
  assert.is(other.exitCode, 0);
  assert.ok(primed.session.socket.socket.destroyed);

  // The polite end of an unused primed session: an empty file list, exit 0, nothing touched.
  const before = await snapshot(join(daemon.modulePath('push'), 'primed'), { rootTimes: true });
  const noop = await ours(src, 'primed', { primed: await prime(), selection: [] });
  assert.is(noop.exitCode, 0);
  assert.is(noop.entries.length, 0);
  assert.equal(diffTrees(before, await snapshot(join(daemon.modulePath('push'), 'primed'), { rootTimes: true })), []);
});

test.run();
