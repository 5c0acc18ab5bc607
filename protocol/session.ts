// From `@RSYNCD: OK` to the start of the transfer (docs/protocol.md [session]): the argument
// list, the setup phase, then multiplexing (daemon output always; ours from protocol 30 on).
// Counterpart: rsync main.c client_run, io.c io_start_multiplex_in/out, cleanup.c _exit_cleanup.
import { sendArgs } from './args.js';
import { setupProtocol, type ChecksumName, type SetupResult } from './compat.js';
import { RemoteError } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';
import { MSG_ERROR_EXIT, startMultiplexIn, startMultiplexOut, writeMessage, type Demultiplexer, type MessageHandler } from './mplex.js';

export interface TransferStart {
  setup: SetupResult;
  demux: Demultiplexer;
}

export interface StartOptions {
  checksumChoice?: ChecksumName;
  onMessage?: MessageHandler;
}

// rsync/main.c: client_run (up to the file list)
export async function startTransfer(
  reader: ByteReader,
  writer: ByteWriter,
  args: readonly string[],
  options: StartOptions = {},
): Promise<TransferStart> {
  await sendArgs(writer, args);
  const setup = await setupProtocol(reader, writer, reader.protocol, options.checksumChoice ? { checksumChoice: options.checksumChoice } : {});
  const demux = startMultiplexIn(reader, options.onMessage ?? (() => {}));
  if (writer.protocol >= 30) startMultiplexOut(writer);
  return { setup, demux };
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
