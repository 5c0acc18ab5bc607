// Ctrl-C (SIGINT) or SIGTERM during --once (issue 11, defect 9): as rsync's client, the run ends
// with the line for a signal and exit 20, and a pull leaves no temp file in the destination.
// rsync's own client, interrupted at the same point, is the reference.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, readdir, truncate, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { CLI } from './helpers/cli.js';
import { setTimes } from './helpers/fstree.js';

let daemon: TestDaemon;
let work: string;
/** Big enough that a transfer is still running when the signal comes (sparse: costs no disk to make). */
const BIG = 4 * 1024 ** 3;

test.before(async () => {
  daemon = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'lsyncd-signals-'));
  await mkdir(join(work, 'src'));
  await writeFile(join(work, 'src', 'big.bin'), '');
  await truncate(join(work, 'src', 'big.bin'), BIG);
  await setTimes(join(work, 'src'));
  await mkdir(join(daemon.modulePath('push'), 'pullsrc'));
  await writeFile(join(daemon.modulePath('push'), 'pullsrc', 'big.bin'), '');
  await truncate(join(daemon.modulePath('push'), 'pullsrc', 'big.bin'), BIG);
});

test.after(async () => {
  await daemon?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const addr = (path: string) => `rsync://${daemon.host}:${daemon.port}/${path}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Files in `dir` (recursively: names only) that look like rsync temp files: `.NAME.XXXXXX`. */
async function tempFiles(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const names = (await readdir(dir, { recursive: true })) as string[];
  return names.filter((n) => /(^|\/)\.[^/]+\.[A-Za-z0-9]{6}$/.test(n));
}

/** Runs `command`, sends `signal` once `ready()` holds (a transfer is under way), and reports. */
function interrupted(command: string, args: string[], signal: NodeJS.Signals, ready: () => Promise<boolean>): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    let closed = false;
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    void (async () => {
      while (!closed && !(await ready())) await sleep(20);
      if (!closed) child.kill(signal);
    })();
    child.on('error', reject);
    child.on('close', (status) => {
      closed = true;
      clearTimeout(killer);
      resolve({ status, stderr });
    });
  });
}

const SIGNAL_LINE = /error: received SIGINT, SIGTERM, or SIGHUP \(code 20\)/;

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`pull --once stopped by ${signal}: exit 20, rsync's line, no temp file left (as rsync)`, async () => {
    for (const who of ['rsync', 'lsyncd'] as const) {
      const dest = join(work, `pull-${who}-${signal}`);
      const started = async () => (await tempFiles(dest)).length > 0;
      const r =
        who === 'rsync'
          ? await interrupted('rsync', ['-rlpt', addr('push/pullsrc/'), dest + '/'], signal, started)
          : await interrupted(process.execPath, [CLI, '--once', addr('push/pullsrc/'), dest + '/'], signal, started);
      assert.is(r.status, 20, `${who}: ${r.stderr}`);
      assert.match(r.stderr, SIGNAL_LINE, who);
      if (who === 'lsyncd') {
        assert.match(r.stderr.trim().split('\n').pop()!, /^lsyncd error: received SIGINT, SIGTERM, or SIGHUP \(code 20\)$/);
        assert.not.match(r.stderr, /internal error|connection closed/);
      }
      assert.equal(await tempFiles(dest), [], `${who} left a temp file`);
    }
  });

  test(`push --once stopped by ${signal}: exit 20 and rsync's line (as rsync)`, async () => {
    for (const who of ['rsync', 'lsyncd'] as const) {
      const module = join(daemon.modulePath('push'), `push-${who}-${signal}`);
      const started = async () => (await tempFiles(module)).length > 0;
      const r =
        who === 'rsync'
          ? await interrupted('rsync', ['-rlpt', join(work, 'src') + '/', addr(`push/push-${who}-${signal}/`)], signal, started)
          : await interrupted(process.execPath, [CLI, '--once', join(work, 'src') + '/', addr(`push/push-${who}-${signal}/`)], signal, started);
      assert.is(r.status, 20, `${who}: ${r.stderr}`);
      assert.match(r.stderr, SIGNAL_LINE, who);
      if (who === 'lsyncd') assert.not.match(r.stderr, /internal error|connection closed/);
    }
  });
}

test.run();
