// Pure unit tests: move pairing across synthetic batches, and batch collapsing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MovePairer, pairMoves, type HeldFrom, type PathOp } from '../src/watcher/moves.js';
import { collapse } from '../src/watcher/collapse.js';
import { diffSnapshots, type Entry, type Snapshot } from '../src/watcher/snapshot.js';
import type { WatchEvent } from '../src/watcher/types.js';

const from = (cookie: number, path: string, isDir = false): PathOp => ({ kind: 'from', cookie, path, isDir });
const to = (cookie: number, path: string, isDir = false): PathOp => ({ kind: 'to', cookie, path, isDir });
const op = (kind: 'create' | 'modify' | 'attrib' | 'delete', path: string, isDir = false): PathOp => ({ kind, path, isDir });

test('a from/to pair in one batch becomes one move', () => {
  const p = new MovePairer<HeldFrom>();
  const out = pairMoves([op('create', 'x'), from(9, 'a'), to(9, 'b/a'), op('modify', 'y')], p);
  assert.equal(out, [
    { type: 'create', path: 'x', isDir: false },
    { type: 'move', from: 'a', path: 'b/a', isDir: false },
    { type: 'modify', path: 'y', isDir: false },
  ]);
  assert.is(p.size, 0);
});

test('directories pair too, and unrelated records between the halves do not break a pair', () => {
  const p = new MovePairer<HeldFrom>();
  const out = pairMoves([from(1, 'd', true), op('attrib', 'z'), to(1, 'e', true)], p);
  assert.equal(out, [
    { type: 'attrib', path: 'z', isDir: false },
    { type: 'move', from: 'd', path: 'e', isDir: true },
  ]);
});

test('a from at the end of a batch pairs with a to at the start of the next one', () => {
  const p = new MovePairer<HeldFrom>();
  assert.equal(pairMoves([op('create', 'x'), from(5, 'old')], p), [{ type: 'create', path: 'x', isDir: false }]);
  assert.is(p.size, 1);
  assert.ok(p.hasStale());
  assert.equal(pairMoves([to(5, 'new'), op('create', 'y')], p), [
    { type: 'move', from: 'old', path: 'new', isDir: false },
    { type: 'create', path: 'y', isDir: false },
  ]);
  assert.is(p.size, 0);
});

test('a held from becomes a delete before the next batch\'s first unrelated record', () => {
  const p = new MovePairer<HeldFrom>();
  pairMoves([from(5, 'a')], p);
  // mv a /elsewhere; touch a  -> the delete must precede the create
  assert.equal(pairMoves([op('create', 'a'), to(6, 'q')], p), [
    { type: 'delete', path: 'a', isDir: false },
    { type: 'create', path: 'a', isDir: false },
    { type: 'create', path: 'q', isDir: false },
  ]);
  assert.is(p.size, 0);
});

test('a held from whose name is reused in the same batch becomes a delete at once', () => {
  const p = new MovePairer<HeldFrom>();
  // mv a /outside; touch a; mv b a
  assert.equal(pairMoves([from(1, 'a'), op('create', 'a'), op('delete', 'a'), from(2, 'b'), to(2, 'a')], p), [
    { type: 'delete', path: 'a', isDir: false },
    { type: 'create', path: 'a', isDir: false },
    { type: 'delete', path: 'a', isDir: false },
    { type: 'move', from: 'b', path: 'a', isDir: false },
  ]);
  // mv a /outside; mv b a  (the second rename's halves are adjacent)
  assert.equal(pairMoves([from(3, 'a'), from(4, 'b'), to(4, 'a')], p), [
    { type: 'delete', path: 'a', isDir: false },
    { type: 'move', from: 'b', path: 'a', isDir: false },
  ]);
  assert.is(p.size, 0);
});

test('an unpaired to becomes a create; takeAll drains (timer expiry)', () => {
  const p = new MovePairer<HeldFrom>();
  assert.equal(pairMoves([to(3, 'in', true)], p), [{ type: 'create', path: 'in', isDir: true }]);
  pairMoves([from(4, 'out', true), from(8, 'out2')], p);
  assert.equal(p.takeAll().map((h) => h.path).sort(), ['out', 'out2']);
  assert.not.ok(p.hasStale());
});

test('two interleaved renames pair by cookie, not by position', () => {
  const p = new MovePairer<HeldFrom>();
  const out = pairMoves([from(1, 'a'), from(2, 'b'), to(2, 'B'), to(1, 'A')], p);
  assert.equal(out, [
    { type: 'move', from: 'b', path: 'B', isDir: false },
    { type: 'move', from: 'a', path: 'A', isDir: false },
  ]);
});

const ev = (type: WatchEvent['type'], path: string, isDir = false): WatchEvent => ({ type, path, isDir });

test('collapse: create then modify/attrib is one create; create then delete is nothing', () => {
  assert.equal(collapse([ev('create', 'f'), ev('modify', 'f'), ev('attrib', 'f')]), [ev('create', 'f')]);
  assert.equal(collapse([ev('create', 'f'), ev('modify', 'f'), ev('delete', 'f')]), []);
  assert.equal(collapse([ev('modify', 'g'), ev('modify', 'g'), ev('attrib', 'g')]), [ev('modify', 'g')]);
  assert.equal(collapse([ev('attrib', 'g'), ev('attrib', 'g')]), [ev('attrib', 'g')]);
});

test('collapse: delete then create is a create (replace), with the final type', () => {
  assert.equal(collapse([ev('delete', 'p', true), ev('create', 'p', false)]), [ev('create', 'p', false)]);
  assert.equal(collapse([ev('modify', 'p'), ev('delete', 'p')]), [ev('delete', 'p')]);
  assert.equal(collapse([ev('delete', 'p'), ev('create', 'p'), ev('delete', 'p')]), [ev('delete', 'p')]);
});

test('collapse keeps first-appearance order and does not merge across moves', () => {
  const mv: WatchEvent = { type: 'move', from: 'a', path: 'b', isDir: false };
  assert.equal(collapse([ev('create', 'd', true), ev('create', 'd/f'), ev('modify', 'd/f'), ev('attrib', 'd', true)]), [
    ev('create', 'd', true),
    ev('create', 'd/f'),
  ]);
  assert.equal(collapse([ev('modify', 'a'), mv, ev('modify', 'b'), ev('modify', 'b')]), [ev('modify', 'a'), mv, ev('modify', 'b')]);
  const rescan: WatchEvent = { type: 'rescan', path: '', isDir: true };
  assert.equal(collapse([rescan, rescan]), [rescan, rescan]);
});

const e = (over: Partial<Entry> = {}): Entry => ({ isDir: false, mode: 0o100644, size: 1, mtimeMs: 1, ino: 1, uid: 0, gid: 0, ...over });

test('snapshot diff: create, modify, attrib, replace, and one delete for a removed subtree', () => {
  const prev: Snapshot = new Map([
    ['d', e({ isDir: true, mode: 0o40755, ino: 10 })],
    ['d/x', e({ ino: 11 })],
    ['f', e({ ino: 2 })],
    ['g', e({ ino: 3 })],
    ['h', e({ ino: 4 })],
  ]);
  const next: Snapshot = new Map([
    ['f', e({ ino: 2, size: 5 })],
    ['g', e({ ino: 3, mode: 0o100600 })],
    ['h', e({ ino: 99 })],
    ['n', e({ ino: 5 })],
  ]);
  assert.equal(diffSnapshots(prev, next, 'pre'), [
    ev('delete', 'pre/d', true),
    ev('delete', 'pre/h'),
    ev('modify', 'pre/f'),
    ev('attrib', 'pre/g'),
    ev('create', 'pre/h'),
    ev('create', 'pre/n'),
  ]);
  assert.equal(diffSnapshots(next, next, ''), []);
});

test.run();
