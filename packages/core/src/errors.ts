/**
 * Codes carried by {@link SheepdogError}. Check `error.code`, not `instanceof`, across packages.
 *
 * | code | meaning |
 * |---|---|
 * | `INVALID_CONFIG` | the config object has problems; every one is listed in the message |
 * | `UNKNOWN_BACKEND` | `backend` names no built-in backend |
 * | `SUBMIT_FAILED` | the backend could not submit the job |
 * | `UNKNOWN_REQUEST` | no request with that id in the database file |
 * | `NOT_RESUMABLE` | the request was stored without what a later process needs to serve it (its port, its backend) |
 * | `PORT_IN_USE` | the port the request's workers report to is taken, most likely by the process still serving it |
 * | `TIMEOUT` | `timeout` elapsed before every task finished; open tasks were cancelled |
 * | `CANCELLED` | the `signal` was aborted, or tasks were cancelled from elsewhere |
 */
export type SheepdogErrorCode =
  | 'INVALID_CONFIG'
  | 'UNKNOWN_BACKEND'
  | 'SUBMIT_FAILED'
  | 'UNKNOWN_REQUEST'
  | 'NOT_RESUMABLE'
  | 'PORT_IN_USE'
  | 'TIMEOUT'
  | 'CANCELLED';

/** Where one task of a request stands, as carried by `TIMEOUT` and `CANCELLED` errors. */
export interface TaskStatus {
  /** The task's position in `args`, from 1. */
  readonly jobIndex: number;
  /** `pending`, `running`, `done`, `failed`, `lost` or `cancelled`. */
  readonly state: 'pending' | 'running' | 'done' | 'failed' | 'lost' | 'cancelled';
  /** How many times a worker fetched the task. */
  readonly attempts: number;
  /** Why the task was lost or cancelled, when known. */
  readonly reason: string | null;
}

/** What a {@link SheepdogError} may carry besides its code. */
export interface SheepdogErrorOptions {
  /** The error this one wraps. */
  cause?: unknown;
  /** The request the error is about. */
  requestId?: number;
  /** Partial results in argument order, `null` where a task has none. */
  results?: unknown[];
  /** Every task's state, in argument order. */
  states?: TaskStatus[];
}

/** The one error class of the `sheepdog` package. */
export class SheepdogError extends Error {
  /** What went wrong, from the table on {@link SheepdogErrorCode}. */
  readonly code: SheepdogErrorCode;
  /** The request the error is about, when there is one. */
  readonly requestId: number | undefined;
  /**
   * For `TIMEOUT` and `CANCELLED`: the results that did arrive, in argument order, `null` where
   * a task has none.
   */
  readonly results: unknown[] | undefined;
  /** For `TIMEOUT` and `CANCELLED`: every task's state, attempts and reason, in argument order. */
  readonly states: TaskStatus[] | undefined;

  constructor(code: SheepdogErrorCode, message: string, options: SheepdogErrorOptions = {}) {
    super(`[sheepdog] ${message}`, 'cause' in options ? { cause: options.cause } : undefined);
    this.name = 'SheepdogError';
    this.code = code;
    this.requestId = options.requestId;
    this.results = options.results;
    this.states = options.states;
  }
}
