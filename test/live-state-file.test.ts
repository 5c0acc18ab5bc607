// The live mirror's state file (src/live/state-file.ts, state.ts): records round trip (non-UTF-8
// names, symlinks, negative mtimes), a journal replays in order (clears of subtrees, begun and
// done pushes), a file cut at every offset or with a flipped byte is refused with a reason, a
// file of another sync is refused, and the startup comparison finds new, changed and deleted paths.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MirroredState, RecordWriter, encodeSnapshot, encodeHeader, readStateFile, StateFileError, NO_STATE_YET, type StateIdentity, type StateRecord } from '../src/live/state-file.js';
import { StateJournal, pushedRecords, startupChanges, stateIdentity, defaultStatePath } from '../src/live/state.js';
import { DEFAULT_TRANSFER } from '../protocol/args.js';
import type { LocalEntry } from '../src/transfer/scan.js';

const dir = mkdtempSync(join(tmpdir(), 'lsyncd-state-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const ID: StateIdentity = { source: '/src', targets: ['rsync://h:873/m/'], filters: 'f', transfer: 't' };
const FILE = 0o100644;
const DIR = 0o040755;
const LINK = 0o120777;

function rec(mode: number, size = 0, extra: Partial<StateRecord> = {}): StateRecord {
  return { mode, size, mtime: 1_700_000_000, nsec: 5, ino: 42, uid: 0, gid: 0, ...extra };
}

function entry(name: string | Buffer, mode: number, size = 0, extra: Partial<LocalEntry> = {}): LocalEntry {
  const n = typeof name === 'string' ? Buffer.from(name) : name;
  return { name: n, localPath: n, mode, size, mtime: 1_700_000_000, mtimeNsec: 5, ino: 42, uid: 0, gid: 0, ...extra };
}

function sample(): MirroredState {
  const s = new MirroredState();
  s.set('', rec(DIR));
  s.set('a', rec(DIR));
  s.set('a/x', rec(FILE, 10));
  s.set('a/b', rec(DIR));
  s.set('a/b/y', rec(FILE, 20, { mtime: -5, nsec: 999_999_999, ino: 2 ** 40 }));
  s.set(Buffer.from([0x66, 0xff, 0x0a]).toString('latin1'), rec(FILE, 3)); // "f\xff\n"
  s.set('l', rec(LINK, 1, { symlink: Buffer.from('a') }));
  s.unsure.set('a/b', { kind: 'rescan', isDir: true });
  return s;
}

function dump(s: MirroredState): string {
  return JSON.stringify({ entries: [...s.entries()].map(([p, r]) => [p, { ...r, symlink: r.symlink?.toString('latin1') }]), unsure: [...s.unsure] });
}

test('a snapshot round trips: names with any byte, symlinks, negative mtimes, large inodes, unsure paths', () => {
  const path = join(dir, 'round');
  writeFileSync(path, encodeSnapshot(ID, [sample()]));
  const { targets } = readStateFile(path, ID);
  assert.is(targets.length, 1);
  assert.is(dump(targets[0]!), dump(sample()));
});

test('a journal replays in order: a subtree cleared, set again, a push begun then done', () => {
  const path = join(dir, 'journal');
  writeFileSync(path, encodeSnapshot(ID, [sample()]));
  const w = new RecordWriter();
  w.clear(0, Buffer.from('a/b')); // a/b and a/b/y forgotten
  w.set(0, Buffer.from('a/b'), rec(DIR));
  w.pending(0, Buffer.from('a/z'), { kind: 'create', isDir: false });
  w.pending(0, Buffer.from('a/b/q'), { kind: 'modify', isDir: false });
  w.clear(0, Buffer.from('a/b')); // a push of a/b that went through sees a/b/q through too
  w.set(0, Buffer.from('a/b'), rec(DIR));
  appendFileSync(path, w.take());
  const s = readStateFile(path, ID).targets[0]!;
  assert.ok(s.get('a/b'));
  assert.is(s.get('a/b/y'), undefined);
  assert.ok(s.get('a/x'));
  assert.equal([...s.unsure], [['a/z', { kind: 'create', isDir: false }]]);
});

test('a file cut anywhere, or with any byte of a record flipped, is refused with a reason', () => {
  const whole = encodeSnapshot(ID, [sample()]);
  const path = join(dir, 'cut');
  for (let cut = 0; cut < whole.length; cut++) {
    writeFileSync(path, whole.subarray(0, cut));
    assert.throws(() => readStateFile(path, ID), (e: unknown) => e instanceof StateFileError && /torn|not an lsyncd state file|no header/.test((e as Error).message), `cut at ${cut}`);
  }
  const header = encodeHeader(ID).length;
  for (let at = header + 8; at < whole.length; at++) {
    const flipped = Buffer.from(whole);
    flipped[at]! ^= 0x20;
    writeFileSync(path, flipped);
    assert.throws(() => readStateFile(path, ID), (e: unknown) => e instanceof StateFileError && /damaged/.test((e as Error).message), `flip at ${at}`);
  }
});

test('a missing, foreign or other-sync file is refused, each with its reason', () => {
  const path = join(dir, 'other');
  const reason = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      assert.instance(e, StateFileError);
      return (e as Error).message;
    }
    assert.unreachable('accepted');
    return '';
  };
  assert.is(reason(() => readStateFile(join(dir, 'nope'), ID)), NO_STATE_YET);
  writeFileSync(path, 'source = /src\n');
  assert.match(reason(() => readStateFile(path, ID)), 'not an lsyncd state file');
  writeFileSync(path, encodeSnapshot({ ...ID, source: '/elsewhere' }, [sample()]));
  assert.match(reason(() => readStateFile(path, ID)), 'written for source "/elsewhere"');
  writeFileSync(path, encodeSnapshot({ ...ID, targets: ['rsync://h:873/other/'] }, [sample()]));
  assert.match(reason(() => readStateFile(path, ID)), 'written for target(s) rsync://h:873/other/');
  writeFileSync(path, encodeSnapshot({ ...ID, filters: 'g' }, [sample()]));
  assert.match(reason(() => readStateFile(path, ID)), 'other filter rules');
  writeFileSync(path, encodeSnapshot({ ...ID, transfer: 'u' }, [sample()]));
  assert.match(reason(() => readStateFile(path, ID)), 'other transfer options');
});

test('a record naming a target the file does not have, or an overlong name, is refused (nothing allocated for it)', () => {
  const path = join(dir, 'hostile');
  const w = new RecordWriter();
  w.done(3, Buffer.from('x'));
  writeFileSync(path, Buffer.concat([encodeHeader(ID), w.take()]));
  assert.throws(() => readStateFile(path, ID), /garbled \(target 3/);
  w.set(0, Buffer.alloc(5000, 0x61), rec(FILE));
  writeFileSync(path, Buffer.concat([encodeHeader(ID), w.take()]));
  assert.throws(() => readStateFile(path, ID), /garbled \(bad length/);
});

test('identity: display-only options do not count, what is transferred does; the default path is keyed by source and targets', () => {
  const a = stateIdentity('/s', ['t'], DEFAULT_TRANSFER, undefined);
  assert.equal(stateIdentity('/s', ['t'], { ...DEFAULT_TRANSFER, verbose: 2, itemize: true }, undefined), a);
  assert.not.equal(stateIdentity('/s', ['t'], { ...DEFAULT_TRANSFER, checksum: true }, undefined).transfer, a.transfer);
  const env = { XDG_STATE_HOME: '/x' };
  assert.match(defaultStatePath('/srv/www/', ['t'], env), /^\/x\/lsyncd\/www-[0-9a-f]{16}\.state$/);
  assert.not.equal(defaultStatePath('/srv/www/', ['t'], env), defaultStatePath('/srv/www/', ['u'], env));
});

test('startup comparison: new (a new directory once), changed, attributes, deleted (topmost only, and only with delete), begun pushes', () => {
  const s = sample();
  const scanned = [
    entry('.', DIR),
    entry('a', DIR),
    entry('a/x', FILE, 11), // size changed
    entry('a/b', DIR, 0, { mode: 0o040700 }), // mode changed
    entry('a/b/y', FILE, 20, { mtime: -5, mtimeNsec: 999_999_999, ino: 2 ** 40 }),
    entry('n', DIR), // new directory: once, with its subtree
    entry('n/1', FILE, 1),
    entry('n/d', DIR),
    entry('n/d/2', FILE, 1),
    entry('l', LINK, 1, { symlink: Buffer.from('b') }), // symlink target changed
  ];
  const changes = startupChanges(s, scanned, true);
  assert.equal(changes, [
    ['a/x', { kind: 'modify', isDir: false }],
    ['a/b', { kind: 'modify', isDir: true }],
    ['n', { kind: 'rescan', isDir: true }],
    ['l', { kind: 'modify', isDir: false }],
    ['f\udcff\n', { kind: 'delete', isDir: false }],
    ['a/b', { kind: 'rescan', isDir: true }], // begun, never done
  ]);
  const noDelete = startupChanges(s, scanned, false);
  assert.not.ok(noDelete.some(([, e]) => e.kind === 'delete'));
  // Unchanged: nothing but the begun push.
  const same = startupChanges(s, [...s.entries()].map(([p, r]) => entry(p === '' ? '.' : Buffer.from(p, 'latin1'), r.mode, r.size, { mtime: r.mtime, mtimeNsec: r.nsec, ino: r.ino, ...(r.symlink && { symlink: r.symlink }) })), true);
  assert.equal(same, [['a/b', { kind: 'rescan', isDir: true }]]);
});

test('pushed records: a content directory forgets its old subtree, a mode-0 entry its path, the roots\' paths are done', () => {
  const path = join(dir, 'pushed');
  writeFileSync(path, encodeSnapshot(ID, [sample()]));
  const entries = [entry('.', DIR, 0, { contentDir: false }), entry('a', DIR, 0, { contentDir: false }), entry('a/b', DIR), entry('a/b/new', FILE, 1), { ...entry('l', 0), mode: 0 }];
  appendFileSync(path, pushedRecords(0, { root: '', paths: ['a/b', 'l'] }, entries));
  const s = readStateFile(path, ID).targets[0]!;
  assert.is(s.get('a/b/y'), undefined);
  assert.ok(s.get('a/b/new'));
  assert.ok(s.get('a/x'), 'a directory listed without its contents keeps them');
  assert.is(s.get('l'), undefined);
  assert.is(s.unsure.size, 0);
  // A subtree push names its entries from the subtree.
  appendFileSync(path, pushedRecords(0, { root: 'a/b', paths: [] }, [entry('.', DIR), entry('z', FILE, 2)]));
  const t = readStateFile(path, ID).targets[0]!;
  assert.is(t.get('a/b/new'), undefined);
  assert.is(t.get('a/b/z')?.size, 2);
});

test('the journal: appended per batch, compacted to a snapshot that says the same', () => {
  const path = join(dir, 'sub', 'journal.state');
  const logs: string[] = [];
  const { journal, loaded, reason } = StateJournal.open(path, ID, (_l, m) => logs.push(m), true);
  assert.is(loaded, undefined);
  assert.is(reason, NO_STATE_YET);
  const r = journal!.recorder(0);
  r.begun(new Map([['', { kind: 'rescan', isDir: true }]]));
  r.pushed({ root: '', paths: [''] }, [entry('.', DIR), entry('a', DIR), entry('a/x', FILE, 3)], true);
  r.begun(new Map([['a/x', { kind: 'delete', isDir: false }]]));
  const before = dump(readStateFile(path, ID).targets[0]!);
  assert.match(before, '"unsure":[["a/x"');
  journal!.close();
  assert.is(dump(readStateFile(path, ID).targets[0]!), before);
  assert.ok(readFileSync(path).length < 200, 'compacted');
  const again = StateJournal.open(path, ID, () => {}, true);
  assert.is(again.reason, undefined);
  assert.is(dump(again.loaded![0]!), before);
  again.journal!.close();
});

test.run();
