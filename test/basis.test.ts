// Where the receiver finds a basis (protocol/basis.ts): the echoed FNAMECMP_* byte and xname back
// into a place, and what our options never asked for refused (a basis dir past the count, a fuzzy
// basis without --fuzzy, an xname that is a path, a partial or backup basis); the protocol < 29
// limits as rsync words them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { basisPlace, checkBasisProtocol, FNAMECMP_FNAME, FNAMECMP_FUZZY } from '../protocol/basis.js';

test('basisPlace: the receiver opens what the request named, and refuses what our options never asked for', () => {
  const name = Buffer.from('dir/file.txt');
  const opts = { altDest: { kind: 'copy' as const, count: 2 }, fuzzy: 2 };
  assert.equal(basisPlace(name, null, null, opts), { name });
  assert.equal(basisPlace(name, FNAMECMP_FNAME, null, opts), { name });
  assert.equal(basisPlace(name, 1, null, opts), { name, dir: 1 });
  assert.equal(basisPlace(name, FNAMECMP_FUZZY, Buffer.from('old.txt'), opts), { name: Buffer.from('dir/old.txt') });
  assert.equal(basisPlace(name, FNAMECMP_FUZZY + 2, Buffer.from('old.txt'), opts), { name: Buffer.from('dir/old.txt'), dir: 1 });
  const refused = (type: number, xname: string | null, o: object) => {
    try {
      basisPlace(name, type, xname === null ? null : Buffer.from(xname), o);
      return false;
    } catch (e) {
      return (e as { code?: string }).code === 'ERR_RSYNC_PROTOCOL';
    }
  };
  assert.ok(refused(2, null, opts), 'a basis dir past the count');
  assert.ok(refused(FNAMECMP_FUZZY, 'x', {}), 'fuzzy without --fuzzy');
  assert.ok(refused(FNAMECMP_FUZZY + 3, 'x', opts), 'a fuzzy dir past the count');
  assert.ok(refused(FNAMECMP_FUZZY + 1, 'x', { ...opts, fuzzy: 1 }), '-y never names a basis dir');
  for (const bad of ['../etc', 'a/b', '..', '.', '']) assert.ok(refused(FNAMECMP_FUZZY, bad, opts), `xname ${bad}`);
  assert.ok(refused(0x81, null, opts), 'a partial dir we never use');
});

test('checkBasisProtocol: below 29 no --fuzzy and one basis dir at most, in rsync\'s words', () => {
  const message = (options: object, protocol: number) => {
    try {
      checkBasisProtocol(options, protocol);
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  };
  assert.is(message({ fuzzy: 1 }, 28), '--fuzzy requires protocol 29 or higher (negotiated 28).');
  assert.is(message({ altDest: { kind: 'link', count: 2 } }, 27), 'Using more than one --link-dest option requires protocol 29 or higher (negotiated 27).');
  assert.is(message({ altDest: { kind: 'link', count: 1 } }, 27), null);
  assert.is(message({ fuzzy: 2, altDest: { kind: 'copy', count: 3 } }, 29), null);
});

test.run();
