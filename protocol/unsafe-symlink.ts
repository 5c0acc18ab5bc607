// --safe-links / --copy-unsafe-links: whether a symlink's target leaves the transferred tree.
// Absolute and empty targets always do; otherwise the target's `..` steps are counted against
// the depth of the link's own name in the list (docs/protocol.md [flist]: names are relative
// to the transfer's root). Pure bytes in, a boolean out.
// Counterpart: rsync util1.c unsafe_symlink.

const SLASH = 0x2f;
const DOT = 0x2e;

/** `../`, repeated (with extra slashes), at the start of `b`: how many bytes it takes. */
function leadingDotDots(b: Uint8Array): number {
  let at = 0;
  while (b[at] === DOT && b[at + 1] === DOT && b[at + 2] === SLASH) {
    at += 3;
    while (b[at] === SLASH) at++;
  }
  return at;
}

/** The path's components, as rsync walks them: empty ones (doubled slashes) dropped, the last one kept. */
function components(b: Uint8Array): { dirs: Uint8Array[]; last: Uint8Array } {
  const parts: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= b.length; i++) {
    if (i === b.length || b[i] === SLASH) {
      parts.push(b.subarray(start, i));
      start = i + 1;
    }
  }
  const last = parts.pop()!;
  return { dirs: parts.filter((p, i) => i === 0 || p.length > 0), last };
}

const isDot = (p: Uint8Array) => p.length === 1 && p[0] === DOT;
const isDotDot = (p: Uint8Array) => p.length === 2 && p[0] === DOT && p[1] === DOT;

/** True when the link `name` (its list name) pointing at `target` reaches outside the tree. */
// rsync/util1.c: unsafe_symlink
export function unsafeSymlink(target: Uint8Array, name: Uint8Array): boolean {
  if (target.length === 0 || target[0] === SLASH) return true;
  // A `/../` anywhere but in the leading run of `../`, or a trailing `/..`, is refused outright.
  const rest = Buffer.from(target.subarray(leadingDotDots(target)));
  if (rest.includes('/../')) return true;
  if (target.length > 3 && Buffer.from(target.subarray(target.length - 3)).toString('latin1') === '/..') return true;
  // The safety margin: how deep the link itself sits.
  let depth = 0;
  const source = components(name);
  for (const part of source.dirs) {
    if (isDotDot(part)) depth = 0;
    else if (!isDot(part)) depth++;
  }
  if (isDotDot(source.last)) depth = 0;
  const dest = components(target);
  for (const part of dest.dirs) {
    if (isDotDot(part)) {
      if (--depth < 0) return true;
    } else if (!isDot(part)) depth++;
  }
  if (isDotDot(dest.last)) depth--;
  return depth < 0;
}
