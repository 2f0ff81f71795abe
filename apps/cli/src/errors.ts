import { errorGuard, PartError } from '@sheepdog/protocol';

/**
 * Codes carried by {@link CliError}. Test them with {@link isCliError}.
 *
 * | code | exit status | meaning |
 * |---|---|---|
 * | `USAGE` | 2 | the command line, the arguments file or the config has problems; every one is listed |
 * | `NO_DATABASE` | 2 | the database file does not exist |
 * | `UNKNOWN_REQUEST` | 2 | no request with that id in the database file |
 * | `RUN_FAILED` | 1 | the request could not be submitted, served or cancelled; the message says why |
 */
export const CLI_ERROR_CODES = ['USAGE', 'NO_DATABASE', 'UNKNOWN_REQUEST', 'RUN_FAILED'] as const;

/** One of {@link CLI_ERROR_CODES}. */
export type CliErrorCode = (typeof CLI_ERROR_CODES)[number];

const EXIT_STATUS: Record<CliErrorCode, number> = {
  USAGE: 2,
  NO_DATABASE: 2,
  UNKNOWN_REQUEST: 2,
  RUN_FAILED: 1,
};

/** The one error class of `@sheepdog/cli`; the command prints it and exits with `exitStatus`. */
export class CliError extends PartError<CliErrorCode> {
  override readonly name = 'CliError';
  readonly origin = 'cli';
  /** The process exit status this error ends the command with. */
  readonly exitStatus: number;

  /**
   * @param code - what went wrong, from {@link CliErrorCode}
   * @param message - what happened and what to do, without a prefix
   * @param options - `cause` when wrapping another error
   */
  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.exitStatus = EXIT_STATUS[code];
  }
}

/** Whether `error` is a {@link CliError} (with `code`, when given), by name and code. */
export const isCliError = errorGuard<CliError, CliErrorCode>('CliError', CLI_ERROR_CODES);

/** A {@link CliError} `USAGE` that lists every problem, one per line, so they can be fixed in one go. */
export function usageError(what: string, problems: readonly string[]): CliError {
  return new CliError(
    'USAGE',
    `${what}, fix these and try again:\n${problems.map((p) => `  ${p}`).join('\n')}`,
  );
}
