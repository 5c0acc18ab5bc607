// What `lsyncd --version` and `--help` load (issue 12: the CLI starts in about node's own time):
// the `lsyncd` entry (src/cli/lsyncd.ts) answers --version with the version line alone; main.ts
// loads the option definitions and commander, and the transfer, live, watcher and serve modules,
// the addon, hash-wasm, pako, worker threads and node:crypto come with the command that needs them.
// Checked by the modules node actually loads (a loader hook and process.moduleLoadList), not by time.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fileURLToPath } from 'node:url';
import { run, CLI } from './helpers/cli.js';

/** The `lsyncd` command of package.json's "bin". */
const ENTRY = fileURLToPath(new URL('../src/cli/lsyncd.js', import.meta.url));

/** Loader hooks (run on node's hooks thread): each file module's URL, one line on stderr. */
const HOOKS = `import { writeSync } from 'node:fs';
export async function load(url, context, next) {
  if (url.startsWith('file:')) writeSync(2, 'LOADED ' + url + '\\n');
  return next(url, context);
}`;

/** Registers the hooks, and lists the builtins loaded after it when the process exits. */
const REGISTER = `import { register } from 'node:module';
import { writeSync } from 'node:fs';
register(process.env.STARTUP_HOOKS_URL);
const before = new Set(process.moduleLoadList);
process.on('exit', () => {
  for (const m of process.moduleLoadList) if (!before.has(m) && m.startsWith('NativeModule ')) writeSync(2, 'BUILTIN ' + m.slice(13) + '\\n');
});`;

let work: string;
let registerPath: string;
let hooksUrl: string;

interface Loaded {
  status: number | null;
  stdout: string;
  /** Our own files, as paths under dist/ (`src/cli/main.js`), and packages by name. */
  files: string[];
  builtins: string[];
}

async function loadedBy(args: string[], script = CLI): Promise<Loaded> {
  const result = await run(process.execPath, ['--import', pathToFileURL(registerPath).href, script, ...args], { STARTUP_HOOKS_URL: hooksUrl });
  const lines = result.stderr.split('\n');
  const files = lines
    .filter((l) => l.startsWith('LOADED '))
    .map((l) => l.slice(7))
    .map((url) => (url.includes('/node_modules/') ? `package:${url.split('/node_modules/')[1]!.split('/')[0]}` : url.replace(/^.*\/dist\//, '')));
  const builtins = lines.filter((l) => l.startsWith('BUILTIN ')).map((l) => l.slice(8));
  return { status: result.status, stdout: result.stdout.toString(), files, builtins };
}

/** What a start that only answers --version or --help must not pay for. */
const HEAVY_FILES = /^(src\/(transfer\/(push|pull|client|list|scan|send-list|socket|sums-helper|sums-worker|receive|dest-tree)\.js$|live\/|watcher\/|serve\/|addon|api\/)|protocol\/(flist|sender|receiver|generator|match|token|token-deflate|checksum|sums|mplex|session)\.js$|package:(hash-wasm|pako|xxhash-wasm|node-gyp-build))/;
const HEAVY_BUILTINS = /^(worker_threads|crypto|zlib|internal\/worker)/;

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'lsyncd-startup-'));
  await writeFile(join(work, 'hooks.mjs'), HOOKS);
  registerPath = join(work, 'register.mjs');
  await writeFile(registerPath, REGISTER);
  hooksUrl = pathToFileURL(join(work, 'hooks.mjs')).href;
  await mkdir(join(work, 'src'));
  await writeFile(join(work, 'src', 'a.txt'), 'alpha\n');
});

test.after(async () => {
  await rm(work, { recursive: true, force: true });
});

for (const args of [['--version'], ['-V'], ['--help']]) {
  test(`lsyncd ${args.join(' ')} loads the CLI only: no transfer, live, watcher or serve modules`, async () => {
    const loaded = await loadedBy(args);
    assert.is(loaded.status, 0);
    assert.ok(loaded.files.includes('src/cli/main.js'), `the hook saw main.js: ${loaded.files.join(' ')}`);
    assert.ok(loaded.files.includes('package:commander'));
    if (args[0] === '--help') assert.match(loaded.stdout, /Usage: lsyncd/);
    else assert.match(loaded.stdout, /^lsyncd \d+\.\d+\.\d+ \(rsync daemon protocol 27–32\)\n$/);
    assert.equal(loaded.files.filter((f) => HEAVY_FILES.test(f)), []);
    assert.equal(loaded.builtins.filter((b) => HEAVY_BUILTINS.test(b)), []);
  });
}

for (const flag of ['--version', '-V']) {
  test(`the lsyncd entry answers ${flag} with the version line alone: not even commander or main.ts`, async () => {
    const loaded = await loadedBy([flag], ENTRY);
    assert.is(loaded.status, 0);
    assert.is(loaded.stdout, (await loadedBy(['--version'])).stdout, 'the same line as main.ts (commander) prints');
    assert.equal(loaded.files.sort(), ['protocol/constants.js', 'protocol/daemon.js', 'protocol/errors.js', 'src/cli/lsyncd.js', 'src/cli/version.js']);
  });
}

test('the lsyncd entry hands every other command line to main.ts', async () => {
  const help = await loadedBy(['--help'], ENTRY);
  assert.is(help.status, 0);
  assert.match(help.stdout, /Usage: lsyncd/);
  assert.ok(help.files.includes('src/cli/main.js') && help.files.includes('package:commander'));
  // --version among other arguments is commander's business (a usage error here, as before).
  const mixed = await run(process.execPath, [ENTRY, '--version', '--bogus']);
  const direct = await run(process.execPath, [CLI, '--version', '--bogus']);
  assert.is(mixed.status, direct.status);
  assert.is(mixed.stderr, direct.stderr);
  const usage = await run(process.execPath, [ENTRY]);
  assert.is(usage.status, 1);
  assert.match(usage.stderr, /Usage: lsyncd/);
});

test('a push loads its modules when it runs (the hook sees lazily loaded modules)', async () => {
  // Port 1 refuses at once: the push is started, loads its modules, and fails to connect.
  const loaded = await loadedBy(['--once', join(work, 'src/'), 'rsync://127.0.0.1:1/module/']);
  assert.is(loaded.status, 10);
  assert.ok(loaded.files.includes('src/transfer/push.js'), loaded.files.join(' '));
  assert.ok(loaded.files.some((f) => HEAVY_FILES.test(f) && f.startsWith('protocol/')));
  assert.not.ok(loaded.files.some((f) => f.startsWith('src/serve/') || f.startsWith('src/watcher/')), 'a push loads no serve or watcher module');
});

test.run();
