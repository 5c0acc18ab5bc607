// --files-from lists on the wire and off it (docs/protocol.md [files-from]): a local list read as
// rsync reads one (a name a line, comments and empty lines dropped), a local list converted for
// the peer as rsync's client forwards it (NUL after each name, no empty names, an empty name at
// the end), and a forwarded list read back by the sender. Pure: bytes in, names or bytes out.
// Counterpart: rsync io.c forward_filesfrom_data, read_line; flist.c send_file_list (the
// filesfrom_fd loop).
import type { ByteReader } from './io.js';
import { MAXPATHLEN } from './constants.js';
import type { MemoryBudget } from './errors.js';

/** The most of a listed name rsync keeps (its read_line buffer is MAXPATHLEN with the NUL). */
export const FILES_FROM_NAME_MAX = MAXPATHLEN - 1;

const NUL = 0x00;
const LF = 0x0a;
const CR = 0x0d;

/**
 * The names of a list read locally (a file, or stdin): one a line ("\n" or "\r" ends it; with
 * `from0` a NUL), empty lines and lines starting with '#' or ';' skipped, each cut at
 * FILES_FROM_NAME_MAX bytes (the rest of the line dropped). Views into `bytes`.
 */
// rsync/io.c: read_line (RL_DUMP_COMMENTS, RL_EOL_NULLS with --from0)
export function* localFilesFromNames(bytes: Uint8Array, from0: boolean): Generator<Buffer> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  let at = 0;
  while (at < buf.length) {
    let end = at;
    while (end < buf.length && (from0 ? buf[end] !== NUL : buf[end] !== LF && buf[end] !== CR)) end++;
    const line = buf.subarray(at, Math.min(end, at + FILES_FROM_NAME_MAX));
    at = end + 1;
    if (line.length === 0) continue;
    // A local list drops comments with --from0 too (only a list read from the peer keeps them).
    if (line[0] === 0x23 || line[0] === 0x3b) continue;
    yield line;
  }
}

/**
 * A local list turned into what rsync's client sends its peer, chunk by chunk: "\n" and "\r"
 * become NULs (unless the list is NUL-separated already), runs of NULs become one, a NUL at the
 * start is dropped, and `end()` closes the list with an empty name. Comments are not dropped:
 * the peer reads a forwarded list as names only.
 */
// rsync/io.c: forward_filesfrom_data
export class FilesFromForwarder {
  /** The last byte sent (rsync's ff_lastchar): NUL at the start, so leading NULs are dropped. */
  private last = NUL;

  constructor(private readonly from0: boolean) {}

  /** One chunk of the local list as the bytes to send (possibly none). */
  chunk(bytes: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(bytes.length);
    let n = 0;
    let last = this.last;
    for (let i = 0; i < bytes.length; i++) {
      let b = bytes[i]!;
      if (!this.from0 && (b === LF || b === CR)) b = NUL;
      if (b === NUL && last === NUL) continue;
      out[n++] = b;
      last = b;
    }
    this.last = last;
    return out.subarray(0, n);
  }

  /** The end of the list: a NUL after an unfinished name, then the empty name. */
  end(): Buffer {
    return Buffer.from(this.last === NUL ? [NUL] : [NUL, NUL]);
  }
}

/** What a forwarded name costs the reader's memory budget beyond its bytes (the array slot, the Buffer). */
const NAME_OVERHEAD = 96;

/**
 * A list the peer forwards (`--files-from=-` on the server): NUL-terminated names up to the
 * first empty one, each cut at FILES_FROM_NAME_MAX bytes (the rest read and dropped, as rsync
 * drops it), nothing skipped: a name starting with '#' is a name. Every name is charged to
 * `budget` before it is kept.
 */
// rsync/flist.c: send_file_list (read_line on the socket: RL_EOL_NULLS, no RL_DUMP_COMMENTS)
export async function readForwardedNames(reader: ByteReader, budget?: MemoryBudget): Promise<Buffer[]> {
  const names: Buffer[] = [];
  for (;;) {
    const name = await reader.readUntil(NUL, FILES_FROM_NAME_MAX, 'a --files-from name');
    if (name.length === 0) return names;
    budget?.charge(name.length + NAME_OVERHEAD, '--files-from list');
    names.push(name);
  }
}
