// The wait's state machine on its own, with hooks in place of a request: which event leads
// where, without a server, a backend or task processes.
import type { SheepdogServer, TaskEvent, TaskListener } from '@sheepdog/server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type Verdict,
  type WaitHooks,
  type WaitOptions,
  type WaitOutcome,
  waitFor,
} from './wait.js';

const OPTIONS: WaitOptions = {
  // Ticks only where a test moves fake timers on.
  pollIntervalMs: 1_000_000,
  lostGraceMs: 0,
  verbose: false,
  retries: 0,
  retryErrors: false,
};

/** A promise and the functions that settle it. */
function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A server that only delivers task events, as a test emits them. */
function fakeServer(): { server: SheepdogServer; emit: (event: TaskEvent) => void } {
  const listeners = new Set<TaskListener>();
  const server = {
    onTask(listener: TaskListener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  } as unknown as SheepdogServer;
  const emit = (event: TaskEvent): void => {
    for (const listener of listeners) listener(event);
  };
  return { server, emit };
}

/** Hooks whose verdicts come from `verdicts` (the last one repeats), recording every call. */
function hooks(
  verdicts: Verdict[],
  extra: Partial<WaitHooks> = {},
): WaitHooks & { counts: number; polls: number; reasons: string[]; ends: unknown[] } {
  const h = {
    requestId: 1,
    server: undefined as SheepdogServer | undefined,
    counts: 0,
    polls: 0,
    reasons: [] as string[],
    ends: [] as unknown[],
    count(): Verdict {
      const verdict = verdicts[Math.min(h.counts, verdicts.length - 1)] as Verdict;
      h.counts += 1;
      return verdict;
    },
    async poll(): Promise<void> {
      h.polls += 1;
    },
    async cancel(reason: string): Promise<void> {
      h.reasons.push(reason);
    },
    ended(outcome: WaitOutcome | Error): void {
      h.ends.push(outcome);
    },
    ...extra,
  };
  return h;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.useRealTimers();
});

describe('waitFor', () => {
  it('ends finished at the first count when every task is final, and says so first', async () => {
    const h = hooks(['final'], { server: fakeServer().server });
    expect(await waitFor(h, OPTIONS)).toEqual({ kind: 'finished' });
    expect(h.ends).toEqual([{ kind: 'finished' }]);
    expect(h.polls).toBe(0);
  });

  it('counts once per turn of the event loop however many task events arrive', async () => {
    const { server, emit } = fakeServer();
    const h = hooks(['open', 'open', 'final'], { server });
    const waiting = waitFor(h, OPTIONS);
    expect(h.counts).toBe(1);
    for (const jobIndex of [1, 2, 3]) emit({ requestId: 1, jobIndex, kind: 'result' });
    emit({ requestId: 2, jobIndex: 1, kind: 'result' });
    await nextTurn();
    expect(h.counts).toBe(2);
    // Another request's events are not this wait's.
    emit({ requestId: 2, jobIndex: 2, kind: 'result' });
    await nextTurn();
    expect(h.counts).toBe(2);
    emit({ requestId: 1, jobIndex: 4, kind: 'error' });
    expect(await waiting).toEqual({ kind: 'finished' });
    expect(h.counts).toBe(3);
  });

  it('asks the backend at once when retries are due, then counts again', async () => {
    const h = hooks(['retry', 'final'], { server: fakeServer().server });
    expect(await waitFor(h, OPTIONS)).toEqual({ kind: 'finished' });
    expect(h.polls).toBe(1);
    expect(h.counts).toBe(2);
  });

  it('never asks the backend twice at once', async () => {
    vi.useFakeTimers();
    const polled = deferred();
    const h = hooks(['retry', 'retry', 'final'], {
      server: fakeServer().server,
      poll: () => {
        h.polls += 1;
        return polled.promise;
      },
    });
    const waiting = waitFor(h, OPTIONS);
    vi.advanceTimersByTime(OPTIONS.pollIntervalMs * 3);
    expect(h.polls).toBe(1);
    polled.resolve();
    expect(await waiting).toEqual({ kind: 'finished' });
  });

  it('without a server only counts, at each tick', async () => {
    vi.useFakeTimers();
    const h = hooks(['open', 'retry', 'final']);
    const waiting = waitFor(h, OPTIONS);
    vi.advanceTimersByTime(OPTIONS.pollIntervalMs);
    expect(h.counts).toBe(3);
    expect(await waiting).toEqual({ kind: 'finished' });
    expect(h.polls).toBe(0);
  });

  it('on the deadline cancels the open tasks, then ends with timeout', async () => {
    const cancelled = deferred();
    const asked = deferred();
    const h = hooks(['open'], {
      server: fakeServer().server,
      cancel: (reason) => {
        h.reasons.push(reason);
        asked.resolve();
        return cancelled.promise;
      },
    });
    const waiting = waitFor(h, { ...OPTIONS, deadline: Date.now(), timeout: 5 });
    await asked.promise;
    expect(h.reasons).toEqual(['timed out: the map did not finish within 5 ms']);
    expect(h.ends).toEqual([]);
    cancelled.resolve();
    expect(await waiting).toEqual({ kind: 'timeout' });
  });

  it('stops at once on a signal aborted before it began, with the reason', async () => {
    const controller = new AbortController();
    const why = new Error('the user pressed stop');
    controller.abort(why);
    const h = hooks(['final'], { server: fakeServer().server });
    const outcome = await waitFor(h, { ...OPTIONS, signal: controller.signal });
    expect(outcome).toEqual({ kind: 'cancelled', reason: why });
    expect(h.reasons).toEqual(['cancelled by AbortSignal: the user pressed stop']);
    // Nothing is counted while stopping.
    expect(h.counts).toBe(0);
  });

  it('ends detached at once on detach, even while it is cancelling', async () => {
    const detach = new AbortController();
    const signal = new AbortController();
    const h = hooks(['open'], {
      server: fakeServer().server,
      cancel: () => new Promise<void>(() => undefined),
    });
    const waiting = waitFor(h, { ...OPTIONS, signal: signal.signal, detach: detach.signal });
    signal.abort();
    detach.abort();
    expect(await waiting).toEqual({ kind: 'detached' });
  });

  it('rejects when counting fails', async () => {
    const h = hooks(['open'], {
      count: () => {
        throw new Error('the database is gone');
      },
    });
    await expect(waitFor(h, OPTIONS)).rejects.toThrow('the database is gone');
    expect(h.ends).toHaveLength(1);
  });

  it('rejects when a poll fails, even one still in flight while cancelling', async () => {
    const polled = deferred();
    const signal = new AbortController();
    const h = hooks(['retry'], {
      server: fakeServer().server,
      poll: () => polled.promise,
      cancel: () => new Promise<void>(() => undefined),
    });
    const waiting = waitFor(h, { ...OPTIONS, signal: signal.signal });
    signal.abort();
    polled.reject(new Error('the database is gone'));
    await expect(waiting).rejects.toThrow('the database is gone');
  });
});
