import { addRequestToken } from '@sheepdog/server';
import type { Storage } from '@sheepdog/storage';
import type { Backend, JobSpec, Submission } from './backend.js';
import type { JobPlan } from './batching.js';
import { describeError, isSheepdogError, SheepdogError } from './errors.js';

/** Where the workers of new submissions report, and with which token. */
export interface WorkerEndpoint {
  /** Base URL with trailing slash, as the workers reach the server. */
  readonly url: string;
  /** The request's token, when this process minted it; otherwise one is minted when needed. */
  readonly token?: string | undefined;
}

/** Lease mode and `maxRunning` for a submission of these indices (see `planJob`). */
export type PlanJob = (indices: readonly number[]) => JobPlan;

// A backend call that has not answered by then counts as failed, so waiting never hangs on it.
const BACKEND_CALL_LIMIT_MS = 120_000;

/**
 * `call`, or a `BACKEND_FAILED` rejection naming `what` once {@link BACKEND_CALL_LIMIT_MS} have
 * passed without an answer: a backend that hangs must not hold up waiting or cancelling.
 */
export function withinLimit<T>(call: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new SheepdogError(
            'BACKEND_FAILED',
            `${what} did not answer within ${BACKEND_CALL_LIMIT_MS} ms`,
          ),
        ),
      BACKEND_CALL_LIMIT_MS,
    );
  });
  return Promise.race([call, limit]).finally(() => clearTimeout(timer));
}

/** Submits `spec`, turning what the backend throws into `SUBMIT_FAILED` with the backend named. */
export async function submitJob(backend: Backend, spec: JobSpec): Promise<Submission> {
  try {
    return await backend.submit(spec);
  } catch (error) {
    if (isSheepdogError(error)) throw error;
    throw new SheepdogError(
      'SUBMIT_FAILED',
      `[${backend.name}] could not submit tasks of request ${spec.requestId}: ${describeError(error)}`,
      { cause: error, requestId: spec.requestId },
    );
  }
}

/**
 * What a request has running on its backend, from this process: submits jobs (minting a token
 * when this process did not create the request), resubmits lost and failed tasks, and cancels
 * everything. Each submission is recorded in the database, so another process (a `retry`) may
 * add some and a later one (a `resume`) re-attaches to all of them.
 */
export class Submitter {
  /** Tasks whose resubmission failed: lost again, and not retried again from here. */
  readonly gaveUp = new Set<number>();
  private readonly indexSets = new WeakMap<Submission, ReadonlySet<number>>();
  private known: Submission[] = [];
  private token: string | undefined;
  /** {@link Submitter.cancel} was called: nothing more may run. */
  private cancelled = false;

  /**
   * @param planJob - lease mode and `maxRunning` for each submission, from the request's config
   */
  constructor(
    readonly requestId: number,
    readonly storage: Storage,
    readonly backend: Backend,
    private readonly endpoint: WorkerEndpoint,
    private readonly planJob: PlanJob,
  ) {
    this.token = endpoint.token;
  }

  /** Every submission of the request, oldest first, re-read when another process added one. */
  submissions(): readonly Submission[] {
    if (this.storage.countJobs(this.requestId) !== this.known.length) {
      this.known = this.storage.getJobs(this.requestId);
    }
    return this.known;
  }

  /** The indices of a submission, as a set (kept, since a submission never changes). */
  indicesOf(submission: Submission): ReadonlySet<number> {
    let set = this.indexSets.get(submission);
    if (set === undefined) {
      set = new Set(submission.indices);
      this.indexSets.set(submission, set);
    }
    return set;
  }

  /**
   * Submits one job over `indices` and records it, so that this and any later process can
   * re-attach to it. A process that did not create the request mints a token of its own.
   */
  async submit(indices: readonly number[]): Promise<Submission> {
    if (this.cancelled) {
      throw new SheepdogError(
        'CANCELLED',
        `request ${this.requestId} was cancelled; nothing more is submitted`,
        { requestId: this.requestId },
      );
    }
    const token = this.token ?? addRequestToken(this.storage, this.requestId);
    this.token = token;
    const submission = await submitJob(this.backend, {
      requestId: this.requestId,
      url: this.endpoint.url,
      token,
      indices,
      name: `sheepdog-${this.requestId}`,
      ...this.planJob(indices),
    });
    this.storage.addJob(this.requestId, submission);
    // Cancelled while the backend was submitting: stop this job too.
    if (this.cancelled) await this.backend.cancel(submission).catch(() => undefined);
    return submission;
  }

  /**
   * Reopens lost and failed tasks among `indices` and submits them again as one job. A task
   * that cannot be submitted is lost again, with the reason, and in {@link Submitter.gaveUp}.
   *
   * @param reopened - told which tasks were reopened, before they are submitted
   * @returns the indices resubmitted (tasks that were not lost or failed are left alone)
   */
  async resubmit(
    indices: readonly number[],
    reopened?: (indices: readonly number[]) => void,
  ): Promise<number[]> {
    const open = this.storage.reopenTasks(this.requestId, indices);
    if (open.length === 0) return open;
    reopened?.(open);
    try {
      await this.submit(open);
    } catch (error) {
      // Reopened but not running anywhere: lost again, with the reason, and not retried again.
      for (const index of open) {
        this.storage.markLost(
          this.requestId,
          index,
          `could not be resubmitted: ${describeError(error)}`,
        );
        this.gaveUp.add(index);
      }
      throw error;
    }
    return open;
  }

  /**
   * Cancels the request's lease-mode jobs: their array tasks still queued would each take a
   * scheduler slot, find nothing to lease and end (one array task per index ends with its task,
   * so those jobs are left alone). Best effort, bounded per job.
   */
  async cancelLeaseJobs(): Promise<void> {
    for (const submission of this.submissions()) {
      if (submission.meta?.lease !== true) continue;
      try {
        await withinLimit(
          this.backend.cancel(submission),
          `cancelling the idle workers of job ${submission.jobId}`,
        );
      } catch {
        // Left alone, they start, find nothing to lease and end: only slower.
      }
    }
  }

  /** Cancels every submission of the request and marks its open tasks cancelled. */
  async cancel(reason: string): Promise<void> {
    this.cancelled = true;
    const failures: string[] = [];
    for (const submission of this.submissions()) {
      try {
        await withinLimit(this.backend.cancel(submission), `cancelling job ${submission.jobId}`);
      } catch (error) {
        failures.push(`job ${submission.jobId}: ${describeError(error)}`);
      }
    }
    this.storage.markCancelled(this.requestId, reason);
    if (failures.length > 0) {
      process.stderr.write(
        `[sheepdog] request ${this.requestId}: the ${this.backend.name} backend could not cancel every job; ` +
          `their tasks may still run, but their results are refused (${failures.join('; ')})\n`,
      );
    }
  }
}
