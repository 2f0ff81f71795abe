/**
 * The codes of the errors a server answers with.
 * @module
 */

/**
 * Error codes of the JSON body `{ error: { code, message } }` that every non-2xx answer carries.
 *
 * | status | code | when |
 * |---|---|---|
 * | 400 | `INVALID_PARAMS` | `requestId` or `jobIndex` in the path is not a positive safe integer |
 * | 400 | `INVALID_BODY` | the body is empty, or an error body is not UTF-8 text |
 * | 401 | `MISSING_TOKEN` | no `Authorization: Bearer <token>` header |
 * | 401 | `INVALID_TOKEN` | the token is not this request's token |
 * | 404 | `UNKNOWN_REQUEST` | no request with this id in the server's database |
 * | 404 | `UNKNOWN_TASK` | the request has no task with this job index |
 * | 404 | `NOT_FOUND` | no such endpoint |
 * | 409 | `TASK_CANCELLED` | the task was cancelled: no details are served and no result is accepted |
 * | 413 | `BODY_TOO_LARGE` | the body is over the server's `bodyLimit` |
 * | 415 | `UNSUPPORTED_MEDIA_TYPE` | a body sent as a form or JSON instead of raw bytes |
 * | 503 | `STORAGE_UNAVAILABLE` | the database failed or is closing; retry later |
 * | 500 | `INTERNAL` | anything else |
 */
export const WIRE_ERROR_CODES = [
  'INVALID_PARAMS',
  'INVALID_BODY',
  'MISSING_TOKEN',
  'INVALID_TOKEN',
  'UNKNOWN_REQUEST',
  'UNKNOWN_TASK',
  'NOT_FOUND',
  'TASK_CANCELLED',
  'BODY_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'STORAGE_UNAVAILABLE',
  'INTERNAL',
] as const;

/** One code from {@link WIRE_ERROR_CODES}. */
export type WireErrorCode = (typeof WIRE_ERROR_CODES)[number];
