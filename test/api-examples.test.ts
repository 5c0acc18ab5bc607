// The programs in examples/ (docs/api.md shows them) run as a user runs them: copied into a fresh
// ESM project that has the packed package in its node_modules, given the test daemon as their
// target on the command line, and their output and effects checked against real rsync's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './helpers/cli.js';
import { startDaemon, DEFAULT_MOTD, type TestDaemon } from './helpers/daemon.js';
import { pseudoRandom, setTimes } from './helpers/fstree.js';
import { diffTrees, snapshot } from './helpers/tree.js';

const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLES = join(CHECKOUT, 'examples');

let dir: string;
let app: string;
let src: string;
let daemon: TestDaemon;
let module: string;

/** Run examples/NAME with ARGS from the app. */
const example = (name: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  run('sh', ['-c', 'cd "$APP" && exec node "examples/$NAME" "$@"', 'sh', ...args], { APP: app, NAME: name, ...env }, 60_000);

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lsyncd-examples-'));
  const packed = await run('sh', ['-c', 'cd "$PKG" && npm pack --ignore-scripts --pack-destination "$DEST"'], { PKG: CHECKOUT, DEST: dir }, 120_000);
  assert.is(packed.status, 0, packed.stderr);
  const tarball = join(dir, packed.stdout.toString().trim().split('\n').pop()!);
  app = join(dir, 'app');
  const installed = join(app, 'node_modules', 'lsyncd');
  await mkdir(installed, { recursive: true });
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  const untar = await run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
  assert.is(untar.status, 0, untar.stderr);
  await symlink(await realpath(join(CHECKOUT, 'node_modules')), join(installed, 'node_modules'));
  await cp(EXAMPLES, join(app, 'examples'), { recursive: true });
  src = join(dir, 'src');
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'a.txt'), 'alpha\n');
  await writeFile(join(src, 'scratch.tmp'), 'not pulled\n');
  await writeFile(join(src, 'sub', 'big.bin'), pseudoRandom(3 * 1024 * 1024, 3));
  await symlink('a.txt', join(src, 'link'));
  await setTimes(src);
  daemon = await startDaemon();
  module = `rsync://${daemon.host}:${daemon.port}/push`;
});

test.after(async () => {
  await daemon?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('every example is run here', async () => {
  assert.equal((await readdir(EXAMPLES)).sort(), ['list-modules.mjs', 'list.mjs', 'mirror.mjs', 'pull.mjs', 'push.mjs']);
});

test('list-modules.mjs: the MOTD and the modules rsync lists', async () => {
  const out = await example('list-modules.mjs', [`rsync://${daemon.host}:${daemon.port}/`]);
  assert.is(out.status, 0, out.stderr);
  const theirs = await run('rsync', [`rsync://${daemon.host}:${daemon.port}/`]);
  const rsyncModules = theirs.stdout.toString().trim().split('\n').filter((l) => l.includes('\t')).map((l) => l.replace(/ +\t/, '\t'));
  assert.equal(out.stdout.toString().trim().split('\n'), [...DEFAULT_MOTD.map((l) => `# ${l}`), ...rsyncModules]);
});

test("push.mjs: the tree lands in the module; its file changes are rsync -i's; progress while the big file goes", async () => {
  const theirs = await run('rsync', ['-rlpt', '-i', `${src}/`, `${module}/by-rsync/`]);
  assert.is(theirs.status, 0, theirs.stderr);
  const out = await example('push.mjs', [`${src}/`, `${module}/ex/`]);
  assert.is(out.status, 0, out.stderr);
  assert.equal(diffTrees(await snapshot(src), await snapshot(join(daemon.modulePath('push'), 'ex'))), []);
  const fileLines = (text: string) => text.split('\n').filter((l) => /^[<>]f/.test(l)).sort();
  assert.equal(fileLines(out.stdout.toString()), fileLines(theirs.stdout.toString()));
  assert.match(out.stdout.toString(), /sent 3 files, exit code 0/);
  const during = out.stderr.split('\n').filter((l) => /^progress sub\/big\.bin (\d+)\//.test(l) && !/ 0\/| 3145728\//.test(l));
  assert.ok(during.length >= 1, out.stderr);
});

test('push.mjs: a refused push is an RsyncError with rsync exit code', async () => {
  const out = await example('push.mjs', [`${src}/`, `rsync://${daemon.host}:${daemon.port}/ro/x/`]);
  const theirs = await run('rsync', ['-rlpt', `${src}/`, `rsync://${daemon.host}:${daemon.port}/ro/x/`]);
  assert.is.not(theirs.status, 0);
  assert.is(out.status, theirs.status, out.stderr); // the example exits with the error's exitCode
  assert.match(out.stderr, new RegExp(`push failed: ERROR: module is read only[^]*rsync exit code ${theirs.status}\\)`));
});

test('pull.mjs: the module comes down, without the excluded *.tmp', async () => {
  const dest = join(dir, 'pulled');
  const out = await example('pull.mjs', [`${module}/ex/`, dest]);
  assert.is(out.status, 0, out.stderr);
  const theirs = join(dir, 'pulled-by-rsync');
  const r = await run('rsync', ['-rlpt', '--exclude=*.tmp', `${module}/ex/`, theirs]);
  assert.is(r.status, 0, r.stderr);
  assert.equal(diffTrees(await snapshot(theirs), await snapshot(dest)), []);
  await assert.not.ok(await stat(join(dest, 'scratch.tmp')).catch(() => null));
});

test('list.mjs: the entries rsync --list-only shows', async () => {
  const out = await example('list.mjs', [`${module}/ex/`]);
  assert.is(out.status, 0, out.stderr);
  const theirs = await run('rsync', ['-rl', '--list-only', '--no-motd', `${module}/ex/`]);
  const rsyncLines = theirs.stdout.toString().trim().split('\n').map((l) => {
    const m = /^\S+\s+([\d,]+) \S+ \S+ (.*)$/.exec(l)!;
    return `${m[1]!.replace(/,/g, '')}\t${m[2]}`;
  });
  const ours = out.stdout.toString().trim().split('\n').map((l) => {
    const [, size, , path] = l.split('\t');
    return `${size}\t${path}`;
  });
  assert.equal(ours, rsyncLines);
});

test('mirror.mjs: follows a change until SIGTERM, then stops with nothing unpushed', async () => {
  const live = join(dir, 'live');
  await cp(src, live, { recursive: true, verbatimSymlinks: true });
  const child = spawn(process.execPath, ['examples/mirror.mjs', `${live}/`, `${module}/live/`], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const until = async (what: () => boolean | Promise<boolean>, label: string) => {
    for (const started = Date.now(); !(await what()); ) {
      if (Date.now() - started > 20_000) {
        child.kill('SIGKILL');
        assert.unreachable(`${label}: ${stdout} ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await until(() => /mirroring .* with the (inotify|poll) watcher/.test(stdout), 'started');
  await writeFile(join(live, 'new.txt'), 'new\n');
  const remote = join(daemon.modulePath('push'), 'live', 'new.txt');
  await until(async () => (await stat(remote).catch(() => null)) !== null, 'new.txt pushed');
  child.kill('SIGTERM');
  assert.is(await exited, 0, stderr);
  assert.match(stdout, /stopped, 0 paths left unpushed/);
  assert.match(stdout, />f\+{9} new\.txt|<f\+{9} new\.txt/);
});

test.run();
