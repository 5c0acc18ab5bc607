// protocol/server-args.ts: the argument lists real rsync clients send (rsync 3.5.0, the system's,
// and Debian 12's 3.2.7 at --protocol 32/31/30/29), recorded in this test by a listener that
// greets, answers `@RSYNCD: OK` and keeps what the client sends, then parsed; the fixtures of
// fixtures/server-args/ (the same recordings, kept); round trips with our own serverArgs(); the
// texts a real rsyncd sends for malformed lists and for `refuse options`, compared with ours.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ByteReader } from '../protocol/io.js';
import { DEFAULT_TRANSFER, recvArgs, serverArgs, type TransferOptions } from '../protocol/args.js';
import { ConnectionClosedError, RemoteError, refusedOption, EXIT } from '../protocol/errors.js';
import { startTransfer } from '../protocol/session.js';
import {
  parseServerArgs,
  refusal,
  refusedOptions,
  refusedDeleteMode,
  ServerArgsError,
  type ServerArgs,
} from '../protocol/server-args.js';
import { openModule } from '../src/transfer/client.js';
import { piecesSource } from './helpers/capture.js';
import { startDaemon, findRsync, type TestDaemon } from './helpers/daemon.js';
import { oldRsync } from './helpers/old-rsync.js';

const fixtures = fileURLToPath(new URL('../../fixtures/server-args/', import.meta.url));
const strings = (args: Buffer[]) => args.map((a) => a.toString('utf8'));

// ---------------------------------------------------------------------------------------------
// Recording what a real client sends

interface Recording {
  /** The protocol both sides settled on (the lower of our 32 and the client's). */
  protocol: number;
  /** Every byte the client sent after `@RSYNCD: OK` up to the end of its argument list(s). */
  bytes: Buffer;
}

/** The argument list(s) in a recording: the first list, and the -s list when the first asks for one. */
async function listsOf(rec: Recording): Promise<{ first: string[]; secluded?: string[] }> {
  const reader = new ByteReader(piecesSource(rec.bytes));
  reader.protocol = rec.protocol;
  const first = strings(await recvArgs(reader));
  if (!parseServerArgs(first, rec.protocol).secluded) return { first };
  return { first, secluded: strings(await recvArgs(reader, true)) };
}

/** Parse a recording as the daemon will: first list, then the -s list if there is one. */
async function parsedRecording(rec: Recording): Promise<ServerArgs> {
  const { first, secluded } = await listsOf(rec);
  return parseServerArgs(first, rec.protocol, secluded ? { secluded } : {});
}

/**
 * Run `binary` with `command` (SRC, DST and URL replaced) against a listener that speaks the
 * daemon's greeting and `@RSYNCD: OK`, and keep what the client sends until its lists are whole.
 */
async function recordClient(binary: string, command: readonly string[], work: string): Promise<Recording> {
  const sockets: Socket[] = [];
  let settle!: (r: Recording) => void;
  let fail!: (e: unknown) => void;
  const recorded = new Promise<Recording>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.write('@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n');
    let buf = Buffer.alloc(0);
    let lines = 0;
    let protocol = 32;
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      // The client's greeting, then its module line; then its argument list(s).
      while (lines < 2) {
        const nl = buf.indexOf(0x0a);
        if (nl === -1) return;
        const line = buf.subarray(0, nl).toString('latin1');
        buf = buf.subarray(nl + 1);
        if (lines++ === 0) protocol = Math.min(32, Number(/^@RSYNCD: (\d+)/.exec(line)?.[1] ?? 0));
        else socket.write('@RSYNCD: OK\n');
      }
      const rec = { protocol, bytes: buf };
      listsOf(rec).then(
        () => settle(rec),
        (e) => (e instanceof ConnectionClosedError ? undefined : fail(e)),
      );
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const args = command.map((a) =>
    a
      .replace('URL', `rsync://127.0.0.1:${port}/mod/path/`)
      .replace('SRC', join(work, 'src/'))
      .replace('DST', join(work, 'dst/')),
  );
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const timer = setTimeout(() => fail(new Error(`${binary} ${args.join(' ')}: no whole argument list within 10 s: ${stderr}`)), 10_000);
  void exited.then(() => setTimeout(() => fail(new Error(`${binary} ${args.join(' ')} exited before sending its arguments: ${stderr}`)), 200));
  try {
    return await recorded;
  } finally {
    clearTimeout(timer);
    for (const s of sockets) s.destroy();
    server.close();
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  }
}

/** Run `each` over `items`, a few at a time (each case is a client process waiting on sockets). */
async function inPool<T>(items: readonly T[], each: (item: T) => Promise<void>, width = 4): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await each(items[next++]!);
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// The matrix: command lines, and what the daemon must read from them

interface Case {
  name: string;
  command: string[];
  /** The recordings kept in fixtures/server-args/, as `<client digits>_p<protocol>` (e.g. 350_p32). */
  fixture?: string[];
  check(a: ServerArgs, protocol: number): void;
}

const ARCHIVE: Partial<TransferOptions> = { recursive: true, links: true, perms: true, times: true, owner: true, group: true, devices: true };
/** The transfer options -a asks for, with `extra` on top and everything else at its default. */
const transferOf = (extra: Partial<TransferOptions> = {}): TransferOptions => ({
  recursive: false, links: false, perms: false, times: false, owner: false, group: false, devices: false,
  hardLinks: false, checksum: false, wholeFile: false, dryRun: false, delete: false, deleteExcluded: false,
  numericIds: false, verbose: 0, itemize: false, stats: false, ...ARCHIVE, ...extra,
});
const defaultDelete = (protocol: number) => (protocol >= 30 ? 'during' : 'before');
const clientInfoAt = (protocol: number) => (protocol >= 30 ? 'iLsfxCIvu' : '');

const CASES: Case[] = [
  {
    name: 'a_push',
    command: ['-a', 'SRC', 'URL'],
    fixture: ['350_p32', '327_p29'],
    check(a, p) {
      assert.is(a.sender, false);
      assert.is(a.clientInfo, clientInfoAt(p));
      assert.equal(a.transfer, transferOf());
      assert.is(a.specials, true);
      assert.is(a.deleteMode, undefined);
      assert.equal(a.paths, ['.', 'mod/path/']);
      assert.equal(a.given.slice(0, 1), ['server']);
      assert.ok(a.given.includes('rsh') === (p >= 30));
    },
  },
  {
    name: 'aH',
    command: ['-aH', 'SRC', 'URL'],
    check(a) {
      assert.equal(a.transfer, transferOf({ hardLinks: true }));
      assert.is(a.hardLinks, 1);
    },
  },
  {
    name: 'av_delete',
    command: ['-av', '--delete', 'SRC', 'URL'],
    fixture: ['350_p32', '327_p29'],
    check(a, p) {
      assert.equal(a.transfer, transferOf({ verbose: 1, delete: true }));
      assert.is(a.deleteMode, defaultDelete(p));
      assert.ok(a.given.includes('delete'));
    },
  },
  {
    name: 'delete_after',
    command: ['-a', '--delete-after', '--max-delete=5', '--ignore-errors', '--force', 'SRC', 'URL'],
    check(a) {
      assert.is(a.deleteMode, 'after');
      assert.is(a.transfer.delete, true);
      assert.is(a.maxDelete, 5);
      assert.is(a.ignoreErrors, true);
      assert.is(a.force, true);
    },
  },
  {
    name: 'delete_excluded',
    command: ['-rlptD', '--delete-excluded', '--exclude', 'x', 'SRC', 'URL'],
    check(a, p) {
      assert.equal(a.transfer, transferOf({ owner: false, group: false, delete: true, deleteExcluded: true }));
      assert.is(a.deleteExcluded, true);
      assert.is(a.deleteMode, defaultDelete(p));
      // --exclude travels as a filter rule after the setup, not as an argument.
      assert.equal(a.filterOptions, []);
    },
  },
  {
    name: 'delete_delay_missing',
    command: ['-a', '--delete-delay', '--delete-missing-args', 'SRC', 'URL'],
    check(a) {
      assert.is(a.deleteMode, 'delay');
      assert.is(a.deleteMissingArgs, true);
      assert.is(a.transfer.deleteMissingArgs, true);
    },
  },
  {
    name: 'copy_dest_fuzzy',
    command: ['-a', '--copy-dest=../old', '-y', 'SRC', 'URL'],
    fixture: ['350_p32', '327_p30'],
    check(a) {
      assert.equal(a.basisDirs, [{ kind: 'copy', dir: '../old' }]);
      assert.is(a.fuzzy, 1);
      assert.equal(a.transfer, transferOf({ copyDest: '../old', fuzzy: 1 }));
    },
  },
  {
    name: 'fuzzy_fuzzy',
    command: ['-a', '--fuzzy', '--fuzzy', '--compare-dest=../c', 'SRC', 'URL'],
    check(a) {
      assert.is(a.fuzzy, 2);
      assert.equal(a.basisDirs, [{ kind: 'compare', dir: '../c' }]);
    },
  },
  {
    name: 'link_dest',
    command: ['-a', '--link-dest=../a', '--link-dest=/abs/b', 'SRC', 'URL'],
    check(a) {
      assert.equal(a.basisDirs, [
        { kind: 'link', dir: '../a' },
        { kind: 'link', dir: '/abs/b' },
      ]);
      assert.is(a.transfer.copyDest, undefined);
    },
  },
  {
    name: 'compress',
    command: ['-az', '--compress-level=3', 'SRC', 'URL'],
    fixture: ['350_p32'],
    check(a) {
      assert.equal(a.compress, { level: 3, choice: undefined });
      assert.ok(a.given.includes('compress'));
    },
  },
  {
    name: 'checksum',
    command: ['-ac', '--checksum-choice=md5', 'SRC', 'URL'],
    check(a) {
      assert.is(a.transfer.checksum, true);
      assert.is(a.checksumChoice, 'md5');
      assert.is(a.transfer.checksumChoice, 'md5');
    },
  },
  {
    name: 'dry_run_itemize',
    command: ['-ani', '--stats', 'SRC', 'URL'],
    check(a) {
      assert.equal(a.transfer, transferOf({ dryRun: true, itemize: true, stats: true }));
      assert.is(a.outFormat, '%i');
    },
  },
  {
    name: 'list_only',
    command: ['--list-only', 'URL'],
    fixture: ['350_p32', '327_p29'],
    check(a, p) {
      assert.is(a.sender, true);
      assert.is(a.listOnly, true);
      assert.is(a.dirs, true);
      assert.is(a.transfer.dirs, true);
      assert.is(a.transfer.recursive, false);
      assert.is(a.clientInfo, p >= 30 ? 'LsfxCIvu' : '');
    },
  },
  {
    name: 'pull',
    command: ['-a', '--numeric-ids', '--timeout=30', 'URL', 'DST'],
    fixture: ['350_p32', '327_p31'],
    check(a) {
      assert.is(a.sender, true);
      assert.equal(a.transfer, transferOf({ numericIds: true, timeout: 30 }));
      assert.equal(a.paths, ['.', 'mod/path/']);
    },
  },
  {
    name: 'pull_delete_not_sent',
    command: ['-a', '--delete', '-y', 'URL', 'DST'],
    check(a) {
      // A pull deletes on the client's side: the daemon (the sender) is not told.
      assert.is(a.sender, true);
      assert.is(a.deleteMode, undefined);
      assert.is(a.fuzzy, 0);
    },
  },
  {
    name: 'secluded',
    command: ['-as', '--copy-dest=../old', '--modify-window=2', 'SRC', 'URL'],
    fixture: ['350_p32', '327_p29'],
    check(a, p) {
      assert.is(a.secluded, true);
      // Below 30 the first list runs on past the -s marker (printed "(null)"), and rsync parses
      // both lists: the options after the marker count twice, as in rsyncd.
      assert.equal(a.basisDirs, Array(p < 30 ? 2 : 1).fill({ kind: 'copy', dir: '../old' }));
      assert.is(a.modifyWindow, 2);
      assert.equal(a.transfer, transferOf({ copyDest: '../old', modifyWindow: 2 }));
      assert.equal(a.paths, ['.', 'mod/path/']);
    },
  },
  {
    name: 'receiver_details',
    command: [
      '-aWxSIbuC', '-OJmK', '--size-only', '--partial', '--numeric-ids', '--bwlimit=100', '--backup-dir=bak', '--suffix=.old',
      '--chmod=u+w', '--mkpath', '--no-implied-dirs', '-R', '--remove-source-files', '--ignore-existing', '--existing',
      '--safe-links', '--preallocate', '--modify-window=-1', 'SRC', 'URL',
    ],
    check(a, p) {
      assert.is(a.transfer.wholeFile, true);
      assert.is(a.oneFileSystem, 1);
      assert.is(a.sparse, true);
      assert.is(a.ignoreTimes, true);
      assert.is(a.backup, true);
      assert.is(a.update, true);
      assert.is(a.cvsExclude, true);
      assert.is(a.omitDirTimes, true);
      assert.is(a.omitLinkTimes, true);
      assert.is(a.pruneEmptyDirs, true);
      assert.is(a.keepDirlinks, true);
      assert.is(a.sizeOnly, true);
      assert.is(a.partial, true);
      assert.is(a.bwlimit, 100);
      assert.is(a.backupDir, 'bak');
      assert.is(a.suffix, '.old');
      assert.is(a.mkpath, true);
      assert.is(a.relative, true);
      // rsync's client sends --no-implied-dirs to a receiver only from protocol 30.
      assert.is(a.impliedDirs, p < 30);
      assert.is(a.removeSourceFiles, 1);
      assert.is(a.ignoreExisting, true);
      assert.is(a.existing, true);
      assert.is(a.safeLinks, true);
      assert.is(a.preallocate, true);
      assert.is(a.modifyWindow, -1);
      assert.is(a.transfer.modifyWindow, -1);
      // --chmod shapes the client's own file list; it is not sent.
      assert.equal(a.chmod, []);
    },
  },
  {
    name: 'inplace_append_maps',
    command: ['-a', '--append', '--usermap=*:nobody', '--groupmap=0:nogroup', '--ignore-missing-args', 'SRC', 'URL'],
    check(a) {
      assert.is(a.append, 1);
      assert.is(a.inplace, true);
      assert.is(a.usermap, '*:nobody');
      assert.is(a.groupmap, '0:nogroup');
    },
  },
  {
    name: 'chown_verbose2',
    command: ['-avv', '--chown=u:g', '--partial-dir=.part', '--delay-updates', '--timeout=5', 'SRC', 'URL'],
    check(a) {
      assert.is(a.verbose, 2);
      assert.is(a.usermap, '*:u');
      assert.is(a.groupmap, '*:g');
      assert.is(a.partialDir, '.part');
      assert.is(a.delayUpdates, true);
      assert.is(a.timeout, 5);
    },
  },
  {
    name: 'files_from',
    command: ['-a', '--files-from=-', 'URL', 'DST'],
    check(a) {
      // A pulling client sends its list over the socket after the setup: the daemon sees "-".
      assert.is(a.filesFrom, '-');
      assert.is(a.from0, true);
      assert.is(a.relative, true);
      assert.is(a.recursive, false);
    },
  },
];

/** Each client generation at each protocol it is recorded at. */
const CLIENTS: { label: string; binary: () => Promise<string>; protocols: (number | undefined)[] }[] = [
  { label: 'rsync 3.5.0', binary: async () => findRsync(), protocols: [undefined] },
  { label: 'rsync 3.2.7', binary: oldRsync, protocols: [undefined, 31, 30, 29] },
];

let daemon: TestDaemon;
const REFUSING: Record<string, string> = {
  refuse_dcz: 'delete copy-dest z',
  refuse_archive: 'a',
  refuse_all_but: '* !a !v !e !checksum-seed',
  refuse_when: 'delete-before delete-during',
  refuse_partial: 'partial',
  refuse_inplace: 'inplace',
  refuse_fuzzy_cc: 'fuzzy cc',
  refuse_del: 'del !write-devices',
  refuse_wild: 'delete-* no-*',
  refuse_times: 'times',
};

let work: string;
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'lsyncd-server-args-'));
  await mkdir(join(work, 'src/d'), { recursive: true });
  await mkdir(join(work, 'dst'));
  await writeFile(join(work, 'src/d/f'), 'file\n');
  // A real rsyncd with a module per `refuse options` value below.
  daemon = await startDaemon({
    extraModules: Object.entries(REFUSING).map(([name, refuse]) => ({ name, settings: { 'read only': false, 'refuse options': refuse } })),
  });
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

for (const client of CLIENTS) {
  for (const protocol of client.protocols) {
    test(`real client ${client.label}${protocol ? ` --protocol=${protocol}` : ''}: every case of the matrix`, async () => {
      const binary = await client.binary();
      await inPool(CASES, async (c) => {
        const command = protocol ? [`--protocol=${protocol}`, ...c.command] : c.command;
        const rec = await recordClient(binary, command, work);
        assert.is(rec.protocol, protocol ?? 32);
        const parsed = await parsedRecording(rec).catch((e: unknown) => {
          throw new Error(`${c.name}: ${(e as Error).message}`);
        });
        try {
          c.check(parsed, rec.protocol);
        } catch (e) {
          (e as Error).message = `${client.label} ${command.join(' ')}: ${(e as Error).message}\n${JSON.stringify(await listsOf(rec))}`;
          throw e;
        }
        const key = `${client.label.replace(/\D/g, '')}_p${rec.protocol}`;
        if (c.fixture?.includes(key) && process.env.LSYNCD_RECORD_SERVER_ARGS) {
          const name = `${key}_${c.name}`;
          writeFileSync(join(fixtures, `${name}.bin`), rec.bytes);
          writeFileSync(
            join(fixtures, `${name}.json`),
            JSON.stringify({ client: client.label, protocol: rec.protocol, case: c.name, command, lists: await listsOf(rec) }, null, 2) + '\n',
          );
        }
      });
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The kept recordings

test('fixtures: the recorded bytes read and parse as the live recordings do', async () => {
  const names = readdirSync(fixtures).filter((f) => f.endsWith('.json'));
  assert.ok(names.length >= 8, `only ${names.length} fixtures`);
  for (const file of names) {
    const meta = JSON.parse(readFileSync(join(fixtures, file), 'utf8')) as { case: string; protocol: number; lists: { first: string[]; secluded?: string[] } };
    const rec = { protocol: meta.protocol, bytes: readFileSync(join(fixtures, file.replace(/\.json$/, '.bin'))) };
    assert.equal(await listsOf(rec), meta.lists, file);
    const c = CASES.find((k) => k.name === meta.case)!;
    c.check(await parsedRecording(rec), rec.protocol);
  }
});

test('fixtures: -s at protocol 29 from rsync 3.2.7 (the first list carries "(null)" and the options twice)', async () => {
  const file = join(fixtures, '327_p29_secluded.json');
  assert.ok(existsSync(file));
  const meta = JSON.parse(readFileSync(file, 'utf8')) as { lists: { first: string[]; secluded: string[] } };
  assert.ok(meta.lists.first.includes('(null)'));
  const a = parseServerArgs(meta.lists.first, 29, { secluded: meta.lists.secluded });
  // rsync parses both lists into the same globals: a repeated --copy-dest is kept twice.
  assert.equal(a.basisDirs.map((b) => b.dir), ['../old', '../old']);
  assert.equal(a.paths, ['.', 'mod/path/']);
});

// ---------------------------------------------------------------------------------------------
// Round trips with our own client's list

test('round trip: parseServerArgs(serverArgs(o)).transfer is o, push and pull, protocols 27-32', () => {
  const pushes: Partial<TransferOptions>[] = [
    {},
    { verbose: 2, dryRun: true, itemize: true, stats: true },
    { owner: true, group: true, devices: true, hardLinks: true, checksum: true, wholeFile: true, numericIds: true },
    { delete: false, recursive: false, dirs: true },
    { deleteExcluded: true, checksumChoice: 'xxh128', timeout: 30 },
    { fuzzy: 1, copyDest: '../.lsyncd-old', modifyWindow: -1, deleteMissingArgs: true },
    { fuzzy: 2, copyDest: 'old dir', modifyWindow: 2 },
    { links: false, perms: false, times: false },
  ];
  for (const protocol of [27, 28, 29, 30, 31, 32]) {
    for (const extra of pushes) {
      const o: TransferOptions = { ...DEFAULT_TRANSFER, ...extra };
      const args = serverArgs(o, protocol, 'mod/dir');
      const a = parseServerArgs(args, protocol);
      assert.equal(a.transfer, o, JSON.stringify(args));
      assert.is(a.sender, false);
      assert.equal(a.paths, ['.', 'mod/dir']);
      assert.is(a.clientInfo, protocol >= 30 ? 'LsfxCIvu' : '');
    }
    // A pull sends no receiver-side options: what it sends comes back.
    const pull: TransferOptions = { ...DEFAULT_TRANSFER, delete: false, verbose: 1, numericIds: true, checksumChoice: 'md5' };
    const a = parseServerArgs(serverArgs(pull, protocol, 'mod', true), protocol);
    assert.is(a.sender, true);
    assert.equal(a.transfer, pull);
  }
});

// ---------------------------------------------------------------------------------------------
// Pure parsing details (popt's rules as rsync's daemon applies them)

test('popt rules: values attached or separate, -- ends options, options after the paths still count', () => {
  const a = parseServerArgs(['--server', '-vvrze.LsfxCIvu', '--timeout', '30', '-B1024', '.', 'mod/x', '--delete'], 32);
  assert.is(a.verbose, 2);
  assert.is(a.timeout, 30);
  assert.is(a.blockSize, 1024);
  assert.is(a.deleteMode, 'during');
  assert.equal(a.paths, ['.', 'mod/x']);
  const b = parseServerArgs(['--server', '-r', '--', '.', '--delete'], 29);
  assert.equal(b.paths, ['.', '--delete']);
  assert.is(b.deleteMode, undefined);
  // -@-1 (rsync's spelling of --modify-window=-1), hex and octal as C's strtol reads them.
  assert.is(parseServerArgs(['--server', '-@-1', '.'], 31).modifyWindow, -1);
  assert.is(parseServerArgs(['--server', '--timeout=0x10', '.'], 31).timeout, 16);
  assert.is(parseServerArgs(['--server', '--timeout=010', '.'], 31).timeout, 8);
  // rsync 3.5's daemon undoes the client's backslashes before the '.', not after.
  const c = parseServerArgs(['--server', '-o', '--usermap=\\*:a', '.', 'mod/\\*'], 32);
  assert.is(c.usermap, '*:a');
  assert.equal(c.paths, ['.', 'mod/\\*']);
  // Semantic errors rsync's daemon reports with its own text.
  const err = (args: string[]) => {
    try {
      parseServerArgs(args, 32);
    } catch (e) {
      assert.instance(e, ServerArgsError);
      assert.is((e as ServerArgsError).exitCode, EXIT.UNSUPPORTED);
      assert.is((e as ServerArgsError).code, 'ERR_RSYNC_SERVER_ARGS');
      return (e as Error).message;
    }
    throw new Error(`${args.join(' ')} parsed`);
  };
  assert.is(err(['--server', '-r', '--delete-before', '--delete-after', '.']), 'You may not combine multiple --delete-WHEN options.');
  assert.is(err(['--server', '--delete', '.']), '--delete does not work without --recursive (-r) or --dirs (-d).');
  assert.is(err(['--server', '--copy-dest=a', '--link-dest=b', '.']), 'ERROR: the --link-dest option conflicts with the --copy-dest option');
  assert.is(err(['--server', ...Array.from({ length: 21 }, (_, i) => `--link-dest=d${i}`), '.']), 'ERROR: at most 20 --link-dest args may be specified');
  assert.is(err(['--server', '--usermap=a', '--usermap=b', '.']), 'You can only specify --usermap once.');
  assert.is(err(['--server', '--suffix=a/b', '.']), '--suffix cannot contain slashes: a/b');
});

test('ServerArgsError.seen: what rsyncd had read when its parse stopped (its error path uses it)', () => {
  const caught = (args: string[], options = {}) => {
    try {
      parseServerArgs(args, 32, options);
    } catch (e) {
      return e as ServerArgsError;
    }
    throw new Error('parsed');
  };
  assert.equal(caught(['--server', '--sender', '-re.LsfxCIvu', '--foo', '.', 'm']).seen, { sender: true, clientInfo: 'LsfxCIvu', filesFrom: false });
  assert.equal(caught(['--server', '--foo', '--sender', '-re.LsfxCIvu', '.', 'm']).seen, { sender: false, clientInfo: '', filesFrom: false });
  assert.equal(caught(['--server', '-re.LsfxCIvu', '--delete', '--files-from=-', '.', 'm'], { refuse: ['delete'] }).seen, {
    sender: false,
    clientInfo: 'LsfxCIvu',
    filesFrom: true,
  });
});

test('hostile lists: the most arguments recvArgs lets through parse in linear time, lists bounded by them', () => {
  const many = Array.from({ length: 15_990 }, (_, i) => (i % 2 ? '--chmod=u+w' : '-vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv'));
  const started = performance.now();
  const a = parseServerArgs(['--server', ...many, '.', 'm'], 32);
  assert.ok(performance.now() - started < 2000);
  assert.is(a.chmod.length, 7995);
  assert.is(a.verbose, 7995 * 48);
  // Basis dirs stop at rsync's MAX_BASIS_DIRS, whatever the client sends.
  const dirs = Array.from({ length: 5000 }, (_, i) => `--copy-dest=d${i}`);
  assert.throws(() => parseServerArgs(['--server', '-r', ...dirs, '.'], 32), (e: unknown) => e instanceof ServerArgsError && /at most 20/.test((e as Error).message));
  // A value that is all backslashes unescapes to half, never grows.
  assert.is(parseServerArgs(['--server', `--suffix=${'\\'.repeat(2000)}`, '.'], 32).suffix, '\\'.repeat(1000));
});

// ---------------------------------------------------------------------------------------------
// Against a real rsyncd: its texts for malformed lists and for refusals



/** The MSG_ERROR texts rsyncd answers `args` with in `module` (the list sent as-is on a raw session). */
async function daemonAnswer(module: string, args: string[], protocol?: number): Promise<RemoteError> {
  const session = await openModule({ host: daemon.host, port: daemon.port, ...(protocol && { protocol }) }, module);
  try {
    await startTransfer(session.reader, session.writer, args);
    const e = await session.reader.readInt().then(() => undefined, (e: unknown) => e);
    assert.instance(e, RemoteError, `${args.join(' ')}: ${String(e)}`);
    return e as RemoteError;
  } finally {
    session.socket.destroy();
  }
}

const MALFORMED: string[][] = [
  ['--foo'],
  ['--foo=bar'],
  ['-rQ'],
  ['--timeout=abc'],
  ['--timeout', 'abc'],
  ['--timeout=99999999999'],
  ['--recursive=1'],
  ['--daemon'],
  ['--config=/etc/passwd'],
  ['--bwlimit=1x'],
  ['--bwlimit=100b'],
  ['-B', '99999999'],
  ['-B', '1g'],
  ['--max-size=5q'],
  ['-r', '--delete-before', '--delete-after'],
  ['--delete'],
  ['--copy-dest=a', '--link-dest=b'],
  ['--usermap=a', '--usermap=b'],
  ['--chown=x', '--usermap=b'],
  ['--suffix=a/b'],
  ['--append', '-W'],
  ['--inplace', '--partial-dir=p'],
  ['-M', 'x'],
  ['--timeout=5 '],
  ['--timeout=08'],
  ['-@'],
  ['--max-delete=-0x80000001'],
  ['--chmod=zz'],
  ['--chmod=u+w,'],
  ['--chmod=o=ur'],
  ['--chmod=u+w,F8'],
  ['-rv', '-rQv'],
  // Accepted by rsyncd: only the unknown option that follows is reported.
  ['--timeout= 5', '--foo'],
  ['--timeout=', '--foo'],
  ['--timeout=+5', '--foo'],
  ['--bwlimit=1.5m', '--bwlimit=0.5', '--foo'],
  ['--chmod=ug+rwx,o=u,a+s,Fo-w,D755', '--foo'],
  ['-@-1', '--modify-window', '3', '--foo'],
  // Before --server, rsync's parse has no "on remote machine: " prefix.
  ['NO-SERVER', '--foo', '--server'],
  ['NO-SERVER', '--timeout=x'],
];

test('real rsyncd: a malformed list gets the text and exit code parseServerArgs gives (protocols 32 and 29)', async () => {
  const lists: [string[], number][] = [...MALFORMED.map((m): [string[], number] => [m, 32]), [['.', 'x', '--timeout'], 32], [['-B', '1g'], 29]];
  for (const [bad, protocol] of lists) {
    // The client's capabilities come first so the daemon's setup matches ours whatever follows.
    // The client's capabilities come before --server here only for the list without --server.
    const args = bad[0] === 'NO-SERVER' ? ['-e.LsfxCIvu', ...bad.slice(1), '.', 'x'] : ['--server', '-e.LsfxCIvu', ...bad, ...(bad.includes('.') ? [] : ['.', 'x'])];
    let ours: ServerArgsError | undefined;
    try {
      parseServerArgs(args, protocol);
    } catch (e) {
      ours = e as ServerArgsError;
    }
    assert.instance(ours, ServerArgsError, args.join(' '));
    const theirs = await daemonAnswer('push', args, protocol);
    assert.is(theirs.messages[0], ours!.text, args.join(' '));
    // Below 30 rsyncd just closes after the text (no MSG_ERROR_EXIT carries its code).
    if (protocol >= 30) assert.is(theirs.exitCode, ours!.exitCode, args.join(' '));
  }
});

test('our refusal text round-trips through the client-side refusedOption()', () => {
  const a = parseServerArgs(['--server', '-ye.LsfxCIvu', '--copy-dest=x', '.', 'm'], 32);
  const r = refusal(['fuzzy'], a)!;
  assert.equal(r, { option: 'fuzzy', message: 'The server is configured to refuse --fuzzy (-y)', text: 'rsync: The server is configured to refuse --fuzzy (-y)\n' });
  assert.is(refusedOption(r.text), 'fuzzy');
  assert.is(refusedOption(refusal(['copy-dest'], a)!.message), 'copy-dest');
  const err = new RemoteError([refusal(['copy-dest'], a)!.text], EXIT.UNSUPPORTED);
  assert.is(err.refusedOption, 'copy-dest');
});

test('refusedOptions: wildcards, exact-only names, !exceptions, same-action siblings, the daemon defaults', () => {
  const none = refusedOptions([]);
  assert.equal([...none].sort(), ['copy-devices', 'crtimes', 'iconv', 'insecure-links', 'log-file', 'log-file-format', 'write-devices']);
  const all = refusedOptions(['*']);
  for (const kept of ['server', 'sender', 'rsh', 'dry-run', 'from0', 'secluded-args', 'checksum-seed', 'log-format', 'no-iconv']) {
    assert.not.ok(all.has(kept), kept);
  }
  assert.ok(all.has('delete') && all.has('out-format') && all.has('compress'));
  assert.ok(refusedOptions(['log-format']).has('out-format'));
  assert.ok(refusedOptions(['delete-during']).has('del'));
  assert.not.ok(refusedOptions(['!write-devices']).has('write-devices'));
  const archive = refusedOptions(['archive']);
  for (const n of ['archive', 'recursive', 'dirs', 'links', 'perms', 'times', 'owner', 'group', 'D']) assert.ok(archive.has(n), n);
  assert.not.ok(archive.has('devices'));
});

/** Commands run by a real client against a refusing module, and the option rsyncd names. */
const REFUSAL_CASES: { module: string; command: string[]; option: string | undefined }[] = [
  { module: 'refuse_dcz', command: ['-a', '--delete', 'SRC', 'URL'], option: 'delete' },
  { module: 'refuse_dcz', command: ['-a', '--delete-after', 'SRC', 'URL'], option: 'delete' },
  { module: 'refuse_dcz', command: ['-a', '--delete-missing-args', 'SRC', 'URL'], option: 'delete' },
  { module: 'refuse_dcz', command: ['-a', '--copy-dest=../old', 'SRC', 'URL'], option: 'copy-dest' },
  { module: 'refuse_dcz', command: ['-az', 'SRC', 'URL'], option: 'compress' },
  { module: 'refuse_dcz', command: ['-a', '--compress-level=3', '--zc=zlib', 'SRC', 'URL'], option: 'compress' },
  { module: 'refuse_dcz', command: ['-a', 'SRC', 'URL'], option: undefined },
  { module: 'refuse_archive', command: ['-a', 'SRC', 'URL'], option: 'links' },
  { module: 'refuse_archive', command: ['-r', 'SRC', 'URL'], option: 'recursive' },
  { module: 'refuse_all_but', command: ['-a', 'SRC', 'URL'], option: undefined },
  { module: 'refuse_all_but', command: ['-av', '--delete', 'SRC', 'URL'], option: 'delete' },
  { module: 'refuse_all_but', command: ['-aH', 'SRC', 'URL'], option: 'hard-links' },
  { module: 'refuse_when', command: ['-a', '--delete', 'SRC', 'URL'], option: 'delete-before' },
  { module: 'refuse_when', command: ['-a', '--delete-after', 'SRC', 'URL'], option: undefined },
  { module: 'refuse_partial', command: ['-a', '--inplace', 'SRC', 'URL'], option: 'partial' },
  { module: 'refuse_partial', command: ['-a', '--partial-dir=.p', 'SRC', 'URL'], option: undefined },
  { module: 'refuse_inplace', command: ['-a', '--append', 'SRC', 'URL'], option: 'inplace' },
  { module: 'refuse_fuzzy_cc', command: ['-a', '-y', 'SRC', 'URL'], option: 'fuzzy' },
  { module: 'refuse_fuzzy_cc', command: ['-a', '--cc=md5', 'SRC', 'URL'], option: 'checksum-choice' },
  { module: 'refuse_del', command: ['-a', '--delete-during', 'SRC', 'URL'], option: 'delete-during' },
  { module: 'refuse_del', command: ['-a', '--delete-delay', 'SRC', 'URL'], option: undefined },
  { module: 'refuse_wild', command: ['-a', '--delete', 'SRC', 'URL'], option: 'delete-before' },
  { module: 'refuse_wild', command: ['-a', '--delete-excluded', 'SRC', 'URL'], option: 'delete-excluded' },
  { module: 'refuse_wild', command: ['-a', '--no-W', 'SRC', 'URL'], option: undefined },
  { module: 'refuse_wild', command: ['-a', '--no-specials', 'SRC', 'URL'], option: 'no-specials' },
  { module: 'refuse_wild', command: ['-lptd', '--delete-after', 'SRC', 'URL'], option: 'no-r' },
];

/** Run a real client command against the real daemon's `module`: exit code and stderr. */
async function runAgainstDaemon(binary: string, module: string, command: string[]): Promise<{ status: number | null; stderr: string }> {
  const args = command.map((a) =>
    a
      .replace('URL', `rsync://${daemon.host}:${daemon.port}/${module}/`)
      .replace('SRC', join(work, 'src/'))
      .replace('DST', join(work, 'dst/')),
  );
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const status = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  clearTimeout(timer);
  return { status, stderr };
}

for (const label of ['rsync 3.5.0', 'rsync 3.2.7'] as const) {
  test(`real rsyncd and ${label}: refusal() says what rsyncd says to the same command`, async () => {
    const binary = label === 'rsync 3.5.0' ? findRsync() : await oldRsync();
    await inPool(REFUSAL_CASES, async (c) => {
      const rec = await recordClient(binary, c.command, work);
      const parsed = await parsedRecording(rec);
      const ours = refusal([REFUSING[c.module]!], parsed);
      const where = `${label} ${c.command.join(' ')} into [${c.module}] (refuse options = ${REFUSING[c.module]})`;
      assert.is(ours?.option, c.option, where);
      // Parsing with the module's list says the same, as an error.
      const { first, secluded } = await listsOf(rec);
      const inline = (() => {
        try {
          parseServerArgs(first, rec.protocol, { refuse: [REFUSING[c.module]!], ...(secluded && { secluded }) });
          return undefined;
        } catch (e) {
          return e as ServerArgsError;
        }
      })();
      assert.is(inline?.text, ours?.text, where);
      assert.is(inline?.refusedOption, ours?.option, where);
      const theirs = await runAgainstDaemon(binary, c.module, c.command);
      if (ours) {
        assert.ok(theirs.stderr.includes(ours.text), `${where}: rsyncd said ${theirs.stderr}`);
        assert.is(theirs.status, EXIT.UNSUPPORTED, where);
      } else {
        assert.not.ok(/configured to refuse/.test(theirs.stderr), `${where}: ${theirs.stderr}`);
      }
    });
  });
}

test('real rsyncd: with refuse options, the first problem in rsyncd order is the one reported', async () => {
  const cases: [string, string[]][] = [
    ['refuse_dcz', ['-r', '--delete', '--foo']],
    ['refuse_dcz', ['-r', '--foo', '--delete']],
    ['refuse_dcz', ['-r', '--delete-after', '--foo']],
    ['refuse_dcz', ['-r', '--delete-after', '--max-size=5q']],
    ['refuse_dcz', ['-rz', '--foo']],
    ['refuse_dcz', ['-a', '--timeout=x']],
    ['refuse_dcz', ['--delete']],
    ['refuse_archive', ['-a']],
    ['refuse_archive', ['-vr']],
    ['refuse_times', ['-a']],
    ['refuse_times', ['-logDpr', '-t']],
    ['refuse_when', ['-r', '--del', '--delete-before']],
    ['refuse_when', ['--delete-excluded']],
    ['refuse_partial', ['--inplace', '--partial-dir=x']],
    ['refuse_partial', ['--partial-dir=./']],
    ['refuse_partial', ['--append', '-W']],
    ['refuse_inplace', ['--append', '-W']],
    ['refuse_inplace', ['--write-devices']],
    ['refuse_del', ['--write-devices', '--foo']],
    ['refuse_all_but', ['-a', '--log-format=%i', '--checksum-seed=5', '--foo']],
  ];
  for (const [module, list] of cases) {
    const args = ['--server', '-e.LsfxCIvu', ...list, '.', 'x'];
    const where = `[${module}] (refuse options = ${REFUSING[module]}) ${list.join(' ')}`;
    let ours: ServerArgsError | undefined;
    try {
      parseServerArgs(args, 32, { refuse: [REFUSING[module]!] });
    } catch (e) {
      ours = e as ServerArgsError;
    }
    assert.instance(ours, ServerArgsError, where);
    const theirs = await daemonAnswer(module, args);
    assert.is(theirs.messages[0], ours!.text, where);
    assert.is(theirs.exitCode, EXIT.UNSUPPORTED, where);
    assert.is(theirs.refusedOption, ours!.refusedOption ?? (/unknown option/.test(ours!.text) ? 'foo' : undefined), where);
  }
});

test('parse with refuse: a refused --delete-missing-args is dropped, and the delete mode follows the refusals', () => {
  const list = ['--server', '-re.LsfxCIvu', '--delete', '--delete-missing-args', '.', 'm'];
  const a = parseServerArgs(list, 32, { refuse: ['delete-missing-args'] });
  assert.is(a.deleteMissingArgs, false);
  assert.is(a.transfer.deleteMissingArgs, undefined);
  assert.is(parseServerArgs(list, 32).deleteMissingArgs, true);
  assert.is(parseServerArgs(list, 32, { refuse: ['delete-before'] }).deleteMode, 'during');
  assert.is(parseServerArgs(list, 32, { refuse: ['delete-during'] }).deleteMode, 'before');
});

test('real rsyncd and rsync 3.2.7 --protocol=29 -s: both lists are parsed, so an option after the marker counts twice', async () => {
  const binary = await oldRsync();
  const command = ['--protocol=29', '-as', '--usermap=*:nobody', 'SRC', 'URL'];
  const rec = await recordClient(binary, command, work);
  const error = await parsedRecording(rec).then(() => undefined, (e: unknown) => e);
  assert.instance(error, ServerArgsError);
  assert.is((error as ServerArgsError).message, 'You can only specify --usermap once.');
  const theirs = await runAgainstDaemon(binary, 'push', command);
  assert.ok(theirs.stderr.includes((error as ServerArgsError).text), theirs.stderr);
  // At protocol 30 the first list stops at the marker: the same command is fine.
  const at30 = await parsedRecording(await recordClient(binary, ['--protocol=30', ...command.slice(1)], work));
  assert.is(at30.usermap, '*:nobody');
});

test('refusedDeleteMode: a bare --delete runs during when delete-before is refused, before when delete-during is', () => {
  const a = parseServerArgs(['--server', '-re.LsfxCIvu', '--delete', '.', 'm'], 32);
  assert.is(refusedDeleteMode(['delete-before'], a), 'during');
  assert.is(refusedDeleteMode(['delete-during'], a), 'before');
  assert.is(refusedDeleteMode([], parseServerArgs(['--server', '-r', '--delete', '.', 'm'], 29)), 'before');
  assert.is(refusedDeleteMode(['delete-during'], parseServerArgs(['--server', '-r', '--delete-after', '.', 'm'], 32)), 'after');
});

test.run();
