// Restart without re-sending the world (issue 14, part 4), against the real rsync daemon with
// transfer logging (`%i %n`): a `changed` startup after 10 changes made while we were down sends
// only those files' data and converges; a state file cut in half, or written for another source,
// means a full startup (said, and seen repairing the mirror); `none` pushes nothing until a change;
// a path whose push failed (the daemon refused it) is pushed, and one deleted meanwhile deleted,
// at the next start; the CLI's --startup changed finds its state file at the default path.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, appendFile, mkdir, rename, unlink, symlink, chmod, readFile, truncate, copyFile, stat } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { untilSameTree } from './helpers/tree.js';
import { setTime, T0 } from './helpers/fstree.js';
import { CLI } from './helpers/cli.js';
import { startLiveMirror, type LiveMirror, type LiveMirrorOptions } from '../src/live/index.js';
import type { DaemonTarget } from '../src/transfer/target.js';

let daemon: TestDaemon;
let work: string;
let logs: string[] = [];
const onLog = (level: string, message: string) => logs.push(`${level} ${message}`);

test.before(async () => {
  daemon = await startDaemon({
    globalSettings: ['transfer logging = yes', 'log format = %i %n%L'],
    extraModules: [{ name: 'guarded', settings: { 'read only': false, exclude: 'refused*' } }],
  });
  work = await mkdtemp(join(tmpdir(), 'lsyncd-live-state-'));
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

function target(path: string, module = 'push'): DaemonTarget {
  return { host: '127.0.0.1', port: daemon.port, module, path };
}

/** A tree of `dirs` directories of `files` files each, every time fixed. */
async function makeFlatTree(root: string, dirs: number, files: number): Promise<void> {
  await mkdir(root, { recursive: true });
  for (let d = 0; d < dirs; d++) {
    await mkdir(join(root, `d${d}`));
    for (let f = 0; f < files; f++) {
      await writeFile(join(root, `d${d}`, `f${f}`), `file ${d}/${f}\n`.repeat(f + 1));
      await setTime(join(root, `d${d}`, `f${f}`));
    }
    await setTime(join(root, `d${d}`));
  }
  await setTime(root);
}

async function converge(src: string, dst: string, what: string): Promise<void> {
  const diff = await untilSameTree(src, dst, { timeoutMs: 10_000, rootTimes: true });
  if (diff.length) assert.unreachable(`${what}: the mirror did not converge:\n${diff.slice(0, 20).join('\n')}\n--- log:\n${logs.slice(-30).join('\n')}`);
}

/** Run a mirror until its startup is done and nothing is pending; returns it running. */
async function run(options: Partial<LiveMirrorOptions> & Pick<LiveMirrorOptions, 'source' | 'targets'>): Promise<LiveMirror> {
  const mirror = await startLiveMirror({ onLog, ...options });
  await mirror.ready;
  await mirror.whenIdle();
  return mirror;
}

/** The daemon's log lines written after `offset` bytes: [itemized flags, name]. */
async function itemsSince(offset: number): Promise<Array<[string, string]>> {
  const text = (await readFile(daemon.logPath)).subarray(offset).toString('utf8');
  const out: Array<[string, string]> = [];
  for (const line of text.split('\n')) {
    const m = /\] ([<>ch.*][^ ]*) +(.+)$/.exec(line);
    if (m && !/^(building|sent|total|rsync)/.test(m[1]!)) out.push([m[1]!, m[2]!]);
  }
  return out;
}

const logSize = async () => (await stat(daemon.logPath)).size;

test('a changed startup after 10 changes made while down sends only their data, and the mirror matches', async () => {
  const src = join(work, 'ten');
  const dst = daemon.modulePath('push');
  const stateFile = join(work, 'ten.state');
  await makeFlatTree(src, 10, 20);
  const targets = [{ target: target('ten/'), session: {} }];
  // The first run: a full startup, which writes the state.
  let mirror = await run({ source: src, targets, startup: 'full', stateFile });
  await converge(src, join(dst, 'ten'), 'first start');
  await mirror.stop();
  assert.ok(existsSync(stateFile));

  // Ten changes while nothing watches.
  await appendFile(join(src, 'd0/f0'), 'more\n'); // 1 modified (size)
  await writeFile(join(src, 'd1/f1'), 'FILE 1/1\nFILE 1/1\n'); // 2 rewritten (same size, new mtime)
  await chmod(join(src, 'd2/f2'), 0o600); // 3 attributes only
  await writeFile(join(src, 'new.txt'), 'new\n'); // 4 created at the top
  await writeFile(join(src, 'd3/new.txt'), 'new in d3\n'); // 5 created in a directory
  await mkdir(join(src, 'newdir'));
  await writeFile(join(src, 'newdir/inner.txt'), 'inner\n'); // 6 a new directory with a file
  await unlink(join(src, 'd4/f4')); // 7 deleted
  await rm(join(src, 'd5'), { recursive: true }); // 8 a directory deleted
  await rename(join(src, 'd6/f6'), join(src, 'd7/renamed.txt')); // 9 renamed across directories
  await symlink('d0/f0', join(src, 'link')); // 10 a symlink created

  const offset = await logSize();
  logs = [];
  mirror = await run({ source: src, targets, startup: 'changed', stateFile });
  await converge(src, join(dst, 'ten'), 'changed start');
  await mirror.stop();
  const items = await itemsSince(offset);
  const data = items.filter(([i]) => i.startsWith('>f')).map(([, n]) => n).sort();
  // (rsyncd names them from the push's destination, the module's ten/)
  assert.equal(data, ['d0/f0', 'd1/f1', 'd3/new.txt', 'd7/renamed.txt', 'new.txt', 'newdir/inner.txt'], 'data only for the changed and new files');
  const deleted = items.filter(([i]) => i === '*deleting').map(([, n]) => n).sort();
  assert.equal(deleted, ['d4/f4', 'd5/', ...Array.from({ length: 20 }, (_, f) => `d5/f${f}`), 'd6/f6'].sort());
  assert.ok(items.some(([i, n]) => n === 'd2/f2' && /^\.f\.\.\.p/.test(i)), 'the chmod travelled as attributes');
  // Only the changed paths were listed, in one session: the 11 of the ten changes (a new
  // directory once, a rename as two) and the 5 directories whose mtime they changed ('', d3, d4, d6, d7).
  const said = logs.find((l) => /path\(s\) differ from the state file/.test(l));
  assert.match(said!, /: 16 path\(s\) differ from the state file \(194 entries scanned/, logs.join('\n'));
  assert.ok(logs.some((l) => /pushed 16 change\(s\): 6 file\(s\)/.test(l)), logs.join('\n'));
  assert.ok(logs.some((l) => /that batch went as one session/.test(l)), logs.join('\n'));
});

test('a state file cut in half means a full startup (said once), which repairs the mirror', async () => {
  const src = join(work, 'torn');
  const dst = join(daemon.modulePath('push'), 'torn');
  const stateFile = join(work, 'torn.state');
  await makeFlatTree(src, 5, 20);
  const targets = [{ target: target('torn/'), session: {} }];
  let mirror = await run({ source: src, targets, startup: 'full', stateFile });
  await mirror.stop();
  const size = (await stat(stateFile)).size;
  assert.ok(size > 1000, `state file of ${size} bytes`);
  await truncate(stateFile, Math.floor(size / 2));
  await unlink(join(dst, 'd1/f1')); // behind our back: only a full compare puts it back
  logs = [];
  mirror = await run({ source: src, targets, startup: 'changed', stateFile });
  await converge(src, dst, 'after a torn state file');
  await mirror.stop();
  const said = logs.filter((l) => l.includes('the startup sync compares everything'));
  assert.is(said.length, 1, logs.join('\n'));
  assert.match(said[0]!, /^warn state file .*torn\.state: it ends in a torn record/);
  // The full startup wrote a whole state again: the next changed start has nothing to do.
  logs = [];
  mirror = await run({ source: src, targets, startup: 'changed', stateFile });
  await mirror.stop();
  assert.ok(logs.some((l) => /: 0 path\(s\) differ from the state file/.test(l)), logs.join('\n'));
});

test('a state file written for another source or target means a full startup', async () => {
  const src = join(work, 'mine');
  const other = join(work, 'other');
  const stateFile = join(work, 'mine.state');
  await makeFlatTree(src, 2, 5);
  await makeFlatTree(other, 2, 5);
  let mirror = await run({ source: other, targets: [{ target: target('other/'), session: {} }], startup: 'full', stateFile });
  await mirror.stop();
  await unlink(join(daemon.modulePath('push'), 'other/d0/f0'));
  await mkdir(join(daemon.modulePath('push'), 'mine'), { recursive: true });
  logs = [];
  mirror = await run({ source: src, targets: [{ target: target('mine/'), session: {} }], startup: 'changed', stateFile });
  await converge(src, join(daemon.modulePath('push'), 'mine'), 'another source');
  await mirror.stop();
  assert.ok(logs.some((l) => /it was written for source ".*other"; the startup sync compares everything/.test(l)), logs.join('\n'));
  // The same source to another target.
  const copy = join(work, 'mine-copy.state');
  await copyFile(stateFile, copy);
  logs = [];
  mirror = await run({ source: src, targets: [{ target: target('mine2/'), session: {} }], startup: 'changed', stateFile: copy });
  await converge(src, join(daemon.modulePath('push'), 'mine2'), 'another target');
  await mirror.stop();
  assert.ok(logs.some((l) => /it was written for target\(s\) rsync:\/\/.*\/push\/mine\/; the startup sync compares everything/.test(l)), logs.join('\n'));
});

test('startup none pushes nothing until a change, then just that change', async () => {
  const src = join(work, 'none');
  const dst = join(daemon.modulePath('push'), 'none');
  await makeFlatTree(src, 2, 5);
  const targets = [{ target: target('none/'), session: {} }];
  let mirror = await run({ source: src, targets });
  await mirror.stop();
  await unlink(join(dst, 'd0/f0')); // not repaired: no startup sync
  const offset = await logSize();
  mirror = await run({ source: src, targets, startup: 'none' });
  await new Promise((r) => setTimeout(r, 300));
  assert.is((await readFile(daemon.logPath)).subarray(offset).toString().match(/connect from/g), null, 'no connection at all');
  assert.is(mirror.status().targets[0]!.pushes, 0);
  await writeFile(join(src, 'd1/f1'), 'changed\n');
  const deadline = Date.now() + 10_000;
  while (mirror.status().targets[0]!.pushes === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await mirror.whenIdle();
  await mirror.stop();
  const items = await itemsSince(offset);
  assert.equal(items.filter(([i]) => i.startsWith('>f')).map(([, n]) => n), ['f1']); // a push of d1/ (no protocol known yet: a subtree)
  assert.not.ok(existsSync(join(dst, 'd0/f0')), 'the mirror was not compared');
});

test('a path whose push failed is pushed at the next start, and one pushed by that failed push but deleted meanwhile is deleted', async () => {
  const src = join(work, 'failing');
  const dst = join(daemon.modulePath('guarded'), 'failing');
  const stateFile = join(work, 'failing.state');
  await makeFlatTree(src, 2, 3);
  const targets = [{ target: target('failing/', 'guarded'), session: {} }];
  let mirror = await run({ source: src, targets, startup: 'full', stateFile, retry: { initialMs: 50, maxMs: 100 } });
  // One batch: a file the daemon takes and one it refuses (`exclude = refused*`): exit 23.
  await writeFile(join(src, 'kept.txt'), 'kept\n');
  await writeFile(join(src, 'refused.txt'), 'refused\n');
  const deadline = Date.now() + 10_000;
  while (mirror.status().targets[0]!.failures === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(mirror.status().targets[0]!.failures > 0, 'the batch failed');
  assert.ok(existsSync(join(dst, 'kept.txt')), 'the failed push did create kept.txt on the mirror');
  const stopped = await mirror.stop({ timeoutMs: 2000 });
  assert.equal(stopped.exitCodes, [23]);
  // While down: kept.txt goes, and the daemon stops refusing.
  await unlink(join(src, 'kept.txt'));
  const conf = join(daemon.dir, 'rsyncd.conf');
  await writeFile(conf, (await readFile(conf, 'utf8')).replace(/^\s*exclude = refused\*$/m, ''));
  logs = [];
  mirror = await run({ source: src, targets, startup: 'changed', stateFile });
  await converge(src, dst, 'after the refusal');
  await mirror.stop();
  assert.ok(existsSync(join(dst, 'refused.txt')));
  assert.not.ok(existsSync(join(dst, 'kept.txt')), 'deleted: its push was begun and never seen through');
});

test('CLI: --startup changed keeps its state at the default path ($XDG_STATE_HOME/lsyncd/) and a restart pushes only the change', async () => {
  const src = join(work, 'cli');
  const dst = join(daemon.modulePath('push'), 'cli');
  const stateHome = join(work, 'xdg');
  await makeFlatTree(src, 3, 5);
  await mkdir(dst, { recursive: true });
  const start = (): { child: ChildProcess; stderr: () => string } => {
    let err = '';
    const child = spawn(process.execPath, [CLI, '--nodaemon', '--startup', 'changed', `${src}/`, `rsync://127.0.0.1:${daemon.port}/push/cli/`], { env: { ...process.env, XDG_STATE_HOME: stateHome }, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    return { child, stderr: () => err };
  };
  const stop = (c: ChildProcess) => new Promise<number | null>((resolve) => (c.kill('SIGTERM'), c.on('close', resolve)));
  const waitFor = async (get: () => string, re: RegExp) => {
    const deadline = Date.now() + 15_000;
    while (!re.test(get()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 30));
    assert.match(get(), re);
  };
  let p = start();
  await waitFor(p.stderr, /startup sync done/);
  assert.match(p.stderr(), /there is no state file yet; the startup sync compares everything/);
  assert.is(await stop(p.child), 0);
  const files = readdirSync(join(stateHome, 'lsyncd'));
  assert.equal(files.length, 1);
  assert.match(files[0]!, /^cli-[0-9a-f]{16}\.state$/);
  await writeFile(join(src, 'd2/f2'), 'changed while down\n');
  await setTime(join(src, 'd2/f2'), T0 + 60);
  const offset = await logSize();
  p = start();
  await waitFor(p.stderr, /startup sync done/);
  assert.match(p.stderr(), /: 1 path\(s\) differ from the state file/, p.stderr()); // the file (rewritten in place: its directory is unchanged)
  await converge(src, dst, 'CLI restart');
  assert.is(await stop(p.child), 0);
  const items = await itemsSince(offset);
  assert.equal(items.filter(([i]) => i.startsWith('>f')).map(([, n]) => n), ['d2/f2']);
});

test.run();
