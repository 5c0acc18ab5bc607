// The setup phase after the argument list (docs/protocol.md [setup]): compat flags, checksum
// name negotiation, checksum seed, from the client's side or the server's. Not multiplexed in
// either direction. Counterpart: rsync compat.c setup_protocol, negotiate_the_strings;
// checksum.c parse_checksum_choice; compat.c parse_compress_choice, token.c init_compression_level.
import { ProtocolError, EXIT } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';
import { deflateLevel } from './token-deflate.js';
import { zstdLevel } from './token-zstd.js';
import type { CompressCodecs, TokenCompression } from './compress-codecs.js';

// rsync.h: CF_* compat flags, written by the daemon as a varint (protocol >= 30)
export const CF_INC_RECURSE = 1 << 0;
export const CF_SYMLINK_TIMES = 1 << 1;
export const CF_SYMLINK_ICONV = 1 << 2;
export const CF_SAFE_FLIST = 1 << 3;
export const CF_AVOID_XATTR_OPTIM = 1 << 4;
export const CF_CHKSUM_SEED_FIX = 1 << 5;
export const CF_INPLACE_PARTIAL_DIR = 1 << 6;
export const CF_VARINT_FLIST_FLAGS = 1 << 7;
export const CF_ID0_NAMES = 1 << 8;

/**
 * The capability letters after `-e.` that we send (protocol >= 30): what `rsync --no-inc-recursive`
 * sends. No `i`: we never ask for incremental recursion.
 */
export const CLIENT_CAPABILITIES = 'LsfxCIvu';

/** Checksum algorithms we implement, in upstream's order of preference. */
export const CHECKSUM_NAMES = ['xxh128', 'xxh3', 'xxh64', 'md5', 'md4'] as const;
export type ChecksumName = (typeof CHECKSUM_NAMES)[number];

/**
 * The compressions rsync knows, in its order of preference (`zstd lz4 zlibx zlib none`). zlibx,
 * zlib and none we always speak; zstd and lz4 when the caller's codecs have them (the system's
 * libzstd and liblz4): without one its name is left out, as a build of rsync without it does.
 */
export const COMPRESS_NAMES = ['zstd', 'lz4', 'zlibx', 'zlib', 'none'] as const;
export type CompressName = (typeof COMPRESS_NAMES)[number];

/** The names we speak with these codecs, most preferred first (rsync's valid_compressions of this build). */
// rsync/compat.c: valid_compressions_items (the SUPPORT_ZSTD / SUPPORT_LZ4 entries)
export function compressNames(codecs: CompressCodecs | undefined): CompressName[] {
  return COMPRESS_NAMES.filter((name) => (name === 'zstd' ? codecs?.zstd !== undefined : name === 'lz4' ? codecs?.lz4 !== undefined : true));
}

/**
 * The list a client offers: ours without "none" (rsync's client leaves it out of its list, so
 * `-z` never negotiates to no compression); a server's list keeps it.
 */
// rsync/compat.c: get_default_nno_list (the `nni->num == 0 && !am_server` test)
export function clientCompressList(codecs: CompressCodecs | undefined): CompressName[] {
  return compressNames(codecs).filter((name) => name !== 'none');
}

/**
 * The compression a --compress-choice name means (rsync's names, case-insensitive as its lookup).
 * A name rsync knows whose library this system lacks fails with why.
 */
// rsync/compat.c: parse_compress_choice (the compress_choice branch)
export function parseCompressName(name: string, codecs?: CompressCodecs): CompressName {
  const lower = name.toLowerCase();
  const ours = compressNames(codecs);
  if ((ours as string[]).includes(lower)) return lower as CompressName;
  if (lower === 'zstd' || lower === 'lz4') {
    const why = codecs?.missing?.[lower] ?? 'no codec was given';
    throw new ProtocolError(`compress name ${lower} is not available here: ${why} (we support ${ours.join(', ')})`, {
      exitCode: EXIT.UNSUPPORTED,
    });
  }
  throw new ProtocolError(`unknown or unsupported compress name: ${name} (we support ${ours.join(', ')})`, {
    exitCode: EXIT.UNSUPPORTED,
  });
}

/**
 * How one side's tokens travel once the compression is known: null for simple tokens ("none",
 * or for zlib and zlibx --compress-level=0, which rsync takes as "off" on each side), else the
 * algorithm, the level this side sends at and, for zstd and lz4, the codec. `skipAll`: the skip
 * list is `*` (a daemon's `dont compress = *`), which keeps the deflated format at level 0; zstd
 * and lz4 ignore it, as rsync's do (their level is set once, from --compress-level alone).
 * Undefined for zstd or lz4 without its codec.
 */
// rsync/token.c: init_compression_level, init_set_compression (the "*" case)
export function tokenCompression(
  name: CompressName | undefined,
  level: number | undefined,
  skipAll = false,
  codecs?: CompressCodecs,
): TokenCompression | null | undefined {
  if (name === undefined || name === 'none') return null;
  if (name === 'zstd') return codecs?.zstd ? { algorithm: 'zstd', level: zstdLevel(level, codecs.zstd), codec: codecs.zstd } : undefined;
  if (name === 'lz4') return codecs?.lz4 ? { algorithm: 'lz4', level: 0, codec: codecs.lz4 } : undefined;
  const effective = deflateLevel(level);
  if (effective === null) return null;
  return { algorithm: name, level: skipAll ? 0 : effective };
}

/**
 * A client's -z options as setup options: a named choice (no list crosses), or our list to
 * negotiate with (plain -z, or --compress-choice=auto). An unsupported name fails here, before
 * anything is sent. `codecs` is asked for only when compressing (it may open libraries).
 */
// rsync/options.c: parse_arguments (compress_choice → parse_compress_choice(0))
export function clientCompressOptions(
  compress: { choice?: string; level?: number } | undefined,
  codecs?: () => CompressCodecs,
): CompressOptions & { compressList?: readonly string[] } {
  if (!compress) return {};
  const choice = compress.choice?.toLowerCase();
  const level = compress.level !== undefined ? { compressLevel: compress.level } : {};
  const have = codecs?.();
  const withCodecs = have ? { codecs: have } : {};
  if (choice === undefined || choice === 'auto') return { compressList: clientCompressList(have), ...level, ...withCodecs };
  return { compressChoice: parseCompressName(choice, have), ...level, ...withCodecs };
}

/** Negotiation strings are bounded by rsync (MAX_NSTR_STRLEN). */
export const MAX_NSTR_STRLEN = 256;

export interface SetupResult {
  compatFlags: number;
  checksum: ChecksumName;
  /** True when the protocol implied the checksum (no negotiation, no --checksum-choice). */
  checksumImplied: boolean;
  seed: number;
  /** This side's compression pick, on a session that asked for compression (compressList). */
  compression?: string;
  /**
   * How this side's tokens travel (rsync's parse_compress_choice(1) at the end of setup): null
   * for simple tokens, else the algorithm, the level we send at and (zstd, lz4) the codec. Unset
   * when the pick is a name we do not speak (only a caller's own compressList can offer one).
   */
  tokens?: TokenCompression | null;
}

/** The -z options both sides apply once the compression is known (CompressOptions of each side). */
export interface CompressOptions {
  /** The compression named on the command line (--compress-choice, --old/--new-compress): no list crosses then. */
  compressChoice?: string;
  /** --compress-level (unset: the algorithm's default). */
  compressLevel?: number;
  /** The skip list is `*` (a daemon's `dont compress = *`): level 0 for every file. */
  skipCompressAll?: boolean;
  /** The zstd and lz4 codecs this process has (src/compress-codecs.ts); without them only the deflated formats. */
  codecs?: CompressCodecs;
}

/** The algorithm a --checksum-choice name means ("xxhash" is xxh64's alias). */
export function parseChecksumName(name: string): ChecksumName {
  const canonical = name === 'xxhash' ? 'xxh64' : name;
  if (!(CHECKSUM_NAMES as readonly string[]).includes(canonical)) {
    throw new ProtocolError(`unknown or unsupported checksum "${name}" (we support ${CHECKSUM_NAMES.join(', ')})`, {
      exitCode: EXIT.SYNTAX,
    });
  }
  return canonical as ChecksumName;
}

/**
 * The compat flags a server derives from the client's capability letters (rsync's client_info,
 * the text after `-e` in the argument list). Never CF_INC_RECURSE: our daemon does not do
 * incremental recursion, whatever `i` the client offers (the flag then stays off for both).
 */
// rsync/compat.c: setup_protocol (the am_server branch that builds compat_flags)
export function serverCompatFlags(clientInfo: string, options: { symlinkTimes: boolean }): number {
  // A Linux build of rsync always sets the two symlink flags. CF_SYMLINK_ICONV only matters under
  // --iconv, which our daemon refuses with the rest of the options it lacks, so setting it changes
  // nothing but keeps our bytes equal to a stock daemon's.
  let flags = CF_SYMLINK_ICONV;
  if (options.symlinkTimes) flags |= CF_SYMLINK_TIMES;
  if (clientInfo.includes('f')) flags |= CF_SAFE_FLIST;
  if (clientInfo.includes('x')) flags |= CF_AVOID_XATTR_OPTIM;
  if (clientInfo.includes('C')) flags |= CF_CHKSUM_SEED_FIX;
  if (clientInfo.includes('I')) flags |= CF_INPLACE_PARTIAL_DIR;
  if (clientInfo.includes('u')) flags |= CF_ID0_NAMES;
  // 'v' (and 'V', its pre-release form, which negotiates nothing): varint file-list flags.
  if (clientInfo.includes('v') || clientInfo.includes('V')) flags |= CF_VARINT_FLIST_FLAGS;
  return flags;
}

/** Our side's half of the setup phase (session.ts passes the side it plays). */
export type SetupOptions = ClientSetupOptions | ServerSetupOptions;

export interface ClientSetupOptions extends CompressOptions {
  side?: 'client';
  /** Sent to the daemon as --checksum-choice: then neither side sends a list. */
  checksumChoice?: ChecksumName;
  /**
   * Called once the checksum is known and before the seed is read: what we send here (our
   * first data) reaches the daemon before it writes the seed, which spares a delayed-ACK stall
   * (the daemon's seed follows its checksum list without a read between: Nagle holds it until
   * that list is acknowledged, ~40 ms on Linux, unless data of ours carries the ACK).
   */
  beforeSeed?: (negotiated: Omit<SetupResult, 'seed'>) => Promise<void>;
  /**
   * Set when we asked for compression without naming one (-z, no --compress-choice): the names
   * we speak, most preferred first; sent after the checksum list when the daemon negotiates.
   */
  compressList?: readonly string[];
}

export interface ServerSetupOptions extends CompressOptions {
  side: 'server';
  /** The client's capability letters (the text after `-e` in its arguments; '' below protocol 30). */
  clientInfo: string;
  /** The client's --checksum-choice, if it gave one: then neither side sends a list. */
  checksumChoice?: ChecksumName;
  /** Whether our receiver sets the times of symlinks (CF_SYMLINK_TIMES). */
  symlinkTimes: boolean;
  /** The checksum seed we hand the client (rsync: time ^ pid << 6; protocol/ has no clock). */
  seed: number;
  /**
   * Set when the client asked for compression (-z without --compress-choice): the names we can
   * speak, most preferred first. Unset, a -z client's compression list would go unread.
   */
  compressList?: readonly string[];
}

/**
 * The setup phase after the argument list, from either side: the server writes the compat flags
 * (protocol >= 30) and the seed, the client reads them; in between both send their checksum list
 * (and, for the server of a -z session, its compression list) before reading the other's, when
 * the client's `v` capability asks for negotiation and the command line did not choose; each
 * picks its own most-preferred name that the peer offers, as rsync 3.5 does (compat.c
 * parse_negotiate_str), so two honest peers agree. Without `side` it is the client's half.
 */
// rsync/compat.c: setup_protocol (the am_server / client branches), negotiate_the_strings
export async function setupProtocol(
  reader: ByteReader,
  writer: ByteWriter,
  protocol: number,
  options: SetupOptions = {},
): Promise<SetupResult> {
  const server = options.side === 'server';
  const peer = server ? 'client' : 'daemon';
  // 1. The compat flags: written by the server (a single byte for a 'V' client), read by the client. [setup-compat] [setup-unsupported]
  let compatFlags = 0;
  let negotiate = false;
  if (protocol >= 30) {
    if (server) {
      compatFlags = serverCompatFlags(options.clientInfo, options);
      if (options.clientInfo.includes('V')) writer.writeByte(compatFlags);
      else writer.writeVarint(compatFlags);
      negotiate = options.clientInfo.includes('v');
    } else {
      compatFlags = await reader.readVarint();
      negotiate = (compatFlags & CF_VARINT_FLIST_FLAGS) !== 0;
    }
  }
  // 2. The lists: each side writes its checksum list (then, on a -z session, its compression list) [setup-checksum]
  // before reading the peer's, unless the protocol implies them or the command line chose.
  const negotiateChecksum = negotiate && !options.checksumChoice;
  const ourCompressions = options.compressList;
  const negotiateCompression = negotiate && ourCompressions !== undefined;
  if (negotiateChecksum) writer.writeVstring(Buffer.from(CHECKSUM_NAMES.join(' ')));
  if (negotiateCompression) writer.writeVstring(Buffer.from(ourCompressions.join(' ')));
  if (negotiateChecksum || negotiateCompression) await writer.flush();
  let checksum: ChecksumName;
  let checksumImplied = false;
  if (negotiateChecksum) {
    const theirs = new Set((await reader.readVstring(MAX_NSTR_STRLEN)).toString('latin1').split(' '));
    if (theirs.has('xxhash')) theirs.add('xxh64');
    const pick = CHECKSUM_NAMES.find((name) => theirs.has(name));
    if (!pick) {
      throw new ProtocolError(`failed to negotiate a checksum: the ${peer} offers ${[...theirs].join(' ')}`, {
        exitCode: EXIT.UNSUPPORTED,
      });
    }
    checksum = pick;
  } else {
    checksumImplied = !options.checksumChoice;
    checksum = options.checksumChoice ?? (protocol >= 30 ? 'md5' : 'md4');
  }
  let compression: string | undefined;
  if (ourCompressions) {
    // Without negotiation -z means zlib, which our list must then hold.
    const theirs = negotiateCompression ? (await reader.readVstring(MAX_NSTR_STRLEN)).toString('latin1').split(' ') : ['zlib'];
    compression = ourCompressions.find((name) => theirs.includes(name));
    if (!compression) {
      throw new ProtocolError(`failed to negotiate a compress choice: the ${peer} offers ${theirs.join(' ')}`, {
        exitCode: EXIT.UNSUPPORTED,
      });
    }
  }
  if (!server && compatFlags & CF_INC_RECURSE) {
    throw new ProtocolError('the daemon turned on incremental recursion, which we did not offer and do not support', {
      exitCode: EXIT.UNSUPPORTED,
    });
  }
  // The token format this side speaks from here: the pick (or the named choice) at its level. [token-deflate] [token-zstd] [token-lz4]
  // (A name we do not speak can only come from a caller's own list: tokens stay unset then.)
  const chosen = compression ?? options.compressChoice;
  const known = chosen === undefined || (compressNames(options.codecs) as string[]).includes(chosen);
  const tokens = known ? tokenCompression(chosen as CompressName | undefined, options.compressLevel, options.skipCompressAll, options.codecs) : undefined;
  // 3. The checksum seed: the server's choice, written after the lists. [setup-seed]
  if (server) {
    writer.writeInt(options.seed);
    await writer.flush();
    return { compatFlags, checksum, checksumImplied, seed: options.seed, ...(tokens !== undefined && { tokens }), ...(compression && { compression }) };
  }
  const negotiated = { compatFlags, checksum, checksumImplied, ...(compression && { compression }) };
  await options.beforeSeed?.(negotiated);
  const seed = await reader.readInt();
  return { ...negotiated, seed, ...(tokens !== undefined && { tokens }) };
}
