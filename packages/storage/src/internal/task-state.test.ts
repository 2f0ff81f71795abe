// Task attempts across lost detection, retries and cancellation, and the one outcome each task
// ends with: what core relies on so that no result is lost or counted twice.
import { beforeEach, describe, expect, it } from 'vitest';
import { StorageError } from '../storage-error.js';
import {
  ARGS,
  bytes,
  rawQuery,
  tenTaskRequest,
  text,
  threeTaskRequest,
  useTempStorage,
} from '../test/fixture.js';

const temp = useTempStorage('sheepdog-task-state-');
const { addRequest } = temp;

const rawAll = rawQuery(temp);

let id: number;
const addAttemptsRequest = (): void => {
  id = threeTaskRequest(temp.storage);
};

function rows(table: 'results' | 'errors'): unknown[][] {
  return rawAll(
    `SELECT job_index, attempt FROM ${table} WHERE request_id = ? ORDER BY job_index`,
    id,
  ) as unknown[][];
}

function state(jobIndex: number): string | undefined {
  return temp.storage.getTaskStates(id).find((t) => t.jobIndex === jobIndex)?.state;
}

const addLeaseRequest = (): void => {
  id = tenTaskRequest(temp.storage);
};

describe('a late result from an earlier attempt', () => {
  beforeEach(addAttemptsRequest);

  it('is accepted once after the task was marked lost, and never makes a second row', () => {
    temp.storage.markRunning(id, 1);
    expect(temp.storage.markLost(id, 1, 'exit status 137')).toBe(true);
    expect(state(1)).toBe('lost');
    expect(temp.storage.storeResult(id, 1, bytes('late'))).toBe(true);
    expect(state(1)).toBe('done');
    expect(temp.storage.storeResult(id, 1, bytes('again'))).toBe(false);
    expect(temp.storage.storeError(id, 1, bytes('and an error'))).toBe(false);
    expect(rows('results')).toEqual([[1, 1]]);
    expect(rows('errors')).toEqual([]);
    expect(text(temp.storage.getResults(id)[0]?.[1] as Uint8Array)).toBe('late');
  });

  it('after a retry: the first of the two attempts wins and the other is a duplicate', () => {
    temp.storage.markRunning(id, 2);
    temp.storage.markLost(id, 2, 'killed by signal SIGKILL');
    expect(temp.storage.reopenTasks(id, [2])).toEqual([2]);
    temp.storage.markRunning(id, 2);
    // The first attempt's result arrives after all, then the second attempt's.
    expect(temp.storage.storeResult(id, 2, bytes('attempt 1'))).toBe(true);
    expect(temp.storage.storeResult(id, 2, bytes('attempt 2'))).toBe(false);
    expect(rows('results')).toEqual([[2, 2]]);
    expect(text(temp.storage.getResults(id)[0]?.[1] as Uint8Array)).toBe('attempt 1');
    expect(temp.storage.getTaskStates(id)[1]).toMatchObject({ state: 'done', attempts: 2 });
  });
});

describe('one outcome per task', () => {
  beforeEach(addAttemptsRequest);

  it('ignores an error that arrives after a result, and a result replaces an earlier error', () => {
    temp.storage.storeResult(id, 1, bytes('r1'));
    expect(temp.storage.storeError(id, 1, bytes('other attempt failed'))).toBe(false);
    temp.storage.storeError(id, 2, bytes('first attempt failed'));
    expect(state(2)).toBe('failed');
    expect(temp.storage.storeResult(id, 2, bytes('second attempt worked'))).toBe(true);
    expect(state(2)).toBe('done');
    expect(rows('errors')).toEqual([]);
    expect(rows('results')).toEqual([
      [1, 0],
      [2, 0],
    ]);
    expect(temp.storage.countResultsAndErrors(id)).toBe(2);
  });
});

describe('reopenTasks', () => {
  beforeEach(addAttemptsRequest);

  it('reopens lost and failed tasks, deleting only the error, and leaves the others', () => {
    temp.storage.markLost(id, 1, 'gone');
    temp.storage.storeError(id, 2, bytes('boom'));
    temp.storage.storeResult(id, 3, bytes('r3'));
    expect(temp.storage.reopenTasks(id, [3, 2, 1, 2])).toEqual([1, 2]);
    expect(temp.storage.getTaskStates(id).map((t) => [t.state, t.reason])).toEqual([
      ['pending', null],
      ['pending', null],
      ['done', null],
    ]);
    expect(rows('errors')).toEqual([]);
    expect(rows('results')).toEqual([[3, 0]]);
    expect(temp.storage.openIndices(id)).toEqual([1, 2]);
    // The next attempt can report an error again.
    expect(temp.storage.storeError(id, 2, bytes('boom again'))).toBe(true);
    expect(text(temp.storage.getErrors(id)[0]?.[1] as Uint8Array)).toBe('boom again');
  });

  it('never reopens a cancelled task, which keeps refusing results', () => {
    temp.storage.markCancelled(id, 'cancelled by AbortSignal');
    expect(temp.storage.reopenTasks(id, [1, 2, 3])).toEqual([]);
    expect(() => temp.storage.storeResult(id, 1, bytes('r'))).toThrow(
      expect.objectContaining({ code: 'TASK_CANCELLED' }),
    );
    expect(rows('results')).toEqual([]);
  });

  it('reopens nothing when one index is unknown', () => {
    temp.storage.markLost(id, 1, 'gone');
    expect(() => temp.storage.reopenTasks(id, [1, 4])).toThrow(StorageError);
    expect(() => temp.storage.reopenTasks(id, [1, 4])).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_TASK' }),
    );
    expect(state(1)).toBe('lost');
    expect(() => temp.storage.reopenTasks(id, [0])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => temp.storage.reopenTasks(id + 1, [1])).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_REQUEST' }),
    );
  });
});

describe('one result per task', () => {
  it('answers a repeated result as a duplicate and keeps the first', () => {
    const id = addRequest();
    expect(temp.storage.storeResult(id, 2, bytes('first'))).toBe(true);
    expect(temp.storage.storeResult(id, 2, bytes('second'))).toBe(false);
    expect(temp.storage.storeResult(id, 2, bytes('first'))).toBe(false);
    expect(temp.storage.getResults(id)).toEqual([[ARGS[1], bytes('first')]]);
    expect(rawAll('SELECT count(*) FROM results')).toEqual([[1]]);
    expect(temp.storage.countResults(id)).toBe(1);
  });

  it('answers a repeated error as a duplicate and keeps the first', () => {
    const id = addRequest();
    expect(temp.storage.storeError(id, 1, bytes('boom 1'))).toBe(true);
    expect(temp.storage.storeError(id, 1, bytes('boom 2'))).toBe(false);
    expect(temp.storage.getErrors(id)).toEqual([[ARGS[0], bytes('boom 1'), 1]]);
    expect(temp.storage.countErrors(id)).toBe(1);
  });
});

describe('task state', () => {
  function taskRow(id: number, jobIndex: number): [string, number] {
    return rawAll(
      'SELECT state, attempts FROM tasks WHERE request_id = ? AND job_index = ?',
      id,
      jobIndex,
    )[0] as [string, number];
  }

  it('moves pending -> running -> done and counts attempts', () => {
    const id = addRequest();
    expect(taskRow(id, 1)).toEqual(['pending', 0]);
    expect(temp.storage.markRunning(id, 1)).toBe(true);
    expect(taskRow(id, 1)).toEqual(['running', 1]);
    expect(temp.storage.markRunning(id, 1)).toBe(true);
    expect(taskRow(id, 1)).toEqual(['running', 2]);
    temp.storage.storeResult(id, 1, bytes('r'));
    expect(taskRow(id, 1)).toEqual(['done', 2]);
    expect(rawAll('SELECT attempt FROM results')).toEqual([[2]]);
    expect(temp.storage.markRunning(id, 1)).toBe(false);
    expect(taskRow(id, 1)).toEqual(['done', 2]);
  });

  it('marks failed on error, and a later result wins over an earlier error', () => {
    const id = addRequest();
    temp.storage.storeError(id, 1, bytes('e'));
    expect(taskRow(id, 1)).toEqual(['failed', 0]);
    expect(temp.storage.markRunning(id, 1)).toBe(false);
    temp.storage.storeResult(id, 1, bytes('r'));
    expect(taskRow(id, 1)[0]).toBe('done');
    temp.storage.storeResult(id, 2, bytes('r'));
    temp.storage.storeError(id, 2, bytes('late error'));
    expect(taskRow(id, 2)[0]).toBe('done');
  });
});

describe('storeOutcomes', () => {
  beforeEach(addLeaseRequest);

  it('stores a batch in one go, first outcome wins, per-item statuses', () => {
    temp.storage.leaseTasks(id, { max: 10, leaseMs: 60_000 });
    const statuses = temp.storage.storeOutcomes(id, [
      { jobIndex: 1, kind: 'result', payload: bytes('r1') },
      { jobIndex: 2, kind: 'error', payload: bytes('Error: e2') },
      { jobIndex: 1, kind: 'result', payload: bytes('again') },
      { jobIndex: 11, kind: 'result', payload: bytes('r11') },
    ]);
    expect(statuses).toEqual(['stored', 'stored', 'duplicate', 'unknown']);
    expect(temp.storage.getResults(id).map(([, r]) => text(r))).toEqual(['r1']);
    expect(temp.storage.getErrors(id).map(([, e]) => text(e))).toEqual(['Error: e2']);
    expect(
      temp.storage
        .getTaskStates(id)
        .slice(0, 2)
        .map((s) => s.state),
    ).toEqual(['done', 'failed']);
  });

  it('refuses cancelled tasks per item', () => {
    temp.storage.storeResult(id, 1, bytes('r1'));
    temp.storage.markCancelled(id, 'test');
    expect(
      temp.storage.storeOutcomes(id, [
        { jobIndex: 1, kind: 'result', payload: bytes('x') },
        { jobIndex: 2, kind: 'result', payload: bytes('x') },
      ]),
    ).toEqual(['duplicate', 'cancelled']);
  });

  it('refuses an unknown request and malformed items', () => {
    expect(() => temp.storage.storeOutcomes(999, [])).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_REQUEST' }),
    );
    expect(() =>
      temp.storage.storeOutcomes(id, [{ jobIndex: 0, kind: 'result', payload: bytes('x') }]),
    ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
