// A pull from a hostile or broken daemon (issue 6, "Safety"): a scripted peer that replays a real
// rsync 3.5.0 daemon's setup bytes (greeting .. seed, from the pull_delta capture) and then plays
// the sender with this project's own sender code, with single things altered: a wrong whole-file
// checksum (once: the redo phase repairs it; always: exit 23, the old version kept), a symlink
// then a file through it, a '..' name, a stall. Each ends in a typed error or a clean result, and
// nothing outside DEST is touched.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Socket } from 'node:net';
import { mkdtemp, rm, writeFile, readFile, mkdir, readdir, lstat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCapture, memorySink } from './helpers/capture.js';
import { pull, type PullResult } from '../src/transfer/pull.js';
import { DestTree } from '../src/transfer/dest-tree.js';
import { wrapSocket } from '../src/transfer/socket.js';
import { DEFAULT_TRANSFER } from '../protocol/args.js';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { startMultiplexIn, startMultiplexOut } from '../protocol/mplex.js';
import { createChecksummer, type Checksummer } from '../protocol/checksum.js';
import { sortFileList, type FileEntry } from '../protocol/flist.js';
import { sendFileList } from '../protocol/flist-packed-send.js';
import { S_IFDIR, S_IFLNK, S_IFREG } from '../protocol/modes.js';
import { sendFiles, type SentItem } from '../protocol/sender.js';
import { readSumHead, readSumBlocks } from '../protocol/sums.js';
import { NDX_DONE } from '../protocol/constants.js';
import { RsyncError, TimeoutError, ProtocolError } from '../protocol/errors.js';
import { lines, T0 } from './helpers/fstree.js';

/** The real daemon's bytes of pull_delta up to multiplexing (greeting, MOTD, OK, compat 0x1fe, checksum list, seed). */
const SETUP = loadCapture('pull_delta').s2c.subarray(0, 143);
const SEED = SETUP.readInt32LE(139);
const COMPAT = 0x1fe;

let work: string;
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'lsyncd-pull-hostile-'));
});
test.after(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Script {
  entries: FileEntry[];
  contents: Map<string, Buffer>;
  /** Corrupt the whole-file checksum of the first `corrupt` files sent (Infinity: always). */
  corrupt?: number;
  /** Patch the file-list bytes before they go out (single fields altered). */
  patchList?: (bytes: Buffer) => Buffer;
  /** Stop after the file list (a stall). */
  stallAfterList?: boolean;
  /** A file that vanishes on the daemon's side before it is sent (MSG_NO_SEND, IOERR_VANISHED). */
  vanish?: string;
  /** Answer the first request with a sum head claiming 2^24 blocks and a token for the last one. */
  lyingEcho?: boolean;
}

/** A checksummer whose whole-file digests are wrong for the first `n` files. */
function corrupting(cs: Checksummer, n: number): Checksummer {
  let left = n;
  return {
    ...cs,
    blockSum: cs.blockSum.bind(cs),
    startFile: () => {
      const h = cs.startFile();
      const bad = left-- > 0;
      return {
        update: (b: Uint8Array) => h.update(b),
        digest: () => {
          const d = Buffer.from(h.digest());
          if (bad) d[0]! ^= 0xff;
          return d;
        },
      };
    },
  } as Checksummer;
}

/** A fake daemon: the real setup bytes, then the sender role run by our own sender code. */
async function fakeDaemon(script: Script) {
  const sockets = new Set<Socket>();
  const sent: SentItem[] = [];
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    void serve(socket).catch(() => socket.destroy());
  });
  async function serve(socket: Socket): Promise<void> {
    const conn = wrapSocket(socket, 'client', 0);
    const reader = new ByteReader(conn);
    const writer = new ByteWriter(conn);
    writer.writeBuf(SETUP);
    await writer.flush();
    // The client's greeting, module line, argument list (NUL-separated, empty ends), checksum list.
    await reader.readLine();
    await reader.readLine();
    let run = 0;
    for (;;) {
      const b = await reader.readByte();
      if (b === 0 && run === 0) break;
      run = b === 0 ? 0 : run + 1;
    }
    await reader.readVstring();
    startMultiplexOut(writer);
    startMultiplexIn(reader, () => {});
    // The client's filter list.
    for (let n = await reader.readInt(); n !== 0; n = await reader.readInt()) await reader.readBuf(n);
    // The file list.
    const sorted = sortFileList(script.entries, 32);
    const side = new ByteWriter(memorySink());
    const listed = sendFileList(side, sorted, { protocol: 32, compatFlags: COMPAT, preserveLinks: true });
    await side.flush();
    let bytes = (side.sink as ReturnType<typeof memorySink>).bytes();
    if (script.patchList) bytes = script.patchList(bytes);
    writer.writeBuf(bytes);
    await writer.flush();
    if (script.stallAfterList) return;
    if (script.lyingEcho) {
      let ndx = await reader.readNdx();
      let iflags = await reader.readShort();
      while (!(iflags & 0x8000)) {
        // Not a transfer (an attribute change): echoed, as a sender does.
        writer.writeNdx(ndx);
        writer.writeShort(iflags);
        ndx = await reader.readNdx();
        iflags = await reader.readShort();
      }
      const head = await readSumHead(reader, 16);
      await readSumBlocks(reader, head);
      writer.writeNdx(ndx);
      writer.writeShort(iflags);
      for (const v of [1 << 24, 700, 2, 0]) writer.writeInt(v);
      writer.writeInt(-(1 << 24)); // block 2^24 - 1
      await writer.flush();
      return;
    }
    // The sender role, then stats and the goodbye (31+).
    const cs = await createChecksummer('xxh128', { protocol: 32, seed: SEED, compatFlags: COMPAT, implied: false });
    await sendFiles(reader, writer, listed.sorted, corrupting(cs, script.corrupt ?? 0), {
      open: async (entry) =>
        entry.name.toString() === script.vanish
          ? { error: `file has vanished: "${script.vanish}"`, vanished: true }
          : [script.contents.get(entry.name.toString())!],
    }, { onItem: (item) => sent.push(item) });
    for (let i = 0; i < 5; i++) writer.writeVarlong(0, 3);
    await writer.flush();
    if ((await reader.readNdx()) !== NDX_DONE) throw new Error('no NDX_DONE');
    writer.writeNdx(NDX_DONE);
    await writer.flush();
    await reader.readNdx();
    socket.end();
  }
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    sent,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const file = (name: string, content: Buffer, mtime = T0): FileEntry => ({ name: Buffer.from(name), mode: S_IFREG | 0o644, size: content.length, mtime, uid: 0, gid: 0 });
const dir = (name: string): FileEntry => ({ name: Buffer.from(name), mode: S_IFDIR | 0o755, size: 4096, mtime: T0, uid: 0, gid: 0 });
const link = (name: string, target: string): FileEntry => ({ name: Buffer.from(name), mode: S_IFLNK | 0o777, size: target.length, mtime: T0, uid: 0, gid: 0, symlink: Buffer.from(target) });

function pullFrom(port: number, dest: string, extra: { timeout?: number } = {}): Promise<PullResult> {
  return pull({
    target: { host: '127.0.0.1', port, module: 'push', path: '' },
    dest,
    transfer: { ...DEFAULT_TRANSFER, delete: false },
    session: extra.timeout ? { timeout: extra.timeout } : {},
  });
}

async function expectError(promise: Promise<unknown>): Promise<RsyncError> {
  try {
    await promise;
  } catch (e) {
    assert.instance(e, RsyncError, String(e));
    return e as RsyncError;
  }
  throw new Error('expected an error');
}

/** Names in a directory that look like our temporary files (".name.XXXXXX"). */
async function leftovers(path: string): Promise<string[]> {
  return (await readdir(path)).filter((n) => n.startsWith('.'));
}

function basicScript(a: Buffer): Script {
  const b = Buffer.from('second file\n');
  return {
    entries: [dir('.'), file('a.txt', a), dir('sub'), file('sub/b.txt', b)],
    contents: new Map([
      ['a.txt', a],
      ['sub/b.txt', b],
    ]),
  };
}

test('a wrong whole-file checksum once: the file is requested again in the redo phase and arrives intact', async () => {
  const a = Buffer.from(lines(200));
  const fake = await fakeDaemon({ ...basicScript(a), corrupt: 1 });
  try {
    const dest = join(work, 'redo-once');
    // A local basis with the same size and an older mtime: a delta first, full-length sums on the redo.
    await mkdir(dest);
    const old = Buffer.from(lines(200).replace('line 0100', 'LINE 0100'));
    await writeFile(join(dest, 'a.txt'), old);
    const r = await pullFrom(fake.port, dest);
    assert.is(r.exitCode, 0);
    assert.equal(await readFile(join(dest, 'a.txt')), a);
    assert.equal(await readFile(join(dest, 'sub/b.txt')), Buffer.from('second file\n'));
    // The daemon saw a.txt requested twice (phase 0 and the redo), b.txt once.
    const names = fake.sent.filter((s) => s.iflags & 0x8000).map((s) => s.entry.name.toString());
    assert.equal(names.sort(), ['a.txt', 'a.txt', 'sub/b.txt']);
    assert.equal(await leftovers(dest), []);
  } finally {
    fake.close();
  }
});

test('a wrong whole-file checksum every time: exit 23, the old version stays, no temporary file left', async () => {
  const a = Buffer.from(lines(50));
  const fake = await fakeDaemon({ ...basicScript(a), corrupt: Infinity });
  try {
    const dest = join(work, 'redo-always');
    await mkdir(dest);
    await writeFile(join(dest, 'a.txt'), 'old version\n');
    const r = await pullFrom(fake.port, dest);
    assert.is(r.exitCode, 23);
    assert.is(r.receiver.failedFiles, 2);
    assert.is(await readFile(join(dest, 'a.txt'), 'utf8'), 'old version\n');
    assert.is((await lstat(join(dest, 'sub/b.txt')).catch(() => null)), null);
    assert.equal(await leftovers(dest), []);
    assert.equal(await leftovers(join(dest, 'sub')), []);
  } finally {
    fake.close();
  }
});

test('a file that vanishes on the daemon side: MSG_NO_SEND and MSG_IO_ERROR, the rest arrives, exit 24', async () => {
  const a = Buffer.from(lines(20));
  const fake = await fakeDaemon({ ...basicScript(a), vanish: 'a.txt' });
  try {
    const dest = join(work, 'vanish');
    const r = await pullFrom(fake.port, dest);
    assert.is(r.exitCode, 24);
    assert.is(await lstat(join(dest, 'a.txt')).catch(() => null), null);
    assert.equal(await readFile(join(dest, 'sub/b.txt')), Buffer.from('second file\n'));
    assert.equal(await leftovers(dest), []);
  } finally {
    fake.close();
  }
});

test('a sum head echo claiming 2^24 blocks of a 3 kB basis: a protocol error, the old file kept', async () => {
  const a = Buffer.from(lines(40));
  const fake = await fakeDaemon({ ...basicScript(a), lyingEcho: true });
  try {
    const dest = join(work, 'lying-echo');
    await mkdir(dest);
    const old = Buffer.from(lines(40).replace('line 0001', 'LINE 0001'));
    await writeFile(join(dest, 'a.txt'), old);
    const e = await expectError(pullFrom(fake.port, dest, { timeout: 5 }));
    assert.instance(e, ProtocolError, `${e.name}: ${e.message}`);
    assert.is(e.exitCode, 2);
    assert.match(e.message, 'describes');
    assert.equal(await readFile(join(dest, 'a.txt')), old);
    assert.equal(await leftovers(dest), []);
  } finally {
    fake.close();
  }
});

test('a symlink to a directory outside DEST, then a file through it: exit 2, nothing written outside', async () => {
  const outside = join(work, 'outside');
  await mkdir(outside, { recursive: true });
  const evil = Buffer.from('owned\n');
  const fake = await fakeDaemon({
    entries: [dir('.'), link('escape', outside), file('escape/planted', evil)],
    contents: new Map([['escape/planted', evil]]),
  });
  try {
    const dest = join(work, 'symlink-escape');
    const e = await expectError(pullFrom(fake.port, dest));
    assert.instance(e, ProtocolError);
    assert.is(e.exitCode, 2);
    assert.match(e.message, 'refusing to write through a symlink: escape');
    assert.equal(await readdir(outside), []);
  } finally {
    fake.close();
  }
});

test("a '..' name in the file list: exit 2 before any file operation, nothing written outside", async () => {
  const outside = join(work, 'dotdot-outside');
  await mkdir(outside, { recursive: true });
  const payload = Buffer.from('owned\n');
  // Sent as 'xx', 'xx/dotdot-outside', ...; the directory name 'xx' on the wire becomes '..'
  // (the later names share it through prefix compression).
  const fake = await fakeDaemon({
    entries: [dir('.'), dir('xx'), dir('xx/dotdot-outside'), file('xx/dotdot-outside/p', payload)],
    contents: new Map([['xx/dotdot-outside/p', payload]]),
    patchList: (bytes) => {
      const out = Buffer.from(bytes);
      const at = out.indexOf('xx');
      assert.ok(at > 0);
      out.write('..', at);
      return out;
    },
  });
  try {
    const dest = join(work, 'dotdot', 'dest');
    await mkdir(dest, { recursive: true });
    const e = await expectError(pullFrom(fake.port, dest));
    assert.is(e.exitCode, 2);
    assert.match(e.message, "'..'");
    assert.equal(await readdir(outside), []);
    assert.equal(await readdir(dest), []);
  } finally {
    fake.close();
  }
});

test('a daemon that stalls after the file list: --timeout ends it (exit 30), no temporary file left', async () => {
  const a = Buffer.from(lines(10));
  const fake = await fakeDaemon({ ...basicScript(a), stallAfterList: true });
  try {
    const dest = join(work, 'stall');
    const started = Date.now();
    const e = await expectError(pullFrom(fake.port, dest, { timeout: 1 }));
    assert.instance(e, TimeoutError);
    assert.is(e.exitCode, 30);
    assert.ok(Date.now() - started < 5000);
    assert.equal(await leftovers(dest), []);
  } finally {
    fake.close();
  }
});

// ---- the destination's own checks (DestTree), whatever the roles ask ------------------------------

test('DestTree: unsafe names, symlinked parents and symlinked final components are refused', async () => {
  const root = join(work, 'tree-checks');
  const outside = join(work, 'tree-outside');
  await mkdir(join(root, 'real'), { recursive: true });
  await mkdir(outside, { recursive: true });
  await writeFile(join(outside, 'secret'), 'outside\n');
  await symlink(outside, join(root, 'out'));
  await symlink(join(outside, 'secret'), join(root, 'secret-link'));
  const tree = new DestTree(root, { perms: true, times: true, owner: false, group: false, umask: 0o022, modifyWindow: 0 });
  const entry = file('x', Buffer.from('x'));
  for (const bad of ['../x', '/etc/passwd', 'a//b', 'a/./b', 'real/..', '', 'a\0b']) {
    await expectError(tree.createTemp(Buffer.from(bad)));
  }
  // A parent that is a symlink: no write, no read, no mkdir, no delete through it.
  for (const op of [
    () => tree.createTemp(Buffer.from('out/new')),
    () => tree.openBasis(Buffer.from('out/secret')),
    () => tree.mkdir(Buffer.from('out/dir'), entry),
    () => tree.remove(Buffer.from('out/secret')),
    () => tree.symlink(Buffer.from('out/l'), Buffer.from('x')),
    () => tree.lstat(Buffer.from('out/secret')),
  ]) {
    const e = await expectError(Promise.resolve().then((): unknown => op())); // a sync throw or a rejection alike
    assert.is(e.exitCode, 2);
    assert.match(e.message, 'symlink');
  }
  // The final component is never followed: a symlinked basis is no basis; attributes of a
  // non-symlink entry are not set through one; removing the link leaves its target.
  assert.is(await tree.openBasis(Buffer.from('secret-link')), null);
  await expectError(Promise.resolve().then(() => tree.setAttrs(Buffer.from('secret-link'), { ...entry, mode: S_IFREG | 0o777 }, null)));
  await tree.remove(Buffer.from('secret-link'));
  assert.is(await readFile(join(outside, 'secret'), 'utf8'), 'outside\n');
  assert.is((await lstat(join(outside, 'secret'))).mode & 0o777, 0o644);
  await expectError(tree.remove(Buffer.from('.')));
  assert.equal(await readdir(outside), ['secret']);
});

test.run();
