// --log-file / --log-file-format on --once runs (issue 13): the same pushes and pulls with rsync's
// client and ours against one rsyncd, the two log files compared line by line (the stamp and pid
// cut; the closing line's byte counts masked, as our wire differs: never incremental).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, mkdir, chmod, readFile, symlink, appendFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lsyncd, run } from './helpers/cli.js';
import { setTimes } from './helpers/fstree.js';
import { startDaemonWithConfig, type ConfiguredDaemon } from './helpers/daemon.js';
import { daemonUrl, runText } from './helpers/serve.js';

const ROOT = process.getuid?.() === 0;
let theirs: ConfiguredDaemon;
let work: string;

const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
${ROOT ? 'uid = root\ngid = root\n' : ''}
[push]
\tpath = ${dir}/push
\tread only = no
`;

test.before(async () => {
  theirs = await startDaemonWithConfig(CONFIG);
  await mkdir(join(theirs.dir, 'push'));
  if (ROOT) await chmod(theirs.dir, 0o755);
  work = await mkdtemp(join(tmpdir(), 'lsyncd-log-file-'));
});
test.after(async () => {
  await theirs?.stop();
  await rm(work, { recursive: true, force: true });
});

/** A log's lines without the stamp and pid; the closing line's byte counts masked. */
async function logLines(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const m = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[\d+\] (.*)$/.exec(l);
      assert.ok(m, `a log line: ${l}`);
      return m![1]!.replace(/^sent \S+ bytes {2}received \S+ bytes/, 'sent N bytes  received N bytes');
    });
}

async function tree(src: string): Promise<void> {
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'a.txt'), 'a\n'.repeat(100));
  await writeFile(join(src, 'sub/b.txt'), 'b\n');
  await writeFile(join(src, 'odd\tname'), 'tab in the name\n');
  await symlink('a.txt', join(src, 'link'));
  await setTimes(src);
}

async function change(src: string): Promise<void> {
  await appendFile(join(src, 'a.txt'), 'more\n');
  await unlink(join(src, 'sub/b.txt'));
  await writeFile(join(src, 'c.txt'), 'new\n');
  await chmod(join(src, 'c.txt'), 0o600);
  await setTimes(src);
}

for (const format of [undefined, '%o %n %b %l %i %M %L']) {
  const tag = format ? 'format' : 'default';

  test(`push --log-file${format ? ' --log-file-format' : ''}: the log rsync's client writes`, async () => {
    const src = join(work, `push-src-${tag}`);
    await tree(src);
    const logs = { rsync: join(work, `push-rsync-${tag}.log`), ours: join(work, `push-ours-${tag}.log`) };
    const formatArg = format ? [`--log-file-format=${format}`] : [];
    for (let round = 0; round < 2; round++) {
      if (round === 1) await change(src);
      const r = await run('rsync', ['-rlpt', '--delete', '--no-inc-recursive', `--log-file=${logs.rsync}`, ...formatArg, src + '/', daemonUrl(theirs, `push/${tag}-rsync/`)]);
      const o = await lsyncd(['--once', `--log-file=${logs.ours}`, ...formatArg, src + '/', daemonUrl(theirs, `push/${tag}-ours/`)]);
      assert.is(r.status, 0, runText(r));
      assert.is(o.status, 0, runText(o));
    }
    const want = await logLines(logs.rsync);
    assert.ok(want.length >= 8, want.join('\n'));
    // The daemon's deletion reaches rsync's sender between two requests, ours as it arrives: the
    // same lines, a deletion's place may differ (docs/options.md).
    const have = await logLines(logs.ours);
    assert.equal([...have].sort(), [...want].sort());
    assert.equal(have.filter((l) => !l.includes('deleting')), want.filter((l) => !l.includes('deleting')));
  });

  test(`pull --log-file${format ? ' --log-file-format' : ''} --delete: the log rsync's client writes`, async () => {
    const src = join(theirs.dir, 'push', `pull-${tag}`);
    await tree(src);
    const logs = { rsync: join(work, `pull-rsync-${tag}.log`), ours: join(work, `pull-ours-${tag}.log`) };
    const formatArg = format ? [`--log-file-format=${format}`] : [];
    for (let round = 0; round < 2; round++) {
      if (round === 1) await change(src);
      const url = daemonUrl(theirs, `push/pull-${tag}/`);
      const r = await run('rsync', ['-rlpt', '--delete', '--no-inc-recursive', `--log-file=${logs.rsync}`, ...formatArg, url, join(work, `pulled-rsync-${tag}`) + '/']);
      const o = await lsyncd(['--once', '--delete', `--log-file=${logs.ours}`, ...formatArg, url, join(work, `pulled-ours-${tag}`) + '/']);
      assert.is(r.status, 0, runText(r));
      assert.is(o.status, 0, runText(o));
    }
    const want = await logLines(logs.rsync);
    assert.ok(want.length >= 8, want.join('\n'));
    assert.equal(await logLines(logs.ours), want);
  });
}

test('--log-file-format without --log-file, and --log-file on the live mirror: refused with a clear line', async () => {
  const src = join(work, 'refused');
  await mkdir(src, { recursive: true });
  const alone = await lsyncd(['--once', '--log-file-format=%n', src + '/', daemonUrl(theirs, 'push/refused/')]);
  assert.is(alone.status, 1, runText(alone));
  assert.match(alone.stderr, '--log-file-format needs --log-file');
  const live = await lsyncd(['--nodaemon', `--log-file=${join(work, 'live.log')}`, src, daemonUrl(theirs, 'push/refused/')]);
  assert.is(live.status, 1, runText(live));
  assert.match(live.stderr, '--log-file is for --once runs');
});

test.run();
