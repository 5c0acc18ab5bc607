// The C library's strerror words (glibc's texts) for the errno codes Node's fs errors carry:
// rsync words a failed system call as `strerror(errno) (errno)`, Node only gives the code and
// libuv's lowercase text. One table for every message of ours that quotes rsync's.
// Counterpart: rsync log.c rsyserr (strerror).
import { constants } from 'node:os';

const STRERROR: Readonly<Record<string, string>> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  EIO: 'Input/output error',
  ENXIO: 'No such device or address',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  EXDEV: 'Invalid cross-device link',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EINVAL: 'Invalid argument',
  ENFILE: 'Too many open files in system',
  EMFILE: 'Too many open files',
  ETXTBSY: 'Text file busy',
  EFBIG: 'File too large',
  ENOSPC: 'No space left on device',
  EROFS: 'Read-only file system',
  EAGAIN: 'Resource temporarily unavailable',
  ENAMETOOLONG: 'File name too long',
  ENOTEMPTY: 'Directory not empty',
  ELOOP: 'Too many levels of symbolic links',
  EOVERFLOW: 'Value too large for defined data type',
  ESTALE: 'Stale file handle',
  EDQUOT: 'Disk quota exceeded',
};

/** The C library's words for an errno code, or undefined when the table does not have it. */
export function strerrorOf(code: string | undefined): string | undefined {
  return code ? STRERROR[code] : undefined;
}

/** The errno number of a code on this system, or undefined. */
export function errnoOf(code: string | undefined): number | undefined {
  return code ? (constants.errno as Record<string, number>)[code] : undefined;
}

/** An fs error as rsync's rsyserr ends its line: `Read-only file system (30)`; null when its code is unknown. */
export function sysReason(e: unknown): string | null {
  const code = (e as NodeJS.ErrnoException).code;
  const words = strerrorOf(code);
  const errno = errnoOf(code);
  return words && errno !== undefined ? `${words} (${errno})` : null;
}
