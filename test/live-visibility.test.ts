// What the live mirror logs (issue 11, visibility): -i and -v log rsync's per-file lines (the
// lines `rsync -i`/`-v` prints for the same push, names escaped as rsync escapes them), a change's
// batch logs its own lines, --dryrun logs what it would push and changes nothing, and every batch
// has its line naming the target, the counts and the time.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, utimes } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, findRsync, type TestDaemon } from './helpers/daemon.js';
import { CLI, run } from './helpers/cli.js';
import { makeTree, bjoin, T0 } from './helpers/fstree.js';

let daemon: TestDaemon;
let work: string;

test.before(async () => {
  daemon = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'lsyncd-livevis-'));
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

const url = (path: string) => `rsync://127.0.0.1:${daemon.port}/push/${path}`;
/** rsync escapes what its locale cannot show: in a UTF-8 locale as our log does. */
const UTF8 = { LC_ALL: 'C.UTF-8' };

interface Live {
  child: ChildProcess;
  log: () => string;
}

function startLive(args: string[]): Live {
  const child = spawn(process.execPath, [CLI, '--nodaemon', '--delay', '0.5', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return { child, log: () => err };
}

async function stopLive(live: Live): Promise<number | null> {
  const done = new Promise<number | null>((r) => (live.child.exitCode !== null ? r(live.child.exitCode) : live.child.once('exit', (code) => r(code))));
  live.child.kill('SIGTERM');
  return done;
}

async function eventually(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The messages the live mirror logged for `target`, without the time and level. */
function targetLines(log: string, target: string): string[] {
  return log
    .split('\n')
    .map((line) => /^\S+ +\S+ +(.*)$/.exec(line)?.[1] ?? '')
    .filter((m) => m.startsWith(`${target}: `))
    .map((m) => m.slice(target.length + 2));
}

const batchLine = /^pushed \d+ change\(s\): \d+ file\(s\), \d+ bytes in \d+ ms/;

/** Each batch's item lines (the lines before its "pushed" line). */
function batches(lines: string[]): string[][] {
  const out: string[][] = [];
  let current: string[] = [];
  for (const line of lines) {
    if (batchLine.test(line)) {
      out.push(current);
      current = [];
    } else {
      current.push(line);
    }
  }
  return out;
}

/** rsync's item lines (what it prints besides the list line, created directories and the summary). */
function rsyncLines(stdout: Buffer): string[] {
  return stdout
    .toString()
    .split('\n')
    .filter((l) => l && !/^(building file list|sending incremental file list|created directory |sent |total size )/.test(l));
}

test('-i: the startup push and a change log the lines rsync -i prints for them, names escaped, each batch its line', async () => {
  const src = join(work, 'i-src');
  await makeTree(src);
  // The reference: rsync -i pushing the same tree, then the same change, into another path.
  const reference = await run(findRsync(), ['--no-motd', '-rlpt', '--delete', '-i', '--no-inc-recursive', `${src}/`, url('i-rsync/')], UTF8);
  assert.is(reference.status, 0, reference.stderr);
  const target = url('i-live/');
  const live = startLive(['-i', `${src}/`, target]);
  try {
    await eventually(() => batches(targetLines(live.log(), target)).length >= 1, 15_000, 'the startup batch');
    const startup = batches(targetLines(live.log(), target))[0]!;
    assert.equal(startup, rsyncLines(reference.stdout));
    assert.ok(startup.includes('<f+++++++++ new\\#012line'), 'a newline in a name is \\#012');
    assert.ok(targetLines(live.log(), target).some((l) => batchLine.test(l)));

    // A change: a file rewritten, a file created, a file deleted (fixed times, one batch).
    await writeFile(join(src, 'sub/b.txt'), 'second file in subdir, rewritten\n');
    await utimes(join(src, 'sub/b.txt'), T0 + 10, T0 + 10);
    await writeFile(bjoin(src, 'made\nlive'), 'new\n');
    await utimes(bjoin(src, 'made\nlive'), T0, T0);
    await rm(join(src, 'a.txt'));
    await utimes(src, T0 + 20, T0 + 20);
    await eventually(() => batches(targetLines(live.log(), target)).length >= 2, 10_000, 'the change batch');
    const changed = await run(findRsync(), ['--no-motd', '-rlpt', '--delete', '-i', '--no-inc-recursive', `${src}/`, url('i-rsync/')], UTF8);
    const ours = batches(targetLines(live.log(), target)).slice(1).flat();
    assert.equal([...ours].sort(), rsyncLines(changed.stdout).sort());
    assert.ok(ours.includes('*deleting   a.txt'));
    assert.ok(ours.includes('<f+++++++++ made\\#012live'));
  } finally {
    assert.is(await stopLive(live), 0);
  }
});

test('-v: the startup push logs the names rsync -v prints', async () => {
  const src = join(work, 'v-src');
  await makeTree(src);
  const reference = await run(findRsync(), ['--no-motd', '-rlpt', '--delete', '-v', '--no-inc-recursive', `${src}/`, url('v-rsync/')], UTF8);
  assert.is(reference.status, 0, reference.stderr);
  const target = url('v-live/');
  const live = startLive(['-v', `${src}/`, target]);
  try {
    await eventually(() => batches(targetLines(live.log(), target)).length >= 1, 15_000, 'the startup batch');
    assert.equal(batches(targetLines(live.log(), target))[0], rsyncLines(reference.stdout));
  } finally {
    assert.is(await stopLive(live), 0);
  }
});

test('--dryrun: logs what it would push (rsync -n -i lines), says it is a dry run, changes nothing', async () => {
  const src = join(work, 'n-src');
  await makeTree(src);
  const reference = await run(findRsync(), ['--no-motd', '-rlpt', '--delete', '-n', '-i', '--no-inc-recursive', `${src}/`, url('n-rsync/')], UTF8);
  assert.is(reference.status, 0, reference.stderr);
  const target = url('n-live/');
  const live = startLive(['--dryrun', `${src}/`, target]);
  try {
    await eventually(() => batches(targetLines(live.log(), target)).length >= 1, 15_000, 'the startup batch');
    const lines = targetLines(live.log(), target);
    assert.equal(batches(lines)[0], rsyncLines(reference.stdout));
    assert.ok(lines.some((l) => batchLine.test(l) && /dry run/.test(l)));
    assert.not.ok(existsSync(join(daemon.modulePath('push'), 'n-live')), 'a dry run creates nothing');
  } finally {
    assert.is(await stopLive(live), 0);
  }
});

test.run();
