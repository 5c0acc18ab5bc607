// protocol/list-only.ts: the end of a session whose client requested nothing more, against the
// tails of recorded rsync 3.5.0 pulls at protocols 27, 29, 30 and 32 (fixtures/captures): fed the
// daemon's last NDX_DONEs and stats, we must write exactly the NDX_DONEs rsync's client wrote
// there, read the stats as rsync's handle_stats does, and consume the daemon's stream to its end.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { finishListOnly, readDaemonStats } from '../protocol/list-only.js';
import { ProtocolError } from '../protocol/errors.js';
import { byteAtATime, dataStream, loadCapture, memorySink, piecesSource } from './helpers/capture.js';

const root = fileURLToPath(new URL('../../fixtures/captures/', import.meta.url));
const decodedOf = (name: string): string => readFileSync(`${root}${name}/decoded.txt`, 'utf8');

/** The lines of one direction's data-stream section of decoded.txt. */
function section(decoded: string, dir: 'c2s' | 's2c'): string[] {
  const lines = decoded.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`== ${dir} data stream`));
  const end = lines.findIndex((l, i) => i > start && l.startsWith('== '));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Offsets of the last run of NDX_DONE lines (the end of the session) in a section. */
function finalDones(lines: string[]): number[] {
  const offsets: number[] = [];
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /^\s+\[(\d+)\] (NDX_DONE|STATS)/.exec(lines[i]!);
    if (!m) {
      if (offsets.length) break;
      continue;
    }
    if (m[2] === 'NDX_DONE') offsets.unshift(Number(m[1]));
  }
  return offsets;
}

const CASES = [
  { name: 'pull_initial', protocol: 32, weSend: 5, stats: { totalWritten: 71, totalRead: 3260, totalSize: 3067, flistBuildTime: 1, flistXferTime: 0 } },
  { name: 'pull_proto30', protocol: 30, weSend: 4, stats: { totalWritten: 258, totalRead: 16172, totalSize: 15336, flistBuildTime: 1, flistXferTime: 0 } },
  { name: 'pull_proto29', protocol: 29, weSend: 4, stats: { totalWritten: 326, totalRead: 16288, totalSize: 15336, flistBuildTime: 1, flistXferTime: 0 } },
  { name: 'pull_proto27', protocol: 27, weSend: 3, stats: { totalWritten: 212, totalRead: 16170, totalSize: 15336, flistBuildTime: null, flistXferTime: null } },
];

for (const c of CASES) {
  test(`${c.name} (protocol ${c.protocol}): our NDX_DONEs are rsync's client's, the stats are read, the stream ends`, async () => {
    const cap = loadCapture(c.name);
    const decoded = decodedOf(c.name);
    const s2c = dataStream(cap.s2c, decoded, 's2c');
    const daemonTail = s2c.subarray(finalDones(section(decoded, 's2c'))[0]);
    const clientDones = finalDones(section(decoded, 'c2s'));
    assert.is(clientDones.length, c.weSend, 'rsync client NDX_DONEs at the end');
    for (const source of [piecesSource(daemonTail), byteAtATime(daemonTail)]) {
      const reader = new ByteReader(source);
      reader.protocol = c.protocol;
      const sink = memorySink();
      const writer = new ByteWriter(sink);
      writer.protocol = c.protocol;
      const stats = await finishListOnly(reader, writer);
      assert.equal(stats, c.stats);
      assert.is(reader.buffered, 0);
      assert.is(await reader.readSome(1), null, 'nothing left in the daemon stream');
      // What rsync's client wrote there: its last data-stream bytes.
      const ours = sink.bytes();
      const c2s = dataStream(cap.c2s, decoded, 'c2s');
      assert.is(ours.toString('hex'), c2s.subarray(c2s.length - ours.length).toString('hex'));
      assert.is(ours.toString('hex'), (c.protocol >= 30 ? '00' : 'ffffffff').repeat(c.weSend));
    }
  });
}

test('readDaemonStats: three longints below 29, five varlongs from 30', async () => {
  for (const c of CASES) {
    const cap = loadCapture(c.name);
    const decoded = decodedOf(c.name);
    const at = Number(/\[(\d+)\] STATS/.exec(decoded)![1]);
    const reader = new ByteReader(piecesSource(dataStream(cap.s2c, decoded, 's2c').subarray(at)));
    reader.protocol = c.protocol;
    assert.equal(await readDaemonStats(reader), c.stats, c.name);
  }
});

test('a daemon that sends a file where an NDX_DONE belongs (pull_initial\'s first transfer) is a protocol error', async () => {
  const cap = loadCapture('pull_initial');
  const decoded = decodedOf('pull_initial');
  const firstSend = Number(/\[(\d+)\] --\n\s+snd ndx=/.exec(decoded)![1]);
  const reader = new ByteReader(piecesSource(dataStream(cap.s2c, decoded, 's2c').subarray(firstSend)));
  reader.protocol = 32;
  const writer = new ByteWriter(memorySink());
  writer.protocol = 32;
  try {
    await finishListOnly(reader, writer);
    assert.unreachable('accepted');
  } catch (e) {
    assert.ok(e instanceof ProtocolError && e.exitCode === 2, String(e));
  }
});

test.run();
