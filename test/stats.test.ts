// protocol/stats.ts: the end-of-run stats. Our server sender's stats bytes are the stock daemon's
// in the pull captures at 27, 29, 30, 32; the daemon's whole end of a pull or listing (its
// NDX_DONEs through sender.ts, the stats, the goodbye) reproduces the captured tail when fed the
// client's; each role's part in the step; round trips with the client's reading.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ByteReader, ByteWriter } from '../protocol/io.js';
import { readSenderStats, statsDirection, writeSenderStats, type SenderTotals } from '../protocol/stats.js';
import { finishListOnly, readDaemonStats } from '../protocol/list-only.js';
import { readFinalGoodbye, sendFiles, type SenderStats } from '../protocol/sender.js';
import { createChecksummer } from '../protocol/checksum.js';
import { byteAtATime, dataStream, loadCapture, memorySink, piecesSource } from './helpers/capture.js';
import { connection } from './helpers/pipe.js';

const root = fileURLToPath(new URL('../../fixtures/captures/', import.meta.url));
const decodedOf = (name: string): string => readFileSync(`${root}${name}/decoded.txt`, 'utf8');

/** The STATS line of a capture: its offset in the daemon's data stream and the values. */
function capturedStats(decoded: string): { at: number; totals: SenderTotals } {
  const m = /\[(\d+)\] STATS [^:]*: (.*)/.exec(decoded)!;
  const v = Object.fromEntries([...m[2]!.matchAll(/(\w+)=(\d+)/g)].map(([, k, n]) => [k!, Number(n)]));
  return {
    at: Number(m[1]),
    totals: {
      totalRead: v.total_read!,
      totalWritten: v.total_written!,
      totalSize: v.total_size!,
      flistBuildTime: v.flist_buildtime ?? null,
      flistXferTime: v.flist_xfertime ?? null,
    },
  };
}

/** Offsets of the last run of NDX_DONEs (the end of the session) in one direction's data-stream section. */
function finalDones(decoded: string, dir: 'c2s' | 's2c'): number[] {
  const lines = decoded.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`== ${dir} data stream`));
  const end = lines.findIndex((l, i) => i > start && l.startsWith('== '));
  const offsets: number[] = [];
  for (const line of lines.slice(start + 1, end < 0 ? undefined : end).reverse()) {
    const m = /^\s+\[(\d+)\] (NDX_DONE|STATS)/.exec(line);
    if (!m) {
      if (offsets.length) break;
      continue;
    }
    if (m[2] === 'NDX_DONE') offsets.unshift(Number(m[1]));
  }
  return offsets;
}

const PULLS = [
  { name: 'pull_initial', protocol: 32 },
  { name: 'pull_proto30', protocol: 30 },
  { name: 'pull_proto29', protocol: 29 },
  { name: 'pull_proto27', protocol: 27 },
  { name: 'module_contents_listing', protocol: 32 },
];

for (const c of PULLS) {
  test(`${c.name} (protocol ${c.protocol}): writeSenderStats writes the stock daemon's stats bytes`, async () => {
    const cap = loadCapture(c.name);
    const decoded = decodedOf(c.name);
    const { at, totals } = capturedStats(decoded);
    const s2c = dataStream(cap.s2c, decoded, 's2c');
    const sink = memorySink();
    const writer = new ByteWriter(sink);
    writer.protocol = c.protocol;
    writeSenderStats(writer, totals);
    await writer.flush();
    const ours = sink.bytes();
    assert.is(ours.length, c.protocol >= 30 ? 15 : c.protocol >= 29 ? 20 : 12);
    assert.is(ours.toString('hex'), s2c.subarray(at, at + ours.length).toString('hex'));
    // And back: the client's read gives the same totals, and the client-sense view swaps the first two.
    const reader = new ByteReader(byteAtATime(ours));
    reader.protocol = c.protocol;
    assert.equal(await readSenderStats(reader), totals);
    const again = new ByteReader(piecesSource(ours));
    again.protocol = c.protocol;
    const daemon = await readDaemonStats(again);
    assert.is(daemon.totalWritten, totals.totalRead);
    assert.is(daemon.totalRead, totals.totalWritten);
  });

  test(`${c.name} (protocol ${c.protocol}): the daemon's end of the run (sender phases, stats, goodbye) is the stock daemon's`, async () => {
    const cap = loadCapture(c.name);
    const decoded = decodedOf(c.name);
    const { totals } = capturedStats(decoded);
    const c2s = dataStream(cap.c2s, decoded, 'c2s');
    const s2c = dataStream(cap.s2c, decoded, 's2c');
    // The client's last NDX_DONEs (it asks for nothing more), as our server's sender reads them:
    // the end of its stream (raw below protocol 30, where decoded.txt's offsets do not apply).
    const clientDones = finalDones(decoded, 'c2s').length * (c.protocol >= 30 ? 1 : 4);
    const reader = new ByteReader(piecesSource(c2s.subarray(c2s.length - clientDones)));
    reader.protocol = c.protocol;
    const sink = memorySink();
    const writer = new ByteWriter(sink);
    writer.protocol = c.protocol;
    const checksummer = await createChecksummer(c.protocol >= 30 ? 'xxh128' : 'md4', { protocol: c.protocol, seed: 0 });
    const nothing = { open: async () => ({ error: 'no request expected', vanished: false }) };
    const sent = await sendFiles(reader, writer, [], checksummer, nothing);
    assert.is(statsDirection({ side: 'server', sender: true }), 'write');
    writeSenderStats(writer, totals);
    await writer.flush();
    await readFinalGoodbye(reader, writer, sent.stats);
    await writer.flush();
    assert.is(reader.buffered, 0);
    assert.is(await reader.readSome(1), null, "the client's stream is consumed");
    const tail = s2c.subarray(finalDones(decoded, 's2c')[0]);
    assert.is(sink.bytes().toString('hex'), tail.toString('hex'));
  });
}

test("pull_delete (protocol 32): a sending daemon echoes the client's NDX_DEL_STATS, as rsync's does (a client sender does not)", async () => {
  const cap = loadCapture('pull_delete');
  const decoded = decodedOf('pull_delete');
  const { totals } = capturedStats(decoded);
  const c2s = dataStream(cap.c2s, decoded, 'c2s');
  const s2c = dataStream(cap.s2c, decoded, 's2c');
  // The client's end: NDX_DONE x3 [88..90], NDX_DEL_STATS files=1 [91], NDX_DONE x2 [98, 99];
  // the daemon's: NDX_DONE x3 [866..868], STATS [869], the echoed NDX_DEL_STATS [884], NDX_DONE [891].
  for (const amServer of [true, false]) {
    const reader = new ByteReader(piecesSource(c2s.subarray(88)));
    reader.protocol = 32;
    const sink = memorySink();
    const writer = new ByteWriter(sink);
    writer.protocol = 32;
    const checksummer = await createChecksummer('xxh128', { protocol: 32, seed: 0 });
    const nothing = { open: async () => ({ error: 'no request expected', vanished: false }) };
    const sent = await sendFiles(reader, writer, [], checksummer, nothing, { amServer });
    writeSenderStats(writer, totals);
    await writer.flush();
    await readFinalGoodbye(reader, writer, sent.stats, { amServer });
    await writer.flush();
    assert.is(await reader.readSome(1), null, "the client's stream is consumed");
    assert.equal(sent.stats.deleted, { files: 1, dirs: 0, symlinks: 0, devices: 0, specials: 0 });
    const daemonTail = s2c.subarray(866);
    const withoutEcho = Buffer.concat([daemonTail.subarray(0, 884 - 866), daemonTail.subarray(891 - 866)]);
    assert.is(sink.bytes().toString('hex'), (amServer ? daemonTail : withoutEcho).toString('hex'), `amServer ${amServer}`);
  }
});

test('statsDirection: the server sender writes, the client receiver reads, the others skip', () => {
  assert.is(statsDirection({ side: 'server', sender: true }), 'write');
  assert.is(statsDirection({ side: 'client', sender: false }), 'read');
  assert.is(statsDirection({ side: 'client', sender: true }), 'none');
  assert.is(statsDirection({ side: 'server', sender: false }), 'none');
});

test('round trip: a whole listing end, our client (finishListOnly) against our server half, at 27-32', async () => {
  for (const protocol of [27, 28, 29, 30, 31, 32]) {
    const c = connection(protocol);
    const totals: SenderTotals = {
      totalRead: 20,
      totalWritten: 2 ** 40 + 3,
      totalSize: 123456,
      flistBuildTime: protocol >= 29 ? 1 : null,
      flistXferTime: protocol >= 29 ? 0 : null,
    };
    const checksummer = await createChecksummer('md4', { protocol, seed: 1 });
    const server = (async () => {
      const stats: SenderStats = (await sendFiles(c.server.reader, c.server.writer, [], checksummer, { open: async () => ({ error: 'x', vanished: false }) })).stats;
      writeSenderStats(c.server.writer, totals);
      await c.server.writer.flush();
      await readFinalGoodbye(c.server.reader, c.server.writer, stats);
    })();
    const stats = await finishListOnly(c.client.reader, c.client.writer);
    await server;
    assert.equal(stats, {
      totalWritten: totals.totalRead,
      totalRead: totals.totalWritten,
      totalSize: totals.totalSize,
      flistBuildTime: totals.flistBuildTime,
      flistXferTime: totals.flistXferTime,
    }, `protocol ${protocol}`);
  }
});

test.run();
