// The daemon's warnings and errors as rsyncd words and sends them to its client (while sending
// files, and what its walk as sender could not list): rprintf(FWARNING)
// and rsyserr(FERROR_XFER) become MSG_WARNING / MSG_ERROR_XFER frames (MSG_INFO / MSG_ERROR_XFER
// before protocol 30), the name shown as full_fname shows it, sent raw (the client escapes what it
// prints, as rsync's filtered_fwrite does). The same line goes to the daemon's log.
// docs/protocol.md [mplex]; counterpart: rsync log.c rwrite / rsyserr, util1.c full_fname.
import type { ByteWriter } from '../../protocol/io.js';
import { MSG_ERROR, MSG_ERROR_XFER, MSG_INFO, MSG_WARNING, writeMessage } from '../../protocol/mplex.js';
import type { SourceFailure } from '../../protocol/sender.js';
import type { WalkFailure } from '../transfer/scan.js';
import { logError, type LogWriter } from './log.js';
import { strerrorOf, sysReason } from '../transfer/strerror.js';

/** rsync's log codes a daemon's message may carry (rsync.h enum logcode). */
export type LogCode = typeof MSG_WARNING | typeof MSG_ERROR | typeof MSG_ERROR_XFER;

/** Log `line` and send it to the client with rsync's code for this protocol. */
// rsync/log.c: rwrite (am_daemon: logit, then am_server: send_msg)
export async function tellClient(writer: ByteWriter, log: LogWriter, code: LogCode, line: Buffer): Promise<void> {
  logError(log, line);
  // Before protocol 30 a client knows no MSG_ERROR / MSG_WARNING: rsync sends them as these.
  const sent = writer.protocol >= 30 ? code : code === MSG_ERROR ? MSG_ERROR_XFER : code === MSG_WARNING ? MSG_INFO : code;
  await writeMessage(writer, sent, Buffer.concat([line, Buffer.from('\n')]));
}

/** `"/dir/name" (in module)`: a listed name as rsyncd shows it (`root` is `/dir/` or empty). */
// rsync/util1.c: full_fname
export function fullName(root: Buffer, name: Buffer, module: string): Buffer {
  return Buffer.concat([Buffer.from('"'), root, name, Buffer.from(`" (in ${module})`)]);
}

/** A file the sender could not open, worded and coded as rsync's send_files does. */
// rsync/sender.c: send_files (fd == -1)
export function openFailedMessage(failure: SourceFailure, shown: Buffer, protocol: number): { code: LogCode; line: Buffer } {
  if (failure.vanished) {
    // rsync: a daemon talking to a client older than protocol 28 makes it an error.
    return { code: protocol < 28 ? MSG_ERROR : MSG_WARNING, line: Buffer.concat([Buffer.from('file has vanished: '), shown]) };
  }
  return { code: MSG_ERROR_XFER, line: sysError('send_files failed to open ', shown, failure.code, failure.error) };
}

/**
 * A name the sender's walk could not list, worded and coded as rsync's file-list code does:
 * "file has vanished" a warning (an error to a client older than protocol 28), the others
 * rsyserr's FERROR_XFER lines.
 */
// rsync/flist.c: make_file (readlink_stat failing), send_directory (opendir), send_file_list (link_stat)
export function walkFailureMessage(failure: WalkFailure, shown: Buffer, protocol: number): { code: LogCode; line: Buffer } {
  const { what, code, message } = failure;
  if (what === 'vanished') {
    const line = Buffer.concat([Buffer.from(failure.dir ? 'directory has vanished: ' : 'file has vanished: '), shown]);
    // rsync/flist.c: interpret_stat_error (a directory's: a warning whatever the protocol)
    return { code: protocol < 28 && !failure.dir ? MSG_ERROR : MSG_WARNING, line };
  }
  if (what === 'readlink_stat') return { code: MSG_ERROR_XFER, line: sysError('readlink_stat(', shown, code, message, ') failed') };
  return { code: MSG_ERROR_XFER, line: sysError(`${what} `, shown, code, message, ' failed') };
}

/** `rsync: [sender] WHAT"name" (in module)AFTER: Permission denied (13)`. */
// rsync/log.c: rsyserr
function sysError(what: string, shown: Buffer, code: string | undefined, fallback: string, after = ''): Buffer {
  const reason = sysReason({ code }) ?? fallback;
  return Buffer.concat([Buffer.from(`rsync: [sender] ${what}`), shown, Buffer.from(`${after}: ${reason}`)]);
}

/** An fs error in the C library's words (what rsyncd's strerror shows), else its own message. */
export function strerrorText(e: unknown): string {
  return strerrorOf((e as NodeJS.ErrnoException).code) ?? (e as Error).message;
}

