// RemoteError.refusedOption (protocol/errors.ts): the daemon's refusal of an option, classified
// once from its MSG_ERROR text. The texts are real: a capture of rsync 3.5.0 refusing --delete
// (fixtures/captures/error_refuse), and a real `rsync --daemon` refusing --copy-dest, --fuzzy,
// --delete-missing-args and an option it does not know; errors that are not refusals stay
// unclassified.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { exchangeGreetings, requestModule } from '../protocol/daemon.js';
import { setupProtocol } from '../protocol/compat.js';
import { startMultiplexIn } from '../protocol/mplex.js';
import { startTransfer } from '../protocol/session.js';
import { serverArgs, DEFAULT_TRANSFER, type TransferOptions } from '../protocol/args.js';
import { RemoteError, refusedOption } from '../protocol/errors.js';
import { push } from '../src/transfer/push.js';
import { openModule } from '../src/transfer/client.js';
import { loadCapture, memorySink, piecesSource } from './helpers/capture.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

/** The RemoteError a capture's daemon side ends with, read through greeting, setup and the demultiplexer. */
async function replayedError(name: string): Promise<RemoteError> {
  const reader = new ByteReader(piecesSource(loadCapture(name).s2c));
  const writer = new ByteWriter(memorySink());
  const hello = await exchangeGreetings(reader, writer);
  await requestModule(reader, writer, hello, { module: 'm' });
  await setupProtocol(reader, writer, hello.protocol);
  startMultiplexIn(reader, () => {});
  const e = await reader.readNdx().then(() => undefined, (e: unknown) => e);
  assert.instance(e, RemoteError);
  return e as RemoteError;
}

test('captured: rsync 3.5.0 "configured to refuse --delete" is refusedOption "delete"', async () => {
  const e = await replayedError('error_refuse');
  assert.is(e.messages[0], 'rsync: The server is configured to refuse --delete\n');
  assert.is(e.refusedOption, 'delete');
  assert.is(e.exitCode, 4);
});

test('captured: other daemon errors are not refusals', async () => {
  const e = await replayedError('error_readonly');
  assert.is(e.messages[0], 'ERROR: module is read only\n');
  assert.is(e.refusedOption, undefined);
  assert.is(refusedOption('rsync: [Receiver] mkdir "/x/y" failed: No such file or directory (2)\n'), undefined);
});

let daemon: TestDaemon;
let work: string;

test.before(async () => {
  daemon = await startDaemon({
    extraModules: [
      { name: 'norename', comment: 'refuses --copy-dest and --fuzzy', settings: { 'read only': false, 'refuse options': 'copy-dest fuzzy' } },
      { name: 'nomissing', comment: 'refuses --delete-missing-args', settings: { 'read only': false, 'refuse options': 'delete-missing-args' } },
    ],
  });
  work = await mkdtemp(join(tmpdir(), 'lsyncd-refused-'));
  await mkdir(join(work, 'd'));
  await writeFile(join(work, 'd/f'), 'file\n');
});
test.after(async () => {
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

/** The RemoteError of a real push of `work/` into `module`. */
async function pushError(module: string, transfer: Partial<TransferOptions>, selection?: string[]): Promise<RemoteError> {
  const e = await push({
    source: `${work}/`,
    target: { host: daemon.host, port: daemon.port, module, path: '' },
    transfer: { ...DEFAULT_TRANSFER, ...transfer },
    session: {},
    ...(selection && { selection: selection.map((path) => ({ path: Buffer.from(path), recurse: false })) }),
  }).then(() => undefined, (e: unknown) => e);
  assert.instance(e, RemoteError);
  return e as RemoteError;
}

test('real daemon: refuse options = copy-dest fuzzy', async () => {
  const copyDest = await pushError('norename', { copyDest: '../old' });
  assert.ok(copyDest.messages.some((m) => m.includes('refuse --copy-dest')), copyDest.message);
  assert.is(copyDest.refusedOption, 'copy-dest');
  const fuzzy = await pushError('norename', { fuzzy: 1 });
  assert.ok(fuzzy.messages.some((m) => m.includes('refuse --fuzzy (-y)')), fuzzy.message);
  assert.is(fuzzy.refusedOption, 'fuzzy');
});

test('real daemon: refuse options = delete-missing-args drops the option, then rejects the mode-0 entry', async () => {
  const e = await pushError('nomissing', {}, ['d/f', 'd/gone']);
  assert.ok(e.messages.some((m) => /invalid file mode 0+ for d\/gone/.test(m)), e.message);
  assert.is(e.refusedOption, 'delete-missing-args');
});

test('real daemon: an option it does not know', async () => {
  const session = await openModule({ host: daemon.host, port: daemon.port }, 'push');
  try {
    const [server, ...rest] = serverArgs(DEFAULT_TRANSFER, session.hello.protocol, '.');
    await startTransfer(session.reader, session.writer, [server!, '--no-such-option', ...rest]);
    // The daemon finishes the setup phase, then reports the bad option on the multiplexed stream.
    const e = await session.reader.readInt().then(() => undefined, (e: unknown) => e);
    assert.instance(e, RemoteError);
    const err = e as RemoteError;
    assert.ok(err.messages.some((m) => m.includes('--no-such-option: unknown option')), err.message);
    assert.is(err.refusedOption, 'no-such-option');
  } finally {
    session.socket.destroy();
  }
});

test('real daemon: a failure that is not a refusal (the destination parent is missing)', async () => {
  const e = await push({
    source: `${work}/d/`,
    target: { host: daemon.host, port: daemon.port, module: 'push', path: 'missing/parent/d/' },
    transfer: DEFAULT_TRANSFER,
    session: {},
  }).then(() => undefined, (e: unknown) => e);
  assert.instance(e, RemoteError);
  assert.ok((e as RemoteError).messages.some((m) => m.includes('mkdir')), (e as Error).message);
  assert.is((e as RemoteError).refusedOption, undefined);
});

test.run();
