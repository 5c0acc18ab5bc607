// `lsyncd serve` as sender tells the client of a file that vanished between the list and its data,
// as rsyncd does (MSG_WARNING from protocol 30, MSG_INFO before; the name as full_fname shows it,
// escaped by the client): a stock rsync pulls through a relay that holds the client's requests
// until the file is gone, from our daemon and from rsyncd, and both runs must read the same.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from './helpers/cli.js';
import { setTimes } from './helpers/fstree.js';
import { runText, startBoth, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';
import { gatedRelay } from './helpers/gated-relay.js';

const ROOT = process.getuid?.() === 0;
const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
${ROOT ? 'uid = root\ngid = root\n' : ''}
[ro]
\tpath = ${dir}/ro
`;
/** A name the client must escape when it prints it (a control byte is \#001 in rsync's output). */
const VICTIM = 'vic\x01tim';

/** The filler files' names. */
const fillName = (i: number) => `${String(i).padStart(3, '0')}-a-file-with-a-rather-long-name-to-fill-the-list`;

/** The module's tree: enough long names for a list of several KB, and the file that will vanish. */
async function fillModule(dir: string): Promise<void> {
  const ro = join(dir, 'ro');
  await mkdir(join(ro, 'sub'), { recursive: true });
  // Names that differ from their first byte (rsync's list shares a name's prefix with the one before).
  for (let i = 0; i < 120; i++) await writeFile(join(ro, 'sub', fillName(i)), `content ${i}\n`);
  await writeFile(join(ro, 'sub', VICTIM), 'about to go\n');
  await setTimes(ro);
}

/** One pull of `path` through a gated relay; the victim is removed while the requests wait. */
async function pullWhileVanishing(daemon: { port: number; dir: string }, path: string, extra: string[]): Promise<{ r: RunResult; dest: string }> {
  // The client's requests wait once the daemon has sent its greeting, flags and the list (KBs).
  const relay = await gatedRelay(daemon.port, 'toDaemon', (c) => c.releases === 0 && c.fromDaemon >= 3000);
  const dest = await mkdtemp(join(tmpdir(), 'lsyncd-vanished-dest-'));
  try {
    const pull = run('rsync', ['-a', ...extra, `rsync://127.0.0.1:${relay.port}/${path}`, `${dest}/`]);
    await Promise.race([relay.held(), pull.then(() => assert.unreachable('the client ended before it asked for data'))]);
    await unlink(join(daemon.dir, 'ro', 'sub', VICTIM));
    relay.release();
    return { r: await pull, dest };
  } finally {
    await relay.close();
  }
}

let ours: OurDaemon;
let theirs: ConfiguredDaemon;

test.before(async () => {
  ({ ours, theirs } = await startBoth(CONFIG));
});
test.after(async () => {
  await ours.stop();
  await theirs.stop();
});

// Before protocol 30 the sender has no way to tell the client's receiver of the late io_error: rsync exits 0.
for (const [label, path, extra, exit] of [
  ['protocol 32, the module root', 'ro/', [], 24],
  ['protocol 32, a directory below it', 'ro/sub/', [], 24],
  ['protocol 29 (MSG_INFO: the client prints it on stdout)', 'ro/sub', ['--protocol=29'], 0],
] as const) {
  test(`a file vanished after the list: the client's words and exit code are rsyncd's (${label})`, async () => {
    const runs: Record<'o' | 't', { r: RunResult; dest: string }> = {} as never;
    for (const [key, d] of [['o', ours], ['t', theirs]] as const) {
      await fillModule(d.dir);
      runs[key] = await pullWhileVanishing(d, path, [...extra]);
    }
    try {
      const { o, t } = { o: runs.o.r, t: runs.t.r };
      assert.is(t.status, exit, runText(t));
      assert.is(o.status, t.status, `ours:\n${runText(o)}\nrsyncd:\n${runText(t)}`);
      assert.match(t.stderr + t.stdout.toString(), 'file has vanished: "', runText(t));
      assert.match(t.stderr + t.stdout.toString(), 'vic\\#001tim', runText(t));
      assert.is(o.stderr, t.stderr);
      assert.is(o.stdout.toString(), t.stdout.toString());
      // The other files came.
      const base = path.endsWith('sub') ? 'sub/' : path === 'ro/' ? 'sub/' : '';
      assert.is(await readFile(join(runs.o.dest, base, fillName(7)), 'utf8'), 'content 7\n');
    } finally {
      for (const { dest } of Object.values(runs)) await rm(dest, { recursive: true, force: true });
      for (const d of [ours, theirs]) await rm(join(d.dir, 'ro'), { recursive: true, force: true });
    }
  });
}

test('our daemon logs the vanished file too', async () => {
  assert.match(await ours.log(), 'file has vanished: "');
});

test.run();
