// A pull whose file fails verification on both attempts (helpers/damaged-basis.ts): rsync's client
// prints the redo's ERROR always, and the first attempt's WARNING only with -v, -i or --progress
// (receiver.c recv_files: FWARNING under INFO_GTE(NAME, 1) or an itemizing format). Our pull's
// stderr lines about it against rsync's pull from rsyncd, for each of those.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, run, type RunResult } from './helpers/cli.js';
import { pseudoRandom, setTime, T0 } from './helpers/fstree.js';
import { runText } from './helpers/serve.js';
import { startDaemonWithConfig, type ConfiguredDaemon } from './helpers/daemon.js';
import { withDamagedBasis } from './helpers/damaged-basis.js';

const ROOT = process.getuid?.() === 0;
const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
${ROOT ? 'uid = root\ngid = root\n' : ''}
[mod]
\tpath = ${dir}/mod
`;

const SIZE = 1 << 20;
const SOURCE = pseudoRandom(SIZE, 11);
/** The old version: the source with its tail changed (the rest matches block for block). */
const STALE = Buffer.concat([SOURCE.subarray(0, 900_000), pseudoRandom(SIZE - 900_000, 12)]);
const verificationLines = (r: RunResult) => r.stderr.split('\n').filter((l) => l.includes('failed verification'));

let theirs: ConfiguredDaemon;
let work: string;

test.before(async () => {
  theirs = await startDaemonWithConfig(CONFIG);
  work = await mkdtemp(join(tmpdir(), 'lsyncd-verify-warn-'));
  await mkdir(join(theirs.dir, 'mod'), { recursive: true });
  await writeFile(join(theirs.dir, 'mod', 'big.bin'), SOURCE);
  await setTime(join(theirs.dir, 'mod', 'big.bin'));
});
test.after(async () => {
  await theirs.stop();
  await rm(work, { recursive: true, force: true });
});

const CASES: Array<{ flags: string[]; warned: boolean }> = [
  { flags: [], warned: false },
  { flags: ['-v'], warned: true },
  { flags: ['-i'], warned: true },
  { flags: ['--progress'], warned: true },
];

for (const { flags, warned } of CASES) {
  test(`a pull ${flags.join(' ') || 'without -v'}: the first attempt's WARNING ${warned ? 'printed' : 'not printed'}, as by rsync's pull`, async () => {
    const lines: Record<'rsync' | 'ours', string[]> = { rsync: [], ours: [] };
    for (const who of ['rsync', 'ours'] as const) {
      const dest = join(work, `${flags.join('') || 'quiet'}-${who}`);
      await mkdir(dest, { recursive: true });
      await writeFile(join(dest, 'big.bin'), STALE);
      await setTime(join(dest, 'big.bin'), T0 - 1000);
      const { r, rounds } = await withDamagedBasis(theirs.port, 'toClient', join(dest, 'big.bin'), (port) => {
        const url = `rsync://127.0.0.1:${port}/mod/big.bin`;
        return who === 'rsync' ? run('rsync', ['-t', ...flags, url, dest + '/']) : run(process.execPath, [CLI, '--once', ...flags, url, dest + '/']);
      });
      assert.is(rounds, 2, runText(r));
      assert.is(r.status, 23, runText(r));
      lines[who] = verificationLines(r);
    }
    const want = [
      ...(warned ? ['WARNING: big.bin failed verification -- update discarded (will try again).'] : []),
      'ERROR: big.bin failed verification -- update discarded.',
    ];
    assert.equal(lines.rsync, want);
    assert.equal(lines.ours, lines.rsync);
  });
}

test.run();
