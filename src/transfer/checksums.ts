// The session's checksummer (protocol/checksum.ts) with the addon's xxhash when it is there:
// rsync's xxh64/xxh3/xxh128 in C (native/xxhash.cc) instead of hash-wasm's WebAssembly build,
// about 4x quicker on a whole file (docs/bench.md "Round 5"). Every thread that makes a
// checksummer (the sums helper's worker too) goes through here.
import { createChecksummer as createFromProtocol, useXxhash, type Checksummer, type ChecksumOptions } from '../../protocol/checksum.js';
import type { ChecksumName } from '../../protocol/compat.js';
import { nativeXxhash } from '../addon.js';

let installed = false;

// rsync/checksum.c: parse_checksum_choice (the library behind CSUM_XXH*)
export function createChecksummer(name: ChecksumName, options: ChecksumOptions): Promise<Checksummer> {
  if (!installed) {
    installed = true;
    useXxhash(nativeXxhash());
  }
  return createFromProtocol(name, options);
}
