// Our push with --files-from=:FILE (issue 13): the list is the daemon's, read by its receiver and
// forwarded to our sender after our filter list (below protocol 31 outside the frames), and only
// then does our walk start. Compared with rsync's own push with the same list, into rsyncd and
// into `lsyncd serve`, at protocols 28-32: the same exit code, the same itemized lines, the same
// tree; with -R (the default), --no-relative, --from0, a "/./" inside a name and a '#' line (a
// name once forwarded). A daemon list that cannot be read ends both pushes with the same code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, mkdir, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lsyncd, run, type RunResult } from './helpers/cli.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { setTimes } from './helpers/fstree.js';
import { startBoth, daemonUrl, runText, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';

const ROOT = process.getuid?.() === 0;
let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;
let src: string;

const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
${ROOT ? 'uid = root\ngid = root\n' : ''}
[w]
\tpath = ${dir}/w
\tread only = no
`;

test.before(async () => {
  ({ ours, theirs } = await startBoth(CONFIG));
  work = await mkdtemp(join(tmpdir(), 'lsyncd-push-files-from-'));
  src = join(work, 'src');
  await mkdir(join(src, 'sub/deep'), { recursive: true });
  await mkdir(join(src, 'other'), { recursive: true });
  await writeFile(join(src, 'a'), 'top file\n');
  await writeFile(join(src, '#c'), 'a name that looks like a comment\n');
  await writeFile(join(src, 'not-listed'), 'stays home\n');
  await writeFile(join(src, 'sub/b'), 'in sub\n');
  await writeFile(join(src, 'sub/deep/c'), 'deep file\n');
  await writeFile(join(src, 'other/d'), 'other\n');
  await setTimes(src);
  for (const d of [ours.dir, theirs.dir]) {
    await mkdir(join(d, 'w'), { recursive: true });
    if (ROOT) await chmod(d, 0o755);
    // The lists live in the module (the daemon reads them): comments, CRLF, a "/./", a directory.
    await writeFile(join(d, 'w', 'list.txt'), '# a comment\nsub/deep\n\na\r\nsub/./deep/c\nother/\n');
    await writeFile(join(d, 'w', 'list0.txt'), 'sub/b\0#c\0other/d\0');
  }
});
test.after(async () => {
  await ours?.stop();
  await theirs?.stop();
  await rm(work, { recursive: true, force: true });
});

const itemized = (r: RunResult) => r.stdout.toString().split('\n').filter((l) => /^[<>ch.*][fdLDS][.+?a-zA-Z]{9} /.test(l)).sort();
const both = (a: RunResult, b: RunResult) => `rsync: ${runText(a)}\nours: ${runText(b)}`;

const VARIANTS: Array<{ label: string; args: string[] }> = [
  { label: 'rel', args: ['--files-from=:list.txt'] },
  { label: 'norel', args: ['--files-from=:list.txt', '--no-relative'] },
  { label: 'from0', args: ['--files-from=:list0.txt', '--from0'] },
];

for (const [name, daemon] of [['rsyncd', () => theirs], ['lsyncd serve', () => ours]] as const) {
  for (const protocol of [28, 29, 30, 31, 32]) {
    test(`push --files-from=:FILE into ${name} at protocol ${protocol}: ours as rsync's`, async () => {
      const d = daemon();
      for (const v of VARIANTS) {
        const tag = `${v.label}-${protocol}`;
        const args = ['-i', `--protocol=${protocol}`, ...v.args, `${src}/`];
        // Our --once push is -rlpt, and deletes unless told not to.
        const theirsRun = await run('rsync', ['-rlpt', ...args, daemonUrl(d, `w/rsync-${tag}/`)]);
        const oursRun = await lsyncd(['--once', '--no-delete', ...args, daemonUrl(d, `w/ours-${tag}/`)]);
        const what = `${name} ${tag}\n${both(theirsRun, oursRun)}`;
        assert.is(oursRun.status, theirsRun.status, what);
        // A forwarded list keeps its '#' lines as names: both senders fail to find "# a comment" (23).
        assert.is(oursRun.status, v.label === 'from0' ? 0 : 23, what);
        assert.equal(itemized(oursRun), itemized(theirsRun), what);
        const expected = await snapshot(join(d.dir, 'w', `rsync-${tag}`));
        const actual = await snapshot(join(d.dir, 'w', `ours-${tag}`));
        assert.equal(diffTrees(expected, actual), [], what);
        // The daemon's list chose: the unlisted file stayed home, a listed one arrived.
        assert.not.ok(actual.has('not-listed'), what);
        assert.ok(actual.size > 1, what);
      }
    });
  }
}

test('a list the daemon cannot open ends our push as it ends rsync\'s', async () => {
  for (const d of [theirs, ours]) {
    const args = ['--files-from=:missing.txt', `${src}/`];
    const theirsRun = await run('rsync', ['-rlpt', ...args, daemonUrl(d, 'w/rsync-missing/')]);
    const oursRun = await lsyncd(['--once', '--no-delete', ...args, daemonUrl(d, 'w/ours-missing/')]);
    assert.is(theirsRun.status !== 0, true, runText(theirsRun));
    assert.is(oursRun.status, theirsRun.status, both(theirsRun, oursRun));
    // rsync 3.5 itself reports rsyncd's failure as a broken stream ("unexpected tag -7", exit 12).
    assert.ok(oursRun.stderr.length > 0, both(theirsRun, oursRun));
  }
});

test('--files-from=:- is refused as rsync refuses it', async () => {
  const r = await lsyncd(['--once', '--files-from=:-', `${src}/`, daemonUrl(theirs, 'w/x/')]);
  assert.is(r.status, 1, runText(r));
  assert.match(r.stderr.toString(), 'Invalid --files-from remote filename');
});

test.run();
