// The generator role of a pull (docs/protocol.md [pull]): walk the received file list in order,
// bring directories, symlinks and attributes up to date locally, and ask the daemon's sender for
// every regular file that fails rsync's quick check, with the block sums of the local basis (or a
// null sum head for a whole file); then the phase choreography, the redo phase, the deletion
// stats and the final goodbye. All file access goes through the caller's `LocalTree`.
// Counterpart: rsync generator.c generate_files, recv_generator, itemize, quick_check_ok,
// generate_and_send_sums, delete_in_dir; main.c do_recv (the generator's half).
import { ProtocolError } from './errors.js';
import type { ByteWriter } from './io.js';
import { NDX_DONE } from './varint.js';
import type { Checksummer } from './checksum.js';
import { generateSums, PARALLEL_SUMS_MIN, sumSizesSqroot, writeSumBlocks, writeSumHead, type ChunkSource, type SumsHelper } from './sums.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type FileEntry } from './flist.js';
import {
  ITEM_IS_NEW,
  ITEM_LOCAL_CHANGE,
  ITEM_REPORT_CHANGE,
  ITEM_REPORT_GROUP,
  ITEM_REPORT_OWNER,
  ITEM_REPORT_PERMS,
  ITEM_REPORT_SIZE,
  ITEM_REPORT_TIME,
  ITEM_TRANSFER,
  ITEM_MISSING_DATA,
  ITEM_BASIS_TYPE_FOLLOWS,
  ITEM_XNAME_FOLLOWS,
  NDX_DEL_STATS,
  type DeleteStats,
} from './sender.js';

/** What the local tree says about one name (lstat; never follows a symlink). */
export interface LocalStat {
  mode: number;
  size: number;
  mtime: number;
  mtimeNsec: number;
  uid: number;
  gid: number;
  /** Identity, to tell whether two names are already the same hard-linked file. */
  dev: bigint;
  ino: bigint;
  /** Symlink target bytes (symlinks only). */
  symlink?: Buffer;
  /** Device numbers (block and character devices only). */
  rdev?: { major: number; minor: number };
}

/** A local file opened for reading (the basis of a delta), never through a symlink. */
export interface BasisFile {
  readonly size: number;
  /** The open descriptor, when there is one: lets a SumsHelper read the file from two threads. */
  readonly fd?: number;
  /** The whole file, streamed from offset 0. */
  chunks(): ChunkSource;
  /** Read `length` bytes at `position` into `into` (at 0); resolves to the bytes read. */
  read(into: Uint8Array, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

/** A temporary file next to its target, being rebuilt by the receiver. */
export interface TempFile {
  write(bytes: Uint8Array): Promise<void>;
  /** The descriptor, open for reading too (a SumsHelper hashes what is written), when there is one. */
  readonly fd?: number;
  /** Bytes written through to `fd` so far (the rest is still buffered). */
  readonly flushed?: number;
  /** Write out whatever is buffered. */
  flush?(): Promise<void>;
  /** Set the entry's attributes and rename it over the target (atomic). */
  commit(entry: FileEntry): Promise<void>;
  /** Remove it, leaving the target as it was. */
  discard(): Promise<void>;
}

/**
 * The destination as the roles see it: names are the file list's (relative, '/'-separated raw
 * bytes; '.' is the destination itself). The implementation must refuse any name that would
 * leave the destination (a parent that is a symlink or not a directory) and never follow a
 * symlink in the final component.
 */
export interface LocalTree {
  lstat(name: Buffer): Promise<LocalStat | null>;
  openBasis(name: Buffer): Promise<BasisFile | null>;
  createTemp(name: Buffer): Promise<TempFile>;
  /** A new directory, owner-writable until `setAttrs` gives it its final mode. */
  mkdir(name: Buffer, entry: FileEntry): Promise<void>;
  /** Replace whatever is at `name` with a symlink (atomically). */
  symlink(name: Buffer, target: Buffer): Promise<void>;
  /**
   * Replace whatever is at `name` with a device, fifo or socket of the entry's type and rdev
   * (atomically). Optional: without it such entries are skipped with a warning.
   */
  mknod?(name: Buffer, entry: FileEntry): Promise<void>;
  /** Replace whatever is at `name` with a hard link to `existing` (atomically). */
  link(name: Buffer, existing: Buffer): Promise<void>;
  /** Remove a non-directory, or a directory with all its contents. */
  remove(name: Buffer): Promise<void>;
  /** The names in a local directory (basenames). */
  list(dir: Buffer): Promise<Buffer[]>;
  /** Mode, times and owner as the options say (the tree knows -p/-t/-o/-g). */
  setAttrs(name: Buffer, entry: FileEntry, st: LocalStat | null): Promise<void>;
}

/**
 * A file-list entry as the receiving side holds it: a slot cleared as a duplicate (`active`
 * false) keeps its ndx but is never used; `hlinkGroup` (-H) is the same for every member of a
 * hard-link group (flist-recv's ReceivedEntry has both).
 */
export interface PullEntry extends FileEntry {
  active?: boolean;
  hlinkGroup?: number;
}

/** rsync.h FNAMECMP_FNAME: the basis is the file itself (the only basis we use). */
export const FNAMECMP_FNAME = 0x80;

export interface GeneratorOptions {
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
  /** --delete: remove local files the list does not have. */
  delete: boolean;
  /** --modify-window (0 = whole seconds, -1 = nanoseconds too). */
  modifyWindow?: number;
  /** Local files the filter rules protect from --delete (excluded, without --delete-excluded). */
  isProtected?: (name: Buffer, isDir: boolean) => boolean;
  /** Block sums of big bases on two threads (src/sums-helper.ts). */
  sumsHelper?: SumsHelper;
  /** -c: the unseeded whole-file digest of a local file (rsync's file_checksum). */
  fileChecksum?: (name: Buffer) => Promise<Buffer | null>;
  /** Each request or local change (itemize, -v). */
  onItem?: (item: GeneratedItem) => void;
  /** Each local deletion (directories end in '/'). */
  onDeleted?: (name: Buffer, isDir: boolean) => void;
  onWarning?: (text: string) => void;
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

const isDirMode = (mode: number): boolean => (mode & S_IFMT) === S_IFDIR;
const isRegMode = (mode: number): boolean => (mode & S_IFMT) === S_IFREG;
const isLinkMode = (mode: number): boolean => (mode & S_IFMT) === S_IFLNK;
/** rsync's CHMOD_BITS: the permission bits compared and set. */
const CHMOD_BITS = 0o7777;
/** rsync.h SIGNIFICANT_ITEM_FLAGS: what makes an itemized non-transfer travel. */
const SIGNIFICANT_ITEM_FLAGS = ~(ITEM_BASIS_TYPE_FOLLOWS | ITEM_XNAME_FOLLOWS | ITEM_LOCAL_CHANGE) & 0xffff;
/** Hand output to the socket once this much is buffered. */
const FLUSH_AT = 64 * 1024;

/** Last component and parent of a list name ('' parent for top-level names). */
function splitName(name: Buffer): { dir: Buffer; base: Buffer } {
  const slash = name.lastIndexOf(0x2f);
  return slash < 0 ? { dir: Buffer.from('.'), base: name } : { dir: name.subarray(0, slash), base: name.subarray(slash + 1) };
}

function joinName(dir: Buffer, base: Buffer): Buffer {
  return dir.length === 1 && dir[0] === 0x2e ? Buffer.from(base) : Buffer.concat([dir, Buffer.from('/'), base]);
}

// rsync/util1.c: same_time (via generator.c mtime_differs)
function mtimeDiffers(st: LocalStat, entry: FileEntry, window: number): boolean {
  if (window === 0) return st.mtime !== entry.mtime;
  if (window < 0) return st.mtime !== entry.mtime || st.mtimeNsec !== (entry.mtimeNsec ?? 0);
  return Math.abs(st.mtime - entry.mtime) > window;
}

/**
 * Run the generator over `files` (rsync's sorted order: the index is the ndx) until the final
 * goodbye. `receiver` is how the receiver reports phases and redo requests.
 */
// rsync/generator.c: generate_files
export async function generateFiles(
  writer: ByteWriter,
  files: readonly PullEntry[],
  tree: LocalTree,
  checksummer: Checksummer,
  receiver: RecvChannel,
  options: GeneratorOptions,
): Promise<GeneratorResult> {
  const protocol = writer.protocol;
  const window = options.modifyWindow ?? 0;
  const deleted: DeleteStats = { files: 0, dirs: 0, symlinks: 0, devices: 0, specials: 0 };
  const doXfers = !options.dryRun;
  let requested = 0;
  let failed = 0;

  // Names of the list, per directory, for --delete (rsync walks the sorted list; a map is simpler).
  const listed = new Map<string, Set<string>>();
  if (options.delete) {
    for (const e of files) {
      if (e.active === false) continue;
      if (e.name.length === 1 && e.name[0] === 0x2e) continue;
      const { dir, base } = splitName(e.name);
      const key = dir.toString('latin1');
      let set = listed.get(key);
      if (!set) listed.set(key, (set = new Set()));
      set.add(base.toString('latin1'));
    }
  }
  // -H: the first entry of each group carries the data; the others are linked to it at the end.
  const leaders = new Map<string, number>();
  const followers: Array<{ ndx: number; leader: number }> = [];
  const dirs: number[] = [];

  // rsync/generator.c: itemize (the part that writes to the sender)
  const itemize = (entry: FileEntry, st: LocalStat | null, iflags: number): number => {
    if (st) {
      if (isRegMode(entry.mode) && entry.size !== st.size) iflags |= ITEM_REPORT_SIZE;
      const keepTime = options.times && (!isLinkMode(entry.mode) || protocol >= 30);
      if (keepTime ? mtimeDiffers(st, entry, window) : iflags & (ITEM_TRANSFER | ITEM_LOCAL_CHANGE)) iflags |= ITEM_REPORT_TIME;
      if (!isLinkMode(entry.mode) && options.perms && (st.mode & CHMOD_BITS) !== (entry.mode & CHMOD_BITS)) iflags |= ITEM_REPORT_PERMS;
      if (options.owner && st.uid !== entry.uid) iflags |= ITEM_REPORT_OWNER;
      if (options.group && st.gid !== entry.gid) iflags |= ITEM_REPORT_GROUP;
    } else {
      iflags |= ITEM_IS_NEW;
    }
    return iflags & 0xffff;
  };
  const send = (ndx: number, iflags: number): void => {
    if (protocol < 29) return; // before 29 only transfers travel, as a bare ndx
    writer.writeNdx(ndx);
    writer.writeShort(iflags);
  };
  const report = (ndx: number, entry: FileEntry, st: LocalStat | null, flags: number): void => {
    const iflags = itemize(entry, st, flags);
    if (iflags & SIGNIFICANT_ITEM_FLAGS) send(ndx, iflags);
    options.onItem?.({ ndx, entry, iflags });
  };

  // rsync/delete.c: delete_item (+ delete_dir_contents: the contents first, each counted; the
  // item itself is counted unless it only makes room for a new entry, DEL_MAKE_ROOM)
  const deleteItem = async (name: Buffer, st: LocalStat, count: boolean): Promise<void> => {
    const isDir = isDirMode(st.mode);
    if (isDir) {
      const names = await tree.list(name);
      names.sort(Buffer.compare);
      for (let i = names.length - 1; i >= 0; i--) {
        const child = joinName(name, names[i]!);
        const cst = await tree.lstat(child);
        if (cst) await deleteItem(child, cst, true);
      }
    }
    if (doXfers) await tree.remove(name);
    if (!count) return;
    const type = st.mode & S_IFMT;
    if (isDir) deleted.dirs++;
    else if (type === S_IFLNK) deleted.symlinks++;
    else if (type === S_IFREG) deleted.files++;
    else if (type === 0o020000 || type === 0o060000) deleted.devices++;
    else deleted.specials++;
    options.onDeleted?.(name, isDir);
  };

  // rsync/generator.c: delete_in_dir
  const deleteInDir = async (dir: Buffer): Promise<void> => {
    const keep = listed.get(dir.toString('latin1')) ?? new Set<string>();
    const names = await tree.list(dir);
    names.sort(Buffer.compare);
    for (let i = names.length - 1; i >= 0; i--) {
      const base = names[i]!;
      if (keep.has(base.toString('latin1'))) continue;
      const name = joinName(dir, base);
      const st = await tree.lstat(name);
      if (!st) continue;
      if (options.isProtected?.(name, isDirMode(st.mode))) continue;
      await deleteItem(name, st, true);
    }
  };

  // rsync/generator.c: delete_item (a directory in the way of a non-directory). Without --delete
  // rsync removes only an empty one ("could not make way for new ...").
  const makeWay = async (name: Buffer, st: LocalStat, what: string): Promise<boolean> => {
    if (!doXfers) return true;
    if (isDirMode(st.mode) && !options.delete && (await tree.list(name)).length > 0) {
      options.onWarning?.(`could not make way for new ${what}: ${name.toString()}`);
      failed++;
      return false;
    }
    await deleteItem(name, st, false);
    return true;
  };

  // rsync/generator.c: quick_check_ok (FT_REG)
  const quickCheckOk = async (entry: FileEntry, st: LocalStat, redo: boolean): Promise<boolean> => {
    if (st.size !== entry.size) return false;
    if (options.checksum && !redo) {
      const sum = await options.fileChecksum?.(entry.name);
      return !!sum && !!entry.checksum && sum.equals(entry.checksum);
    }
    if (options.ignoreTimes || redo) return false;
    return !mtimeDiffers(st, entry, window);
  };

  // rsync/generator.c: recv_generator
  const recvGenerator = async (ndx: number, redo: boolean): Promise<void> => {
    const entry = files[ndx]!;
    if (entry.active === false) return; // rsync's F_IS_ACTIVE
    const name = entry.name;
    const type = entry.mode & S_IFMT;
    let st = await tree.lstat(name);

    // 1. Directories: replace a non-directory, create, delete extraneous entries (--delete).
    if (type === S_IFDIR) {
      if (st && !isDirMode(st.mode)) {
        await makeWay(name, st, 'directory');
        st = null;
      }
      if (!st && doXfers) await tree.mkdir(name, entry);
      report(ndx, entry, st, st ? 0 : ITEM_LOCAL_CHANGE);
      if (options.delete && entry.contentDir !== false && (st || doXfers)) await deleteInDir(name);
      dirs.push(ndx);
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
      if (st && isLinkMode(st.mode) && st.symlink?.equals(target)) {
        if (doXfers) await tree.setAttrs(name, entry, st);
        report(ndx, entry, st, 0);
        return;
      }
      if (st && isDirMode(st.mode) && !(await makeWay(name, st, 'symlink'))) return;
      if (doXfers) {
        await tree.symlink(name, target);
        await tree.setAttrs(name, entry, null);
      }
      report(ndx, entry, st && isLinkMode(st.mode) ? st : null, ITEM_LOCAL_CHANGE | ITEM_REPORT_CHANGE);
      return;
    }

    // 3. Devices and specials: an equal one stays, anything else is replaced (mknod).
    if (type !== S_IFREG) {
      if (!options.devices || !tree.mknod) {
        options.onWarning?.(`skipping non-regular file "${name.toString()}"`);
        return;
      }
      const isDevice = type === 0o020000 || type === 0o060000;
      const same =
        st &&
        (st.mode & S_IFMT) === type &&
        (!isDevice || (st.rdev?.major === entry.rdev?.major && st.rdev?.minor === entry.rdev?.minor));
      if (same) {
        if (doXfers) await tree.setAttrs(name, entry, st);
        report(ndx, entry, st, 0);
        return;
      }
      if (st && isDirMode(st.mode) && !(await makeWay(name, st, isDevice ? 'device file' : 'special file'))) return;
      if (doXfers) {
        await tree.mknod(name, entry);
        await tree.setAttrs(name, entry, null);
      }
      report(ndx, entry, st && (st.mode & S_IFMT) === type ? st : null, ITEM_LOCAL_CHANGE | ITEM_REPORT_CHANGE);
      return;
    }

    // 4. Hard links (-H): only the group's first entry is transferred.
    const group = entry.hlinkGroup !== undefined ? `g${entry.hlinkGroup}` : entry.hardlink ? `${entry.hardlink.dev}:${entry.hardlink.ino}` : null;
    if (options.hardLinks && group !== null) {
      const key = group;
      const leader = leaders.get(key);
      if (leader !== undefined && leader !== ndx) {
        followers.push({ ndx, leader });
        return;
      }
      leaders.set(key, ndx);
    }

    // 5. A regular file: something else in its place goes; an up-to-date file keeps its data.
    if (st && !isRegMode(st.mode)) {
      if (!(await makeWay(name, st, 'file'))) return;
      st = null;
    }
    if (st && (await quickCheckOk(entry, st, redo))) {
      if (doXfers) await tree.setAttrs(name, entry, st);
      report(ndx, entry, st, 0);
      return;
    }

    // 6. The request: ndx, iflags, then the sum head and the block sums of the basis.
    writer.writeNdx(ndx);
    let iflags = ITEM_TRANSFER;
    if (options.checksum) iflags |= ITEM_REPORT_CHANGE;
    iflags = itemize(entry, st, iflags);
    if (protocol >= 29) writer.writeShort(iflags);
    // Below 29 no iflags travel and rsync itemizes a transfer as its receiver sees it.
    options.onItem?.({ ndx, entry, iflags: protocol >= 29 ? iflags : ITEM_TRANSFER | ITEM_MISSING_DATA });
    if (!redo) requested++;
    if (!doXfers) return;
    const basis = st && !options.wholeFile && st.size > 0 ? await tree.openBasis(name) : null;
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
  };

  // rsync/generator.c: check_for_finished_files (the redo half)
  const doRedos = async (): Promise<void> => {
    while (receiver.redo.length) {
      const ndx = receiver.redo.shift()!;
      if (ndx < 0 || ndx >= files.length) throw new ProtocolError(`redo of an invalid index ${ndx}`);
      await recvGenerator(ndx, true);
    }
  };
  const waitFor = async (ready: () => boolean, redo: boolean): Promise<void> => {
    for (;;) {
      if (redo) await doRedos();
      await writer.flush();
      // No await between these checks and next(): a message from the receiver that arrived during
      // the awaits above is seen here, and one that arrives later wakes next().
      if (redo && receiver.redo.length) continue;
      if (ready()) return;
      await receiver.next();
    }
  };

  // Phase 0: every entry in list order.
  for (let ndx = 0; ndx < files.length; ndx++) {
    receiver.check(); // the receiver failed: stop here, as rsync's generator dies with it
    await recvGenerator(ndx, false);
  }
  writer.writeNdx(NDX_DONE);
  await writer.flush();

  // Phase 1: the redo requests, until the receiver has seen the end of phase 0.
  await waitFor(() => receiver.done >= 1, true);
  writer.writeNdx(NDX_DONE);
  // No --delay-updates: the delay phase ends at once ("early" NDX_DONE, 29+).
  if (protocol >= 29) writer.writeNdx(NDX_DONE);
  if (protocol >= 31) {
    if (options.delete) writeDelStats(writer, deleted);
    writer.writeNdx(NDX_DONE);
  }
  await writer.flush();
  await waitFor(() => receiver.done > 1, false);
  if (protocol >= 29) await waitFor(() => receiver.done > 2, false);
  if (protocol >= 31) await waitFor(() => receiver.done > 3, false);

  // Hard links, then directory modes and times (their contents are final now).
  if (doXfers) {
    for (const { ndx, leader } of followers) {
      const entry = files[ndx]!;
      const lead = files[leader]!;
      const [a, b] = await Promise.all([tree.lstat(entry.name), tree.lstat(lead.name)]);
      if (!b) continue;
      if (!a || a.ino !== b.ino || a.dev !== b.dev) {
        await tree.link(entry.name, lead.name);
        // Local only: the phases are over, so nothing more travels for it.
        options.onItem?.({ ndx, entry, iflags: itemize(entry, a, ITEM_LOCAL_CHANGE | ITEM_XNAME_FOLLOWS) });
      }
    }
  }
  // rsync/generator.c: touch_up_dirs
  if (doXfers) {
    for (let i = dirs.length - 1; i >= 0; i--) {
      const entry = files[dirs[i]!]!;
      await tree.setAttrs(entry.name, entry, await tree.lstat(entry.name));
    }
  }

  // rsync/main.c: do_recv (the final goodbye)
  writer.writeNdx(NDX_DONE);
  await writer.flush();
  return { deleted, requested, failed };
}

// rsync/main.c: write_del_stats
function writeDelStats(writer: ByteWriter, d: DeleteStats): void {
  writer.writeNdx(NDX_DEL_STATS);
  writer.writeVarint(d.files);
  writer.writeVarint(d.dirs);
  writer.writeVarint(d.symlinks);
  writer.writeVarint(d.devices);
  writer.writeVarint(d.specials);
}
