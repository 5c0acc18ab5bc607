// The generator role (docs/protocol.md [pull]): walk the received file list in order, bring
// directories, symlinks and attributes up to date locally, and ask the peer's sender for every
// regular file that fails rsync's quick check, with the block sums of the local basis (or a null
// sum head for a whole file); then the phase choreography, the redo phase, the deletion stats and
// the final goodbye. Today it runs on a pull (we are the client); rsync runs the same
// generate_files on the daemon's side of a push, and nothing in its wire script depends on the
// side (the receiver's half does: ReceiverOptions.amServer). The steps are top-level functions
// over one GeneratorState; deletion is in delete.ts. All file access goes through the caller's
// `LocalTree`.
// Counterpart: rsync generator.c generate_files, recv_generator, itemize, quick_check_ok,
// generate_and_send_sums, check_for_finished_files, touch_up_dirs; main.c do_recv (the
// generator's half).
import { ProtocolError } from './errors.js';
import type { ByteWriter } from './io.js';
import type { Checksummer } from './checksum.js';
import { generateSums, PARALLEL_SUMS_MIN, sumSizesSqroot, writeSumBlocks, writeSumHead, type SumsHelper } from './sums.js';
import type { FileEntry } from './flist.js';
import type { ReceivedEntry } from './flist-recv.js';
import {
  ITEM_IS_NEW,
  ITEM_LOCAL_CHANGE,
  ITEM_MISSING_DATA,
  ITEM_REPORT_CHANGE,
  ITEM_REPORT_GROUP,
  ITEM_REPORT_OWNER,
  ITEM_REPORT_PERMS,
  ITEM_REPORT_SIZE,
  ITEM_REPORT_TIME,
  ITEM_TRANSFER,
  ITEM_XNAME_FOLLOWS,
  NDX_DONE,
  SIGNIFICANT_ITEM_FLAGS,
  type DeleteStats,
} from './constants.js';
import { CHMOD_BITS, fileType, isDevice, isDir, isLink, isReg, S_IFDIR, S_IFLNK, S_IFREG } from './modes.js';
import { deleteInDir, makeRoom, namesByDir, newDeleteStats, writeDelStats, type DeleteContext, type DeleteOptions } from './delete.js';
import type { LocalStat, LocalTree } from './local-tree.js';

export interface GeneratorOptions extends DeleteOptions {
  /** -p, -t, -o (as root), -g: which attribute differences count (itemize, quick check). */
  perms: boolean;
  times: boolean;
  owner: boolean;
  group: boolean;
  /** -l: without it symlinks are skipped. */
  links: boolean;
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
  /** -c: the unseeded whole-file digest of a local file (rsync's file_checksum). */
  fileChecksum?: (name: Buffer) => Promise<Buffer | null>;
  /** Each request or local change (itemize, -v). */
  onItem?: (item: GeneratedItem) => void;
  /** -b / --block-size */
  blockSize?: number;
}

export interface GeneratedItem {
  ndx: number;
  entry: FileEntry;
  iflags: number;
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
  readonly files: readonly ReceivedEntry[];
  readonly tree: LocalTree;
  readonly checksummer: Checksummer;
  readonly receiver: RecvChannel;
  readonly options: GeneratorOptions;
  readonly protocol: number;
  /** --modify-window (0 = whole seconds, -1 = nanoseconds too). */
  readonly modifyWindow: number;
  /** Files requested in phase 0. */
  requested: number;
  /** -H: the ndx of the first entry of each hard-link group, which carries the data. */
  readonly hlinkLeaders: Map<string, number>;
  /** -H: the other members, linked to their leader once the phases are over. */
  readonly hlinkFollowers: Array<{ ndx: number; leader: number }>;
  /** Directories in list order, whose modes and times are set at the end. */
  readonly dirs: number[];
}

/** The state of one generator run (before phase 0). */
export function newGeneratorState(
  writer: ByteWriter,
  files: readonly ReceivedEntry[],
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
    deleted: newDeleteStats(),
    failed: 0,
    requested: 0,
    hlinkLeaders: new Map(),
    hlinkFollowers: [],
    dirs: [],
  };
}

/**
 * Run the generator over `files` (rsync's sorted order: the index is the ndx) until the final
 * goodbye. `receiver` is how the receiver reports phases and redo requests.
 */
// rsync/generator.c: generate_files (+ main.c do_recv's final goodbye) [pull-phases]
export async function generateFiles(
  writer: ByteWriter,
  files: readonly ReceivedEntry[],
  tree: LocalTree,
  checksummer: Checksummer,
  receiver: RecvChannel,
  options: GeneratorOptions,
): Promise<GeneratorResult> {
  const state = newGeneratorState(writer, files, tree, checksummer, receiver, options);
  const protocol = state.protocol;

  // Phase 0: every entry in list order. --delete is rsync's delete_during: each directory's
  // extraneous names go as recvGenerator reaches it (rsync's own client picks delete_before
  // below protocol 30; the tree it leaves is the same). Then G1, the end of phase 0.
  for (let ndx = 0; ndx < files.length; ndx++) {
    receiver.check(); // the receiver failed: stop here, as rsync's generator dies with it
    await recvGenerator(state, ndx, false);
  }
  writer.writeNdx(NDX_DONE);
  await writer.flush();

  // Phase 1, the redo phase: files that failed their checksum are requested again until the
  // receiver has seen the end of phase 0. Then G2.
  await waitForReceiver(state, () => receiver.done >= 1, true);
  writer.writeNdx(NDX_DONE);
  // Phase 2, the delay-updates phase (29+): no --delay-updates, so G3 ends it at once ("early").
  if (protocol >= 29) writer.writeNdx(NDX_DONE);
  // The late-delete phase (31+): deletion was done during phase 0, so the counts go now
  // (NDX_DEL_STATS with --delete), then G4.
  if (protocol >= 31) {
    if (options.delete) writeDelStats(writer, state.deleted);
    writer.writeNdx(NDX_DONE);
  }
  await writer.flush();
  // The receiver's ends of phase 1, phase 2 (29+) and of the late-delete phase (31+).
  await waitForReceiver(state, () => receiver.done > 1, false);
  if (protocol >= 29) await waitForReceiver(state, () => receiver.done > 2, false);
  if (protocol >= 31) await waitForReceiver(state, () => receiver.done > 3, false);

  // The phases are over: hard links, then directory modes and times (their contents are final).
  if (state.doXfers) await finishHardLinks(state);
  if (state.doXfers) await touchUpDirs(state);

  // G5, the final goodbye (rsync's do_recv: the generator writes it on either side).
  writer.writeNdx(NDX_DONE);
  await writer.flush();
  return { deleted: state.deleted, requested: state.requested, failed: state.failed };
}

/** One entry of the list: made or fixed locally, or requested from the sender. */
// rsync/generator.c: recv_generator [pull-generate]
export async function recvGenerator(state: GeneratorState, ndx: number, redo: boolean): Promise<void> {
  const { tree, options, doXfers } = state;
  const entry = state.files[ndx]!;
  if (entry.active === false) return; // rsync's F_IS_ACTIVE
  const name = entry.name;
  const type = fileType(entry.mode);
  let st = await tree.lstat(name);

  // 1. Directories: replace a non-directory, create, delete extraneous entries (--delete).
  if (type === S_IFDIR) {
    if (st && !isDir(st.mode)) {
      await makeRoom(state, name, st, 'directory');
      st = null;
    }
    if (!st && doXfers) await tree.mkdir(name, entry);
    itemize(state, ndx, entry, st, st ? 0 : ITEM_LOCAL_CHANGE);
    if (options.delete && entry.contentDir !== false && (st || doXfers)) await deleteInDir(state, name);
    state.dirs.push(ndx);
    return;
  }

  // 2. Symlinks: an equal one keeps its place; anything else is replaced atomically.
  if (type === S_IFLNK) {
    if (!options.links) {
      options.onWarning?.(`skipping non-regular file "${name.toString()}"`);
      return;
    }
    const target = entry.symlink;
    if (!target) throw new ProtocolError(`symlink without a target in the file list: ${name.toString()}`);
    if (st && isLink(st.mode) && st.symlink?.equals(target)) {
      if (doXfers) await tree.setAttrs(name, entry, st);
      itemize(state, ndx, entry, st, 0);
      return;
    }
    if (st && isDir(st.mode) && !(await makeRoom(state, name, st, 'symlink'))) return;
    if (doXfers) {
      await tree.symlink(name, target);
      await tree.setAttrs(name, entry, null);
    }
    itemize(state, ndx, entry, st && isLink(st.mode) ? st : null, ITEM_LOCAL_CHANGE | ITEM_REPORT_CHANGE);
    return;
  }

  // 3. Devices and specials: an equal one stays, anything else is replaced (mknod).
  if (type !== S_IFREG) {
    if (!options.devices || !tree.mknod) {
      options.onWarning?.(`skipping non-regular file "${name.toString()}"`);
      return;
    }
    const device = isDevice(entry.mode);
    const same =
      st &&
      fileType(st.mode) === type &&
      (!device || (st.rdev?.major === entry.rdev?.major && st.rdev?.minor === entry.rdev?.minor));
    if (same) {
      if (doXfers) await tree.setAttrs(name, entry, st);
      itemize(state, ndx, entry, st, 0);
      return;
    }
    if (st && isDir(st.mode) && !(await makeRoom(state, name, st, device ? 'device file' : 'special file'))) return;
    if (doXfers) {
      await tree.mknod(name, entry);
      await tree.setAttrs(name, entry, null);
    }
    itemize(state, ndx, entry, st && fileType(st.mode) === type ? st : null, ITEM_LOCAL_CHANGE | ITEM_REPORT_CHANGE);
    return;
  }

  // 4. Hard links (-H): only the group's first entry is transferred.
  const group = entry.hlinkGroup !== undefined ? `g${entry.hlinkGroup}` : entry.hardlink ? `${entry.hardlink.dev}:${entry.hardlink.ino}` : null;
  if (options.hardLinks && group !== null) {
    const leader = state.hlinkLeaders.get(group);
    if (leader !== undefined && leader !== ndx) {
      state.hlinkFollowers.push({ ndx, leader });
      return;
    }
    state.hlinkLeaders.set(group, ndx);
  }

  // 5. A regular file: something else in its place goes; an up-to-date file keeps its data.
  if (st && !isReg(st.mode)) {
    if (!(await makeRoom(state, name, st, 'file'))) return;
    st = null;
  }
  if (st && (await quickCheckOk(state, entry, st, redo))) {
    if (doXfers) await tree.setAttrs(name, entry, st);
    itemize(state, ndx, entry, st, 0);
    return;
  }

  // 6. The request.
  await requestFile(state, ndx, entry, st, redo);
}

/**
 * A transfer request: ndx, iflags (29+), then the sum head and the block sums of the local basis
 * (a null head for a new or empty file, or with -W; nothing with -n).
 */
// rsync/generator.c: recv_generator (its tail) + generate_and_send_sums [pull-request]
export async function requestFile(state: GeneratorState, ndx: number, entry: FileEntry, st: LocalStat | null, redo: boolean): Promise<void> {
  const { writer, options, protocol, checksummer } = state;
  writer.writeNdx(ndx);
  let iflags = ITEM_TRANSFER;
  if (options.checksum) iflags |= ITEM_REPORT_CHANGE;
  iflags = itemFlags(state, entry, st, iflags);
  if (protocol >= 29) writer.writeShort(iflags);
  // Below 29 no iflags travel and rsync itemizes a transfer as its receiver sees it.
  options.onItem?.({ ndx, entry, iflags: protocol >= 29 ? iflags : ITEM_TRANSFER | ITEM_MISSING_DATA });
  if (!redo) state.requested++;
  if (!state.doXfers) return;
  const basis = st && !options.wholeFile && st.size > 0 ? await state.tree.openBasis(entry.name) : null;
  if (!basis) {
    writeSumHead(writer, null);
  } else {
    try {
      const head = sumSizesSqroot(basis.size, protocol, checksummer.digestLength, {
        fullSums: redo,
        ...(options.blockSize && { blockSize: options.blockSize }),
      });
      const sums =
        options.sumsHelper && basis.fd !== undefined && basis.size >= PARALLEL_SUMS_MIN
          ? await options.sumsHelper.sums(checksummer, basis.fd, head)
          : await generateSums(checksummer, basis.chunks(), head);
      writeSumHead(writer, head);
      writeSumBlocks(writer, sums);
    } finally {
      await basis.close();
    }
  }
  if (writer.pending >= FLUSH_AT) await writer.flush();
}

/** The iflags of an entry against what is on disk (`st` null: it is new). */
// rsync/generator.c: itemize (the flags it works out)
export function itemFlags(state: GeneratorState, entry: FileEntry, st: LocalStat | null, iflags: number): number {
  const { options } = state;
  if (st) {
    if (isReg(entry.mode) && entry.size !== st.size) iflags |= ITEM_REPORT_SIZE;
    const keepTime = options.times && (!isLink(entry.mode) || state.protocol >= 30);
    if (keepTime ? mtimeDiffers(st, entry, state.modifyWindow) : iflags & (ITEM_TRANSFER | ITEM_LOCAL_CHANGE)) iflags |= ITEM_REPORT_TIME;
    if (!isLink(entry.mode) && options.perms && (st.mode & CHMOD_BITS) !== (entry.mode & CHMOD_BITS)) iflags |= ITEM_REPORT_PERMS;
    if (options.owner && st.uid !== entry.uid) iflags |= ITEM_REPORT_OWNER;
    if (options.group && st.gid !== entry.gid) iflags |= ITEM_REPORT_GROUP;
  } else {
    iflags |= ITEM_IS_NEW;
  }
  return iflags & 0xffff;
}

/** A non-transfer: its iflags go to the sender when significant (29+; before, only transfers travel). */
// rsync/generator.c: itemize
function itemize(state: GeneratorState, ndx: number, entry: FileEntry, st: LocalStat | null, flags: number): void {
  const iflags = itemFlags(state, entry, st, flags);
  if (iflags & SIGNIFICANT_ITEM_FLAGS && state.protocol >= 29) {
    state.writer.writeNdx(ndx);
    state.writer.writeShort(iflags);
  }
  state.options.onItem?.({ ndx, entry, iflags });
}

// rsync/util1.c: same_time (via generator.c mtime_differs)
function mtimeDiffers(st: LocalStat, entry: FileEntry, window: number): boolean {
  if (window === 0) return st.mtime !== entry.mtime;
  if (window < 0) return st.mtime !== entry.mtime || st.mtimeNsec !== (entry.mtimeNsec ?? 0);
  return Math.abs(st.mtime - entry.mtime) > window;
}

/**
 * Whether a regular file is up to date: same size, then (-c) the same whole-file checksum or the
 * same mtime. Never with -I, nor for a redo.
 */
// rsync/generator.c: quick_check_ok (FT_REG)
export async function quickCheckOk(state: GeneratorState, entry: FileEntry, st: LocalStat, redo: boolean): Promise<boolean> {
  const { options } = state;
  if (st.size !== entry.size) return false;
  if (options.checksum && !redo) {
    const sum = await options.fileChecksum?.(entry.name);
    return !!sum && !!entry.checksum && sum.equals(entry.checksum);
  }
  if (options.ignoreTimes || redo) return false;
  return !mtimeDiffers(st, entry, state.modifyWindow);
}

/** Request again each file the receiver sent back for a redo. */
// rsync/generator.c: check_for_finished_files (the redo half)
async function checkForFinishedFiles(state: GeneratorState): Promise<void> {
  const { receiver, files } = state;
  while (receiver.redo.length) {
    const ndx = receiver.redo.shift()!;
    if (ndx < 0 || ndx >= files.length) throw new ProtocolError(`redo of an invalid index ${ndx}`);
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

/** -H: each follower becomes a hard link to its group's leader (local only: nothing travels now). */
// rsync/hlink.c: finish_hard_link (here once the phases are over)
async function finishHardLinks(state: GeneratorState): Promise<void> {
  const { files, tree } = state;
  for (const { ndx, leader } of state.hlinkFollowers) {
    const entry = files[ndx]!;
    const lead = files[leader]!;
    const [a, b] = await Promise.all([tree.lstat(entry.name), tree.lstat(lead.name)]);
    if (!b) continue;
    if (!a || a.ino !== b.ino || a.dev !== b.dev) {
      await tree.link(entry.name, lead.name);
      state.options.onItem?.({ ndx, entry, iflags: itemFlags(state, entry, a, ITEM_LOCAL_CHANGE | ITEM_XNAME_FOLLOWS) });
    }
  }
}

/** Directory modes and times, deepest last-listed first (their contents are final now). */
// rsync/generator.c: touch_up_dirs
async function touchUpDirs(state: GeneratorState): Promise<void> {
  const { files, tree, dirs } = state;
  for (let i = dirs.length - 1; i >= 0; i--) {
    const entry = files[dirs[i]!]!;
    await tree.setAttrs(entry.name, entry, await tree.lstat(entry.name));
  }
}
