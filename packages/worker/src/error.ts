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
export class WorkerError extends Error {
  /** Which problem this is; see {@link WorkerErrorCode} for the table. */
  readonly code: WorkerErrorCode;
  /** Which part of Sheepdog raised it: printed as `[sheepdog] [worker]` before the message. */
  readonly origin = 'worker';
  /** The HTTP status, when the server answered. */
  readonly status: number | undefined;

  /**
   * @param code - Which problem this is.
   * @param message - What went wrong and what to do; without a prefix: printers add `[sheepdog] [worker]`.
   * @param options - `cause` when wrapping another error; `status` when the server answered.
   */
  constructor(
    code: WorkerErrorCode,
    message: string,
    options: { cause?: unknown; status?: number } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'WorkerError';
    this.code = code;
    this.status = options.status;
  }
}

/**
 * Whether `error` is a {@link WorkerError}, with `code` when one is given. It checks the name and
 * code rather than `instanceof`, so an error from another copy of the package counts too.
 */
export function isWorkerError(error: unknown, code?: WorkerErrorCode): error is WorkerError {
  if (!(error instanceof Error) || error.name !== 'WorkerError') return false;
  const own = (error as { code?: unknown }).code;
  return code === undefined
    ? (WORKER_ERROR_CODES as readonly unknown[]).includes(own)
    : own === code;
}
