// A pull: bring a daemon module's tree into a local directory, as `rsync -rlpt rsync://HOST/module/path/
// DEST/` does, through the generator and receiver roles, writing into DEST through dest-tree.ts
// (the confined destination). Counterpart: rsync main.c client_run / do_recv.
import { lstatSync, mkdirSync, statSync } from 'node:fs';
import { basename, dirname, resolve as resolvePath } from 'node:path';
import { chmodReceivedList, compileChmodOptions } from './list-chmod.js';
import { openModule, type SessionOptions } from './client.js';
import { DELAY_UPDATES_DIR, serverArgs, type TransferOptions } from '../../protocol/args.js';
import { startPull, acknowledgeErrorExit } from '../../protocol/session.js';
import { flistOptionsFor } from '../../protocol/flist-recv.js';
import { CF_AVOID_XATTR_OPTIM, clientCompressOptions, parseChecksumName } from '../../protocol/compat.js';
import { compressCodecs } from '../compress-codecs.js';
import { FilterList, sendFilterList } from '../../protocol/filter.js';
import type { ReceiverOptions, ReceiverStats, ReceivedItem } from '../../protocol/receiver.js';
import type { GeneratorResult, GeneratedItem } from '../../protocol/generator.js';
import type { ReceivedList } from '../../protocol/received-list.js';
import { ITEM_IS_NEW } from '../../protocol/constants.js';
import { isDir } from '../../protocol/modes.js';
import { MSG_ERROR_EXIT, PeerMessages, writeMessageInt, type Demultiplexer } from '../../protocol/mplex.js';
import type { ByteReader, ByteWriter } from '../../protocol/io.js';
import { EXIT, RemoteError, RsyncError, transferExitCode } from '../../protocol/errors.js';
import { remotePath, type DaemonTarget } from './target.js';
import { adoptModuleTimeout } from './socket.js';
import { receiveIntoTree } from './receive.js';
import { closeOnAbort } from './abort.js';
import { RequestedNames, UnrequestedNameError } from '../../protocol/implied-includes.js';
import { forwardFilesFrom, openLocalFilesFrom } from './files-from.js';
import { receiverXattrs, xattrOptionsFor } from './local-xattrs.js';
import { fakeSuperXattrOptions } from './fake-super.js';
import { receiverAcls } from './local-acls.js';
import { messageText, shownName, type OutputCharset, type TransferSummary } from './output.js';

/** The name of the transfer's top directory in a file list. */
const DOT_NAME = Buffer.from('.');

/** Filter rules for a pull: sent to the daemon's sender, and protecting local files from --delete. */
export interface PullFilter {
  list: FilterList;
  deleteExcluded: boolean;
}

export interface PullOptions {
  /**
   * Ends the transfer when aborted (Ctrl-C, SIGTERM: the CLI's --once): the connection is closed,
   * so the transfer fails at once and a pull discards its temp files on the way out.
   */
  abort?: AbortSignal;
  target: DaemonTarget;
  dest: string;
  transfer: TransferOptions;
  session: Omit<SessionOptions, 'host' | 'port'>;
  filter?: PullFilter;
  /** -I */
  ignoreTimes?: boolean;
  /**
   * --trust-sender: take every name of the daemon's file list. By default (rsync 3.5's client) a
   * name the source argument or a local --files-from list did not ask for stops the pull (exit 4).
   */
  trustSender?: boolean;
  /** --fake-super: what needs root stored in user.rsync.%stat records (fake-super.ts). */
  fakeSuper?: boolean;
  /** The charset the daemon's texts are shown in (rsync escapes what it cannot show). Default 'utf8'. */
  charset?: OutputCharset;
  /** Daemon text (MSG_INFO, as rsync shows it: output.ts messageText) for stdout. */
  onInfo?: (text: string) => void;
  /** The daemon's warnings and errors (as rsync shows them), and our own, for stderr. */
  onError?: (text: string) => void;
  onItem?: (item: GeneratedItem) => void;
  onReceived?: (item: ReceivedItem) => void;
  /** --progress: a transfer's data starts, bytes of it arrived, a phase ended (see ReceiverOptions). */
  onReceiveStart?: ReceiverOptions['onReceiveStart'];
  onReceiveBytes?: ReceiverOptions['onReceiveBytes'];
  onPhaseDone?: ReceiverOptions['onPhaseDone'];
  onDeleted?: (name: Buffer, isDir: boolean) => void;
  /** DEST did not exist and is being created (rsync says "created directory DEST" with -v/-i). */
  onCreatedDest?: (path: string) => void;
  /** The daemon's file list has arrived (rsync -v: "receiving file list ... done"). */
  onFileList?: (count: number, totalSize: number, list: ReceivedList) => void;
}

/**
 * A pull's figures. The --stats lines are those rsync's client prints for a pull: the created
 * count from protocol 29, the deleted count from 31, the file list times from 29 (the daemon's,
 * from its stats). `flistBytes` counts from the start of the setup to the end of the file list.
 */
export interface PullResult extends TransferSummary {
  /** Entries of the daemon's file list, duplicates included. */
  files: number;
  generator: GeneratorResult;
  receiver: ReceiverStats;
}

// rsync/main.c: client_run (the receiver branch)
export async function pull(options: PullOptions): Promise<PullResult> {
  const { transfer } = options;
  const onError = options.onError ?? (() => {});
  // 1. DEST: a directory, or missing (the generator creates it for the list's '.', one level, as
  // rsync does); never a symlink. A single file may land under DEST's name (decided once the list is in).
  const dest = resolvePath(options.dest);
  const destStat = lstatSync(dest, { throwIfNoEntry: false });
  // --files-from with a local list: opened now (a missing one stops us before connecting); sent while the daemon's list comes.
  const filesFrom = transfer.filesFromForwarded && transfer.filesFrom !== undefined ? openLocalFilesFrom(transfer.filesFrom) : null;
  // 2. Connect, module, auth; args with --sender; setup; our filter list.
  const session = await openModule({ ...options.session, host: options.target.host, port: options.target.port }, options.target.module).catch((e: unknown) => {
    filesFrom?.close();
    throw e;
  });
  const { reader, writer, socket } = session;
  closeOnAbort(socket, options.abort);
  const sentBefore = socket.bytesWritten;
  const receivedBefore = socket.bytesRead;
  const charset = options.charset ?? 'utf8';
  const messages = new PeerMessages({
    info: (text) => options.onInfo?.(messageText(text, charset)),
    error: (text) => onError(messageText(text, charset)),
    ioTimeout: (payload) => adoptModuleTimeout(socket, payload, options.session.timeout),
  });
  let demuxForAck: Demultiplexer | null = null;
  try {
    const protocol = session.hello.protocol;
    const args = serverArgs(transfer, protocol, remotePath(options.target), true);
    const checksumChoice = transfer.checksumChoice ? parseChecksumName(transfer.checksumChoice) : undefined;
    // --partial-dir (or --delay-updates' .~tmp~): a relative one is excluded (perishable) on both sides, as rsync's client adds it.
    const filter = withPartialDirRule(options.filter, transfer.partialDir ?? (transfer.delayUpdates ? DELAY_UPDATES_DIR : undefined));
    // 3. Args with --sender, setup, our filter list, the daemon's file list (names checked).
    const consumedBefore = reader.consumed;
    // -X: each entry's xattr set follows it in the list. Our client info has 'x', so the daemon
    // sets CF_AVOID_XATTR_OPTIM (rsync's want_xattr_optim is off).
    const xattrs = receiverXattrs(fakeSuperXattrOptions(xattrOptionsFor(transfer, protocol, CF_AVOID_XATTR_OPTIM), !!options.fakeSuper));
    // -A: each entry's ACLs follow it, before its xattrs.
    const acls = receiverAcls(transfer, protocol);
    const afterEntry =
      acls || xattrs
        ? async (r: ByteReader, w: number, mode: number) => (acls ? await acls.receive(r, w, mode) : 0) + (xattrs ? await xattrs.receive(r, w) : 0)
        : null;
    // rsync 3.5: the names we ask for, to check the daemon's list against (not with a daemon-side :FILE list).
    const requested = options.trustSender || (transfer.filesFrom !== undefined && !transfer.filesFromForwarded) ? null : requestedNames(transfer, remotePath(options.target), !!filesFrom);
    const start = await startPull(reader, writer, args, {
      ...(checksumChoice && { checksumChoice }),
      ...clientCompressOptions(transfer.compress, compressCodecs),
      ...(filter && {
        writeFilterList: (w: ByteWriter) => sendFilterList(w, filter.list, { deleteExcluded: filter.deleteExcluded, role: 'receiver' }),
      }),
      flist: { ...flistOptionsFor(transfer), ...(afterEntry && { afterEntry }), ...(requested && { requested }) },
      onMessage: messages.handle,
      ...(filesFrom && { forwardFilesFrom: (w: ByteWriter) => forwardFilesFrom(w, filesFrom, !!transfer.from0, requested ?? undefined) }),
    });
    demuxForAck = start.demux;
    const { setup, flist } = start;
    const flistBytes = reader.consumed - consumedBefore;
    const { list } = flist;
    // --chmod: the received modes (rsync's receiver tweaks them as it reads the list).
    if (transfer.chmod?.length) chmodReceivedList(list, compileChmodOptions(transfer.chmod, process.umask()));
    options.onFileList?.(list.length, flist.totalSize, list);
    // The ndxs of the entries new here ("Number of created files"); entries made only if read.
    const createdNdx: number[] = [];
    // What rsync's output_summary prints for a pull at this protocol (see PullResult).
    const summaryOf = (exitCode: number, generator: GeneratorResult, receiver: ReceiverStats): PullResult => {
      const d = generator.deleted;
      const summary: PullResult = {
        exitCode,
        protocol,
        // Made only when read (--stats counts them): a big list stays packed.
        get entries() {
          return flist.files.filter((e) => e.active);
        },
        stats: {
          transferredFiles: receiver.transferredFiles,
          totalTransferredSize: receiver.totalTransferredSize,
          literalBytes: receiver.literalBytes,
          matchedBytes: receiver.matchedBytes,
          ...(protocol >= 31 && { deleted: d.files + d.dirs + d.symlinks + d.devices + d.specials ? d : null }),
        },
        totalSize: flist.totalSize,
        flistBytes,
        ...(protocol >= 29 && { flistSeconds: { build: (receiver.totals?.flistBuildTime ?? 0) / 1000, transfer: (receiver.totals?.flistXferTime ?? 0) / 1000 } }),
        bytesSent: socket.bytesWritten - sentBefore,
        bytesReceived: socket.bytesRead - receivedBefore,
        files: list.length,
        generator,
        receiver,
      };
      if (protocol >= 29) {
        Object.defineProperty(summary, 'created', { enumerable: true, get: () => createdNdx.map((ndx) => list.at(ndx)!) });
      }
      return summary;
    };
    // rsync's client: an empty list (a missing path) ends the session at once, before any phase.
    if (list.length === 0) {
      const exitCode = transferExitCode(flist.ioError | start.demux.ioError, messages.xferErrors);
      // rsync's exit_cleanup tells a protocol >= 31 daemon why we leave.
      if (exitCode && writer.protocol >= 31 && writer.multiplexed) await writeMessageInt(writer, MSG_ERROR_EXIT, exitCode);
      return summaryOf(
        exitCode,
        { deleted: { files: 0, dirs: 0, symlinks: 0, devices: 0, specials: 0 }, skippedDeletes: 0, ioError: 0, requested: 0, failed: 0 },
        { transferredFiles: 0, totalTransferredSize: 0, literalBytes: 0, matchedBytes: 0, createdFiles: 0, failedFiles: 0, totals: null, deleted: null },
      );
    }
    // rsync's get_local_name: a directory DEST as it is; one non-directory into a file or a missing
    // name without a trailing slash lands under DEST's name, in DEST's parent.
    const single = list.length === 1 && !isDir(list.mode(0));
    const renamed = single && (destStat ? !destStat.isDirectory() : !/\/$/.test(options.dest));
    if (destStat && !destStat.isDirectory() && !renamed) {
      const why = list.length > 1 ? 'destination must be a directory when copying more than 1 file' : 'cannot overwrite non-directory with a directory';
      throw new RsyncError('ERR_RSYNC_DEST', `ERROR: ${why}`, EXIT.FILESELECT);
    }
    if (renamed && !statSync(dirname(dest), { throwIfNoEntry: false })?.isDirectory()) {
      throw new RsyncError('ERR_RSYNC_DEST', `[Receiver] change_dir#3 "${dirname(dest)}" failed: No such file or directory (2)`, EXIT.FILESELECT);
    }
    if (!destStat && !renamed && !transfer.dryRun) {
      options.onCreatedDest?.(options.dest.replace(/(.)\/+$/, '$1'));
      // A list with a "." creates DEST through the generator; one file into `DEST/`, or a list
      // without "." (-R, --files-from: it starts with the path's directories), needs it made here.
      const hasDot = list.hasName(DOT_NAME);
      if (single || !hasDot) mkdirSync(dest, { mode: 0o777 });
    }
    // The sender's io_error so far: the list's, then MSG_IO_ERROR's (--ignore-errors deletes anyway).
    const senderIoError = () => flist.ioError | start.demux.ioError;
    // 4. The generator and the receiver, side by side, into DEST; then the goodbye.
    const result = await receiveIntoTree({
      reader,
      writer,
      setup,
      files: list,
      ...(xattrs && { xattrs }),
      ...(acls && { acls }),
      userNames: flist.userNames,
      groupNames: flist.groupNames,
      ...(renamed ? { dest: dirname(dest), localName: Buffer.from(basename(dest)) } : { dest }),
      transfer,
      ignoreTimes: options.ignoreTimes ?? false,
      ...(options.fakeSuper && { fakeSuper: {} }),
      ...(filter && { protect: filter }),
      senderIoError,
      onItem: (item) => {
        if (item.iflags & ITEM_IS_NEW) createdNdx.push(item.ndx);
        options.onItem?.(item);
      },
      ...(options.onReceived && { onReceived: options.onReceived }),
      ...(options.onReceiveStart && { onReceiveStart: options.onReceiveStart }),
      ...(options.onReceiveBytes && { onReceiveBytes: options.onReceiveBytes }),
      ...(options.onPhaseDone && { onPhaseDone: options.onPhaseDone }),
      ...(options.onDeleted && { onDeleted: options.onDeleted }),
      onWarning: onError,
      onFailedVerification: (text, final) => failedVerification(transfer, onError, text, final),
      onInfo: (text) => options.onInfo?.(text),
      onAbort: () => socket.destroy(),
    });
    await session.close().catch(() => {});
    // rsync's final exit code: the sender's io_error (in the list's end marker, or MSG_IO_ERROR
    // for a file that vanished or failed while sending) and the files that failed, theirs and ours.
    const failures = messages.xferErrors + result.receiver.failedFiles + result.generator.failed;
    return summaryOf(transferExitCode(senderIoError() | result.generator.ioError, failures), result.generator, result.receiver);
  } catch (e) {
    if (e instanceof RemoteError && demuxForAck) await acknowledgeErrorExit(writer, demuxForAck, e).catch(() => {});
    // The name as our output shows names (the terminal's charset).
    if (e instanceof UnrequestedNameError) throw new UnrequestedNameError(e.rawName, shownName(e.rawName, charset));
    throw asFileError(e);
  } finally {
    filesFrom?.close();
    socket.destroy();
  }
}


/**
 * The implied includes of a pull: its source argument (module stripped), unless a local
 * --files-from list is forwarded (its names are added as they go).
 */
// rsync/main.c: client_run / do_recv callers of add_implied_include; options.c (trust_sender_args)
function requestedNames(transfer: TransferOptions, sourceArg: string, forwardsList: boolean): RequestedNames {
  const relative = transfer.relative ?? transfer.filesFrom !== undefined;
  // rsync's xfer_dirs: -d, or --files-from (without -r, its directories are sent as with -d).
  const requested = new RequestedNames({ relative, recursive: transfer.recursive, dirs: !!transfer.dirs || transfer.filesFrom !== undefined });
  if (!forwardsList) requested.addArg(sourceArg, true);
  return requested;
}

/**
 * The filter list with a relative --partial-dir excluded at its end (`-p DIR/`: perishable, so a
 * directory being deleted does not keep it), as rsync's client adds it to its own rules; the
 * caller's list is left as it is.
 */
// rsync/compat.c: setup_protocol (partial_dir && *partial_dir != '/': parse_filter_str of it)
function withPartialDirRule(filter: PullFilter | undefined, partialDir: string | undefined): PullFilter | undefined {
  if (partialDir === undefined || partialDir.startsWith('/')) return filter;
  const list = new FilterList({ deleteExcluded: filter?.list.deleteExcluded ?? false, from0: filter?.list.from0 ?? false });
  if (filter) list.rules.push(...filter.list.rules);
  list.addFilter(`-p ${partialDir}/`);
  return { list, deleteExcluded: filter?.deleteExcluded ?? false };
}

/**
 * A file that failed verification: the redo's ERROR always, the first attempt's WARNING only to
 * a -v, -i or --progress run (rsync's FWARNING is printed under INFO_GTE(NAME, 1), which
 * --progress sets, or an itemizing format).
 */
// rsync/receiver.c: recv_files (recv_ok == 0)
function failedVerification(transfer: TransferOptions, onError: (text: string) => void, text: string, final: boolean): void {
  if (final || transfer.verbose > 0 || transfer.itemize || transfer.progress) onError(text);
}

/** A failed local file operation (ENOENT, EACCES, ENOSPC, ...) as rsync reports it: exit 11. */
function asFileError(e: unknown): unknown {
  const err = e as NodeJS.ErrnoException;
  if (e instanceof RsyncError || !(e instanceof Error) || typeof err.syscall !== 'string') return e;
  const path = err.path ? ` ${JSON.stringify(String(err.path))}` : '';
  return new RsyncError('ERR_RSYNC_FILEIO', `${err.syscall}${path} failed: ${err.code ?? err.message}`, EXIT.FILEIO, { cause: e });
}

