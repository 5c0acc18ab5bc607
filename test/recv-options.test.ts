// The receiving side's transfer options (issue 13), each checked against rsync: the same
// destination state and the same source, synced with `rsync OPTION` and with ours, must leave the
// same trees, exit codes and --stats counts (literal and matched data: the proof that --inplace
// reuses blocks in place and --append sends only the tail). Both places we receive: our pull from
// a real rsyncd (against rsync's own pull), and a stock rsync pushing into `lsyncd serve` (against
// the same push into rsyncd). Options: --max-size, --min-size, --inplace, --append,
// --append-verify, -b, --suffix, --backup-dir (with --delete: deletions are kept too), and
// --partial (a transfer interrupted, then resumed from what it kept).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rm, writeFile, mkdir, readFile, symlink } from 'node:fs/promises';
import { DestTree, UnsafePathError } from '../src/transfer/dest-tree.js';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { interrupted, tempSize } from './helpers/interrupt.js';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { CLI, lsyncd, run, type RunResult } from './helpers/cli.js';
import { snapshot, diffTrees, type Tree } from './helpers/tree.js';
import { pseudoRandom, setTimes, T0 } from './helpers/fstree.js';
import { startOptionRig, type OptionRig, daemonUrl, runText, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';
import { serverArgs, DEFAULT_TRANSFER } from '../protocol/args.js';
import { parseServerArgs } from '../protocol/server-args.js';

let daemon: TestDaemon;
let rig: OptionRig;
let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;


test.before(async () => {
  daemon = await startDaemon({ extraModules: [{ name: 'src', comment: 'pull source', settings: { 'read only': true } }] });
  rig = await startOptionRig('recvopt', { push: 'rw' });
  ({ ours, theirs, work } = rig);
});
test.after(async () => {
  await daemon?.stop();
  await rig?.stop();
});

const STAT_LABELS = ['Number of files', 'Number of created files', 'Number of deleted files', 'Number of regular files transferred', 'Total transferred file size', 'Literal data', 'Matched data'];

function statNumber(output: Buffer | string, label: string): number {
  const m = new RegExp(`${label}: ([\\d,]+)`).exec(output.toString());
  if (!m) throw new Error(`no "${label}" in output:\n${output}`);
  return Number(m[1]!.replace(/,/g, ''));
}

function sameStats(ref: RunResult, got: RunResult, what: string): void {
  for (const label of STAT_LABELS) {
    const line = (text: string) => text.split('\n').find((l) => l.startsWith(label + ':'));
    const theirsLine = line(ref.stdout.toString());
    if (theirsLine !== undefined) assert.is(line(got.stdout.toString()), theirsLine, `${label} (${what})\n--- rsync:\n${ref.stdout}\n--- ours:\n${got.stdout}`);
  }
}

/** The source: a big file, a log that grows, files of several sizes, a subdirectory. */
async function source(src: string): Promise<void> {
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'big.bin'), pseudoRandom(300_000, 7));
  await writeFile(join(src, 'grow.log'), 'a line of the log\n'.repeat(4000));
  await writeFile(join(src, 'small.txt'), 'tiny\n');
  await writeFile(join(src, 'mid.txt'), 'm'.repeat(3000));
  await writeFile(join(src, 'sub/c.txt'), 'c in sub, new version\n');
  await setTimes(src);
}

/** The destination before the sync: older versions (a changed block, a shorter log), an extra file. */
async function staleDest(dest: string): Promise<void> {
  await mkdir(join(dest, 'sub'), { recursive: true });
  const big = pseudoRandom(300_000, 7);
  big.fill(0x55, 150_000, 152_000); // one changed region in the middle
  await writeFile(join(dest, 'big.bin'), big);
  await writeFile(join(dest, 'grow.log'), 'a line of the log\n'.repeat(1500));
  await writeFile(join(dest, 'small.txt'), 'was bigger before\n');
  await writeFile(join(dest, 'sub/c.txt'), 'c in sub\n');
  await writeFile(join(dest, 'sub/extra.txt'), 'not in the source\n');
  await setTimes(dest, T0 - 100);
}

/** Directory mtimes of a backup dir are the time the backups landed: not compared. */
function withoutDirTimes(tree: Tree): Tree {
  for (const node of tree.values()) if (node.type === 'dir') node.mtimeNs = 0n;
  return tree;
}

async function assertSameTrees(a: string, b: string, message: string, loose = false): Promise<void> {
  const want = await snapshot(a);
  const have = await snapshot(b);
  const diff = loose ? diffTrees(withoutDirTimes(want), withoutDirTimes(have)) : diffTrees(want, have);
  assert.equal(diff, [], `${message}\n${diff.slice(0, 20).join('\n')}`);
}

/**
 * The cases: options, and the directory beside a pull's destination to compare too (a backup
 * dir: rsyncd sanitizes a pushing client's `../bak` to `bak` inside the destination, and so do
 * we). Directory mtimes are not compared where rsync leaves them to the clock: -b without a
 * backup dir implies -O, and a backup dir's directories change as backups land in them.
 */
const CASES: Array<{ name: string; options: string[]; beside?: string }> = [
  { name: 'max-size', options: ['--max-size=4k'] },
  { name: 'min-size', options: ['--min-size=1K'] },
  { name: 'size-range', options: ['--min-size=10', '--max-size=100000'] },
  { name: 'inplace', options: ['--inplace'] },
  { name: 'append', options: ['--append'] },
  { name: 'append-verify', options: ['--append-verify'] },
  { name: 'backup', options: ['-b', '--delete'] },
  { name: 'suffix', options: ['-b', '--suffix=.old', '--delete'] },
  { name: 'backup-dir', options: ['--backup-dir=../bak', '--delete'], beside: 'bak' },
  { name: 'backup-dir-suffix', options: ['--backup-dir=../bak', '--suffix=.v1', '--delete'], beside: 'bak' },
  { name: 'inplace-backup', options: ['--inplace', '-b'] },
];

for (const { name, options, beside } of CASES) {
  test(`pull ${options.join(' ')}: as rsync's pull from rsyncd`, async () => {
    const src = join(daemon.modulePath('src'), name);
    await rm(src, { recursive: true, force: true });
    await source(src);
    const ref = join(work, 'pull-ref', name);
    const got = join(work, 'pull-ours', name);
    for (const root of [ref, got]) {
      await rm(root, { recursive: true, force: true });
      await staleDest(join(root, 'dest'));
    }
    const url = `rsync://127.0.0.1:${daemon.port}/src/${name}/`;
    const r = await run('rsync', ['-rlpt', ...options, '--stats', '--no-inc-recursive', url, join(ref, 'dest') + '/']);
    const o = await lsyncd(['--once', '--stats', '--timeout', '20', ...options, url, join(got, 'dest') + '/']);
    assert.is(r.status, 0, runText(r));
    assert.is(o.status, 0, runText(o));
    sameStats(r, o, options.join(' '));
    await assertSameTrees(join(ref, 'dest'), join(got, 'dest'), `pull ${options.join(' ')}`, options.includes('-b'));
    if (beside) await assertSameTrees(join(ref, beside), join(got, beside), `pull ${options.join(' ')}: ${beside}`, true);
  });

  test(`push ${options.join(' ')}: stock rsync into lsyncd serve as into rsyncd`, async () => {
    const src = join(work, 'push-src', name);
    await rm(src, { recursive: true, force: true });
    await source(src);
    for (const d of [ours, theirs]) {
      await rm(join(d.dir, 'push', name), { recursive: true, force: true });
      await staleDest(join(d.dir, 'push', name, 'dest'));
    }
    const args = (d: { port: number }) => ['-rlpt', ...options, '--stats', '--no-inc-recursive', src + '/', daemonUrl(d, `push/${name}/dest/`)];
    const o = await run('rsync', args(ours));
    const t = await run('rsync', args(theirs));
    assert.is(t.status, 0, runText(t));
    assert.is(o.status, t.status, `ours: ${runText(o)}\nrsyncd: ${runText(t)}`);
    sameStats(t, o, options.join(' '));
    await assertSameTrees(join(theirs.dir, 'push', name, 'dest'), join(ours.dir, 'push', name, 'dest'), `push ${options.join(' ')}`, options.includes('-b') || !!beside);
  });
}

test('--inplace and --append send only what changed: literal data from the stats', async () => {
  const name = 'proof';
  const src = join(daemon.modulePath('src'), name);
  await rm(src, { recursive: true, force: true });
  await source(src);
  const dest = join(work, 'proof', 'dest');
  await rm(join(work, 'proof'), { recursive: true, force: true });
  await staleDest(dest);
  const url = `rsync://127.0.0.1:${daemon.port}/src/${name}/big.bin`;
  const inplace = await lsyncd(['--once', '--stats', '--inplace', url, dest + '/']);
  assert.is(inplace.status, 0, runText(inplace));
  // One changed 2,000-byte region of 300,000: a block or two of literal data, the rest matched in place.
  assert.ok(statNumber(inplace.stdout, 'Literal data') < 10_000, inplace.stdout.toString());
  assert.ok(statNumber(inplace.stdout, 'Matched data') > 280_000, inplace.stdout.toString());
  const log = `rsync://127.0.0.1:${daemon.port}/src/${name}/grow.log`;
  const appended = await lsyncd(['--once', '--stats', '--append', log, dest + '/']);
  assert.is(appended.status, 0, runText(appended));
  // Only the 2,500 lines past the 1,500 already here travel.
  assert.is(statNumber(appended.stdout, 'Literal data'), 2500 * 18);
  assert.is(statNumber(appended.stdout, 'Matched data'), 0);
});

test('--partial: a pull cut short keeps what arrived (mtime 0) and the next run resumes from it, as rsync', async () => {
  const name = 'partial';
  const src = join(daemon.modulePath('src'), name);
  await rm(src, { recursive: true, force: true });
  await mkdir(src, { recursive: true });
  const SIZE = 96 * 1024 * 1024;
  await writeFile(join(src, 'big.bin'), randomBytes(SIZE));
  await setTimes(src);
  const url = `rsync://127.0.0.1:${daemon.port}/src/${name}/`;
  for (const who of ['rsync', 'lsyncd'] as const) {
    const dest = join(work, 'partial', who);
    await rm(dest, { recursive: true, force: true });
    await mkdir(dest, { recursive: true });
    const ready = () => tempSize(dest, 'big.bin') >= 8 * 1024 * 1024;
    const { status, stderr } =
      who === 'rsync'
        ? await interrupted('rsync', ['-rlpt', '--partial', url, dest + '/'], ready)
        : await interrupted(process.execPath, [CLI, '--once', '--partial', url, dest + '/'], ready);
    assert.is(status, 20, `${who}: ${stderr}`);
    // What arrived is the file now, dated 1970 so that nothing takes it for finished.
    const kept = statSync(join(dest, 'big.bin'));
    assert.ok(kept.size >= 8 * 1024 * 1024 && kept.size < SIZE, `${who}: kept ${kept.size}`);
    assert.is(Math.floor(kept.mtimeMs / 1000), 0, who);
    const keptSize = kept.size;
    // The next run uses it as the basis: what is there already comes back as matched data.
    const resumed = who === 'rsync' ? await run('rsync', ['-rlpt', '--partial', '--stats', url, dest + '/']) : await lsyncd(['--once', '--partial', '--stats', url, dest + '/']);
    assert.is(resumed.status, 0, runText(resumed));
    const matched = statNumber(resumed.stdout, 'Matched data');
    const literal = statNumber(resumed.stdout, 'Literal data');
    // (rsync's own resume leaves a few hundred KiB of the kept part to literal data too.)
    assert.ok(matched >= keptSize * 0.9, `${who}: matched ${matched} of ${keptSize} kept`);
    assert.is(matched + literal, SIZE, who);
    assert.ok((await readFile(join(dest, 'big.bin'))).equals(await readFile(join(src, 'big.bin'))), who);
  }
});

test('--partial: a stock push cut short leaves lsyncd serve what rsyncd keeps, and resumes from it', async () => {
  const name = 'partial-push';
  const src = join(work, 'push-src', name);
  await rm(src, { recursive: true, force: true });
  await mkdir(src, { recursive: true });
  const SIZE = 96 * 1024 * 1024;
  await writeFile(join(src, 'big.bin'), randomBytes(SIZE));
  await setTimes(src);
  for (const d of [theirs, ours]) {
    const dest = join(d.dir, 'push', name);
    await rm(dest, { recursive: true, force: true });
    await mkdir(dest, { recursive: true });
    const url = daemonUrl(d, `push/${name}/`);
    const { status, stderr } = await interrupted('rsync', ['-rlpt', '--partial', src + '/', url], () => tempSize(dest, 'big.bin') >= 8 * 1024 * 1024);
    assert.is(status, 20, stderr);
    const who = d === ours ? 'lsyncd serve' : 'rsyncd';
    // The daemon sees the connection end; what arrived is kept (rsyncd may still be finishing it).
    let kept = statSync(join(dest, 'big.bin'), { throwIfNoEntry: false });
    for (let i = 0; i < 200 && (!kept || tempSize(dest, 'big.bin') > 0); i++) {
      await new Promise((r) => setTimeout(r, 25));
      kept = statSync(join(dest, 'big.bin'), { throwIfNoEntry: false });
    }
    assert.ok(kept && kept.size > 0 && kept.size < SIZE, `${who}: kept ${kept?.size}`);
    assert.is(Math.floor(kept!.mtimeMs / 1000), 0, who);
    const resumed = await run('rsync', ['-rlpt', '--partial', '--stats', src + '/', url]);
    assert.is(resumed.status, 0, runText(resumed));
    assert.ok(statNumber(resumed.stdout, 'Matched data') >= kept!.size * 0.9, `${who}: ${resumed.stdout}`);
    assert.ok((await readFile(join(dest, 'big.bin'))).equals(await readFile(join(src, 'big.bin'))), who);
  }
});

test('serverArgs sends the receiving options as rsync server_options does, and the daemon parses them back', () => {
  const args = serverArgs(
    { ...DEFAULT_TRANSFER, backup: true, backupDir: 'old versions', suffix: '.bak', maxSize: 4096, minSize: 10, append: 2 },
    31,
    'mod/path',
  );
  assert.ok(args[1]!.startsWith('-b'), args.join(' '));
  assert.ok(args.includes('--backup-dir') && args[args.indexOf('--backup-dir') + 1] === 'old\\ versions', args.join(' '));
  assert.ok(args.includes('--suffix=.bak'), args.join(' '));
  assert.ok(args.includes('--max-size=4096') && args.includes('--min-size=10'), args.join(' '));
  assert.is(args.filter((a) => a === '--append').length, 2);
  const parsed = parseServerArgs(args, 31);
  assert.is(parsed.backup, true);
  assert.is(parsed.backupDir, 'old versions');
  assert.is(parsed.suffix, '.bak');
  assert.is(parsed.maxSize, '4096');
  assert.is(parsed.append, 2);
  assert.is(parsed.inplace, true);
  // The default suffix is not sent; --inplace alone is.
  const plain = serverArgs({ ...DEFAULT_TRANSFER, backup: true, suffix: '~', inplace: true }, 31, 'mod');
  assert.not.ok(plain.some((a) => a.startsWith('--suffix')), plain.join(' '));
  assert.ok(plain.includes('--inplace'));
});

test('our push with -b --delete and --max-size into rsyncd: as rsync pushes them, backups kept across runs', async () => {
  const name = 'our-push';
  const src = join(work, 'push-src', name);
  await rm(src, { recursive: true, force: true });
  await source(src);
  const options = ['-b', '--delete', '--max-size=100000'];
  const ref = join(theirs.dir, 'push', `${name}-ref`);
  const got = join(theirs.dir, 'push', `${name}-ours`);
  for (const dest of [ref, got]) {
    await rm(dest, { recursive: true, force: true });
    await staleDest(dest);
  }
  const both = async () => {
    const r = await run('rsync', ['-rlpt', ...options, '--stats', '--no-inc-recursive', src + '/', daemonUrl(theirs, `push/${name}-ref/`)]);
    const o = await lsyncd(['--once', '--stats', ...options, src + '/', daemonUrl(theirs, `push/${name}-ours/`)]);
    assert.is(r.status, 0, runText(r));
    assert.is(o.status, 0, runText(o));
    sameStats(r, o, options.join(' '));
    await assertSameTrees(ref, got, `our push ${options.join(' ')}`, true);
  };
  await both();
  // A second run after a deletion at the source: the backups of the first run stay (protected).
  await rm(join(src, 'mid.txt'));
  await both();
  assert.ok(existsSync(join(got, 'small.txt~')) && existsSync(join(got, 'mid.txt~')));
});

test('DestTree backups: a backup dir outside the module, through a symlink, or the destination itself with no suffix is refused', async () => {
  const root = join(work, 'confine');
  await rm(root, { recursive: true, force: true });
  await mkdir(join(root, 'module', 'dest'), { recursive: true });
  await mkdir(join(root, 'elsewhere'));
  await writeFile(join(root, 'module', 'dest', 'f.txt'), 'old\n');
  const attrs = { perms: true, times: true, owner: false, group: false, umask: 0o022, modifyWindow: 0 };
  const dest = join(root, 'module', 'dest');
  const confineBasisTo = join(root, 'module');
  assert.throws(() => new DestTree(dest, attrs, { confineBasisTo, backup: { dir: '../../elsewhere', suffix: '' } }), (e: unknown) => e instanceof UnsafePathError);
  assert.throws(() => new DestTree(dest, attrs, { backup: { dir: '.', suffix: '' } }), /--suffix cannot be empty when --backup-dir is the same as the dest dir/);
  assert.throws(() => new DestTree(dest, attrs, { backup: { suffix: 'a/b' } }), /--suffix cannot contain slashes/);
  // A symlink where the backup dir should be: the backup is refused and the file stays.
  await symlink(join(root, 'elsewhere'), join(root, 'module', 'bak'));
  const tree = new DestTree(dest, attrs, { confineBasisTo, backup: { dir: '../bak', suffix: '' } });
  let refused = false;
  await tree.remove(Buffer.from('f.txt')).catch((e: unknown) => (refused = e instanceof UnsafePathError));
  assert.ok(refused);
  assert.ok(existsSync(join(dest, 'f.txt')));
  assert.equal(readdirSync(join(root, 'elsewhere')), []);
});

test('a bad --max-size is a usage error before anything moves', async () => {
  const r = await lsyncd(['--once', '--max-size=12q', `rsync://127.0.0.1:${daemon.port}/src/`, join(work, 'never') + '/']);
  assert.is(r.status, 1, runText(r));
  assert.match(r.stderr.toString(), /--max-size=12q is invalid/);
});

test.run();
