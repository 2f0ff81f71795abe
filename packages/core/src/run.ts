import { addRequestToken, type SheepdogServer } from '@sheepdog/server';
import type { Storage } from '@sheepdog/storage';
import type { Backend, JobSpec, Submission, TaskReport } from './backend.js';
import type { JobPlan } from './batching.js';
import { SheepdogError } from './errors.js';
import { ProgressLine } from './progress.js';
import { retryCandidates } from './rules.js';

/** How a {@link Run} waits. */
export interface WaitOptions {
  readonly pollIntervalMs: number;
  readonly lostGraceMs: number;
  readonly verbose: boolean;
  /** Resubmissions allowed per task that was lost (and that failed, with `retryErrors`). */
  readonly retries: number;
  readonly retryErrors: boolean;
  /** When to give up, in ms since the epoch. */
  readonly deadline?: number | undefined;
  /** The `timeout` the deadline came from, for messages. */
  readonly timeout?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Stop waiting when this aborts, leaving the tasks running (`serve` being stopped). */
  readonly detach?: AbortSignal | undefined;
}

/** How waiting ended, when it did not fail. */
export type WaitOutcome =
  | { readonly kind: 'finished' }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'cancelled'; readonly reason: unknown }
  | { readonly kind: 'detached' };

/** Where the workers of new submissions report, and with which token. */
export interface WorkerEndpoint {
  /** Base URL with trailing slash, as the workers reach the server. */
  readonly url: string;
  /** The request's token, when this process minted it; otherwise one is minted when needed. */
  readonly token?: string | undefined;
}

// A task with no accounting record yet is explained once more after this long at least: Grid
// Engine flushes its accounting file every flush_time (1 s on the test cluster, 15 s by default).
const EXPLAIN_AGAIN_MS = 2000;
// How often a backend that cannot be asked is mentioned on stderr.
const STATUS_NOTE_EVERY_MS = 60_000;
// A backend call that has not answered by then counts as failed, so waiting never hangs on it.
const BACKEND_CALL_LIMIT_MS = 120_000;

/** `promise`, or a rejection naming `what` once `ms` have passed without an answer. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** Submits `spec`, turning what the backend throws into `SUBMIT_FAILED` with the backend named. */
export async function submitJob(backend: Backend, spec: JobSpec): Promise<Submission> {
  try {
    return await backend.submit(spec);
  } catch (error) {
    if (error instanceof SheepdogError) throw error;
    throw new SheepdogError(
      'SUBMIT_FAILED',
      `[${backend.name}] could not submit tasks of request ${spec.requestId}: ${messageOf(error)}`,
      { cause: error, requestId: spec.requestId },
    );
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * One request being waited on in this process: it listens to the server for results and
 * errors, asks the backend which tasks it still holds, marks tasks it has dropped without a
 * report as lost (with the backend's reason), resubmits lost tasks while retries are left, and
 * cancels everything on timeout or abort. Every task thus reaches a final state in bounded time.
 *
 * Submissions live in the database, not only here: another process (a `retry`) may add some,
 * and a later process (a `resume`) re-attaches to all of them.
 */
export class Run {
  private readonly missingSince = new Map<number, number>();
  private readonly explainAgainAt = new Map<number, number>();
  /** Tasks whose resubmission failed: not retried again by this run. */
  private readonly gaveUp = new Set<number>();
  private readonly indexSets = new WeakMap<Submission, ReadonlySet<number>>();
  private known: Submission[] = [];
  /**
   * Lease mode and `maxRunning` for a submission of these indices (see `planJob`); unset, every
   * submission runs one array task per index.
   */
  planJob: ((indices: readonly number[]) => JobPlan) | undefined;
  private token: string | undefined;
  private statusNotedAt = 0;
  /** The wait is over: nothing more is retried or reported. */
  private stopped = false;
  /** {@link Run.cancel} was called: nothing more may run. */
  private cancelled = false;
  /**
   * The submissions that held open tasks at the last full look, when each held all of its
   * indices (`holdsAll`), with how many submissions there were then: while that stays so, no
   * task can be lost, and a poll need not read the open indices.
   */
  private wholeHeld:
    | { readonly submissions: readonly Submission[]; readonly count: number }
    | undefined;
  /** {@link Run.wait} ended with every task final (not on a timeout, a cancel or a detach). */
  private finishedAll = false;

  /**
   * @param server - the server this process runs for the request's workers. Without one,
   *   another process serves them and owns lost detection and retries: {@link Run.wait} then
   *   only watches the database.
   */
  constructor(
    readonly requestId: number,
    readonly storage: Storage,
    readonly backend: Backend,
    private readonly endpoint: WorkerEndpoint,
    readonly server?: SheepdogServer,
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

  private indicesOf(submission: Submission): ReadonlySet<number> {
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
      ...this.planJob?.(indices),
    });
    this.storage.addJob(this.requestId, submission);
    // Cancelled while the backend was submitting: stop this job too.
    if (this.cancelled) await this.backend.cancel(submission).catch(() => undefined);
    return submission;
  }

  /**
   * Reopens lost and failed tasks among `indices` and submits them again as one job.
   *
   * @returns the indices resubmitted (tasks that were not lost or failed are left alone)
   */
  async resubmit(indices: readonly number[]): Promise<number[]> {
    const reopened = this.storage.reopenTasks(this.requestId, indices);
    if (reopened.length === 0) return reopened;
    for (const index of reopened) {
      this.missingSince.delete(index);
      this.explainAgainAt.delete(index);
    }
    try {
      await this.submit(reopened);
    } catch (error) {
      // Reopened but not running anywhere: lost again, with the reason, and not retried again.
      for (const index of reopened) {
        this.storage.markLost(
          this.requestId,
          index,
          `could not be resubmitted: ${messageOf(error)}`,
        );
        this.gaveUp.add(index);
      }
      throw error;
    }
    return reopened;
  }

  /**
   * Once every task is final, cancels the request's lease-mode jobs: array tasks still queued
   * would each take a scheduler slot, find nothing to lease and end, for minutes after the map
   * (one array task per index ends with its task, so those jobs are left alone). Best effort,
   * bounded per job; only the process that serves the request does it.
   */
  async endLeaseJobs(): Promise<void> {
    if (!this.finishedAll || this.server === undefined) return;
    for (const submission of this.submissions()) {
      if (submission.meta?.lease !== true) continue;
      try {
        await within(
          this.backend.cancel(submission),
          BACKEND_CALL_LIMIT_MS,
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
    this.stopped = true;
    const failures: string[] = [];
    for (const submission of this.submissions()) {
      try {
        await within(
          this.backend.cancel(submission),
          BACKEND_CALL_LIMIT_MS,
          `cancelling job ${submission.jobId}`,
        );
      } catch (error) {
        failures.push(`job ${submission.jobId}: ${messageOf(error)}`);
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

  /**
   * Waits until every task has a final state: `finished`, or `timeout`/`cancelled` once the open
   * tasks were cancelled. Lost tasks are retried while `retries` allow. Rejects only when the
   * database fails.
   */
  async wait(options: WaitOptions): Promise<WaitOutcome> {
    const progress = options.verbose ? new ProgressLine(this.requestId) : undefined;
    return new Promise<WaitOutcome>((resolve, reject) => {
      let settled = false;
      let stopping = false;
      let checkQueued = false;
      let polling = false;
      const finish = (outcome: WaitOutcome | Error): void => {
        if (settled) return;
        settled = true;
        // A poll still in flight must neither submit nor complain once the wait is over.
        this.stopped = true;
        unsubscribe();
        clearInterval(timer);
        clearTimeout(deadlineTimer);
        options.signal?.removeEventListener('abort', onAbort);
        options.detach?.removeEventListener('abort', onDetach);
        if (outcome instanceof Error) reject(outcome);
        else {
          this.finishedAll = outcome.kind === 'finished';
          resolve(outcome);
        }
      };
      // Safe while a poll is in flight: a poll marks tasks lost and reopens those it retries
      // with no turn of the event loop in between, and lost tasks with retries left count as
      // open here. So a poll stuck on a slow backend never holds up the end.
      const check = (): void => {
        checkQueued = false;
        if (settled || stopping) return;
        try {
          // Counting every state scans the request's tasks; with 10^6 of them that is too slow
          // to do after every batch of results, so without a progress line a probe comes first.
          if (progress === undefined && this.storage.hasOpenTasks(this.requestId)) return;
          const s = this.storage.countByState(this.requestId);
          const total = Object.values(s).reduce((a, b) => a + b, 0);
          const counts = { total, done: s.done, failed: s.failed, lost: s.lost + s.cancelled };
          progress?.update(counts);
          if (s.pending + s.running > 0) return;
          // Lost (or failed) tasks with retries left are not final yet: retry them now.
          if (this.retryCandidates(options).length > 0) {
            void poll();
            return;
          }
          progress?.update(counts, true);
          finish({ kind: 'finished' });
        } catch (error) {
          finish(error instanceof Error ? error : new Error(String(error)));
        }
      };
      // Results arrive in bursts; coalesce them into one count per turn of the event loop.
      const unsubscribe =
        this.server?.onTask((event) => {
          if (event.requestId !== this.requestId || checkQueued) return;
          checkQueued = true;
          setImmediate(check);
        }) ?? ((): void => undefined);
      const poll = async (): Promise<void> => {
        if (polling || settled || stopping) return;
        // Without a server of its own, this process only watches: results come from elsewhere.
        if (this.server === undefined) {
          check();
          return;
        }
        polling = true;
        try {
          await this.poll(options);
        } catch (error) {
          finish(error instanceof Error ? error : new Error(String(error)));
          return;
        } finally {
          polling = false;
        }
        check();
      };
      // A poll in flight is not waited for (it may be stuck on the backend): a job it is
      // submitting right now is cancelled as soon as the backend has accepted it.
      const stop = (outcome: WaitOutcome, reason: string): void => {
        if (stopping || settled) return;
        stopping = true;
        this.cancel(reason).then(
          () => finish(outcome),
          (error: unknown) => finish(error instanceof Error ? error : new Error(String(error))),
        );
      };
      const timer = setInterval(() => void poll(), options.pollIntervalMs);
      const onAbort = (): void => {
        const why = options.signal?.reason;
        stop(
          { kind: 'cancelled', reason: why },
          `cancelled by AbortSignal${why instanceof Error ? `: ${why.message}` : ''}`,
        );
      };
      const deadlineTimer =
        options.deadline === undefined
          ? undefined
          : setTimeout(
              () =>
                stop(
                  { kind: 'timeout' },
                  `timed out: the map did not finish within ${options.timeout} ms`,
                ),
              Math.max(0, options.deadline - Date.now()),
            );
      const onDetach = (): void => finish({ kind: 'detached' });
      if (options.signal?.aborted) onAbort();
      else options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.detach?.aborted) onDetach();
      else options.detach?.addEventListener('abort', onDetach, { once: true });
      check();
    });
  }

  /** One look at the backend: lost tasks, then retries. */
  private async poll(options: WaitOptions): Promise<void> {
    // Reading 10^6 open indices at every poll would be most of a large lease-mode map's work;
    // while the jobs that hold them still hold all of their indices, none can be lost.
    if (!(await this.stillWholeHeld())) {
      const open = this.storage.openIndices(this.requestId);
      if (open.length > 0) await this.detectLost(open, options.lostGraceMs);
    }
    if (this.stopped) return;
    const due = this.retryCandidates(options);
    if (due.length > 0) {
      try {
        await this.resubmit(due);
      } catch (error) {
        process.stderr.write(
          `[sheepdog] request ${this.requestId}: could not resubmit ${due.length} task(s); they stay lost: ${messageOf(error)}\n`,
        );
      }
    }
  }

  /**
   * Whether every submission that held open tasks at the last full look still holds all of its
   * indices, and no submission was added since. A status that cannot be had counts as held, as
   * in {@link Run.detectLost}: nothing is marked lost on a backend that does not answer.
   */
  private async stillWholeHeld(): Promise<boolean> {
    const whole = this.wholeHeld;
    if (whole === undefined) return false;
    if (this.submissions().length !== whole.count) {
      this.wholeHeld = undefined;
      return false;
    }
    for (const submission of whole.submissions) {
      const report = await this.statusOf(submission);
      if (report === undefined) return true;
      if (report.holdsAll !== true) {
        this.wholeHeld = undefined;
        return false;
      }
    }
    return true;
  }

  /** The backend's view of a submission, or `undefined` (noted) when it cannot be had in time. */
  private async statusOf(submission: Submission): Promise<TaskReport | undefined> {
    try {
      return await within(
        this.backend.status(submission),
        BACKEND_CALL_LIMIT_MS,
        `the status of job ${submission.jobId}`,
      );
    } catch (error) {
      this.noteStatusFailure(error);
      return undefined;
    }
  }

  /** Lost (and, with `retryErrors`, failed) tasks that have retries left. */
  private retryCandidates(options: WaitOptions): number[] {
    if (this.stopped || this.server === undefined) return [];
    return retryCandidates(this.storage, this.requestId, options, {
      submissions: () => this.submissions(),
      indicesOf: (s) => this.indicesOf(s),
    }).filter((index) => !this.gaveUp.has(index));
  }

  /**
   * Marks as lost each open task that no submission holds any more and that has stayed
   * without a result or error for `graceMs` (its report may still be on the wire), with the
   * backend's reason. A task the backend cannot explain yet (its accounting record may not be
   * written yet) is asked about once more before it gets a generic reason.
   */
  private async detectLost(open: readonly number[], graceMs: number): Promise<void> {
    const openSet = new Set(open);
    const submissions = this.submissions();
    const held = new Set<number>();
    const reasons = new Map<number, string>();
    // Newest first: a retried task's newest submission says why its latest attempt ended.
    const relevant = submissions.filter((s) => s.indices.some((index) => openSet.has(index)));
    let allWhole = relevant.length > 0;
    for (const submission of [...relevant].reverse()) {
      const report = await this.statusOf(submission);
      if (report === undefined) return;
      if (report.holdsAll === true) {
        for (const index of submission.indices) held.add(index);
      } else {
        allWhole = false;
        for (const index of report.active) held.add(index);
      }
      for (const [index, reason] of report.reasons ?? [])
        if (!reasons.has(index)) reasons.set(index, reason);
    }
    this.wholeHeld = allWhole ? { submissions: relevant, count: submissions.length } : undefined;
    const now = Date.now();
    const due: number[] = [];
    for (const index of open) {
      if (held.has(index)) {
        this.missingSince.delete(index);
        this.explainAgainAt.delete(index);
        continue;
      }
      const since = this.missingSince.get(index) ?? now;
      this.missingSince.set(index, since);
      if (now - since >= graceMs) due.push(index);
    }
    if (due.length === 0) return;
    if (this.backend.explain) {
      // Asked at most twice: when the task is due, and once more when its second look is due.
      const unexplained = new Set(
        due.filter((index) => {
          const again = this.explainAgainAt.get(index);
          return !reasons.has(index) && (again === undefined || now >= again);
        }),
      );
      for (const submission of [...relevant].reverse()) {
        const mine = [...unexplained].filter((index) => this.indicesOf(submission).has(index));
        if (mine.length === 0) continue;
        try {
          const explained = await within(
            this.backend.explain(submission, mine),
            BACKEND_CALL_LIMIT_MS,
            `explaining job ${submission.jobId}`,
          );
          for (const [index, reason] of explained) {
            reasons.set(index, reason);
            unexplained.delete(index);
          }
        } catch {
          // No explanation this time; the task is asked about once more below.
        }
      }
    }
    const later = Math.max(EXPLAIN_AGAIN_MS, graceMs);
    for (const index of due) {
      let reason = reasons.get(index);
      if (reason === undefined && this.backend.explain) {
        const again = this.explainAgainAt.get(index);
        if (again === undefined) {
          this.explainAgainAt.set(index, now + later);
          continue;
        }
        if (now < again) continue;
      }
      // markLost leaves alone a task that reported while the backend was being asked.
      reason ??= `the ${this.backend.name} backend no longer holds the task, it never reported, and the backend could not say why`;
      this.storage.markLost(this.requestId, index, reason);
      this.missingSince.delete(index);
      this.explainAgainAt.delete(index);
    }
  }

  private noteStatusFailure(error: unknown): void {
    if (this.stopped) return;
    const now = Date.now();
    if (now - this.statusNotedAt < STATUS_NOTE_EVERY_MS) return;
    this.statusNotedAt = now;
    process.stderr.write(
      `[sheepdog] request ${this.requestId}: could not ask the ${this.backend.name} backend which tasks it still holds ` +
        `(${messageOf(error)}); results are still collected, and lost tasks are detected once it answers again\n`,
    );
  }
}
