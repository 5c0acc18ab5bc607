// Config files running against a real rsync daemon: two and three syncs from one YAML file, and
// three from an lsyncd 2 Lua file (sync{} blocks made in a loop, os.getenv, exclude, delay = 0,
// rsync = {...}), each converging with its own excludes; then SIGHUP adding, removing and changing
// syncs while an unchanged one keeps running untouched (the daemon's transfer log shows nothing
// of it), and a broken file refused with the running syncs kept.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir, readFile, rename, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { CLI, run as runCommand } from './helpers/cli.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { setTimes } from './helpers/fstree.js';
import { openSessionCount, sessionCount } from './helpers/daemon-log.js';

let daemon: TestDaemon;
let work: string;

test.before(async () => {
  daemon = await startDaemon({ globalSettings: ['transfer logging = yes'] });
  work = await mkdtemp(join(tmpdir(), 'lsyncd-config-live-'));
  // rsync creates only the last directory of a target path: the parents are there, as on a real mirror.
  for (const dir of ['y2', 'lua', 'hup', 'xdir']) await mkdir(join(daemon.modulePath('push'), dir));
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

const url = (path: string) => `rsync://127.0.0.1:${daemon.port}/push/${path}`;

function startCli(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return { child, stderr: () => err };
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));
}

async function eventually(check: () => Promise<boolean> | boolean, ms: number, what: string, detail: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}\n${detail()}`);
}

/** A source tree: files everywhere, and the kinds of entry the syncs exclude (*.tmp, cache/, *.log). */
async function makeSource(root: string, label: string): Promise<void> {
  await mkdir(join(root, 'sub', 'deep'), { recursive: true });
  await mkdir(join(root, 'cache'), { recursive: true });
  await writeFile(join(root, 'keep.txt'), `${label}: kept\n`);
  await writeFile(join(root, 'sub', 'a.txt'), `${label}: a\n`.repeat(100));
  await writeFile(join(root, 'sub', 'deep', 'b.bin'), Buffer.alloc(5000, label.length));
  await writeFile(join(root, 'x.tmp'), 'temporary\n');
  await writeFile(join(root, 'cache', 'c.bin'), 'cached\n');
  await writeFile(join(root, 'skip.log'), 'a log\n');
  await setTimes(root);
}

/**
 * Whether `key` (relative, `/`-separated; `isDir` for its last part) is excluded by one of these
 * rsync patterns that match a name by itself (`*.tmp`; `cache/` for directories only).
 */
function excludedBy(patterns: readonly string[], key: string, isDir: boolean): boolean {
  const parts = key.split('/');
  return patterns.some((p) => {
    const dirOnly = p.endsWith('/');
    const glob = new RegExp(`^${p.replace(/\/$/, '').replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
    return parts.some((part, i) => glob.test(part) && (!dirOnly || i < parts.length - 1 || isDir));
  });
}

/** Differences between the source (less what `excludes` keep out) and the module path; empty once equal. */
async function mirrorDiff(src: string, modulePath: string, excludes: readonly string[]): Promise<string[]> {
  const dest = join(daemon.modulePath('push'), modulePath);
  if (!existsSync(dest)) return [`${dest} does not exist`];
  try {
    const want = await snapshot(src);
    for (const [key, info] of [...want]) if (excludedBy(excludes, key, info.type === 'dir')) want.delete(key);
    return diffTrees(want, await snapshot(dest), { ignore: ['uid', 'gid'] });
  } catch (e) {
    return [`snapshot: ${(e as Error).message}`];
  }
}

async function converges(src: string, modulePath: string, excludes: readonly string[], ms = 15_000): Promise<void> {
  let diff: string[] = [];
  await eventually(async () => (diff = await mirrorDiff(src, modulePath, excludes)).length === 0, ms, `${src} mirrored to ${modulePath}`, () => diff.slice(0, 10).join('\n'));
}

test('YAML, two syncs with max-pushes 1: each converges with its own excludes, live changes too; the log and the status file name each sync', async () => {
  const alpha = join(work, 'y2', 'alpha');
  const beta = join(work, 'y2', 'beta');
  await makeSource(alpha, 'alpha');
  await makeSource(beta, 'beta');
  const statusFile = join(work, 'y2', 'status.json');
  const file = join(work, 'y2', 'lsyncd.yaml');
  await writeFile(
    file,
    [
      '# two syncs, one push at a time',
      'nodaemon: true',
      `status-file: ${statusFile}`,
      'status-interval: 1',
      'max-pushes: 1',
      'syncs:',
      '  - name: alpha',
      `    source: ${alpha}/`,
      `    target: ${url('y2/alpha/')}`,
      '    delay: 0',
      "    exclude: ['*.tmp']",
      '  - name: beta',
      `    source: ${beta}/`,
      `    target: ${url('y2/beta/')}`,
      '    delay: 0',
      '    exclude: [cache/, "*.log"]',
    ].join('\n'),
  );
  const run = startCli([file]);
  try {
    await converges(alpha, 'y2/alpha', ['*.tmp']);
    await converges(beta, 'y2/beta', ['cache/', '*.log']);
    assert.ok(existsSync(join(daemon.modulePath('push'), 'y2/alpha/cache/c.bin')), 'alpha does not exclude cache/');
    assert.not.ok(existsSync(join(daemon.modulePath('push'), 'y2/alpha/x.tmp')));
    await writeFile(join(alpha, 'sub', 'live.txt'), 'alpha live\n');
    await writeFile(join(alpha, 'live.tmp'), 'alpha excluded\n');
    await writeFile(join(beta, 'cache', 'live.bin'), 'beta excluded\n');
    await writeFile(join(beta, 'live.txt'), 'beta live\n');
    await converges(alpha, 'y2/alpha', ['*.tmp']);
    await converges(beta, 'y2/beta', ['cache/', '*.log']);
    await eventually(async () => existsSync(statusFile) && /"beta"/.test(await readFile(statusFile, 'utf8')), 5000, 'the status file');
    const status = JSON.parse(await readFile(statusFile, 'utf8')) as { config: string; pushSlots: { max: number }; mirrors: Array<{ name: string; source: string }> };
    assert.equal(status.mirrors.map((m) => m.name), ['alpha', 'beta']);
    assert.is(status.pushSlots.max, 1);
    assert.is(status.config, file);
    assert.match(run.stderr(), /\[alpha\] watching /);
    assert.match(run.stderr(), /\[beta\] [^\n]*startup sync done/);
    run.child.kill('SIGTERM');
    assert.is(await exited(run.child), 0, run.stderr());
    // The last status written names the stopped syncs, with their targets' final state.
    const last = JSON.parse(await readFile(statusFile, 'utf8')) as { mirrors: Array<{ name: string; targets: Array<{ state: string }> }> };
    assert.equal(last.mirrors.map((m) => [m.name, m.targets[0]!.state]), [['alpha', 'stopped'], ['beta', 'stopped']]);
  } finally {
    run.child.kill('SIGKILL');
  }
});

test('YAML, three syncs (one to two targets, one without a trailing slash): each converges with its own filters', async () => {
  const [one, two, three] = ['one', 'two', 'three'].map((n) => join(work, 'y3', n)) as [string, string, string];
  for (const dir of [one, two, three]) await makeSource(dir, dir);
  await writeFile(join(work, 'y3', 'three.excludes'), '# rsync exclude file\n*.log\n');
  const file = join(work, 'y3', 'three.yml');
  await writeFile(
    file,
    [
      'nodaemon: true',
      'syncs:',
      `  - source: ${one}/`,
      `    targets: [${url('y3/one-a/')}, ${url('y3/one-b/')}]`,
      '    delay: 0',
      "    exclude: '*.tmp'",
      // rsync's rule: SOURCE without a slash goes to PATH/NAME/.
      `  - source: ${two}`,
      `    target: ${url('y3/')}`,
      '    delay: 0',
      '    filter: ["- cache/", "- *.tmp"]',
      `  - source: ${three}/`,
      `    target: ${url('y3/three/')}`,
      '    delay: 0',
      `    exclude-from: ${join(work, 'y3', 'three.excludes')}`,
      '    checksum: true',
      '    compress: true',
    ].join('\n'),
  );
  const run = startCli([file]);
  try {
    await converges(one, 'y3/one-a', ['*.tmp']);
    await converges(one, 'y3/one-b', ['*.tmp']);
    await converges(two, 'y3/two', ['cache/', '*.tmp']);
    await converges(three, 'y3/three', ['*.log']);
    // The excluded file last: its directory's new mtime is pushed on its own.
    await writeFile(join(three, 'sub', 'new.txt'), 'three: new\n');
    await writeFile(join(three, 'sub', 'new.log'), 'three: not sent\n');
    await rm(join(one, 'sub', 'deep'), { recursive: true });
    await converges(three, 'y3/three', ['*.log']);
    await converges(one, 'y3/one-a', ['*.tmp']);
    await converges(one, 'y3/one-b', ['*.tmp']);
    // Each sync's lines carry its name (the default: its source).
    assert.match(run.stderr(), new RegExp(`\\[${two.replace(/[/.]/g, '\\$&')}\\] watching`));
    run.child.kill('SIGTERM');
    assert.is(await exited(run.child), 0, run.stderr());
  } finally {
    run.child.kill('SIGKILL');
  }
});

test('only excluded names come and go: each directory\'s new mtime reaches the mirror, as rsync -a --delete --exclude gives it', async () => {
  const base = join(work, 'xdir');
  const src = join(base, 'src');
  const reference = join(base, 'rsync');
  await makeSource(src, 'xdir');
  const excludes = ['*.tmp', 'cache/'];
  const file = join(base, 'lsyncd.yaml');
  await writeFile(file, ['nodaemon: true', 'syncs:', `  - source: ${src}/`, `    target: ${url('xdir/m/')}`, '    delay: 0', `    exclude: ${JSON.stringify(excludes)}`].join('\n'));
  const mirror = join(daemon.modulePath('push'), 'xdir', 'm');
  const run = startCli([file]);
  /** rsync's own copy of the source now; then the mirror must equal it, directory times (the root's too) to the nanosecond. */
  const sameAsRsync = async (what: string, dir: string, step: () => Promise<unknown>): Promise<void> => {
    const before = (await stat(join(src, dir), { bigint: true })).mtimeNs;
    await step();
    // The step did change the directory (else the comparison would prove nothing).
    assert.is.not((await stat(join(src, dir), { bigint: true })).mtimeNs, before, `${what}: ${dir || '.'} has a new mtime`);
    // --modify-window=-1 as the mirror's pushes: else rsync leaves a directory it creates within
    // the source's second with its own mtime (it compares whole seconds).
    const r = await runCommand('rsync', ['-a', '--delete', '--modify-window=-1', ...excludes.map((e) => `--exclude=${e}`), `${src}/`, `${reference}/`]);
    assert.is(r.status, 0, r.stderr);
    let diff: string[] = [];
    await eventually(
      async () => (diff = diffTrees(await snapshot(reference, { rootTimes: true }), await snapshot(mirror, { rootTimes: true }), { ignore: ['uid', 'gid'] })).length === 0,
      15_000,
      `${what}: the mirror equal to rsync's copy`,
      () => `${diff.slice(0, 10).join('\n')}\n${run.stderr()}`,
    );
  };
  try {
    await converges(src, 'xdir/m', excludes);
    await sameAsRsync('an excluded file created', 'sub', () => writeFile(join(src, 'sub', 'only.tmp'), 'excluded\n'));
    await sameAsRsync('an excluded file removed at the top', '', () => rm(join(src, 'x.tmp')));
    await sameAsRsync('an excluded directory created', 'sub/deep', () => mkdir(join(src, 'sub', 'deep', 'cache')));
    // Both directories change: the one it left and the one it entered.
    await sameAsRsync('an excluded file renamed into another directory', 'sub', () => rename(join(src, 'sub', 'only.tmp'), join(src, 'sub', 'deep', 'moved.tmp')));
    run.child.kill('SIGTERM');
    assert.is(await exited(run.child), 0, run.stderr());
  } finally {
    run.child.kill('SIGKILL');
  }
});

test('lsyncd 2 Lua: sync{} blocks made in a loop with os.getenv, exclude, delay = 0, rsync = {...}, and one more block: each converges', async () => {
  const base = join(work, 'lua');
  for (const n of ['one', 'two', 'three']) await makeSource(join(base, n), n);
  const statusFile = join(base, 'status.json');
  const file = join(base, 'lsyncd.conf.lua');
  await writeFile(
    file,
    `-- an lsyncd 2 config, as its users write them
settings {
  statusFile = os.getenv("LSYNCD_CFG_BASE") .. "/status.json",
  statusInterval = 1,
  nodaemon = true,
}

local base = os.getenv("LSYNCD_CFG_BASE")
local port = os.getenv("LSYNCD_CFG_PORT")
local excluded = { one = "*.tmp", two = "cache/" }

for _, site in ipairs({ "one", "two" }) do
  sync {
    default.rsync,
    source = base .. "/" .. site,
    target = "127.0.0.1::push/lua/" .. site .. "/",
    delay = 0,
    exclude = { excluded[site] },
    rsync = { perms = true, compress = true, _extra = { "--port=" .. port } },
  }
end

sync {
  default.rsync,
  source = base .. "/three",
  target = "rsync://127.0.0.1:" .. port .. "/push/lua/three/",
  delay = 0,
  exclude = { "*.log" },
  rsync = { archive = true, checksum = true },
}
`,
  );
  const run = startCli([file], { LSYNCD_CFG_BASE: base, LSYNCD_CFG_PORT: String(daemon.port) });
  try {
    await converges(join(base, 'one'), 'lua/one', ['*.tmp']);
    await converges(join(base, 'two'), 'lua/two', ['cache/']);
    await converges(join(base, 'three'), 'lua/three', ['*.log']);
    await writeFile(join(base, 'two', 'sub', 'live.txt'), 'two: live\n');
    await writeFile(join(base, 'two', 'cache', 'live.bin'), 'two: excluded\n');
    await converges(join(base, 'two'), 'lua/two', ['cache/']);
    await eventually(async () => existsSync(statusFile) && (JSON.parse(await readFile(statusFile, 'utf8')) as { mirrors: unknown[] }).mirrors.length === 3, 5000, 'the status file');
    const names = (JSON.parse(await readFile(statusFile, 'utf8')) as { mirrors: Array<{ name: string }> }).mirrors.map((m) => m.name);
    assert.equal(names, ['one', 'two', 'three'].map((n) => `${join(base, n)}/`));
    run.child.kill('SIGTERM');
    assert.is(await exited(run.child), 0, run.stderr());
  } finally {
    run.child.kill('SIGKILL');
  }
});

test('SIGHUP: a sync added starts, one removed stops, one changed restarts, the unchanged one is not touched; a broken file is refused', async () => {
  const base = join(work, 'hup');
  for (const n of ['a', 'b', 'c', 'd']) await makeSource(join(base, n), n);
  const file = join(base, 'lsyncd.yaml');
  const sync = (name: string, excludes: string[]) => [`  - name: ${name}`, `    source: ${join(base, name)}/`, `    target: ${url(`hup/${name}/`)}`, '    delay: 0', `    exclude: ${JSON.stringify(excludes)}`];
  await writeFile(file, ['nodaemon: true', 'syncs:', ...sync('a', ['*.tmp']), ...sync('b', ['*.tmp']), ...sync('c', ['*.tmp'])].join('\n'));
  const run = startCli([file]);
  try {
    for (const n of ['a', 'b', 'c']) await converges(join(base, n), `hup/${n}`, ['*.tmp']);
    // The runners' next sessions opened ahead (waiting for their file lists): a reload must not touch a's.
    // At least two sessions each, one open: the startup push has ended (rsyncd logs its summary a moment after
    // the tree is complete) and the one opened ahead waits.
    // And the same sessions for a while: under load the startup push could still be the open one,
    // its spare opened after the log is read below (then counted as a push of the unchanged sync).
    let seen = { sessions: '', since: 0 };
    await eventually(async () => {
      const log = await daemon.log();
      const ready = ['a', 'b', 'c'].every((n) => sessionCount(log, `push/hup/${n}/`) >= 2 && openSessionCount(log, `push/hup/${n}/`) === 1);
      const sessions = ['a', 'b', 'c'].map((n) => sessionCount(log, `push/hup/${n}/`)).join(',');
      if (!ready || sessions !== seen.sessions) seen = { sessions, since: Date.now() };
      return ready && Date.now() - seen.since >= 1500;
    }, 15_000, 'the sessions opened ahead');
    const logBefore = (await daemon.log()).length;

    // a unchanged, b changed (also excludes *.log now), c removed, d added.
    await writeFile(file, ['nodaemon: true', 'syncs:', ...sync('a', ['*.tmp']), ...sync('b', ['*.tmp', '*.log']), ...sync('d', ['cache/'])].join('\n'));
    run.child.kill('SIGHUP');
    await eventually(() => /reloaded: 1 started, 1 restarted, 1 stopped, 1 unchanged/.test(run.stderr()), 15_000, 'the reload', run.stderr);
    await converges(join(base, 'd'), 'hup/d', ['cache/']);
    await writeFile(join(base, 'b', 'new.txt'), 'b: sent\n');
    await writeFile(join(base, 'b', 'new.log'), 'b: excluded now\n');
    await writeFile(join(base, 'c', 'after.txt'), 'c: not followed any more\n');
    // b's old skip.log stays on the mirror (excluded files are protected from --delete).
    await converges(join(base, 'b'), 'hup/b', ['*.tmp', 'new.log']);
    assert.not.ok(existsSync(join(daemon.modulePath('push'), 'hup/b/new.log')));
    await new Promise((r) => setTimeout(r, 1000));
    assert.not.ok(existsSync(join(daemon.modulePath('push'), 'hup/c/after.txt')), 'the removed sync pushed a change');

    const since = (await daemon.log()).slice(logBefore);
    assert.match(since, /rsync to push\/hup\/d\/ from/, 'the daemon logs each push (the added sync)');
    assert.match(since, /hup\/b\/new\.txt/, 'the transfer log names each file');
    assert.not.match(since, /hup\/a\//, `the unchanged sync was pushed again:\n${since}`);
    assert.is((run.stderr().match(/\[a\] [^\n]*startup sync done/g) ?? []).length, 1);

    // The unchanged sync still follows its tree.
    await writeFile(join(base, 'a', 'later.txt'), 'a: still watched\n');
    await converges(join(base, 'a'), 'hup/a', ['*.tmp']);

    // A broken file: refused with its line and column, the running syncs kept.
    await writeFile(file, ['nodaemon: true', 'syncs:', ...sync('a', ['*.tmp']), '    delay: soon'].join('\n'));
    run.child.kill('SIGHUP');
    await eventually(() => /refused, the running syncs are kept: [^\n]*lsyncd\.yaml:8:5: /.test(run.stderr()), 10_000, 'the refusal', run.stderr);
    await writeFile(join(base, 'd', 'sub', 'after-refusal.txt'), 'd: still watched\n');
    await converges(join(base, 'd'), 'hup/d', ['cache/']);

    run.child.kill('SIGTERM');
    assert.is(await exited(run.child), 0, run.stderr());
  } finally {
    run.child.kill('SIGKILL');
  }
});

test.run();
