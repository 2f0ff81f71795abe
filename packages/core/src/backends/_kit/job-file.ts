import { type JobFileOptions, jobFile } from '@sheepdog/job-file';
import type { JobSpec } from '../../backend.js';

/**
 * Which tasks a job file's array tasks run: job indices 1..nArgs, or array task k runs
 * `indices[k - 1]`. Lease mode overrides it: then array tasks are workers.
 */
export type TaskRange = { readonly nArgs: number } | { readonly indices: readonly number[] };

/** What a backend adds to a job file besides the job itself. */
export type JobFileSettings = Pick<
  JobFileOptions,
  'shell' | 'directivePrefix' | 'options' | 'name' | 'maxHeapMb'
>;

/**
 * Renders the job file for `spec`: where its workers report and with what token, which tasks
 * they run (`tasks`, or in lease mode `spec.lease.workers` workers leasing any task), and the
 * backend's `settings`.
 *
 * @throws JobFileError for options the job file cannot carry
 */
export function renderJobFile(spec: JobSpec, tasks: TaskRange, settings: JobFileSettings): string {
  const { lease } = spec;
  return jobFile({
    url: spec.url,
    token: spec.token,
    requestId: spec.requestId,
    ...(lease === undefined
      ? tasks
      : {
          nArgs: lease.workers,
          lease: lease.leaseMs === undefined ? {} : { leaseMs: lease.leaseMs },
        }),
    ...settings,
  });
}
