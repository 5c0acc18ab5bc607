// The daemon's roles, driven from the other side of the wire with the same code the client uses:
// for a client's pull (or listing) the sender over the module's tree; for a client's push the
// generator and receiver into the module through a DestTree. What differs is only the session's
// side (startServer, recvClientFilters, amServer) — never a copy of a role.
// Counterpart: rsync main.c start_server, do_server_sender, do_server_recv.
import { randomInt } from 'node:crypto';
import type { ServerArgs } from '../../protocol/server-args.js';
import { parseChecksumName } from '../../protocol/compat.js';
import { recvClientFilters, startServer } from '../../protocol/session.js';
import { compileFilter, FilterList, type FilterMatcher } from '../../protocol/filter.js';
import { readFinalGoodbye, sendFiles } from '../../protocol/sender.js';
import { writeSenderStats } from '../../protocol/stats.js';
import { MSG_ERROR, MSG_ERROR_EXIT, PeerMessages, writeMessage, writeMessageInt } from '../../protocol/mplex.js';
import { EXIT, exitErrorLine, ProtocolError, RsyncError, transferExitCode, UnsafeNameError, type ExitCode } from '../../protocol/errors.js';
import { isLink, isReg } from '../../protocol/modes.js';
import type { DaemonSocket } from '../transfer/socket.js';
import { localSource, scanSource, type PathFilter, type ScanResult } from '../transfer/scan.js';
import { sessionChecksummer, writeLocalFileList } from '../transfer/send-list.js';
import type { ModuleConfig } from './config.js';
import type { ModuleSession } from './session.js';
import { sanitizeModulePath, stripModule } from './destination.js';
import { logError, logFileListStart } from './log.js';
import { receiveIntoModule } from './receive.js';

/** What a connection brings to its role: the module session, the client's options, the timeout. */
export interface RoleRequest extends ModuleSession {
  args: ServerArgs;
  /** The I/O timeout in force (seconds, 0 = none), told to the client from protocol 31. */
  timeout: number;
}

export interface RoleResult {
  exitCode: ExitCode;
  /** The file list's total size (the log's "total size"). */
  totalSize: number;
}

/** A role that cannot go on: the client is told `text` and rsync's closing line, with `code`. */
class RoleRefusal extends RsyncError {
  constructor(text: string, code: number) {
    super('ERR_RSYNC_SERVE_REFUSED', text, code);
  }
}

// rsync/main.c: start_server
export async function serveRole(r: RoleRequest): Promise<RoleResult> {
  const { reader, writer, args } = r;
  // -z: we have no compression codec, so we offer only "none" (rsync's own name for "-z, but send
  // plain tokens"); a client that can only speak zlib (no negotiation: protocol < 30, an old
  // client, or its own --compress-choice) is refused once the setup phase has been done.
  const negotiates = r.protocol >= 30 && args.clientInfo.includes('v');
  const compress = args.compress;
  const compressList = compress && !compress.choice && negotiates ? (['none'] as const) : undefined;
  // 1. [side-setup] The setup phase, the daemon's half; our output framed; the module's timeout.
  const setup = await startServer(reader, writer, {
    clientInfo: args.clientInfo,
    ...(args.checksumChoice && { checksumChoice: parseChecksumName(args.checksumChoice) }),
    symlinkTimes: true,
    seed: randomInt(0x7fffffff),
    ...(r.timeout && { ioTimeout: r.timeout }),
    ...(compressList && { compressList }),
  });
  try {
    if (compress && !compressList && compress.choice !== 'none') {
      throw refuseRole(`rsync: this daemon (lsyncd serve) does not compress: use --compress-choice=none or leave out -z`, EXIT.UNSUPPORTED);
    }
    return args.sender ? await serveSender(r, setup) : await receiveIntoModule(r, setup);
  } catch (e) {
    if (e instanceof RoleRefusal) {
      await tellClient(r, e.message, e.exitCode);
      return { exitCode: e.exitCode, totalSize: 0 };
    }
    // A client that breaks the protocol (an unsafe name, a count out of bounds...) is told why,
    // as rsync's server tells it before exiting; the connection then closes.
    const fault = clientFault(e);
    if (!fault) throw e;
    if (!told.has(e as object)) {
      await tellClient(r, fault.text, fault.code).catch(() => {});
      await closeAfterError(r.io);
    }
    return { exitCode: fault.code, totalSize: 0 };
  }
}

/** Client faults already told (by abortRole, before the connection was cut). */
const told = new WeakSet<object>();

/**
 * The generator and receiver stop together on the first failure, and the connection is cut so
 * the other's pending read ends; a fault of the client's is told to it first, as rsync does
 * before it exits.
 */
// rsync/cleanup.c: _exit_cleanup (the message before the exit)
export async function abortRole(r: RoleRequest, reason: unknown): Promise<void> {
  try {
    const fault = clientFault(reason);
    if (fault && typeof reason === 'object' && reason !== null && !told.has(reason)) {
      told.add(reason);
      await tellClient(r, fault.text, fault.code).catch(() => {});
      await closeAfterError(r.io);
    }
  } finally {
    r.io.destroy();
  }
}

/** How long a client told of its fault may take to close before we cut the connection (seconds). */
const ERROR_LINGER_SECONDS = 5;

/**
 * After an error told to the client: our FIN, and whatever the client still sends read and
 * dropped until it closes (bounded), so closing with its bytes unread does not reset the
 * connection and lose our error text on its way to the client.
 */
// rsync/io.c: noop_io_until_death
async function closeAfterError(io: DaemonSocket): Promise<void> {
  const socket = io.socket;
  if (socket.destroyed) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      socket.off('end', done);
      socket.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ERROR_LINGER_SECONDS * 1000);
    socket.once('end', done);
    socket.once('close', done);
    socket.end();
    socket.resume();
  });
  io.destroy();
}

/** Why a protocol library error is the client's doing, in the words its user is shown; or null. */
// rsync/flist.c: recv_file_entry ("ABORTING due to unsafe pathname from sender")
function clientFault(e: unknown): { text: string; code: number } | null {
  if (!(e instanceof ProtocolError)) return null;
  // The library words a peer's faults from a client's chair ("from the daemon"); here the peer is the client.
  const text = e.message.replace(/ from the daemon\b/, ' from the client');
  if (e instanceof UnsafeNameError && UNSAFE_SHAPE.test(e.message)) {
    return { text: `ABORTING due to unsafe pathname from sender: ${e.rawName.toString('utf8')}`, code: EXIT.UNSUPPORTED };
  }
  return { text: `ERROR: ${text}`, code: e.exitCode };
}

/** The unsafe-name errors about a name's shape (rsync's "unsafe pathname"), not its length. */
const UNSAFE_SHAPE = /\((absolute|'\.\.' component|'\.' component|empty component|NUL byte)\)/;

/** rsync's way out of a server role: the error text, the closing line, (31+) MSG_ERROR_EXIT. */
// rsync/cleanup.c: _exit_cleanup (a server's error exit)
export async function tellClient(r: RoleRequest, text: string, code: number): Promise<void> {
  const { writer } = r;
  const lines = [`${text.replace(/\n$/, '')}\n`, `${exitErrorLine(code, 'serve/roles.ts', r.args.sender ? 'sender' : 'Receiver', `lsyncd ${r.version}`)}\n`];
  for (const line of lines) {
    logError(r.log, line);
    await writeMessage(writer, MSG_ERROR, Buffer.from(line));
  }
  if (writer.protocol >= 31) await writeMessageInt(writer, MSG_ERROR_EXIT, code);
  await writer.flush();
}

/** The refusal of a role, for receive.ts too. */
export function refuseRole(text: string, code: number): RoleRefusal {
  return new RoleRefusal(text, code);
}

/**
 * The sender's view of the rules: the client's (compiled for the sender) and the module's own
 * `exclude`/`include`/`filter` (which hide files from every client); excluded if either excludes.
 */
function senderFilter(client: FilterList, module: ModuleConfig): PathFilter | undefined {
  const matchers: FilterMatcher[] = [];
  if (module.filterRules.length) {
    const daemon = new FilterList();
    for (const rule of module.filterRules) daemon.addFilter(rule);
    matchers.push(compileFilter(daemon, { side: 'sender' }));
  }
  if (client.rules.length) matchers.push(compileFilter(client, { side: 'sender' }));
  if (!matchers.length) return undefined;
  const wrap = (ms: FilterMatcher[]): PathFilter => ({
    isExcluded: (relPath, isDir) => ms.some((m) => !m.empty && m.isExcluded(relPath, isDir)),
    enter: (relDir) => wrap(ms.map((m) => m.enter(relDir))),
  });
  return wrap(matchers);
}

// rsync/main.c: do_server_sender
async function serveSender(r: RoleRequest, setup: Awaited<ReturnType<typeof startServer>>): Promise<RoleResult> {
  const { reader, writer, args, module } = r;
  // 2. [side-filter] The client's frames (30+) and its filter list.
  const messages = new PeerMessages({ error: (text) => logError(r.log, text) });
  const { filters, demux } = await recvClientFilters(reader, {
    role: 'sender',
    deleteMode: args.deleteMode !== undefined,
    deleteExcluded: args.deleteExcluded,
    pruneEmptyDirs: args.pruneEmptyDirs,
    onMessage: messages.handle,
  });
  // 3. A write-only module sends nothing.
  if (module.writeOnly) throw refuseRole('ERROR: module is write only', EXIT.SYNTAX);
  // 4. The list of what the client asked for, from the module's tree (nothing followed out of it).
  logFileListStart(r.log, true);
  const paths = args.paths.slice(1).map((p) => stripModule(module.name, p));
  if (paths.length === 0) paths.push('');
  const scans: ScanResult[] = [];
  const filter = senderFilter(filters, module);
  for (const path of paths) {
    const { parts, trailingSlash } = sanitizeModulePath(path);
    const source = [module.path, ...parts].join('/') + (trailingSlash || parts.length === 0 ? '/' : '');
    try {
      scans.push(
        await scanSource(source, {
          transfer: args.transfer,
          ...(filter && { filter }),
          onWarning: (text) => logError(r.log, text),
        }),
      );
    } catch (e) {
      // rsync: a missing path is an error for that path; the others are still sent.
      const shown = [module.name, ...parts].join('/');
      await writeMessage(writer, MSG_ERROR, Buffer.from(`rsync: [sender] link_stat "${shown}" (in ${module.name}) failed: No such file or directory (2)\n`));
      logError(r.log, (e as Error).message);
      scans.push({ entries: [], ioError: 1, userNames: new Map(), groupNames: new Map() });
    }
  }
  const scan = mergeScans(scans);
  const { sorted } = await writeLocalFileList(writer, scan, args.transfer, setup);
  await writer.flush();
  const totalSize = sorted.reduce((sum, e) => sum + (isReg(e.mode) || isLink(e.mode) ? e.size : 0), 0);
  if (sorted.length === 0) {
    // rsync's do_server_sender: an empty list ends the session (the client reports the error).
    return { exitCode: transferExitCode(scan.ioError, 0), totalSize };
  }
  // 5. The requests, phase by phase; then our totals and the goodbye.
  const checksummer = await sessionChecksummer(r.protocol, setup);
  const readBefore = r.io.bytesRead;
  const writtenBefore = r.io.bytesWritten;
  const sent = await sendFiles(reader, writer, sorted, checksummer, localSource(), {
    dryRun: args.transfer.dryRun,
    amServer: true,
    onWarning: (text) => logError(r.log, text),
  });
  writeSenderStats(writer, {
    totalRead: r.io.bytesRead - readBefore,
    totalWritten: r.io.bytesWritten - writtenBefore,
    totalSize,
    flistBuildTime: r.protocol >= 29 ? 0 : null,
    flistXferTime: r.protocol >= 29 ? 0 : null,
  });
  await writer.flush();
  await readFinalGoodbye(reader, writer, sent.stats, { amServer: true });
  await writer.flush();
  return { exitCode: transferExitCode(scan.ioError | sent.ioError | (demux?.ioError ?? 0), messages.xferErrors), totalSize };
}

/** Several paths' scans as one list (rsync sends one list for all the paths of a request). */
function mergeScans(scans: ScanResult[]): ScanResult {
  if (scans.length === 1) return scans[0]!;
  const merged: ScanResult = { entries: [], ioError: 0, userNames: new Map(), groupNames: new Map() };
  const seen = new Set<string>();
  for (const s of scans) {
    merged.ioError |= s.ioError;
    for (const e of s.entries) {
      const key = e.name.toString('latin1');
      if (seen.has(key)) continue;
      seen.add(key);
      merged.entries.push(e);
    }
    for (const [k, v] of s.userNames) merged.userNames.set(k, v);
    for (const [k, v] of s.groupNames) merged.groupNames.set(k, v);
  }
  return merged;
}
