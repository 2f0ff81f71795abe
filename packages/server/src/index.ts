/**
 * `@sheepdog/server`: the HTTP server Sheepdog workers fetch tasks from and post results to.
 * @module
 */
export {
  type AppEnv,
  type AppOptions,
  createApp,
  DEFAULT_BODY_LIMIT,
  type TaskEvent,
  type WireErrorCode,
} from './app.js';
export {
  addRequestToken,
  type CreatedRequest,
  createRequest,
  createRequestAsync,
} from './create-request.js';
export {
  decodeOutcomeFrames,
  encodeOutcomeFrames,
  OUTCOME_FRAMES_TYPE,
  type OutcomeFrame,
} from './outcome-frames.js';
export { getServer, type ServerOptions, type SheepdogServer, type TaskListener } from './server.js';
export {
  isServerError,
  SERVER_ERROR_CODES,
  ServerError,
  type ServerErrorCode,
} from './server-error.js';
