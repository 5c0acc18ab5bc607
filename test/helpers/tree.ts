// Exact tree comparison for conformance tests: names (raw bytes), types, sizes, content, modes,
// mtimes (with nanoseconds), symlink targets, owners, device numbers and hard-link groups.
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { lstatSync, readdirSync, readFileSync, readlinkSync, type BigIntStats } from 'node:fs';
import { createHash } from 'node:crypto';

export interface NodeInfo {
  type: 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';
  mode: number;
  size: number;
  mtimeNs: bigint;
  uid: number;
  gid: number;
  content?: string;
  target?: string;
  rdev?: number;
  /** Index of this file's hard-link group (first path of the group, in sorted order), if nlink > 1. */
  linkGroup?: string;
}

export type Tree = Map<string, NodeInfo>;

function typeOf(st: BigIntStats): NodeInfo['type'] {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'chardev';
  return 'blockdev';
}

/** Every entry below `root` (not the root itself), keyed by its path as latin1 (raw bytes kept). */
export async function snapshot(root: string, options: { rootTimes?: boolean } = {}): Promise<Tree> {
  const tree: Tree = new Map();
  const inodes = new Map<string, string[]>();
  const walk = async (dir: Buffer, rel: string) => {
    for (const name of (await readdir(dir, { encoding: 'buffer' })).sort(Buffer.compare)) {
      const path = Buffer.concat([dir, Buffer.from('/'), name]);
      const key = rel + name.toString('latin1');
      const st = await lstat(path, { bigint: true });
      const info = nodeInfo(st);
      if (st.isFile()) info.content = createHash('sha256').update(await readFile(path)).digest('hex');
      if (st.isSymbolicLink()) info.target = ((await readlink(path, { encoding: 'buffer' })) as Buffer).toString('latin1');
      addNode(tree, inodes, key, st, info);
      if (st.isDirectory()) await walk(path, key + '/');
    }
  };
  await walk(Buffer.from(root), '');
  if (options.rootTimes) tree.set('.', nodeInfo(await lstat(root, { bigint: true })));
  return linkGroups(tree, inodes);
}

/**
 * snapshot with synchronous calls: several times faster for a tree of many thousands of files,
 * for a test that has nothing else running meanwhile (no daemon in the process mid-transfer).
 */
export function snapshotSync(root: string, options: { rootTimes?: boolean } = {}): Tree {
  const tree: Tree = new Map();
  const inodes = new Map<string, string[]>();
  const walk = (dir: Buffer, rel: string) => {
    for (const name of readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare)) {
      const path = Buffer.concat([dir, Buffer.from('/'), name]);
      const key = rel + name.toString('latin1');
      const st = lstatSync(path, { bigint: true });
      const info = nodeInfo(st);
      if (st.isFile()) info.content = createHash('sha256').update(readFileSync(path)).digest('hex');
      if (st.isSymbolicLink()) info.target = readlinkSync(path, { encoding: 'buffer' }).toString('latin1');
      addNode(tree, inodes, key, st, info);
      if (st.isDirectory()) walk(path, key + '/');
    }
  };
  walk(Buffer.from(root), '');
  if (options.rootTimes) tree.set('.', nodeInfo(lstatSync(root, { bigint: true })));
  return linkGroups(tree, inodes);
}

function nodeInfo(st: BigIntStats): NodeInfo {
  const info: NodeInfo = {
    type: typeOf(st),
    mode: Number(st.mode),
    size: st.isDirectory() ? 0 : Number(st.size),
    mtimeNs: st.mtimeNs,
    uid: Number(st.uid),
    gid: Number(st.gid),
  };
  if (st.isCharacterDevice() || st.isBlockDevice()) info.rdev = Number(st.rdev);
  return info;
}

function addNode(tree: Tree, inodes: Map<string, string[]>, key: string, st: BigIntStats, info: NodeInfo): void {
  if (!st.isDirectory() && st.nlink > 1n) {
    const ino = `${st.dev}:${st.ino}`;
    inodes.set(ino, [...(inodes.get(ino) ?? []), key]);
  }
  tree.set(key, info);
}

function linkGroups(tree: Tree, inodes: Map<string, string[]>): Tree {
  for (const paths of inodes.values()) {
    if (paths.length < 2) continue;
    const group = [...paths].sort()[0]!;
    for (const p of paths) tree.get(p)!.linkGroup = group;
  }
  return tree;
}

/** Differences between two trees, one line each (empty when identical). */
export function diffTrees(expected: Tree, actual: Tree, options: { ignore?: Array<keyof NodeInfo> } = {}): string[] {
  const ignore = new Set(options.ignore ?? []);
  const out: string[] = [];
  const show = (k: string) => JSON.stringify(k);
  for (const [key, want] of expected) {
    const got = actual.get(key);
    if (!got) {
      out.push(`missing ${show(key)} (${want.type})`);
      continue;
    }
    for (const field of Object.keys(want) as Array<keyof NodeInfo>) {
      if (ignore.has(field)) continue;
      if (String(want[field]) !== String(got[field])) out.push(`${show(key)}: ${field} ${String(want[field])} != ${String(got[field])}`);
    }
    for (const field of Object.keys(got) as Array<keyof NodeInfo>) {
      if (!(field in want) && !ignore.has(field)) out.push(`${show(key)}: unexpected ${field} ${String(got[field])}`);
    }
  }
  for (const key of actual.keys()) if (!expected.has(key)) out.push(`extra ${show(key)} (${actual.get(key)!.type})`);
  return out;
}

/**
 * Poll until `dst` equals `src` (compared as diffTrees does), or `timeoutMs` passes. Returns the
 * differences left: empty once the trees are equal. A snapshot failing because the daemon renamed
 * a temp file under us counts as "not yet".
 */
export async function untilSameTree(
  src: string,
  dst: string,
  options: { timeoutMs?: number; rootTimes?: boolean; ignore?: Array<keyof NodeInfo> } = {},
): Promise<string[]> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  const snap = { rootTimes: options.rootTimes ?? false };
  let diff: string[] = [];
  for (;;) {
    try {
      diff = diffTrees(await snapshot(src, snap), await snapshot(dst, snap), options.ignore ? { ignore: options.ignore } : {});
    } catch (e) {
      diff = [`snapshot failed: ${(e as Error).message}`];
    }
    if (diff.length === 0 || Date.now() > deadline) return diff;
    await new Promise((r) => setTimeout(r, 30));
  }
}
