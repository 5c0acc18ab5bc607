// listModules(), list() and listEntries(): what a daemon offers, as plain objects (listEntries one
// at a time, for big trees). Wrap src/transfer/client.ts (the module listing) and
// src/transfer/list.ts (a remote listing, rsync's list_only). See docs/api.md.
// Counterpart: rsync clientserver.c start_inband_exchange (the listing), generator.c list_file_entry.
import { listModules as listLines, splitMotd } from '../transfer/client.js';
import { listRemote } from '../transfer/list.js';
import { isLink } from '../../protocol/modes.js';
import { RsyncError } from '../../protocol/errors.js';
import type { ReceivedEntry } from '../../protocol/flist-recv.js';
import { messageText, shownName } from '../transfer/output.js';
import { asRsyncError, throwIfAborted } from './errors.js';
import { filterListOf, resolveTarget, sessionOf, transferOf, TRANSFER_DEFAULTS, type ConnectOptions, type Target, type TransferFlags } from './options.js';
import { entryType, type EntryType } from './changes.js';

export interface ModuleListing {
  /** The daemon's message of the day, line by line (escaped as rsync shows daemon text). */
  motd: string[];
  modules: { name: string; comment: string }[];
}

/** A daemon to ask for its modules: `host::`, `rsync://host:port/`, or `{ host, port }`. */
export type DaemonAddress = string | { host: string; port?: number; user?: string };

/** The daemon's listed modules and its MOTD. */
// rsync/clientserver.c: start_inband_exchange (with no module: the listing)
export async function listModules(daemon: DaemonAddress, options: ConnectOptions = {}): Promise<ModuleListing> {
  const { signal } = options;
  try {
    throwIfAborted(signal);
    const target = resolveTarget(typeof daemon === 'string' ? daemon : { ...daemon, module: '' }, options, false);
    const lines = await abortable(listLines({ host: target.host, port: target.port, ...sessionOf(options, target) }), signal);
    const { motd, modules } = splitMotd(lines);
    // The daemon ends its MOTD with an empty line of its own.
    if (motd.length && motd[motd.length - 1]!.length === 0) motd.pop();
    return {
      motd: motd.map((line) => messageText(line, 'utf8')),
      modules: modules.map((line) => {
        // rsyncd writes "%-15s\t%s": the name padded to 15, a tab, the comment.
        const text = messageText(line, 'utf8');
        const tab = text.indexOf('\t');
        return tab === -1 ? { name: text.trimEnd(), comment: '' } : { name: text.slice(0, tab).trimEnd(), comment: text.slice(tab + 1) };
      }),
    };
  } catch (e) {
    throw asRsyncError(e, signal);
  }
}

/** The module listing holds its socket for one short exchange: an abort rejects at once. */
function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** One entry of a remote listing: what rsync's `ls`-like lines show, as fields. */
export interface ListEntry {
  /** Relative to the listed path ('.' for itself), escaped as rsync shows names. */
  path: string;
  pathBytes: Buffer;
  type: EntryType;
  /** st_mode, type bits included. */
  mode: number;
  size: number;
  mtime: Date;
  symlinkTarget?: string;
  symlinkTargetBytes?: Buffer;
}

export interface ListOptions extends ConnectOptions, Pick<TransferFlags, 'recursive' | 'links' | 'filter' | 'exclude'> {}

function listEntry(entry: ReceivedEntry): ListEntry {
  const out: ListEntry = {
    path: shownName(entry.name),
    pathBytes: Buffer.from(entry.name),
    type: entryType(entry.mode),
    mode: entry.mode,
    size: entry.size,
    mtime: new Date(entry.mtime * 1000 + Math.floor((entry.mtimeNsec ?? 0) / 1e6)),
  };
  if (isLink(entry.mode) && entry.symlink) {
    out.symlinkTarget = shownName(entry.symlink);
    out.symlinkTargetBytes = Buffer.from(entry.symlink);
  }
  return out;
}

/** Run one listing, handing each entry to `onEntry` (which may hold the listing until it took it). */
// rsync/main.c: client_run with list_only
async function runListing(target: Target, options: ListOptions, signal: AbortSignal | undefined, onEntry: (entry: ListEntry) => void | Promise<void>): Promise<void> {
  const daemon = resolveTarget(target, options, true);
  const transfer = transferOf({ recursive: false, ...options }, TRANSFER_DEFAULTS);
  const filter = filterListOf(options);
  const errors: string[] = [];
  const result = await listRemote({
    target: daemon,
    transfer,
    session: sessionOf(options, daemon),
    ...(filter && { filter }),
    ...(signal && { abort: signal }),
    onEntry: (entry) => onEntry(listEntry(entry)),
    onLine: () => {},
    onError: (text) => errors.push(text.trimEnd()),
  });
  // A listing that did not end cleanly (a missing path: 23) is an error, with the daemon's words.
  if (result.exitCode !== 0) throw new RsyncError('ERR_RSYNC_LIST', errors.join('\n') || `the listing ended with exit code ${result.exitCode}`, result.exitCode);
}

/**
 * The entries under a module path, as `rsync host::module/path/` lists them: one level unless
 * `recursive` (rsync's default for a listing), in rsync's order. For big trees see listEntries.
 */
export async function list(target: Target, options: ListOptions = {}): Promise<ListEntry[]> {
  const { signal } = options;
  try {
    throwIfAborted(signal);
    const entries: ListEntry[] = [];
    await runListing(target, options, signal, (entry) => void entries.push(entry));
    return entries;
  } catch (e) {
    throw asRsyncError(e, signal);
  }
}

/** Entries the listing may get ahead of the loop that takes them. */
export const LIST_AHEAD = 256;

/**
 * The same entries as list(), one at a time (`for await (const e of listEntries(target))`): at
 * most LIST_AHEAD of them wait for the loop, which holds the listing when it falls behind;
 * leaving the loop early closes the connection. A failure is thrown by the loop once the
 * entries before it were taken.
 */
export async function* listEntries(target: Target, options: ListOptions = {}): AsyncGenerator<ListEntry, void, undefined> {
  const { signal } = options;
  throwIfAborted(signal);
  // Our own signal too: it ends the listing when the loop is left early.
  const stop = new AbortController();
  const onAbort = () => stop.abort(signal!.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const queue: ListEntry[] = [];
  let wake: (() => void) | undefined; // the loop waits for an entry or the end
  let drained: (() => void) | undefined; // the listing waits for room
  let ended = false;
  let failure: unknown;
  const listing = runListing(target, options, stop.signal, (entry) => {
    if (stop.signal.aborted) return; // the loop was left: the rest is dropped
    queue.push(entry);
    wake?.();
    if (queue.length < LIST_AHEAD) return;
    return new Promise<void>((resolve) => (drained = resolve));
  }).then(
    () => {
      ended = true;
      wake?.();
    },
    (e: unknown) => {
      ended = true;
      failure = e;
      wake?.();
    },
  );
  try {
    for (;;) {
      if (queue.length) {
        const entry = queue.shift()!;
        if (queue.length < LIST_AHEAD / 2 && drained) {
          drained();
          drained = undefined;
        }
        yield entry;
        continue;
      }
      if (ended) break;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
    if (failure !== undefined) throw asRsyncError(failure, signal);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (!ended) {
      stop.abort(new Error('the loop over the listing ended'));
      drained?.();
      await listing;
    }
  }
}
