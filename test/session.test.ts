// Against a real daemon: opening modules, authentication at protocol 29 (seeded MD4) and 32
// (negotiated digest), password sources, and the daemon's refusals (unknown module, auth failed,
// max connections, read only), each a typed error carrying the daemon's text and rsync's exit code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFile, chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, rsyncVersion, AUTH_USER, AUTH_PASSWORD, type TestDaemon } from './helpers/daemon.js';
import { openModule, type DaemonSession } from '../src/transfer/client.js';
import { passwordSource } from '../src/transfer/password.js';
import { startTransfer, acknowledgeErrorExit } from '../protocol/session.js';
import { CLIENT_CAPABILITIES } from '../protocol/compat.js';
import { DaemonRefusalError, RemoteError, UsageError } from '../protocol/errors.js';

let daemon: TestDaemon;
let scratch: string;

test.before(async () => {
  daemon = await startDaemon({ extraModules: [{ name: 'maxconn', comment: 'one at a time', settings: { 'read only': false, 'max connections': 1 } }] });
  scratch = await mkdtemp(join(tmpdir(), 'lsyncd-session-'));
});
test.after(async () => {
  await daemon?.stop();
  await rm(scratch, { recursive: true, force: true });
});

const base = () => ({ host: '127.0.0.1', port: daemon.port });
const password = (text: string) => async () => Buffer.from(text);

async function refusal(promise: Promise<unknown>): Promise<DaemonRefusalError> {
  try {
    await promise;
  } catch (e) {
    assert.instance(e, DaemonRefusalError);
    return e as DaemonRefusalError;
  }
  throw new Error('expected a refusal');
}

for (const protocol of [29, 30, 31, 32]) {
  test(`auth succeeds with the right password at protocol ${protocol}`, async () => {
    const session = await openModule({ ...base(), protocol, user: AUTH_USER, password: password(AUTH_PASSWORD) }, 'secure');
    assert.is(session.hello.protocol, Math.min(protocol, rsyncVersion().protocol));
    assert.is(session.hello.sentDigestList, protocol >= 30);
    session.socket.destroy();
  });

  test(`auth fails with a wrong password at protocol ${protocol}: the daemon's @ERROR, exit 5`, async () => {
    const e = await refusal(openModule({ ...base(), protocol, user: AUTH_USER, password: password('wrong') }, 'secure'));
    assert.is(e.daemonText, '@ERROR: auth failed on module secure');
    assert.is(e.exitCode, 5);
  });
}

test('password file: first line used; refused when others can read it; $RSYNC_PASSWORD otherwise', async () => {
  const file = join(scratch, 'pw');
  await writeFile(file, `${AUTH_PASSWORD}\nsecond line ignored\n`);
  await chmod(file, 0o600);
  const ok = await openModule({ ...base(), user: AUTH_USER, password: passwordSource(file, {}) }, 'secure');
  ok.socket.destroy();
  await chmod(file, 0o644);
  await openModule({ ...base(), user: AUTH_USER, password: passwordSource(file, {}) }, 'secure').then(
    () => assert.unreachable(),
    (e) => {
      assert.instance(e, UsageError);
      assert.is((e as UsageError).exitCode, 1);
      assert.match((e as Error).message, 'must not be other-accessible');
    },
  );
  const fromEnv = await openModule({ ...base(), user: AUTH_USER, password: passwordSource(undefined, { RSYNC_PASSWORD: AUTH_PASSWORD }) }, 'secure');
  fromEnv.socket.destroy();
  const e = await refusal(openModule({ ...base(), user: AUTH_USER, password: passwordSource(undefined, {}) }, 'secure'));
  assert.is(e.daemonText, '@ERROR: auth failed on module secure');
});

test('unknown module: the daemon text verbatim, exit 5', async () => {
  const e = await refusal(openModule(base(), 'nosuch'));
  assert.is(e.daemonText, "@ERROR: Unknown module 'nosuch'");
  assert.is(e.exitCode, 5);
});

test('max connections: refused while another session holds the slot', async () => {
  const holder: DaemonSession = await openModule(base(), 'maxconn');
  try {
    const e = await refusal(openModule(base(), 'maxconn'));
    assert.is(e.daemonText, '@ERROR: max connections (1) reached -- try again later');
    assert.is(e.exitCode, 5);
  } finally {
    holder.socket.destroy();
  }
});

for (const protocol of [29, 30, 31, 32]) {
  test(`read-only module refuses a push after setup (protocol ${protocol}): the daemon's text, its exit code`, async () => {
    const session = await openModule({ ...base(), protocol }, 'ro');
    const flags = protocol >= 30 ? `-rlpte.${CLIENT_CAPABILITIES}` : '-rlpt';
    const start = await startTransfer(session.reader, session.writer, ['--server', flags, '.', 'ro/']);
    assert.ok(start.setup.seed !== undefined);
    try {
      await session.reader.readNdx();
      assert.unreachable('the daemon accepted a push into a read-only module');
    } catch (e) {
      assert.instance(e, RemoteError);
      const err = e as RemoteError;
      assert.ok(err.messages.some((m) => m.includes('module is read only')), err.messages.join('|'));
      // rsync's client exits 1 here (the code in the daemon's MSG_ERROR_EXIT, protocol >= 31).
      // Below 31 the daemon just closes after its text: a stream error (12), as rsync reports it.
      assert.is(err.exitCode, protocol >= 31 ? 1 : 12);
      await acknowledgeErrorExit(session.writer, start.demux, e);
    } finally {
      await session.close();
    }
  });
}

test.run();
