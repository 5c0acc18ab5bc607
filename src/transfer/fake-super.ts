// --fake-super (a module's `fake super = yes`): what the receiving side cannot apply without root
// — the owner, the group, the set-id and sticky bits, a device's numbers, a symlink, a fifo — is
// kept in the file's `user.rsync.%stat` xattr ("%o %d,%d %d:%d": mode, rdev major,minor, uid:gid,
// as rsync writes it), and the file itself is written as the daemon's user: a regular file with
// the permissions plus owner read/write (a directory: plus owner rwx), a device or special an empty
// regular file, a symlink a regular file holding its target (Linux keeps no user.* xattr on a
// symlink). Sending, the record is read back, so a pull gets the originals. docs/serve.md
// "fake super". Counterpart: rsync xattrs.c set_stat_xattr, get_stat_xattr, x_lstat; rsync.c
// set_file_attrs (am_root < 0); syscall.c do_mknod, do_symlink, do_readlink (am_root < 0).
import { closeSync, constants, lstatSync, openSync, readSync, chmodSync } from 'node:fs';
import { EXIT, RsyncError, UsageError } from '../../protocol/errors.js';
import type { FileEntry } from '../../protocol/flist.js';
import { PACKED_DROPPED, type PackedFileList } from '../../protocol/flist-packed.js';
import type { BasisFile, InplaceFile, LocalStat, LocalTree, TempFile, CommitOptions } from '../../protocol/local-tree.js';
import { ACCESSPERMS, CHMOD_BITS, S_IFDIR, S_IFMT, S_IFREG, isDevice, isDir, isLink, isReg, isSpecial, type DevNumbers } from '../../protocol/modes.js';
import { MAXPATHLEN } from '../../protocol/constants.js';
import { xattrCalls, type XattrCalls } from '../addon.js';
import type { DestTree } from './dest-tree.js';
import { shownName } from './output.js';

/** rsync's XSTAT_ATTR (Linux: the user namespace). */
export const XSTAT_ATTR = Buffer.from('user.rsync.%stat');
/** The --fake-super names rsync hides from -X (the stat record and the two ACL records). */
export const FAKE_SUPER_NAMES: readonly Buffer[] = [XSTAT_ATTR, Buffer.from('user.rsync.%aacl'), Buffer.from('user.rsync.%dacl')];
/** rsync reads the record into a 256-byte buffer: a longer one is ERANGE there, corrupt here. */
const MAX_RECORD = 255;

/** What a `user.rsync.%stat` record holds. */
export interface StatRecord {
  mode: number;
  rdev: DevNumbers;
  uid: number;
  gid: number;
}

/** A record that does not parse (rsync: "Corrupt ... xattr attached to ...", exit 11). */
// The record's bytes go as they are (a client escapes what it prints, as rsync's rwrite does).
export class CorruptStatRecordError extends RsyncError {
  constructor(shown: string, record: Buffer) {
    super('ERR_RSYNC_FAKE_SUPER_RECORD', `Corrupt ${XSTAT_ATTR.toString()} xattr attached to ${shown}: "${record.toString()}"`, EXIT.FILEIO);
  }
}

/** The record's text, as rsync's snprintf("%o %u,%u %u:%u") writes it (Linux's wire mode is the mode). */
// rsync/xattrs.c: set_stat_xattr (the record)
export function formatStatRecord(r: StatRecord): Buffer {
  return Buffer.from(`${r.mode.toString(8)} ${r.rdev.major},${r.rdev.minor} ${r.uid}:${r.gid}`);
}

const RECORD = /^\s*([0-7]+)\s+(-?\d+)\s*,\s*(-?\d+)\s+(-?\d+)\s*:\s*(-?\d+)/;

/** A record read back: rsync's sscanf("%o %d,%d %d:%d"); null when it does not parse. */
// rsync/xattrs.c: get_stat_xattr (the sscanf)
export function parseStatRecord(bytes: Buffer): StatRecord | null {
  if (bytes.length > MAX_RECORD) return null;
  const m = RECORD.exec(bytes.toString('latin1'));
  if (!m) return null;
  const n = m.slice(1).map((s, k) => (k === 0 ? parseInt(s, 8) : Number(s)));
  if (n.some((v) => !Number.isSafeInteger(v)) || n[0]! > 0xffffffff) return null;
  // %d into an int, then stored as ids and dev numbers (unsigned): -1 is 4294967295, as in C.
  const u32 = (v: number) => v >>> 0;
  return { mode: n[0]!, rdev: { major: u32(n[1]!), minor: u32(n[2]!) }, uid: u32(n[3]!), gid: u32(n[4]!) };
}

/** The record of the file at `path` (never through a final symlink), or null when it has none. */
function readRecord(calls: XattrCalls, path: Buffer, shown: () => string): StatRecord | null {
  let bytes: Buffer | null;
  try {
    bytes = calls.get(path, XSTAT_ATTR);
  } catch (e) {
    // rsync: ENOTSUP and ENOATTR mean no record.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENODATA') return null;
    throw e;
  }
  if (!bytes) return null;
  const record = parseStatRecord(bytes);
  if (!record) throw new CorruptStatRecordError(shown(), bytes);
  return record;
}

/** A fake symlink's target: the regular file's contents (at most MAXPATHLEN bytes), never through a symlink. */
// rsync/syscall.c: do_readlink (am_root < 0)
function readFakeLink(path: Buffer): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const buf = Buffer.alloc(MAXPATHLEN);
    let got = 0;
    for (let n; got < buf.length && (n = readSync(fd, buf, got, buf.length - got, null)) > 0; ) got += n;
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** The addon's xattr calls, or the error that says fake super cannot work here. */
function requireCalls(): XattrCalls {
  const calls = xattrCalls();
  if (!calls) throw new RsyncError('ERR_RSYNC_FAKE_SUPER', '--fake-super needs the native addon for extended attributes (run `npm rebuild lsyncd`)', EXIT.UNSUPPORTED);
  return calls;
}

/** Whether rsync looks for a record on a file of this (on-disk) type: not on a real device or special. */
const mayHoldRecord = (mode: number) => !isDevice(mode) && !isSpecial(mode);

/**
 * The sender's list with each stored record folded in (as rsync's make_file takes x_lstat's stat):
 * mode, owner, group, device numbers; a fake symlink's target read from the file. A device or
 * special is then left out without -D, as the walk leaves out real ones.
 */
// rsync/xattrs.c: x_lstat, get_stat_xattr (as flist.c make_file calls them)
export function foldStatRecords(
  list: PackedFileList,
  transfer: { devices?: boolean },
  onWarning: (text: string) => void,
  shown: (name: Buffer, i: number) => string = (name) => `"${shownName(name)}"`,
): void {
  const calls = requireCalls();
  for (let i = 0; i < list.count; i++) {
    const disk = list.mode[i]!;
    if (!mayHoldRecord(disk) || isLink(disk) || list.flags[i]! & PACKED_DROPPED) continue;
    const path = list.localPath(i);
    const record = readRecord(calls, path, () => shown(list.name(i), i));
    if (!record) continue;
    list.mode[i] = record.mode;
    list.uid[i] = record.uid;
    list.gid[i] = record.gid;
    if (isDevice(record.mode)) list.rdevs.set(i, record.rdev);
    else list.rdevs.delete(i);
    if (isLink(record.mode) && isReg(disk)) {
      const target = readFakeLink(path);
      list.symlinks.set(i, target);
      list.size[i] = target.length;
    }
    if ((isDevice(record.mode) || isSpecial(record.mode)) && !transfer.devices) {
      onWarning(`skipping non-regular file "${shownName(list.name(i))}"`);
      list.setFlag(i, PACKED_DROPPED, true);
    }
  }
}

/**
 * A sending client's --fake-super (our push): -XX conflicts with it, as in rsync; -A under it is
 * refused by name, since rsync's sender would read the ACLs from the user.rsync.%aacl/%dacl
 * records, which we do not read (the stat records only).
 */
// rsync/options.c: parse_arguments ("--fake-super conflicts with -XX")
export function checkSendingFakeSuper(transfer: { xattrs?: number; acls?: boolean }): void {
  if ((transfer.xattrs ?? 0) > 1) throw new UsageError('--fake-super conflicts with -XX');
  if (transfer.acls) throw new UsageError('--fake-super with -A/--acls: not supported on a push (the ACL records, user.rsync.%aacl/%dacl, are not read)');
}

/** What a fake-super receiver needs beyond the tree: the options that decide the stored mode and ids. */
export interface FakeSuperOptions {
  perms: boolean;
  owner: boolean;
  group: boolean;
  /** The module's `incoming chmod` (rsync applies it to the mode it stores). */
  tweakMode?: (mode: number) => number;
  /** A name as an error shows it (a daemon: rsync's full_fname, `"/dir/name" (in module)`). */
  shown?: (name: Buffer) => string;
}

/**
 * The destination as a fake-super receiver sees it: a DestTree (which sets no owner or group) with
 * each stat folded from the stored record, and each item's record written after its attributes.
 */
export class FakeSuperTree implements LocalTree {
  private readonly calls: XattrCalls;

  constructor(
    private readonly inner: DestTree,
    private readonly options: FakeSuperOptions,
  ) {
    this.calls = requireCalls();
  }

  /** A name as the record's error shows it. */
  private shown(name: Buffer): string {
    return this.options.shown ? this.options.shown(name) : `"${shownName(name)}"`;
  }

  /** The on-disk entry for an item: a directory or a regular file, with the owner's access added. */
  // rsync/xattrs.c: set_stat_xattr ("Dump the special permissions and enable full owner access")
  private diskEntry(entry: FileEntry): FileEntry {
    const dir = isDir(entry.mode);
    const mode = (dir ? S_IFDIR : S_IFREG) | (entry.mode & ACCESSPERMS) | (dir ? 0o700 : 0o600);
    const { symlink: _s, rdev: _r, ...rest } = entry;
    return { ...rest, mode };
  }

  /** An lstat with the stored record folded in (rsync's x_lstat). */
  private fold(name: Buffer, st: LocalStat | null): LocalStat | null {
    if (!st || isLink(st.mode) || !mayHoldRecord(st.mode)) return st;
    const path = this.inner.xattrPath(name);
    if (!path) return st;
    const record = readRecord(this.calls, path, () => this.shown(name));
    if (!record) return st;
    const { rdev: _r, symlink: _s, ...rest } = st;
    const folded: LocalStat = { ...rest, mode: record.mode, uid: record.uid, gid: record.gid };
    if (isDevice(record.mode)) folded.rdev = record.rdev;
    if (isLink(record.mode) && isReg(st.mode)) folded.symlink = readFakeLink(path);
    return folded;
  }

  /** Write (or drop) the item's record after its attributes are set, as rsync's set_file_attrs does. */
  // rsync/xattrs.c: set_stat_xattr
  private storeRecord(name: Buffer, entry: FileEntry): void {
    const path = this.inner.xattrPath(name);
    if (!path) return;
    const disk = lstatSync(path, { throwIfNoEntry: false });
    if (!disk || disk.isSymbolicLink()) return; // Linux keeps no user.* xattr on a symlink (rsync ignores the EPERM)
    let wanted = this.options.perms ? entry.mode & CHMOD_BITS : disk.mode & CHMOD_BITS;
    if (this.options.tweakMode && !isLink(entry.mode)) wanted = this.options.tweakMode(wanted) & CHMOD_BITS;
    const fmode = (entry.mode & S_IFMT) | wanted;
    const rdev = isDevice(entry.mode) ? (entry.rdev ?? { major: 0, minor: 0 }) : { major: 0, minor: 0 };
    const diskType = disk.mode & S_IFMT;
    const mode = diskType | (fmode & ACCESSPERMS) | (diskType === S_IFDIR ? 0o700 : 0o600);
    if ((disk.mode & (S_IFMT | CHMOD_BITS)) !== mode) chmodSync(path, mode & CHMOD_BITS);
    const uid = this.options.owner ? entry.uid : disk.uid;
    const gid = this.options.group ? entry.gid : disk.gid;
    const stored = readRecord(this.calls, path, () => this.shown(name));
    if (mode === fmode && uid === disk.uid && gid === disk.gid && rdev.major === 0 && rdev.minor === 0 && !disk.isBlockDevice() && !disk.isCharacterDevice()) {
      if (stored) this.calls.remove(path, XSTAT_ATTR);
      return;
    }
    const record: StatRecord = { mode: fmode, rdev, uid, gid };
    if (stored && formatStatRecord(stored).equals(formatStatRecord(record))) return;
    this.calls.set(path, XSTAT_ATTR, formatStatRecord(record));
  }

  /** A temp or in-place file whose commit writes the disk mode, then the record. */
  private wrap<T extends TempFile>(name: Buffer, file: T): T {
    const commit = file.commit.bind(file);
    const keepPartial = file.keepPartial?.bind(file);
    return Object.assign(Object.create(file) as T, {
      commit: async (entry: FileEntry, how?: CommitOptions) => {
        await commit(this.diskEntry(entry), how);
        this.storeRecord(name, entry);
      },
      ...(keepPartial && { keepPartial: (entry: FileEntry) => keepPartial(this.diskEntry(entry)) }),
    });
  }

  /** An empty regular file (mode 0600) in place of whatever is at `name`, holding `contents`. */
  // rsync/syscall.c: do_mknod, do_symlink (am_root < 0)
  private async placeholder(name: Buffer, contents: Buffer | null, like: FileEntry | null): Promise<void> {
    const temp = await this.inner.createTemp(name);
    try {
      if (contents) await temp.write(contents);
      const now = Math.floor(Date.now() / 1000);
      await temp.commit(like ? { ...this.diskEntry(like), mode: S_IFREG | 0o600 } : { name, mode: S_IFREG | 0o600, size: contents?.length ?? 0, mtime: now, uid: 0, gid: 0 });
    } catch (e) {
      await temp.discard();
      throw e;
    }
  }

  async lstat(name: Buffer, basisDir?: number): Promise<LocalStat | null> {
    const st = await this.inner.lstat(name, basisDir);
    // A basis directory's files are compared as they are on disk (their records are not read).
    return basisDir === undefined ? this.fold(name, st) : st;
  }
  async lstatListed(name: Buffer, readDirNow?: boolean): Promise<LocalStat | null> {
    return this.fold(name, await this.inner.lstatListed(name, readDirNow));
  }
  walkAhead(dirs: Iterable<Buffer>): void {
    this.inner.walkAhead(dirs);
  }
  endListWalk(): void {
    this.inner.endListWalk();
  }
  openBasis(name: Buffer, basisDir?: number): Promise<BasisFile | null> {
    return this.inner.openBasis(name, basisDir);
  }
  async createTemp(name: Buffer): Promise<TempFile> {
    return this.wrap(name, await this.inner.createTemp(name));
  }
  backupCopy(name: Buffer): Promise<boolean> {
    return this.inner.backupCopy(name);
  }
  openBackup(name: Buffer): Promise<BasisFile | null> {
    return this.inner.openBackup(name);
  }
  async openInplace(name: Buffer, rewriteWhole?: boolean): Promise<InplaceFile> {
    return this.wrap(name, await this.inner.openInplace(name, rewriteWhole));
  }
  makeParents(name: Buffer): Promise<void> {
    return this.inner.makeParents(name);
  }
  lstatPartial(name: Buffer): Promise<LocalStat | null> {
    return this.inner.lstatPartial(name);
  }
  openPartial(name: Buffer): Promise<BasisFile | null> {
    return this.inner.openPartial(name);
  }
  removePartial(name: Buffer): Promise<void> {
    return this.inner.removePartial(name);
  }
  async openPartialInplace(name: Buffer): Promise<InplaceFile> {
    return this.wrap(name, await this.inner.openPartialInplace(name));
  }
  mkdir(name: Buffer, entry: FileEntry): Promise<void> {
    return this.inner.mkdir(name, this.diskEntry(entry));
  }
  symlink(name: Buffer, target: Buffer): Promise<void> {
    return this.placeholder(name, target, null);
  }
  mknod(name: Buffer, entry: FileEntry): Promise<void> {
    return this.placeholder(name, null, entry);
  }
  link(name: Buffer, existing: Buffer, basisDir?: number): Promise<void> {
    return this.inner.link(name, existing, basisDir);
  }
  remove(name: Buffer): Promise<void> {
    return this.inner.remove(name);
  }
  list(dir: Buffer, basisDir?: number): Promise<Buffer[]> {
    return this.inner.list(dir, basisDir);
  }
  async setAttrs(name: Buffer, entry: FileEntry, _st: LocalStat | null): Promise<void> {
    // The folded stat is not what is on disk: the tree takes its own.
    await this.inner.setAttrs(name, this.diskEntry(entry), null);
    this.storeRecord(name, entry);
  }
}

/** Whether an xattr name is one of rsync's fake-super records (hidden from -X under fake super). */
// rsync/xattrs.c: rsync_xal_get, rsync_xal_set (am_root < 0)
export function isFakeSuperName(name: Buffer): boolean {
  return FAKE_SUPER_NAMES.some((n) => n.equals(name));
}

/**
 * -X's options under fake super: -XX taken as -X, and only the user namespace managed (rsync's
 * am_root = -1, whatever the daemon's real uid).
 */
// rsync/clientserver.c: rsync_module (lp_fake_super: preserve_xattrs > 1 becomes 1, am_root = -1)
export function fakeSuperXattrOptions<T extends { level: number; amRoot: boolean }>(options: T | null, fakeSuper: boolean): T | null {
  if (!options || !fakeSuper) return options;
  return { ...options, level: Math.min(options.level, 1), amRoot: false };
}
