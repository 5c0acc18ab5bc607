// Typed errors for the whole protocol library, each carrying rsync's exit code (errcode.h). (docs/protocol.md [errors])
// Context is added once, at role boundaries, through `cause`. Only the CLI exits the process.
// Also the one rule that turns what went wrong during a transfer into its exit code.
import { IOERR_GENERAL, IOERR_VANISHED, IOERR_DEL_LIMIT } from './constants.js';

/** rsync's exit codes (errcode.h: RERR_*), so callers can exit as rsync would. */
export const EXIT = {
  OK: 0,
  SYNTAX: 1,
  PROTOCOL: 2,
  FILESELECT: 3,
  UNSUPPORTED: 4,
  STARTCLIENT: 5,
  SOCKETIO: 10,
  FILEIO: 11,
  STREAMIO: 12,
  MESSAGEIO: 13,
  SIGNAL: 20,
  MALLOC: 22,
  PARTIAL: 23,
  VANISHED: 24,
  DEL_LIMIT: 25,
  TIMEOUT: 30,
  CONTIMEOUT: 35,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT] | number;

/** rsync's names of its exit codes (log.c rerr_names): the text of its closing "rsync error:" line. */
const EXIT_NAMES: ReadonlyMap<number, string> = new Map([
  [1, 'syntax or usage error'],
  [2, 'protocol incompatibility'],
  [3, 'errors selecting input/output files, dirs'],
  [4, 'requested action not supported'],
  [5, 'error starting client-server protocol'],
  [6, 'daemon unable to append to log-file'],
  [10, 'error in socket IO'],
  [11, 'error in file IO'],
  [12, 'error in rsync protocol data stream'],
  [13, 'errors with program diagnostics'],
  [14, 'error in IPC code'],
  [15, 'sibling process crashed'],
  [16, 'sibling process terminated abnormally'],
  [19, 'received SIGUSR1'],
  [20, 'received SIGINT, SIGTERM, or SIGHUP'],
  [21, 'waitpid() failed'],
  [22, 'error allocating core memory buffers'],
  [23, 'some files/attrs were not transferred (see previous errors)'],
  [24, 'some files vanished before they could be transferred'],
  [25, 'the --max-delete limit stopped deletions'],
  [30, 'timeout in data send/receive'],
  [35, 'timeout waiting for daemon connection'],
  [124, 'remote shell failed'],
  [125, 'remote shell killed'],
  [126, 'remote command could not be run'],
  [127, 'remote command not found'],
]);

/** rsync's text for an exit code (`unexplained error` for one it does not name). */
// rsync/log.c: rerr_name
export function exitCodeName(code: ExitCode): string {
  return EXIT_NAMES.get(code) ?? 'unexplained error';
}

/**
 * The line rsync ends a failed run with (no newline): "rsync error: NAME (code N) at WHERE
 * [WHO=VERSION]", a warning for vanished files. A daemon also sends it to the client in MSG_ERROR.
 */
// rsync/log.c: log_exit
export function exitErrorLine(code: ExitCode, where: string, who: string, version: string): string {
  const kind = code === EXIT.VANISHED ? 'warning' : 'error';
  return `rsync ${kind}: ${exitCodeName(code)} (code ${code}) at ${where} [${who}=${version}]`;
}

/**
 * A transfer that ran to its end: its exit code from the io_error bits (the sender's, from the
 * file list's end or MSG_IO_ERROR, or our own as the sender) and the per-file failures (the
 * daemon's MSG_ERROR_XFER texts, files that failed here: rsync's got_xfer_error). 23 (partial)
 * beats 24 (vanished) beats 25 (--max-delete stopped deletions).
 */
// rsync/cleanup.c: _exit_cleanup (the io_error and got_xfer_error checks)
export function transferExitCode(ioError: number, failures: number): ExitCode {
  if (ioError & IOERR_GENERAL || failures) return EXIT.PARTIAL;
  if (ioError & IOERR_VANISHED) return EXIT.VANISHED;
  if (ioError & IOERR_DEL_LIMIT) return EXIT.DEL_LIMIT;
  return EXIT.OK;
}

/** Base of every error this project raises on purpose. `code` is stable; `exitCode` is rsync's. */
export class RsyncError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;
  constructor(code: string, message: string, exitCode: ExitCode, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

/**
 * An item's permissions or times could not be set (rsync's set_file_attrs: "failed to set times
 * on ..."): that item alone failed; the transfer goes on and ends with exit 23. The message is
 * rsync's words without "rsync: ".
 */
export class FileAttrError extends RsyncError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_RSYNC_FILE_ATTRS', message, EXIT.PARTIAL, options);
  }
}

/**
 * What a peer asked us to hold for one connection (its file list, its filter rules, its id lists)
 * passed that connection's memory cap: rsync's `--max-alloc` refusal (util2.c my_alloc), exit 22.
 * Raised by a MemoryBudget before the allocation, so the process and its other connections go on.
 */
export class MemoryCapError extends RsyncError {
  constructor(message: string) {
    super('ERR_RSYNC_MEMORY_CAP', message, EXIT.MALLOC);
  }
}

/**
 * The bytes one connection may hold on a peer's say. `charge` adds an estimate of an allocation
 * before it is made and throws a MemoryCapError when the cap would be passed; the protocol code
 * calls it where a peer's counts turn into memory that lives for the session.
 */
export interface MemoryBudget {
  charge(bytes: number, what: string): void;
}

/** The peer broke the protocol: a malformed or hostile stream (bad length, bad value, wrong greeting). */
export class ProtocolError extends RsyncError {
  constructor(message: string, options?: { cause?: unknown; exitCode?: ExitCode; code?: string }) {
    super(options?.code ?? 'ERR_RSYNC_PROTOCOL', message, options?.exitCode ?? EXIT.PROTOCOL, options);
  }
}

/**
 * A file-list name from the daemon that is not safe to use under the destination: absolute, with a
 * `..`, `.` or empty component, a NUL, or too long. rsync aborts with "unsafe pathname from
 * sender"; we stop before any file operation, with exit 2 (protocol) as issue 6 asks.
 */
export class UnsafeNameError extends ProtocolError {
  /** The offending name as received (raw bytes). */
  readonly rawName: Buffer;
  constructor(message: string, rawName: Uint8Array) {
    super(message, { code: 'ERR_RSYNC_UNSAFE_NAME' });
    this.rawName = Buffer.from(rawName);
  }
}

/** The port answered, but not as an rsync daemon does. */
export class NotADaemonError extends RsyncError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_RSYNC_NOT_A_DAEMON', message, EXIT.STARTCLIENT, options);
  }
}

/** The daemon refused us with an `@ERROR` line (unknown module, auth failed, max connections, ...). */
export class DaemonRefusalError extends RsyncError {
  /** The daemon's line, verbatim (starting `@ERROR`). */
  readonly daemonText: string;
  constructor(daemonText: string) {
    super('ERR_RSYNC_DAEMON_REFUSED', daemonText, EXIT.STARTCLIENT);
    this.daemonText = daemonText;
  }
}

/**
 * The daemon reported a fatal error inside the multiplexed stream (MSG_ERROR text, then
 * MSG_ERROR_EXIT with its exit code, or the connection closing after the text).
 */
export class RemoteError extends RsyncError {
  /** The daemon's MSG_ERROR texts, verbatim, in order. */
  readonly messages: string[];
  /** The option the daemon refused (long name, e.g. `copy-dest`), when that is what the error is. */
  readonly refusedOption: string | undefined;
  constructor(messages: string[], exitCode: ExitCode, options?: { cause?: unknown }) {
    const text = messages.map((m) => m.replace(/\n$/, '')).join('\n') || `the daemon exited with code ${exitCode}`;
    super('ERR_RSYNC_REMOTE', text, exitCode, options);
    this.messages = messages;
    this.refusedOption = messages.map(refusedOption).find((name) => name !== undefined);
  }
}

/**
 * The option a daemon's error text says it will not take, or undefined for any other error.
 * - `refuse options` in the module: "The server is configured to refuse --NAME", with " (-X)"
 *   after it for an option that has a short form (rsync: options.c create_refuse_error);
 * - a daemon too old to know the option: "on remote machine: --NAME: unknown option" (the option
 *   as sent, so a cluster of short flags comes back whole) (rsync: options.c parse_arguments);
 * - `refuse options = delete-missing-args` is silent: the daemon drops the option and then
 *   rejects the mode-0 entries that stand for missing paths, "invalid file mode 00 for NAME"
 *   (rsync: flist.c recv_file_entry). That text means nothing else from a sound sender.
 */
export function refusedOption(text: string): string | undefined {
  const refused = /configured to refuse --([\w-]+)/.exec(text) ?? /on remote machine: -+([^:=\s]+)[^:]*: unknown option/.exec(text);
  if (refused) return refused[1];
  if (/invalid file mode 0+ for /.test(text)) return 'delete-missing-args';
  return undefined;
}

/** The stream ended before a record was complete. */
export class ConnectionClosedError extends RsyncError {
  readonly wanted: number;
  readonly had: number;
  constructor(wanted: number, had: number, what = 'data') {
    super(
      'ERR_RSYNC_CONNECTION_CLOSED',
      `connection closed by the daemon while reading ${what} (wanted ${wanted} bytes, had ${had})`,
      EXIT.STREAMIO,
    );
    this.wanted = wanted;
    this.had = had;
  }
}

/** Socket-level failure: refused, unreachable, reset. */
export class SocketError extends RsyncError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_RSYNC_SOCKET', message, EXIT.SOCKETIO, options);
  }
}

/** `--timeout` (I/O) or `--contimeout` (connection) expired. */
export class TimeoutError extends RsyncError {
  constructor(message: string, exitCode: typeof EXIT.TIMEOUT | typeof EXIT.CONTIMEOUT) {
    super(exitCode === EXIT.TIMEOUT ? 'ERR_RSYNC_TIMEOUT' : 'ERR_RSYNC_CONTIMEOUT', message, exitCode);
  }
}

/** Bad arguments or local configuration (password file permissions, malformed URL). */
export class UsageError extends RsyncError {
  constructor(message: string, exitCode: ExitCode = EXIT.SYNTAX) {
    super('ERR_RSYNC_USAGE', message, exitCode);
  }
}
