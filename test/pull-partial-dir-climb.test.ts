// A relative --partial-dir that climbs (`../.part`) on our pull, as rsync takes it: a file's copy
// goes to its directory's `../.part` (rsync's partial_dir_fname joins them), so `sub/big.bin`'s is
// DEST/.part/big.bin; one that would climb above DEST has none (nothing written or read outside
// DEST). Cut short against rsync 3.2.7's pull (rsync 3.5 makes the dir but its confined rename
// refuses the `..`, so it keeps nothing; 3.2.7 cannot resume from it: its receiver fails to open
// that basis); a top-level file against rsync 3.5's pull: the same tree and stats, no basis read
// from outside DEST and nothing made there.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { CLI, lsyncd, run, type RunResult } from './helpers/cli.js';
import { setTimes } from './helpers/fstree.js';
import { interrupted, tempSize } from './helpers/interrupt.js';
import { oldRsync } from './helpers/old-rsync.js';
import { snapshot, diffTrees } from './helpers/tree.js';
import { runText } from './helpers/serve.js';

let daemon: TestDaemon;
let rsync327: string;

test.before(async () => {
  daemon = await startDaemon({ extraModules: [{ name: 'src', comment: 'pull source', settings: { 'read only': true } }] });
  rsync327 = await oldRsync();
});
test.after(async () => {
  await daemon?.stop();
});

function statNumber(output: Buffer, label: string): number {
  const m = new RegExp(`${label}: ([\\d,]+)`).exec(output.toString());
  if (!m) throw new Error(`no "${label}" in output:\n${output}`);
  return Number(m[1]!.replace(/,/g, ''));
}

const SIZE = 48 * 1024 * 1024;
const OPTION = '--partial-dir=../.part';

test('pull --partial-dir=../.part: a file in sub/ cut short is kept in DEST/.part as by rsync 3.2.7; resumed from it and removed', async () => {
  const src = join(daemon.modulePath('src'), 'climb');
  await rm(src, { recursive: true, force: true });
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'sub/big.bin'), randomBytes(SIZE));
  await setTimes(src);
  const url = `rsync://127.0.0.1:${daemon.port}/src/climb/`;
  for (const who of ['rsync 3.2.7', 'lsyncd'] as const) {
    const top = join(daemon.dir, 'climb-runs', who.replace(/\W/g, ''));
    const dest = join(top, 'dest');
    await rm(top, { recursive: true, force: true });
    await mkdir(dest, { recursive: true });
    const kept = join(dest, '.part/big.bin');
    const ready = () => tempSize(join(dest, 'sub'), 'big.bin') >= 8 * 1024 * 1024;
    const { status, stderr } =
      who === 'lsyncd' ? await interrupted(process.execPath, [CLI, '--once', OPTION, url, dest + '/'], ready) : await interrupted(rsync327, ['-rlpt', OPTION, url, dest + '/'], ready);
    assert.is(status, 20, `${who}: ${stderr}`);
    const partial = statSync(kept, { throwIfNoEntry: false });
    assert.ok(partial && partial.size >= 8 * 1024 * 1024 && partial.size < SIZE, `${who}: kept ${partial?.size}`);
    assert.is(statSync(join(dest, '.part')).mode & 0o777, 0o700, `${who}: the partial dir is made 0700`);
    assert.not.ok(existsSync(join(top, '.part')), `${who}: nothing above DEST`);
    // rsync 3.2.7's next run offers it as the basis but its receiver cannot open it there (each
    // attempt fails verification, the copy stays); ours resumes from it, then removes it and the dir.
    if (who !== 'lsyncd') continue;
    const resumed = await lsyncd(['--once', OPTION, '--stats', url, dest + '/']);
    assert.is(resumed.status, 0, runText(resumed));
    const matched = statNumber(resumed.stdout, 'Matched data');
    assert.ok(matched >= partial!.size * 0.9, `${who}: matched ${matched} of ${partial!.size} kept`);
    assert.is(matched + statNumber(resumed.stdout, 'Literal data'), SIZE, who);
    assert.ok((await readFile(join(dest, 'sub/big.bin'))).equals(await readFile(join(src, 'sub/big.bin'))), who);
    assert.not.ok(existsSync(join(dest, '.part')), `${who}: partial copy and dir removed`);
  }
});

test('pull --partial-dir=../.part: a top-level file has no partial place (none read or made above DEST), as rsync 3.5', async () => {
  const src = join(daemon.modulePath('src'), 'climb-top');
  await rm(src, { recursive: true, force: true });
  await mkdir(join(src, 'sub'), { recursive: true });
  const data = randomBytes(2 * 1024 * 1024);
  await writeFile(join(src, 'top.bin'), data);
  await writeFile(join(src, 'sub/inner.bin'), randomBytes(300_000));
  await setTimes(src);
  const url = `rsync://127.0.0.1:${daemon.port}/src/climb-top/`;
  const runs: Partial<Record<'rsync' | 'lsyncd', { r: RunResult; dest: string }>> = {};
  for (const who of ['rsync', 'lsyncd'] as const) {
    const top = join(daemon.dir, 'climb-top-runs', who);
    const dest = join(top, 'dest');
    await rm(top, { recursive: true, force: true });
    await mkdir(dest, { recursive: true });
    // A copy where `../.part` of a top-level file would be: outside DEST, never a basis.
    await mkdir(join(top, '.part'));
    await writeFile(join(top, '.part/top.bin'), data);
    const r = who === 'lsyncd' ? await lsyncd(['--once', OPTION, '--stats', url, dest + '/']) : await run('rsync', ['-rlpt', OPTION, '--stats', url, dest + '/']);
    assert.is(r.status, 0, runText(r));
    assert.is(statNumber(r.stdout, 'Matched data'), 0, `${who}: nothing read from outside DEST\n${runText(r)}`);
    assert.ok((await readFile(join(top, '.part/top.bin'))).equals(data), `${who}: the copy outside DEST untouched`);
    runs[who] = { r, dest };
  }
  assert.is(statNumber(runs.lsyncd!.r.stdout, 'Literal data'), statNumber(runs.rsync!.r.stdout, 'Literal data'));
  assert.equal(diffTrees(await snapshot(runs.rsync!.dest), await snapshot(runs.lsyncd!.dest)), []);
});

test.run();
