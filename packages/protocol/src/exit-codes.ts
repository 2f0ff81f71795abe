/**
 * How a worker process tells its scheduler what became of it. The cluster backends read these
 * back from the scheduler's accounting to explain a task that never reported.
 * @module
 */

/**
 * The exit codes of the worker's `main()`: `reported` when the result or the error reached the
 * server, `badSetup` when there was nothing to run (no task id, bad options), `unreported` when
 * the server could not be told at all.
 */
export const EXIT_CODES = { reported: 0, badSetup: 2, unreported: 3 } as const;

/** What each exit code means, named as in {@link EXIT_CODES}. */
export const EXIT_CODE_NAMES = ['reported', 'badSetup', 'unreported'] as const;

/** One name from {@link EXIT_CODE_NAMES}. */
export type ExitCodeName = (typeof EXIT_CODE_NAMES)[number];

/** One exit code from {@link EXIT_CODES}: 0, 2 or 3. */
export type ExitCode = (typeof EXIT_CODES)[ExitCodeName];

/**
 * Whether a process's exit code is one the worker sets itself (as opposed to a crash, a signal
 * or a `process.exit()` of the task).
 *
 * @param code - the exit code; `null` when a signal ended the process
 */
export function isExitCode(code: number | null): code is ExitCode {
  return EXIT_CODE_NAMES.some((name) => EXIT_CODES[name] === code);
}
