import type { SheepdogServer } from '@sheepdog/server';

/** How a request is waited on. */
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

/**
 * What a count of the tasks says: some are still `open`; every one has a final state but lost
 * (or failed) ones have retries left (`retry`); or every one is `final`.
 */
export type Verdict = 'open' | 'retry' | 'final';

/** What a wait drives: the supervision of one request. */
export interface WaitHooks {
  readonly requestId: number;
  /** The server whose task events prompt a count; without one, nothing is polled either. */
  readonly server: SheepdogServer | undefined;
  /** Counts the tasks; throws when the database fails. */
  count(): Verdict;
  /** One look at the backend (lost tasks, then retries); rejects only when the database fails. */
  poll(): Promise<void>;
  /** Cancels the request's jobs and open tasks, on a timeout or an abort. */
  cancel(reason: string): Promise<void>;
  /** Told, before the wait resolves or rejects, that it is over. */
  ended(outcome: WaitOutcome | Error): void;
}

/**
 * Where one wait stands. A wait begins `watching`; a timeout or an abort moves it to
 * `stopping` while the open tasks are cancelled; it is `ended` once it has resolved or rejected.
 */
type WaitState =
  /** Counting tasks as results arrive and asking the backend; `polling` while it is asked. */
  | { readonly name: 'watching'; readonly polling: boolean }
  /** Cancelling the open tasks; the wait then ends with `outcome`. */
  | { readonly name: 'stopping'; readonly outcome: WaitOutcome }
  /** Over: nothing more is counted, polled or reported. */
  | { readonly name: 'ended' };

/** What happens to a wait. */
type WaitEvent =
  /** Tasks may have reached final states: the wait began, results arrived. */
  | { readonly type: 'look' }
  /** The tasks were counted. */
  | { readonly type: 'counted'; readonly verdict: Verdict }
  /** The poll interval came round. */
  | { readonly type: 'tick' }
  /** The backend has been asked. */
  | { readonly type: 'polled' }
  /** The deadline passed or the signal aborted: cancel, then end with `outcome`. */
  | { readonly type: 'stop'; readonly outcome: WaitOutcome; readonly reason: string }
  /** The cancel a stop began has ended. */
  | { readonly type: 'cancelled' }
  /** The `detach` signal aborted: end now, leaving the tasks running. */
  | { readonly type: 'detach' }
  /** Counting, polling or cancelling failed (the database did). */
  | { readonly type: 'failed'; readonly error: Error };

/**
 * Waits until every task of the request has a final state: `finished`, or `timeout`/`cancelled`
 * once the open tasks were cancelled, or `detached`. Rejects only when the database fails.
 */
export function waitFor(hooks: WaitHooks, options: WaitOptions): Promise<WaitOutcome> {
  return new Promise<WaitOutcome>((resolve, reject) => {
    new Wait(hooks, options, resolve, reject).begin();
  });
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** One wait: its state, and the timers, listeners and subscription that feed it events. */
class Wait {
  private state: WaitState = { name: 'watching', polling: false };
  /** Undoes what {@link Wait.begin} set up, when the wait ends. */
  private readonly teardown: Array<() => void> = [];
  /** A look is due at the next turn of the event loop. */
  private lookQueued = false;

  constructor(
    private readonly hooks: WaitHooks,
    private readonly options: WaitOptions,
    private readonly resolve: (outcome: WaitOutcome) => void,
    private readonly reject: (error: Error) => void,
  ) {}

  /** Sets up what feeds the wait its events, then takes a first look. */
  begin(): void {
    const { hooks, options } = this;
    // Results arrive in bursts; coalesce them into one look per turn of the event loop.
    const unsubscribe = hooks.server?.onTask((event) => {
      if (event.requestId !== hooks.requestId || this.lookQueued) return;
      this.lookQueued = true;
      setImmediate(() => {
        this.lookQueued = false;
        this.step({ type: 'look' });
      });
    });
    if (unsubscribe !== undefined) this.teardown.push(unsubscribe);
    const timer = setInterval(() => this.step({ type: 'tick' }), options.pollIntervalMs);
    this.teardown.push(() => clearInterval(timer));
    if (options.deadline !== undefined) {
      const reason = `timed out: the map did not finish within ${options.timeout} ms`;
      const deadline = setTimeout(
        () => this.step({ type: 'stop', outcome: { kind: 'timeout' }, reason }),
        Math.max(0, options.deadline - Date.now()),
      );
      this.teardown.push(() => clearTimeout(deadline));
    }
    const signal = options.signal;
    this.on(signal, () => {
      const why: unknown = signal?.reason;
      this.step({
        type: 'stop',
        outcome: { kind: 'cancelled', reason: why },
        reason: `cancelled by AbortSignal${why instanceof Error ? `: ${why.message}` : ''}`,
      });
    });
    this.on(options.detach, () => this.step({ type: 'detach' }));
    this.step({ type: 'look' });
  }

  /** Calls `abort` when `signal` aborts, or now if it already has. */
  private on(signal: AbortSignal | undefined, abort: () => void): void {
    if (signal === undefined) return;
    if (signal.aborted) {
      abort();
      return;
    }
    signal.addEventListener('abort', abort, { once: true });
    this.teardown.push(() => signal.removeEventListener('abort', abort));
  }

  /** The one place that decides what the wait does next. */
  private step(event: WaitEvent): void {
    const state = this.state;
    if (state.name === 'ended') return;
    if (event.type === 'failed') {
      this.end(event.error);
      return;
    }
    if (event.type === 'detach') {
      this.end({ kind: 'detached' });
      return;
    }
    if (state.name === 'stopping') {
      // Only the cancel's end counts now. A poll in flight is not waited for (it may be stuck on
      // the backend): a job it is submitting right now is cancelled once the backend accepts it.
      if (event.type === 'cancelled') this.end(state.outcome);
      return;
    }
    switch (event.type) {
      case 'look':
        this.count();
        break;
      case 'counted':
        if (event.verdict === 'final') this.end({ kind: 'finished' });
        // Lost (or failed) tasks with retries left are not final yet: retry them now.
        else if (event.verdict === 'retry') this.poll(state.polling);
        break;
      case 'tick':
        this.poll(state.polling);
        break;
      case 'polled':
        this.state = { name: 'watching', polling: false };
        this.count();
        break;
      case 'stop':
        this.state = { name: 'stopping', outcome: event.outcome };
        this.hooks.cancel(event.reason).then(
          () => this.step({ type: 'cancelled' }),
          (error: unknown) => this.step({ type: 'failed', error: asError(error) }),
        );
        break;
      case 'cancelled':
        // Only a stop cancels, and a stop leaves `watching`.
        break;
    }
  }

  /** Counts the tasks, for a `counted` event (or `failed`, when the database fails). */
  private count(): void {
    let verdict: Verdict;
    try {
      verdict = this.hooks.count();
    } catch (error) {
      this.step({ type: 'failed', error: asError(error) });
      return;
    }
    this.step({ type: 'counted', verdict });
  }

  /**
   * Asks the backend, for a `polled` event, unless it is being asked. Without a server of its
   * own, this process only watches (results come from elsewhere): it counts instead.
   */
  private poll(polling: boolean): void {
    if (polling) return;
    if (this.hooks.server === undefined) {
      this.count();
      return;
    }
    this.state = { name: 'watching', polling: true };
    this.hooks.poll().then(
      () => this.step({ type: 'polled' }),
      (error: unknown) => this.step({ type: 'failed', error: asError(error) }),
    );
  }

  private end(outcome: WaitOutcome | Error): void {
    this.state = { name: 'ended' };
    for (const undo of this.teardown.splice(0)) undo();
    // Told first, so that a poll still in flight neither submits nor complains from now on.
    this.hooks.ended(outcome);
    if (outcome instanceof Error) this.reject(outcome);
    else this.resolve(outcome);
  }
}
