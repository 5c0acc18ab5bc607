// src/serve/auth.ts: the daemon's side of authentication. checkAuth is fed the real rsync 3.5.0
// client's answers (the auth_push / auth_fail captures, and a live client at each protocol
// answering a challenge we make), and answers our own authResponse makes for every digest;
// `auth users` rules, @group, :ro/:rw/:deny, strict modes, and no password in any text.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { mkdtemp, writeFile, chmod, chown, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkAuth,
  makeChallenge,
  parseAuthUsers,
  parseAuthLine,
  formatChallengeLine,
  authFailedLine,
  type AuthOutcome,
} from '../src/serve/auth.js';
import { parseConfig, type ModuleConfig } from '../src/serve/config.js';
import {
  authResponse,
  chooseDaemonAuthDigest,
  formatGreeting,
  parseGreeting,
  AUTH_DIGESTS,
  PROTOCOL_VERSION,
  type AuthDigest,
} from '../protocol/daemon.js';
import { ProtocolError } from '../protocol/errors.js';
import { loadCapture } from './helpers/capture.js';

let dir = '';

/** A module whose secrets file holds `secrets`, written with `mode`. */
async function moduleWith(authUsers: string, secrets: string, mode = 0o600, extra = ''): Promise<ModuleConfig> {
  const file = join(dir, `secrets-${Math.random().toString(36).slice(2)}`);
  await writeFile(file, secrets);
  await chmod(file, mode);
  const c = parseConfig(`[secure]\npath = /m\nauth users = ${authUsers}\nsecrets file = ${file}\n${extra}\n`, {
    file: 't.conf',
    asRoot: false,
  });
  return c.modules[0]!;
}

async function answer(module: ModuleConfig, user: string, password: string, digest: AuthDigest = 'sha512', extra: object = {}) {
  const challenge = makeChallenge(digest);
  const response = await authResponse(digest, Buffer.from(password), challenge);
  return checkAuth(module, { user, response, challenge, digest, protocol: 32, host: 'h', addr: '192.0.2.1', ...extra });
}

/** No text in an outcome holds any of the passwords. */
function assertNoPassword(outcome: AuthOutcome, ...passwords: string[]): void {
  const text = JSON.stringify(outcome);
  for (const p of passwords) assert.not.ok(text.includes(p), `"${p}" appears in ${text}`);
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lsyncd-auth-'));
});
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('the challenge: the length and alphabet rsync 3.5.0 sends for each digest, never repeated', () => {
  // Lengths recorded from the real daemon (fixtures/captures/_daemon/auth-variants.txt, auth_push).
  const recorded: Record<AuthDigest, number> = { md4old: 22, md4: 22, md5: 22, sha1: 27, sha256: 43, sha512: 86 };
  const capture = /@RSYNCD: AUTHREQD (\S+)\n/.exec(loadCapture('auth_push').s2c.toString('latin1'))![1]!;
  assert.is(capture.length, recorded.sha512);
  for (const d of [...AUTH_DIGESTS, 'md4old'] as AuthDigest[]) {
    const c = makeChallenge(d);
    assert.is(c.length, recorded[d], d);
    assert.match(c, /^[A-Za-z0-9+/]+$/);
  }
  assert.is.not(makeChallenge('sha512'), makeChallenge('sha512'));
  assert.is(formatChallengeLine('abc'), '@RSYNCD: AUTHREQD abc');
});

test("the daemon's digest choice: our first that the client lists; md5 or seeded MD4 without a list", () => {
  assert.is(chooseDaemonAuthDigest(32, ['sha512', 'sha256', 'sha1', 'md5', 'md4']), 'sha512');
  assert.is(chooseDaemonAuthDigest(31, ['md4', 'md5']), 'md5');
  assert.is(chooseDaemonAuthDigest(31, ['md4']), 'md4');
  assert.is(chooseDaemonAuthDigest(30, null), 'md5');
  assert.is(chooseDaemonAuthDigest(29, null), 'md4old');
  try {
    chooseDaemonAuthDigest(31, ['foo']);
    assert.unreachable('no digest in common');
  } catch (e) {
    assert.instance(e, ProtocolError);
    assert.is((e as ProtocolError).exitCode, 4);
    // The real daemon's line, as recorded (auth-variants.txt keeps its first 60 characters).
    assert.ok((e as Error).message.startsWith('@ERROR: your client does not support one of our daemon-auth '));
    assert.is((e as Error).message, '@ERROR: your client does not support one of our daemon-auth checksums: sha512 sha256 sha1 md5 md4');
  }
});

test('auth users as rsync 3.5 parses them: commas/spaces, leading-comma form, @group, :deny/:ro/:rw', () => {
  assert.equal(parseAuthUsers('alice, @staff:ro  bob:DENY,carol:rw\t*:Ro dave:rx eve:dzz'), [
    { pattern: 'alice', group: false },
    { pattern: 'staff', group: true, access: 'ro' },
    { pattern: 'bob', group: false, access: 'deny' },
    { pattern: 'carol', group: false, access: 'rw' },
    { pattern: '*', group: false, access: 'ro' },
    { pattern: 'dave', group: false }, // not ro/rw/deny: ignored, as rsync does
    { pattern: 'eve', group: false, access: 'deny' }, // rsync looks at the first letter only
  ]);
  // A leading comma splits on commas alone, so a group name may hold a space.
  assert.equal(parseAuthUsers(', @domain users:ro , alice bob '), [
    { pattern: 'domain users', group: true, access: 'ro' },
    { pattern: 'alice bob', group: false },
  ]);
  assert.equal(parseAuthLine('alice abc+/'), { user: 'alice', response: 'abc+/' });
  assert.is(parseAuthLine('no-space-here'), undefined);
  assert.is(authFailedLine('secure'), '@ERROR: auth failed on module secure');
});

test('the real client answers in the captures: auth_push accepted, auth_fail refused', async () => {
  const module = await moduleWith('alice', 'alice:s3cret\n');
  for (const [name, ok] of [
    ['auth_push', true],
    ['auth_fail', false],
  ] as const) {
    const cap = loadCapture(name);
    const challenge = /@RSYNCD: AUTHREQD (\S+)\n/.exec(cap.s2c.toString('latin1'))![1]!;
    const line = /\n(alice \S+)\n/.exec(cap.c2s.toString('latin1'))![1]!;
    const { user, response } = parseAuthLine(line)!;
    const greeting = parseGreeting(cap.c2s.subarray(0, cap.c2s.indexOf(10)).toString('latin1'));
    const digest = chooseDaemonAuthDigest(PROTOCOL_VERSION, greeting.digests);
    assert.is(digest, 'sha512');
    const outcome = await checkAuth(module, { user, response, challenge, digest, protocol: 32, host: 'localhost', addr: '127.0.0.1' });
    assert.is(outcome.ok, ok, name);
    if (!outcome.ok) {
      assert.is(outcome.reason, 'password mismatch');
      assert.equal(outcome.log, ['auth failed on module secure from localhost (127.0.0.1) for alice: password mismatch']);
      // The client shows the daemon's line: the one we build.
      assert.ok(cap.client.includes(`\n${authFailedLine('secure')}\n`));
    } else assert.equal(outcome, { ok: true, user: 'alice', log: [] });
    assertNoPassword(outcome, 's3cret', 'wrong');
  }
});

test('every digest: our authResponse accepted, a wrong password refused', async () => {
  const module = await moduleWith('alice', '# comment line\r\nalice:pw with spaces and : colon\r\n');
  for (const d of [...AUTH_DIGESTS, 'md4old'] as AuthDigest[]) {
    assert.ok((await answer(module, 'alice', 'pw with spaces and : colon', d)).ok, d);
    const bad = await answer(module, 'alice', 'pw with spaces', d);
    assert.equal(bad.ok ? 'ok' : bad.reason, 'password mismatch', d);
    // The digest must be the agreed one: an md5 answer to a sha512 check fails.
    const challenge = makeChallenge('sha512');
    const wrongDigest = await checkAuth(module, {
      user: 'alice',
      response: await authResponse('md5', Buffer.from('pw with spaces and : colon'), challenge),
      challenge,
      digest: 'sha512',
      protocol: 32,
    });
    assert.not.ok(wrongDigest.ok);
  }
});

test('rules: the first matching entry decides; :deny refuses before any password; :ro/:rw set read only', async () => {
  const secrets = 'alice:a-pw\nbob:b-pw\ncarol:c-pw\n#x:h-pw\n';
  const m = await moduleWith('bob:deny, alice:ro, c*:rw, *:deny', secrets);
  assert.equal(await answer(m, 'alice', 'a-pw'), { ok: true, user: 'alice', readOnly: true, log: [] });
  assert.equal(await answer(m, 'carol', 'c-pw'), { ok: true, user: 'carol', readOnly: false, log: [] });
  const bob = await answer(m, 'bob', 'b-pw');
  assert.equal(bob.ok ? 'ok' : bob.reason, 'denied by rule');
  const dave = await answer(m, 'dave', 'anything');
  assert.equal(dave.ok ? 'ok' : dave.reason, 'denied by rule');
  const only = await moduleWith('alice bob', secrets);
  const eve = await answer(only, 'eve', 'x');
  assert.equal(eve.ok ? 'ok' : eve.reason, 'no matching rule');
  assert.equal((await answer(only, 'bob', 'b-pw')).ok, true);
  assert.is((await answer(only, 'bob', 'b-pw') as { readOnly?: boolean }).readOnly, undefined);
  // A user absent from the file, and a user name that would match a comment line.
  const any = await moduleWith('*', secrets);
  const zed = await answer(any, 'zed', 'x');
  assert.equal(zed.ok ? 'ok' : zed.reason, 'secret not found');
  const hash = await answer(any, '#x', 'h-pw');
  assert.equal(hash.ok ? 'ok' : hash.reason, 'invalid username');
  // No auth users: anonymous, as auth_server returns "".
  const open = parseConfig('[o]\npath=/o\n', { file: 't' }).modules[0]!;
  assert.equal(await checkAuth(open, { user: 'x', response: 'y', challenge: 'z', digest: 'md5', protocol: 32 }), {
    ok: true,
    user: '',
    log: [],
  });
  for (const o of [bob, dave, eve, zed, hash]) assertNoPassword(o, 'a-pw', 'b-pw', 'c-pw', 'h-pw');
});

test('@group rules: the user or the matched group password is accepted; other groups are not', async () => {
  const secrets = 'alice:alice-pw\n@staff:staff-pw\n@admins:admins-pw\n';
  const m = await moduleWith('@st*:ro', secrets);
  const groupsOf = (u: string) => (u === 'alice' ? ['users', 'staff'] : ['users']);
  assert.equal(await answer(m, 'alice', 'staff-pw', 'sha512', { groupsOf }), { ok: true, user: 'alice', readOnly: true, log: [] });
  assert.equal(await answer(m, 'alice', 'alice-pw', 'sha512', { groupsOf }), { ok: true, user: 'alice', readOnly: true, log: [] });
  const other = await answer(m, 'alice', 'admins-pw', 'sha512', { groupsOf });
  assert.equal(other.ok ? 'ok' : other.reason, 'password mismatch');
  const notMember = await answer(m, 'bob', 'staff-pw', 'sha512', { groupsOf });
  assert.equal(notMember.ok ? 'ok' : notMember.reason, 'no matching rule');
  const noGroups = await answer(m, 'alice', 'staff-pw'); // no groupsOf: no group can match
  assert.equal(noGroups.ok ? 'ok' : noGroups.reason, 'no matching rule');
  for (const o of [other, notMember, noGroups]) assertNoPassword(o, 'alice-pw', 'staff-pw', 'admins-pw');
});

test('strict modes: a secrets file others can read is ignored (and must be root\'s when we run as root)', async () => {
  const loose = await moduleWith('alice', 'alice:pw\n', 0o644);
  const refused = await answer(loose, 'alice', 'pw');
  assert.equal(refused, {
    ok: false,
    reason: 'ignoring secrets file',
    log: [
      'secrets file must not be other-accessible (see strict modes option)',
      'auth failed on module secure from h (192.0.2.1) for alice: ignoring secrets file',
    ],
  });
  assertNoPassword(refused, 'pw\n', 'alice:pw');
  const g = await answer(await moduleWith('alice', 'alice:pw\n', 0o640), 'alice', 'pw'); // group may read
  assert.ok(g.ok);
  assert.ok((await answer(await moduleWith('alice', 'alice:pw\n', 0o644, 'strict modes = no'), 'alice', 'pw')).ok);
  // Owned by someone other than root while the daemon runs as root.
  const notRoots = await moduleWith('alice', 'alice:pw\n', 0o600);
  if (process.getuid?.() === 0) await chown(notRoots.secretsFile!, 65534, 65534);
  const asRoot = await answer(notRoots, 'alice', 'pw', 'sha512', { asRoot: process.getuid?.() !== 0 ? true : undefined });
  assert.equal(asRoot.ok ? [] : asRoot.log, [
    'secrets file must be owned by root when running as root (see strict modes)',
    'auth failed on module secure from h (192.0.2.1) for alice: ignoring secrets file',
  ]);
  // Missing file, and no file configured.
  const missing = parseConfig(`[s]\npath=/s\nauth users = alice\nsecrets file = ${join(dir, 'absent')}\n`, { file: 't' }).modules[0]!;
  const none = parseConfig('[s]\npath=/s\nauth users = alice\n', { file: 't' }).modules[0]!;
  for (const m of [missing, none]) {
    const o = await answer(m, 'alice', 'pw');
    assert.equal(o.ok ? 'ok' : o.reason, 'no secrets file');
  }
});

test('secrets lines as fgets(1024) + strtok read them: CR LF, blank lines, a line longer than the buffer', async () => {
  const long = 'x'.repeat(1500);
  const m = await moduleWith('*', `\r\n\nbob:short\r\nlongpw:${long}\n`);
  assert.ok((await answer(m, 'bob', 'short')).ok);
  // rsync reads 1023 bytes of that line: the password it sees is cut there.
  assert.ok((await answer(m, 'longpw', long.slice(0, 1023 - 'longpw:'.length))).ok);
  assert.not.ok((await answer(m, 'longpw', long)).ok);
});

/**
 * A front end of a daemon for one connection, in this test: greeting, module line, our challenge,
 * the client's answer through checkAuth, then the outcome's line. The client is the real rsync.
 */
async function liveClientOutcome(module: ModuleConfig, password: string, protocol: number): Promise<{ outcome: AuthOutcome; digest: AuthDigest; stderr: string }> {
  let result: { outcome: AuthOutcome; digest: AuthDigest } | undefined;
  let failure: unknown;
  const server = createServer((socket: Socket) => {
    let buffered = '';
    const lines: string[] = [];
    let waiting: ((l: string) => void) | undefined;
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      for (let nl; (nl = buffered.indexOf('\n')) >= 0; ) {
        lines.push(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
      if (waiting && lines.length) waiting(lines.shift()!);
    });
    socket.on('error', () => {});
    const readLine = () => new Promise<string>((resolve) => (lines.length ? resolve(lines.shift()!) : (waiting = resolve)));
    (async () => {
      socket.write(formatGreeting(PROTOCOL_VERSION) + '\n');
      const greeting = parseGreeting(await readLine());
      const negotiated = Math.min(PROTOCOL_VERSION, greeting.protocol);
      await readLine(); // the module line
      const digest = chooseDaemonAuthDigest(negotiated, greeting.digests);
      const challenge = makeChallenge(digest);
      socket.write(formatChallengeLine(challenge) + '\n');
      const parsed = parseAuthLine(await readLine())!;
      const outcome = await checkAuth(module, { ...parsed, challenge, digest, protocol: negotiated, host: 'localhost', addr: '127.0.0.1' });
      result = { outcome, digest };
      socket.end(outcome.ok ? '@ERROR: accepted (test daemon stops here)\n' : authFailedLine(module.name) + '\n');
    })().catch((e) => {
      failure = e;
      socket.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const stderr = await new Promise<string>((resolve) => {
    const child = spawn('rsync', [`--protocol=${protocol}`, `rsync://alice@127.0.0.1:${port}/secure/`], {
      env: { ...process.env, RSYNC_PASSWORD: password },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    child.on('close', () => resolve(err));
  });
  await new Promise((r) => server.close(r));
  if (failure) throw failure;
  if (!result) throw new Error(`no answer from the client: ${stderr}`);
  return { ...result, stderr };
}

test('the live rsync 3.5 client at protocols 32, 31, 30, 29 answers challenges we make: right and wrong passwords', async () => {
  const module = await moduleWith('alice', 'alice:live-secret\n');
  // rsync 3.5 lists its digests in its greeting even when forced to protocol 29, so sha512 it is.
  const expectedDigest: Record<number, AuthDigest> = { 32: 'sha512', 31: 'sha512', 30: 'sha512', 29: 'sha512' };
  for (const protocol of [32, 31, 30, 29]) {
    const good = await liveClientOutcome(module, 'live-secret', protocol);
    assert.is(good.digest, expectedDigest[protocol], `protocol ${protocol}`);
    assert.equal(good.outcome, { ok: true, user: 'alice', log: [] }, `protocol ${protocol}`);
    const bad = await liveClientOutcome(module, 'not-it', protocol);
    assert.equal(bad.outcome.ok ? 'ok' : bad.outcome.reason, 'password mismatch', `protocol ${protocol}`);
    assert.ok(bad.stderr.includes(authFailedLine('secure')), bad.stderr);
    assertNoPassword(bad.outcome, 'live-secret', 'not-it');
  }
});

test.run();
