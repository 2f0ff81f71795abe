/**
 * Codes carried by {@link SheepdogError}. Check `error.code`, not `instanceof`, across packages.
 *
 * | code | meaning |
 * |---|---|
 * | `INVALID_CONFIG` | the config object has problems; every one is listed in the message |
 * | `UNKNOWN_BACKEND` | `backend` names no built-in backend |
 * | `SUBMIT_FAILED` | the backend could not submit the job |
 * | `UNKNOWN_REQUEST` | no request with that id in the database file |
 * | `TASKS_LOST` | some tasks ended without a result or an error |
 * | `TIMEOUT` | `timeout` elapsed before every task finished |
 * | `CANCELLED` | the `signal` was aborted |
 */
export type SheepdogErrorCode =
  | 'INVALID_CONFIG'
  | 'UNKNOWN_BACKEND'
  | 'SUBMIT_FAILED'
  | 'UNKNOWN_REQUEST'
  | 'TASKS_LOST'
  | 'TIMEOUT'
  | 'CANCELLED';

/** The one error class of the `sheepdog` package. */
export class SheepdogError extends Error {
  /** What went wrong, from the table on {@link SheepdogErrorCode}. */
  readonly code: SheepdogErrorCode;

  constructor(code: SheepdogErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[sheepdog] ${message}`, options);
    this.name = 'SheepdogError';
    this.code = code;
  }
}
