// The live mirror with -X and -A (issue 13): an xattr set, changed or removed on a file or a directory
// raises IN_ATTRIB, and the batch that follows carries it to the mirror. Against a real rsyncd:
// after each change the mirror's names and values equal what `rsync -aX` pushes of the same
// source into the same daemon (test/helpers/xattrs.ts), and the trees are the same; with -A the
// ACLs (Linux's system.posix_acl_* xattrs) set, changed and removed equal `rsync -aA`'s. The config
// keys that turn it on (Lua rsync.xattrs/acls, YAML xattrs/acls) are checked to give -X/-A.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { lstatSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { run } from './helpers/cli.js';
import { setTimes } from './helpers/fstree.js';
import { calls, diffXattrTrees, makeXattrTree, changeXattrs, removeX, setX, xattrTree, binaryValue } from './helpers/xattrs.js';
import { startLiveMirror, type LiveMirror } from '../src/live/index.js';
import { DEFAULT_TRANSFER } from '../protocol/args.js';
import { ACL_GROUP, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER, ACL_USER, ACL_USER_OBJ, decodePosixAcl, encodePosixAcl, type PosixAclEntry } from '../protocol/acls.js';
import { runLuaConfig } from '../src/config/lua.js';
import { readYamlConfig } from '../src/config/yaml.js';

let daemon: TestDaemon;
let work: string;
let mirror: LiveMirror | undefined;
let src: string;
const logs: string[] = [];

test.before(async () => {
  daemon = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'lsyncd-live-xattrs-'));
});
test.after(async () => {
  await mirror?.stop({ timeoutMs: 2000 });
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

const url = (path: string) => `rsync://127.0.0.1:${daemon.port}/push/${path}`;

/** rsync's own -aX push of the source, the reference the mirror is held to. */
async function rsyncReference(): Promise<string> {
  const r = await run('rsync', ['-aX', '--delete', `${src}/`, url('reference/')]);
  assert.is(r.status, 0, r.stderr.toString());
  return join(daemon.modulePath('push'), 'reference');
}

/** Poll (≤ 10 s) until the mirror's xattrs and tree equal rsync's push of the same source. */
async function matchesRsync(what: string): Promise<void> {
  const reference = await rsyncReference();
  const mirrored = join(daemon.modulePath('push'), 'mirror');
  const deadline = Date.now() + 10_000;
  let diff: string[] = [];
  for (;;) {
    diff = [...diffXattrTrees(xattrTree(reference), xattrTree(mirrored)), ...diffTrees(await snapshot(reference), await snapshot(mirrored))];
    if (!diff.length || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(diff, [], `${what}: the mirror differs from rsync -aX\n${logs.slice(-20).join('\n')}`);
}

test('startup: a tree with xattrs on files and directories is mirrored as rsync -aX pushes it', async () => {
  src = join(work, 'src');
  await makeXattrTree(src);
  mirror = await startLiveMirror({
    source: src,
    targets: [{ target: { host: '127.0.0.1', port: daemon.port, module: 'push', path: 'mirror' }, session: {} }],
    transfer: { ...DEFAULT_TRANSFER, xattrs: 1 },
    delay: 0.05,
    retry: { initialMs: 100, maxMs: 1000 },
    onLog: (level, message) => logs.push(`${level} ${message}`),
  });
  await mirror.ready;
  await matchesRsync('startup');
  // The tree really carries xattrs (the comparison is not of two empty sets).
  assert.match(xattrTree(join(daemon.modulePath('push'), 'mirror')).get('long.txt')!, 'user.long=');
});

test('a name set on a file reaches the mirror (IN_ATTRIB alone, no content change)', async () => {
  setX(join(src, 'none.txt'), 'user.fresh', 'set while watched');
  await matchesRsync('set on a file');
});

test("a directory's value changed, and a long (digest) value replaced", async () => {
  setX(join(src, 'sub'), 'user.dir', 'another directory value');
  setX(join(src, 'long.txt'), 'user.long', binaryValue(500, 11));
  await matchesRsync('changed');
});

test('a name removed from a file and from a directory', async () => {
  removeX(join(src, 'small.txt'), 'user.short');
  removeX(join(src, 'sub'), 'user.dirlong');
  await matchesRsync('removed');
});

test('a new file and a new directory created with xattrs', async () => {
  await mkdir(join(src, 'made'));
  setX(join(src, 'made'), 'user.made', 'dir');
  await writeFile(join(src, 'made/new.txt'), 'new\n');
  setX(join(src, 'made/new.txt'), 'user.made', 'file');
  // rsync leaves a new item's mtime alone when it is in the source's second: fixed times, as the other suites.
  await setTimes(src);
  await matchesRsync('created');
});

test('every kind of change at once (added, changed, removed, a set emptied, a set shared)', async () => {
  await changeXattrs(src);
  await matchesRsync('all changes');
  const status = mirror!.status();
  assert.is(status.targets[0]!.synced, true);
});

const ACCESS = Buffer.from('system.posix_acl_access');
const DEFAULT = Buffer.from('system.posix_acl_default');
const entry = (tag: number, perm: number, id = 0): PosixAclEntry => ({ tag, perm, id });
const setAcl = (path: string, which: Buffer, entries: PosixAclEntry[]) => calls().set(Buffer.from(path), which, encodePosixAcl(entries));

/** Every path (relative) → its access and default ACLs as text (symlinks skipped). */
function aclTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const show = (blob: Buffer | null) => (blob ? decodePosixAcl(blob).map((x) => `${x.tag}:${x.id === 0xffffffff ? '' : x.id}:${x.perm}`).join(',') : '-');
  const visit = (rel: string): void => {
    const abs = rel === '.' ? root : join(root, rel);
    const st = lstatSync(abs);
    if (st.isSymbolicLink()) return;
    out.set(rel, `${show(calls().get(Buffer.from(abs), ACCESS))} / ${show(st.isDirectory() ? calls().get(Buffer.from(abs), DEFAULT) : null)}`);
    if (st.isDirectory()) for (const name of readdirSync(abs).sort()) visit(rel === '.' ? name : join(rel, name));
  };
  visit('.');
  return out;
}

test('-A: ACLs set and removed while watched reach the mirror as rsync -aA pushes them', async () => {
  await mirror?.stop({ timeoutMs: 2000 });
  src = join(work, 'acl-src');
  await mkdir(join(src, 'shared'), { recursive: true });
  await writeFile(join(src, 'plain.txt'), 'plain\n');
  await writeFile(join(src, 'named.txt'), 'named\n');
  setAcl(join(src, 'named.txt'), ACCESS, [entry(ACL_USER_OBJ, 6), entry(ACL_USER, 4, 1), entry(ACL_GROUP_OBJ, 4), entry(ACL_GROUP, 5, 4), entry(ACL_MASK, 7), entry(ACL_OTHER, 0)]);
  setAcl(join(src, 'shared'), DEFAULT, [entry(ACL_USER_OBJ, 7), entry(ACL_USER, 5, 1), entry(ACL_GROUP_OBJ, 5), entry(ACL_MASK, 5), entry(ACL_OTHER, 1)]);
  await setTimes(src);
  mirror = await startLiveMirror({
    source: src,
    targets: [{ target: { host: '127.0.0.1', port: daemon.port, module: 'push', path: 'acl-mirror' }, session: {} }],
    transfer: { ...DEFAULT_TRANSFER, acls: true },
    delay: 0.05,
    retry: { initialMs: 100, maxMs: 1000 },
    onLog: (level, message) => logs.push(`${level} ${message}`),
  });
  await mirror.ready;
  const same = async (what: string) => {
    const r = await run('rsync', ['-aA', '--delete', `${src}/`, url('acl-reference/')]);
    assert.is(r.status, 0, r.stderr.toString());
    const reference = join(daemon.modulePath('push'), 'acl-reference');
    const mirrored = join(daemon.modulePath('push'), 'acl-mirror');
    const deadline = Date.now() + 10_000;
    let diff: string[] = [];
    for (;;) {
      const want = aclTree(reference);
      const got = aclTree(mirrored);
      diff = [...[...want].filter(([k, v]) => got.get(k) !== v).map(([k, v]) => `${k}: want ${v} got ${got.get(k)}`), ...diffTrees(await snapshot(reference), await snapshot(mirrored))];
      if (!diff.length || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(diff, [], `${what}: the mirror differs from rsync -aA\n${logs.slice(-20).join('\n')}`);
  };
  await same('startup');
  assert.match(aclTree(join(daemon.modulePath('push'), 'acl-mirror')).get('named.txt')!, `${ACL_USER}:1:4`);
  setAcl(join(src, 'plain.txt'), ACCESS, [entry(ACL_USER_OBJ, 6), entry(ACL_GROUP_OBJ, 4), entry(ACL_GROUP, 4, 4), entry(ACL_MASK, 4), entry(ACL_OTHER, 4)]);
  await same('an ACL set on a plain file');
  calls().remove(Buffer.from(join(src, 'shared')), DEFAULT);
  setAcl(join(src, 'named.txt'), ACCESS, [entry(ACL_USER_OBJ, 6), entry(ACL_USER, 6, 1), entry(ACL_GROUP_OBJ, 4), entry(ACL_MASK, 6), entry(ACL_OTHER, 4)]);
  await same('a default ACL removed, an entry changed');
});

test('config files: Lua rsync.xattrs/rsync.acls and YAML xattrs/acls give the live mirror -X/-A', () => {
  const lua = runLuaConfig('sync { default.rsync, source = "/s", target = "h::m", rsync = { xattrs = true, acls = true } }', 'f.lua');
  const luaWords = lua.syncs[0]!.options.flatMap((o) => o.args);
  assert.ok(luaWords.includes('--xattrs') && luaWords.includes('--acls'), luaWords.join(' '));
  const extra = runLuaConfig('sync { default.rsync, source = "/s", target = "h::m", rsync = { _extra = { "-X", "-A" } } }', 'f.lua');
  const extraWords = extra.syncs[0]!.options.flatMap((o) => o.args);
  assert.ok(extraWords.includes('--xattrs') && extraWords.includes('--acls'), extraWords.join(' '));
  const yaml = readYamlConfig('syncs:\n  - source: /s\n    target: h::m\n    xattrs: 2\n    acls: true\n', 'f.yaml');
  assert.equal(yaml.syncs[0]!.options.map((o) => [o.key, o.args]), [
    ['xattrs', ['--xattrs', '--xattrs']],
    ['acls', ['--acls']],
  ]);
});

test.run();
