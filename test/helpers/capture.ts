// Real byte captures of rsync 3.5.0 sessions (fixtures/captures, copied from shared/), and byte
// sources that feed them to the reader in chosen pieces.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ByteSource } from '../../protocol/io.js';
import { decodeFrameHeader, MSG_DATA } from '../../protocol/mplex.js';
import type { ChecksumName } from '../../protocol/compat.js';

const root = fileURLToPath(new URL('../../../fixtures/captures/', import.meta.url));

export interface Capture {
  /** Client → daemon bytes. */
  c2s: Buffer;
  /** Daemon → client bytes. */
  s2c: Buffer;
  /** The capture's client.txt: command, exit status, stdout, stderr. */
  client: string;
}

export function loadCapture(name: string): Capture {
  return {
    c2s: readFileSync(`${root}${name}/c2s.bin`),
    s2c: readFileSync(`${root}${name}/s2c.bin`),
    client: readFileSync(`${root}${name}/client.txt`, 'utf8'),
  };
}

/** The client's stdout as recorded in client.txt. */
export function recordedStdout(capture: Capture): string {
  const m = /--- client stdout\n([\s\S]*?)--- client stderr\n/.exec(capture.client);
  if (!m) throw new Error('client.txt has no stdout section');
  return m[1]!;
}

/** A source that yields `bytes` cut at the given offsets (each piece a separate read). */
export function piecesSource(bytes: Uint8Array, cuts: number[] = []): ByteSource {
  const pieces: Uint8Array[] = [];
  let from = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    if (cut > from && cut < bytes.length) {
      pieces.push(bytes.subarray(from, cut));
      from = cut;
    }
  }
  pieces.push(bytes.subarray(from));
  let i = 0;
  return { read: async () => (i < pieces.length ? pieces[i++]! : null) };
}

/** A source that yields one byte per read: the most hostile segmentation there is. */
export function byteAtATime(bytes: Uint8Array): ByteSource {
  let i = 0;
  return { read: async () => (i < bytes.length ? bytes.subarray(i, ++i) : null) };
}

/** A sink that keeps what it is given. */
export function memorySink(): { write(b: Uint8Array): Promise<void>; bytes(): Buffer } {
  const parts: Buffer[] = [];
  return {
    write: async (b) => {
      parts.push(Buffer.from(b));
    },
    bytes: () => Buffer.concat(parts),
  };
}

/**
 * The concatenated MSG_DATA payloads of one direction of a capture, from its first frame (the
 * offset decoded.txt gives); the raw bytes when that direction is not multiplexed.
 */
export function dataStream(bytes: Buffer, decoded: string, dir: 's2c' | 'c2s'): Buffer {
  const m = new RegExp(`${dir} @(\\d+) frame`).exec(decoded);
  if (!m) return bytes; // unmultiplexed (client output below protocol 30): the raw stream
  const parts: Buffer[] = [];
  for (let at = Number(m[1]); at + 4 <= bytes.length; ) {
    const { code, length } = decodeFrameHeader(bytes, at);
    if (code === MSG_DATA) parts.push(bytes.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return Buffer.concat(parts);
}

/** a.txt of the captures' source tree: 55 lines; `changed` = line 0020 as edited before push_delta. */
export function captureATxt(changed: boolean): Buffer {
  let text = '';
  for (let i = 0; i < 55; i++) {
    const line = `line ${String(i).padStart(4, '0')}: the quick brown fox jumps over the lazy dog\n`;
    text += changed && i === 20 ? line.replace('the quick brown fox', 'THE QUICK BROWN CAT') : line;
  }
  return Buffer.from(text, 'latin1');
}

/** The session parameters decoded.txt records: protocol, checksum, seed, compat flags. */
export function sessionOf(name: string) {
  const decoded = readFileSync(`${root}${name}/decoded.txt`, 'utf8');
  const protocol = Number(/=> protocol (\d+)/.exec(decoded)![1]);
  const checksum = /checksum (\w+) \(/.exec(decoded)![1] as ChecksumName;
  const seed = Number(/checksum_seed int32 = (-?\d+)/.exec(decoded)![1]);
  const compat = /compat_flags varint = (0x[0-9a-f]+)/.exec(decoded);
  return { decoded, protocol, checksum, seed, compatFlags: compat ? Number(compat[1]) : 0, implied: protocol < 30 };
}
