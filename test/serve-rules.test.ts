// A module's own rules in `lsyncd serve`, each against a real rsyncd started from the same config
// text: `exclude`/`filter` when a client pushes (refused names and destinations, --delete keeping
// what the rules exclude) and pulls, `incoming chmod`/`outgoing chmod` (and an invalid one), and
// `ignore nonreadable`. The same rsync client command runs against both daemons; its exit code and
// output and the resulting trees (modes included) must be the same.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunResult } from './helpers/cli.js';
import { parseConfig } from '../src/serve/config.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { setTime, T0 } from './helpers/fstree.js';
import { runBoth, runText, startBoth, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';

const ROOT = process.getuid?.() === 0;

const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
munge symlinks = no
log file = ${dir}/daemon.log
${ROOT ? 'uid = root\ngid = root\n' : ''}
[rules]
\tpath = ${dir}/rules
\tread only = no
\texclude = *.tmp secret/
[fromfile]
\tpath = ${dir}/fromfile
\tread only = no
\tinclude = keep.tmp
\texclude from = ${dir}/excludes.txt
[anchored]
\tpath = ${dir}/anchored
\tread only = no
\tfilter = - /top.txt - /sub/deep.txt + /sub/keep/*** - /sub/keep*
[chin]
\tpath = ${dir}/chin
\tread only = no
\tincoming chmod = Dg+s,ug+w,Fo-w,+X
[chin-octal]
\tpath = ${dir}/chin-octal
\tread only = no
\tincoming chmod = D2775,F664
[chout]
\tpath = ${dir}/chout
\toutgoing chmod = Fu=rw,go=r,D750,g=u
[badchmod]
\tpath = ${dir}/badchmod
\tread only = no
\tincoming chmod = Q+z
[skipper]
\tpath = ${dir}/private
\tignore nonreadable = yes
\tuid = nobody
\tgid = nogroup
[strict]
\tpath = ${dir}/private
\tuid = nobody
\tgid = nogroup
`;

const MODULE_DIRS = ['rules', 'fromfile', 'anchored', 'chin', 'chin-octal', 'chout', 'badchmod', 'private'];

let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;

/** A source tree with a spread of modes, a symlink, names the rules exclude, and fixed times. */
async function makeModeTree(root: string): Promise<void> {
  await mkdir(join(root, 'sub', 'inner'), { recursive: true });
  await mkdir(join(root, 'secret'), { recursive: true });
  const files: Array<[string, number]> = [
    ['a.txt', 0o640],
    ['run.sh', 0o755],
    ['odd', 0o741],
    ['open', 0o666],
    ['b.tmp', 0o644],
    ['secret/x', 0o600],
    ['sub/y', 0o604],
    ['sub/inner/z', 0o700],
  ];
  for (const [name, mode] of files) {
    await writeFile(join(root, name), `${name}\n`);
    await chmod(join(root, name), mode);
  }
  await symlink('a.txt', join(root, 'link'));
  await chmod(join(root, 'sub'), 0o750);
  await chmod(join(root, 'sub', 'inner'), 0o701);
  await chmod(root, 0o755);
  for (const p of [...files.map((f) => f[0]), 'link', 'sub/inner', 'sub', 'secret', '.']) await setTime(join(root, p), T0);
}

test.before(async () => {
  ({ ours, theirs } = await startBoth(CONFIG));
  work = await mkdtemp(join(tmpdir(), 'lsyncd-serve-rules-'));
  await chmod(work, 0o755);
  for (const dir of [ours.dir, theirs.dir]) {
    // Modules run as nobody must be reachable (the temp dirs are 0700).
    await chmod(dir, 0o755);
    for (const m of MODULE_DIRS) await mkdir(join(dir, m));
    await writeFile(join(dir, 'excludes.txt'), '# read when a client opens the module\n*.tmp\nsub/inner/\n');
    await makeModeTree(join(dir, 'chout'));
    await makePrivateTree(join(dir, 'private'));
  }
});

test.after(async () => {
  await ours?.stop();
  await theirs?.stop();
  await rm(work, { recursive: true, force: true });
});

/** What nobody may and may not read: a root-only file and directory beside readable ones. */
async function makePrivateTree(root: string): Promise<void> {
  await mkdir(join(root, 'open-dir'), { recursive: true });
  await mkdir(join(root, 'closed-dir'), { recursive: true });
  await writeFile(join(root, 'public'), 'anyone\n');
  await writeFile(join(root, 'private'), 'root only\n');
  await writeFile(join(root, 'open-dir', 'f'), 'anyone too\n');
  await writeFile(join(root, 'closed-dir', 'g'), 'inside a closed dir\n');
  await symlink('private', join(root, 'link-to-private'));
  await chmod(join(root, 'public'), 0o644);
  await chmod(join(root, 'open-dir', 'f'), 0o644);
  await chmod(join(root, 'private'), 0o600);
  await chmod(join(root, 'closed-dir'), 0o700);
  await chmod(join(root, 'open-dir'), 0o755);
  await chmod(root, 0o755);
  for (const p of ['public', 'private', 'open-dir/f', 'closed-dir/g', 'link-to-private', 'open-dir', 'closed-dir', '.']) await setTime(join(root, p), T0);
}


/**
 * The same rsync command line against both daemons (ADDR/ in args becomes each one's URL; DEST/ a
 * directory of each). Without incremental recursion, which we never offer (docs/serve.md), so
 * that rsyncd works through the same whole list.
 */
async function both(args: string[], name = ''): Promise<{ o: RunResult; t: RunResult; destO: string; destT: string }> {
  const destO = join(work, `${name}-ours`);
  const destT = join(work, `${name}-theirs`);
  const { o, t } = await runBoth({ ours, theirs }, ['--no-inc-recursive', ...args], { dests: { o: destO, t: destT } });
  return { o, t, destO, destT };
}

const text = runText;

/** The client's stderr, with the server's closing line's "at FILE(LINE) [Receiver=VERSION]" taken off. */
const errors = (r: RunResult) =>
  r.stderr
    .split('\n')
    .map((l) => l.replace(/^(rsync error: .*\(code \d+\)) at .*\[Receiver=.*\]$/, '$1'))
    .join('\n');

/** The client's stdout, less the byte counts and rate of its closing summary (rsyncd's differ a little). */
const output = (r: RunResult) => r.stdout.toString().replace(/^sent [\d,]+ bytes {2}received [\d,]+ bytes {2}[\d,.]+ bytes\/sec$/m, 'sent N bytes  received N bytes');

/** Exit codes, stdout and stderr alike for both daemons. */
function sameOutput(r: { o: RunResult; t: RunResult }, what: string): void {
  assert.is(r.o.status, r.t.status, `${what}: exit codes\nours: ${text(r.o)}\nrsyncd: ${text(r.t)}`);
  assert.is(output(r.o), output(r.t), `${what}: stdout`);
  assert.is(errors(r.o), errors(r.t), `${what}: stderr`);
}

/** A tree, or none when the client never made the directory (nothing to receive). */
const treeOrNone = (path: string) => (existsSync(path) ? snapshot(path) : Promise.resolve(new Map()));

async function sameTree(theirsPath: string, oursPath: string, what: string): Promise<void> {
  assert.is(existsSync(oursPath), existsSync(theirsPath), `${what}: ${oursPath} made by one client only`);
  const diff = diffTrees(await treeOrNone(theirsPath), await treeOrNone(oursPath));
  assert.equal(diff, [], `${what}\n${diff.slice(0, 20).join('\n')}`);
}

const moduleTree = (name: string, what: string) => sameTree(join(theirs.dir, name), join(ours.dir, name), what);

test('exclude = *.tmp secret/: a push is refused those names (exit 23) and --delete leaves them alone', async () => {
  const src = join(work, 'rules-src');
  await makeModeTree(src);
  for (const dir of [ours.dir, theirs.dir]) {
    await mkdir(join(dir, 'rules', 'secret'), { recursive: true });
    await writeFile(join(dir, 'rules', 'secret', 'kept'), 'the module keeps this\n');
    await writeFile(join(dir, 'rules', 'old.tmp'), 'and this\n');
    await writeFile(join(dir, 'rules', 'gone'), 'not this\n');
    for (const p of ['secret/kept', 'secret', 'old.tmp', 'gone', '.']) await setTime(join(dir, 'rules', p), T0);
  }
  const r = await both(['-a', '--delete', `${src}/`, 'ADDR/rules/']);
  assert.is(r.t.status, 23, text(r.t));
  assert.match(r.t.stderr, 'ERROR: daemon refused to receive file "b.tmp"');
  sameOutput(r, 'push with --delete into a module with excludes');
  await moduleTree('rules', 'after the push');
  const after = await snapshot(join(ours.dir, 'rules'));
  assert.ok(after.has('secret/kept') && after.has('old.tmp') && !after.has('gone') && !after.has('b.tmp'));
});

test('a push whose destination the module excludes is refused whole (exit 3), as rsyncd refuses it', async () => {
  const src = join(work, 'rules-src2');
  await mkdir(src);
  await writeFile(join(src, 'f'), 'f\n');
  for (const dest of ['rules/secret/', 'rules/secret/deeper/', 'rules/x.tmp/', 'rules/deeper/y.tmp']) {
    const r = await both(['-r', `${src}/`, `ADDR/${dest}`]);
    assert.is(r.t.status, 3, text(r.t));
    sameOutput(r, `push into ${dest}`);
  }
  await moduleTree('rules', 'nothing written by a refused push');
});

test('a pull never sees what the module excludes; an excluded path is missing (exit 23)', async () => {
  let r = await both(['-a', 'ADDR/rules/', 'DEST/'], 'rules-pull');
  sameOutput(r, 'pull of the module');
  await sameTree(r.destT, r.destO, 'pulled tree');
  const pulled = await snapshot(r.destO);
  assert.ok(pulled.has('a.txt') && !pulled.has('old.tmp') && !pulled.has('secret'), [...pulled.keys()].join(' '));
  for (const path of ['rules/secret/', 'rules/secret', 'rules/old.tmp', 'rules/secret/kept']) {
    r = await both(['-a', `ADDR/${path}`, 'DEST/'], `rules-pull-${path.replace(/\//g, '_')}`);
    assert.is(r.t.status, 23, `${path}: ${text(r.t)}`);
    assert.is(r.o.status, r.t.status, `${path}: ${text(r.o)}`);
    await sameTree(r.destT, r.destO, `nothing pulled from ${path}`);
  }
});

test('include and exclude from: the module\'s rules in rsync\'s order (include before exclude from)', async () => {
  const src = join(work, 'fromfile-src');
  await makeModeTree(src);
  await writeFile(join(src, 'keep.tmp'), 'included before the exclude file\n');
  await setTime(join(src, 'keep.tmp'), T0);
  await setTime(src, T0);
  const r = await both(['-a', `${src}/`, 'ADDR/fromfile/']);
  assert.is(r.t.status, 23, text(r.t));
  sameOutput(r, 'push into a module with include and exclude from');
  await moduleTree('fromfile', 'after the push');
  const landed = await snapshot(join(ours.dir, 'fromfile'));
  assert.ok(landed.has('keep.tmp') && !landed.has('b.tmp') && landed.has('sub/y') && !landed.has('sub/inner'), [...landed.keys()].join(' '));
});

test('anchored module rules match from the module root, whichever directory the push goes into', async () => {
  const src = join(work, 'anchored-src');
  await mkdir(join(src, 'sub', 'keep'), { recursive: true });
  await mkdir(join(src, 'sub', 'keepnot'), { recursive: true });
  for (const f of ['top.txt', 'deep.txt', 'sub/deep.txt', 'sub/top.txt', 'sub/keep/a', 'sub/keepnot/b']) await writeFile(join(src, f), `${f}\n`);
  for (const p of ['top.txt', 'deep.txt', 'sub/deep.txt', 'sub/top.txt', 'sub/keep/a', 'sub/keepnot/b', 'sub/keep', 'sub/keepnot', 'sub', '.']) await setTime(join(src, p), T0);
  // Into the root: /top.txt and /sub/deep.txt are refused.
  let r = await both(['-a', `${src}/`, 'ADDR/anchored/']);
  assert.is(r.t.status, 23, text(r.t));
  sameOutput(r, 'push into the module root');
  // Into sub/: now deep.txt is /sub/deep.txt (refused) and top.txt is /sub/top.txt (taken).
  r = await both(['-a', `${src}/`, 'ADDR/anchored/sub/']);
  assert.is(r.t.status, 23, text(r.t));
  sameOutput(r, 'push into sub/');
  await moduleTree('anchored', 'anchored rules');
  r = await both(['-a', 'ADDR/anchored/sub/', 'DEST/'], 'anchored-pull');
  sameOutput(r, 'pull of sub/');
  await sameTree(r.destT, r.destO, 'anchored pull');
});

test('incoming chmod tweaks the modes a push brings (-a, and -r without -p), as rsyncd does', async () => {
  const src = join(work, 'chin-src');
  await makeModeTree(src);
  for (const module of ['chin', 'chin-octal']) {
    let r = await both(['-a', `${src}/`, `ADDR/${module}/a/`]);
    sameOutput(r, `${module}: push -a`);
    assert.is(r.o.status, 0, text(r.o));
    // Without -p: new files get the sender's modes less the umask, then the module's tweak.
    r = await both(['-rlt', `${src}/`, `ADDR/${module}/r/`]);
    sameOutput(r, `${module}: push -rlt`);
    await moduleTree(module, `${module}: modes`);
  }
  const tweaked = await snapshot(join(ours.dir, 'chin', 'a'));
  assert.is(tweaked.get('a.txt')!.mode & 0o7777, 0o660, 'ug+w on a 0640 file');
  assert.is(tweaked.get('sub')!.mode & 0o7777, 0o2770 | (0o111 & ~process.umask()), 'g+s, ug+w, +X (less the umask) on a 0750 directory');
});

test('outgoing chmod tweaks the modes a pull and a listing show (symlinks untouched)', async () => {
  let r = await both(['-a', 'ADDR/chout/', 'DEST/'], 'chout-pull');
  sameOutput(r, 'pull');
  assert.is(r.o.status, 0, text(r.o));
  await sameTree(r.destT, r.destO, 'pulled modes');
  const pulled = await snapshot(r.destO);
  assert.is(pulled.get('run.sh')!.mode & 0o7777, 0o664, 'Fu=rw,go=r then g=u');
  assert.is(pulled.get('sub')!.mode & 0o7777, 0o770, 'D750 then g=u');
  r = await both(['-r', 'ADDR/chout/']);
  sameOutput(r, 'listing');
});

test('an invalid incoming chmod is logged as rsyncd logs it, and the module is served without it', async () => {
  const src = join(work, 'bad-src');
  await makeModeTree(src);
  const r = await both(['-a', `${src}/`, 'ADDR/badchmod/']);
  sameOutput(r, 'push into a module with an invalid chmod');
  assert.is(r.o.status, 0, text(r.o));
  await moduleTree('badchmod', 'untweaked modes');
  const line = 'Invalid "incoming chmod" directive: Q+z';
  assert.match(await readFile(join(theirs.dir, 'daemon.log'), 'utf8'), line);
  assert.match(await ours.log(), line);
  // We also say so when the config is loaded, with its file and line.
  const file = join(ours.dir, 'rsyncd.conf');
  const configText = CONFIG(ours.dir);
  const lineNo = configText.split('\n').findIndex((l) => l.includes('Q+z')) + 1;
  const { warnings } = parseConfig(configText, { file });
  assert.ok(warnings.some((w) => w.startsWith(line) && w.endsWith(`(${file}:${lineNo})`)), warnings.join('\n'));
});

if (ROOT) {
  test('ignore nonreadable: a pull leaves out what the module user cannot read, with no error', async () => {
    const r = await both(['-a', 'ADDR/skipper/', 'DEST/'], 'skipper');
    sameOutput(r, 'pull with ignore nonreadable');
    assert.is(r.o.status, 0, text(r.o));
    await sameTree(r.destT, r.destO, 'pulled tree');
    const pulled = await snapshot(r.destO);
    assert.ok(pulled.has('public') && pulled.has('open-dir/f') && pulled.has('link-to-private'), [...pulled.keys()].join(' '));
    assert.ok(!pulled.has('private') && !pulled.has('closed-dir'), [...pulled.keys()].join(' '));
  });

  test('without ignore nonreadable, what the module user cannot read is an I/O error (exit 23)', async () => {
    const r = await both(['-a', 'ADDR/strict/', 'DEST/'], 'strict');
    assert.is(r.t.status, 23, text(r.t));
    assert.is(r.o.status, r.t.status, `ours: ${text(r.o)}\nrsyncd: ${text(r.t)}`);
    await sameTree(r.destT, r.destO, 'pulled tree');
  });
} else {
  test('ignore nonreadable (not root): neither daemon can become nobody, and both refuse alike', async () => {
    const r = await both(['-a', 'ADDR/skipper/', 'DEST/'], 'skipper');
    assert.is(r.o.status, r.t.status, `ours: ${text(r.o)}\nrsyncd: ${text(r.t)}`);
    assert.match(r.o.stderr, /@ERROR: setuid failed/);
  });
}


test.run();
