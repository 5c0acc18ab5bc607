// The watcher's public entry point. The live daemon calls watch(root, options) and listens
// for 'events' batches (see docs/watcher.md).

import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadAddon, addonLoadError, ADDON_FIX } from '../addon.js';
import { InotifyWatcher } from './inotify.js';
import { PollWatcher } from './poll.js';
import { WatcherError, type WatchFilter, type WatcherOptions } from './types.js';
import { hasEscapes, pathToBytes } from './paths.js';
import type { Watcher } from './base.js';

export { Watcher, type WatcherEventMap } from './base.js';
export { InotifyWatcher } from './inotify.js';
export { PollWatcher } from './poll.js';
export { WatcherError } from './types.js';
export type { WatchEvent, WatchEventType, WatchFilter, WatcherOptions, WatcherErrorCode, WatcherStats } from './types.js';
export { pathToBytes, pathFromBytes, fsPath, hasEscapes } from './paths.js';
export { loadAddon, addonLoadError } from '../addon.js';

/**
 * Start watching `root` recursively. When this returns, every directory is watched (or
 * polled), so any later change is reported. Throws WatcherError EROOT if `root` is not a
 * readable directory, EADDON if backend 'inotify' was required but the addon is missing.
 */
export function watch(root: string, opts: WatcherOptions = {}): Watcher {
  let abs = resolve(root);
  try {
    abs = realpathSync(abs); // a root given through a symlink is watched at its target
  } catch {
    // reported by start() as EROOT
  }
  const backend = opts.backend ?? 'auto';
  if (backend !== 'poll') {
    const addon = loadAddon(opts.addonPath, { quiet: backend === 'inotify' });
    if (addon !== null) {
      try {
        return new InotifyWatcher(abs, addon, opts).start();
      } catch (err) {
        // No inotify instance (EMFILE: max_user_instances) or no watch even for the root (ENOSPC).
        const code = err instanceof WatcherError ? codeOf(err.cause) : codeOf(err);
        if (backend === 'inotify' || (code !== 'EMFILE' && code !== 'ENFILE' && code !== 'ENOSPC')) throw err;
        process.emitWarning(
          `lsyncd: inotify is unavailable for ${abs} (${(err as Error).message}); polling the whole tree instead. ` +
            'See fs.inotify.max_user_instances / max_user_watches.',
          { code: 'LSYNCD_EWATCHLIMIT' },
        );
      }
    } else if (backend === 'inotify') {
      throw new WatcherError('EADDON', `the inotify addon is not available: ${addonLoadError?.message.split('\n')[0] ?? 'not loaded'}; ${ADDON_FIX}`);
    }
  }
  return new PollWatcher(abs, opts).start();
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Adapt a byte-aware matcher (e.g. protocol/filter.ts's compiled rules, which take
 * `string | Uint8Array` and read strings as UTF-8) so that non-UTF-8 names reach it as their
 * exact bytes.
 */
export function byteFilter(m: { isExcluded(relPath: string | Uint8Array, isDir: boolean): boolean }): WatchFilter {
  return { isExcluded: (relPath, isDir) => m.isExcluded(hasEscapes(relPath) ? pathToBytes(relPath) : relPath, isDir) };
}
