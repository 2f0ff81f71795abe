import { Deployer } from '@sheepdog/deployer';
import type { Backend, JobSpec, Submission, TaskReport } from '../backend.js';
import { keptOnSuccess } from './_kit/index.js';
import type { GridEngineOptions } from './gridengine.js';
import type { SlurmOptions } from './slurm.js';
import { slurmArgs } from './slurm-opts.js';

// The cluster backends as the package's main entry (and a backend named in the config) gives
// them: light stand-ins that import the backend itself on first use, so that a program that runs
// only local maps never loads the schedulers' code, and with it ssh2. The deployer is made at
// once, so options it refuses are refused where the backend is made, as the backend itself does;
// it connects on first use either way. `sheepdog/gridengine` and `sheepdog/slurm` give the
// backends themselves.

/**
 * A backend that forwards each call to `load()`'s, loaded on the first call. `load` gets the
 * deployer made here, which this stand-in closes on `dispose` when it made it.
 */
function deferred(
  name: string,
  deployer: Deployer,
  ownsDeployer: boolean,
  load: (deployer: Deployer) => Promise<Backend>,
): Backend {
  const backend = keptOnSuccess(() => load(deployer));
  let latest: Promise<Backend> | undefined;
  const loaded = (): Promise<Backend> => {
    latest = backend();
    return latest;
  };
  return {
    name,
    supportsLease: true,
    async submit(spec: JobSpec): Promise<Submission> {
      return (await loaded()).submit(spec);
    },
    async status(submission: Submission): Promise<TaskReport> {
      return (await loaded()).status(submission);
    },
    async explain(
      submission: Submission,
      indices: readonly number[],
    ): Promise<ReadonlyMap<number, string>> {
      const inner = await loaded();
      return inner.explain ? inner.explain(submission, indices) : new Map();
    },
    async cancel(submission: Submission): Promise<void> {
      return (await loaded()).cancel(submission);
    },
    async dispose(): Promise<void> {
      const inner = await latest?.catch(() => undefined);
      await inner?.dispose?.();
      if (ownsDeployer) await deployer.close();
    },
  };
}

/**
 * Runs tasks as one Grid Engine array job submitted over SSH: the job file is uploaded with
 * SFTP and submitted with `qsub -terse`; `qstat` says which tasks are still queued or running,
 * `qacct` why a task ended, and `qdel` cancels. The backend's code loads on its first call;
 * `sheepdog/gridengine` exports the same backend, loaded with its module.
 *
 * @throws DeployerError `INVALID_CONFIG` for SSH options the deployer refuses
 */
export function gridengine(options: GridEngineOptions): Backend {
  const deployer = options.deployer ?? new Deployer(options);
  return deferred('gridengine', deployer, options.deployer === undefined, async (shared) => {
    const { gridengine: load } = await import('./gridengine.js');
    return load({ ...options, deployer: shared });
  });
}

/**
 * Runs tasks as SLURM array jobs submitted over SSH: the job file is uploaded with SFTP and
 * submitted with `sbatch --parsable --array=…`; `squeue` says which tasks are still queued or
 * running, `sacct` why a task ended, and `scancel` cancels. The backend's code loads on its
 * first call; `sheepdog/slurm` exports the same backend, loaded with its module.
 *
 * @throws DeployerError `INVALID_CONFIG` for SSH options the deployer refuses
 * @throws SheepdogError `INVALID_CONFIG` when `slurmOpts` sets `--array`
 */
export function slurm(options: SlurmOptions): Backend {
  const deployer = options.deployer ?? new Deployer(options);
  slurmArgs(options.slurmOpts ?? []);
  return deferred('slurm', deployer, options.deployer === undefined, async (shared) => {
    const { slurm: load } = await import('./slurm.js');
    return load({ ...options, deployer: shared });
  });
}
