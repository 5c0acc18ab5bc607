// The end of a list-only session (docs/protocol.md [list-only]): the client lists the daemon's
// file list and requests nothing, but its generator and receiver still walk the phases, so both
// sides trade the NDX_DONEs of a pull, the daemon sends its stats, and we say goodbye.
// Counterpart: rsync generator.c generate_files (the NDX_DONE of each phase), receiver.c
// recv_files, main.c do_recv / handle_stats / read_final_goodbye. The listing itself (rsync's
// list_file_entry) is printed by src/transfer/list.ts.
import { ProtocolError } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';
import { readSenderStats } from './stats.js';
import { NDX_DONE } from './constants.js';

/** The daemon sender's totals, in our (the client's) sense. */
export interface DaemonStats {
  /** Bytes the daemon read, i.e. what we wrote (sent first). */
  totalWritten: number;
  /** Bytes the daemon wrote. */
  totalRead: number;
  /** Sum of the sizes of the regular files and symlinks in the list. */
  totalSize: number;
  /** Milliseconds the daemon spent building / sending the list (protocol >= 29). */
  flistBuildTime: number | null;
  flistXferTime: number | null;
}

/** The stats block the daemon's sender writes after its last NDX_DONE (stats.ts has the encoding). */
// rsync/main.c: handle_stats (the client's read)
export async function readDaemonStats(reader: ByteReader): Promise<DaemonStats> {
  const theirs = await readSenderStats(reader);
  // "Read the first two in opposite order": the daemon's read is our written.
  return {
    totalWritten: theirs.totalRead,
    totalRead: theirs.totalWritten,
    totalSize: theirs.totalSize,
    flistBuildTime: theirs.flistBuildTime,
    flistXferTime: theirs.flistXferTime,
  };
}

async function expectDone(reader: ByteReader, step: string): Promise<void> {
  const ndx = await reader.readNdx();
  if (ndx !== NDX_DONE) throw new ProtocolError(`list-only: the daemon sent ndx ${ndx} where ${step} (NDX_DONE) belongs`);
}

/**
 * After the file list of a list-only session: our generator's NDX_DONEs and the daemon sender's,
 * in the order rsync's processes produce them (docs/protocol.md [list-only-end]):
 *
 *   protocol | we send                  | the daemon sends
 *   27/28    | G1, G2, G5               | S1, S3, stats x3
 *   29/30    | G1, G2, G3, G5           | S1, S2, S3, stats x5
 *   31/32    | G1, G2, G3, G4, G5       | S1, S2, S3, stats x5, S4
 *
 * G1 ends the (empty) phase 0; the sender answers S1 when it has sent everything asked for;
 * then the redo phase (G2), the delayed-updates marker (G3, >= 29) and the late-delete marker
 * (G4, >= 31) go back to back; the sender ends its phases (S2, S3), sends its stats, answers G4
 * (S4), and exits on our final G5. Returns the daemon's stats; the caller then closes.
 */
// rsync/main.c: do_recv (generate_files and recv_files with nothing requested, then the goodbye) [list-only-end]
export async function finishListOnly(reader: ByteReader, writer: ByteWriter): Promise<DaemonStats> {
  const protocol = writer.protocol;
  writer.writeNdx(NDX_DONE); // G1: no requests in phase 0
  await writer.flush();
  await expectDone(reader, 'the end of phase 0 (S1)');
  writer.writeNdx(NDX_DONE); // G2: no redo requests
  if (protocol >= 29) writer.writeNdx(NDX_DONE); // G3: generate_files' delayed-updates phase
  if (protocol >= 31) writer.writeNdx(NDX_DONE); // G4: the late-delete marker (no NDX_DEL_STATS without --delete)
  await writer.flush();
  if (protocol >= 29) await expectDone(reader, 'the end of the redo phase (S2)');
  await expectDone(reader, 'the end of send_files (S3)');
  const stats = await readDaemonStats(reader);
  if (protocol >= 31) await expectDone(reader, "the answer to our late-delete marker (S4)");
  writer.writeNdx(NDX_DONE); // G5: the final goodbye
  await writer.flush();
  return stats;
}
