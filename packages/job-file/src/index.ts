export { workerBundle } from './bundle.js';
export {
  isJobFileError,
  JOB_FILE_ERROR_CODES,
  JobFileError,
  type JobFileErrorCode,
} from './error.js';
export {
  formatOption,
  gridEngineOptions,
  type JobFileOptions,
  jobFile,
  type SchedulerOption,
} from './job-file.js';
