import { setTimeout as sleep } from 'node:timers/promises';
import { Storage } from '@sheepdog/storage';
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
 * Whether some lost task (or failed one, with `retryErrors`) still has retries left under the
 * request's stored config: the submissions that included it, less the first, are fewer than
 * `retries`. The same rule as the library's, read from the database.
 */
function retryDue(storage: Storage, requestId: number, config: unknown): boolean {
  const { retries, retryErrors } = (config ?? {}) as { retries?: unknown; retryErrors?: unknown };
  if (typeof retries !== 'number' || retries <= 0) return false;
  const ended = storage.indicesInState(
    requestId,
    retryErrors === true ? ['lost', 'failed'] : ['lost'],
  );
  if (ended.length === 0) return false;
  const jobs = storage.getJobs(requestId).map((job) => new Set(job.indices));
  return ended.some((index) => jobs.filter((job) => job.has(index)).length <= retries);
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
  const storage = new Storage(dbfile);
  let quietSince: number | undefined;
  try {
    for (;;) {
      if (options.signal?.aborted) return undefined;
      const request = storage.getRequest(requestId);
      const states = request.states;
      progress?.update(states);
      if (states.pending + states.running === 0) {
        // Whoever serves the request resubmits lost tasks that have retries left a moment after
        // marking them lost; give it that moment before calling the request finished.
        if (!retryDue(storage, requestId, request.config)) return states;
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
  } finally {
    storage.close();
  }
}
