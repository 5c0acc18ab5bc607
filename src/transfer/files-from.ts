// A pull's local --files-from list (a file, or `-` for stdin) forwarded to the daemon's sender
// while its file list comes back: the list is opened before connecting (a missing file stops us
// there, as rsync's option parse does), then streamed chunk by chunk through the converter of
// protocol/files-from.ts, each write awaiting the socket's drain, side by side with the read of
// the daemon's list, so a list of any size neither deadlocks nor is held whole.
// Docs: docs/protocol.md [files-from]. Counterpart: rsync io.c start_filesfrom_forwarding,
// forward_filesfrom_data; main.c client_run.
import { closeSync, createReadStream, openSync, type ReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { ByteWriter } from '../../protocol/io.js';
import { FilesFromForwarder } from '../../protocol/files-from.js';
import { EXIT, RsyncError } from '../../protocol/errors.js';
import { MAXPATHLEN } from '../../protocol/constants.js';
import type { RequestedNames } from '../../protocol/implied-includes.js';

/** A local list ready to forward: its bytes as a stream (the file opened already, or stdin). */
export interface LocalFilesFrom {
  stream(): Readable;
  /** Close the file if it was never read (the transfer failed before the list was sent). */
  close(): void;
}

/** Open a local --files-from list now (`-`: stdin): a missing or unreadable file is rsync's option error (exit 1). */
// rsync/options.c: parse_arguments (filesfrom_fd = open(files_from))
export function openLocalFilesFrom(file: string): LocalFilesFrom {
  if (file === '-') return { stream: () => process.stdin, close: () => {} };
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new RsyncError('ERR_RSYNC_FILES_FROM', `failed to open files-from file ${file}: ${(e as Error).message}`, EXIT.SYNTAX);
  }
  let stream: ReadStream | null = null;
  return {
    stream: () => (stream ??= createReadStream('', { fd, highWaterMark: 64 * 1024 })),
    close: () => {
      if (!stream) closeSync(fd);
      else stream.destroy();
    },
  };
}

/**
 * Send the list to the daemon's sender: NUL-separated names, then the empty name. Below
 * protocol 31 rsync sends it outside the multiplexed frames (at 30, where our output is
 * framed, the frames pause meanwhile); from 31 in MSG_DATA frames. Nothing else is written
 * while it goes (the client writes nothing more until the daemon's list is in).
 */
// rsync/io.c: start_filesfrom_forwarding + forward_filesfrom_data
export async function forwardFilesFrom(writer: ByteWriter, list: LocalFilesFrom, from0: boolean, requested?: RequestedNames): Promise<void> {
  const converter = new FilesFromForwarder(from0);
  const noteNames = requested ? impliedIncludesOf(requested) : null;
  const raw = writer.protocol < 31;
  await writer.flush();
  const send = async (bytes: Buffer): Promise<void> => {
    if (bytes.length === 0) return;
    // Each name becomes a requested name before it goes: the daemon's entry for it can only come after.
    noteNames?.(bytes);
    if (raw) {
      await writer.sink.write(bytes);
    } else {
      writer.writeBuf(bytes);
      await writer.flush();
    }
  };
  const chunks = list.stream()[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<Buffer>;
    try {
      next = (await chunks.next()) as IteratorResult<Buffer>;
    } catch (e) {
      throw new RsyncError('ERR_RSYNC_FILES_FROM', `read error on the --files-from list: ${(e as Error).message}`, EXIT.FILEIO, { cause: e });
    }
    if (next.done) break;
    await send(converter.chunk(next.value));
  }
  await send(converter.end());
}

/**
 * What turns the forwarded bytes into requested names: each NUL-terminated name, a name split
 * across chunks joined first (one longer than a path can be is dropped, as rsync drops it).
 */
// rsync/io.c: forward_filesfrom_data (add_implied_include, implied_include_partial_string)
function impliedIncludesOf(requested: RequestedNames): (bytes: Buffer) => void {
  let pending: Buffer | null = null;
  let pendingTooLong = false;
  return (bytes) => {
    let start = 0;
    for (let nul = bytes.indexOf(0); nul !== -1; nul = bytes.indexOf(0, start)) {
      const piece = bytes.subarray(start, nul);
      const name = pending ? Buffer.concat([pending, piece]) : piece;
      if (!pendingTooLong && name.length > 0 && name.length < MAXPATHLEN) requested.addArg(name, false);
      pending = null;
      pendingTooLong = false;
      start = nul + 1;
    }
    if (start < bytes.length) {
      const rest = bytes.subarray(start);
      const length = (pending?.length ?? 0) + rest.length;
      if (length >= MAXPATHLEN) {
        pending = null;
        pendingTooLong = true;
      } else if (!pendingTooLong) {
        pending = pending ? Buffer.concat([pending, rest]) : Buffer.from(rest);
      }
    }
  };
}
