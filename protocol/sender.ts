// The sender role of a push (docs/protocol.md [sender]): answer each request of the daemon's
// generator with the delta of the requested file, through the phases, then the final goodbye.
// --inplace makes the matcher keep behind the receiver's write offset; --append sends only what
// follows the length the receiver has ([sender-inplace], [sender-append]).
// Counterpart: rsync sender.c send_files, rsync.c read_ndx_and_attrs, main.c read_final_goodbye.
import { ProtocolError, EXIT } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';
import { BlockMatcher } from './match.js';
import { readBufferedSumHead, readSumBlocks, readSumHead, writeSumHead, type ChunkSource, type SumHead } from './sums.js';
import type { Checksummer } from './checksum.js';
import { tokenWriter, type TokenSink } from './token.js';
import type { TokenCompression } from './compress-codecs.js';
import { MSG_IO_ERROR, MSG_NO_SEND, writeMessageInt } from './mplex.js';
import type { FileEntry, FileTable } from './flist.js';
import { isReg } from './modes.js';
import { CHUNK_SIZE } from './constants.js';
import { type NdxAndAttrs, readBufferedRequest, readNdxAndAttrs, readNdxSkippingDelStats } from './request.js';
import type { XattrSender } from './xattrs.js';
import { FNAMECMP_PARTIAL_DIR } from './basis.js';
import { CF_INPLACE_PARTIAL_DIR } from './compat.js';
import {
  IOERR_GENERAL,
  IOERR_VANISHED,
  ITEM_IS_NEW,
  ITEM_TRANSFER,
  NDX_DONE,
  FNAMECMP_FNAME,
  type DeleteStats,
} from './constants.js';

/** Hand output to the socket once this much is buffered. */
const FLUSH_AT = 64 * 1024;

/** One answered request, for itemized and verbose output. */
export interface SentItem {
  ndx: number;
  entry: FileEntry;
  iflags: number;
  /** Bytes of literal data and of matched data sent for a transfer. */
  literalBytes: number;
  matchedBytes: number;
  /**
   * For a transfer, the bytes of the logical stream from the request on (rsync's
   * remember_initial_stats, for %b and %c of its log): read, the sum head and block sums;
   * written, the echoed request, the sum head, the tokens and the whole-file checksum. 0 otherwise.
   */
  bytesRead: number;
  bytesWritten: number;
  /** The name the request carried after ITEM_XNAME_FOLLOWS (a hard link's target, a fuzzy basis), or null. */
  xname: Buffer | null;
  /** The whole-file checksum sent after a transfer's data (null otherwise). */
  fileSum: Uint8Array | null;
}

export interface SenderStats {
  transferredFiles: number;
  totalTransferredSize: number;
  literalBytes: number;
  matchedBytes: number;
  createdFiles: number;
  deleted: DeleteStats | null;
}

/** Where the sender gets file contents: the caller's file access (protocol/ does no fs). */
export interface SenderSource {
  /**
   * The current contents of a regular file, streamed. Return null if it can no longer be read;
   * `vanished` tells whether it is gone (exit 24) or failed otherwise (exit 23). A source with a
   * `close()` method has it called once the sender is done with the file (read or not). The sender
   * consumes one file's chunks completely before it opens the next, so a source may hand out the
   * same buffer again on the next open(). A `size` on what it returns is the file's length now
   * (--append skips a file shorter than the list says).
   */
  open(entry: FileEntry, ndx: number): OpenedSource | Promise<OpenedSource>;
}

/** What SenderSource.open answers (at once, or as a promise). */
export type OpenedSource = (ChunkSource & { readonly size?: number }) | SourceFailure;

/**
 * A file the sender could not open: the words for the user, whether it is gone (exit 24) and,
 * when the system said why, its errno name (`EACCES`: the daemon words it as rsync's rsyserr).
 */
export interface SourceFailure {
  error: string;
  vanished: boolean;
  code?: string;
}

export interface SenderOptions {
  /** -n: the generator sends no sums and we send no data. */
  dryRun?: boolean;
  /** Called for each request answered (itemize, -v, progress). */
  onItem?: (item: SentItem) => void;
  /**
   * A transfer's file is open and its data is about to go (rsync prints -v's and -i's line here,
   * before --progress shows the data going; onItem follows once it went).
   */
  onTransferStart?: (item: Pick<SentItem, 'ndx' | 'entry' | 'iflags' | 'xname'>) => void;
  /** Each NDX_DONE of the generator (a phase ended; --info=progress2 shows its line again). */
  onPhaseDone?: () => void;
  /** Warnings and per-file errors (already worded for the user). */
  onWarning?: (text: string) => void;
  /**
   * --append: a file skipped for being shorter than the list says ("skipped diminished file", a
   * warning the peer is told of when we are the daemon). Without it, onWarning hears of it.
   */
  onDiminished?: (name: Buffer) => void | Promise<void>;
  /**
   * A requested file could not be opened ("file has vanished", "send_files failed to open": the
   * daemon tells its client too, as rsync's sender does). Without it, onWarning hears of it.
   */
  onOpenFailed?: (entry: FileEntry, failure: SourceFailure) => void | Promise<void>;
  /** We are the daemon (rsync's am_server): the client generator's NDX_DEL_STATS is echoed back. */
  amServer?: boolean;
  /** -z: the tokens are deflated (zlib or zlibx, at this level); unset, simple tokens. */
  compression?: TokenCompression | null;
  /** --inplace: the receiver rebuilds each file over itself; no match may start behind its write offset. */
  inplace?: boolean;
  /** --append (1) / --append-verify (2): only the data past the receiver's length is sent (implies inplace). */
  append?: number;
  /** -b: before protocol 29 it tells whether the receiver writes in place (rsync's make_backups). */
  backup?: boolean;
  /** CF_INPLACE_PARTIAL_DIR was agreed: a basis in the partial dir is updated in place (rsync's inplace_partial). */
  inplacePartial?: boolean;
  /** -X: the generator's requests for long xattr values, answered in the echo (protocol/xattrs.ts). */
  xattrs?: XattrSender;
}

/**
 * The sender's share of the receiver's write mode: --inplace, --append (-verify), -b (it matters
 * before protocol 29) and whether CF_INPLACE_PARTIAL_DIR was agreed (rsync's inplace_partial).
 */
export function senderWriteMode(
  options: { inplace?: boolean; append?: number; backup?: boolean },
  compatFlags: number,
): Pick<SenderOptions, 'inplace' | 'append' | 'backup' | 'inplacePartial'> {
  return {
    ...(options.inplace && { inplace: true }),
    ...(options.append && { append: options.append }),
    ...(options.backup && { backup: true }),
    ...((compatFlags & CF_INPLACE_PARTIAL_DIR) !== 0 && { inplacePartial: true }),
  };
}

export interface SenderResult {
  stats: SenderStats;
  /** io_error bits gathered while sending (IOERR_VANISHED for files gone). */
  ioError: number;
}

/**
 * Serve the daemon generator's requests until the last phase ends. `files` is the list in
 * rsync's sorted order (ndx → entry: an array, or a packed list's sorted view). Returns what was sent.
 */
// rsync/sender.c: send_files
export async function sendFiles(
  reader: ByteReader,
  writer: ByteWriter,
  files: FileTable,
  checksummer: Checksummer,
  source: SenderSource,
  options: SenderOptions = {},
): Promise<SenderResult> {
  // Our answers go out when reading on would wait for the connection itself (rsync's perform_io),
  // not at the end of each frame the daemon sent: a -n push of 200k files made 6,400 writes of
  // a few bytes each that way, rsync 320. [sender-flush]
  const previousWait = reader.beforeWait;
  reader.beforeWait = () => writer.flush();
  try {
    return await answerRequests(reader, writer, files, checksummer, source, options);
  } finally {
    reader.beforeWait = previousWait;
  }
}

async function answerRequests(
  reader: ByteReader,
  writer: ByteWriter,
  files: FileTable,
  checksummer: Checksummer,
  source: SenderSource,
  options: SenderOptions,
): Promise<SenderResult> {
  const protocol = reader.protocol;
  const maxPhase = protocol >= 29 ? 2 : 1;
  const stats: SenderStats = {
    transferredFiles: 0,
    totalTransferredSize: 0,
    literalBytes: 0,
    matchedBytes: 0,
    createdFiles: 0,
    deleted: null,
  };
  const matcher = new BlockMatcher(checksummer);
  const tokens = tokenWriter(writer, options.compression);
  let ioError = 0;
  let phase = 0;
  // rsync/compat.c: before protocol 30 the receiver always hashes the kept part (append_mode 2).
  const appendMode = options.append ? (protocol < 30 ? 2 : Math.min(options.append, 2)) : 0;
  const inplace = !!options.inplace || appendMode > 0;

  // Besides the wait hook above: a big backlog goes out without waiting for a read. [sender-flush]
  const flushIfBig = () => (writer.pending >= FLUSH_AT ? writer.flush() : undefined);
  const requestOptions = { beforeRead: flushIfBig, ...(options.amServer && { echoDelStatsTo: writer }) };

  for (;;) {
    // 1. The request: ndx (NDX_DONE ends a phase), iflags, optional basis type and name. [sender-request]
    // Most requests are already buffered (the daemon's generator sends them in batches): read
    // those without an await, whose promise and frame cost ~400 bytes of garbage a file.
    const request = (writer.pending < FLUSH_AT && readBufferedRequest(reader, files.length)) || (await readNdxAndAttrs(reader, files.length, stats, requestOptions));
    if (request === NDX_DONE) {
      options.onPhaseDone?.();
      if (++phase > maxPhase) break;
      writer.writeNdx(NDX_DONE);
      continue;
    }
    const { ndx, iflags, basisType, xname } = request;
    const entry = files.at(ndx)!;
    const xattrs = options.xattrs?.follows(iflags) ? options.xattrs : null;
    if (xattrs) await xattrs.readRequest(reader, ndx);

    // 2. Not a transfer (a new dir, symlink, changed attributes): echo it back. [sender-echo]
    if (!(iflags & ITEM_TRANSFER)) {
      echoRequest(writer, request, xattrs);
      if (iflags & ITEM_IS_NEW) stats.createdFiles++;
      options.onItem?.({ ndx, entry, iflags, literalBytes: 0, matchedBytes: 0, bytesRead: 0, bytesWritten: 0, xname, fileSum: null });
      continue;
    }
    if (phase === 2) throw new ProtocolError(`transfer request for index ${ndx} in phase 2`);
    if (!isReg(entry.mode)) throw new ProtocolError(`transfer request for a non-regular file (index ${ndx})`);
    if (iflags & ITEM_IS_NEW) stats.createdFiles++;
    stats.transferredFiles++;
    stats.totalTransferredSize += entry.size;

    // 3. Dry run: the daemon sends no sums; answer with the echo alone.
    if (options.dryRun) {
      echoRequest(writer, request, xattrs);
      options.onItem?.({ ndx, entry, iflags, literalBytes: 0, matchedBytes: 0, bytesRead: 0, bytesWritten: 0, xname, fileSum: null });
      continue;
    }

    // 4. The basis's block sums, then our file: echo, sum head, tokens, whole-file checksum. [sender-delta]
    // A redo (phase 1) is a whole delta again: rsync turns --append off for it.
    const append = phase === 0 ? appendMode : 0;
    // rsync/sender.c: send_files (updating_basis_file)
    const updatingBasis =
      (!!options.inplacePartial && basisType === FNAMECMP_PARTIAL_DIR) ||
      (inplace && (protocol >= 29 ? (basisType ?? FNAMECMP_FNAME) === FNAMECMP_FNAME : !options.backup || phase > 0));
    const readStart = reader.consumed; // rsync's remember_initial_stats
    const writeStart = writer.written;
    const head = readBufferedSumHead(reader, checksummer.digestLength) ?? (await readSumHead(reader, checksummer.digestLength));
    // --append: the head alone (the generator sends no block sums); it gives the length kept. [sender-append]
    const sums = append || head.count === 0 ? null : await readSumBlocks(reader, head);
    const opened = source.open(entry, ndx);
    const chunks = opened instanceof Promise ? await opened : opened;
    if ('error' in chunks) {
      // rsync/sender.c: send_files (fd == -1: FWARNING "file has vanished" or FERROR_XFER)
      ioError |= chunks.vanished ? IOERR_VANISHED : IOERR_GENERAL;
      if (options.onOpenFailed) await options.onOpenFailed(entry, chunks);
      else options.onWarning?.(chunks.error);
      if (protocol >= 30) await writeMessageInt(writer, MSG_NO_SEND, ndx);
      continue;
    }
    // --append: a file shorter now than the list says is not sent (the receiver would keep more
    // than we have); a warning, no error (rsync's FWARNING), and MSG_NO_SEND from 30.
    // rsync/sender.c: send_files (append_mode > 0 && st.st_size < F_LENGTH(file))
    if (append && chunks.size !== undefined && chunks.size < entry.size) {
      (chunks as { close?: () => void }).close?.();
      if (options.onDiminished) await options.onDiminished(entry.name);
      else options.onWarning?.(`skipped diminished file: "${entry.name.toString()}"`);
      if (protocol >= 30) await writeMessageInt(writer, MSG_NO_SEND, ndx);
      continue;
    }
    let result: Awaited<ReturnType<typeof sendWhole>>;
    try {
      options.onTransferStart?.({ ndx, entry, iflags, xname });
      echoRequest(writer, request, xattrs);
      writeSumHead(writer, head);
      result = append
        ? await sendAppended(chunks, checksummer, tokens, appendedFrom(head), append === 2)
        : head.count
          ? await matcher.match(chunks, sums, tokens, { updatingBasis })
          : (sendWholeNow(chunks, checksummer, tokens) ?? (await sendWhole(chunks, checksummer, tokens)));
    } finally {
      (chunks as { close?: () => void }).close?.(); // whatever happened, the file is let go
    }
    tokens.end();
    writer.writeBuf(result.fileSum);
    stats.literalBytes += result.literalBytes;
    stats.matchedBytes += result.matchedBytes;
    if (result.length !== entry.size) {
      // The daemon gets what we read (its checksum holds); the mirror will be stale until the next push.
      ioError |= IOERR_VANISHED;
      options.onWarning?.(`file changed size during transfer: ${entry.name.toString()}`);
    }
    options.onItem?.({
      ndx,
      entry,
      iflags,
      literalBytes: result.literalBytes,
      matchedBytes: result.matchedBytes,
      bytesRead: reader.consumed - readStart,
      bytesWritten: writer.written - writeStart,
      xname,
      fileSum: result.fileSum,
    });
  }

  // 5. New io_error bits travel as MSG_IO_ERROR (protocol >= 30), then our last NDX_DONE. [sender-phases]
  if (ioError && protocol >= 30) await writeMessageInt(writer, MSG_IO_ERROR, ioError);
  writer.writeNdx(NDX_DONE);
  await writer.flush();
  return { stats, ioError };
}

/** The request as the sender answers it before its data (or alone): ndx, flags, basis type, name. */
// rsync/sender.c: write_ndx_and_attrs
function echoRequest(writer: ByteWriter, request: NdxAndAttrs, xattrs: SenderOptions['xattrs'] | null): void {
  writer.writeNdx(request.ndx);
  if (writer.protocol < 29) return;
  writer.writeShort(request.iflags);
  if (request.basisType !== null) writer.writeByte(request.basisType);
  if (request.xname !== null) writer.writeVstring(request.xname);
  xattrs?.writeAnswer(writer, request.ndx);
}

/**
 * After send_files: the generator's last NDX_DONEs (answering the one at protocol >= 31). As the
 * daemon (`amServer`), a client's NDX_DEL_STATS met on the way is echoed, as rsync's daemon does.
 */
// rsync/main.c: read_final_goodbye [sender-goodbye]
export async function readFinalGoodbye(
  reader: ByteReader,
  writer: ByteWriter,
  stats: SenderStats,
  options: Pick<SenderOptions, 'amServer'> = {},
): Promise<void> {
  const protocol = reader.protocol;
  const echo = options.amServer ? writer : undefined;
  let ndx = protocol < 29 ? await reader.readInt() : await readNdxSkippingDelStats(reader, stats, echo);
  if (protocol >= 31 && ndx === NDX_DONE) {
    writer.writeNdx(NDX_DONE);
    await writer.flush();
    ndx = await readNdxSkippingDelStats(reader, stats, echo);
  }
  if (ndx !== NDX_DONE) throw new ProtocolError(`invalid packet at end of run (${ndx})`, { exitCode: EXIT.PROTOCOL });
}

/** --append: the length the receiver keeps, from the sum head (count blocks, the last one short). */
// rsync/sender.c: receive_sums (append_mode's flength)
function appendedFrom(head: SumHead): number {
  let length = head.count * head.blength;
  if (head.remainder) length -= head.blength - head.remainder;
  return length;
}

/**
 * --append / --append-verify: the first `from` bytes are the receiver's already and are skipped
 * (hashed into the whole-file checksum only for -verify, as the receiver hashes them then), the
 * rest goes as literal data. A file now shorter than `from` sends nothing.
 */
// rsync/match.c: match_sums (append_mode > 0)
async function sendAppended(chunks: ChunkSource, checksummer: Checksummer, tokens: TokenSink, from: number, verify: boolean) {
  const hasher = checksummer.startFile();
  // Literal tokens of CHUNK_SIZE counted from `from`, as rsync cuts them, whatever our reads' sizes.
  const piece = Buffer.allocUnsafe(CHUNK_SIZE);
  let held = 0;
  let length = 0;
  let literalBytes = 0;
  for await (const chunk of chunks) {
    const skip = Math.max(0, Math.min(chunk.length, from - length));
    length += chunk.length;
    if (skip && verify) hasher.update(skip === chunk.length ? chunk : chunk.subarray(0, skip));
    if (skip === chunk.length) continue;
    const rest = skip ? chunk.subarray(skip) : chunk;
    hasher.update(rest);
    literalBytes += rest.length;
    for (let at = 0; at < rest.length; ) {
      const n = Math.min(CHUNK_SIZE - held, rest.length - at);
      piece.set(rest.subarray(at, at + n), held);
      held += n;
      at += n;
      if (held === CHUNK_SIZE) {
        await tokens.onLiteral(piece);
        held = 0;
      }
    }
  }
  if (held) await tokens.onLiteral(piece.subarray(0, held));
  return { fileSum: hasher.digest(), length, literalBytes, matchedBytes: 0 };
}

/**
 * sendWhole without waiting, for a file read in one buffer (a small file) when the output has room
 * for it; null (nothing written) otherwise.
 */
function sendWholeNow(chunks: ChunkSource, checksummer: Checksummer, tokens: TokenSink): Awaited<ReturnType<typeof sendWhole>> | null {
  if (!Array.isArray(chunks) || chunks.length !== 1 || !tokens.literalNow) return null;
  const chunk = chunks[0] as Uint8Array;
  if (!tokens.literalNow(chunk)) return null;
  const hasher = checksummer.startFile();
  hasher.update(chunk);
  return { fileSum: hasher.digest(), length: chunk.length, literalBytes: chunk.length, matchedBytes: 0 };
}

/** No basis on the daemon's side: the file goes out as literal data, hashed on the way. */
async function sendWhole(chunks: ChunkSource, checksummer: Checksummer, tokens: TokenSink) {
  const hasher = checksummer.startFile();
  let length = 0;
  for await (const chunk of chunks) {
    hasher.update(chunk);
    await tokens.onLiteral(chunk);
    length += chunk.length;
  }
  return { fileSum: hasher.digest(), length, literalBytes: length, matchedBytes: 0 };
}
