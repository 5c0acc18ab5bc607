// A cap on how many pushes run at once over several live mirrors (a config file's max-pushes,
// lsyncd 2's settings.maxProcesses). docs/config.md; counterpart: lsyncd 2's processCount check
// in lsyncd.lua (Sync.invokeActions: `processCount < uSettings.maxProcesses`).
import type { PushFn } from './runner.js';

export class PushLimiter {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`a push limit is a whole number from 1, not ${max}`);
  }

  /** `push` behind the cap: a call waits while `max` others run, first come first served. */
  wrap(push: PushFn): PushFn {
    return async (options) => {
      await this.acquire();
      try {
        return await push(options);
      } finally {
        this.release();
      }
    };
  }

  /** Pushes running now (at most `max`) and waiting for a turn. */
  stats(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  private acquire(): Promise<void> {
    if (this.running < this.max) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    // The slot passes straight to the next waiter: `running` stays the same.
    if (next) next();
    else this.running--;
  }
}
