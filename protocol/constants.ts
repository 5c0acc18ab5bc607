// The wire constants every role shares (docs/protocol.md): the iflags of a request, the special
// file-list indexes, the io_error bits, the file-list entry flags and the sizes the peers agree
// on. Role-independent: the sender, the generator, the receiver, the file list and the program
// all take them from here. MSG_* stay in mplex.ts and CF_* in compat.ts, the files whose wire
// concept they are. File types and permission bits: modes.ts.
// Counterpart: rsync rsync.h.

// rsync.h: ITEM_* (the iflags of a request; only BASIS_TYPE_FOLLOWS and XNAME_FOLLOWS change the
// byte layout)
export const ITEM_REPORT_ATIME = 1 << 0;
export const ITEM_REPORT_CHANGE = 1 << 1;
/** Regular files only. */
export const ITEM_REPORT_SIZE = 1 << 2;
/** Symlinks only: shares its bit with ITEM_REPORT_SIZE. */
export const ITEM_REPORT_TIMEFAIL = 1 << 2;
export const ITEM_REPORT_TIME = 1 << 3;
export const ITEM_REPORT_PERMS = 1 << 4;
export const ITEM_REPORT_OWNER = 1 << 5;
export const ITEM_REPORT_GROUP = 1 << 6;
export const ITEM_REPORT_ACL = 1 << 7;
export const ITEM_REPORT_XATTR = 1 << 8;
export const ITEM_REPORT_CRTIME = 1 << 10;
export const ITEM_BASIS_TYPE_FOLLOWS = 1 << 11;
export const ITEM_XNAME_FOLLOWS = 1 << 12;
export const ITEM_IS_NEW = 1 << 13;
export const ITEM_LOCAL_CHANGE = 1 << 14;
export const ITEM_TRANSFER = 1 << 15;
/** Below protocol 29 there are no iflags: every request is a transfer (rsync adds MISSING_DATA). */
export const ITEM_MISSING_DATA = 1 << 16;
/** rsync.h SIGNIFICANT_ITEM_FLAGS: the bits that make an itemized non-transfer worth reporting (16 wire bits). */
export const SIGNIFICANT_ITEM_FLAGS = ~(ITEM_BASIS_TYPE_FOLLOWS | ITEM_XNAME_FOLLOWS | ITEM_LOCAL_CHANGE) & 0xffff;

/** rsync.h FNAMECMP_FNAME: the basis is the file itself (the only basis we use). */
export const FNAMECMP_FNAME = 0x80;

// rsync.h: NDX_* (negative file-list indexes with a meaning of their own)
/** The end of a phase (and the final goodbye). */
export const NDX_DONE = -1;
/** The deletion counts follow (protocol >= 31, with --delete). */
export const NDX_DEL_STATS = -3;

/** The deletion counts that travel after NDX_DEL_STATS (protocol >= 31): rsync's stats.deleted_*. */
export interface DeleteStats {
  files: number;
  dirs: number;
  symlinks: number;
  devices: number;
  specials: number;
}

// rsync.h: IOERR_* (the sender's io_error bits)
export const IOERR_GENERAL = 1 << 0;
export const IOERR_VANISHED = 1 << 1;
export const IOERR_DEL_LIMIT = 1 << 2;
/** Every bit defined so far: a peer's value is masked with it. */
export const IOERR_VALID_MASK = IOERR_GENERAL | IOERR_VANISHED | IOERR_DEL_LIMIT;

// rsync.h: XMIT_* file-list entry flags (two names share a bit where rsync reuses it by protocol
// or file type)
export const XMIT_TOP_DIR = 1 << 0;
export const XMIT_SAME_MODE = 1 << 1;
export const XMIT_SAME_RDEV_pre28 = 1 << 2; // protocols < 28
export const XMIT_EXTENDED_FLAGS = 1 << 2; // protocols >= 28
export const XMIT_SAME_UID = 1 << 3;
export const XMIT_SAME_GID = 1 << 4;
export const XMIT_SAME_NAME = 1 << 5;
export const XMIT_LONG_NAME = 1 << 6;
export const XMIT_SAME_TIME = 1 << 7;
export const XMIT_SAME_RDEV_MAJOR = 1 << 8; // devices, >= 28
export const XMIT_NO_CONTENT_DIR = 1 << 8; // dirs, >= 30
export const XMIT_HLINKED = 1 << 9; // non-dirs, >= 28
export const XMIT_SAME_DEV_pre30 = 1 << 10; // 28-29
export const XMIT_USER_NAME_FOLLOWS = 1 << 10; // >= 30, incremental recursion only
export const XMIT_RDEV_MINOR_8_pre30 = 1 << 11; // 28-29
export const XMIT_GROUP_NAME_FOLLOWS = 1 << 11; // >= 30, incremental recursion only
export const XMIT_HLINK_FIRST = 1 << 12; // >= 30, hard-linked entries
export const XMIT_IO_ERROR_ENDLIST = 1 << 12; // end marker only, with XMIT_EXTENDED_FLAGS
export const XMIT_MOD_NSEC = 1 << 13; // >= 31

/** rsync.h MAX_WIRE_NSEC: the largest nanosecond value of an mtime on the wire. */
export const MAX_WIRE_NSEC = 999_999_999;

/** rsync's MAXPATHLEN: a full name, a symlink target and an xname (basis name) stay below it. */
export const MAXPATHLEN = 4096;

/** rsync.h CHUNK_SIZE: the largest literal run in one token (rsync 3.4.3/3.4.4 reject larger). */
export const CHUNK_SIZE = 32 * 1024;
