// The receiver role of a pull (docs/protocol.md [pull]): read what the daemon's sender answers to
// the generator's requests (ndx, iflags, the echoed sum head, the token stream, the whole-file
// checksum), rebuild each file from literal data and blocks of the local basis into a temporary
// file next to it, verify the checksum and rename it over the target; a file that fails goes to
// the redo phase. The basis is the one the request names (protocol/basis.ts: the file, a basis
// dir's copy, a fuzzy match, the backup copy, the --partial-dir copy). --inplace and --append
// write into the target itself (LocalTree.openInplace); a --partial-dir copy is rewritten in
// place when CF_INPLACE_PARTIAL_DIR was agreed; -S leaves holes (the tree's writer). With
// --delay-updates each verified file is held back in the partial dir and all are renamed into
// place when phase 2 starts ([pull-phases]). Then the sender's stats and the end of the run. Also `doRecv`, which runs the
// generator and the receiver side by side as rsync's two processes.
// Counterpart: rsync receiver.c recv_files / receive_data / handle_delayed_updates, rsync.c read_ndx_and_attrs,
// main.c do_recv / handle_stats / read_final_goodbye.
import { ProtocolError, RsyncError, EXIT } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';
import type { Checksummer } from './checksum.js';
import { readSumHead, blockLength, basisLength, PARALLEL_SUMS_MIN, type SumsHelper } from './sums.js';
import { tokenReader, type TokenSource } from './token.js';
import type { TokenCompression } from './compress-codecs.js';
import type { FileEntry } from './flist.js';
import type { FileListView } from './received-list.js';
import { isReg } from './modes.js';
import {
  ITEM_IS_NEW,
  ITEM_LOCAL_CHANGE,
  ITEM_XNAME_FOLLOWS,
  ITEM_TRANSFER,
  NDX_DONE,
  type DeleteStats,
} from './constants.js';
import { readNdxAndAttrs, readNdxSkippingDelStats } from './request.js';
import type { XattrPair, XattrReceiver } from './xattrs.js';
import type { AclTarget } from './acls.js';
import { generateFiles, RecvChannel, type GeneratorOptions, type GeneratorResult } from './generator.js';
import type { LocalTree, BasisFile, InplaceFile, TempFile } from './local-tree.js';
import { readSenderStats, type SenderTotals } from './stats.js';
import { basisPlace, type BasisOptions, type BasisPlace } from './basis.js';

export interface ReceiverStats {
  transferredFiles: number;
  totalTransferredSize: number;
  literalBytes: number;
  matchedBytes: number;
  createdFiles: number;
  /** Files that failed verification twice (exit 23). */
  failedFiles: number;
  /** The daemon sender's totals, in its sense (read only as the client: rsync's handle_stats). */
  totals: SenderTotals | null;
  /** NDX_DEL_STATS the daemon echoed (31+ with --delete). */
  deleted: DeleteStats | null;
}

export interface ReceivedItem {
  ndx: number;
  entry: FileEntry;
  iflags: number;
  literalBytes: number;
  matchedBytes: number;
  /**
   * Bytes read from the peer for this file's data: the echoed sum head, the tokens and the
   * whole-file checksum (rsync's total_data_read since remember_initial_stats; %b of its log).
   * 0 for an echo and in a dry run.
   */
  bytesRead: number;
  /** The name the request carried after ITEM_XNAME_FOLLOWS (a hard link's target, a fuzzy basis), or null. */
  xname: Buffer | null;
  /** The whole-file checksum the sender sent after the data (null for an echo and in a dry run). */
  fileSum: Buffer | null;
}

export interface ReceiverOptions extends BasisOptions {
  dryRun: boolean;
  /** Each transferred file (also one that failed verification: rsync logs every attempt). */
  onReceived?: (item: ReceivedItem) => void;
  /** Each non-transfer the sender echoed back (a created dir, a symlink, changed attributes, a hard link): rsync's receiver maybe_log_item. */
  onEchoed?: (item: ReceivedItem) => void;
  onWarning?: (text: string) => void;
  /**
   * A file failed verification: "WARNING: ... (will try again)" on the first attempt, "ERROR: ..."
   * (`final`, a failed file) on the redo. A daemon tells its client (rsync's FWARNING / FERROR_XFER).
   * Without it, onWarning hears of both.
   */
  onFailedVerification?: (text: string, final: boolean) => void | Promise<void>;
  /** A transfer's data starts arriving (rsync prints its -v/-i line here, then --progress). */
  onReceiveStart?: (item: Pick<ReceivedItem, 'ndx' | 'entry' | 'iflags' | 'xname'>) => void;
  /** `offset` bytes of the arriving file have been written (--progress). */
  onReceiveBytes?: (entry: FileEntry, offset: number) => void;
  /** Each NDX_DONE of the sender (a phase ended; --info=progress2 shows its line again). */
  onPhaseDone?: () => void;
  /** Whole-file digests of big files on the helper thread (the generator's block-sums helper). */
  sumsHelper?: SumsHelper;
  /**
   * We are the daemon (a client pushing into us): the client's sender sends no totals, so none are
   * read (rsync's handle_stats reads them only as the client). Default false: we are the client.
   */
  amServer?: boolean;
  /** -z: the sender's tokens are deflated (zlib or zlibx); unset, simple tokens. */
  compression?: TokenCompression | null;
  /** --inplace: each file is rebuilt in the target itself (LocalTree.openInplace), blocks already in place not rewritten. */
  inplace?: boolean;
  /** --append (1) / --append-verify (2): the data starts where the file here ends (implies inplace). */
  append?: number;
  /** -W: no block sums were sent (a file rewritten in place with -S is emptied first). */
  wholeFile?: boolean;
  /**
   * CF_INPLACE_PARTIAL_DIR was agreed (rsync's inplace_partial): a file whose basis is its copy in
   * the --partial-dir is rebuilt in that copy, in place, then moved over the target.
   */
  inplacePartial?: boolean;
  /**
   * --partial: a file whose transfer is cut short (the run fails or is aborted) keeps what arrived,
   * in place of the target, with mtime 0 so that nothing takes it for finished; the next run
   * uses it as its basis. Only once literal data came (rsync's cleanup_got_literal).
   */
  keepPartial?: boolean;
  /** -X: the received xattr sets (shared with the generator): long values read from the request's echo, sets applied. */
  xattrs?: XattrReceiver;
  /** -A: a received file gets the sender's ACLs once it is in place (protocol/acls.ts). */
  acls?: AclTarget;
  /**
   * --delay-updates (with a partial dir, which it implies): a verified file is kept in the partial
   * dir, and every such file is renamed over its target when phase 2 starts (LocalTree.finishDelayed).
   */
  delayUpdates?: boolean;
  /** A file that could not be put in place (rsync's FERROR_XFER: counted as failed); onWarning without it. */
  onError?: (text: string) => void;
}

/** How one file's data is written: in place (and appended from where), or through a temp file. */
interface WriteMode {
  inplace: boolean;
  /** --delay-updates: a verified file goes to its partial copy, to be put in place at phase 2. */
  delay: boolean;
  /** 0: no; 1: --append; 2: --append-verify (the part already here is hashed too). */
  append: number;
  /** -W: in place, the file is rewritten whole (with -S it starts empty, rsync's receive_data). */
  wholeFile: boolean;
  /** CF_INPLACE_PARTIAL_DIR: a --partial-dir basis is rewritten in place (rsync's one_inplace). */
  inplacePartial: boolean;
  /** The second attempt of a file that failed verification (rsync's redoing). */
  redo: boolean;
  /**
   * A file sent whole (no basis) may be gathered in memory and handed to LocalTree.commitWhole:
   * nothing to keep on failure (--partial), no xattrs or ACLs to set once it is in place.
   */
  whole: boolean;
  /** A file given to LocalTree.commitWhole that could not be put in place (reported and counted). */
  onCommitFailed?: (text: string) => void;
}

/** Reusable copy buffer for runs of basis blocks (the largest block is 128 KiB from protocol 30). */
const COPY_CHUNK = 1024 * 1024;
/** A file sent whole is gathered in memory up to this size for LocalTree.commitWhole; a bigger one goes through a temp file. */
const WHOLE_IN_MEMORY_MAX = 1024 * 1024;

/** The longest run of basis blocks handed to the kernel in one copy (TempFile.copyFrom). */
const KERNEL_COPY_RUN = 16 << 20;

/**
 * Receive every file the generator asked for, through the phases, then the stats and the end of
 * the run. `channel` carries MSG_DONE and MSG_REDO to the generator.
 */
// rsync/receiver.c: recv_files (+ main.c do_recv's receiver tail) [pull-receive]
export async function receiveFiles(
  reader: ByteReader,
  files: FileListView,
  tree: LocalTree,
  checksummer: Checksummer,
  channel: RecvChannel,
  options: ReceiverOptions,
): Promise<ReceiverStats> {
  try {
    return await receiveAllFiles(reader, files, tree, checksummer, channel, options);
  } catch (e) {
    // Files still being put in place finish (or fail) before the run's failure is reported.
    await tree.quiesceCommits?.();
    throw e;
  }
}

async function receiveAllFiles(
  reader: ByteReader,
  files: FileListView,
  tree: LocalTree,
  checksummer: Checksummer,
  channel: RecvChannel,
  options: ReceiverOptions,
): Promise<ReceiverStats> {
  const protocol = reader.protocol;
  const maxPhase = protocol >= 29 ? 2 : 1;
  const stats: ReceiverStats = {
    transferredFiles: 0,
    totalTransferredSize: 0,
    literalBytes: 0,
    matchedBytes: 0,
    createdFiles: 0,
    failedFiles: 0,
    totals: null,
    deleted: null,
  };
  const sent = new Uint8Array(files.length); // rsync's FLAG_FILE_SENT: a second arrival is the redo
  const copyBuf = Buffer.allocUnsafe(COPY_CHUNK);
  const tokens = tokenReader(reader, options.compression);
  let phase = 0;
  // --delay-updates: the files held back in the partial dir (rsync's delayed_bits), with -X's
  // values as they were before the file arrived.
  const delayed = options.delayUpdates ? new Map<number, readonly XattrPair[] | null>() : null;

  // The generator failed: stop (a read that waits ends when the caller closes).
  const stopIfGeneratorFailed = () => channel.check();
  // Files received whole may be put in place off this thread: the generator is told a phase is
  // over (then it links hard links, deletes, sets directory times) only once they all are.
  const phaseDone = async (): Promise<void> => {
    await tree.settleCommits?.();
    channel.phaseDone();
  };
  // rsync/receiver.c: finish_transfer (a file not put in place: FERROR_XFER, counted failed)
  const onCommitFailed = (text: string): void => {
    (options.onError ?? options.onWarning)?.(text);
    stats.failedFiles++;
  };
  const whole = !!tree.commitWhole && !options.xattrs && !options.acls && !options.keepPartial && !options.inplace && !options.append;

  for (;;) {
    // 1. ndx (NDX_DONE ends a phase), iflags, optional basis type and xname.
    const request = await readNdxAndAttrs(reader, files.length, stats, { beforeRead: stopIfGeneratorFailed });
    if (request === NDX_DONE) {
      options.onPhaseDone?.();
      // Phase 2 (below protocol 29: the end of the run) starts with the held-back files put in place.
      if (++phase === 2 && delayed) stats.failedFiles += await handleDelayedUpdates(files, tree, delayed, options);
      if (phase > maxPhase) break;
      await phaseDone();
      continue;
    }
    const { ndx, iflags, basisType, xname } = request;
    const entry = files.at(ndx)!;
    if (entry.active === false) throw new ProtocolError(`refusing transfer of cleared file index ${ndx}`);
    // -X: the long values the generator asked for follow the echo. [xattr-request]
    const xattrs = options.xattrs?.follows(iflags) ? options.xattrs : null;
    if (xattrs) await xattrs.readValues(reader, ndx);

    // 2. Not a transfer: the echo of a local change.
    if (!(iflags & ITEM_TRANSFER)) {
      // rsync/receiver.c: recv_files (set_file_attrs once the values came; not for a local copy)
      if (xattrs && (iflags & (ITEM_XNAME_FOLLOWS | ITEM_LOCAL_CHANGE)) !== (ITEM_XNAME_FOLLOWS | ITEM_LOCAL_CHANGE)) {
        if (reportXattrFailures(xattrs.apply(ndx, entry.name, null, false), options)) stats.failedFiles++;
      }
      if (iflags & ITEM_IS_NEW) stats.createdFiles++;
      options.onEchoed?.({ ndx, entry, iflags, literalBytes: 0, matchedBytes: 0, bytesRead: 0, xname, fileSum: null });
      continue;
    }
    if (phase === 2) throw new ProtocolError(`transfer of index ${ndx} in phase 2`);
    if (!isReg(entry.mode)) throw new ProtocolError(`transfer of a non-regular file (index ${ndx})`);
    const redoing = sent[ndx] === 1;
    if (!redoing && iflags & ITEM_IS_NEW) stats.createdFiles++;
    stats.transferredFiles++;
    stats.totalTransferredSize += entry.size;
    if (options.dryRun) {
      options.onReceived?.({ ndx, entry, iflags, literalBytes: 0, matchedBytes: 0, bytesRead: 0, xname, fileSum: null });
      continue;
    }

    // 3. The data, into a temporary file, from the basis the request named (the file itself, a
    // basis dir's copy, a fuzzy match); 4. verified, then renamed over the target.
    const basis = basisPlace(entry.name, basisType, xname, options);
    const dataStart = reader.consumed; // rsync's remember_initial_stats
    options.onReceiveStart?.({ ndx, entry, iflags, xname });
    const onBytes = options.onReceiveBytes && ((offset: number) => options.onReceiveBytes!(entry, offset));
    // A redo is a whole delta again: rsync turns --append off for it (the file stays in place).
    // Below protocol 30 --append is --append-verify on both sides (rsync/compat.c).
    const append = options.append ? (protocol < 30 ? 2 : options.append) : 0;
    const mode: WriteMode = { inplace: !!options.inplace || !!options.append, delay: !!delayed, append: redoing ? 0 : append, wholeFile: !!options.wholeFile, inplacePartial: !!options.inplacePartial, redo: redoing, whole: whole && !delayed, onCommitFailed };
    // -X: the values the file has, read before the new one replaces it (rsync sets them on the temp file
    // from its basis; a basis elsewhere, --compare-dest or -y, is not read for them here).
    const xattrBasis = options.xattrs ? (options.xattrs.snapshot(entry.name) ?? []) : null;
    const got = await receiveData(reader, tokens, entry, basis, tree, checksummer, copyBuf, mode, !!options.keepPartial, options.sumsHelper, protocol < 29 && !!options.altDest, onBytes);
    stats.literalBytes += got.literalBytes;
    stats.matchedBytes += got.matchedBytes;
    options.onReceived?.({ ndx, entry, iflags, literalBytes: got.literalBytes, matchedBytes: got.matchedBytes, bytesRead: reader.consumed - dataStart, xname, fileSum: got.fileSum });
    if (got.delayed) {
      // Its ACLs and xattrs are set once it is in place (they would go to the old file now).
      delayed!.set(ndx, xattrBasis);
      continue;
    }
    if (got.ok) {
      // rsync/receiver.c: finish_transfer (set_file_attrs: set_acl)
      if (options.acls && reportXattrFailures(options.acls.apply(ndx, entry.name, entry.mode, false).failed, options)) stats.failedFiles++;
      if (options.xattrs && reportXattrFailures(options.xattrs.apply(ndx, entry.name, xattrBasis, false), options)) stats.failedFiles++;
      continue;
    }
    // rsync/receiver.c: recv_files (recv_ok == 0: FWARNING on the first attempt, FERROR_XFER on the redo)
    const fate = got.kept ?? 'discarded';
    const text = redoing
      ? `ERROR: ${entry.name.toString()} failed verification -- update ${fate}.`
      : `WARNING: ${entry.name.toString()} failed verification -- update ${fate} (will try again).`;
    if (options.onFailedVerification) await options.onFailedVerification(text, redoing);
    else options.onWarning?.(text);
    if (!redoing) {
      sent[ndx] = 1;
      channel.requestRedo(ndx);
    } else {
      stats.failedFiles++;
    }
  }

  // 5. The sender's totals (a client reads them); then (31+) its NDX_DONE, which ends the run.
  stats.totals = options.amServer ? null : await readSenderStats(reader);
  await phaseDone();
  if (protocol >= 31) {
    const ndx = await readNdxSkippingDelStats(reader, stats);
    if (ndx !== NDX_DONE) throw new ProtocolError(`invalid packet at end of run (${ndx})`, { exitCode: EXIT.PROTOCOL });
    await phaseDone();
  }
  return stats;
}

interface DataResult {
  ok: boolean;
  /** --delay-updates: verified and held back in the partial dir. */
  delayed?: true;
  literalBytes: number;
  matchedBytes: number;
  /** The sender's whole-file checksum. */
  fileSum: Buffer;
  /**
   * What became of a file that failed verification, in rsync's words: kept as its partial copy
   * (--partial-dir), or as the file (--partial, --inplace); unset: discarded.
   */
  kept?: 'put into partial-dir' | 'retained';
}

/**
 * One file's data: the echoed sum head, tokens (literal runs and references to blocks of the
 * basis), then the whole-file checksum, compared with ours. The stream is always read to its
 * end, whatever happens locally, so the protocol stays in step.
 */
// rsync/receiver.c: receive_data [pull-receive] [token]
async function receiveData(
  reader: ByteReader,
  tokens: TokenSource,
  entry: FileEntry,
  place: BasisPlace,
  tree: LocalTree,
  checksummer: Checksummer,
  copyBuf: Buffer,
  mode: WriteMode,
  keepPartial: boolean,
  sumsHelper?: SumsHelper,
  firstBasisDirFallback = false,
  onBytes?: (offset: number) => void,
): Promise<DataResult> {
  const head = await readSumHead(reader, checksummer.digestLength);
  if (head.count === 0 && mode.whole && !place.partial && entry.size <= WHOLE_IN_MEMORY_MAX) {
    return receiveWhole(reader, tokens, entry, tree, checksummer, mode.onCommitFailed!, onBytes);
  }
  let basis: BasisFile | null = null;
  if (head.count > 0) {
    basis = place.backup
      ? ((await tree.openBackup?.(place.name)) ?? null)
      : place.partial
        ? ((await tree.openPartial?.(place.name)) ?? null)
        : await tree.openBasis(place.name, place.dir);
    // Below 29 no basis type travels: the file itself, else the one basis dir (rsync's receiver).
    if (!basis && firstBasisDirFallback) basis = await tree.openBasis(entry.name, 0);
    if (!basis) throw new RsyncError('ERR_RSYNC_FILEIO', `basis file of ${entry.name.toString()} vanished during the transfer`, EXIT.FILEIO);
    // The echo must describe the basis we summed: blocks beyond it are a lying peer.
    if (basisLength(head) > basis.size) {
      await basis.close();
      throw new ProtocolError(`sum head for ${entry.name.toString()} describes ${basisLength(head)} bytes, the basis has ${basis.size}`);
    }
  }
  let temp: TempFile;
  let inplace: InplaceFile | null = null;
  // rsync's one_inplace: the partial copy, rewritten where it is (it must be there to be opened).
  const oneInplace = !!place.partial && mode.inplacePartial && !!tree.openPartialInplace && (basis !== null || (await tree.lstatPartial?.(place.name)) != null);
  if (mode.inplace) {
    if (!tree.openInplace) throw new RsyncError('ERR_RSYNC_OPTIONS', '--inplace is not supported by this destination', EXIT.SYNTAX);
    temp = inplace = await tree.openInplace(entry.name, mode.wholeFile);
  } else if (oneInplace) {
    temp = inplace = await tree.openPartialInplace!(entry.name);
  } else {
    temp = await tree.createTemp(entry.name);
  }
  // The basis is the file being rewritten: a block already at its offset is not written again.
  // So is its backup copy (rsync's updating_basis_or_equiv: the same bytes at the same offsets).
  const updatingBasis = !!inplace && basis !== null && place.dir === undefined && place.name.equals(entry.name);
  // A big file is hashed on the sums helper's thread from what is written to the temp file; the
  // main thread only reads, copies and writes. (Not in place: the writes do not go in order.)
  const helper =
    !inplace && sumsHelper && temp.fd !== undefined && temp.flush && entry.size >= PARALLEL_SUMS_MIN ? sumsHelper.fileDigest(checksummer, temp.fd) : null;
  const hasher = checksummer.startFile();
  const update = (bytes: Uint8Array): void => {
    if (helper) helper.advance(temp.flushed!);
    else hasher.update(bytes);
  };
  let literalBytes = 0;
  let matchedBytes = 0;
  let committed = false;
  // Where the next byte of the new file goes.
  let offset = 0;
  // Blocks the daemon matches one after another (block i, i+1, ... of the basis) are gathered
  // into one run and copied with one read per copyBuf: far fewer reads, hash updates and writes
  // than one of each per block.
  let runPos = 0;
  let runLen = 0;
  // When the helper hashes the temp file, nothing here needs a run's bytes: the kernel appends
  // them (TempFile.copyFrom), and a run may then span many blocks beyond copyBuf.
  const kernelCopy = helper !== null && !!temp.copyFrom && basis?.fd !== undefined && !tokens.seesBlocks;
  const maxRun = kernelCopy ? KERNEL_COPY_RUN : copyBuf.length;
  const copyRun = async (): Promise<void> => {
    // rsync/receiver.c: receive_data (updating_basis_or_equiv: a block at its own offset is skipped)
    const inPlace = updatingBasis && runPos === offset;
    let pos = runPos;
    let left = runLen;
    if (kernelCopy && !inPlace) {
      const n = await temp.copyFrom!(basis!.fd!, pos, left);
      helper!.advance(temp.flushed!);
      pos += n;
      left -= n;
      offset += n;
    }
    for (; left > 0; ) {
      const n = await basis!.read(copyBuf, Math.min(left, copyBuf.length), pos);
      if (n <= 0) throw new RsyncError('ERR_RSYNC_FILEIO', `basis file of ${entry.name.toString()} shrank during the transfer`, EXIT.FILEIO);
      const piece = copyBuf.subarray(0, n);
      if (tokens.seesBlocks) tokens.seeData!(piece);
      if (inPlace) inplace!.skip(n, piece);
      else await temp.write(piece);
      update(piece);
      pos += n;
      left -= n;
      offset += n;
    }
    runLen = 0;
  };
  try {
    // --append: the file here is kept up to the length the sum head gives; -verify hashes it too.
    if (mode.append && head.count > 0) {
      const kept = basisLength(head);
      if (mode.append === 2) {
        for (let pos = 0; pos < kept; ) {
          const n = await basis!.read(copyBuf, Math.min(kept - pos, copyBuf.length), pos);
          if (n <= 0) throw new RsyncError('ERR_RSYNC_FILEIO', `basis file of ${entry.name.toString()} shrank during the transfer`, EXIT.FILEIO);
          hasher.update(copyBuf.subarray(0, n));
          pos += n;
        }
      }
      inplace!.skip(kept);
      offset = kept;
    }
    for (;;) {
      const token = await tokens.read(head.count);
      if ('end' in token) break;
      onBytes?.(literalBytes + matchedBytes); // how far the file had come before this token, as rsync shows it
      if ('literal' in token) {
        if (runLen) await copyRun();
        await temp.write(token.literal);
        update(token.literal);
        literalBytes += token.literal.length;
        offset += token.literal.length;
        continue;
      }
      // A block of the basis: extends the run when it follows it.
      const len = blockLength(head, token.block);
      const pos = token.block * head.blength;
      // zlib shows each block to the decompressor as it is copied: one block per run then.
      if (runLen && pos === runPos + runLen && runLen + len <= maxRun && !tokens.seesBlocks) {
        runLen += len;
      } else {
        if (runLen) await copyRun();
        runPos = pos;
        runLen = len;
        if (tokens.seesBlocks) {
          tokens.seeBlock!(len);
          await copyRun();
        }
      }
      matchedBytes += len;
    }
    if (runLen) await copyRun();
    const theirs = await reader.readBuf(checksummer.digestLength);
    let ours: Uint8Array;
    if (helper) {
      await temp.flush!();
      ours = await helper.digest(temp.flushed!);
    } else {
      ours = hasher.digest();
    }
    const ok = Buffer.from(ours).equals(theirs);
    // In place the file is what it is now, verified or not (rsync finishes it either way); a
    // partial copy rewritten in place stays in the partial dir when it fails.
    // --partial without a dir: the target is already the first attempt on a redo (no backup of it).
    const retaining = keepPartial && !temp.keepPartial && !inplace;
    // rsync/receiver.c: recv_files (delay_updates && partialptr: finish_transfer into the partial
    // dir, its mtime set, the ndx remembered); a file with no partial dir (a daemon's rules
    // refuse it) is put in place at once.
    if (ok && mode.delay && temp.keepPartial && !inplace) {
      committed = await temp.keepPartial(entry, { finished: true });
      if (committed) return { ok, delayed: true, literalBytes, matchedBytes, fileSum: theirs };
    }
    if (ok || (inplace && !oneInplace)) {
      await temp.commit(entry, retaining && mode.redo ? { backup: false } : undefined);
      committed = true;
      // The partial copy was the basis of a temp file: it goes, and its dir when empty.
      if (place.partial && !oneInplace) await tree.removePartial?.(place.name);
      // rsync's words for a file in place that failed: "retained".
      if (!ok) return { ok, literalBytes, matchedBytes, fileSum: theirs, kept: 'retained' };
    } else if (oneInplace && keepPartial) {
      // The partial copy rewritten in place stays where it is.
      return { ok, literalBytes, matchedBytes, fileSum: theirs, kept: 'put into partial-dir' };
    } else if (!inplace && keepPartial && temp.keepPartial) {
      // rsync/receiver.c: recv_files (keep_partial && partialptr: the failed file into the partial dir)
      committed = await temp.keepPartial(entry);
      return { ok, literalBytes, matchedBytes, fileSum: theirs, ...(committed && { kept: 'put into partial-dir' as const }) };
    } else if (retaining) {
      // rsync/receiver.c: recv_files (keep_partial, partialptr == fname: finish_transfer with
      // ok_to_set_time 0: the failed file replaces the target, its mtime the clock's). rsync then
      // clears partialptr, so its words say "discarded" for the file it kept: so do ours.
      await temp.commit(entry, { leaveMtime: true, backup: !mode.redo });
      committed = true;
      return { ok, literalBytes, matchedBytes, fileSum: theirs };
    }
    return { ok, literalBytes, matchedBytes, fileSum: theirs };
  } catch (e) {
    // rsync/cleanup.c: exit_cleanup (keep_partial: finish_transfer of the temp file, modtime 0;
    // with a partial dir, into it, the mtime left to the clock)
    if (keepPartial && !committed && !inplace && literalBytes > 0) {
      committed = true;
      const kept = temp.keepPartial ? temp.keepPartial(entry) : temp.commit({ ...entry, mtime: 0, mtimeNsec: 0 });
      await kept.catch(() => temp.discard());
    }
    throw e;
  } finally {
    await basis?.close();
    if (!committed) await temp.discard();
  }
}

/**
 * A file sent whole (no sum head: every token is literal data), gathered in memory, verified,
 * then handed to LocalTree.commitWhole, which may put it in place while the next one is read.
 * Data beyond WHOLE_IN_MEMORY_MAX (the file grew on the sender) goes on through a temp file.
 */
// rsync/receiver.c: receive_data (no basis: fd_r < 0, only literal tokens) [pull-receive] [token]
async function receiveWhole(
  reader: ByteReader,
  tokens: TokenSource,
  entry: FileEntry,
  tree: LocalTree,
  checksummer: Checksummer,
  onCommitFailed: (text: string) => void,
  onBytes?: (offset: number) => void,
): Promise<DataResult> {
  let data = Buffer.allocUnsafe(entry.size);
  let used = 0;
  let temp: TempFile | null = null;
  let committed = false;
  const hasher = checksummer.startFile();
  try {
    for (;;) {
      const token = await tokens.read(0); // no block may be referenced
      if ('end' in token) break;
      if (!('literal' in token)) throw new ProtocolError(`block reference in ${entry.name.toString()}, sent without sums`);
      onBytes?.(used);
      const literal = token.literal;
      hasher.update(literal);
      if (!temp && used + literal.length > data.length) {
        if (used + literal.length <= WHOLE_IN_MEMORY_MAX) {
          const bigger = Buffer.allocUnsafe(Math.min(WHOLE_IN_MEMORY_MAX, Math.max(used + literal.length, data.length * 2)));
          data.copy(bigger, 0, 0, used);
          data = bigger;
        } else {
          temp = await tree.createTemp(entry.name);
          await temp.write(data.subarray(0, used));
        }
      }
      if (temp) await temp.write(literal);
      else data.set(literal, used);
      used += literal.length;
    }
    const theirs = await reader.readBuf(checksummer.digestLength);
    const ok = Buffer.from(hasher.digest()).equals(theirs);
    if (ok && temp) {
      await temp.commit(entry);
      committed = true;
    } else if (ok) {
      await tree.commitWhole!(entry.name, entry, data.subarray(0, used), onCommitFailed);
    }
    return { ok, literalBytes: used, matchedBytes: 0, fileSum: theirs };
  } finally {
    if (temp && !committed) await temp.discard();
  }
}

/**
 * --delay-updates: each held-back file renamed over its target, in list order, then its ACLs and
 * xattrs set; the partial dirs go once empty. A rename that fails is reported and counted (the
 * returned count: rsync's FERROR_XFER, exit 23); the rest go on.
 */
// rsync/receiver.c: handle_delayed_updates
async function handleDelayedUpdates(files: FileListView, tree: LocalTree, delayed: Map<number, readonly XattrPair[] | null>, options: ReceiverOptions): Promise<number> {
  let failed = 0;
  for (const [ndx, xattrBasis] of [...delayed].sort((a, b) => a[0] - b[0])) {
    const entry = files.at(ndx)!;
    try {
      await tree.finishDelayed!(entry.name);
    } catch (e) {
      (options.onError ?? options.onWarning)?.(`rename failed for "${entry.name.toString()}" (from its partial dir): ${(e as Error).message}`);
      failed++;
      continue;
    }
    if (options.acls && reportXattrFailures(options.acls.apply(ndx, entry.name, entry.mode, false).failed, options)) failed++;
    if (options.xattrs && reportXattrFailures(options.xattrs.apply(ndx, entry.name, xattrBasis, false), options)) failed++;
  }
  delayed.clear();
  return failed;
}

/** -X: what could not be set on a file (rsync reports each and counts the file failed); true when there was any. */
// rsync/xattrs.c: rsync_xal_set (its rprintf/rsyserr calls)
function reportXattrFailures(failed: string[], options: ReceiverOptions): boolean {
  for (const text of failed) options.onWarning?.(text);
  return failed.length > 0;
}

export interface RecvResult {
  generator: GeneratorResult;
  receiver: ReceiverStats;
}

/**
 * The client side of a pull after the file list: generator and receiver as two concurrent async
 * functions (rsync forks them), sharing one abort signal; the first error aborts the other.
 * `signal` (optional) aborts both from outside; on abort the caller should also end the
 * connection, so a read that waits for the daemon ends too.
 */
// rsync/main.c: do_recv
export async function doRecv(
  reader: ByteReader,
  writer: ByteWriter,
  files: FileListView,
  tree: LocalTree,
  checksummer: Checksummer,
  options: GeneratorOptions & ReceiverOptions & { signal?: AbortSignal; onAbort?: (reason: unknown) => void },
): Promise<RecvResult> {
  const controller = new AbortController();
  const outer = options.signal;
  if (outer) {
    if (outer.aborted) throw outer.reason;
    outer.addEventListener('abort', () => controller.abort(outer.reason), { once: true });
  }
  const channel = new RecvChannel(controller.signal);
  // The first failure is the one reported; the other role then stops on the abort.
  let first: { error: unknown } | null = null;
  const guard = <T>(p: Promise<T>): Promise<T> =>
    p.catch((e: unknown) => {
      if (!first) {
        first = { error: e };
        controller.abort(e);
        options.onAbort?.(e);
      }
      throw e;
    });
  const [generator, receiver] = await Promise.allSettled([
    guard(generateFiles(writer, files, tree, checksummer, channel, options)),
    guard(receiveFiles(reader, files, tree, checksummer, channel, options)),
  ]);
  if (first) throw (first as { error: unknown }).error;
  if (generator.status !== 'fulfilled' || receiver.status !== 'fulfilled') throw new Error('internal: a role failed without an error');
  return { generator: generator.value, receiver: receiver.value };
}
