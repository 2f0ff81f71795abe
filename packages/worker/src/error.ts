import { errorGuard, PartError } from '@sheepdog/protocol';

/**
 * Why the worker could not do its part.
 *
 * | code | meaning |
 * |---|---|
 * | `HTTP_FAILED` | the server could not be reached (or kept answering 5xx/408/429) after every retry |
 * | `HTTP_STATUS` | the server refused the request with a status that retrying cannot fix (401, 404, 413, …) |
 * | `BAD_RESPONSE` | the server answered 2xx with a body that is not what the protocol says |
 * | `BAD_OPTIONS` | `main()` or `Client` got options it cannot use (no URL, bad request id, …) |
 * | `NO_TASK_ID` | no array task id in the environment (`SHEEPDOG_TASK_ID`, `SLURM_ARRAY_TASK_ID`, `SGE_TASK_ID`) |
 * | `BAD_TASK_ID` | the task id is not a positive integer, or beyond the job file's `indices` |
 * | `OUT_OF_ORDER` | `run()` before `getDetails()`, or `submitResults()` before `run()` |
 * | `TASK_DIED` | with `maxHeapMb`, the task's process ended without reporting (out of memory, killed, `process.exit`); posted as the task's error |
 */
export const WORKER_ERROR_CODES = [
  'HTTP_FAILED',
  'HTTP_STATUS',
  'BAD_RESPONSE',
  'BAD_OPTIONS',
  'NO_TASK_ID',
  'BAD_TASK_ID',
  'OUT_OF_ORDER',
  'TASK_DIED',
] as const;

/** One of {@link WORKER_ERROR_CODES}. */
export type WorkerErrorCode = (typeof WORKER_ERROR_CODES)[number];

/** The one error class of `@sheepdog/worker`; test it with {@link isWorkerError}. */
export class WorkerError extends PartError<WorkerErrorCode> {
  override readonly name = 'WorkerError';
  readonly origin = 'worker';
  /** The HTTP status, when the server answered. */
  readonly status: number | undefined;

  /**
   * @param code - which problem this is, from {@link WorkerErrorCode}
   * @param message - what went wrong and what to do, without a prefix
   * @param options - `cause` when wrapping another error; `status` when the server answered
   */
  constructor(
    code: WorkerErrorCode,
    message: string,
    options: { cause?: unknown; status?: number } = {},
  ) {
    super(code, message, { cause: options.cause });
    this.status = options.status;
  }
}

/** Whether `error` is a {@link WorkerError} (with `code`, when given), by name and code. */
export const isWorkerError = errorGuard<WorkerError, WorkerErrorCode>(
  'WorkerError',
  WORKER_ERROR_CODES,
);
