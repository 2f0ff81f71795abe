/**
 * `@sheepdog/protocol`: what both ends of Sheepdog's worker wire agree on. Dependency-free, so
 * the worker's one-file bundle carries it.
 * @module
 */
export {
  type JsonOutcome,
  type LeaseAnswer,
  type LeaseAnswerTask,
  type LeaseBody,
  MAX_JSON_OUTCOMES,
  MAX_LEASE_MS,
  MAX_LEASE_TASKS,
  type RenewAnswer,
  type RenewBody,
  type ResultsAnswer,
  type SubmitAnswer,
  type TaskAnswer,
  type WireErrorBody,
} from './bodies.js';
export { errorGuard, PartError } from './errors.js';
export {
  EXIT_CODE_NAMES,
  EXIT_CODES,
  type ExitCode,
  type ExitCodeName,
  isExitCode,
} from './exit-codes.js';
export {
  decodeOutcomeFrames,
  encodeOutcomeFrames,
  OUTCOME_FRAMES_TYPE,
  OUTCOME_KINDS,
  type OutcomeFrame,
  type OutcomeKind,
} from './outcome-frames.js';
export { ROUTES, type RouteName, type RouteParams, routeUrl } from './routes.js';
export {
  OUTCOME_STATUSES,
  type OutcomeStatus,
  TASK_STATES,
  type TaskState,
} from './states.js';
export { WIRE_ERROR_CODES, type WireErrorCode } from './wire-errors.js';
