// The generator role (docs/protocol.md [pull]): walk the received file list in order, bring
// directories, symlinks and attributes up to date locally, and ask the peer's sender for every
// regular file that fails rsync's quick check, with the block sums of the local basis (or a null
// sum head for a whole file); then the phase choreography, the redo phase, the deletion stats and
// the final goodbye. Today it runs on a pull (we are the client); rsync runs the same
// generate_files on the daemon's side of a push, and nothing in its wire script depends on the
// side (the receiver's half does: ReceiverOptions.amServer). The steps are top-level functions
// over one GeneratorState; deletion is in delete.ts, where a basis is in basis.ts, the fuzzy
// match in fuzzy.ts. The receiving-side options: the --delete-WHEN modes, --max-delete,
// --ignore-errors, --force, the basis directories (--compare-dest, --copy-dest, --link-dest),
// --fuzzy, --delete-missing-args, --size-only, --ignore-existing, --existing, --update,
// --max-size/--min-size, --append (a sum head alone), --inplace --backup (the backup copy as
// the basis) and --partial-dir (a partly transferred copy as the basis). All file
// access goes through the caller's `LocalTree`.
// Counterpart: rsync generator.c generate_files, recv_generator, itemize, quick_check_ok,
// try_dests_reg, copy_altdest_file, generate_and_send_sums, check_for_finished_files,
// touch_up_dirs; main.c do_recv (the generator's half).
import { EXIT, FileAttrError, ProtocolError, RsyncError } from './errors.js';
import type { ByteWriter } from './io.js';
import type { Checksummer } from './checksum.js';
import { generateSums, PARALLEL_SUMS_MIN, sumSizesSqroot, writeSumBlocks, writeSumHead, type SumsHelper } from './sums.js';
import type { FileEntry } from './flist.js';
import type { FileListView, ReceivedEntry } from './received-list.js';
import {
  IOERR_DEL_LIMIT,
  ITEM_BASIS_TYPE_FOLLOWS,
  ITEM_IS_NEW,
  ITEM_LOCAL_CHANGE,
  ITEM_MISSING_DATA,
  ITEM_REPORT_ACL,
  ITEM_REPORT_CHANGE,
  ITEM_REPORT_GROUP,
  ITEM_REPORT_OWNER,
  ITEM_REPORT_PERMS,
  ITEM_REPORT_SIZE,
  ITEM_REPORT_TIME,
  ITEM_TRANSFER,
  ITEM_REPORT_XATTR,
  ITEM_XNAME_FOLLOWS,
  NDX_DONE,
  SIGNIFICANT_ITEM_FLAGS,
  type DeleteStats,
} from './constants.js';
import type { XattrReceiver } from './xattrs.js';
import type { AclTarget } from './acls.js';
import { unsafeSymlink } from './unsafe-symlink.js';
import { CHMOD_BITS, fileType, isDevice, isDir, isLink, isReg, S_IFDIR, S_IFLNK, S_IFREG } from './modes.js';
import {
  deleteInDir,
  deleteItem,
  deleteWhen,
  doDeletePass,
  doDelayedDeletions,
  makeRoom,
  maxDeleteWarning,
  namesByDir,
  newDeleteContextFields,
  sortedDirList,
  writeDelStats,
  type DeleteContext,
  type DeleteOptions,
} from './delete.js';
import { shownName } from './terminal-text.js';
import type { BasisFile, LocalStat, LocalTree, MaybePromise } from './local-tree.js';
import { checkBasisProtocol, FNAMECMP_BACKUP, FNAMECMP_FNAME, FNAMECMP_FUZZY, FNAMECMP_PARTIAL_DIR, fuzzyDirCount, MAX_BASIS_DIRS, type BasisOptions } from './basis.js';
import { findFuzzy, type FuzzyCandidate } from './fuzzy.js';

export interface GeneratorOptions extends DeleteOptions, BasisOptions {
  /**
   * --delay-updates: the receiver puts the files in place when phase 2 starts, so the end of
   * phase 2 is not sent early and hard links wait for their leaders until the phases are over.
   */
  delayUpdates?: boolean;
  /** -X: the received xattr sets, compared, asked for and set (protocol/xattrs.ts); the receiver shares it. */
  xattrs?: XattrReceiver;
  /** -A: the received ACLs over the destination, compared and set (protocol/acls.ts); the receiver shares it. */
  acls?: AclTarget;
  /** -p, -t, -o (as root), -g: which attribute differences count (itemize, quick check). */
  perms: boolean;
  times: boolean;
  owner: boolean;
  group: boolean;
  /** -O (implied by -b without --backup-dir): a directory's mtime is neither compared nor set (rsync's omit_dir_times). */
  omitDirTimes?: boolean;
  /** -J: a symlink's mtime is neither compared nor set (rsync's omit_link_times). */
  omitLinkTimes?: boolean;
  /** -E without -p: a regular file's x bits follow the list's, its other bits stay (rsync's preserve_executability). */
  executability?: boolean;
  /**
   * -K: a symlink here to a directory stands for a directory entry of the list (LocalTree.statDirLink);
   * a name below one the tree will not go through (ELOOP) fails alone (exit 23), told to `onFileError`.
   */
  keepDirlinks?: boolean;
  /** A file that failed here, in rsync's words without "rsync: " (its FERROR_XFER: a daemon tells its client); default onWarning. */
  onFileError?: (text: string) => Promise<void> | void;
  /** -l: without it symlinks are skipped. */
  links: boolean;
  /**
   * false: -R --no-implied-dirs. A directory the list flags as implied (a parent of a path, not
   * itself named) is left alone, and a missing parent of an entry is made bare (LocalTree.makeParents).
   */
  impliedDirs?: boolean;
  /** --safe-links: a symlink pointing out of the tree is not made; `onUnsafeSymlink` hears of it (rsync tells -v). */
  safeLinks?: boolean;
  onUnsafeSymlink?: (name: Buffer, target: Buffer) => void;
  /** -D: devices and specials are created (the daemon lists them only with -D). */
  devices?: boolean;
  /** -H: entries sharing `hardlink` become hard links to the first of their group. */
  hardLinks: boolean;
  /** -c: compare whole-file checksums instead of size and mtime. */
  checksum: boolean;
  /** -I / --ignore-times */
  ignoreTimes?: boolean;
  /** -W: never send block sums. */
  wholeFile: boolean;
  /** -n: change nothing locally, send no sums. */
  dryRun: boolean;
  /** --modify-window (0 = whole seconds, -1 = nanoseconds too). */
  modifyWindow?: number;
  /** Block sums of big bases on two threads (src/sums-helper.ts). */
  sumsHelper?: SumsHelper;
  /** -c: the unseeded whole-file digest of a local file (rsync's file_checksum); `basisDir` as in LocalTree. */
  fileChecksum?: (name: Buffer, basisDir?: number) => Promise<Buffer | null>;
  /** --size-only: a regular file of the same size is up to date, whatever its mtime. */
  sizeOnly?: boolean;
  /** --ignore-existing: anything already at the destination is left alone (directories are still entered). */
  ignoreExisting?: boolean;
  /** --existing (--ignore-non-existing): nothing new is created, a missing directory's contents are skipped. */
  existing?: boolean;
  /** -u / --update: a regular file newer at the destination than in the list is left alone. */
  update?: boolean;
  /** --max-size: a regular file larger than this many bytes is skipped (not in the redo phase). */
  maxSize?: number;
  /** --min-size: a regular file smaller than this many bytes is skipped (not in the redo phase). */
  minSize?: number;
  /** --append (1) / --append-verify (2): a file at least as long here is left alone, a shorter one only grows. */
  append?: number;
  /** --delete-missing-args: a list entry with mode 0 (a missing source argument) deletes that path here. */
  deleteMissingArgs?: boolean;
  /** The caller created the destination directory for this transfer: the list's '.' is itemized as new (rsync's FLAG_DIR_CREATED). */
  rootCreated?: boolean;
  /** Each request or local change (itemize, -v). */
  onItem?: (item: GeneratedItem) => void;
  /** -b / --block-size */
  blockSize?: number;
  /** A daemon's own rules (rsync's daemon_filter_list): true refuses the entry, a directory with its contents ("." never). */
  daemonExcluded?: (name: Buffer, isDir: boolean) => boolean;
  /** Each entry so refused (counted as failed: exit 23); the caller tells the peer in rsync's words. */
  onDaemonRefused?: (name: Buffer, isDir: boolean) => Promise<void> | void;
}

export interface GeneratedItem {
  ndx: number;
  entry: FileEntry;
  iflags: number;
  /** With ITEM_XNAME_FOLLOWS: the other name (a hard link's target, a fuzzy basis). */
  xname?: Buffer;
  /**
   * A hard link made after the phases (its leader was redone): it did not travel to the sender,
   * so no echo of it comes back (29+ otherwise has every itemized hard link echoed).
   */
  local?: true;
}

/**
 * What the receiver tells the generator (rsync's error pipe): a count of MSG_DONEs and the files
 * to redo. The generator waits on it between phases.
 */
export class RecvChannel {
  done = 0;
  readonly redo: number[] = [];
  private wake: (() => void) | null = null;
  private failure: unknown = null;

  constructor(signal?: AbortSignal) {
    signal?.addEventListener('abort', () => this.fail(signal.reason), { once: true });
  }

  /** rsync's MSG_DONE (NDX_DONE written to the error pipe). */
  phaseDone(): void {
    this.done++;
    this.poke();
  }

  /** rsync's MSG_REDO. */
  requestRedo(ndx: number): void {
    this.redo.push(ndx);
    this.poke();
  }

  fail(reason: unknown): void {
    this.failure = reason ?? new Error('aborted');
    this.poke();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Throws if the receiver failed or the transfer was aborted. */
  check(): void {
    if (this.failure) throw this.failure;
  }

  /** Resolves once something new arrived (rsync's wait_for_receiver). */
  // rsync/io.c: wait_for_receiver
  async next(): Promise<void> {
    if (this.failure) throw this.failure;
    await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.failure) throw this.failure;
  }
}

export interface GeneratorResult {
  deleted: DeleteStats;
  /** Deletions --max-delete held back (0 without it). */
  skippedDeletes: number;
  /** rsync's io_error bits the generator adds: IOERR_DEL_LIMIT when --max-delete stopped deletions (exit 25). */
  ioError: number;
  /** Files requested (phase 0). */
  requested: number;
  /** Entries that could not be created (rsync's "could not make way"): exit 23. */
  failed: number;
}

/** Hand output to the socket once this much is buffered. */
const FLUSH_AT = 64 * 1024;

/**
 * What the generator's steps share (rsync keeps it in generator.c's file-scope variables): the
 * connection, the list, the local tree, the options, and what the run has gathered so far.
 */
export interface GeneratorState extends DeleteContext {
  readonly writer: ByteWriter;
  /** rsync's sorted order: the index is the ndx. */
  readonly files: FileListView;
  readonly tree: LocalTree;
  readonly checksummer: Checksummer;
  readonly receiver: RecvChannel;
  readonly options: GeneratorOptions;
  readonly protocol: number;
  /** --modify-window (0 = whole seconds, -1 = nanoseconds too). */
  readonly modifyWindow: number;
  /** Files requested in phase 0. */
  requested: number;
  /** -H: the ndx of the last entry of each hard-link group, which carries the data (rsync's F_HLINK_LAST). */
  readonly hlinkLeaders: Map<string, number>;
  /** -H: the other members, linked to their leader once it is in place. */
  readonly hlinkFollowers: Array<{ ndx: number; leader: number }>;
  /** Files requested again for a redo (a leader among them is linked to only after the phases). */
  readonly redone: Set<number>;
  /** Directories in list order, whose modes and times are set at the end. */
  readonly dirs: number[];
  /** --fuzzy: the regular files of the current directory (index 0) and of it in each basis dir, listed once per directory. */
  fuzzyDirs: { dir: string; lists: Array<FuzzyCandidate[] | null> } | null;
  /** --fuzzy: names in the destination's listing already being changed (rsync's FLAG_FILE_SENT), never a basis. */
  readonly fuzzySent: Set<string>;
  /** The last directory a daemon's rules refused: its contents are skipped (rsync's skip_dir). */
  refusedDir?: Buffer;
  /** --no-implied-dirs: the parent directory of the last entry looked at (rsync's parent_dirname). */
  parentDir?: Buffer;
}

/** The state of one generator run (before phase 0). */
export function newGeneratorState(
  writer: ByteWriter,
  files: FileListView,
  tree: LocalTree,
  checksummer: Checksummer,
  receiver: RecvChannel,
  options: GeneratorOptions,
): GeneratorState {
  return {
    writer,
    files,
    tree,
    checksummer,
    receiver,
    options,
    protocol: writer.protocol,
    modifyWindow: options.modifyWindow ?? 0,
    doXfers: !options.dryRun,
    listed: options.delete ? namesByDir(files) : new Map(),
    ...newDeleteContextFields(),
    requested: 0,
    hlinkLeaders: options.hardLinks ? hlinkLeaders(files) : new Map(),
    hlinkFollowers: [],
    redone: new Set(),
    dirs: [],
    fuzzyDirs: null,
    fuzzySent: new Set(),
  };
}

/** The list's directories, in list order (the order phase 0 enters them). */
function* listedDirs(files: FileListView): Generator<Buffer, void, undefined> {
  const { mode, name } = files;
  if (mode && name) {
    // The packed list: mode and name without an entry object.
    for (let ndx = 0; ndx < files.length; ndx++) if (isDir(mode.call(files, ndx))) yield name.call(files, ndx);
    return;
  }
  for (let ndx = 0; ndx < files.length; ndx++) {
    const entry = files.at(ndx);
    if (entry && isDir(entry.mode)) yield entry.name;
  }
}

/** Options that cannot work together or past rsync's bounds: one clear error before anything moves. */
// rsync/options.c: parse_arguments (the basis-dir count, --fuzzy)
export function checkGeneratorOptions(options: GeneratorOptions): void {
  const alt = options.altDest;
  if (alt && (!Number.isInteger(alt.count) || alt.count < 1 || alt.count > MAX_BASIS_DIRS)) {
    throw new RsyncError('ERR_RSYNC_OPTIONS', `between 1 and ${MAX_BASIS_DIRS} basis directories are allowed (got ${alt.count})`, EXIT.SYNTAX);
  }
  if (options.fuzzy !== undefined && (!Number.isInteger(options.fuzzy) || options.fuzzy < 0 || options.fuzzy > 2)) {
    throw new RsyncError('ERR_RSYNC_OPTIONS', `--fuzzy is given once or twice (got ${options.fuzzy})`, EXIT.SYNTAX);
  }
}

/**
 * Run the generator over `files` (rsync's sorted order: the index is the ndx) until the final
 * goodbye. `receiver` is how the receiver reports phases and redo requests.
 */
// rsync/generator.c: generate_files (+ main.c do_recv's final goodbye) [pull-phases]
export async function generateFiles(
  writer: ByteWriter,
  files: FileListView,
  tree: LocalTree,
  checksummer: Checksummer,
  receiver: RecvChannel,
  options: GeneratorOptions,
): Promise<GeneratorResult> {
  checkGeneratorOptions(options);
  checkBasisProtocol(options, writer.protocol);
  const state = newGeneratorState(writer, files, tree, checksummer, receiver, options);
  const protocol = state.protocol;
  const when = deleteWhen(options, protocol);
  // rsync's EARLY_DELETE_DONE_MSG: without a late deletion the counts go with the phase ends.
  const lateDelete = when === 'delay' || when === 'after';
  // NDX_DEL_STATS goes with --delete (any mode) or --force (rsync's delete_mode || force_delete).
  const sendDelStats = options.delete || !!options.force;

  // --delete-before: one pass over the whole list before anything else.
  if (when === 'before' && files.length > 0) await doDeletePass(state, files);

  // Phase 0: every entry in list order. --delete-during (and --delete-delay, which only notes)
  // works through each directory as recvGenerator reaches it. Then G1, the end of phase 0.
  tree.walkAhead?.(listedDirs(files));
  for (let ndx = 0; ndx < files.length; ndx++) {
    receiver.check(); // the receiver failed: stop here, as rsync's generator dies with it
    const pending = recvGenerator(state, ndx, false);
    if (pending) await pending;
  }
  tree.endListWalk?.();
  writer.writeNdx(NDX_DONE);
  await writer.flush();

  // Phase 1, the redo phase: files that failed their checksum are requested again until the
  // receiver has seen the end of phase 0. Then G2.
  await waitForReceiver(state, () => receiver.done >= 1, true);
  // Every file of phase 0 is in place: the hard links to leaders that are not being redone, each
  // itemized to the sender (29+), as rsync's finish_hard_link does once a leader is done.
  if (state.doXfers) await finishHardLinks(state, false);
  writer.writeNdx(NDX_DONE);
  // Phase 2, the delay-updates phase (29+): without --delay-updates G3 ends it at once ("early").
  const earlyDelayDone = !options.delayUpdates;
  if (protocol >= 29 && earlyDelayDone) writer.writeNdx(NDX_DONE);
  // The late-delete phase (31+): when deletion is over already (before, during), the counts go
  // now (NDX_DEL_STATS), then G4 (after G3).
  if (protocol >= 31 && !lateDelete) {
    if (sendDelStats) writeDelStats(writer, state.deleted);
    if (earlyDelayDone) writer.writeNdx(NDX_DONE);
  }
  await writer.flush();
  // The receiver's ends of phase 1 and phase 2 (29+); with --delay-updates, G3 (and an early
  // G4) once the receiver has finished phase 1.
  await waitForReceiver(state, () => receiver.done > 1, false);
  if (protocol >= 29 && !earlyDelayDone) {
    writer.writeNdx(NDX_DONE);
    if (protocol >= 31 && !lateDelete) writer.writeNdx(NDX_DONE);
    await writer.flush();
  }
  if (protocol >= 29) await waitForReceiver(state, () => receiver.done > 2, false);

  // --delete-delay and --delete-after: now that every file is in place.
  if (when === 'delay') await doDelayedDeletions(state);
  if (when === 'after' && files.length > 0) await doDeletePass(state, files);
  let ioError = 0;
  if (options.maxDelete !== undefined && state.skippedDeletes) {
    options.onWarning?.(maxDeleteWarning(state.skippedDeletes));
    ioError |= IOERR_DEL_LIMIT;
  }
  // The late-delete phase's counts and G4 (31+), after a late deletion.
  if (protocol >= 31 && lateDelete) {
    if (sendDelStats) writeDelStats(writer, state.deleted);
    writer.writeNdx(NDX_DONE);
    await writer.flush();
  }
  // The receiver's end of the late-delete phase (31+).
  if (protocol >= 31) await waitForReceiver(state, () => receiver.done > 3, false);

  // The phases are over: the hard links to redone leaders, then directory modes and times (their
  // contents are final).
  if (state.doXfers) await finishHardLinks(state, true);
  if (state.doXfers) await touchUpDirs(state);

  // G5, the final goodbye (rsync's do_recv: the generator writes it on either side).
  writer.writeNdx(NDX_DONE);
  await writer.flush();
  return { deleted: state.deleted, skippedDeletes: state.skippedDeletes, ioError, requested: state.requested, failed: state.failed };
}

/**
 * One entry of the list: made or fixed locally, or requested from the sender. Answers at once
 * (no promise) where the tree does and nothing waits: the up-to-date file of a no-change pull,
 * most of a big list; a promise otherwise.
 */
// rsync/generator.c: recv_generator [pull-generate]
export function recvGenerator(state: GeneratorState, ndx: number, redo: boolean): void | Promise<void> {
  const { options } = state;
  const entry = state.files.at(ndx)!;
  if (entry.active === false) return; // rsync's F_IS_ACTIVE
  // The daemon's own rules, --no-implied-dirs and -K look at more than the name first.
  if (options.daemonExcluded || options.impliedDirs === false || options.keepDirlinks) return recvCheckedGenerator(state, ndx, entry, redo);
  const st = walkStat(state, ndx, entry, redo);
  return st instanceof Promise ? st.then((found) => recvWithStat(state, ndx, entry, found, redo)) : recvWithStat(state, ndx, entry, st, redo);
}

/** recvGenerator with the daemon's rules (skip_dir, daemon_filter_list), --no-implied-dirs' parents and -K's links. */
// rsync/generator.c: recv_generator (the checks before its link_stat, and keep_dirlinks after it)
async function recvCheckedGenerator(state: GeneratorState, ndx: number, entry: ReceivedEntry, redo: boolean): Promise<void> {
  const { tree, options, doXfers } = state;
  if (options.daemonExcluded && (await refusedByDaemon(state, entry))) return;
  const name = entry.name;
  const type = fileType(entry.mode);
  if (options.impliedDirs === false) {
    // An implied directory (30+: XMIT_TOP_DIR without content) is the receiver's to make or not.
    if (type === S_IFDIR && state.protocol >= 30 && entry.topDir === true && entry.contentDir === false) return;
    if (entry.mode !== 0 && doXfers) await makeMissingParents(state, name);
  }
  let st: LocalStat | null;
  try {
    st = await walkStat(state, ndx, entry, redo);
  } catch (e) {
    // -K: below a symlinked directory that leads out of the destination (the tree refuses it).
    if (!options.keepDirlinks || (e as { code?: string }).code !== 'ELOOP') throw e;
    state.failed++;
    const text = `recv_generator: failed to stat "${name.toString()}": Too many levels of symbolic links (40)`;
    await (options.onFileError ?? options.onWarning)?.(text);
    return;
  }
  // -K: a symlink to a directory, for a directory of the list, is that directory.
  if (options.keepDirlinks && type === S_IFDIR && st && isLink(st.mode) && tree.statDirLink) st = (await tree.statDirLink(name)) ?? st;
  return recvWithStat(state, ndx, entry, st, redo);
}

/**
 * What is at the entry's name here. Phase 0 walks the list in order: the tree may answer from a
 * snapshot of the directory. A directory's siblings come after its tree: its parent is worth
 * reading whole now (the tree keeps that read while it walks below and uses it again when it
 * comes back).
 */
// rsync/generator.c: recv_generator (link_stat)
function walkStat(state: GeneratorState, ndx: number, entry: ReceivedEntry, redo: boolean): MaybePromise<LocalStat | null> {
  const { tree } = state;
  if (redo || !tree.lstatListed) return tree.lstat(entry.name);
  return tree.lstatListed(entry.name, fileType(entry.mode) === S_IFDIR || state.files.sameDirAsNext?.(ndx));
}

/** recvGenerator once the name's stat is known: by the entry's type. */
// rsync/generator.c: recv_generator (after link_stat)
function recvWithStat(state: GeneratorState, ndx: number, entry: ReceivedEntry, st: LocalStat | null, redo: boolean): void | Promise<void> {
  const { options } = state;
  const type = fileType(entry.mode);
  // 0. --delete-missing-args: a missing source argument (mode 0) deletes what is here, unless
  // the filter rules protect it (recursively only with --delete or --force, as rsync's del_opts).
  if (entry.mode === 0) {
    if (!options.deleteMissingArgs) throw new ProtocolError(`file list entry without a mode: ${entry.name.toString()}`);
    if (!st || options.isProtected?.(entry.name, isDir(st.mode))) return;
    return deleteItem(state, entry.name, st, false, options.delete || !!options.force).then(() => undefined);
  }
  // --existing: nothing new is made (and a missing directory's contents stay missing with it).
  // A redo ignores it, --ignore-existing and -u (rsync negates them for the redo phase).
  if (options.existing && !redo && !st) return;
  // --ignore-existing: what is here stays as it is; a directory is still entered.
  if (options.ignoreExisting && !redo && st && !(type === S_IFDIR && isDir(st.mode))) return;

  // 1-5, by type, each part a function of its own.
  if (type === S_IFDIR) return recvDir(state, ndx, entry, st, redo);
  if (type === S_IFLNK) return recvSymlink(state, ndx, entry, st);
  if (type !== S_IFREG) return recvSpecial(state, ndx, entry, st, type);
  return recvRegular(state, ndx, entry, st, redo);
}

/** 1. Directories: replace a non-directory, create, delete extraneous entries (--delete). */
// rsync/generator.c: recv_generator (the S_ISDIR part)
async function recvDir(state: GeneratorState, ndx: number, entry: ReceivedEntry, st: LocalStat | null, redo: boolean): Promise<void> {
  const { tree, options, doXfers } = state;
  const name = entry.name;
  if (st && !isDir(st.mode)) {
    await makeRoom(state, name, st, 'directory');
    st = null;
  }
  // A basis dir's copy of a missing directory makes it no new item (itemized against that
  // copy; not at all when identical).
  const alt = !st && options.altDest ? await tryDestsNon(state, entry) : null;
  if (!st && doXfers) await tree.mkdir(name, entry);
  // The destination made for this transfer is itemized as new (rsync's FLAG_DIR_CREATED on the list's '.').
  const created = ndx === 0 && !!options.rootCreated && name.length === 1 && name[0] === 0x2e;
  if (!alt) itemize(state, ndx, entry, created ? null : st, st && !created ? 0 : ITEM_LOCAL_CHANGE);
  else if (alt.level < 3) itemize(state, ndx, entry, alt.st, ITEM_LOCAL_CHANGE);
  if (doXfers) applyXattrs(state, ndx, entry);
  const when = deleteWhen(options, state.protocol);
  if ((when === 'during' || when === 'delay') && !redo && entry.contentDir !== false && (st || doXfers)) await deleteInDir(state, name);
  state.dirs.push(ndx);
}

/** 2. Symlinks: an equal one keeps its place; anything else is replaced atomically. */
// rsync/generator.c: recv_generator (the S_ISLNK part)
async function recvSymlink(state: GeneratorState, ndx: number, entry: ReceivedEntry, st: LocalStat | null): Promise<void> {
  const { tree, options, doXfers } = state;
  const name = entry.name;
  if (!options.links) return skipNonRegular(state, name);
  const target = entry.symlink;
  if (!target) throw new ProtocolError(`symlink without a target in the file list: ${name.toString()}`);
  // rsync/generator.c: recv_generator (safe_symlinks)
  if (options.safeLinks && unsafeSymlink(target, name)) {
    options.onUnsafeSymlink?.(name, target);
    return;
  }
  if (st && isLink(st.mode) && st.symlink?.equals(target)) {
    if (doXfers) await setAttrsOrReport(state, name, entry, st);
    itemize(state, ndx, entry, st, 0);
    if (doXfers) applyXattrs(state, ndx, entry);
    return;
  }
  const alt = !st && options.altDest ? await tryDestsNon(state, entry) : null;
  if (alt?.level === 3 && (await useIdenticalNon(state, entry, alt))) return;
  if (st && isDir(st.mode) && !(await makeRoom(state, name, st, 'symlink'))) return;
  if (doXfers) {
    await tree.symlink(name, target);
    await setAttrsOrReport(state, name, entry, null);
  }
  if (!alt) itemize(state, ndx, entry, st && isLink(st.mode) ? st : null, ITEM_LOCAL_CHANGE | ITEM_REPORT_CHANGE);
  else if (alt.level < 3) itemize(state, ndx, entry, alt.st, ITEM_LOCAL_CHANGE | ITEM_REPORT_CHANGE);
  if (doXfers) applyXattrs(state, ndx, entry);
}

/** 3. Devices and specials: an equal one stays, anything else is replaced (mknod). */
// rsync/generator.c: recv_generator (the devices and specials part)
async function recvSpecial(state: GeneratorState, ndx: number, entry: ReceivedEntry, st: LocalStat | null, type: number): Promise<void> {
  const { tree, options, doXfers } = state;
  const name = entry.name;
  if (!options.devices || !tree.mknod) return skipNonRegular(state, name);
  const device = isDevice(entry.mode);
  const same =
    st &&
    fileType(st.mode) === type &&
    (!device || (st.rdev?.major === entry.rdev?.major && st.rdev?.minor === entry.rdev?.minor));
  if (same) return keepItem(state, ndx, entry, st!, null);
  const alt = !st && options.altDest ? await tryDestsNon(state, entry) : null;
  if (alt?.level === 3 && (await useIdenticalNon(state, entry, alt))) return;
  if (st && isDir(st.mode) && !(await makeRoom(state, name, st, device ? 'device file' : 'special file'))) return;
  if (doXfers) {
    await tree.mknod(name, entry);
    await setAttrsOrReport(state, name, entry, null);
  }
  if (!alt) itemize(state, ndx, entry, st && fileType(st.mode) === type ? st : null, ITEM_LOCAL_CHANGE | ITEM_REPORT_CHANGE);
  else if (alt.level < 3) itemize(state, ndx, entry, alt.st, ITEM_LOCAL_CHANGE | ITEM_REPORT_CHANGE);
  if (doXfers) applyXattrs(state, ndx, entry);
}

/** Without -l a symlink, without -D a device or special, is left out with rsync's line (FINFO: stdout). */
// rsync/generator.c: recv_generator ("skipping non-regular file")
function skipNonRegular(state: GeneratorState, name: Buffer): void {
  (state.options.onInfo ?? state.options.onWarning)?.(`skipping non-regular file "${shownName(name)}"`);
}

/** 4-6. A regular file: a hard-link follower waits for its leader; one up to date is left (its attributes fixed); else it is requested. */
// rsync/generator.c: recv_generator (the regular-file part)
function recvRegular(state: GeneratorState, ndx: number, entry: ReceivedEntry, st: LocalStat | null, redo: boolean): void | Promise<void> {
  const { options } = state;
  // 4. Hard links (-H): only the group's last entry is transferred; the others are linked to it.
  const group = options.hardLinks ? hlinkGroupKey(entry) : null;
  if (group !== null) {
    const leader = state.hlinkLeaders.get(group);
    if (leader !== undefined && leader !== ndx) {
      if (!redo) state.hlinkFollowers.push({ ndx, leader });
      return;
    }
  }

  // 5. A regular file. --max-size/--min-size: outside the bounds it is skipped (rsync lifts the
  // bounds for the redo phase); -u: one newer here stays.
  // (Its "is over max-size" note is an -vv detail, not shown.)
  if (!redo && options.maxSize !== undefined && entry.size > options.maxSize) return;
  if (!redo && options.minSize !== undefined && entry.size < options.minSize) return;
  if (options.update && !redo && st && isReg(st.mode) && entry.mtime - st.mtime < state.modifyWindow) return;
  // A file here, and no basis directory or partial copy to look at: straight to the quick check.
  if (!st || !isReg(st.mode) || options.altDest || (options.partialDir && state.tree.lstatPartial)) return recvRegularWithBasis(state, ndx, entry, st, redo);
  const here = st;
  const upToDate = quickCheckOk(state, entry, here, redo);
  if (upToDate === true) return keepItem(state, ndx, entry, here, null);
  if (upToDate === false) return requestChanged(state, ndx, entry, here, redo, null, null);
  return upToDate.then((yes) => (yes ? keepItem(state, ndx, entry, here, null) : requestChanged(state, ndx, entry, here, redo, null, null)));
}

/** recvRegular with something else in the file's place, basis directories, or a --partial-dir to look at first. */
// rsync/generator.c: recv_generator (the regular-file part: try_dests_reg, partial_dir)
async function recvRegularWithBasis(state: GeneratorState, ndx: number, entry: ReceivedEntry, st: LocalStat | null, redo: boolean): Promise<void> {
  const { tree, options } = state;
  const name = entry.name;
  // Something else in its place goes.
  if (st && !isReg(st.mode)) {
    if (!(await makeRoom(state, name, st, 'file'))) return;
    st = null;
  }
  // The basis directories: an identical file there is used as it is (compared, copied or
  // linked), a present one is the basis of the delta.
  let basis: RequestBasis | null = null;
  if (options.altDest && (!st || options.altDest.kind !== 'copy')) {
    const found = await tryDestsReg(state, ndx, entry, st, redo);
    if (found === 'done') return;
    if (found) {
      basis = found;
      st = found.st;
    }
  }
  // --partial-dir: a partly transferred copy there (a regular file) is the basis; with nothing
  // here it is used at once, else only if the file here is not up to date. [pull-partial-dir]
  const partial = options.partialDir && tree.lstatPartial ? await tree.lstatPartial(name) : null;
  if (!basis && st && (await quickCheckOk(state, entry, st, redo))) return keepItem(state, ndx, entry, st, partial);
  return requestChanged(state, ndx, entry, st, redo, basis, partial);
}

/**
 * An item that stays as it is (an up-to-date file, an equal device or special): its attributes
 * fixed, itemized; a file's partial copy is not needed any more.
 */
// rsync/generator.c: recv_generator (quick_check_ok: set_file_attrs, itemize)
function keepItem(state: GeneratorState, ndx: number, entry: ReceivedEntry, st: LocalStat, partial: LocalStat | null): void | Promise<void> {
  if (!state.doXfers) return itemize(state, ndx, entry, st, 0);
  if (partial) {
    return (async () => {
      await state.tree.removePartial?.(entry.name);
      await setAttrsOrReport(state, entry.name, entry, st);
      itemKept(state, ndx, entry, st);
    })();
  }
  const set = setAttrsOrReport(state, entry.name, entry, st);
  if (set) return set.then(() => itemKept(state, ndx, entry, st));
  itemKept(state, ndx, entry, st);
}

/** A kept item's ACLs, itemize line and xattrs, after its attributes. */
function itemKept(state: GeneratorState, ndx: number, entry: ReceivedEntry, st: LocalStat): void {
  const acl = applyAclsFirst(state, ndx, entry, st);
  itemize(state, ndx, entry, acl?.st ?? st, 0, undefined, acl?.flag);
  applyXattrs(state, ndx, entry, !!acl);
}

/** A regular file not up to date here: requested, against the best basis there is. */
// rsync/generator.c: recv_generator (after quick_check_ok failed: fuzzy, backup, then the request)
async function requestChanged(state: GeneratorState, ndx: number, entry: ReceivedEntry, st: LocalStat | null, redo: boolean, basis: RequestBasis | null, partial: LocalStat | null): Promise<void> {
  const { options, doXfers } = state;
  const name = entry.name;
  // --append: what is here already at least as long stays as it is (not in the redo phase, where
  // rsync turns append off).
  if (options.append && !redo && st && !basis && st.size >= entry.size) return;
  if (partial) {
    await requestFile(state, ndx, entry, st, redo, { type: FNAMECMP_PARTIAL_DIR, name, st: partial, partial: true });
    return;
  }
  // --fuzzy: a missing file takes a similar one as its basis.
  if (!st && !basis && options.fuzzy) basis = await fuzzyBasis(state, entry);
  // --inplace --backup: the file as it is now is copied to its backup first, and (with a delta)
  // that copy is the basis, so the sender may match any of its blocks.
  if (options.inplaceBackup && st && !basis && doXfers && state.tree.backupCopy && (await state.tree.backupCopy(name)) && !options.wholeFile) {
    basis = { type: FNAMECMP_BACKUP, name, st, backup: true };
  }

  // 6. The request.
  await requestFile(state, ndx, entry, st, redo, basis);
}


/**
 * --no-implied-dirs: the parent directories of an entry that are missing here are made bare
 * (no attributes from the list), once per change of parent as rsync checks them.
 */
// rsync/generator.c: recv_generator (relative_paths && !implied_dirs: make_path of the parent)
async function makeMissingParents(state: GeneratorState, name: Buffer): Promise<void> {
  const slash = name.lastIndexOf(0x2f);
  if (slash < 0) return;
  const parent = name.subarray(0, slash);
  if (state.parentDir?.equals(parent)) return;
  state.parentDir = Buffer.from(parent);
  if (!state.tree.makeParents || (await state.tree.lstat(parent))) return;
  await state.tree.makeParents(name);
}

/** An entry a daemon's own rules exclude, or one inside a directory they refused: true skips it. */
// rsync/generator.c: recv_generator (the skip_dir and daemon_filter_list checks)
async function refusedByDaemon(state: GeneratorState, entry: ReceivedEntry): Promise<boolean> {
  const { name } = entry;
  const skip = state.refusedDir;
  if (skip && name.length > skip.length && name[skip.length] === 0x2f && name.subarray(0, skip.length).equals(skip)) return true;
  if (name.length === 1 && name[0] === 0x2e) return false;
  const dir = isDir(entry.mode);
  if (!state.options.daemonExcluded!(name, dir)) return false;
  state.failed++;
  if (dir) state.refusedDir = name;
  await state.options.onDaemonRefused?.(name, dir);
  return true;
}

/** A basis other than the file itself: where it is, and what the request says of it. */
export interface RequestBasis {
  /** FNAMECMP_BASIS_DIR_LOW + j, or FNAMECMP_FUZZY + i. */
  type: number;
  /** The basis dir it is in (undefined: the destination). */
  dir?: number;
  /** Its list-relative name. */
  name: Buffer;
  /** Fuzzy: its basename, sent as the xname. */
  xname?: Buffer;
  /** Its stat: the request is itemized against it for a basis dir (not for a fuzzy one). */
  st: LocalStat;
  /** The file's backup copy (FNAMECMP_BACKUP). */
  backup?: true;
  /** The file's partial copy in the --partial-dir (FNAMECMP_PARTIAL_DIR): itemized against the file here. */
  partial?: true;
}

/**
 * The basis directories for a regular file that is missing or changed here (with --copy-dest,
 * only a missing one): the first with an identical file (same data and attributes) wins, else
 * the first with the same data, else the first with the file at all. Identical (compare, link):
 * nothing to transfer ('done'; link makes a hard link to it). Same data, or identical with
 * --copy-dest: copied locally ('done'). Otherwise that file is the basis of the delta.
 */
// rsync/generator.c: try_dests_reg (+ copy_altdest_file)
async function tryDestsReg(state: GeneratorState, ndx: number, entry: FileEntry, here: LocalStat | null, redo: boolean): Promise<RequestBasis | 'done' | null> {
  const { tree, options } = state;
  const alt = options.altDest!;
  const name = entry.name;
  let best = -1;
  let level = 0;
  let bestSt: LocalStat | null = null;
  for (let j = 0; j < alt.count; j++) {
    const st = await tree.lstat(name, j);
    if (!st || !isReg(st.mode)) continue;
    if (level === 0) {
      best = j;
      level = 1;
      bestSt = st;
    }
    if (!(await quickCheckOk(state, entry, st, redo, j))) continue;
    if (level === 1) {
      best = j;
      level = 2;
      bestSt = st;
    }
    if (unchangedAttrs(state, entry, st)) {
      best = j;
      level = 3;
      bestSt = st;
      break;
    }
  }
  if (!level) return null;
  const st = bestSt!;
  if (level === 3 && alt.kind !== 'copy') {
    if (here) {
      // Already the same file: nothing to do here at all.
      if (alt.kind === 'link' && here.dev === st.dev && here.ino === st.ino) return null;
    }
    let linked = alt.kind !== 'link';
    if (alt.kind === 'link') {
      linked = !state.doXfers || (await tree.link(name, name, best).then(() => true, () => false));
    } else {
      if (here && state.doXfers) await tree.remove(name);
      itemize(state, ndx, entry, st, 0);
    }
    // A hard link that cannot be made (another file system): a local copy instead, as rsync.
    if (linked) return 'done';
  } else if (here) {
    return null;
  }
  if (level >= 2) {
    if (state.doXfers && !(await copyAltDestFile(state, entry, best))) return null;
    itemize(state, ndx, entry, st, ITEM_LOCAL_CHANGE);
    return 'done';
  }
  return { type: best, dir: best, name, st };
}

/** What a basis dir holds for a missing non-regular entry: how close it is, and where. */
interface NonRegMatch {
  /** 1: same type; 2: the same (target, rdev); 3: and the same attributes. */
  level: number;
  dir: number;
  st: LocalStat;
}

/**
 * The basis directories for a missing directory, symlink, device or special: the first with an
 * identical one wins, else the first with an equal one, else the first of the same type.
 */
// rsync/generator.c: try_dests_non (the search)
async function tryDestsNon(state: GeneratorState, entry: FileEntry): Promise<NonRegMatch | null> {
  const { tree, options } = state;
  const type = fileType(entry.mode);
  let best: NonRegMatch | null = null;
  for (let j = 0; j < options.altDest!.count; j++) {
    const st = await tree.lstat(entry.name, j);
    if (!st || fileType(st.mode) !== type) continue;
    if (!best) best = { level: 1, dir: j, st };
    const same =
      type === S_IFLNK
        ? !!st.symlink && !!entry.symlink && st.symlink.equals(entry.symlink)
        : isDevice(entry.mode)
          ? st.rdev?.major === entry.rdev?.major && st.rdev?.minor === entry.rdev?.minor
          : true;
    if (!same) continue;
    if (best.level < 2) best = { level: 2, dir: j, st };
    if (unchangedAttrs(state, entry, st)) return { level: 3, dir: j, st };
  }
  return best;
}

/**
 * An identical symlink, device or special in a basis dir: --link-dest links it (true: done; a
 * link that fails creates it instead), --compare-dest leaves it out (true), --copy-dest creates
 * it (false), none of them itemized.
 */
// rsync/generator.c: try_dests_non (match level 3) + recv_generator's j == -2 / -3 cases
async function useIdenticalNon(state: GeneratorState, entry: FileEntry, match: NonRegMatch): Promise<boolean> {
  const kind = state.options.altDest!.kind;
  if (kind === 'compare') return true;
  if (kind === 'copy') return false;
  if (!state.doXfers) return true;
  return state.tree.link(entry.name, entry.name, match.dir).then(
    () => true,
    () => false,
  );
}

/** --copy-dest: the identical file of basis dir `dir` copied into place (a temp file, then the rename). */
// rsync/generator.c: copy_altdest_file
async function copyAltDestFile(state: GeneratorState, entry: FileEntry, dir: number): Promise<boolean> {
  const source = await state.tree.openBasis(entry.name, dir);
  if (!source) return false;
  try {
    const temp = await state.tree.createTemp(entry.name);
    let committed = false;
    try {
      for await (const chunk of source.chunks()) await temp.write(chunk);
      await temp.commit(entry);
      committed = true;
    } finally {
      if (!committed) await temp.discard();
    }
    return true;
  } finally {
    await source.close();
  }
}

/**
 * Whether an item's attributes are those the list gives (mtime with -t, perms with -p but never a
 * symlink's on Linux, owner as root, group).
 */
// rsync/generator.c: unchanged_attrs
function unchangedAttrs(state: GeneratorState, entry: FileEntry, st: LocalStat): boolean {
  const { options } = state;
  // -J counts here, -O does not (rsync checks omit_link_times only).
  const timed = isLink(entry.mode) ? options.times && !options.omitLinkTimes : options.times;
  if (timed && mtimeDiffers(st, entry, state.modifyWindow)) return false;
  if (!isLink(entry.mode) && permsDiffer(options, entry, st)) return false;
  if (options.owner && st.uid !== entry.uid) return false;
  if (options.group && st.gid !== entry.gid) return false;
  return true;
}

/** The regular files of one directory as fuzzy candidates (null when the directory is absent or empty). */
async function fuzzyCandidates(tree: LocalTree, dir: Buffer, protocol: number, basisDir?: number): Promise<FuzzyCandidate[] | null> {
  const entries = await sortedDirList(tree, dir, protocol, basisDir);
  if (!entries.length) return null;
  return entries.filter((e) => isReg(e.st.mode)).map((e) => ({ name: e.base, size: e.st.size, mtime: e.st.mtime }));
}

/**
 * --fuzzy: a similar file as the basis of a missing one, in its directory here or (-yy) in the
 * same directory of a basis dir. The listings are made once per directory, as rsync's.
 */
// rsync/generator.c: recv_generator (the fuzzy_dirlist part) + find_fuzzy [pull-request]
async function fuzzyBasis(state: GeneratorState, entry: FileEntry): Promise<RequestBasis | null> {
  const { tree, options } = state;
  const slash = entry.name.lastIndexOf(0x2f);
  const dir = slash < 0 ? Buffer.from('.') : entry.name.subarray(0, slash);
  const key = dir.toString('latin1');
  if (state.fuzzyDirs?.dir !== key) {
    const lists: Array<FuzzyCandidate[] | null> = [];
    const count = fuzzyDirCount(options);
    for (let i = 0; i < count; i++) lists.push(await fuzzyCandidates(tree, dir, state.protocol, i === 0 ? undefined : i - 1));
    state.fuzzyDirs = { dir: key, lists };
    state.fuzzySent.clear();
  }
  const match = findFuzzy(
    { name: slash < 0 ? entry.name : entry.name.subarray(slash + 1), size: entry.size, mtime: entry.mtime },
    state.fuzzyDirs.lists,
    (i, base) => i === 0 && state.fuzzySent.has(base.toString('latin1')),
    state.modifyWindow,
  );
  if (!match) return null;
  const xname = match.candidate.name;
  const name = slash < 0 ? Buffer.from(xname) : Buffer.concat([entry.name.subarray(0, slash + 1), xname]);
  const at = match.dirIndex === 0 ? undefined : match.dirIndex - 1;
  const st = await tree.lstat(name, at);
  if (!st || !isReg(st.mode)) return null;
  return { type: FNAMECMP_FUZZY + match.dirIndex, ...(at !== undefined && { dir: at }), name, xname: Buffer.from(xname), st };
}

/**
 * A transfer request: ndx, iflags (29+; with the basis type and the fuzzy xname when the basis
 * is not the file itself), then the sum head and the block sums of the basis (a null head for a
 * new or empty file, or with -W; nothing with -n).
 */
// rsync/generator.c: recv_generator (its tail) + generate_and_send_sums [pull-request]
export async function requestFile(
  state: GeneratorState,
  ndx: number,
  entry: FileEntry,
  st: LocalStat | null,
  redo: boolean,
  basis: RequestBasis | null = null,
): Promise<void> {
  const { writer, options, protocol, checksummer } = state;
  writer.writeNdx(ndx);
  let iflags = ITEM_TRANSFER;
  if (options.checksum && !redo) iflags |= ITEM_REPORT_CHANGE; // rsync negates always_checksum for a redo
  if (basis && basis.type !== FNAMECMP_FNAME) iflags |= ITEM_BASIS_TYPE_FOLLOWS;
  if (basis && basis.type >= FNAMECMP_FUZZY) iflags |= ITEM_XNAME_FOLLOWS;
  // Itemized against what is here, or the basis dir's file (a fuzzy basis leaves it new).
  const fuzzy = !!basis && basis.type >= FNAMECMP_FUZZY;
  iflags = itemFlags(state, entry, fuzzy ? null : st, iflags) | aclFlags(state, ndx, entry, fuzzy ? null : st) | xattrFlags(state, ndx, entry, fuzzy ? null : st);
  if (protocol >= 29) {
    writer.writeShort(iflags);
    if (iflags & ITEM_BASIS_TYPE_FOLLOWS) writer.writeByte(basis!.type);
    if (iflags & ITEM_XNAME_FOLLOWS) writer.writeVstring(basis!.xname!);
    writeXattrRequest(state, ndx, iflags);
  }
  // Below 29 no iflags travel and rsync itemizes a transfer as its receiver sees it.
  options.onItem?.({ ndx, entry, iflags: protocol >= 29 ? iflags : ITEM_TRANSFER | ITEM_MISSING_DATA, ...(basis?.xname && { xname: basis.xname }) });
  if (!redo) state.requested++;
  if (!state.doXfers) return;
  const basisSt = basis ? basis.st : st;
  let file: BasisFile | null = null;
  if (basisSt && !options.wholeFile && basisSt.size > 0) {
    // The file being changed is no fuzzy basis for the next ones (rsync's FLAG_FILE_SENT).
    if (state.fuzzyDirs?.dir === dirKey(entry.name)) state.fuzzySent.add(baseName(entry.name).toString('latin1'));
    file = basis?.backup
      ? ((await state.tree.openBackup?.(entry.name)) ?? null)
      : basis?.partial
        ? ((await state.tree.openPartial?.(entry.name)) ?? null)
        : await state.tree.openBasis(basis ? basis.name : entry.name, basis?.dir);
  }
  if (!file) {
    writeSumHead(writer, null);
  } else {
    try {
      const head = sumSizesSqroot(file.size, protocol, checksummer.digestLength, {
        fullSums: redo,
        ...(options.blockSize && { blockSize: options.blockSize }),
      });
      // --append: the head alone says how much is here; the sender sends what follows it.
      if (options.append && !redo) {
        writeSumHead(writer, head);
      } else {
        const sums =
          options.sumsHelper && file.fd !== undefined && file.size >= PARALLEL_SUMS_MIN
            ? await options.sumsHelper.sums(checksummer, file.fd, head)
            : await generateSums(checksummer, file.chunks(), head);
        writeSumHead(writer, head);
        writeSumBlocks(writer, sums);
      }
    } finally {
      await file.close();
    }
  }
  if (writer.pending >= FLUSH_AT) await writer.flush();
}

function dirKey(name: Buffer): string {
  const slash = name.lastIndexOf(0x2f);
  return slash < 0 ? '.' : name.toString('latin1', 0, slash);
}

function baseName(name: Buffer): Buffer {
  const slash = name.lastIndexOf(0x2f);
  return slash < 0 ? name : name.subarray(slash + 1);
}

/**
 * Whether an entry's mtime is compared and kept here: with -t, a directory's unless -O, a
 * symlink's unless -J, at every protocol (a Linux receiver sets symlink times: rsync's
 * receiver_symlink_times is 1 on the receiving side whatever the protocol).
 */
// rsync/generator.c: itemize (keep_time)
function keepTime(options: GeneratorOptions, mode: number): boolean {
  if (!options.times) return false;
  if (isDir(mode)) return !options.omitDirTimes;
  if (isLink(mode)) return !options.omitLinkTimes;
  return true;
}

/**
 * Whether the permissions here differ from the list's: all of them with -p; with -E, a regular
 * file's only in whether anyone may execute it (rsync's dest_mode has already made any other
 * entry's list mode the local one, so it never differs).
 */
// rsync/generator.c: perms_differ
function permsDiffer(options: GeneratorOptions, entry: FileEntry, st: LocalStat): boolean {
  if (options.perms) return (st.mode & CHMOD_BITS) !== (entry.mode & CHMOD_BITS);
  if (options.executability && isReg(entry.mode)) return (st.mode & 0o111 ? 1 : 0) !== (entry.mode & 0o111 ? 1 : 0);
  return false;
}

/** The iflags of an entry against what is on disk (`st` null: it is new). */
// rsync/generator.c: itemize (the flags it works out)
export function itemFlags(state: GeneratorState, entry: FileEntry, st: LocalStat | null, iflags: number): number {
  const { options } = state;
  if (st) {
    if (isReg(entry.mode) && entry.size !== st.size) iflags |= ITEM_REPORT_SIZE;
    if (keepTime(options, entry.mode) ? mtimeDiffers(st, entry, state.modifyWindow) : iflags & (ITEM_TRANSFER | ITEM_LOCAL_CHANGE)) iflags |= ITEM_REPORT_TIME;
    if (!isLink(entry.mode) && permsDiffer(options, entry, st)) iflags |= ITEM_REPORT_PERMS;
    if (options.owner && st.uid !== entry.uid) iflags |= ITEM_REPORT_OWNER;
    if (options.group && st.gid !== entry.gid) iflags |= ITEM_REPORT_GROUP;
  } else {
    iflags |= ITEM_IS_NEW;
  }
  return iflags & 0xffff;
}

/** A non-transfer: its iflags go to the sender when significant (29+; before, only transfers travel). */
// rsync/generator.c: itemize
function itemize(state: GeneratorState, ndx: number, entry: FileEntry, st: LocalStat | null, flags: number, xname?: Buffer, aclFlag?: number): void {
  const iflags = itemFlags(state, entry, st, flags) | (aclFlag ?? aclFlags(state, ndx, entry, st)) | xattrFlags(state, ndx, entry, st);
  if ((iflags & SIGNIFICANT_ITEM_FLAGS || xname) && state.protocol >= 29) {
    state.writer.writeNdx(ndx);
    state.writer.writeShort(iflags);
    if (iflags & ITEM_XNAME_FOLLOWS) state.writer.writeVstring(xname!);
    writeXattrRequest(state, ndx, iflags);
  }
  state.options.onItem?.({ ndx, entry, iflags, ...(xname && { xname }) });
}

/** -A: ITEM_REPORT_ACL when the file here (`st` null: none, the item is new) has ACLs other than the sender's. */
// rsync/generator.c: itemize (the set_acl comparison) [acl-diff]
function aclFlags(state: GeneratorState, ndx: number, entry: FileEntry, st: LocalStat | null): number {
  const acls = state.options.acls;
  return acls && st && !isLink(entry.mode) && acls.differs(ndx, entry.name, entry.mode) ? ITEM_REPORT_ACL : 0;
}

/**
 * -A on an item that stays (an up-to-date file, an equal device): compared, then set before it is
 * itemized, as rsync's set_file_attrs runs first there; the mode its access ACL gave is the one
 * itemize sees (no `p` for bits the ACL brought). Null without -A.
 */
// rsync/generator.c: recv_generator (set_file_attrs, then itemize); acls.c set_acl (sxp->st.st_mode = cur_mode)
function applyAclsFirst(state: GeneratorState, ndx: number, entry: FileEntry, st: LocalStat): { st: LocalStat; flag: number } | null {
  const acls = state.options.acls;
  if (!acls) return null;
  const flag = aclFlags(state, ndx, entry, st);
  const { failed, mode } = flag ? acls.apply(ndx, entry.name, entry.mode, false) : { failed: [], mode: null };
  for (const text of failed) state.options.onWarning?.(text);
  if (failed.length) state.failed++;
  return { st: mode === null ? st : { ...st, mode }, flag };
}

/** -X: ITEM_REPORT_XATTR when the set here (`st` null: none, the item is new) is not the sender's. */
// rsync/generator.c: itemize (the xattr_diff calls) [xattr-diff]
function xattrFlags(state: GeneratorState, ndx: number, entry: FileEntry, st: LocalStat | null): number {
  const xattrs = state.options.xattrs;
  return xattrs?.differs(ndx, st ? entry.name : null) ? ITEM_REPORT_XATTR : 0;
}

/** -X: the long values the sender is asked for, after the request's flags and name. */
// rsync/generator.c: itemize (send_xattr_request) [xattr-request]
function writeXattrRequest(state: GeneratorState, ndx: number, iflags: number): void {
  const xattrs = state.options.xattrs;
  if (!xattrs || !state.doXfers || !(iflags & (ITEM_REPORT_XATTR | ITEM_TRANSFER))) return;
  xattrs.writeRequest(xattrs.follows(iflags) ? state.writer : null, ndx);
}

/**
 * -A: a non-transfer gets the sender's ACLs; -X: the generator sets what it can of its xattr set
 * (long values it lacks come to the receiver).
 */
// rsync/rsync.c: set_file_attrs (set_acl, set_xattr, as the generator)
function applyXattrs(state: GeneratorState, ndx: number, entry: FileEntry, aclsDone = false): void {
  const acls = state.options.acls && !aclsDone && !isLink(entry.mode) ? state.options.acls.apply(ndx, entry.name, entry.mode, isDir(entry.mode)).failed : [];
  const failed = [...acls, ...(state.options.xattrs?.apply(ndx, entry.name, null, true) ?? [])];
  for (const text of failed) state.options.onWarning?.(text);
  if (failed.length) state.failed++;
}

// rsync/util1.c: same_time (via generator.c mtime_differs)
function mtimeDiffers(st: LocalStat, entry: FileEntry, window: number): boolean {
  if (window === 0) return st.mtime !== entry.mtime;
  if (window < 0) return st.mtime !== entry.mtime || st.mtimeNsec !== (entry.mtimeNsec ?? 0);
  return Math.abs(st.mtime - entry.mtime) > window;
}

/**
 * Whether a regular file is up to date: same size, then (-c) the same whole-file checksum, or
 * (--size-only) nothing more, or the same mtime. Never with -I, nor for a redo. `basisDir`: the
 * file is that basis dir's copy (its checksum is read there).
 */
// rsync/generator.c: quick_check_ok (FT_REG)
export function quickCheckOk(state: GeneratorState, entry: FileEntry, st: LocalStat, redo: boolean, basisDir?: number): boolean | Promise<boolean> {
  const { options } = state;
  if (st.size !== entry.size) return false;
  if (options.checksum && !redo) return sameChecksum(state, entry, basisDir);
  if (options.sizeOnly && !redo) return true;
  if (options.ignoreTimes || redo) return false;
  return !mtimeDiffers(st, entry, state.modifyWindow);
}

/** -c: the file here has the sender's checksum. */
// rsync/generator.c: quick_check_ok (file_checksum)
async function sameChecksum(state: GeneratorState, entry: FileEntry, basisDir?: number): Promise<boolean> {
  const sum = await state.options.fileChecksum?.(entry.name, basisDir);
  return !!sum && !!entry.checksum && sum.equals(entry.checksum);
}

/** Request again each file the receiver sent back for a redo. */
// rsync/generator.c: check_for_finished_files (the redo half)
async function checkForFinishedFiles(state: GeneratorState): Promise<void> {
  const { receiver, files } = state;
  while (receiver.redo.length) {
    const ndx = receiver.redo.shift()!;
    if (ndx < 0 || ndx >= files.length) throw new ProtocolError(`redo of an invalid index ${ndx}`);
    state.redone.add(ndx);
    await recvGenerator(state, ndx, true);
  }
}

/** Flush and wait until `ready()` (a phase end the receiver reported), serving redos if `redo`. */
// rsync/io.c: wait_for_receiver (in generate_files' loops)
async function waitForReceiver(state: GeneratorState, ready: () => boolean, redo: boolean): Promise<void> {
  const { receiver, writer } = state;
  for (;;) {
    if (redo) await checkForFinishedFiles(state);
    await writer.flush();
    // No await between these checks and next(): a message from the receiver that arrived during
    // the awaits above is seen here, and one that arrives later wakes next().
    if (redo && receiver.redo.length) continue;
    if (ready()) return;
    await receiver.next();
  }
}

/** -H: the key of an entry's hard-link group (30+: the group number; before: the sender's dev:ino), or null. */
function hlinkGroupKey(entry: ReceivedEntry | FileEntry): string | null {
  const group = (entry as ReceivedEntry).hlinkGroup;
  if (group !== undefined) return `g${group}`;
  return entry.hardlink ? `${entry.hardlink.dev}:${entry.hardlink.ino}` : null;
}

/** -H: each group's leader, its last active member in list order (rsync's F_HLINK_LAST). */
// rsync/hlink.c: match_gnums (the last of each group is the one transferred)
function hlinkLeaders(files: FileListView): Map<string, number> {
  const leaders = new Map<string, number>();
  for (let ndx = 0; ndx < files.length; ndx++) {
    const entry = files.at(ndx)!;
    if (!entry.active) continue;
    const key = hlinkGroupKey(entry);
    if (key !== null) leaders.set(key, ndx);
  }
  return leaders;
}

/**
 * -H: the followers become hard links to their leader. During the phases (`afterPhases` false),
 * those whose leader is in place: each link is itemized to the sender (29+) with the leader's
 * name, as rsync's finish_hard_link itemizes it, so a client shows `hf NAME => LEADER`. After
 * the phases, the rest (their leader was redone): local only, nothing travels any more.
 */
// rsync/hlink.c: finish_hard_link, hard_link_one
async function finishHardLinks(state: GeneratorState, afterPhases: boolean): Promise<void> {
  const { files, tree } = state;
  const later: Array<{ ndx: number; leader: number }> = [];
  // rsync links a group when its leader is done (leaders in list order), walking the group back
  // from the leader (F_HL_PREV): the followers last-listed first.
  const order = [...state.hlinkFollowers].sort((x, y) => x.leader - y.leader || y.ndx - x.ndx);
  for (const follower of order) {
    const { ndx, leader } = follower;
    // --delay-updates: the leader is still in its partial dir until phase 2.
    if (!afterPhases && (state.redone.has(leader) || state.options.delayUpdates)) {
      later.push(follower);
      continue;
    }
    const entry = files.at(ndx)!;
    const lead = files.at(leader)!;
    const [a, b] = await Promise.all([tree.lstat(entry.name), tree.lstat(lead.name)]);
    if (!b) continue;
    if (a && a.ino === b.ino && a.dev === b.dev) continue;
    await tree.link(entry.name, lead.name);
    if (afterPhases) {
      state.options.onItem?.({ ndx, entry, iflags: itemFlags(state, entry, a, ITEM_LOCAL_CHANGE | ITEM_XNAME_FOLLOWS), xname: lead.name, local: true });
    } else {
      itemize(state, ndx, entry, a, ITEM_LOCAL_CHANGE | ITEM_XNAME_FOLLOWS, lead.name);
    }
  }
  state.hlinkFollowers.length = 0;
  state.hlinkFollowers.push(...later);
}

/**
 * The tree's setAttrs; a chmod or utimensat that failed (FileAttrError) fails this item alone, told
 * in rsync's words and counted (exit 23), as rsync's set_file_attrs does.
 */
// rsync/rsync.c: set_file_attrs (rsyserr FERROR_XFER, then on)
function setAttrsOrReport(state: GeneratorState, name: Buffer, entry: FileEntry, st: LocalStat | null): void | Promise<void> {
  let set: void | Promise<void>;
  try {
    set = state.tree.setAttrs(name, entry, st);
  } catch (e) {
    return attrsFailed(state, e);
  }
  if (set) return set.catch((e: unknown) => attrsFailed(state, e));
}

/** A chmod or utimensat that failed fails the item alone (exit 23), as rsync's set_file_attrs; anything else goes on. */
async function attrsFailed(state: GeneratorState, e: unknown): Promise<void> {
  if (!(e instanceof FileAttrError)) throw e;
  state.failed++;
  await (state.options.onFileError ?? state.options.onWarning)?.(e.message);
}

/** Directory modes and times, deepest last-listed first (their contents are final now). */
// rsync/generator.c: touch_up_dirs
async function touchUpDirs(state: GeneratorState): Promise<void> {
  const { files, tree, dirs } = state;
  for (let i = dirs.length - 1; i >= 0; i--) {
    const entry = files.at(dirs[i]!)!;
    await setAttrsOrReport(state, entry.name, entry, await tree.lstat(entry.name));
  }
}
