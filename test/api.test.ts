// The public library (src/index.ts) as a Node developer gets it (issue 15): the package is packed
// (`npm pack`), laid out in a fresh ESM project's node_modules as npm installs it, and used
// through its exports map against a real rsyncd: listModules, push (itemized changes equal to
// rsync -i's), pull (a local-only file survives), list (equal to rsync --list-only), a mirror
// started and stopped, errors in the RsyncError family, AbortSignal; the types check under
// "nodenext" and "bundler"; internal paths are not importable; the README's example runs.
//
// `npm install --offline` of the tarball cannot work here: the npm cache holds the dependencies'
// tarballs but not their registry metadata (ENOTCACHED). So the tarball is extracted where npm
// would put it, and its dependencies are the checkout's node_modules; what is tested is the
// packed files and the exports map, as installed. Scripts are not run (no addon: the watcher polls).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { run } from './helpers/cli.js';
import { startDaemon, DEFAULT_MOTD, type TestDaemon } from './helpers/daemon.js';
import { setTimes } from './helpers/fstree.js';
import { snapshot, diffTrees } from './helpers/tree.js';

/** The checkout (dist/test/ is two levels below it). */
const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));

type Api = typeof import('../src/index.js');

let dir: string;
let app: string;
let tarball: string;
let api: Api;
let daemon: TestDaemon;

/** rsync's -i lines as our changes print them: `%i %n` (directories with their slash). */
const changeLines = (changes: ReadonlyArray<{ itemize: string; path: string; type: string; symlinkTarget?: string }>) =>
  changes
    .map((c) => `${c.itemize} ${c.path === '.' ? './' : c.type === 'dir' ? c.path + '/' : c.path}${c.symlinkTarget !== undefined ? ` -> ${c.symlinkTarget}` : ''}`)
    .sort();

async function makeSource(root: string): Promise<void> {
  await mkdir(join(root, 'sub', 'deeper'), { recursive: true });
  await writeFile(join(root, 'a.txt'), 'alpha\n');
  await writeFile(join(root, 'sub', 'b.bin'), Buffer.alloc(70_000, 7));
  await writeFile(join(root, 'sub', 'deeper', 'c.txt'), 'gamma\n');
  await symlink('a.txt', join(root, 'link'));
  await setTimes(root);
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lsyncd-api-'));
  // 1. Pack as npm publishes (scripts off: dist is this run's build, and `prepare` must not
  // rebuild it under the running suite).
  const packed = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], {}, 120_000);
  assert.is(packed.status, 0, packed.stderr);
  tarball = join(dir, packed.stdout.toString().trim().split('\n').pop()!);
  // 2. A fresh ESM project with the package where npm puts it.
  app = join(dir, 'app');
  const installed = join(app, 'node_modules', 'lsyncd');
  await mkdir(installed, { recursive: true });
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  const untar = await run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
  assert.is(untar.status, 0, untar.stderr);
  await symlink(await realpath(join(CHECKOUT, 'node_modules')), join(installed, 'node_modules'));
  // 3. The API as the app imports it (bare specifiers resolve from the app).
  await writeFile(join(app, 'entry.js'), "export * from 'lsyncd';\n");
  api = (await import(pathToFileURL(join(app, 'entry.js')).href)) as Api;
  daemon = await startDaemon();
});

test.after(async () => {
  await daemon?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the tarball holds the built library, the native sources, LICENSE and README, and no source map', async () => {
  const listing = await run('tar', ['-tzf', tarball]);
  const files = listing.stdout.toString().trim().split('\n').map((f) => f.replace(/^package\//, ''));
  const allowed = (f: string) => /^(dist\/src\/|dist\/protocol\/|native\/|prebuilds\/)/.test(f) || ['binding.gyp', 'package.json', 'README.md', 'LICENSE'].includes(f);
  assert.equal(files.filter((f) => !allowed(f)), []);
  assert.equal(files.filter((f) => f.endsWith('.map')), []);
  for (const f of ['LICENSE', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/protocol/index.js', 'dist/src/watcher/index.js', 'native/inotify.cc', 'binding.gyp']) {
    assert.ok(files.includes(f), `${f} ships`);
  }
  assert.not.ok(files.some((f) => f.startsWith('dist/test/') || f.startsWith('dist/bench/')));
  assert.match(await readFile(join(app, 'node_modules', 'lsyncd', 'LICENSE'), 'utf8'), /GNU GENERAL PUBLIC LICENSE\s+Version 2/);
});

test('listModules: the MOTD and the modules as strings, apart', async () => {
  const listing = await api.listModules(`${daemon.host}::`, { port: daemon.port });
  assert.equal(listing.motd, DEFAULT_MOTD);
  assert.equal(listing.modules, [
    { name: 'push', comment: 'writable module' },
    { name: 'secure', comment: 'needs auth' },
    { name: 'ro', comment: 'read-only module' },
  ]);
  const byObject = await api.listModules({ host: daemon.host, port: daemon.port });
  assert.equal(byObject, listing);
});

test("push: the tree lands in the module, its changes are rsync -i's, nothing is deleted unless asked", async () => {
  const src = join(dir, 'push-src');
  await makeSource(src);
  // The same push by rsync, for its -i lines.
  const theirs = await run('rsync', ['-rlpt', '-i', `${src}/`, `rsync://${daemon.host}:${daemon.port}/push/by-rsync/`]);
  assert.is(theirs.status, 0, theirs.stderr);
  const extra = join(daemon.modulePath('push'), 'api', 'only-remote.txt');
  await mkdir(join(daemon.modulePath('push'), 'api'), { recursive: true });
  await writeFile(extra, 'stays\n');
  const result = await api.push(`${src}/`, `rsync://${daemon.host}:${daemon.port}/push/api/`);
  assert.is(result.exitCode, 0);
  assert.is(result.stats.files, 7); // ., a.txt, link, sub, sub/b.bin, sub/deeper, sub/deeper/c.txt
  assert.is(result.stats.transferredFiles, 3);
  const rsyncLines = theirs.stdout.toString().trim().split('\n').filter((l) => /^[<>ch.*][fdLDS]/.test(l)).sort();
  // rsync's push into a new directory says cd+++ for '.'; ours into an existing one (only-remote.txt) says '.d..t'.
  assert.equal(changeLines(result.changes).filter((l) => !l.endsWith(' ./')), rsyncLines.filter((l) => !l.endsWith(' ./')));
  const link = result.changes.find((c) => c.path === 'link')!;
  assert.is(link.type, 'symlink');
  assert.is(link.symlinkTarget, 'a.txt');
  assert.ok(Buffer.isBuffer(link.pathBytes));
  assert.equal(diffTrees(await snapshot(src), await snapshot(join(daemon.modulePath('push'), 'by-rsync'))), []);
  assert.is(await readFile(extra, 'utf8'), 'stays\n');
  assert.equal(result.deleted, []);
  // With delete: the extra file goes, and is reported.
  const deleting = await api.push(`${src}/`, { host: daemon.host, port: daemon.port, module: 'push', path: 'api' }, { delete: true });
  assert.is(deleting.exitCode, 0);
  assert.equal(deleting.deleted.map((d) => d.path), ['only-remote.txt']);
  assert.equal(diffTrees(await snapshot(src), await snapshot(join(daemon.modulePath('push'), 'api'))), []);
});

test('pull: the module comes down; a local-only file survives a pull without delete', async () => {
  const src = join(dir, 'pull-src');
  await makeSource(src);
  const put = await run('rsync', ['-rlpt', `${src}/`, `rsync://${daemon.host}:${daemon.port}/push/pulled/`]);
  assert.is(put.status, 0, put.stderr);
  const dest = join(dir, 'pull-dest');
  await mkdir(dest);
  await writeFile(join(dest, 'local-only.txt'), 'mine\n');
  const result = await api.pull(`${daemon.host}::push/pulled/`, dest, { port: daemon.port });
  assert.is(result.exitCode, 0);
  assert.is(result.stats.transferredFiles, 3);
  assert.ok(result.changes.some((c) => c.itemize === '>f+++++++++' && c.path === 'sub/b.bin'));
  assert.is(await readFile(join(dest, 'local-only.txt'), 'utf8'), 'mine\n');
  const pulled = await snapshot(dest);
  pulled.delete('local-only.txt');
  assert.equal(diffTrees(await snapshot(src), pulled), []);
});

test('list: the entries rsync --list-only shows, as fields', async () => {
  const url = `rsync://${daemon.host}:${daemon.port}/push/pulled/`;
  const theirs = await run('rsync', ['-r', '--list-only', '--no-motd', url]);
  assert.is(theirs.status, 0, theirs.stderr);
  // "drwxr-xr-x          4,096 2024/01/02 03:04:05 name": size (commas) and name.
  const rsyncEntries = theirs.stdout.toString().trim().split('\n').map((line) => {
    const m = /^\S+\s+([\d,]+) \S+ \S+ (.*)$/.exec(line)!;
    return `${m[2]!.replace(/ -> .*$/, '')} ${m[1]!.replace(/,/g, '')}`;
  });
  const ours = await api.list(url, { recursive: true });
  assert.equal(ours.map((e) => `${e.path} ${e.size}`), rsyncEntries);
  const file = ours.find((e) => e.path === 'sub/b.bin')!;
  assert.is(file.type, 'file');
  assert.is(file.size, 70_000);
  assert.ok(file.mtime instanceof Date);
  assert.is(ours.find((e) => e.path === 'link')!.symlinkTarget, 'a.txt');
  // Without recursive (rsync's default for a listing): one level.
  const top = await api.list(url);
  assert.equal(top.map((e) => e.path), ['.', 'a.txt', 'link', 'sub']);
});

test('mirror: started, follows a change, stopped', async () => {
  const src = join(dir, 'mirror-src');
  await makeSource(src);
  const mirrored = join(daemon.modulePath('push'), 'mirrored');
  const m = await api.mirror(src, `rsync://${daemon.host}:${daemon.port}/push/mirrored/`, { watcher: { backend: 'poll', pollInterval: 100 } });
  try {
    assert.type(m[Symbol.asyncDispose], 'function');
    await m.ready;
    assert.equal(diffTrees(await snapshot(src), await snapshot(mirrored)), []);
    await writeFile(join(src, 'new.txt'), 'late\n');
    const deadline = Date.now() + 20_000;
    while ((await readFile(join(mirrored, 'new.txt'), 'utf8').catch(() => '')) !== 'late\n') {
      assert.ok(Date.now() < deadline, 'new.txt reached the module');
      await new Promise((r) => setTimeout(r, 100));
    }
    const status = m.status();
    assert.is(status.targets.length, 1);
    assert.ok(status.targets[0]!.synced);
  } finally {
    const stopped = await m.stop();
    assert.equal(stopped.unpushed, [0]);
  }
  assert.is(m.status().targets[0]!.state, 'stopped');
});

test('errors: one RsyncError family, with rsync exit codes; AbortSignal rejects with an AbortError', async () => {
  const refused = await api.push(join(dir, 'push-src') + '/', `rsync://${daemon.host}:${daemon.port}/no-such-module/`).catch((e: unknown) => e);
  assert.instance(refused, api.RsyncError);
  assert.instance(refused, api.DaemonRefusalError);
  assert.is((refused as InstanceType<Api['RsyncError']>).exitCode, 5);
  const aborted = await api.pull(`rsync://${daemon.host}:${daemon.port}/push/pulled/`, join(dir, 'never'), { signal: AbortSignal.abort() }).catch((e: unknown) => e);
  assert.instance(aborted, api.AbortError);
  assert.instance(aborted, api.RsyncError);
  assert.is((aborted as InstanceType<Api['AbortError']>).code, 'ABORT_ERR');
  const usage = await api.list('not-a-daemon-address').catch((e: unknown) => e);
  assert.instance(usage, api.UsageError);
  const badFlag = await api.push(join(dir, 'push-src') + '/', `${daemon.host}::push/x`, { port: daemon.port, delete: 'yes' as unknown as boolean }).catch((e: unknown) => e);
  assert.instance(badFlag, api.UsageError);
  assert.match((badFlag as Error).message, /delete must be a boolean/);
  const badTimeout = await api.listModules(`${daemon.host}::`, { port: daemon.port, timeoutMs: -1 }).catch((e: unknown) => e);
  assert.instance(badTimeout, api.UsageError);
  let watcherError: unknown;
  try {
    api.watch(join(dir, 'missing-dir'), { backend: 'poll' });
  } catch (e) {
    watcherError = e;
  }
  assert.instance(watcherError, api.WatcherError);
  assert.instance(watcherError, api.RsyncError);
  assert.is((watcherError as InstanceType<Api['WatcherError']>).code, 'EROOT');
});

test('an abort during a pull closes the connection and rejects with an AbortError, leaving no temp file', async () => {
  const big = join(daemon.modulePath('push'), 'big');
  await mkdir(big, { recursive: true });
  await writeFile(join(big, 'large.bin'), Buffer.alloc(16 * 2 ** 20, 1));
  const dest = join(dir, 'abort-dest');
  const controller = new AbortController();
  // Aborted when the generator asks for large.bin: its data is on the way.
  const e = await api
    .pull(`rsync://${daemon.host}:${daemon.port}/push/big/`, dest, {
      signal: controller.signal,
      onChange: (change) => {
        if (change.path === 'large.bin') controller.abort();
      },
    })
    .catch((err: unknown) => err);
  assert.instance(e, api.AbortError);
  assert.equal(await readdir(dest), [], 'neither the file nor a temp file is left');
});

test('an abort during a push rejects with an AbortError; the daemon keeps no part of the file being sent', async () => {
  const src = join(dir, 'abort-push-src');
  await mkdir(src);
  await writeFile(join(src, 'a.txt'), 'first\n');
  await writeFile(join(src, 'big.bin'), Buffer.alloc(32 * 2 ** 20, 3));
  const controller = new AbortController();
  // a.txt is answered first (rsync's order); big.bin is then on its way.
  const e = await api
    .push(`${src}/`, `rsync://${daemon.host}:${daemon.port}/push/abort-push/`, {
      signal: controller.signal,
      onChange: (change) => {
        if (change.path === 'a.txt') controller.abort();
      },
    })
    .catch((err: unknown) => err);
  assert.instance(e, api.AbortError);
  // rsyncd removes its temp file once it sees the connection gone.
  const module = join(daemon.modulePath('push'), 'abort-push');
  const deadline = Date.now() + 10_000;
  let names = await readdir(module).catch(() => [] as string[]);
  while (names.some((n) => n !== 'a.txt') && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    names = await readdir(module).catch(() => [] as string[]);
  }
  assert.equal(names.filter((n) => n !== 'a.txt'), [], 'no big.bin, whole or partial');
});

test('the types check under nodenext, bundler and node10 (typesVersions for the sub-entries); internal paths are not importable', async () => {
  const tsc = join(await realpath(join(CHECKOUT, 'node_modules')), 'typescript', 'bin', 'tsc');
  await writeFile(
    join(app, 'use.ts'),
    `import { push, pull, list, listEntries, listModules, mirror, watch, serve, RsyncError, type TransferResult, type ItemizedChange, type TransferProgress } from 'lsyncd';
import { PROTOCOL_VERSION, ByteReader } from 'lsyncd/protocol';
import { PollWatcher, type WatchEvent } from 'lsyncd/watcher';
export async function sync(signal: AbortSignal): Promise<number> {
  const r: TransferResult = await push('/srv/www/', 'mirror.example::www', { delete: true, password: async () => 'pw', timeoutMs: 30_000, signal });
  const first: ItemizedChange | undefined = r.changes[0];
  await pull({ host: 'mirror.example', module: 'www' }, '/tmp/www', { exclude: ['*.tmp'], onProgress: (p: TransferProgress) => void [p.path, p.pathBytes.length, p.bytesDone] });
  for await (const e of listEntries('host::www', { recursive: true, signal })) void e.pathBytes;
  const entries = await list('rsync://mirror.example/www/', { recursive: true });
  const { motd, modules } = await listModules('mirror.example::');
  const m = await mirror('/srv/www', ['a::www', 'b::www'], { delayMs: 500 });
  const why: string | undefined = m.status().pollingReason;
  await m.stop({ timeoutMs: 1000 });
  const w = watch('/srv/www', { backend: 'poll' });
  w.on('events', (batch: WatchEvent[]) => void batch);
  const s = await serve({ port: 0, modules: [{ name: 'www', path: '/srv/www' }] });
  await s.close();
  void [first, entries, motd, modules, why, PROTOCOL_VERSION, ByteReader, PollWatcher];
  return r.exitCode;
}
export const isRsync = (e: unknown): boolean => e instanceof RsyncError && typeof e.exitCode === 'number';
// @ts-expect-error a pull's result has no such field
export const wrong = (r: TransferResult) => r.nonsense;
`,
  );
  for (const resolution of [{ module: 'nodenext', moduleResolution: 'nodenext' }, { module: 'esnext', moduleResolution: 'bundler' }, { module: 'esnext', moduleResolution: 'node10' }]) {
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { ...resolution, target: 'es2022', strict: true, noEmit: true, types: ['node'], typeRoots: [join(await realpath(join(CHECKOUT, 'node_modules')), '@types')] },
        files: ['use.ts'],
      }),
    );
    const checked = await run(process.execPath, [tsc, '-p', join(app, 'tsconfig.json')], {}, 120_000);
    assert.is(checked.status, 0, `${resolution.moduleResolution}: ${checked.stdout.toString()}${checked.stderr}`);
  }
  await writeFile(join(app, 'internal.js'), "export * from 'lsyncd/dist/src/transfer/push.js';\n");
  const internal = await import(pathToFileURL(join(app, 'internal.js')).href).catch((e: NodeJS.ErrnoException) => e);
  assert.is((internal as NodeJS.ErrnoException).code, 'ERR_PACKAGE_PATH_NOT_EXPORTED');
});

test("the README's library example runs as written", async () => {
  const readme = await readFile(join(CHECKOUT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## As a library'));
  const code = /```js\n([\s\S]*?)```/.exec(section)![1]!;
  await writeFile(join(app, 'example.js'), code);
  // uvu forces colours on for its children; the example's output is read as a pipe shows it.
  const ran = await run(process.execPath, [join(app, 'example.js')], { FORCE_COLOR: '0', NO_COLOR: '1' }, 60_000);
  assert.is(ran.status, 0, ran.stderr);
  const out = ran.stdout.toString();
  assert.ok(out.includes('index.html'), out);
  assert.match(out, /^www: the web site$/m);
  assert.match(out, /^exit code 0$/m);
  assert.match(out, /^<f\+{9} index\.html$/m);
  assert.match(out, /^file 15 index\.html$/m);
  assert.match(out, /^pulled 1 file\(s\)$/m);
});

test.run();
