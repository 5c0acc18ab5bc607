// Where the basis of a delta is (docs/protocol.md [pull-request], [pull-receive]): the file
// itself, the same name in one of the basis directories (--compare-dest, --copy-dest,
// --link-dest), or a similar file found by --fuzzy (in the file's directory, or with -yy in a
// basis directory). The generator says which in the request (ITEM_BASIS_TYPE_FOLLOWS + a
// FNAMECMP_* byte, ITEM_XNAME_FOLLOWS + the fuzzy file's name), the sender echoes it, and the
// receiver opens the same file again: this module turns the byte and the name back into a place,
// refusing what the options did not ask for. Pure: the tree maps a basis-dir index to a path.
// Counterpart: rsync rsync.h FNAMECMP_*, receiver.c recv_files (the fnamecmp_type switch).
import { ProtocolError } from './errors.js';
import { FNAMECMP_FNAME } from './constants.js';

/** rsync.h FNAMECMP_BASIS_DIR_LOW..HIGH: the same name in basis directory 0..127. */
export const FNAMECMP_BASIS_DIR_LOW = 0x00;
export const FNAMECMP_BASIS_DIR_HIGH = 0x7f;
/** rsync.h FNAMECMP_PARTIAL_DIR / FNAMECMP_BACKUP: the file's copy in the --partial-dir, its --inplace --backup copy. */
export const FNAMECMP_PARTIAL_DIR = 0x81;
export const FNAMECMP_BACKUP = 0x82;
/** rsync.h FNAMECMP_FUZZY: the xname in the file's directory; FUZZY + 1 + j: in basis directory j. */
export const FNAMECMP_FUZZY = 0x83;
export { FNAMECMP_FNAME };

/** rsync.h MAX_BASIS_DIRS: how many --compare-dest/--copy-dest/--link-dest one run takes. */
export const MAX_BASIS_DIRS = 20;

/** rsync's alt_dest_type: what an identical file in a basis directory does. */
export type AltDestKind = 'compare' | 'copy' | 'link';

/** The basis directories of a run (the tree knows their paths; `j` here is an index into them). */
export interface AltDest {
  kind: AltDestKind;
  /** How many basis directories, 1..MAX_BASIS_DIRS. */
  count: number;
}

/** The options both the generator and the receiver read to agree on a basis. */
export interface BasisOptions {
  /** --compare-dest / --copy-dest / --link-dest (each repeatable; one kind per run, as in rsync). */
  altDest?: AltDest;
  /** --fuzzy: 1 (-y) looks in the file's directory, 2 (-yy) also in the basis directories. */
  fuzzy?: number;
  /** --inplace with --backup: a file rewritten in place has its backup copy as the basis (FNAMECMP_BACKUP). */
  inplaceBackup?: boolean;
  /** --partial-dir: a file's partly transferred copy there is its basis (FNAMECMP_PARTIAL_DIR). */
  partialDir?: boolean;
}

/**
 * What the basis options need of the protocol: below 29 no basis type travels, so --fuzzy is
 * refused and only one basis dir is allowed (rsync's receiver then falls back to it alone).
 */
// rsync/compat.c: setup_protocol (the protocol < 29 checks)
export function checkBasisProtocol(options: BasisOptions, protocol: number): void {
  if (protocol >= 29) return;
  if (options.fuzzy) throw new ProtocolError(`--fuzzy requires protocol 29 or higher (negotiated ${protocol}).`);
  const alt = options.altDest;
  if (alt && alt.count > 1) throw new ProtocolError(`Using more than one --${alt.kind}-dest option requires protocol 29 or higher (negotiated ${protocol}).`);
}

/** A basis located: `name` (a list-relative name) in the destination (`dir` undefined) or in basis dir `dir`. */
export interface BasisPlace {
  name: Buffer;
  dir?: number;
  /** The backup copy of `name` (--inplace --backup). */
  backup?: true;
  /** The partial copy of `name` in the --partial-dir. */
  partial?: true;
}

/** rsync's fuzzy_basis count: how many directories -y / -yy look in (the destination first). */
// rsync/options.c: parse_arguments (fuzzy_basis = basis_dir_cnt + 1 for -yy)
export function fuzzyDirCount(options: BasisOptions): number {
  if (!options.fuzzy) return 0;
  return options.fuzzy > 1 ? (options.altDest?.count ?? 0) + 1 : 1;
}

/** The directory part of a list name ('' for a top-level name). */
function dirOf(name: Buffer): Buffer {
  const slash = name.lastIndexOf(0x2f);
  return slash < 0 ? Buffer.alloc(0) : name.subarray(0, slash + 1);
}

/** A fuzzy xname must be one plain name in the file's directory: never a path that could climb out. */
function checkXname(xname: Buffer, of: Buffer): void {
  const bad =
    xname.length === 0 ||
    xname.includes(0x2f) ||
    xname.includes(0) ||
    (xname.length === 1 && xname[0] === 0x2e) ||
    (xname.length === 2 && xname[0] === 0x2e && xname[1] === 0x2e);
  if (bad) throw new ProtocolError(`invalid fuzzy basis name ${JSON.stringify(xname.toString('latin1'))} for ${of.toString()}`);
}

/**
 * Where the receiver finds the basis the request names: the byte and xname as the sender echoed
 * them (null when not flagged), checked against what our options asked for.
 */
// rsync/receiver.c: recv_files (the fnamecmp_type switch) [pull-receive]
export function basisPlace(name: Buffer, basisType: number | null, xname: Buffer | null, options: BasisOptions): BasisPlace {
  if (basisType === null || basisType === FNAMECMP_FNAME) return { name };
  if (basisType === FNAMECMP_PARTIAL_DIR) {
    if (!options.partialDir) throw new ProtocolError(`basis type ${basisType} for ${name.toString()} was never asked for`);
    return { name, partial: true };
  }
  if (basisType === FNAMECMP_BACKUP) {
    if (!options.inplaceBackup) throw new ProtocolError(`basis type ${basisType} for ${name.toString()} was never asked for`);
    return { name, backup: true };
  }
  const dirs = options.altDest?.count ?? 0;
  if (basisType >= FNAMECMP_FUZZY) {
    const j = basisType - FNAMECMP_FUZZY; // 0: the destination, 1 + k: basis dir k
    if (j >= fuzzyDirCount(options)) throw new ProtocolError(`refusing a fuzzy basis (type ${basisType}) for ${name.toString()}: not asked for`);
    if (!xname) throw new ProtocolError(`fuzzy basis without a name for ${name.toString()}`);
    checkXname(xname, name);
    const place = Buffer.concat([dirOf(name), xname]);
    return j === 0 ? { name: place } : { name: place, dir: j - 1 };
  }
  if (basisType <= FNAMECMP_BASIS_DIR_HIGH) {
    if (basisType >= dirs) throw new ProtocolError(`invalid basis_dir index: ${basisType}.`);
    return { name, dir: basisType };
  }
  throw new ProtocolError(`basis type ${basisType} for ${name.toString()} was never asked for`);
}
