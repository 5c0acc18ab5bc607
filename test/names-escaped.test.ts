// Names in what we print are escaped as rsync escapes them (issue 11, defect 8): a newline in a
// name is `\#012`, a byte that is not UTF-8 `\#ooo`, so no name can break or forge a line. Our
// push -i, pull -i and -v and the listing against rsync's own output for the same tree.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { run, lsyncd } from './helpers/cli.js';
import { bjoin, setTimes } from './helpers/fstree.js';
import { itemName, shownName } from '../src/transfer/output.js';
import { S_IFREG, S_IFLNK } from '../protocol/modes.js';
import type { FileEntry } from '../protocol/flist.js';

let daemon: TestDaemon;
let work: string;
const UTF8 = { LC_ALL: 'C.UTF-8' };
/** Names a terminal or a log must not take as they are. */
const ODD = [Buffer.from('new\nline'), Buffer.from([0x62, 0x61, 0x64, 0xff, 0x2e, 0x74]), Buffer.from('tab\there'), Buffer.from('esc\x1b[31mred'), Buffer.from('fake\\#012esc'), Buffer.from('ok-\u00e9')];

test.before(async () => {
  daemon = await startDaemon();
  work = await mkdtemp(join(tmpdir(), 'lsyncd-names-'));
  await mkdir(join(work, 'src'));
  for (const name of ODD) await writeFile(bjoin(join(work, 'src'), name), 'x\n');
  await mkdir(bjoin(join(work, 'src'), Buffer.from('dir\nname')));
  await writeFile(bjoin(join(work, 'src'), Buffer.from('dir\nname/inner\r')), 'y\n');
  await setTimes(join(work, 'src'));
});

test.after(async () => {
  await daemon?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const addr = (path: string) => `rsync://${daemon.host}:${daemon.port}/${path}`;
/** The per-file lines (sorted: both sides list the same set), without the summary. */
const itemLines = (out: Buffer) =>
  out
    .toString('latin1')
    .split('\n')
    .filter((l) => l && !/^(sent|total size|building|receiving|sending|created directory)/.test(l))
    .sort();

test('the one home: shownName and itemName escape as rsync does', () => {
  assert.is(shownName(Buffer.from('new\nline')), 'new\\#012line');
  assert.is(shownName(Buffer.from('ends\n')), 'ends\\#012');
  assert.is(shownName(Buffer.from([0x61, 0xff])), 'a\\#377');
  assert.is(shownName(Buffer.from('\u00e9')), '\u00e9');
  const link = { name: Buffer.from('l\nk'), mode: S_IFLNK | 0o777, symlink: Buffer.from('t\x01') } as FileEntry;
  assert.is(itemName(link), 'l\\#012k -> t\\#001');
  assert.is(itemName({ name: Buffer.from('f'), mode: S_IFREG | 0o644 } as FileEntry), 'f');
});

test('push -i: the same lines as rsync -i', async () => {
  const ours = await lsyncd(['--once', '-i', join(work, 'src') + '/', addr('push/ours/')], UTF8);
  assert.is(ours.status, 0, ours.stderr);
  const theirs = await run('rsync', ['-rlpt', '--delete', '-i', join(work, 'src') + '/', addr('push/theirs/')], UTF8);
  assert.is(theirs.status, 0, theirs.stderr);
  assert.equal(itemLines(ours.stdout), itemLines(theirs.stdout));
  assert.ok(ours.stdout.includes('new\\#012line'));
  assert.ok(ours.stdout.includes('bad\\#377.t'));
  assert.not.ok(ours.stdout.includes('new\nline'));
});

test('push -v and the deletions: escaped as rsync escapes them', async () => {
  await mkdir(join(work, 'del'));
  await writeFile(bjoin(join(work, 'del'), Buffer.from('keep')), 'k');
  await setTimes(join(work, 'del'));
  for (const side of ['ours-v', 'theirs-v']) {
    await run('rsync', ['-rlpt', join(work, 'src') + '/', addr(`push/${side}/`)], UTF8);
  }
  const ours = await lsyncd(['--once', '-v', join(work, 'del') + '/', addr('push/ours-v/')], UTF8);
  const theirs = await run('rsync', ['-rlpt', '--delete', '-v', join(work, 'del') + '/', addr('push/theirs-v/')], UTF8);
  assert.is(ours.status, 0, ours.stderr);
  assert.equal(itemLines(ours.stdout), itemLines(theirs.stdout));
  assert.ok(ours.stdout.includes('deleting new\\#012line'));
});

test('pull -i and -v: the same lines as rsync', async () => {
  await run('rsync', ['-rlpt', join(work, 'src') + '/', addr('push/pull-src/')], UTF8);
  for (const flag of ['-i', '-v']) {
    const ours = await lsyncd(['--once', flag, addr('push/pull-src/'), join(work, `pulled-ours${flag}`) + '/'], UTF8);
    assert.is(ours.status, 0, ours.stderr);
    const theirs = await run('rsync', ['-rlpt', flag, addr('push/pull-src/'), join(work, `pulled-theirs${flag}`) + '/'], UTF8);
    assert.is(theirs.status, 0, theirs.stderr);
    assert.equal(itemLines(ours.stdout), itemLines(theirs.stdout));
    assert.ok(ours.stdout.includes('dir\\#012name/inner\\#015'));
  }
});

test('a pull skips a fifo without -D with rsync\'s line, on stdout as rsync\'s generator prints it (FINFO), the name escaped', async () => {
  const dir = join(daemon.modulePath('push'), 'pull-fifo');
  await mkdir(dir);
  const made = await run('mkfifo', [bjoin(dir, Buffer.from('fi\nfo')).toString()]);
  assert.is(made.status, 0, made.stderr);
  const ours = await lsyncd(['--once', addr('push/pull-fifo/'), join(work, 'pulled-fifo-ours') + '/'], UTF8);
  const theirs = await run('rsync', ['-rlpt', addr('push/pull-fifo/'), join(work, 'pulled-fifo-theirs') + '/'], UTF8);
  assert.is(theirs.status, 0, theirs.stderr);
  assert.is(ours.status, theirs.status, ours.stderr);
  const line = 'skipping non-regular file "fi\\#012fo"\n';
  assert.ok(theirs.stdout.toString().includes(line), theirs.stdout.toString());
  assert.ok(ours.stdout.toString().includes(line), `stdout: ${ours.stdout}\nstderr: ${ours.stderr}`);
  assert.not.ok(ours.stderr.toString().includes('skipping'), ours.stderr.toString());
});

test('the listing: the same lines as rsync --list-only', async () => {
  const ours = await lsyncd(['-r', addr('push/pull-src/')], UTF8);
  const theirs = await run('rsync', ['-r', addr('push/pull-src/')], UTF8);
  assert.is(ours.status, 0, ours.stderr);
  assert.equal(itemLines(ours.stdout), itemLines(theirs.stdout));
  assert.ok(ours.stdout.includes('new\\#012line'));
});

test('a warning naming a file: escaped as rsync escapes it (skipping non-regular file)', async () => {
  const dir = join(work, 'fifo');
  await mkdir(dir);
  const made = await run('mkfifo', [bjoin(dir, Buffer.from('fi\nfo')).toString()]);
  assert.is(made.status, 0, made.stderr);
  const ours = await lsyncd(['--once', dir + '/', addr('push/fifo-ours/')], UTF8);
  const theirs = await run('rsync', ['-rlpt', '--delete', dir + '/', addr('push/fifo-theirs/')], UTF8);
  assert.is(ours.status, 0, ours.stderr);
  assert.is(theirs.status, 0, theirs.stderr);
  // rsync prints this one on stdout (FINFO), we on stderr: the text is what is compared.
  const line = /skipping non-regular file .*/;
  const theirLine = line.exec(theirs.stdout.toString() + theirs.stderr)?.[0];
  assert.is(theirLine, 'skipping non-regular file "fi\\#012fo"');
  assert.is(line.exec(ours.stdout.toString() + ours.stderr)?.[0], theirLine);
});

test.run();
