export { workerBundle } from './bundle.js';
export { JobFileError, type JobFileErrorCode } from './error.js';
export {
  formatOption,
  gridEngineOptions,
  type JobFileOptions,
  jobFile,
  type SchedulerOption,
} from './job-file.js';
