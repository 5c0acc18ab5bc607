// The daemon's log (src/serve/log.ts) against the log a real rsyncd writes: stock rsync pushes and
// pulls a small tree with odd names (space, newline, tab, a C1 byte, non-UTF-8, a fake `\#123`
// escape, a setuid mode, a symlink) through modules with transfer logging and several
// `log format`s; every line of the real log for those connections is rebuilt from the tree and the
// known transfer with our functions and compared byte for byte (the stamp, the pid, %p and %t by
// shape: they are taken from the real line). Then DaemonLog's own file: append, reopen, refusal.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, mkdir, symlink, readFile, chmod, lstat, rename, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, rsyncVersion, type TestDaemon } from './helpers/daemon.js';
import { run } from './helpers/cli.js';
import { pseudoRandom, setTime, bjoin, T0 } from './helpers/fstree.js';
import { sortFileList, type FileEntry } from '../protocol/flist.js';
import { createChecksummer } from '../protocol/checksum.js';
import { ITEM_TRANSFER, ITEM_IS_NEW, ITEM_LOCAL_CHANGE, ITEM_REPORT_TIME } from '../protocol/constants.js';
import { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK } from '../protocol/modes.js';
import type { ChecksumName } from '../protocol/compat.js';
import { bigNum } from '../src/transfer/output.js';
import { UNDETERMINED_HOSTNAME } from '../src/serve/access.js';
import { DEFAULT_LOG_FORMAT } from '../src/serve/config.js';
import {
  DaemonLog,
  LogFileError,
  LogFormatError,
  checkLogFormat,
  checksumText,
  formatLogFileLine,
  formatLogLine,
  logFormatHas,
  shouldLogItem,
  transferLogFormat,
  logConnect,
  logDaemonStart,
  logModuleOpen,
  logModuleList,
  logUnknownModule,
  logAuthFailure,
  logRequest,
  requestFromArgs,
  logFileListStart,
  logCreatedDirectory,
  logTransfer,
  logDelete,
  logExit,
  type LogItem,
  type LogSession,
  type LogWriter,
  type Peer,
} from '../src/serve/log.js';

const USER = 'alice';
const PASSWORD = 'log-test-password';
/** Every escape, with widths, grouping and units; %p and %t last so the test can read them back. */
const ALL = "[%i] %o %h %a %m %M %B %U %G %l %b %c %C %f %n%L %u %P %% %z %10l|%-10n|%'l|%''l|%'''l|%-8o|%-6L|%12B|%5p|%t";
const FORMATS: Record<string, string | undefined> = {
  logd: undefined, // transfer logging with rsync's default format
  logi: '%i %n%L',
  logn: '%f %l', // neither %o nor %i: deletions fall back to "deleting %n"
  logall: ALL,
  logauth: '%o %u %m %f %l',
};

let daemon: TestDaemon;
let work: string;
let src: string;
const peer: Peer = { host: UNDETERMINED_HOSTNAME, addr: '127.0.0.1' };

/** The tree's entries, as rsync's file list would hold them (raw names, lstat figures). */
interface TreeEntry extends FileEntry {
  content?: Buffer;
}

const ODD: Array<[Buffer, Buffer]> = [
  [Buffer.from('plain.txt'), Buffer.from('hello\n')],
  [Buffer.from('big.bin'), pseudoRandom(70_000, 5)],
  [Buffer.from('empty'), Buffer.alloc(0)],
  [Buffer.from('with space'), Buffer.from('s\n')],
  [Buffer.from('new\nline'), Buffer.from('n\n')],
  [Buffer.from('caf\xe9', 'latin1'), Buffer.from('l\n')],
  [Buffer.from('c1\x85x', 'latin1'), Buffer.from('c\n')],
  [Buffer.from('back\\#123'), Buffer.from('b\n')],
  [Buffer.from('tab\there'), Buffer.from('t\n')],
  [Buffer.from('sub/inner.txt'), Buffer.from('i\n')],
];

async function makeSource(root: string): Promise<void> {
  await mkdir(join(root, 'sub'), { recursive: true });
  let t = T0;
  for (const [name, content] of ODD) {
    await writeFile(bjoin(root, name), content);
    await setTime(bjoin(root, name), t++);
  }
  await writeFile(join(root, 'run.sh'), '#!/bin/sh\n');
  await chmod(join(root, 'run.sh'), 0o4750);
  await setTime(join(root, 'run.sh'), t++);
  await symlink('plain.txt', join(root, 'link'));
  await setTime(join(root, 'link'), t++);
  await setTime(join(root, 'sub'), t++);
  await setTime(root, t++);
}

/** lstat every entry under `root` into file-list entries ('.' for the root). */
async function listTree(root: string): Promise<TreeEntry[]> {
  const names: Buffer[] = [Buffer.from('.'), Buffer.from('run.sh'), Buffer.from('link'), Buffer.from('sub'), ...ODD.map(([n]) => n)];
  const out: TreeEntry[] = [];
  for (const name of names) {
    const path = name.equals(Buffer.from('.')) ? Buffer.from(root) : bjoin(root, name);
    const st = await lstat(path);
    const entry: TreeEntry = { name, mode: st.mode, size: st.size, mtime: Math.floor(st.mtimeMs / 1000), uid: st.uid, gid: st.gid };
    if ((st.mode & S_IFMT) === S_IFLNK) entry.symlink = Buffer.from(await readlink(path, { encoding: 'buffer' }));
    if ((st.mode & S_IFMT) === S_IFREG) entry.content = await readFile(path);
    out.push(entry);
  }
  return sortFileList(out, 32);
}

/**
 * rsync's wire bytes for one new file sent whole (protocol 30+): the sum head (4 int32s), the
 * data as literal tokens of at most 32 KiB each behind an int32 length, the int32 0 that ends
 * them, then the whole-file checksum. A sender's %b also counts the request header it writes
 * (a one-byte ndx step and the int16 iflags); its %c is the sum head it reads.
 */
function wholeFileBytes(length: number, digest: number): number {
  return 16 + length + 4 * Math.ceil(length / 32768) + 4 + digest;
}

/** The log's lines: stamp, pid and raw message (a message may hold any byte but a newline). */
interface LogLine {
  raw: Buffer;
  pid: number;
  stamp: Date;
  message: Buffer;
}

function parseLog(bytes: Buffer): LogLine[] {
  const lines: LogLine[] = [];
  let at = 0;
  while (at < bytes.length) {
    const nl = bytes.indexOf(0x0a, at);
    const raw = bytes.subarray(at, nl < 0 ? bytes.length : nl + 1);
    at = nl < 0 ? bytes.length : nl + 1;
    const m = /^(\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d) \[(\d+)\] /.exec(raw.toString('latin1'));
    assert.ok(m, `log line shape: ${JSON.stringify(raw.toString('latin1'))}`);
    const [, y, mo, d, h, mi, s, pid] = m!.map(Number) as number[];
    lines.push({ raw, pid: pid!, stamp: new Date(y!, mo! - 1, d!, h!, mi!, s!), message: raw.subarray(m![0].length, raw.length - 1) });
  }
  return lines;
}

/** The log's connections in order: the lines of each `connect from` line's pid. */
async function connections(): Promise<LogLine[][]> {
  const lines = parseLog(await readFile(daemon.logPath));
  const byPid = new Map<number, LogLine[]>();
  const order: LogLine[][] = [];
  for (const line of lines) {
    if (line.message.toString('latin1').startsWith('connect from ')) {
      const group: LogLine[] = [];
      byPid.set(line.pid, group);
      order.push(group);
    }
    byPid.get(line.pid)?.push(line);
  }
  // The helper's readiness probe connects and leaves: nothing follows but, at times, the daemon's
  // complaint about the dropped socket ("rsync: [Receiver] safe_write failed ...", "rsync error: ...").
  return order.filter((c) => c.slice(1).some((l) => !/^rsync( error)?: /.test(l.message.toString('latin1'))));
}

/** Collects what our functions write, so it can be compared with one real connection. */
class Recorder implements LogWriter {
  readonly messages: Buffer[] = [];
  line(text: string | Uint8Array): void {
    this.messages.push(Buffer.from(text));
  }
}

/** Our lines stamped with the real line's pid and stamp, and compared byte for byte with it. */
function assertSameLines(actual: LogLine[], expected: Buffer[], label: string): void {
  const show = (ls: Buffer[]) => ls.map((l) => JSON.stringify(l.toString('latin1'))).join('\n');
  assert.is(actual.length, expected.length, `${label}: line count\nactual:\n${show(actual.map((l) => l.message))}\nexpected:\n${show(expected)}`);
  for (let i = 0; i < actual.length; i++) {
    const ours = formatLogFileLine(expected[i]!, actual[i]!.pid, actual[i]!.stamp);
    assert.ok(ours.equals(actual[i]!.raw), `${label}, line ${i}:\nactual:   ${JSON.stringify(actual[i]!.raw.toString('latin1'))}\nexpected: ${JSON.stringify(ours.toString('latin1'))}`);
  }
}

/** %p and %t of a real ALL-format line (the only fields that depend on the process and the clock). */
function processFields(line: LogLine): { pid: number; now: Date } {
  const m = /\| *(\d+)\|(\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d)$/.exec(line.message.toString('latin1'));
  assert.ok(m, `%p|%t at the end of ${JSON.stringify(line.message.toString('latin1'))}`);
  const [, pid, y, mo, d, h, mi, s] = m!.map(Number) as number[];
  return { pid: pid!, now: new Date(y!, mo! - 1, d!, h!, mi!, s!) };
}

function session(module: string, user = ''): LogSession {
  return { ...peer, module, modulePath: daemon.modulePath(module), user };
}

/** The items a new-tree transfer logs, in file-list order, as rsync's roles would hand them over. */
async function transferItems(entries: TreeEntry[], op: 'send' | 'recv', dir: string, checksum: ChecksumName, format: string): Promise<LogItem[]> {
  const summer = await createChecksummer(checksum, { protocol: 32, seed: 0 });
  const items: LogItem[] = [];
  for (const e of entries) {
    const type = e.mode & S_IFMT;
    const iflags = type === S_IFREG ? ITEM_TRANSFER | ITEM_IS_NEW : ITEM_LOCAL_CHANGE | ITEM_IS_NEW;
    if (!(iflags & ITEM_TRANSFER) && !shouldLogItem(format, iflags)) continue;
    let sum: Uint8Array | null = null;
    if (type === S_IFREG) {
      const hasher = summer.startFile();
      hasher.update(e.content!);
      sum = hasher.digest();
    }
    const data = wholeFileBytes(e.size, summer.digestLength);
    items.push({
      op,
      name: e.name,
      dir,
      mode: e.mode,
      length: e.size,
      mtime: e.mtime,
      uid: e.uid,
      gid: e.gid,
      iflags,
      bytesRead: op === 'recv' ? data : 16,
      bytesWritten: op === 'recv' ? 0 : data + 3,
      checksum: checksumText(checksum, sum),
      ...(e.symlink ? { symlink: e.symlink } : {}),
    });
  }
  return items;
}

const url = (path: string) => `rsync://127.0.0.1:${daemon.port}/${path}`;

/** The opening lines every module connection logs, through our functions. */
function opening(w: LogWriter, module: string, request: string[], sender: boolean, user = ''): void {
  logConnect(w, peer);
  logModuleOpen(w, module, peer);
  logRequest(w, { sender, request: requestFromArgs(['--server', ...(sender ? ['--sender'] : []), '-logDtpre.iLsfxCIvu', '.', ...request]), user }, peer);
  logFileListStart(w, sender);
}

/** The real summary line of a connection: its shape, and its total size. */
function checkSummary(line: LogLine | undefined, totalSize: number, label: string): void {
  const m = /^sent (\d+) bytes {2}received (\d+) bytes {2}total size (\d+)$/.exec(line?.message.toString('latin1') ?? '');
  assert.ok(m, `${label}: summary line, got ${JSON.stringify(line?.message.toString('latin1'))}`);
  const w = new Recorder();
  logExit(w, { code: 0, sender: false, totals: { sent: Number(m![1]), received: Number(m![2]), totalSize }, where: 'unused', who: 'unused', version: 'unused' });
  assert.ok(formatLogFileLine(w.messages[0]!, line!.pid, line!.stamp).equals(line!.raw), `${label}: total size ${totalSize}`);
}

const totalSize = (entries: TreeEntry[]) => entries.reduce((n, e) => n + ((e.mode & S_IFMT) === S_IFREG || (e.mode & S_IFMT) === S_IFLNK ? e.size : 0), 0);

let log: LogLine[][] = [];
let entries: TreeEntry[] = [];

// uvu reports a failing hook with no detail: say what failed.
test.before(async () => {
  try {
    await setUp();
  } catch (e) {
    console.error('serve-log setup failed:', e);
    throw e;
  }
});
async function setUp(): Promise<void> {
  work = await mkdtemp(join(tmpdir(), 'lsyncd-serve-log-'));
  await writeFile(join(work, 'secrets'), `${USER}:${PASSWORD}\n`);
  await chmod(join(work, 'secrets'), 0o600);
  daemon = await startDaemon({
    globalSettings: ['reverse lookup = no'],
    extraModules: Object.entries(FORMATS).map(([name, format]) => ({
      name,
      settings: {
        'read only': false,
        'transfer logging': true,
        ...(format !== undefined ? { 'log format': format } : {}),
        ...(name === 'logauth' ? { 'auth users': USER, 'secrets file': join(work, 'secrets') } : {}),
      },
    })),
  });
  src = join(work, 'src');
  await makeSource(src);
  entries = await listTree(src);
  const only = join(work, 'only');
  await mkdir(only);
  await writeFile(join(only, 'plain.txt'), 'hello\n');
  await setTime(join(only, 'plain.txt'), T0);
  const rsync = async (args: string[], env: NodeJS.ProcessEnv = {}, ok = true) => {
    const r = await run('rsync', args, env);
    if (ok) assert.is(r.status, 0, `rsync ${args.join(' ')}: ${r.stderr}`);
  };
  // One connection each, in this order (the tests below index them).
  await rsync(['-a', `${src}/`, url('logd/dest/')]); // 0
  await rsync(['-av', `${src}/`, url('logi/dest/')]); // 1
  await rsync(['-a', `${src}/`, url('logall/dest/')]); // 2
  await rsync(['-a', '--checksum-choice=md5', url('logall/dest/'), join(work, 'pulled/')]); // 3
  await rsync(['-a', `${src}/`, url('logn/dest/')]); // 4
  await rsync(['-a', '--delete', `${only}/`, url('logd/dest/')]); // 5
  await rsync(['-a', '--delete', `${only}/`, url('logi/dest/')]); // 6
  await rsync(['-a', '--delete', `${only}/`, url('logn/dest/')]); // 7
  await rsync(['-a', `${src}/`, `rsync://${USER}@127.0.0.1:${daemon.port}/logauth/`], { RSYNC_PASSWORD: PASSWORD }); // 8
  await rsync(['-a', `${src}/`, `rsync://${USER}@127.0.0.1:${daemon.port}/logauth/`], { RSYNC_PASSWORD: 'wrong' }, false); // 9
  await rsync(['-a', `${src}/`, `rsync://bob@127.0.0.1:${daemon.port}/logauth/`], { RSYNC_PASSWORD: PASSWORD }, false); // 10
  await rsync([url('nope/')], {}, false); // 11
  await rsync([url('')]); // 12
  await rsync(['-a', url('logall/dest/new\nline'), join(work, 'one/')]); // 13
  // The daemon logs a push's summary once the connection's processes end: wait for all of them.
  for (let i = 0; i < 100; i++) {
    log = await connections();
    const summaries = log.filter((c) => c.some((l) => l.message.toString('latin1').startsWith('sent '))).length;
    if (log.length >= 14 && summaries >= 10) break;
    await new Promise((r) => setTimeout(r, 50));
  }
}
test.after(async () => {
  await daemon?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('the real log: the daemon start line, then one connection per client run, in order', async () => {
  const first = parseLog(await readFile(daemon.logPath))[0]!;
  const w = new Recorder();
  logDaemonStart(w, rsyncVersion().version, daemon.port);
  assertSameLines([first], w.messages, 'start');
  assert.is(log.length, 14);
});

test('push with the default log format: connection lines, one line per file, the summary', async () => {
  const conn = log[0]!;
  const format = transferLogFormat({ transferLogging: true })!;
  assert.is(format, DEFAULT_LOG_FORMAT);
  const w = new Recorder();
  opening(w, 'logd', ['logd/dest/'], false);
  for (const item of await transferItems(entries, 'recv', 'dest', 'xxh128', format)) logTransfer(w, format, item, session('logd'));
  assertSameLines(conn.slice(0, -1), w.messages, 'push logd');
  checkSummary(conn.at(-1), totalSize(entries), 'push logd');
});

test('push with %i %n%L and -v: every new item, the created directory', async () => {
  const conn = log[1]!;
  const format = FORMATS.logi!;
  const w = new Recorder();
  opening(w, 'logi', ['logi/dest/'], false);
  logCreatedDirectory(w, 'dest');
  for (const item of await transferItems(entries, 'recv', 'dest', 'xxh128', format)) logTransfer(w, format, item, session('logi'));
  assertSameLines(conn.slice(0, -1), w.messages, 'push logi');
  checkSummary(conn.at(-1), totalSize(entries), 'push logi');
});

test('push and pull with every escape: widths, grouping, units, %b %c %C (xxh128 and md5), %f, %L', async () => {
  for (const [index, op, checksum] of [
    [2, 'recv', 'xxh128'],
    [3, 'send', 'md5'],
  ] as const) {
    const conn = log[index]!;
    const sender = op === 'send';
    // A pull sends the module's copy: its directory sizes, owners and the pushed times.
    const listed = sender ? await listTree(join(daemon.modulePath('logall'), 'dest')) : entries;
    const items = await transferItems(listed, op, 'dest', checksum, ALL);
    const w = new Recorder();
    opening(w, 'logall', ['logall/dest/'], sender);
    const opened = w.messages.length;
    assertSameLines(conn.slice(0, opened), w.messages, `${op} logall opening`);
    const lines = conn.slice(opened, opened + items.length);
    assert.is(lines.length, items.length);
    items.forEach((item, i) => {
      const { pid, now } = processFields(lines[i]!);
      assert.ok(pid > 0);
      const ours = formatLogLine(ALL, item, { ...session('logall'), pid }, now);
      assertSameLines([lines[i]!], [ours], `${op} logall item ${i}`);
    });
    checkSummary(conn[opened + items.length], totalSize(listed), `${op} logall`);
  }
});

test('deletions: the module format with %o or %i, else "deleting %n"', async () => {
  // The deleted entries, as the receiver deletes them: a directory's contents before it, the
  // rest in reverse file-list order.
  const gone = entries.filter((e) => !['.', 'plain.txt'].includes(e.name.toString('latin1')));
  const order = [...gone.filter((e) => e.name.includes('/')), ...gone.filter((e) => !e.name.includes('/')).reverse()];
  const deletions = order.map((e) => ({ name: e.name, dir: 'dest', mode: e.mode, length: 0, mtime: 0, uid: 0, gid: 0 }));
  for (const [index, module] of [
    [5, 'logd'],
    [6, 'logi'],
    [7, 'logn'],
  ] as const) {
    const conn = log[index]!;
    const format = transferLogFormat({ transferLogging: true, logFormat: FORMATS[module] ?? null })!;
    const w = new Recorder();
    opening(w, module, [`${module}/dest/`], false);
    for (const d of deletions) logDelete(w, format, d, session(module));
    // Then the generator reaches '.', whose time the deletions changed: an item only %i shows.
    const root: LogItem = { op: 'recv', name: '.', dir: 'dest', mode: S_IFDIR | 0o755, length: 4096, mtime: T0, iflags: ITEM_REPORT_TIME };
    if (shouldLogItem(format, root.iflags)) logTransfer(w, format, root, session(module));
    assertSameLines(conn.slice(0, -1), w.messages, `delete ${module}`);
    checkSummary(conn.at(-1), 6, `delete ${module}`);
  }
});

test('auth: the user in the request line and %u; a wrong password and an unknown user', async () => {
  const format = FORMATS.logauth!;
  const w = new Recorder();
  opening(w, 'logauth', ['logauth/'], false, USER);
  for (const item of await transferItems(entries, 'recv', '', 'xxh128', format)) logTransfer(w, format, item, session('logauth', USER));
  assertSameLines(log[8]!.slice(0, -1), w.messages, 'auth push');
  for (const [index, user, reason] of [
    [9, USER, 'password mismatch'],
    [10, 'bob', 'no matching rule'],
  ] as const) {
    const f = new Recorder();
    logConnect(f, peer);
    logModuleOpen(f, 'logauth', peer);
    logAuthFailure(f, 'logauth', peer, { user, reason });
    assertSameLines(log[index]!, f.messages, `auth failure ${reason}`);
    assert.not.ok(log[index]!.some((l) => l.raw.includes(PASSWORD)), 'no password in the log');
  }
});

test('unknown module, module listing, and a request with a newline (escaped in the log)', async () => {
  const u = new Recorder();
  logConnect(u, peer);
  logUnknownModule(u, 'nope', peer);
  assertSameLines(log[11]!, u.messages, 'unknown module');
  const l = new Recorder();
  logConnect(l, peer);
  logModuleList(l, peer);
  assertSameLines(log[12]!, l.messages, 'listing');
  const p = new Recorder();
  opening(p, 'logall', ['logall/dest/new\nline'], true);
  const conn = log[13]!;
  assertSameLines(conn.slice(0, p.messages.length), p.messages, 'pull one odd name');
  assert.ok(conn[2]!.raw.includes(Buffer.from('logall/dest/new\\#012line from')), 'the newline is escaped');
});

test('logFormatHas and shouldLogItem follow the escapes rsync scans for', () => {
  assert.ok(logFormatHas('%10i %n', 'i'));
  assert.ok(logFormatHas("%'-12i", 'i'));
  assert.not.ok(logFormatHas('%%i', 'i'), '%% is a literal percent');
  assert.not.ok(logFormatHas(DEFAULT_LOG_FORMAT, 'i'));
  assert.ok(logFormatHas(DEFAULT_LOG_FORMAT, 'o'));
  assert.not.ok(shouldLogItem(DEFAULT_LOG_FORMAT, ITEM_LOCAL_CHANGE | ITEM_IS_NEW), 'without %i only transfers are logged');
  assert.ok(shouldLogItem('%i %n', ITEM_LOCAL_CHANGE | ITEM_IS_NEW));
  assert.not.ok(shouldLogItem('%i %n', ITEM_LOCAL_CHANGE | ITEM_IS_NEW, { dryRun: true }));
  assert.not.ok(shouldLogItem(null, ITEM_IS_NEW));
});

test('numbers: humanized as rsync prints them (the figures of the real %l lines above, and rounding ties to even)', () => {
  assert.is(bigNum(70000, 1), '70,000');
  assert.is(bigNum(70000, 2), '70.00K');
  assert.is(bigNum(70000, 3), '68.36K');
  assert.is(bigNum(999, 2), '999');
  assert.is(bigNum(1152, 3), '1.12K', '1.125 exactly: printf rounds to even');
  assert.is(bigNum(3 * 1024 ** 3, 3), '3.00G');
});

test('a hostile format or item stays bounded', () => {
  const item: LogItem = { op: 'recv', name: 'x'.repeat(5000), dir: '', mode: S_IFDIR | 0o755, length: 1, mtime: 0, iflags: 0 };
  const line = formatLogLine('%99999999999n %n %n %n', item, session('logd'));
  assert.ok(line.length <= 4096 + 1024);
  const stamped = formatLogFileLine(line, 1, new Date(0));
  assert.ok(stamped.length < 2100, 'a log line holds at most 2047 bytes of message');
  assert.is(stamped[stamped.length - 1], 0x0a);
  // A format rsync refuses ("log-format string is WAY too long!") is refused when the config is read.
  assert.throws(() => checkLogFormat('%n'.repeat(3000)), (e: unknown) => e instanceof LogFormatError && e.code === 'ERR_LOG_FORMAT');
  checkLogFormat(ALL);
});

test('DaemonLog: appends stamped lines, reopens after rotation, refuses a foreign symlink', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lsyncd-daemon-log-'));
  try {
    const file = join(dir, 'rsyncd.log');
    const when = new Date(2024, 0, 2, 3, 4, 5);
    const errors: LogFileError[] = [];
    const dlog = new DaemonLog({ file, pid: 4242, now: () => when, onError: (e) => errors.push(e) });
    dlog.open();
    logConnect(dlog, peer);
    logConnect(dlog.withPid(7), { host: 'evil\nhost', addr: '127.0.0.1' });
    await rename(file, `${file}.1`);
    dlog.reopen();
    logExit(dlog, { code: 23, sender: true, totals: { sent: 1, received: 2, totalSize: 3 }, where: 'connection.ts(1)', who: 'sender', version: '0.1.0' });
    dlog.close();
    assert.is(
      await readFile(`${file}.1`, 'utf8'),
      '2024/01/02 03:04:05 [4242] connect from UNDETERMINED (127.0.0.1)\n2024/01/02 03:04:05 [7] connect from evil\\#012host (127.0.0.1)\n',
    );
    assert.is(
      await readFile(file, 'utf8'),
      '2024/01/02 03:04:05 [4242] sent 1 bytes  received 2 bytes  total size 3\n' +
        '2024/01/02 03:04:05 [4242] rsync error: some files/attrs were not transferred (see previous errors) (code 23) at connection.ts(1) [sender=0.1.0]\n',
    );
    assert.is(errors.length, 0);
    // Without a file, lines go to the given stderr in the same format.
    const chunks: Buffer[] = [];
    const toStderr = new DaemonLog({ stderr: { write: (c) => chunks.push(Buffer.from(c)) }, pid: 9, now: () => when });
    logModuleList(toStderr, peer);
    assert.is(Buffer.concat(chunks).toString(), '2024/01/02 03:04:05 [9] module-list request from UNDETERMINED (127.0.0.1)\n');
    // A log file that cannot be opened is one clear typed error.
    const bad = new DaemonLog({ file: join(dir, 'missing-dir', 'x.log') });
    assert.throws(() => bad.open(), (e: unknown) => e instanceof LogFileError && e.code === 'ERR_LOG_FILE' && /failed to open log-file/.test(e.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
