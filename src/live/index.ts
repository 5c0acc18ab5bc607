// The live mirror's public surface (docs/live.md).
export { startLiveMirror, subtreeSafe, type LiveMirror, type LiveMirrorOptions, type LiveMirrorStatus, type LiveTarget, type StopResult, type DeletePhase, type SyncStateStatus } from './mirror.js';
export { describeTarget } from './runner.js';
export type { LogFn, LogLevel, RetryOptions, TargetStatus, TargetState, PushFn, RunnerStopResult } from './runner.js';
export { TargetRefusedError, isRefusal, refusalText } from './failure.js';
export { PendingSet, pushRoots, combine, commonAncestor, type PendingEntry, type PendingKind, type PushRoot } from './plan.js';
export { StateJournal, startupChanges, stateIdentity, defaultStatePath, type StartupMode, type PushRecorder } from './state.js';
export { StateFileError, readStateFile, type StateIdentity, type StateRecord } from './state-file.js';
