// protocol/args.ts, the daemon's read of the argument list: the lists stock clients sent in the
// captures (NUL-terminated from 30, lines before, the second list of -s), round trips with our
// client's sendArgs, and the bounds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { DEFAULT_TRANSFER, MAX_ARG_LENGTH, MAX_DAEMON_ARGS, recvArgs, sendArgs, serverArgs } from '../protocol/args.js';
import { ConnectionClosedError, ProtocolError } from '../protocol/errors.js';
import { byteAtATime, loadCapture, memorySink, piecesSource } from './helpers/capture.js';

const root = fileURLToPath(new URL('../../fixtures/captures/', import.meta.url));

/** decoded.txt's reading of the client's argument lists: offset and the arguments. */
function decodedArgs(name: string): Array<{ at: number; args: string[] }> {
  const decoded = readFileSync(`${root}${name}/decoded.txt`, 'utf8');
  return [...decoded.matchAll(/\[(\d+)\] (?:args|secluded)[^:]*: (\[.*\])/g)].map((m) => ({
    at: Number(m[1]),
    args: JSON.parse(m[2]!.replace(/'/g, '"')) as string[],
  }));
}

const strings = (args: Buffer[]): string[] => args.map((a) => a.toString('utf8'));

for (const [name, protocol] of [['push_initial_noinc', 32], ['pull_proto27', 27], ['push_proto29', 29], ['push_proto30', 30], ['push_secluded_args', 32], ['prototype_push_redo', 31]] as const) {
  test(`${name}: recvArgs reads the client's list${name.includes('secluded') ? 's' : ''} as decoded.txt does`, async () => {
    const cap = loadCapture(name);
    const lists = decodedArgs(name);
    assert.ok(lists.length >= 1);
    for (const source of [() => piecesSource(cap.c2s.subarray(lists[0]!.at)), () => byteAtATime(cap.c2s.subarray(lists[0]!.at))]) {
      const reader = new ByteReader(source());
      reader.protocol = protocol;
      assert.equal(strings(await recvArgs(reader)), lists[0]!.args);
      // The -s list is NUL-terminated whatever the protocol.
      if (lists[1]) assert.equal(strings(await recvArgs(reader, true)), lists[1].args);
    }
  });
}

test('round trip: serverArgs through sendArgs and recvArgs at 27-32, push and pull', async () => {
  for (const protocol of [27, 28, 29, 30, 31, 32]) {
    for (const pull of [false, true]) {
      const args = serverArgs({ ...DEFAULT_TRANSFER, checksumChoice: 'md5', timeout: 30 }, protocol, 'mod/with space/ mod/x', pull);
      const sink = memorySink();
      const writer = new ByteWriter(sink);
      writer.protocol = protocol;
      await sendArgs(writer, args);
      const reader = new ByteReader(byteAtATime(sink.bytes()));
      reader.protocol = protocol;
      assert.equal(strings(await recvArgs(reader)), args);
      assert.is(await reader.readSome(1), null);
    }
  }
});

test('below protocol 30 a CR ends an argument too (rsync read_line): CRLF ends the list early', async () => {
  const reader = new ByteReader(piecesSource(Buffer.from('--server\r\n-r\n\n')));
  reader.protocol = 29;
  assert.equal(strings(await recvArgs(reader)), ['--server']);
});

test('bounds: an over-long argument, too many arguments, a stream that ends inside the list', async () => {
  const reject = async (bytes: Buffer, kind: new (...a: never[]) => Error): Promise<void> => {
    const reader = new ByteReader(piecesSource(bytes));
    reader.protocol = 32;
    try {
      await recvArgs(reader);
      assert.unreachable('accepted');
    } catch (e) {
      assert.instance(e, kind);
    }
  };
  const longest = Buffer.concat([Buffer.alloc(MAX_ARG_LENGTH, 0x61), Buffer.alloc(2)]);
  const reader = new ByteReader(piecesSource(longest));
  reader.protocol = 32;
  assert.is((await recvArgs(reader))[0]!.length, MAX_ARG_LENGTH);
  await reject(Buffer.concat([Buffer.alloc(MAX_ARG_LENGTH + 1, 0x61), Buffer.alloc(2)]), ProtocolError);
  const many = (n: number) => Buffer.concat([Buffer.from('x\0'.repeat(n)), Buffer.alloc(1)]);
  const most = new ByteReader(piecesSource(many(MAX_DAEMON_ARGS - 2)));
  most.protocol = 32;
  assert.is((await recvArgs(most)).length, MAX_DAEMON_ARGS - 2);
  await reject(many(MAX_DAEMON_ARGS - 1), ProtocolError);
  await reject(Buffer.from('--server\0-r'), ConnectionClosedError);
});

test.run();
