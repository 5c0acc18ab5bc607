// rsync's sanitize_path: a path cleaned of leading and doubled slashes, `.` components and any
// `..` that would climb above a given depth, byte for byte as rsync's result. Pure; used by the
// daemon for symlink targets and module paths, and by the sender's walk for --files-from names.
// Counterpart: rsync util1.c sanitize_path.

const SLASH = 0x2f;
const DOT = 0x2e;

/**
 * A path with leading and doubled slashes, `.` components, and any `..` that would climb above
 * `depth` levels taken out, as rsync's sanitize_path cleans a symlink target a client sends into a
 * module it cannot chroot into ("." when nothing is left). Byte for byte rsync's result: each kept
 * component keeps the slash that followed it (`a/b/c/` stays so, `a/b/..` is `a/`), and a `..`
 * drops the component before it.
 */
// rsync/util1.c: sanitize_path (dest == p, rootdir ""; `keepDotDirs`: SP_KEEP_DOT_DIRS with --relative)
export function sanitizePath(p: Buffer, depth: number, keepDotDirs = false): Buffer {
  const out = Buffer.alloc(p.length + 1);
  const at = (i: number) => (i < p.length ? p[i]! : 0);
  const endsComponent = (i: number) => i >= p.length || p[i] === SLASH;
  let i = 0;
  let n = 0;
  let start = 0; // the kept leading ".." components lie before this
  // --files-from with -R keeps "." components, so that a "/./" in a name still marks its base.
  if (!keepDotDirs) while (at(i) === DOT && at(i + 1) === SLASH) i += 2;
  while (i < p.length) {
    if (p[i] === SLASH) {
      i++;
      continue;
    }
    if (!keepDotDirs && p[i] === DOT && endsComponent(i + 1)) {
      i++;
      continue;
    }
    if (p[i] === DOT && at(i + 1) === DOT && endsComponent(i + 2)) {
      if (depth <= 0 || n !== start) {
        i += 2;
        if (n !== start) {
          n--; // the slash after the component before
          while (n > start && out[n - 1] !== SLASH) n--;
        }
        continue;
      }
      depth--; // a ".." the link's own depth allows: kept
      start = n + 3;
    }
    // One component, with the slash after it.
    while (i < p.length) {
      const byte = p[i++]!;
      out[n++] = byte;
      if (byte === SLASH) break;
    }
  }
  if (n === 0) out[n++] = DOT;
  return Buffer.from(out.subarray(0, n));
}

