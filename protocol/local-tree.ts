// The destination's file access, as the roles that write are given it (the generator, deletion,
// the receiver): an interface, so protocol/ does no fs itself. src/transfer/dest-tree.ts
// implements it for a local directory (a pull today; a module a client pushes into, for a daemon);
// the tests implement it in memory (test/helpers/memtree.ts).
import type { FileEntry } from './flist.js';
import type { ChunkSource } from './sums.js';

/** What the local tree says about one name (lstat; never follows a symlink). */
export interface LocalStat {
  mode: number;
  size: number;
  mtime: number;
  mtimeNsec: number;
  uid: number;
  gid: number;
  /** Identity, to tell whether two names are already the same hard-linked file. */
  dev: bigint;
  ino: bigint;
  /** Symlink target bytes (symlinks only). */
  symlink?: Buffer;
  /** Device numbers (block and character devices only). */
  rdev?: { major: number; minor: number };
}

/** A local file opened for reading (the basis of a delta), never through a symlink. */
export interface BasisFile {
  readonly size: number;
  /** The open descriptor, when there is one: lets a SumsHelper read the file from two threads. */
  readonly fd?: number;
  /** The whole file, streamed from offset 0. */
  chunks(): ChunkSource;
  /** Read `length` bytes at `position` into `into` (at 0); resolves to the bytes read. */
  read(into: Uint8Array, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

/** A temporary file next to its target, being rebuilt by the receiver. */
export interface TempFile {
  write(bytes: Uint8Array): Promise<void>;
  /** The descriptor, open for reading too (a SumsHelper hashes what is written), when there is one. */
  readonly fd?: number;
  /** Bytes written through to `fd` so far (the rest is still buffered). */
  readonly flushed?: number;
  /** Write out whatever is buffered. */
  flush?(): Promise<void>;
  /**
   * Append `length` bytes of the open file `fd` from `position` without reading them into this
   * process (the kernel copies them): resolves the bytes appended, fewer (0 too) where the kernel
   * cannot copy between the two files; the caller then writes the rest itself.
   */
  copyFrom?(fd: number, position: number, length: number): Promise<number>;
  /** Set the entry's attributes and rename it over the target (atomic). */
  commit(entry: FileEntry, how?: CommitOptions): Promise<void>;
  /** Remove it, leaving the target as it was. */
  discard(): Promise<void>;
  /**
   * --partial-dir: keep what is written as the file's partial copy (the partial dir made when
   * missing; the entry's attributes but not its mtime); false when there is no partial dir for it.
   * `finished` (--delay-updates: a verified file held back until the end) sets its mtime too.
   */
  keepPartial?(entry: FileEntry, how?: { finished?: boolean }): Promise<boolean>;
}

/**
 * How a temp file replaces its target when it is not simply done: --partial's "update retained"
 * (a file that failed verification kept as the file) leaves its mtime alone and makes no backup
 * when the target is already the kept attempt (rsync's negated make_backups on a redo).
 */
export interface CommitOptions {
  /** The mtime is not set (the file keeps the time it was written). */
  leaveMtime?: boolean;
  /** false: no backup of the target it replaces (default: -b's backup, when configured). */
  backup?: boolean;
}

/**
 * --inplace (and --append): the target itself, written at its offsets (created when missing).
 * Writes go straight to the file; `skip` moves past bytes that are already right. `commit` cuts
 * the file at the position reached and sets the entry's attributes (no rename); `discard` leaves
 * it as it is now, as rsync does.
 */
export interface InplaceFile extends TempFile {
  /**
   * Move the write position forward by `length` bytes without writing them. `bytes`, when given,
   * are those bytes (-S punches their runs of zeros into holes, as rsync's skip_matched does);
   * they are only read during the call.
   */
  skip(length: number, bytes?: Uint8Array): void;
}

/**
 * The hot methods of a tree may answer at once or later: a tree on the local file system answers
 * the generator's walk synchronously (no promise, no async frame per name of a big list), another
 * may return a promise. Callers `await` them, or take the value when it is not a promise.
 */
export type MaybePromise<T> = T | Promise<T>;

/**
 * The destination as the roles see it: names are the file list's (relative, '/'-separated raw
 * bytes; '.' is the destination itself). The implementation must refuse any name that would
 * leave the destination (a parent that is a symlink or not a directory) and never follow a
 * symlink in the final component.
 *
 * `basisDir` (where a method takes one) names the same list name under basis directory
 * `basisDir` (--compare-dest, --copy-dest, --link-dest: the tree's own list of them, index 0
 * first) instead of the destination: read-only, with the same confinement below that directory.
 * A tree without basis directories (or an index past them) answers null / [] there.
 */
export interface LocalTree {
  lstat(name: Buffer, basisDir?: number): MaybePromise<LocalStat | null>;
  /**
   * The generator's phase-0 lstat of a list name, in list order: the tree may answer from a
   * snapshot of the name's directory taken during this walk (the state a generator running ahead
   * of the receiver sees). Optional: without it `lstat` is used. `endListWalk` drops the snapshot.
   * `readDirNow`: more names of the same directory follow (the next one, or, for a directory,
   * its siblings after its tree): a hint to read the directory now.
   */
  lstatListed?(name: Buffer, readDirNow?: boolean): MaybePromise<LocalStat | null>;
  /** Before that walk: the list's directories in list order, which the tree may read ahead of it. */
  walkAhead?(dirs: Iterable<Buffer>): void;
  /** -K: the stat of the directory the symlink `name` leads to; null when it is no symlink to a directory. */
  statDirLink?(name: Buffer): Promise<LocalStat | null>;
  endListWalk?(): void;
  openBasis(name: Buffer, basisDir?: number): Promise<BasisFile | null>;
  createTemp(name: Buffer): Promise<TempFile>;
  /**
   * A file whose whole new data is `data` (no basis, nothing to keep on failure), put in place
   * with the entry's attributes as a temp file's commit would, perhaps later: the promise
   * resolves once the tree can take the next one. A failure surfaces at a later call or at
   * `settleCommits`: thrown when it ends the run (the data not written), else given to
   * `onFailed` in rsync's words (the file's alone: a temp file not made, a rename that failed).
   * Present only where the tree can do this (the addon, no -S, -b or -T).
   */
  commitWhole?(name: Buffer, entry: FileEntry, data: Buffer, onFailed: (text: string) => void): Promise<void>;
  /** Every file given to commitWhole is in place or told failed; a failure that ends the run is thrown. */
  settleCommits?(): Promise<void>;
  /** Wait for the files given to commitWhole, ignoring failures (a run that failed, before it ends). */
  quiesceCommits?(): Promise<void>;
  /**
   * --inplace with --backup: copy the file as it is now to its backup name (true), before it is
   * rewritten; false when there is nothing to copy.
   */
  backupCopy?(name: Buffer): Promise<boolean>;
  /** That backup copy, opened as a basis (null when missing). */
  openBackup?(name: Buffer): Promise<BasisFile | null>;
  /**
   * --inplace: open the target itself for writing (see InplaceFile). Optional: without it
   * --inplace is refused. `rewriteWhole` (-W): no part of the old data is kept.
   */
  openInplace?(name: Buffer, rewriteWhole?: boolean): Promise<InplaceFile>;
  /**
   * --no-implied-dirs: make the missing parent directories of `name` with the default mode (0777
   * less the umask) and no other attribute (rsync's make_path). Optional: without it nothing is made.
   */
  makeParents?(name: Buffer): Promise<void>;
  /** --partial-dir: the stat of the name's partial copy (a regular file in the partial dir), or null. */
  lstatPartial?(name: Buffer): Promise<LocalStat | null>;
  /** --partial-dir: the partial copy opened as a basis, or null. */
  openPartial?(name: Buffer): Promise<BasisFile | null>;
  /** --partial-dir: the partial copy removed (a relative partial dir too, once empty). */
  removePartial?(name: Buffer): Promise<void>;
  /**
   * --partial-dir with CF_INPLACE_PARTIAL_DIR: the partial copy written in place; `commit` moves
   * it over the target, `discard` leaves it in the partial dir.
   */
  openPartialInplace?(name: Buffer): Promise<InplaceFile>;
  /**
   * --delay-updates: the verified copy held back in the partial dir renamed over the target (its
   * backup kept first with -b), the partial dir removed once empty. Throws what rename(2) throws.
   */
  finishDelayed?(name: Buffer): Promise<void>;
  /** A new directory, owner-writable until `setAttrs` gives it its final mode. */
  mkdir(name: Buffer, entry: FileEntry): Promise<void>;
  /** Replace whatever is at `name` with a symlink (atomically). */
  symlink(name: Buffer, target: Buffer): Promise<void>;
  /**
   * Replace whatever is at `name` with a device, fifo or socket of the entry's type and rdev
   * (atomically). Optional: without it such entries are skipped with a warning.
   */
  mknod?(name: Buffer, entry: FileEntry): Promise<void>;
  /**
   * Replace whatever is at `name` with a hard link to `existing` (atomically); with `basisDir`,
   * to `existing` in that basis directory (--link-dest).
   */
  link(name: Buffer, existing: Buffer, basisDir?: number): Promise<void>;
  /** Remove a non-directory, or a directory with all its contents. */
  remove(name: Buffer): Promise<void>;
  /** The names in a local directory (basenames); with `basisDir`, in that basis directory (-yy). */
  list(dir: Buffer, basisDir?: number): Promise<Buffer[]>;
  /** Mode, times and owner as the options say (the tree knows -p/-t/-o/-g). */
  setAttrs(name: Buffer, entry: FileEntry, st: LocalStat | null): MaybePromise<void>;
}
