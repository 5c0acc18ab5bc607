// -A/--acls against real rsync (issue 13): a tree with ACLs (named users and groups with a mask,
// ids with and without a name here, a directory's default ACL and a file that inherits it, files
// with none), written as Linux's system.posix_acl_* xattrs through the addon (no setfacl here).
// Sending: pushed with `rsync -aA` and with ours into rsyncd, pulled by a stock rsync from lsyncd
// serve beside rsyncd. Receiving: our pull beside rsync's from rsyncd (itemized lines too, -n),
// stock rsync 3.5 and 3.2.7 pushing into lsyncd serve beside rsyncd. Every path's ACL blobs and
// modes compared exactly, before and after changes (an ACL removed, a default ACL gone), at
// protocols 30-32 and with --numeric-ids; protocol 29 refused in rsync's words. Then
// protocol/acls.ts alone: the xattr format, the stripped access ACL, the wire bytes against a
// naive encoder, the receiver's round trip and its typed errors on hostile ACL data.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, mkdir, chmod, writeFile } from 'node:fs/promises';
import { readdirSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lsyncd, run, type RunResult } from './helpers/cli.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { setTimes } from './helpers/fstree.js';
import { startBoth, daemonUrl, runText, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';
import { calls, changeXattrs, diffXattrTrees, makeXattrTree, xattrTree } from './helpers/xattrs.js';
import { ByteWriter } from '../protocol/io.js';
import {
  ACL_GROUP,
  ACL_GROUP_OBJ,
  ACL_MASK,
  ACL_OTHER,
  ACL_USER,
  ACL_USER_OBJ,
  AclSender,
  NO_ENTRY,
  aclFromMode,
  decodePosixAcl,
  encodePosixAcl,
  rsyncAclOf,
  stripModePerms,
  type PosixAclEntry,
} from '../protocol/acls.js';
import { byteAtATime, memorySink } from './helpers/capture.js';
import { oldRsync } from './helpers/old-rsync.js';
import { ByteReader } from '../protocol/io.js';
import { ProtocolError } from '../protocol/errors.js';
import { AclReceiver, emptyAcl, withModePerms } from '../protocol/acls.js';

const ROOT = process.getuid?.() === 0;
let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;

const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
munge symlinks = no
${ROOT ? 'uid = root\ngid = root\n' : ''}
[push]
\tpath = ${dir}/push
\tread only = no
${ROOT ? `[chroot]\n\tpath = ${dir}/chroot\n\tread only = no\n\tuse chroot = yes\n` : ''}`;

test.before(async () => {
  ({ ours, theirs } = await startBoth(CONFIG));
  for (const dir of [ours.dir, theirs.dir]) {
    await mkdir(join(dir, 'push'));
    await mkdir(join(dir, 'chroot'));
    if (ROOT) await chmod(dir, 0o755);
  }
  work = await mkdtemp(join(tmpdir(), 'lsyncd-acls-'));
});
test.after(async () => {
  await ours?.stop();
  await theirs?.stop();
  await rm(work, { recursive: true, force: true });
});

const ACCESS = Buffer.from('system.posix_acl_access');
const DEFAULT = Buffer.from('system.posix_acl_default');
const e = (tag: number, perm: number, id = 0): PosixAclEntry => ({ tag, perm, id });

function setAcl(path: string, which: Buffer, entries: PosixAclEntry[]): void {
  calls().set(Buffer.from(path), which, encodePosixAcl(entries));
}

/** Every path (relative) → its access and default ACLs as text (Linux's entries), symlinks skipped. */
function aclTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const show = (blob: Buffer | null) => (blob ? decodePosixAcl(blob).map((x) => `${x.tag}:${x.id === 0xffffffff ? '' : x.id}:${x.perm}`).join(',') : '-');
  const visit = (rel: string): void => {
    const abs = rel === '.' ? root : join(root, rel);
    const st = lstatSync(abs);
    if (st.isSymbolicLink()) return;
    const p = Buffer.from(abs);
    out.set(rel, `${show(calls().get(p, ACCESS))} / ${show(st.isDirectory() ? calls().get(p, DEFAULT) : null)}`);
    if (st.isDirectory()) for (const name of readdirSync(abs).sort()) visit(rel === '.' ? name : join(rel, name));
  };
  visit('.');
  return out;
}

/** The tree: named entries with a mask, a default ACL and a file made under it, plain files. */
async function makeAclTree(root: string): Promise<void> {
  await mkdir(join(root, 'shared'), { recursive: true });
  await writeFile(join(root, 'plain.txt'), 'plain\n');
  await writeFile(join(root, 'named.txt'), 'named\n');
  await writeFile(join(root, 'same.txt'), 'same ACL as named.txt\n');
  await writeFile(join(root, 'masked.txt'), 'a mask narrower than the group\n');
  await writeFile(join(root, 'unnamed.txt'), 'ids with no name here\n');
  const named = [e(ACL_USER_OBJ, 6), e(ACL_USER, 4, 1), e(ACL_USER, 6, 2), e(ACL_GROUP_OBJ, 4), e(ACL_GROUP, 5, 4), e(ACL_MASK, 7), e(ACL_OTHER, 0)];
  setAcl(join(root, 'named.txt'), ACCESS, named);
  setAcl(join(root, 'same.txt'), ACCESS, named);
  setAcl(join(root, 'masked.txt'), ACCESS, [e(ACL_USER_OBJ, 7), e(ACL_GROUP_OBJ, 7), e(ACL_GROUP, 6, 1), e(ACL_MASK, 4), e(ACL_OTHER, 4)]);
  setAcl(join(root, 'unnamed.txt'), ACCESS, [e(ACL_USER_OBJ, 6), e(ACL_USER, 4, 4242), e(ACL_GROUP_OBJ, 4), e(ACL_GROUP, 6, 4343), e(ACL_MASK, 6), e(ACL_OTHER, 4)]);
  setAcl(join(root, 'shared'), DEFAULT, [e(ACL_USER_OBJ, 7), e(ACL_USER, 5, 1), e(ACL_GROUP_OBJ, 5), e(ACL_MASK, 5), e(ACL_OTHER, 1)]);
  await writeFile(join(root, 'shared/inherits.txt'), 'made under a default ACL\n');
  await mkdir(join(root, 'shared/sub'));
  await setTimes(root);
}

/** Changes: an entry's bits, a named entry removed, the default ACL gone, ACLs on a plain file, an ACL removed. */
async function changeAcls(root: string): Promise<void> {
  calls().remove(Buffer.from(join(root, 'masked.txt')), ACCESS);
  setAcl(join(root, 'named.txt'), ACCESS, [e(ACL_USER_OBJ, 6), e(ACL_USER, 6, 1), e(ACL_GROUP_OBJ, 4), e(ACL_MASK, 6), e(ACL_OTHER, 4)]);
  calls().remove(Buffer.from(join(root, 'shared')), DEFAULT);
  setAcl(join(root, 'plain.txt'), ACCESS, [e(ACL_USER_OBJ, 6), e(ACL_GROUP_OBJ, 4), e(ACL_GROUP, 4, 4), e(ACL_MASK, 4), e(ACL_OTHER, 4)]);
  await setTimes(root);
}

function ok(r: RunResult, what: string): void {
  assert.is(r.status, 0, `${what}\n${runText(r)}`);
}

async function assertSameAcls(expected: string, actual: string, what: string): Promise<void> {
  const want = aclTree(expected);
  const got = aclTree(actual);
  assert.equal([...got.entries()], [...want.entries()], `${what}: ACLs`);
  assert.equal(diffTrees(await snapshot(expected), await snapshot(actual)), [], `${what}: tree (modes)`);
}

for (const [protocol, extra] of [[30, []], [31, []], [32, []], [32, ['--numeric-ids']]] as const) {
  test(`push -aA ${extra.join(' ')} at protocol ${protocol}: ours and rsync's into rsyncd, the same ACLs and modes, before and after changes`, async () => {
    const name = `p${protocol}${extra.length ? '-numeric' : ''}`;
    const src = join(work, `src-${name}`);
    await mkdir(src);
    await makeAclTree(src);
    for (const round of ['first', 'changed']) {
      const args = ['-aA', `--protocol=${protocol}`, ...extra, `${src}/`];
      ok(await run('rsync', [...args, daemonUrl(theirs, `push/rsync-${name}/`)]), `rsync (${round})`);
      ok(await lsyncd(['--once', ...args, daemonUrl(theirs, `push/ours-${name}/`)]), `ours (${round})`);
      await assertSameAcls(join(theirs.dir, 'push', `rsync-${name}`), join(theirs.dir, 'push', `ours-${name}`), `${name} ${round}`);
      if (round === 'first') assert.match(aclTree(join(theirs.dir, 'push', `ours-${name}`)).get('named.txt')!, /2:1:4,2:2:6/, 'named entries arrived');
      await changeAcls(src);
    }
  });
}

test('a stock rsync -aAi pulling from lsyncd serve: the same lines, ACLs and modes as from rsyncd', async () => {
  for (const dir of [ours.dir, theirs.dir]) await makeAclTree(join(dir, 'push', 'tree'));
  for (const round of ['first', 'changed']) {
    const t = await run('rsync', ['-aAi', daemonUrl(theirs, 'push/tree/'), `${join(work, 'from-rsyncd')}/`]);
    const o = await run('rsync', ['-aAi', daemonUrl(ours, 'push/tree/'), `${join(work, 'from-ours')}/`]);
    ok(t, `from rsyncd (${round})`);
    ok(o, `from ours (${round})`);
    const items = (r: RunResult) => r.stdout.toString().replace(/^created directory .*\n/m, '');
    assert.is(items(o), items(t), `itemized (${round})`);
    await assertSameAcls(join(work, 'from-rsyncd'), join(work, 'from-ours'), `serve sending ${round}`);
    for (const dir of [ours.dir, theirs.dir]) await changeAcls(join(dir, 'push', 'tree'));
  }
});

test('push -aAX: ACLs and xattrs together (the ACLs first after each entry), as rsync sends them', async () => {
  const src = join(work, 'src-both');
  await mkdir(src);
  await makeAclTree(src);
  await makeXattrTree(join(src, 'x'));
  for (const round of ['first', 'changed']) {
    ok(await run('rsync', ['-aAX', `${src}/`, daemonUrl(theirs, 'push/rsync-both/')]), `rsync (${round})`);
    ok(await lsyncd(['--once', '-aAX', `${src}/`, daemonUrl(theirs, 'push/ours-both/')]), `ours (${round})`);
    const [t, o] = [join(theirs.dir, 'push/rsync-both'), join(theirs.dir, 'push/ours-both')];
    await assertSameAcls(t, o, `both ${round}`);
    assert.equal(diffXattrTrees(xattrTree(t), xattrTree(o)), [], `both ${round}: xattrs`);
    await changeAcls(src);
    await changeXattrs(join(src, 'x'));
  }
});

const lines = (r: RunResult) => r.stdout.toString().split('\n').filter((l) => /^[.<>ch*][fdLDS][.+?a-zA-Z]{9} /.test(l)).sort();

for (const [protocol, extra] of [[30, []], [31, []], [32, []], [32, ['--numeric-ids']]] as const) {
  test(`pull -aAi ${extra.join(' ')} at protocol ${protocol}: ours and rsync's from rsyncd, the same lines, ACLs and modes, before and after changes`, async () => {
    const name = `p${protocol}${extra.length ? '-numeric' : ''}`;
    const module = join(theirs.dir, 'push', `pull-src-${name}`);
    await mkdir(module);
    await makeAclTree(module);
    const t = join(work, `pull-rsync-${name}`);
    const o = join(work, `pull-ours-${name}`);
    for (const round of ['first', 'changed', 'unchanged']) {
      const args = ['-aAi', `--protocol=${protocol}`, ...extra, daemonUrl(theirs, `push/pull-src-${name}/`)];
      const r = await run('rsync', [...args, `${t}/`]);
      const l = await lsyncd(['--once', ...args, `${o}/`]);
      ok(r, `rsync pull (${round})`);
      ok(l, `our pull (${round})`);
      assert.equal(lines(l), lines(r), `itemized lines (${round})`);
      await assertSameAcls(t, o, `pull ${name} ${round}`);
      assert.equal([...aclTree(o).entries()], [...aclTree(module).entries()], `pull ${name} ${round}: the module's ACLs`);
      if (round === 'first') assert.match(aclTree(o).get('unnamed.txt')!, /2:4242:4,.*8:4343:6/, 'ids with no name here arrive as they are');
      if (round === 'changed') assert.ok(lines(l).some((x) => /^\.f\.{7}a\. plain\.txt$/.test(x)), `an ACL-only change is itemized: ${lines(l).join('\n')}`);
      if (round === 'unchanged') assert.equal(lines(l), [], 'nothing to do the third time');
      if (round === 'first') await changeAcls(module);
    }
  });
}

test('pull -aAn: a dry run sets no ACL and itemizes as rsync does', async () => {
  const module = join(theirs.dir, 'push', 'dry-src');
  await mkdir(module);
  await makeAclTree(module);
  const t = join(work, 'dry-rsync');
  const o = join(work, 'dry-ours');
  ok(await run('rsync', ['-aA', daemonUrl(theirs, 'push/dry-src/'), `${t}/`]), 'rsync pull');
  ok(await lsyncd(['--once', '-aA', daemonUrl(theirs, 'push/dry-src/'), `${o}/`]), 'our pull');
  const before = aclTree(o);
  await changeAcls(module);
  const r = await run('rsync', ['-aAin', daemonUrl(theirs, 'push/dry-src/'), `${t}/`]);
  const l = await lsyncd(['--once', '-aAin', daemonUrl(theirs, 'push/dry-src/'), `${o}/`]);
  ok(r, 'rsync -n');
  ok(l, 'our -n');
  assert.equal(lines(l), lines(r));
  assert.equal([...aclTree(o).entries()], [...before.entries()], 'nothing set by a dry run');
});

test('a stock rsync -aAi pushing into lsyncd serve: the same lines, ACLs and modes as into rsyncd, before and after changes', async () => {
  const src = join(work, 'serve-push-src');
  await mkdir(src);
  await makeAclTree(src);
  for (const round of ['first', 'changed']) {
    for (const extra of [[], ['--numeric-ids']]) {
      const to = `push/from-client${extra.length ? '-numeric' : ''}/`;
      const pt = await run('rsync', ['-aAi', ...extra, `${src}/`, daemonUrl(theirs, to)]);
      const po = await run('rsync', ['-aAi', ...extra, `${src}/`, daemonUrl(ours, to)]);
      ok(pt, `push into rsyncd (${round} ${extra.join('')})`);
      ok(po, `push into ours (${round} ${extra.join('')})`);
      assert.equal(lines(po), lines(pt), `push lines (${round} ${extra.join('')})`);
      await assertSameAcls(join(theirs.dir, to), join(ours.dir, to), `serve receiving ${round} ${extra.join('')}`);
      assert.equal([...aclTree(join(ours.dir, to)).entries()], [...aclTree(src).entries()], `serve receiving ${round} ${extra.join('')}: the source's ACLs`);
    }
    await changeAcls(src);
  }
});

test('a stock rsync -aA pushing into a chroot module (its numeric ids on by default: the id lists still come, nothing mapped): as into rsyncd', async () => {
  if (!ROOT) return assert.ok(!ROOT, 'a chroot module needs root');
  const src = join(work, 'chroot-src');
  await mkdir(src);
  await makeAclTree(src);
  for (const round of ['first', 'changed']) {
    const pt = await run('rsync', ['-aAi', `${src}/`, daemonUrl(theirs, 'chroot/t/')]);
    const po = await run('rsync', ['-aAi', `${src}/`, daemonUrl(ours, 'chroot/t/')]);
    ok(pt, `push into rsyncd (${round})`);
    ok(po, `push into ours (${round})`);
    assert.equal(lines(po), lines(pt), `push lines (${round})`);
    await assertSameAcls(join(theirs.dir, 'chroot/t'), join(ours.dir, 'chroot/t'), `chroot module ${round}`);
    await changeAcls(src);
  }
});

test("rsync 3.2.7's client pushing -aA into lsyncd serve: as into rsyncd", async () => {
  const old = await oldRsync();
  const src = join(work, 'old-src');
  await mkdir(src);
  await makeAclTree(src);
  for (const round of ['first', 'changed']) {
    ok(await run(old, ['-aA', `${src}/`, daemonUrl(theirs, 'push/old/')]), `old rsync into rsyncd (${round})`);
    ok(await run(old, ['-aA', `${src}/`, daemonUrl(ours, 'push/old/')]), `old rsync into ours (${round})`);
    await assertSameAcls(join(theirs.dir, 'push/old'), join(ours.dir, 'push/old'), `old client pushing ${round}`);
    await changeAcls(src);
  }
});

test('protocol 29 is refused in rsync words (exit 2): our push, our pull, a stock client pushing into lsyncd serve', async () => {
  const src = join(work, 'refused-src');
  await mkdir(src);
  await writeFile(join(src, 'f'), 'f');
  const words = '--acls requires protocol 30 or higher (negotiated 29).';
  const push = await lsyncd(['--once', '-aA', '--protocol=29', `${src}/`, daemonUrl(theirs, 'push/p29/')]);
  assert.is(push.status, 2, runText(push));
  assert.ok(push.stderr.toString().includes(words), runText(push));
  const pull = await lsyncd(['--once', '-aA', '--protocol=29', daemonUrl(theirs, 'push/'), `${join(work, 'p29-pull')}/`]);
  assert.is(pull.status, 2, runText(pull));
  assert.ok(pull.stderr.toString().includes(words), runText(pull));
  const into = await run('rsync', ['-aA', '--protocol=29', `${src}/`, daemonUrl(ours, 'push/p29/')]);
  const intoTheirs = await run('rsync', ['-aA', '--protocol=29', `${src}/`, daemonUrl(theirs, 'push/p29/')]);
  assert.is(into.status, intoTheirs.status, `${runText(into)}\n${runText(intoTheirs)}`);
  assert.ok(into.stderr.toString().includes(words), runText(into));
});

test('Linux ACL xattrs: decoded and encoded back byte for byte; malformed ones rejected', () => {
  const entries = [e(ACL_USER_OBJ, 6, 0xffffffff), e(ACL_USER, 4, 1000), e(ACL_GROUP_OBJ, 4, 0xffffffff), e(ACL_MASK, 4, 0xffffffff), e(ACL_OTHER, 0, 0xffffffff)];
  const blob = encodePosixAcl(entries);
  assert.is(blob.length, 4 + 5 * 8);
  assert.equal(decodePosixAcl(blob), entries);
  assert.equal(encodePosixAcl(decodePosixAcl(blob)), blob);
  assert.throws(() => decodePosixAcl(blob.subarray(0, 11)), /ACL xattr of 11 bytes/);
  const wrongVersion = Buffer.from(blob);
  wrongVersion.writeUInt32LE(1, 0);
  assert.throws(() => decodePosixAcl(wrongVersion), /version 1/);
});

test("the access ACL as it travels: the mode's bits left out, the mask kept when it is not the group's", () => {
  const named = rsyncAclOf([e(ACL_USER_OBJ, 6), e(ACL_USER, 4, 1), e(ACL_GROUP_OBJ, 4), e(ACL_MASK, 7), e(ACL_OTHER, 0)]);
  // chmod's group bits are the mask's (7) when there is one.
  assert.equal(stripModePerms(named, 0o670), { userObj: NO_ENTRY, groupObj: 4, maskObj: NO_ENTRY, otherObj: NO_ENTRY, names: [{ id: 1, access: 4, user: true }] });
  assert.equal(stripModePerms(named, 0o650).maskObj, 7, 'a mask that is not the mode group bits travels');
  assert.equal(stripModePerms(aclFromMode(0o754), 0o754), { userObj: NO_ENTRY, groupObj: NO_ENTRY, maskObj: NO_ENTRY, otherObj: NO_ENTRY, names: [] });
});

test('the wire: flags, object entries, named entries (bits << 2, user flag), an equal ACL by index, a directory default ACL', async () => {
  const sink = memorySink();
  const w = new ByteWriter(sink);
  const sender = new AclSender();
  const named = rsyncAclOf([e(ACL_USER_OBJ, 6), e(ACL_USER, 4, 1), e(ACL_GROUP_OBJ, 4), e(ACL_GROUP, 5, 4), e(ACL_MASK, 7), e(ACL_OTHER, 0)]);
  const ids = sender.send(w, 0o100670, false, named, null);
  assert.equal(ids, { uids: [1], gids: [4] });
  sender.send(w, 0o100670, false, named, null);
  sender.send(w, 0o40755, true, null, null);
  await w.flush();
  // The naive encoder (every number under 128: one-byte varints).
  const expected = [
    0, 0b10010, 4, 2, 1, (4 << 2) | 2, 4, 5 << 2, // new: GROUP_OBJ|NAME_LIST, group 4, two names
    1, // the same again: index 0 + 1
    0, 0, // the directory's access ACL: nothing beyond its mode
    0, 0, // its default ACL: empty
  ];
  assert.equal([...sink.bytes()], expected);
});

const reader = (bytes: number[]) => new ByteReader(byteAtATime(Uint8Array.from(bytes)));

test("the receiver: what AclSender sends comes back as the file's own blobs (the mode's bits put back, the mask the mode's group)", async () => {
  const sink = memorySink();
  const w = new ByteWriter(sink);
  const sender = new AclSender();
  const named = [e(ACL_USER_OBJ, 6), e(ACL_USER, 4, 1), e(ACL_USER, 6, 2), e(ACL_GROUP_OBJ, 4), e(ACL_GROUP, 5, 4), e(ACL_MASK, 7), e(ACL_OTHER, 0)];
  const dirDefault = [e(ACL_USER_OBJ, 7), e(ACL_USER, 5, 1), e(ACL_GROUP_OBJ, 5), e(ACL_MASK, 5), e(ACL_OTHER, 1)];
  sender.send(w, 0o100670, false, rsyncAclOf(named), null);
  sender.send(w, 0o40755, true, null, rsyncAclOf(dirDefault));
  sender.send(w, 0o100644, false, null, null);
  sender.send(w, 0o40700, true, null, null);
  await w.flush();
  const r = new ByteReader(byteAtATime(sink.bytes()));
  const receiver = new AclReceiver();
  await receiver.receive(r, 0, 0o100670);
  await receiver.receive(r, 1, 0o40755);
  await receiver.receive(r, 2, 0o100644);
  await receiver.receive(r, 3, 0o40700);
  const plain = (mode: number, dir: boolean) => ({ access: aclFromMode(mode), defaults: dir ? emptyAcl() : null });
  const file = receiver.writes(0, plain(0o644, false), 0o100644, 0o100670);
  assert.equal(file.length, 1);
  assert.equal(decodePosixAcl(file[0]!.blob!), named.map((x) => ({ ...x, id: x.tag === ACL_USER || x.tag === ACL_GROUP ? x.id : 0xffffffff })));
  assert.is(file[0]!.mode! & 0o777, 0o670);
  const dir = receiver.writes(1, plain(0o755, true), 0o40755, 0o40755);
  assert.equal(dir.map((x) => x.kind), ['default'], 'a directory: its default ACL only');
  assert.equal(dir[0]!.blob, encodePosixAcl(dirDefault));
  assert.equal(receiver.writes(2, plain(0o644, false), 0o100644, 0o100644), [], 'a plain file stays as it is');
  // Named entries here that the sender has not: the plain form goes back (the kernel drops the xattr).
  const back = receiver.writes(2, { access: rsyncAclOf(named), defaults: null }, 0o100674, 0o100644);
  assert.equal(back.length, 1);
  assert.equal(decodePosixAcl(back[0]!.blob!).map((x) => [x.tag, x.perm]), [[ACL_USER_OBJ, 6], [ACL_GROUP_OBJ, 4], [ACL_OTHER, 4]]);
  // A default ACL the sender does not have is removed.
  assert.equal(receiver.writes(3, { access: aclFromMode(0o700), defaults: rsyncAclOf(dirDefault) }, 0o40700, 0o40700), [{ kind: 'default', blob: null }]);
  assert.ok(receiver.differs(0, plain(0o670, false), 0o100670), 'itemized as differing');
  assert.not.ok(receiver.differs(0, { access: rsyncAclOf(named), defaults: null }, 0o100670), 'the same ACL is no change');
});

test('the receiver maps named ids (users and groups apart) and puts in the mask a list needs', async () => {
  const receiver = new AclReceiver();
  // A new access ACL: NAME_LIST only, user 7 rw, group 9 r; no mask (the mode's group bits give it).
  await receiver.receive(reader([0, 0x10, 2, 7, (6 << 2) | 2, 9, 4 << 2]), 0, 0o100640);
  receiver.mapIds((id) => id + 1000, (id) => id + 2000);
  const blob = receiver.writes(0, { access: aclFromMode(0o640), defaults: null }, 0o100640, 0o100640)[0]!.blob!;
  assert.equal(decodePosixAcl(blob).map((x) => [x.tag, x.perm, x.id]), [
    [ACL_USER_OBJ, 6, 0xffffffff],
    [ACL_USER, 6, 1007],
    [ACL_GROUP_OBJ, 4, 0xffffffff],
    [ACL_GROUP, 4, 2009],
    [ACL_MASK, 4, 0xffffffff],
    [ACL_OTHER, 0, 0xffffffff],
  ]);
});

test("change_sacl_perms: a directory's sticky bit going on, a file's setuid going off: no group or other bits until the chmod", () => {
  const sent = { ...emptyAcl(), names: [{ id: 5, access: 7, user: true }], maskObj: 7 };
  assert.is(withModePerms(sent, 0o40755, 0o41775, true).racl.maskObj, 0);
  assert.is(withModePerms(sent, 0o41755, 0o41775, true).racl.maskObj, 7, 'already sticky');
  assert.is(withModePerms(sent, 0o104755, 0o100755, false).racl.otherObj, 0);
  assert.is(withModePerms(sent, 0o100755, 0o100750, false).racl.otherObj, 0);
  assert.is(withModePerms(sent, 0o100700, 0o100755, false).mode, 0o100755);
});

test('hostile ACL data: an index past the table, unknown flags, bits out of range, a huge count: ProtocolError, nothing kept', async () => {
  const bad: Array<[number[], RegExp]> = [
    [[5], /access ACL index 5 > 0/],
    [[0, 0x20], /unknown flags 0x20/],
    [[0, 0x01, 8], /user_obj value out of range/],
    [[0, 0x04, 16], /mask_obj value out of range/],
    [[0, 0x10, 0xc1, 0x70, 0x11], /ACL count 70000 out of range/], // varint 70000
    [[0, 0x10, 1, 7, 8 << 2], /named entry value out of range/],
  ];
  for (const [bytes, why] of bad) {
    const receiver = new AclReceiver();
    try {
      await receiver.receive(reader(bytes), 0, 0o100644);
      assert.unreachable(`accepted ${bytes.join(',')}`);
    } catch (err) {
      assert.instance(err, ProtocolError, String(err));
      assert.match((err as Error).message, why);
    }
    assert.is(receiver.acls(0), null, 'nothing kept');
  }
  // A directory's default ACL index is checked against the default table.
  const receiver = new AclReceiver();
  try {
    await receiver.receive(reader([0, 0, 1]), 0, 0o40755);
    assert.unreachable('accepted a default ACL index into an empty table');
  } catch (err) {
    assert.instance(err, ProtocolError);
    assert.match((err as Error).message, /default ACL index 1 > 0/);
  }
});

test.run();
