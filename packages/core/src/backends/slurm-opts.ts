import { backendError } from './_kit/index.js';

/** The sbatch arguments of `slurmOpts`, and a test of which options they set. */
export interface SlurmArgs {
  /** Each entry split at blanks (`'-p debug'` is two arguments). */
  readonly args: readonly string[];
  /** Whether the arguments set an option, by its short (`-o`, `-ofile`) or long (`--output=…`) form. */
  hasOption(short: string | undefined, long: string): boolean;
}

/**
 * Reads the `slurmOpts` option of the slurm backend. Kept apart from the backend so that the
 * light `slurm()` of the package's main entry refuses a bad option at once, as the backend
 * itself does, without loading it.
 *
 * @throws SheepdogError `INVALID_CONFIG` when they set `--array`, which the backend sets itself
 */
export function slurmArgs(slurmOpts: readonly string[]): SlurmArgs {
  const args = slurmOpts.flatMap((opt) => opt.trim().split(/\s+/)).filter((token) => token !== '');
  const hasOption = (short: string | undefined, long: string): boolean =>
    args.some(
      (arg) =>
        arg === long ||
        arg.startsWith(`${long}=`) ||
        (short !== undefined && (arg === short || (arg.startsWith(short) && arg.length > 2))),
    );
  if (hasOption('-a', '--array')) {
    throw backendError(
      'slurm',
      'slurmOpts must not set --array: the backend sets it from the task indices',
      { code: 'INVALID_CONFIG' },
    );
  }
  return { args, hasOption };
}
