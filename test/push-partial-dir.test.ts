// Our push leaves its relative --partial-dir out of its own file list, as rsync's client does
// (compat.c setup_protocol adds `- DIR/`, perishable from protocol 30, after the user's rules,
// applied to its walk and sent with the filter list): a source holding DIR/ directories (and a
// file named DIR, which the directory-only rule keeps), pushed with `rsync --partial-dir` and with
// ours into a real rsyncd over the same stale destination, must end as the same tree with the
// same exit code and itemized lines: DIR/ never sent, a DIR/ on the daemon kept by --delete, one
// under a directory being deleted gone from 30 on (perishable) and refused below it; the user's
// include before it wins; $RSYNC_PARTIAL_DIR with --partial does the same.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lsyncd, run, type RunResult } from './helpers/cli.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { setTime, setTimes } from './helpers/fstree.js';
import { existsSync } from 'node:fs';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

let daemon: TestDaemon;
let work: string;
let src: string;

test.before(async () => {
  daemon = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'lsyncd-push-partial-dir-'));
  src = join(work, 'src');
  await mkdir(join(src, 'sub/.rsync-partial'), { recursive: true });
  await mkdir(join(src, '.rsync-partial'));
  await mkdir(join(src, 'deep/x/.rsync-partial'), { recursive: true });
  await mkdir(join(src, 'other/.rp'), { recursive: true });
  await writeFile(join(src, 'a.txt'), 'a\n');
  await writeFile(join(src, 'sub/b.txt'), 'b\n');
  await writeFile(join(src, '.rsync-partial/half-of-a.txt'), 'half\n');
  await writeFile(join(src, 'sub/.rsync-partial/half-of-b.txt'), 'half\n');
  await writeFile(join(src, 'other/.rsync-partial'), 'a file of that name is not a directory\n');
  await writeFile(join(src, 'other/.rp/kept-unless-rp'), 'x\n');
  await setTimes(src);
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

const url = (path: string) => `rsync://127.0.0.1:${daemon.port}/push/${path}/`;

/** A stale destination: partial dirs beside kept files and inside a directory the source no longer has. */
async function staleDest(root: string, dir: string): Promise<void> {
  await rm(root, { recursive: true, force: true });
  await mkdir(join(root, 'sub', dir), { recursive: true });
  await mkdir(join(root, 'gone', dir), { recursive: true });
  await writeFile(join(root, 'sub', dir, 'stale-part'), 'stale\n');
  await writeFile(join(root, 'gone', dir, 'stale-part'), 'stale\n');
  await writeFile(join(root, 'gone/old.txt'), 'old\n');
  await setTimes(root);
}

const itemized = (r: RunResult) => r.stdout.toString().split('\n').filter((l) => /^([<>ch.*][fdLDS][.+?a-zA-Z]{9}|\*deleting) /.test(l)).sort();

const CASES: Array<{ name: string; args: string[]; dir: string; env?: NodeJS.ProcessEnv }> = [
  { name: '--partial-dir=.rsync-partial --delete', args: ['--partial-dir=.rsync-partial', '--delete'], dir: '.rsync-partial' },
  { name: '--partial-dir=.rsync-partial without --delete (no list sent, the walk still skips it)', args: ['--partial-dir=.rsync-partial'], dir: '.rsync-partial' },
  { name: "--include='.rsync-partial/' before it: the user's rule wins", args: ['--include=.rsync-partial/', '--partial-dir=.rsync-partial', '--delete'], dir: '.rsync-partial' },
  { name: '--partial with $RSYNC_PARTIAL_DIR=.rp', args: ['--partial', '--delete'], dir: '.rp', env: { RSYNC_PARTIAL_DIR: '.rp' } },
];

for (const protocol of [28, 29, 30, 31, 32]) {
  for (const c of CASES) {
    test(`push ${c.name} at protocol ${protocol}: ours as rsync's`, async () => {
      const tag = `${protocol}-${CASES.indexOf(c)}`;
      const push = daemon.modulePath('push');
      await staleDest(join(push, `rsync-${tag}`), c.dir);
      await staleDest(join(push, `ours-${tag}`), c.dir);
      const args = ['-a', '-i', `--protocol=${protocol}`, ...c.args, `${src}/`];
      const theirs = await run('rsync', [...args, url(`rsync-${tag}`)], c.env ?? {});
      // Our --once push deletes unless told not to (rsync's only with --delete).
      const mine = await lsyncd(['--once', ...args, ...(c.args.includes('--delete') ? [] : ['--no-delete']), url(`ours-${tag}`)], c.env ?? {});
      const what = `${c.name} at ${protocol}\nrsync: ${theirs.stderr}\nours: ${mine.stderr}`;
      assert.is(mine.status, theirs.status, what);
      assert.equal(itemized(mine), itemized(theirs), what);
      // Below 30 the rule is not perishable: gone/DIR/ is kept, and gone/ with it, its mtime the
      // time of the deletion in it (a different instant for each push): set alike before comparing.
      const deleting = c.args.includes('--delete');
      const kept = existsSync(join(push, `ours-${tag}`, 'gone', c.dir, 'stale-part'));
      assert.is(kept, !deleting || (protocol < 30 && !c.args.some((a) => a.startsWith('--include'))), `gone/${c.dir} kept: ${what}`);
      for (const side of ['rsync', 'ours']) if (existsSync(join(push, `${side}-${tag}`, 'gone'))) await setTime(join(push, `${side}-${tag}`, 'gone'));
      assert.equal(diffTrees(await snapshot(join(push, `rsync-${tag}`)), await snapshot(join(push, `ours-${tag}`))), [], what);
      // Not a comparison of two copies that both sent everything: the source's partial dirs stayed home.
      const sent = await snapshot(join(push, `ours-${tag}`));
      const included = c.args.some((a) => a.startsWith('--include'));
      assert.is(sent.has('other/.rp/kept-unless-rp'), c.dir !== '.rp', what);
      if (!included && c.dir === '.rsync-partial') assert.not.ok(sent.has('.rsync-partial/half-of-a.txt'), what);
      if (included) assert.ok(sent.has('.rsync-partial/half-of-a.txt'), what);
      assert.ok(sent.has('other/.rsync-partial'), `the file named like the dir is sent: ${what}`);
    });
  }
}

test.run();
