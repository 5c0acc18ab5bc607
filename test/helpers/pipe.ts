// An in-memory connection: two one-way pipes, so our client and our server halves can talk to
// each other in one process (each write arrives as one read on the other end).
import type { ByteSink, ByteSource } from '../../protocol/io.js';
import { ByteReader, ByteWriter } from '../../protocol/io.js';

/** One direction: what is written to `sink` is read from `source`; `end()` is the peer closing. */
export function pipe(): { source: ByteSource; sink: ByteSink; end(): void } {
  const queue: Array<Uint8Array | null> = [];
  let waiting: ((chunk: Uint8Array | null) => void) | null = null;
  const push = (chunk: Uint8Array | null): void => {
    if (waiting) {
      const wake = waiting;
      waiting = null;
      wake(chunk);
    } else {
      queue.push(chunk);
    }
  };
  return {
    source: {
      read: () => (queue.length ? Promise.resolve(queue.shift()!) : new Promise((resolve) => (waiting = resolve))),
    },
    sink: {
      write: async (bytes) => push(Buffer.from(bytes)),
    },
    end: () => push(null),
  };
}

export interface End {
  reader: ByteReader;
  writer: ByteWriter;
}

/** Both ends of a connection at `protocol`, with every byte each side wrote kept. */
export function connection(protocol: number): { client: End; server: End; clientBytes(): Buffer; serverBytes(): Buffer } {
  const up = pipe();
  const down = pipe();
  const sent: { c2s: Buffer[]; s2c: Buffer[] } = { c2s: [], s2c: [] };
  const tap = (sink: ByteSink, log: Buffer[]): ByteSink => ({
    write: async (bytes) => {
      log.push(Buffer.from(bytes));
      await sink.write(bytes);
    },
  });
  const end = (source: ByteSource, sink: ByteSink): End => {
    const reader = new ByteReader(source);
    const writer = new ByteWriter(sink);
    reader.protocol = writer.protocol = protocol;
    return { reader, writer };
  };
  return {
    client: end(down.source, tap(up.sink, sent.c2s)),
    server: end(up.source, tap(down.sink, sent.s2c)),
    clientBytes: () => Buffer.concat(sent.c2s),
    serverBytes: () => Buffer.concat(sent.s2c),
  };
}
