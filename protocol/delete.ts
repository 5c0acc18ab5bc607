// Deletion on the receiving side (docs/protocol.md [pull-generate], [pull-phases]): with --delete
// the generator removes the local names of each directory the file list does not have (rsync's
// delete_during), and whatever is in the way of a new entry of another type (DEL_MAKE_ROOM);
// the counts travel as NDX_DEL_STATS (protocol >= 31). Pure like the rest of protocol/: all file
// access goes through the caller's `LocalTree`. Used by generator.ts (the deletion) and by the
// roles that read the counts (request.ts readNdxSkippingDelStats).
// Counterpart: rsync delete.c (delete_item, delete_dir_contents), generator.c delete_in_dir,
// main.c write_del_stats / read_del_stats.
import type { ByteReader, ByteWriter } from './io.js';
import { NDX_DEL_STATS, type DeleteStats } from './constants.js';
import { fileType, isDevice, isDir, S_IFLNK, S_IFREG } from './modes.js';
import type { ReceivedEntry } from './flist-recv.js';
import type { LocalStat, LocalTree } from './local-tree.js';

/** What deletion needs of the generator's state (a GeneratorState is one). */
/** The options deletion reads (the generator's options include them). */
export interface DeleteOptions {
  /** --delete: remove local files the list does not have. */
  delete: boolean;
  /** Local files the filter rules protect from --delete (excluded, without --delete-excluded). */
  isProtected?: (name: Buffer, isDir: boolean) => boolean;
  /** Each local deletion (directories end in '/'). */
  onDeleted?: (name: Buffer, isDir: boolean) => void;
  onWarning?: (text: string) => void;
}

export interface DeleteContext {
  readonly tree: LocalTree;
  readonly options: DeleteOptions;
  /** False with -n: nothing is removed, but what would go is still counted and reported (rsync's do_xfers). */
  readonly doXfers: boolean;
  /** The list's names per directory (namesByDir); empty without --delete. */
  readonly listed: ReadonlyMap<string, ReadonlySet<string>>;
  /** What was deleted, for NDX_DEL_STATS and --stats. */
  readonly deleted: DeleteStats;
  /** Entries that could not be created (rsync's "could not make way"): exit 23. */
  failed: number;
}

export function newDeleteStats(): DeleteStats {
  return { files: 0, dirs: 0, symlinks: 0, devices: 0, specials: 0 };
}

/** Last component and parent of a list name ('.' parent for top-level names). */
function splitName(name: Buffer): { dir: Buffer; base: Buffer } {
  const slash = name.lastIndexOf(0x2f);
  return slash < 0 ? { dir: Buffer.from('.'), base: name } : { dir: name.subarray(0, slash), base: name.subarray(slash + 1) };
}

function joinName(dir: Buffer, base: Buffer): Buffer {
  return dir.length === 1 && dir[0] === 0x2e ? Buffer.from(base) : Buffer.concat([dir, Buffer.from('/'), base]);
}

/**
 * The names of the list, per directory (latin1 keys), for --delete: rsync looks each local name
 * up in the sorted list whatever its type (flist_find_ignore_dirness); a map built once is simpler.
 * Cleared duplicates and the '.' entry are left out.
 */
export function namesByDir(files: readonly ReceivedEntry[]): Map<string, Set<string>> {
  const listed = new Map<string, Set<string>>();
  for (const e of files) {
    if (e.active === false) continue;
    if (e.name.length === 1 && e.name[0] === 0x2e) continue;
    const { dir, base } = splitName(e.name);
    const key = dir.toString('latin1');
    let set = listed.get(key);
    if (!set) listed.set(key, (set = new Set()));
    set.add(base.toString('latin1'));
  }
  return listed;
}

/**
 * Remove `name` (a directory with its contents first, last name first, each counted). The item
 * itself is counted and reported unless `makeRoom` (it only makes room for a new entry).
 */
// rsync/delete.c: delete_item (+ delete_dir_contents, which counts every content and drops DEL_MAKE_ROOM)
export async function deleteItem(ctx: DeleteContext, name: Buffer, st: LocalStat, makeRoom: boolean): Promise<void> {
  const dir = isDir(st.mode);
  if (dir) {
    const names = await ctx.tree.list(name);
    names.sort(Buffer.compare);
    for (let i = names.length - 1; i >= 0; i--) {
      const child = joinName(name, names[i]!);
      const cst = await ctx.tree.lstat(child);
      if (cst) await deleteItem(ctx, child, cst, false);
    }
  }
  if (ctx.doXfers) await ctx.tree.remove(name);
  if (makeRoom) return;
  const type = fileType(st.mode);
  if (dir) ctx.deleted.dirs++;
  else if (type === S_IFLNK) ctx.deleted.symlinks++;
  else if (type === S_IFREG) ctx.deleted.files++;
  else if (isDevice(st.mode)) ctx.deleted.devices++;
  else ctx.deleted.specials++;
  ctx.options.onDeleted?.(name, dir);
}

/**
 * Something of another type is in the way of a new entry (`what`: 'file', 'directory', ...):
 * remove it, uncounted. Without --delete rsync removes only an empty directory; false (and a
 * warning, exit 23) when a non-empty one stays.
 */
// rsync/delete.c: delete_item with DEL_MAKE_ROOM ("could not make way for new ...")
export async function makeRoom(ctx: DeleteContext, name: Buffer, st: LocalStat, what: string): Promise<boolean> {
  if (!ctx.doXfers) return true;
  if (isDir(st.mode) && !ctx.options.delete && (await ctx.tree.list(name)).length > 0) {
    ctx.options.onWarning?.(`could not make way for new ${what}: ${name.toString()}`);
    ctx.failed++;
    return false;
  }
  await deleteItem(ctx, name, st, true);
  return true;
}

/**
 * --delete in one directory of the list: every local name the list does not have goes (last
 * name first), except those the filter rules protect.
 */
// rsync/generator.c: delete_in_dir [pull-generate]
export async function deleteInDir(ctx: DeleteContext, dir: Buffer): Promise<void> {
  const keep = ctx.listed.get(dir.toString('latin1')) ?? new Set<string>();
  const names = await ctx.tree.list(dir);
  names.sort(Buffer.compare);
  for (let i = names.length - 1; i >= 0; i--) {
    const base = names[i]!;
    if (keep.has(base.toString('latin1'))) continue;
    const name = joinName(dir, base);
    const st = await ctx.tree.lstat(name);
    if (!st) continue;
    if (ctx.options.isProtected?.(name, isDir(st.mode))) continue;
    await deleteItem(ctx, name, st, false);
  }
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
