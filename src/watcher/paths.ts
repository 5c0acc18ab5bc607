// Paths. inotify (and readdir) hand us names as raw bytes; Linux filenames need not be
// UTF-8. The watcher's paths are JS strings in "surrogateescape" form (as Python's PEP 383):
// valid UTF-8 decodes normally, and every byte that is not part of valid UTF-8 becomes the
// lone surrogate U+DC00+byte (U+DC80..U+DCFF). Valid UTF-8 can never produce a lone
// surrogate, so the mapping is lossless: pathToBytes(pathFromBytes(b)) equals b for any b.
// Use pathToBytes()/fsPath() before handing such a path to fs (which would otherwise
// encode a lone surrogate as U+FFFD).

const utf8 = new TextDecoder('utf-8', { fatal: true });
const ESCAPED = /[\uDC80-\uDCFF]/;
const NON_ASCII = /[^\x00-\x7f]/;

/** Decode raw name bytes into a watcher path string (lossless). */
export function pathFromBytes(b: Uint8Array): string {
  let ascii = true;
  for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80) { ascii = false; break; }
  if (ascii) return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
  try {
    return utf8.decode(b);
  } catch {
    return decodeEscaped(b);
  }
}

/** Decode a name that readdir returned with encoding 'latin1' (one char per byte). */
export function pathFromLatin1(s: string): string {
  return NON_ASCII.test(s) ? pathFromBytes(Buffer.from(s, 'latin1')) : s;
}

/** Encode a watcher path string back to its exact bytes. */
export function pathToBytes(s: string): Buffer {
  if (!ESCAPED.test(s)) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xdc80 && c <= 0xdcff) {
      if (i > start) parts.push(Buffer.from(s.slice(start, i), 'utf8'));
      parts.push(Buffer.of(c - 0xdc00));
      start = i + 1;
    }
  }
  if (start < s.length) parts.push(Buffer.from(s.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/** True when the path contains escaped (non-UTF-8) bytes. */
export function hasEscapes(s: string): boolean {
  return ESCAPED.test(s);
}

/** What to pass to fs for an absolute watcher path: the string itself, or its bytes. */
export function fsPath(abs: string): string | Buffer {
  return ESCAPED.test(abs) ? pathToBytes(abs) : abs;
}

/** Join a root and a relative watcher path ('' is the root itself). */
export function joinPath(root: string, rel: string): string {
  if (rel === '') return root;
  return root.endsWith('/') ? root + rel : root + '/' + rel;
}

/** The directory a relative watcher path is in ('' for a top-level name and for the root). */
export function parentPath(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash === -1 ? '' : rel.slice(0, slash);
}

/** Join a relative directory path and a child name. */
export function childPath(dir: string, name: string): string {
  return dir === '' ? name : dir + '/' + name;
}

// Strict UTF-8 decoding that escapes every byte of an invalid sequence.
function decodeEscaped(b: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let n = 0;
    let min = 0;
    if (c < 0x80) { out += String.fromCharCode(c); i++; continue; }
    if (c >= 0xc2 && c <= 0xdf) { n = 1; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { n = 2; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; min = 0x10000; }
    let cp = n === 1 ? c & 0x1f : n === 2 ? c & 0x0f : c & 0x07;
    let ok = n > 0 && i + n < b.length;
    for (let k = 1; ok && k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) ok = false;
      else cp = (cp << 6) | (d & 0x3f);
    }
    if (ok && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) ok = false;
    if (!ok) { out += String.fromCharCode(0xdc00 + c); i++; continue; }
    out += String.fromCodePoint(cp);
    i += n + 1;
  }
  return out;
}
