export type { Backend, JobSpec, Submission, TaskReport } from './backend.js';
export { type LocalBackendOptions, local } from './backends/local.js';
export {
  type BuiltinBackendName,
  builtinBackends,
  parseConfig,
  type ResolvedConfig,
  type SheepdogConfig,
} from './config.js';
export { SheepdogError, type SheepdogErrorCode } from './errors.js';
export {
  type ArgsOf,
  type GetResultsOptions,
  getErrors,
  getResults,
  type ModuleFunction,
  map,
  mapAsync,
  type Namespace,
  type ResultOf,
} from './map.js';
