/**
 * Reading a request's progress and outcomes: counts, per-state summaries, results and errors
 * in job-index order. Every read of one request raises `UNKNOWN_REQUEST` for an id the file
 * does not have, never an empty answer.
 * @module
 */
import { TASK_STATES, type TaskState } from '../schema.js';
import type {
  ArgsAndError,
  ArgsAndResult,
  RequestSummary,
  TaskOutcome,
  TaskStateRow,
} from '../types.js';
import { toBytes, toBytesOrNull } from './bytes.js';
import type { Connection } from './connection.js';
import type { RequestRow, TaskKey } from './statements.js';

/** Counts, summaries, results and errors of requests. */
export class Queries {
  readonly #c: Connection;

  constructor(connection: Connection) {
    this.#c = connection;
  }

  /** The statements of this concern. */
  get #q(): Connection['q']['queries'] {
    return this.#c.q.queries;
  }

  countTasks(id: number): number {
    return this.#c.count('countTasks', this.#c.q.lookups.countTasks, id);
  }

  countResults(id: number): number {
    return this.#c.count('countResults', this.#q.countResults, id);
  }

  countErrors(id: number): number {
    return this.#c.count('countErrors', this.#q.countErrors, id);
  }

  countResultsAndErrors(id: number): number {
    return this.#c.count('countResultsAndErrors', this.#q.countResultsAndErrors, id);
  }

  /** One request's summary, or every request's (oldest first) when `id` is left out. */
  summaries(id?: number): RequestSummary[] {
    return this.#c.guard('listRequests', () => {
      const rows = id === undefined ? this.#q.allRequests.all() : this.#q.request.all({ id });
      const counts =
        id === undefined ? this.#q.allStateCounts.all() : this.#q.stateCounts.all({ id });
      const states = new Map<number, Record<TaskState, number>>();
      for (const row of rows) states.set(row.id, emptyStates());
      for (const [requestId, state, n] of counts) {
        const perState = states.get(requestId);
        if (perState !== undefined) perState[state] = n;
      }
      return rows.map((row) => summary(row, states.get(row.id) ?? emptyStates()));
    });
  }

  /** One request's summary. */
  request(id: number): RequestSummary {
    const found = this.summaries(id)[0];
    if (found === undefined) throw this.#c.unknownRequest(id);
    return found;
  }

  outcome(key: TaskKey): TaskOutcome {
    const row = this.#c.guard('getOutcome', () => this.#q.getOutcome.get(key));
    if (row === undefined) this.#c.throwMissing(key.requestId, key.jobIndex);
    return {
      state: row.state,
      reason: row.reason,
      result: toBytesOrNull(row.result),
      error: toBytesOrNull(row.error),
    };
  }

  resultList(id: number): (Uint8Array | null)[] {
    return this.#c.list('getResultList', this.#q.getResultList, id).map(toBytesOrNull);
  }

  /** {@link Queries.resultList} one row at a time; the statement is closed however it ends. */
  *iterateResultList(id: number): Generator<Uint8Array | null, void, undefined> {
    const op = 'iterateResultList';
    if (!this.#c.guard(op, () => this.#c.exists(id))) throw this.#c.unknownRequest(id);
    const rows = this.#c.guard(op, () => this.#q.getResultList.iterate({ id }));
    try {
      for (;;) {
        const next = this.#c.guard(op, () => rows.next());
        if (next.done === true) return;
        yield toBytesOrNull(next.value);
      }
    } finally {
      rows.return?.();
    }
  }

  results(id: number): ArgsAndResult[] {
    const rows = this.#c.list('getResults', this.#q.getResults, id);
    return rows.map(([args, result]) => [toBytes(args), toBytes(result)]);
  }

  tasksWithResults(id: number): [args: Uint8Array, result: Uint8Array | null][] {
    const rows = this.#c.list('getTasksWithResults', this.#q.getTasksWithResults, id);
    return rows.map(([args, result]) => [toBytes(args), toBytesOrNull(result)]);
  }

  errors(id: number): ArgsAndError[] {
    const rows = this.#c.list('getErrors', this.#q.getErrors, id);
    return rows.map(([args, error, jobIndex]) => [toBytes(args), toBytes(error), jobIndex]);
  }

  hasOpenTasks(id: number): boolean {
    return this.#c.guard('hasOpenTasks', () => {
      if (this.#q.hasOpen.get({ id }) !== undefined) return true;
      this.#c.requireRequest(id);
      return false;
    });
  }

  openIndices(id: number): number[] {
    return this.#c.list('openIndices', this.#q.openIndices, id);
  }

  taskStates(id: number): TaskStateRow[] {
    return this.#c.list('getTaskStates', this.#q.taskStates, id);
  }

  indicesInState(id: number, states: readonly TaskState[]): number[] {
    return this.#c.guard('indicesInState', () => {
      this.#c.requireRequest(id);
      if (states.length === 0) return [];
      return this.#q.indicesInState.all({ id, states: JSON.stringify(states) });
    });
  }
}

function summary(row: RequestRow, states: Record<TaskState, number>): RequestSummary {
  return {
    ...row,
    config: row.config === null ? null : (JSON.parse(row.config) as unknown),
    states,
  };
}

function emptyStates(): Record<TaskState, number> {
  return Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
}
