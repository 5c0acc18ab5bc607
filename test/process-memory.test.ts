// src/process-memory.ts: what tuneProcessMemory changes in a real node process (a child, so this
// test's own heap is left as it is). V8's young generation stops growing past its size at the
// call while objects survive scavenges, also after a worker thread starts; LSYNCD_NO_MEMORY_TUNING leaves V8's growth alone (the
// same load grows it); the addon's mallopt(M_ARENA_MAX) takes effect on glibc.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { loadAddon } from '../src/addon.js';
import { run } from './helpers/cli.js';

const MODULE = fileURLToPath(new URL('../src/process-memory.js', import.meta.url));

/**
 * A child that tunes, then keeps 60 MB of small objects alive; prints new space before and after.
 * With WORKER set it starts a worker thread after tuning (node sets V8's flags anew for one).
 */
const CHILD = `
import { getHeapSpaceStatistics } from 'node:v8';
import { Worker } from 'node:worker_threads';
const { tuneProcessMemory } = await import(process.env.MODULE);
const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
// Garbage first: a few scavenges commit both semi-spaces, so space_size is the young generation's
// whole current size before the limit is set.
let last;
for (let i = 0; i < 300_000; i++) last = { i };
tuneProcessMemory();
if (process.env.WORKER) {
  const worker = new Worker('setInterval(() => {}, 1000)', { eval: true });
  await new Promise((resolve) => worker.once('online', resolve));
  await new Promise((resolve) => setImmediate(resolve));
  worker.unref();
}
const before = newSpace();
const kept = [];
for (let i = 0; i < 1_000_000; i++) kept.push({ i, s: 'x' + i });
console.log(JSON.stringify({ before, after: newSpace(), kept: kept.length, last: last.i }));
`;

async function youngGeneration(env: NodeJS.ProcessEnv): Promise<{ before: number; after: number }> {
  const r = await run(process.execPath, ['--input-type=module', '-e', CHILD], { MODULE, ...env });
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.toString()) as { before: number; after: number; kept: number };
  assert.is(out.kept, 1_000_000);
  return out;
}

test('tuned: the young generation keeps its size while survivors are promoted', async () => {
  const { before, after } = await youngGeneration({});
  assert.ok(after <= before, `new space ${before} -> ${after} bytes`);
});

test('tuned: a worker thread started afterwards does not undo it', async () => {
  const { before, after } = await youngGeneration({ WORKER: '1' });
  assert.ok(after <= before, `new space ${before} -> ${after} bytes`);
});

test('LSYNCD_NO_MEMORY_TUNING=1: V8 grows the young generation under the same load', async () => {
  const { before, after } = await youngGeneration({ LSYNCD_NO_MEMORY_TUNING: '1' });
  assert.ok(after > before, `new space ${before} -> ${after} bytes`);
});

test('limitMallocArenas: mallopt accepts the cap (glibc, with the addon)', () => {
  const addon = loadAddon(undefined, { quiet: true });
  if (!addon?.limitMallocArenas) {
    assert.is(addon, null, 'an addon without limitMallocArenas is an old build');
    return;
  }
  const glibc = Boolean((process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);
  assert.is(addon.limitMallocArenas(2), glibc);
  assert.throws(() => addon.limitMallocArenas!(0), /at least 1/);
});

// releaseMemory({ filePages: true }) (native/memory.cc) in a child: the clean file pages it
// unmaps leave RssFile, and the code and tables in them still work (zlib's and OpenSSL's output
// is the same after as before: the pages come back from the page cache unchanged).
const RELEASE_CHILD = `
import { readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { createHash } from 'node:crypto';
const { releaseMemory } = await import(process.env.ADDON_MODULE);
const rssFile = () => Number(/RssFile:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
const data = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251));
const work = () => createHash('sha256').update(deflateSync(data)).digest('hex');
const first = work();
const plain = releaseMemory();
const before = rssFile();
const dropped = releaseMemory({ filePages: true });
const after = rssFile();
console.log(JSON.stringify({ plain, dropped, before, after, same: work() === first }));
`;

test('releaseMemory({ filePages: true }): file pages leave the RSS, and what ran from them still runs the same', async () => {
  if (!loadAddon(undefined, { quiet: true })?.releaseMemory) return assert.is(loadAddon(undefined, { quiet: true }), null, 'an addon without releaseMemory is an old build');
  const ADDON_MODULE = fileURLToPath(new URL('../src/addon.js', import.meta.url));
  const r = await run(process.execPath, ['--input-type=module', '-e', RELEASE_CHILD], { ADDON_MODULE });
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.toString()) as { plain: { filePageBytes: number }; dropped: { filePageBytes: number }; before: number; after: number; same: boolean };
  assert.is(out.plain.filePageBytes, 0, 'the plain release leaves the file pages alone');
  assert.ok(out.dropped.filePageBytes > 8 * 2 ** 20, `unmapped ${out.dropped.filePageBytes} bytes`);
  assert.ok(out.after < out.before - 8 * 2 ** 20, `RssFile ${out.before} -> ${out.after}`);
  assert.ok(out.same, 'deflate + sha256 give the same output after the release');
});

test.run();
