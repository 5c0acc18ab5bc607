// The receiving half of a transfer once the sender's file list is in: the generator and the
// receiver (protocol/receiver.ts doRecv) into a local directory through a DestTree. One home for
// both who receive: our client's pull (DEST) and our daemon's side of a client's push (a
// directory of the module). Ids are mapped by name as rsync's receiver maps them, the basis
// directories are resolved against the destination (and, for a daemon, confined to the module),
// and the filter rules that protect files from --delete are compiled for the receiver.
// Counterpart: rsync main.c do_recv, uidlist.c recv_id_list/match_uid, checksum.c file_checksum.
import { shownName } from './output.js';
import { mappedId, parseNameMap, type IdMapRule } from './idmap.js';
import { readFileSync } from 'node:fs';
import { DELAY_UPDATES_DIR, type TransferOptions } from '../../protocol/args.js';
import { CF_INPLACE_PARTIAL_DIR, type SetupResult } from '../../protocol/compat.js';
import type { Checksummer } from '../../protocol/checksum.js';
import { createChecksummer } from './checksums.js';
import { compileFilter, type FilterList } from '../../protocol/filter.js';
import type { ReceivedList } from '../../protocol/received-list.js';
import type { GeneratedItem } from '../../protocol/generator.js';
import type { ByteReader, ByteWriter } from '../../protocol/io.js';
import type { LocalTree } from '../../protocol/local-tree.js';
import { doRecv, type ReceivedItem, type ReceiverOptions, type RecvResult } from '../../protocol/receiver.js';
import type { AltDestKind } from '../../protocol/basis.js';
import { EXIT, RsyncError } from '../../protocol/errors.js';
import { isDir } from '../../protocol/modes.js';
import { pruneEmptyDirs } from '../../protocol/prune-empty-dirs.js';
import { checkTempDir, DestTree } from './dest-tree.js';
import { FakeSuperTree } from './fake-super.js';
import { treeXattrs } from './local-xattrs.js';
import { treeAcls } from './local-acls.js';
import type { AclReceiver } from '../../protocol/acls.js';
import type { XattrReceiver } from '../../protocol/xattrs.js';
import { spareCoreForHelper, sumsHelper } from './sums-helper.js';

export interface ReceiveRequest {
  reader: ByteReader;
  writer: ByteWriter;
  setup: SetupResult;
  /** The sender's file list (sorted, names checked), and its id lists. */
  files: ReceivedList;
  /** -X: the xattr sets received with the list (bound here to the destination). */
  xattrs?: XattrReceiver;
  /** -A: the ACLs received with the list (their ids mapped and bound here to the destination). */
  acls?: AclReceiver;
  userNames: ReadonlyMap<number, Buffer>;
  groupNames: ReadonlyMap<number, Buffer>;
  /** The directory the list's names are relative to (it exists, or the list's "." creates it). */
  dest: string;
  /**
   * The list is one non-directory, received in `dest` under this name (rsync's local_name, from
   * get_local_name: `rsync file.txt host::mod/newname.txt`).
   */
  localName?: Buffer;
  transfer: TransferOptions;
  ignoreTimes: boolean;
  /** Rules protecting local files from --delete (the receiver's view of the filter list). */
  protect?: { list: FilterList; deleteExcluded: boolean };
  /** A daemon's own rules: names they exclude are refused (onDaemonRefused) and never deleted. */
  daemonExcluded?: (name: Buffer, isDir: boolean) => boolean;
  onDaemonRefused?: (name: Buffer, isDir: boolean) => Promise<void> | void;
  /** A daemon's `incoming chmod`, applied again to each final mode (rsync's set_file_attrs). */
  tweakMode?: (mode: number) => number;
  /** The sender's io_error so far (the list's end marker, MSG_IO_ERROR). */
  senderIoError: () => number;
  /** We are the daemon (rsync's am_server): no sender totals to read. */
  amServer?: boolean;
  /** The destination was created for this transfer (its '.' is itemized as new). */
  rootCreated?: boolean;
  /** A daemon's module: basis directories must lie inside it. */
  confineBasisTo?: string;
  /** --fake-super (a module's `fake super`): owners, modes and devices kept in xattrs (fake-super.ts). */
  fakeSuper?: { shown?: (name: Buffer) => string };
  onItem?: (item: GeneratedItem) => void;
  onReceived?: (item: ReceivedItem) => void;
  /** --progress: a transfer's data starts, bytes of it arrived, a phase ended (see ReceiverOptions). */
  onReceiveStart?: ReceiverOptions['onReceiveStart'];
  onReceiveBytes?: ReceiverOptions['onReceiveBytes'];
  onPhaseDone?: ReceiverOptions['onPhaseDone'];
  /** Each non-transfer the sender echoed back (a daemon's transfer logging). */
  onEchoed?: (item: ReceivedItem) => void;
  onDeleted?: (name: Buffer, isDir: boolean, mode: number) => void;
  onWarning?: (text: string) => void;
  /** A file the receiver could not put in place, in rsync's words without "rsync: " (its FERROR_XFER); default onWarning. */
  onError?: (text: string) => void;
  /** How a name relative to `dest` is shown in a message (rsync's full_fname; DestTreeOptions.fullName). */
  fullName?: (name: Buffer) => string;
  /** A file that failed in the generator (GeneratorOptions.onFileError). */
  onFileError?: (text: string) => Promise<void> | void;
  /** A file failed verification (see ReceiverOptions.onFailedVerification). */
  onFailedVerification?: ReceiverOptions['onFailedVerification'];
  onInfo?: (text: string) => void;
  onAbort?: () => void;
}

// rsync/main.c: do_recv (as the client and as the daemon run it)
export async function receiveIntoTree(r: ReceiveRequest): Promise<RecvResult> {
  const { transfer, setup } = r;
  const protocol = r.writer.protocol;
  const summerOptions = { protocol, seed: setup.seed, compatFlags: setup.compatFlags, implied: setup.checksumImplied };
  const checksummer = await createChecksummer(setup.checksum, summerOptions);
  // Big bases get their block sums on two threads when a core is spare (the helper thread starts
  // on first use), else on this one alone.
  const helper = sumsHelper(setup.checksum, summerOptions, { thread: spareCoreForHelper() });
  // -c: rsync's file_checksum, never seeded.
  const fileSummer = transfer.checksum ? await createChecksummer(setup.checksum, { protocol, seed: 0, compatFlags: setup.compatFlags, implied: false }) : null;
  // -o/-g (and -A's named entries): the sender's ids, mapped by name to ours unless --numeric-ids.
  // --usermap/--groupmap (--chown) rules come first, also with --numeric-ids (then by id only).
  if ((transfer.owner || transfer.group || r.acls) && (!transfer.numericIds || transfer.usermap !== undefined || transfer.groupmap !== undefined)) {
    const users = localIds('/etc/passwd');
    const groups = localIds('/etc/group');
    const warn = (text: string) => r.onWarning?.(`${text}\n`);
    const userRules = transfer.usermap !== undefined ? parseNameMap(transfer.usermap, 'user', users, warn) : [];
    const groupRules = transfer.groupmap !== undefined ? parseNameMap(transfer.groupmap, 'group', groups, warn) : [];
    const names = (sent: ReadonlyMap<number, Buffer>) => (transfer.numericIds ? new Map<number, Buffer>() : sent);
    const anyUid = idMapper(names(r.userNames), transfer.numericIds ? new Map() : users, userRules);
    const anyGid = idMapper(names(r.groupNames), transfer.numericIds ? new Map() : groups, groupRules);
    r.files.mapIds(transfer.owner ? anyUid : null, transfer.group ? anyGid : null);
    // rsync/uidlist.c: recv_id_list (match_acl_ids)
    r.acls?.mapIds(anyUid, anyGid);
  }
  // --compare-dest/--copy-dest/--link-dest: relative to the destination, as rsync takes them.
  const alt = altDest(transfer);
  // -b, --backup-dir, --suffix (rsync's default suffix: "~", none under a backup dir).
  const backing =
    transfer.backup || transfer.backupDir !== undefined
      ? { ...(transfer.backupDir !== undefined && { dir: transfer.backupDir }), suffix: transfer.suffix ?? (transfer.backupDir !== undefined ? '' : '~') }
      : null;
  // -O (implied by -b without a backup dir, as rsync's omit_dir_times = -1), -J, and -E (only without -p).
  const omitDirTimes = transfer.omitDirTimes || (!!backing && !backing.dir);
  const executability = !!transfer.executability && !transfer.perms;
  // --delay-updates works through a partial dir: rsync's .~tmp~ unless --partial-dir names one.
  const partialDir = transfer.partialDir ?? (transfer.delayUpdates ? DELAY_UPDATES_DIR : undefined);
  // -T: the temp dir must be there before anything is received (rsync's do_recv).
  if (transfer.tempDir !== undefined) checkTempDir(r.dest, transfer.tempDir);
  const tree = new DestTree(
    r.dest,
    { perms: transfer.perms, times: transfer.times, owner: !r.fakeSuper && transfer.owner && process.getuid?.() === 0, group: !r.fakeSuper && transfer.group, umask: process.umask(), modifyWindow: transfer.modifyWindow ?? 0, ...(r.tweakMode && { tweakMode: r.tweakMode }), ...(omitDirTimes && { omitDirTimes: true }), ...(transfer.omitLinkTimes && { omitLinkTimes: true }), ...(executability && { executability: true }) },
    {
      basisDirs: alt?.dirs ?? [],
      ...(r.confineBasisTo !== undefined && { confineBasisTo: r.confineBasisTo }),
      ...(r.localName && { rename: { from: singleNonDirectory(r.files), to: r.localName } }),
      ...(backing && { backup: backing }),
      ...(transfer.sparse && { sparse: true }),
      ...(transfer.keepDirlinks && { keepDirlinks: true }),
      // --partial-dir: a daemon's rules may refuse the partial dir or a file in it (then there is none).
      ...(partialDir !== undefined && { partialDir: { dir: partialDir, ...(r.daemonExcluded && { allowed: (name: Buffer, dir: boolean) => !r.daemonExcluded!(name, dir) }) } }),
      ...(transfer.tempDir !== undefined && { tempDir: transfer.tempDir }),
      ...(r.fullName && { fullName: r.fullName }),
    },
  );
  // --fake-super: the roles see each item's stored attributes, and store what they set.
  const local: LocalTree = r.fakeSuper ? new FakeSuperTree(tree, { perms: transfer.perms, owner: transfer.owner, group: transfer.group, ...(r.tweakMode && { tweakMode: r.tweakMode }), ...r.fakeSuper }) : tree;
  r.xattrs?.bind(treeXattrs(tree, r.xattrs.options.amRoot, !!r.fakeSuper), (ndx) => r.files.wireIndex(ndx));
  r.acls?.bind((ndx) => r.files.wireIndex(ndx));
  // Perishable rules protect too (the --partial-dir's): rsync ignores them only inside a directory being deleted.
  const protect = r.protect ? compileFilter(r.protect.list, { side: 'receiver', deleteExcluded: r.protect.deleteExcluded }) : null;
  const daemonExcluded = r.daemonExcluded;
  // -m: directory chains with no file in them leave the list before the generator sees it; one
  // the rules exclude keeps those above it (rsync's is_excluded with ALL_FILTERS).
  if (transfer.pruneEmptyDirs) {
    pruneEmptyDirs(r.files, (name) => (!!protect && !protect.empty && protect.isExcluded(name, true)) || !!daemonExcluded?.(name, true));
  }
  // -b without a backup dir, deleting: the client protects the backups ("P *SUFFIX", which rsync's
  // client adds to its rules; a pushing client sends it to the daemon in its list).
  const backups = backing && !backing.dir && !r.amServer && !transfer.deleteExcluded ? Buffer.from(backing.suffix) : null;
  const isBackup = (name: Buffer) => !!backups && name.length - (name.lastIndexOf(0x2f) + 1) >= backups.length && name.subarray(name.length - backups.length).equals(backups);
  // What --delete leaves: what the client's rules protect, and what the daemon's exclude (always).
  const isProtected =
    protect || daemonExcluded || backups
      ? (name: Buffer, isDir: boolean) => (!!protect && !protect.empty && protect.isExcluded(name, isDir)) || !!daemonExcluded?.(name, isDir) || isBackup(name)
      : null;
  return doRecv(r.reader, r.writer, r.files, local, checksummer, {
    sumsHelper: helper,
    compression: setup.tokens ?? null,
    ...(r.amServer && { amServer: true }),
    ...(r.xattrs && { xattrs: r.xattrs }),
    ...(r.acls && { acls: treeAcls(r.acls, tree, transfer.dryRun) }),
    ...(r.rootCreated && { rootCreated: true }),
    perms: transfer.perms,
    times: transfer.times,
    ...(omitDirTimes && { omitDirTimes: true }),
    ...(transfer.omitLinkTimes && { omitLinkTimes: true }),
    ...(executability && { executability: true }),
    ...(transfer.keepDirlinks && { keepDirlinks: true }),
    owner: transfer.owner,
    group: transfer.group,
    links: transfer.links,
    // -R --no-implied-dirs: the path's directories are not made from the list (rsync's implied_dirs = 0).
    ...(transfer.relative && transfer.impliedDirs === false && { impliedDirs: false }),
    ...(transfer.safeLinks && {
      safeLinks: true,
      ...(transfer.verbose && r.onInfo && { onUnsafeSymlink: (name: Buffer, target: Buffer) => r.onInfo!(`ignoring unsafe symlink "${shownName(name)}" -> "${shownName(target)}"\n`) }),
    }),
    devices: transfer.devices,
    hardLinks: transfer.hardLinks,
    checksum: transfer.checksum,
    ignoreTimes: r.ignoreTimes,
    wholeFile: transfer.wholeFile,
    dryRun: transfer.dryRun,
    // The sender's io_error (an unreadable directory there) turns deletions off unless
    // --ignore-errors, as in rsync (the counts still go).
    delete: transfer.delete || transfer.deleteExcluded || transfer.deleteWhen !== undefined,
    ...(transfer.deleteWhen && { deleteWhen: transfer.deleteWhen }),
    ...(transfer.maxDelete !== undefined && { maxDelete: transfer.maxDelete }),
    force: transfer.force ?? false,
    ignoreErrors: transfer.ignoreErrors ?? false,
    ioError: r.senderIoError,
    sizeOnly: transfer.sizeOnly ?? false,
    ignoreExisting: transfer.ignoreExisting ?? false,
    existing: transfer.existing ?? false,
    update: transfer.update ?? false,
    ...(transfer.maxSize !== undefined && { maxSize: transfer.maxSize }),
    ...(transfer.minSize !== undefined && { minSize: transfer.minSize }),
    ...(transfer.inplace && { inplace: true }),
    ...((transfer.partial || partialDir !== undefined) && { keepPartial: true }),
    ...(partialDir !== undefined && { partialDir: true }),
    ...(transfer.delayUpdates && partialDir !== undefined && { delayUpdates: true }),
    // rsync's inplace_partial: a partial-dir basis is rewritten in place.
    ...(setup.compatFlags & CF_INPLACE_PARTIAL_DIR && { inplacePartial: true }),
    ...(backing && (transfer.inplace || transfer.append) && { inplaceBackup: true }),
    ...(transfer.append && { append: transfer.append }),
    deleteMissingArgs: transfer.deleteMissingArgs ?? false,
    ...(alt && { altDest: { kind: alt.kind, count: alt.dirs.length } }),
    ...(transfer.fuzzy && { fuzzy: transfer.fuzzy }),
    ...(transfer.modifyWindow !== undefined && { modifyWindow: transfer.modifyWindow }),
    ...(isProtected && { isProtected }),
    ...(daemonExcluded && { daemonExcluded }),
    ...(r.onDaemonRefused && { onDaemonRefused: r.onDaemonRefused }),
    ...(fileSummer && { fileChecksum: (name: Buffer, basisDir?: number) => localChecksum(tree, fileSummer, name, basisDir) }),
    ...(r.onItem && { onItem: r.onItem }),
    ...(r.onReceived && { onReceived: r.onReceived }),
    ...(r.onReceiveStart && { onReceiveStart: r.onReceiveStart }),
    ...(r.onReceiveBytes && { onReceiveBytes: r.onReceiveBytes }),
    ...(r.onPhaseDone && { onPhaseDone: r.onPhaseDone }),
    ...(r.onEchoed && { onEchoed: r.onEchoed }),
    ...(r.onDeleted && { onDeleted: r.onDeleted }),
    ...(r.onWarning && { onWarning: r.onWarning }),
    ...(r.onError && { onError: r.onError }),
    ...(r.onFileError && { onFileError: r.onFileError }),
    ...(r.onFailedVerification && { onFailedVerification: r.onFailedVerification }),
    ...(r.onInfo && { onInfo: r.onInfo }),
    ...(r.onAbort && { onAbort: r.onAbort }),
  }).finally(() => helper.close());
}

/** The name of the one non-directory a list received under another name must hold. */
function singleNonDirectory(files: ReceivedList): Buffer {
  if (files.length !== 1 || isDir(files.mode(0))) {
    throw new RsyncError('ERR_RSYNC_LOCAL_NAME', 'ERROR: a local name is only for a single non-directory', EXIT.FILESELECT);
  }
  return files.name(0);
}

/** The basis dirs of a transfer: --compare-dest/--copy-dest/--link-dest, or the single copyDest. */
function altDest(transfer: TransferOptions): { kind: AltDestKind; dirs: readonly string[] } | null {
  if (transfer.altDest?.dirs.length) return transfer.altDest;
  if (transfer.copyDest !== undefined) return { kind: 'copy', dirs: [transfer.copyDest] };
  return null;
}

/** name → id from /etc/passwd or /etc/group (empty if unreadable). */
export function localIds(file: string): Map<string, number> {
  const ids = new Map<string, number>();
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch {
    return ids;
  }
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    const id = Number(fields[2]);
    if (fields.length >= 3 && fields[0] && Number.isInteger(id) && !ids.has(fields[0])) ids.set(fields[0], id);
  }
  return ids;
}

/**
 * The daemon's id → ours: the local id of the same name, else the id as sent (rsync's rule:
 * "if a name has no match here, the numeric id is used").
 */
// rsync/uidlist.c: recv_add_id / match_uid
function idMapper(remote: ReadonlyMap<number, Buffer>, local: ReadonlyMap<string, number>, rules: readonly IdMapRule[] = []): (id: number) => number {
  const cache = new Map<number, number>();
  return (id) => {
    let mapped = cache.get(id);
    if (mapped === undefined) {
      const name = remote.get(id);
      // An unnamed id 0 is "root" unless names are off (--numeric-ids: `local` is empty), as rsync assumes.
      mapped = mappedId(rules, id, name?.toString('latin1') ?? (id === 0 && local.size ? 'root' : '')) ?? (name ? (local.get(name.toString('latin1')) ?? id) : id);
      cache.set(id, mapped);
    }
    return mapped;
  };
}

/** -c: the unseeded whole-file digest of a local regular file (null if it cannot be read). */
async function localChecksum(tree: LocalTree, summer: Checksummer, name: Buffer, basisDir?: number): Promise<Buffer | null> {
  const basis = await tree.openBasis(name, basisDir);
  if (!basis) return null;
  try {
    const h = summer.startFile();
    for await (const chunk of basis.chunks()) h.update(chunk);
    return Buffer.from(h.digest());
  } finally {
    await basis.close();
  }
}
