// How the live mirror reads a push that went wrong (docs/live.md, "Failures"): the target refused
// us (unknown module, auth failed, read-only module), is out of reach, limits its connections, or
// the tree changed under the push (churn), which is no failure at all. rsync has no such reading:
// its client runs once and exits with the code (rsync/errcode.h); a long-running mirror must tell
// "try again now" from "back off" from "give up at start".
import { ConnectionClosedError, DaemonRefusalError, EXIT, NotADaemonError, RemoteError, RsyncError, SocketError, TimeoutError, type ExitCode } from '../../protocol/errors.js';

/** Failures that say "not reachable now", as opposed to "this push went wrong". */
export function isUnreachable(e: unknown): boolean {
  return e instanceof SocketError || e instanceof TimeoutError || e instanceof ConnectionClosedError || e instanceof NotADaemonError || e instanceof DaemonRefusalError;
}

/** The daemon's text for a module that takes no pushes (rsync/main.c: do_server_recv). */
const READ_ONLY = /^ERROR: module is read only/m;
/** The daemon's refusal when its module is at `max connections` (rsync/clientserver.c: rsync_module). */
const MAX_CONNECTIONS = /^@ERROR: max connections \(\d+\) reached/;

/**
 * The daemon said no, and will say it again until its admin changes something: an `@ERROR` line
 * (unknown module, auth failed, access denied) or a read-only module. Not "max connections",
 * which passes by itself.
 */
export function isRefusal(e: unknown): boolean {
  if (e instanceof DaemonRefusalError) return !MAX_CONNECTIONS.test(e.daemonText);
  return e instanceof RemoteError && e.messages.some((m) => READ_ONLY.test(m));
}

/** The module was full (`max connections`): a connection of ours was one too many. */
export function isMaxConnections(e: unknown): boolean {
  return e instanceof DaemonRefusalError && MAX_CONNECTIONS.test(e.daemonText);
}

/** A target refused when the mirror starts: exit 5, as rsync's client does for a daemon's refusal. */
export class TargetRefusedError extends RsyncError {
  /** The daemon's words, verbatim. */
  readonly daemonText: string;
  constructor(target: string, daemonText: string, options?: { cause?: unknown }) {
    super('ERR_LSYNCD_TARGET_REFUSED', `${target}: ${daemonText}`, EXIT.STARTCLIENT, options);
    this.daemonText = daemonText;
  }
}

/** The daemon's text of a refusal (for TargetRefusedError): its `@ERROR` line, or its first MSG_ERROR. */
export function refusalText(e: unknown): string {
  if (e instanceof DaemonRefusalError) return e.daemonText;
  if (e instanceof RemoteError) return (e.messages.find((m) => READ_ONLY.test(m)) ?? e.message).trimEnd();
  return (e as Error).message;
}

/**
 * Per-file messages that only say the tree changed during the push (rsync's sender and
 * receiver words for a file that vanished, changed size, or whose parent stopped being a
 * directory): the paths go again at once, and the messages are counted, not logged one by one.
 */
const CHURN = [
  /^file has vanished: /, // rsync/sender.c, flist.c
  /^file changed size during transfer: /,
  /failed verification -- update discarded/, // rsync/receiver.c: the file changed while it was read
  /: Not a directory \(20\)$/, // a directory became a file between the scan and the daemon's mkdir
  /: No such file or directory \(2\)$/, // a parent vanished on our side while the daemon created the entry
  // Our scan's and sender's words when a name's parent stopped being a directory, or a directory
  // or link vanished between the listing and the read (src/transfer/scan.ts).
  /^(send_files failed to open|lstat|readlink|opendir) .* failed: (ENOENT|ENOTDIR|ELOOP|EINVAL): /,
  /^send_files failed to open ".*": (ENOENT|ENOTDIR|ELOOP): /,
];
/** rsync's closing summary lines, which add nothing to the per-file messages before them. */
const SUMMARY = /^rsync (error|warning): /;

export function isChurnMessage(text: string): boolean {
  return CHURN.some((re) => re.test(text.trimEnd()));
}

export function isSummaryMessage(text: string): boolean {
  return SUMMARY.test(text);
}

/** The exit code a failure stands for (rsync's, or 23 when we cannot tell). */
export function failureExitCode(e: unknown): ExitCode {
  return e instanceof RsyncError ? e.exitCode : EXIT.PARTIAL;
}
