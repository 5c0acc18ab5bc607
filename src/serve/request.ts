// What a connection hands its module session, and the session its role: the open connection,
// the module, who the client is, and (for the role) its parsed options. Types only, so the
// session, the roles and their ways out all take them from here.
import type { ByteReader, ByteWriter } from '../../protocol/io.js';
import type { ServerArgs } from '../../protocol/server-args.js';
import type { ExitCode, MemoryBudget } from '../../protocol/errors.js';
import type { DaemonSocket } from '../transfer/socket.js';
import type { ModuleConfig } from './config.js';
import type { DaemonLog, Peer } from './log.js';

/** Everything a module session needs, in whichever process it runs. */
export interface ModuleSession {
  reader: ByteReader;
  writer: ByteWriter;
  io: DaemonSocket;
  peer: Peer;
  protocol: number;
  module: ModuleConfig;
  /** The authenticated user ('' for an anonymous module). */
  user: string;
  readOnly: boolean;
  log: DaemonLog;
  version: string;
  /** How long the client may take to send its argument list (seconds: the text phase's bound). */
  argsSeconds: number;
}

/** What a connection brings to its role: the module session, the client's options, the timeout. */
export interface RoleRequest extends ModuleSession {
  args: ServerArgs;
  /** The I/O timeout in force (seconds, 0 = none), told to the client from protocol 31. */
  timeout: number;
  /** What the client's lists may make this connection hold (memory.ts). */
  memory: MemoryBudget;
}

export interface RoleResult {
  exitCode: ExitCode;
  /** The file list's total size (the log's "total size"). */
  totalSize: number;
}
