// The setup phase after the argument list (docs/protocol.md [setup]): compat flags, checksum
// name negotiation, checksum seed. Not multiplexed in either direction. Counterpart: rsync
// compat.c setup_protocol, negotiate_the_strings; checksum.c parse_checksum_choice.
import { ProtocolError, EXIT } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';

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

/** Negotiation strings are bounded by rsync (MAX_NSTR_STRLEN). */
export const MAX_NSTR_STRLEN = 256;

export interface SetupResult {
  compatFlags: number;
  checksum: ChecksumName;
  /** True when the protocol implied the checksum (no negotiation, no --checksum-choice). */
  checksumImplied: boolean;
  seed: number;
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
 * Client side of the setup phase. With `checksumChoice` (sent to the daemon as
 * --checksum-choice) neither side sends a list.
 */
// rsync/compat.c: setup_protocol (client half)
export async function setupProtocol(
  reader: ByteReader,
  writer: ByteWriter,
  protocol: number,
  options: {
    checksumChoice?: ChecksumName;
    /**
     * Called once the checksum is known and before the seed is read: what we send here (our
     * first data) reaches the daemon before it writes the seed, which spares a delayed-ACK stall
     * (the daemon's seed follows its checksum list without a read between: Nagle holds it until
     * that list is acknowledged, ~40 ms on Linux, unless data of ours carries the ACK).
     */
    beforeSeed?: (negotiated: Omit<SetupResult, 'seed'>) => Promise<void>;
  } = {},
): Promise<SetupResult> {
  let compatFlags = 0;
  if (protocol >= 30) compatFlags = await reader.readVarint();
  let checksum: ChecksumName;
  let checksumImplied = false;
  if (protocol >= 30 && compatFlags & CF_VARINT_FLIST_FLAGS && !options.checksumChoice) {
    // Send ours first, as rsync's client does, then read the daemon's list.
    writer.writeVstring(Buffer.from(CHECKSUM_NAMES.join(' ')));
    await writer.flush();
    const theirs = new Set((await reader.readVstring(MAX_NSTR_STRLEN)).toString('latin1').split(' '));
    if (theirs.has('xxhash')) theirs.add('xxh64');
    const pick = CHECKSUM_NAMES.find((name) => theirs.has(name));
    if (!pick) {
      throw new ProtocolError(`failed to negotiate a checksum: the daemon offers ${[...theirs].join(' ')}`, {
        exitCode: EXIT.UNSUPPORTED,
      });
    }
    checksum = pick;
  } else {
    checksumImplied = !options.checksumChoice;
    checksum = options.checksumChoice ?? (protocol >= 30 ? 'md5' : 'md4');
  }
  if (compatFlags & CF_INC_RECURSE) {
    throw new ProtocolError('the daemon turned on incremental recursion, which we did not offer and do not support', {
      exitCode: EXIT.UNSUPPORTED,
    });
  }
  await options.beforeSeed?.({ compatFlags, checksum, checksumImplied });
  const seed = await reader.readInt();
  return { compatFlags, checksum, checksumImplied, seed };
}
