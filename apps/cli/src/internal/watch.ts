import { setTimeout as sleep } from 'node:timers/promises';
import { Storage } from '@sheepdog/storage';
import type { Progress, StateCounts } from './progress.js';

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
  const storage = new Storage(dbfile);
  try {
    for (;;) {
      if (options.signal?.aborted) return undefined;
      const states = storage.getRequest(requestId).states;
      progress?.update(states);
      if (states.pending + states.running === 0) return states;
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
