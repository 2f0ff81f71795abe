import { constants } from 'node:os';

/**
 * The worker's own exit codes (`@sheepdog/worker` EXIT_CODES): 2, it could not start the task
 * (bad job file or task id); 3, it ran the task but could not report the outcome.
 */
export const WORKER_EXIT = { badSetup: 2, unreported: 3 } as const;

/**
 * A signal's name: `SIGKILL` for 9, and so on.
 *
 * @returns the name, or `signal <n>` where Node knows none
 */
export function signalName(signal: number): string {
  const entry = Object.entries(constants.signals).find(([, n]) => n === signal);
  return entry ? entry[0] : `signal ${signal}`;
}

/**
 * Says in words what a task's exit status means: the worker's own codes, a signal (a shell
 * reports death by signal n as 128 + n), or the plain number.
 */
export function describeExit(status: number): string {
  if (status === WORKER_EXIT.badSetup)
    return `exit status ${status}: the worker could not start the task (bad job file or task id)`;
  if (status === WORKER_EXIT.unreported)
    return `exit status ${status}: the worker could not reach the server to report`;
  if (status > 128) return `killed by ${signalName(status - 128)} (exit status ${status})`;
  return `exit status ${status}`;
}
