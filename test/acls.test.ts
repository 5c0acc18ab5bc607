// -A/--acls on our sending side against real rsync (issue 13): a tree with ACLs (named users and
// groups with a mask, a directory's default ACL and a file that inherits it, files with none),
// written as Linux's system.posix_acl_* xattrs through the addon (no setfacl here), pushed with
// `rsync -aA` and with ours into rsyncd, and pulled by a stock rsync from lsyncd serve beside
// rsyncd: every path's ACLs and modes compared exactly, before and after changes, at protocols
// 30-32 and with --numeric-ids. What is not done is refused: our pull, lsyncd serve receiving,
// protocol 29. Then protocol/acls.ts alone: the xattr format, the stripped access ACL, the wire
// bytes against a naive encoder.
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
import { memorySink } from './helpers/capture.js';

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
`;

test.before(async () => {
  ({ ours, theirs } = await startBoth(CONFIG));
  for (const dir of [ours.dir, theirs.dir]) {
    await mkdir(join(dir, 'push'));
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
  const named = [e(ACL_USER_OBJ, 6), e(ACL_USER, 4, 1), e(ACL_USER, 6, 2), e(ACL_GROUP_OBJ, 4), e(ACL_GROUP, 5, 4), e(ACL_MASK, 7), e(ACL_OTHER, 0)];
  setAcl(join(root, 'named.txt'), ACCESS, named);
  setAcl(join(root, 'same.txt'), ACCESS, named);
  setAcl(join(root, 'masked.txt'), ACCESS, [e(ACL_USER_OBJ, 7), e(ACL_GROUP_OBJ, 7), e(ACL_GROUP, 6, 1), e(ACL_MASK, 4), e(ACL_OTHER, 4)]);
  setAcl(join(root, 'shared'), DEFAULT, [e(ACL_USER_OBJ, 7), e(ACL_USER, 5, 1), e(ACL_GROUP_OBJ, 5), e(ACL_MASK, 5), e(ACL_OTHER, 1)]);
  await writeFile(join(root, 'shared/inherits.txt'), 'made under a default ACL\n');
  await mkdir(join(root, 'shared/sub'));
  await setTimes(root);
}

/** Changes: an entry's bits, a named entry removed, the default ACL gone, ACLs on a plain file. */
async function changeAcls(root: string): Promise<void> {
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

test('what is not done is refused: our pull (exit 1), lsyncd serve receiving (exit 4), protocol 29 (rsync words, exit 2)', async () => {
  const pull = await lsyncd(['--once', '-aA', daemonUrl(theirs, 'push/'), `${join(work, 'refused-pull')}/`]);
  assert.is(pull.status, 1, runText(pull));
  assert.match(pull.stderr.toString(), /-A\/--acls: our receiver does not take ACLs yet/);
  const src = join(work, 'refused-src');
  await mkdir(src);
  await writeFile(join(src, 'f'), 'f');
  const push = await run('rsync', ['-aA', `${src}/`, daemonUrl(ours, 'push/refused/')]);
  assert.is(push.status, 4, runText(push));
  assert.match(push.stderr.toString(), /lsyncd serve does not support --acls \(-A\) when receiving yet/);
  const old = await lsyncd(['--once', '-aA', '--protocol=29', `${src}/`, daemonUrl(theirs, 'push/p29/')]);
  assert.is(old.status, 2, runText(old));
  assert.ok(old.stderr.toString().includes('--acls requires protocol 30 or higher (negotiated 29).'), runText(old));
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

test.run();
