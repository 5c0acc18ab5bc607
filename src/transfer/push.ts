// A push: put a local tree onto a daemon module, as `rsync -rlpt --delete SOURCE host::module/path`
// does, through the sender role. Used by `--once` and by every batch of the live mirror.
import { openModule, type DaemonSession, type SessionOptions } from './client.js';
import { startSourceScan, scanSelection, localSource, type PathFilter, type LocalEntry, type ScanResult, type SelectionItem, type SourceWalk } from './scan.js';
import { serverArgs, DELAY_UPDATES_DIR, type TransferOptions } from '../../protocol/args.js';
import { startTransfer, acknowledgeErrorExit, drainPeerError, type TransferStart } from '../../protocol/session.js';
import { clientCompressOptions, parseChecksumName, type ChecksumName } from '../../protocol/compat.js';
import { compressCodecs } from '../compress-codecs.js';
import type { Checksummer } from '../../protocol/checksum.js';
import type { FileEntry } from '../../protocol/flist.js';
import type { SortedFileList } from '../../protocol/flist-packed.js';
import { sendFiles, readFinalGoodbye, senderWriteMode, type SenderOptions, type SenderSource, type SenderStats, type SentItem } from '../../protocol/sender.js';
import type { ChunkSource } from '../../protocol/sums.js';
import { ITEM_IS_NEW } from '../../protocol/constants.js';
import { MSG_DATA, PeerMessages, writeMessage, type MessageHandler } from '../../protocol/mplex.js';
import { EXIT, MemoryCapError, RemoteError, RsyncError, SocketError, UsageError, transferExitCode, type MemoryBudget } from '../../protocol/errors.js';
import { readForwardedNames } from '../../protocol/files-from.js';
import { FILES_FROM_MAX_BYTES, filesFromSource } from './walk-options.js';
import { statSync } from 'node:fs';
import type { ByteWriter } from '../../protocol/io.js';
import { remotePath, type DaemonTarget } from './target.js';
import { adoptModuleTimeout } from './socket.js';
import { writeLocalFileList, streamLocalFileList, sessionChecksummer } from './send-list.js';
import { closeOnAbort } from './abort.js';
import { senderXattrs, xattrOptionsFor } from './local-xattrs.js';
import { afterEntries, senderAcls } from './local-acls.js';
import type { XattrSender } from '../../protocol/xattrs.js';
import { chmodPackedList, compileChmodOptions } from './list-chmod.js';
import { pushFilter } from './filters.js';
import { FilterList } from '../../protocol/filter.js';
import { messageText, shownName, type OutputCharset, type TransferSummary } from './output.js';
import { checkSendingFakeSuper, foldStatRecords } from './fake-super.js';

/** Filter rules: what the scan skips, and what the daemon is told (only with --delete). */
export interface PushFilter extends PathFilter {
  /** Whether the daemon expects a filter list (rsync's receiver_wants_list). */
  wantsList(protocol: number, deleteMode: boolean): boolean;
  /** Write the filter list the daemon receives (rsync's send_filter_list). */
  sendList(writer: ByteWriter): void;
  /**
   * The same rules with a relative --partial-dir excluded after them (filters.ts pushFilter), or
   * undefined when they already exclude it. A filter without it is used as it is.
   */
  withPartialDir?(dir: string): PushFilter | undefined;
}

export interface PushOptions {
  source: string;
  target: DaemonTarget;
  transfer: TransferOptions;
  session: Omit<SessionOptions, 'host' | 'port'>;
  /**
   * A session already opened on the target's module (connected, greeted, authenticated, waiting
   * for the argument list): the push then costs no connection setup. Used when it is still open.
   */
  preopened?: DaemonSession;
  /**
   * A session primed for this very push (see primeSession: the argument list and the setup
   * phase already done): the push then costs only its file list and data. Used when it is still
   * open and was primed with the same argument list; otherwise closed, and the push connects.
   */
  primed?: PrimedSession;
  filter?: PushFilter;
  /** The charset the daemon's texts are shown in (rsync escapes what it cannot show). Default 'utf8'. */
  charset?: OutputCharset;
  /** Daemon text (MSG_INFO, as rsync shows it: output.ts messageText) for stdout. */
  onInfo?: (text: string) => void;
  /** The daemon's warnings and errors (as rsync shows them), and our own, for stderr. */
  onError?: (text: string) => void;
  /** Each answered request (itemize, -v, progress). */
  onItem?: (item: SentItem) => void;
  /** A transfer's file is open and its data about to go (-v/-i lines before --progress's). */
  onTransferStart?: SenderOptions['onTransferStart'];
  /** `offset` bytes of the file being sent have been read for sending (--progress). */
  onFileBytes?: (entry: FileEntry, offset: number) => void;
  /** A phase of the transfer ended (--info=progress2). */
  onPhaseDone?: () => void;
  /** Each path the daemon deleted (MSG_DELETED; directories end with '/'). */
  onDeleted?: (name: Buffer, isDir: boolean) => void;
  /**
   * Push only these paths of SOURCE (a directory, given with a trailing slash) into the target
   * directory, each with its parent directories, new directories with their subtrees, and
   * missing paths deleted (--delete-missing-args, with `transfer.delete`): one live-mirror batch.
   * Needs protocol 30 or later (the content-dir flag that keeps the daemon's deletions to the
   * listed subtrees).
   */
  selection?: readonly SelectionItem[];
  /** --files-from: the names to push (a local file, `-` for stdin), relative to `source` (a directory); -R is implied. */
  filesFrom?: { file: string; from0: boolean };
  /**
   * Ends the transfer when aborted (Ctrl-C, SIGTERM: the CLI's --once): the connection is closed,
   * so the transfer fails at once and a pull discards its temp files on the way out.
   */
  abort?: AbortSignal;
  /**
   * --fake-super: each file's `user.rsync.%stat` record (as a fake-super backup stores it) is
   * listed in place of its own owner, mode and device (fake-super.ts foldStatRecords).
   */
  fakeSuper?: boolean;
  /** The file list has been sent (rsync's order, entries made on demand); the daemon starts asking for files (progress, tests). */
  onFileList?: (entries: SortedFileList<LocalEntry>) => void | Promise<void>;
}

/**
 * A push's figures: every line of the --stats block applies (the deletions as the daemon reported
 * them; the file list's generation time is the scan's, its transfer time 0).
 */
export interface PushResult extends TransferSummary {
  stats: SenderStats;
  files: number;
  /** The file list as sent (rsync's order); made when first read (the transfer keeps it packed). */
  entries: LocalEntry[];
  /** The entries the daemon created; made when first read. */
  created: FileEntry[];
  flistSeconds: { build: number; transfer: number };
}

// rsync/main.c: client_run (the sender branch) [filter-when] [latency-close]
export async function push(options: PushOptions): Promise<PushResult> {
  const { transfer } = options;
  const onError = options.onError ?? (() => {});
  const filter = effectiveFilter(options.filter, transfer);
  // 1. The source checked first: a missing one fails before we bother the daemon. A selection is
  // listed now; a SOURCE tree is read while its list goes out (sendEarly), or, below protocol 29,
  // before it goes.
  const scanStarted = Date.now();
  let scanSeconds = 0;
  const scanOptions = { transfer, ...(filter && { filter }), ...(options.filesFrom && { filesFrom: options.filesFrom }), onWarning: onError };
  if (options.fakeSuper) checkSendingFakeSuper(transfer);
  // --fake-super: the stored records folded in as the list is made, before --chmod (rsync's
  // make_file takes x_lstat's stat); a corrupt record names the local path (rsync's full_fname).
  const foldRecords = (list: ScanResult['list']): void => {
    if (options.fakeSuper) foldStatRecords(list, transfer, onError, (_name, i) => `"${shownName(list.localPath(i), options.charset)}"`);
  };
  // --chmod: the modes our list carries (rsync's sender tweaks them as it lists).
  const chmodModes = transfer.chmod?.length ? compileChmodOptions(transfer.chmod, process.umask()) : null;
  let scan: ScanResult | undefined;
  let walk: SourceWalk | undefined;
  // --files-from=:FILE: the daemon forwards its list after our filter list; the walk waits for it.
  const daemonList = transfer.filesFrom !== undefined && !transfer.filesFromForwarded;
  if (daemonList && (options.selection || options.filesFrom)) throw new UsageError('--files-from=:FILE (a list on the daemon) goes with neither a selection nor a local list');
  if (daemonList) {
    // The source is still checked first, as rsync's client finds a missing one before it connects.
    if (!statSync(options.source, { throwIfNoEntry: false })?.isDirectory()) throw new RsyncError('ERR_RSYNC_SOURCE', `change_dir "${options.source}" failed: No such file or directory`, EXIT.FILESELECT);
  } else if (options.selection) {
    scan = await scanSelection(options.source, options.selection, { ...scanOptions, deleteMissing: transfer.delete || transfer.deleteExcluded });
    foldRecords(scan.list);
    if (chmodModes) chmodPackedList(scan.list, chmodModes);
    scanSeconds = (Date.now() - scanStarted) / 1000;
  } else {
    walk = await startSourceScan(options.source, scanOptions);
  }
  // 2. Connect, module, auth; the argument list; setup; multiplexing.
  // A primed session is only good for the argument list it was primed with.
  let primed = options.primed;
  if (primed && !sameArgs(primed.args, pushArgs(options, primed.session.hello.protocol))) {
    primed.session.socket.destroy();
    primed = undefined;
  }
  const spare = primed?.session ?? options.preopened;
  const session = spare && isOpen(spare) ? spare : await openModule({ ...options.session, host: options.target.host, port: options.target.port }, options.target.module);
  if (spare && spare !== session) spare.socket.destroy();
  const { reader, writer, socket } = session;
  closeOnAbort(socket, options.abort);
  // Like rsync's totals, count from the end of the text phase (greetings, MOTD, auth excluded).
  const sentBefore = socket.bytesWritten;
  const receivedBefore = socket.bytesRead;
  let ioError = 0;
  try {
    if (options.selection && session.hello.protocol < 30) {
      throw new RsyncError('ERR_RSYNC_SELECTION_PROTOCOL', `a selective push needs protocol 30 or later (the daemon speaks ${session.hello.protocol})`, EXIT.PROTOCOL);
    }
    const args = pushArgs(options, session.hello.protocol);
    if (primed && primed.session !== session) primed = undefined; // it had closed: a fresh connection
    const checksumChoice = transfer.checksumChoice ? parseChecksumName(transfer.checksumChoice) : undefined;
    // 3-5. Our first data, sent before the daemon's seed is read (see StartOptions.sendEarly): the
    // filter list (only when the daemon deletes: it protects excluded files on the mirror), the -c
    // checksums, and the file list in rsync's order (the order is the index the generator uses).
    let early: { sorted: SortedFileList<LocalEntry>; flistBytes: number; ioError: number } | undefined;
    let xattrSender: XattrSender | undefined;
    const sendFilters = (): void => {
      // -m makes the daemon's receiver want the list too (rsync's receiver_wants_list).
      const deleteMode = transfer.delete || transfer.deleteExcluded || !!transfer.pruneEmptyDirs;
      if (filter) {
        if (filter.wantsList(session.hello.protocol, deleteMode)) filter.sendList(writer);
      } else if (deleteMode) {
        writer.writeInt(0); // an empty list
      }
    };
    let negotiatedEarly: { compatFlags: number; checksum: ChecksumName } | undefined;
    const sendEarly = async (negotiated: { compatFlags: number; checksum: ChecksumName }): Promise<void> => {
      sendFilters();
      if (daemonList) {
        // The file list waits for the daemon's names (read after the seed).
        negotiatedEarly = negotiated;
        await writer.flush();
        return;
      }
      await sendFileList(negotiated);
    };
    const sendFileList = async (negotiated: { compatFlags: number; checksum: ChecksumName }): Promise<void> => {
      const protocol = session.hello.protocol;
      // -X: each entry's xattr set follows it (read as it is listed); -A: its ACLs before that.
      const xattrOptions = xattrOptionsFor(transfer, protocol, negotiated.compatFlags);
      const listed = walk?.list ?? scan!.list;
      const withXattrs = xattrOptions && senderXattrs(listed, writer, xattrOptions, transfer, onError);
      xattrSender = withXattrs?.sender;
      const afterEntry = afterEntries(senderAcls(listed, writer, transfer, protocol, onError), withXattrs?.afterEntry);
      const streaming = walk;
      // --fake-super reads the whole list first: a record may drop an entry (a device without -D).
      if (streaming?.streamable && protocol >= 29 && !options.fakeSuper) {
        // The walk's order is rsync's order from 29 on: the list goes out as the tree is read.
        const walkStarted = Date.now();
        const tweak = chmodModes ? (from: number) => chmodPackedList(streaming.list, chmodModes, from) : undefined;
        const sent = await streamLocalFileList(writer, streaming, transfer, negotiated, tweak, afterEntry);
        scanSeconds = (Date.now() - walkStarted) / 1000;
        await writer.flush();
        scan = sent.scan;
        early = { sorted: sent.sorted, flistBytes: sent.flistBytes, ioError: sent.scan.ioError };
        return;
      }
      if (walk) {
        const walkStarted = Date.now();
        for (const _ of walk.steps());
        scan = await walk.finish();
        foldRecords(scan.list);
        if (chmodModes) chmodPackedList(scan.list, chmodModes);
        scanSeconds = (Date.now() - walkStarted) / 1000;
      }
      const sent = await writeLocalFileList(writer, scan!, transfer, negotiated, afterEntry);
      await writer.flush();
      early = { sorted: sent.sorted, flistBytes: sent.flistBytes, ioError: scan!.ioError };
    };
    const charset = options.charset ?? 'utf8';
    const messages = new PeerMessages({
      info: (text) => options.onInfo?.(messageText(text, charset)),
      error: (text) => onError(messageText(text, charset)),
      ...(options.onDeleted && { deleted: options.onDeleted }),
      ioTimeout: (payload) => adoptModuleTimeout(socket, payload, options.session.timeout),
    });
    const onMessage = messages.handle;
    let start: TransferStart;
    if (primed) {
      // Arguments and setup already done: the daemon waits for our filter list and file list.
      primed.route.handler = onMessage;
      await sendEarly(primed.start.setup);
      start = primed.start;
    } else {
      start = await startTransfer(reader, writer, args, { ...(checksumChoice && { checksumChoice }), ...clientCompressOptions(transfer.compress, compressCodecs), sendEarly, onMessage });
    }
    const { setup } = start;
    if (daemonList) {
      // rsync's sender reads the forwarded names before it lists (below 31 outside the frames).
      const names = await readForwardedNames(session.hello.protocol < 31 ? start.demux.raw : reader, filesFromBudget());
      const relative = transfer.relative !== false;
      walk = await startSourceScan(options.source, { ...scanOptions, filesFrom: { sources: names.map((name) => filesFromSource(name, relative)) } });
      await sendFileList(negotiatedEarly!);
    }
    if (!early) throw new Error('internal: the file list was not sent during setup');
    const { sorted, flistBytes } = early;
    ioError |= early.ioError;
    const checksummer = primed?.checksummer ?? (await sessionChecksummer(session.hello.protocol, setup));
    try {
      await options.onFileList?.(sorted);
      // 6. Serve the generator, then the goodbye.
      const createdNdx: number[] = [];
      // The walk options (-L, -x) open the files as the walk listed them.
      const files = localSource(scan?.walk ?? walk?.walkOptions);
      const source = options.onFileBytes ? countedSource(files, options.onFileBytes) : files;
      const result = await sendFiles(reader, writer, sorted, checksummer, source, {
        dryRun: transfer.dryRun,
        ...(options.onTransferStart && { onTransferStart: options.onTransferStart }),
        ...(options.onPhaseDone && { onPhaseDone: options.onPhaseDone }),
        compression: setup.tokens ?? null,
        ...senderWriteMode(transfer, setup.compatFlags),
        onWarning: onError,
        // --append: rsync's sender warns of a file shorter than listed (its name escaped as rsync shows it).
        onDiminished: (name) => onError(`skipped diminished file: "${shownName(name, charset)}"`),
        ...(xattrSender && { xattrs: xattrSender.inOrder(sorted.order) }),
        onItem: (item) => {
          if (item.iflags & ITEM_IS_NEW) createdNdx.push(item.ndx);
          options.onItem?.(item);
        },
      });
      ioError |= result.ioError;
      await readFinalGoodbye(reader, writer, result.stats);
      await session.close();
      // 7. rsync's final exit code.
      const summary = {
        exitCode: transferExitCode(ioError, messages.xferErrors),
        stats: result.stats,
        files: sorted.length,
        totalSize: sorted.totalSize(),
        bytesSent: socket.bytesWritten - sentBefore,
        bytesReceived: socket.bytesRead - receivedBefore,
        flistBytes,
        flistSeconds: { build: scanSeconds, transfer: 0 },
        protocol: session.hello.protocol,
      };
      return withLazyEntries(summary, sorted, createdNdx);
    } catch (e) {
      // A write the daemon's close refused: its own reason may be waiting in what it sent.
      const error = e instanceof SocketError ? ((await drainPeerError(reader)) ?? e) : e;
      if (error instanceof RemoteError) await acknowledgeErrorExit(writer, start.demux, error).catch(() => {});
      throw error;
    }
  } finally {
    socket.destroy();
  }
}

/**
 * The push's rules with a relative --partial-dir (or --delay-updates' own) excluded after them, as
 * rsync's client adds it (sent with the list, applied to our own walk); the rules as given otherwise.
 */
// rsync/compat.c: setup_protocol (the partial_dir rule, for a client)
function effectiveFilter(given: PushFilter | undefined, transfer: TransferOptions): PushFilter | undefined {
  const dir = transfer.partialDir ?? (transfer.delayUpdates ? DELAY_UPDATES_DIR : undefined);
  if (dir === undefined || dir.startsWith('/')) return given;
  if (!given) return pushFilter(new FilterList(), { deleteExcluded: transfer.deleteExcluded, partialDir: dir });
  return given.withPartialDir?.(dir) ?? given;
}

/** The forwarded --files-from names are held until listed: bounded as a local list is (FILES_FROM_MAX_BYTES). */
function filesFromBudget(): MemoryBudget {
  let held = 0;
  return {
    charge(bytes, what) {
      held += bytes;
      if (held > FILES_FROM_MAX_BYTES) throw new MemoryCapError(`the daemon's ${what} passed ${FILES_FROM_MAX_BYTES} bytes`);
    },
  };
}

/** The result with `entries` and `created` made from the packed list when first read (--stats, the API). */
function withLazyEntries(summary: Omit<PushResult, 'entries' | 'created'>, sorted: SortedFileList<LocalEntry>, createdNdx: number[]): PushResult {
  let entries: LocalEntry[] | undefined;
  let created: FileEntry[] | undefined;
  return Object.defineProperties(summary as PushResult, {
    entries: { enumerable: true, get: () => (entries ??= sorted.toArray()) },
    created: { enumerable: true, get: () => (created ??= createdNdx.map((ndx) => sorted.at(ndx)!)) },
  });
}

/** The file source, telling how far each file has been read (the sender reads as it sends). */
function countedSource(source: SenderSource, onBytes: (entry: FileEntry, offset: number) => void): SenderSource {
  return {
    async open(entry, ndx) {
      const chunks = await source.open(entry, ndx);
      if ('error' in chunks) return chunks;
      async function* counted(): AsyncGenerator<Uint8Array> {
        let offset = 0;
        for await (const chunk of chunks as ChunkSource) {
          yield chunk;
          offset += chunk.length;
          onBytes(entry, offset);
        }
      }
      // The sender closes what it opened: the count passes close() (and the length now) on.
      return Object.assign(counted(), { close: () => (chunks as { close?: () => void }).close?.(), ...(chunks.size !== undefined && { size: chunks.size }) });
    },
  };
}

/** The argument list of a push: a selection asks for --delete-missing-args when it deletes. */
function pushArgs(options: Pick<PushOptions, 'transfer' | 'target' | 'selection'>, protocol: number): string[] {
  const { transfer } = options;
  const deletes = !!options.selection && (transfer.delete || transfer.deleteExcluded);
  return serverArgs({ ...transfer, ...(deletes && { deleteMissingArgs: true }) }, protocol, remotePath(options.target));
}

function sameArgs(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function isOpen(session: DaemonSession): boolean {
  return !session.socket.socket.destroyed && !session.socket.socket.readableEnded;
}

/** A daemon session taken up to the file list for one kind of push (see primeSession). */
export interface PrimedSession {
  session: DaemonSession;
  /** The argument list sent: only a push with the same one may use the session. */
  args: string[];
  start: TransferStart;
  /** Where the daemon's messages go: the push that uses the session sets its handler. */
  route: { handler: MessageHandler };
  /** The session's checksums, made ready too. */
  checksummer: Checksummer;
}

/**
 * Take an opened session through the argument list and the setup phase (compat flags, checksum
 * negotiation, seed) for a later push with these options: the live mirror's next batch then
 * costs only its file list and data. The daemon waits (for the filter list or file list) until
 * then; a daemon --timeout or module timeout ends the wait, which the push notices and reconnects.
 */
// rsync/main.c: client_run (up to the file list)
export async function primeSession(session: DaemonSession, options: Pick<PushOptions, 'transfer' | 'target' | 'selection'>): Promise<PrimedSession> {
  const args = pushArgs(options, session.hello.protocol);
  const route = { handler: (() => {}) as MessageHandler };
  const checksumChoice = options.transfer.checksumChoice ? parseChecksumName(options.transfer.checksumChoice) : undefined;
  const start = await startTransfer(session.reader, session.writer, args, {
    ...(checksumChoice && { checksumChoice }),
    ...clientCompressOptions(options.transfer.compress, compressCodecs),
    onMessage: (code, payload) => route.handler(code, payload),
    // The daemon writes its checksum list and then the seed without reading in between: data
    // from us in between (where a push sends its file list) carries our ACK, or Nagle holds the
    // seed ~40 ms for our delayed ACK. With no file list yet, an empty MSG_DATA frame does it.
    sendEarly: async () => {
      if (session.writer.multiplexed) await writeMessage(session.writer, MSG_DATA, new Uint8Array(0));
    },
  });
  const checksummer = await sessionChecksummer(session.hello.protocol, start.setup);
  return { session, args, start, route, checksummer };
}
