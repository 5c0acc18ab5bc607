// `lsyncd serve` as sender tells the client what its walk could not list, as rsyncd does: an
// unreadable directory ("opendir ... failed", FERROR_XFER), a --files-from name that is missing
// ("link_stat ... failed"); exit 23. A stock rsync pulls the same tree from our daemon and from
// rsyncd (as root the module runs as nobody, so that the reads fail as a user's do), at protocols
// 32 and 29 (before 30 the client knows no MSG_ERROR: rsync sends MSG_ERROR_XFER), and both runs
// must read the same.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { run, type RunResult } from './helpers/cli.js';
import { setTimes } from './helpers/fstree.js';
import { runText, startBoth, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';

const ROOT = process.getuid?.() === 0;
const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
${ROOT ? 'uid = nobody\ngid = nogroup\n' : ''}
[nob]
\tpath = ${dir}/nob
`;

/** The module's tree: a file nobody reads, a directory nobody may open. */
async function fillModule(dir: string): Promise<void> {
  // nobody must reach the module (temp dirs are 0700).
  for (let d = dir; d !== dirname(d) && d !== tmpdir(); d = dirname(d)) await chmod(d, 0o755);
  const mod = join(dir, 'nob');
  await mkdir(join(mod, 'sub', 'locked'), { recursive: true });
  await writeFile(join(mod, 'sub', 'a.txt'), 'readable\n');
  await writeFile(join(mod, 'sub', 'locked', 'hidden'), 'never listed\n');
  await setTimes(mod);
  await chmod(mod, 0o755);
  await chmod(join(mod, 'sub'), 0o755);
  await chmod(join(mod, 'sub', 'locked'), 0o000);
}

let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;

test.before(async () => {
  ({ ours, theirs } = await startBoth(CONFIG));
  work = await mkdtemp(join(tmpdir(), 'lsyncd-walk-failures-'));
  for (const d of [ours, theirs]) await fillModule(d.dir);
  await writeFile(join(work, 'list'), 'sub/a.txt\nsub/missing\n');
});
test.after(async () => {
  // A user other than root removes the locked directory's contents only once it may open it.
  for (const d of [ours, theirs]) await chmod(join(d.dir, 'nob', 'sub', 'locked'), 0o700);
  await ours.stop();
  await theirs.stop();
  await rm(work, { recursive: true, force: true });
});

/** A stock rsync's pull of `path` with `extra` from each daemon, into fresh destinations. */
async function pullBoth(path: string, extra: string[]): Promise<{ o: RunResult; t: RunResult }> {
  const results: Partial<Record<'o' | 't', RunResult>> = {};
  for (const [key, d] of [['o', ours], ['t', theirs]] as const) {
    const dest = join(work, `${key}-${Math.random().toString(36).slice(2)}`);
    results[key] = await run('rsync', ['-rt', ...extra, `rsync://127.0.0.1:${d.port}/${path}`, `${dest}/`]);
  }
  return results as { o: RunResult; t: RunResult };
}

for (const [label, path, extra, words] of [
  ['the module root, protocol 32', 'nob/', [], ['opendir "sub/locked" (in nob) failed: Permission denied (13)']],
  ['a directory below it, protocol 32', 'nob/sub/', [], ['opendir "/sub/locked" (in nob) failed']],
  ['a directory below it, protocol 29', 'nob/sub', ['--protocol=29'], ['opendir "sub/locked" (in nob) failed']],
  ['--files-from with a missing name', 'nob/', ['--files-from', '@LIST'], ['link_stat "sub/missing" (in nob) failed: No such file or directory (2)']],
] as const) {
  test(`what the walk could not list: the client's words and exit code are rsyncd's (${label})`, async () => {
    const args = extra.map((a) => (a === '@LIST' ? join(work, 'list') : a));
    const { o, t } = await pullBoth(path, args);
    assert.is(t.status, 23, runText(t));
    for (const w of words) assert.ok(t.stderr.includes(w), `rsyncd's words "${w}":\n${runText(t)}`);
    assert.is(o.status, t.status, `ours:\n${runText(o)}\nrsyncd:\n${runText(t)}`);
    assert.is(o.stderr, t.stderr, `ours:\n${runText(o)}\nrsyncd:\n${runText(t)}`);
    assert.is(o.stdout.toString(), t.stdout.toString());
  });
}

test('our daemon logs them in the words it sent', async () => {
  assert.match(await ours.log(), 'rsync: [sender] opendir "');
});

test.run();
