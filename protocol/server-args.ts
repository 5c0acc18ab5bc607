// The client's `--server` argument list as the daemon reads it, and the module's `refuse options`
// (docs/protocol.md [args-content]). The list is parsed with rsync's own option table and popt's
// rules (short clusters, `--name=value` or `--name value`, `--` ends options, options after
// paths still count), into a typed ServerArgs; `refusal` answers `refuse options` as rsyncd does.
// Counterpart: rsync options.c (long_options, parse_arguments, set_refuse_options,
// create_refuse_error, server_options for what clients send), io.c read_args (unescaping).
import { RsyncError, EXIT, type ExitCode } from './errors.js';
import { MAX_BASIS_DIRS, type AltDestKind } from './basis.js';
import type { DeleteWhen, TransferOptions } from './args.js';

/** The client asked for something rsync's daemon would not parse: its text, exit code 4 as rsyncd's. */
export class ServerArgsError extends RsyncError {
  /** What rsyncd sends the client in MSG_ERROR for this case: `rsync: ${message}\n`. */
  readonly text: string;
  /** The option `refuse options` refused (rsync's long name), when that is the error. */
  readonly refusedOption: string | undefined;
  /**
   * What rsyncd had read when its parse stopped, which its error path still uses: it finishes
   * the setup phase as the sender or not with the capabilities seen so far, and as a receiver
   * sends one 0 byte first if any argument starts with `--files-from` (set by parseServerArgs).
   */
  seen: SeenBeforeError | undefined;
  constructor(message: string, refusedOption?: string, exitCode: ExitCode = EXIT.UNSUPPORTED) {
    // rsync/clientserver.c: rsync_module answers a failed parse with option_error and RERR_UNSUPPORTED.
    super(refusedOption === undefined ? 'ERR_RSYNC_SERVER_ARGS' : 'ERR_RSYNC_OPTION_REFUSED', message, exitCode);
    this.text = optionErrorText(message);
    this.refusedOption = refusedOption;
    this.seen = undefined;
  }
}

/** The parts of a failed list rsyncd's error path depends on. */
export interface SeenBeforeError {
  /** --sender was parsed before the error. */
  sender: boolean;
  /** The `-e` capability letters parsed before the error ('' if none). */
  clientInfo: string;
  /** Some argument of the list starts with `--files-from` (rsync's scan after a failed parse). */
  filesFrom: boolean;
}

/** The MSG_ERROR line rsyncd sends for an option error (`rsync: ` + the message + newline). */
// rsync/options.c: option_error
export function optionErrorText(message: string): string {
  return `rsync: ${message}\n`;
}

// ---------------------------------------------------------------------------------------------
// rsync's option table (options.c long_options), as data. `dest` is the C variable an entry
// writes (what refuse matching compares), `kind` popt's argInfo, `value` what a VAL/BIT row
// stores, `act` the action code a row hands to parse_arguments' switch.

type Kind = 'none' | 'val' | 'bitset' | 'string' | 'int';

interface OptionRow {
  long?: string;
  short?: string;
  kind: Kind;
  dest?: string;
  value?: number;
  act?: string;
}

const row = (long: string | undefined, short: string | undefined, kind: Kind, dest?: string, valueOrAct?: number | string): OptionRow => ({
  ...(long !== undefined && { long }),
  ...(short !== undefined && { short }),
  kind,
  ...(dest !== undefined && { dest }),
  ...(typeof valueOrAct === 'number' && { value: valueOrAct }),
  ...(typeof valueOrAct === 'string' && { act: valueOrAct }),
});
const N = undefined;

/** rsync 3.5.0's long_options, in its order (the order decides exact refuse matches). */
// rsync/options.c: long_options
const OPTIONS: readonly OptionRow[] = [
  row('help', N, 'none', N, 'HELP'),
  row('version', 'V', 'none', N, 'V'),
  row('verbose', 'v', 'none', N, 'v'),
  row('no-verbose', N, 'val', 'verbose', 0),
  row('no-v', N, 'val', 'verbose', 0),
  row('info', N, 'string', N, 'INFO'),
  row('debug', N, 'string', N, 'DEBUG'),
  row('stderr', N, 'string', N, 'STDERR'),
  row('msgs2stderr', N, 'val', 'msgs2stderr', 1),
  row('no-msgs2stderr', N, 'val', 'msgs2stderr', 0),
  row('quiet', 'q', 'none', N, 'q'),
  row('motd', N, 'val', 'output_motd', 1),
  row('no-motd', N, 'val', 'output_motd', 0),
  row('stats', N, 'none', 'do_stats'),
  row('human-readable', 'h', 'none', N, 'h'),
  row('no-human-readable', N, 'val', 'human_readable', 0),
  row('no-h', N, 'val', 'human_readable', 0),
  row('dry-run', 'n', 'none', 'dry_run'),
  row('archive', 'a', 'none', N, 'a'),
  row('recursive', 'r', 'val', 'recurse', 2),
  row('no-recursive', N, 'val', 'recurse', 0),
  row('no-r', N, 'val', 'recurse', 0),
  row('inc-recursive', N, 'val', 'allow_inc_recurse', 1),
  row('no-inc-recursive', N, 'val', 'allow_inc_recurse', 0),
  row('i-r', N, 'val', 'allow_inc_recurse', 1),
  row('no-i-r', N, 'val', 'allow_inc_recurse', 0),
  row('dirs', 'd', 'val', 'xfer_dirs', 2),
  row('no-dirs', N, 'val', 'xfer_dirs', 0),
  row('no-d', N, 'val', 'xfer_dirs', 0),
  row('old-dirs', N, 'val', 'xfer_dirs', 4),
  row('old-d', N, 'val', 'xfer_dirs', 4),
  row('perms', 'p', 'val', 'preserve_perms', 1),
  row('no-perms', N, 'val', 'preserve_perms', 0),
  row('no-p', N, 'val', 'preserve_perms', 0),
  row('executability', 'E', 'none', 'preserve_executability'),
  row('acls', 'A', 'none', N, 'A'),
  row('no-acls', N, 'val', 'preserve_acls', 0),
  row('no-A', N, 'val', 'preserve_acls', 0),
  row('xattrs', 'X', 'none', N, 'X'),
  row('no-xattrs', N, 'val', 'preserve_xattrs', 0),
  row('no-X', N, 'val', 'preserve_xattrs', 0),
  row('times', 't', 'val', 'preserve_mtimes', 1),
  row('no-times', N, 'val', 'preserve_mtimes', 0),
  row('no-t', N, 'val', 'preserve_mtimes', 0),
  row('atimes', 'U', 'none', N, 'U'),
  row('no-atimes', N, 'val', 'preserve_atimes', 0),
  row('no-U', N, 'val', 'preserve_atimes', 0),
  row('open-noatime', N, 'val', 'open_noatime', 1),
  row('no-open-noatime', N, 'val', 'open_noatime', 0),
  row('crtimes', 'N', 'val', 'preserve_crtimes', 1),
  row('no-crtimes', N, 'val', 'preserve_crtimes', 0),
  row('no-N', N, 'val', 'preserve_crtimes', 0),
  row('omit-dir-times', 'O', 'val', 'omit_dir_times', 1),
  row('no-omit-dir-times', N, 'val', 'omit_dir_times', 0),
  row('no-O', N, 'val', 'omit_dir_times', 0),
  row('omit-link-times', 'J', 'val', 'omit_link_times', 1),
  row('no-omit-link-times', N, 'val', 'omit_link_times', 0),
  row('no-J', N, 'val', 'omit_link_times', 0),
  row('modify-window', '@', 'int', 'modify_window', 'MODIFY_WINDOW'),
  row('super', N, 'val', 'am_root', 2),
  row('no-super', N, 'val', 'am_root', 0),
  row('fake-super', N, 'val', 'am_root', -1),
  row('owner', 'o', 'val', 'preserve_uid', 1),
  row('no-owner', N, 'val', 'preserve_uid', 0),
  row('no-o', N, 'val', 'preserve_uid', 0),
  row('group', 'g', 'val', 'preserve_gid', 1),
  row('no-group', N, 'val', 'preserve_gid', 0),
  row('no-g', N, 'val', 'preserve_gid', 0),
  row(N, 'D', 'none', N, 'D'),
  row('no-D', N, 'none', N, 'NO_D'),
  row('devices', N, 'val', 'preserve_devices', 1),
  row('no-devices', N, 'val', 'preserve_devices', 0),
  row('copy-devices', N, 'none', 'copy_devices'),
  row('write-devices', N, 'val', 'write_devices', 1),
  row('no-write-devices', N, 'val', 'write_devices', 0),
  row('specials', N, 'val', 'preserve_specials', 1),
  row('no-specials', N, 'val', 'preserve_specials', 0),
  row('drop-D', N, 'val', 'drop_devices', 1),
  row('no-drop-D', N, 'val', 'drop_devices', 0),
  row('confine-root', N, 'string', 'confine_root'),
  row('links', 'l', 'val', 'preserve_links', 1),
  row('no-links', N, 'val', 'preserve_links', 0),
  row('no-l', N, 'val', 'preserve_links', 0),
  row('copy-links', 'L', 'none', 'copy_links'),
  row('copy-unsafe-links', N, 'none', 'copy_unsafe_links'),
  row('safe-links', N, 'none', 'safe_symlinks'),
  row('insecure-links', N, 'val', 'insecure_links', 1),
  row('no-insecure-links', N, 'val', 'insecure_links', 0),
  row('munge-links', N, 'val', 'munge_symlinks', 1),
  row('no-munge-links', N, 'val', 'munge_symlinks', 0),
  row('copy-dirlinks', 'k', 'none', 'copy_dirlinks'),
  row('keep-dirlinks', 'K', 'none', 'keep_dirlinks'),
  row('hard-links', 'H', 'none', N, 'H'),
  row('no-hard-links', N, 'val', 'preserve_hard_links', 0),
  row('no-H', N, 'val', 'preserve_hard_links', 0),
  row('relative', 'R', 'val', 'relative_paths', 1),
  row('no-relative', N, 'val', 'relative_paths', 0),
  row('no-R', N, 'val', 'relative_paths', 0),
  row('implied-dirs', N, 'val', 'implied_dirs', 1),
  row('no-implied-dirs', N, 'val', 'implied_dirs', 0),
  row('i-d', N, 'val', 'implied_dirs', 1),
  row('no-i-d', N, 'val', 'implied_dirs', 0),
  row('chmod', N, 'string', N, 'CHMOD'),
  row('ignore-times', 'I', 'none', 'ignore_times'),
  row('size-only', N, 'none', 'size_only'),
  row('one-file-system', 'x', 'none', N, 'x'),
  row('no-one-file-system', N, 'val', 'one_file_system', 0),
  row('no-x', N, 'val', 'one_file_system', 0),
  row('update', 'u', 'none', 'update_only'),
  row('existing', N, 'none', 'ignore_non_existing'),
  row('ignore-non-existing', N, 'none', 'ignore_non_existing'),
  row('ignore-existing', N, 'none', 'ignore_existing'),
  row('max-size', N, 'string', 'max_size_arg', 'MAX_SIZE'),
  row('min-size', N, 'string', 'min_size_arg', 'MIN_SIZE'),
  row('max-alloc', N, 'string', 'max_alloc_arg'),
  row('sparse', 'S', 'val', 'sparse_files', 1),
  row('no-sparse', N, 'val', 'sparse_files', 0),
  row('no-S', N, 'val', 'sparse_files', 0),
  row('preallocate', N, 'none', 'preallocate_files'),
  row('inplace', N, 'val', 'inplace', 1),
  row('no-inplace', N, 'val', 'inplace', 0),
  row('append', N, 'none', N, 'APPEND'),
  row('append-verify', N, 'val', 'append_mode', 2),
  row('no-append', N, 'val', 'append_mode', 0),
  row('del', N, 'none', 'delete_during'),
  row('delete', N, 'none', 'delete_mode'),
  row('delete-before', N, 'none', 'delete_before'),
  row('delete-during', N, 'val', 'delete_during', 1),
  row('delete-delay', N, 'val', 'delete_during', 2),
  row('delete-after', N, 'none', 'delete_after'),
  row('delete-excluded', N, 'none', 'delete_excluded'),
  row('delete-missing-args', N, 'bitset', 'missing_args', 2),
  row('ignore-missing-args', N, 'bitset', 'missing_args', 1),
  row('remove-sent-files', N, 'val', 'remove_source_files', 2),
  row('remove-source-files', N, 'val', 'remove_source_files', 1),
  row('force', N, 'val', 'force_delete', 1),
  row('no-force', N, 'val', 'force_delete', 0),
  row('ignore-errors', N, 'val', 'ignore_errors', 1),
  row('no-ignore-errors', N, 'val', 'ignore_errors', 0),
  row('max-delete', N, 'int', 'max_delete'),
  row(N, 'F', 'none', N, 'F'),
  row('filter', 'f', 'string', N, 'FILTER'),
  row('exclude', N, 'string', N, 'EXCLUDE'),
  row('include', N, 'string', N, 'INCLUDE'),
  row('exclude-from', N, 'string', N, 'EXCLUDE_FROM'),
  row('include-from', N, 'string', N, 'INCLUDE_FROM'),
  row('cvs-exclude', 'C', 'none', 'cvs_exclude'),
  row('whole-file', 'W', 'val', 'whole_file', 1),
  row('no-whole-file', N, 'val', 'whole_file', 0),
  row('no-W', N, 'val', 'whole_file', 0),
  row('checksum', 'c', 'val', 'always_checksum', 1),
  row('no-checksum', N, 'val', 'always_checksum', 0),
  row('no-c', N, 'val', 'always_checksum', 0),
  row('checksum-choice', N, 'string', 'checksum_choice'),
  row('cc', N, 'string', 'checksum_choice'),
  row('block-size', 'B', 'string', N, 'BLOCK_SIZE'),
  row('compare-dest', N, 'string', N, 'COMPARE_DEST'),
  row('copy-dest', N, 'string', N, 'COPY_DEST'),
  row('link-dest', N, 'string', N, 'LINK_DEST'),
  row('fuzzy', 'y', 'none', N, 'y'),
  row('no-fuzzy', N, 'val', 'fuzzy_basis', 0),
  row('no-y', N, 'val', 'fuzzy_basis', 0),
  row('compress', 'z', 'none', N, 'z'),
  row('old-compress', N, 'none', N, 'OLD_COMPRESS'),
  row('new-compress', N, 'none', N, 'NEW_COMPRESS'),
  row('no-compress', N, 'none', N, 'NO_COMPRESS'),
  row('no-z', N, 'none', N, 'NO_COMPRESS'),
  row('compress-choice', N, 'string', 'compress_choice'),
  row('zc', N, 'string', 'compress_choice'),
  row('skip-compress', N, 'string', 'skip_compress'),
  row('compress-level', N, 'int', 'do_compression_level'),
  row('zl', N, 'int', 'do_compression_level'),
  row('compress-threads', N, 'int', 'do_compression_threads'),
  row('zt', N, 'int', 'do_compression_threads'),
  row(N, 'P', 'none', N, 'P'),
  row('progress', N, 'val', 'do_progress', 1),
  row('no-progress', N, 'val', 'do_progress', 0),
  row('partial', N, 'val', 'keep_partial', 1),
  row('no-partial', N, 'val', 'keep_partial', 0),
  row('partial-dir', N, 'string', 'partial_dir'),
  row('delay-updates', N, 'val', 'delay_updates', 1),
  row('no-delay-updates', N, 'val', 'delay_updates', 0),
  row('prune-empty-dirs', 'm', 'val', 'prune_empty_dirs', 1),
  row('no-prune-empty-dirs', N, 'val', 'prune_empty_dirs', 0),
  row('no-m', N, 'val', 'prune_empty_dirs', 0),
  row('log-file', N, 'string', 'logfile_name'),
  row('log-file-format', N, 'string', 'logfile_format'),
  row('out-format', N, 'string', 'stdout_format'),
  row('log-format', N, 'string', 'stdout_format'),
  row('itemize-changes', 'i', 'none', N, 'i'),
  row('no-itemize-changes', N, 'val', 'itemize_changes', 0),
  row('no-i', N, 'val', 'itemize_changes', 0),
  row('bwlimit', N, 'string', 'bwlimit_arg', 'BWLIMIT'),
  row('no-bwlimit', N, 'val', 'bwlimit', 0),
  row('backup', 'b', 'val', 'make_backups', 1),
  row('no-backup', N, 'val', 'make_backups', 0),
  row('backup-dir', N, 'string', 'backup_dir'),
  row('suffix', N, 'string', 'backup_suffix'),
  row('list-only', N, 'val', 'list_only', 2),
  row('read-batch', N, 'string', 'batch_name', 'READ_BATCH'),
  row('write-batch', N, 'string', 'batch_name', 'WRITE_BATCH'),
  row('only-write-batch', N, 'string', 'batch_name', 'ONLY_WRITE_BATCH'),
  row('files-from', N, 'string', 'files_from'),
  row('from0', '0', 'val', 'eol_nulls', 1),
  row('no-from0', N, 'val', 'eol_nulls', 0),
  row('old-args', N, 'none', N, 'OLD_ARGS'),
  row('no-old-args', N, 'val', 'old_style_args', 0),
  row('secluded-args', 's', 'val', 'protect_args', 1),
  row('no-secluded-args', N, 'val', 'protect_args', 0),
  row('protect-args', N, 'val', 'protect_args', 1),
  row('no-protect-args', N, 'val', 'protect_args', 0),
  row('no-s', N, 'val', 'protect_args', 0),
  row('trust-sender', N, 'val', 'trust_sender', 1),
  row('numeric-ids', N, 'val', 'numeric_ids', 1),
  row('no-numeric-ids', N, 'val', 'numeric_ids', 0),
  row('usermap', N, 'string', N, 'USERMAP'),
  row('groupmap', N, 'string', N, 'GROUPMAP'),
  row('chown', N, 'string', N, 'CHOWN'),
  row('timeout', N, 'int', 'io_timeout'),
  row('no-timeout', N, 'val', 'io_timeout', 0),
  row('contimeout', N, 'int', 'connect_timeout'),
  row('no-contimeout', N, 'val', 'connect_timeout', 0),
  row('fsync', N, 'none', 'do_fsync'),
  row('stop-after', N, 'string', N, 'STOP_AFTER'),
  row('time-limit', N, 'string', N, 'STOP_AFTER'),
  row('stop-at', N, 'string', N, 'STOP_AT'),
  row('rsh', 'e', 'string', 'shell_cmd'),
  row('rsync-path', N, 'string', 'rsync_path'),
  row('temp-dir', 'T', 'string', 'tmpdir'),
  row('iconv', N, 'string', 'iconv_opt'),
  row('no-iconv', N, 'none', N, 'NO_ICONV'),
  row('ipv4', '4', 'val', 'default_af_hint', 2),
  row('ipv6', '6', 'val', 'default_af_hint', 10),
  row('8-bit-output', '8', 'val', 'allow_8bit_chars', 1),
  row('no-8-bit-output', N, 'val', 'allow_8bit_chars', 0),
  row('no-8', N, 'val', 'allow_8bit_chars', 0),
  row('mkpath', N, 'val', 'mkpath_dest_arg', 1),
  row('no-mkpath', N, 'val', 'mkpath_dest_arg', 0),
  row('qsort', N, 'none', 'use_qsort'),
  row('copy-as', N, 'string', 'copy_as'),
  row('address', N, 'string', 'bind_address'),
  row('port', N, 'int', 'rsync_port'),
  row('sockopts', N, 'string', 'sockopts'),
  row('password-file', N, 'string', 'password_file'),
  row('early-input', N, 'string', 'early_input_file'),
  row('blocking-io', N, 'val', 'blocking_io', 1),
  row('no-blocking-io', N, 'val', 'blocking_io', 0),
  row('outbuf', N, 'string', 'outbuf_mode'),
  row('remote-option', 'M', 'string', N, 'M'),
  row('protocol', N, 'int', 'protocol_version'),
  row('checksum-seed', N, 'int', 'checksum_seed'),
  row('server', N, 'none', N, 'SERVER'),
  row('sender', N, 'none', N, 'SENDER'),
  row('config', N, 'string', N, 'DAEMON'),
  row('daemon', N, 'none', N, 'DAEMON'),
  row('dparam', N, 'string', N, 'DAEMON'),
  row('detach', N, 'none', N, 'DAEMON'),
  row('no-detach', N, 'none', N, 'DAEMON'),
];

const BY_LONG = new Map(OPTIONS.filter((o) => o.long).map((o) => [o.long!, o]));
const BY_SHORT = new Map(OPTIONS.filter((o) => o.short).map((o) => [o.short!, o]));
const takesArg = (o: OptionRow) => o.kind === 'string' || o.kind === 'int';
/** The name an option is known by in `given` and in rsync's messages: its long name, else its letter. */
const nameOf = (o: OptionRow) => o.long ?? o.short!;


// ---------------------------------------------------------------------------------------------

export interface BasisDir {
  kind: AltDestKind;
  dir: string;
}

/** What the client's argument list asks of the daemon, with rsync's option names in camelCase. */
export interface ServerArgs {
  /** --sender: the daemon sends (a client pull or listing). */
  sender: boolean;
  /** The letters after `e` in the cluster (after its `.`), '' if none: the client's capabilities. */
  clientInfo: string;
  /** protocol/args.ts's options, as far as they go. */
  transfer: TransferOptions;
  /** -s / --secluded-args: the options and paths come in a second list (pass it as `secluded`). */
  secluded: boolean;
  /** --old-args count. */
  oldArgs: number;
  /** How deletion runs: rsync's choice for a bare --delete is 'during' at protocol >= 30, else 'before'. */
  deleteMode: DeleteWhen | undefined;
  deleteExcluded: boolean;
  deleteMissingArgs: boolean;
  ignoreMissingArgs: boolean;
  ignoreErrors: boolean;
  force: boolean;
  /** --max-delete=N (a negative N means no deletions: 0). */
  maxDelete: number | undefined;
  modifyWindow: number | undefined;
  sizeOnly: boolean;
  ignoreTimes: boolean;
  /** --compare-dest / --copy-dest / --link-dest, in order (one kind only, at most MAX_BASIS_DIRS). */
  basisDirs: BasisDir[];
  /** -y count: 0, 1, or 2 (-yy: also the basis dirs). */
  fuzzy: number;
  partial: boolean;
  partialDir: string | undefined;
  delayUpdates: boolean;
  inplace: boolean;
  /** --append: 1; the server's `--append --append` (the client's --append-verify): 2. */
  append: number;
  numericIds: boolean;
  checksumChoice: string | undefined;
  checksumSeed: number | undefined;
  /** -z, --compress-level, --compress-choice (--old-compress is zlib, --new-compress zlibx), or undefined. */
  compress: { level: number | undefined; choice: string | undefined } | undefined;
  skipCompress: string | undefined;
  verbose: number;
  itemize: boolean;
  /** --log-format / --out-format as sent (the server learns from it whether to itemize). */
  outFormat: string | undefined;
  stats: boolean;
  listOnly: boolean;
  recursive: boolean;
  /** -d: directories without recursing. */
  dirs: boolean;
  relative: boolean;
  impliedDirs: boolean;
  pruneEmptyDirs: boolean;
  links: boolean;
  copyLinks: boolean;
  copyUnsafeLinks: boolean;
  safeLinks: boolean;
  mungeLinks: boolean;
  copyDirlinks: boolean;
  keepDirlinks: boolean;
  /** -H count (-HH: 2). */
  hardLinks: number;
  perms: boolean;
  executability: boolean;
  times: boolean;
  omitDirTimes: boolean;
  omitLinkTimes: boolean;
  /** -U count. */
  atimes: number;
  openNoatime: boolean;
  crtimes: boolean;
  owner: boolean;
  group: boolean;
  devices: boolean;
  specials: boolean;
  copyDevices: boolean;
  writeDevices: boolean;
  acls: boolean;
  /** -X count. */
  xattrs: number;
  /** --super: 2, --fake-super: -1, else 0. */
  superUser: number;
  checksum: boolean;
  wholeFile: boolean | undefined;
  dryRun: boolean;
  update: boolean;
  existing: boolean;
  ignoreExisting: boolean;
  /** --remove-source-files: 1; --remove-sent-files: 2. */
  removeSourceFiles: number;
  /** -x count. */
  oneFileSystem: number;
  sparse: boolean;
  preallocate: boolean;
  cvsExclude: boolean;
  backup: boolean;
  backupDir: string | undefined;
  suffix: string | undefined;
  tempDir: string | undefined;
  /** --chmod values, in order. */
  chmod: string[];
  usermap: string | undefined;
  groupmap: string | undefined;
  iconv: string | undefined;
  /** --files-from value ('-': the list comes over the socket). */
  filesFrom: string | undefined;
  from0: boolean;
  /** --bwlimit in KiB/s (rsync's rounding of the size argument). */
  bwlimit: number | undefined;
  blockSize: number | undefined;
  timeout: number | undefined;
  maxSize: string | undefined;
  minSize: string | undefined;
  maxAlloc: string | undefined;
  mkpath: boolean;
  trustSender: boolean;
  fsync: boolean;
  /** --filter/--exclude/--include (and -from) given as options, in order. */
  filterOptions: { option: string; value: string }[];
  /** -F count. */
  filterShorthand: number;
  info: string[];
  debug: string[];
  /** The arguments after the options: `.` and the module paths, as sent. */
  paths: string[];
  /** Every option as given, by rsync's long name (its letter when it has none), in order. */
  given: string[];
}

export interface ParseServerArgsOptions {
  /** The second argument list of -s (its first element is the client's argv[0], skipped as rsync does). */
  secluded?: readonly string[];
  /**
   * The module's `refuse options` (words, or refusedOptions()' set): a refused option then
   * throws ServerArgsError with rsyncd's refusal text at the point rsyncd's parse meets it (so
   * an unknown option before it wins, and one after it does not), the delete mode follows the
   * refusals (refusedDeleteMode), and a refused --delete-missing-args is dropped, as rsyncd does.
   */
  refuse?: readonly string[] | ReadonlySet<string>;
}

/** rsync's C globals that parsing touches, by their C names. */
type Vars = Record<string, number | string | undefined>;

/**
 * Parse the client's `--server` argument list as rsyncd does: options (before the `.` unescaped
 * from the client's backslashes, as rsync 3.5's daemon does), then the paths. With -s, pass the
 * second list as `options.secluded`: rsync parses both, the second continuing from the first.
 * Throws ServerArgsError with rsyncd's text for what rsyncd would reject (with `options.refuse`,
 * refusals included).
 */
// rsync/options.c: parse_arguments (am_server); rsync/clientserver.c: rsync_module (the two passes)
export function parseServerArgs(args: readonly string[], protocol: number, options: ParseServerArgsOptions = {}): ServerArgs {
  const state = newState(protocol, options.refuse === undefined ? undefined : refusedSet(options.refuse));
  let list: readonly string[] = args;
  try {
    parsePass(state, unescapeOptions(args));
    if (state.vars.protect_args === 1 && options.secluded) {
      state.vars.protect_args = 2;
      list = options.secluded;
      parsePass(state, options.secluded.slice(1));
    } else if (options.secluded) {
      throw new ServerArgsError('a second argument list was given but the first did not ask for -s');
    }
    return finish(state, protocol, options.secluded !== undefined);
  } catch (e) {
    if (e instanceof ServerArgsError) {
      // rsync/clientserver.c: rsync_module (the error path: setup_protocol, the --files-from scan)
      e.seen = {
        sender: num(state.vars, 'am_sender') === 1,
        clientInfo: clientInfoOf(str(state.vars, 'shell_cmd')),
        filesFrom: str(state.vars, 'files_from') !== undefined || list.some((a) => a.startsWith('--files-from')),
      };
    }
    throw e;
  }
}

/** The capability letters of `-e`: what follows its '.'. */
function clientInfoOf(rsh: string | undefined): string {
  const dot = (rsh ?? '').indexOf('.');
  return dot === -1 ? '' : rsh!.slice(dot + 1);
}

/** rsync 3.5's daemon undoes the client's safe_arg() backslashes in the options before the `.`. */
// rsync/io.c: read_args, unbackslash_arg
function unescapeOptions(args: readonly string[]): string[] {
  const dot = args.indexOf('.');
  return args.map((arg, i) => (dot !== -1 && i >= dot ? arg : arg.replace(/\\(.)/gs, '$1')));
}

interface ParseState {
  vars: Vars;
  given: string[];
  paths: string[];
  basisDirs: BasisDir[];
  chmod: string[];
  filterOptions: { option: string; value: string }[];
  info: string[];
  debug: string[];
  /** The refused option names, when parsing with the module's `refuse options`. */
  refused: ReadonlySet<string> | undefined;
  /** The protocol the session negotiated (the daemon knows it before the arguments). */
  protocol: number;
}

function newState(protocol: number, refused: ReadonlySet<string> | undefined): ParseState {
  return {
    protocol,
    vars: {
      // rsync's defaults that differ from 0 (options.c), for what we read back.
      whole_file: -1,
      relative_paths: -1,
      implied_dirs: 1,
      xfer_dirs: -1,
      protect_args: -1,
      old_style_args: -1,
      max_delete: Number.MIN_SAFE_INTEGER,
      do_compression_level: undefined,
      compress_choice: undefined,
    },
    given: [],
    paths: [],
    basisDirs: [],
    chmod: [],
    filterOptions: [],
    info: [],
    debug: [],
    refused,
  };
}

const num = (v: Vars, name: string): number => (typeof v[name] === 'number' ? (v[name] as number) : 0);
const str = (v: Vars, name: string): string | undefined => (typeof v[name] === 'string' ? (v[name] as string) : undefined);

/** One popt pass over an argument list (argv[0] not included). */
// rsync/options.c: parse_arguments (the poptGetNextOpt loop)
function parsePass(state: ParseState, args: readonly string[]): void {
  state.paths = [];
  let i = 0;
  let optionsEnded = false;
  while (i < args.length) {
    const arg = args[i++]!;
    if (optionsEnded || !arg.startsWith('-') || arg === '-') {
      state.paths.push(arg);
      continue;
    }
    if (arg === '--') {
      optionsEnded = true;
      continue;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq === -1 ? undefined : eq);
      const option = BY_LONG.get(name);
      if (!option) throw badOption(state, arg, 'unknown option');
      let value: string | undefined;
      // popt names the last argument it consumed: the value itself when it came separately.
      let shown = arg;
      if (takesArg(option)) {
        if (eq !== -1) value = arg.slice(eq + 1);
        else if (i < args.length) shown = value = args[i++]!;
        else throw badOption(state, arg, 'missing argument');
      } else if (eq !== -1) {
        throw badOption(state, arg, 'option does not take an argument');
      }
      apply(state, option, value, shown);
      continue;
    }
    // A cluster of short options; the first that takes an argument takes the rest (or the next one).
    for (let c = 1; c < arg.length; c++) {
      const option = BY_SHORT.get(arg[c]!);
      if (!option) throw badOption(state, arg, 'unknown option');
      if (!takesArg(option)) {
        apply(state, option, undefined, arg);
        continue;
      }
      let value: string;
      let shown = arg;
      if (c + 1 < arg.length) value = arg.slice(c + 1);
      else if (i < args.length) shown = value = args[i++]!;
      else throw badOption(state, arg, 'missing argument');
      apply(state, option, value, shown);
      break;
    }
  }
}

/** rsync's "on remote machine: OPTION: popt's error" text (the prefix only once --server was seen). */
// rsync/options.c: parse_arguments (default case: poptBadOption, poptStrerror)
function badOption(state: ParseState, arg: string, error: string): ServerArgsError {
  return new ServerArgsError(`${state.vars.am_server ? 'on remote machine: ' : ''}${arg}: ${error}`);
}

/** popt's integer argument: C strtol base 0 over the whole text ('' reads as 0), an int's range. */
function parseIntArg(state: ParseState, value: string, arg: string): number {
  if (value === '') return 0;
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(value);
  if (!m) throw badOption(state, arg, 'invalid numeric value');
  const digits = m[2]!;
  const magnitude = /^0[xX]/.test(digits) ? parseInt(digits.slice(2), 16) : digits.length > 1 && digits.startsWith('0') ? parseInt(digits, 8) : parseInt(digits, 10);
  const n = m[1] === '-' ? -magnitude : magnitude;
  if (n > 2147483647 || n < -2147483648) throw badOption(state, arg, 'number too large or too small');
  return n;
}

/** One option: popt's store, then parse_arguments' switch for the rows with an action. */
// rsync/options.c: parse_arguments (the switch)
function apply(state: ParseState, option: OptionRow, value: string | undefined, arg: string): void {
  const v = state.vars;
  state.given.push(nameOf(option));
  let intValue: number | undefined;
  if (option.kind === 'int') intValue = parseIntArg(state, value!, arg);
  const refused = state.refused;
  if (refused?.has(nameOf(option))) {
    // A refused row hands rsync's switch its refusal code, except a bit-set row: popt ORs that
    // code into the variable instead, so the option is silently neither on nor off.
    if (option.kind !== 'bitset') throw refusalError(option);
    v[option.dest!] = num(v, option.dest!) | REFUSED_BITS;
    return;
  }
  if (option.dest) {
    if (option.kind === 'val') v[option.dest] = option.value!;
    else if (option.kind === 'bitset') v[option.dest] = num(v, option.dest) | option.value!;
    else if (option.kind === 'none') v[option.dest] = 1;
    else if (option.kind === 'int') v[option.dest] = intValue;
    else v[option.dest] = value;
  }
  const fail = (message: string) => new ServerArgsError(message);
  switch (option.act) {
    case undefined:
      return;
    case 'SERVER':
      v.am_server = 1;
      return;
    case 'SENDER':
      // rsyncd prints its usage to its own log and closes the connection with code 1: the client
      // gets no text for this one.
      if (!v.am_server) throw new ServerArgsError('--sender before --server', undefined, EXIT.SYNTAX);
      v.am_sender = 1;
      return;
    case 'DAEMON':
      throw fail('Attempt to hack rsync thwarted!');
    case 'HELP':
    case 'V':
    case 'h':
    case 'q':
      v[option.act] = num(v, option.act) + 1;
      return;
    case 'MODIFY_WINDOW':
      v.modify_window_set = 1;
      return;
    case 'FILTER':
    case 'EXCLUDE':
    case 'INCLUDE':
    case 'EXCLUDE_FROM':
    case 'INCLUDE_FROM':
      state.filterOptions.push({ option: option.long!, value: value! });
      return;
    case 'a': {
      const part = refused && archivePartOf(refused);
      if (part) throw refusalError(part);
      if (!num(v, 'recurse')) v.recurse = 1;
      for (const name of ['preserve_links', 'preserve_perms', 'preserve_mtimes', 'preserve_gid', 'preserve_uid', 'preserve_devices', 'preserve_specials']) {
        v[name] = 1;
      }
      return;
    }
    case 'D':
      v.preserve_devices = v.preserve_specials = 1;
      return;
    case 'NO_D':
      v.preserve_devices = v.preserve_specials = 0;
      return;
    case 'H':
      v.preserve_hard_links = num(v, 'preserve_hard_links') + 1;
      return;
    case 'i':
      v.itemize_changes = num(v, 'itemize_changes') + 1;
      return;
    case 'U':
      v.preserve_atimes = num(v, 'preserve_atimes') + 1;
      if (num(v, 'preserve_atimes') > 1) v.open_noatime = 1;
      return;
    case 'v':
      v.verbose = num(v, 'verbose') + 1;
      return;
    case 'y':
      v.fuzzy_basis = num(v, 'fuzzy_basis') + 1;
      return;
    case 'x':
      v.one_file_system = num(v, 'one_file_system') + 1;
      return;
    case 'F':
      v.F_option_cnt = num(v, 'F_option_cnt') + 1;
      return;
    case 'P':
      if (refused?.has('partial') || refused?.has('progress')) throw refusalError(rowNamed(refused.has('partial') ? 'partial' : 'progress'));
      v.do_progress = v.keep_partial = 1;
      return;
    case 'z':
      v.do_compression = num(v, 'do_compression') + 1;
      return;
    case 'OLD_COMPRESS':
      v.compress_choice = 'zlib';
      return;
    case 'NEW_COMPRESS':
      v.compress_choice = 'zlibx';
      return;
    case 'NO_COMPRESS':
      v.do_compression = 0;
      v.compress_choice = undefined;
      return;
    case 'OLD_ARGS':
      v.old_style_args = num(v, 'old_style_args') <= 0 ? 1 : num(v, 'old_style_args') + 1;
      return;
    case 'M':
      if (!value!.startsWith('-')) throw fail(`Remote option must start with a dash: ${value}`);
      return;
    case 'WRITE_BATCH':
    case 'READ_BATCH':
    case 'ONLY_WRITE_BATCH':
      // rsync's server ignores --read-batch/--write-batch (with an info line); --only-write-batch is a dry run.
      if (option.act === 'ONLY_WRITE_BATCH') v.write_batch = -1;
      return;
    case 'NO_ICONV':
      v.iconv_opt = undefined;
      return;
    case 'BLOCK_SIZE':
      // The daemon knows the negotiated protocol while parsing: below 30 the old, larger bound.
      v.block_size = parseSizeArg(value!, 'b', 'block-size', 0, state.protocol < 30 ? OLD_MAX_BLOCK_SIZE : MAX_BLOCK_SIZE);
      return;
    case 'MAX_SIZE':
    case 'MIN_SIZE':
      parseSizeArg(value!, 'b', option.long!, 0, -1);
      return;
    case 'BWLIMIT': {
      const size = parseSizeArg(value!, 'K', 'bwlimit', 512, -1, true);
      v.bwlimit = Math.floor((size + 512) / 1024);
      return;
    }
    case 'APPEND':
      v.append_mode = num(v, 'append_mode') + 1;
      return;
    case 'LINK_DEST':
    case 'COPY_DEST':
    case 'COMPARE_DEST': {
      const kind = option.act === 'LINK_DEST' ? 'link' : option.act === 'COPY_DEST' ? 'copy' : 'compare';
      const had = state.basisDirs[0]?.kind;
      if (had && had !== kind) throw fail(`ERROR: the --${kind}-dest option conflicts with the --${had}-dest option`);
      if (state.basisDirs.length >= MAX_BASIS_DIRS) throw fail(`ERROR: at most ${MAX_BASIS_DIRS} --${kind}-dest args may be specified`);
      state.basisDirs.push({ kind, dir: value! });
      return;
    }
    case 'CHMOD':
      if (!validChmod(value!)) throw fail(`Invalid argument passed to --chmod (${value})`);
      state.chmod.push(value!);
      return;
    case 'INFO':
      state.info.push(value!);
      return;
    case 'DEBUG':
      state.debug.push(value!);
      return;
    case 'USERMAP':
    case 'GROUPMAP': {
      const which = option.act === 'USERMAP' ? 'user' : 'group';
      if (v[`${which}map`] !== undefined) {
        throw fail(v[`${which}map_via_chown`] ? `--${which}map conflicts with prior --chown.` : `You can only specify --${which}map once.`);
      }
      v[`${which}map`] = value;
      v[`${which}map_via_chown`] = 0;
      v[which === 'user' ? 'preserve_uid' : 'preserve_gid'] = 1;
      return;
    }
    case 'CHOWN': {
      const colon = value!.indexOf(':');
      const user = colon === -1 ? value! : value!.slice(0, colon);
      const group = colon === -1 ? '' : value!.slice(colon + 1);
      for (const [which, name] of [['user', user], ['group', group]] as const) {
        if (!name) continue;
        if (v[`${which}map`] !== undefined) {
          throw fail(v[`${which}map_via_chown`] ? `You can only specify a ${which}-affecting --chown once.` : `--chown conflicts with prior --${which}map.`);
        }
        v[`${which}map`] = `*:${name}`;
        v[`${which}map_via_chown`] = 1;
        v[which === 'user' ? 'preserve_uid' : 'preserve_gid'] = 1;
      }
      return;
    }
    case 'A':
      v.preserve_acls = v.preserve_perms = 1;
      return;
    case 'X':
      v.preserve_xattrs = num(v, 'preserve_xattrs') + 1;
      return;
    case 'STOP_AFTER':
    case 'STOP_AT':
    case 'STDERR':
      // Accepted by rsync's server; they shape only the server's own run, which is ours to decide.
      return;
    default:
      return;
  }
}

/** rsync.h MAX_BLOCK_SIZE (protocol >= 30) and OLD_MAX_BLOCK_SIZE. */
const MAX_BLOCK_SIZE = 1 << 17;
const OLD_MAX_BLOCK_SIZE = 1 << 29;

/** rsync's size argument (`10k`, `1.5M`, `100`), as parse_size_arg reads it; errors with its text. */
// rsync/options.c: parse_size_arg
export function parseSizeArg(text: string, defaultSuffix: string, optName: string, minValue: number, maxValue: number, unlimited0 = false): number {
  const fail = (what: string, limit?: [string, number]) => {
    let message = `--${optName}=${text} is ${what}`;
    if (limit && limit[1] >= 0) message += ` (${limit[0]}: ${bigNum(limit[1])}${unlimited0 && limit[0] === 'min' ? ' or 0 for unlimited' : ''})`;
    return new ServerArgsError(message);
  };
  const m = /^(\d*(?:\.\d*)?)(.*)$/s.exec(text)!;
  let rest = m[2]!;
  let suffix = defaultSuffix;
  if (rest && rest[0] !== '+' && rest[0] !== '-') {
    suffix = rest[0]!;
    rest = rest.slice(1);
  }
  const reps = { b: 0, k: 1, m: 2, g: 3, t: 4, p: 5 }[suffix.toLowerCase()];
  if (reps === undefined) throw fail('invalid');
  let mult: number;
  if (rest[0] === 'b' || rest[0] === 'B') {
    mult = 1000;
    rest = rest.slice(1);
  } else if (!rest || rest[0] === '+' || rest[0] === '-') mult = 1024;
  else if (rest.slice(0, 2).toLowerCase() === 'ib') {
    mult = 1024;
    rest = rest.slice(2);
  } else throw fail('invalid');
  let size = Number(m[1] || 'NaN') * mult ** reps;
  if (!Number.isFinite(size)) size = 0;
  size = Math.trunc(size);
  if ((rest === '+1' || rest === '-1') && m[2] !== text) {
    size += rest === '+1' ? 1 : -1;
    rest = '';
  }
  if (rest) throw fail('invalid');
  if (size < 0 || (maxValue >= 0 && size > maxValue)) throw fail('too large', ['max', maxValue]);
  if (size < minValue && (!unlimited0 || size !== 0)) throw fail('too small', ['min', minValue]);
  return size;
}

/** A limit as rsync's messages show it: 1024-based units from 1024 on (do_big_num, human_flag 3). */
// rsync/lib/compat.c: do_big_num
function bigNum(n: number): string {
  if (n < 1024) return String(n);
  let d = n / 1024;
  let unit = 'K';
  for (const next of ['M', 'G', 'T', 'P']) {
    if (d < 1024) break;
    d /= 1024;
    unit = next;
  }
  return `${d.toFixed(2)}${unit}`;
}

/** After the options: rsync's derived settings and the checks that do not depend on `refuse options`. */
// rsync/options.c: parse_arguments (after the loop); rsync/compat.c: setup_protocol (the delete mode)
function finish(state: ParseState, protocol: number, hadSecluded: boolean): ServerArgs {
  const v = state.vars;
  const fail = (message: string) => new ServerArgsError(message);
  const refused = state.refused ?? new Set<string>();
  const refuse = (name: string) => refusalError(rowNamed(name));
  if (num(v, 'old_style_args') > 0 && num(v, 'protect_args') > 0) throw fail('--secluded-args conflicts with --old-args.');
  // Compression: -z (twice: zlibx), --old/--new-compress, --compress-choice, --compress-level.
  let choice = str(v, 'compress_choice');
  const z = num(v, 'do_compression');
  if (!choice && z > 1) choice = 'zlibx';
  if (choice && choice.toLowerCase() === 'auto') choice = undefined;
  const level = typeof v.do_compression_level === 'number' ? v.do_compression_level : undefined;
  const compressing = (choice !== undefined && choice !== 'none') || (choice === undefined && z > 0) || level !== undefined;
  const compress = compressing ? { level, choice } : undefined;
  if (compress && refused.has('compress')) throw refuse('compress');
  if (refused.has('no-iconv') && str(v, 'iconv_opt') === undefined) throw refuse('no-iconv');
  const filesFrom = str(v, 'files_from');
  if (filesFrom !== undefined && num(v, 'recurse') === 1) v.recurse = 0;
  if (filesFrom !== undefined && num(v, 'xfer_dirs') < 0) v.xfer_dirs = 1;
  const listOnly = num(v, 'list_only') > 0;
  let xferDirs = num(v, 'xfer_dirs');
  if (xferDirs >= 4) v.recurse = xferDirs = 1;
  else if (num(v, 'recurse')) xferDirs = 1;
  else if (xferDirs < 0) xferDirs = listOnly ? 1 : 0;
  let relative = num(v, 'relative_paths');
  if (relative < 0) relative = filesFrom !== undefined ? 1 : 0;
  const impliedDirs = relative ? num(v, 'implied_dirs') : 0;

  let before = num(v, 'delete_before');
  let during = num(v, 'delete_during');
  const after = num(v, 'delete_after');
  if (before + (during ? 1 : 0) + after > 1) throw fail('You may not combine multiple --delete-WHEN options.');
  const deleteExcluded = num(v, 'delete_excluded') === 1;
  const wantsDelete = before || during || after || num(v, 'delete_mode') || deleteExcluded;
  if (wantsDelete && !(before || during || after)) {
    // Only now does rsync choose between before and during, if one of them is refused.
    if (refused.has('delete-before')) {
      if (refused.has('delete-during')) throw refuse('delete-before');
      during = 1;
    } else if (refused.has('delete-during')) before = 1;
  }
  if (!xferDirs && wantsDelete) throw fail('--delete does not work without --recursive (-r) or --dirs (-d).');
  let deleteMode: DeleteWhen | undefined;
  if (before) deleteMode = 'before';
  else if (during === 2) deleteMode = 'delay';
  else if (during) deleteMode = 'during';
  else if (after) deleteMode = 'after';
  else if (wantsDelete) deleteMode = protocol < 30 ? 'before' : 'during';

  let missing = num(v, 'missing_args');
  if (missing === 3) missing = 2;
  if (refused.has('delete') && (wantsDelete || missing === 2)) throw refuse('delete');
  if (num(v, 'remove_source_files') && refused.has('delete') && num(v, 'am_sender')) throw refuse('delete');
  let maxDelete: number | undefined = num(v, 'max_delete') === Number.MIN_SAFE_INTEGER ? undefined : num(v, 'max_delete');
  if (maxDelete !== undefined && maxDelete < 0) maxDelete = 0;


  let checksumChoice = str(v, 'checksum_choice');
  if (checksumChoice && /^auto(,auto)?$/i.test(checksumChoice)) checksumChoice = undefined;

  const appendMode = num(v, 'append_mode');
  const writeDevices = num(v, 'write_devices') === 1;
  if (appendMode && num(v, 'whole_file') > 0) throw fail('--append cannot be used with --whole-file');
  if ((appendMode || writeDevices) && refused.has('inplace')) throw refuse('inplace');
  let partialDir = str(v, 'partial_dir');
  if (num(v, 'delay_updates') && !partialDir) partialDir = '.~tmp~';
  const inplace = num(v, 'inplace') === 1 || appendMode > 0 || writeDevices;
  let keepPartial = num(v, 'keep_partial') === 1;
  if (inplace) {
    if (partialDir) throw fail(`--${appendMode ? 'append' : 'inplace'} cannot be used with --${num(v, 'delay_updates') ? 'delay-updates' : 'partial-dir'}`);
    // --inplace implies --partial for refusal purposes (rsync's words).
    if (refused.has('partial')) throw refuse('partial');
    keepPartial = false;
  } else if (partialDir !== undefined) {
    partialDir = cleanPartialDir(partialDir);
    if (partialDir === undefined && refused.has('partial')) throw refuse('partial');
    keepPartial = true;
  }
  const backupDir = str(v, 'backup_dir');
  const suffix = str(v, 'backup_suffix');
  if (suffix !== undefined && suffix.includes('/')) throw fail(`--suffix cannot contain slashes: ${suffix}`);
  if (filesFrom !== undefined && /^rsync:\/\/|^[^/:]+:/.test(filesFrom)) {
    throw fail('The --files-from sent to the server cannot specify a host.');
  }

  const stdoutFormat = str(v, 'stdout_format');
  const itemize = stdoutFormat !== undefined ? /%[-0-9']*i/.test(stdoutFormat) : num(v, 'itemize_changes') > 0;
  const timeout = typeof v.io_timeout === 'number' && v.io_timeout !== 0 ? v.io_timeout : undefined;
  const modifyWindow = v.modify_window_set ? num(v, 'modify_window') : undefined;
  const fuzzy = Math.min(num(v, 'fuzzy_basis'), 2);
  const copyDest = state.basisDirs.find((b) => b.kind === 'copy')?.dir;
  const verbose = num(v, 'verbose');
  const wholeFile = num(v, 'whole_file') < 0 ? undefined : num(v, 'whole_file') === 1;
  const preserveDevices = num(v, 'preserve_devices') === 1;

  const transfer: TransferOptions = {
    recursive: num(v, 'recurse') > 0,
    links: num(v, 'preserve_links') === 1,
    perms: num(v, 'preserve_perms') === 1,
    times: num(v, 'preserve_mtimes') === 1,
    owner: num(v, 'preserve_uid') === 1,
    group: num(v, 'preserve_gid') === 1,
    devices: preserveDevices,
    hardLinks: num(v, 'preserve_hard_links') > 0,
    ...(num(v, 'preserve_acls') === 1 && { acls: true }),
    ...(num(v, 'preserve_xattrs') > 0 && { xattrs: num(v, 'preserve_xattrs') }),
    checksum: num(v, 'always_checksum') === 1,
    wholeFile: wholeFile === true,
    dryRun: num(v, 'dry_run') === 1,
    delete: deleteMode !== undefined,
    deleteExcluded,
    numericIds: num(v, 'numeric_ids') === 1,
    verbose,
    itemize,
    stats: num(v, 'do_stats') === 1,
    ...(num(v, 'xfer_dirs') === 2 && { dirs: true }),
    ...(checksumChoice !== undefined && { checksumChoice }),
    ...(timeout !== undefined && { timeout }),
    ...(modifyWindow !== undefined && { modifyWindow }),
    ...(copyDest !== undefined && { copyDest }),
    ...(fuzzy > 0 && { fuzzy }),
    ...(missing === 2 && { deleteMissingArgs: true }),
    // The sender's walk options (src/transfer/walk-options.ts).
    ...(num(v, 'copy_links') === 1 && { copyLinks: true }),
    ...(num(v, 'copy_unsafe_links') === 1 && { copyUnsafeLinks: true }),
    ...(num(v, 'copy_dirlinks') === 1 && { copyDirlinks: true }),
    ...(num(v, 'one_file_system') > 0 && { oneFileSystem: num(v, 'one_file_system') }),
    ...(relative === 1 && { relative: true, ...(impliedDirs !== 1 && { impliedDirs: false }) }),
  };
  return {
    sender: num(v, 'am_sender') === 1,
    clientInfo: clientInfoOf(str(v, 'shell_cmd')),
    transfer,
    secluded: num(v, 'protect_args') > 0 || hadSecluded,
    oldArgs: Math.max(num(v, 'old_style_args'), 0),
    deleteMode,
    deleteExcluded,
    deleteMissingArgs: missing === 2,
    ignoreMissingArgs: missing === 1,
    ignoreErrors: num(v, 'ignore_errors') === 1,
    force: num(v, 'force_delete') === 1,
    maxDelete,
    modifyWindow,
    sizeOnly: num(v, 'size_only') === 1,
    ignoreTimes: num(v, 'ignore_times') === 1,
    basisDirs: state.basisDirs,
    fuzzy,
    partial: keepPartial,
    partialDir: inplace ? undefined : partialDir,
    delayUpdates: num(v, 'delay_updates') === 1,
    inplace,
    append: appendMode,
    numericIds: num(v, 'numeric_ids') === 1,
    checksumChoice,
    checksumSeed: typeof v.checksum_seed === 'number' ? v.checksum_seed : undefined,
    compress,
    skipCompress: str(v, 'skip_compress'),
    verbose,
    itemize,
    outFormat: stdoutFormat,
    stats: num(v, 'do_stats') === 1,
    listOnly,
    recursive: num(v, 'recurse') > 0,
    dirs: xferDirs > 0 && !num(v, 'recurse'),
    relative: relative === 1,
    impliedDirs: impliedDirs === 1,
    pruneEmptyDirs: num(v, 'prune_empty_dirs') === 1,
    links: num(v, 'preserve_links') === 1,
    copyLinks: num(v, 'copy_links') === 1,
    copyUnsafeLinks: num(v, 'copy_unsafe_links') === 1,
    safeLinks: num(v, 'safe_symlinks') === 1,
    mungeLinks: num(v, 'munge_symlinks') === 1,
    copyDirlinks: num(v, 'copy_dirlinks') === 1,
    keepDirlinks: num(v, 'keep_dirlinks') === 1,
    hardLinks: num(v, 'preserve_hard_links'),
    perms: num(v, 'preserve_perms') === 1,
    executability: num(v, 'preserve_executability') === 1,
    times: num(v, 'preserve_mtimes') === 1,
    omitDirTimes: num(v, 'omit_dir_times') === 1,
    omitLinkTimes: num(v, 'omit_link_times') === 1,
    atimes: num(v, 'preserve_atimes'),
    openNoatime: num(v, 'open_noatime') === 1,
    crtimes: num(v, 'preserve_crtimes') === 1,
    owner: num(v, 'preserve_uid') === 1,
    group: num(v, 'preserve_gid') === 1,
    devices: preserveDevices,
    specials: num(v, 'preserve_specials') === 1,
    copyDevices: num(v, 'copy_devices') === 1,
    writeDevices,
    acls: num(v, 'preserve_acls') === 1,
    xattrs: num(v, 'preserve_xattrs'),
    superUser: num(v, 'am_root'),
    checksum: num(v, 'always_checksum') === 1,
    wholeFile,
    dryRun: num(v, 'dry_run') === 1 || num(v, 'write_batch') < 0,
    update: num(v, 'update_only') === 1,
    existing: num(v, 'ignore_non_existing') === 1,
    ignoreExisting: num(v, 'ignore_existing') === 1,
    removeSourceFiles: num(v, 'remove_source_files'),
    oneFileSystem: num(v, 'one_file_system'),
    sparse: num(v, 'sparse_files') === 1,
    preallocate: num(v, 'preallocate_files') === 1,
    cvsExclude: num(v, 'cvs_exclude') === 1,
    backup: num(v, 'make_backups') === 1 || backupDir !== undefined,
    backupDir,
    suffix,
    tempDir: str(v, 'tmpdir'),
    chmod: state.chmod,
    usermap: str(v, 'usermap'),
    groupmap: str(v, 'groupmap'),
    iconv: str(v, 'iconv_opt'),
    filesFrom,
    from0: num(v, 'eol_nulls') === 1,
    bwlimit: typeof v.bwlimit === 'number' && v.bwlimit > 0 ? v.bwlimit : undefined,
    blockSize: typeof v.block_size === 'number' ? v.block_size : undefined,
    timeout,
    maxSize: str(v, 'max_size_arg'),
    minSize: str(v, 'min_size_arg'),
    maxAlloc: str(v, 'max_alloc_arg'),
    mkpath: num(v, 'mkpath_dest_arg') === 1,
    trustSender: num(v, 'trust_sender') === 1,
    fsync: num(v, 'do_fsync') === 1,
    filterOptions: state.filterOptions,
    filterShorthand: num(v, 'F_option_cnt'),
    info: state.info,
    debug: state.debug,
    paths: state.paths,
    given: state.given,
  };
}

/** Whether rsync's chmod parser takes a --chmod value: clauses `[DF][ugoa]*[-+=][rwxXst]*|[ugo]` or octal. */
// rsync/chmod.c: parse_chmod (its state machine, for validity only)
function validChmod(text: string): boolean {
  type Phase = 'who' | 'perms' | 'octal';
  let phase: Phase = 'who';
  let op = false;
  let where = 0;
  let what = 0;
  let topoct = 0;
  let copy = false;
  let dirsOnly = false;
  let filesOnly = false;
  let i = 0;
  for (;;) {
    if (i === text.length || text[i] === ',') {
      if (!op) return false;
      if (i === text.length) return true;
      i++;
      phase = 'who';
      op = copy = dirsOnly = filesOnly = false;
      where = what = topoct = 0;
    }
    const c = text[i] ?? '';
    if (phase === 'who') {
      if (c === 'D') {
        if (filesOnly) return false;
        dirsOnly = true;
      } else if (c === 'F') {
        if (dirsOnly) return false;
        filesOnly = true;
      } else if ('ugoa'.includes(c) && c !== '') where = 1;
      else if ('+-='.includes(c) && c !== '') {
        op = true;
        phase = 'perms';
      } else if (/^[0-7]$/.test(c) && !where) {
        op = true;
        phase = 'octal';
        where = 1;
        what = Number(c);
      } else return false;
    } else if (phase === 'perms') {
      if ('rwxXst'.includes(c) && c !== '') {
        if (copy) return false;
        if (c === 's' || c === 't') topoct = 1;
        else what = 1;
      } else if ('ugo'.includes(c) && c !== '') {
        if (what || topoct || copy) return false;
        copy = true;
      } else return false;
    } else {
      if (!/^[0-7]$/.test(c)) return false;
      what = what * 8 + Number(c);
      if (what > 0o7777) return false;
    }
    i++;
  }
}

/**
 * rsync's clean_fname of a --partial-dir (doubled slashes, `.` components and a trailing slash
 * out, `dir/..` collapsed), with '' and '.' meaning none.
 */
// rsync/util1.c: clean_fname (CFN_COLLAPSE_DOT_DOT_DIRS), as options.c applies it to partial_dir
export function cleanPartialDir(dir: string): string | undefined {
  const absolute = dir.startsWith('/');
  const kept: string[] = [];
  for (const part of dir.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && kept.length && kept[kept.length - 1] !== '..') kept.pop();
    else if (part !== '..' || !absolute) kept.push(part);
  }
  const cleaned = (absolute ? '/' : '') + kept.join('/');
  return cleaned === '' || cleaned === '.' ? undefined : cleaned;
}

// ---------------------------------------------------------------------------------------------
// refuse options

/** rsync's wildmatch over an option name: `*`, `?`, `[...]` (with `!`/`^`), `\` escapes; whole name. */
// rsync/lib/wildmatch.c: wildmatch (the subset option names can meet: no '/')
function wildmatch(pattern: string, text: string): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '\\' && i + 1 < pattern.length) re += escapeRe(pattern[++i]!);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      const negate = body[0] === '!' || body[0] === '^';
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, (m) => `\\${m}`)}]`;
      i = end;
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`, 's').test(text);
}
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** rsync's "does this row only store a constant" (refuse_const_assign): the constant, or undefined. */
function constAssign(o: OptionRow): number | undefined {
  if (!o.dest) return undefined;
  if (o.kind === 'val') return o.value;
  if (o.kind === 'none' && !o.act) return 1;
  return undefined;
}

/** Two rows that name the same capability: an exact refuse rule refuses both. */
// rsync/options.c: same_refuse_action
function sameRefuseAction(a: OptionRow, b: OptionRow): boolean {
  const av = constAssign(a);
  const bv = constAssign(b);
  if (av !== undefined && bv !== undefined) return a.dest === b.dest && av === bv;
  if (a.kind !== b.kind || (a.value ?? a.act) !== (b.value ?? b.act)) return false;
  return a.dest ? a.dest === b.dest : !b.dest && (a.value ?? a.act) !== undefined;
}

/** Rows a daemon only refuses by exact name (a wildcard never reaches them). */
function exactOnly(o: OptionRow): boolean {
  return (
    ['e', '0', 's', 'n'].includes(o.short ?? '') ||
    ['iconv', 'no-iconv', 'checksum-seed', 'copy-devices', 'write-devices', 'log-format', 'sender', 'server'].includes(o.long ?? '')
  );
}

/**
 * The option names (rsync's long names; the letter for D, F and P) a module's `refuse options`
 * refuses, with rsyncd's own refusals: --copy-devices and --write-devices unless `!`-accepted,
 * --log-file*, --insecure-links, --iconv (no `charset` module parameter: we have none) and
 * --crtimes (not on Linux). Words are split on spaces as rsync does.
 */
// rsync/options.c: set_refuse_options, parse_one_refuse_match
export function refusedOptions(refuse: readonly string[]): Set<string> {
  const marks = new Map<OptionRow, { refused: boolean; wild: boolean }>(OPTIONS.map((o) => [o, { refused: false, wild: !exactOnly(o) }]));
  const match = (negated: boolean, ref: string) => {
    let isWild = /[*?[]/.test(ref);
    if (ref === 'a' || ref === 'archive') {
      ref = '[ardlptgoD]';
      isWild = true;
    }
    let matched: OptionRow | undefined;
    for (const o of OPTIONS) {
      if ((o.long && wildmatch(ref, o.long)) || (o.short && wildmatch(ref, o.short))) {
        const mark = marks.get(o)!;
        if (mark.wild || !isWild) mark.refused = !negated;
        if (!isWild) {
          matched = o;
          break;
        }
      }
    }
    if (matched) {
      for (const o of OPTIONS) if (o !== matched && sameRefuseAction(o, matched)) marks.get(o)!.refused = !negated;
    }
  };
  match(false, 'copy-devices');
  match(false, 'write-devices');
  for (const word of refuse.flatMap((w) => w.split(' ')).filter(Boolean)) {
    const negated = word.startsWith('!') && word.length > 1;
    match(negated, negated ? word.slice(1) : word);
  }
  match(false, 'iconv');
  match(false, 'log-file*');
  match(false, 'insecure-links');
  match(false, 'crtimes');
  return new Set(OPTIONS.filter((o) => marks.get(o)!.refused).map(nameOf));
}

export interface Refusal {
  /** The refused option's long name (its letter for D, F, P), as rsync names it in the message. */
  option: string;
  /** rsyncd's text: "The server is configured to refuse --NAME", with " (-X)" for an option with a letter. */
  message: string;
  /** The MSG_ERROR line rsyncd sends: `rsync: ${message}\n` (then it exits with code 4). */
  text: string;
}

/** What a refused option throws while parsing: rsyncd's refusal text, exit code 4. */
function refusalError(o: OptionRow): ServerArgsError {
  return new ServerArgsError(refusalOf(o).message, nameOf(o));
}

/** What popt ORs into a refused bit-set row's variable (rsync's OPT_REFUSED_BASE and up): neither 1 nor 2. */
const REFUSED_BITS = 0x2000;

const rowNamed = (name: string): OptionRow => BY_LONG.get(name) ?? BY_SHORT.get(name)!;
const refusedSet = (refuse: readonly string[] | ReadonlySet<string>): ReadonlySet<string> =>
  refuse instanceof Set ? (refuse as ReadonlySet<string>) : refusedOptions(refuse as readonly string[]);

/** The last refused row among r d l p t g o D, which -a then reports (rsync's refused_archive_part). */
function archivePartOf(refused: ReadonlySet<string>): OptionRow | undefined {
  let part: OptionRow | undefined;
  for (const o of OPTIONS) if (refused.has(nameOf(o)) && 'rdlptgoD'.includes(o.short ?? '-')) part = o;
  return part;
}

/** rsync's refusal text for one option row. */
// rsync/options.c: create_refuse_error (as a daemon)
function refusalOf(o: OptionRow): Refusal {
  const message = `The server is configured to refuse --${o.long ?? '(null)'}${o.short ? ` (-${o.short})` : ''}`;
  return { option: nameOf(o), message, text: optionErrorText(message) };
}

/**
 * Whether rsyncd with this module's `refuse options` would refuse what the client asked, and
 * its text: the first refused option in the order given, else the implied refusals in rsync's
 * order (-a through any of r d l p t g o D; compression through `z`; --append/--write-devices
 * through `inplace`; --inplace through `partial`; every deletion, --delete-missing-args and a
 * sender's --remove-source-files through `delete`; --delete picking its mode when one of
 * `delete-before`/`delete-during` is refused). `delete-missing-args` refused is silent in rsync
 * (it drops the option; see refusedOptions), so it gives no refusal here either.
 */
// rsync/options.c: parse_arguments (the refused-option checks), set_refuse_options
export function refusal(refuse: readonly string[] | ReadonlySet<string>, args: ServerArgs): Refusal | undefined {
  const refused = refusedSet(refuse);
  const row = rowNamed;
  const isRefused = (name: string) => refused.has(name);
  const archivePart = archivePartOf(refused);

  for (const name of args.given) {
    const o = row(name);
    // A refused bit-set row (--delete-missing-args, --ignore-missing-args) is silently dropped by popt.
    if (isRefused(name) && o.kind !== 'bitset') return refusalOf(o);
    if (name === 'archive' && archivePart) return refusalOf(archivePart);
    if (name === 'P' && (isRefused('partial') || isRefused('progress'))) return refusalOf(row(isRefused('partial') ? 'partial' : 'progress'));
  }
  if (args.compress && isRefused('compress')) return refusalOf(row('compress'));
  if (isRefused('no-iconv') && args.iconv === undefined) return refusalOf(row('no-iconv'));
  const explicitWhen = args.given.some((n) => ['delete-before', 'delete-during', 'delete-delay', 'delete-after', 'del'].includes(n));
  if (args.deleteMode !== undefined && !explicitWhen && isRefused('delete-before') && isRefused('delete-during')) {
    return refusalOf(row('delete-before'));
  }
  const missingArgs = args.deleteMissingArgs && !isRefused('delete-missing-args');
  if (isRefused('delete') && (args.deleteMode !== undefined || missingArgs)) return refusalOf(row('delete'));
  if (args.removeSourceFiles && isRefused('delete') && args.sender) return refusalOf(row('delete'));
  if ((args.append || args.writeDevices) && isRefused('inplace')) return refusalOf(row('inplace'));
  if (args.inplace && isRefused('partial')) return refusalOf(row('partial'));
  if (!args.inplace && args.given.includes('partial-dir') && args.partialDir === undefined && isRefused('partial')) {
    return refusalOf(row('partial'));
  }
  return undefined;
}

/**
 * The delete mode rsyncd runs once `refuse options` has had its say: a bare --delete (or
 * --delete-excluded) runs during the walk when `delete-before` is refused, before it when
 * `delete-during` is, else as rsync chooses by protocol.
 */
// rsync/options.c: parse_arguments (choosing before/during); rsync/compat.c: setup_protocol
export function refusedDeleteMode(refuse: readonly string[] | ReadonlySet<string>, args: ServerArgs): DeleteWhen | undefined {
  const refused = refusedSet(refuse);
  const explicitWhen = args.given.some((n) => ['delete-before', 'delete-during', 'delete-delay', 'delete-after', 'del'].includes(n));
  if (args.deleteMode === undefined || explicitWhen) return args.deleteMode;
  if (refused.has('delete-before')) return 'during';
  if (refused.has('delete-during')) return 'before';
  return args.deleteMode;
}
