// Transfer logging of `lsyncd serve` against rsyncd's (issue 10, docs/serve.md "Transfer logging"):
// the same stock rsync commands (a push of a tree with directories, odd names, symlinks and hard
// links; a delta; deletions; a pull) run against our daemon and a real rsyncd started from the same
// config text, with a module logging in rsync's default format and one in a custom format with %i
// and %b. The per-file lines of both logs (stamp, pid and the connection's own lines removed) must
// be the same, byte for byte, escapes of unprintable names included.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFile, chmod, link, mkdir, symlink, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './helpers/cli.js';
import { makeTree, pseudoRandom, setTime, T0 } from './helpers/fstree.js';
import { startBoth, type OurDaemon } from './helpers/serve.js';
import type { ConfiguredDaemon } from './helpers/daemon.js';

const ROOT = process.getuid?.() === 0;
const CUSTOM = '%o %i %n %l %b %f %m %u%L';

const CONFIG = (dir: string) => `
reverse lookup = no
use chroot = no
munge symlinks = no
log file = ${dir}/rsyncd.log
${ROOT ? 'uid = root\ngid = root\n' : ''}
[logd]
\tpath = ${dir}/logd
\tread only = no
\ttransfer logging = yes
[logc]
\tpath = ${dir}/logc
\tread only = no
\ttransfer logging = yes
\tlog format = ${CUSTOM}
[quiet]
\tpath = ${dir}/quiet
\tread only = no
`;

let ours: OurDaemon;
let theirs: ConfiguredDaemon;
let work: string;

test.before(async () => {
  ({ ours, theirs } = await startBoth(CONFIG));
  for (const dir of [ours.dir, theirs.dir]) for (const m of ['logd', 'logc', 'quiet']) await mkdir(join(dir, m));
  work = await mkdtemp(join(tmpdir(), 'lsyncd-serve-xferlog-'));
});

test.after(async () => {
  await ours?.stop();
  await theirs?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** The lines of a connection that are not about one file (rsync's clientserver.c, log_exit). */
const CONNECTION_LINE = /^(rsyncd version |connect from |rsync allowed access |rsync (to|on) |building file list$|receiving file list$|created directory |sent \d+ bytes {2}received )/;

/** A log's lines after `from` bytes: the message of each (stamp and `[pid] ` removed), as raw bytes. */
function messages(log: Buffer, from: number): Buffer[] {
  const out: Buffer[] = [];
  for (const line of log.subarray(from).toString('latin1').split('\n')) {
    if (!line) continue;
    const m = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[\d+\] /.exec(line);
    assert.ok(m, `log line shape: ${JSON.stringify(line)}`);
    out.push(Buffer.from(line.slice(m![0].length), 'latin1'));
  }
  return out;
}

/** A daemon's log as bytes. */
const ourLog = () => readFile(ours.logPath);
const theirLog = () => readFile(join(theirs.dir, 'rsyncd.log')).catch(() => Buffer.alloc(0));

/** Wait until a connection's summary line is in the log after `from` (a daemon logs it as the connection ends). */
async function settled(read: () => Promise<Buffer>, from: number): Promise<Buffer[]> {
  for (let i = 0; i < 200; i++) {
    const lines = messages(await read(), from);
    if (lines.some((l) => /^sent \d+ bytes/.test(l.toString('latin1')))) return lines;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('no summary line in the log');
}

interface Logged {
  ours: Buffer[];
  theirs: Buffer[];
}

/**
 * Run one rsync command against both daemons (ADDR in an argument stands for the daemon's
 * rsync:// root, DEST for a local destination of each) and return the per-file lines each logged.
 */
async function both(args: string[]): Promise<Logged> {
  const out: Logged = { ours: [], theirs: [] };
  for (const [who, port, read] of [
    ['ours', ours.port, ourLog],
    ['theirs', theirs.port, theirLog],
  ] as const) {
    const from = (await read()).length;
    const dest = join(work, `pulled-${who}`);
    const r = await run('rsync', args.map((a) => a.replace('ADDR', `rsync://127.0.0.1:${port}`).replace('DEST', dest)));
    assert.is(r.status, 0, `${who}: rsync ${args.join(' ')}: ${r.stderr}`);
    const lines = await settled(read, from);
    out[who] = lines.filter((l) => !CONNECTION_LINE.test(l.toString('latin1')));
  }
  return out;
}

const show = (lines: Buffer[]) => lines.map((l) => JSON.stringify(l.toString('latin1'))).join('\n');

function sameSequence(actual: Buffer[], expected: Buffer[], label: string): void {
  assert.ok(
    actual.length === expected.length && actual.every((l, i) => l.equals(expected[i]!)),
    `${label}\nours:\n${show(actual)}\nrsyncd:\n${show(expected)}`,
  );
}

/** Deletions and the other lines: rsyncd logs them from two processes (generator, receiver). */
const isDeletion = (l: Buffer) => /^(del\. |deleting )/.test(l.toString('latin1'));

/** The lines of the source tree's hard-link pair (h1 and keep/h2 are one file). */
const isHardLinked = (l: Buffer) => / dest\/(h1|keep\/h2)( |$)/.test(l.toString('latin1')) && !isDeletion(l);

/** A hard-link group's lines, sorted (the generator and the receiver log them side by side). */
const sortedTexts = (lines: Buffer[]): string[] => lines.map((l) => l.toString('latin1')).sort();

/**
 * rsyncd's generator (deletions) and receiver (everything else) write the log side by side, so
 * how their lines interleave depends on scheduling: each process's lines are compared as a
 * sequence, the two apart. The hard-link pair is compared as a set (the same leader: the
 * group's last member).
 */
function samePushLines(logged: Logged, label: string): void {
  const rest = (ls: Buffer[]) => ls.filter((l) => !isDeletion(l) && !isHardLinked(l));
  sameSequence(rest(logged.ours), rest(logged.theirs), `${label}: received and itemized`);
  sameSequence(logged.ours.filter(isDeletion), logged.theirs.filter(isDeletion), `${label}: deleted`);
  assert.equal(sortedTexts(logged.ours.filter(isHardLinked)), sortedTexts(logged.theirs.filter(isHardLinked)), `${label}: the hard-link pair`);
}

let src: string;

test('push: every new file, directory, symlink and hard link, in both formats', async () => {
  src = join(work, 'src');
  await makeTree(src);
  await mkdir(join(src, 'keep'));
  await writeFile(join(src, 'h1'), 'hard linked\n');
  await link(join(src, 'h1'), join(src, 'keep', 'h2'));
  for (const name of ['h1', 'keep/h2', 'keep']) await setTime(join(src, name), T0);
  await setTime(src, T0);
  for (const module of ['logd', 'logc']) {
    const logged = await both(['-aH', `${src}/`, `ADDR/${module}/dest/`]);
    assert.ok(logged.theirs.length > 10, `rsyncd logged the files (${module}):\n${show(logged.theirs)}`);
    assert.is(logged.theirs.filter(isHardLinked).length, module === 'logc' ? 2 : 1, 'a hard link is logged only with %i');
    samePushLines(logged, `push ${module}`);
  }
});

test('push: a delta (%b counts the data read) and attribute-only changes', async () => {
  const big = pseudoRandom(300_000, 7);
  big.fill(0x41, 150_000, 150_100);
  await writeFile(join(src, 'big.bin'), big);
  await appendFile(join(src, 'a.txt'), 'one more line\n');
  await setTime(join(src, 'big.bin'), T0 + 10);
  await setTime(join(src, 'a.txt'), T0 + 10);
  await setTime(join(src, 'run.sh'), T0 + 20); // its time changes: transferred again
  await chmod(join(src, 'private', 'secret'), 0o640); // only its mode changes: an itemized non-transfer
  for (const module of ['logd', 'logc']) {
    const logged = await both(['-aH', `${src}/`, `ADDR/${module}/dest/`]);
    assert.ok(logged.theirs.some((l) => l.includes(Buffer.from('big.bin'))), `rsyncd logged the delta:\n${show(logged.theirs)}`);
    assert.is(logged.theirs.some((l) => l.includes(Buffer.from('.f...p..... private/secret'))), module === 'logc', 'a mode change is logged only with %i');
    samePushLines(logged, `delta ${module}`);
  }
});

test('push with --delete: each deletion, in the format or as "deleting %n"', async () => {
  await rm(join(src, 'sub'), { recursive: true });
  await unlink(join(src, 'link'));
  await unlink(join(src, 'empty'));
  await setTime(src, T0);
  for (const module of ['logd', 'logc']) {
    const logged = await both(['-aH', '--delete', `${src}/`, `ADDR/${module}/dest/`]);
    assert.ok(logged.theirs.some(isDeletion), `rsyncd logged deletions:\n${show(logged.theirs)}`);
    samePushLines(logged, `delete ${module}`);
  }
});

test('pull: every sent file, in the order sent, with %b as the sender counts it', async () => {
  for (const module of ['logd', 'logc']) {
    await rm(join(work, 'pulled-ours'), { recursive: true, force: true });
    await rm(join(work, 'pulled-theirs'), { recursive: true, force: true });
    const logged = await both(['-aH', `ADDR/${module}/dest/`, 'DEST/']);
    assert.ok(logged.theirs.length > 10, `rsyncd logged the files (${module}):\n${show(logged.theirs)}`);
    sameSequence(logged.ours, logged.theirs, `pull ${module}`);
  }
});

test('older protocols: the same lines (below 29 the generator logs what it itemizes; md4 and md5 sums)', async () => {
  const tree = join(work, 'small');
  await mkdir(join(tree, 'dir'), { recursive: true });
  await writeFile(join(tree, 'dir', 'file'), pseudoRandom(40_000, 2));
  await writeFile(join(tree, 'h1'), 'hard linked\n');
  await link(join(tree, 'h1'), join(tree, 'dir', 'h2'));
  await symlink('dir/file', join(tree, 'sym'));
  for (const name of ['dir/file', 'h1', 'dir/h2', 'sym', 'dir', '.']) await setTime(join(tree, name), T0);
  for (const protocol of [28, 29, 30]) {
    const logged = await both(['-aH', `--protocol=${protocol}`, `${tree}/`, `ADDR/logc/p${protocol}/`]);
    assert.ok(logged.theirs.length >= 5, `rsyncd logged the files (protocol ${protocol}):\n${show(logged.theirs)}`);
    // Below 29 rsyncd's generator logs the non-transfers and its receiver the transfers, side by
    // side: each process's lines are compared as a sequence, the two apart.
    const rest = (ls: Buffer[]) => ls.filter((l) => !/ (h1|dir\/h2)( |$)/.test(l.toString('latin1')));
    const sent = (l: Buffer) => l.toString('latin1').startsWith('recv >f');
    sameSequence(rest(logged.ours).filter(sent), rest(logged.theirs).filter(sent), `protocol ${protocol}: transfers`);
    const other = (ls: Buffer[]) => rest(ls).filter((l) => !sent(l));
    sameSequence(other(logged.ours), other(logged.theirs), `protocol ${protocol}: itemized`);
    assert.ok(other(logged.theirs).length >= 3, 'the directories and the symlink are logged');
  }
});

test('names are escaped in the log as rsyncd escapes them (a newline, a non-UTF-8 byte)', async () => {
  const odd = join(work, 'odd');
  await mkdir(odd);
  await writeFile(join(odd, 'two\nlines'), 'x\n');
  await writeFile(Buffer.concat([Buffer.from(odd + '/caf'), Buffer.from([0xe9, 0x85])]), 'y\n');
  await setTime(odd, T0);
  const logged = await both(['-a', `${odd}/`, 'ADDR/logc/odd/']);
  samePushLines(logged, 'odd names');
  assert.ok(logged.ours.some((l) => l.includes(Buffer.from('two\\#012lines'))), 'the newline is escaped');
  assert.ok(logged.ours.some((l) => l.includes(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x5c, 0x23, 0x32, 0x30, 0x35]))), 'a C1 byte is escaped, a latin-1 byte kept');
});

test('no transfer logging, or a dry run: no per-file line', async () => {
  assert.equal((await both(['-a', `${src}/`, 'ADDR/quiet/dest/'])).ours, []);
  const dry = await both(['-an', '--delete', `${join(work, 'odd')}/`, 'ADDR/logc/dest/']);
  assert.equal(dry.theirs, []);
  assert.equal(dry.ours, []);
});

test.run();
