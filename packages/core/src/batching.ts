import { availableParallelism } from 'node:os';
import type { Backend, JobSpec } from './backend.js';
import type { ResolvedConfig } from './config.js';

/** Above this many tasks, a request runs in lease mode unless `workers` says otherwise. */
export const AUTO_LEASE_ABOVE = 1000;

/** Workers of an automatic lease-mode job on a cluster. */
export const CLUSTER_WORKERS = 100;

/** Grid Engine's default `max_aj_tasks`; no backend gets more workers than this. */
const MAX_WORKERS = 75_000;

/** What a submission of some indices adds to its {@link JobSpec}. */
export type JobPlan = Pick<JobSpec, 'lease' | 'maxRunning'>;

/**
 * How to submit `indices` for this config: in lease mode (`workers` array tasks leasing chunks)
 * when `workers` is set and smaller than the task count, or, with `workers` unset, when there
 * are more than {@link AUTO_LEASE_ABOVE} tasks (then `workers` = the local `concurrency`, or
 * {@link CLUSTER_WORKERS} on a cluster). Only a backend that `supportsLease` gets lease mode;
 * any other gets one array task per index. `maxRunning` goes to every submission.
 */
export function planJob(
  config: Pick<ResolvedConfig, 'workers' | 'maxRunning' | 'leaseMs' | 'concurrency'>,
  backend: Backend,
  count: number,
): JobPlan {
  const plan: { lease?: JobSpec['lease']; maxRunning?: number } = {};
  if (config.maxRunning !== undefined) plan.maxRunning = config.maxRunning;
  if (backend.supportsLease !== true) return plan;
  let workers = config.workers;
  if (workers === undefined && count > AUTO_LEASE_ABOVE) {
    workers =
      backend.name === 'local' ? (config.concurrency ?? availableParallelism()) : CLUSTER_WORKERS;
  }
  if (workers === undefined || workers >= count) return plan;
  plan.lease = {
    workers: Math.min(workers, MAX_WORKERS),
    ...(config.leaseMs === undefined ? {} : { leaseMs: config.leaseMs }),
  };
  return plan;
}
