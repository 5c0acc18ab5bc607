// Files received whole, put in place off the JS thread (docs/protocol.md [pull-receive]): each
// goes to the addon's commitFile (native/file-commit.cc: temp file, write, attributes, rename on
// libuv's threadpool) while the receiver reads the next one, as rsync's receiver writes while its
// generator, a process of its own, goes on. The queue is bounded in files and bytes; the receiver
// settles it wherever order matters (before it tells the generator a phase is over: hard links,
// deletions after the transfer and directory times come after that; and before the run ends).
// A failure is told in rsync's words at the receiver's next commit or settle: a write that
// failed (a full disk) ends the run (exit 11) as rsync's receiver does; a temp file that could
// not be made, a rename, a mode or a time that failed is that file's alone (rsync's FERROR_XFER:
// reported, counted, the run goes on and ends with 23).
// Counterpart: rsync receiver.c receive_data + finish_transfer (rsync.c set_file_attrs).
import type { fileCommitter } from '../addon.js';
import { EXIT, RsyncError } from '../../protocol/errors.js';
import { shownName } from '../../protocol/terminal-text.js';
import { errnoOf, strerrorOf } from './strerror.js';

type CommitFile = NonNullable<ReturnType<typeof fileCommitter>>;

/** At most this many files in flight (one pool thread writes them a batch at a time; room for it to fall behind a little). */
export const MAX_COMMITS_IN_FLIGHT = 128;
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
  /** Failures that were the file's alone, told at the next commit or settle. */
  private readonly lost: Array<{ text: string; onFailed: (text: string) => void }> = [];

  /** `fullName`: how a name relative to the destination is shown in a message (rsync's full_fname). */
  constructor(
    private readonly commitFile: CommitFile,
    private readonly fullName: (name: Buffer) => string,
  ) {}

  /**
   * Put `data` in place at `target` (list name `name`) through the temp file `tmp`. Returns at
   * once while there is room (undefined), else a promise of room. Throws the first fatal failure
   * of an earlier file; `onFailed` hears of this file's failure if it is its alone.
   */
  // rsync/receiver.c: finish_transfer (set_file_attrs on the temp file, then robust_rename)
  commit(name: Buffer, tmp: Buffer, target: Buffer, data: Buffer, mode: number, flags: number, sec: number, nsec: number, uid: number, gid: number, onFailed: (text: string) => void): Promise<void> | undefined {
    this.tell();
    const length = data.length;
    this.inFlight++;
    this.bytes += length;
    this.commitFile(tmp, target, data, mode, flags, sec, nsec, uid, gid, (err) => this.done(err, length, name, target, onFailed));
    return this.full() ? this.waitFor(() => !this.full()) : undefined;
  }

  /** Every queued file is in place or told failed (the first fatal failure is thrown). */
  async settle(): Promise<void> {
    if (this.inFlight) await this.waitFor(() => this.inFlight === 0);
    this.tell();
  }

  /** The failures that came back so far: the fatal one thrown, the others told. */
  private tell(): void {
    if (this.failure) throw this.failure;
    for (const { text, onFailed } of this.lost.splice(0)) onFailed(text);
  }

  /** Wait for what is in flight, whatever became of it (a run that failed, before it ends). */
  async quiesce(): Promise<void> {
    if (this.inFlight) await this.waitFor(() => this.inFlight === 0, false);
  }

  private full(): boolean {
    return this.inFlight >= MAX_COMMITS_IN_FLIGHT || this.bytes >= MAX_COMMIT_BYTES;
  }

  private done(err: Error | null, length: number, name: Buffer, target: Buffer, onFailed: (text: string) => void): void {
    this.inFlight--;
    this.bytes -= length;
    if (err) {
      const failed = commitFailure(err as CommitError, name, target, this.fullName);
      if (failed.fatal) this.failure ??= new RsyncError('ERR_RSYNC_FILEIO', failed.text, EXIT.FILEIO, { cause: err });
      else this.lost.push({ text: failed.text, onFailed });
    }
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private async waitFor(ready: () => boolean, failFast = true): Promise<void> {
    while (!ready() && !(failFast && this.failure)) await new Promise<void>((resolve) => (this.wake = resolve));
    if (failFast && this.failure) throw this.failure;
  }
}

/** What commitFile's callback gets on failure (native/file-commit.cc). */
interface CommitError extends Error {
  syscall: string;
  errno: number;
  strerror: string;
  path: Buffer;
}

/**
 * A failed commit in rsync's words, and whether it ends the run: the data not written (rsync's
 * receiver exits 11), or only this file lost (rsync's FERROR_XFER).
 */
// rsync/receiver.c: receive_data ("write failed on"), recv_files ("mkstemp ... failed"),
// finish_transfer ("rename ... ->"); rsync.c set_file_attrs ("failed to set permissions/times on")
export function commitFailure(err: CommitError, name: Buffer, target: Buffer, fullName: (name: Buffer) => string): { fatal: boolean; text: string } {
  const why = `${err.strerror} (${-err.errno})`;
  // The names relative to the destination: the list name's directory, the file's own basename.
  const dir = name.subarray(0, name.lastIndexOf(0x2f) + 1);
  const full = fullName(Buffer.concat([dir, target.subarray(target.lastIndexOf(0x2f) + 1)]));
  const tmp = fullName(Buffer.concat([dir, err.path.subarray(err.path.lastIndexOf(0x2f) + 1)]));
  switch (err.syscall) {
    case 'open':
      return { fatal: false, text: `mkstemp ${tmp} failed: ${why}` };
    case 'rename':
      return { fatal: false, text: `rename ${tmp} -> "${shownName(name)}": ${why}` };
    case 'fchmod':
      return { fatal: false, text: attrFailedText('permissions', full, why) };
    case 'futimens':
      return { fatal: false, text: attrFailedText('times', full, why) };
    default:
      return { fatal: true, text: `${err.syscall} failed on ${full}: ${why}` };
  }
}


/** An item's permissions or times not set, in rsync's words (`full`: the shown name, `why`: "words (errno)"). */
// rsync/rsync.c: set_file_attrs ("failed to set permissions on %s", "failed to set times on %s")
export function attrFailedText(what: 'permissions' | 'times', full: string, why: string): string {
  return `failed to set ${what} on ${full}: ${why}`;
}

/** A temp file's write that failed (Node's fs error), as rsync's receiver ends the run: exit 11. */
// rsync/receiver.c: receive_data ("write failed on %s", exit_cleanup(RERR_FILEIO))
export function writeFailed(e: unknown, target: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  const errno = errnoOf(code);
  if (!code || errno === undefined) return e;
  return new RsyncError('ERR_RSYNC_FILEIO', `write failed on ${target}: ${strerrorOf(code) ?? code} (${errno})`, EXIT.FILEIO, { cause: e });
}
