// The library's errors at its boundary: an AbortError for a cancelled call, and every other failure
// turned into the RsyncError family (protocol/errors.ts), so a caller catches one class.
// Counterpart: rsync errcode.h (RERR_SIGNAL for an interrupted transfer).
import { EXIT, RsyncError } from '../../protocol/errors.js';

/** A call cancelled through its `signal`: its connection was closed, its temp files removed. */
export class AbortError extends RsyncError {
  constructor(signal: AbortSignal, cause?: unknown) {
    const reason = signal.reason instanceof Error ? signal.reason.message : 'the operation was aborted';
    super('ABORT_ERR', reason, EXIT.SIGNAL, { cause: cause ?? signal.reason });
  }
}

/** Throws an AbortError when `signal` has already fired (nothing is started then). */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(signal);
}

/**
 * What a library call throws for `e`: an AbortError when its signal fired (the closed socket's
 * error is its cause), an RsyncError as it is, a failed fs call as rsync's file I/O error (11),
 * anything else as a data stream error (12) with the original as its cause.
 */
export function asRsyncError(e: unknown, signal?: AbortSignal): RsyncError {
  if (signal?.aborted && !(e instanceof AbortError)) return new AbortError(signal, e);
  if (e instanceof RsyncError) return e;
  const err = e as NodeJS.ErrnoException;
  if (e instanceof Error && typeof err.syscall === 'string') {
    const path = err.path ? ` ${JSON.stringify(String(err.path))}` : '';
    return new RsyncError('ERR_RSYNC_FILEIO', `${err.syscall}${path} failed: ${err.code ?? err.message}`, EXIT.FILEIO, { cause: e });
  }
  return new RsyncError('ERR_RSYNC_UNEXPECTED', e instanceof Error ? e.message : String(e), EXIT.STREAMIO, { cause: e });
}
