// Multiplexed I/O (docs/protocol.md [mplex]): 4-byte frame headers, MSG_* codes, out-of-band
// messages routed to a handler, MSG_ERROR_EXIT rejecting the pending read. Counterpart:
// rsync io.c read_a_msg, send_msg, io_start_multiplex_in/out; rsync.h enum msgcode.
import { ProtocolError, RemoteError, EXIT } from './errors.js';
import type { ByteReader, ByteWriter } from './io.js';

/** Frame tags are MPLEX_BASE + code. */
export const MPLEX_BASE = 7;

// rsync.h: enum msgcode (names kept so they grep across implementations)
export const MSG_DATA = 0;
export const MSG_ERROR_XFER = 1;
export const MSG_INFO = 2;
export const MSG_ERROR = 3;
export const MSG_WARNING = 4;
export const MSG_ERROR_SOCKET = 5;
export const MSG_LOG = 6;
export const MSG_CLIENT = 7;
export const MSG_ERROR_UTF8 = 8;
export const MSG_REDO = 9;
export const MSG_STATS = 10;
export const MSG_IO_ERROR = 22;
export const MSG_IO_TIMEOUT = 33;
export const MSG_NOOP = 42;
export const MSG_ERROR_EXIT = 86;
export const MSG_SUCCESS = 100;
export const MSG_DELETED = 101;
export const MSG_NO_SEND = 102;

export const MSG_NAMES: Readonly<Record<number, string>> = {
  [MSG_DATA]: 'MSG_DATA',
  [MSG_ERROR_XFER]: 'MSG_ERROR_XFER',
  [MSG_INFO]: 'MSG_INFO',
  [MSG_ERROR]: 'MSG_ERROR',
  [MSG_WARNING]: 'MSG_WARNING',
  [MSG_ERROR_SOCKET]: 'MSG_ERROR_SOCKET',
  [MSG_LOG]: 'MSG_LOG',
  [MSG_CLIENT]: 'MSG_CLIENT',
  [MSG_ERROR_UTF8]: 'MSG_ERROR_UTF8',
  [MSG_REDO]: 'MSG_REDO',
  [MSG_STATS]: 'MSG_STATS',
  [MSG_IO_ERROR]: 'MSG_IO_ERROR',
  [MSG_IO_TIMEOUT]: 'MSG_IO_TIMEOUT',
  [MSG_NOOP]: 'MSG_NOOP',
  [MSG_ERROR_EXIT]: 'MSG_ERROR_EXIT',
  [MSG_SUCCESS]: 'MSG_SUCCESS',
  [MSG_DELETED]: 'MSG_DELETED',
  [MSG_NO_SEND]: 'MSG_NO_SEND',
};

/** Largest payload a frame header can carry (24 bits). */
export const MAX_FRAME = 0xffffff;
/** Our data frames, like rsync's own writer (IO_BUFFER_SIZE). */
export const DATA_FRAME = 32 * 1024;
/** Longest out-of-band message we hold (text or int); rsync bounds these by BIGPATHBUFLEN. */
export const MAX_MESSAGE = 64 * 1024;

export interface FrameHeader {
  code: number;
  length: number;
}

// rsync/io.c: send_msg (header part) [mplex-frame]
export function encodeFrameHeader(code: number, length: number): Buffer {
  if (length < 0 || length > MAX_FRAME) throw new RangeError(`frame length ${length}`);
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32LE((((MPLEX_BASE + code) << 24) | length) >>> 0, 0);
  return header;
}

// rsync/io.c: read_a_msg (header part) [mplex-frame]
export function decodeFrameHeader(bytes: Uint8Array, at = 0): FrameHeader {
  const word = (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
  const tag = word >>> 24;
  if (tag < MPLEX_BASE) {
    throw new ProtocolError(`unexpected tag ${tag} in the multiplexed stream (not a frame header)`, {
      exitCode: EXIT.STREAMIO,
    });
  }
  return { code: tag - MPLEX_BASE, length: word & 0xffffff };
}

/** What arrives out of band. Text messages are raw bytes, normally ending in `\n`. */
export interface MessageHandler {
  (code: number, payload: Buffer): void;
}

/**
 * Reads frames from `raw` and yields MSG_DATA payload bytes as the supply of the logical stream.
 * Out-of-band messages go to `onMessage`; error texts (MSG_ERROR, MSG_ERROR_XFER) are also
 * remembered so that the MSG_ERROR_EXIT (or end of stream) that follows rejects the pending read
 * with a RemoteError carrying them.
 */
export class Demultiplexer {
  private dataLeft = 0;
  /** MSG_ERROR and MSG_ERROR_XFER texts received so far, verbatim. */
  readonly errors: string[] = [];
  /** io_error bits from MSG_IO_ERROR. */
  ioError = 0;
  /** Set once the peer has sent MSG_ERROR_EXIT with a code (it then waits for our empty reply). */
  peerExitCode: number | null = null;

  constructor(
    /**
     * The framed stream underneath. Read directly only where rsync pauses the frames: a
     * --files-from list forwarded below protocol 31 travels unframed (files-from.ts).
     */
    readonly raw: ByteReader,
    private readonly onMessage: MessageHandler,
  ) {}

  /** Next slice of MSG_DATA payload, or null at end of stream. */
  // rsync/io.c: read_a_msg [mplex-in] [mplex-error]
  readonly pull = async (): Promise<Uint8Array | null> => {
    for (;;) {
      if (this.dataLeft > 0) {
        const some = await this.raw.readSome(this.dataLeft).catch((e) => this.wrapEnd(e));
        if (some === null) return this.endOfStream();
        this.dataLeft -= some.length;
        return some;
      }
      let header: Buffer;
      try {
        if (this.raw.buffered === 0) {
          const first = await this.raw.readSome(4);
          if (first === null) return this.endOfStream();
          header = first.length === 4 ? first : Buffer.concat([first, await this.raw.readBuf(4 - first.length)]);
        } else {
          header = await this.raw.readBuf(4);
        }
      } catch (e) {
        return this.wrapEnd(e);
      }
      const { code, length } = decodeFrameHeader(header);
      if (code === MSG_DATA) {
        this.dataLeft = length; // zero-length MSG_DATA is a keep-alive
        continue;
      }
      if (length > MAX_MESSAGE) {
        throw new ProtocolError(`${MSG_NAMES[code] ?? `message ${code}`} of ${length} bytes exceeds ${MAX_MESSAGE}`, {
          exitCode: EXIT.STREAMIO,
        });
      }
      const payload = Buffer.from(await this.raw.readBuf(length).catch((e) => this.wrapEnd(e)));
      this.dispatch(code, payload);
    }
  };

  private dispatch(code: number, payload: Buffer): void {
    switch (code) {
      case MSG_ERROR:
      case MSG_ERROR_XFER: // below protocol 30 the daemon sends its fatal errors this way
        this.errors.push(payload.toString('utf8'));
        this.onMessage(code, payload);
        return;
      case MSG_ERROR_EXIT: {
        if (payload.length !== 0 && payload.length !== 4) {
          throw new ProtocolError(`MSG_ERROR_EXIT with ${payload.length} bytes`, { exitCode: EXIT.STREAMIO });
        }
        const exitCode = payload.length === 4 ? payload.readInt32LE(0) : EXIT.PARTIAL;
        if (payload.length === 4) this.peerExitCode = exitCode;
        throw new RemoteError(this.errors.slice(), exitCode);
      }
      case MSG_IO_ERROR:
        if (payload.length !== 4) throw new ProtocolError(`MSG_IO_ERROR with ${payload.length} bytes`);
        this.ioError |= payload.readInt32LE(0);
        this.onMessage(code, payload);
        return;
      case MSG_INFO:
      case MSG_WARNING:
      case MSG_IO_TIMEOUT:
      case MSG_NOOP:
      case MSG_SUCCESS:
      case MSG_DELETED:
      case MSG_NO_SEND:
        this.onMessage(code, payload);
        return;
      default:
        // MSG_ERROR_SOCKET, MSG_LOG, MSG_CLIENT, MSG_REDO, MSG_STATS, ... never travel on a socket.
        throw new ProtocolError(`unexpected ${MSG_NAMES[code] ?? `message code ${code}`} from the daemon`, {
          exitCode: EXIT.STREAMIO,
        });
    }
  }

  /** End of stream: after MSG_ERROR texts it is the daemon's fatal error, else a plain EOF. */
  private endOfStream(): null {
    if (this.errors.length) throw new RemoteError(this.errors.slice(), EXIT.STREAMIO);
    return null;
  }

  private wrapEnd(e: unknown): never {
    if (this.errors.length) throw new RemoteError(this.errors.slice(), EXIT.STREAMIO, { cause: e });
    throw e;
  }
}

/** Start reading the peer's output as frames. Returns the demultiplexer (its error state). */
// rsync/io.c: io_start_multiplex_in [mplex-in]
export function startMultiplexIn(reader: ByteReader, onMessage: MessageHandler): Demultiplexer {
  const raw = reader.detachRaw();
  const demux = new Demultiplexer(raw, onMessage);
  reader.setSupply(demux.pull);
  return demux;
}

/** From now on the writer's output travels as MSG_DATA frames (of at most 32 KiB each). */
// rsync/io.c: io_start_multiplex_out [mplex-out]
export function startMultiplexOut(writer: ByteWriter): void {
  writer.startFraming();
}

/** Send an out-of-band message carrying one int32 (MSG_IO_ERROR, MSG_NO_SEND, MSG_ERROR_EXIT, ...). */
// rsync/io.c: send_msg_int
export function writeMessageInt(writer: ByteWriter, code: number, value: number): Promise<void> {
  const payload = Buffer.alloc(4);
  payload.writeInt32LE(value, 0);
  return writeMessage(writer, code, payload);
}

/** Send an out-of-band message after flushing pending data, so the order is kept. */
// rsync/io.c: send_msg
export async function writeMessage(writer: ByteWriter, code: number, payload: Uint8Array): Promise<void> {
  if (!writer.multiplexed) throw new Error('writeMessage before multiplexing started');
  await writer.flush();
  await writer.sink.write(Buffer.concat([encodeFrameHeader(code, payload.length), payload]));
}

/**
 * What one side does with the peer's out-of-band notices: print them, log them, adopt a timeout.
 * A side passes only the callbacks that concern it; a notice with no callback is dropped.
 *
 * Texts are handed over as the peer's bytes, not decoded: rsync writes a message text through as
 * bytes (log.c rwrite, escaping only what the terminal cannot show), and a daemon's texts carry
 * file names, which are bytes in no particular charset. Turning them into characters is the
 * printer's job (src/transfer/output.ts messageText does it as rwrite does).
 */
export interface PeerMessageSink {
  /** MSG_INFO: a line for stdout, normally ending in '\n'. */
  info?: (text: Buffer) => void;
  /** MSG_ERROR, MSG_ERROR_XFER, MSG_WARNING: a line for stderr. */
  error?: (text: Buffer) => void;
  /** MSG_DELETED: a name the peer deleted (a directory's arrives with a trailing NUL, dropped here). */
  deleted?: (name: Buffer, isDir: boolean) => void;
  /** MSG_IO_TIMEOUT: the daemon module's `timeout` (protocol 31+), the int32 payload as sent. */
  ioTimeout?: (payload: Buffer) => void;
}

/**
 * The peer's out-of-band notices, decoded and handed to a sink; `handle` is the Demultiplexer's
 * MessageHandler. Counts the MSG_ERROR_XFER texts (rsync's got_xfer_error: exit 23 at the end).
 * The Demultiplexer itself keeps what decides the session (MSG_ERROR texts, MSG_ERROR_EXIT,
 * MSG_IO_ERROR bits); the notices below only inform.
 */
export class PeerMessages {
  /** MSG_ERROR_XFER texts received (rsync's got_xfer_error). */
  xferErrors = 0;

  constructor(private readonly sink: PeerMessageSink) {}

  // rsync/io.c: read_a_msg (the text, MSG_DELETED and MSG_IO_TIMEOUT cases) and log.c rwrite
  readonly handle: MessageHandler = (code, payload) => {
    switch (code) {
      case MSG_INFO:
        this.sink.info?.(payload);
        return;
      case MSG_ERROR_XFER:
        this.xferErrors++;
        this.sink.error?.(payload);
        return;
      case MSG_ERROR:
      case MSG_WARNING:
        this.sink.error?.(payload);
        return;
      case MSG_DELETED: {
        const isDir = payload.length > 0 && payload[payload.length - 1] === 0;
        this.sink.deleted?.(isDir ? payload.subarray(0, -1) : payload, isDir);
        return;
      }
      case MSG_IO_TIMEOUT:
        this.sink.ioTimeout?.(payload);
        return;
      default:
        // MSG_IO_ERROR (its bits are the Demultiplexer's), MSG_NOOP (a keep-alive), MSG_SUCCESS and
        // MSG_NO_SEND: nothing we do depends on them.
        return;
    }
  };
}
