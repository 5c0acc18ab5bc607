// The local side of a push: walk SOURCE as rsync's sender does (lstat, never following
// symlinks), apply the filter rules, and produce file-list entries plus the local path of each.
// Counterpart: rsync flist.c send_file_list / send_directory / make_file.
import { lstat, readFile } from 'node:fs/promises';
import { constants, lstatSync, readdirSync, readlinkSync, openSync, fstatSync, readSync, closeSync, read } from 'node:fs';
import { promisify } from 'node:util';
import type { BigIntStats } from 'node:fs';
import { S_IFMT, S_IFDIR, S_IFLNK, S_IFREG, S_IFBLK, S_IFCHR, type FileEntry, type IdNames } from '../protocol/flist.js';
import { IOERR_GENERAL, IOERR_VANISHED, type SenderSource } from '../protocol/sender.js';
import type { TransferOptions } from '../protocol/args.js';
import { RsyncError, EXIT } from '../protocol/errors.js';
import type { ChunkSource } from '../protocol/sums.js';

/** A file-list entry and where it lives here. */
export interface LocalEntry extends FileEntry {
  localPath: Buffer;
}

/** The sender-side filter: true when a path (relative to the transfer root) is excluded. */
export interface PathFilter {
  isExcluded(relPath: Buffer, isDir: boolean): boolean;
  /** The filter for the entries of a directory kept (per-directory merge files apply below it). */
  enter?(relDir: Buffer): PathFilter;
}

export interface ScanOptions {
  transfer: TransferOptions;
  filter?: PathFilter;
  /** Messages for the user (vanished files, unreadable dirs, skipped specials). */
  onWarning?: (text: string) => void;
}

export interface ScanResult {
  entries: LocalEntry[];
  /** rsync io_error bits gathered while scanning (they travel in the file list's end marker). */
  ioError: number;
  userNames: Map<number, string>;
  groupNames: Map<number, string>;
}

const SLASH = 0x2f;
const MAX_NAME = 4096;

function join(dir: Buffer, name: Buffer): Buffer {
  if (dir.length === 0) return name;
  return Buffer.concat([dir, Buffer.from('/'), name]);
}

function entryFrom(name: Buffer, localPath: Buffer, st: BigIntStats): LocalEntry {
  const mode = Number(st.mode);
  const entry: LocalEntry = {
    name,
    localPath,
    mode,
    size: Number(st.size),
    mtime: Number(st.mtimeNs / 1_000_000_000n),
    mtimeNsec: Number(st.mtimeNs % 1_000_000_000n),
    uid: Number(st.uid),
    gid: Number(st.gid),
  };
  const type = mode & S_IFMT;
  if (type === S_IFBLK || type === S_IFCHR) {
    const rdev = Number(st.rdev);
    // Linux dev_t: major in bits 8-19 (and 32+), minor in bits 0-7 and 20-31.
    entry.rdev = { major: ((rdev >>> 8) & 0xfff) | Math.floor(rdev / 2 ** 32) & ~0xfff, minor: (rdev & 0xff) | ((rdev >>> 12) & ~0xff) };
  }
  if (type !== S_IFDIR && st.nlink > 1n) entry.hardlink = { dev: st.dev, ino: st.ino };
  return entry;
}

/** Parse /etc/passwd-style files into id → name. */
async function idNames(path: string): Promise<Map<number, string>> {
  const names = new Map<number, string>();
  const text = await readFile(path, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields.length < 3) continue;
    const id = Number(fields[2]);
    if (Number.isInteger(id) && !names.has(id)) names.set(id, fields[0]!);
  }
  return names;
}

/**
 * Walk SOURCE the way `rsync -r SOURCE dest` lists it: with a trailing slash the contents (the
 * root entry is "."), without one the directory itself under its own name.
 */
// rsync/flist.c: send_file_list
export async function scanSource(source: string, options: ScanOptions): Promise<ScanResult> {
  const { transfer } = options;
  const warn = options.onWarning ?? (() => {});
  const entries: LocalEntry[] = [];
  let ioError = 0;
  const contents = source.endsWith('/');
  const trimmed = source.replace(/\/+$/, '') || '/';
  const rootPath = Buffer.from(trimmed === '/' && contents ? '/' : trimmed);

  const rootStat = await lstat(contents ? Buffer.from(trimmed + '/') : rootPath, { bigint: true }).catch((e: Error) => {
    // rsync would send an empty list with io_error set (no deletions) and exit 23; we stop here.
    throw new RsyncError('ERR_RSYNC_SOURCE', `link_stat "${source}" failed: ${e.message}`, EXIT.PARTIAL);
  });
  let rootName: Buffer;
  if (contents && rootStat.isDirectory()) {
    rootName = Buffer.from('.');
  } else {
    const slash = rootPath.lastIndexOf(SLASH);
    rootName = slash === -1 ? rootPath : rootPath.subarray(slash + 1);
  }

  const wanted = (st: BigIntStats, rel: Buffer): boolean => {
    const type = Number(st.mode) & S_IFMT;
    if (type === S_IFREG || type === S_IFDIR) return true;
    if (type === S_IFLNK) {
      if (transfer.links) return true;
      warn(`skipping non-regular file "${rel.toString()}"`);
      return false;
    }
    if (transfer.devices) return true;
    warn(`skipping non-regular file "${rel.toString()}"`);
    return false;
  };

  const add = async (name: Buffer, localPath: Buffer, st: BigIntStats): Promise<void> => {
    const entry = entryFrom(name, localPath, st);
    if ((entry.mode & S_IFMT) === S_IFLNK) {
      try {
        entry.symlink = readlinkSync(localPath, { encoding: 'buffer' });
      } catch (e) {
        ioError |= (e as NodeJS.ErrnoException).code === 'ENOENT' ? IOERR_VANISHED : IOERR_GENERAL;
        warn(`readlink ${name.toString()} failed: ${(e as Error).message}`);
        return;
      }
    }
    entries.push(entry);
  };

  // rsync/flist.c: send_directory
  const walk = async (dirName: Buffer, dirPath: Buffer, filter: PathFilter | undefined): Promise<void> => {
    let names: Buffer[];
    try {
      // Synchronous: one system call each instead of a thread-pool round trip per file (the scan
      // is a tight loop of tiny calls; 20,000 awaited lstats cost several times more).
      names = readdirSync(dirPath, { encoding: 'buffer' });
    } catch (e) {
      ioError |= IOERR_GENERAL;
      warn(`opendir "${dirPath.toString()}" failed: ${(e as Error).message}`);
      return;
    }
    const subdirs: Array<[Buffer, Buffer]> = [];
    for (const base of names) {
      const name = dirName.equals(Buffer.from('.')) ? Buffer.from(base) : join(dirName, base);
      const localPath = join(dirPath, base);
      if (name.length >= MAX_NAME) {
        ioError |= IOERR_GENERAL;
        warn(`name too long: ${name.toString()}`);
        continue;
      }
      let st: BigIntStats;
      try {
        st = lstatSync(localPath, { bigint: true });
      } catch (e) {
        const vanished = (e as NodeJS.ErrnoException).code === 'ENOENT';
        ioError |= vanished ? IOERR_VANISHED : IOERR_GENERAL;
        warn(vanished ? `file has vanished: "${localPath.toString()}"` : `lstat ${localPath.toString()} failed: ${(e as Error).message}`);
        continue;
      }
      const isDir = st.isDirectory();
      if (filter?.isExcluded(name, isDir)) continue;
      if (!wanted(st, name)) continue;
      await add(name, localPath, st);
      if (isDir && transfer.recursive) subdirs.push([name, localPath]);
    }
    for (const [name, path] of subdirs) await walk(name, path, filter?.enter ? filter.enter(name) : filter);
  };

  if (!rootName.equals(Buffer.from('.')) && options.filter?.isExcluded(rootName, rootStat.isDirectory())) {
    return { entries, ioError, userNames: new Map(), groupNames: new Map() };
  }
  if (wanted(rootStat, rootName)) {
    await add(rootName, rootPath, rootStat);
    if (rootStat.isDirectory() && (transfer.recursive || contents)) {
      const rootFilter = !contents && options.filter?.enter ? options.filter.enter(rootName) : options.filter;
      await walk(rootName, contents ? Buffer.from(trimmed === '/' ? '' : trimmed) : rootPath, rootFilter);
    }
  }
  const named = (transfer.owner || transfer.group) && !transfer.numericIds;
  return {
    entries,
    ioError,
    userNames: named && transfer.owner ? await idNames('/etc/passwd') : new Map(),
    groupNames: named && transfer.group ? await idNames('/etc/group') : new Map(),
  };
}

/** Keep only the id names the list uses (rsync sends names of the ids it saw). */
export function namesFor(ids: Iterable<number>, names: Map<number, string>): IdNames {
  const used = new Map<number, string>();
  for (const id of ids) {
    const name = names.get(id);
    if (name !== undefined) used.set(id, name);
  }
  return used;
}

/** Files up to this size are read in one synchronous gulp (no thread-pool round trips). */
const SMALL_FILE = 1 << 20;

/** File contents for the sender, opened without following a symlink raced into place. */
export function localSource(): SenderSource {
  return {
    async open(entry) {
      const path = (entry as LocalEntry).localPath;
      const failed = (e: unknown) => {
        const code = (e as NodeJS.ErrnoException).code;
        const vanished = code === 'ENOENT' || code === 'ELOOP';
        return {
          error: vanished ? `file has vanished: "${path.toString()}"` : `send_files failed to open "${path.toString()}": ${(e as Error).message}`,
          vanished,
        };
      };
      let fd: number;
      try {
        fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      } catch (e) {
        return failed(e);
      }
      try {
        const st = fstatSync(fd);
        if (!st.isFile()) throw Object.assign(new Error('no longer a regular file'), { code: 'ENOENT' });
        if (st.size > SMALL_FILE) return readChunks(fd, []);
        // One read of the whole file (and one more byte, to notice growth since the fstat).
        const buf = Buffer.allocUnsafe(st.size + 1);
        let got = 0;
        for (let n = -1; n !== 0 && got < buf.length; got += n) n = readSync(fd, buf, got, buf.length - got, null);
        if (got <= st.size) {
          closeSync(fd);
          return [buf.subarray(0, got)];
        }
        // It grew meanwhile: stream the rest from the same descriptor.
        return readChunks(fd, [buf]);
      } catch (e) {
        closeSync(fd);
        return failed(e);
      }
    },
  };
}

const readFd = promisify(read);

/** `first` (already read), then the rest of `fd` in 1 MiB chunks; closes `fd` when done. */
async function* readChunks(fd: number, first: Buffer[]): ChunkSource & AsyncGenerator<Uint8Array> {
  // Read ahead: the next read is under way while the caller works on the current chunk, so disk
  // (or page-cache) time overlaps the block search instead of adding to it.
  const size = 1 << 20;
  const next = () => {
    const buf = Buffer.allocUnsafe(size);
    return readFd(fd, buf, 0, size, null).then(({ bytesRead }) => buf.subarray(0, bytesRead));
  };
  let pending: Promise<Buffer> | null = next();
  try {
    yield* first;
    while (pending) {
      const chunk: Buffer = await pending;
      if (chunk.length === 0) return;
      pending = next();
      yield chunk;
    }
  } finally {
    if (pending) await pending.catch(() => undefined);
    closeSync(fd);
  }
}
