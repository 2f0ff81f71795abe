import { decodeValue } from '@sheepdog/serialize';
import type { Storage } from '@sheepdog/storage';
import { SheepdogError, type TaskStatus } from './errors.js';
import type { WaitOutcome } from './wait.js';

/** The results of a request in argument order, decoded, `null` where a task has none. */
export function collectResults(storage: Storage, requestId: number): unknown[] {
  // Results only, one at a time: reading the arguments back, or every payload before decoding
  // the first, would hold a serialised set in memory again.
  const results: unknown[] = [];
  for (const result of storage.iterateResultList(requestId)) {
    results.push(result === null ? null : decodeValue(result));
  }
  return results;
}

/** Every task's state, attempts and reason, in argument order. */
export function taskStatuses(storage: Storage, requestId: number): TaskStatus[] {
  return storage.getTaskStates(requestId).map((t) => ({ ...t }));
}

/**
 * What `map` (and `resume`) settle with once waiting ended: the results when every task
 * finished on its own; `TIMEOUT` or `CANCELLED`, carrying the partial results and the task
 * states, when they were cancelled (by this wait, or from another process).
 */
export function settle(
  storage: Storage,
  requestId: number,
  outcome: WaitOutcome,
  context: { dbfile: string; timeout?: number | undefined; verbose: boolean; notes: boolean },
): unknown[] {
  const results = collectResults(storage, requestId);
  const states = storage.countByState(requestId);
  const total = Object.values(states).reduce((a, b) => a + b, 0);
  const finished = `${states.done} of ${total} task(s) returned a result`;
  if (outcome.kind === 'timeout') {
    throw new SheepdogError(
      'TIMEOUT',
      `request ${requestId} did not finish within ${context.timeout} ms; its open tasks were cancelled and ${finished}. ` +
        'The error carries the partial results (error.results) and every task state (error.states); raise timeout if the tasks need longer.',
      { requestId, results, states: taskStatuses(storage, requestId) },
    );
  }
  if (outcome.kind === 'cancelled' || states.cancelled > 0) {
    throw new SheepdogError(
      'CANCELLED',
      `request ${requestId} was cancelled${outcome.kind === 'finished' ? ' from elsewhere' : ''}; ${finished}. ` +
        'The error carries the partial results (error.results) and every task state (error.states).',
      {
        requestId,
        results,
        states: taskStatuses(storage, requestId),
        ...(outcome.kind === 'cancelled' ? { cause: outcome.reason } : {}),
      },
    );
  }
  if (context.notes) noteUnfinished(storage, requestId, context.dbfile, context.verbose);
  return results;
}

/**
 * A one-line note on stderr when tasks ended without a result: always for lost tasks (their
 * `null` is a surprise), for tasks that raised errors only when `verbose`.
 */
export function noteUnfinished(
  storage: Storage,
  requestId: number,
  dbfile: string,
  verbose: boolean,
): void {
  const { failed, lost } = storage.countByState(requestId);
  if (lost === 0 && !(verbose && failed > 0)) return;
  const db = JSON.stringify(dbfile);
  const parts: string[] = [];
  if (lost > 0) parts.push(`${lost} task(s) were lost (they ended without reporting)`);
  if (failed > 0) parts.push(`${failed} raised errors`);
  process.stderr.write(
    `[sheepdog] request ${requestId}: ${parts.join(' and ')}; their results are null. ` +
      `See why with getTaskStates(${requestId}, ${db}) and getErrors(${requestId}, ${db}); ` +
      `run them again with retry(${requestId}, ${db}).\n`,
  );
}
