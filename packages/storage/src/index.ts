/**
 * `@sheepdog/storage`: SQLite persistence for Sheepdog requests, tasks, results and errors.
 * @module
 */
export * as schema from './schema.js';
export { TASK_STATES, type TaskState } from './schema.js';
export { Storage } from './storage.js';
export {
  isStorageError,
  STORAGE_ERROR_CODES,
  StorageError,
  type StorageErrorCode,
} from './storage-error.js';
export type * from './types.js';
