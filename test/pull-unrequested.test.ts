// Issue 13: a pull refuses file-list names it did not ask for, as rsync 3.5's client does
// (protocol/implied-includes.ts). Against a real rsyncd, each compared with rsync 3.5's pull: a
// --files-from list naming `../../a` (rsyncd sanitizes it into `a`, which nobody asked for) at
// protocols 29-32, the ERROR line and exit 4, --trust-sender on both; a daemon-side `:FILE` list
// (unchecked, as in rsync); a relay that renames an entry on its way from rsyncd (a lying daemon)
// at 29-32, and one whose new name needs escaping; the plain pulls (the module, a subdirectory,
// -R with `/./`, wildcards, brackets, --files-from) still taken. The flag downgrade of a parent
// directory a lying sender marks as a content directory, through receiveFileList at 29-32, and
// the rules on their own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, run, type RunResult } from './helpers/cli.js';
import { snapshot, diffTrees, type Tree } from './helpers/tree.js';
import { setTimes } from './helpers/fstree.js';
import { startDaemonWithConfig, type ConfiguredDaemon } from './helpers/daemon.js';
import { daemonUrl, runText } from './helpers/serve.js';
import { memorySink, piecesSource } from './helpers/capture.js';
import { RequestedNames, UnrequestedNameError } from '../protocol/implied-includes.js';
import { receiveFileList } from '../protocol/flist-recv.js';
import { sendFileList } from '../protocol/flist-packed-send.js';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import type { FileEntry } from '../protocol/flist.js';
import { CF_SAFE_FLIST, CF_VARINT_FLIST_FLAGS } from '../protocol/compat.js';
import { S_IFDIR, S_IFREG } from '../protocol/modes.js';
import { EXIT } from '../protocol/errors.js';

const ROOT = process.getuid?.() === 0;
const PROTOCOLS = [32, 31, 30, 29];
let daemon: ConfiguredDaemon;
let work: string;

const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
${ROOT ? 'uid = root\ngid = root\n' : ''}
[src]
\tpath = ${dir}/src
\tread only = yes
`;

async function makeTree(src: string): Promise<void> {
  await mkdir(join(src, 'sub', 'deep'), { recursive: true });
  await mkdir(join(src, 'd', 'sub'), { recursive: true });
  await writeFile(join(src, 'a'), 'top\n');
  await writeFile(join(src, 'want-this-name'), 'the one asked for\n');
  await writeFile(join(src, 'br[1]'), 'brackets\n');
  await writeFile(join(src, 'sub', 'f'), 'f\n');
  await writeFile(join(src, 'sub', 'x.txt'), 'x\n');
  await writeFile(join(src, 'sub', 'y.txt'), 'y\n');
  await writeFile(join(src, 'sub', 'z.md'), 'z\n');
  await writeFile(join(src, 'sub', 'deep', 'g'), 'g\n');
  await writeFile(join(src, 'd', 'other'), 'other\n');
  await writeFile(join(src, 'd', 'sub', 'f'), 'd/sub/f\n');
  await writeFile(join(src, 'dotdot.txt'), '../../a\nsub/f\n');
  await setTimes(src);
}

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'lsyncd-pull-unrequested-'));
  daemon = await startDaemonWithConfig(CONFIG);
  await makeTree(join(daemon.dir, 'src'));
  await writeFile(join(work, 'dotdot.txt'), '../../a\nsub/f\n');
  await writeFile(join(work, 'names.txt'), 'sub/x.txt\nsub/./deep/g\nd/sub\nbr[1]\n');
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

const both = (a: RunResult, b: RunResult) => `rsync: ${runText(a)}\nours: ${runText(b)}`;

async function assertSameTrees(expected: string, actual: string, message: string): Promise<void> {
  const treeOf = async (dir: string): Promise<Tree> => (existsSync(dir) ? snapshot(dir) : new Map());
  const diff = diffTrees(await treeOf(expected), await treeOf(actual));
  assert.equal(diff, [], `${message}\n${diff.slice(0, 20).join('\n')}`);
}

/** The ERROR line rsync printed, if any. */
const errorLine = (r: RunResult): string | undefined => /(ERROR: rejecting unrequested file-list name: .*)$/m.exec(r.stderr.toString())?.[1];

let runs = 0;
/** rsync's pull and ours of `source` (a path in the module, or a URL) with the same options: the same exit code and tree, the same ERROR line. */
async function comparePull(source: string, options: string[], port = daemon.port): Promise<{ r: RunResult; o: RunResult }> {
  const label = `${runs++}`;
  const ref = join(work, `r-${label}`);
  const got = join(work, `o-${label}`);
  const url = daemonUrl({ port }, source);
  // Our pull is rsync's -rlpt.
  const r = await run('rsync', ['-rlpt', ...options, url, ref + '/']);
  const o = await run(process.execPath, [CLI, '--once', ...options, url, got + '/']);
  const what = `${source} ${options.join(' ')}`;
  assert.is(o.status, r.status, `exit codes (${what})\n${both(r, o)}`);
  assert.is(errorLine(o), errorLine(r), `the ERROR line (${what})\n${both(r, o)}`);
  await assertSameTrees(ref, got, `${what}\n${both(r, o)}`);
  return { r, o };
}

// --- a sanitizing daemon: rsyncd turns `../../a` into `a` -------------------------------------

for (const protocol of PROTOCOLS) {
  test(`--files-from naming ../../a at protocol ${protocol}: rsync's ERROR line and exit 4; --trust-sender takes it`, async () => {
    const list = `--files-from=${join(work, 'dotdot.txt')}`;
    const { o } = await comparePull('src/', [`--protocol=${protocol}`, list]);
    assert.is(o.status, EXIT.UNSUPPORTED, runText(o));
    assert.match(o.stderr.toString(), /^lsyncd: ERROR: rejecting unrequested file-list name: a$/m);
    const trusted = await comparePull('src/', [`--protocol=${protocol}`, list, '--trust-sender']);
    assert.is(trusted.o.status, 0, runText(trusted.o));
  });
}

test('a list on the daemon (--files-from=:FILE) is not checked, as rsync does not check it: the sanitized name is taken', async () => {
  for (const protocol of [32, 29]) {
    const { o } = await comparePull('src/', [`--protocol=${protocol}`, '--files-from=:dotdot.txt']);
    assert.is(o.status, 0, runText(o));
    assert.ok(existsSync(join(work, `o-${runs - 1}`, 'a')), 'a was taken');
  }
});

// --- a lying daemon: an entry renamed on its way -------------------------------------------------

/** A relay to rsyncd that replaces `from` with `to` (the same length) in what the daemon sends; counts the replacements. */
async function renamingRelay(from: string, to: string): Promise<{ port: number; renamed: () => number; close: () => Promise<void> }> {
  const a = Buffer.from(from);
  const b = Buffer.from(to);
  assert.is(a.length, b.length);
  let renamed = 0;
  const server: Server = createServer((client) => {
    const upstream = connect(daemon.port, '127.0.0.1');
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      for (let at = chunk.indexOf(a); at !== -1; at = chunk.indexOf(a, at + a.length)) {
        b.copy(chunk, at);
        renamed++;
      }
      client.write(chunk);
    });
    upstream.on('end', () => client.end());
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { port, renamed: () => renamed, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

for (const protocol of PROTOCOLS) {
  test(`a daemon that renames the requested file at protocol ${protocol}: rejected as rsync rejects it; --trust-sender takes it`, async () => {
    const relay = await renamingRelay('want-this-name', 'evil-name-here');
    try {
      const { o } = await comparePull('src/want-this-name', [`--protocol=${protocol}`], relay.port);
      assert.is(o.status, EXIT.UNSUPPORTED, runText(o));
      assert.match(o.stderr.toString(), /rejecting unrequested file-list name: evil-name-here$/m);
      const trusted = await comparePull('src/want-this-name', [`--protocol=${protocol}`, '--trust-sender'], relay.port);
      assert.is(trusted.o.status, 0, runText(trusted.o));
      assert.ok(relay.renamed() >= 4, `the relay renamed the entry (${relay.renamed()})`);
    } finally {
      await relay.close();
    }
  });
}

test('a renamed entry with a control byte and a fake escape in its name: the ERROR line escaped as rsync escapes it', async () => {
  const relay = await renamingRelay('want-this-name', 'ev\\#123\x01name-h');
  try {
    const { o } = await comparePull('src/want-this-name', [], relay.port);
    assert.is(o.status, EXIT.UNSUPPORTED, runText(o));
    assert.match(o.stderr.toString(), /rejecting unrequested file-list name: ev\\#134#123\\#001name-h$/m);
  } finally {
    await relay.close();
  }
});

// --- honest pulls are taken --------------------------------------------------------------------

test('the plain pulls are taken, as rsync takes them: the module, a subdirectory, a file, -R with /./, wildcards, brackets', async () => {
  const cases: Array<[string, string[]]> = [
    ['src/', []],
    ['src', []],
    ['src/sub', []],
    ['src/sub/', []],
    ['src/sub/f', []],
    ['src/sub/deep/g', ['-R']],
    ['src/sub/./deep', ['-R']],
    ['src/./d/sub/f', ['-R', '--delete']],
    ['src/sub/*.txt', []],
    ['src/sub/*.txt', ['-R']],
    ['src/s?b', []],
    ['src/br[1]', []],
    ['src/br\\[1]', []],
  ];
  for (const [source, options] of cases) {
    const { o } = await comparePull(source, options);
    assert.is(o.status, 0, `${source} ${options.join(' ')}: ${runText(o)}`);
  }
});

test('--files-from lists are taken as rsync takes them (names with /./, a directory, brackets; -R and not)', async () => {
  for (const options of [[], ['--no-relative']]) {
    for (const protocol of [32, 29]) {
      const { o } = await comparePull('src/', [...options, `--protocol=${protocol}`, `--files-from=${join(work, 'names.txt')}`]);
      assert.is(o.status, 0, runText(o));
    }
  }
});

// --- a parent directory flagged as a content directory -------------------------------------------

const file = (name: string): FileEntry => ({ name: Buffer.from(name), mode: S_IFREG | 0o644, size: 3, mtime: 5, uid: 0, gid: 0 });
const dir = (name: string, flags: { topDir: boolean; contentDir: boolean }): FileEntry => ({
  name: Buffer.from(name),
  mode: S_IFDIR | 0o755,
  size: 4096,
  mtime: 5,
  uid: 0,
  gid: 0,
  ...flags,
});

async function receive(entries: FileEntry[], protocol: number, requested?: RequestedNames) {
  const opts = { protocol, compatFlags: protocol >= 30 ? CF_SAFE_FLIST | (protocol >= 31 ? CF_VARINT_FLIST_FLAGS : 0) : 0 };
  const sink = memorySink();
  const w = new ByteWriter(sink);
  sendFileList(w, entries, opts);
  await w.flush();
  const reader = new ByteReader(piecesSource(sink.bytes()));
  reader.protocol = protocol;
  return receiveFileList(reader, { ...opts, recursive: true, ...(requested && { requested }) });
}

for (const protocol of PROTOCOLS) {
  test(`protocol ${protocol}: a parent dir sent as a content dir is taken as an implied one; an unrequested name stops the list`, async () => {
    const requested = new RequestedNames({ relative: true, recursive: true, dirs: false });
    requested.addArg('src/d/sub', true);
    // A lying sender: `d`, only the parent of d/sub, flagged as a top content dir (--delete would sweep it).
    const lying = [dir('d', { topDir: true, contentDir: true }), dir('d/sub', { topDir: true, contentDir: true }), file('d/sub/f')];
    const trusted = await receive(lying, protocol);
    assert.ok(trusted.files[0]!.contentDir, 'without the check the sender decides');
    const checked = await receive(lying, protocol, requested);
    assert.equal(
      checked.files.map((f) => [f.name.toString(), f.contentDir ?? null]),
      [['d', false], ['d/sub', true], ['d/sub/f', null]],
    );
    try {
      await receive([dir('d', { topDir: true, contentDir: false }), file('d/other')], protocol, requested);
      assert.unreachable('d/other was never asked for');
    } catch (e) {
      assert.instance(e, UnrequestedNameError);
      assert.is((e as UnrequestedNameError).exitCode, EXIT.UNSUPPORTED);
      assert.is((e as Error).message, 'ERROR: rejecting unrequested file-list name: d/other');
    }
  });
}

// --- the rules on their own ----------------------------------------------------------------------

test("the rules of an argument, as rsync's add_implied_include makes them", () => {
  const check = (opts: { relative: boolean; recursive: boolean; dirs: boolean }, arg: string, yes: Array<[string, boolean]>, no: Array<[string, boolean]>) => {
    const r = new RequestedNames(opts);
    r.addArg(arg, true);
    for (const [name, isDir] of yes) assert.ok(r.isRequested(Buffer.from(name), isDir), `${arg}: ${name} asked for`);
    for (const [name, isDir] of no) assert.not.ok(r.isRequested(Buffer.from(name), isDir), `${arg}: ${name} not asked for`);
  };
  const plain = { relative: false, recursive: false, dirs: false };
  const rec = { relative: false, recursive: true, dirs: false };
  const rel = { relative: true, recursive: true, dirs: false };
  check(plain, 'm/sub/f', [['f', false]], [['sub/f', false], ['g', false]]);
  check(rec, 'm/sub', [['sub', true], ['sub/x/y', false]], [['other', false], ['subx/y', false]]);
  check(rec, 'm/', [['anything/at/all', false]], []);
  check({ ...plain, dirs: true }, 'm/sub/', [['x', false]], [['x/y', false]]);
  check(rel, 'm/a/./b/c', [['b', true], ['b/c', false], ['b/c/d/e', false]], [['b', false], ['a', true], ['b/d', false]]);
  check(plain, 'm/s/*.txt', [['x.txt', false]], [['x.md', false], ['s/x.txt', false]]);
  check(rel, 'm/s/*.txt', [['s', true], ['s/x.txt', false], ['s/x.txt/in', false]], [['s/x.md', false]]);
  check(plain, 'm/br[1]', [['br1', false], ['br[1]', false]], [['br2', false]]);
  check(plain, 'm/a\\]b', [['a]b', false]], [['a\\]b', false]]);
  const empty = new RequestedNames(plain);
  empty.addArg('m/', true);
  assert.ok(empty.empty, 'the module alone without -r or -d asks nothing: no check');
  const r = new RequestedNames(rel);
  r.addArg('m/a/b', true);
  assert.ok(r.isParentOnly(Buffer.from('a')));
  assert.not.ok(r.isParentOnly(Buffer.from('a/b')));
  assert.ok(r.isParentOnly(Buffer.from('.')), "'.' is only a parent unless the root's contents were asked for");
  const all = new RequestedNames(rec);
  all.addArg('m/', true);
  assert.not.ok(all.isParentOnly(Buffer.from('.')));
  assert.is(new UnrequestedNameError(Buffer.from('a\nb')).message, 'ERROR: rejecting unrequested file-list name: a\\#012b');
});

test.run();
