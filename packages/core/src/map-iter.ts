import { decodeValue } from '@sheepdog/serialize';
import { parseConfig, type SheepdogConfig } from './config.js';
import type {
  AnyFunction,
  ArgsOf,
  ArgsSource,
  ModuleFunction,
  Namespace,
  ResultOf,
} from './map.js';
import { settle } from './outcome.js';
import { startSession, waitOptions } from './session.js';
import type { WaitOutcome } from './wait.js';

/** One finished task, as {@link mapIter} yields it. */
export interface MapItem<R = unknown> {
  /** The task's position in `args`, from 0 (as in `map`'s result array). */
  readonly index: number;
  /** `done` (a result), `failed` (it threw), `lost` (it never reported) or `cancelled`. */
  readonly status: 'done' | 'failed' | 'lost' | 'cancelled';
  /** The result when `status` is `done`, else `null`. */
  readonly result: R | null;
  /** The error's stack text when `failed`; why, when `lost` or `cancelled`. */
  readonly error?: string;
}

/**
 * Runs `f` over `args` like {@link map}, but yields each task as it finishes, in completion
 * order, so a caller can use early results and never holds them all. Every task is yielded
 * exactly once: results and errors as they arrive, lost and cancelled tasks when they become
 * final. Leaving the loop early (`break`, a throw) cancels the open tasks.
 *
 * @throws SheepdogError `TIMEOUT` or `CANCELLED` after the last item, as `map` does
 *
 * @example
 * for await (const { index, status, result } of mapIter((x: number) => x * x, [1, 2, 3])) {
 *   console.log(index, status, result);
 * }
 */
export function mapIter<F extends AnyFunction>(
  f: F,
  args: ArgsSource<ArgsOf<F>>,
  config?: SheepdogConfig,
  ns?: Namespace,
): AsyncGenerator<MapItem<ResultOf<F>>, void, undefined>;
export function mapIter<R = unknown>(
  f: ModuleFunction,
  args: ArgsSource<unknown>,
  config?: SheepdogConfig,
  ns?: Namespace,
): AsyncGenerator<MapItem<R>, void, undefined>;
export async function* mapIter(
  f: AnyFunction | ModuleFunction,
  args: ArgsSource<unknown>,
  config?: SheepdogConfig,
  ns?: Namespace,
): AsyncGenerator<MapItem, void, undefined> {
  const startedAt = Date.now();
  const resolved = parseConfig(config);
  const session = await startSession(f, args, resolved, ns);
  const { storage, requestId } = session;
  const n = storage.countTasks(requestId);
  // One byte per task: what has been yielded. Bounded, unlike a queue of results.
  const yielded = new Uint8Array(n + 1);
  let arrived: number[] = [];
  let wake: (() => void) | undefined;
  const unsubscribe =
    session.server?.onTask((event) => {
      if (event.requestId !== requestId) return;
      arrived.push(event.jobIndex);
      wake?.();
    }) ?? ((): void => undefined);
  let outcome: WaitOutcome | undefined;
  let failure: Error | undefined;
  const waiting = session.wait(waitOptions(resolved, startedAt)).then(
    (o) => {
      outcome = o;
      wake?.();
    },
    (error: unknown) => {
      failure = error instanceof Error ? error : new Error(String(error));
      wake?.();
    },
  );
  const item = (jobIndex: number): MapItem | undefined => {
    const o = storage.getOutcome(requestId, jobIndex);
    if (o.state === 'pending' || o.state === 'running') return undefined;
    yielded[jobIndex] = 1;
    const result = o.result === null ? null : decodeValue(o.result);
    const error = o.error !== null ? new TextDecoder().decode(o.error) : (o.reason ?? undefined);
    return {
      index: jobIndex - 1,
      status: o.state,
      result,
      ...(error === undefined ? {} : { error }),
    };
  };
  let finished = false;
  try {
    // Tasks that reported before this listened (fast local tasks can).
    for (const row of storage.getTaskStates(requestId)) {
      if (row.state === 'done' || row.state === 'failed') arrived.push(row.jobIndex);
    }
    for (;;) {
      const batch = arrived;
      arrived = [];
      for (const jobIndex of batch) {
        if (yielded[jobIndex] === 1) continue;
        const next = item(jobIndex);
        if (next !== undefined) yield next;
      }
      if (outcome !== undefined || failure !== undefined) break;
      if (arrived.length === 0) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    }
    if (failure !== undefined) throw failure;
    // Lost and cancelled tasks send no event; a result stored by another process neither.
    for (const row of storage.getTaskStates(requestId)) {
      if (yielded[row.jobIndex] === 1) continue;
      const next = item(row.jobIndex);
      if (next !== undefined) yield next;
    }
    finished = true;
    if (outcome !== undefined && outcome.kind !== 'finished') {
      settle(storage, requestId, outcome, resolved);
    }
  } finally {
    unsubscribe();
    if (!finished && outcome === undefined && failure === undefined) {
      await session.cancel('the mapIter loop was left before every task finished');
    }
    await waiting;
    await session.release();
  }
}
