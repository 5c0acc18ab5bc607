#!/usr/bin/env node
// The command line: the only file that touches commander, argv, stdout/stderr and exit codes.
// It builds typed options and calls the library.
import { readFileSync, statSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { RsyncError, UsageError, DaemonRefusalError, RemoteError, EXIT } from '../../protocol/errors.js';
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from '../../protocol/daemon.js';
import { isDaemonAddress, parseDaemonAddress, DEFAULT_PORT } from '../transfer/target.js';
import { resolve } from 'node:path';
import { passwordSource } from '../transfer/password.js';
import { promptOnTerminal } from './prompt.js';
import { buildFilterList, pushFilter, type RuleSource } from '../transfer/filters.js';
import { itemizeString, itemNameBytes, outputSummary, charsetFromEnv, outputLine, sentItemLine, deletedLine, fileListText, closingLine } from '../transfer/output.js';
import { TransferProgress } from '../transfer/progress.js';
import { mapLsyncd2Options, asksForHelp } from './habits.js';
import { OnceInterruption, signalLine } from './interrupt.js';
import type { FileEntry } from '../../protocol/flist.js';
import type { ReceivedItem } from '../../protocol/receiver.js';
import type { ClientTransferLog } from '../transfer/transfer-log.js';
import { S_IFDIR, S_IFREG } from '../../protocol/modes.js';
import type { TransferOptions } from '../../protocol/args.js';
import { ITEM_IS_NEW, ITEM_TRANSFER, SIGNIFICANT_ITEM_FLAGS } from '../../protocol/constants.js';
import { MAX_BASIS_DIRS } from '../../protocol/basis.js';
import { cleanPartialDir, parseSizeArg } from '../../protocol/server-args.js';
import type { ConfigSync, LoadedConfig } from './live.js';
import type { DeletePhase } from '../live/mirror.js';
// The config model only: the YAML parser and the Lua interpreter are loaded when a file is read.
import { looksLikeConfig, syncIdentity, ConfigError, type SyncConfig } from '../config/model.js';
import { parseBwlimit } from '../transfer/bwlimit.js';
import { compileChmodOptions } from '../transfer/list-chmod.js';
import { ownerMaps } from '../transfer/idmap.js';
import { versionLine } from './version.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export interface CliOptions {
  port?: number;
  motd: boolean;
  passwordFile?: string;
  protocol?: number;
  contimeout?: number;
  timeout?: number;
  once?: boolean;
  archive?: boolean;
  recursive?: boolean;
  links?: boolean;
  perms: boolean;
  times: boolean;
  delete?: boolean;
  /** --delete-only startup|running (live mode). */
  deleteOnly?: DeletePhase;
  ignoreTimes?: boolean;
  owner?: boolean;
  group?: boolean;
  devices?: boolean;
  hardLinks?: boolean;
  /** -A */
  acls?: boolean;
  /** -X count (-XX: 2). */
  xattrs: number;
  numericIds?: boolean;
  /** --fake-super (a pull): owners, modes and devices stored in user.rsync.%stat. */
  fakeSuper?: boolean;
  /** --trust-sender (a pull): take names the daemon lists that the source or --files-from did not ask for. */
  trustSender?: boolean;
  deleteExcluded?: boolean;
  // The receiving side's options (a pull): rsync's spellings.
  del?: boolean;
  deleteBefore?: boolean;
  deleteDuring?: boolean;
  deleteDelay?: boolean;
  deleteAfter?: boolean;
  maxDelete?: number;
  force?: boolean;
  ignoreErrors?: boolean;
  deleteMissingArgs?: boolean;
  ignoreMissingArgs?: boolean;
  sizeOnly?: boolean;
  maxSize?: string;
  minSize?: string;
  partial?: boolean;
  partialDir?: string;
  /** -P: --partial --progress. */
  P?: boolean;
  sparse?: boolean;
  bwlimit?: string;
  chmod?: string[];
  chown?: string;
  usermap?: string[];
  groupmap?: string[];
  // What a pull asks of the daemon's sender (our push's walk does not do them yet).
  copyLinks?: boolean;
  copyUnsafeLinks?: boolean;
  copyDirlinks?: boolean;
  safeLinks?: boolean;
  relative?: boolean;
  impliedDirs: boolean;
  oneFileSystem?: number;
  filesFrom?: string;
  from0?: boolean;
  pruneEmptyDirs?: boolean;
  // The receiving side's options a push forwards to the daemon and a pull does (the live mirror refuses them).
  keepDirlinks?: boolean;
  omitDirTimes?: boolean;
  omitLinkTimes?: boolean;
  executability?: boolean;
  delayUpdates?: boolean;
  tempDir?: string;
  // The connection and the output.
  ipv4?: boolean;
  ipv6?: boolean;
  address?: string;
  '8BitOutput'?: boolean;
  // Options that cannot apply to a daemon transfer (refused by name).
  rsh?: string;
  rsyncPath?: string;
  server?: boolean;
  sender?: boolean;
  inplace?: boolean;
  append?: boolean;
  appendVerify?: boolean;
  backup?: boolean;
  backupDir?: string;
  suffix?: string;
  ignoreExisting?: boolean;
  existing?: boolean;
  ignoreNonExisting?: boolean;
  update?: boolean;
  compareDest?: string[];
  copyDest?: string[];
  linkDest?: string[];
  fuzzy?: number;
  checksum?: boolean;
  wholeFile?: boolean;
  checksumChoice?: string;
  compress: number;
  compressChoice?: string;
  zc?: string;
  compressLevel?: number;
  skipCompress?: string;
  dryRun?: boolean;
  verbose: number;
  itemizeChanges?: boolean;
  stats?: boolean;
  progress?: boolean;
  /** --info=progress2 etc.: the progress level asked for (0, 1 or 2). */
  info?: number;
  quiet?: boolean;
  humanReadable: number;
  daemon: boolean;
  nodaemon?: boolean;
  delay?: number;
  dryrun?: boolean;
  logfile?: string;
  /** --log-file / --log-file-format: a --once run's rsync-style log (src/transfer/transfer-log.ts). */
  logFile?: string;
  logFileFormat?: string;
  syslog?: boolean;
  logIdent: string;
  logFacility: string;
  pidfile?: string;
  /** --startup MODE, or false for --no-startup (undefined: full). */
  startup?: 'full' | 'changed' | false;
  stateFile?: string;
  debug?: boolean;
  scarce?: boolean;
  insist?: boolean;
  statusFile?: string;
  home: string;
  config?: string;
}

function decimal(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || n > 86400) throw new InvalidArgumentError('expected seconds, e.g. 0.5');
  return n;
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

/** --max-delete: any integer (rsync treats a negative one as 0). */
function signedInteger(value: string): number {
  if (!/^-?\d+$/.test(value) || Math.abs(Number(value)) > 2 ** 31 - 1) throw new InvalidArgumentError('expected an integer');
  return Number(value);
}

/**
 * --info=FLAGS: the progress levels rsync's --info takes (`progress`, `progress0`..`progress2`,
 * comma-separated; the last wins). rsync's other --info words are not offered yet.
 */
// rsync/options.c: parse_output_words (the PROGRESS word)
function infoFlags(value: string, previous: number | undefined): number {
  let level = previous ?? 0;
  for (const word of value.split(',').filter(Boolean)) {
    const m = /^progress([0-2])?$/i.exec(word);
    if (!m) throw new InvalidArgumentError(`${word}: only progress, progress0, progress1 and progress2 are supported`);
    level = m[1] === undefined ? 1 : Number(m[1]);
  }
  return level;
}

/** The progress level of a transfer: --progress is 1 unless --info says otherwise; -q shows none. */
function progressLevel(o: CliOptions): 0 | 1 | 2 {
  if (o.quiet) return 0;
  return (o.info ?? (o.progress ? 1 : 0)) as 0 | 1 | 2;
}

/** A repeatable option's values, in order. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * The receiving side's options of a pull, checked as rsync's parse_arguments checks them: one
 * --delete-WHEN at most, one kind of basis dir, at most MAX_BASIS_DIRS of them.
 */
// rsync/options.c: parse_arguments (the --delete-WHEN, --*-dest and --fuzzy checks)
function receivingOptions(o: CliOptions): Partial<TransferOptions> {
  const whens = (
    [
      ['before', o.deleteBefore],
      ['during', o.deleteDuring || o.del],
      ['delay', o.deleteDelay],
      ['after', o.deleteAfter],
    ] as const
  ).filter(([, on]) => on);
  if (whens.length > 1) throw new UsageError('You may not combine multiple --delete-WHEN options.');
  const kinds = (
    [
      ['compare', o.compareDest],
      ['copy', o.copyDest],
      ['link', o.linkDest],
    ] as const
  ).filter(([, dirs]) => dirs?.length);
  if (kinds.length > 1) throw new UsageError(`the --${kinds[1]![0]}-dest option conflicts with the --${kinds[0]![0]}-dest option`);
  const alt = kinds[0];
  if (alt && alt[1]!.length > MAX_BASIS_DIRS) throw new UsageError(`You may not use more than ${MAX_BASIS_DIRS} --${alt[0]}-dest options.`);
  if ((o.fuzzy ?? 0) > 2) throw new UsageError('--fuzzy (-y) is given once or twice');
  const partialDir = partialDirOf(o);
  return {
    ...(whens[0] && { deleteWhen: whens[0][0] }),
    ...(o.maxDelete !== undefined && { maxDelete: o.maxDelete }),
    ...(o.force && { force: true }),
    ...(o.ignoreErrors && { ignoreErrors: true }),
    ...(o.deleteMissingArgs && { deleteMissingArgs: true }),
    ...(o.ignoreMissingArgs && { ignoreMissingArgs: true }),
    ...(o.sizeOnly && { sizeOnly: true }),
    ...(o.ignoreExisting && { ignoreExisting: true }),
    ...((o.existing || o.ignoreNonExisting) && { existing: true }),
    ...(o.update && { update: true }),
    ...(alt && { altDest: { kind: alt[0], dirs: alt[1]! } }),
    ...(o.fuzzy && { fuzzy: o.fuzzy }),
    ...(o.maxSize !== undefined && { maxSize: sizeOption(o.maxSize, 'max-size') }),
    ...(o.minSize !== undefined && { minSize: sizeOption(o.minSize, 'min-size') }),
    ...(o.partial && { partial: true }),
    ...(partialDir !== undefined && { partialDir }),
    ...(o.inplace && { inplace: true }),
    ...((o.append || o.appendVerify) && { append: o.appendVerify ? 2 : 1 }),
    ...((o.backup || o.backupDir !== undefined) && { backup: true }),
    ...(o.backupDir !== undefined && { backupDir: o.backupDir }),
    ...(o.suffix !== undefined && { suffix: o.suffix }),
  };
}

/**
 * --partial-dir, or $RSYNC_PARTIAL_DIR with --partial, cleaned as rsync cleans it ('' and '.'
 * mean none); --inplace and --append cannot go with it.
 */
// rsync/options.c: parse_arguments (the partial_dir checks)
function partialDirOf(o: CliOptions): string | undefined {
  const append = o.append || o.appendVerify;
  if (o.inplace || append) {
    if (o.partialDir !== undefined || o.delayUpdates) {
      throw new UsageError(`--${append ? 'append' : 'inplace'} cannot be used with --${o.delayUpdates ? 'delay-updates' : 'partial-dir'}`);
    }
    return undefined;
  }
  // --delay-updates takes rsync's default partial dir before $RSYNC_PARTIAL_DIR is looked at.
  const dir = o.partialDir ?? (o.partial && !o.delayUpdates && process.env.RSYNC_PARTIAL_DIR ? process.env.RSYNC_PARTIAL_DIR : undefined);
  return dir === undefined ? undefined : cleanPartialDir(dir);
}

/**
 * The receiving options a push hands to the daemon: those its generator and receiver act on
 * (-b, --backup-dir, --suffix, --partial, --max-size, --min-size, --inplace, --append, and
 * forwardedOnlyOptions); for --inplace and --append our sender does its part too (no match behind
 * the write offset; the tail only).
 */
// rsync/options.c: server_options (what a sending client passes on)
function pushedReceivingOptions(o: CliOptions): Partial<TransferOptions> {
  const walk = walkingOptions(o, 'push');
  const all = receivingOptions(o);
  return {
    ...walk,
    ...forwardedOnlyOptions(o, all),
    ...(all.partialDir !== undefined && { partialDir: all.partialDir }),
    ...(o.sparse && { sparse: true }),
    ...(o.pruneEmptyDirs && { pruneEmptyDirs: true }),
    ...(all.backup && { backup: true }),
    ...(all.backupDir !== undefined && { backupDir: all.backupDir }),
    ...(all.suffix !== undefined && { suffix: all.suffix }),
    ...(all.partial && { partial: true }),
    ...(all.maxSize !== undefined && { maxSize: all.maxSize }),
    ...(all.minSize !== undefined && { minSize: all.minSize }),
    ...(all.inplace && { inplace: true }),
    ...(all.append && { append: all.append }),
  };
}

/** rsync's MAXPATHLEN, less the room its receiver keeps for a temp name's tail. */
const MAX_TEMP_DIR_BYTES = 4096 - 10;

/**
 * The receiving side's options a push forwards to the daemon and our pull's receiver does itself
 * (the live mirror refuses them): -K, -O, -J, -E (its letter only without -p), --delay-updates (in
 * the partial dir: --partial-dir's, else rsync's .~tmp~) and -T DIR. A --partial-dir that cleans to
 * none leaves --partial alone, as in rsync.
 */
// rsync/options.c: parse_arguments (the tmpdir length and delay_updates partial_dir lines)
function forwardedOnlyOptions(o: CliOptions, receiving: Partial<TransferOptions>): Partial<TransferOptions> {
  if (o.tempDir !== undefined && Buffer.byteLength(o.tempDir) >= MAX_TEMP_DIR_BYTES) throw new UsageError('the --temp-dir path is WAY too long.');
  const noPartialDir = o.partialDir !== undefined && receiving.partialDir === undefined;
  return {
    ...(o.keepDirlinks && { keepDirlinks: true }),
    ...(o.omitDirTimes && { omitDirTimes: true }),
    ...(o.omitLinkTimes && { omitLinkTimes: true }),
    ...(o.executability && { executability: true }),
    ...(o.delayUpdates && !noPartialDir && { delayUpdates: true }),
    ...(noPartialDir && { partial: true }),
    ...(o.tempDir !== undefined && { tempDir: o.tempDir }),
  };
}

/** The options forwardedOnlyOptions takes, by the name rsync gives them (our pull does them too). */
const FORWARDED_ONLY: ReadonlyArray<{ name: string; key: keyof CliOptions }> = [
  { name: '-K/--keep-dirlinks', key: 'keepDirlinks' },
  { name: '-O/--omit-dir-times', key: 'omitDirTimes' },
  { name: '-J/--omit-link-times', key: 'omitLinkTimes' },
  { name: '-E/--executability', key: 'executability' },
  { name: '--delay-updates', key: 'delayUpdates' },
  { name: '-T/--temp-dir', key: 'tempDir' },
];

/** The live mirror does not take forwardedOnlyOptions: refused by name. */
function refuseForwardedOnlyLive(o: CliOptions): void {
  const given = FORWARDED_ONLY.find(({ key }) => o[key] !== undefined);
  if (!given) return;
  throw new UsageError(`${given.name} is not supported by the live mirror; a --once push takes it`);
}

/** --bwlimit: rsync's rate argument (K by default) in whole KiB/s (0: none); rsync's error text as a usage error. */
// rsync/options.c: parse_arguments (OPT_BWLIMIT)
function bwlimitOf(o: CliOptions): number {
  return o.bwlimit === undefined ? 0 : parseBwlimit(o.bwlimit);
}

/**
 * rsync options our client does not do: declared (hidden) so that each is refused by name with
 * what is missing, rather than as an unknown option or, worse, ignored. docs/options.md.
 */
const NOT_DONE: ReadonlyArray<{ flags: string; key: string; why: string }> = [
  { flags: '-U, --atimes', key: 'atimes', why: 'not supported' },
  { flags: '-N, --crtimes', key: 'crtimes', why: 'not supported' },
  { flags: '--remove-source-files', key: 'removeSourceFiles', why: 'not supported (lsyncd mirrors; it never removes the source)' },
  { flags: '--iconv <CONVERT_SPEC>', key: 'iconv', why: 'not supported (names travel as bytes)' },
  { flags: '--copy-devices', key: 'copyDevices', why: 'not supported' },
  { flags: '--write-devices', key: 'writeDevices', why: 'not supported' },
];

/**
 * Options rsync has that cannot apply to a daemon transfer: refused by name rather than ignored
 * (commander refuses the ones we do not list at all as unknown).
 */
function refuseInapplicable(o: CliOptions): void {
  const notDone = NOT_DONE.find(({ key }) => (o as unknown as Record<string, unknown>)[key] !== undefined);
  if (notDone) throw new UsageError(`${notDone.flags.replace(/ <.*/, '').replace(', ', '/')}: ${notDone.why}`);
  if (o.rsh !== undefined) throw new UsageError('-e/--rsh: lsyncd talks to rsync daemons over TCP only (HOST::MODULE or rsync://HOST/MODULE), never through a remote shell');
  if (o.rsyncPath !== undefined) throw new UsageError('--rsync-path: there is no remote rsync program to run in a daemon transfer (the daemon is already running)');
  if (o.server || o.sender) throw new UsageError(`--${o.server ? 'server' : 'sender'} is rsync's internal option for the remote side; lsyncd serve is the daemon`);
}

/**
 * The sender's walk options: a push walks with them (src/transfer/walk-options.ts), a pull asks
 * the daemon's sender; the live mirror (its own selective walk) refuses them by name.
 */
function walkingOptions(o: CliOptions, direction: 'push' | 'pull' | 'live'): Partial<TransferOptions> {
  const given = (
    [
      ['-L/--copy-links', o.copyLinks],
      ['--copy-unsafe-links', o.copyUnsafeLinks],
      ['-k/--copy-dirlinks', o.copyDirlinks],
      ['-R/--relative', o.relative],
      ['-x/--one-file-system', o.oneFileSystem],
      ['--files-from', o.filesFrom !== undefined],
    ] as const
  ).filter(([, on]) => on);
  if (direction === 'live') {
    if (given.length) throw new UsageError(`${given[0]![0]} is not supported by the live mirror (a one-shot push or pull takes it)`);
    if (o.impliedDirs === false) throw new UsageError('--no-implied-dirs is not supported by the live mirror');
    if (o.from0) throw new UsageError('-0/--from0 goes with --files-from, which the live mirror does not take');
    return {};
  }
  const walk: Partial<TransferOptions> = {
    ...(o.copyLinks && { copyLinks: true }),
    ...(o.copyUnsafeLinks && { copyUnsafeLinks: true }),
    ...(o.copyDirlinks && { copyDirlinks: true }),
    ...(o.relative !== undefined && { relative: o.relative }),
    ...(o.oneFileSystem && { oneFileSystem: o.oneFileSystem }),
  };
  if (direction === 'push') {
    // rsync: a list on the daemon (:FILE, HOST:FILE) is read by the daemon and forwarded to our
    // sender (src/transfer/push.ts); a local one (or -) is read here.
    const remote = o.filesFrom !== undefined ? /^(?:[^/:]*):(.*)$/s.exec(o.filesFrom) : null;
    if (remote && remote[1] === '-') throw new UsageError('Invalid --files-from remote filename');
    if (o.filesFrom === undefined && o.from0) throw new UsageError('-0/--from0 goes with --files-from');
    // --files-from implies -R unless --no-relative (then each name is listed under its last
    // component, from its own directory). The daemon's receiver makes the path's directories bare
    // with --no-implied-dirs (protocol 30+; below, we leave them out).
    return {
      ...walk,
      ...(o.filesFrom !== undefined && { relative: o.relative !== false }),
      ...(remote && { filesFrom: remote[1]!, ...(o.from0 && { from0: true }) }),
      ...(o.impliedDirs === false && { impliedDirs: false }),
    };
  }
  let filesFrom: string | undefined;
  let forwarded = false;
  if (o.filesFrom !== undefined) {
    // rsync: --files-from=:FILE (or HOST:FILE) names a file on the daemon; a local list (or -,
    // stdin) is forwarded to the daemon's sender through the connection (src/transfer/files-from.ts).
    const remote = /^(?:[^/:]*):(.*)$/s.exec(o.filesFrom);
    if (remote && remote[1] === '-') throw new UsageError('Invalid --files-from remote filename');
    filesFrom = remote ? remote[1]! : o.filesFrom;
    forwarded = !remote;
  }
  return {
    ...walk,
    ...(filesFrom !== undefined && { filesFrom }),
    ...(forwarded && { filesFromForwarded: true }),
    ...(o.from0 && { from0: true }),
    // The receiving options our generator and receiver take on a pull (src/transfer/receive.ts).
    ...(o.sparse && { sparse: true }),
    ...(o.pruneEmptyDirs && { pruneEmptyDirs: true }),
    // Forwarded with -R; our generator leaves the implied dirs to the receiver's making.
    ...(o.impliedDirs === false && { impliedDirs: false }),
  };
}

/**
 * Options both directions take: --bwlimit, --chmod (checked here, applied to our own list),
 * --chown/--usermap/--groupmap (they imply -o/-g, as in rsync), --safe-links.
 */
function everyDirectionOptions(o: CliOptions): Partial<TransferOptions> {
  if (o.chmod?.length) compileChmodOptions(o.chmod, process.umask());
  const maps = ownerMaps({ ...(o.chown !== undefined && { chown: o.chown }), ...(o.usermap && { usermap: o.usermap }), ...(o.groupmap && { groupmap: o.groupmap }) });
  return {
    ...(bwlimitOf(o) && { bwlimit: bwlimitOf(o) }),
    ...(o.chmod?.length && { chmod: o.chmod }),
    ...(maps.usermap !== undefined && { usermap: maps.usermap, owner: true }),
    ...(maps.groupmap !== undefined && { groupmap: maps.groupmap, group: true }),
    ...(o.safeLinks && { safeLinks: true }),
    ...(o.xattrs && { xattrs: o.xattrs }),
    // -A implies -p (rsync's options.c).
    ...(o.acls && { acls: true, perms: true }),
  };
}

/** --max-size/--min-size: rsync's size argument (10k, 1.5M, 100) in bytes, or its error as a usage error. */
// rsync/options.c: parse_arguments (OPT_MAX_SIZE / OPT_MIN_SIZE)
function sizeOption(text: string, name: string): number {
  try {
    return parseSizeArg(text, 'b', name, 0, -1);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function buildProgram(rules: RuleSource[]): Command {
  const rule = (kind: RuleSource['kind']) => (value: string) => {
    rules.push({ kind, value } as RuleSource);
    return value;
  };
  const program = new Command('lsyncd');
  for (const { flags } of NOT_DONE) program.addOption(new Option(flags).hideHelp());
  return program
    .description(
      // Each line fits 80 columns: commander wraps the description at the terminal's width.
      [
        "Keep rsync daemon modules a live mirror of a local tree (no rsync needed).",
        "  lsyncd SOURCE TARGET...            live mirror: sync, then push each change",
        "  lsyncd %userwww TARGET             each /home/USER/www (--home) to TARGET/USER",
        "  lsyncd [--config] FILE             the syncs of a config file (.yaml, or",
        "                                     lsyncd 2's .lua); SIGHUP reloads it",
        "  lsyncd --once SOURCE[/] TARGET...  push once, as rsync -rlpt --delete would",
        "  lsyncd --once ADDRESS/PATH DEST    pull once, as rsync -rlpt would",
        "  lsyncd rsync://HOST[:PORT]/        list the daemon's modules (or HOST::)",
        "  lsyncd [-r] rsync://HOST/MODULE/P  list files as rsync does",
        "  lsyncd serve | lsyncd demo         an rsync daemon | a demo (serve --help)",
        "TARGET: [USER@]HOST::MODULE[/PATH/] or rsync://[USER@]HOST[:PORT]/MODULE[/PATH/]",
        "A trailing slash on SOURCE means \"the contents of\", as in rsync. lsyncd 2's",
        "-nodaemon, -delay N, -log all|scarce, -logfile F, -pidfile F, -insist, -onepass",
        "and -rsync SOURCE TARGET work as before.",
      ].join('\n'),
    )
    .usage('[options] SOURCE TARGET... | ADDRESS | CONFIG')
    .argument('[args...]', 'SOURCE TARGET, a daemon ADDRESS to list, or a config FILE')
    .version(versionLine(), '-V, --version')
    .option('--config <FILE>', 'live mode: run the syncs of FILE (YAML, or lsyncd 2 Lua by its .lua suffix; docs/config.md)')
    .option('--once', 'transfer once and exit: push SOURCE to each TARGET, or pull ADDRESS/PATH into DEST (rsync\'s exit codes)')
    .option('--nodaemon', 'live mode: stay in the foreground and log to stderr (also --no-daemon)')
    .option('--no-daemon', 'the same as --nodaemon')
    .addOption(new Option('--delay <SECONDS>', 'live mode: wait this long for more changes before a push').argParser(decimal))
    .option('--dryrun', 'the same as --dry-run')
    .option('--logfile <FILE>', 'live mode: log to FILE (reopened on SIGHUP)')
    .option('--log-file <FILE>', '--once: log what is done to FILE, as rsync does')
    .option('--log-file-format <FMT>', "--once: the per-file log format (default '%i %n%L')")
    .option('--syslog', 'live mode: log to syslog (the default when detached without --logfile)')
    .option('--log-ident <NAME>', 'live mode: the syslog ident', 'lsyncd')
    .option('--log-facility <NAME>', 'live mode: the syslog facility (user, daemon, local0..local7, ...)', 'user')
    .option('--pidfile <FILE>', 'live mode: write the pid to FILE (refused if it names a running process)')
    .addOption(new Option('--startup <MODE>', 'live mode: the startup sync: full (compare everything) or changed (only what differs from the state file)').choices(['full', 'changed']))
    .option('--no-startup', 'live mode: skip the initial sync (lsyncd 2\'s init = false)')
    .option('--state-file <FILE>', 'live mode: keep what each target was brought to in FILE, for --startup changed (default with it: under $XDG_STATE_HOME/lsyncd or /var/lib/lsyncd)')
    .option('--debug', 'live mode: log more')
    .option('--scarce', 'live mode: log errors only')
    .option('--insist', 'live mode: keep retrying a target unreachable at start instead of exiting')
    .option('--status-file <FILE>', 'live mode: rewrite FILE every few seconds with each target\'s state')
    .option('--home <DIR>', 'where %userwww looks for USER/www', '/home')
    .option('-a, --archive', 'archive mode: adds -o -g -D to the default -rlpt')
    .option('-r, --recursive', 'listing a module: recurse into directories (a push always does)')
    .option('-l, --links', 'listing a module: show symlink targets (a push always keeps symlinks)')
    // rsync's letters, so its habits (-rlptgoD, -avz) read as in rsync: on by default here.
    .option('-p, --perms', 'preserve permissions (the default)', true)
    .option('--no-perms', "don't preserve permissions")
    .option('-t, --times', 'preserve modification times (the default)', true)
    .option('--no-times', "don't preserve modification times")
    .option('--delete', 'pull: delete local files the module does not have (a push deletes by default)')
    .option('--no-delete', "don't delete extraneous files on the mirror")
    .addOption(new Option('--delete-only <PHASE>', "live mode: delete on the mirror only in the startup sync, or only for changes while running (lsyncd 2's delete = 'startup' | 'running')").choices(['startup', 'running']))
    .option('-I, --ignore-times', "pull: don't skip files that match size and time")
    .option('-o, --owner', 'preserve owner (the daemon must run as root)')
    .option('-g, --group', 'preserve group')
    .option('-D', 'preserve devices and special files', false)
    .option('-H, --hard-links', 'preserve hard links')
    .option('-A, --acls', 'preserve ACLs (implies -p)')
    .option('-X, --xattrs', 'preserve extended attributes (-XX: rsync\'s own user.rsync.% names too)', (_v: string, previous: number) => previous + 1, 0)
    .option('--numeric-ids', "send numeric user and group ids, not names")
    .option('--fake-super', 'owners, set-id bits and devices kept in xattrs (user.rsync.%stat): a pull stores them, a push sends them')
    .addOption(new Option('--exclude <PATTERN>', 'exclude files matching PATTERN').argParser(rule('exclude')))
    .addOption(new Option('--include <PATTERN>', "don't exclude files matching PATTERN").argParser(rule('include')))
    .addOption(new Option('--exclude-from <FILE>', 'read exclude patterns from FILE').argParser(rule('exclude-from')))
    .addOption(new Option('--include-from <FILE>', 'read include patterns from FILE').argParser(rule('include-from')))
    .addOption(new Option('-f, --filter <RULE>', 'add a file-filtering RULE (rsync syntax)').argParser(rule('filter')))
    .option('--delete-excluded', 'also delete excluded files on the mirror')
    .option('--del', 'pull: an alias for --delete-during')
    .option('--delete-before', 'pull: delete extraneous local files before the transfer')
    .option('--delete-during', 'pull: delete extraneous local files during the transfer (what --delete does)')
    .option('--delete-delay', 'pull: find deletions during the transfer, delete after it')
    .option('--delete-after', 'pull: delete extraneous local files after the transfer')
    .addOption(new Option('--max-delete <NUM>', "pull: don't delete more than NUM files (exit 25 when more were due)").argParser(signedInteger))
    .option('--force', 'pull: force deletion of directories even if not empty')
    .option('--ignore-errors', 'pull: delete even if the daemon had I/O errors')
    .option('--delete-missing-args', 'pull: delete a missing source path locally')
    .option('--ignore-missing-args', 'pull: ignore a missing source path without error')
    .option('--size-only', 'pull: skip files that match in size')
    .option('--max-size <SIZE>', "don't transfer any file larger than SIZE (10k, 1.5M: rsync's units)")
    .option('--min-size <SIZE>', "don't transfer any file smaller than SIZE")
    .option('--partial', 'keep partially transferred files (the next run resumes from them)')
    .option('--partial-dir <DIR>', 'put a partially transferred file into DIR (and resume from it)')
    .option('-P', 'the same as --partial --progress')
    .option('-S, --sparse', 'turn sequences of nulls into sparse blocks (push: the daemon does)')
    .option('--bwlimit <RATE>', "limit socket I/O bandwidth (KiB/s; rsync's units: 1.5m, 500k; 0: none)")
    .addOption(new Option('--chmod <CHMOD>', 'affect file and/or directory permissions (rsync syntax: D755,F644; repeatable)').argParser(collect))
    .option('--chown <USER:GROUP>', 'the receiving side sets owner and group (as --usermap=*:USER --groupmap=*:GROUP)')
    .addOption(new Option('--usermap <STRING>', 'the receiving side maps owners: FROM:TO,... (names, ids, ranges, wildcards; implies -o)').argParser(collect))
    .addOption(new Option('--groupmap <STRING>', 'the same for groups (implies -g)').argParser(collect))
    .option('-L, --copy-links', 'transform symlinks into referent files/dirs')
    .option('--copy-unsafe-links', 'only "unsafe" symlinks are transformed')
    .option('-k, --copy-dirlinks', 'transform symlink to a dir into referent dir')
    .option('--safe-links', 'ignore symlinks that point outside the tree')
    .option('-R, --relative', 'use relative path names')
    .option('--no-relative', 'turn off -R (which --files-from implies)')
    .option('--no-implied-dirs', "don't send implied dirs with --relative (pull: don't make them from the list)")
    .option('-x, --one-file-system', "don't cross filesystem boundaries (-xx: not even for mount points)", (_v: string, previous: number) => previous + 1, 0)
    .option('--files-from <FILE>', 'read the list of source file names from FILE (a local file or -; pull: also :FILE on the daemon)')
    .option('-0, --from0', '--files-from lists are delimited by NULs')
    .option('--trust-sender', "pull: take file-list names the source or --files-from did not ask for (rsync 3.5's check off)")
    .option('-m, --prune-empty-dirs', 'prune empty directory chains from the file list (push: the daemon does)')
    .option('-K, --keep-dirlinks', 'treat a symlinked dir on the receiving side as a dir')
    .option('-O, --omit-dir-times', 'leave directory mtimes alone on the receiving side')
    .option('-J, --omit-link-times', 'leave symlink mtimes alone on the receiving side')
    .option('-E, --executability', 'without -p: follow the source\'s executability on the receiving side')
    .option('--delay-updates', 'put all updated files into place at the end of the transfer')
    .option('-T, --temp-dir <DIR>', 'create temporary files in directory DIR (on the receiving side)')
    .option('-4, --ipv4', 'prefer IPv4')
    .option('-6, --ipv6', 'prefer IPv6')
    .option('--address <ADDRESS>', 'bind address for the outgoing socket to the daemon')
    .option('-8, --8-bit-output', 'leave high-bit chars unescaped in output')
    .addOption(new Option('-e, --rsh <COMMAND>').hideHelp())
    .addOption(new Option('--rsync-path <PROGRAM>').hideHelp())
    .addOption(new Option('--server').hideHelp())
    .addOption(new Option('--sender').hideHelp())
    .option('--inplace', 'update destination files in place')
    .option('--append', 'append data onto shorter files')
    .option('--append-verify', '--append with the old data in the file checksum')
    .option('-b, --backup', 'keep replaced and deleted files (NAME~, or in --backup-dir)')
    .option('--backup-dir <DIR>', 'make backups into this directory (relative to the destination; implies -b)')
    .option('--suffix <SUFFIX>', 'backup suffix (default ~ without --backup-dir)')
    .option('--ignore-existing', 'pull: skip updating files that exist locally')
    .option('--existing', 'pull: skip creating new files locally')
    .option('--ignore-non-existing', 'the same as --existing')
    .option('-u, --update', 'pull: skip files that are newer locally')
    .addOption(new Option('--compare-dest <DIR>', 'pull: also compare local files with DIR (relative to DEST; repeatable)').argParser(collect))
    .addOption(new Option('--copy-dest <DIR>', 'pull: ... and include copies of unchanged files (repeatable)').argParser(collect))
    .addOption(new Option('--link-dest <DIR>', 'pull: hardlink to files in DIR when unchanged (repeatable)').argParser(collect))
    .option('-y, --fuzzy', 'pull: find similar file for basis if no dest file (-yy: also in the basis dirs)', (_v: string, previous: number) => previous + 1, 0)
    .option('-c, --checksum', 'skip based on checksum, not mod-time and size')
    .option('-W, --whole-file', 'copy files whole (no delta-transfer)')
    .option('--checksum-choice <NAME>', 'checksum: xxh128, xxh3, xxh64, md5 or md4')
    .option('-z, --compress', 'compress file data during the transfer (-zz: zlibx)', (_v: string, previous: number) => previous + 1, 0)
    .option('--compress-choice <NAME>', 'compression: zstd, lz4, zlibx, zlib or none (implies -z; default: negotiated)')
    .option('--zc <NAME>', 'the same as --compress-choice')
    .addOption(new Option('--compress-level <NUM>', 'compression level: zlib 1-9 (0: off), zstd -131072..22 (0: its default, 3), lz4 none (implies -z)').argParser(signedInteger))
    .option('--skip-compress <LIST>', "pull: the daemon's per-suffix compression skip list (/-separated), as rsync sends it")
    .option('-n, --dry-run', 'show what would be done, change nothing')
    .option('-v, --verbose', 'increase verbosity', (_v: string, previous: number) => previous + 1, 0)
    .option('-i, --itemize-changes', 'output a change summary for every update')
    .option('--stats', 'print transfer statistics')
    .option('--progress', 'show progress during the transfer (per file)')
    .addOption(new Option('--info <FLAGS>', 'progress2: one progress line for the whole transfer (progress0/progress1 too)').argParser(infoFlags))
    .option('-q, --quiet', 'suppress non-error messages')
    .option('-h, --human-readable', 'sizes in the summary as 1.23K, 4.56M (-hh: units of 1024); -h alone is the help', (_v: string, previous: number) => previous + 1, 1)
    .addOption(new Option('--port <PORT>', `daemon TCP port for HOST:: addresses (default ${DEFAULT_PORT})`).argParser(integer(1, 65535)))
    .option('--no-motd', "don't print the daemon's message of the day")
    .option('--password-file <FILE>', 'read the daemon password from FILE (first line; must not be readable by others)')
    .addOption(
      new Option('--protocol <N>', `speak protocol N (${MIN_PROTOCOL_VERSION}–${PROTOCOL_VERSION}) as an older rsync would`).argParser(
        integer(MIN_PROTOCOL_VERSION, PROTOCOL_VERSION),
      ),
    )
    .addOption(new Option('--contimeout <SECONDS>', 'give up connecting (and waiting for the greeting) after SECONDS').argParser(integer(0, 1e6)))
    .addOption(new Option('--timeout <SECONDS>', 'give up after SECONDS without I/O').argParser(integer(0, 1e6)))
    .helpOption('--help', 'show this help (so does -h alone)')
    .addHelpText(
      'after',
      '\nThe password comes from --password-file, else $RSYNC_PASSWORD, else a prompt on the terminal.\n' +
        'Exit codes are rsync\'s (5: daemon refused, 10: socket error, 20: interrupted,\n' +
        '23/24: partial/vanished, 30/35: timeouts).',
    )
    .showHelpAfterError(false)
    .on('option:delete-excluded', () => rules.push({ kind: 'delete-excluded' }))
    .exitOverride();
}

function transferOptions(o: CliOptions): TransferOptions {
  return {
    recursive: true,
    links: true,
    perms: o.perms,
    times: o.times,
    owner: Boolean(o.owner || o.archive),
    group: Boolean(o.group || o.archive),
    devices: Boolean((o as { D?: boolean }).D || o.archive),
    hardLinks: Boolean(o.hardLinks),
    checksum: Boolean(o.checksum),
    wholeFile: Boolean(o.wholeFile),
    dryRun: Boolean(o.dryRun || o.dryrun),
    delete: o.delete !== false,
    deleteExcluded: Boolean(o.deleteExcluded),
    numericIds: Boolean(o.numericIds),
    verbose: o.verbose,
    itemize: Boolean(o.itemizeChanges),
    stats: Boolean(o.stats),
    ...(o.progress && { progress: true }),
    ...(o.checksumChoice !== undefined && { checksumChoice: o.checksumChoice }),
    ...(o.timeout !== undefined && { timeout: o.timeout }),
    ...compressOptions(o),
    ...everyDirectionOptions(o),
  };
}

/** -z, -zz, --compress-choice/--zc, --compress-level (each implies compression, as in rsync), --skip-compress. */
function compressOptions(o: CliOptions): Pick<TransferOptions, 'compress' | 'skipCompress'> {
  const choice = o.compressChoice ?? o.zc ?? (o.compress > 1 ? 'zlibx' : undefined);
  if (!o.compress && choice === undefined && o.compressLevel === undefined) return {};
  return {
    compress: { ...(choice !== undefined && { choice }), ...(o.compressLevel !== undefined && { level: o.compressLevel }) },
    ...(o.skipCompress !== undefined && { skipCompress: o.skipCompress }),
  };
}

function sessionOptions(o: CliOptions, user: string | undefined) {
  return {
    ...(user !== undefined && { user }),
    ...(o.protocol !== undefined && { protocol: o.protocol }),
    ...(o.contimeout !== undefined && { contimeout: o.contimeout }),
    ...(o.timeout !== undefined && { timeout: o.timeout }),
    ...((o.ipv4 || o.ipv6) && { family: o.ipv6 ? (6 as const) : (4 as const) }),
    ...(o.address !== undefined && { localAddress: o.address }),
    ...(bwlimitOf(o) && { bwlimit: bwlimitOf(o) }),
    password: passwordSource(o.passwordFile, process.env, {
      prompt: promptOnTerminal,
      onMissing: () => {
        passwordWasMissing = true;
      },
    }),
  };
}

/** `lsyncd rsync://HOST/MODULE/PATH`: the files, listed as `rsync` lists them (-r to recurse). */
async function listContents(target: ReturnType<typeof parseDaemonAddress>, o: CliOptions, rules: RuleSource[], abort: AbortSignal): Promise<number> {
  // Loaded on use: the live daemon's start does not pay for the pull side's modules.
  const { listRemote } = await import('../transfer/list.js');
  const archive = Boolean(o.archive);
  // Only what was asked for travels, as with rsync (whose listing sends -d, or -r, and -a's letters).
  const transfer: TransferOptions = {
    recursive: Boolean(o.recursive || archive),
    links: Boolean(o.links || archive),
    perms: archive && o.perms,
    times: archive && o.times,
    owner: Boolean(o.owner || archive),
    group: Boolean(o.group || archive),
    devices: Boolean((o as { D?: boolean }).D || archive),
    hardLinks: Boolean(o.hardLinks),
    checksum: Boolean(o.checksum),
    wholeFile: false,
    dryRun: false,
    delete: false,
    deleteExcluded: false,
    numericIds: Boolean(o.numericIds),
    verbose: 0,
    itemize: false,
    stats: false,
    ...(o.checksumChoice !== undefined && { checksumChoice: o.checksumChoice }),
    ...(o.timeout !== undefined && { timeout: o.timeout }),
  };
  const motd = o.motd ? (line: Buffer) => process.stdout.write(Buffer.concat([line, Buffer.from('\n')])) : undefined;
  const result = await listRemote({
    target,
    abort,
    transfer,
    session: { ...sessionOptions(o, target.user), ...(motd && { onLine: motd }) },
    charset: outputCharset(o),
    // The daemon's sender applies our excludes, as it does for rsync's listing.
    ...(rules.some((r) => r.kind !== 'delete-excluded') && { filter: buildFilterList(rules) }),
    onLine: (line) => process.stdout.write(line),
    onInfo: (text) => out(text),
    onError: (text) => err(text),
  });
  return result.exitCode;
}

async function list(address: string, options: CliOptions, rules: RuleSource[], abort: AbortSignal): Promise<number> {
  const target = parseDaemonAddress(address, options.port ?? DEFAULT_PORT);
  if (target.module) return listContents(target, options, rules, abort);
  const { listModules, splitMotd } = await import('../transfer/client.js');
  const lines = await listModules({ host: target.host, port: target.port, ...sessionOptions(options, target.user) });
  const shown = options.motd ? lines : splitMotd(lines).modules;
  process.stdout.write(Buffer.concat(shown.flatMap((line) => [line, Buffer.from('\n')])));
  return EXIT.OK;
}

/** How names are shown: the locale's charset, or -8's high-bit bytes left as they are. */
function outputCharset(o: CliOptions): ReturnType<typeof charsetFromEnv> {
  return o['8BitOutput'] ? 'raw8' : charsetFromEnv(process.env);
}

const out = (line: string) => process.stdout.write(line.endsWith('\n') ? line : line + '\n');
const err = (line: string) => process.stderr.write(line.endsWith('\n') ? line : line + '\n');

/** A push or pull target checked before anything is touched: a daemon address naming a module. */
function moduleTarget(address: string, options: CliOptions): ReturnType<typeof parseDaemonAddress> {
  const target = parseDaemonAddress(address, options.port ?? DEFAULT_PORT);
  if (!target.module) throw new UsageError(`${address} names no module`);
  return target;
}

/**
 * How a one-off transfer talks: -q silences all but errors; a progress line left open (--progress
 * between updates, progress2 always) is ended before anything else is printed, as rsync does.
 */
// rsync/log.c: rwrite (quiet, output_needs_newline)
function transferOutput(options: CliOptions, charset: ReturnType<typeof charsetFromEnv>) {
  const level = progressLevel(options);
  const progress = level ? new TransferProgress({ level, humanReadable: options.humanReadable, write: (text) => process.stdout.write(text) }) : undefined;
  const endProgressLine = (stream: NodeJS.WriteStream) => {
    if (progress?.needsNewline) stream.write('\n');
    if (progress) progress.needsNewline = false;
  };
  return {
    progress,
    /** A line of text for stdout (nothing with -q). */
    say: (line: string) => {
      if (options.quiet) return;
      endProgressLine(process.stdout);
      out(line);
    },
    /** A line of text and raw names for stdout, escaped as rsync escapes them (nothing with -q). */
    sayLine: (parts: Array<string | Uint8Array> | null) => {
      if (options.quiet || !parts) return;
      endProgressLine(process.stdout);
      process.stdout.write(outputLine(parts, charset));
    },
    /** An error line for stderr (always). */
    warn: (line: string) => {
      endProgressLine(process.stderr);
      err(line);
    },
    /** The daemon's message of the day (not with --no-motd or -q). */
    motd: options.motd && !options.quiet ? (line: Buffer) => process.stdout.write(Buffer.concat([line, Buffer.from('\n')])) : undefined,
    /** The end of the transfer: an open progress line is ended. */
    finish: () => progress?.finish(),
  };
}

/**
 * A push's transfer options (the once push's and the live mirror's alike): ours and the receiving
 * ones handed to the daemon, and the rules with -b's protection added.
 */
// rsync/options.c: parse_arguments (the "P *SUFFIX" rule of -b without --backup-dir)
function pushTransfer(options: CliOptions, rules: RuleSource[]): { transfer: TransferOptions; rules: RuleSource[] } {
  const transfer: TransferOptions = { ...transferOptions(options), ...pushedReceivingOptions(options) };
  // -b --delete without a backup dir: the backups are protected on the daemon, as rsync's client
  // protects them (its "P *SUFFIX" rule, sent with the list).
  if (transfer.backup && transfer.backupDir === undefined && transfer.delete && !transfer.deleteExcluded) {
    rules = [...rules, { kind: 'filter', value: `P *${transfer.suffix ?? '~'}` }];
  }
  return { transfer, rules };
}

/**
 * The live mirror's transfer: a push's, less what it cannot do per batch (-m prunes by the whole
 * tree), and --delete-only's phase (lsyncd 2's delete = 'startup' | 'running').
 */
function liveTransfer(options: CliOptions, rules: RuleSource[]): { transfer: TransferOptions; rules: RuleSource[]; deleteOnly?: DeletePhase } {
  refuseForwardedOnlyLive(options);
  if (options.fakeSuper) throw new UsageError('--fake-super is not supported by the live mirror (a pull takes it)');
  if (options.pruneEmptyDirs) throw new UsageError('-m/--prune-empty-dirs is not supported by the live mirror (a batch sees a subtree, not the whole tree); a --once push takes it');
  const inPlace = options.inplace ? 'inplace' : options.append ? 'append' : options.appendVerify ? 'append-verify' : undefined;
  if (inPlace) throw new UsageError(`--${inPlace} is not supported by the live mirror (a mirror replaces files whole, atomically); a --once push takes it`);
  const phase = options.deleteOnly;
  if (phase !== undefined && options.delete === false) throw new UsageError(`--delete-only ${phase} and --no-delete contradict each other`);
  return { ...pushTransfer(options, rules), ...(phase !== undefined && { deleteOnly: phase }) };
}

async function pushOnce(source: string, target: ReturnType<typeof parseDaemonAddress>, options: CliOptions, rules: RuleSource[], abort: AbortSignal): Promise<number> {
  if (options.deleteOnly !== undefined) throw new UsageError(`--delete-only ${options.deleteOnly} is for the live mirror (a --once push is all startup: --delete or --no-delete)`);
  let transfer: TransferOptions;
  ({ transfer, rules } = pushTransfer(options, rules));
  // --fake-super: the records a fake-super backup stores are listed as the files' attributes (-XX and -A refused there).
  if (options.fakeSuper) (await import('../transfer/fake-super.js')).checkSendingFakeSuper(transfer);
  const filter = rules.some((r) => r.kind !== 'delete-excluded') ? pushFilter(buildFilterList(rules), { deleteExcluded: transfer.deleteExcluded, absRoot: resolve(source) }) : undefined;
  // The source's tree is read ahead on another thread while the transfer's code loads and connects.
  if (transfer.recursive && !transfer.relative && options.filesFrom === undefined) (await import('../transfer/dir-records.js')).exploreAhead(source);
  const { push } = await import('../transfer/push.js');
  (await import('../process-memory.js')).tuneProcessMemory();
  const started = Date.now();
  // Names are raw bytes: written as rsync writes them (\#ooo for what the terminal cannot show).
  const charset = outputCharset(options);
  const { progress, say, sayLine, warn, motd, finish } = transferOutput(options, charset);
  // --progress shows the names as -v does (rsync's INFO_NAME); a transfer's line comes before its data.
  const lines = { itemize: transfer.itemize, verbose: transfer.verbose || (options.progress ? 1 : 0), times: transfer.times };
  const log = await clientLog(options, 'send', target, source, transfer, warn);
  const result = await logged(log, () => push({
    source,
    target,
    transfer,
    ...(options.fakeSuper && { fakeSuper: true }),
    // A local list (a daemon's one, :FILE, is in `transfer`).
    ...(options.filesFrom !== undefined && transfer.filesFrom === undefined && { filesFrom: { file: options.filesFrom, from0: !!options.from0 } }),
    session: { ...sessionOptions(options, target.user), ...(motd && { onLine: motd }) },
    ...(filter && { filter }),
    charset,
    abort,
    onFileList: (entries) => {
      log?.started();
      // -v says the list is built, --progress counts it (-i alone says nothing).
      if (options.progress || (transfer.verbose && !transfer.itemize)) say(fileListText('building', entries.length, Boolean(options.progress)).slice(0, -1));
      progress?.fileList(entries.length, entries.totalSize());
    },
    onInfo: (text) => say(text),
    onError: (text) => warn(text),
    onDeleted: (name, isDir) => {
      sayLine(deletedLine(name, isDir, lines));
      log?.deleted(name, isDir ? S_IFDIR : S_IFREG);
    },
    onTransferStart: (item) => {
      sayLine(sentItemLine(item, lines));
      progress?.fileStarted(item.ndx, item.entry.size);
    },
    ...(progress && { onFileBytes: (entry: FileEntry, offset: number) => progress.advance(offset, entry.size), onPhaseDone: () => progress.phaseDone() }),
    onItem: (item) => {
      log?.item(item);
      // A transfer's line was printed when its data started (a dry run sends none).
      const sent = (item.iflags & ITEM_TRANSFER) !== 0 && !transfer.dryRun;
      if (sent) progress?.fileDone(item.entry.size);
      else sayLine(sentItemLine(item, lines));
    },
  }));
  finish();
  const elapsedSeconds = (Date.now() - started) / 1000;
  if (!options.quiet) for (const line of outputSummary(result, { ...transfer, elapsedSeconds, humanReadable: options.humanReadable })) out(line);
  return result.exitCode;
}

async function pullOnce(target: ReturnType<typeof parseDaemonAddress>, dest: string, options: CliOptions, rules: RuleSource[], abort: AbortSignal): Promise<number> {
  const { pull } = await import('../transfer/pull.js');
  (await import('../process-memory.js')).tuneProcessMemory();
  // A pull deletes local files only when asked (--delete, a --delete-WHEN or --delete-excluded).
  if (options.deleteOnly !== undefined) throw new UsageError(`--delete-only ${options.deleteOnly} is for the live mirror; a pull deletes with --delete`);
  // rsync/options.c: parse_arguments ("--fake-super conflicts with -XX")
  if (options.fakeSuper && options.xattrs > 1) throw new UsageError('--fake-super conflicts with -XX');
  const receiving = receivingOptions(options);
  // -K, -O, -J, -E, --delay-updates and -T: a push forwards them, our pull's receiver does them.
  const transfer: TransferOptions = {
    ...transferOptions(options),
    delete: options.delete === true,
    ...receiving,
    ...walkingOptions(options, 'pull'),
    ...forwardedOnlyOptions(options, receiving),
  };
  const list = rules.some((r) => r.kind !== 'delete-excluded') ? buildFilterList(rules) : undefined;
  const started = Date.now();
  // Names are raw bytes: written as rsync writes them (\#ooo for what the terminal cannot show).
  const charset = outputCharset(options);
  const { progress, say, sayLine, warn, motd, finish } = transferOutput(options, charset);
  // --progress shows the names as -v does (rsync's INFO_NAME).
  const verbose = transfer.verbose || (options.progress ? 1 : 0);
  // With --progress a received file's line comes when its data starts (rsync's receiver logs it
  // there), so its progress lines follow it.
  const namesAtData = progress !== undefined && !transfer.dryRun;
  const itemLine = (iflags: number, entry: FileEntry): Array<string | Uint8Array> | null => {
    const isTransfer = (iflags & ITEM_TRANSFER) !== 0;
    // Like rsync's -i: only items with a significant change (not ITEM_LOCAL_CHANGE alone);
    // a received file shows '>' where a sent one has '<'.
    if (transfer.itemize) {
      return iflags & SIGNIFICANT_ITEM_FLAGS ? [`${itemizeString(iflags, entry.mode, transfer.times).replace(/^</, '>')} `, itemNameBytes(entry)] : null;
    }
    return verbose && (isTransfer || iflags & ITEM_IS_NEW) ? [itemNameBytes(entry)] : null;
  };
  const held: Array<{ ndx: number; line: Array<string | Uint8Array> | null }> = [];
  const sayHeld = (before: number) => {
    while (held.length && held[0]!.ndx < before) sayLine(held.shift()!.line);
  };
  const log = await clientLog(options, 'recv', target, dest, transfer, warn);
  const result = await logged(log, () => pull({
    target,
    dest,
    transfer,
    session: { ...sessionOptions(options, target.user), ...(motd && { onLine: motd }) },
    ...(list && { filter: { list, deleteExcluded: transfer.deleteExcluded } }),
    ignoreTimes: Boolean(options.ignoreTimes),
    ...(options.fakeSuper && { fakeSuper: true }),
    ...(options.trustSender && { trustSender: true }),
    charset,
    abort,
    onInfo: (text) => say(text),
    onError: (text) => warn(text),
    onDeleted: (name, isDir) => {
      sayLine(deletedLine(name, isDir, { ...transfer, verbose }));
      log?.deleted(name, isDir ? S_IFDIR : S_IFREG);
    },
    onCreatedDest: (path) => {
      if (transfer.itemize || verbose) sayLine(['created directory ', Buffer.from(path)]);
    },
    onFileList: (count, size) => {
      log?.started();
      if (transfer.verbose || options.progress) say(fileListText('receiving', count, Boolean(options.progress)).slice(0, -1));
      progress?.fileList(count, size);
    },
    onItem: (item) => {
      if (!(item.iflags & ITEM_TRANSFER)) log?.item(item);
      if (!namesAtData) return sayLine(itemLine(item.iflags, item.entry));
      // The generator runs ahead of the data: its other lines wait for the receiver to pass them.
      if (!(item.iflags & ITEM_TRANSFER)) held.push({ ndx: item.ndx, line: itemLine(item.iflags, item.entry) });
    },
    ...(progress && {
      onReceiveStart: (item) => {
        sayHeld(item.ndx);
        if (namesAtData) sayLine(itemLine(item.iflags, item.entry));
        progress.fileStarted(item.ndx, item.entry.size);
      },
      onReceiveBytes: (entry, offset) => progress.advance(offset, entry.size),
      onReceived: (item) => {
        log?.item(item);
        if (!transfer.dryRun) progress.fileDone(item.entry.size);
      },
      onPhaseDone: () => {
        sayHeld(Infinity);
        progress.phaseDone();
      },
    }),
    ...(log && !progress && { onReceived: (item: ReceivedItem) => log.item(item) }),
  }));
  sayHeld(Infinity);
  finish();
  const elapsedSeconds = (Date.now() - started) / 1000;
  if (!options.quiet) for (const line of outputSummary(result, { ...transfer, elapsedSeconds, humanReadable: options.humanReadable })) out(line);
  return result.exitCode;
}

/** --log-file: the run's log, opened before the transfer (null without the option). */
async function clientLog(
  options: CliOptions,
  op: 'send' | 'recv',
  target: ReturnType<typeof parseDaemonAddress>,
  root: string,
  transfer: TransferOptions,
  warn: (text: string) => void,
): Promise<ClientTransferLog | null> {
  if (options.logFile === undefined) {
    if (options.logFileFormat !== undefined) throw new UsageError('--log-file-format needs --log-file');
    return null;
  }
  const { ClientTransferLog } = await import('../transfer/transfer-log.js');
  return new ClientTransferLog({
    file: options.logFile,
    ...(options.logFileFormat !== undefined && { format: options.logFileFormat }),
    op,
    host: target.host,
    module: target.module,
    root,
    transfer,
    onError: (e) => warn(e.message),
  });
}

/** Run a transfer with its log: the closing 'sent ... received ...' line, or the error that ended it. */
async function logged<T extends { bytesSent: number; bytesReceived: number; totalSize: number }>(log: ClientTransferLog | null, transfer: () => Promise<T>): Promise<T> {
  if (!log) return transfer();
  try {
    const result = await transfer();
    log.finished({ sent: result.bytesSent, received: result.bytesReceived, totalSize: result.totalSize });
    return result;
  } catch (e) {
    log.error(`rsync error: ${(e as Error).message}`);
    throw e;
  } finally {
    log.close();
  }
}

async function live(source: string, targets: string[], options: CliOptions, rules: RuleSource[]): Promise<number> {
  if (!targets.length) throw new UsageError('no TARGET given');
  if (isDaemonAddress(source)) throw new UsageError('the live mirror watches a local SOURCE; pulling is not available yet');
  if (options.logFile !== undefined || options.logFileFormat !== undefined) throw new UsageError('--log-file is for --once runs (the live mirror logs with --logfile)');
  walkingOptions(options, 'live');
  const { transfer, rules: withBackups, deleteOnly } = liveTransfer(options, rules);
  rules = withBackups;
  const { live: runLive } = await import('./live.js');
  (await import('../process-memory.js')).tuneProcessMemory();
  return runLive({
    source,
    targets: targets.map((t) => {
      const target = parseDaemonAddress(t, options.port ?? DEFAULT_PORT);
      if (!target.module) throw new UsageError(`${t} names no module`);
      return { target, session: sessionOptions(options, target.user) };
    }),
    transfer,
    ...(deleteOnly !== undefined && { deleteOnly }),
    ...(rules.some((r) => r.kind !== 'delete-excluded') && { filterList: buildFilterList(rules) }),
    foreground: Boolean(options.nodaemon || options.daemon === false),
    argv: argvForDetach,
    ...(options.delay !== undefined && { delay: options.delay }),
    ...(options.logfile !== undefined && { logfile: options.logfile }),
    ...(options.syslog && { syslog: true }),
    logIdent: options.logIdent,
    logFacility: options.logFacility,
    ...(options.pidfile !== undefined && { pidfile: options.pidfile }),
    ...(options.statusFile !== undefined && { statusFile: options.statusFile }),
    startup: options.startup === false ? 'none' : (options.startup ?? 'full'),
    ...(options.stateFile !== undefined && { stateFile: options.stateFile }),
    level: options.debug ? 'debug' : options.scarce ? 'error' : 'info',
    insist: Boolean(options.insist),
    home: options.home,
  });
}

async function run(args: string[], options: CliOptions, rules: RuleSource[], program: Command): Promise<number> {
  refuseInapplicable(options);
  if (options.ipv4 && options.ipv6) throw new UsageError('-4 and -6 exclude each other');
  // -P: rsync's --partial --progress.
  if (options.P) Object.assign(options, { partial: true, progress: true });
  if (options.from0 && rules.some((r) => r.kind === 'exclude-from' || r.kind === 'include-from')) {
    throw new UsageError('-0/--from0 with --exclude-from/--include-from is not supported yet');
  }
  if (options.config !== undefined) {
    if (args.length) throw new UsageError(`--config ${options.config} takes no SOURCE or TARGET (they are in the file): ${args.join(' ')}`);
    return liveFromConfig(options.config, options, program);
  }
  if (args.length === 0) throw new UsageError('no SOURCE TARGET given (or a config FILE)');
  if (args.length === 1) {
    // FILE.yaml / FILE.lua (read as a config even when missing: its error says so).
    if (looksLikeConfig(args[0]!) && (isFile(args[0]!) || !isDaemonAddress(args[0]!))) return liveFromConfig(args[0]!, options, program);
    if (!isDaemonAddress(args[0]!)) throw new UsageError(`${args[0]} is not a daemon address (rsync://HOST/ or HOST::)`);
    return once((abort) => list(args[0]!, options, rules, abort));
  }
  const [source, ...targets] = args;
  if (!options.once) return live(source!, targets, options, rules);
  if (isDaemonAddress(source!)) {
    if (targets.length !== 1 || isDaemonAddress(targets[0]!)) throw new UsageError('a pull takes one daemon SOURCE and one local DEST');
    const target = moduleTarget(source!, options);
    return once((abort) => pullOnce(target, targets[0]!, options, rules, abort));
  }
  // Every target is checked (address syntax, a module named) before the first is touched.
  const checked = targets.map((t) => moduleTarget(t, options));
  return once(async (abort) => {
    let worst = 0;
    for (const target of checked) {
      if (abort.aborted) break;
      const code = await pushOnce(source!, target, options, rules, abort).catch((e: unknown) => (abort.aborted ? EXIT.SIGNAL : report(e)));
      if (code > worst) worst = code;
    }
    return worst;
  });
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The command line's options that apply to a whole config-file run (the rest belong to a sync, in the file). */
const CONFIG_RUN_OPTIONS = ['config', 'nodaemon', 'daemon', 'logfile', 'syslog', 'logIdent', 'logFacility', 'pidfile', 'statusFile', 'insist', 'debug', 'scarce'];

/** Parse one sync's command-line words with the command line's own parser: its options and rules. */
function parseSyncWords(words: string[]): { options: CliOptions; rules: RuleSource[] } {
  const rules: RuleSource[] = [];
  const program = buildProgram(rules);
  program.configureOutput({ writeErr: () => {}, writeOut: () => {} });
  program.parse(words, { from: 'user' });
  return { options: program.opts<CliOptions>(), rules };
}

/** What commander said, without its "error: " lead. */
function commanderText(e: unknown): string {
  return (e as Error).message.replace(/^error: /, '');
}

/**
 * A sync of a config file in the live mirror's terms: its keys are command-line words, parsed and
 * turned into options exactly as `lsyncd SOURCE TARGET...` would be. A word the command line
 * refuses is a ConfigError at the key that gave it.
 */
function resolveSync(s: SyncConfig, defaultStateFile: typeof import('./live.js').defaultStateFile): ConfigSync {
  if (s.source === '%userwww') throw new ConfigError(s.at, '%userwww is for the command line; list the users\' www directories as syncs');
  if (isDaemonAddress(s.source)) throw new ConfigError(s.at, `source ${s.source}: a sync watches a local directory`);
  const tail = [s.source, ...s.targets];
  let parsed: ReturnType<typeof parseSyncWords>;
  try {
    parsed = parseSyncWords([...s.options.flatMap((o) => o.args), '--', ...tail]);
  } catch (e) {
    // Which key: the first whose words alone are refused.
    for (const o of s.options) {
      try {
        parseSyncWords([...o.args, '--', ...tail]);
      } catch (alone) {
        throw new ConfigError(o.at, `${o.key}: ${commanderText(alone)}${/unknown option/.test(commanderText(alone)) ? ' (this lsyncd does not have it)' : ''}`);
      }
    }
    throw new ConfigError(s.at, commanderText(e));
  }
  const { options } = parsed;
  try {
    const { transfer, rules, deleteOnly } = liveTransfer(options, parsed.rules);
    const startup = options.startup === false ? 'none' : (options.startup ?? 'full');
    const targets = s.targets.map((t) => {
      const target = parseDaemonAddress(t, options.port ?? DEFAULT_PORT);
      if (!target.module) throw new UsageError(`${t} names no module`);
      return { target, session: sessionOptions(options, target.user) };
    });
    const stateFile = options.stateFile ?? defaultStateFile(startup, s.source, targets);
    return {
      name: s.name,
      identity: syncIdentity(s),
      source: s.source,
      targets,
      transfer,
      ...(deleteOnly !== undefined && { deleteOnly }),
      ...(rules.some((r) => r.kind !== 'delete-excluded') && { filterList: buildFilterList(rules) }),
      ...(options.delay !== undefined && { delay: options.delay }),
      startup,
      ...(stateFile !== undefined && { stateFile }),
    };
  } catch (e) {
    if (e instanceof ConfigError || !(e instanceof RsyncError)) throw e;
    throw new ConfigError(s.at, e.message);
  }
}

/**
 * `lsyncd --config FILE` / `lsyncd FILE`: the file's syncs, with the command line's settings over
 * the file's (a transfer option on the command line is refused: it belongs to a sync).
 */
async function liveFromConfig(file: string, options: CliOptions, program: Command): Promise<number> {
  const given = (key: string) => program.getOptionValueSource(key) === 'cli';
  if (options.once) throw new UsageError(`--once takes SOURCE TARGET or ADDRESS DEST, not a config file (${file})`);
  const stray = program.options.filter((o) => given(o.attributeName()) && !CONFIG_RUN_OPTIONS.includes(o.attributeName()));
  if (stray.length) {
    throw new UsageError(`with a config file, ${stray.map((o) => o.long ?? o.short).join(', ')} belongs in the file, per sync (the command line takes --nodaemon, --logfile, --syslog, --pidfile, --status-file, --insist, --debug, --scarce)`);
  }
  const path = resolve(file);
  const { loadConfig } = await import('../config/load.js');
  const { liveConfig, defaultStateFile } = await import('./live.js');
  (await import('../process-memory.js')).tuneProcessMemory();
  const load = (): LoadedConfig => {
    const config = loadConfig(path);
    return { globals: config.globals, syncs: config.syncs.map((s) => resolveSync(s, defaultStateFile)) };
  };
  const first = load();
  const g = first.globals;
  const level = given('debug') ? 'debug' : given('scarce') ? 'error' : (g.logLevel ?? 'info');
  const logfile = given('logfile') ? options.logfile : g.logfile;
  const pidfile = given('pidfile') ? options.pidfile : g.pidfile;
  const statusFile = given('statusFile') ? options.statusFile : g.statusFile;
  return liveConfig({
    file: path,
    first,
    load,
    foreground: given('nodaemon') || given('daemon') ? Boolean(options.nodaemon || options.daemon === false) : Boolean(g.nodaemon),
    argv: argvForDetach,
    ...(logfile !== undefined && { logfile }),
    ...((given('syslog') ? options.syslog : g.syslog) && { syslog: true }),
    logIdent: given('logIdent') ? options.logIdent : (g.logIdent ?? options.logIdent),
    logFacility: given('logFacility') ? options.logFacility : (g.logFacility ?? options.logFacility),
    ...(pidfile !== undefined && { pidfile }),
    ...(statusFile !== undefined && { statusFile }),
    ...(g.statusInterval !== undefined && { statusInterval: g.statusInterval }),
    level,
    insist: Boolean(options.insist || g.insist),
    ...(g.maxPushes !== undefined && { maxPushes: g.maxPushes }),
  });
}

/**
 * A one-off run (--once, a listing) under rsync's signal rule: Ctrl-C, SIGTERM or SIGHUP stops
 * the transfer (its connection closed, a pull's temp files discarded) and the run ends with
 * rsync's line for it and exit 20, whatever the transfer's own failure was.
 */
// rsync/main.c: sig_int, then cleanup.c: exit_cleanup(RERR_SIGNAL)
async function once(transfer: (abort: AbortSignal) => Promise<number>): Promise<number> {
  const interruption = new OnceInterruption().install();
  try {
    const code = await transfer(interruption.abort).catch((e: unknown) => (interruption.received ? EXIT.SIGNAL : report(e)));
    if (!interruption.received) return code;
    process.stderr.write(`${signalLine()}\n`);
    return EXIT.SIGNAL;
  } finally {
    interruption.uninstall();
  }
}

/** The hint after a refusal for want of a password: where lsyncd looks for one. */
function passwordHint(error: DaemonRefusalError): string | undefined {
  if (!/auth failed/.test(error.daemonText) || !passwordWasMissing) return undefined;
  return 'lsyncd: no password was given: set RSYNC_PASSWORD or use --password-file FILE (on a terminal lsyncd asks)';
}

function report(error: unknown): number {
  // A config file's mistake is one line, FILE:LINE:COL: what was expected.
  if (error instanceof ConfigError) {
    process.stderr.write(`lsyncd: ${error.message}\n`);
    return error.exitCode;
  }
  if (error instanceof DaemonRefusalError) {
    process.stderr.write(`${error.daemonText}\n`);
    const hint = passwordHint(error);
    if (hint) process.stderr.write(`${hint}\n`);
  } else if (error instanceof RemoteError && error.messages.length) {
    // The daemon's texts were shown as they arrived (MSG_ERROR); only the summary is left to say.
  } else if (error instanceof RsyncError) {
    process.stderr.write(`lsyncd: ${error.message}\n`);
  } else {
    process.stderr.write(`lsyncd: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return EXIT.PROTOCOL;
  }
  process.stderr.write(`${closingLine(error.exitCode)}\n`);
  return error.exitCode;
}

let argvForDetach: string[] = [];
/** Whether a daemon asked for a password that no file, no $RSYNC_PASSWORD and no terminal gave. */
let passwordWasMissing = false;

export async function main(argv: string[]): Promise<number> {
  // `lsyncd serve ...`: the daemon, with rsync --daemon's own options (src/cli/serve.ts).
  if (argv[2] === 'serve') return (await import('./serve.js')).serveMain(argv.slice(3), pkg.version);
  // `lsyncd demo [SOURCE]`: lsyncd serve and a live mirror into it, on this machine alone (src/cli/demo.ts).
  if (argv[2] === 'demo') return (await import('./demo.js')).demoMain(argv.slice(3), pkg.version);
  const rules: RuleSource[] = [];
  const program = buildProgram(rules);
  argvForDetach = argv.slice(1);
  program.configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  let args: string[];
  try {
    args = mapLsyncd2Options(argv.slice(2));
  } catch (e) {
    return report(e);
  }
  // rsync's habits: bare `lsyncd` prints the usage and exits 1; `-h` alone is the help.
  if (args.length === 0) {
    process.stderr.write(program.helpInformation());
    return EXIT.SYNTAX;
  }
  if (asksForHelp(args)) {
    process.stdout.write(program.helpInformation());
    return EXIT.OK;
  }
  try {
    program.parse(args, { from: 'user' });
  } catch (e) {
    const code = (e as { code?: string; exitCode?: number }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') return EXIT.OK;
    return EXIT.SYNTAX;
  }
  const options = program.opts<CliOptions>();
  try {
    return await run(program.args, options, rules, program);
  } catch (e) {
    return report(e);
  }
}

main(process.argv).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e) => {
    process.exitCode = report(e);
  },
);
