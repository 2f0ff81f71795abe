/** How one lease-mode worker ended, for {@link leaseEnded}. */
export interface WorkerEnd {
  /** The worker's number (its array task id). */
  readonly worker: number;
  /** How it ended, in words. */
  readonly how: string;
}

/**
 * Why the open tasks of a lease-mode job never reported, once every one of its workers has
 * ended: any worker may have run any task, so the same reason, naming how the first few workers
 * ended, holds for each.
 *
 * @param indices - the job indices to explain
 * @param ends - the workers that ended badly; none when they all ended cleanly
 * @param jobId - the scheduler's job, named where there is one
 * @returns the reason of each index
 */
export function leaseEnded(
  indices: Iterable<number>,
  ends: readonly WorkerEnd[],
  jobId?: string,
): Map<number, string> {
  const workers = `every lease-mode worker${jobId === undefined ? '' : ` of job ${jobId}`}`;
  const reason =
    ends.length > 0
      ? `${workers} has ended (${ends
          .slice(0, 3)
          .map((end) => `worker ${end.worker}: ${end.how}`)
          .join('; ')}) before this task reported`
      : `${workers} has ended before this task reported (its lease ran out after its last attempt, or the task never came back)`;
  const reasons = new Map<number, string>();
  for (const index of indices) reasons.set(index, reason);
  return reasons;
}
