// The live mirror's public surface (docs/live.md).
export { startLiveMirror, subtreeSafe, type LiveMirror, type LiveMirrorOptions, type LiveMirrorStatus, type LiveTarget, type StopResult } from './mirror.js';
export type { LogFn, LogLevel, RetryOptions, TargetStatus, TargetState, PushFn } from './runner.js';
export { PendingSet, pushRoots, combine, commonAncestor, type PendingEntry, type PendingKind, type PushRoot } from './plan.js';
