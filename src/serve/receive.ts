// The daemon's side of a client's push: a read-only module refuses; the client's filter list
// (protecting files from --delete) and its file list are read; the destination inside the module
// is decided as rsync's get_local_name decides it; then the generator and the receiver run into
// it through the same receiveIntoTree our pull uses, as the server (no totals to read).
// Counterpart: rsync main.c do_server_recv, get_local_name, do_recv.
import type { TransferOptions } from '../../protocol/args.js';
import type { SetupResult } from '../../protocol/compat.js';
import { digestLength } from '../../protocol/checksum.js';
import { flistOptionsFor, receiveFileList } from '../../protocol/flist-recv.js';
import { recvClientFilters } from '../../protocol/session.js';
import { forwardModuleFilesFrom, readModuleFilesFrom } from './files-from.js';
import { parseSizeArg, type ServerArgs } from '../../protocol/server-args.js';
import { MSG_DELETED, MSG_ERROR, MSG_ERROR_XFER, MSG_INFO, MSG_WARNING, PeerMessages, writeMessage } from '../../protocol/mplex.js';
import { fullName, tellClient } from './client-messages.js';
import { EXIT, transferExitCode } from '../../protocol/errors.js';
import { isDir, isLink } from '../../protocol/modes.js';
import { receiveIntoTree } from '../transfer/receive.js';
import { TempDirError } from '../transfer/dest-tree.js';
import { receiverXattrs } from '../transfer/local-xattrs.js';
import { fakeSuperXattrOptions } from '../transfer/fake-super.js';
import { receiverAcls } from '../transfer/local-acls.js';
import { refusedAsRole, xattrOptionsOrRefusal } from './refused-options.js';
import type { ByteReader } from '../../protocol/io.js';
import { tweakMode } from '../../protocol/chmod.js';
import { dirDepth, localName, ModulePathError, sanitizeModulePath, stripModule, SYMLINK_PREFIX } from './destination.js';
import { sanitizePath } from '../../protocol/sanitize-path.js';
import { compileModuleRules, destinationIsModuleExcluded, moduleFilterAt } from './module-filter.js';
import { moduleChmod } from './module-chmod.js';
import { formatLogLine, logCreatedDirectory, logError, logFileListStart, logFormatHas } from './log.js';
import { abortRole, refuseRole } from './role-exit.js';
import { logSession, pushTransferLog } from './transfer-log.js';
import type { RoleRequest, RoleResult } from './request.js';

/**
 * What the receiving roles take from the client's options: its TransferOptions, with the
 * receiving side's settings that ServerArgs keeps apart (the delete mode, the basis dirs) and the
 * module's own (`ignore errors`, `numeric ids`).
 */
function receivingTransfer(args: ServerArgs, module: { ignoreErrors: boolean; numericIds: boolean; path: string }): TransferOptions {
  const basis = args.basisDirs;
  // --partial-dir: sanitized as -T is (an absolute one under the module dir; a relative one, per
  // directory, loses the '..' that climb: rsyncd keeps as many as the destination is deep).
  const sanitized = args.partialDir === undefined ? undefined : moduleSanitized(args.partialDir, module.path).replace(/(.)\/+$/, '$1');
  const partialDir = sanitized === undefined || sanitized === '' || sanitized === '.' ? undefined : sanitized;
  // -T: rsyncd sanitizes it: no '..' that climbs; a relative one is the destination's, an
  // absolute one the module's (sanitize_path roots it at the module dir).
  const tempDir = args.tempDir === undefined ? undefined : moduleSanitized(args.tempDir, module.path);
  return {
    ...args.transfer,
    ...(args.deleteMode && { deleteWhen: args.deleteMode }),
    ...(args.maxDelete !== undefined && { maxDelete: args.maxDelete }),
    force: args.force,
    ignoreErrors: args.ignoreErrors || module.ignoreErrors,
    sizeOnly: args.sizeOnly,
    ignoreExisting: args.ignoreExisting,
    existing: args.existing,
    update: args.update,
    deleteMissingArgs: args.deleteMissingArgs,
    numericIds: args.numericIds || module.numericIds,
    ...(basis.length && { altDest: { kind: basis[0]!.kind, dirs: basis.map((b) => b.dir) } }),
    ...(args.maxSize !== undefined && { maxSize: sizeLimit(args.maxSize, 'max-size') }),
    ...(args.minSize !== undefined && { minSize: sizeLimit(args.minSize, 'min-size') }),
    ...(args.inplace && { inplace: true }),
    ...(args.partial && { partial: true }),
    // rsyncd sanitizes the partial dir too (above).
    ...(partialDir !== undefined && { partialDir }),
    // --delay-updates: through the partial dir (ServerArgs gives it rsync's .~tmp~ when none is named).
    ...(args.delayUpdates && partialDir !== undefined && { delayUpdates: true }),
    ...(tempDir !== undefined && { tempDir }),
    ...(args.append > 0 && { append: Math.min(args.append, 2) }),
    ...((args.backup || args.backupDir !== undefined) && { backup: true }),
    // rsyncd sanitizes the backup dir (sanitize_paths, depth 0): no '..' that climbs; an absolute
    // one is rooted at the module dir.
    ...(args.backupDir !== undefined && { backupDir: moduleSanitized(args.backupDir, module.path) }),
    ...(args.suffix !== undefined && { suffix: args.suffix }),
    ...(args.usermap !== undefined && { usermap: args.usermap }),
    ...(args.groupmap !== undefined && { groupmap: args.groupmap }),
    ...(args.safeLinks && { safeLinks: true }),
    ...(args.sparse && { sparse: true }),
    ...(args.pruneEmptyDirs && { pruneEmptyDirs: true }),
    ...(args.omitDirTimes && { omitDirTimes: true }),
    ...(args.omitLinkTimes && { omitLinkTimes: true }),
    ...(args.executability && { executability: true }),
    ...(args.keepDirlinks && { keepDirlinks: true }),
  };
}

/** A client's path option as rsyncd sanitizes it: relative, cleaned of climbing '..'; absolute, below the module dir. */
// rsync/util1.c: sanitize_path (rootdir NULL: module_dir for a path starting with '/')
function moduleSanitized(given: string, modulePath: string): string {
  const cleaned = sanitizePath(Buffer.from(given), 0).toString();
  if (!given.startsWith('/')) return cleaned;
  const root = modulePath.length > 1 ? modulePath.replace(/\/+$/, '') : '';
  return cleaned === '.' ? root || '/' : `${root}/${cleaned}`;
}

/** A --max-size/--min-size argument (already checked by the parse) in bytes. */
function sizeLimit(arg: string, name: string): number {
  return parseSizeArg(arg, 'b', name, 0, -1);
}

// rsync/main.c: do_server_recv
export async function receiveIntoModule(r: RoleRequest, setup: SetupResult): Promise<RoleResult> {
  const { reader, writer, args, module } = r;
  // 2. A read-only module takes nothing (rsync refuses before reading the filter list).
  if (r.readOnly) throw refuseRole('ERROR: module is read only', EXIT.SYNTAX);
  // 3. [side-filter] The client's frames (30+) and, when it deletes, its filter list.
  const messages = new PeerMessages({ error: (text) => logError(r.log, text) });
  const { filters, demux } = await recvClientFilters(reader, {
    role: 'receiver',
    deleteMode: args.deleteMode !== undefined,
    deleteExcluded: args.deleteExcluded,
    pruneEmptyDirs: args.pruneEmptyDirs,
    budget: r.memory,
    onMessage: messages.handle,
  });
  // 4. The client's file list (every name checked, counts bounded), its modes tweaked by the
  // module's `incoming chmod` (an invalid one is logged first, as rsync logs it; symlinks keep theirs).
  const chmod = moduleChmod(module, 'incoming', r.log);
  logFileListStart(r.log, false);
  const transfer = receivingTransfer(args, module);
  // --files-from=:FILE from a pushing client: the module's list goes to its sender while its file list comes (files-from.ts).
  const listBytes = args.filesFrom !== undefined ? readModuleFilesFrom(r, args.filesFrom) : null;
  // -X: each entry's xattr set follows it in the list.
  const xattrs = receiverXattrs(fakeSuperXattrOptions(xattrOptionsOrRefusal(transfer, r.protocol, setup.compatFlags), module.fakeSuper), r.memory);
  // -A: its ACLs come first (below protocol 30: rsync's refusal, exit 2).
  const acls = refusedAsRole(() => receiverAcls(transfer, r.protocol));
  const receiving = receiveFileList(reader, {
    // The id lists come unless the client said --numeric-ids: a module's `numeric ids` only turns
    // the mapping off (rsyncd's numeric_ids = -1, "without breaking protocol").
    ...flistOptionsFor({ ...transfer, numericIds: args.numericIds }),
    ...((acls || xattrs) && {
      afterEntry: async (from: ByteReader, w: number, mode: number) => (acls ? await acls.receive(from, w, mode) : 0) + (xattrs ? await xattrs.receive(from, w) : 0),
    }),
    protocol: r.protocol,
    compatFlags: setup.compatFlags,
    checksumLength: digestLength(setup.checksum),
    budget: r.memory,
  });
  receiving.catch(() => {}); // awaited below (with the forwarding, whichever fails first)
  const [flist] = await Promise.all([receiving, listBytes && forwardModuleFilesFrom(writer, listBytes, args.from0)]);
  const { list } = flist;
  if (chmod) {
    for (let ndx = 0; ndx < list.length; ndx++) {
      const mode = list.mode(ndx);
      if (!isLink(mode) && mode) list.setMode(ndx, tweakMode(mode, chmod));
    }
  }
  // Symlink targets as rsyncd stores them: munged (`munge symlinks`), or cleaned of anything that
  // points above the link's own directory when the module is not a chroot of its own.
  for (let ndx = 0; ndx < list.length; ndx++) {
    const target = list.symlink(ndx);
    if (!isLink(list.mode(ndx)) || !target) continue;
    if (module.mungeSymlinks) list.replaceSymlink(ndx, Buffer.concat([SYMLINK_PREFIX, target]));
    else if (!module.useChroot) list.replaceSymlink(ndx, sanitizePath(target, dirDepth(list.name(ndx))));
  }
  // 5. Where it lands: the path after the module name, inside the module, unless the module's
  // own rules exclude it.
  const destPath = stripModule(module.name, args.paths[1] ?? '');
  const destParts = sanitizeModulePath(destPath).parts;
  const rules = compileModuleRules(module);
  if (rules && destinationIsModuleExcluded(rules, destParts)) {
    throw refuseRole(`ERROR: daemon has excluded destination "${destPath}"`, EXIT.FILESELECT);
  }
  let dest;
  try {
    dest = localName(module.path, destPath, { count: list.length, firstIsDir: list.length > 0 && isDir(list.mode(0)) }, { dryRun: transfer.dryRun, module: module.name });
  } catch (e) {
    if (e instanceof ModulePathError) throw refuseRole(e.message, e.exitCode);
    throw e;
  }
  // rsync's get_local_name tells a -v or -i client (FINFO), which the daemon's log also gets.
  if (dest.created && (args.verbose > 0 || args.itemize)) {
    const created = destPath.replace(/\/+$/, ''); // get_local_name has trimmed the trailing slash
    logCreatedDirectory(r.log, created);
    await writeMessage(writer, MSG_INFO, Buffer.from(`created directory ${created}\n`));
  }
  // 6. Generator and receiver, side by side, as the server. The module's rules refuse what they
  // exclude (rsync's FERROR_XFER: the client sees it, exit 23) and keep it from --delete.
  const daemonFilter = rules && moduleFilterAt(rules, destParts.join('/'));
  // rsync's full_fname: a name is shown from the module's root.
  const destRoot = Buffer.from(destParts.length ? `/${destParts.join('/')}/` : '');
  const result = await receiveIntoTree({
    reader,
    writer,
    setup,
    files: list,
    ...(xattrs && { xattrs }),
    ...(acls && { acls }),
    userNames: flist.userNames,
    groupNames: flist.groupNames,
    dest: dest.dir,
    // A single file under another name: `rsync -t f host::mod/newname` (rsync's local_name).
    ...(dest.rename !== undefined && { localName: Buffer.from(dest.rename) }),
    transfer,
    ignoreTimes: args.ignoreTimes,
    ...(filters.rules.length && { protect: { list: filters, deleteExcluded: args.deleteExcluded } }),
    ...(chmod && { tweakMode: (mode: number) => tweakMode(mode, chmod) }),
    ...(daemonFilter && {
      daemonExcluded: (name: Buffer, isDir: boolean) => daemonFilter.isExcluded(name, isDir),
      onDaemonRefused: (name: Buffer, isDir: boolean) => tellRefused(r, name, isDir),
    }),
    senderIoError: () => flist.ioError | (demux?.ioError ?? 0),
    amServer: true,
    rootCreated: dest.created,
    confineBasisTo: module.path,
    // `fake super = yes`: owners, modes and devices stored in user.rsync.%stat (fake-super.ts).
    ...(module.fakeSuper && { fakeSuper: { shown: (name: Buffer) => fullName(destRoot, name, module.name).toString() } }),
    onWarning: (text) => logError(r.log, text),
    // rsyncd's FERROR_XFER from its generator: the client shows it and exits 23.
    onFileError: (text) => tellClient(writer, r.log, MSG_ERROR_XFER, Buffer.from(`rsync: [generator] ${text}`)),
    // rsyncd's FERROR_XFER from its receiver (a file not put in place), names shown inside the module.
    onError: (text) => void tellClient(writer, r.log, MSG_ERROR_XFER, Buffer.from(`rsync: [receiver] ${text}`)),
    fullName: (name: Buffer) => fullName(destRoot, name, module.name).toString(),
    // rsyncd tells the client the redo's failure (FERROR_XFER: exit 23 there) and, to a -v or -i
    // client, the first attempt's (FWARNING); both are logged.
    onFailedVerification: (text, final) => {
      if (final) return tellClient(writer, r.log, MSG_ERROR_XFER, Buffer.from(text));
      if (args.verbose > 0 || args.itemize) return tellClient(writer, r.log, MSG_WARNING, Buffer.from(text));
      logError(r.log, text);
    },
    ...withDeletionsTold(r, pushTransferLog(r, setup, dest.dir, transfer)),
    // doRecv hands its first failure to onAbort (receiveIntoTree passes the callback through).
    onAbort: (reason?: unknown) => void abortRole(r, reason),
  }).catch((e: unknown) => {
    // -T names no directory: rsync's receiver ends with its words (exit 1) before any transfer.
    throw e instanceof TempDirError ? refuseRole(e.message, e.exitCode) : e;
  });
  await writer.flush();
  const failures = messages.xferErrors + result.receiver.failedFiles + result.generator.failed;
  return { exitCode: transferExitCode(flist.ioError | result.generator.ioError, failures), totalSize: flist.totalSize };
}

/**
 * A client that shows deletions (-v, -i, --info=del) is told of each, as rsync's log_delete tells
 * it: from protocol 29 a MSG_DELETED with the name (a directory's with a trailing NUL), which the
 * client words itself; before, the line itself in a MSG_INFO, in the format the client sent when
 * it shows %o or %i, else `deleting %n`. Added to the transfer log's own onDeleted, if any.
 */
// rsync/log.c: log_delete (the am_server branch)
function withDeletionsTold<T extends { onDeleted?: (name: Buffer, isDir: boolean, mode: number) => void }>(r: RoleRequest, callbacks: T): T {
  const { args } = r;
  const shows = args.verbose > 0 || args.itemize || args.info.some((i) => /^del\d*$/i.test(i));
  if (!shows) return callbacks;
  const logged = callbacks.onDeleted;
  const shown = args.outFormat;
  const format = shown && (logFormatHas(shown, 'o') || logFormatHas(shown, 'i')) ? shown : 'deleting %n';
  const session = logSession(r, false);
  return {
    ...callbacks,
    onDeleted: (name: Buffer, isDir: boolean, mode: number) => {
      logged?.(name, isDir, mode);
      const message =
        r.protocol >= 29
          ? writeMessage(r.writer, MSG_DELETED, isDir ? Buffer.concat([name, Buffer.alloc(1)]) : name)
          : writeMessage(r.writer, MSG_INFO, Buffer.concat([formatLogLine(format, { op: 'del.', name, dir: '', mode, length: 0, mtime: 0, iflags: 0 }, session), Buffer.from('\n')]));
      void message.catch(() => {}); // a dead connection ends the role elsewhere
    },
  };
}

/** A name the module's rules refused, told to the client and logged as rsyncd words it. */
// rsync/generator.c: recv_generator ("daemon refused to receive", then skipping_dir_contents)
async function tellRefused(r: RoleRequest, name: Buffer, isDir: boolean): Promise<void> {
  const refused = Buffer.concat([Buffer.from(`ERROR: daemon refused to receive ${isDir ? 'directory' : 'file'} "`), name, Buffer.from('"\n')]);
  logError(r.log, refused.subarray(0, -1));
  await writeMessage(r.writer, MSG_ERROR_XFER, refused);
  if (!isDir) return;
  const skipping = '*** Skipping any contents from this failed directory ***';
  logError(r.log, skipping);
  await writeMessage(r.writer, MSG_ERROR, Buffer.from(skipping + '\n'));
}
