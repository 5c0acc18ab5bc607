// Helpers for the watcher suites: temp trees and bounded waits for events.

import { mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Watcher, WatchEvent } from '../../src/watcher/index.js';

export function tempDir(tag = 'w'): string {
  return mkdtempSync(join(tmpdir(), `lsyncd-${tag}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Everything a watcher emits, in order, with a bounded wait for a condition. */
export class Collector {
  readonly events: WatchEvent[] = [];
  readonly batches: WatchEvent[][] = [];

  constructor(w: Watcher) {
    w.on('events', (b) => {
      this.batches.push(b);
      this.events.push(...b);
    });
  }

  clear(): void {
    this.events.length = 0;
    this.batches.length = 0;
  }

  has(type: WatchEvent['type'], path: string, from?: string): boolean {
    return this.events.some((e) => e.type === type && e.path === path && (from === undefined || e.from === from));
  }

  paths(type: WatchEvent['type']): Set<string> {
    return new Set(this.events.filter((e) => e.type === type).map((e) => e.path));
  }

  /** Poll until pred holds; throws with the events seen when the deadline passes. */
  async until(pred: (events: WatchEvent[]) => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.events)) {
      if (Date.now() > deadline) {
        const tail = this.events.slice(-20).map((e) => `${e.type} ${e.from !== undefined ? e.from + ' -> ' : ''}${e.path}`);
        throw new Error(`timed out waiting for ${what}; ${this.events.length} events, last: ${tail.join(', ')}`);
      }
      await sleep(5);
    }
  }

  /** Wait until no event arrives for `quietMs` (bounded by timeoutMs). */
  async settle(quietMs = 150, timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let n = -1;
    let since = Date.now();
    while (Date.now() < deadline) {
      if (this.events.length !== n) {
        n = this.events.length;
        since = Date.now();
      } else if (Date.now() - since >= quietMs) return;
      await sleep(10);
    }
  }
}
