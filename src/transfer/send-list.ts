// The sender's file list from a local scan, written once for both senders: our client's push and
// our daemon's side of a client's pull. -c checksums (unseeded), rsync's sort order, the list with
// the id names, and the io_error that cannot ride in the list's end marker as MSG_IO_ERROR. The
// list stays packed (protocol/flist-packed.ts): sorted by an index array, encoded from the columns.
// Counterpart: rsync flist.c send_file_list (the wire part after the walk), checksum.c file_checksum.
import type { TransferOptions } from '../../protocol/args.js';
import type { ChecksumName, SetupResult } from '../../protocol/compat.js';
import { createChecksummer, digestLength, type Checksummer } from '../../protocol/checksum.js';
import { flistOptionsFor } from '../../protocol/flist-recv.js';
import { PACKED_DROPPED, PACKED_NO_CONTENT, PACKED_TOP_DIR, SortedFileList } from '../../protocol/flist-packed.js';
import { sendPackedFileList } from '../../protocol/flist-packed-send.js';
import { S_IFDIR, S_IFMT, S_IFREG } from '../../protocol/modes.js';
import { MSG_IO_ERROR, writeMessageInt } from '../../protocol/mplex.js';
import type { ByteWriter } from '../../protocol/io.js';
import { localSource, namesFor, type LocalEntry, type ScanResult } from './scan.js';

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
): Promise<WrittenFileList> {
  const protocol = writer.protocol;
  const { list } = scan;
  if (transfer.checksum) {
    const unseeded = await createChecksummer(negotiated.checksum, { protocol, seed: 0, compatFlags: negotiated.compatFlags, implied: false });
    const files = localSource(scan.walk);
    for (let i = 0; i < list.count; i++) {
      if ((list.mode[i]! & S_IFMT) !== S_IFREG) continue;
      const chunks = await files.open({ localPath: list.localPath(i) } as LocalEntry, 0);
      if ('error' in chunks) continue;
      const hasher = unseeded.startFile();
      for await (const chunk of chunks) hasher.update(chunk);
      list.setChecksum(i, hasher.digest());
    }
  }
  // rsync/flist.c: send_file_entry — below 28, -H sends dev/ino for every regular file.
  if (transfer.hardLinks && protocol < 28) {
    for (const [i, id] of scan.fileIds) if (!list.hardlinks.has(i)) list.hardlinks.set(i, id);
  }
  // -R below 30: no implied-dir flag there (rsync's send_file_list sends flagged implied dirs from
  // 30 on only): the path's directories go as plain ones, or not at all with --no-implied-dirs.
  if (transfer.relative && protocol < 30) unflagImpliedDirs(list, transfer.impliedDirs === false);
  const order = list.sortedOrder(protocol);
  const uids = new Set<number>();
  const gids = new Set<number>();
  if (transfer.owner || transfer.group) {
    for (const i of order) {
      uids.add(list.uid[i]!);
      gids.add(list.gid[i]!);
    }
  }
  const flistStart = writer.written;
  // The flags the receiver derives from the same argument list (-o -g -D -l -H -c, --numeric-ids).
  const msgIoError = sendPackedFileList(writer, list, order, {
    ...flistOptionsFor(transfer),
    protocol,
    compatFlags: negotiated.compatFlags,
    checksumLength: digestLength(negotiated.checksum),
    userNames: namesFor(uids, scan.userNames),
    groupNames: namesFor(gids, scan.groupNames),
    ioError: scan.ioError,
  });
  const flistBytes = writer.written - flistStart;
  if (msgIoError) await writeMessageInt(writer, MSG_IO_ERROR, msgIoError);
  return { sorted: new SortedFileList<LocalEntry>(list, order), flistBytes };
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
