// The sender's file list written straight from a PackedFileList (docs/protocol.md [flist]:
// [flist-entry], [flist-end]): the same bytes as flist.ts sendFileList for the same entries, with
// no object per entry: each entry is built in one scratch buffer from the columns and handed to
// the writer in one piece. Counterpart: rsync flist.c send_file_entry (and the list's tail, shared
// with flist.ts through writeFlistTail).
import type { ByteWriter } from './io.js';
import {
  MAX_WIRE_NSEC,
  MAXPATHLEN,
  XMIT_EXTENDED_FLAGS,
  XMIT_HLINK_FIRST,
  XMIT_HLINKED,
  XMIT_LONG_NAME,
  XMIT_MOD_NSEC,
  XMIT_NO_CONTENT_DIR,
  XMIT_RDEV_MINOR_8_pre30,
  XMIT_SAME_DEV_pre30,
  XMIT_SAME_GID,
  XMIT_SAME_MODE,
  XMIT_SAME_NAME,
  XMIT_SAME_RDEV_MAJOR,
  XMIT_SAME_RDEV_pre28,
  XMIT_SAME_TIME,
  XMIT_SAME_UID,
  XMIT_TOP_DIR,
} from './constants.js';
import { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, makeDev } from './modes.js';
import { checkEntry, resolveFlistOptions, sortFileList, writeFlistTail, type FileEntry, type FlistOptions, type Resolved, type SentFileList } from './flist.js';
import { PACKED_NO_CONTENT, PACKED_TOP_DIR, PackedFileList, isDeviceMode, isSpecialMode } from './flist-packed.js';

/**
 * One entry's bytes, at most: flags (4), name lengths (1 + 5), name, size (9), mtime (9), nsec (5),
 * mode (4), uid and gid (10), rdev (10), symlink (5 + target), dev/ino (24), checksum (64).
 */
const SCRATCH = 2 * MAXPATHLEN + 256;

/** Little-endian bytes into a scratch buffer, with rsync's integer encodings. */
class EntryBytes {
  buf = new Uint8Array(SCRATCH);
  view = new DataView(this.buf.buffer);
  at = 0;

  byte(v: number): void {
    this.buf[this.at++] = v & 0xff;
  }
  short(v: number): void {
    this.view.setUint16(this.at, v & 0xffff, true);
    this.at += 2;
  }
  int(v: number): void {
    this.view.setInt32(this.at, v | 0, true);
    this.at += 4;
  }
  bytes(src: Uint8Array, from = 0, to = src.length): void {
    // Names are mostly short: copied by hand, no view made for them.
    if (to - from <= 32) {
      const buf = this.buf;
      for (let k = from, o = this.at; k < to; k++, o++) buf[o] = src[k]!;
    } else {
      this.buf.set(from === 0 && to === src.length ? src : src.subarray(from, to), this.at);
    }
    this.at += to - from;
  }

  // rsync/io.c: write_varint / write_varlong (as varint.ts encodeVar, in place)
  var(value: number, minBytes: number, width: 4 | 8): void {
    const b = this.buf;
    const p = this.at;
    // b[p] is the prefix byte, b[p+1..p+width] the value's little-endian bytes.
    if (width === 4) {
      this.view.setUint32(p + 1, value >>> 0, true);
    } else {
      if (value < 0 || !Number.isSafeInteger(value)) throw new RangeError(`varlong out of range: ${value}`);
      this.view.setUint32(p + 1, value % 0x1_0000_0000, true);
      this.view.setUint32(p + 5, Math.floor(value / 0x1_0000_0000), true);
    }
    let count = width;
    while (count > minBytes && b[p + count] === 0) count--;
    const bit = 1 << (7 - count + minBytes);
    if (b[p + count]! >= bit) {
      count++;
      b[p] = ~(bit - 1) & 0xff;
    } else if (count > minBytes) {
      b[p] = (b[p + count]! | ~(bit * 2 - 1)) & 0xff;
      // The top byte moved into the prefix: the record is count bytes, prefix first.
    } else {
      b[p] = b[p + count]!;
    }
    // rsync writes the prefix and then count - 1 value bytes.
    this.at = p + count;
  }

  // rsync/io.c: write_longint
  longint(value: number): void {
    if (value >= 0 && value <= 0x7fffffff) return this.int(value);
    if (value < 0 || !Number.isSafeInteger(value)) throw new RangeError(`longint out of range: ${value}`);
    this.int(-1);
    this.view.setBigInt64(this.at, BigInt(value), true);
    this.at += 8;
  }

  /** write_longint of a 64-bit dev/ino. */
  longint64(value: bigint): void {
    if (value >= 0n && value <= 0x7fffffffn) return this.int(Number(value));
    this.int(-1);
    this.view.setBigUint64(this.at, BigInt.asUintN(64, value), true);
    this.at += 8;
  }

  varint30(protocol: number, v: number): void {
    if (protocol < 30) this.int(v);
    else this.var(v, 1, 4);
  }
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new RangeError(message);
}

const shown = (list: PackedFileList, i: number): string => list.name(i).toString('latin1');

/** What the encoder requires of entry i beyond what the list's own adding checked. */
function checkPacked(list: PackedFileList, i: number, r: Resolved): void {
  const mode = list.mode[i]!;
  const size = list.size[i]!;
  const mtime = list.mtime[i]!;
  if (!(size >= 0 && Number.isSafeInteger(size))) check(false, `bad size ${size} for ${shown(list, i)}`);
  if (!Number.isSafeInteger(mtime)) check(false, `bad mtime ${mtime}`);
  if (list.mtimeNsec[i]! > MAX_WIRE_NSEC) check(false, `bad mtime nanoseconds ${list.mtimeNsec[i]}`);
  const type = mode & S_IFMT;
  if (r.preserveLinks && type === S_IFLNK) {
    const target = list.symlinks.get(i);
    check(target !== undefined, `symlink ${shown(list, i)} without a target`);
    check(target!.length > 0 && target!.length < MAXPATHLEN, `symlink target of ${target!.length} bytes`);
  }
  if (r.preserveDevices && isDeviceMode(mode) && !list.rdevs.has(i)) check(false, `device ${shown(list, i)} without rdev`);
  if (r.preserveHardLinks) {
    if (list.hardlinks.has(i)) check(type !== S_IFDIR, `directory ${shown(list, i)} with hard-link info`);
    else check(r.protocol >= 28 || type !== S_IFREG, `protocol ${r.protocol} -H needs dev/ino of every regular file`);
  }
}

/** What follows entry `i` on the wire, written by the caller (-A, -X); `encoder.addIds` names the ids it uses. */
export type AfterEntry = (i: number, encoder: PackedListEncoder) => void;

/** The encoder's "previous entry" state (both sides start it at zero). */
interface Prev {
  /** The chunk of the list's arena holding the previous name, and where the name starts in it. */
  chunk: Uint8Array;
  nameStart: number;
  nameLength: number;
  mode: number;
  mtime: number;
  uid: number;
  gid: number;
  rdev: bigint;
  rdevMajor: number;
  dev: bigint;
}

/**
 * The list's encoder, one entry at a time: entries may be handed over while the tree is still
 * read (each is encoded against the one before it, in the order given; that order is the ndx
 * numbering the list's hard-link references use). `end()` writes the end marker, the id lists and
 * the io_error trailer. Writes into `writer`'s buffer only; the caller flushes.
 */
// rsync/flist.c: send_file_entry, and send_file_list's tail [flist-entry] [flist-end]
export class PackedListEncoder {
  private readonly r: Resolved;
  private readonly out = new EntryBytes();
  private readonly prev: Prev = { chunk: new Uint8Array(0), nameStart: 0, nameLength: 0, mode: 0, mtime: 0, uid: 0, gid: 0, rdev: 0n, rdevMajor: 0, dev: 0n };
  private readonly uids: number[] = [];
  private readonly gids: number[] = [];
  private readonly seenUids = new Set<number>();
  private readonly seenGids = new Set<number>();
  private readonly hlinkFirst = new Map<string, number>();
  private prevIndex = -1;
  /** Entries encoded so far (the next one's ndx in the sending order). */
  sent = 0;

  constructor(
    private readonly writer: ByteWriter,
    private readonly list: PackedFileList,
    private readonly opts: FlistOptions,
    /** What follows each entry on the wire (-A: its ACLs, whose ids it adds; -X: its xattr set). */
    private readonly afterEntry?: AfterEntry,
  ) {
    this.r = resolveFlistOptions(opts);
  }

  /** Encode entry `i` of the list as the next entry sent. */
  add(i: number): void {
    const { writer, list, r, out, prev, uids, gids, seenUids, seenGids, hlinkFirst } = this;
    const { protocol } = r;
    const arena = list.chunkOf(i);
    const prevIndex = this.prevIndex;
    const ndx = this.sent++;
    checkPacked(list, i, r);
    const mode = list.mode[i]!;
    const type = mode & S_IFMT;
    const nameStart = list.offsetOf(i);
    const nameLength = list.nameLength[i]!;
    // The daemon would disable the second slot of a duplicate name; never send one (a sorted
    // list has its duplicates side by side).
    if (prevIndex >= 0 && nameLength === prev.nameLength && (list.mode[prevIndex]! & S_IFMT) === type) {
      let k = 0;
      while (k < nameLength && arena[nameStart + k] === prev.chunk[prev.nameStart + k]) k++;
      if (k === nameLength) check(false, `duplicate name in the file list: ${JSON.stringify(shown(list, i))}`);
    }
    const first = prevIndex < 0;
    const isDirEntry = type === S_IFDIR;
    const isDevice = isDeviceMode(mode);
    const isSpecial = isSpecialMode(mode);
    const flags = list.flags[i]!;
    let xflags = 0;

    if (isDirEntry) {
      const top = flags & PACKED_TOP_DIR ? XMIT_TOP_DIR : 0;
      xflags = protocol >= 30 && flags & PACKED_NO_CONTENT ? top | XMIT_NO_CONTENT_DIR : top;
    }
    if (mode === prev.mode) xflags |= XMIT_SAME_MODE;
    else prev.mode = mode;

    let minor = 0;
    if (r.preserveDevices && isDevice) {
      const rdev = list.rdevs.get(i)!;
      minor = rdev.minor >>> 0;
      if (protocol < 28) {
        const both = makeDev(rdev.major, rdev.minor);
        if (both === prev.rdev) xflags |= XMIT_SAME_RDEV_pre28;
        else prev.rdev = both;
      } else {
        prev.rdev = makeDev(rdev.major, rdev.minor);
        if (rdev.major >>> 0 === prev.rdevMajor) xflags |= XMIT_SAME_RDEV_MAJOR;
        else prev.rdevMajor = rdev.major >>> 0;
        if (protocol < 30 && minor <= 0xff) xflags |= XMIT_RDEV_MINOR_8_pre30;
      }
    } else if (r.preserveSpecials && isSpecial && protocol < 31) {
      if (protocol < 28) xflags |= XMIT_SAME_RDEV_pre28;
      else {
        prev.rdev = makeDev(prev.rdevMajor, 0);
        xflags |= XMIT_SAME_RDEV_MAJOR;
        if (protocol < 30) xflags |= XMIT_RDEV_MINOR_8_pre30;
      }
    } else if (protocol < 28) {
      prev.rdev = 0n;
    }

    const uid = list.uid[i]!;
    const gid = list.gid[i]!;
    if (!r.preserveUid || (uid === prev.uid && !first)) xflags |= XMIT_SAME_UID;
    else {
      prev.uid = uid;
      if (r.trackIds && !seenUids.has(uid)) {
        seenUids.add(uid);
        uids.push(uid);
      }
    }
    if (!r.preserveGid || (gid === prev.gid && !first)) xflags |= XMIT_SAME_GID;
    else {
      prev.gid = gid;
      if (r.trackIds && !seenGids.has(gid)) {
        seenGids.add(gid);
        gids.push(gid);
      }
    }
    const mtime = list.mtime[i]!;
    if (mtime === prev.mtime) xflags |= XMIT_SAME_TIME;
    else prev.mtime = mtime;
    const nsec = list.mtimeNsec[i]!;
    if (nsec !== 0 && protocol >= 31) xflags |= XMIT_MOD_NSEC;

    const id = r.preserveHardLinks ? list.hardlinks.get(i) : undefined;
    const hlinked = r.preserveHardLinks && (id !== undefined || (protocol < 28 && type === S_IFREG));
    let firstOfGroup = -1;
    if (hlinked) {
      const dev = id!.dev;
      if (protocol >= 30) {
        const key = `${dev}:${id!.ino}`;
        firstOfGroup = hlinkFirst.get(key) ?? -1;
        if (firstOfGroup < 0) {
          hlinkFirst.set(key, ndx);
          xflags |= XMIT_HLINK_FIRST;
        }
      } else if (dev === prev.dev) {
        if (protocol >= 28) xflags |= XMIT_SAME_DEV_pre30;
      } else {
        prev.dev = dev;
      }
      xflags |= XMIT_HLINKED;
    }

    // Prefix shared with the previous name, at most 255 bytes (it travels in one byte).
    let l1 = 0;
    const maxL1 = Math.min(255, prev.nameLength, nameLength);
    while (l1 < maxL1 && arena[nameStart + l1] === prev.chunk[prev.nameStart + l1]) l1++;
    const l2 = nameLength - l1;
    if (l1 > 0) xflags |= XMIT_SAME_NAME;
    if (l2 > 255) xflags |= XMIT_LONG_NAME;

    out.at = 0;
    // A zero flags value (or first byte) would read as the end of the list; XMIT_TOP_DIR is the
    // harmless filler bit on a non-dir.
    if (r.varintFlags) {
      out.var(xflags || XMIT_EXTENDED_FLAGS, 1, 4);
    } else if (protocol >= 28) {
      if (xflags === 0 && !isDirEntry) xflags |= XMIT_TOP_DIR;
      if (xflags & 0xff00 || xflags === 0) {
        xflags |= XMIT_EXTENDED_FLAGS;
        out.short(xflags);
      } else {
        out.byte(xflags);
      }
    } else {
      if ((xflags & 0xff) === 0) xflags |= isDirEntry ? XMIT_LONG_NAME : XMIT_TOP_DIR;
      out.byte(xflags);
    }
    if (xflags & XMIT_SAME_NAME) out.byte(l1);
    if (xflags & XMIT_LONG_NAME) out.varint30(protocol, l2);
    else out.byte(l2);
    out.bytes(arena, nameStart + l1, nameStart + nameLength);
    prev.chunk = arena;
    prev.nameStart = nameStart;
    prev.nameLength = nameLength;
    this.prevIndex = i;

    if (firstOfGroup >= 0) {
      out.var(firstOfGroup, 1, 4);
      writer.writeBuf(out.buf.subarray(0, out.at));
      this.afterEntry?.(i, this);
      return;
    }

    const size = list.size[i]!;
    if (protocol < 30) out.longint(size);
    else out.var(size, 3, 8);
    if (!(xflags & XMIT_SAME_TIME)) {
      if (protocol < 30) out.int(mtime);
      else if (mtime >= 0) out.var(mtime, 4, 8);
      else {
        // Pre-1970: eight two's-complement bytes behind a 0xf8 prefix, as write_varlong does.
        out.byte(0xf8);
        out.view.setBigInt64(out.at, BigInt(mtime), true);
        out.at += 8;
      }
    }
    if (xflags & XMIT_MOD_NSEC) out.var(nsec, 1, 4);
    if (!(xflags & XMIT_SAME_MODE)) out.int(mode);
    if (r.preserveUid && !(xflags & XMIT_SAME_UID)) out.varint30(protocol, uid);
    if (r.preserveGid && !(xflags & XMIT_SAME_GID)) out.varint30(protocol, gid);

    if ((r.preserveDevices && isDevice) || (r.preserveSpecials && isSpecial && protocol < 31)) {
      if (protocol < 28) {
        if (!(xflags & XMIT_SAME_RDEV_pre28)) out.int(Number(BigInt.asIntN(32, prev.rdev)));
      } else {
        const m = isDevice ? minor : 0;
        if (!(xflags & XMIT_SAME_RDEV_MAJOR)) out.varint30(protocol, prev.rdevMajor);
        if (protocol >= 30) out.var(m, 1, 4);
        else if (xflags & XMIT_RDEV_MINOR_8_pre30) out.byte(m);
        else out.int(m);
      }
    }
    if (r.preserveLinks && type === S_IFLNK) {
      const target = list.symlinks.get(i)!;
      out.varint30(protocol, target.length);
      out.bytes(target);
    }
    if (hlinked && protocol < 30) {
      // Below 30 the receiver groups links itself from dev (sent +1, so never 0) and inode.
      if (!(xflags & XMIT_SAME_DEV_pre30)) out.longint64(id!.dev + 1n);
      out.longint64(id!.ino);
    }
    if (r.alwaysChecksum && (type === S_IFREG || protocol < 28)) {
      // Non-files below 28, and files that could not be read, carry zeros.
      const sum = type === S_IFREG ? list.checksum(i) : null;
      if (sum && sum.length === r.checksumLength) out.bytes(sum);
      else {
        check(!sum, `${shown(list, i)}: checksum must be ${r.checksumLength} bytes`);
        out.buf.fill(0, out.at, out.at + r.checksumLength);
        out.at += r.checksumLength;
      }
    }
    writer.writeBuf(out.buf.subarray(0, out.at));
    this.afterEntry?.(i, this);
  }

  /** -A: ids an entry's ACL named, added to the uid/gid name lists after the entry's own (rsync's add_uid/add_gid). */
  addIds(ids: { uids: readonly number[]; gids: readonly number[] }): void {
    if (!this.r.trackIds) return;
    for (const uid of ids.uids) {
      if (this.seenUids.has(uid)) continue;
      this.seenUids.add(uid);
      this.uids.push(uid);
    }
    for (const gid of ids.gids) {
      if (this.seenGids.has(gid)) continue;
      this.seenGids.add(gid);
      this.gids.push(gid);
    }
  }

  /**
   * The end marker, id lists and io_error trailer; `tail` gives what is known only once the tree is
   * read (the id names, io_error). The io_error still owed as MSG_IO_ERROR (0 when none).
   */
  end(tail?: Pick<FlistOptions, 'userNames' | 'groupNames' | 'ioError'>): number {
    return writeFlistTail(this.writer, tail ? { ...this.opts, ...tail } : this.opts, this.r, this.uids, this.gids);
  }
}

/**
 * Write the whole file list of `list` in the order `order` gives (sortedOrder's result for rsync's
 * own order), then the end marker, the id lists and the io_error trailer, as sendFileList does.
 * Returns the io_error still owed as MSG_IO_ERROR (0 when none). Writes into `writer`'s buffer
 * only; the caller flushes.
 */
// rsync/flist.c: send_file_list (the wire part) [flist-entry] [flist-end]
export function sendPackedFileList(
  writer: ByteWriter,
  list: PackedFileList,
  order: ArrayLike<number>,
  opts: FlistOptions,
  afterEntry?: AfterEntry,
): number {
  const encoder = new PackedListEncoder(writer, list, opts, afterEntry);
  for (let ndx = 0; ndx < order.length; ndx++) encoder.add(order[ndx]!);
  return encoder.end();
}

/**
 * The file list of entries given as `FileEntry` objects (the library's form: tests, a Node
 * program's own list): each entry checked, packed, and written in the order given (pass
 * sortFileList's result for rsync's own order and the best name compression) by the one encoder
 * above, then the end marker, the uid/gid name lists and below protocol 30 the io_error trailer.
 * Writes into `writer`'s buffer only; the caller flushes. Returns the sorted list (ndx → entry)
 * and any io_error still owed as MSG_IO_ERROR.
 */
// rsync/flist.c: send_file_list (the wire part, after the entries have been gathered)
export function sendFileList<T extends FileEntry>(writer: ByteWriter, entries: readonly T[], opts: FlistOptions): SentFileList<T> {
  const r = resolveFlistOptions(opts);
  const seen = new Set<string>();
  const list = new PackedFileList();
  for (const e of entries) {
    checkEntry(e, r);
    const key = e.name.toString('latin1');
    // The daemon would disable the second slot of a duplicate name; never send one.
    check(!seen.has(key), `duplicate name in the file list: ${JSON.stringify(key)}`);
    seen.add(key);
    list.addEntry(r.alwaysChecksum || e.checksum === undefined ? e : { ...e, checksum: undefined });
  }
  const encoder = new PackedListEncoder(writer, list, opts);
  for (let i = 0; i < list.count; i++) encoder.add(i);
  return { sorted: sortFileList(entries, r.protocol), msgIoError: encoder.end() };
}
