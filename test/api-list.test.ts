// listEntries(): list() as an async iterable for big trees (issue 15). The same entries as list()
// and rsync --list-only, in rsync's order; a loop that falls behind holds the listing; leaving
// the loop early closes the connection; a failure and an abort come out of the loop as the
// RsyncError family. Against a real rsyncd.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortError, RsyncError, list, listEntries, type ListEntry } from '../src/index.js';
import { LIST_AHEAD } from '../src/api/list.js';
import { run } from './helpers/cli.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { setTimes } from './helpers/fstree.js';

const DIRS = 20;
const FILES_PER_DIR = 150;

let dir: string;
let daemon: TestDaemon;
let url: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lsyncd-api-list-'));
  daemon = await startDaemon();
  const root = join(daemon.modulePath('push'), 'big');
  for (let d = 0; d < DIRS; d++) {
    await mkdir(join(root, `d${d}`), { recursive: true });
    for (let f = 0; f < FILES_PER_DIR; f++) await writeFile(join(root, `d${d}`, `f${f}.txt`), 'x'.repeat(f));
  }
  await setTimes(root);
  url = `rsync://${daemon.host}:${daemon.port}/push/big/`;
});

test.after(async () => {
  await daemon?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('listEntries yields what list() returns and rsync --list-only shows', async () => {
  const theirs = await run('rsync', ['-r', '--list-only', '--no-motd', url]);
  assert.is(theirs.status, 0, theirs.stderr);
  const rsyncNames = theirs.stdout.toString().trim().split('\n').map((line) => /^\S+\s+[\d,]+ \S+ \S+ (.*)$/.exec(line)![1]);
  const streamed: ListEntry[] = [];
  for await (const entry of listEntries(url, { recursive: true })) streamed.push(entry);
  assert.is(streamed.length, 1 + DIRS * (FILES_PER_DIR + 1));
  assert.equal(streamed.map((e) => e.path), rsyncNames);
  assert.equal(streamed, await list(url, { recursive: true }));
});

test('a slow loop holds the listing, and gets every entry', async () => {
  let count = 0;
  for await (const entry of listEntries(url, { recursive: true })) {
    // Every LIST_AHEAD entries, give the socket time to fill what the listing may not hand on.
    if (++count % LIST_AHEAD === 0) await new Promise((r) => setTimeout(r, 5));
    assert.type(entry.path, 'string');
  }
  assert.is(count, 1 + DIRS * (FILES_PER_DIR + 1));
});

test('leaving the loop early ends the listing; the daemon serves the next one', async () => {
  const taken: string[] = [];
  for await (const entry of listEntries(url, { recursive: true })) {
    taken.push(entry.path);
    if (taken.length === 10) break;
  }
  assert.is(taken.length, 10);
  assert.is(taken[0], '.');
  const top = await list(url);
  assert.is(top.length, 1 + DIRS);
});

test('a missing path: the loop throws the daemon words as an RsyncError (23)', async () => {
  const seen: string[] = [];
  try {
    for await (const entry of listEntries(`rsync://${daemon.host}:${daemon.port}/push/no-such-dir/`)) seen.push(entry.path);
    assert.unreachable('the listing should fail');
  } catch (e) {
    assert.instance(e, RsyncError);
    assert.is((e as RsyncError).exitCode, 23);
    assert.match((e as Error).message, /no-such-dir/);
  }
  assert.equal(seen, []);
});

test('an abort during the loop rejects with an AbortError', async () => {
  const controller = new AbortController();
  let count = 0;
  try {
    for await (const _entry of listEntries(url, { recursive: true, signal: controller.signal })) {
      if (++count === 5) controller.abort();
    }
    // The entries already received may all be taken before the abort is seen: then the loop ends.
    assert.ok(count <= 1 + DIRS * (FILES_PER_DIR + 1));
  } catch (e) {
    assert.instance(e, AbortError);
  }
  assert.ok(count >= 5);
  const already = new AbortController();
  already.abort();
  try {
    for await (const _entry of listEntries(url, { signal: already.signal })) assert.unreachable('nothing is listed');
    assert.unreachable('an aborted signal rejects');
  } catch (e) {
    assert.instance(e, AbortError);
  }
});

test.run();
