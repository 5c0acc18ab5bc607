// lsyncd as a library: the one public entry (package.json "exports" "."). Push, pull, list and
// mirror against any rsync daemon, watch a tree, serve modules; every error one family
// (RsyncError: a stable `code`, rsync's `exitCode`). The wire library is "lsyncd/protocol", the
// watcher alone "lsyncd/watcher"; nothing else is importable. See docs/api.md and examples/.
export { push, pull, type TransferCallOptions } from './api/transfer.js';
export type { TransferProgress, ProgressFn } from './api/progress.js';
export { list, listEntries, listModules, type ListEntry, type ListOptions, type ModuleListing, type DaemonAddress } from './api/list.js';
export { mirror, type Mirror, type MirrorOptions, type MirrorStatus, type MirrorStopResult } from './api/mirror.js';
export { serve, type Server, type ServeModule, type ServeOptions } from './api/serve.js';
export { watch, type Watcher, type WatchEvent, type WatchEventType, type WatcherOptions, type WatcherStats } from './watcher/index.js';
export type { ConnectOptions, Password, Target, TargetObject, TransferFlags } from './api/options.js';
export type { DeletedItem, EntryType, ItemizedChange, TransferResult, TransferStats } from './api/changes.js';
export type { LogFn, LogLevel, RetryOptions, TargetState, TargetStatus } from './live/index.js';
export type { DeleteWhen } from '../protocol/args.js';

// The error family.
export {
  RsyncError,
  ProtocolError,
  UnsafeNameError,
  NotADaemonError,
  DaemonRefusalError,
  RemoteError,
  ConnectionClosedError,
  SocketError,
  TimeoutError,
  UsageError,
  MemoryCapError,
  EXIT,
  exitCodeName,
  type ExitCode,
} from '../protocol/errors.js';
export { ChmodSyntaxError } from '../protocol/chmod.js';
export { ServerArgsError } from '../protocol/server-args.js';
export { AbortError } from './api/errors.js';
export { WatcherError, type WatcherErrorCode } from './watcher/index.js';
export { TargetRefusedError } from './live/index.js';
export { UnsafePathError } from './transfer/dest-tree.js';
export { ConfigError } from './serve/config.js';
export { LogFileError, LogFormatError } from './serve/log.js';
