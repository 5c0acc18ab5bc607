// The package as npm builds and installs it (issue 15, the prebuilt addon): `prepack` builds the
// inotify addon into prebuilds/ (prebuildify), the tarball ships it, and its `install` script
// (node-gyp-build) finds it in a fresh project with no compiler on PATH, builds nothing, and the
// watcher gets events through inotify. Without a prebuild and without a compiler, install still
// succeeds with a one-line warning, and a mirror's status() and log say it polls, why, and the fix.
//
// The package is staged from this checkout's build (dist/, native/, package.json ...) in a temp
// dir, so `prepack` writes its build/ and prebuilds/ there and not into the checkout under the
// running suite. Dependencies come from the checkout's node_modules (the npm cache here lacks
// the registry metadata an `npm install --offline` needs); the install script runs as npm runs it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cp, mkdir, mkdtemp, readFile, realpath, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './helpers/cli.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));

let dir: string;
let staged: string;
/** The tarball with the prebuilt addon (`prepack` ran) and the one without (scripts off). */
let withPrebuild: string;
let withoutPrebuild: string;
/** PATH for the install: node and the package's bins, no compiler, make or python. */
let bareBin: string;
let daemon: TestDaemon;

/** Stage the package's shipped files and the files prepack needs, with the checkout's deps. */
async function stage(to: string): Promise<void> {
  await mkdir(join(to, 'dist'), { recursive: true });
  for (const f of ['package.json', 'binding.gyp', 'README.md', 'LICENSE']) await cp(join(CHECKOUT, f), join(to, f));
  await cp(join(CHECKOUT, 'native'), join(to, 'native'), { recursive: true });
  for (const d of ['src', 'protocol']) await cp(join(CHECKOUT, 'dist', d), join(to, 'dist', d), { recursive: true });
  await symlink(await realpath(join(CHECKOUT, 'node_modules')), join(to, 'node_modules'));
}

async function pack(from: string): Promise<string> {
  const packed = await run('sh', ['-c', 'cd "$PKG" && npm pack --ignore-scripts --pack-destination "$DEST"'], { PKG: from, DEST: dir }, 120_000);
  assert.is(packed.status, 0, packed.stderr);
  return join(dir, packed.stdout.toString().trim().split('\n').pop()!);
}

const tarList = async (tarball: string) => (await run('tar', ['-tzf', tarball])).stdout.toString().trim().split('\n');

/** A fresh ESM project with the tarball extracted where npm puts it, and its install script run as npm runs it. */
async function install(tarball: string, name: string) {
  const app = join(dir, name);
  const pkg = join(app, 'node_modules', 'lsyncd');
  await mkdir(pkg, { recursive: true });
  await writeFile(join(app, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  const untar = await run('tar', ['-xzf', tarball, '-C', pkg, '--strip-components=1']);
  assert.is(untar.status, 0, untar.stderr);
  await symlink(await realpath(join(CHECKOUT, 'node_modules')), join(pkg, 'node_modules'));
  const script = (JSON.parse(await readFile(join(pkg, 'package.json'), 'utf8')) as { scripts: { install: string } }).scripts.install;
  const env = {
    PATH: `${join(pkg, 'node_modules', '.bin')}:${bareBin}`,
    npm_config_build_from_source: 'false',
    // Were node-gyp to run, its headers are the local ones: nothing is fetched.
    npm_config_nodedir: '/usr',
    PKG: pkg,
    SCRIPT: script,
  };
  const result = await run('/bin/sh', ['-c', 'cd "$PKG" && eval "$SCRIPT"'], env, 120_000);
  return { app, pkg, result };
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lsyncd-package-'));
  bareBin = join(dir, 'bin');
  await mkdir(bareBin);
  await symlink(process.execPath, join(bareBin, 'node'));
  staged = join(dir, 'staged');
  await stage(staged);
  // The tarball as it would be without prepack (both have the same name: the first is moved aside).
  const plain = await pack(staged);
  withoutPrebuild = plain.replace(/\.tgz$/, '-plain.tgz');
  await rename(plain, withoutPrebuild);
  // `npm run prepack` is what `npm pack` runs first (npm puts its own node-gyp on PATH).
  const prepack = await run('sh', ['-c', 'cd "$PKG" && npm run prepack'], { PKG: staged }, 180_000);
  assert.is(prepack.status, 0, prepack.stderr);
  withPrebuild = await pack(staged);
  daemon = await startDaemon();
});

test.after(async () => {
  await daemon?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the install PATH has no compiler, make or python', async () => {
  for (const tool of ['g++', 'c++', 'cc', 'make', 'python3']) {
    const found = await run('/bin/sh', ['-c', `command -v ${tool}`], { PATH: bareBin });
    assert.is.not(found.status, 0, `${tool} is reachable`);
  }
});

test('prepack builds the addon for linux-x64 glibc into the tarball; nothing else is added', async () => {
  const files = await tarList(withPrebuild);
  assert.ok(files.includes('package/prebuilds/linux-x64/lsyncd.glibc.node'), files.join('\n'));
  assert.equal(files.filter((f) => !f.startsWith('package/prebuilds/')).sort(), (await tarList(withoutPrebuild)).sort());
  assert.not.ok(files.some((f) => f.startsWith('package/build/')));
});

test('install with a fitting prebuild: no build, and the watcher gets inotify events', async () => {
  const { app, pkg, result } = await install(withPrebuild, 'app-prebuilt');
  assert.is(result.status, 0, result.stderr);
  assert.not.match(result.stderr, /lsyncd:/);
  assert.not.ok(existsSync(join(pkg, 'build')), 'nothing was compiled');
  const watched = join(dir, 'watched');
  await mkdir(watched);
  await writeFile(
    join(app, 'probe.js'),
    `import { watch } from 'lsyncd';
     import { writeFileSync } from 'node:fs';
     import { createRequire } from 'node:module';
     const addon = createRequire(${JSON.stringify(join(pkg, 'package.json'))})('node-gyp-build').path(${JSON.stringify(pkg)});
     const w = watch(${JSON.stringify(watched)}, { backend: 'inotify' });
     w.on('events', (batch) => {
       console.log(JSON.stringify({ addon, backend: w.stats().backend, events: batch.map((e) => [e.type, e.path]) }));
       w.close();
     });
     writeFileSync(${JSON.stringify(join(watched, 'new.txt'))}, 'x');`,
  );
  const probe = await run('sh', ['-c', 'cd "$APP" && node probe.js'], { APP: app }, 30_000);
  assert.is(probe.status, 0, probe.stderr);
  const seen = JSON.parse(probe.stdout.toString()) as { addon: string; backend: string; events: [string, string][] };
  assert.is(seen.addon, join(pkg, 'prebuilds', 'linux-x64', 'lsyncd.glibc.node'));
  assert.is(seen.backend, 'inotify');
  assert.ok(seen.events.some(([type, path]) => type === 'create' && path === 'new.txt'), JSON.stringify(seen.events));
  assert.not.match(probe.stderr, /LSYNCD_NO_ADDON/);
});

test('install without a prebuild or a compiler: a one-line warning; the mirror says it polls, why, and the fix', async () => {
  const { app, pkg, result } = await install(withoutPrebuild, 'app-bare');
  assert.is(result.status, 0, result.stderr);
  assert.match(result.stderr, /lsyncd: no prebuilt inotify addon fits and it could not be compiled; the watcher will poll\. Fix: npm rebuild lsyncd/);
  assert.not.ok(existsSync(join(pkg, 'build', 'Release', 'inotify.node')));
  const src = join(dir, 'mirror-src');
  await mkdir(src);
  await writeFile(join(src, 'a.txt'), 'alpha\n');
  await writeFile(
    join(app, 'mirror.js'),
    `import { mirror } from 'lsyncd';
     const logs = [];
     const m = await mirror(${JSON.stringify(src + '/')}, ${JSON.stringify(`rsync://${daemon.host}:${daemon.port}/push/polled/`)}, {
       onLog: (level, text) => logs.push([level, text]),
     });
     await m.ready;
     const status = m.status();
     await m.stop();
     console.log(JSON.stringify({ backend: status.watcher.backend, pollingReason: status.pollingReason, logs }));`,
  );
  const out = await run('sh', ['-c', 'cd "$APP" && node mirror.js'], { APP: app }, 60_000);
  assert.is(out.status, 0, out.stderr);
  const seen = JSON.parse(out.stdout.toString()) as { backend: string; pollingReason: string; logs: [string, string][] };
  assert.is(seen.backend, 'poll');
  assert.match(seen.pollingReason, /the inotify addon could not be loaded \(No native build was found/);
  assert.match(seen.pollingReason, /npm rebuild lsyncd/);
  assert.ok(seen.logs.some(([level, text]) => level === 'warn' && text.includes(seen.pollingReason)), JSON.stringify(seen.logs));
  // And the warning on stderr, once.
  assert.is(out.stderr.match(/LSYNCD_NO_ADDON/g)?.length, 1, out.stderr);
  assert.is((await stat(join(daemon.modulePath('push'), 'polled', 'a.txt'))).size, 6);
});

test.run();
