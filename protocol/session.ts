// From `@RSYNCD: OK` to the start of the transfer (docs/protocol.md [session]), from either side:
// the argument list, the setup phase, multiplexing, the filter list. Which side we are is a
// parameter (`Side`, rsync's am_server); who multiplexes from when is decided in one place
// (multiplexesOutput). The client's half: startTransfer, startPull. The server's half (the daemon
// side, docs/serve-roles.md): startServer, recvClientFilters.
// Counterpart: rsync main.c client_run, start_server, do_server_recv; io.c io_start_multiplex_in/out;
// cleanup.c _exit_cleanup.
import { sendArgs } from './args.js';
import { setupProtocol, type ChecksumName, type CompressOptions, type SetupResult } from './compat.js';
import { RemoteError, SocketError } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';
import { digestLength } from './checksum.js';
import { recvFilterList, type FilterList, type RecvFilterOptions } from './filter.js';
import { receiveFileList, type FlistRecvOptions, type ReceivedFileList } from './flist-recv.js';
import {
  MSG_DATA,
  MSG_ERROR_EXIT,
  MSG_IO_TIMEOUT,
  startMultiplexIn,
  startMultiplexOut,
  writeMessage,
  type Demultiplexer,
  type MessageHandler,
} from './mplex.js';

/** Which end of the connection we are: the client dials, the server (our daemon) answers. */
export type Side = 'client' | 'server';

/**
 * Who we are in a session, as rsync's am_server and am_sender: a client's push is
 * { client, sender }, its pull or listing { client, receiver }; the daemon plays the other one.
 */
export interface SessionRole {
  side: Side;
  /** We send files (and the file list); otherwise we run the generator and the receiver. */
  sender: boolean;
}

/**
 * Whether `side` multiplexes its output in the binary phase at `protocol`: the server from the
 * start (protocol >= 23, all we speak), the client from protocol 30 (rsync's
 * need_messages_from_generator). Each side's input is multiplexed when its peer's output is.
 */
// rsync/main.c: start_server (io_start_multiplex_out at >= 23), client_run (at >= 30) [setup-mplex] [side-mplex]
export function multiplexesOutput(side: Side, protocol: number): boolean {
  return side === 'server' ? protocol >= 23 : protocol >= 30;
}

/** Whether the output of the peer of `side` is multiplexed (we then read frames). */
// rsync/main.c: client_run, start_server, do_server_recv (io_start_multiplex_in)
export function multiplexesInput(side: Side, protocol: number): boolean {
  return multiplexesOutput(side === 'server' ? 'client' : 'server', protocol);
}

export interface TransferStart {
  setup: SetupResult;
  demux: Demultiplexer;
}

export interface StartOptions extends CompressOptions {
  checksumChoice?: ChecksumName;
  /** -z without --compress-choice: the compressions we offer (compat.ts clientCompressList). */
  compressList?: readonly string[];
  onMessage?: MessageHandler;
  /**
   * Our first data (filter list, file list), written before the checksum seed is read: it needs
   * the compat flags and the checksum but not the seed, and sent early it spares a Nagle stall
   * (see setupProtocol). Our output is already multiplexed when this runs (protocol >= 30).
   */
  sendEarly?: (negotiated: Omit<SetupResult, 'seed'>) => Promise<void>;
  /**
   * Leave out the empty MSG_DATA frame after the seed: a pull forwarding its --files-from list
   * at protocol 30 sends it unframed next, and the daemon reads its frames no more by then.
   */
  noKeepAlive?: boolean;
}

// rsync/main.c: client_run (up to the file list) [args] [setup] [latency-early] [latency-keepalive]
export async function startTransfer(
  reader: ByteReader,
  writer: ByteWriter,
  args: readonly string[],
  options: StartOptions = {},
): Promise<TransferStart> {
  await sendArgs(writer, args);
  const sendEarly = options.sendEarly;
  // A daemon that refuses after the setup (a read-only module) closes while our early data may
  // still be going out: the write fails, and its reason waits behind the seed, in the frames.
  let writeFailure: SocketError | undefined;
  const setup = await setupProtocol(reader, writer, reader.protocol, {
    side: 'client',
    ...(options.checksumChoice && { checksumChoice: options.checksumChoice }),
    ...(options.compressList && { compressList: options.compressList }),
    ...compressOptionsOf(options),
    beforeSeed: async (negotiated) => {
      // From here our output is multiplexed (protocol >= 30): the setup phase is over for us.
      if (multiplexesOutput('client', writer.protocol)) startMultiplexOut(writer);
      try {
        await sendEarly?.(negotiated);
      } catch (e) {
        if (!(e instanceof SocketError)) throw e;
        writeFailure = e;
      }
    },
  });
  // The daemon's output is multiplexed at every protocol we speak (multiplexesInput('client', 27+)).
  const demux = startMultiplexIn(reader, options.onMessage ?? (() => {}));
  if (writeFailure) throw (await drainPeerError(reader)) ?? writeFailure;
  if (writer.multiplexed && !options.noKeepAlive) {
    // An empty MSG_DATA frame (a keep-alive to the daemon) right after the seed: it carries our
    // ACK of the seed, so the daemon's first request is not held ~40 ms by Nagle's algorithm
    // waiting for a delayed ACK (the daemon writes it without reading anything from us first).
    await writeMessage(writer, MSG_DATA, new Uint8Array(0));
  }
  return { setup, demux };
}

export interface PullStartOptions extends CompressOptions {
  checksumChoice?: ChecksumName;
  /** -z without --compress-choice: the compressions we offer. */
  compressList?: readonly string[];
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
  /**
   * --files-from with a local list: send it to the daemon's sender (after our filter list) while
   * its file list is read, as rsync's client does (src/transfer/files-from.ts forwardFilesFrom).
   */
  forwardFilesFrom?: (writer: ByteWriter) => Promise<void>;
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
// rsync/main.c: client_run (the receiving branch: send_filter_list, recv_file_list) [flist-recv-start]
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
    ...(options.compressList && { compressList: options.compressList }),
    ...compressOptionsOf(options),
    sendEarly: async () => {
      writeFilterList(writer);
      await writer.flush();
    },
    // Below 31 the forwarded list travels unframed: no frame of ours may come before it.
    ...(options.forwardFilesFrom && writer.protocol < 31 && { noKeepAlive: true }),
  });
  try {
    // [files-from] The list goes out while the daemon's file list comes in (neither waits for the other).
    const receiving = receiveFileList(reader, {
      ...options.flist,
      protocol: reader.protocol,
      compatFlags: start.setup.compatFlags,
      checksumLength: digestLength(start.setup.checksum),
    });
    let flist: ReceivedFileList;
    if (options.forwardFilesFrom) {
      // Whichever fails first ends the pull (the other's later failure is the same one's echo).
      receiving.catch(() => {});
      [flist] = await Promise.all([receiving, options.forwardFilesFrom(writer)]);
    } else {
      flist = await receiving;
    }
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
// rsync/io.c: read_a_msg (MSG_ERROR_EXIT case) [mplex-error-ack]
export async function acknowledgeErrorExit(writer: ByteWriter, demux: Demultiplexer, error: unknown): Promise<void> {
  if (!(error instanceof RemoteError) || demux.peerExitCode === null) return;
  if (writer.protocol >= 31 && writer.multiplexed) await writeMessage(writer, MSG_ERROR_EXIT, new Uint8Array(0));
}

/**
 * After our connection failed (a write refused with EPIPE or ECONNRESET: the daemon closed while we
 * were writing), read on through what it had sent until the stream ends or fails: its fatal
 * error travels there (its MSG_ERROR texts, reported on the way, and MSG_ERROR_EXIT with its exit
 * code). Returns that RemoteError to report in place of the socket's, or null.
 */
// rsync/io.c: drain_multiplex_messages
export async function drainPeerError(reader: ByteReader): Promise<RemoteError | null> {
  try {
    while ((await reader.readSome(64 * 1024)) !== null);
  } catch (e) {
    if (e instanceof RemoteError) return e;
  }
  return null;
}

export interface ServerStartOptions extends CompressOptions {
  /** The client's capability letters (the text after `-e` in its arguments; '' when absent). */
  clientInfo: string;
  /** The client's --checksum-choice, if it gave one (then no lists cross). */
  checksumChoice?: ChecksumName;
  /** Whether our receiver sets the times of symlinks (CF_SYMLINK_TIMES). */
  symlinkTimes: boolean;
  /** The checksum seed for this session (the caller draws it: protocol/ has no clock or pid). */
  seed: number;
  /** When the client asked for -z without --compress-choice: the compressions we speak (compat.ts compressNames). */
  compressList?: readonly string[];
  /** The module's `timeout` in seconds, told to the client from protocol 31 so it uses the same. */
  ioTimeout?: number;
}

/**
 * The daemon's start of the binary phase, once it has read the client's arguments: the server's
 * half of the setup phase (compat flags, checksum lists, seed), then our output multiplexed, then
 * the module's timeout as MSG_IO_TIMEOUT. A receiving daemon refuses a read-only module right
 * after this; then recvClientFilters.
 */
// rsync/main.c: start_server (setup_protocol, io_start_multiplex_out, MSG_IO_TIMEOUT) [side-setup]
export async function startServer(reader: ByteReader, writer: ByteWriter, options: ServerStartOptions): Promise<SetupResult> {
  const protocol = writer.protocol;
  // 1. The setup phase, the server's half: not multiplexed in either direction.
  const setup = await setupProtocol(reader, writer, protocol, {
    side: 'server',
    clientInfo: options.clientInfo,
    ...(options.checksumChoice && { checksumChoice: options.checksumChoice }),
    symlinkTimes: options.symlinkTimes,
    seed: options.seed,
    ...(options.compressList && { compressList: options.compressList }),
    ...compressOptionsOf(options),
  });
  // 2. From here everything we write travels in frames.
  if (multiplexesOutput('server', protocol)) startMultiplexOut(writer);
  // 3. The module's timeout, so the client does not give up on us sooner (or later).
  if (options.ioTimeout && protocol >= 31) {
    const payload = Buffer.alloc(4);
    payload.writeInt32LE(options.ioTimeout, 0);
    await writeMessage(writer, MSG_IO_TIMEOUT, payload);
  }
  return setup;
}

export interface ClientFilters {
  /** The client's frames from here, or null below protocol 30 (its output is then raw). */
  demux: Demultiplexer | null;
  /** The rules the client sent (empty when none travel). */
  filters: FilterList;
}

/**
 * After startServer: the client's output as frames when it multiplexes, then its filter list
 * (always to a sending daemon; to a receiving one only with --delete* or --prune-empty-dirs).
 * A sending daemon refuses a write-only module right after this; then the role.
 */
// rsync/main.c: start_server / do_server_recv (io_start_multiplex_in, recv_filter_list) [side-filter]
export async function recvClientFilters(
  reader: ByteReader,
  options: RecvFilterOptions & { onMessage?: MessageHandler },
): Promise<ClientFilters> {
  const { onMessage, ...filterOptions } = options;
  const demux = multiplexesInput('server', reader.protocol) ? startMultiplexIn(reader, onMessage ?? (() => {})) : null;
  const filters = await recvFilterList(reader, filterOptions);
  return { demux, filters };
}

/** The -z settings of a start's options, without the unset ones. */
function compressOptionsOf(options: CompressOptions): CompressOptions {
  return {
    ...(options.compressChoice !== undefined && { compressChoice: options.compressChoice }),
    ...(options.compressLevel !== undefined && { compressLevel: options.compressLevel }),
    ...(options.skipCompressAll && { skipCompressAll: true }),
    ...(options.codecs && { codecs: options.codecs }),
  };
}
