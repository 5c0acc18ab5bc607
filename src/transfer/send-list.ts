// The sender's file list from a local scan, written once for both senders: our client's push and
// our daemon's side of a client's pull. -c checksums (unseeded), rsync's sort order, the list with
// the id names, and the io_error that cannot ride in the list's end marker as MSG_IO_ERROR.
// Counterpart: rsync flist.c send_file_list (the wire part after the walk), checksum.c file_checksum.
import type { TransferOptions } from '../../protocol/args.js';
import type { ChecksumName, SetupResult } from '../../protocol/compat.js';
import { createChecksummer, digestLength, type Checksummer } from '../../protocol/checksum.js';
import { sendFileList, sortFileList } from '../../protocol/flist.js';
import { flistOptionsFor } from '../../protocol/flist-recv.js';
import { isReg } from '../../protocol/modes.js';
import { MSG_IO_ERROR, writeMessageInt } from '../../protocol/mplex.js';
import type { ByteWriter } from '../../protocol/io.js';
import { localSource, namesFor, type LocalEntry, type ScanResult } from './scan.js';

/** What was written: the list in rsync's order (the index is the ndx) and its size on the wire. */
export interface WrittenFileList {
  sorted: LocalEntry[];
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
  if (transfer.checksum) {
    const unseeded = await createChecksummer(negotiated.checksum, { protocol, seed: 0, compatFlags: negotiated.compatFlags, implied: false });
    const files = localSource();
    for (const entry of scan.entries) {
      if (!isReg(entry.mode)) continue;
      const chunks = await files.open(entry, 0);
      if ('error' in chunks) continue;
      const hasher = unseeded.startFile();
      for await (const chunk of chunks) hasher.update(chunk);
      entry.checksum = Buffer.from(hasher.digest());
    }
  }
  // rsync/flist.c: send_file_entry — below 28, -H sends dev/ino for every regular file.
  if (transfer.hardLinks && protocol < 28) {
    for (const entry of scan.entries) if (entry.fileId && !entry.hardlink) entry.hardlink = entry.fileId;
  }
  const sorted = sortFileList(scan.entries, protocol);
  const flistStart = writer.written;
  // The flags the receiver derives from the same argument list (-o -g -D -l -H -c, --numeric-ids).
  const sent = sendFileList(writer, sorted, {
    ...flistOptionsFor(transfer),
    protocol,
    compatFlags: negotiated.compatFlags,
    checksumLength: digestLength(negotiated.checksum),
    userNames: namesFor(new Set(sorted.map((e) => e.uid)), scan.userNames),
    groupNames: namesFor(new Set(sorted.map((e) => e.gid)), scan.groupNames),
    ioError: scan.ioError,
  });
  const flistBytes = writer.written - flistStart;
  if (sent.msgIoError) await writeMessageInt(writer, MSG_IO_ERROR, sent.msgIoError);
  return { sorted: sent.sorted, flistBytes };
}

/** The block and file checksums of a session (negotiated algorithm, its seed). */
export function sessionChecksummer(protocol: number, setup: SetupResult): Promise<Checksummer> {
  return createChecksummer(setup.checksum, { protocol, seed: setup.seed, compatFlags: setup.compatFlags, implied: setup.checksumImplied });
}
