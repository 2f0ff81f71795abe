import { errorGuard, PartError } from '@sheepdog/protocol';
/**
 * Codes carried by {@link SheepdogError}; test them with {@link isSheepdogError}.
 *
 * | code | meaning |
 * |---|---|
 * | `INVALID_CONFIG` | the config object has problems; every one is in `issues` and in the message |
 * | `UNKNOWN_BACKEND` | `backend` names no built-in backend |
 * | `SUBMIT_FAILED` | the backend could not submit the job |
 * | `BACKEND_FAILED` | the backend could not be asked about its jobs, or answered something it cannot read |
 * | `UNKNOWN_REQUEST` | no request with that id in the database file |
 * | `NOT_RESUMABLE` | the request was stored without what a later process needs to serve it (its port, its backend) |
 * | `PORT_IN_USE` | the port the request's workers report to is taken, most likely by the process still serving it |
 * | `TIMEOUT` | `timeout` elapsed before every task finished; open tasks were cancelled |
 * | `CANCELLED` | the `signal` was aborted, or tasks were cancelled from elsewhere |
 */
export const SHEEPDOG_ERROR_CODES = [
  'INVALID_CONFIG',
  'UNKNOWN_BACKEND',
  'SUBMIT_FAILED',
  'BACKEND_FAILED',
  'UNKNOWN_REQUEST',
  'NOT_RESUMABLE',
  'PORT_IN_USE',
  'TIMEOUT',
  'CANCELLED',
] as const;

/** One of {@link SHEEPDOG_ERROR_CODES}. */
export type SheepdogErrorCode = (typeof SHEEPDOG_ERROR_CODES)[number];

/** One problem of an `INVALID_CONFIG` error: the config key's path and what is wrong with it. */
export interface ConfigIssue {
  /** The key, dotted for nested ones (`geOpts.0`), or `(config)` for the object as a whole. */
  readonly path: string;
  /** What is wrong and, where it helps, what would be right. */
  readonly message: string;
}

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
  /** For `INVALID_CONFIG`: every problem, in the order the message lists them. */
  issues?: readonly ConfigIssue[];
}

/** The one error class of the `sheepdog` package. */
export class SheepdogError extends PartError<SheepdogErrorCode> {
  override readonly name = 'SheepdogError';
  /** Core's own errors; {@link formatError} prints them as `[sheepdog]` alone. */
  readonly origin = 'core';
  /** The request the error is about, when there is one. */
  readonly requestId: number | undefined;
  /**
   * For `TIMEOUT` and `CANCELLED`: the results that did arrive, in argument order, `null` where
   * a task has none.
   */
  readonly results: unknown[] | undefined;
  /** For `TIMEOUT` and `CANCELLED`: every task's state, attempts and reason, in argument order. */
  readonly states: TaskStatus[] | undefined;
  /** For `INVALID_CONFIG`: every problem with its key, so a caller can point at each one. */
  readonly issues: readonly ConfigIssue[] | undefined;

  /**
   * @param code - what went wrong, from {@link SheepdogErrorCode}
   * @param message - what happened and what to do, without a prefix ({@link formatError} adds it)
   * @param options - the cause, the request and what it carries
   */
  constructor(code: SheepdogErrorCode, message: string, options: SheepdogErrorOptions = {}) {
    super(code, message, options);
    this.requestId = options.requestId;
    this.results = options.results;
    this.states = options.states;
    this.issues = options.issues;
  }
}

/** Whether `error` is a {@link SheepdogError} (with `code`, when given), by name and code. */
export const isSheepdogError = errorGuard<SheepdogError, SheepdogErrorCode>(
  'SheepdogError',
  SHEEPDOG_ERROR_CODES,
);

/**
 * The part of Sheepdog an error comes from (`storage`, `deployer`, `core`, …): every Sheepdog
 * error class carries it as `origin`, and errors from elsewhere have none.
 */
export function originOf(error: unknown): string | undefined {
  const origin = error instanceof Error ? (error as { origin?: unknown }).origin : undefined;
  return typeof origin === 'string' ? origin : undefined;
}

/**
 * An error as Sheepdog prints it on a line of its own: `[sheepdog] [deployer] cannot connect …`
 * for a part's error, `[sheepdog] …` for core's, the bare message for anything else.
 */
export function formatError(error: unknown): string {
  const origin = originOf(error);
  if (origin === undefined) return error instanceof Error ? error.message : String(error);
  return `[sheepdog] ${origin === 'core' ? '' : `[${origin}] `}${(error as Error).message}`;
}

/**
 * An error as it reads inside another message: `[deployer] cannot connect …` for a part's
 * error, the bare message for core's own and for anything else.
 */
export function describeError(error: unknown): string {
  const origin = originOf(error);
  const message = error instanceof Error ? error.message : String(error);
  return origin === undefined || origin === 'core' ? message : `[${origin}] ${message}`;
}
