// rsync's --chmod language (also rsyncd.conf's `incoming chmod` / `outgoing chmod`): a comma
// list of chmod(1)-style clauses, each optionally prefixed with D (directories only) or F (files
// only): `Dg+s,ug+w,Fo-w,+X`, `D755,F644`, `u=rwX,go=u-w`. parseChmod compiles the text into
// AND/OR steps; tweakMode applies them to a mode of the file list (docs/protocol.md [flist]).
// Pure: the umask is the caller's. Counterpart: rsync chmod.c (parse_chmod, tweak_mode).
import { UsageError } from './errors.js';
import { CHMOD_BITS, S_IFDIR, S_IFMT, S_ISGID, S_ISUID, S_ISVTX } from './modes.js';

/** One clause, compiled (rsync's struct chmod_mode_struct). */
export interface ChmodStep {
  /** Bits kept, then bits set. */
  and: number;
  or: number;
  /** `g=u`-style copies: which class the bits come from, which classes they go to, a mask. */
  copyFrom: number;
  copyTo: number;
  copyMask: number;
  op: '+' | '-' | '=' | 'octal';
  /** `X`: execute only for directories and files already executable by someone. */
  keepX: boolean;
  only?: 'dirs' | 'files';
}

export type ChmodModes = readonly ChmodStep[];

/** A --chmod text rsync would refuse. */
export class ChmodSyntaxError extends UsageError {
  readonly text: string;
  constructor(text: string) {
    super(`Invalid argument passed to --chmod (${text})`);
    this.text = text;
  }
}

/** Longest text accepted: rsync takes any length, but a clause list past this is no real mode. */
export const MAX_CHMOD_TEXT = 4096;

/** `s` and `t` in the classes given (u → setuid, g → setgid, o → sticky), for `=` with a copy. */
function specialBitsOf(who: number): number {
  return (who & 0o100 ? S_ISUID : 0) | (who & 0o010 ? S_ISGID : 0) | (who & 0o001 ? S_ISVTX : 0);
}

/**
 * Compile a chmod text; throws ChmodSyntaxError for anything rsync's parser rejects (an empty
 * clause, a clause without an operator, both D and F, a copy mixed with letters, an octal above
 * 07777). `umask` applies, as in chmod(1), to clauses that name no class (`+x`, `=r`).
 */
// rsync/chmod.c: parse_chmod
export function parseChmod(text: string, umask: number): ChmodModes {
  if (text.length > MAX_CHMOD_TEXT) throw new ChmodSyntaxError(`${text.slice(0, 40)}...`);
  return text.split(',').map((clause) => parseClause(clause, umask, text));
}

function parseClause(clause: string, umask: number, text: string): ChmodStep {
  const fail = (): never => {
    throw new ChmodSyntaxError(text);
  };
  let who = 0; // the classes named, as 0100 (u) | 0010 (g) | 0001 (o)
  let topBits = 0; // what `s` sets for those classes
  let only: ChmodStep['only'];
  let i = 0;
  // The first half: D/F, then u/g/o/a, up to the operator (or an octal number instead).
  for (; i < clause.length; i++) {
    const c = clause[i]!;
    if (c === 'D' || c === 'F') {
      const want = c === 'D' ? 'dirs' : 'files';
      if (only && only !== want) fail();
      only = want;
    } else if (c === 'u') {
      who |= 0o100;
      topBits |= S_ISUID;
    } else if (c === 'g') {
      who |= 0o010;
      topBits |= S_ISGID;
    } else if (c === 'o') who |= 0o001;
    else if (c === 'a') {
      who |= 0o111;
      topBits |= S_ISUID | S_ISGID; // a+s sets both, as chmod(1)
    } else break;
  }
  const opChar = clause[i];
  if (opChar === undefined) fail();
  if (opChar !== '+' && opChar !== '-' && opChar !== '=') {
    // An octal mode: digits only, nothing named before it, at most 07777.
    const digits = clause.slice(i);
    if (who || !/^[0-7]+$/.test(digits)) fail();
    let bits = 0;
    for (const d of digits) {
      bits = bits * 8 + Number(d);
      if (bits > CHMOD_BITS) fail();
    }
    return { and: 0, or: bits, copyFrom: 0, copyTo: 0, copyMask: CHMOD_BITS, op: 'octal', keepX: false, ...(only && { only }) };
  }
  // The second half: r/w/x/X/s/t, or one class to copy from (u/g/o).
  let what = 0;
  let special = 0;
  let copyFrom = 0;
  let keepX = false;
  for (const c of clause.slice(i + 1)) {
    if (copyFrom) fail(); // a copy stands alone
    if (c === 'r') what |= 4;
    else if (c === 'w') what |= 2;
    else if (c === 'x') what |= 1;
    else if (c === 'X') {
      keepX = true;
      what |= 1;
    } else if (c === 's') special |= topBits || S_ISUID;
    else if (c === 't') special |= S_ISVTX;
    else if (c === 'u' || c === 'g' || c === 'o') {
      if (what || special) fail();
      copyFrom = c === 'u' ? 0o100 : c === 'g' ? 0o010 : 0o001;
    } else fail();
  }
  const named = who !== 0;
  const to = named ? who : 0o111;
  const bits = named ? to * what : (to * what) & ~umask;
  const copyMask = named ? CHMOD_BITS : ~umask & CHMOD_BITS;
  const common = { copyFrom, copyTo: to, copyMask, keepX, ...(only && { only }) };
  if (opChar === '+') return { and: CHMOD_BITS, or: bits | special, op: '+', ...common };
  if (opChar === '-') return { and: CHMOD_BITS & ~(bits | special), or: 0, op: '-', ...common };
  // `=`: the classes' rwx cleared, and their s/t only when the clause sets some or copies.
  const cleared = to * 7 | (special ? topBits : 0) | (copyFrom ? specialBitsOf(to) : 0);
  return { and: CHMOD_BITS & ~cleared, or: bits | special, op: '=', ...common };
}

/** The bits a `g=u`-style copy gives: the source class's rwx, spread to the target classes. */
// rsync/chmod.c: mode_copy_bits
function copiedBits(mode: number, step: ChmodStep): number {
  let bits = 0;
  if (step.copyFrom & 0o100) bits |= (mode >> 6) & 7;
  if (step.copyFrom & 0o010) bits |= (mode >> 3) & 7;
  if (step.copyFrom & 0o001) bits |= mode & 7;
  return (step.copyTo * bits) & step.copyMask;
}

/** A mode after the clauses (its type bits untouched); symlinks are the caller's to leave alone. */
// rsync/chmod.c: tweak_mode
export function tweakMode(mode: number, modes: ChmodModes): number {
  const wasExecutable = (mode & 0o111) !== 0;
  const type = mode & S_IFMT;
  const isDir = type === S_IFDIR;
  let perms = mode & CHMOD_BITS;
  for (const step of modes) {
    if (step.only === 'dirs' && !isDir) continue;
    if (step.only === 'files' && isDir) continue;
    const copied = copiedBits(perms, step);
    perms &= step.and;
    perms |= step.keepX && !wasExecutable && !isDir ? step.or & ~0o111 : step.or;
    if (step.op === '-') perms &= CHMOD_BITS & ~copied;
    else perms |= copied;
  }
  return type | perms | (mode & ~(S_IFMT | CHMOD_BITS));
}
