// The sender's file list from a local scan, written once for both senders: our client's push and
// our daemon's side of a client's pull. -c checksums (unseeded), rsync's sort order, the list with
// the id names, and the io_error that cannot ride in the list's end marker as MSG_IO_ERROR. The
// list stays packed (protocol/flist-packed.ts): sorted by an index array, encoded from the columns.
// Counterpart: rsync flist.c send_file_list (the wire part after the walk), checksum.c file_checksum.
import type { TransferOptions } from '../../protocol/args.js';
import type { ChecksumName, SetupResult } from '../../protocol/compat.js';
import { digestLength, type Checksummer } from '../../protocol/checksum.js';
import { createChecksummer } from './checksums.js';
import { flistOptionsFor } from '../../protocol/flist-recv.js';
import { PACKED_DROPPED, PACKED_NO_CONTENT, PACKED_TOP_DIR, SortedFileList, type PackedFileList } from '../../protocol/flist-packed.js';
import type { IdNames } from '../../protocol/flist.js';
import { PackedListEncoder, sendPackedFileList, type AfterEntry } from '../../protocol/flist-packed-send.js';
import { S_IFDIR, S_IFMT, S_IFREG } from '../../protocol/modes.js';
import { MSG_IO_ERROR, writeMessageInt } from '../../protocol/mplex.js';
import type { ByteWriter } from '../../protocol/io.js';
import { localSource, namesFor, type LocalEntry, type ScanResult, type SourceWalk } from './scan.js';
import type { WalkOptions } from './walk-options.js';

/** What was written: the list in rsync's order (the index is the ndx) and its size on the wire. */
export interface WrittenFileList {
  sorted: SortedFileList<LocalEntry>;
  flistBytes: number;
}

/**
 * Write the scanned entries as the sender's file list (the caller flushes). With -c each regular
 * file's whole-file checksum is computed first, with the negotiated algorithm and no seed (even
 * the MD4 of protocols below 30, whose transfer checksum is seeded).
 */
// rsync/flist.c: send_file_list (the wire part)
export async function writeLocalFileList(
  writer: ByteWriter,
  scan: ScanResult,
  transfer: TransferOptions,
  negotiated: { compatFlags: number; checksum: ChecksumName },
  afterEntry?: AfterEntry,
): Promise<WrittenFileList> {
  const protocol = writer.protocol;
  const { list } = scan;
  if (transfer.checksum) await checksumFiles(list, 0, await unseededChecksummer(protocol, negotiated), scan.walk);
  // rsync/flist.c: send_file_entry — below 28, -H sends dev/ino for every regular file.
  if (transfer.hardLinks && protocol < 28) {
    for (const [i, id] of scan.fileIds) if (!list.hardlinks.has(i)) list.hardlinks.set(i, id);
  }
  // -R below 30: no implied-dir flag there (rsync's send_file_list sends flagged implied dirs from
  // 30 on only): the path's directories go as plain ones, or not at all with --no-implied-dirs.
  if (transfer.relative && protocol < 30) unflagImpliedDirs(list, transfer.impliedDirs === false);
  const order = list.sortedOrder(protocol);
  const flistStart = writer.written;
  // The flags the receiver derives from the same argument list (-o -g -D -l -H -c, --numeric-ids).
  const msgIoError = sendPackedFileList(writer, list, order, {
    ...listOptions(protocol, transfer, negotiated),
    ...usedNames(scan, transfer),
    ioError: scan.ioError,
  }, afterEntry);
  const flistBytes = writer.written - flistStart;
  if (msgIoError) await writeMessageInt(writer, MSG_IO_ERROR, msgIoError);
  return { sorted: new SortedFileList<LocalEntry>(list, order), flistBytes };
}

/** Hand the list to the socket once this much of it is buffered (the walk goes on meanwhile). */
const STREAM_FLUSH = 256 * 1024;

/** The longest the walk runs before it lets the event loop turn (timers, I/O callbacks). */
const WALK_YIELD_MS = 100;

/** A list sent while the tree was read, and the scan's result. */
export interface StreamedFileList extends WrittenFileList {
  scan: ScanResult;
}

/**
 * Read the tree of `walk` and send its entries as they are found: the daemon reads (and, on a
 * real rsync, stores) the list while we still walk. Sent in the walk's order; both sides sort the
 * list once it has ended (without incremental recursion rsync's receiver does, flist.c
 * recv_file_list → flist_sort_and_clean), so the ndx of an entry is its place in rsync's order
 * either way ([flist-order]); at protocol >= 29 the walk's order already is that order. Only for
 * a walk that lists each name once (a SOURCE walk, not a selection). `tweak(from)` changes the
 * entries from `from` on before they go (--chmod); `afterEntry` writes what follows each entry
 * (-X: its xattr set). The caller flushes the end.
 */
// rsync/flist.c: send_file_list (send_file_name as each directory is read) [flist-entry] [flist-end]
export async function streamLocalFileList(
  writer: ByteWriter,
  walk: SourceWalk,
  transfer: TransferOptions,
  negotiated: { compatFlags: number; checksum: ChecksumName },
  tweak?: (from: number) => void,
  afterEntry?: AfterEntry,
): Promise<StreamedFileList> {
  const protocol = writer.protocol;
  const { list } = walk;
  const unseeded = transfer.checksum ? await unseededChecksummer(protocol, negotiated) : null;
  const flistStart = writer.written;
  const encoder = new PackedListEncoder(writer, list, listOptions(protocol, transfer, negotiated), afterEntry);
  let done = 0;
  /** Encode what the walk added since the last time; flush when enough is buffered. */
  const sendNew = async (): Promise<void> => {
    const to = list.count;
    if (to === done) return;
    tweak?.(done);
    if (unseeded) await checksumFiles(list, done, unseeded, walk.walkOptions);
    for (let i = done; i < to; i++) encoder.add(i);
    done = to;
    if (writer.pending >= STREAM_FLUSH) await writer.flush();
  };
  await sendNew(); // the root
  let yielded = performance.now();
  for (const _ of walk.steps()) {
    // Cheap unless a flush or -c is due: a step is one directory.
    if (unseeded || writer.pending + (list.count - done) * 32 >= STREAM_FLUSH) await sendNew();
    // The walk's reads are synchronous and a flush that fits the socket resolves at once: on a
    // big tree nothing else would run until the list ends (a live daemon's progress line and
    // timers stood still for 7 s of a 1M-file list). Let the event loop turn now and then.
    if (performance.now() - yielded >= WALK_YIELD_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      yielded = performance.now();
    }
  }
  await sendNew();
  const scan = await walk.finish();
  const msgIoError = encoder.end({ ...usedNames(scan, transfer), ioError: scan.ioError });
  const flistBytes = writer.written - flistStart;
  if (msgIoError) await writeMessageInt(writer, MSG_IO_ERROR, msgIoError);
  return { scan, sorted: new SortedFileList<LocalEntry>(list, list.sortedOrder(protocol)), flistBytes };
}

/** The list encoder's options but the tail's: what the receiver derives from the same argument list (-o -g -D -l -H -c -A, --numeric-ids). */
function listOptions(protocol: number, transfer: TransferOptions, negotiated: { compatFlags: number; checksum: ChecksumName }) {
  return { ...flistOptionsFor(transfer), ...(transfer.acls && { acls: true }), protocol, compatFlags: negotiated.compatFlags, checksumLength: digestLength(negotiated.checksum) };
}

/** The names of the user and group ids the list carries (rsync sends names of the ids it saw). */
function usedNames(scan: ScanResult, transfer: TransferOptions): { userNames: IdNames; groupNames: IdNames } {
  const { list } = scan;
  const uids = new Set<number>();
  const gids = new Set<number>();
  if (transfer.owner || transfer.group) {
    for (let i = 0; i < list.count; i++) {
      if (list.flags[i]! & PACKED_DROPPED) continue;
      uids.add(list.uid[i]!);
      gids.add(list.gid[i]!);
    }
  }
  return { userNames: namesFor(uids, scan.userNames), groupNames: namesFor(gids, scan.groupNames) };
}

/** -c: unseeded whole-file checksums with the negotiated algorithm (even the MD4 of protocols below 30, whose transfer checksum is seeded). */
function unseededChecksummer(protocol: number, negotiated: { compatFlags: number; checksum: ChecksumName }): Promise<Checksummer> {
  return createChecksummer(negotiated.checksum, { protocol, seed: 0, compatFlags: negotiated.compatFlags, implied: false });
}

/** -c: the checksum of each regular file from entry `from` on (a file that cannot be read keeps none: zeros go out). */
// rsync/checksum.c: file_checksum
async function checksumFiles(list: PackedFileList, from: number, unseeded: Checksummer, walk: WalkOptions | null | undefined): Promise<void> {
  const files = localSource(walk);
  for (let i = from; i < list.count; i++) {
    if ((list.mode[i]! & S_IFMT) !== S_IFREG) continue;
    const chunks = await files.open({ localPath: list.localPath(i) } as LocalEntry, 0);
    if ('error' in chunks) continue;
    const hasher = unseeded.startFile();
    for await (const chunk of chunks) hasher.update(chunk);
    list.setChecksum(i, hasher.digest());
  }
}

/** The block and file checksums of a session (negotiated algorithm, its seed). */
export function sessionChecksummer(protocol: number, setup: SetupResult): Promise<Checksummer> {
  return createChecksummer(setup.checksum, { protocol, seed: setup.seed, compatFlags: setup.compatFlags, implied: setup.checksumImplied });
}

/**
 * The implied directories of a -R list (a top directory without contents) below protocol 30:
 * plain directories (no top-dir flag, which would make them content dirs there), or left out.
 */
// rsync/flist.c: send_file_entry (FLAG_IMPLIED_DIR below 30) and send_file_list (implied_dirs off)
function unflagImpliedDirs(list: ScanResult['list'], drop: boolean): void {
  for (let i = 0; i < list.count; i++) {
    const flags = list.flags[i]!;
    if ((list.mode[i]! & S_IFMT) !== S_IFDIR || !(flags & PACKED_TOP_DIR) || !(flags & PACKED_NO_CONTENT)) continue;
    if (drop) list.setFlag(i, PACKED_DROPPED, true);
    else list.setFlag(i, PACKED_TOP_DIR, false);
  }
}
