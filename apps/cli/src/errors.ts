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

/** The one error class of `@sheepdog/cli`; the command prints its message and exits with `exitStatus`. */
export class CliError extends Error {
  /** What went wrong, from the table on {@link CliErrorCode}. */
  readonly code: CliErrorCode;
  /** Which part of Sheepdog raised it: printed as `[sheepdog] [cli]` before the message. */
  readonly origin = 'cli';
  /** The process exit status this error ends the command with. */
  readonly exitStatus: number;

  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.code = code;
    this.exitStatus = EXIT_STATUS[code];
  }
}

/**
 * Whether `error` is a {@link CliError}, with `code` when one is given. It checks the name and
 * code rather than `instanceof`, so an error from another copy of the package counts too.
 */
export function isCliError(error: unknown, code?: CliErrorCode): error is CliError {
  if (!(error instanceof Error) || error.name !== 'CliError') return false;
  const own = (error as { code?: unknown }).code;
  return code === undefined ? (CLI_ERROR_CODES as readonly unknown[]).includes(own) : own === code;
}

/** A {@link CliError} `USAGE` that lists every problem, one per line, so they can be fixed in one go. */
export function usageError(what: string, problems: readonly string[]): CliError {
  return new CliError(
    'USAGE',
    `${what}, fix these and try again:\n${problems.map((p) => `  ${p}`).join('\n')}`,
  );
}
