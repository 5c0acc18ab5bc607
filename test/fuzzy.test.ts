// --fuzzy's choice on its own (protocol/fuzzy.ts): the exact size+mtime match first, rsync's
// weighted Levenshtein distance with the suffix counting ten times, the 25-unit cut-off, excluded
// files, the suffix rules. That the choice is rsync's own is shown against the real rsync in
// pull-options (the same literal and matched bytes from the daemon).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { filenameSuffix, findFuzzy, fuzzyDistance } from '../protocol/fuzzy.js';

test('find_fuzzy: a same size and mtime first, else the nearest name (suffix ten times), never an excluded or empty file', () => {
  const f = (name: string, size = 10, mtime = 1) => ({ name: Buffer.from(name), size, mtime });
  const file = f('report-2025.csv', 100, 50);
  const dir = [f('report-2024.txt', 100), f('report-2024.csv', 100), f('zzz.dat', 100), f('empty.csv', 0)];
  assert.is(findFuzzy(file, [dir])!.candidate.name.toString(), 'report-2024.csv');
  assert.is(findFuzzy(file, [[...dir, f('other.bin', 100, 50)]])!.candidate.name.toString(), 'other.bin', 'size and mtime win');
  // Excluded (being changed itself), the next nearest serves; another suffix weighs too much.
  assert.is(findFuzzy(file, [[...dir, f('report-2023.csv', 100)]], (_i, name) => name.toString() === 'report-2024.csv')!.candidate.name.toString(), 'report-2023.csv');
  assert.is(findFuzzy(file, [dir], (_i, name) => name.toString() === 'report-2024.csv'), null);
  assert.is(findFuzzy(file, [[f('completely-unrelated-name.x')]]), null, 'farther than 25 is no match');
  assert.is(findFuzzy(file, [null, [f('report-2024.csv')]])!.dirIndex, 1);
  assert.is(findFuzzy(file, [[f('report-2024.csv', 100, 52)]], undefined, 2)!.candidate.mtime, 52, '--modify-window counts for the exact match');
  // The distance: 0 for equal names, one unit plus the bytes' distance for one change.
  assert.is(fuzzyDistance(Buffer.from('abc'), Buffer.from('abc'), 25 << 16), 0);
  assert.is(fuzzyDistance(Buffer.from('abc'), Buffer.from('abd'), 25 << 16), (1 << 16) + 1);
  assert.is(fuzzyDistance(Buffer.from('a'), Buffer.from('abcdefghijklmnopqrstuvwxyz0123'), 25 << 16), 0xffff0001, 'past the limit by length alone');
  // Suffixes: the last significant one (.bak, .old, .orig, ~N~ looked past; leading dots are no suffix).
  for (const [name, suffix] of [['a.txt', '.txt'], ['x.tar.gz', '.gz'], ['notes.txt.bak', '.txt'], ['conf.orig', ''], ['.bashrc', ''], ['a.txt~', '.txt'], ['log.1', '.1'], ['plain', '']]) {
    assert.is(filenameSuffix(Buffer.from(name!)).toString(), suffix, name);
  }
});

test.run();
