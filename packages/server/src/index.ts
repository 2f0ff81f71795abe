/**
 * `@sheepdog/server`: the HTTP server Sheepdog workers fetch tasks from and post results to.
 * @module
 */

// What the worker and the server agree on lives in @sheepdog/protocol; these were exported from
// here before it existed, and still are.
export {
  decodeOutcomeFrames,
  encodeOutcomeFrames,
  OUTCOME_FRAMES_TYPE,
  type OutcomeFrame,
  type WireErrorCode,
} from '@sheepdog/protocol';
export {
  type AppEnv,
  type AppOptions,
  createApp,
  DEFAULT_BODY_LIMIT,
  type TaskEvent,
} from './app.js';
export {
  addRequestToken,
  type CreatedRequest,
  createRequest,
  createRequestAsync,
} from './create-request.js';
export { getServer, type ServerOptions, type SheepdogServer, type TaskListener } from './server.js';
export {
  isServerError,
  SERVER_ERROR_CODES,
  ServerError,
  type ServerErrorCode,
} from './server-error.js';
