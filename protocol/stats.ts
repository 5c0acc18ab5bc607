// The end-of-run stats (docs/protocol.md [stats]): after its last NDX_DONE of the transfer, the
// sender that is the server writes its totals, and the client receiver reads them. Nobody else
// writes or reads them: a sending client keeps its own, a receiving server has none to report.
// Counterpart: rsync main.c handle_stats (the server sender's write, the client receiver's read).
import type { ByteReader, ByteWriter } from './io.js';
import type { SessionRole } from './session.js';

/** A sender's totals in its own sense, in the order handle_stats writes them. */
export interface SenderTotals {
  /** Bytes the sender read: its peer's requests and sums. */
  totalRead: number;
  /** Bytes the sender wrote. */
  totalWritten: number;
  /** Sum of the sizes of the regular files and symlinks in the list. */
  totalSize: number;
  /** Milliseconds spent building / sending the file list; on the wire from protocol 29 (else null). */
  flistBuildTime: number | null;
  flistXferTime: number | null;
}

/**
 * What a role does with the stats at the end of its run: a server sender writes them, a client
 * receiver reads them; a client sender and a server receiver skip the step.
 */
// rsync/main.c: handle_stats (its am_server / am_sender cases)
export function statsDirection(role: SessionRole): 'write' | 'read' | 'none' {
  if (role.side === 'server') return role.sender ? 'write' : 'none';
  return role.sender ? 'none' : 'read';
}

/**
 * The server sender's totals: three varlong30 values (longints below protocol 30), then the two
 * file-list times from protocol 29 on. Write only: the caller flushes.
 */
// rsync/main.c: handle_stats (the server sender's write) [stats]
export function writeSenderStats(writer: ByteWriter, totals: SenderTotals): void {
  writer.writeVarlong30(totals.totalRead, 3);
  writer.writeVarlong30(totals.totalWritten, 3);
  writer.writeVarlong30(totals.totalSize, 3);
  if (writer.protocol >= 29) {
    writer.writeVarlong30(totals.flistBuildTime ?? 0, 3);
    writer.writeVarlong30(totals.flistXferTime ?? 0, 3);
  }
}

/** The totals a server sender wrote, in its sense (the client swaps read and written). */
// rsync/main.c: handle_stats (the client receiver's read) [stats]
export async function readSenderStats(reader: ByteReader): Promise<SenderTotals> {
  const totalRead = await reader.readVarlong30(3);
  const totalWritten = await reader.readVarlong30(3);
  const totalSize = await reader.readVarlong30(3);
  let flistBuildTime: number | null = null;
  let flistXferTime: number | null = null;
  if (reader.protocol >= 29) {
    flistBuildTime = await reader.readVarlong30(3);
    flistXferTime = await reader.readVarlong30(3);
  }
  return { totalRead, totalWritten, totalSize, flistBuildTime, flistXferTime };
}
