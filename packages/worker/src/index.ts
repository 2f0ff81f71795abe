export { EXIT_CODES, type ExitCode, type SubmitAnswer } from '@sheepdog/protocol';
export {
  Client,
  type ClientOptions,
  type TaskDetails,
  type TaskOutcome,
} from './client.js';
export { isWorkerError, WORKER_ERROR_CODES, WorkerError, type WorkerErrorCode } from './error.js';
export type { HttpOptions } from './internal/http.js';
export { type LeaseOptions, type LeaseRun, type LeaseSummary, runLeases } from './lease.js';
export { type MainOptions, main, resolveJobIndex } from './main.js';
