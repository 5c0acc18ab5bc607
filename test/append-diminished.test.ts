// --append and a file that shrinks after the list went out (issue 13): rsync's sender skips it
// with "skipped diminished file" (a warning, MSG_NO_SEND from protocol 30) and the receiver keeps
// what it had. Our sender does the same: on our push into rsyncd (against rsync's push), and in
// lsyncd serve sending to a stock rsync's pull (against rsyncd). The file shrinks while a big one
// before it is still going (--bwlimit keeps it going for a few seconds).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rm, writeFile, mkdir, truncate, readFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { lsyncd, run, type RunResult } from './helpers/cli.js';
import { pseudoRandom, setTimes } from './helpers/fstree.js';
import { startOptionRig, type OptionRig, daemonUrl, runText, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';

let rig: OptionRig;
let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;


test.before(async () => {
  rig = await startOptionRig('diminished', { push: 'rw' });
  ({ ours, theirs, work } = rig);
});
test.after(async () => {
  await rig?.stop();
});

const LOG = Buffer.from('a line of the growing log\n'.repeat(2000));

/** a.bin (sent first, slowly), then b.log, which the destination has the start of. */
async function prepare(src: string, dest: string): Promise<void> {
  await rm(src, { recursive: true, force: true });
  await rm(dest, { recursive: true, force: true });
  await mkdir(src, { recursive: true });
  await mkdir(dest, { recursive: true });
  await writeFile(join(src, 'a.bin'), pseudoRandom(3 * 1024 * 1024, 11));
  await writeFile(join(src, 'b.log'), LOG);
  await writeFile(join(dest, 'b.log'), LOG.subarray(0, 1000));
  await setTimes(src);
}

/** Runs the transfer; once a.bin is arriving, b.log at the source is cut below what the list says. */
async function shrinkDuring(transfer: () => Promise<RunResult>, src: string, arriving: string): Promise<RunResult> {
  let cut = false;
  const poll = setInterval(() => {
    if (!cut && (statSync(arriving, { throwIfNoEntry: false })?.size ?? 0) > 100_000) {
      cut = true;
      void truncate(join(src, 'b.log'), 500);
    }
  }, 5);
  try {
    return await transfer();
  } finally {
    clearInterval(poll);
    assert.ok(cut, 'b.log was cut while a.bin was arriving');
  }
}

function assertSkipped(r: RunResult, who: string): void {
  assert.match(r.stderr.toString(), /skipped diminished file: .*b\.log/, `${who}: ${runText(r)}`);
}

test('our push --append: a file cut after the list is skipped as rsync skips it', async () => {
  const results: Record<string, RunResult> = {};
  for (const who of ['rsync', 'lsyncd'] as const) {
    const src = join(work, 'push-src', who);
    const dest = join(theirs.dir, 'push', `dim-${who}`);
    await prepare(src, dest);
    const url = daemonUrl(theirs, `push/dim-${who}/`);
    const args = ['--append', '--bwlimit=1000', src + '/', url];
    results[who] = await shrinkDuring(() => (who === 'rsync' ? run('rsync', ['-rlpt', ...args]) : lsyncd(['--once', ...args])), src, join(dest, 'a.bin'));
    assertSkipped(results[who]!, who);
    // The receiver keeps what it had; the big file arrived whole.
    assert.ok((await readFile(join(dest, 'b.log'))).equals(LOG.subarray(0, 1000)), who);
    assert.is(statSync(join(dest, 'a.bin')).size, 3 * 1024 * 1024, who);
  }
  assert.is(results.lsyncd!.status, results.rsync!.status, `rsync: ${runText(results.rsync!)}\nours: ${runText(results.lsyncd!)}`);
});

test('lsyncd serve sending --append: a stock pull sees the file skipped as rsyncd skips it', async () => {
  const results: Record<string, RunResult> = {};
  for (const d of [theirs, ours]) {
    const who = d === ours ? 'lsyncd serve' : 'rsyncd';
    const src = join(d.dir, 'push', 'dim-src');
    const dest = join(work, 'pull-dest', who.replace(' ', '-'));
    await prepare(src, dest);
    const args = ['-rlpt', '--append', '--bwlimit=1000', daemonUrl(d, 'push/dim-src/'), dest + '/'];
    results[who] = await shrinkDuring(() => run('rsync', args), src, join(dest, 'a.bin'));
    assertSkipped(results[who]!, who);
    assert.ok((await readFile(join(dest, 'b.log'))).equals(LOG.subarray(0, 1000)), who);
    assert.is(statSync(join(dest, 'a.bin')).size, 3 * 1024 * 1024, who);
  }
  assert.is(results['lsyncd serve']!.status, results.rsyncd!.status, `rsyncd: ${runText(results.rsyncd!)}\nours: ${runText(results['lsyncd serve']!)}`);
  // The client's line, word for word (the name from the module's root, the module named).
  const line = (r: RunResult) => r.stderr.toString().split('\n').find((l) => l.includes('diminished'));
  assert.is(line(results['lsyncd serve']!), line(results.rsyncd!));
});

test.run();
