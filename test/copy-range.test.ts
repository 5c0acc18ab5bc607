// src/transfer/copy-range.ts (native/copy-range.cc): matched runs of a big file's delta appended
// to the temp file by the kernel. appendRange on its own (offsets, short sources, a descriptor the
// kernel cannot copy into), then a delta pull of a file big enough for the sums helper from a real
// rsyncd: the result, the literal and matched bytes and the daemon's byte counts as with rsync's
// client, with the kernel copy, without the addon (read and write), and without the helper thread
// (src/transfer/sums-helper.ts spareCoreForHelper: LSYNCD_SUMS_HELPER decides here).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, constants, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendRange } from '../src/transfer/copy-range.js';
import { loadAddon } from '../src/addon.js';
import { PARALLEL_SUMS_MIN } from '../protocol/sums.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { lsyncd, run } from './helpers/cli.js';
import { setTime, T0 } from './helpers/fstree.js';

let daemon: TestDaemon;
let work: string;

test.before(async () => {
  daemon = await startDaemon({ extraModules: [{ name: 'src', comment: 'pull source', settings: { 'read only': true } }] });
  work = await mkdtemp(join(tmpdir(), 'lsyncd-copy-range-'));
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

/** `n` bytes that no two blocks share (a linear congruential sequence). */
function pseudoRandom(n: number, seed: number): Buffer {
  const data = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i + 4 <= n; i += 4) data.writeUInt32LE((x = (Math.imul(x, 1664525) + 1013904223) >>> 0), i);
  return data;
}

test('appendRange: bytes from an offset appended at the file offset, between ordinary writes; short at the end of the source', () => {
  assert.ok(loadAddon(undefined, { quiet: true })?.copyFileRange, 'the addon has copyFileRange');
  const source = join(work, 'source');
  const data = pseudoRandom(300_000, 7);
  writeFileSync(source, data);
  const from = openSync(source, 'r');
  const outPath = join(work, 'out');
  const out = openSync(outPath, 'w+');
  try {
    writeSync(out, Buffer.from('head'));
    assert.is(appendRange(from, 1000, out, 200_000), 200_000);
    writeSync(out, Buffer.from('middle'));
    // Past the end of the source: only what is there.
    assert.is(appendRange(from, 250_000, out, 100_000), 50_000);
    writeSync(out, Buffer.from('tail'));
    const want = Buffer.concat([Buffer.from('head'), data.subarray(1000, 201_000), Buffer.from('middle'), data.subarray(250_000), Buffer.from('tail')]);
    assert.ok(readFileSync(outPath).equals(want));
  } finally {
    closeSync(from);
    closeSync(out);
  }
  // A descriptor the kernel will not copy into (O_APPEND): nothing copied, the caller writes.
  const appending = openSync(outPath, constants.O_WRONLY | constants.O_APPEND);
  const again = openSync(source, 'r');
  try {
    assert.is(appendRange(again, 0, appending, 4096), 0);
  } finally {
    closeSync(again);
    closeSync(appending);
  }
});

/** The daemon log's "sent N bytes  received M bytes" of its last connection. */
async function lastCounts(): Promise<{ sent: number; received: number }> {
  const all = [...(await daemon.log()).matchAll(/sent ([\d,]+) bytes {2}received ([\d,]+) bytes/g)];
  const m = all.at(-1);
  if (!m) throw new Error('no byte counts in the daemon log');
  return { sent: Number(m[1]!.replace(/,/g, '')), received: Number(m[2]!.replace(/,/g, '')) };
}

function statNumber(output: string, label: string): number {
  const m = new RegExp(`${label}: ([\\d,]+)`).exec(output);
  if (!m) throw new Error(`no "${label}" in output:\n${output}`);
  return Number(m[1]!.replace(/,/g, ''));
}

test('a delta pull of a big file: matched runs copied by the kernel (and without the addon, and with no helper thread), the same result, data and daemon byte counts as rsync', async () => {
  const size = PARALLEL_SUMS_MIN + 5 * 1024 * 1024 + 321;
  const old = pseudoRandom(size, 11);
  const src = join(daemon.modulePath('src'), 'big');
  await mkdir(src, { recursive: true });
  const changed = Buffer.from(old);
  // Changes at the start, in the middle (an odd offset) and in the last block; one inserted run.
  for (const at of [0, 9_999_999, size - 50]) changed.fill(0x5a, at, at + 40);
  const data = Buffer.concat([changed.subarray(0, 20_000_000), Buffer.from('inserted bytes'), changed.subarray(20_000_000)]);
  await writeFile(join(src, 'big.bin'), data);
  await setTime(join(src, 'big.bin'), T0 + 60);
  const basis = join(work, 'basis.bin');
  await writeFile(basis, old);
  const pull = async (who: string, env: NodeJS.ProcessEnv = {}) => {
    const dest = join(work, who);
    await mkdir(dest, { recursive: true });
    await copyFile(basis, join(dest, 'big.bin'));
    await setTime(join(dest, 'big.bin'), T0);
    const url = `rsync://127.0.0.1:${daemon.port}/src/big/`;
    const r =
      who === 'rsync'
        ? await run('rsync', ['-rlpt', '--stats', '--no-inc-recursive', url, dest + '/'])
        : await lsyncd(['--once', '--stats', '--timeout', '30', url, dest + '/'], env);
    assert.is(r.status, 0, `${who}: ${r.stderr}\n${r.stdout.toString()}`);
    assert.ok((await readFile(join(dest, 'big.bin'))).equals(data), `${who}: the pulled file`);
    const stdout = r.stdout.toString();
    return { literal: statNumber(stdout, 'Literal data'), matched: statNumber(stdout, 'Matched data'), ...(await lastCounts()) };
  };
  const theirs = await pull('rsync');
  // The kernel copy runs when the sums helper hashes the file (always here, whatever the load).
  const kernel = await pull('ours-kernel', { LSYNCD_SUMS_HELPER: 'always' });
  const plain = await pull('ours-plain', { LSYNCD_SUMS_HELPER: 'always', LSYNCD_NO_ADDON: '1' });
  const alone = await pull('ours-alone', { LSYNCD_SUMS_HELPER: 'never' });
  assert.ok(theirs.matched > size - 1_000_000, `most of the file matched: ${JSON.stringify(theirs)}`);
  for (const [label, ours] of [['kernel copy', kernel], ['read and write', plain], ['no helper thread', alone]] as const) {
    assert.is(ours.literal, theirs.literal, `${label}: literal data`);
    assert.is(ours.matched, theirs.matched, `${label}: matched data`);
    // The daemon's counts: the same within the varlongs of its end-of-run stats (the file list's
    // build and transfer times, whose encoded lengths follow the clock) and of the client's
    // arguments (ours are not rsync's client's).
    const near = (a: number, b: number) => Math.abs(a - b) <= 32;
    assert.ok(near(ours.sent, theirs.sent), `${label}: bytes the daemon sent, ${ours.sent} vs rsync's ${theirs.sent}`);
    assert.ok(near(ours.received, theirs.received), `${label}: bytes the daemon received, ${ours.received} vs rsync's ${theirs.received}`);
  }
});

test.run();
