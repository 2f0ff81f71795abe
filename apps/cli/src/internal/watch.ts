import { setTimeout as sleep } from 'node:timers/promises';
import { isSettled, requestSummary, retriesDue } from 'sheepdog';
import type { Progress, StateCounts } from './progress.js';

// How long lost tasks with retries left may wait to be submitted again before watching stops:
// whoever serves the request may have given up on them (its resubmission failed).
const RETRY_WAIT_MS = 30_000;

/** Options of {@link watch}. */
export interface WatchOptions {
  /**
   * How often to read the task states, in ms.
   * @default 250
   */
  readonly intervalMs?: number;
  /** Stops watching early; {@link watch} then resolves with `undefined`. */
  readonly signal?: AbortSignal;
}

/**
 * Reads a request's task states from its database until none is pending or running, showing
 * them on `progress`. Whoever serves the request (this process, a background one, `sheepdog
 * serve`) writes to the same file, so this works the same for all of them.
 */
export async function watch(
  requestId: number,
  dbfile: string,
  progress: Progress | undefined,
  options: WatchOptions = {},
): Promise<StateCounts | undefined> {
  let quietSince: number | undefined;
  for (;;) {
    if (options.signal?.aborted) return undefined;
    const states = (await requestSummary(requestId, dbfile)).states;
    progress?.update(states);
    // Whoever serves the request resubmits lost tasks that have retries left a moment after
    // marking them lost; give it that moment before calling the request finished.
    const retryDue =
      states.pending + states.running === 0 && (await retriesDue(requestId, dbfile)).length > 0;
    if (isSettled(states, retryDue)) return states;
    if (retryDue) {
      quietSince ??= Date.now();
      if (Date.now() - quietSince > RETRY_WAIT_MS) return states;
    } else {
      quietSince = undefined;
    }
    try {
      await sleep(options.intervalMs ?? 250, undefined, { signal: options.signal });
    } catch {
      return undefined;
    }
  }
}
