import { errorGuard, PartError } from '@sheepdog/protocol';

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
export class JobFileError extends PartError<JobFileErrorCode> {
  override readonly name = 'JobFileError';
  readonly origin = 'job-file';
}

/** Whether `error` is a {@link JobFileError} (with `code`, when given), by name and code. */
export const isJobFileError = errorGuard<JobFileError, JobFileErrorCode>(
  'JobFileError',
  JOB_FILE_ERROR_CODES,
);
