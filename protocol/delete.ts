// Deletion on the receiving side (docs/protocol.md [pull-generate], [pull-phases]): with --delete
// the generator removes the local names of each directory the file list does not have, at the
// time the mode says (rsync's --delete-before: a pass over the list before any transfer;
// --delete-during: as each directory is reached; --delete-delay: found then, removed after the
// transfer; --delete-after: a pass after it), and whatever is in the way of a new entry of
// another type (DEL_MAKE_ROOM). --max-delete stops it after N items, --ignore-errors lets it run
// when the sender had I/O errors, --force lets a non-empty directory make room without --delete.
// The counts travel as NDX_DEL_STATS (protocol >= 31). Pure like the rest of protocol/: all file
// access goes through the caller's `LocalTree`. Used by generator.ts (the deletion) and by the
// roles that read the counts (request.ts readNdxSkippingDelStats).
// Counterpart: rsync delete.c (delete_item, delete_dir_contents), generator.c delete_in_dir,
// do_delete_pass, remember_delete / do_delayed_deletions, main.c write_del_stats / read_del_stats.
import { shownName } from './terminal-text.js';
import type { DeleteWhen } from './args.js';
import type { ByteReader, ByteWriter } from './io.js';
import { IOERR_GENERAL, NDX_DEL_STATS, type DeleteStats } from './constants.js';
import { fileType, isDevice, isDir, S_IFLNK, S_IFREG } from './modes.js';
import { ReceivedList, type FileListView } from './received-list.js';
import { compareFileEntries, type FileEntry } from './flist.js';
import type { LocalStat, LocalTree } from './local-tree.js';


/** The options deletion reads (the generator's options include them). */
export interface DeleteOptions {
  /** --delete (or any --delete-WHEN, or --delete-excluded): remove local files the list does not have. */
  delete: boolean;
  /** When (default: rsync's choice for a bare --delete, 'during' from protocol 30, 'before' below). */
  deleteWhen?: DeleteWhen;
  /**
   * --max-delete=N: at most N items deleted (DEL_MAKE_ROOM removals not counted), the rest are
   * skipped with a warning and exit 25. Negative: no deletions (rsync turns it into 0).
   */
  maxDelete?: number;
  /** --force: a non-empty directory may make room for another type without --delete (and NDX_DEL_STATS goes). */
  force?: boolean;
  /** --ignore-errors: delete even when the sender's io_error has IOERR_GENERAL. */
  ignoreErrors?: boolean;
  /** The sender's io_error so far (its file list's, then MSG_IO_ERROR's): IOERR_GENERAL stops deletion. */
  ioError?: () => number;
  /** Local files the filter rules protect from --delete (excluded, without --delete-excluded). */
  isProtected?: (name: Buffer, isDir: boolean) => boolean;
  /** Each local deletion (directories end in '/'); `mode` is the deleted item's st_mode (rsync's log_delete takes it). */
  onDeleted?: (name: Buffer, isDir: boolean, mode: number) => void;
  onWarning?: (text: string) => void;
  /** rsync's FINFO texts ("IO error encountered -- skipping file deletion", "cannot delete non-empty directory: X"). */
  onInfo?: (text: string) => void;
}

/** What deletion needs of the generator's state (a GeneratorState is one). */
export interface DeleteContext {
  readonly tree: LocalTree;
  readonly options: DeleteOptions;
  /** False with -n: nothing is removed, but what would go is still counted and reported (rsync's do_xfers). */
  readonly doXfers: boolean;
  /** The list's names per directory (namesByDir); empty without --delete. */
  readonly listed: Pick<ReadonlyMap<string, ReadonlySet<string>>, 'get'>;
  /** What was deleted, for NDX_DEL_STATS and --stats. */
  readonly deleted: DeleteStats;
  /** Entries that could not be created (rsync's "could not make way"): exit 23. */
  failed: number;
  /** Deletions --max-delete held back (rsync's skipped_deletes). */
  skippedDeletes: number;
  /** The "IO error encountered" note was given (once a run). */
  ioErrorNoted: boolean;
  /** --delete-delay: what delete_in_dir found, removed after the transfer (rsync's delete-delay file). */
  readonly delayed: Array<{ name: Buffer; st: LocalStat }>;
  /** The protocol: local listings are walked in its file-list order (default 32). */
  readonly protocol?: number;
}

/**
 * A local directory's entries in rsync's file-list order (its get_dirlist sorts them like a file
 * list: from protocol 29 the non-directories first), each with its lstat; `skip`: names left out.
 */
// rsync/flist.c: get_dirlist (the sorted listing delete_in_dir and delete_dir_contents walk)
export async function sortedDirList(
  tree: LocalTree,
  dir: Buffer,
  protocol = 32,
  basisDir?: number,
  skip?: ReadonlySet<string>,
): Promise<Array<{ base: Buffer; name: Buffer; st: LocalStat }>> {
  const out: Array<{ base: Buffer; name: Buffer; st: LocalStat }> = [];
  for (const base of await tree.list(dir, basisDir)) {
    // Names the caller would pass over anyway (delete_in_dir: the listed ones) need no lstat.
    if (skip?.has(base.toString('latin1'))) continue;
    const name = joinName(dir, base);
    const st = await tree.lstat(name, basisDir);
    if (st) out.push({ base, name, st });
  }
  out.sort((a, b) => compareFileEntries({ name: a.base, mode: a.st.mode } as FileEntry, { name: b.base, mode: b.st.mode } as FileEntry, protocol));
  return out;
}

/** The deletion part of a fresh run's state. */
export function newDeleteContextFields(): Pick<DeleteContext, 'deleted' | 'failed' | 'skippedDeletes' | 'ioErrorNoted' | 'delayed'> {
  return { deleted: newDeleteStats(), failed: 0, skippedDeletes: 0, ioErrorNoted: false, delayed: [] };
}

/** The deletion mode in effect: --delete alone is --delete-during from protocol 30, --delete-before below. */
// rsync/compat.c: setup_protocol (the choice for a bare --delete)
export function deleteWhen(options: DeleteOptions, protocol = 32): DeleteWhen | null {
  if (!options.delete) return null;
  return options.deleteWhen ?? (protocol < 30 ? 'before' : 'during');
}

/** All items deleted so far (rsync's stats.deleted_files, which --max-delete compares with). */
function deletedTotal(d: DeleteStats): number {
  return d.files + d.dirs + d.symlinks + d.devices + d.specials;
}

export function newDeleteStats(): DeleteStats {
  return { files: 0, dirs: 0, symlinks: 0, devices: 0, specials: 0 };
}

function joinName(dir: Buffer, base: Buffer): Buffer {
  return dir.length === 1 && dir[0] === 0x2e ? Buffer.from(base) : Buffer.concat([dir, Buffer.from('/'), base]);
}

/**
 * The names of the list per directory (latin1 keys), for --delete: rsync looks each local name
 * up in the sorted list whatever its type (flist_find_ignore_dirness). Built once as the ndxs of
 * each directory's entries; a directory's set of names is made when deletion reaches it and
 * dropped after, so a big list keeps no string per entry. Cleared duplicates and '.' are left out.
 */
export class ListedNames implements Pick<ReadonlyMap<string, ReadonlySet<string>>, 'get' | 'has' | 'keys'> {
  private readonly byDir = new Map<string, number[]>();

  constructor(private readonly files: FileListView) {
    const packed = files instanceof ReceivedList ? files : null;
    for (let ndx = 0; ndx < files.length; ndx++) {
      let name: Buffer;
      if (packed) {
        if (!packed.isActive(ndx)) continue;
        name = packed.name(ndx);
      } else {
        const e = files.at(ndx)!;
        if (e.active === false) continue;
        name = e.name;
      }
      if (name.length === 1 && name[0] === 0x2e) continue;
      const slash = name.lastIndexOf(0x2f);
      const key = slash < 0 ? '.' : name.toString('latin1', 0, slash);
      const at = this.byDir.get(key);
      if (at) at.push(ndx);
      else this.byDir.set(key, [ndx]);
    }
  }

  has(dir: string): boolean {
    return this.byDir.has(dir);
  }

  keys(): MapIterator<string> {
    return this.byDir.keys();
  }

  /** The basenames the list has in `dir` (latin1), made now. */
  get(dir: string): Set<string> | undefined {
    const ndxs = this.byDir.get(dir);
    if (!ndxs) return undefined;
    const packed = this.files instanceof ReceivedList ? this.files : null;
    const names = new Set<string>();
    for (const ndx of ndxs) {
      const name = packed ? packed.name(ndx) : this.files.at(ndx)!.name;
      names.add(name.toString('latin1', name.lastIndexOf(0x2f) + 1));
    }
    return names;
  }
}

export function namesByDir(files: FileListView): ListedNames {
  return new ListedNames(files);
}

/**
 * Remove `name` (a directory with its contents first, last name first, each counted). The item
 * itself is counted and reported unless `makeRoom` (it only makes room for a new entry). Without
 * `recurse` a non-empty directory stays. Resolves false when the item stays (--max-delete reached
 * inside it or at it, or not empty): rsync's "cannot delete non-empty directory".
 */
// rsync/delete.c: delete_item (+ delete_dir_contents, which counts every content and drops DEL_MAKE_ROOM)
export async function deleteItem(ctx: DeleteContext, name: Buffer, st: LocalStat, makeRoom: boolean, recurse = true): Promise<boolean> {
  const dir = isDir(st.mode);
  if (dir) {
    let empty = true;
    if (!recurse) {
      empty = (await ctx.tree.list(name)).length === 0;
    } else {
      const children = await sortedDirList(ctx.tree, name, ctx.protocol);
      for (let i = children.length - 1; i >= 0; i--) {
        if (!(await deleteItem(ctx, children[i]!.name, children[i]!.st, false))) empty = false;
      }
    }
    if (!empty) {
      ctx.options.onInfo?.(`cannot delete non-empty directory: ${shownName(name)}`);
      return false;
    }
  }
  const limit = ctx.options.maxDelete;
  if (!makeRoom && limit !== undefined && deletedTotal(ctx.deleted) >= Math.max(0, limit)) {
    ctx.skippedDeletes++;
    return false;
  }
  if (ctx.doXfers) await ctx.tree.remove(name);
  if (makeRoom) return true;
  const type = fileType(st.mode);
  if (dir) ctx.deleted.dirs++;
  else if (type === S_IFLNK) ctx.deleted.symlinks++;
  else if (type === S_IFREG) ctx.deleted.files++;
  else if (isDevice(st.mode)) ctx.deleted.devices++;
  else ctx.deleted.specials++;
  ctx.options.onDeleted?.(name, dir, st.mode);
  return true;
}

/**
 * Something of another type is in the way of a new entry (`what`: 'file', 'directory', ...):
 * remove it, uncounted. Without --delete rsync removes only an empty directory; false (and a
 * warning, exit 23) when a non-empty one stays.
 */
// rsync/delete.c: delete_item with DEL_MAKE_ROOM ("could not make way for new ...")
export async function makeRoom(ctx: DeleteContext, name: Buffer, st: LocalStat, what: string): Promise<boolean> {
  if (!ctx.doXfers) return true;
  if (isDir(st.mode) && !ctx.options.delete && !ctx.options.force && (await ctx.tree.list(name)).length > 0) {
    ctx.options.onWarning?.(`could not make way for new ${what}: ${name.toString()}`);
    ctx.failed++;
    return false;
  }
  return deleteItem(ctx, name, st, true);
}

/**
 * --delete in one directory of the list: every local name the list does not have goes (last
 * name first), except those the filter rules protect; with --delete-delay they are only noted.
 * Nothing goes while the sender's io_error has IOERR_GENERAL, unless --ignore-errors.
 */
// rsync/generator.c: delete_in_dir [pull-generate]
export async function deleteInDir(ctx: DeleteContext, dir: Buffer): Promise<void> {
  if ((ctx.options.ioError?.() ?? 0) & IOERR_GENERAL && !ctx.options.ignoreErrors) {
    if (!ctx.ioErrorNoted) ctx.options.onInfo?.('IO error encountered -- skipping file deletion');
    ctx.ioErrorNoted = true;
    return;
  }
  const keep = ctx.listed.get(dir.toString('latin1')) ?? new Set<string>();
  const entries = await sortedDirList(ctx.tree, dir, ctx.protocol, undefined, keep);
  const delay = deleteWhen(ctx.options, ctx.protocol) === 'delay';
  for (let i = entries.length - 1; i >= 0; i--) {
    const { name, st } = entries[i]!;
    if (ctx.options.isProtected?.(name, isDir(st.mode))) continue;
    if (delay) ctx.delayed.push({ name, st });
    else await deleteItem(ctx, name, st, false);
  }
}

/** --delete-delay: what delete_in_dir noted during the transfer goes now, in the order found. */
// rsync/generator.c: do_delayed_deletions
export async function doDelayedDeletions(ctx: DeleteContext): Promise<void> {
  for (const { name, st } of ctx.delayed.splice(0)) {
    // The entry may have changed since it was noted (rsync deletes by the noted mode).
    const now = await ctx.tree.lstat(name);
    if (now && fileType(now.mode) === fileType(st.mode)) await deleteItem(ctx, name, now, false);
  }
}

/**
 * --delete-before and --delete-after: one pass over the list, deleting in each directory that is
 * one at the destination (a content directory of the list, not just named on its own).
 */
// rsync/generator.c: do_delete_pass
export async function doDeletePass(ctx: DeleteContext, files: FileListView): Promise<void> {
  for (let ndx = 0; ndx < files.length; ndx++) {
    const file = files.at(ndx)!;
    if (file.active === false || !isDir(file.mode) || file.contentDir === false) continue;
    const st = await ctx.tree.lstat(file.name);
    if (!st || !isDir(st.mode)) continue;
    await deleteInDir(ctx, file.name);
  }
}

/** --max-delete held deletions back: rsync's warning (its io_error gets IOERR_DEL_LIMIT, exit 25). */
// rsync/generator.c: generate_files (the max_delete warning)
export function maxDeleteWarning(skipped: number): string {
  return `Deletions stopped due to --max-delete limit (${skipped} skipped)`;
}

/** NDX_DEL_STATS and the five counts (protocol >= 31, with --delete). */
// rsync/main.c: write_del_stats [pull-phases]
export function writeDelStats(writer: ByteWriter, d: DeleteStats): void {
  writer.writeNdx(NDX_DEL_STATS);
  writer.writeVarint(d.files);
  writer.writeVarint(d.dirs);
  writer.writeVarint(d.symlinks);
  writer.writeVarint(d.devices);
  writer.writeVarint(d.specials);
}

/** The five counts after an NDX_DEL_STATS the reader has just read. */
// rsync/main.c: read_del_stats
export async function readDelStats(reader: ByteReader): Promise<DeleteStats> {
  return {
    files: await reader.readVarint(),
    dirs: await reader.readVarint(),
    symlinks: await reader.readVarint(),
    devices: await reader.readVarint(),
    specials: await reader.readVarint(),
  };
}
