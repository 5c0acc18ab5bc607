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

test.run();
