// protocol/daemon.ts: greetings, protocol negotiation, auth digest choice and responses (checked
// against the real auth_push / auth_fail captures), module-line replies, bounds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  authResponse,
  chooseAuthDigest,
  exchangeGreetings,
  formatGreeting,
  negotiateProtocol,
  parseGreeting,
  requestModule,
  MAX_INFO_LINES,
} from '../protocol/daemon.js';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { DaemonRefusalError, NotADaemonError, ProtocolError } from '../protocol/errors.js';
import { loadCapture, memorySink, piecesSource } from './helpers/capture.js';

test('our greeting: protocol 32 with the digest list; below 30 without, as old clients greeted', () => {
  assert.is(formatGreeting(32), '@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4');
  assert.is(formatGreeting(30), '@RSYNCD: 30.0 sha512 sha256 sha1 md5 md4');
  assert.is(formatGreeting(29), '@RSYNCD: 29.0');
  // Same bytes as rsync 3.5.0's own client greeting (capture list/c2s.bin).
  assert.is(loadCapture('list').c2s.subarray(0, 41).toString(), formatGreeting(32) + '\n');
});

test('parsing daemon greetings of every era', () => {
  assert.equal(parseGreeting('@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4'), {
    protocol: 32,
    subprotocol: 0,
    digests: ['sha512', 'sha256', 'sha1', 'md5', 'md4'],
  });
  assert.equal(parseGreeting('@RSYNCD: 31.0'), { protocol: 31, subprotocol: 0, digests: null });
  assert.equal(parseGreeting('@RSYNCD: 29'), { protocol: 29, subprotocol: 0, digests: null });
  assert.throws(() => parseGreeting('HTTP/1.1 400 Bad Request'), (e: unknown) => e instanceof NotADaemonError);
  assert.throws(() => parseGreeting('@RSYNCD: 30'), (e: unknown) => e instanceof ProtocolError);
  assert.throws(() => parseGreeting('@RSYNCD: 32.0'), (e: unknown) => e instanceof ProtocolError);
});

test('protocol negotiation: the lower side wins; pre-release subprotocols step down; too old is refused', () => {
  assert.is(negotiateProtocol(32, parseGreeting('@RSYNCD: 31.0')), 31);
  assert.is(negotiateProtocol(32, parseGreeting('@RSYNCD: 33.0 md5')), 32);
  assert.is(negotiateProtocol(29, parseGreeting('@RSYNCD: 32.0 md5')), 29);
  assert.is(negotiateProtocol(32, parseGreeting('@RSYNCD: 31.1')), 30);
  assert.is(negotiateProtocol(32, parseGreeting('@RSYNCD: 32.1 md5')), 31);
  assert.throws(() => negotiateProtocol(32, parseGreeting('@RSYNCD: 26')), (e: unknown) => (e as ProtocolError).code === 'ERR_RSYNC_PROTOCOL_VERSION');
});

test('auth digest choice', () => {
  assert.is(chooseAuthDigest(32, ['sha512', 'sha256', 'sha1', 'md5', 'md4'], true), 'sha512');
  assert.is(chooseAuthDigest(31, ['md5', 'md4'], true), 'md5');
  assert.is(chooseAuthDigest(31, null, true), 'md5');
  assert.is(chooseAuthDigest(29, null, true), 'md4old');
  // We greeted without a list (protocol < 30): the daemon then uses the seeded MD4 too.
  assert.is(chooseAuthDigest(29, ['sha512', 'md5'], false), 'md4old');
  assert.throws(() => chooseAuthDigest(31, ['foo'], true), (e: unknown) => e instanceof ProtocolError);
});

test('sha512 response equals rsync 3.5.0 client bytes (auth_push, auth_fail captures)', async () => {
  for (const [name, password] of [
    ['auth_push', 's3cret'],
    ['auth_fail', 'wrong'],
  ] as const) {
    const cap = loadCapture(name);
    const challenge = /@RSYNCD: AUTHREQD (\S+)\n/.exec(cap.s2c.toString('latin1'))![1]!;
    const response = /\nalice (\S+)\n/.exec(cap.c2s.toString('latin1'))![1]!;
    assert.is(await authResponse('sha512', Buffer.from(password), challenge), response);
  }
});

test('digest inputs for each algorithm (known-answer values)', async () => {
  const pw = Buffer.from('pw');
  // md5: computed independently with Python's hashlib over 'pw' ++ 'challenge'.
  assert.is(await authResponse('md5', pw, 'challenge'), 'uAuUAKmXTdoGVBiwi+d0ig');
  // md4: RFC 1320's test vector MD4("abc") = a448017aaf21d8525fc10ae87aa6729d, as password 'a' ++ challenge 'bc'.
  assert.is(await authResponse('md4', Buffer.from('a'), 'bc'), 'pEgBeq8h2FJfwQroeqZynQ');
  // The seeded MD4 puts four zero bytes first: a different answer from plain md4.
  assert.not.equal(await authResponse('md4old', pw, 'challenge'), await authResponse('md4', pw, 'challenge'));
  assert.is((await authResponse('sha1', pw, 'challenge')).length, 27);
  assert.is((await authResponse('sha256', pw, 'challenge')).length, 43);
  assert.is((await authResponse('sha512', pw, 'challenge')).length, 86);
});

async function replayLines(daemonBytes: string, module = 'm') {
  const reader = new ByteReader(piecesSource(Buffer.from(daemonBytes, 'latin1')));
  const writer = new ByteWriter(memorySink());
  const hello = await exchangeGreetings(reader, writer);
  const lines: string[] = [];
  const outcome = await requestModule(reader, writer, hello, { module, user: 'u', password: async () => Buffer.from('p'), onLine: (l) => lines.push(l.toString()) });
  return { outcome, lines };
}

test('module replies: OK, EXIT, @ERROR verbatim, endless MOTD bounded', async () => {
  assert.equal(await replayLines('@RSYNCD: 31.0\nhello\n\n@RSYNCD: OK\n'), { outcome: 'ok', lines: ['hello', ''] });
  assert.equal(await replayLines('@RSYNCD: 31.0\nmod1           \tc\n@RSYNCD: EXIT\n', ''), { outcome: 'exit', lines: ['mod1           \tc'] });
  await replayLines("@RSYNCD: 31.0\n@ERROR: Unknown module 'm'\n").then(
    () => assert.unreachable(),
    (e) => {
      assert.instance(e, DaemonRefusalError);
      assert.is((e as DaemonRefusalError).daemonText, "@ERROR: Unknown module 'm'");
      assert.is((e as DaemonRefusalError).exitCode, 5);
    },
  );
  const endless = '@RSYNCD: 31.0\n' + 'motd\n'.repeat(MAX_INFO_LINES + 1);
  await replayLines(endless).then(() => assert.unreachable(), (e) => assert.instance(e, ProtocolError));
  await replayLines('@RSYNCD: 31.0\nhello\n').then(() => assert.unreachable(), (e) => assert.instance(e, NotADaemonError));
  await replayLines('@RSYNCD: 31.0\n@RSYNCD: AUTHREQD not*base64\n').then(() => assert.unreachable(), (e) => assert.instance(e, ProtocolError));
});

test.run();
