/**
 * Extracts the job id from what `qsub -terse` printed: `142` for a plain job, `143.1-3:1` for an
 * array job (Grid Engine appends the task range after a dot). Only the last non-empty line is
 * read, because site wrappers sometimes print notices before it.
 *
 * @param stdout - qsub's standard output
 * @returns the numeric job id as a string, or undefined when there is none
 */
export function parseQsubJobId(stdout: string): string | undefined {
  const lines = stdout
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const last = lines.at(-1);
  if (last === undefined) return undefined;
  const match = /^(\d+)(?:\.\d+-\d+:\d+)?$/.exec(last);
  return match?.[1];
}
