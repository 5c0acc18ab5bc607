// `lsyncd serve` against stock rsync clients (issue 10): every case runs the same rsync command
// against our daemon and against a real rsyncd started from the same config text, and compares
// what the client sees (output, exit code) and what lands in the module (names as bytes, types,
// sizes, content, modes, mtimes, symlink targets, owners, hard links), at protocols 29-32.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile, unlink, symlink } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from './helpers/cli.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { makeTree, setTime, T0 } from './helpers/fstree.js';
import { daemonUrl, runBoth, runText, startBoth, type OurDaemon } from './helpers/serve.js';
import { rsyncVersion, type ConfiguredDaemon } from './helpers/daemon.js';
import { oldRsync } from './helpers/old-rsync.js';
import { lsyncd } from './helpers/cli.js';
import { link } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';

const ROOT = process.getuid?.() === 0;
const PASSWORD = 'serve-test-secret';
/** The running user and its primary group, for an `auth users = @group` module. */
const ME = userInfo().username;
const MY_GROUP = spawnSync('id', ['-gn'], { encoding: 'utf8' }).stdout.trim();

const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
munge symlinks = no
${ROOT ? 'uid = root\ngid = root\n' : ''}
[push]
\tpath = ${dir}/push
\tcomment = writable
\tread only = no
[ro]
\tpath = ${dir}/ro
\tcomment = read only
[secure]
\tpath = ${dir}/secure
\tread only = no
\tauth users = alice
\tsecrets file = ${dir}/secrets
[refuse]
\tpath = ${dir}/refuse
\tread only = no
\trefuse options = delete
[hidden]
\tpath = ${dir}/hidden
\tlist = no
[grouped]
\tpath = ${dir}/grouped
\tread only = no
\tauth users = @${MY_GROUP}
\tsecrets file = ${dir}/group-secrets
[dropped]
\tpath = ${dir}/dropped
\tread only = no
\tuid = nobody
\tgid = nogroup
[grouped-write]
\tpath = ${dir}/grouped-write/in
\tread only = no
\tuid = nobody
\tgid = nogroup users
`;

let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;

test.before(async () => {
  ({ ours, theirs } = await startBoth(CONFIG));
  for (const dir of [ours.dir, theirs.dir]) {
    for (const m of ['push', 'ro', 'secure', 'refuse', 'hidden', 'dropped', 'grouped']) await mkdir(join(dir, m));
    await writeFile(join(dir, 'group-secrets'), `@${MY_GROUP}:${PASSWORD}\n`);
    await chmod(join(dir, 'group-secrets'), 0o600);
    // The module's own user must be able to reach it (the temp dirs are 0700).
    if (ROOT) await chmod(dir, 0o755);
    if (ROOT) await chown(join(dir, 'dropped'), 65534, 65534);
    await writeFile(join(dir, 'secrets'), `alice:${PASSWORD}\n`);
    await chmod(join(dir, 'secrets'), 0o600);
    await writeFile(join(dir, 'ro', 'file.txt'), 'read-only content\n');
  }
  work = await mkdtemp(join(tmpdir(), 'lsyncd-serve-test-'));
});

test.after(async () => {
  await ours?.stop();
  await theirs?.stop();
  await rm(work, { recursive: true, force: true });
});

const url = daemonUrl;

/** The same rsync command line against both daemons (ADDR/ in args is each one's URL). */
const both = (args: string[], env: NodeJS.ProcessEnv = {}, client = 'rsync') => runBoth({ ours, theirs }, args, { env, client });

async function sameModuleTree(path: string, message: string): Promise<void> {
  const want = await snapshot(join(theirs.dir, path));
  const have = await snapshot(join(ours.dir, path));
  const diff = diffTrees(want, have);
  assert.equal(diff, [], `${message}\n${diff.slice(0, 20).join('\n')}`);
}

const text = runText;

test('the module listing is byte for byte rsyncd\'s (list = no hides a module)', async () => {
  const { o, t } = await both(['ADDR/']);
  assert.is(o.status, 0, text(o));
  assert.is(o.stdout.toString(), t.stdout.toString());
  assert.not.match(o.stdout.toString(), /hidden/);
});

const PROTOCOLS = [32, 31, 30, 29].filter((p) => p <= rsyncVersion().protocol);

for (const protocol of PROTOCOLS) {
  test(`protocol ${protocol}: a client's push (initial, no change, delta, deletes, type swaps) lands as in rsyncd`, async () => {
    const src = join(work, `push${protocol}`);
    await makeTree(src);
    const name = `seq${protocol}`;
    const push = (extra: string[] = []) => both(['-a', '--delete', '--stats', `--protocol=${protocol}`, ...extra, `${src}/`, `ADDR/push/${name}/`]);
    // 1. Initial.
    let r = await push();
    assert.is(r.o.status, 0, text(r.o));
    assert.is(r.t.status, 0, text(r.t));
    await sameModuleTree(`push/${name}`, 'initial push');
    // 2. No change: nothing sent again.
    r = await push();
    assert.is(r.o.status, 0, text(r.o));
    assert.match(r.o.stdout.toString(), /Number of regular files transferred: 0/);
    // 3. One byte of a 300 kB file: only a delta crosses.
    const big = await readFile(join(src, 'big.bin'));
    big[150_000] ^= 0xff;
    await writeFile(join(src, 'big.bin'), big);
    await setTime(join(src, 'big.bin'), T0 + 60);
    r = await push();
    assert.is(r.o.status, 0, text(r.o));
    const literal = Number(/Literal data: ([\d,]+)/.exec(r.o.stdout.toString())![1]!.replace(/,/g, ''));
    assert.ok(literal < 5000, `literal data ${literal}\n${text(r.o)}`);
    await sameModuleTree(`push/${name}`, 'delta');
    // 4. Deletes and a type swap (a file becomes a directory, a symlink a file).
    await unlink(join(src, 'a.txt'));
    await rm(join(src, 'sub'), { recursive: true });
    await unlink(join(src, 'empty'));
    await mkdir(join(src, 'empty'));
    await writeFile(join(src, 'empty', 'inside'), 'now a directory\n');
    await unlink(join(src, 'link'));
    await writeFile(join(src, 'link'), 'was a symlink\n');
    await symlink('big.bin', join(src, 'newlink'));
    // Fixed times: rsync leaves a new item's time alone when it falls in the same second as the
    // source's (its quick same_mtime check), which would make a fresh source time racy to compare.
    for (const p of ['empty/inside', 'empty', 'link', 'newlink']) await setTime(join(src, p), T0 + 120);
    r = await push();
    assert.is(r.o.status, 0, text(r.o));
    await sameModuleTree(`push/${name}`, 'deletes and type swaps');
  });
}

test("Debian 12's rsync 3.2.7 at protocols 32-29: pushes (initial, delta, deletes) and pulls land as with rsyncd", async () => {
  const old = await oldRsync();
  for (const protocol of [32, 31, 30, 29]) {
    const src = join(work, `old${protocol}`);
    await makeTree(src);
    const name = `old${protocol}`;
    let r = await both(['-a', '--delete', `--protocol=${protocol}`, `${src}/`, `ADDR/push/${name}/`], {}, old);
    assert.is(r.o.status, 0, text(r.o));
    await sameModuleTree(`push/${name}`, `3.2.7 initial push at ${protocol}`);
    const big = await readFile(join(src, 'big.bin'));
    big[1000] ^= 0x55;
    await writeFile(join(src, 'big.bin'), big);
    await setTime(join(src, 'big.bin'), T0 + 30);
    await unlink(join(src, 'a.txt'));
    r = await both(['-a', '--delete', `--protocol=${protocol}`, `${src}/`, `ADDR/push/${name}/`], {}, old);
    assert.is(r.o.status, 0, text(r.o));
    await sameModuleTree(`push/${name}`, `3.2.7 delta and delete at ${protocol}`);
    const destO = join(work, `oldpullO${protocol}`);
    const destT = join(work, `oldpullT${protocol}`);
    const po = await run(old, ['-a', `--protocol=${protocol}`, url(ours, `push/${name}/`), `${destO}/`]);
    const pt = await run(old, ['-a', `--protocol=${protocol}`, url(theirs, `push/${name}/`), `${destT}/`]);
    assert.is(po.status, 0, text(po));
    assert.is(pt.status, 0, text(pt));
    assert.equal(diffTrees(await snapshot(destT), await snapshot(destO)), [], `3.2.7 pull at ${protocol}`);
  }
});

test('-aH: hard-link groups land as in rsyncd; -D devices and fifos too (as root)', async () => {
  const src = join(work, 'links');
  await mkdir(join(src, 'd'), { recursive: true });
  await writeFile(join(src, 'one'), 'linked content\n');
  await link(join(src, 'one'), join(src, 'd', 'two'));
  await link(join(src, 'one'), join(src, 'three'));
  await writeFile(join(src, 'alone'), 'not linked\n');
  if (ROOT) {
    spawnSync('mknod', [join(src, 'null-like'), 'c', '1', '3']);
    spawnSync('mkfifo', [join(src, 'fifo')]);
  }
  for (const p of ['one', 'alone', 'd', ...(ROOT ? ['null-like', 'fifo'] : []), '.']) await setTime(join(src, p), T0);
  // -i: the client itemizes what each daemon did, hard links included (`hf NAME => LEADER`, the
  // group's last member carrying the data), so the outputs must be equal line for line.
  const r = await both(['-aH', '-D', '-i', '--delete', '--no-inc-recursive', `${src}/`, 'ADDR/push/links/']);
  assert.is(r.o.status, 0, text(r.o));
  assert.is(r.t.status, 0, text(r.t));
  await sameModuleTree('push/links', '-aH -D');
  const lines = (x: RunResult) => x.stdout.toString().split('\n').filter((l) => !/^(sent|total size) /.test(l));
  assert.equal(lines(r.o), lines(r.t), '-i output');
  assert.ok(lines(r.o).some((l) => / => /.test(l)), lines(r.o).join('\n'));
});

test('our own client into our daemon: lsyncd --once pushes and pulls as into rsyncd', async () => {
  const src = join(work, 'ourclient');
  await makeTree(src);
  for (const d of [ours, theirs]) {
    const pushed = await lsyncd(['--once', `${src}/`, url(d, 'push/ourclient/')]);
    assert.is(pushed.status, 0, text(pushed));
  }
  await sameModuleTree('push/ourclient', 'our client pushing');
  const dest = join(work, 'ourclient-back');
  const pulled = await lsyncd(['--once', '-a', url(ours, 'push/ourclient/'), `${dest}/`]);
  assert.is(pulled.status, 0, text(pulled));
  assert.equal(diffTrees(await snapshot(join(theirs.dir, 'push/ourclient')), await snapshot(dest)), []);
});

test('deletions are shown to a -v or -i client as rsyncd shows them (MSG_DELETED from 29, the line before)', async () => {
  const src = join(work, 'delsrc');
  // Not 28 with -v: there rsyncd's generator also prints the names whose attributes it touched,
  // which we do not (docs/serve.md, differences).
  for (const [protocol, flags] of [
    [31, '-v'],
    [31, '-i'],
    [28, '-i'],
  ] as const) {
    const dest = `dels-${protocol}${flags}`;
    await rm(src, { recursive: true, force: true });
    await mkdir(join(src, 'gone-dir', 'inner'), { recursive: true });
    await writeFile(join(src, 'keep'), 'k\n');
    await writeFile(join(src, 'gone'), 'g\n');
    await writeFile(join(src, 'gone-dir', 'inner', 'f'), 'f\n');
    await symlink('keep', join(src, 'gone-link'));
    for (const p of ['keep', 'gone', 'gone-dir/inner/f', 'gone-dir/inner', 'gone-dir', '.']) await setTime(join(src, p), T0);
    const first = await both(['-rlt', `--protocol=${protocol}`, `${src}/`, `ADDR/push/${dest}/`]);
    assert.is(first.o.status, 0, text(first.o));
    // rsyncd at protocol 28 does not always leave the new directory's time set (its receiver may
    // write into it after the generator set it): start both from the same time.
    for (const d of [ours.dir, theirs.dir]) await setTime(join(d, 'push', dest), T0);
    for (const p of ['gone', 'gone-link']) await unlink(join(src, p));
    await rm(join(src, 'gone-dir'), { recursive: true });
    await setTime(src, T0);
    // Without incremental recursion, which we never offer (rsyncd's first line would differ).
    const r = await both(['-rlt', flags, '--delete', '--no-inc-recursive', `--protocol=${protocol}`, `${src}/`, `ADDR/push/${dest}/`]);
    assert.is(r.o.status, 0, text(r.o));
    assert.is(r.t.status, 0, text(r.t));
    // Byte counts and speeds differ between daemons; every other line is the client's own print.
    const lines = (x: RunResult) => x.stdout.toString().split('\n').filter((l) => !/^(sent|total size) /.test(l));
    assert.equal(lines(r.o), lines(r.t), `protocol ${protocol} ${flags}`);
    // Below 29 rsyncd formats the line with the format the client sent (`%i` alone): no name.
    const shown = protocol >= 29 ? /deleting +gone-dir\/$/ : /^\*deleting  $/;
    assert.ok(lines(r.o).some((l) => shown.test(l)), lines(r.o).join('\n'));
  }
});

test('a client\'s pull from the module equals the same pull from rsyncd', async () => {
  const name = `seq${PROTOCOLS[0]}`;
  for (const protocol of PROTOCOLS) {
    const destO = join(work, `pullO${protocol}`);
    const destT = join(work, `pullT${protocol}`);
    const o = await run('rsync', ['-a', `--protocol=${protocol}`, url(ours, `push/${name}/`), `${destO}/`]);
    const t = await run('rsync', ['-a', `--protocol=${protocol}`, url(theirs, `push/${name}/`), `${destT}/`]);
    assert.is(o.status, 0, text(o));
    assert.is(t.status, 0, text(t));
    const diff = diffTrees(await snapshot(destT), await snapshot(destO));
    assert.equal(diff, [], `protocol ${protocol}\n${diff.slice(0, 20).join('\n')}`);
  }
});

test('rsync -r URL lists the module as it lists rsyncd\'s', async () => {
  const name = `seq${PROTOCOLS[0]}`;
  const { o, t } = await both(['-r', `ADDR/push/${name}/`]);
  assert.is(o.status, 0, text(o));
  assert.is(o.stdout.toString(), t.stdout.toString());
});

test('refusals: unknown module, read-only module, refused option — the client sees rsyncd\'s words and exit codes', async () => {
  const src = join(work, 'small');
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'f'), 'x\n');
  for (const [args, expect] of [
    [['ADDR/nope/'], /Unknown module 'nope'/],
    [['-a', `${src}/`, 'ADDR/ro/'], /module is read only/],
    [['-a', '--delete', `${src}/`, 'ADDR/refuse/'], /The server is configured to refuse --delete/],
  ] as const) {
    const { o, t } = await both([...args]);
    assert.is(o.status, t.status, `${args.join(' ')}\nours: ${text(o)}\ntheirs: ${text(t)}`);
    assert.match(o.stderr.toString(), expect);
    assert.match(t.stderr.toString(), expect);
  }
});

test('auth users = @group: a member of the group gets in with the group\'s password, as with rsyncd', async () => {
  const src = join(work, 'groupsrc');
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'g'), 'by group\n');
  await setTime(join(src, 'g'), T0);
  await setTime(src, T0);
  const right = await both(['-rlpt', `${src}/`, 'ADDR/grouped/'], { USER: ME, RSYNC_PASSWORD: PASSWORD });
  assert.is(right.t.status, 0, text(right.t));
  assert.is(right.o.status, 0, text(right.o));
  await sameModuleTree('grouped', 'pushed by a member of the group');
  const wrong = await both(['-rlpt', `${src}/`, 'ADDR/grouped/'], { USER: ME, RSYNC_PASSWORD: 'not it' });
  assert.is(wrong.o.status, wrong.t.status, `${text(wrong.o)}\n${text(wrong.t)}`);
  assert.match(wrong.o.stderr.toString(), /@ERROR: auth failed on module grouped/);
});

test('uid/gid: a module with its own uid and gid is written by that user (a process of its own), as rsyncd does', async () => {
  const src = join(work, 'dropsrc');
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'f'), 'owned by nobody on the mirror\n');
  await writeFile(join(src, 'sub', 'g'), 'also\n');
  for (const p of ['f', 'sub/g', 'sub', '.']) await setTime(join(src, p), T0);
  const r = await both(['-rlpt', `${src}/`, 'ADDR/dropped/']);
  if (ROOT) {
    assert.is(r.o.status, 0, text(r.o));
    assert.is(r.t.status, 0, text(r.t));
    await sameModuleTree('dropped', 'pushed into a module with uid = nobody');
    const mine = await snapshot(join(ours.dir, 'dropped'));
    assert.is(mine.get('f')!.uid, 65534, 'created by nobody, not chowned by root');
  } else {
    // Not root: neither daemon can switch to nobody, and both say so.
    assert.is(r.o.status, r.t.status, `${text(r.o)}\n${text(r.t)}`);
    assert.match(r.o.stderr.toString(), /@ERROR: setuid failed/);
  }
});

test('uid/gid: every group of the module\'s gid list is held (setgroups), as rsyncd holds them', async () => {
  // The module's directory is writable by the group `users` alone: nobody gets in only through
  // the second group of `gid = nogroup users`.
  for (const d of [ours.dir, theirs.dir]) {
    await mkdir(join(d, 'grouped-write', 'in'), { recursive: true });
    await chmod(join(d, 'grouped-write'), 0o755);
    if (ROOT) await chown(join(d, 'grouped-write', 'in'), 0, 100);
    await chmod(join(d, 'grouped-write', 'in'), 0o770);
  }
  const src = join(work, 'groupsrc');
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'f'), 'written through a supplementary group\n');
  for (const p of ['f', '.']) await setTime(join(src, p), T0);
  // The file alone: the module's directory is root's, so setting its times would be refused to both.
  const r = await both(['-t', join(src, 'f'), 'ADDR/grouped-write/']);
  if (!ROOT) {
    // Not root: neither daemon can switch to nobody, and both say so.
    assert.is(r.o.status, r.t.status, `${text(r.o)}\n${text(r.t)}`);
    assert.match(r.o.stderr.toString(), /@ERROR: setuid failed/);
    return;
  }
  assert.is(r.t.status, 0, text(r.t));
  assert.is(r.o.status, 0, text(r.o));
  await sameModuleTree('grouped-write/in', 'pushed by nobody through the group users');
  const mine = await snapshot(join(ours.dir, 'grouped-write', 'in'));
  assert.is(mine.get('f')!.uid, 65534);
  assert.is(mine.get('f')!.gid, 65534, 'the primary group is the first of the list');
});

test('authentication: the right password opens the module, a wrong one gets rsyncd\'s refusal', async () => {
  const src = join(work, 'authsrc');
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'f'), 'secret data\n');
  const right = await both(['-a', `${src}/`, 'ADDR/secure/'], { USER: 'alice', RSYNC_PASSWORD: PASSWORD });
  assert.is(right.o.status, 0, text(right.o));
  assert.is(right.t.status, 0, text(right.t));
  await sameModuleTree('secure', 'after an authenticated push');
  const wrong = await both(['-a', `${src}/`, 'ADDR/secure/'], { USER: 'alice', RSYNC_PASSWORD: 'wrong' });
  assert.is(wrong.o.status, wrong.t.status, `${text(wrong.o)}\n${text(wrong.t)}`);
  assert.match(wrong.o.stderr.toString(), /@ERROR: auth failed on module secure/);
  assert.not.match(await ours.log(), /wrong|serve-test-secret/);
});

test.run();
