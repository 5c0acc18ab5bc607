// What every watcher backend shares: the typed emitter and how batches and warnings leave it.

import { EventEmitter } from 'node:events';
import { collapse } from './collapse.js';
import { WatcherError, type WatchEvent, type WatcherStats } from './types.js';

export interface WatcherEventMap {
  /** One batch of changes, collapsed, paths relative to the root. Never empty. */
  events: [batch: WatchEvent[]];
  /** Degraded but working (EWATCHLIMIT, ESCAN). Without a listener, printed via process.emitWarning. */
  warning: [err: WatcherError];
  /** The watcher cannot go on (EINOTIFY, EINTERNAL). */
  error: [err: WatcherError];
}

export abstract class Watcher extends EventEmitter<WatcherEventMap> {
  abstract readonly backend: 'inotify' | 'poll';
  protected closed = false;

  constructor(readonly root: string) {
    super();
  }

  /** Stop watching and release the kernel resources. Idempotent. */
  abstract close(): void;

  abstract stats(): WatcherStats;

  get isClosed(): boolean {
    return this.closed;
  }

  protected emitBatch(events: WatchEvent[]): void {
    if (this.closed || events.length === 0) return;
    const batch = collapse(events);
    if (batch.length > 0) this.emit('events', batch);
  }

  /** Deferred to the next tick, so a listener added right after watch() returns sees start-up warnings. */
  protected warn(err: WatcherError): void {
    process.nextTick(() => {
      if (this.listenerCount('warning') > 0) this.emit('warning', err);
      else process.emitWarning(err.message, { code: `LSYNCD_${err.code}` });
    });
  }

  protected fail(err: WatcherError): void {
    this.emit('error', err);
  }
}
