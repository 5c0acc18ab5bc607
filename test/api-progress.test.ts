// push() and pull()'s onProgress (issue 15): a big file reports while it goes, not only at its
// end; each report's totals agree with what rsync's --stats says of the same transfer (regular
// files transferred, total transferred file size); names come as strings with their raw bytes
// (a non-UTF-8 name included). Against a real rsyncd.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { push, pull, type TransferProgress } from '../src/index.js';
import { ProgressReporter, PROGRESS_BYTES, PROGRESS_MS } from '../src/api/progress.js';
import type { FileEntry } from '../protocol/flist.js';
import { run } from './helpers/cli.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { bjoin, pseudoRandom, setTimes } from './helpers/fstree.js';

const BIG = 5 * 1024 * 1024 + 123;
const ODD_NAME = Buffer.from([0x6f, 0x64, 0x64, 0xff, 0x2e, 0x62, 0x69, 0x6e]); // "odd\xff.bin"

let dir: string;
let src: string;
let daemon: TestDaemon;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lsyncd-api-progress-'));
  src = join(dir, 'src');
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'big.bin'), pseudoRandom(BIG, 7));
  await writeFile(join(src, 'sub', 'small.txt'), 'small\n');
  await writeFile(bjoin(src, ODD_NAME), pseudoRandom(3000, 9));
  await setTimes(src);
  daemon = await startDaemon();
});

test.after(async () => {
  await daemon?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** rsync --stats's figures for the same transfer. */
async function rsyncStats(args: string[]): Promise<{ transferred: number; size: number }> {
  const out = await run('rsync', ['-rlpt', '--stats', ...args]);
  assert.is(out.status, 0, out.stderr);
  const text = out.stdout.toString();
  const num = (label: string) => Number(new RegExp(`${label}: ([\\d,]+)`).exec(text)![1]!.replace(/,/g, ''));
  return { transferred: num('Number of regular files transferred'), size: num('Total transferred file size') };
}

/** The reports are consistent: per file from 0 to its size, totals never going back. */
function checkReports(reports: TransferProgress[], expected: { transferred: number; size: number }): void {
  const last = reports[reports.length - 1]!;
  assert.is(last.filesDone, expected.transferred);
  assert.is(last.bytesDone, expected.size);
  assert.is(last.filesTotal, 3);
  for (let i = 1; i < reports.length; i++) {
    const [a, b] = [reports[i - 1]!, reports[i]!];
    assert.ok(b.bytesDone >= a.bytesDone && b.filesDone >= a.filesDone, `report ${i} goes back`);
    if (a.path === b.path && b.bytes !== 0) assert.ok(b.bytes > a.bytes, `report ${i}: ${a.bytes} then ${b.bytes}`);
  }
  const big = reports.filter((r) => r.path === 'big.bin');
  assert.is(big[0]!.bytes, 0);
  assert.is(big[big.length - 1]!.bytes, BIG);
  // While it went: several reports strictly between its start and its end, at most one per MiB or 100 ms.
  const during = big.filter((r) => r.bytes > 0 && r.bytes < BIG);
  assert.ok(during.length >= 2, `reports during big.bin: ${during.map((r) => r.bytes).join(', ')}`);
  assert.ok(during.length <= 64, `too many reports: ${during.length}`);
  for (const r of big) assert.is(r.size, BIG);
  const odd = reports.find((r) => r.pathBytes.equals(ODD_NAME));
  assert.ok(odd, 'the non-UTF-8 name is reported with its bytes');
  assert.is(odd!.path, 'odd\\#377.bin');
}

test('push: a big file reports while it goes; the totals are those of rsync --stats', async () => {
  const theirs = await rsyncStats([`${src}/`, `rsync://${daemon.host}:${daemon.port}/push/by-rsync/`]);
  const reports: TransferProgress[] = [];
  const result = await push(`${src}/`, `rsync://${daemon.host}:${daemon.port}/push/ours/`, { onProgress: (p) => reports.push(p) });
  assert.is(result.exitCode, 0);
  checkReports(reports, theirs);
  assert.is(result.stats.transferredFiles, theirs.transferred);
});

test('pull: the same, receiving', async () => {
  const theirs = await rsyncStats([`rsync://${daemon.host}:${daemon.port}/push/ours/`, join(dir, 'by-rsync') + '/']);
  const reports: TransferProgress[] = [];
  const result = await pull(`rsync://${daemon.host}:${daemon.port}/push/ours/`, join(dir, 'ours'), { onProgress: (p) => reports.push(p) });
  assert.is(result.exitCode, 0);
  checkReports(reports, theirs);
});

test('nothing to send: no reports', async () => {
  const reports: TransferProgress[] = [];
  await push(`${src}/`, `rsync://${daemon.host}:${daemon.port}/push/ours/`, { onProgress: (p) => reports.push(p) });
  assert.equal(reports, []);
});

test('the throttle: a report per PROGRESS_BYTES or, once bytes came, per PROGRESS_MS; always at start and end', () => {
  let now = 0;
  const reports: TransferProgress[] = [];
  const reporter = new ProgressReporter((p) => reports.push(p), () => now);
  const entry = { name: Buffer.from('f'), mode: 0o100644, size: 10 * PROGRESS_BYTES } as unknown as FileEntry;
  reporter.fileList(1); // one regular file (and a directory)
  reporter.started(3, entry);
  reporter.advanced(entry, 1000); // too soon, too little
  now += PROGRESS_MS;
  reporter.advanced(entry, 1000); // 100 ms later: reported
  reporter.advanced(entry, 1000); // no new bytes
  reporter.advanced(entry, 1000 + PROGRESS_BYTES); // a MiB more: reported at once
  now += 10 * PROGRESS_MS;
  reporter.advanced(entry, 1000 + PROGRESS_BYTES); // time passed but no new bytes: not reported
  reporter.advanced({ ...entry } as FileEntry, 5 * PROGRESS_BYTES); // another file's bytes: ignored
  reporter.finished(4); // not the current file
  reporter.finished(3);
  assert.equal(
    reports.map((r) => [r.bytes, r.filesDone, r.bytesDone, r.filesTotal]),
    [
      [0, 0, 0, 1],
      [1000, 0, 1000, 1],
      [1000 + PROGRESS_BYTES, 0, 1000 + PROGRESS_BYTES, 1],
      [10 * PROGRESS_BYTES, 1, 10 * PROGRESS_BYTES, 1],
    ],
  );
});

test.run();
