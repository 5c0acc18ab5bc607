// Pure unit tests: the inotify record decoder and the byte-exact path encoding.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IN, InotifyCursor, decodeAll, encodeRecords, EVENT_HEADER } from '../src/watcher/decode.js';
import { pathFromBytes, pathToBytes, pathFromLatin1, fsPath, hasEscapes } from '../src/watcher/paths.js';
import { byteFilter } from '../src/watcher/index.js';

test('decodes a synthetic batch with and without names', () => {
  const buf = encodeRecords([
    { wd: 1, mask: IN.CREATE, name: 'a.txt' },
    { wd: 1, mask: IN.CREATE | IN.ISDIR, name: 'sub' },
    { wd: 2, mask: IN.ATTRIB }, // about the watched directory itself: no name
    { wd: 1, mask: IN.MOVED_FROM, cookie: 77, name: 'x' },
    { wd: 3, mask: IN.MOVED_TO, cookie: 77, name: 'a-name-longer-than-sixteen-bytes' },
    { wd: -1, mask: IN.Q_OVERFLOW },
  ]);
  const recs = decodeAll(buf);
  assert.equal(recs.length, 6);
  assert.equal(recs[0], { wd: 1, mask: IN.CREATE, cookie: 0, name: 'a.txt' });
  assert.is(recs[1]!.mask & IN.ISDIR, IN.ISDIR);
  assert.is(recs[2]!.name, '');
  assert.is(recs[3]!.cookie, 77);
  assert.is(recs[4]!.name, 'a-name-longer-than-sixteen-bytes');
  assert.is(recs[5]!.wd, -1);
  assert.is(recs[5]!.mask, IN.Q_OVERFLOW);
});

test('names are NUL-padded to 16 bytes like the kernel does', () => {
  const buf = encodeRecords([{ wd: 5, mask: IN.DELETE, name: 'abc' }]);
  assert.is(buf.length, EVENT_HEADER + 16);
  const buf2 = encodeRecords([{ wd: 5, mask: IN.DELETE, name: 'x'.repeat(16) }]);
  assert.is(buf2.length, EVENT_HEADER + 32, 'a 16-byte name needs room for its NUL');
  assert.is(decodeAll(buf2)[0]!.name, 'x'.repeat(16));
});

test('cursor stops at a truncated record and exposes fields without allocating records', () => {
  const full = encodeRecords([
    { wd: 1, mask: IN.CLOSE_WRITE, name: 'f' },
    { wd: 1, mask: IN.CLOSE_WRITE, name: 'g' },
  ]);
  const c = new InotifyCursor(full.subarray(0, full.length - 4));
  assert.ok(c.next());
  assert.is(c.wd, 1);
  assert.is(c.mask, IN.CLOSE_WRITE);
  assert.ok(c.hasName());
  assert.is(c.name(), 'f');
  assert.not.ok(c.next(), 'the cut second record is not decoded');
  assert.equal(decodeAll(Buffer.alloc(0)), []);
});

test('mask constants match linux/inotify.h', () => {
  assert.is(IN.CLOSE_WRITE, 0x00000008);
  assert.is(IN.MOVED_FROM, 0x00000040);
  assert.is(IN.Q_OVERFLOW, 0x00004000);
  assert.is(IN.IGNORED, 0x00008000);
  assert.is(IN.ONLYDIR, 0x01000000);
  assert.is(IN.EXCL_UNLINK, 0x04000000);
  assert.is(IN.ISDIR, 0x40000000);
});

test('non-UTF-8 names round-trip byte-exact (surrogateescape)', () => {
  const raw = Buffer.from([0x66, 0xff, 0x2d, 0xc3, 0xa9, 0x2d, 0xe2, 0x82, 0x2d, 0xed, 0xa0, 0x80]); // f\xff-é-<cut €>-<encoded surrogate>
  const s = pathFromBytes(raw);
  assert.ok(hasEscapes(s));
  assert.ok(s.startsWith('f\udcff-é-'));
  assert.equal(pathToBytes(s), raw);
  const rec = decodeAll(encodeRecords([{ wd: 1, mask: IN.CREATE, name: raw }]))[0]!;
  assert.equal(pathToBytes(rec.name), raw);
  assert.ok(Buffer.isBuffer(fsPath('/tmp/' + s)));
  assert.is(fsPath('/tmp/é'), '/tmp/é');
});

test('valid UTF-8 and ASCII decode as ordinary strings', () => {
  for (const name of ['plain', 'été', '日本語', 'emoji-😀', '']) {
    const b = Buffer.from(name, 'utf8');
    assert.is(pathFromBytes(b), name);
    assert.equal(pathToBytes(name), b);
    assert.is(pathFromLatin1(b.toString('latin1')), name);
  }
  // every single byte value survives
  for (let i = 1; i < 256; i++) {
    const b = Buffer.from([0x61, i, 0x62]);
    assert.equal(pathToBytes(pathFromBytes(b)), b, `byte ${i}`);
  }
});

test('byteFilter hands non-UTF-8 paths to a byte matcher as bytes', () => {
  const seen: (string | Uint8Array)[] = [];
  const f = byteFilter({ isExcluded: (p) => (seen.push(p), Buffer.isBuffer(p) && p[p.length - 1] === 0xff) });
  assert.ok(f.isExcluded(pathFromBytes(Buffer.from([0x61, 0x2f, 0xff])), false));
  assert.not.ok(f.isExcluded('a/é', false));
  assert.ok(Buffer.isBuffer(seen[0]));
  assert.is(seen[1], 'a/é');
});

test.run();
