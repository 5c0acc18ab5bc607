// What lsyncd serve refuses rather than ignores (issue 13, src/serve/refused-options.ts): a stock
// rsync pushing or pulling with each option gets exit 4 and a line naming it (-X is served both
// ways, -A when sending: test/xattrs.test.ts, test/acls.test.ts), and the module is left
// untouched; options with no effect on the result stay accepted and leave the tree rsyncd leaves.
// (-O, -J, -E and -K are served: test/recv-times.test.ts, test/recv-keep-dirlinks.test.ts.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, mkdir, chmod, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lsyncd, run } from './helpers/cli.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { setTimes } from './helpers/fstree.js';
import { startBoth, daemonUrl, runText, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';

const ROOT = process.getuid?.() === 0;
let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;

const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
${ROOT ? 'uid = root\ngid = root\n' : ''}
[m]
\tpath = ${dir}/m
\tread only = no
`;

test.before(async () => {
  ({ ours, theirs } = await startBoth(CONFIG));
  for (const dir of [ours.dir, theirs.dir]) {
    await mkdir(join(dir, 'm'));
    if (ROOT) await chmod(dir, 0o755);
  }
  work = await mkdtemp(join(tmpdir(), 'lsyncd-serve-refused-'));
  await mkdir(join(work, 'src/sub'), { recursive: true });
  await writeFile(join(work, 'src/a.txt'), 'a\n');
  await writeFile(join(work, 'src/sub/b.txt'), 'b\n');
  await setTimes(join(work, 'src'));
  for (const dir of [ours.dir, theirs.dir]) {
    await mkdir(join(dir, 'm/pull/sub'), { recursive: true });
    await mkdir(join(dir, 'm/scratch')); // -T's directory (a missing one is refused, by rsyncd and by us: test/recv-delay)
    await writeFile(join(dir, 'm/pull/a.txt'), 'a\n');
    await writeFile(join(dir, 'm/pull/sub/b.txt'), 'b\n');
    await setTimes(join(dir, 'm/pull'));
  }
});
test.after(async () => {
  await ours?.stop();
  await theirs?.stop();
  await rm(work, { recursive: true, force: true });
});

const REFUSED: Array<{ options: string[]; push?: string; pull?: string }> = [
  { options: ['--atimes'], push: '--atimes (-U)', pull: '--atimes (-U)' },
  { options: ['--remove-source-files'], push: '--remove-source-files', pull: '--remove-source-files' },
  { options: ['--copy-devices'], pull: '--copy-devices' },
];

for (const { options, push, pull } of REFUSED) {
  if (push) {
    test(`a push with ${options.join(' ')} into lsyncd serve: refused (exit 4, "${push}"), nothing written`, async () => {
      const dest = `push-${options.join('').replace(/[^a-zA-Z]/g, '')}`;
      const r = await run('rsync', ['-rlt', ...options, join(work, 'src') + '/', daemonUrl(ours, `m/${dest}/`)]);
      assert.is(r.status, 4, runText(r));
      assert.match(r.stderr, push);
      const made = await readdir(join(ours.dir, 'm')).then((names) => names.includes(dest));
      assert.not.ok(made && (await readdir(join(ours.dir, 'm', dest))).length > 0, 'nothing written');
    });
  }
  if (pull) {
    test(`a pull with ${options.join(' ')} from lsyncd serve: refused (exit 4, "${pull}"), nothing removed`, async () => {
      const dest = join(work, `pulled-${options.join('').replace(/[^a-zA-Z]/g, '')}`);
      const r = await run('rsync', ['-rlt', ...options, daemonUrl(ours, 'm/pull/'), dest + '/']);
      assert.is(r.status, 4, runText(r));
      assert.match(r.stderr, pull);
      assert.equal((await readdir(join(ours.dir, 'm/pull'))).sort(), ['a.txt', 'sub']);
    });
  }
}

// Accepted: the same push into ours and into rsyncd leaves the same tree (-T and --delay-updates
// are done as rsyncd does them, checked further in test/recv-delay; the others have no effect).
// (-M--fake-super into a module without `fake super` is rsyncd's --super: test/serve-fake-super.)
for (const options of [['-T', 'scratch'], ['--delay-updates'], ['--preallocate'], ['-B', '2048'], ['--remote-option=--fake-super']]) {
  test(`a push with ${options.join(' ')}: accepted, the tree rsyncd leaves`, async () => {
    const dest = `accepted-${options[0]!.replace(/[^a-zA-Z]/g, '')}`;
    for (const d of [ours, theirs]) {
      const args = options.map((o) => (o === 'scratch' ? '/scratch' : o));
      const r = await run('rsync', ['-rlt', ...args, join(work, 'src') + '/', daemonUrl(d, `m/${dest}/`)]);
      assert.is(r.status, 0, runText(r));
    }
    const diff = diffTrees(await snapshot(join(theirs.dir, 'm', dest)), await snapshot(join(ours.dir, 'm', dest)));
    assert.equal(diff, []);
  });
}

// Our client: the same options refused by name (exit 1), before any connection. (-E, -O, -J, -K,
// --delay-updates and -T a push forwards: test/push-forwarded checks them; a pull does them: test/recv-delay.)
for (const [option, shown] of [['-U', '-U/--atimes'], ['--remove-source-files', '--remove-source-files'], ['--iconv=utf8', '--iconv'], ['--write-devices', '--write-devices']] as const) {
  test(`our client refuses ${option} by name`, async () => {
    for (const args of [[option, join(work, 'src') + '/', daemonUrl(ours, 'm/client/')], [option, daemonUrl(ours, 'm/pull/'), join(work, 'client-pull') + '/']]) {
      const r = await lsyncd(['--once', ...args]);
      assert.is(r.status, 1, runText(r));
      assert.match(r.stderr, `${shown}: `);
    }
    assert.not.ok((await readdir(join(ours.dir, 'm'))).includes('client'), 'no connection made');
  });
}

test.run();
