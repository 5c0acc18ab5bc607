// --files-from everywhere (issue 13) and -k: a pull forwarding a local list (file, stdin,
// --from0, --no-relative, a big list) compared with rsync's pull from rsyncd; lsyncd serve as the
// sender of a forwarded list and of a list in the module, and as the receiver of a push with
// `:FILE`, compared with rsyncd under stock rsync 3.5 and 3.2.7 clients, with hostile lists
// (`../x`, absolute names, a huge line, names through a link out of the module); the push's
// --no-relative and a "/./" inside a name against rsync's push; -k on push, pull and serve.
// The pure parts (protocol/files-from.ts, walk-options.ts filesFromSource) on their own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, mkdir, chmod, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { CLI, lsyncd, run, type RunResult } from './helpers/cli.js';
import { snapshot, diffTrees, type Tree } from './helpers/tree.js';
import { setTimes } from './helpers/fstree.js';
import { oldRsync } from './helpers/old-rsync.js';
import { startBoth, daemonUrl, runText, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';
import { FilesFromForwarder, localFilesFromNames, readForwardedNames, FILES_FROM_NAME_MAX } from '../protocol/files-from.js';
import { ByteReader } from '../protocol/io.js';
import { MemoryCapError } from '../protocol/errors.js';
import { filesFromSource } from '../src/transfer/walk-options.js';

const ROOT = process.getuid?.() === 0;
let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;

const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
${ROOT ? 'uid = root\ngid = root\n' : ''}
[src]
\tpath = ${dir}/src
\tread only = yes
[w]
\tpath = ${dir}/w
\tread only = no
[ex]
\tpath = ${dir}/src
\tread only = yes
\texclude = sub/ many/f1*
`;

/** A huge line: past rsync's MAXPATHLEN, cut by both readers. */
const HUGE = 'h'.repeat(6000);

/**
 * `base/src`: files and nested dirs, a link to a directory inside (dl), one to a directory
 * outside (outdir), lists inside the module (one with names of every kind, a NUL-separated one,
 * a link to a list outside), and `base/outside` with a list and files nobody may be sent.
 */
async function makeTree(base: string): Promise<void> {
  const src = join(base, 'src');
  const outside = join(base, 'outside');
  await mkdir(join(src, 'sub', 'deep'), { recursive: true });
  await mkdir(join(src, 'many'), { recursive: true });
  await mkdir(join(outside, 'od'), { recursive: true });
  await mkdir(join(base, 'w'), { recursive: true });
  await writeFile(join(src, 'a'), 'top file\n');
  await writeFile(join(src, '#c'), 'a name that looks like a comment\n');
  await writeFile(join(src, 'sub', 'b'), 'in sub\n');
  await writeFile(join(src, 'sub', 'deep', 'c'), 'deep file\n');
  for (let i = 0; i < 300; i++) await writeFile(join(src, 'many', `f${i}`), `file ${i}\n`);
  await writeFile(join(outside, 'f'), 'secret\n');
  await writeFile(join(outside, 'od', 'g'), 'secret in a dir\n');
  await writeFile(join(outside, 'list'), 'a\n');
  await symlink('sub/deep', join(src, 'dl'));
  await symlink('../outside/od', join(src, 'outdir'));
  await symlink('../outside/list', join(src, 'listlink'));
  await writeFile(join(src, 'list.txt'), '# comment\nsub/deep\n\na\r\nsub/./deep/c\ndl\n');
  await writeFile(join(src, 'list0.txt'), 'sub/b\0#c\0dl/c\0');
  await setTimes(src);
  await setTimes(outside);
  await setTimes(join(base, 'w'));
}

test.before(async () => {
  ({ ours, theirs } = await startBoth(CONFIG));
  work = await mkdtemp(join(tmpdir(), 'lsyncd-files-from-'));
  for (const dir of [ours.dir, theirs.dir, work]) {
    await chmod(dir, 0o755);
    await makeTree(dir);
  }
  const lists: Record<string, string | Buffer> = {
    'plain.txt': 'sub/deep\na\n#c\nsub/b\n',
    'dotted.txt': 'sub/./deep/c\n./a\nsub/deep/\n',
    'dirs.txt': 'sub/\nsub/deep/c\ndl\n',
    'nul.txt': 'sub/b\0#c\0\0dl/c\0',
    'hostile.txt': `../outside/f\n/etc/hostname\noutdir/g\noutdir\n${HUGE}\nsub/deep/c\n`,
    // Names the sender sanitizes into others: rsync's client then rejects what it did not ask for.
    'dotdot.txt': '../../a\nsub/../../../sub/b\n',
    // 300 files listed ten times each, CRLF: a list bigger than the socket buffers both ways.
    'big.txt': Array.from({ length: 10 }, () => Array.from({ length: 300 }, (_, i) => `many/f${i}\r\n`).join('')).join(''),
  };
  for (const [name, text] of Object.entries(lists)) await writeFile(join(work, name), text);
});
test.after(async () => {
  await ours?.stop();
  await theirs?.stop();
  await rm(work, { recursive: true, force: true });
});

/** A directory's tree, empty when the transfer never made it. */
async function treeOf(dir: string): Promise<Tree> {
  return existsSync(dir) ? snapshot(dir) : new Map();
}

async function assertSameTrees(expected: string, actual: string, message: string): Promise<void> {
  const diff = diffTrees(await treeOf(expected), await treeOf(actual));
  assert.equal(diff, [], `${message}\n${diff.slice(0, 20).join('\n')}`);
}

const both = (a: RunResult, b: RunResult) => `first: ${runText(a)}\nsecond: ${runText(b)}`;

// --- the pure parts ---------------------------------------------------------------------------

test('forwarding converts a local list as rsync does, whatever the chunks', () => {
  const cases: Array<[string, boolean, string]> = [
    ['a\nb\r\n\n\nc', false, 'a\0b\0c\0\0'],
    ['\n\na\n', false, 'a\0\0'],
    ['a\0\0b\0', true, 'a\0b\0\0'],
    ['a\nb', true, 'a\nb\0\0'],
    ['', false, '\0'],
    ['#x\n;y\n', false, '#x\0;y\0\0'],
  ];
  for (const [input, from0, wire] of cases) {
    for (let cut = 0; cut <= input.length; cut++) {
      const f = new FilesFromForwarder(from0);
      const got = Buffer.concat([f.chunk(Buffer.from(input.slice(0, cut))), f.chunk(Buffer.from(input.slice(cut))), f.end()]);
      assert.equal(got.toString('latin1'), wire, `${JSON.stringify(input)} cut at ${cut}`);
    }
  }
});

test('a local list: comments and empty lines skipped, names cut at MAXPATHLEN - 1', () => {
  const names = [...localFilesFromNames(Buffer.from(`# c\n;d\n\na\r\n${HUGE}\nb`), false)].map((n) => n.toString());
  assert.equal(names, ['a', HUGE.slice(0, FILES_FROM_NAME_MAX), 'b']);
  assert.equal([...localFilesFromNames(Buffer.from('x\ny\0#z\0'), true)].map(String), ['x\ny']);
});

test('a forwarded list: names up to the empty one, a huge one cut (the rest dropped), comments kept, memory charged', async () => {
  const wire = Buffer.from(`#a\0${HUGE}\0b\0\0after`);
  for (const size of [1, 7, 4096, wire.length]) {
    const chunks: Buffer[] = [];
    for (let at = 0; at < wire.length; at += size) chunks.push(wire.subarray(at, at + size));
    const reader = new ByteReader(async () => chunks.shift() ?? null);
    const names = await readForwardedNames(reader);
    assert.equal(names.map(String), ['#a', HUGE.slice(0, FILES_FROM_NAME_MAX), 'b'], `chunks of ${size}`);
    assert.is((await reader.readBuf(5)).toString(), 'after', 'what follows the list is left to read');
  }
  let charged = 0;
  const budget = {
    charge(bytes: number) {
      charged += bytes;
      if (charged > 200) throw new MemoryCapError('cap');
    },
  };
  const many = [Buffer.from('abcdefghij\0'.repeat(50) + '\0')];
  const reader = new ByteReader(async () => many.shift() ?? null);
  try {
    await readForwardedNames(reader, budget);
    assert.unreachable('the budget stops the list');
  } catch (e) {
    assert.instance(e, MemoryCapError);
  }
});

test('names sanitized as rsync\'s sender does: with -R a "/./" marks the base, without -R the last component', () => {
  const show = (line: string, relative: boolean) => {
    const s = filesFromSource(Buffer.from(line), relative);
    return `${s.baseDir}|${s.name.toString()}|${s.dirLike ? 'd' : ''}${s.leadingDot ? '.' : ''}`;
  };
  assert.is(show('sub/./deep/c', true), 'sub|deep/c|');
  assert.is(show('./a', true), '|a|.');
  assert.is(show('/etc/hostname', true), '|etc/hostname|');
  assert.is(show('../../x', true), '|x|');
  assert.is(show('a/../../../b', true), '|b|');
  assert.is(show('sub/deep/', true), '|sub/deep|d');
  assert.is(show('sub/deep/c', false), 'sub/deep|c|');
  assert.is(show('sub/', false), 'sub|.|d');
  assert.is(show('sub/./deep', false), 'sub|deep|');
  assert.is(show('..', false), '|.|d');
});

// --- a pull forwarding a local list, against rsync's pull from rsyncd -------------------------

/** rsync's pull and ours from rsyncd with the same options: the same exit code, the same tree. */
async function comparePull(label: string, options: string[], protocol?: number, stdin?: string): Promise<RunResult> {
  const ref = join(work, `pull-r-${label}`);
  const got = join(work, `pull-o-${label}`);
  const url = daemonUrl(theirs, 'src/');
  const proto = protocol ? [`--protocol=${protocol}`] : [];
  const viaStdin = (command: string[]) => run('sh', ['-c', 'list="$1"; shift; exec "$@" < "$list"', 'sh', stdin!, ...command]);
  const rsyncArgs = ['rsync', '-rlpt', ...proto, ...options, url, ref + '/'];
  const ourArgs = [process.execPath, CLI, '--once', ...proto, ...options, url, got + '/'];
  const r = stdin ? await viaStdin(rsyncArgs) : await run(rsyncArgs[0]!, rsyncArgs.slice(1));
  const o = stdin ? await viaStdin(ourArgs) : await run(ourArgs[0]!, ourArgs.slice(1));
  assert.is(o.status, r.status, `exit codes (${label})\n${both(r, o)}`);
  await assertSameTrees(ref, got, `pull ${label}\n${both(r, o)}`);
  return o;
}

for (const protocol of [32, 31, 30, 29, 27]) {
  test(`pull --files-from=LOCAL at protocol ${protocol}: forwarded, the tree rsync's`, async () => {
    const o = await comparePull(`plain-${protocol}`, [`--files-from=${join(work, 'plain.txt')}`], protocol);
    assert.is(o.status, 0, runText(o));
    await comparePull(`nul-${protocol}`, [`--files-from=${join(work, 'nul.txt')}`, '--from0'], protocol);
    await comparePull(`big-${protocol}`, [`--files-from=${join(work, 'big.txt')}`], protocol);
  });
}

test('pull --files-from=- (stdin), --no-relative, "/./" names, dirs, -k', async () => {
  await comparePull('stdin', ['--files-from=-'], undefined, join(work, 'dotted.txt'));
  await comparePull('dotted', [`--files-from=${join(work, 'dotted.txt')}`]);
  await comparePull('norel', [`--files-from=${join(work, 'dirs.txt')}`, '--no-relative']);
  await comparePull('dirs-k', [`--files-from=${join(work, 'dirs.txt')}`, '-k']);
  const o = await comparePull('hostile', [`--files-from=${join(work, 'hostile.txt')}`]);
  assert.is(o.status, 23, runText(o));
});

test('pull: a name rsyncd sanitizes into another is rejected as unrequested, as rsync\'s client rejects it (exit 4)', async () => {
  const o = await comparePull('dotdot', [`--files-from=${join(work, 'dotdot.txt')}`]);
  assert.is(o.status, 4, runText(o));
  assert.match(o.stderr, /rejecting unrequested file-list name: a$/m);
});

test('pull with a missing local list: rsync\'s error, exit 1, before connecting', async () => {
  const o = await lsyncd(['--once', `--files-from=${join(work, 'no-such-list')}`, daemonUrl(theirs, 'src/'), join(work, 'never') + '/']);
  const r = await run('rsync', ['-rlpt', `--files-from=${join(work, 'no-such-list')}`, daemonUrl(theirs, 'src/'), join(work, 'never-r') + '/']);
  assert.is(o.status, 1, runText(o));
  assert.is(o.status, r.status, both(r, o));
  assert.match(o.stderr, /failed to open files-from file .*no-such-list/);
});

// --- lsyncd serve as the sender and the receiver, against rsyncd --------------------------------

/** A stock client's pull from lsyncd serve and from rsyncd: the same exit code, the same tree. */
async function compareServePull(client: string, label: string, options: string[]): Promise<{ o: RunResult; t: RunResult }> {
  const dests = { o: join(work, `serve-o-${label}`), t: join(work, `serve-t-${label}`) };
  const o = await run(client, ['-rlpt', ...options, daemonUrl(ours, 'src/'), dests.o + '/']);
  const t = await run(client, ['-rlpt', ...options, daemonUrl(theirs, 'src/'), dests.t + '/']);
  assert.is(o.status, t.status, `exit codes (${label})\nfrom ours: ${runText(o)}\nfrom rsyncd: ${runText(t)}`);
  await assertSameTrees(dests.t, dests.o, `serve pull ${label}\nfrom ours: ${runText(o)}\nfrom rsyncd: ${runText(t)}`);
  return { o, t };
}

test('serve: rsync 3.5 pulls with a forwarded list and with a list in the module, at 32, 30 and 29', async () => {
  for (const p of [32, 30, 29]) {
    const proto = `--protocol=${p}`;
    const { o } = await compareServePull('rsync', `local-${p}`, [proto, `--files-from=${join(work, 'plain.txt')}`]);
    assert.is(o.status, 0, runText(o));
    await compareServePull('rsync', `nul-${p}`, [proto, `--files-from=${join(work, 'nul.txt')}`, '--from0']);
    await compareServePull('rsync', `module-${p}`, [proto, '--files-from=:list.txt']);
    await compareServePull('rsync', `module0-${p}`, [proto, '--files-from=:list0.txt', '--from0']);
    await compareServePull('rsync', `big-${p}`, [proto, `--files-from=${join(work, 'big.txt')}`]);
  }
  await compareServePull('rsync', 'norel', [`--files-from=${join(work, 'dirs.txt')}`, '--no-relative']);
  await compareServePull('rsync', 'dotted', [`--files-from=${join(work, 'dotted.txt')}`]);
});

test('serve: hostile lists stay inside the module (`../`, absolute, a huge line, a link out), as rsyncd', async () => {
  const { o } = await compareServePull('rsync', 'hostile', [`--files-from=${join(work, 'hostile.txt')}`]);
  assert.is(o.status, 23, runText(o));
  const { o: k } = await compareServePull('rsync', 'hostile-k', [`--files-from=${join(work, 'hostile.txt')}`, '-k']);
  assert.is(k.status, 23, runText(k));
  // rsync's client rejects the sanitized names from either daemon alike.
  const { o: d } = await compareServePull('rsync', 'dotdot', [`--files-from=${join(work, 'dotdot.txt')}`]);
  assert.is(d.status, 4, runText(d));
  for (const dest of [join(work, 'serve-o-hostile'), join(work, 'serve-o-hostile-k')]) {
    const tree = await snapshot(dest);
    for (const name of tree.keys()) assert.not.ok(/secret/.test(name) || name === 'etc/hostname' || name.startsWith('outdir/'), `${name} was sent`);
    const leaked = [...tree.values()].some((n) => n.type === 'file' && /secret/.test(String(n.content ?? '')));
    assert.not.ok(leaked, 'nothing from outside the module');
  }
  // A list on the daemon outside the module, or through a link leading out: refused, nothing sent.
  for (const list of ['../outside/list', '/etc/passwd', 'listlink', 'no-such']) {
    const dest = join(work, `serve-refused-${list.replace(/\W/g, '')}`);
    const r = await run('rsync', ['-rlpt', `--files-from=:${list}`, daemonUrl(ours, 'src/'), dest + '/']);
    assert.ok(r.status !== 0, `${list}: ${runText(r)}`);
    assert.match(r.stderr, /failed to open files-from file/, list);
    const t = await run('rsync', ['-rlpt', `--files-from=:${list}`, daemonUrl(theirs, 'src/'), dest + '-t/']);
    assert.ok(t.status !== 0, `rsyncd refuses ${list} too`);
    assert.match(t.stderr, /failed to open files-from file/, list);
  }
});

test('serve: a module\'s exclude rules hold for listed names (a name below an excluded directory, an excluded name)', async () => {
  await writeFile(join(work, 'excluded.txt'), 'sub/deep/c\nsub/./deep/c\nsub\nmany/f12\nmany/f2\na\n');
  const dests = { o: join(work, 'ex-o'), t: join(work, 'ex-t') };
  const o = await run('rsync', ['-rlpt', `--files-from=${join(work, 'excluded.txt')}`, daemonUrl(ours, 'ex/'), dests.o + '/']);
  const t = await run('rsync', ['-rlpt', `--files-from=${join(work, 'excluded.txt')}`, daemonUrl(theirs, 'ex/'), dests.t + '/']);
  assert.is(o.status, t.status, both(t, o));
  await assertSameTrees(dests.t, dests.o, `module excludes\n${both(t, o)}`);
  assert.equal([...(await treeOf(dests.o)).keys()].sort(), ['a', 'many', 'many/f2']);
});

test('serve: rsync 3.2.7 pulls with a forwarded list and a module list; -k', async () => {
  const old = await oldRsync();
  await compareServePull(old, 'old-local', [`--files-from=${join(work, 'plain.txt')}`]);
  await compareServePull(old, 'old-module', ['--files-from=:list.txt']);
  await compareServePull(old, 'old-k', ['-k']);
  await compareServePull('rsync', 'k', ['-k']);
  await compareServePull('rsync', 'k-list', ['-k', `--files-from=${join(work, 'dirs.txt')}`]);
});

test('serve: a push with --files-from=:FILE (the module\'s list forwarded to the client), and with a local list', async () => {
  for (const [client, p] of [['rsync', 32], ['rsync', 30], ['rsync', 29], ['old', 32]] as const) {
    const bin = client === 'old' ? await oldRsync() : 'rsync';
    const name = `push-${client}-${p}`;
    for (const d of [ours.dir, theirs.dir]) await writeFile(join(d, 'w', 'list.txt'), 'sub/deep\na\n#c\n');
    const args = (d: { port: number }, list: string, dest: string) => ['-rlpt', `--protocol=${p}`, `--files-from=${list}`, join(work, 'src') + '/', daemonUrl(d, `w/${dest}/`)];
    const o = await run(bin, args(ours, ':list.txt', name));
    const t = await run(bin, args(theirs, ':list.txt', name));
    assert.is(o.status, t.status, both(t, o));
    await assertSameTrees(join(theirs.dir, 'w', name), join(ours.dir, 'w', name), `${name}\n${both(t, o)}`);
    const lo = await run(bin, args(ours, join(work, 'dotted.txt'), `${name}-local`));
    const lt = await run(bin, args(theirs, join(work, 'dotted.txt'), `${name}-local`));
    assert.is(lo.status, 0, runText(lo));
    assert.is(lo.status, lt.status, both(lt, lo));
    await assertSameTrees(join(theirs.dir, 'w', `${name}-local`), join(ours.dir, 'w', `${name}-local`), `${name}-local`);
  }
});

test('our pull from lsyncd serve with a local list equals it from rsyncd', async () => {
  for (const p of [32, 29]) {
    const dests = { o: join(work, `ours-o-${p}`), t: join(work, `ours-t-${p}`) };
    const o = await lsyncd(['--once', `--protocol=${p}`, `--files-from=${join(work, 'plain.txt')}`, daemonUrl(ours, 'src/'), dests.o + '/']);
    const t = await lsyncd(['--once', `--protocol=${p}`, `--files-from=${join(work, 'plain.txt')}`, daemonUrl(theirs, 'src/'), dests.t + '/']);
    assert.is(o.status, 0, runText(o));
    assert.is(t.status, 0, runText(t));
    await assertSameTrees(dests.t, dests.o, `ours from ours at ${p}`);
  }
});

// --- the push: --no-relative and "/./" inside names, -k --------------------------------------

/** rsync's push and ours into rsyncd's writable module: the same exit code, the same tree. */
async function comparePush(label: string, options: string[]): Promise<RunResult> {
  const r = await run('rsync', ['-rlpt', ...options, join(work, 'src') + '/', daemonUrl(theirs, `w/r-${label}/`)]);
  const o = await lsyncd(['--once', ...options, join(work, 'src') + '/', daemonUrl(theirs, `w/o-${label}/`)]);
  assert.is(o.status, r.status, `exit codes (${label})\n${both(r, o)}`);
  await assertSameTrees(join(theirs.dir, 'w', `r-${label}`), join(theirs.dir, 'w', `o-${label}`), `push ${label}\n${both(r, o)}`);
  return o;
}

test('push: --files-from with --no-relative and with "/./" inside names, as rsync', async () => {
  for (const list of ['dotted.txt', 'dirs.txt', 'plain.txt']) {
    const o = await comparePush(`norel-${list}`, [`--files-from=${join(work, list)}`, '--no-relative']);
    assert.is(o.status, 0, runText(o));
    await comparePush(`rel-${list}`, [`--files-from=${join(work, list)}`]);
  }
  await comparePush('norel-29', [`--files-from=${join(work, 'dotted.txt')}`, '--no-relative', '--protocol=29']);
  await comparePush('dotted-29', [`--files-from=${join(work, 'dotted.txt')}`, '--protocol=29']);
});

test('push: -k sends a link to a directory as the directory (other links stay links), with and without a list', async () => {
  const o = await comparePush('k', ['-k']);
  assert.is(o.status, 0, runText(o));
  const tree = await snapshot(join(theirs.dir, 'w', 'o-k'));
  assert.is(tree.get('dl')?.type, 'dir');
  assert.is(tree.get('listlink')?.type, 'symlink');
  await comparePush('k-list', ['-k', `--files-from=${join(work, 'dirs.txt')}`]);
  await comparePush('k-norel', ['-k', `--files-from=${join(work, 'dirs.txt')}`, '--no-relative']);
});

test('pull: -k asks the daemon\'s sender, as rsync', async () => {
  // rsyncd follows the module's link out of it and does not read it: exit 23, for rsync and us alike.
  const o = await comparePull('k', ['-k']);
  assert.is(o.status, 23, runText(o));
  const tree = await snapshot(join(work, 'pull-o-k'));
  assert.is(tree.get('dl')?.type, 'dir');
});

test.run();
