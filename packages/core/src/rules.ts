import type { Storage, TaskState } from '@sheepdog/storage';
import type { Submission } from './backend.js';

/** How a request retries its tasks: `retries` and `retryErrors` of its config. */
export interface RetryPolicy {
  /** Resubmissions allowed per task that was lost (and that failed, with `retryErrors`). */
  readonly retries: number;
  /** Whether tasks that raised an error are retried too. */
  readonly retryErrors: boolean;
}

/**
 * How many times a worker may take one task under `retries` before it is lost for good: once,
 * and once more per retry. The server's lease rule (a lease that ran out this many times makes
 * the task lost) and {@link retryCandidates} count attempts the same way.
 */
export function maxAttempts(retries: number): number {
  return retries + 1;
}

/** The submissions of a request as a caller keeps them, read only when a retry rule needs them. */
export interface KnownSubmissions {
  /** Every submission of the request, oldest first. */
  submissions(): readonly Submission[];
  /** The indices of one of them, as a set. */
  indicesOf(submission: Submission): ReadonlySet<number>;
}

/**
 * The retry rule: which lost tasks (and failed ones, with `retryErrors`) are submitted again.
 * A task is retried while the submissions that included it, less the first, are fewer than `retries`.
 * In lease mode one submission may run a task several times (a lease that ran out goes to
 * another worker): there its attempts count as well, up to {@link maxAttempts}.
 *
 * @param known - the request's submissions when the caller keeps them; else read from `storage`
 * @returns the job indices due for a retry, ascending
 */
export function retryCandidates(
  storage: Storage,
  requestId: number,
  policy: RetryPolicy,
  known?: KnownSubmissions,
): number[] {
  if (policy.retries <= 0) return [];
  const states: readonly TaskState[] = policy.retryErrors ? ['lost', 'failed'] : ['lost'];
  const ended = storage.indicesInState(requestId, states);
  if (ended.length === 0) return ended;
  const submissions = known?.submissions() ?? storage.getJobs(requestId);
  const indicesOf = known?.indicesOf ?? ((s: Submission) => new Set(s.indices));
  const attempts = submissions.some((s) => s.meta?.lease === true)
    ? new Map(storage.getTaskStates(requestId).map((t) => [t.jobIndex, t.attempts]))
    : undefined;
  return ended.filter((index) => {
    if ((attempts?.get(index) ?? 0) >= maxAttempts(policy.retries)) return false;
    let times = 0;
    for (const s of submissions) if (indicesOf(s).has(index)) times += 1;
    return times < maxAttempts(policy.retries);
  });
}

/**
 * The settled rule: a request has settled, its results final, once no task is pending or
 * running and no retry is due (see {@link retryCandidates}) that whoever serves it is about to
 * make.
 */
export function isSettled(
  counts: Readonly<Record<'pending' | 'running', number>>,
  retryDue: boolean,
): boolean {
  return counts.pending + counts.running === 0 && !retryDue;
}
