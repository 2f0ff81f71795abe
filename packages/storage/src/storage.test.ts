import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { StorageError } from './storage-error.js';
import {
  ARGS,
  bytes,
  expectCode,
  F,
  NS,
  rawQuery,
  storeResults,
  useTempStorage,
} from './test/fixture.js';

const temp = useTempStorage('sheepdog-storage-');
const { addRequest } = temp;

const rawAll = rawQuery(temp);

/** Results for tasks 1 and 2, an error for task 3, as in the original suite. */
function storeResultsAndErrors(requestId: number): [Uint8Array[], Uint8Array[]] {
  const results = [bytes('ABC'), bytes('DEF')];
  const errors = [bytes('oops')];
  results.forEach((result, i) => {
    temp.storage.storeResult(requestId, i + 1, result);
  });
  temp.storage.storeError(requestId, 3, errors[0] as Uint8Array);
  return [results, errors];
}

describe("the original's storage suite", () => {
  it('creates the tables', () => {
    const names = rawAll("SELECT name FROM sqlite_master WHERE type = 'table'").flat();
    expect(names).toEqual(
      expect.arrayContaining(['requests', 'tasks', 'results', 'errors', 'jobs']),
    );
  });

  it('adds a request with job indexes 1..N in argument order', () => {
    const id = addRequest();
    const [request] = rawAll('SELECT id, func, ns, n_tasks FROM requests') as [
      [number, Buffer, Buffer, number],
    ];
    expect(request[0]).toBe(id);
    expect(new Uint8Array(request[1])).toEqual(F);
    expect(new Uint8Array(request[2])).toEqual(NS);
    expect(request[3]).toBe(3);
    const tasks = rawAll('SELECT request_id, job_index, args FROM tasks ORDER BY id') as [
      number,
      number,
      Buffer,
    ][];
    expect(tasks.map(([r, j, a]) => [r, j, new Uint8Array(a)])).toEqual([
      [id, 1, ARGS[0]],
      [id, 2, ARGS[1]],
      [id, 3, ARGS[2]],
    ]);
  });

  it('gets details', () => {
    const id = addRequest();
    expect(temp.storage.getDetails(id, 2)).toEqual([F, NS, ARGS[1]]);
  });

  it('stores results', () => {
    const id = addRequest();
    const results = storeResults(temp.storage, id);
    const rows = rawAll('SELECT job_index, result FROM results ORDER BY job_index') as [
      number,
      Buffer,
    ][];
    expect(rows.map(([j, r]) => [j, new Uint8Array(r)])).toEqual([
      [1, results[0]],
      [2, results[1]],
      [3, results[2]],
    ]);
  });

  it('gets results as [args, result] pairs', () => {
    const id = addRequest();
    const results = storeResults(temp.storage, id);
    expect(temp.storage.getResults(id)).toEqual(ARGS.map((args, i) => [args, results[i]]));
  });

  it('stores errors', () => {
    const id = addRequest();
    const [, errors] = storeResultsAndErrors(id);
    const rows = rawAll('SELECT job_index, error FROM errors') as [number, Buffer][];
    expect(rows.map(([j, e]) => [j, new Uint8Array(e)])).toEqual([[3, errors[0]]]);
  });

  it('gets errors as [args, error, jobIndex]', () => {
    const id = addRequest();
    const [, errors] = storeResultsAndErrors(id);
    expect(temp.storage.getErrors(id)).toEqual([[ARGS[2], errors[0], 3]]);
  });

  it('counts results', () => {
    const id = addRequest();
    expect(temp.storage.countResults(id)).toBe(0);
    storeResults(temp.storage, id);
    expect(temp.storage.countResults(id)).toBe(3);
  });

  it('counts errors', () => {
    const id = addRequest();
    expect(temp.storage.countErrors(id)).toBe(0);
    storeResultsAndErrors(id);
    expect(temp.storage.countErrors(id)).toBe(1);
  });

  it('counts results and errors', () => {
    const id = addRequest();
    expect(temp.storage.countResultsAndErrors(id)).toBe(0);
    storeResultsAndErrors(id);
    expect(temp.storage.countResultsAndErrors(id)).toBe(3);
  });

  it('counts tasks', () => {
    const id = addRequest();
    expect(temp.storage.countTasks(id)).toBe(3);
  });

  it('gets tasks with results, null where there is none yet', () => {
    const id = addRequest();
    temp.storage.storeResult(id, 2, bytes('DEF'));
    expect(temp.storage.getTasksWithResults(id)).toEqual([
      [ARGS[0], null],
      [ARGS[1], bytes('DEF')],
      [ARGS[2], null],
    ]);
  });
});

describe('unknown requests and tasks', () => {
  it('raises UNKNOWN_REQUEST from every method, never an empty answer', () => {
    addRequest();
    const calls: [string, () => unknown][] = [
      ['getDetails', () => temp.storage.getDetails(99, 1)],
      ['storeResult', () => temp.storage.storeResult(99, 1, bytes('r'))],
      ['storeError', () => temp.storage.storeError(99, 1, bytes('e'))],
      ['markRunning', () => temp.storage.markRunning(99, 1)],
      ['countTasks', () => temp.storage.countTasks(99)],
      ['countResults', () => temp.storage.countResults(99)],
      ['countErrors', () => temp.storage.countErrors(99)],
      ['countResultsAndErrors', () => temp.storage.countResultsAndErrors(99)],
      ['getResults', () => temp.storage.getResults(99)],
      ['getTasksWithResults', () => temp.storage.getTasksWithResults(99)],
      ['getErrors', () => temp.storage.getErrors(99)],
      ['getTokenHash', () => temp.storage.getTokenHash(99)],
      ['getRequest', () => temp.storage.getRequest(99)],
    ];
    for (const [name, call] of calls) {
      const error = expectCode(call, 'UNKNOWN_REQUEST');
      expect(error.message, name).toContain('99');
    }
    expect(rawAll('SELECT count(*) FROM results UNION ALL SELECT count(*) FROM errors')).toEqual([
      [0],
      [0],
    ]);
  });

  it('raises UNKNOWN_TASK for an index outside 1..N and stores nothing', () => {
    const id = addRequest();
    const error = expectCode(() => temp.storage.getDetails(id, 4), 'UNKNOWN_TASK');
    expect(error.message).toContain('1..3');
    expectCode(() => temp.storage.storeResult(id, 4, bytes('r')), 'UNKNOWN_TASK');
    expectCode(() => temp.storage.storeError(id, 4, bytes('e')), 'UNKNOWN_TASK');
    expectCode(() => temp.storage.markRunning(id, 4), 'UNKNOWN_TASK');
    expect(temp.storage.countResultsAndErrors(id)).toBe(0);
    expect(rawAll("SELECT count(*) FROM tasks WHERE state <> 'pending'")).toEqual([[0]]);
  });
});

describe('payloads', () => {
  it('round-trip byte for byte: zero bytes, empty, all byte values, 8 MB', () => {
    const zeros = new Uint8Array(1000);
    const empty = new Uint8Array(0);
    const every = Uint8Array.from({ length: 256 }, (_, i) => i);
    const big = new Uint8Array(randomBytes(8 * 1024 * 1024));
    const payloads = [zeros, empty, every, big];
    // Buffer.equals instead of toEqual: a deep compare of 8 MB element by element takes minutes.
    const same = (actual: Uint8Array | null | undefined, expected: Uint8Array): boolean =>
      actual instanceof Uint8Array && Buffer.from(expected).equals(actual);
    const id = temp.storage.newRequest(big, zeros, payloads);
    // A task ends with one outcome, so errors round-trip through a second request.
    const failing = temp.storage.newRequest(big, zeros, payloads);
    payloads.forEach((p, i) => {
      temp.storage.storeResult(id, i + 1, p);
      temp.storage.storeError(failing, i + 1, p);
    });
    const [func, ns, args] = temp.storage.getDetails(id, 4);
    expect(same(func, big) && same(ns, zeros) && same(args, big)).toBe(true);
    expect(temp.storage.getDetails(id, 2)[2]).toHaveLength(0);
    const results = temp.storage.getResults(id);
    const errors = temp.storage.getErrors(failing);
    const withResults = temp.storage.getTasksWithResults(id);
    expect(results).toHaveLength(4);
    payloads.forEach((p, i) => {
      for (const pair of [results[i], errors[i], withResults[i]]) {
        expect(same(pair?.[0], p) && same(pair?.[1], p), `payload ${i + 1}`).toBe(true);
      }
    });
  });

  it('accepts Buffers and offset views, and returns plain Uint8Array', () => {
    const backing = bytes('xxpayloadyy');
    const view = backing.subarray(2, 9);
    const id = temp.storage.newRequest(Buffer.from('f'), view, [Buffer.from('args')]);
    temp.storage.storeResult(id, 1, view);
    const [func, ns, args] = temp.storage.getDetails(id, 1);
    expect(ns).toEqual(bytes('payload'));
    expect(func).toEqual(bytes('f'));
    expect(args).toEqual(bytes('args'));
    const result = temp.storage.getResults(id)[0]?.[1];
    expect(result).toEqual(bytes('payload'));
    for (const out of [func, ns, args, result]) {
      expect(Object.getPrototypeOf(out)).toBe(Uint8Array.prototype);
    }
  });
});

describe('the database file', () => {
  it('throws CLOSED after close, and close is idempotent', () => {
    const id = addRequest();
    temp.storage.close();
    temp.storage.close();
    expectCode(() => temp.storage.countTasks(id), 'CLOSED');
    expectCode(() => temp.storage.newRequest(F, NS, ARGS), 'CLOSED');
    expectCode(() => temp.storage.listRequests(), 'CLOSED');
    expectCode(() => temp.storage.initdb(), 'CLOSED');
  });
});

describe('transaction', () => {
  it('commits the calls inside together; one that throws undoes only its own writes', () => {
    const id = addRequest();
    const seen: unknown[] = [];
    temp.storage.transaction(() => {
      temp.storage.markRunning(id, 1);
      temp.storage.storeResult(id, 1, bytes('one'));
      // Another connection sees nothing before the commit.
      seen.push(rawAll('SELECT count(*) FROM results')[0]);
      try {
        temp.storage.transaction(() => {
          temp.storage.markRunning(id, 3);
          temp.storage.storeResult(id, 99, bytes('no such task'));
        });
      } catch (error) {
        seen.push((error as StorageError).code);
      }
      temp.storage.storeError(id, 2, bytes('boom'));
    });
    expect(seen).toEqual([[0], 'UNKNOWN_TASK']);
    expect(rawAll('SELECT job_index, state, attempts FROM tasks ORDER BY job_index')).toEqual([
      [1, 'done', 1],
      [2, 'failed', 0],
      [3, 'pending', 0],
    ]);
    expect(rawAll('SELECT job_index FROM results')).toEqual([[1]]);
  });

  it('stores nothing when the work throws, and passes the error on', () => {
    const id = addRequest();
    expect(() =>
      temp.storage.transaction(() => {
        temp.storage.storeResult(id, 1, bytes('one'));
        throw new RangeError('changed my mind');
      }),
    ).toThrow(RangeError);
    expect(rawAll('SELECT count(*) FROM results')).toEqual([[0]]);
    expect(temp.storage.getTaskStates(id).map((t) => t.state)).toEqual([
      'pending',
      'pending',
      'pending',
    ]);
    expectCode(() => temp.storage.transaction(5 as unknown as () => void), 'INVALID_ARGUMENT');
  });
});
