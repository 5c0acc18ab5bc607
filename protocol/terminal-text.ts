// Text for a terminal as rsync writes it (docs/protocol.md [errors]): bytes the locale cannot
// show, control characters and a backslash that would read as an escape become `\#ooo`. The
// one home for names in text, here so that the protocol library's own messages (a name it
// rejects) read as the CLI prints them. Pure. Counterpart: rsync log.c rwrite, filtered_fwrite.

/** How rsync checks output text: iconv to the locale's charset (UTF-8 or ASCII). */
/** 'raw8': -8 (--8-bit-output), high-bit bytes written through unescaped (rsync skips its iconv check). */
export type OutputCharset = 'utf8' | 'ascii' | 'raw8';

/** Length of the valid UTF-8 sequence at `at` (as glibc's iconv accepts it), or 0 if invalid. */
function utf8SequenceLength(b: Uint8Array, at: number): number {
  const c = b[at]!;
  if (c < 0x80) return 1;
  let len: number;
  let min: number;
  if (c >= 0xc2 && c <= 0xdf) (len = 2), (min = 0x80);
  else if (c >= 0xe0 && c <= 0xef) (len = 3), (min = 0x800);
  else if (c >= 0xf0 && c <= 0xf4) (len = 4), (min = 0x10000);
  else return 0;
  if (at + len > b.length) return 0;
  let cp = c & (0xff >> (len + 1));
  for (let i = 1; i < len; i++) {
    const cc = b[at + i]!;
    if ((cc & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

const escaped = (byte: number): string => `\\#${byte.toString(8).padStart(3, '0')}`;
const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;

/**
 * One line of terminal output as rsync writes it: bytes the charset cannot show become `\#ooo`
 * (iconv's EILSEQ path), then control characters other than tab, and a backslash that would
 * read as such an escape, become `\#ooo` too (filtered_fwrite). The trailing newline stays raw.
 */
// rsync/log.c: rwrite + filtered_fwrite
export function escapeLine(line: Uint8Array, charset: OutputCharset): Buffer {
  const bytes = Buffer.from(line);
  const newline = bytes.length > 0 && (bytes[bytes.length - 1] === 0x0a || bytes[bytes.length - 1] === 0x0d);
  const body = newline ? bytes.subarray(0, -1) : bytes;
  let out = '';
  const parts: Buffer[] = [];
  const flush = () => {
    if (out) parts.push(Buffer.from(out, 'latin1'));
    out = '';
  };
  for (let i = 0; i < body.length; ) {
    const c = body[i]!;
    if (c >= 0x80 && charset === 'raw8') {
      out += String.fromCharCode(c);
      i++;
      continue;
    }
    if (c >= 0x80) {
      const len = charset === 'utf8' ? utf8SequenceLength(body, i) : 0;
      if (len === 0) {
        out += escaped(c);
        i++;
      } else {
        flush();
        parts.push(body.subarray(i, i + len));
        i += len;
      }
      continue;
    }
    const fakeEscape = c === 0x5c && i < body.length - 4 && body[i + 1] === 0x23 && isDigit(body[i + 2]) && isDigit(body[i + 3]) && isDigit(body[i + 4]);
    if (fakeEscape || (c !== 0x09 && c < 0x20)) out += escaped(c);
    else out += String.fromCharCode(c);
    i++;
  }
  flush();
  if (newline) parts.push(bytes.subarray(-1));
  return Buffer.concat(parts);
}

/**
 * A name (raw bytes) as every line we print or log shows it: escaped as rsync's rwrite escapes
 * output in a UTF-8 locale, so a name can neither break a line nor carry bytes a terminal
 * misreads. The one home for names in text.
 */
// rsync/log.c: rwrite + filtered_fwrite (for a name)
export function shownName(name: Uint8Array, charset: OutputCharset = 'utf8'): string {
  // escapeLine keeps a line's last newline raw: a name's own last byte must not be taken for it.
  const line = escapeLine(Buffer.concat([name, Buffer.from('\n')]), charset);
  return line.subarray(0, -1).toString(charset === 'utf8' ? 'utf8' : 'latin1');
}
