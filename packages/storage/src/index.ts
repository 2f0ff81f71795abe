/**
 * `@sheepdog/storage`: SQLite persistence for Sheepdog requests, tasks, results and errors.
 * @module
 */
export * as schema from './schema.js';
export { TASK_STATES, type TaskState } from './schema.js';
export {
  type ArgsAndError,
  type ArgsAndResult,
  type JobRecord,
  type LeasedTask,
  type LeaseOptions,
  type NewRequestMeta,
  type Outcome,
  type OutcomeStatus,
  type RequestSummary,
  Storage,
  type TaskDetails,
  type TaskStateRow,
} from './storage.js';
export {
  isStorageError,
  STORAGE_ERROR_CODES,
  StorageError,
  type StorageErrorCode,
} from './storage-error.js';
