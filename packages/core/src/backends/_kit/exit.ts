import { constants } from 'node:os';
import { EXIT_CODES } from '@sheepdog/protocol';

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
 * Says in words what a task's exit status means: the worker's own codes (`EXIT_CODES` of
 * `@sheepdog/protocol`), a signal (a shell
 * reports death by signal n as 128 + n), or the plain number.
 */
export function describeExit(status: number): string {
  if (status === EXIT_CODES.badSetup)
    return `exit status ${status}: the worker could not start the task (bad job file or task id)`;
  if (status === EXIT_CODES.unreported)
    return `exit status ${status}: the worker could not reach the server to report`;
  if (status > 128) return `killed by ${signalName(status - 128)} (exit status ${status})`;
  return `exit status ${status}`;
}
