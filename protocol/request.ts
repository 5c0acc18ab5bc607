// The generator's request header as the roles downstream of it read it (docs/protocol.md
// [sender-request], [pull-receive]): an ndx (negative ones end a phase or carry the delete
// stats), from protocol 29 the item flags, then the basis type and an alternate name when flagged.
// The sender reads it from the daemon's generator on a push, the receiver on a pull: one reader.
// Counterpart: rsync rsync.c read_ndx_and_attrs.
import { ProtocolError } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';
import { readDelStats, writeDelStats } from './delete.js';
import {
  ITEM_BASIS_TYPE_FOLLOWS,
  ITEM_IS_NEW,
  ITEM_MISSING_DATA,
  ITEM_TRANSFER,
  ITEM_XNAME_FOLLOWS,
  MAXPATHLEN,
  NDX_DEL_STATS,
  NDX_DONE,
  type DeleteStats,
} from './constants.js';

/** One request: the file's index in the list and what the generator says of it. */
export interface NdxAndAttrs {
  ndx: number;
  iflags: number;
  /** FNAMECMP_* when ITEM_BASIS_TYPE_FOLLOWS, else null. */
  basisType: number | null;
  /** The alternate basis name when ITEM_XNAME_FOLLOWS, else null. */
  xname: Buffer | null;
}

/** How the roles read a request beyond the stream itself. */
export interface RequestOptions {
  /** Runs before each ndx is read (the sender flushes there when it may have to wait). */
  beforeRead?: () => Promise<void> | void;
  /**
   * Where a sending server echoes the client generator's NDX_DEL_STATS (rsync's `am_sender &&
   * am_server`); a client, or a receiver, echoes nothing.
   */
  echoDelStatsTo?: ByteWriter;
}

/**
 * The next ndx of the generator's stream, with NDX_DEL_STATS (and its counts) consumed on the way
 * into `stats.deleted`: it may come before any NDX_DONE.
 */
// rsync/rsync.c: read_ndx_and_attrs (the negative-ndx loop)
export async function readNdxSkippingDelStats(
  reader: ByteReader,
  stats: { deleted: DeleteStats | null },
  echoDelStatsTo?: ByteWriter,
): Promise<number> {
  for (;;) {
    const ndx = await reader.readNdx();
    if (ndx !== NDX_DEL_STATS) return ndx;
    stats.deleted = await readDelStats(reader);
    if (echoDelStatsTo) writeDelStats(echoDelStatsTo, stats.deleted);
  }
}

/**
 * The next request for one of `fileCount` files, or NDX_DONE at the end of a phase. Protocol-29
 * keep-alives are skipped; an index outside the list is a ProtocolError.
 */
// rsync/rsync.c: read_ndx_and_attrs [sender-request] [pull-receive]
export async function readNdxAndAttrs(
  reader: ByteReader,
  fileCount: number,
  stats: { deleted: DeleteStats | null },
  options: RequestOptions = {},
): Promise<NdxAndAttrs | typeof NDX_DONE> {
  const protocol = reader.protocol;
  for (;;) {
    const before = options.beforeRead?.();
    if (before) await before;
    const quick = readBufferedRequest(reader, fileCount);
    if (quick !== null) return quick;
    const ndx = await readNdxSkippingDelStats(reader, stats, options.echoDelStatsTo);
    if (ndx === NDX_DONE) return NDX_DONE;
    // Below 29 there are no flags: every request is a transfer.
    const iflags = protocol >= 29 ? await reader.readShort() : ITEM_TRANSFER | ITEM_MISSING_DATA;
    // The protocol-29 keep-alive: one past the last index, flagged IS_NEW.
    if (protocol < 30 && ndx === fileCount && iflags === ITEM_IS_NEW) continue;
    checkIndex(ndx, fileCount);
    const basisType = iflags & ITEM_BASIS_TYPE_FOLLOWS ? await reader.readByte() : null;
    const xname = iflags & ITEM_XNAME_FOLLOWS ? await reader.readVstring(MAXPATHLEN) : null;
    return { ndx, iflags, basisType, xname };
  }
}

/** bufferedRequest's answer for a protocol-29 keep-alive (consumed; read on). */
const KEEP_ALIVE = 'keep-alive';

function checkIndex(ndx: number, fileCount: number): void {
  if (ndx < 0 || ndx >= fileCount) {
    throw new ProtocolError(`invalid file index ${ndx} from the daemon (list has ${fileCount})`);
  }
}

/**
 * readNdxAndAttrs without waiting: the next request when all of it is buffered and plain (see
 * bufferedRequest), protocol-29 keep-alives skipped; else null with nothing consumed. A role's
 * loop calls it first and awaits readNdxAndAttrs only when it answers null.
 */
export function readBufferedRequest(reader: ByteReader, fileCount: number): NdxAndAttrs | typeof NDX_DONE | null {
  for (;;) {
    const quick = bufferedRequest(reader, fileCount);
    if (quick !== KEEP_ALIVE) return quick;
  }
}

/**
 * The next request when all of it is already buffered and it is a plain one (a file's ndx and its
 * flags, no basis type or name following), consumed; NDX_DONE likewise; KEEP_ALIVE for a
 * protocol-29 keep-alive, consumed. Else null, nothing consumed: the caller reads it the waiting
 * way. A daemon's generator sends its requests in batches, so most are read here without an
 * await (each await of a nested read cost about 1.5 KB of garbage per file).
 */
function bufferedRequest(reader: ByteReader, fileCount: number): NdxAndAttrs | typeof NDX_DONE | typeof KEEP_ALIVE | null {
  const length = reader.peekNdx();
  if (!length) return null;
  if (reader.peekedNdx === NDX_DONE) {
    reader.takeNdx(length);
    return NDX_DONE;
  }
  // NDX_DEL_STATS and other negatives: the waiting path reads (or refuses) them.
  if (reader.peekedNdx < 0) return null;
  const protocol = reader.protocol;
  const flagBytes = protocol >= 29 ? 2 : 0;
  if (reader.buffered < length + flagBytes) return null;
  const iflags = flagBytes ? reader.peekByte(length) | (reader.peekByte(length + 1) << 8) : ITEM_TRANSFER | ITEM_MISSING_DATA;
  if (iflags & (ITEM_BASIS_TYPE_FOLLOWS | ITEM_XNAME_FOLLOWS)) return null;
  const ndx = reader.takeNdx(length);
  reader.skip(flagBytes);
  if (protocol < 30 && ndx === fileCount && iflags === ITEM_IS_NEW) return KEEP_ALIVE;
  checkIndex(ndx, fileCount);
  return { ndx, iflags, basisType: null, xname: null };
}
