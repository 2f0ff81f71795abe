/**
 * Why a job file could not be rendered.
 *
 * | code | meaning |
 * |---|---|
 * | `BAD_OPTIONS` | an option is missing, malformed, or would break the file (a line break in an option, a shell path with spaces, a `-t` option, …) |
 * | `UNREPRESENTABLE_OPTION` | a scheduler option value holds a quote character, which Grid Engine strips from directive lines; pass it on the command line instead |
 * | `BUNDLE_NOT_FOUND` | the worker bundle (`@sheepdog/worker/bundle`) is missing: build `@sheepdog/worker` first |
 */
export type JobFileErrorCode = 'BAD_OPTIONS' | 'UNREPRESENTABLE_OPTION' | 'BUNDLE_NOT_FOUND';

/** The one error class of `@sheepdog/job-file`; check `code`, not `instanceof`, across packages. */
export class JobFileError extends Error {
  /** Which problem this is; see {@link JobFileErrorCode} for the table. */
  readonly code: JobFileErrorCode;

  /**
   * @param code - Which problem this is.
   * @param message - What went wrong and what to do; the `[sheepdog] [job-file] ` prefix is added.
   * @param options - `cause` when wrapping another error.
   */
  constructor(code: JobFileErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[sheepdog] [job-file] ${message}`, options);
    this.name = 'JobFileError';
    this.code = code;
  }
}
