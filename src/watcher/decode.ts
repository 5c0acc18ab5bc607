// Decoder for the raw bytes the addon hands over: a sequence of kernel records
//   struct inotify_event { int wd; uint32_t mask; uint32_t cookie; uint32_t len; char name[len]; }
// (host byte order; `name` is NUL-terminated and NUL-padded to `len` bytes, len may be 0).
// The cursor walks one Buffer by offsets and allocates only the name string, on demand.

import { endianness } from 'node:os';
import { pathFromBytes } from './paths.js';

/** inotify mask bits (linux/inotify.h). */
export const IN = {
  ACCESS: 0x1,
  MODIFY: 0x2, // file content written (every write(2))
  ATTRIB: 0x4, // metadata: mode, owner, times, link count, xattrs
  CLOSE_WRITE: 0x8, // a file opened for writing was closed: "the file is done"
  CLOSE_NOWRITE: 0x10,
  OPEN: 0x20,
  MOVED_FROM: 0x40, // name left the watched dir by rename; `cookie` pairs it with MOVED_TO
  MOVED_TO: 0x80, // name arrived in the watched dir by rename
  CREATE: 0x100,
  DELETE: 0x200,
  DELETE_SELF: 0x400, // the watched directory itself was deleted
  MOVE_SELF: 0x800, // the watched directory itself was moved
  UNMOUNT: 0x2000, // the filesystem holding the watched object was unmounted
  Q_OVERFLOW: 0x4000, // the kernel queue overflowed: events were lost (wd is -1)
  IGNORED: 0x8000, // the watch is gone (removed, or its directory deleted/unmounted)
  ONLYDIR: 0x1000000, // add_watch: fail with ENOTDIR unless the path is a directory
  DONT_FOLLOW: 0x2000000, // add_watch: do not follow a symlink
  EXCL_UNLINK: 0x4000000, // no more events for children after they are unlinked
  MASK_CREATE: 0x10000000,
  MASK_ADD: 0x20000000,
  ISDIR: 0x40000000, // the subject of the event is a directory
  ONESHOT: 0x80000000,
} as const;

/** sizeof(struct inotify_event) without the name. */
export const EVENT_HEADER = 16;

const LE = endianness() === 'LE';

/** Iterates the records in one raw batch without allocating per record. */
export class InotifyCursor {
  wd = 0;
  mask = 0;
  cookie = 0;
  private nameStart = 0;
  private nameEnd = 0;
  private next_ = 0;

  constructor(private readonly buf: Buffer) {}

  /** Advance to the next record; false at the end (a truncated tail is ignored). */
  next(): boolean {
    const b = this.buf;
    const off = this.next_;
    if (off + EVENT_HEADER > b.length) return false;
    const len = LE ? b.readUInt32LE(off + 12) : b.readUInt32BE(off + 12);
    if (off + EVENT_HEADER + len > b.length) return false;
    this.wd = LE ? b.readInt32LE(off) : b.readInt32BE(off);
    this.mask = LE ? b.readUInt32LE(off + 4) : b.readUInt32BE(off + 4);
    this.cookie = LE ? b.readUInt32LE(off + 8) : b.readUInt32BE(off + 8);
    this.nameStart = off + EVENT_HEADER;
    let end = this.nameStart;
    const limit = this.nameStart + len;
    while (end < limit && b[end] !== 0) end++;
    this.nameEnd = end;
    this.next_ = limit;
    return true;
  }

  /** True when the record carries a name (an event about a child of the watched dir). */
  hasName(): boolean {
    return this.nameEnd > this.nameStart;
  }

  /** The child name as a watcher path component (lossless for non-UTF-8 bytes). */
  name(): string {
    return this.nameEnd > this.nameStart ? pathFromBytes(this.buf.subarray(this.nameStart, this.nameEnd)) : '';
  }
}

/** One decoded record (for tests and tools; the watcher itself uses the cursor). */
export interface InotifyRecord {
  wd: number;
  mask: number;
  cookie: number;
  name: string;
}

export function decodeAll(buf: Buffer): InotifyRecord[] {
  const out: InotifyRecord[] = [];
  const c = new InotifyCursor(buf);
  while (c.next()) out.push({ wd: c.wd, mask: c.mask, cookie: c.cookie, name: c.name() });
  return out;
}

/** Encode records the way the kernel does (name NUL-padded to a multiple of 16). For tests. */
export function encodeRecords(records: ReadonlyArray<{ wd: number; mask: number; cookie?: number; name?: string | Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const r of records) {
    const nameBytes = r.name === undefined ? Buffer.alloc(0) : typeof r.name === 'string' ? Buffer.from(r.name, 'utf8') : r.name;
    const len = nameBytes.length === 0 ? 0 : Math.ceil((nameBytes.length + 1) / EVENT_HEADER) * EVENT_HEADER;
    const rec = Buffer.alloc(EVENT_HEADER + len);
    if (LE) {
      rec.writeInt32LE(r.wd, 0); rec.writeUInt32LE(r.mask >>> 0, 4); rec.writeUInt32LE(r.cookie ?? 0, 8); rec.writeUInt32LE(len, 12);
    } else {
      rec.writeInt32BE(r.wd, 0); rec.writeUInt32BE(r.mask >>> 0, 4); rec.writeUInt32BE(r.cookie ?? 0, 8); rec.writeUInt32BE(len, 12);
    }
    nameBytes.copy(rec, EVENT_HEADER);
    parts.push(rec);
  }
  return Buffer.concat(parts);
}
