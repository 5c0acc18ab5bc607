// protocol/xattrs.ts on its own: a set's bytes against a deliberately naive encoder, a set sent
// twice going by index, the long-value request and answer between the three roles, the receiving
// side's choice of names (root or not, -X or -XX), the apply step on an in-memory file, and
// hostile input (indexes, counts, names, lengths, requests) rejected as ProtocolError, read one
// byte at a time.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { ProtocolError } from '../protocol/errors.js';
import { ITEM_LOCAL_CHANGE, ITEM_REPORT_XATTR, ITEM_TRANSFER, ITEM_XNAME_FOLLOWS } from '../protocol/constants.js';
import { XattrReceiver, XattrSender, xattrRequestFollows, type LocalXattrs, type XattrOptions, type XattrPair } from '../protocol/xattrs.js';
import { byteAtATime, memorySink } from './helpers/capture.js';

const ROOT: XattrOptions = { level: 1, amRoot: true, optim: false };
const pair = (name: string, value: string | Buffer): XattrPair => ({ name: Buffer.from(name), value: Buffer.isBuffer(value) ? value : Buffer.from(value) });
const LONG = Buffer.alloc(100, 0xab); // over 32 bytes: its digest travels
const md5 = (b: Buffer) => createHash('md5').update(b).digest();

/** The naive encoder: every number here is under 128, so each varint is one byte. */
function naiveSet(items: Array<[string, Buffer]>): Buffer {
  const out: number[] = [0, items.length];
  for (const [name, value] of items) {
    out.push(name.length + 1, value.length, ...Buffer.from(name), 0, ...(value.length > 32 ? md5(value) : value));
  }
  return Buffer.from(out);
}

function writer(): { w: ByteWriter; bytes(): Promise<Buffer> } {
  const sink = memorySink();
  const w = new ByteWriter(sink);
  return { w, bytes: async () => (await w.flush(), sink.bytes()) };
}

const reader = (bytes: Uint8Array) => new ByteReader(byteAtATime(bytes));

/** An in-memory file system of xattrs (file name → its pairs). */
function memoryFiles(files: Record<string, XattrPair[]>): LocalXattrs & { files: Record<string, XattrPair[]> } {
  return {
    files,
    read: (name) => files[name.toString()]?.map((p) => ({ ...p })) ?? null,
    set: (name, attr, value) => {
      const list = files[name.toString()]!;
      const at = list.findIndex((p) => p.name.equals(attr));
      if (at >= 0) list[at] = { name: attr, value };
      else list.push({ name: attr, value });
    },
    remove: (name, attr) => {
      files[name.toString()] = files[name.toString()]!.filter((p) => !p.name.equals(attr));
    },
  };
}

test('a set: sorted names, short values whole, a long one as its MD5; system.* and user.rsync.% left out with one -X', async () => {
  const { w, bytes } = writer();
  const sender = new XattrSender(ROOT, () => null);
  sender.send(w, 0, [pair('user.b', 'two'), pair('system.posix_acl_access', 'x'), pair('user.a', LONG), pair('user.rsync.%stat', 's'), pair('trusted.t', '')]);
  assert.equal(await bytes(), naiveSet([['trusted.t', Buffer.alloc(0)], ['user.a', LONG], ['user.b', Buffer.from('two')]]));
});

test('-XX sends user.rsync.% names too; the same set again goes as its index + 1', async () => {
  const { w, bytes } = writer();
  const sender = new XattrSender({ ...ROOT, level: 2 }, () => null);
  const set = [pair('user.rsync.%stat', 's'), pair('user.x', 'y')];
  sender.send(w, 0, set);
  sender.send(w, 1, [pair('user.z', 'other')]);
  sender.send(w, 2, [...set].reverse());
  sender.send(w, 3, []);
  sender.send(w, 4, []);
  const expected = Buffer.concat([naiveSet([['user.rsync.%stat', Buffer.from('s')], ['user.x', Buffer.from('y')]]), naiveSet([['user.z', Buffer.from('other')]]), Buffer.from([1]), Buffer.from([0, 0]), Buffer.from([3])]);
  assert.equal(await bytes(), expected);
});

test('a long value: the generator asks for it once per set, the sender answers in its echo, the receiver sets it', async () => {
  // The sender's side: two files with the same set (a long value and a short one).
  const onDisk = new Map<number, XattrPair[]>([
    [0, [pair('user.long', LONG), pair('user.short', 'hi')]],
    [1, [pair('user.long', LONG), pair('user.short', 'hi')]],
  ]);
  const list = writer();
  const sender = new XattrSender(ROOT, (i, name) => onDisk.get(i)!.find((p) => p.name.equals(name))?.value ?? null);
  sender.send(list.w, 0, onDisk.get(0)!);
  sender.send(list.w, 1, onDisk.get(1)!);
  // The receiving side: file "a" is new, "b" has a stale short value and an extra name.
  const local = memoryFiles({ a: [], b: [pair('user.short', 'old'), pair('user.extra', 'gone')] });
  const receiver = new XattrReceiver(ROOT);
  const listIn = reader(await list.bytes());
  await receiver.receive(listIn, 0);
  await receiver.receive(listIn, 1);
  receiver.bind(local, (ndx) => ndx);
  assert.ok(receiver.differs(0, null), 'a new file differs');
  assert.ok(receiver.differs(1, Buffer.from('b')), 'b differs');
  // The generator's requests: file 0 asks for #1 (user.long); file 1, with the same set, asks for nothing more.
  const req = writer();
  const iflags = ITEM_TRANSFER | ITEM_REPORT_XATTR;
  assert.ok(receiver.follows(iflags));
  receiver.writeRequest(req.w, 0);
  receiver.writeRequest(req.w, 1);
  assert.equal(await req.bytes(), Buffer.from([1, 0, 0]));
  // The sender reads each request and answers in its echo.
  const reqIn = reader(Buffer.from([1, 0, 0]));
  const echo = writer();
  await sender.readRequest(reqIn, 0);
  sender.writeAnswer(echo.w, 0);
  await sender.readRequest(reqIn, 1);
  sender.writeAnswer(echo.w, 1);
  const answer = await echo.bytes();
  assert.equal(answer, Buffer.concat([Buffer.from([1, LONG.length]), LONG, Buffer.from([0, 0])]));
  // The receiver takes the value, then sets both files.
  const echoIn = reader(answer);
  await receiver.readValues(echoIn, 0);
  await receiver.readValues(echoIn, 1);
  local.files['a'] = [];
  assert.equal(receiver.apply(0, Buffer.from('a'), [], false), []);
  assert.equal(receiver.apply(1, Buffer.from('b'), null, false), []);
  for (const name of ['a', 'b']) {
    const got = local.files[name]!.map((p) => `${p.name}=${p.value.toString('hex')}`).sort();
    assert.equal(got, [`user.long=${LONG.toString('hex')}`, `user.short=${Buffer.from('hi').toString('hex')}`], name);
  }
  assert.not.ok(receiver.differs(1, Buffer.from('b')), 'b is now the same');
});

test('the generator takes a long value it already has from the file, and leaves one it lacks to the receiver', async () => {
  const list = writer();
  new XattrSender(ROOT, () => null).send(list.w, 0, [pair('user.long', LONG), pair('user.other', Buffer.alloc(40, 1))]);
  const local = memoryFiles({ f: [pair('user.long', LONG)] });
  const receiver = new XattrReceiver(ROOT);
  await receiver.receive(reader(await list.bytes()), 0);
  receiver.bind(local, (ndx) => ndx);
  assert.ok(receiver.differs(0, Buffer.from('f')));
  const req = writer();
  receiver.writeRequest(req.w, 0);
  assert.equal(await req.bytes(), Buffer.from([2, 0]), 'only #2 is asked for');
  assert.equal(receiver.apply(0, Buffer.from('f'), null, true), [], 'the generator leaves #2 alone');
  assert.equal(receiver.apply(0, Buffer.from('f'), null, false), ['Missing abbreviated xattr value, user.other, for "f"'], "the receiver reports it when it never came");
});

test('a receiver that is not root keeps user.* only, with the sender positions kept for requests', async () => {
  const list = writer();
  new XattrSender(ROOT, () => null).send(list.w, 0, [pair('trusted.a', 'x'), pair('user.b', LONG)]);
  const receiver = new XattrReceiver({ ...ROOT, amRoot: false });
  await receiver.receive(reader(await list.bytes()), 0);
  receiver.bind(memoryFiles({}), (ndx) => ndx);
  receiver.differs(0, null);
  const req = writer();
  receiver.writeRequest(req.w, 0);
  assert.equal(await req.bytes(), Buffer.from([2, 0]), 'user.b is #2 as sent');
});

test('which items carry a request: ITEM_REPORT_XATTR, not -n; with the optimisation not a local copy', () => {
  assert.ok(xattrRequestFollows(ROOT, ITEM_REPORT_XATTR));
  assert.not.ok(xattrRequestFollows(ROOT, ITEM_TRANSFER));
  assert.not.ok(xattrRequestFollows({ ...ROOT, dryRun: true }, ITEM_REPORT_XATTR));
  const localCopy = ITEM_REPORT_XATTR | ITEM_XNAME_FOLLOWS | ITEM_LOCAL_CHANGE;
  assert.ok(xattrRequestFollows(ROOT, localCopy));
  assert.not.ok(xattrRequestFollows({ ...ROOT, optim: true }, localCopy));
});

async function rejects(bytes: number[], what: string, pattern: RegExp): Promise<void> {
  const receiver = new XattrReceiver(ROOT);
  try {
    await receiver.receive(reader(Buffer.from(bytes)), 0);
  } catch (e) {
    assert.instance(e, ProtocolError, what);
    assert.match((e as Error).message, pattern, what);
    return;
  }
  assert.unreachable(`${what}: accepted`);
}

test('hostile sets: an index past the sets received, a count, a name or a value out of bounds, a name without its NUL', async () => {
  await rejects([1], 'index of a set never sent', /out of range/);
    await rejects([0, 1, 0, 0], 'an empty name', /name length/);
  await rejects([0, 1, 3, 1, 0x61, 0x62, 0x63, 0x78], 'a name without its NUL', /missing trailing/);
  await rejects([0, 1, 3, 1, 0x61, 0, 0x63, 0x78], 'a NUL inside the name', /missing trailing/);
  const encoded = async (numbers: number[]) => {
    const { w, bytes } = writer();
    for (const n of numbers) w.writeVarint(n);
    return [...(await bytes())];
  };
  await rejects(await encoded([0, 65537]), 'a count over 65536', /xattr count/);
  await rejects(await encoded([0, 1, 2, 65537]), 'a value over 64 KiB', /at most 65536/);
});

async function rejectsWith(pending: Promise<unknown>, what: string): Promise<void> {
  try {
    await pending;
  } catch (e) {
    assert.instance(e, ProtocolError, what);
    return;
  }
  assert.unreachable(`${what}: accepted`);
}

test('hostile requests and answers: a position no value has, a value not abbreviated, a value not asked for', async () => {
  const list = writer();
  const sender = new XattrSender(ROOT, () => null);
  sender.send(list.w, 0, [pair('user.s', 'short'), pair('user.l', LONG)]);
  await rejectsWith(sender.readRequest(reader(Buffer.from([5, 0])), 0), 'a position past the set');
  await rejectsWith(sender.readRequest(reader(Buffer.from([2, 0])), 0), 'user.s (#2 after sorting) was sent whole');
  await rejectsWith(sender.readRequest(reader(Buffer.from([1, 0])), 7), 'an entry without a set');
  const twoLong = new XattrSender(ROOT, () => null);
  twoLong.send(writer().w, 0, [pair('user.a', LONG), pair('user.b', LONG)]);
  const twice = writer();
  for (const rel of [1, 1, -1, 0]) twice.w.writeVarint(rel);
  await rejectsWith(twoLong.readRequest(reader(await twice.bytes()), 0), 'the same value asked for twice (#1, #2, #1)');
  const receiver = new XattrReceiver(ROOT);
  await receiver.receive(reader(await list.bytes()), 0);
  receiver.bind(memoryFiles({}), (ndx) => ndx);
  await rejectsWith(receiver.readValues(reader(Buffer.from([2, 1, 0x61, 0])), 0), 'a value sent whole');
  await rejectsWith(receiver.readValues(reader(Buffer.from([9, 1, 0x61, 0])), 0), 'no such position');
});

test("the long values a receiver takes later are charged to the connection's memory cap", async () => {
  const list = writer();
  new XattrSender(ROOT, () => null).send(list.w, 0, [pair('user.l', LONG)]);
  const charged: number[] = [];
  const receiver = new XattrReceiver(ROOT, {
    charge: (bytes) => {
      charged.push(bytes);
      if (bytes > 50) throw new RangeError('over the cap');
    },
  });
  await receiver.receive(reader(await list.bytes()), 0);
  receiver.bind(memoryFiles({}), (ndx) => ndx);
  try {
    await receiver.readValues(reader(Buffer.concat([Buffer.from([1, LONG.length]), LONG, Buffer.from([0])])), 0);
    assert.unreachable('charged nothing');
  } catch (e) {
    assert.match((e as Error).message, /over the cap/);
  }
  assert.equal(charged, [LONG.length]);
});

test.run();
