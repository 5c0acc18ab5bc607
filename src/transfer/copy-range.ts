// The receiver's runs of matched basis blocks appended to the temp file inside the kernel
// (copy_file_range, native/copy-range.cc) when no one on this thread needs their bytes: the
// whole-file digest of a big file is hashed on the sums helper's thread from the temp file
// (src/transfer/sums-helper.ts), so the read into this process and the write back out are one
// copy in the kernel instead of two through user space. Docs: docs/protocol.md [pull-receive].
// Counterpart: rsync/receiver.c receive_data (which reads each matched block and writes it).
import { copyFileRange } from '../addon.js';

/**
 * Append `length` bytes of `fdIn` from `position` at `fdOut`'s file offset. Returns the bytes
 * appended: all of them, or fewer when `fdIn` ends early or the kernel (or a missing addon)
 * cannot copy between these files; the caller reads and writes the rest (and meets the error).
 */
export function appendRange(fdIn: number, position: number, fdOut: number, length: number): number {
  let done = 0;
  while (done < length) {
    const n = copyFileRange(fdIn, position + done, fdOut, length - done);
    if (!n) break; // null: cannot copy here; 0: the basis ended early
    done += n;
  }
  return done;
}
