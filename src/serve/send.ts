// The daemon's side of a client's pull or listing: the client's filter list, a write-only module
// refused, the module's tree scanned (module filter rules hide files from every client, `ignore
// nonreadable` what the daemon cannot read), the modes tweaked (`outgoing chmod`), the list
// written, the requests served by the same sender our push uses, then the totals and the goodbye.
// Counterpart: rsync main.c do_server_sender.
import { realpathSync } from 'node:fs';
import type { SetupResult } from '../../protocol/compat.js';
import { recvClientFilters } from '../../protocol/session.js';
import { compileFilter, FilterList, type FilterMatcher } from '../../protocol/filter.js';
import { readFinalGoodbye, sendFiles, senderWriteMode } from '../../protocol/sender.js';
import { writeSenderStats } from '../../protocol/stats.js';
import { MSG_ERROR, MSG_WARNING, PeerMessages, writeMessage } from '../../protocol/mplex.js';
import { fullName, openFailedMessage, tellClient, walkFailureMessage } from './client-messages.js';
import { EXIT, transferExitCode } from '../../protocol/errors.js';
import { IOERR_GENERAL } from '../../protocol/constants.js';
import { filesFromSources, listedBelow } from './files-from.js';
import { isLink } from '../../protocol/modes.js';
import { PackedFileList, PACKED_DROPPED } from '../../protocol/flist-packed.js';
import { localSource, scanSource, type PathFilter, type ScanResult, type WalkFailure } from '../transfer/scan.js';
import { sessionChecksummer, writeLocalFileList } from '../transfer/send-list.js';
import { senderXattrs } from '../transfer/local-xattrs.js';
import { CorruptStatRecordError, fakeSuperXattrOptions, foldStatRecords } from '../transfer/fake-super.js';
import { refusedAsRole, xattrOptionsOrRefusal } from './refused-options.js';
import { afterEntries, senderAcls } from '../transfer/local-acls.js';
import { tweakMode } from '../../protocol/chmod.js';
import { compileModuleRules, moduleFilterAt, pathIsModuleExcluded } from './module-filter.js';
import { moduleChmod } from './module-chmod.js';
import { sanitizeModulePath, stripModule, unmungeSymlink } from './destination.js';
import { logError, logFileListStart } from './log.js';
import type { RoleRequest, RoleResult } from './request.js';
import { refuseRole } from './role-exit.js';
import { pullTransferLog } from './transfer-log.js';

/**
 * The sender's view of the rules: the client's (compiled for the sender) and the module's own
 * (which hide files from every client, matched from the module root: names here are relative to
 * `base`); excluded if either excludes.
 */
function senderFilter(client: FilterList, module: FilterMatcher | null, base: string): PathFilter | undefined {
  const filters: PathFilter[] = [];
  if (module) filters.push(moduleFilterAt(module, base));
  if (client.rules.length) {
    const matcher = compileFilter(client, { side: 'sender' });
    if (!matcher.empty) filters.push(matcherFilter(matcher));
  }
  if (!filters.length) return undefined;
  const wrap = (fs: PathFilter[]): PathFilter => ({
    isExcluded: (relPath, isDir) => fs.some((f) => f.isExcluded(relPath, isDir)),
    enter: (relDir) => wrap(fs.map((f) => (f.enter ? f.enter(relDir) : f))),
  });
  return wrap(filters);
}

/** A compiled filter as the scan takes it. */
function matcherFilter(m: FilterMatcher): PathFilter {
  return { empty: m.empty, isExcluded: (relPath, isDir) => !m.empty && m.isExcluded(relPath, isDir), enter: (relDir) => matcherFilter(m.enter(relDir)) };
}

// rsync/main.c: do_server_sender
export async function serveSender(r: RoleRequest, setup: SetupResult): Promise<RoleResult> {
  const { reader, writer, args, module } = r;
  // 2. [side-filter] The client's frames (30+) and its filter list.
  const messages = new PeerMessages({ error: (text) => logError(r.log, text) });
  const { filters, demux } = await recvClientFilters(reader, {
    role: 'sender',
    deleteMode: args.deleteMode !== undefined,
    deleteExcluded: args.deleteExcluded,
    pruneEmptyDirs: args.pruneEmptyDirs,
    budget: r.memory,
    onMessage: messages.handle,
  });
  // 3. A write-only module sends nothing.
  if (module.writeOnly) throw refuseRole('ERROR: module is write only', EXIT.SYNTAX);
  // 4. The list of what the client asked for, from the module's tree (nothing followed out of it),
  // with the module's `outgoing chmod` (an invalid one is logged first, as rsync logs it).
  const chmod = moduleChmod(module, 'outgoing', r.log);
  logFileListStart(r.log, true);
  const paths = args.paths.slice(1).map((p) => stripModule(module.name, p));
  if (paths.length === 0) paths.push('');
  const scans: ScanResult[] = [];
  const rules = compileModuleRules(module);
  // -L/--copy-unsafe-links may follow a link out of the module: listed, never read (as rsyncd's confined opens).
  const confine = realpathSync(module.path);
  const relative = !!args.transfer.relative;
  // --files-from: the names come from the client (`-`) or from a file in the module; they are
  // listed below the one path the client gave (rsync takes no more with a list).
  const listed = args.filesFrom !== undefined ? await filesFromSources(r, args.filesFrom, relative, demux) : null;
  let excludedNames = 0; // listed names below a directory the module excludes: left out, an error (exit 23)
  // What the walk could not list (vanished, unreadable): told to the client in rsyncd's words once
  // its path is scanned (rsyncd's come while it writes the list), from the name shown as full_fname shows it.
  const walkFailures: WalkFailure[] = [];
  const transferRoot = transferRootOf(paths[0]!, relative);
  for (const path of paths) {
    const { parts, trailingSlash } = sanitizeModulePath(path);
    const contents = trailingSlash || parts.length === 0;
    // -R: the names are the path from the module's root (walk-options.ts relativeSource).
    const source = listed
      ? [module.path, ...parts].join('/') + '/'
      : relative
        ? `${module.path.replace(/\/+$/, '')}/./${parts.join('/')}${contents ? '/' : ''}`
        : [module.path, ...parts].join('/') + (contents ? '/' : '');
    // The list's names are relative to the path's directory (its parent, without a trailing slash);
    // a --files-from list's to the path itself.
    const filter = senderFilter(filters, rules, listed ? parts.join('/') : relative ? '' : (contents ? parts : parts.slice(0, -1)).join('/'));
    try {
      // rsync: a path the module's rules exclude is as good as missing.
      if (rules && pathIsModuleExcluded(rules, parts)) throw new Error(`"${parts.join('/')}" is excluded by the module's rules`);
      scans.push(
        await scanSource(source, {
          transfer: args.transfer,
          ...(filter && { filter }),
          ...(module.ignoreNonreadable && { ignoreNonreadable: true }),
          ...(listed && { filesFrom: { sources: listedBelow(listed, rules, parts, (name) => {
            excludedNames++;
            logError(r.log, `link_stat "${name}" (in ${module.name}) failed: excluded by the module's rules`);
          }) } }),
          confine,
          onWarning: (text) => logError(r.log, text),
          onWalkFailure: (failure) => walkFailures.push(failure),
        }),
      );
      for (const failure of walkFailures.splice(0)) {
        const { code, line } = walkFailureMessage(failure, fullName(transferRoot, failure.name, module.name), r.protocol);
        await tellClient(writer, r.log, code, line);
      }
    } catch (e) {
      // rsync: a missing path is an error for that path; the others are still sent.
      const shown = [module.name, ...parts].join('/');
      await writeMessage(writer, MSG_ERROR, Buffer.from(`rsync: [sender] link_stat "${shown}" (in ${module.name}) failed: No such file or directory (2)\n`));
      logError(r.log, (e as Error).message);
      scans.push({ list: new PackedFileList(), fileIds: new Map(), ioError: 1, userNames: new Map(), groupNames: new Map() });
    }
  }
  const scan = mergeScans(scans);
  if (excludedNames) scan.ioError |= IOERR_GENERAL;
  // A munging module sends the targets clients pushed (the size stays the stored link's, as rsync's).
  const { list } = scan;
  // `fake super = yes`: each file's stored owner, mode and device, as pushed (fake-super.ts).
  // A corrupt record ends the session as rsyncd's get_stat_xattr does (its error, exit 11).
  if (module.fakeSuper) {
    const shown = (name: Buffer) => fullName(transferRoot, name, module.name).toString();
    try {
      foldStatRecords(list, args.transfer, (text) => logError(r.log, text), shown);
    } catch (e) {
      if (e instanceof CorruptStatRecordError) throw refuseRole(e.message, e.exitCode);
      throw e;
    }
  }
  if (module.mungeSymlinks) for (const [i, target] of list.symlinks) list.symlinks.set(i, unmungeSymlink(target));
  // `outgoing chmod`: the modes the list carries (symlinks keep theirs).
  if (chmod) {
    for (let i = 0; i < list.count; i++) {
      const mode = list.mode[i]!;
      if (!isLink(mode) && mode) list.mode[i] = tweakMode(mode, chmod);
    }
  }
  // -X: each entry's xattr set follows it (read as it is listed); -A: its ACLs before that.
  const xattrOptions = fakeSuperXattrOptions(xattrOptionsOrRefusal(args.transfer, r.protocol, setup.compatFlags), module.fakeSuper);
  const withXattrs = xattrOptions && senderXattrs(list, writer, xattrOptions, args.transfer, (text) => logError(r.log, text));
  const acls = refusedAsRole(() => senderAcls(list, writer, args.transfer, r.protocol, (text) => logError(r.log, text)));
  const { sorted } = await writeLocalFileList(writer, scan, args.transfer, setup, afterEntries(acls, withXattrs?.afterEntry));
  await writer.flush();
  const totalSize = sorted.totalSize();
  if (sorted.length === 0) {
    // rsync's do_server_sender: an empty list ends the session (the client reports the error).
    return { exitCode: transferExitCode(scan.ioError, 0), totalSize };
  }
  // 5. The requests, phase by phase; then our totals and the goodbye.
  const checksummer = await sessionChecksummer(r.protocol, setup);
  const readBefore = r.io.bytesRead;
  const writtenBefore = r.io.bytesWritten;
  const sent = await sendFiles(reader, writer, sorted, checksummer, localSource(scan.walk), {
    dryRun: args.transfer.dryRun,
    amServer: true,
    compression: setup.tokens ?? null,
    ...senderWriteMode(args, setup.compatFlags),
    ...(withXattrs && { xattrs: withXattrs.sender.inOrder(sorted.order) }),
    onWarning: (text) => logError(r.log, text),
    // rsyncd tells the client too (FWARNING), naming the file as its full_fname does.
    onDiminished: (name) => tellClient(writer, r.log, MSG_WARNING, Buffer.concat([Buffer.from('skipped diminished file: '), fullName(transferRoot, name, module.name)])),
    // "file has vanished" (FWARNING) / "send_files failed to open" (FERROR_XFER), told and logged.
    onOpenFailed: (entry, failure) => {
      const { code, line } = openFailedMessage(failure, fullName(transferRoot, entry.name, module.name), r.protocol);
      return tellClient(writer, r.log, code, line);
    },
    ...pullTransferLog(r, setup),
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

/** rsync's full_fname prefix for the list's names: the module's root to the transfer root (curr_dir past the module's path). */
function transferRootOf(firstPath: string, relative: boolean): Buffer {
  const first = sanitizeModulePath(firstPath);
  const rootParts = relative ? [] : first.trailingSlash || first.parts.length === 0 ? first.parts : first.parts.slice(0, -1);
  return Buffer.from(rootParts.length ? `/${rootParts.join('/')}/` : '');
}

/** Several paths' scans as one list (rsync sends one list for all the paths of a request). */
function mergeScans(scans: ScanResult[]): ScanResult {
  if (scans.length === 1) return scans[0]!;
  const merged: ScanResult = { list: new PackedFileList(), fileIds: new Map(), ioError: 0, userNames: new Map(), groupNames: new Map(), walk: scans.find((s) => s.walk)?.walk ?? null };
  const seen = new Set<string>();
  for (const s of scans) {
    merged.ioError |= s.ioError;
    const rootBase = merged.list.roots.length;
    merged.list.roots.push(...s.list.roots);
    for (let i = 0; i < s.list.count; i++) {
      if (s.list.flags[i]! & PACKED_DROPPED) continue;
      const key = s.list.name(i).toString('latin1');
      if (seen.has(key)) continue;
      seen.add(key);
      const j = merged.list.addFrom(s.list, i, rootBase + s.list.root[i]!);
      const id = s.fileIds.get(i);
      if (id) merged.fileIds.set(j, id);
    }
    for (const [k, v] of s.userNames) merged.userNames.set(k, v);
    for (const [k, v] of s.groupNames) merged.groupNames.set(k, v);
  }
  return merged;
}
