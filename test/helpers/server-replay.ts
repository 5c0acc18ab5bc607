// The client's opening of a captured session as our daemon would read it: greeting, module line,
// argument list (and the second list of -s), leaving the reader at the client's setup-phase bytes;
// plus what the stock daemon wrote from its `@RSYNCD: OK` on, to compare ours with.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ByteReader } from '../../protocol/io.js';
import { recvArgs } from '../../protocol/args.js';
import { parseChecksumName, type ChecksumName } from '../../protocol/compat.js';
import { loadCapture, piecesSource, type Capture } from './capture.js';

const root = fileURLToPath(new URL('../../../fixtures/captures/', import.meta.url));

/** The newest protocol our daemon speaks. */
export const SERVER_PROTOCOL = 32;

export interface ClientOpening {
  cap: Capture;
  decoded: string;
  /** The protocol both ends use: the lower of the client's and ours. */
  protocol: number;
  /** The client's arguments (for -s, the second list). */
  args: string[];
  /** The text after `e` in the client's short options ('' when there is none). */
  clientInfo: string;
  checksumChoice?: ChecksumName;
  /** Over the client's bytes, positioned just after its argument list(s). */
  reader: ByteReader;
  /** The stock daemon's bytes after its `@RSYNCD: OK` line. */
  daemonAfterOk: Buffer;
  /** The checksum seed the stock daemon drew. */
  seed: number;
}

export async function readClientOpening(name: string, cuts: number[] = []): Promise<ClientOpening> {
  const cap = loadCapture(name);
  const decoded = readFileSync(`${root}${name}/decoded.txt`, 'utf8');
  const reader = new ByteReader(piecesSource(cap.c2s, cuts));
  const greeting = (await reader.readLine())!.toString('latin1');
  const protocol = Math.min(SERVER_PROTOCOL, Number(/^@RSYNCD: (\d+)\./.exec(greeting)![1]));
  reader.protocol = protocol;
  await reader.readLine(); // the module line
  let args = (await recvArgs(reader)).map((a) => a.toString('utf8'));
  const shortOptions = args.find((a) => /^-[^-]/.test(a)) ?? '';
  if (/^-[^e]*s/.test(shortOptions)) args = (await recvArgs(reader, true)).map((a) => a.toString('utf8'));
  const e = shortOptions.indexOf('e');
  const choice = args.find((a) => a.startsWith('--checksum-choice='));
  const ok = cap.s2c.indexOf('@RSYNCD: OK\n') + '@RSYNCD: OK\n'.length;
  return {
    cap,
    decoded,
    protocol,
    args,
    clientInfo: e === -1 ? '' : shortOptions.slice(e + 1),
    ...(choice && { checksumChoice: parseChecksumName(choice.slice('--checksum-choice='.length)) }),
    reader,
    daemonAfterOk: cap.s2c.subarray(ok),
    seed: Number(/checksum_seed int32 = (-?\d+)/.exec(decoded)![1]),
  };
}
