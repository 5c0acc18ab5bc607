// The live mirror's restart state: a journal of what each push brought each target to (the state
// file, state-file.ts), and the startup that compares the tree with it (`startup: 'changed'`) to
// push only what differs. docs/live.md, "Restart state"; counterpart: none (lsyncd 2 resyncs all).
import { closeSync, fdatasyncSync, openSync, writeSync, mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { homedir } from 'node:os';
import { S_IFDIR, S_IFMT, S_IFLNK } from '../../protocol/modes.js';
import { pathFromBytes, pathToBytes } from '../watcher/index.js';
import { RecordWriter, MirroredState, encodeHeader, encodeSnapshot, readStateFile, writeFileDurably, StateFileError, type StateIdentity, type StateRecord } from './state-file.js';
import { parentOf, type PendingEntry, type PushRoot } from './plan.js';
import type { LocalEntry } from '../transfer/scan.js';
import type { FilterList } from '../../protocol/filter.js';
import type { TransferOptions } from '../../protocol/args.js';
import type { LogFn } from './runner.js';

/** How the live mirror starts: compare everything, only what differs from the state file, or nothing. */
export type StartupMode = 'full' | 'changed' | 'none';

/** How often appended records are made durable (fdatasync), ms. */
export const STATE_SYNC_MS = 2000;
/** The journal is folded into a fresh snapshot once it outgrows the snapshot (and this). */
export const COMPACT_MIN_BYTES = 1 << 20;

/** Transfer options that change only what is shown, not what is listed or sent. */
const SHOWN_ONLY: ReadonlySet<string> = new Set(['verbose', 'itemize', 'stats', 'timeout', 'dryRun', 'humanReadable', 'progress', 'info', 'quiet']);

function digest(value: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v)))
    .digest('hex');
}

/** Which sync a state file is for: the source, the targets, the filter rules, what is transferred. */
export function stateIdentity(source: string, targets: readonly string[], transfer: TransferOptions, filterList: FilterList | undefined): StateIdentity {
  const shaping = Object.fromEntries(
    Object.entries(transfer)
      .filter(([k, v]) => !SHOWN_ONLY.has(k) && v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
  return { source, targets: [...targets], filters: digest(filterList?.rules ?? []), transfer: digest(shaping) };
}

/**
 * Where the state of a sync lives when none is given: $XDG_STATE_HOME/lsyncd/ (else
 * ~/.local/state/lsyncd/; /var/lib/lsyncd/ for root), one file per source and targets.
 */
export function defaultStatePath(source: string, targets: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME ? join(env.XDG_STATE_HOME, 'lsyncd') : process.getuid?.() === 0 ? '/var/lib/lsyncd' : join(homedir(), '.local', 'state', 'lsyncd');
  const key = createHash('sha256').update([resolve(source), ...targets].join('\n')).digest('hex').slice(0, 16);
  const name = source.replace(/\/+$/, '').split('/').pop() || 'root';
  return join(base, `${name.replace(/[^A-Za-z0-9._-]/g, '_')}-${key}.state`);
}

/** A record of what was listed for one entry. */
function recordOf(e: LocalEntry): StateRecord {
  return { mode: e.mode, size: e.size, mtime: e.mtime, nsec: e.mtimeNsec ?? 0, ino: e.ino ?? 0, uid: e.uid, gid: e.gid, ...(e.symlink && { symlink: e.symlink }) };
}

/** Whether the tree's entry differs from what the target was brought to. */
function differs(r: StateRecord, e: LocalEntry): boolean {
  if (r.mode !== e.mode || r.mtime !== e.mtime || r.nsec !== (e.mtimeNsec ?? 0) || r.uid !== e.uid || r.gid !== e.gid) return true;
  const type = e.mode & S_IFMT;
  if (type === S_IFDIR) return false; // a directory's size is the file system's business; its entries are compared one by one
  if (r.size !== e.size || r.ino !== (e.ino ?? 0)) return true;
  return type === S_IFLNK && !(r.symlink ?? Buffer.alloc(0)).equals(e.symlink ?? Buffer.alloc(0));
}

const DOT = Buffer.from('.');
const keyOf = (name: Buffer) => (name.equals(DOT) ? '' : name.toString('latin1'));
const parentKey = (key: string) => parentOf(key);

/**
 * What to push at a `changed` startup for one target: entries of the tree (a scan of the whole
 * source) that are new or differ from the state (a new directory once, with its subtree), the
 * state's paths gone from the tree (topmost only; only when the mirror deletes), and the paths
 * whose push was begun and not seen through. Paths in the watcher's form, ready for PendingSet.
 */
export function startupChanges(state: MirroredState, scanned: Iterable<LocalEntry>, deletes: boolean): Array<[string, PendingEntry]> {
  const out: Array<[string, PendingEntry]> = [];
  const seen = new Set<StateRecord>();
  const newDirs = new Set<string>();
  for (const e of scanned) {
    const key = keyOf(e.name);
    const isDir = (e.mode & S_IFMT) === S_IFDIR;
    const r = state.get(key);
    if (r) seen.add(r);
    if (key !== '' && newDirs.has(parentKey(key))) {
      if (isDir) newDirs.add(key); // inside a new directory: pushed with it
      continue;
    }
    if (!r || (r.mode & S_IFMT) !== (e.mode & S_IFMT) || (isDir && r.ino !== (e.ino ?? 0))) {
      if (isDir) newDirs.add(key);
      out.push([pathFromBytes(e.name.equals(DOT) ? Buffer.alloc(0) : e.name), { kind: isDir ? 'rescan' : 'create', isDir }]);
    } else if (differs(r, e)) {
      out.push([pathFromBytes(e.name.equals(DOT) ? Buffer.alloc(0) : e.name), { kind: 'modify', isDir }]);
    }
  }
  if (deletes) {
    const gone = new Set<string>();
    state.forEach((key, r) => {
      if (seen.has(r) || key === '') return;
      gone.add(key);
      if (gone.has(parentKey(key))) return; // its directory's deletion takes it along
      out.push([pathFromBytes(Buffer.from(key, 'latin1')), { kind: 'delete', isDir: (r.mode & S_IFMT) === S_IFDIR }]);
    });
  }
  for (const [key, entry] of state.unsure) out.push([pathFromBytes(Buffer.from(key, 'latin1')), entry]);
  return out;
}

/** What a target's runner tells the state: a push begun for these paths; a root pushed. */
export interface PushRecorder {
  begun(taken: ReadonlyMap<string, PendingEntry>): void;
  /** `deletes`: the push deleted what it did not list (else the mirror keeps what the state knew). */
  pushed(root: PushRoot, entries: readonly LocalEntry[], deletes: boolean): void;
}

/**
 * The state file of one sync, kept as a journal: each batch's records are appended (written at
 * once, made durable every STATE_SYNC_MS and at close), and folded into a fresh snapshot at
 * close and whenever the journal outgrows the snapshot.
 */
export class StateJournal {
  private fd: number | undefined;
  private snapshotBytes = 0;
  private journalBytes = 0;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private failed = false;

  private constructor(
    readonly path: string,
    private readonly identity: StateIdentity,
    private readonly log: LogFn,
  ) {}

  /**
   * Open the state file: its targets' states when it is whole and this sync's (`keep`), else a
   * fresh file (and the reason the old one is not used), or none unless `fresh`.
   */
  static open(path: string, identity: StateIdentity, log: LogFn, keep: boolean, fresh = true): { journal?: StateJournal; loaded?: MirroredState[]; reason?: string } {
    const journal = new StateJournal(path, identity, log);
    let loaded: MirroredState[] | undefined;
    let reason: string | undefined;
    if (keep) {
      try {
        const read = readStateFile(path, identity);
        loaded = read.targets;
        journal.snapshotBytes = read.bytes;
      } catch (e) {
        if (!(e instanceof StateFileError)) throw e;
        reason = e.message;
      }
    }
    if (!loaded && !fresh) return { ...(reason && { reason }) };
    mkdirSync(dirname(path), { recursive: true });
    if (!loaded) {
      const fresh = encodeHeader(identity);
      writeFileDurably(path, fresh);
      journal.snapshotBytes = fresh.length;
    }
    journal.fd = openSync(path, 'a', 0o600);
    journal.timer = setInterval(() => journal.sync(), STATE_SYNC_MS);
    journal.timer.unref?.();
    return { journal, ...(loaded && { loaded }), ...(reason && { reason }) };
  }

  /**
   * Make each batch's begun records durable before its push (one fdatasync per batch, ~5 ms on
   * ext4; docs/live.md "Crash safety"): set when the next start deletes, which is what repairs a
   * path an OS crash would otherwise leave on the mirror unknown to the state.
   */
  durableBegun = false;

  /** The recorder for target number `t`. */
  recorder(t: number): PushRecorder {
    return {
      begun: (taken) => {
        const w = new RecordWriter();
        for (const [path, entry] of taken) w.pending(t, pathToBytes(path), entry);
        this.append(w.take());
        if (this.durableBegun) this.flush();
      },
      pushed: (root, entries, deletes) => this.append(pushedRecords(t, root, entries, deletes)),
    };
  }

  private append(chunk: Buffer): void {
    if (this.fd === undefined || this.failed || chunk.length === 0) return;
    try {
      // One write per chunk: a crash leaves it whole or torn, and a torn tail is detected.
      for (let at = 0; at < chunk.length; ) at += writeSync(this.fd, chunk, at, chunk.length - at);
      this.journalBytes += chunk.length;
      this.dirty = true;
    } catch (e) {
      this.fail(e);
    }
  }

  /** Make the appended records durable now (no fold: a push is about to start). */
  private flush(): void {
    if (this.fd === undefined || this.failed || !this.dirty) return;
    try {
      fdatasyncSync(this.fd);
      this.dirty = false;
    } catch (e) {
      this.fail(e);
    }
  }

  /** Make the appended records durable; fold the journal once it outgrows the snapshot. */
  sync(): void {
    if (this.fd === undefined || this.failed) return;
    try {
      if (this.dirty) fdatasyncSync(this.fd);
      this.dirty = false;
      if (this.journalBytes > Math.max(COMPACT_MIN_BYTES, this.snapshotBytes)) this.compact();
    } catch (e) {
      this.fail(e);
    }
  }

  /** Replace the file with one snapshot of what it says. */
  compact(): void {
    if (this.fd === undefined || this.failed) return;
    const started = performance.now();
    const { targets } = readStateFile(this.path, this.identity);
    const bytes = encodeSnapshot(this.identity, targets);
    closeSync(this.fd);
    this.fd = undefined;
    writeFileDurably(this.path, bytes);
    this.fd = openSync(this.path, 'a', 0o600);
    this.snapshotBytes = bytes.length;
    this.journalBytes = 0;
    this.log('debug', `state file ${this.path}: ${bytes.length} bytes written in ${(performance.now() - started).toFixed(0)} ms`);
  }

  /** Durable and compact, then closed. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.fd === undefined) return;
    try {
      if (!this.failed) {
        if (this.dirty) fdatasyncSync(this.fd);
        if (this.journalBytes > 0) this.compact();
      }
    } catch (e) {
      this.fail(e);
    }
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** A write failed (disk full, file removed...): said once; the next start will be a full one. */
  private fail(e: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.log('error', `state file ${this.path}: ${(e as Error).message}; no more state is kept (the next start compares everything)`);
  }
}

/**
 * The records for a push of `root` that went through: what it listed is what the target now
 * has. A directory listed with its contents forgets what was known below it first (the daemon
 * deleted what was not listed), a mode-0 entry (deleted) forgets its path; then each entry is
 * set, and the root's paths are done. A push that did not delete (`deletes` false: --no-delete,
 * or the phase that lsyncd 2's delete = 'startup' | 'running' leaves out) forgets nothing: what the
 * source lost is still on the mirror, for a later deleting startup to remove.
 */
export function pushedRecords(t: number, root: PushRoot, entries: readonly LocalEntry[], deletes = true): Buffer {
  const w = new RecordWriter();
  const prefix = root.root === '' ? undefined : pathToBytes(root.root);
  const full = (name: Buffer) => (name.equals(DOT) ? (prefix ?? Buffer.alloc(0)) : prefix ? Buffer.concat([prefix, Buffer.from('/'), name]) : name);
  const cleared = new Set<string>();
  for (const e of deletes ? entries : []) {
    const isContentDir = (e.mode & S_IFMT) === S_IFDIR && e.contentDir !== false;
    if (e.mode !== 0 && !isContentDir) continue;
    const path = full(e.name);
    const key = path.toString('latin1');
    // Inside a subtree already forgotten: nothing more to forget.
    let covered = false;
    for (let k = key; k !== '' && !covered; ) {
      k = parentOf(k);
      covered = cleared.has(k);
    }
    if (key !== '' && covered) {
      cleared.add(key);
      continue;
    }
    cleared.add(key);
    w.clear(t, path);
  }
  for (const e of entries) if (e.mode !== 0) w.set(t, full(e.name), recordOf(e));
  for (const path of root.paths) w.done(t, pathToBytes(path));
  return w.take();
}
