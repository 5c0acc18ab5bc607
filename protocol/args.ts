// The argument list the client sends after `@RSYNCD: OK` (docs/protocol.md [args]).
// Counterpart: rsync clientserver.c start_inband_exchange (argument framing), io.c read_args.
import { ProtocolError, EXIT } from './errors.js';
import type { ByteWriter } from './io.js';

/**
 * Write the server argument list: each argument NUL-terminated and an empty one to end
 * (protocol >= 30), or newline-terminated and an empty line to end (older protocols).
 */
// rsync/clientserver.c: start_inband_exchange (argument writing)
export async function sendArgs(writer: ByteWriter, args: readonly string[]): Promise<void> {
  const terminator = writer.protocol >= 30 ? 0 : 0x0a;
  for (const arg of args) {
    const bytes = Buffer.from(arg, 'utf8');
    if (arg === '' || bytes.includes(0) || (terminator === 0x0a && bytes.includes(0x0a))) {
      throw new ProtocolError(`argument ${JSON.stringify(arg)} cannot be sent at protocol ${writer.protocol}`, {
        exitCode: EXIT.SYNTAX,
      });
    }
    writer.writeBuf(bytes);
    writer.writeByte(terminator);
  }
  writer.writeByte(terminator);
  await writer.flush();
}
