// One target's runner (src/live/runner.ts) with a scripted push function: partial transfers
// (exit 23/24) retried, not forgotten; capped exponential backoff; the delay window; stop().
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TargetRunner, type LogFn, type PushFn } from '../src/live/runner.js';
import { DEFAULT_TRANSFER } from '../protocol/args.js';
import { SocketError } from '../protocol/errors.js';
import type { PushOptions, PushResult } from '../src/transfer/push.js';

let root: string;
test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'lsyncd-live-runner-'));
  await mkdir(join(root, 'a/b'), { recursive: true });
});
test.after(() => rm(root, { recursive: true, force: true }));

interface Call {
  at: number;
  source: string;
  path: string;
}

/** A push that answers from `script` (exit code, or an error to throw), then 0 forever. */
function scripted(script: Array<number | Error>): { fn: PushFn; calls: Call[] } {
  const calls: Call[] = [];
  const fn: PushFn = async (o: PushOptions) => {
    calls.push({ at: Date.now(), source: o.source.slice(root.length), path: o.target.path });
    await new Promise((r) => setTimeout(r, 5));
    const next = script.shift() ?? 0;
    if (next instanceof Error) throw next;
    return { exitCode: next, bytesSent: 0 } as unknown as PushResult;
  };
  return { fn, calls };
}

function runner(pushFn: PushFn, extra: { delayMs?: number; initialMs?: number; maxMs?: number; log?: LogFn } = {}) {
  return new TargetRunner({
    source: root,
    target: { host: '127.0.0.1', port: 1, module: 'm', path: 'base/' },
    session: {},
    transfer: DEFAULT_TRANSFER,
    subtrees: true,
    delayMs: extra.delayMs ?? 0,
    retry: { initialMs: extra.initialMs ?? 20, maxMs: extra.maxMs ?? 80, refusedMs: 600_000 },
    log: extra.log ?? (() => {}),
    pushFn,
  });
}

test('startup push, then a change pushes its parent onto the matching sub-path', async () => {
  const { fn, calls } = scripted([]);
  const r = runner(fn);
  r.start(true);
  await r.whenSynced();
  r.changed((p) => p.add('a/b/f', { kind: 'modify', isDir: false }));
  await r.whenIdle();
  assert.equal(calls.map((c) => [c.source, c.path]), [
    ['/', 'base/'],
    ['/a/b/', 'base/a/b/'],
  ]);
  await r.stop(Date.now() + 100);
});

test('exit 23 and 24: the paths stay pending and are pushed again', async () => {
  const { fn, calls } = scripted([0, 23, 24, 0]);
  // A backoff long enough that "at once" cannot be mistaken for it on a loaded host.
  const r = runner(fn, { initialMs: 2000, maxMs: 2000 });
  r.start(true);
  await r.whenSynced();
  r.changed((p) => p.add('a/f', { kind: 'create', isDir: false }));
  await r.whenIdle();
  assert.equal(calls.map((c) => c.source), ['/', '/a/', '/a/', '/a/']);
  assert.ok(calls[2]!.at - calls[1]!.at >= 2000, 'after a partial transfer (23) the retry waits');
  assert.ok(calls[3]!.at - calls[2]!.at < 1000, 'after a vanished file (24) the next push starts at once');
  const s = r.status();
  assert.is(s.failures, 1);
  assert.is(s.vanishedRetries, 1);
  assert.is(s.consecutiveFailures, 0);
  assert.is(s.pending, 0);
  await r.stop(Date.now() + 100);
});

test('unreachable: capped exponential backoff, events keep collapsing, no escalation', async () => {
  const down = () => new SocketError('connect ECONNREFUSED');
  const { fn, calls } = scripted([down(), down(), down(), down(), down()]);
  const r = runner(fn, { initialMs: 20, maxMs: 60 });
  r.start(true);
  r.changed((p) => p.add('a/b/f', { kind: 'modify', isDir: false }));
  await r.whenSynced();
  await r.whenIdle();
  const gaps = calls.slice(1).map((c, i) => c.at - calls[i]!.at);
  // 20, 40, 60, 60, 60 ms (+ the 5 ms the fake push takes, + timer slack)
  const want = [20, 40, 60, 60, 60];
  gaps.slice(0, 5).forEach((g, i) => assert.ok(g >= want[i]! && g < want[i]! + 250, `gap ${i}: ${g} ms, want ~${want[i]}`));
  // The startup rescan absorbed the change: one full push, nothing else.
  assert.equal(new Set(calls.map((c) => c.source)), new Set(['/']));
  await r.stop(Date.now() + 100);
});

test('a push that keeps failing for another reason moves one level up per further failure', async () => {
  const bad = () => new Error('mkdir failed');
  const { fn, calls } = scripted([0, bad(), bad(), bad()]);
  const r = runner(fn, { initialMs: 5, maxMs: 10 });
  r.start(true);
  await r.whenSynced();
  r.changed((p) => p.add('a/b/f', { kind: 'modify', isDir: false }));
  await r.whenIdle();
  assert.equal(calls.map((c) => c.source), ['/', '/a/b/', '/a/b/', '/a/', '/']);
  await r.stop(Date.now() + 100);
});

test('delay: changes within the window go in one batch', async () => {
  const { fn, calls } = scripted([]);
  const r = runner(fn, { delayMs: 1000 });
  r.start(false);
  r.changed((p) => p.add('a/b/f', { kind: 'modify', isDir: false }));
  await new Promise((res) => setTimeout(res, 30));
  assert.is(r.status().state, 'waiting', 'still inside the window');
  assert.is(calls.length, 0);
  r.changed((p) => p.add('a/g', { kind: 'create', isDir: false }));
  await r.whenIdle();
  assert.equal(calls.map((c) => c.source), ['/a/']);
  assert.is(r.status().batches, 1);
  await r.stop(Date.now() + 100);
});

test('the startup push does not wait for the delay window', async () => {
  const { fn, calls } = scripted([]);
  const r = runner(fn, { delayMs: 60_000 });
  const started = Date.now();
  r.start(true);
  await r.whenSynced();
  assert.ok(Date.now() - started < 10_000);
  assert.equal(calls.map((c) => c.source), ['/']);
  await r.stop(Date.now() + 100);
});

test('stop(): flushes what is pending, ignoring backoff', async () => {
  const { fn, calls } = scripted([0, new SocketError('down'), 0]);
  const r = runner(fn, { initialMs: 10_000, maxMs: 10_000 });
  r.start(true);
  await r.whenSynced();
  r.changed((p) => p.add('a/f', { kind: 'modify', isDir: false }));
  while (r.status().state !== 'backoff') await new Promise((res) => setTimeout(res, 5));
  const started = Date.now();
  const left = await r.stop(Date.now() + 2000);
  assert.equal(left, { unpushed: 0, exitCode: 0 });
  assert.ok(Date.now() - started < 1000);
  assert.equal(calls.map((c) => c.source), ['/', '/a/', '/a/']);
  assert.is(r.status().state, 'stopped');
});

test('stop() with a target that keeps failing: one attempt, no reconnect loop; the last failure\'s code', async () => {
  const { fn, calls } = scripted([0, ...Array.from({ length: 100 }, () => new SocketError('connection refused'))]);
  const lines: string[] = [];
  const r = runner(fn, { initialMs: 20, maxMs: 40, log: (level, m) => lines.push(`${level} ${m}`) });
  r.start(true);
  await r.whenSynced();
  r.changed((p) => p.add('a/f', { kind: 'modify', isDir: false }));
  // Several retries.
  const deadline = Date.now() + 30_000;
  while (calls.length < 6 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
  const before = calls.length;
  assert.ok(before >= 5, `retried ${before - 1} times`);
  // The state change is said once; each retry is a debug line.
  assert.is(lines.filter((l) => l.startsWith('warn') && l.includes('connection refused')).length, 1, lines.join('\n'));
  const started = Date.now();
  const left = await r.stop(Date.now() + 5000);
  assert.ok(Date.now() - started < 1000, 'gave up at once');
  assert.ok(calls.length - before <= 1, `${calls.length - before} attempts after stop()`);
  assert.equal(left, { unpushed: 1, exitCode: 10 });
});

test('a 23 whose only messages say the tree changed goes again at once, counted, not a failure; other 23s wait', async () => {
  const calls: number[] = [];
  const script: Array<[number, string[]]> = [[0, []], [23, ['file has vanished: "a/x"', 'send_files failed to open "a/y": ENOTDIR: not a directory, open \'a/y\'']], [0, []], [23, ['rsync: [receiver] mkstemp "a/.f.XXXX" failed: Permission denied (13)']], [0, []]];
  const fn: PushFn = async (o: PushOptions) => {
    calls.push(Date.now());
    const [code, words] = script.shift() ?? [0, []];
    for (const w of words) o.onError?.(w);
    return { exitCode: code, bytesSent: 0, stats: { transferredFiles: 1 } } as unknown as PushResult;
  };
  const lines: string[] = [];
  const r = runner(fn, { initialMs: 2000, maxMs: 2000, log: (level, m) => lines.push(`${level} ${m}`) });
  r.start(true);
  await r.whenSynced();
  r.changed((p) => p.add('a/f', { kind: 'modify', isDir: false }));
  await r.whenIdle();
  assert.ok(calls[2]! - calls[1]! < 1000, 'the tree changed under it: again at once');
  assert.is(r.status().failures, 0);
  assert.is(r.status().vanishedRetries, 1);
  assert.not.ok(lines.some((l) => !l.startsWith('debug') && /vanished|ENOTDIR/.test(l) && !/pushed \d+ change/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^info .*pushed 1 change\(s\): 1 file\(s\), 0 bytes in \d+ ms; 2 file\(s\) changed or vanished meanwhile, pushing again/.test(l)), lines.join('\n'));
  r.changed((p) => p.add('a/g', { kind: 'modify', isDir: false }));
  await r.whenIdle();
  assert.ok(calls[4]! - calls[3]! >= 2000, 'a real error waits');
  assert.is(r.status().failures, 1);
  assert.ok(lines.some((l) => l.startsWith('warn') && l.includes('Permission denied')), lines.join('\n'));
  await r.stop(Date.now() + 100);
});

test.run();
