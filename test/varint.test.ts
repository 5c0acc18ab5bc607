// protocol/varint.ts: golden encodings (values seen in real captures, see fixtures/captures/*/decoded.txt),
// round trips over edge values, and hostile prefixes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeVarint, decodeVarlong, encodeLongint, encodeNdx, encodeVar, newNdxState, varExtraBytes } from '../protocol/varint.js';
import { ProtocolError } from '../protocol/errors.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('varint golden bytes', () => {
  assert.is(hex(encodeVar(0, 1, 4)), '00');
  assert.is(hex(encodeVar(0x98, 1, 4)), '8098');
  assert.is(hex(encodeVar(0x1fe, 1, 4)), '81fe'); // compat flags of push_initial_noinc
  assert.is(hex(encodeVar(0x1ff, 1, 4)), '81ff'); // compat flags of push_initial
  assert.is(hex(encodeVar(-1, 1, 4)), 'f0ffffffff');
  assert.is(decodeVarint(Buffer.from('81fe', 'hex'), 0), 0x1fe);
  assert.is(decodeVarint(Buffer.from('f0ffffffff', 'hex'), 0), -1);
});

test('varlong golden bytes (sizes min 3, times min 4)', () => {
  assert.is(hex(encodeVar(4096, 3, 8)), '000010');
  assert.is(hex(encodeVar(3025, 3, 8)), '00d10b');
  assert.is(hex(encodeVar(258, 3, 8)), '000201');
  assert.is(hex(encodeVar(1704164645, 4, 8)), '65257d93');
  assert.is(hex(encodeVar(3_000_000_000, 3, 8)), 'c0005ed0b2');
  assert.is(decodeVarlong(Buffer.from('c0005ed0b2', 'hex'), 0, 3), 3_000_000_000);
  assert.is(decodeVarlong(Buffer.from('65257d93', 'hex'), 0, 4), 1704164645);
});

test('varint round trip over edge values', () => {
  const values = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x3fff, 0x4000, 0xffff, 0x1fffff, 0x200000, 0xfffffff, 0x10000000, 0x7fffffff, -1, -2, -0x80000000];
  for (const v of values) {
    const bytes = encodeVar(v, 1, 4);
    assert.is(bytes.length, 1 + varExtraBytes(bytes[0]!), `length of ${v}`);
    assert.is(decodeVarint(bytes, 0), v, `value ${v}`);
  }
});

test('varlong round trip, min 3 and 4, up to 2^53', () => {
  const values = [0, 1, 0xff, 0xffff, 0xffffff, 0x1000000, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 5 * 2 ** 30, 2 ** 40 + 7, 2 ** 48 - 1, Number.MAX_SAFE_INTEGER];
  for (const min of [3, 4]) {
    for (const v of values) {
      const bytes = encodeVar(v, min, 8);
      assert.is(bytes.length, min + varExtraBytes(bytes[0]!), `length of ${v}/${min}`);
      assert.is(decodeVarlong(bytes, 0, min), v, `value ${v}/${min}`);
    }
  }
});

test('varlong: the nine-byte form is a signed int64 (pre-1970 mtimes), as read_varlong returns', () => {
  // What rsync's write_varlong(min 4) puts out for -1 and for 1969-12-31 00:00:00 (-86400): prefix
  // 0xf8 then the eight two's-complement bytes.
  const nine = (prefix: number, value: bigint) => {
    const b = Buffer.alloc(9);
    b[0] = prefix;
    b.writeBigInt64LE(value, 1);
    return b;
  };
  assert.is(decodeVarlong(nine(0xf8, -1n), 0, 4), -1);
  assert.is(decodeVarlong(nine(0xf8, -86400n), 0, 4), -86400);
  assert.is(decodeVarlong(nine(0xf8, -(2n ** 40n)), 0, 4), -(2 ** 40));
  // min 3 (sizes): six extra bytes make the nine-byte form too; the prefix's low bits are dropped.
  assert.is(decodeVarlong(nine(0xfc, 5n), 0, 3), 5);
  assert.is(decodeVarlong(nine(0xff, 5n), 0, 3), 5);
  // beyond 2^53 either way is refused
  assert.throws(() => decodeVarlong(nine(0xf8, -(2n ** 60n)), 0, 4), (e: unknown) => e instanceof ProtocolError);
  assert.throws(() => decodeVarlong(nine(0xf8, 2n ** 60n), 0, 4), (e: unknown) => e instanceof ProtocolError);
});

test('hostile varint/varlong prefixes are refused', () => {
  assert.throws(() => decodeVarint(Buffer.from('f8ffffffffff', 'hex'), 0), (e: unknown) => e instanceof ProtocolError);
  // min 4 + 6 extra bytes = 10 > 9
  assert.throws(() => decodeVarlong(Buffer.from('fcffffffffffffffffff', 'hex'), 0, 4), (e: unknown) => e instanceof ProtocolError);
  // a value beyond 2^53 is refused rather than silently rounded
  assert.throws(() => decodeVarlong(Buffer.from('fc00ffffffffffff', 'hex'), 0, 2), (e: unknown) => e instanceof ProtocolError);
});

test('longint: int32 when it fits, else -1 and an int64', () => {
  assert.is(hex(encodeLongint(3025)), 'd10b0000');
  assert.is(hex(encodeLongint(5 * 2 ** 30)), 'ffffffff0000004001000000');
});

test('ndx golden bytes (push_ndx_jump, push_delete)', () => {
  const s = newNdxState();
  assert.is(hex(encodeNdx(2, s)), '03');
  assert.is(hex(encodeNdx(521, s)), 'fe0207');
  assert.is(hex(encodeNdx(-1, s)), '00');
  const t = newNdxState();
  assert.is(hex(encodeNdx(-3, t)), 'ff02'); // NDX_DEL_STATS, first negative
  const u = newNdxState();
  assert.is(['01', '01', '01', '01', '01'].join(), [0, 1, 2, 3, 4].map((n) => hex(encodeNdx(n, u))).join());
  // a backwards jump and a jump beyond 32767 use the 4-byte absolute form
  const v = newNdxState();
  encodeNdx(100000, v);
  assert.is(hex(encodeNdx(5, v)), 'fe80050000');
});

test.run();
