// A remote listing: `lsyncd rsync://HOST/module/path/` prints the daemon's files as `rsync` does
// (its list_only mode): a pull that requests nothing. The wire is protocol/session.ts startPull
// and protocol/list-only.ts finishListOnly; the lines are rsync's list_file_entry, escaped as
// rsync's rwrite escapes terminal output (output.ts escapeLine).
import { openModule, type SessionOptions } from './client.js';
import { serverArgs, type TransferOptions } from '../../protocol/args.js';
import { startPull, acknowledgeErrorExit } from '../../protocol/session.js';
import { finishListOnly } from '../../protocol/list-only.js';
import { clientCompressOptions, parseChecksumName } from '../../protocol/compat.js';
import { compressCodecs } from '../compress-codecs.js';
import { S_IFMT, S_IFDIR, S_IFLNK } from '../../protocol/modes.js';
import { flistOptionsFor, type ReceivedEntry } from '../../protocol/flist-recv.js';
import { MSG_ERROR_EXIT, PeerMessages, writeMessageInt } from '../../protocol/mplex.js';
import { RemoteError, transferExitCode } from '../../protocol/errors.js';
import { sendFilterList, type FilterList } from '../../protocol/filter.js';
import { remotePath, type DaemonTarget } from './target.js';
import { adoptModuleTimeout } from './socket.js';
import { closeOnAbort } from './abort.js';
import { bigNum, escapeLine, messageText, permString, timeString, type OutputCharset } from './output.js';

export interface RemoteListOptions {
  target: DaemonTarget;
  /** The options rsync's client would send (-r or -d, -l, -a's -ogDtp ...): they decide what the list carries. */
  transfer: TransferOptions;
  session: Omit<SessionOptions, 'host' | 'port'>;
  /** The charset output is checked against (rsync escapes what it cannot show). Default 'utf8'. */
  charset?: OutputCharset;
  /** Rules for the daemon's sender (`--exclude` ...): what it leaves out of the list. */
  filter?: FilterList;
  /** One listing line, newline included, escaped. */
  onLine: (line: Buffer) => void;
  /** Each listed entry as received (raw name bytes), before its line (the library's list()). */
  onEntry?: (entry: ReceivedEntry) => void | Promise<void>;
  /** Daemon text for stdout (MSG_INFO), as rsync shows it (output.ts messageText). */
  onInfo?: (text: string) => void;
  /** Daemon warnings and errors for stderr, as rsync shows them. */
  onError?: (text: string) => void;
  /** Ends the listing when aborted (the CLI's Ctrl-C): the connection is closed. */
  abort?: AbortSignal;
}




/** One listing line, unescaped: permissions, size (14 wide, commas), mtime, name, `-> target` with -l. */
// rsync/generator.c: list_file_entry [list-only-line]
export function listFileEntry(entry: ReceivedEntry, links: boolean): Buffer {
  const head = `${permString(entry.mode)} ${bigNum(entry.size, 1).padStart(14)} ${timeString(entry.mtime)} `;
  const parts = [Buffer.from(head, 'latin1'), entry.name];
  if (links && (entry.mode & S_IFMT) === S_IFLNK) parts.push(Buffer.from(' -> '), entry.symlink ?? Buffer.alloc(0));
  parts.push(Buffer.from('\n'));
  return Buffer.concat(parts);
}

/** Whether rsync's generator lists an entry: active, and not an implied parent directory. */
// rsync/generator.c: recv_generator (its list_only branch)
function listed(entry: ReceivedEntry, protocol: number): boolean {
  if (!entry.active) return false;
  // Protocol >= 30 marks implied directories (--relative) as top dirs without content;
  // rsync's list-only generator skips them when it does not create implied dirs.
  if ((entry.mode & S_IFMT) === S_IFDIR && protocol >= 30 && entry.topDir && entry.contentDir === false) return false;
  return true;
}

export interface RemoteListResult {
  exitCode: number;
  /** Entries listed. */
  listed: number;
}

// rsync/main.c: client_run with list_only (the receiving branch, nothing requested)
export async function listRemote(options: RemoteListOptions): Promise<RemoteListResult> {
  const { transfer, target } = options;
  const charset = options.charset ?? 'utf8';
  const onError = options.onError ?? (() => {});
  // rsync: list_only without -r implies -d (the top directory's entries, not their contents).
  const wire: TransferOptions = { ...transfer, dirs: !transfer.recursive };
  const session = await openModule({ ...options.session, host: target.host, port: target.port }, target.module);
  const { reader, writer, socket } = session;
  closeOnAbort(socket, options.abort);
  const messages = new PeerMessages({
    info: (text) => options.onInfo?.(messageText(text, charset)),
    error: (text) => onError(messageText(text, charset)),
    ioTimeout: (payload) => adoptModuleTimeout(socket, payload, options.session.timeout),
  });
  let demuxForAck: Parameters<typeof acknowledgeErrorExit>[1] | undefined;
  try {
    const args = serverArgs(wire, session.hello.protocol, remotePath(target), true);
    const filter = options.filter;
    const start = await startPull(reader, writer, args, {
      ...(filter && { writeFilterList: (w) => sendFilterList(w, filter, { deleteExcluded: false, role: 'receiver' }) }),
      ...(transfer.checksumChoice && { checksumChoice: parseChecksumName(transfer.checksumChoice) }),
      ...clientCompressOptions(transfer.compress, compressCodecs),
      flist: flistOptionsFor(transfer),
      onMessage: messages.handle,
    });
    demuxForAck = start.demux;
    const { list } = start.flist;
    const protocol = session.hello.protocol;
    let count = 0;
    // rsync's client: an empty list ends the session at once (no phases, no stats).
    if (list.length === 0) {
      const exitCode = transferExitCode(start.flist.ioError | start.demux.ioError, messages.xferErrors);
      // rsync's exit_cleanup tells a protocol >= 31 daemon why we leave.
      if (exitCode && writer.protocol >= 31 && writer.multiplexed) await writeMessageInt(writer, MSG_ERROR_EXIT, exitCode);
      return { exitCode, listed: 0 };
    }
    for (const entry of list) {
      if (!listed(entry, protocol)) continue;
      // A promise holds the listing until the caller took the entry (the library's async iterator).
      const taken = options.onEntry?.(entry);
      if (taken) await taken;
      options.onLine(escapeLine(listFileEntry(entry, transfer.links), charset));
      count++;
    }
    await finishListOnly(reader, writer);
    await session.close();
    return { exitCode: transferExitCode(start.flist.ioError | start.demux.ioError, messages.xferErrors), listed: count };
  } catch (e) {
    if (e instanceof RemoteError && demuxForAck) await acknowledgeErrorExit(writer, demuxForAck, e).catch(() => {});
    throw e;
  } finally {
    socket.destroy();
  }
}
