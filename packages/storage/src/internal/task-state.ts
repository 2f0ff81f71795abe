/**
 * Task state and stored outcomes: a task is `pending`, `running` once fetched, and ends `done`
 * (a result), `failed` (an error), `lost` or `cancelled`, with one outcome. The first result
 * wins; an error for a task with a result is ignored; a late result for a `failed` or `lost`
 * task is accepted once, deleting the error; a `cancelled` task refuses both.
 * @module
 */
import type Database from 'better-sqlite3';
import type { TaskState } from '../schema.js';
import { StorageError } from '../storage-error.js';
import type { Outcome, OutcomeStatus } from '../types.js';
import { toBuffer } from './bytes.js';
import type { Connection } from './connection.js';
import type { StoreParams, TaskKey } from './statements.js';

/** Moving tasks between states, and storing their results and errors. */
export class TaskStates {
  readonly #c: Connection;
  readonly #q: Connection['q']['taskState'];
  readonly #storeResult: Database.Transaction<(params: StoreParams) => boolean>;
  readonly #storeError: Database.Transaction<(params: StoreParams) => boolean>;
  readonly #reopen: Database.Transaction<(id: number, indices: number[]) => number[]>;
  readonly #outcomes: Database.Transaction<
    (id: number, items: readonly Outcome[]) => OutcomeStatus[]
  >;

  constructor(connection: Connection) {
    this.#c = connection;
    const q = connection.q.taskState;
    this.#q = q;
    const { db } = connection;
    this.#storeResult = db.transaction((params: StoreParams): boolean => {
      if (q.insertResult.run(params).changes === 1) {
        q.markDone.run(params);
        // Another attempt may have failed first; the task ends with one outcome, the result.
        q.deleteError.run({ requestId: params.requestId, jobIndex: params.jobIndex });
        return true;
      }
      this.#requireOpenTask(params.requestId, params.jobIndex);
      return false;
    });
    this.#storeError = db.transaction((params: StoreParams): boolean => {
      if (q.insertError.run(params).changes === 1) {
        q.markFailed.run(params);
        return true;
      }
      this.#requireOpenTask(params.requestId, params.jobIndex);
      return false;
    });
    this.#reopen = db.transaction((id: number, indices: number[]): number[] => {
      const reopened: number[] = [];
      const now = Date.now();
      for (const jobIndex of indices) {
        const state = connection.q.lookups.taskState.get({ requestId: id, jobIndex });
        if (state === undefined) connection.throwMissing(id, jobIndex);
        if (state !== 'lost' && state !== 'failed') continue;
        if (state === 'failed') q.deleteError.run({ requestId: id, jobIndex });
        q.reopenTask.run({ requestId: id, jobIndex, now });
        reopened.push(jobIndex);
      }
      return reopened;
    });
    // Batches are the hot path of lease mode: the tasks' states are read with one query and
    // the state changes written with one statement each, instead of three statements per item.
    this.#outcomes = db.transaction((id: number, items: readonly Outcome[]): OutcomeStatus[] => {
      connection.requireRequest(id);
      const now = Date.now();
      const known = new Map<number, [state: TaskState, attempts: number]>();
      for (const [jobIndex, state, attempts] of q.batchStates.all({
        id,
        indices: JSON.stringify(items.map((item) => item.jobIndex)),
      })) {
        known.set(jobIndex, [state, attempts]);
      }
      const done: number[] = [];
      const failed: number[] = [];
      const statuses = items.map(({ jobIndex, kind, payload }): OutcomeStatus => {
        const task = known.get(jobIndex);
        if (task === undefined) return 'unknown';
        const [state, attempts] = task;
        if (state === 'cancelled') return 'cancelled';
        // A result exists exactly when the task is done; an error exactly when it failed.
        if (state === 'done' || (kind === 'error' && state === 'failed')) return 'duplicate';
        if (kind === 'result') {
          if (q.insertResultRow.run(id, jobIndex, toBuffer(payload), attempts, now).changes === 0)
            return 'duplicate';
          // Another attempt may have failed first; the task ends with one outcome, the result.
          if (state === 'failed') q.deleteError.run({ requestId: id, jobIndex });
          task[0] = 'done';
          done.push(jobIndex);
        } else {
          if (q.insertErrorRow.run(id, jobIndex, toBuffer(payload), attempts, now).changes === 0)
            return 'duplicate';
          task[0] = 'failed';
          failed.push(jobIndex);
        }
        return 'stored';
      });
      if (done.length > 0) q.markManyDone.run({ id, now, indices: JSON.stringify(done) });
      if (failed.length > 0) q.markManyFailed.run({ id, now, indices: JSON.stringify(failed) });
      return statuses;
    });
  }

  /** Like `Connection.requireTask`, and a cancelled task refuses further results and errors. */
  #requireOpenTask(requestId: number, jobIndex: number): void {
    const state = this.#c.q.lookups.taskState.get({ requestId, jobIndex });
    if (state === undefined) this.#c.throwMissing(requestId, jobIndex);
    if (state === 'cancelled') {
      throw new StorageError(
        'TASK_CANCELLED',
        `task ${jobIndex} of request ${requestId} was cancelled; its result is no longer accepted.`,
      );
    }
  }

  /** Stores a task's result unless it has one, marking it `done`; `false` for a repeat. */
  storeResult(key: TaskKey, result: Uint8Array): boolean {
    const params = { ...key, payload: toBuffer(result), now: Date.now() };
    return this.#c.guard('storeResult', () => this.#storeResult.immediate(params));
  }

  /** Stores a task's error unless it has an outcome, marking it `failed`; `false` otherwise. */
  storeError(key: TaskKey, error: Uint8Array): boolean {
    const params = { ...key, payload: toBuffer(error), now: Date.now() };
    return this.#c.guard('storeError', () => this.#storeError.immediate(params));
  }

  /** A batch of results and errors in one transaction, one status per item. */
  storeOutcomes(id: number, items: readonly Outcome[]): OutcomeStatus[] {
    return this.#c.guard('storeOutcomes', () => this.#outcomes.immediate(id, items));
  }

  /** `pending`, `running` or `lost` → `running` with one more attempt; `false` otherwise. */
  markRunning(key: TaskKey): boolean {
    const changes = this.#c.guard(
      'markRunning',
      () => this.#q.markRunning.run({ ...key, now: Date.now() }).changes,
    );
    if (changes === 1) return true;
    this.#requireOpenTask(key.requestId, key.jobIndex);
    return false;
  }

  /** `pending` or `running` → `lost`; `false` when the task had finished. */
  markLost(key: TaskKey, reason: string): boolean {
    const changes = this.#c.guard(
      'markLost',
      () => this.#q.markLost.run({ ...key, reason: String(reason), now: Date.now() }).changes,
    );
    if (changes === 0) this.#c.requireTask(key.requestId, key.jobIndex);
    return changes === 1;
  }

  /** Every `pending` or `running` task → `cancelled`; returns how many. */
  markCancelled(id: number, reason: string): number {
    return this.#c.guard('markCancelled', () => {
      this.#c.requireRequest(id);
      return this.#q.markCancelled.run({ id, reason: String(reason), now: Date.now() }).changes;
    });
  }

  /** `lost` or `failed` → `pending` (deleting the error), in one transaction; returns those. */
  reopen(id: number, indices: number[]): number[] {
    return this.#c.guard('reopenTasks', () => this.#reopen.immediate(id, indices));
  }
}
