// protocol/session.ts, the daemon's side: who multiplexes from when; startServer and
// recvClientFilters fed the client bytes of recorded rsync 3.5.0 sessions (our bytes are the stock
// daemon's but for our checksum list, the MSG_IO_TIMEOUT frame included; the client's rules read;
// its stream left at its first byte after the list); then whole sessions with our client on one
// end and our server halves on the other, at every protocol: a push's start, and a listing from
// the argument list to the goodbye.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ByteWriter } from '../protocol/io.js';
import { recvArgs, serverArgs, DEFAULT_TRANSFER } from '../protocol/args.js';
import { CHECKSUM_NAMES, CLIENT_CAPABILITIES } from '../protocol/compat.js';
import { digestLength, createChecksummer } from '../protocol/checksum.js';
import { FilterList, sendFilterList } from '../protocol/filter.js';
import { type FileEntry } from '../protocol/flist.js';
import { sendFileList } from '../protocol/flist-packed-send.js';
import { S_IFDIR, S_IFREG } from '../protocol/modes.js';
import { finishListOnly } from '../protocol/list-only.js';
import { readFinalGoodbye, sendFiles } from '../protocol/sender.js';
import { writeSenderStats, statsDirection } from '../protocol/stats.js';
import {
  multiplexesInput,
  multiplexesOutput,
  recvClientFilters,
  startPull,
  startServer,
  startTransfer,
  type SessionRole,
} from '../protocol/session.js';
import { dataStream, memorySink } from './helpers/capture.js';
import { readClientOpening } from './helpers/server-replay.js';
import { connection } from './helpers/pipe.js';

test('who multiplexes: the server from the start, the client from protocol 30; input mirrors the peer', () => {
  for (const protocol of [27, 28, 29, 30, 31, 32]) {
    assert.is(multiplexesOutput('server', protocol), true);
    assert.is(multiplexesOutput('client', protocol), protocol >= 30);
    assert.is(multiplexesInput('client', protocol), true);
    assert.is(multiplexesInput('server', protocol), protocol >= 30);
  }
  assert.is(multiplexesOutput('server', 22), false, 'before 23 nobody did');
});

/** What the client's arguments ask of the daemon's filter-list step. */
function filterOptions(args: string[]) {
  const has = (re: RegExp) => args.some((a) => re.test(a));
  return {
    role: args.includes('--sender') ? ('sender' as const) : ('receiver' as const),
    deleteMode: has(/^--delete/),
    deleteExcluded: has(/^--delete-excluded$/),
    pruneEmptyDirs: has(/^--prune-empty-dirs$/),
  };
}

const REPLAYS = [
  { name: 'push_delete_exclude', rules: new FilterList().addExclude('*.tmp').addFilter('P keep/') },
  { name: 'pull_delete', rules: new FilterList().addExclude('p2*').addExclude('p3*').addExclude('z*').addExclude('bin') },
  { name: 'module_contents_listing', rules: new FilterList() },
  { name: 'pull_proto27', rules: new FilterList() },
  { name: 'push_proto29', rules: new FilterList() },
  { name: 'push_cs_md5', rules: new FilterList() },
  { name: 'timeout_module', rules: new FilterList(), ioTimeout: 30 },
];

for (const r of REPLAYS) {
  test(`${r.name}: startServer + recvClientFilters on the stock client's bytes`, async () => {
    const o = await readClientOpening(r.name);
    const sink = memorySink();
    const writer = new ByteWriter(sink);
    writer.protocol = o.protocol;
    const messages: number[] = [];
    await startServer(o.reader, writer, {
      clientInfo: o.clientInfo,
      ...(o.checksumChoice && { checksumChoice: o.checksumChoice }),
      symlinkTimes: true,
      seed: o.seed,
      ...(r.ioTimeout && { ioTimeout: r.ioTimeout }),
    });
    assert.is(writer.multiplexed, true, 'our output is framed from here');
    const { demux, filters } = await recvClientFilters(o.reader, { ...filterOptions(o.args), onMessage: (code) => messages.push(code) });
    assert.is(demux === null, o.protocol < 30, 'the client multiplexes from 30');
    assert.equal(filters.rules, r.rules.rules);
    assert.equal(messages, []);

    // Our bytes: the stock daemon's up to its first frame, our checksum list in place of its own.
    const ours = sink.bytes();
    const firstFrame = Number(/s2c @(\d+) frame/.exec(o.decoded)![1]);
    const ok = o.cap.s2c.length - o.daemonAfterOk.length;
    let stock = o.cap.s2c.subarray(ok, firstFrame);
    const listAt = /\[(\d+)\] server checksum list vstring \(len byte (\d+)\)/.exec(o.decoded);
    if (listAt) {
      const at = Number(listAt[1]) - ok;
      const ourList = Buffer.from(CHECKSUM_NAMES.join(' '));
      stock = Buffer.concat([stock.subarray(0, at), Buffer.from([ourList.length]), ourList, stock.subarray(at + 1 + Number(listAt[2]))]);
    }
    if (r.ioTimeout) stock = Buffer.concat([stock, o.cap.s2c.subarray(firstFrame, firstFrame + 8)]);
    assert.is(ours.toString('hex'), stock.toString('hex'));
    if (r.ioTimeout) assert.is(ours.subarray(-8).toString('hex'), '040000281e000000', 'MSG_IO_TIMEOUT 30');

    // The client's stream goes on where decoded.txt says the filter list ends (or at 0 without one).
    const end = /\[(\d+)\] filter list terminator/.exec(o.decoded);
    const next = end ? Number(end[1]) + 4 : 0;
    const stream = o.protocol >= 30 ? dataStream(o.cap.c2s, o.decoded, 'c2s') : null;
    const got = await o.reader.readBuf(4);
    if (stream) assert.is(got.toString('hex'), stream.subarray(next, next + 4).toString('hex'));
    else assert.ok(got.length === 4);
  });
}

test("round trip: our client's push start against our server's, at 27-32, with and without --delete", async () => {
  for (const protocol of [27, 28, 29, 30, 31, 32]) {
    for (const del of [false, true]) {
      const c = connection(protocol);
      const transfer = { ...DEFAULT_TRANSFER, delete: del };
      const args = serverArgs(transfer, protocol, 'push/');
      const rules = new FilterList().addExclude('*.tmp').addInclude('keep/'); // no sides: they travel from 29 only
      const client = startTransfer(c.client.reader, c.client.writer, args, {
        sendEarly: async () => {
          if (del) sendFilterList(c.client.writer, rules, { deleteExcluded: false });
          c.client.writer.writeBuf(Buffer.from('first data')); // where the file list would go
          await c.client.writer.flush();
        },
      });
      const server = (async () => {
        const got = (await recvArgs(c.server.reader)).map((a) => a.toString());
        const info = got.find((a) => /^-[^-]/.test(a))!;
        const setup = await startServer(c.server.reader, c.server.writer, {
          clientInfo: info.includes('e') ? info.slice(info.indexOf('e') + 1) : '',
          symlinkTimes: true,
          seed: 4242,
        });
        const role: SessionRole = { side: 'server', sender: false };
        const { filters } = await recvClientFilters(c.server.reader, filterOptions(got));
        const first = (await c.server.reader.readBuf(10)).toString();
        // The daemon speaks next (a generator's first request would go here).
        c.server.writer.writeBuf(Buffer.from('reply'));
        await c.server.writer.flush();
        return { got, setup, filters, first, role };
      })();
      const s = await server;
      const start = await client;
      assert.equal(s.got, args);
      assert.equal(start.setup, s.setup, `protocol ${protocol}`);
      assert.equal(s.filters.rules, del ? rules.rules : []);
      assert.is(s.first, 'first data');
      assert.is((await c.client.reader.readBuf(5)).toString(), 'reply');
      assert.is(statsDirection(s.role), 'none', 'a receiving daemon sends no stats');
      assert.is(s.setup.checksum, protocol >= 30 ? 'xxh128' : 'md4');
      assert.is(s.setup.compatFlags, protocol >= 30 ? 0x1fe : 0);
    }
  }
});

test('round trip: a whole listing, our client (startPull, finishListOnly) against our daemon side, at 27-32', async () => {
  for (const protocol of [27, 28, 29, 30, 31, 32]) {
    const c = connection(protocol);
    const transfer = { ...DEFAULT_TRANSFER, recursive: false, dirs: true, links: false, perms: false, times: false, delete: false };
    const args = serverArgs(transfer, protocol, 'push/', true);
    const entries: FileEntry[] = [
      { name: Buffer.from('.'), mode: S_IFDIR | 0o755, size: 4096, mtime: 1704164645, uid: 0, gid: 0 },
      { name: Buffer.from('a.txt'), mode: S_IFREG | 0o644, size: 3025, mtime: 1704164645, uid: 0, gid: 0 },
    ];
    const client = (async () => {
      const start = await startPull(c.client.reader, c.client.writer, args, {
        writeFilterList: (w) => sendFilterList(w, new FilterList().addExclude('*.o'), { deleteExcluded: false, role: 'receiver' }),
        flist: { recursive: false },
      });
      const stats = await finishListOnly(c.client.reader, c.client.writer);
      return { start, stats };
    })();
    const server = (async () => {
      const got = (await recvArgs(c.server.reader)).map((a) => a.toString());
      assert.ok(got.includes('--sender'));
      const setup = await startServer(c.server.reader, c.server.writer, {
        clientInfo: protocol >= 30 ? `.${CLIENT_CAPABILITIES}` : '',
        symlinkTimes: true,
        seed: -7,
        ioTimeout: 60,
      });
      const { filters } = await recvClientFilters(c.server.reader, filterOptions(got));
      const sent = sendFileList(c.server.writer, entries, {
        protocol,
        compatFlags: setup.compatFlags,
        checksumLength: digestLength(setup.checksum),
      });
      await c.server.writer.flush();
      const checksummer = await createChecksummer(setup.checksum, { protocol, seed: setup.seed, compatFlags: setup.compatFlags });
      const result = await sendFiles(c.server.reader, c.server.writer, sent.sorted, checksummer, {
        open: async () => ({ error: 'a listing asks for nothing', vanished: false }),
      });
      assert.is(statsDirection({ side: 'server', sender: true }), 'write');
      writeSenderStats(c.server.writer, { totalRead: 9, totalWritten: 99, totalSize: 3025, flistBuildTime: 0, flistXferTime: 0 });
      await c.server.writer.flush();
      await readFinalGoodbye(c.server.reader, c.server.writer, result.stats);
      return { filters };
    })();
    const s = await server;
    const { start, stats } = await client;
    assert.equal(s.filters.rules, new FilterList().addExclude('*.o').rules);
    assert.equal(start.flist.files.map((f) => f.name.toString()), ['.', 'a.txt'], `protocol ${protocol}`);
    assert.is(stats.totalWritten, 9);
    assert.is(stats.totalRead, 99);
    assert.is(stats.totalSize, 3025);
  }
});

test.run();
