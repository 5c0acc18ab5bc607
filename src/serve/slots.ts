// `max connections`: the connections open per lock file, as rsync's claim_connection counts them.
// Counterpart: rsync connection.c claim_connection.
import type { ModuleConfig } from './config.js';

/**
 * Connections open per `lock file`, as rsync counts them: modules that share a lock file share
 * their count (rsync's claim_connection locks a slot of that file).
 */
// rsync/connection.c: claim_connection
export class ConnectionSlots {
  private readonly used = new Map<string, number>();

  /**
   * Take a slot of the module's lock file; false when `max connections` are in use. A module
   * without a limit (0) takes no slot, as in rsync, so its connections never count against a
   * limited module that shares the lock file.
   */
  claim(module: ModuleConfig): boolean {
    if (module.maxConnections <= 0) return true;
    const n = this.used.get(module.lockFile) ?? 0;
    if (n >= module.maxConnections) return false;
    this.used.set(module.lockFile, n + 1);
    return true;
  }

  release(module: ModuleConfig): void {
    if (module.maxConnections <= 0) return;
    const n = this.used.get(module.lockFile) ?? 0;
    if (n <= 1) this.used.delete(module.lockFile);
    else this.used.set(module.lockFile, n - 1);
  }
}
