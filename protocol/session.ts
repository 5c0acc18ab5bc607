// From `@RSYNCD: OK` to the start of the transfer (docs/protocol.md [session]): the argument
// list, the setup phase, then multiplexing (daemon output always; ours from protocol 30 on).
// Counterpart: rsync main.c client_run, io.c io_start_multiplex_in/out, cleanup.c _exit_cleanup.
import { sendArgs } from './args.js';
import { setupProtocol, type ChecksumName, type SetupResult } from './compat.js';
import { RemoteError } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';
import { digestLength } from './checksum.js';
import { receiveFileList, type FlistRecvOptions, type ReceivedFileList } from './flist-recv.js';
import { MSG_DATA, MSG_ERROR_EXIT, startMultiplexIn, startMultiplexOut, writeMessage, type Demultiplexer, type MessageHandler } from './mplex.js';

export interface TransferStart {
  setup: SetupResult;
  demux: Demultiplexer;
}

export interface StartOptions {
  checksumChoice?: ChecksumName;
  onMessage?: MessageHandler;
  /**
   * Our first data (filter list, file list), written before the checksum seed is read: it needs
   * the compat flags and the checksum but not the seed, and sent early it spares a Nagle stall
   * (see setupProtocol). Our output is already multiplexed when this runs (protocol >= 30).
   */
  sendEarly?: (negotiated: Omit<SetupResult, 'seed'>) => Promise<void>;
}

// rsync/main.c: client_run (up to the file list)
export async function startTransfer(
  reader: ByteReader,
  writer: ByteWriter,
  args: readonly string[],
  options: StartOptions = {},
): Promise<TransferStart> {
  await sendArgs(writer, args);
  const sendEarly = options.sendEarly;
  const setup = await setupProtocol(reader, writer, reader.protocol, {
    ...(options.checksumChoice && { checksumChoice: options.checksumChoice }),
    beforeSeed: async (negotiated) => {
      // From here our output is multiplexed (protocol >= 30): the setup phase is over for us.
      if (writer.protocol >= 30) startMultiplexOut(writer);
      await sendEarly?.(negotiated);
    },
  });
  const demux = startMultiplexIn(reader, options.onMessage ?? (() => {}));
  if (writer.multiplexed) {
    // An empty MSG_DATA frame (a keep-alive to the daemon) right after the seed: it carries our
    // ACK of the seed, so the daemon's first request is not held ~40 ms by Nagle's algorithm
    // waiting for a delayed ACK (the daemon writes it without reading anything from us first).
    await writeMessage(writer, MSG_DATA, new Uint8Array(0));
  }
  return { setup, demux };
}

export interface PullStartOptions {
  checksumChoice?: ChecksumName;
  onMessage?: MessageHandler;
  /**
   * Write the filter list the sending daemon reads (exclude.c send_filter_list, e.g. filter.ts
   * sendFilterList with role 'receiver'); a client receiver always sends one. Default: the empty
   * list (int32 0). Write only: we flush.
   */
  writeFilterList?: (writer: ByteWriter) => void;
  /**
   * What the daemon's file list carries, from the transfer's options (-o -g -D -l -H -c -r,
   * --numeric-ids). Protocol, compat flags and the checksum length come from the setup.
   */
  flist: Omit<FlistRecvOptions, 'protocol' | 'compatFlags' | 'checksumLength'>;
}

export interface PullStart extends TransferStart {
  /** The daemon's file list, sorted and checked: `flist.files[ndx]` is what the daemon means by ndx. */
  flist: ReceivedFileList;
}

/**
 * The start of a pull or a remote listing, where the daemon is the sender (`args` from serverArgs
 * with `pull`, i.e. with --sender): the argument list, the setup phase, our filter list (sent
 * before the seed is read, like a push's first data), multiplexing, then the daemon's file list.
 * What follows is the generator's requests (or, for a listing, list-only.ts finishListOnly).
 */
// rsync/main.c: client_run (the receiving branch: send_filter_list, recv_file_list)
export async function startPull(
  reader: ByteReader,
  writer: ByteWriter,
  args: readonly string[],
  options: PullStartOptions,
): Promise<PullStart> {
  const writeFilterList = options.writeFilterList ?? ((w: ByteWriter) => w.writeInt(0));
  const start = await startTransfer(reader, writer, args, {
    ...(options.checksumChoice && { checksumChoice: options.checksumChoice }),
    ...(options.onMessage && { onMessage: options.onMessage }),
    sendEarly: async () => {
      writeFilterList(writer);
      await writer.flush();
    },
  });
  try {
    const flist = await receiveFileList(reader, {
      ...options.flist,
      protocol: reader.protocol,
      compatFlags: start.setup.compatFlags,
      checksumLength: digestLength(start.setup.checksum),
    });
    return { ...start, flist };
  } catch (e) {
    // A refusal after setup (write-only module, refused option) arrives here as MSG_ERROR_EXIT.
    await acknowledgeErrorExit(writer, start.demux, e).catch(() => {});
    throw e;
  }
}

/**
 * After the daemon's MSG_ERROR_EXIT with a code (protocol >= 31), rsync's peer answers with an
 * empty MSG_ERROR_EXIT before closing; do the same so the daemon exits cleanly.
 */
// rsync/io.c: read_a_msg (MSG_ERROR_EXIT case)
export async function acknowledgeErrorExit(writer: ByteWriter, demux: Demultiplexer, error: unknown): Promise<void> {
  if (!(error instanceof RemoteError) || demux.peerExitCode === null) return;
  if (writer.protocol >= 31 && writer.multiplexed) await writeMessage(writer, MSG_ERROR_EXIT, new Uint8Array(0));
}
