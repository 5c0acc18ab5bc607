// The live mirror's state file: what each target was last brought to (per path: type and mode,
// size, mtime to the nanosecond, inode, symlink target), and the paths whose push was begun but
// not seen through. A header naming the sync, then framed chunks of records; a snapshot is
// written whole (temp, fsync, rename, fsync of the directory), later batches are appended as
// further chunks (a journal), and reading replays them in order. docs/live.md, "Restart state";
// counterpart: none in rsync (lsyncd 2 keeps no state either).
//
// Layout:  MAGIC (8 bytes)  chunk*     chunk = u32le length, u32le crc32(payload), payload
// The first chunk is the header (JSON: version, source, targets, filter and transfer digests);
// every other chunk is a run of records:
//   u8 op, varint target, varint shared (bytes in common with the previous path of the chunk),
//   varint suffix length, suffix bytes, then by op:
//   SET      varint mode, varint size, varint mtime (zigzag), varint nsec, varint inode, uid, gid,
//            varint symlink length + bytes (symlinks only)
//   CLEAR    (the path and everything below it is no longer known)
//   PENDING  u8 kind | isDir << 3 (a push of this path began)
//   DONE     (that push went through)
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { EXIT, RsyncError } from '../../protocol/errors.js';
import { S_IFLNK, S_IFMT, S_IFDIR } from '../../protocol/modes.js';
import { isWithin, type PendingEntry, type PendingKind } from './plan.js';

/** "LSYNCDS" and the format's version. */
export const STATE_MAGIC = Buffer.from('LSYNCDS\x01', 'latin1');
export const STATE_VERSION = 1;
/** Bounds on what a state file may make us allocate: the file, one name, one symlink target. */
export const MAX_STATE_BYTES = 1 << 30;
const MAX_NAME = 4096; // rsync's MAXPATHLEN
const MAX_CHUNK = 256 * 2 ** 20;

/** The reason given when the state file does not exist (a first start: said at info level). */
export const NO_STATE_YET = 'there is no state file yet';

/** A state file that cannot be used (torn, foreign, garbled): the startup sync is then a full one. */
export class StateFileError extends RsyncError {
  constructor(message: string) {
    super('ERR_STATE_FILE', message, EXIT.FILEIO);
    this.name = 'StateFileError';
  }
}

/** Which sync a state file belongs to: a file of another one is not used. */
export interface StateIdentity {
  source: string;
  targets: string[];
  /** Digests of the filter rules and of the transfer options that shape what is listed. */
  filters: string;
  transfer: string;
}

/** What a target was brought to for one path (as the push listed it). */
export interface StateRecord {
  mode: number;
  size: number;
  mtime: number;
  nsec: number;
  ino: number;
  uid: number;
  gid: number;
  symlink?: Buffer;
}

export const OP_SET = 1;
export const OP_CLEAR = 2;
export const OP_PENDING = 3;
export const OP_DONE = 4;

const KINDS: PendingKind[] = ['create', 'modify', 'attrib', 'delete', 'rescan'];

/**
 * One target's known state, keyed by directory then name (latin1 strings, so any byte is kept):
 * a subtree is forgotten by walking its directories, not by scanning every path.
 */
export class MirroredState {
  /** Directory ('' = the root's contents) → name → record. */
  readonly dirs = new Map<string, Map<string, StateRecord>>();
  root: StateRecord | undefined;
  /** Paths whose push began and did not go through (latin1) → what was pending. */
  readonly unsure = new Map<string, PendingEntry>();

  get(path: string): StateRecord | undefined {
    if (path === '') return this.root;
    const slash = path.lastIndexOf('/');
    return this.dirs.get(slash === -1 ? '' : path.slice(0, slash))?.get(path.slice(slash + 1));
  }

  set(path: string, record: StateRecord): void {
    if (path === '') {
      this.root = record;
      return;
    }
    const slash = path.lastIndexOf('/');
    const dir = slash === -1 ? '' : path.slice(0, slash);
    let names = this.dirs.get(dir);
    if (!names) this.dirs.set(dir, (names = new Map()));
    names.set(path.slice(slash + 1), record);
  }

  /**
   * Forget `path` and everything below it ('' = everything). Only a push that went through
   * clears (a directory listed with its contents, a deleted path), so the begun pushes below it
   * are seen through too (one absorbed into a rescan of an ancestor never gets its own done).
   */
  clear(path: string, below = false): void {
    for (const key of this.unsure.keys()) if (isWithin(key, path)) this.unsure.delete(key);
    if (path === '') {
      if (!below) this.root = undefined;
      this.dirs.clear();
      return;
    }
    if (!below) {
      const slash = path.lastIndexOf('/');
      this.dirs.get(slash === -1 ? '' : path.slice(0, slash))?.delete(path.slice(slash + 1));
    }
    const drop = (dir: string) => {
      const names = this.dirs.get(dir);
      if (!names) return;
      this.dirs.delete(dir);
      for (const name of names.keys()) drop(`${dir}/${name}`);
    };
    drop(path);
  }

  /** Each recorded path (latin1, '' = the root) with its record, parents before children. */
  forEach(visit: (path: string, record: StateRecord) => void): void {
    if (this.root) visit('', this.root);
    const walk = (dir: string) => {
      const names = this.dirs.get(dir);
      if (!names) return;
      for (const [name, record] of names) {
        const path = dir === '' ? name : `${dir}/${name}`;
        visit(path, record);
        if (this.dirs.has(path)) walk(path);
      }
    };
    walk('');
  }

  /** Every recorded path with its record (tests). */
  entries(): Array<[string, StateRecord]> {
    const out: Array<[string, StateRecord]> = [];
    this.forEach((path, record) => out.push([path, record]));
    return out;
  }
}

/** Records to append, encoded as they come (paths share prefixes within a chunk). */
export class RecordWriter {
  private parts: Buffer[] = [];
  private scratch = Buffer.allocUnsafe(64 * 1024);
  private at = 0;
  private previous: Buffer = Buffer.alloc(0);
  count = 0;

  get empty(): boolean {
    return this.count === 0;
  }

  set(target: number, path: Buffer, r: StateRecord): void {
    this.head(OP_SET, target, path);
    this.varint(r.mode);
    this.varint(r.size);
    this.varint(r.mtime >= 0 ? r.mtime * 2 : -r.mtime * 2 - 1);
    this.varint(r.nsec);
    this.varint(r.ino);
    this.varint(r.uid);
    this.varint(r.gid);
    if ((r.mode & S_IFMT) === S_IFLNK) this.bytes(r.symlink ?? Buffer.alloc(0));
  }

  clear(target: number, path: Buffer): void {
    this.head(OP_CLEAR, target, path);
  }

  pending(target: number, path: Buffer, entry: PendingEntry): void {
    this.head(OP_PENDING, target, path);
    this.room(1);
    this.scratch[this.at++] = KINDS.indexOf(entry.kind) | (entry.isDir ? 8 : 0);
  }

  done(target: number, path: Buffer): void {
    this.head(OP_DONE, target, path);
  }

  /** The records as one framed chunk (empty when there are none); the writer starts afresh. */
  take(): Buffer {
    if (this.count === 0) return Buffer.alloc(0);
    this.parts.push(Buffer.from(this.scratch.subarray(0, this.at)));
    const chunk = frame(Buffer.concat(this.parts));
    this.parts = [];
    this.at = 0;
    this.count = 0;
    this.previous = Buffer.alloc(0);
    return chunk;
  }

  private head(op: number, target: number, path: Buffer): void {
    this.count++;
    this.room(1);
    this.scratch[this.at++] = op;
    this.varint(target);
    let shared = 0;
    const max = Math.min(path.length, this.previous.length);
    while (shared < max && path[shared] === this.previous[shared]) shared++;
    this.varint(shared);
    this.bytes(path.subarray(shared));
    this.previous = path;
  }

  private bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.room(b.length);
    this.scratch.set(b, this.at);
    this.at += b.length;
  }

  /** Unsigned LEB128, up to 2^53. */
  private varint(n: number): void {
    this.room(8);
    while (n >= 0x80) {
      this.scratch[this.at++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.scratch[this.at++] = n;
  }

  private room(n: number): void {
    if (this.at + n <= this.scratch.length) return;
    this.parts.push(Buffer.from(this.scratch.subarray(0, this.at)));
    this.at = 0;
    if (n > this.scratch.length) this.scratch = Buffer.allocUnsafe(n);
  }
}

function frame(payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(8);
  head.writeUInt32LE(payload.length, 0);
  head.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([head, payload]);
}

/**
 * The header chunk: the magic, who the file belongs to, and how many bytes of snapshot follow it
 * (a file cut inside its snapshot is known to be torn even when the cut falls between chunks;
 * the journal after it only ever loses its newest records, which leaves an older, safe state).
 */
export function encodeHeader(identity: StateIdentity, snapshotBytes = 0): Buffer {
  const json = JSON.stringify({ version: STATE_VERSION, ...identity, snapshot: snapshotBytes });
  return Buffer.concat([STATE_MAGIC, frame(Buffer.from(json, 'utf8'))]);
}

/** A snapshot: the header, then every target's records and unsure paths, as one chunk each. */
export function encodeSnapshot(identity: StateIdentity, targets: readonly MirroredState[]): Buffer {
  const parts = targets.map((state, t) => {
    const w = new RecordWriter();
    state.forEach((path, record) => w.set(t, Buffer.from(path, 'latin1'), record));
    for (const [path, entry] of state.unsure) w.pending(t, Buffer.from(path, 'latin1'), entry);
    return w.take();
  });
  const body = Buffer.concat(parts);
  return Buffer.concat([encodeHeader(identity, body.length), body]);
}

/** Replace `path` with `bytes` so that a crash leaves the old file or the new one, whole. */
export function writeFileDurably(path: string, bytes: Buffer): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  syncDirectory(dirname(path));
}

/** fsync a directory, so a rename in it survives a crash. */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The state file's contents as each target's state, if it is whole and belongs to `identity`. */
export function readStateFile(path: string, identity: StateIdentity): { targets: MirroredState[]; bytes: number } {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new StateFileError(code === 'ENOENT' ? NO_STATE_YET : `cannot read it (${(e as Error).message})`);
  }
  if (data.length > MAX_STATE_BYTES) throw new StateFileError(`it is larger than ${MAX_STATE_BYTES} bytes`);
  if (data.length < STATE_MAGIC.length && STATE_MAGIC.subarray(0, data.length).equals(data)) throw new StateFileError(`it ends in a torn record at byte 0`);
  if (data.length < STATE_MAGIC.length || !data.subarray(0, STATE_MAGIC.length).equals(STATE_MAGIC)) {
    throw new StateFileError(data.subarray(0, 7).equals(STATE_MAGIC.subarray(0, 7)) ? `it is of another format version (${data[7]})` : 'it is not an lsyncd state file');
  }
  const chunks = splitChunks(data);
  const header = parseHeader(chunks.shift()?.payload);
  const snapshotEnd = (chunks[0]?.at ?? data.length) + header.snapshot;
  if (data.length < snapshotEnd || !(snapshotEnd === data.length || chunks.some((c) => c.at === snapshotEnd))) {
    throw new StateFileError(`it ends in a torn record (its snapshot is ${header.snapshot} bytes, the file ${data.length})`);
  }
  const mismatch = identityMismatch(header, identity);
  if (mismatch) throw new StateFileError(mismatch);
  const targets = identity.targets.map(() => new MirroredState());
  for (const chunk of chunks) replay(chunk.payload, targets);
  return { targets, bytes: data.length };
}

function splitChunks(data: Buffer): Array<{ at: number; payload: Buffer }> {
  const chunks: Array<{ at: number; payload: Buffer }> = [];
  let at = STATE_MAGIC.length;
  while (at < data.length) {
    if (data.length - at < 8) throw new StateFileError(`it ends in a torn record at byte ${at}`);
    const length = data.readUInt32LE(at);
    const sum = data.readUInt32LE(at + 4);
    if (length > MAX_CHUNK || at + 8 + length > data.length) throw new StateFileError(`it ends in a torn record at byte ${at}`);
    const payload = data.subarray(at + 8, at + 8 + length);
    if (crc32(payload) !== sum) throw new StateFileError(`its record at byte ${at} is damaged (checksum mismatch)`);
    chunks.push({ at, payload });
    at += 8 + length;
  }
  return chunks;
}

function parseHeader(chunk: Buffer | undefined): StateIdentity & { version: number; snapshot: number } {
  if (!chunk) throw new StateFileError('it has no header');
  let header: unknown;
  try {
    header = JSON.parse(chunk.toString('utf8'));
  } catch {
    throw new StateFileError('its header is garbled');
  }
  const h = header as Partial<StateIdentity & { version: number; snapshot: number }>;
  if (typeof h !== 'object' || h === null || typeof h.source !== 'string' || !Array.isArray(h.targets) || typeof h.filters !== 'string' || typeof h.transfer !== 'string' || !Number.isSafeInteger(h.snapshot) || h.snapshot! < 0) {
    throw new StateFileError('its header is garbled');
  }
  return h as StateIdentity & { version: number; snapshot: number };
}

/** Why a state file written by `header` is not this sync's, or undefined. */
function identityMismatch(header: StateIdentity & { version: number }, identity: StateIdentity): string | undefined {
  // The file's own words are shown escaped: a hostile file cannot forge a log line.
  if (header.version !== STATE_VERSION) return `it is of another format version (${JSON.stringify(header.version)})`;
  if (header.source !== identity.source) return `it was written for source ${JSON.stringify(header.source)}`;
  if (header.targets.join('\n') !== identity.targets.join('\n')) return `it was written for target(s) ${JSON.stringify(header.targets.join(' ')).slice(1, -1)}`;
  if (header.filters !== identity.filters) return 'it was written with other filter rules';
  if (header.transfer !== identity.transfer) return 'it was written with other transfer options';
  return undefined;
}

/** Apply one chunk of records to the targets' states. */
function replay(chunk: Buffer, targets: MirroredState[]): void {
  let at = 0;
  // The path is rebuilt in place: the shared prefix is already there from the previous record.
  const path = Buffer.allocUnsafe(MAX_NAME);
  let length = 0;
  const garbled = (what: string) => new StateFileError(`a record is garbled (${what} at chunk offset ${at})`);
  const varint = (): number => {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (at >= chunk.length) throw garbled('truncated number');
      const b = chunk[at++]!;
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 0x80;
    }
    throw garbled('number too long');
  };
  const bytes = (max: number): Buffer => {
    const length = varint();
    if (length > max || at + length > chunk.length) throw garbled('bad length');
    const b = chunk.subarray(at, at + length);
    at += length;
    return b;
  };
  while (at < chunk.length) {
    const op = chunk[at++]!;
    const t = varint();
    const state = targets[t];
    if (!state) throw garbled(`target ${t}`);
    const shared = varint();
    if (shared > length) throw garbled('bad shared prefix');
    const suffix = bytes(MAX_NAME - shared);
    suffix.copy(path, shared);
    length = shared + suffix.length;
    const key = path.toString('latin1', 0, length);
    switch (op) {
      case OP_SET: {
        const mode = varint();
        const size = varint();
        const zig = varint();
        const record: StateRecord = { mode, size, mtime: zig % 2 === 0 ? zig / 2 : -(zig + 1) / 2, nsec: varint(), ino: varint(), uid: varint(), gid: varint() };
        if ((mode & S_IFMT) === S_IFLNK) record.symlink = Buffer.from(bytes(MAX_NAME));
        state.set(key, record);
        break;
      }
      case OP_CLEAR:
        state.clear(key);
        break;
      case OP_PENDING: {
        if (at >= chunk.length) throw garbled('truncated record');
        const flags = chunk[at++]!;
        const kind = KINDS[flags & 7];
        if (!kind) throw garbled('pending kind');
        const known = state.unsure.get(key);
        // A path begun twice keeps the stronger claim (a subtree over an entry alone).
        state.unsure.set(key, known?.kind === 'rescan' ? known : { kind, isDir: (flags & 8) !== 0 });
        break;
      }
      case OP_DONE:
        state.unsure.delete(key);
        break;
      default:
        throw garbled(`op ${op}`);
    }
  }
}

/** Whether a record is a directory. */
export function isDirRecord(r: StateRecord): boolean {
  return (r.mode & S_IFMT) === S_IFDIR;
}
