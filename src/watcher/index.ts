// The watcher's public entry point. The live daemon calls watch(root, options) and listens
// for 'events' batches (see docs/watcher.md).

import { resolve } from 'node:path';
import { loadAddon } from './addon.js';
import { InotifyWatcher } from './inotify.js';
import { PollWatcher } from './poll.js';
import { WatcherError, type WatcherOptions } from './types.js';
import type { Watcher } from './base.js';

export { Watcher, type WatcherEventMap } from './base.js';
export { InotifyWatcher } from './inotify.js';
export { PollWatcher } from './poll.js';
export { WatcherError } from './types.js';
export type { WatchEvent, WatchEventType, WatchFilter, WatcherOptions, WatcherErrorCode, WatcherStats } from './types.js';
export { pathToBytes, pathFromBytes, fsPath } from './paths.js';
export { loadAddon, addonLoadError } from './addon.js';

/**
 * Start watching `root` recursively. When this returns, every directory is watched (or
 * polled), so any later change is reported. Throws WatcherError EROOT if `root` is not a
 * readable directory, EADDON if backend 'inotify' was required but the addon is missing.
 */
export function watch(root: string, opts: WatcherOptions = {}): Watcher {
  const abs = resolve(root);
  const backend = opts.backend ?? 'auto';
  if (backend !== 'poll') {
    const addon = loadAddon(opts.addonPath, { quiet: backend === 'inotify' });
    if (addon !== null) return new InotifyWatcher(abs, addon, opts).start();
    if (backend === 'inotify') throw new WatcherError('EADDON', 'the inotify addon is not available (see npm install output)');
  }
  return new PollWatcher(abs, opts).start();
}
