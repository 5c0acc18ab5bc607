// st_mode and dev_t as the protocol carries them: the file-type bits and their predicates, the
// permission bits, and the packing of a device's major and minor numbers. rsync sends st_mode as
// is and, on Linux, its to_wire_mode() is the identity (S_IFLNK is already 0120000), so these are
// Linux's <sys/stat.h> values. Wire constants: constants.ts.
// Counterpart: rsync rsync.h (IS_DEVICE, IS_SPECIAL, CHMOD_BITS, MAKEDEV), <sys/stat.h>,
// <sys/sysmacros.h>.

// <sys/stat.h>: file types
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

// <sys/stat.h>: the set-id and sticky bits, and the execute bit of each class
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_ISVTX = 0o1000;
export const S_IXUSR = 0o100;
export const S_IXGRP = 0o010;
export const S_IXOTH = 0o001;
// <sys/stat.h>: read and write for others
export const S_IROTH = 0o004;
export const S_IWOTH = 0o002;
/** <sys/stat.h> ACCESSPERMS: read, write and execute for owner, group and others. */
export const ACCESSPERMS = 0o777;
/** rsync.h CHMOD_BITS: the permission bits compared and set (set-id, sticky and ACCESSPERMS). */
export const CHMOD_BITS = S_ISUID | S_ISGID | S_ISVTX | ACCESSPERMS;

/** The file-type bits of a mode (one of the S_IF* values). */
export const fileType = (mode: number): number => mode & S_IFMT;
export const isDir = (mode: number): boolean => fileType(mode) === S_IFDIR;
export const isReg = (mode: number): boolean => fileType(mode) === S_IFREG;
export const isLink = (mode: number): boolean => fileType(mode) === S_IFLNK;
// rsync.h: IS_DEVICE
export const isDevice = (mode: number): boolean => fileType(mode) === S_IFCHR || fileType(mode) === S_IFBLK;
// rsync.h: IS_SPECIAL
export const isSpecial = (mode: number): boolean => fileType(mode) === S_IFIFO || fileType(mode) === S_IFSOCK;

/** A device's numbers, as the file list carries them from protocol 28 (and lstat gives them packed). */
export interface DevNumbers {
  major: number;
  minor: number;
}

/**
 * Linux's dev_t packing (glibc makedev, rsync's MAKEDEV): major in bits 8-19 and 32-51, minor in
 * bits 0-7 and 20-43. Protocols < 28 put a device's dev_t on the wire as one int32.
 */
export function makeDev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

/** glibc's major() and minor() of a dev_t: the inverse of makeDev (an lstat's st_rdev, a protocol < 28 rdev). */
export function splitDev(dev: bigint): DevNumbers {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return { major: Number(BigInt.asUintN(32, major)), minor: Number(BigInt.asUintN(32, minor)) };
}
