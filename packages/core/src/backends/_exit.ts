/** The worker's exit codes (`@sheepdog/worker` EXIT_CODES) and signal exits, in words. */
export function describeExit(code: number): string {
  if (code === 2)
    return 'exit status 2: the worker could not start the task (bad job file or task id)';
  if (code === 3) return 'exit status 3: the worker could not reach the server to report';
  if (code > 128) return `killed by signal ${code - 128} (exit status ${code})`;
  return `exit status ${code}`;
}
