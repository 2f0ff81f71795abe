/**
 * Codes carried by {@link CliError}. Check `error.code`, not `instanceof`, across packages.
 *
 * | code | exit status | meaning |
 * |---|---|---|
 * | `USAGE` | 2 | the command line, the arguments file or the config has problems; every one is listed |
 * | `NO_DATABASE` | 2 | the database file does not exist |
 * | `UNKNOWN_REQUEST` | 2 | no request with that id in the database file |
 * | `RUN_FAILED` | 1 | the request could not be submitted, served or cancelled; the message says why |
 */
export type CliErrorCode = 'USAGE' | 'NO_DATABASE' | 'UNKNOWN_REQUEST' | 'RUN_FAILED';

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
  /** The process exit status this error ends the command with. */
  readonly exitStatus: number;

  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[sheepdog] [cli] ${message}`, options);
    this.name = 'CliError';
    this.code = code;
    this.exitStatus = EXIT_STATUS[code];
  }
}

/** A {@link CliError} `USAGE` that lists every problem, one per line, so they can be fixed in one go. */
export function usageError(what: string, problems: readonly string[]): CliError {
  return new CliError(
    'USAGE',
    `${what}, fix these and try again:\n${problems.map((p) => `  ${p}`).join('\n')}`,
  );
}
