// Files received whole, put in place off the JS thread (docs/protocol.md [pull-receive]): each
// goes to the addon's commitFile (native/file-commit.cc: temp file, write, attributes, rename on
// libuv's threadpool) while the receiver reads the next one, as rsync's receiver writes while its
// generator, a process of its own, goes on. The queue is bounded in files and bytes; the receiver
// settles it wherever order matters (before it tells the generator a phase is over: hard links,
// deletions after the transfer and directory times come after that; and before the run ends).
// A failure is thrown to the receiver at its next commit or settle, with the file's path.
// Counterpart: rsync receiver.c receive_data + finish_transfer (rsync.c set_file_attrs).
import type { fileCommitter } from '../addon.js';

type CommitFile = NonNullable<ReturnType<typeof fileCommitter>>;

/** At most this many files in flight (libuv's pool has 4 threads; more only queue there). */
export const MAX_COMMITS_IN_FLIGHT = 32;
/** At most this many bytes of data held for files in flight. */
export const MAX_COMMIT_BYTES = 8 * 1024 * 1024;

/** commitFile's flags. */
export const COMMIT_SET_TIMES = 1;
export const COMMIT_CHOWN = 2;

export class CommitQueue {
  private inFlight = 0;
  private bytes = 0;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly commitFile: CommitFile) {}

  /**
   * Put `data` in place at `target` through the temp file `tmp`. Returns at once while there is
   * room (undefined), else a promise of room. Throws the first failure of an earlier file.
   */
  // rsync/receiver.c: finish_transfer (set_file_attrs on the temp file, then robust_rename)
  commit(tmp: Buffer, target: Buffer, data: Buffer, mode: number, flags: number, sec: number, nsec: number, uid: number, gid: number): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    const length = data.length;
    this.inFlight++;
    this.bytes += length;
    this.commitFile(tmp, target, data, mode, flags, sec, nsec, uid, gid, (err) => this.done(err, length));
    return this.full() ? this.waitFor(() => !this.full()) : undefined;
  }

  /** Every queued file is in place (or the first failure is thrown). */
  async settle(): Promise<void> {
    if (this.inFlight) await this.waitFor(() => this.inFlight === 0);
    if (this.failure) throw this.failure;
  }

  /** Wait for what is in flight, whatever became of it (a run that failed, before it ends). */
  async quiesce(): Promise<void> {
    if (this.inFlight) await this.waitFor(() => this.inFlight === 0, false);
  }

  private full(): boolean {
    return this.inFlight >= MAX_COMMITS_IN_FLIGHT || this.bytes >= MAX_COMMIT_BYTES;
  }

  private done(err: Error | null, length: number): void {
    this.inFlight--;
    this.bytes -= length;
    if (err && !this.failure) this.failure = err;
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private async waitFor(ready: () => boolean, failFast = true): Promise<void> {
    while (!ready() && !(failFast && this.failure)) await new Promise<void>((resolve) => (this.wake = resolve));
    if (failFast && this.failure) throw this.failure;
  }
}
