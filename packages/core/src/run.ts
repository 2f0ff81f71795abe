import type { SheepdogServer } from '@sheepdog/server';
import type { Backend, Submission } from './backend.js';
import { SheepdogError } from './errors.js';
import { ProgressLine } from './progress.js';

/** How a {@link Run} waits. */
export interface WaitOptions {
  readonly pollIntervalMs: number;
  readonly lostGraceMs: number;
  readonly verbose: boolean;
  readonly timeout?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/**
 * One request being waited on in this process: it listens to the server for results and
 * errors, asks the backend what it still holds, and marks tasks the backend has dropped
 * without a report as lost, so waiting always ends.
 */
export class Run {
  private readonly missingSince = new Map<number, number>();

  constructor(
    readonly requestId: number,
    readonly server: SheepdogServer,
    readonly backend: Backend,
    readonly submissions: Submission[],
  ) {}

  private get storage(): SheepdogServer['storage'] {
    return this.server.storage;
  }

  private counts(): { total: number; done: number; failed: number; lost: number; open: number } {
    const byState = this.storage.countByState(this.requestId);
    const total = Object.values(byState).reduce((a, b) => a + b, 0);
    return {
      total,
      done: byState.done,
      failed: byState.failed,
      lost: byState.lost + byState.cancelled,
      open: byState.pending + byState.running,
    };
  }

  /** Resolves when every task has a final state; rejects on timeout or abort. */
  async wait(options: WaitOptions): Promise<void> {
    const progress = options.verbose ? new ProgressLine(this.requestId) : undefined;
    const deadline = options.timeout === undefined ? undefined : Date.now() + options.timeout;
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      let checkQueued = false;
      let polling = false;
      const finish = (error?: Error): void => {
        if (settled) return;
        settled = true;
        unsubscribe();
        clearInterval(timer);
        clearTimeout(deadlineTimer);
        options.signal?.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve();
      };
      const check = (): void => {
        checkQueued = false;
        if (settled) return;
        const c = this.counts();
        progress?.update(c);
        if (c.open === 0) {
          progress?.update(c, true);
          finish();
        }
      };
      // Results arrive in bursts; coalesce them into one count per turn of the event loop.
      const unsubscribe = this.server.onTask((event) => {
        if (event.requestId !== this.requestId || checkQueued) return;
        checkQueued = true;
        setImmediate(check);
      });
      const poll = async (): Promise<void> => {
        if (polling || settled) return;
        polling = true;
        try {
          await this.detectLost(options.lostGraceMs);
          check();
        } catch (error) {
          finish(error instanceof Error ? error : new Error(String(error)));
        } finally {
          polling = false;
        }
      };
      const timer = setInterval(() => void poll(), options.pollIntervalMs);
      const onAbort = (): void => {
        void this.cancel('cancelled by AbortSignal').then(
          () =>
            finish(
              new SheepdogError('CANCELLED', `request ${this.requestId} was cancelled`, {
                cause: options.signal?.reason,
              }),
            ),
          (error: unknown) => finish(error instanceof Error ? error : new Error(String(error))),
        );
      };
      const deadlineTimer =
        deadline === undefined
          ? undefined
          : setTimeout(() => {
              void this.cancel(`timed out after ${options.timeout} ms`).then(() =>
                finish(
                  new SheepdogError(
                    'TIMEOUT',
                    `request ${this.requestId} did not finish within ${options.timeout} ms`,
                  ),
                ),
              );
            }, deadline - Date.now());
      if (options.signal?.aborted) onAbort();
      else options.signal?.addEventListener('abort', onAbort, { once: true });
      check();
    });
  }

  /**
   * Marks as lost each open task that no submission holds any more and that has stayed
   * without a result or error for `graceMs` (its report may still be on the wire).
   */
  private async detectLost(graceMs: number): Promise<void> {
    const open = new Set(this.storage.openIndices(this.requestId));
    if (open.size === 0) return;
    const held = new Set<number>();
    const reasons = new Map<number, string>();
    for (const submission of this.submissions) {
      const report = await this.backend.status(submission);
      for (const index of report.active) held.add(index);
      for (const [index, reason] of report.reasons ?? []) reasons.set(index, reason);
    }
    const now = Date.now();
    const due: number[] = [];
    for (const index of open) {
      if (held.has(index)) {
        this.missingSince.delete(index);
        continue;
      }
      const since = this.missingSince.get(index) ?? now;
      this.missingSince.set(index, since);
      if (now - since >= graceMs) due.push(index);
    }
    if (due.length === 0) return;
    for (const submission of this.submissions) {
      const mine = due.filter((index) => submission.indices.includes(index) && !reasons.has(index));
      if (mine.length === 0 || !this.backend.explain) continue;
      for (const [index, reason] of await this.backend.explain(submission, mine))
        reasons.set(index, reason);
    }
    for (const index of due) {
      const reason =
        reasons.get(index) ??
        `the ${this.backend.name} backend no longer holds the task and it never reported`;
      this.storage.markLost(this.requestId, index, reason);
      this.missingSince.delete(index);
    }
  }

  /** Cancels every submission and marks the open tasks cancelled. */
  async cancel(reason: string): Promise<void> {
    for (const submission of this.submissions) await this.backend.cancel(submission);
    this.storage.markCancelled(this.requestId, reason);
  }
}
