// A destination in memory for the pull roles (a LocalTree without a file system): what the
// generator and the receiver do to it can be looked at directly; its `basis` trees are the basis
// directories (--compare-dest, --copy-dest, --link-dest). Used by pull-golden, generator and
// delete.
import type { LocalTree, LocalStat, BasisFile, TempFile } from '../../protocol/local-tree.js';
import type { FileEntry } from '../../protocol/flist.js';
import type { GeneratorOptions } from '../../protocol/generator.js';
import { CHMOD_BITS, S_IFDIR, S_IFLNK, S_IFMT } from '../../protocol/modes.js';

interface Node {
  stat: LocalStat;
  data?: Buffer;
}

/** A destination in memory: what the roles do to it, without a file system. */
/** -a as the captures ran it (-logDtpr), as root. */
export const ARCHIVE: GeneratorOptions = {
  perms: true,
  times: true,
  owner: true,
  group: true,
  links: true,
  hardLinks: false,
  checksum: false,
  wholeFile: false,
  dryRun: false,
  delete: false,
};

export class MemTree implements LocalTree {
  readonly nodes = new Map<string, Node>();
  /** The basis directories, index 0 first. */
  readonly basis: MemTree[] = [];
  private ino = 100n;

  /** The tree a basis-dir index names (this one without). */
  private at(basisDir?: number): MemTree | null {
    return basisDir === undefined ? this : (this.basis[basisDir] ?? null);
  }

  put(name: string, mode: number, mtime: number, data?: Buffer, symlink?: string): void {
    this.nodes.set(name, {
      stat: { mode, size: data?.length ?? symlink?.length ?? 4096, mtime, mtimeNsec: 0, uid: 0, gid: 0, dev: 1n, ino: this.ino++, ...(symlink && { symlink: Buffer.from(symlink) }) },
      ...(data && { data }),
    });
  }
  async lstat(name: Buffer, basisDir?: number): Promise<LocalStat | null> {
    const n = this.at(basisDir)?.nodes.get(name.toString('latin1'));
    return n ? { ...n.stat } : null;
  }
  async openBasis(name: Buffer, basisDir?: number): Promise<BasisFile | null> {
    const n = this.at(basisDir)?.nodes.get(name.toString('latin1'));
    if (!n?.data) return null;
    const data = n.data;
    return {
      size: data.length,
      chunks: () => [data],
      read: async (into, length, position) => {
        const piece = data.subarray(position, position + length);
        into.set(piece);
        return piece.length;
      },
      close: async () => {},
    };
  }
  async createTemp(name: Buffer): Promise<TempFile> {
    const parts: Buffer[] = [];
    return {
      write: async (b) => void parts.push(Buffer.from(b)),
      commit: async (entry: FileEntry) => this.put(name.toString('latin1'), entry.mode, entry.mtime, Buffer.concat(parts)),
      discard: async () => {},
    };
  }
  async mkdir(name: Buffer): Promise<void> {
    this.put(name.toString('latin1'), S_IFDIR | 0o700, 0);
  }
  async symlink(name: Buffer, target: Buffer): Promise<void> {
    this.put(name.toString('latin1'), S_IFLNK | 0o777, 0, undefined, target.toString('latin1'));
  }
  async link(name: Buffer, existing: Buffer, basisDir?: number): Promise<void> {
    const node = this.at(basisDir)?.nodes.get(existing.toString('latin1'));
    if (!node) throw new Error(`no ${existing.toString()} to link to`);
    this.nodes.set(name.toString('latin1'), node);
  }
  async remove(name: Buffer): Promise<void> {
    const key = name.toString('latin1');
    for (const k of [...this.nodes.keys()]) if (k === key || k.startsWith(key + '/')) this.nodes.delete(k);
  }
  async list(dir: Buffer, basisDir?: number): Promise<Buffer[]> {
    const prefix = dir.toString('latin1') === '.' ? '' : dir.toString('latin1') + '/';
    return [...(this.at(basisDir)?.nodes.keys() ?? [])].filter((k) => k !== '.' && k.startsWith(prefix) && !k.slice(prefix.length).includes('/')).map((k) => Buffer.from(k.slice(prefix.length), 'latin1'));
  }
  async setAttrs(name: Buffer, entry: FileEntry): Promise<void> {
    const n = this.nodes.get(name.toString('latin1'));
    if (!n) return;
    n.stat = { ...n.stat, mode: (n.stat.mode & S_IFMT) | (entry.mode & CHMOD_BITS), mtime: entry.mtime };
  }
}
