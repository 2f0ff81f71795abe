import type { SheepdogServer } from '@sheepdog/server';
import type { Storage } from '@sheepdog/storage';
import type { Backend, Submission, TaskReport } from './backend.js';
import { describeError } from './errors.js';
import { ProgressLine } from './progress.js';
import { isSettled, retryCandidates } from './rules.js';
import { type Submitter, withinLimit } from './submitter.js';
import { type Verdict, type WaitOptions, type WaitOutcome, waitFor } from './wait.js';

// A task with no accounting record yet is explained once more after this long at least: Grid
// Engine flushes its accounting file every flush_time (1 s on the test cluster, 15 s by default).
const EXPLAIN_AGAIN_MS = 2000;
// How often a backend that cannot be asked is mentioned on stderr.
const STATUS_NOTE_EVERY_MS = 60_000;

/**
 * Watches one request until every task has a final state: it listens to the server for results
 * and errors, asks the backend which tasks it still holds, marks tasks it has dropped without a
 * report as lost (with the backend's reason), resubmits lost tasks while retries are left, and
 * cancels everything on timeout or abort. Every task thus reaches a final state in bounded time.
 */
export class Supervisor {
  readonly requestId: number;
  readonly storage: Storage;
  readonly backend: Backend;
  private readonly missingSince = new Map<number, number>();
  private readonly explainAgainAt = new Map<number, number>();
  private statusNotedAt = 0;
  /** The wait is over, or the request was cancelled: nothing more is retried or reported. */
  private stopped = false;
  /**
   * The submissions that held open tasks at the last full look, when each held all of its
   * indices (`holdsAll`), with how many submissions there were then: while that stays so, no
   * task can be lost, and a poll need not read the open indices.
   */
  private wholeHeld:
    | { readonly submissions: readonly Submission[]; readonly count: number }
    | undefined;
  /** {@link Supervisor.wait} ended with every task final (not on a timeout, a cancel or a detach). */
  private finishedAll = false;

  /**
   * @param server - the server this process runs for the request's workers. Without one,
   *   another process serves them and owns lost detection and retries: {@link Supervisor.wait}
   *   then only watches the database.
   */
  constructor(
    private readonly submitter: Submitter,
    readonly server?: SheepdogServer,
  ) {
    this.requestId = submitter.requestId;
    this.storage = submitter.storage;
    this.backend = submitter.backend;
  }

  /**
   * Waits until every task has a final state: `finished`, or `timeout`/`cancelled` once the open
   * tasks were cancelled. Lost tasks are retried while `retries` allow. Rejects only when the
   * database fails.
   */
  wait(options: WaitOptions): Promise<WaitOutcome> {
    const progress = options.verbose ? new ProgressLine(this.requestId) : undefined;
    return waitFor(
      {
        requestId: this.requestId,
        server: this.server,
        count: () => this.count(options, progress),
        poll: () => this.poll(options),
        cancel: (reason) => this.cancel(reason),
        ended: (outcome) => {
          this.stopped = true;
          this.finishedAll = !(outcome instanceof Error) && outcome.kind === 'finished';
        },
      },
      options,
    );
  }

  /** Cancels every submission of the request and marks its open tasks cancelled. */
  cancel(reason: string): Promise<void> {
    this.stopped = true;
    return this.submitter.cancel(reason);
  }

  /**
   * Once every task is final, cancels the request's lease-mode jobs: array tasks still queued
   * would each take a scheduler slot, find nothing to lease and end, for minutes after the map.
   * Only the process that serves the request does it.
   */
  async endLeaseJobs(): Promise<void> {
    if (!this.finishedAll || this.server === undefined) return;
    await this.submitter.cancelLeaseJobs();
  }

  /**
   * Counts the tasks. Safe while a poll is in flight: a poll marks tasks lost and reopens those
   * it retries with no turn of the event loop in between, and lost tasks with retries left count
   * as open here. So a poll stuck on a slow backend never holds up the end.
   */
  private count(options: WaitOptions, progress: ProgressLine | undefined): Verdict {
    // Counting every state scans the request's tasks; with 10^6 of them that is too slow to do
    // after every batch of results, so without a progress line a probe comes first.
    if (progress === undefined && this.storage.hasOpenTasks(this.requestId)) return 'open';
    const s = this.storage.countByState(this.requestId);
    const total = Object.values(s).reduce((a, b) => a + b, 0);
    const counts = { total, done: s.done, failed: s.failed, lost: s.lost + s.cancelled };
    progress?.update(counts);
    if (!isSettled(s, false)) return 'open';
    if (!isSettled(s, this.retryCandidates(options).length > 0)) return 'retry';
    progress?.update(counts, true);
    return 'final';
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
        await this.submitter.resubmit(due, (reopened) => {
          for (const index of reopened) this.forgetMissing(index);
        });
      } catch (error) {
        process.stderr.write(
          `[sheepdog] request ${this.requestId}: could not resubmit ${due.length} task(s); they stay lost: ${describeError(error)}\n`,
        );
      }
    }
  }

  private submissions(): readonly Submission[] {
    return this.submitter.submissions();
  }

  private indicesOf(submission: Submission): ReadonlySet<number> {
    return this.submitter.indicesOf(submission);
  }

  private get gaveUp(): ReadonlySet<number> {
    return this.submitter.gaveUp;
  }

  /** A task is held again, or open anew: its grace and its second explanation start over. */
  private forgetMissing(index: number): void {
    this.missingSince.delete(index);
    this.explainAgainAt.delete(index);
  }

  /**
   * Whether every submission that held open tasks at the last full look still holds all of its
   * indices, and no submission was added since. A status that cannot be had counts as held, as
   * in {@link Supervisor.detectLost}: nothing is marked lost on a backend that does not answer.
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
      return await withinLimit(
        this.backend.status(submission),
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
        this.forgetMissing(index);
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
          const explained = await withinLimit(
            this.backend.explain(submission, mine),
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
      this.forgetMissing(index);
    }
  }

  private noteStatusFailure(error: unknown): void {
    if (this.stopped) return;
    const now = Date.now();
    if (now - this.statusNotedAt < STATUS_NOTE_EVERY_MS) return;
    this.statusNotedAt = now;
    process.stderr.write(
      `[sheepdog] request ${this.requestId}: could not ask the ${this.backend.name} backend which tasks it still holds ` +
        `(${describeError(error)}); results are still collected, and lost tasks are detected once it answers again\n`,
    );
  }
}
