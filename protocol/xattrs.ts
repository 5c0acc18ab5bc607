// Extended attributes on the wire, -X (docs/protocol.md [xattrs]): each file-list entry is
// followed by its set of names and values, sent once and then named by index; a value over 32
// bytes travels as its MD5 digest, and the generator asks for the full value (in its request's
// tail, [xattr-request]) only when the file here does not already hold it. The sender, the
// generator and the receiver each keep their own view of the sets, as rsync's three processes do.
// Pure: the caller reads and writes the attributes (src/transfer/xattr-tree.ts through the addon).
// Counterpart: rsync xattrs.c (rsync_xal_get, send_xattr, receive_xattr, xattr_diff,
// send_xattr_request, recv_xattr_request, rsync_xal_set).
import { createHash } from 'node:crypto';
import { ProtocolError, type MemoryBudget } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';
import { ITEM_LOCAL_CHANGE, ITEM_REPORT_XATTR, ITEM_XNAME_FOLLOWS } from './constants.js';

/** Values up to this many bytes travel whole; longer ones as their digest (rsync's MAX_FULL_DATUM). */
export const MAX_FULL_DATUM = 32;
/** The digest of a long value: MD5, unseeded, at every protocol -X speaks (compat.c xattr_sum_nni). */
export const XATTR_DIGEST_LENGTH = 16;
/** Most names in one set (rsync.h MAX_WIRE_XATTR_COUNT). */
export const MAX_XATTR_COUNT = 65536;
/** Longest name with its NUL (rsync.h MAX_WIRE_XATTR_NAMELEN). */
export const MAX_XATTR_NAME = 4096;
/** Longest value: Linux's XATTR_SIZE_MAX (no filesystem here can hold more; rsync allows 128 MiB). */
export const MAX_XATTR_VALUE = 64 * 1024;
/** Most bytes of names and values in one set (Linux's XATTR_LIST_MAX bounds the names alone to 64 KiB). */
export const MAX_XATTR_SET_BYTES = 1024 * 1024;

/** A name and its whole value, as read from or written to a file (the name without its NUL). */
export interface XattrPair {
  name: Buffer;
  value: Buffer;
}

/** One name of a set as it travels. */
export interface XattrItem {
  /** Without the NUL that ends it on the wire. */
  name: Buffer;
  /** The value's length (rsync's datum_len). */
  length: number;
  /** The whole value: one of at most 32 bytes; a longer one once fetched (receiver), else null. */
  value: Buffer | null;
  /** MD5 of a value over 32 bytes, else null. */
  digest: Buffer | null;
  /** Its 1-based position in the set as sent (what a request names). */
  num: number;
}

const USER_PREFIX = Buffer.from('user.');
const SYSTEM_PREFIX = Buffer.from('system.');
/** rsync's own names (user.rsync.%stat, %aacl, %dacl: --fake-super's records) travel only with -XX. */
const RSYNC_PERCENT = Buffer.from('user.rsync.%');

const hasPrefix = (name: Buffer, prefix: Buffer) => name.length >= prefix.length && name.subarray(0, prefix.length).equals(prefix);

export function xattrDigest(value: Uint8Array): Buffer {
  return createHash('md5').update(value).digest();
}

/** How the two ends treat names, from the options. */
export interface XattrOptions {
  /** 1 for -X, 2 for -XX (rsync's own user.rsync.% names are copied too). */
  level: number;
  /** The receiving side runs as root: every namespace but system.* is kept; otherwise user.* only. */
  amRoot: boolean;
  /**
   * Protocol 31+ without CF_AVOID_XATTR_OPTIM (rsync's want_xattr_optim): a local copy flagged
   * ITEM_XNAME_FOLLOWS|ITEM_LOCAL_CHANGE carries no request. Every rsync client sends 'x', so off.
   */
  optim: boolean;
  /** -n: no requests travel (rsync's do_xfers). */
  dryRun?: boolean;
}

/** Whether a request's tail carries xattr values for these flags (rsync's test in its three roles). */
// rsync/sender.c: write_ndx_and_attrs, receiver.c recv_files (the preserve_xattrs test)
export function xattrRequestFollows(options: XattrOptions, iflags: number): boolean {
  const both = ITEM_XNAME_FOLLOWS | ITEM_LOCAL_CHANGE;
  return !options.dryRun && (iflags & ITEM_REPORT_XATTR) !== 0 && !(options.optim && (iflags & both) === both);
}

/**
 * The set a file has, as the sender sends it: system.* left out (ACLs are -A's), rsync's own
 * user.rsync.% names only with -XX, sorted by name bytes, values over 32 bytes as their digest.
 */
// rsync/xattrs.c: rsync_xal_get (am_sender)
export function senderXattrSet(pairs: readonly XattrPair[], level: number): XattrItem[] {
  const kept = pairs.filter((p) => !hasPrefix(p.name, SYSTEM_PREFIX) && (level >= 2 || !hasPrefix(p.name, RSYNC_PERCENT)));
  kept.sort((a, b) => Buffer.compare(a.name, b.name));
  return kept.map((p, k) => itemOf(p, k + 1));
}

/** The names a receiving side reads and manages on its own files: user.* when not root, all but system.* as root. */
// rsync/xattrs.c: rsync_xal_get (the receiver's user_only), rsync_xal_set (extraneous names)
export function receiverManages(name: Buffer, amRoot: boolean): boolean {
  return amRoot ? !hasPrefix(name, SYSTEM_PREFIX) : hasPrefix(name, USER_PREFIX);
}

function itemOf(p: XattrPair, num: number): XattrItem {
  const long = p.value.length > MAX_FULL_DATUM;
  return { name: p.name, length: p.value.length, value: long ? null : p.value, digest: long ? xattrDigest(p.value) : null, num };
}

/** The sets sent or received so far, in order (rsync's rsync_xal_l): an entry names one by index. */
// rsync/xattrs.c: rsync_xal_l, find_matching_xattr, rsync_xal_store
export class XattrSets {
  readonly sets: XattrItem[][] = [];
  private readonly byContent = new Map<string, number>();

  /** The index of a set with the same names and values (digests for long ones), or -1. */
  find(set: readonly XattrItem[]): number {
    return this.byContent.get(contentKey(set)) ?? -1;
  }

  store(set: XattrItem[]): number {
    this.sets.push(set);
    const key = contentKey(set);
    if (!this.byContent.has(key)) this.byContent.set(key, this.sets.length - 1);
    return this.sets.length - 1;
  }
}

function contentKey(set: readonly XattrItem[]): string {
  let key = '';
  for (const it of set) key += `${it.name.length}:${it.name.toString('latin1')}${it.length}:${(it.digest ?? it.value!).toString('latin1')}`;
  return key;
}

/** Reads a value of list entry `i` again when the generator asks for it (null: it is gone or unreadable). */
export type XattrValueReader = (i: number, name: Buffer) => Buffer | null;

/**
 * The sender's side: the set of each entry it lists (in the list's own numbering, an index
 * column made only with -X), and the answers to the generator's requests by ndx.
 */
export class XattrSender {
  private readonly sets = new XattrSets();
  /** List index → set index (-1: none yet). */
  private setOf = new Int32Array(1024).fill(-1);
  /** The nums the request being answered asked for. */
  private asked: number[] = [];

  constructor(
    readonly options: XattrOptions,
    private readonly read: XattrValueReader,
    /** The list index of an ndx (the sorted order), set once the list is sorted. */
    public listIndex: (ndx: number) => number = (ndx) => ndx,
  ) {}

  /** Whether a request with these flags carries a tail. */
  follows(iflags: number): boolean {
    return xattrRequestFollows(this.options, iflags);
  }

  /** Requests name entries by ndx: `order[ndx]` is the list index (the sorted order). */
  inOrder(order: ArrayLike<number>): this {
    this.listIndex = (ndx) => order[ndx]!;
    return this;
  }

  /** After entry `i` of the list: its set, by index when already sent. */
  // rsync/xattrs.c: send_xattr [xattr-set]
  send(writer: ByteWriter, i: number, pairs: readonly XattrPair[]): void {
    const set = senderXattrSet(pairs, this.options.level);
    let ndx = this.sets.find(set);
    writer.writeVarint(ndx + 1);
    if (ndx < 0) {
      writer.writeVarint(set.length);
      for (const it of set) {
        writer.writeVarint(it.name.length + 1);
        writer.writeVarint(it.length);
        writer.writeBuf(it.name);
        writer.writeByte(0);
        writer.writeBuf(it.digest ?? it.value!);
      }
      ndx = this.sets.store(set);
    }
    if (i >= this.setOf.length) {
      const grown = new Int32Array(Math.max(i + 1, this.setOf.length * 2)).fill(-1);
      grown.set(this.setOf);
      this.setOf = grown;
    }
    this.setOf[i] = ndx;
  }

  private setFor(ndx: number): XattrItem[] {
    const i = this.listIndex(ndx);
    const s = i < this.setOf.length ? this.setOf[i]! : -1;
    if (s < 0) throw new ProtocolError(`xattr request for index ${ndx}, which has no xattr set`);
    return this.sets.sets[s]!;
  }

  /** The generator's request: which long values of entry `ndx` it wants (nums, relative, 0 ends). */
  // rsync/xattrs.c: recv_xattr_request (am_sender) [xattr-request]
  async readRequest(reader: ByteReader, ndx: number): Promise<void> {
    const set = this.setFor(ndx);
    this.asked = [];
    let num = 0;
    for (;;) {
      const rel = await reader.readVarint();
      if (rel === 0) break;
      num += rel;
      const it = set.find((x) => x.num === num);
      if (!it) throw new ProtocolError(`could not find xattr #${num} for index ${ndx}`);
      if (!it.digest) throw new ProtocolError(`xattr #${num} of index ${ndx} was sent whole, not abbreviated`);
      if (this.asked.includes(num)) throw new ProtocolError(`xattr #${num} of index ${ndx} asked for twice`);
      this.asked.push(num);
    }
  }

  /** The values asked for, in the echo of the request: each num (relative), length and bytes; 0 ends. */
  // rsync/xattrs.c: send_xattr_request (with fname: the sender) [xattr-request]
  writeAnswer(writer: ByteWriter, ndx: number): void {
    const set = this.setFor(ndx);
    let prior = 0;
    for (const num of this.asked.sort((a, b) => a - b)) {
      const it = set.find((x) => x.num === num)!;
      writer.writeVarint(num - prior);
      prior = num;
      // The length may have changed since the list went: the value read now is what is sent.
      const value = this.read(this.listIndex(ndx), it.name);
      writer.writeVarint(value ? value.length : 0);
      if (value) writer.writeBuf(value);
    }
    writer.writeByte(0);
    this.asked = [];
  }
}

/** Generator states of a long item (rsync's XSTATE_*): matched here or asked for, until done. */
const ABBREV = 1;
const DONE = 2;
const TODO = 3;

/** The receiving side's file access for xattrs (sync: the addon's calls are). */
export interface LocalXattrs {
  /** The names this side manages (receiverManages) with their values; null when the file is missing. */
  read(name: Buffer): XattrPair[] | null;
  set(name: Buffer, attr: Buffer, value: Buffer): void;
  remove(name: Buffer, attr: Buffer): void;
}

/**
 * The receiving side: the sets received with the list (by the list's wire order), the
 * generator's comparison and requests, and the receiver's values and their application.
 */
export class XattrReceiver {
  private readonly sets = new XattrSets();
  private setOf = new Int32Array(1024).fill(-1);
  /** The generator's state per set and item (rsync's datum[0] on the generator's copy). */
  private readonly genStates: Uint8Array[] = [];
  /** Bytes held by the received sets (for a connection's memory cap). */
  held = 0;

  private local: LocalXattrs | null = null;
  private wireIndex: (ndx: number) => number = (ndx) => ndx;

  constructor(
    readonly options: XattrOptions,
    /** A connection's memory cap (a daemon's): the long values received later are charged too. */
    private readonly budget?: MemoryBudget,
  ) {}

  /** Once the list is in: the destination's xattr access, and the wire index of an ndx (ReceivedList.wireIndex). */
  bind(local: LocalXattrs, wireIndex: (ndx: number) => number): void {
    this.local = local;
    this.wireIndex = wireIndex;
  }

  private read(name: Buffer): XattrPair[] | null {
    if (!this.local) throw new Error('internal: XattrReceiver used before bind()');
    return this.local.read(name);
  }

  /** The set after entry `w` (wire order) of the list: an index to one received, or a new one. */
  // rsync/xattrs.c: receive_xattr [xattr-set]
  async receive(reader: ByteReader, w: number): Promise<number> {
    const ref = await reader.readVarint();
    if (ref < 0 || ref > this.sets.sets.length) throw new ProtocolError(`xattr set index ${ref} out of range (${this.sets.sets.length} received)`);
    let ndx = ref - 1;
    let bytes = 0;
    if (ref === 0) {
      const count = await reader.readVarint();
      if (count < 0 || count > MAX_XATTR_COUNT) throw new ProtocolError(`xattr count ${count} out of range`);
      const set: XattrItem[] = [];
      let total = 0;
      for (let num = 1; num <= count; num++) {
        const nameLength = await reader.readVarint();
        const length = await reader.readVarint();
        if (nameLength < 1 || nameLength > MAX_XATTR_NAME) throw new ProtocolError(`xattr name length ${nameLength} out of range`);
        if (length < 0 || length > MAX_XATTR_VALUE) throw new ProtocolError(`xattr value of ${length} bytes (at most ${MAX_XATTR_VALUE})`);
        total += nameLength + length;
        if (total > MAX_XATTR_SET_BYTES) throw new ProtocolError(`xattr set over ${MAX_XATTR_SET_BYTES} bytes`);
        const raw = await reader.readBuf(nameLength);
        if (raw[nameLength - 1] !== 0 || raw.indexOf(0) !== nameLength - 1) throw new ProtocolError('Invalid xattr name received (missing trailing \\0).');
        const name = Buffer.from(raw.subarray(0, nameLength - 1));
        const long = length > MAX_FULL_DATUM;
        const data = Buffer.from(await reader.readBuf(long ? XATTR_DIGEST_LENGTH : length));
        // A receiver that is not root keeps user.* only; rsync's own names need -XX.
        if (!this.options.amRoot && !hasPrefix(name, USER_PREFIX)) continue;
        if (this.options.level < 2 && hasPrefix(name, RSYNC_PERCENT)) continue;
        set.push({ name, length, value: long ? null : data, digest: long ? data : null, num });
        bytes += 64 + name.length + data.length;
      }
      ndx = this.sets.store(set);
      this.genStates.push(Uint8Array.from(set, (it) => (it.digest ? ABBREV : 0)));
    }
    if (w >= this.setOf.length) {
      const grown = new Int32Array(Math.max(w + 1, this.setOf.length * 2)).fill(-1);
      grown.set(this.setOf);
      this.setOf = grown;
      bytes += grown.byteLength;
    }
    this.setOf[w] = ndx;
    this.held += bytes;
    return bytes;
  }

  /** Whether a request with these flags carries a tail. */
  follows(iflags: number): boolean {
    return xattrRequestFollows(this.options, iflags);
  }

  /** The pairs a file has now (a basis about to be replaced), or null when it is missing. */
  snapshot(name: Buffer): XattrPair[] | null {
    return this.read(name);
  }

  private setIndex(ndx: number): number {
    const w = this.wireIndex(ndx);
    return w < this.setOf.length ? this.setOf[w]! : -1;
  }

  /**
   * The generator: whether the set here (`here` null: the file is new) differs from the sender's,
   * marking the long values it will ask for.
   */
  // rsync/xattrs.c: xattr_diff (find_all) [xattr-diff]
  differs(ndx: number, here: Buffer | null): boolean {
    const s = this.setIndex(ndx);
    const theirs = s >= 0 ? this.sets.sets[s]! : [];
    const states = s >= 0 ? this.genStates[s]! : new Uint8Array(0);
    let ours: XattrPair[];
    try {
      ours = (here && this.read(here)) || [];
    } catch {
      ours = []; // unreadable here: the set is applied (and its failure reported) later
    }
    ours.sort((a, b) => Buffer.compare(a.name, b.name));
    let equal = theirs.length === ours.length;
    let o = 0;
    for (let k = 0; k < theirs.length; k++) {
      const it = theirs[k]!;
      while (o < ours.length && Buffer.compare(ours[o]!.name, it.name) < 0) {
        o++;
        equal = false;
      }
      const mine = o < ours.length && ours[o]!.name.equals(it.name) ? ours[o]! : null;
      if (mine) o++;
      const same = !!mine && mine.value.length === it.length && (it.digest ? xattrDigest(mine.value).equals(it.digest) : mine.value.equals(it.value!));
      if (!same) {
        equal = false;
        if (it.digest && states[k] === ABBREV) states[k] = TODO;
      }
    }
    if (o < ours.length) equal = false;
    return !equal;
  }

  /**
   * The generator's request tail: the long values marked wanted (nums, relative), 0 ends it; with
   * `write` false nothing travels and the marks are dropped (rsync's f_out -1). Values matched
   * here become done: the receiver takes them from the file.
   */
  // rsync/xattrs.c: send_xattr_request (the generator) [xattr-request]
  writeRequest(writer: ByteWriter | null, ndx: number): void {
    const s = this.setIndex(ndx);
    if (s < 0) {
      writer?.writeByte(0);
      return;
    }
    const set = this.sets.sets[s]!;
    const states = this.genStates[s]!;
    let prior = 0;
    for (let k = 0; k < set.length; k++) {
      if (states[k] === ABBREV) states[k] = DONE;
      if (states[k] !== TODO) continue;
      states[k] = DONE;
      if (!writer) continue;
      writer.writeVarint(set[k]!.num - prior);
      prior = set[k]!.num;
    }
    writer?.writeByte(0);
  }

  /** The receiver: the values the sender answered with, kept in place of their digests. */
  // rsync/xattrs.c: recv_xattr_request (the receiver) [xattr-request]
  async readValues(reader: ByteReader, ndx: number): Promise<void> {
    const s = this.setIndex(ndx);
    if (s < 0) throw new ProtocolError(`xattr values for index ${ndx}, which has no xattr set`);
    const set = this.sets.sets[s]!;
    let num = 0;
    for (;;) {
      const rel = await reader.readVarint();
      if (rel === 0) return;
      num += rel;
      if (!Number.isSafeInteger(num)) throw new ProtocolError('xattr request position overflow');
      const it = set.find((x) => x.num === num);
      if (!it) throw new ProtocolError(`could not find xattr #${num} for index ${ndx}`);
      if (!it.digest || it.value) throw new ProtocolError(`xattr #${num} of index ${ndx} was not awaited`);
      const length = await reader.readVarint();
      if (length < 0 || length > MAX_XATTR_VALUE) throw new ProtocolError(`xattr value of ${length} bytes (at most ${MAX_XATTR_VALUE})`);
      this.budget?.charge(length, 'xattrs');
      it.value = Buffer.from(await reader.readBuf(length));
      it.length = length;
      this.held += length;
    }
  }

  /**
   * Give file `name` the sender's set: each value set (a long one not received yet taken from
   * `basis`, the pairs its basis had, else from the file itself, when its digest matches), then
   * the names the set does not have removed. `generator` true: a long value still unknown is left
   * for the receiver (it comes with the request); false: it is reported missing. Returns what
   * failed, in rsync's words (the caller reports it; each is a failed file, exit 23).
   */
  // rsync/xattrs.c: rsync_xal_set, set_xattr [xattr-set-local]
  apply(ndx: number, name: Buffer, basis: readonly XattrPair[] | null, generator: boolean): string[] {
    if (this.options.dryRun) return [];
    const s = this.setIndex(ndx);
    const set = s >= 0 ? this.sets.sets[s]! : [];
    const failed: string[] = [];
    const shown = name.toString();
    let here: XattrPair[] | null;
    try {
      here = this.read(name);
    } catch (e) {
      return [`rsync_xal_set: llistxattr("${shown}") failed: ${(e as Error).message}`];
    }
    const local = this.local!;
    if (!here) return [];
    const fromBasis = basis ?? here;
    for (const it of set) {
      let value = it.value;
      if (!value) {
        const kept = fromBasis.find((p) => p.name.equals(it.name));
        if (kept && kept.value.length === it.length && xattrDigest(kept.value).equals(it.digest!)) value = kept.value;
        else {
          if (!generator) failed.push(`Missing abbreviated xattr value, ${it.name.toString('latin1')}, for "${shown}"`);
          continue;
        }
        if (!generator) it.value = value; // the receiver keeps it for the next file with this set
      }
      const now = here.find((p) => p.name.equals(it.name));
      if (now && now.value.equals(value)) continue;
      try {
        local.set(name, it.name, value);
      } catch (e) {
        failed.push(`rsync_xal_set: lsetxattr("${shown}","${it.name.toString('latin1')}") failed: ${(e as Error).message}`);
      }
    }
    for (const p of here) {
      if (set.some((it) => it.name.equals(p.name))) continue;
      try {
        local.remove(name, p.name);
      } catch (e) {
        failed.push(`rsync_xal_set: lremovexattr("${shown}","${p.name.toString('latin1')}") failed: ${(e as Error).message}`);
      }
    }
    return failed;
  }
}
