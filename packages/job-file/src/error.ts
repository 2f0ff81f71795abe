/**
 * Why a job file could not be rendered.
 *
 * | code | meaning |
 * |---|---|
 * | `BAD_OPTIONS` | an option is missing, malformed, or would break the file (a line break in an option, a shell path with spaces, a `-t` option, …) |
 * | `UNREPRESENTABLE_OPTION` | a scheduler option value holds a quote character, which Grid Engine strips from directive lines; pass it on the command line instead |
 * | `BUNDLE_NOT_FOUND` | the worker bundle (`@sheepdog/worker/bundle`) is missing: build `@sheepdog/worker` first |
 */
export const JOB_FILE_ERROR_CODES = [
  'BAD_OPTIONS',
  'UNREPRESENTABLE_OPTION',
  'BUNDLE_NOT_FOUND',
] as const;

/** One of {@link JOB_FILE_ERROR_CODES}. */
export type JobFileErrorCode = (typeof JOB_FILE_ERROR_CODES)[number];

/** The one error class of `@sheepdog/job-file`; test it with {@link isJobFileError}. */
export class JobFileError extends Error {
  /** Which problem this is; see {@link JobFileErrorCode} for the table. */
  readonly code: JobFileErrorCode;
  /** Which part of Sheepdog raised it: printed as `[sheepdog] [job-file]` before the message. */
  readonly origin = 'job-file';

  /**
   * @param code - Which problem this is.
   * @param message - What went wrong and what to do; without a prefix: printers add `[sheepdog] [job-file]`.
   * @param options - `cause` when wrapping another error.
   */
  constructor(code: JobFileErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JobFileError';
    this.code = code;
  }
}

/**
 * Whether `error` is a {@link JobFileError}, with `code` when one is given. It checks the name and
 * code rather than `instanceof`, so an error from another copy of the package counts too.
 */
export function isJobFileError(error: unknown, code?: JobFileErrorCode): error is JobFileError {
  if (!(error instanceof Error) || error.name !== 'JobFileError') return false;
  const own = (error as { code?: unknown }).code;
  return code === undefined
    ? (JOB_FILE_ERROR_CODES as readonly unknown[]).includes(own)
    : own === code;
}
