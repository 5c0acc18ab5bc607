// The memory a connection may hold on its client's say (its file list, filter rules, id lists):
// rsync's `--max-alloc` (default 1 GiB; RSYNC_MAX_ALLOC in the daemon's environment sets another,
// a client's --max-alloc may only lower it), held for the connection as a whole rather than per
// allocation, because our connections share one heap. Also a cap for the process: the charges of
// all its connections together stay under three quarters of the heap's limit, so one client's
// huge list ends its own session with exit 22 and never the daemon.
// Counterpart: rsync util2.c my_alloc (the max_alloc check), options.c (RSYNC_MAX_ALLOC).
import { getHeapStatistics } from 'node:v8';
import { MemoryCapError, type MemoryBudget } from '../../protocol/errors.js';
import { parseSizeArg, ServerArgsError } from '../../protocol/server-args.js';
import { bigNum } from '../transfer/output.js';

/** rsync's DEFAULT_MAX_ALLOC: 1 GiB. */
export const DEFAULT_MAX_ALLOC = 1024 * 1024 * 1024;
/** The share of the heap's limit the connections of one process may hold together. */
const PROCESS_SHARE = 0.75;

/** A --max-alloc value as rsync reads it (`B` by default, at least 1 MiB); undefined when absent or unreadable. */
// rsync/options.c: the max_alloc_arg parse
export function parseMaxAlloc(text: string | undefined): number | undefined {
  if (!text) return undefined;
  try {
    const size = parseSizeArg(text, 'B', 'max-alloc', 1024 * 1024, -1, true);
    return size > 0 ? size : undefined;
  } catch (e) {
    if (e instanceof ServerArgsError) return undefined;
    throw e;
  }
}

/** What this process's connections hold together, and the most they may. */
const processMemory = { held: 0, limit: Math.floor(getHeapStatistics().heap_size_limit * PROCESS_SHARE) };

/** One connection's budget: charged as its client's lists grow, released when the session ends. */
export class ConnectionMemory implements MemoryBudget {
  /** The bytes this connection may hold. */
  readonly cap: number;
  private held = 0;

  constructor(
    private readonly who: 'sender' | 'receiver',
    options: { clientMaxAlloc?: string | undefined; env?: NodeJS.ProcessEnv } = {},
  ) {
    const daemonCap = parseMaxAlloc((options.env ?? process.env).RSYNC_MAX_ALLOC) ?? DEFAULT_MAX_ALLOC;
    const clientCap = parseMaxAlloc(options.clientMaxAlloc);
    this.cap = clientCap !== undefined && clientCap < daemonCap ? clientCap : daemonCap;
  }

  charge(bytes: number, what: string): void {
    if (this.held + bytes > this.cap) {
      throw new MemoryCapError(`ERROR: [${this.who}] the ${what} passed this connection's memory cap (--max-alloc=${bigNum(this.cap)} bytes)`);
    }
    if (processMemory.held + bytes > processMemory.limit) {
      throw new MemoryCapError(`ERROR: [${this.who}] the daemon's memory is taken by its connections (${bigNum(processMemory.held)} of ${bigNum(processMemory.limit)} bytes): the ${what} cannot grow; try again later`);
    }
    this.held += bytes;
    processMemory.held += bytes;
  }

  /** The session is over: what it held is free for the others. */
  release(): void {
    processMemory.held -= this.held;
    this.held = 0;
  }
}
