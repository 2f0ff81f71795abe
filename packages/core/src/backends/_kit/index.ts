// What the cluster backends share, so that each rule has one home and gridengine.ts and
// slurm.ts are left with their scheduler's commands and parsers. Internal to core.

export { type BackendErrorOptions, backendError } from './error.js';
export { describeExit, signalName } from './exit.js';
export { type JobFileSettings, renderJobFile, type TaskRange } from './job-file.js';
export { leaseEnded, type WorkerEnd } from './lease.js';
export { CLOCK_SKEW_MS, COMMAND_LIMIT } from './limits.js';
export { keptOnSuccess } from './once.js';
export { remoteFolder } from './remote-home.js';
export type { SchedulerTask } from './scheduler-task.js';
