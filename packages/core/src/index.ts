export type { RequestSummary, TaskState } from '@sheepdog/storage';
export type { Backend, JobSpec, Submission, TaskReport } from './backend.js';
export type { GridEngineOptions } from './backends/gridengine.js';
export { gridengine, slurm } from './backends/lazy.js';
export { type LocalBackendOptions, local } from './backends/local.js';
export type { SlurmOptions } from './backends/slurm.js';
export {
  type BuiltinBackendName,
  builtinBackends,
  parseConfig,
  parseStoredConfig,
  type ResolvedConfig,
  type SheepdogConfig,
  type StoredConfig,
} from './config.js';
export {
  type ConfigIssue,
  describeError,
  formatError,
  isSheepdogError,
  originOf,
  SHEEPDOG_ERROR_CODES,
  SheepdogError,
  type SheepdogErrorCode,
  type SheepdogErrorOptions,
  type TaskStatus,
} from './errors.js';
export {
  type ArgsOf,
  type ArgsSource,
  type GetResultsOptions,
  getErrors,
  getResults,
  getTaskStates,
  type ModuleFunction,
  map,
  mapAsync,
  type Namespace,
  type ResultOf,
} from './map.js';
export { type MapItem, mapIter } from './map-iter.js';
export { listRequests, requestSummary, retriesDue, unfinishedRequests } from './queries.js';
export {
  cancel,
  type RetryOptions,
  resume,
  retry,
  type ServeOptions,
  type ServeReport,
  serve,
} from './resume.js';
export { isSettled } from './rules.js';
