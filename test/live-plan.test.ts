// The live mirror's planner (src/live/plan.ts): collapsing per path, rescans, overflow, and the
// push roots a batch becomes. Pure: no daemon, no watcher.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PendingSet, combine, pushRoots, commonAncestor, type PendingEntry } from '../src/live/plan.js';
import { subtreeSafe } from '../src/live/mirror.js';
import { FilterList } from '../protocol/filter.js';
import type { WatchEvent } from '../src/watcher/index.js';

const f = (kind: PendingEntry['kind']): PendingEntry => ({ kind, isDir: false });
const ev = (type: WatchEvent['type'], path: string, isDir = false, from?: string): WatchEvent => ({ type, path, isDir, ...(from !== undefined && { from }) });

test('combine: the collapse table', () => {
  assert.is(combine(f('create'), f('modify')).kind, 'create');
  assert.is(combine(f('create'), f('attrib')).kind, 'create');
  assert.is(combine(f('create'), f('delete')).kind, 'delete'); // a create may have replaced a mirrored file
  assert.is(combine(f('modify'), f('attrib')).kind, 'modify');
  assert.is(combine(f('attrib'), f('modify')).kind, 'modify');
  assert.is(combine(f('attrib'), f('attrib')).kind, 'attrib');
  assert.is(combine(f('delete'), f('create')).kind, 'create');
  assert.is(combine(f('delete'), f('modify')).kind, 'create');
  assert.is(combine(f('modify'), f('delete')).kind, 'delete');
  assert.is(combine(f('rescan'), f('delete')).kind, 'rescan');
  assert.is(combine(f('modify'), f('rescan')).kind, 'rescan');
});

test('PendingSet: events collapse per path; a move is delete + create', () => {
  const p = new PendingSet();
  p.addEvents([ev('create', 'a'), ev('modify', 'a'), ev('attrib', 'b'), ev('move', 'd/new', true, 'old')]);
  p.addEvents([ev('modify', 'b'), ev('delete', 'a')]);
  assert.equal(
    [...p.snapshot()],
    [
      ['a', { kind: 'delete', isDir: false }],
      ['b', { kind: 'modify', isDir: false }],
      ['old', { kind: 'delete', isDir: true }],
      ['d/new', { kind: 'create', isDir: true }],
    ],
  );
});

test('PendingSet: a rescan absorbs its subtree; later events below it are covered', () => {
  const p = new PendingSet();
  p.addEvents([ev('create', 'x/1'), ev('create', 'x/y/2'), ev('create', 'xx'), ev('rescan', 'x', true)]);
  p.addEvents([ev('modify', 'x/y/3')]);
  assert.equal([...p.snapshot().keys()], ['xx', 'x']);
  p.addEvents([ev('rescan', '', true)]);
  assert.equal([...p.snapshot()], [['', { kind: 'rescan', isDir: true }]]);
  assert.ok(p.fullResync);
});

test('PendingSet: past maxPaths it becomes one full resync', () => {
  const p = new PendingSet({ maxPaths: 10 });
  for (let i = 0; i < 11; i++) p.add(`f${i}`, f('create'));
  assert.ok(p.fullResync);
  assert.is(p.size, 1);
});

test('PendingSet: restore puts failed entries back as older than newer events', () => {
  const p = new PendingSet();
  p.add('a', f('create'));
  p.add('b', f('modify'));
  const taken = p.take();
  assert.is(p.size, 0);
  p.add('a', f('delete')); // arrived while the batch ran
  p.restore(taken);
  assert.equal(p.snapshot().get('a'), f('delete'));
  assert.equal(p.snapshot().get('b'), f('modify'));
});

const dirs = new Set(['', 'a', 'a/b', 'a/b/c', 'd', 'e']);
const isLocalDir = (rel: string) => dirs.has(rel);
const roots = (entries: Array<[string, PendingEntry['kind']]>, options = {}) =>
  pushRoots(new Map(entries.map(([p, k]) => [p, f(k)])), { isLocalDir, ...options });

test('pushRoots: parents, deduplicated to the outermost; rescan roots at the path itself', () => {
  assert.equal(roots([['a/b/f', 'modify']]), [{ root: 'a/b', paths: ['a/b/f'] }]);
  assert.equal(roots([['top', 'create']]), [{ root: '', paths: ['top'] }]);
  assert.equal(roots([['a/b/c/f', 'modify'], ['a/g', 'delete'], ['d/h', 'create']]), [
    { root: 'a', paths: ['a/b/c/f', 'a/g'] },
    { root: 'd', paths: ['d/h'] },
  ]);
  assert.equal(roots([['a/b', 'rescan']]), [{ root: 'a/b', paths: ['a/b'] }]);
  // A parent that is gone (or no longer a directory) is replaced by its nearest existing ancestor.
  assert.equal(roots([['a/gone/deeper/f', 'delete']]), [{ root: 'a', paths: ['a/gone/deeper/f'] }]);
  // Non-UTF-8 (escaped) directory names: pushed from above them.
  assert.equal(roots([['a/\udcff/f', 'modify']]), [{ root: 'a', paths: ['a/\udcff/f'] }]);
});

test('pushRoots: escalation, maxRoots, and no subtrees', () => {
  assert.equal(roots([['a/b/c/f', 'modify']], { escalate: 2 }), [{ root: 'a', paths: ['a/b/c/f'] }]);
  assert.equal(roots([['a/b/f', 'modify'], ['d/f', 'modify'], ['e/f', 'modify']], { maxRoots: 2 }), [{ root: '', paths: ['a/b/f', 'd/f', 'e/f'] }]);
  assert.equal(roots([['a/b/f', 'modify']], { subtrees: false }), [{ root: '', paths: ['a/b/f'] }]);
  assert.is(commonAncestor(['a/b/c', 'a/b/d', 'a/b']), 'a/b');
  assert.is(commonAncestor(['a/bc', 'a/b']), 'a');
});

test('subtreeSafe: only rules that match a name by itself allow subtree pushes', () => {
  assert.ok(subtreeSafe(undefined));
  assert.ok(subtreeSafe(new FilterList().addExclude('*.tmp').addExclude('cache/').addInclude('keep.o')));
  assert.not.ok(subtreeSafe(new FilterList().addExclude('/build')));
  assert.not.ok(subtreeSafe(new FilterList().addExclude('src/gen')));
  assert.not.ok(subtreeSafe(new FilterList().addExclude('**.bak')));
  assert.not.ok(subtreeSafe(new FilterList().addFilter(': .rsync-filter')));
});

test.run();
