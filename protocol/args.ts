// The argument list the client sends after `@RSYNCD: OK` (docs/protocol.md [args]): the client
// writes it (sendArgs, serverArgs), the daemon reads it (recvArgs).
// Counterpart: rsync clientserver.c start_inband_exchange (argument framing), io.c read_args.
import { ProtocolError, EXIT } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';
import { CLIENT_CAPABILITIES } from './compat.js';
import type { AltDestKind } from './basis.js';

/**
 * Write the server argument list: each argument NUL-terminated and an empty one to end
 * (protocol >= 30), or newline-terminated and an empty line to end (older protocols).
 */
// rsync/clientserver.c: start_inband_exchange (argument writing) [args-framing]
export async function sendArgs(writer: ByteWriter, args: readonly string[]): Promise<void> {
  const terminator = writer.protocol >= 30 ? 0 : 0x0a;
  for (const arg of args) {
    const bytes = Buffer.from(arg, 'utf8');
    if (arg === '' || bytes.includes(0) || (terminator === 0x0a && bytes.includes(0x0a))) {
      throw new ProtocolError(`argument ${JSON.stringify(arg)} cannot be sent at protocol ${writer.protocol}`, {
        exitCode: EXIT.SYNTAX,
      });
    }
    writer.writeBuf(bytes);
    writer.writeByte(terminator);
  }
  writer.writeByte(terminator);
  await writer.flush();
}

/** The most arguments a daemon takes, its own argv[0] included (rsync io.c MAX_DAEMON_ARGS). */
export const MAX_DAEMON_ARGS = 1000 * 16;

/** Longest argument a daemon takes: rsync's line buffer (BIGPATHBUFLEN on Linux) less its NUL. */
export const MAX_ARG_LENGTH = 4096 + 1024 - 1;

/**
 * The daemon's read of an argument list, bytes as the client sent them: NUL-terminated from
 * protocol 30 (and always for the second list of -s), else ended by CR or LF; an empty one ends
 * the list. rsync cuts an over-long argument short; we refuse it.
 */
// rsync/io.c: read_args, read_line (the framing; splitting options from paths is the daemon's) [args-framing]
export async function recvArgs(reader: ByteReader, nulTerminated = reader.protocol >= 30): Promise<Buffer[]> {
  const args: Buffer[] = [];
  let current: number[] = [];
  for (;;) {
    const c = await reader.readByte();
    const ends = nulTerminated ? c === 0 : c === 0x0a || c === 0x0d;
    if (!ends) {
      if (current.length === MAX_ARG_LENGTH) {
        throw new ProtocolError(`an argument from the client is longer than ${MAX_ARG_LENGTH} bytes`);
      }
      current.push(c);
      continue;
    }
    if (current.length === 0) return args;
    // rsync prepends its own argv[0] ("rsyncd") and stops one short of the array's end.
    if (args.length + 1 >= MAX_DAEMON_ARGS - 1) throw new ProtocolError('too many daemon arguments');
    args.push(Buffer.from(current));
    current = [];
  }
}

/** What a transfer asks of the daemon: rsync's options, named as rsync names them. */
/** rsync's --delete-WHEN: when extraneous local names go. */
export type DeleteWhen = 'before' | 'during' | 'delay' | 'after';

export interface TransferOptions {
  /** -r */
  recursive: boolean;
  /**
   * -d: directories without recursing (their entries, not their contents). rsync's client sends it
   * for a listing without -r (list_only implies -d); on a push it would also need --no-r.
   */
  dirs?: boolean;
  /** -l: symlinks as symlinks */
  links: boolean;
  /** -p */
  perms: boolean;
  /** -t */
  times: boolean;
  /** -o */
  owner: boolean;
  /** -g */
  group: boolean;
  /** -D: devices and specials */
  devices: boolean;
  /** -H */
  hardLinks: boolean;
  /** -A: POSIX ACLs (protocol/acls.ts; our sender only); protocol 30+. */
  acls?: boolean;
  /** -X (1), -XX (2): extended attributes (protocol/xattrs.ts); protocol 30+. */
  xattrs?: number;
  /** -c */
  checksum: boolean;
  /** -W */
  wholeFile: boolean;
  /** -n */
  dryRun: boolean;
  /** --delete (on a push: the daemon deletes extraneous files) */
  delete: boolean;
  /** --delete-excluded */
  deleteExcluded: boolean;
  /** --numeric-ids */
  numericIds: boolean;
  /** -v count */
  verbose: number;
  /** -i: the daemon's receiver itemizes too (--log-format=%i) */
  itemize: boolean;
  /** --stats */
  stats: boolean;
  /** --checksum-choice (forwarded; then no checksum negotiation happens) */
  checksumChoice?: string;
  /** --timeout, forwarded so the daemon uses the same bound */
  timeout?: number;
  /**
   * --modify-window: how far apart mtimes may be and still count as equal. rsync's default (0)
   * compares whole seconds; -1 compares nanoseconds (rsync 3.1.3+ daemons), which a live mirror
   * needs: a file rewritten within the same second with the same size is otherwise skipped.
   */
  modifyWindow?: number;
  /**
   * --copy-dest DIR (relative to the destination directory, on the daemon): files missing from
   * the destination are copied there from DIR when identical, or use DIR's copy as the basis of
   * the delta. The live mirror uses it so a renamed directory costs checksums, not data.
   */
  copyDest?: string;
  /**
   * --fuzzy (-y; 2 = -yy): a file missing on the daemon uses a similar file of its directory as
   * the delta's basis (first one with the same size and mtime), and with 2 also one in the
   * --copy-dest directory. The live mirror's renamed files.
   */
  fuzzy?: number;
  /**
   * --delete-missing-args: a missing source argument travels as a mode-0 entry and is deleted on
   * the receiving side (sent to the daemon both ways: it needs both sides).
   */
  deleteMissingArgs?: boolean;
  /** --ignore-missing-args: a missing source argument is no error (a pull sends it to the daemon's sender). */
  ignoreMissingArgs?: boolean;
  /** --delete-before / --delete-during (--del) / --delete-delay / --delete-after (implies --delete). */
  deleteWhen?: DeleteWhen;
  /** --max-delete=N (negative: no deletions, sent as rsync sends 0: --max-delete=-1). */
  maxDelete?: number;
  /** --force: a non-empty directory may make way for a file without --delete. */
  force?: boolean;
  /** --ignore-errors: delete even after I/O errors on the sending side. */
  ignoreErrors?: boolean;
  /** --size-only */
  sizeOnly?: boolean;
  /** --ignore-existing */
  ignoreExisting?: boolean;
  /** --existing (--ignore-non-existing) */
  existing?: boolean;
  /** -u / --update */
  update?: boolean;
  /**
   * --compare-dest / --copy-dest / --link-dest DIR (repeatable, one kind; relative to the
   * destination directory). `copyDest` above is the live mirror's single --copy-dest; both are sent.
   */
  altDest?: { kind: AltDestKind; dirs: readonly string[] };
  /**
   * -z / --compress: compressed tokens both ways. `choice` (--compress-choice: zstd, lz4, zlibx,
   * zlib, none; unset or "auto": negotiated, zlib before protocol 30), `level` (--compress-level:
   * zlib 1..9, 0 off; zstd its range, 0 its default; lz4 has none).
   */
  compress?: { choice?: string; level?: number };
  /** --skip-compress LIST (sent to a sending daemon, as rsync's client does on a pull). */
  skipCompress?: string;
  /** --max-size / --min-size in bytes (sent to the daemon on a push as rsync sends them: the byte count). */
  maxSize?: number;
  minSize?: number;
  /** --inplace: files are rebuilt in the destination file itself (both sides must know: the sender matches accordingly). */
  inplace?: boolean;
  /** --append (1) / --append-verify (2); implies --inplace. */
  append?: number;
  /** -b / --backup: replaced and deleted files are kept (NAME~, or under backupDir). */
  backup?: boolean;
  /** --backup-dir DIR (implies --backup; relative to the destination). */
  backupDir?: string;
  /** --suffix (default "~", or "" with a backup dir). */
  suffix?: string;
  /** --partial: keep a partly transferred file (sent to the daemon on a push). */
  partial?: boolean;
  /** --partial-dir DIR: a partly transferred file is kept in DIR (relative to its directory); sent on a push. */
  partialDir?: string;
  /** --bwlimit in KiB/s: each side paces its own writes (sent both ways, as rsync sends it). */
  bwlimit?: number;
  /**
   * --chmod texts, in order: applied by the side that builds or reads the file list (our push's
   * list, our pull's received list), never sent (rsync's client does not send it either).
   */
  chmod?: readonly string[];
  /** --usermap / --groupmap (--chown makes them): the receiving side maps owners; sent on a push. */
  usermap?: string;
  groupmap?: string;
  /** -L: symlinks sent as what they point to (a pull asks the daemon's sender). */
  copyLinks?: boolean;
  /** --copy-unsafe-links: only links pointing out of the tree are followed (sent both ways). */
  copyUnsafeLinks?: boolean;
  /** -k: a symlink to a directory is sent as the directory (a pull asks the daemon's sender). */
  copyDirlinks?: boolean;
  /** --safe-links: links pointing out of the tree are ignored by the receiving side (sent both ways). */
  safeLinks?: boolean;
  /** -R: full path names (a pull asks the daemon's sender). */
  relative?: boolean;
  /** false: --no-implied-dirs (with -R: the path's directories are not sent). */
  impliedDirs?: boolean;
  /** -x count: don't cross file-system boundaries (a pull asks the daemon's sender). */
  oneFileSystem?: number;
  /**
   * --files-from: FILE on the daemon (the `:FILE` form, a pull or a push, whose sender then reads
   * the names the daemon forwards), or on a pull with `filesFromForwarded`
   * our local list (a file, `-` for stdin), which travels to the daemon's sender through the
   * connection (sent as `--files-from=-` with `--from0`, as rsync's client sends it); and --from0.
   */
  filesFrom?: string;
  filesFromForwarded?: boolean;
  from0?: boolean;
  /** -m: the receiving side drops directories that end up empty (sent when the daemon receives). */
  pruneEmptyDirs?: boolean;
  /** -S: the receiving side writes runs of zeros as holes (sent both ways). */
  sparse?: boolean;
  /** -K: the receiving side follows a symlink to a directory it has (sent when the daemon receives; our pull does it itself). */
  keepDirlinks?: boolean;
  /** -O: the receiving side leaves directories' mtimes alone (sent when the daemon receives, unless -b without a backup dir implies it there; our pull does it itself). */
  omitDirTimes?: boolean;
  /** -J: the receiving side leaves symlinks' mtimes alone (sent when the daemon receives; our pull does it itself). */
  omitLinkTimes?: boolean;
  /** -E: without -p, the receiving side still follows the executable bits (sent when the daemon receives; our pull does it itself). */
  executability?: boolean;
  /**
   * --delay-updates: the receiving side puts each file in place at the end, from the partial dir
   * (`.~tmp~` unless --partial-dir names one); sent when the daemon receives.
   */
  delayUpdates?: boolean;
  /** -T / --temp-dir DIR: where the receiving side writes its temp files (on the daemon; sent when it receives). */
  tempDir?: string;
  /**
   * --progress (or -P) on our side: it makes rsync's client print names (its stdout format
   * "%n%L"), which a pushing client without -v tells the daemon as --log-format=X.
   */
  progress?: boolean;
}

/** The partial dir --delay-updates uses when --partial-dir names none (rsync's tmp_partialdir). */
export const DELAY_UPDATES_DIR = '.~tmp~';

export const DEFAULT_TRANSFER: Readonly<TransferOptions> = Object.freeze({
  recursive: true,
  links: true,
  perms: true,
  times: true,
  owner: false,
  group: false,
  devices: false,
  hardLinks: false,
  checksum: false,
  wholeFile: false,
  dryRun: false,
  delete: true,
  deleteExcluded: false,
  numericIds: false,
  verbose: 0,
  itemize: false,
  stats: false,
});

/**
 * The argument list rsync's client would send for a push (`pull: false`, we are the sender) or a
 * pull, as its server_options() builds it, then `.` and the remote path `module/path`. On a pull
 * the daemon sends: what only a receiving side does (the --delete modes, --max-delete, --force,
 * --size-only, --ignore-existing, --existing, the basis dirs, --fuzzy) stays with us; -u,
 * --delete-missing-args, --ignore-missing-args and --ignore-errors travel, as rsync sends them.
 */
// rsync/options.c: server_options (the subset of options we implement) [args-content]
export function serverArgs(options: TransferOptions, protocol: number, remotePath: string, pull = false): string[] {
  const args = ['--server'];
  if (pull) args.push('--sender');
  const push = !pull;
  let flags = '-';
  flags += 'v'.repeat(Math.min(options.verbose, 9));
  if (options.backup || options.backupDir !== undefined) flags += 'b';
  if (options.update) flags += 'u';
  if (options.dryRun) flags += 'n';
  if (options.links) flags += 'l';
  if (options.dirs && !options.recursive) flags += 'd';
  if (push) {
    if (options.keepDirlinks) flags += 'K';
    if (options.pruneEmptyDirs) flags += 'm';
    // -b without --backup-dir implies -O on the daemon already: rsync's client leaves it out then.
    if (options.omitDirTimes && !(options.backup && options.backupDir === undefined)) flags += 'O';
    if (options.omitLinkTimes) flags += 'J';
    if (options.fuzzy) flags += 'y'.repeat(Math.min(options.fuzzy, 2));
  } else {
    if (options.copyLinks) flags += 'L';
    if (options.copyDirlinks) flags += 'k';
  }
  if (options.wholeFile) flags += 'W';
  if (options.hardLinks) flags += 'H';
  if (options.owner) flags += 'o';
  if (options.group) flags += 'g';
  if (options.devices) flags += 'D';
  if (options.times) flags += 't';
  if (options.perms) flags += 'p';
  else if (options.executability && push) flags += 'E';
  if (options.acls) flags += 'A';
  if (options.xattrs) flags += 'X'.repeat(Math.min(options.xattrs, 2));
  if (options.recursive) flags += 'r';
  if (options.checksum) flags += 'c';
  // --files-from implies -R unless --no-relative (rsync's relative_paths default).
  const relative = options.relative ?? (options.filesFrom !== undefined && !push);
  if (relative) flags += 'R';
  if (options.oneFileSystem) flags += 'x'.repeat(Math.min(options.oneFileSystem, 2));
  if (options.sparse) flags += 'S';
  // -z is sent for zlib only (plain -z means zlib until negotiated); zlibx travels as --new-compress.
  const compress = compressArgs(options.compress);
  if (compress.zFlag) flags += 'z';
  // Protocol >= 30: the capability letters; never `i` (no incremental recursion).
  if (protocol >= 30) flags += `e.${CLIENT_CAPABILITIES}`;
  if (flags.length > 1) args.push(flags);
  if (options.itemize && push) args.push('--log-format=%i');
  else if (options.progress && push && !options.verbose) args.push('--log-format=X');
  if (options.timeout) args.push(`--timeout=${options.timeout}`);
  if (options.bwlimit) args.push(`--bwlimit=${options.bwlimit}`);
  if (compress.level !== undefined) args.push(`--compress-level=${compress.level}`);
  if (options.backupDir !== undefined) args.push('--backup-dir', escapeOptionArg(options.backupDir));
  // rsync sends --suffix only when it is not the default ("~", or "" with a backup dir).
  if (options.suffix !== undefined && options.suffix !== (options.backupDir !== undefined ? '' : '~')) args.push(`--suffix=${escapeOptionArg(options.suffix)}`);
  if (options.checksumChoice) args.push(`--checksum-choice=${options.checksumChoice}`);
  if (compress.choiceArg) args.push(compress.choiceArg);
  if (push) {
    // Deletion happens on the receiving side: only a push asks the daemon for it.
    if (options.maxDelete !== undefined) args.push(options.maxDelete > 0 ? `--max-delete=${options.maxDelete}` : '--max-delete=-1');
    if (options.minSize !== undefined) args.push(`--min-size=${options.minSize}`);
    if (options.maxSize !== undefined) args.push(`--max-size=${options.maxSize}`);
    const deleting = options.delete || options.deleteWhen !== undefined;
    if (options.deleteWhen) args.push(`--delete-${options.deleteWhen}`);
    else if (deleting && !options.deleteExcluded) args.push('--delete');
    if (options.deleteExcluded) args.push('--delete-excluded');
    if (options.force) args.push('--force');
    if (options.sizeOnly) args.push('--size-only');
    if (options.stats) args.push('--stats');
  } else if (options.skipCompress !== undefined && options.compress) {
    args.push(`--skip-compress=${escapeOptionArg(options.skipCompress)}`);
  }
  // --delete-missing-args needs both sides; the sender handles --ignore-missing-args alone.
  if (options.deleteMissingArgs) args.push('--delete-missing-args');
  else if (options.ignoreMissingArgs && pull) args.push('--ignore-missing-args');
  if (options.modifyWindow !== undefined && push) {
    args.push(options.modifyWindow < 0 ? `-@${options.modifyWindow}` : `--modify-window=${options.modifyWindow}`);
  }
  // --delay-updates works through a partial dir: rsync's default one (.~tmp~) is not named.
  if ((options.partialDir !== undefined || options.delayUpdates) && push) {
    if (options.partialDir !== undefined) args.push('--partial-dir', escapeOptionArg(options.partialDir));
    if (options.delayUpdates) args.push('--delay-updates');
  } else if (options.partial && push) args.push('--partial');
  // Both sides act on these (the sender matches blocks for a file rewritten in place).
  if (options.append) args.push(...Array<string>(options.append > 1 ? 2 : 1).fill('--append'));
  else if (options.inplace) {
    args.push('--inplace');
    // rsync works around older daemons' --inplace --sparse this way.
    if (options.sparse && !options.wholeFile && push) args.push('--no-W');
  }
  // A push names only a list on the daemon (`:FILE`); its local list is read by our sender.
  if (options.filesFrom !== undefined && !(push && options.filesFromForwarded)) {
    if (options.filesFromForwarded) {
      // rsync's client forwards its local list NUL-separated whatever --from0 says.
      args.push('--files-from=-', '--from0');
    } else {
      args.push('--files-from', escapeOptionArg(options.filesFrom));
      if (options.from0) args.push('--from0');
    }
    if (!relative) args.push('--no-relative');
  }
  if (relative && options.impliedDirs === false && (!push || protocol >= 30)) args.push('--no-implied-dirs');
  if (options.ignoreErrors) args.push('--ignore-errors');
  if (options.copyUnsafeLinks) args.push('--copy-unsafe-links');
  if (options.safeLinks) args.push('--safe-links');
  if (options.numericIds) args.push('--numeric-ids');
  if (push) {
    if (options.usermap !== undefined) args.push(`--usermap=${escapeOptionArg(options.usermap)}`);
    if (options.groupmap !== undefined) args.push(`--groupmap=${escapeOptionArg(options.groupmap)}`);
    if (options.ignoreExisting) args.push('--ignore-existing');
    if (options.existing) args.push('--existing');
    if (options.tempDir !== undefined) args.push('--temp-dir', escapeOptionArg(options.tempDir));
    if (options.altDest) for (const dir of options.altDest.dirs) args.push(`--${options.altDest.kind}-dest`, escapeOptionArg(dir));
    if (options.copyDest !== undefined) args.push('--copy-dest', escapeOptionArg(options.copyDest));
  }
  args.push('.', protectRemotePath(remotePath));
  return args;
}

/**
 * What -z options put in the argument list: the `z` letter (zlib: plain -z or --zc=zlib), the
 * choice as rsync's client names it (--new-compress for zlibx, --old-compress for a chosen zlib,
 * --compress-choice=NAME otherwise) and --compress-level. --zc=none sends nothing at all.
 */
// rsync/options.c: server_options (the do_compression / compress_choice lines) [deflate-args]
export function compressArgs(compress: TransferOptions['compress']): { zFlag: boolean; choiceArg?: string; level?: number } {
  if (!compress) return { zFlag: false };
  const choice = compress.choice?.toLowerCase();
  const named = choice !== undefined && choice !== 'auto' ? choice : undefined;
  if (named === 'none') return { zFlag: false };
  const level = compress.level !== undefined ? { level: compress.level } : {};
  if (named === undefined) return { zFlag: true, ...level };
  if (named === 'zlibx') return { zFlag: false, choiceArg: '--new-compress', ...level };
  if (named === 'zlib') return { zFlag: true, choiceArg: '--old-compress', ...level };
  return { zFlag: false, choiceArg: `--compress-choice=${escapeOptionArg(named)}`, ...level };
}

/** The characters rsync's client backslash-escapes in an option's value (wildcards and shell specials). */
const ESCAPED_IN_OPTION_ARGS = new Set('*?[]!#$&;|<>(){}"\'` \t\n\r\\');

/**
 * An option's value as rsync's client sends it (unless --protect-args): each wildcard, shell
 * special and backslash escaped with a backslash, which the daemon undoes.
 */
// rsync/options.c: safe_arg (an option's value: not a filename argument)
export function escapeOptionArg(value: string): string {
  let out = '';
  for (const c of value) out += ESCAPED_IN_OPTION_ARGS.has(c) ? `\\${c}` : c;
  return out;
}

/**
 * The daemon splits a path argument at " MODULE/" (old multi-path syntax) unless protected, and
 * reads a leading '-' as an option: rsync's client writes `[ ]` and `./` there, and so do we.
 */
// rsync/clientserver.c: start_inband_exchange (argument protection)
export function protectRemotePath(remotePath: string): string {
  const slash = remotePath.indexOf('/');
  const module = slash === -1 ? remotePath : remotePath.slice(0, slash);
  let path = remotePath.startsWith('-') ? `./${remotePath}` : remotePath;
  const needle = ` ${module}/`;
  if (path.includes(needle)) path = path.split(needle).join(`[ ]${module}/`);
  return path;
}
