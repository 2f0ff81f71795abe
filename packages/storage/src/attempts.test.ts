// Task attempts across lost detection, retries and cancellation: what core relies on so that
// no result is lost or counted twice.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Storage } from './storage.js';
import { StorageError } from './storage-error.js';

const enc = new TextEncoder();
const bytes = (text: string): Uint8Array => enc.encode(text);
const text = (data: Uint8Array): string => new TextDecoder().decode(data);

let dir: string;
let dbfile: string;
let storage: Storage;
let id: number;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-attempts-'));
  dbfile = join(dir, 'sheepdog.sqlite');
  storage = new Storage(dbfile);
  id = storage.newRequest(bytes('f'), bytes('ns'), [bytes('a1'), bytes('a2'), bytes('a3')], {
    tokenHash: 'a'.repeat(64),
  });
});

afterEach(() => {
  storage.close();
  rmSync(dir, { recursive: true, force: true });
});

function rows(table: 'results' | 'errors'): unknown[][] {
  const db = new Database(dbfile, { readonly: true });
  try {
    return db
      .prepare(`SELECT job_index, attempt FROM ${table} WHERE request_id = ? ORDER BY job_index`)
      .raw()
      .all(id) as unknown[][];
  } finally {
    db.close();
  }
}

function state(jobIndex: number): string | undefined {
  return storage.getTaskStates(id).find((t) => t.jobIndex === jobIndex)?.state;
}

describe('a late result from an earlier attempt', () => {
  it('is accepted once after the task was marked lost, and never makes a second row', () => {
    storage.markRunning(id, 1);
    expect(storage.markLost(id, 1, 'exit status 137')).toBe(true);
    expect(state(1)).toBe('lost');
    expect(storage.storeResult(id, 1, bytes('late'))).toBe(true);
    expect(state(1)).toBe('done');
    expect(storage.storeResult(id, 1, bytes('again'))).toBe(false);
    expect(storage.storeError(id, 1, bytes('and an error'))).toBe(false);
    expect(rows('results')).toEqual([[1, 1]]);
    expect(rows('errors')).toEqual([]);
    expect(text(storage.getResults(id)[0]?.[1] as Uint8Array)).toBe('late');
  });

  it('after a retry: the first of the two attempts wins and the other is a duplicate', () => {
    storage.markRunning(id, 2);
    storage.markLost(id, 2, 'killed by signal SIGKILL');
    expect(storage.reopenTasks(id, [2])).toEqual([2]);
    storage.markRunning(id, 2);
    // The first attempt's result arrives after all, then the second attempt's.
    expect(storage.storeResult(id, 2, bytes('attempt 1'))).toBe(true);
    expect(storage.storeResult(id, 2, bytes('attempt 2'))).toBe(false);
    expect(rows('results')).toEqual([[2, 2]]);
    expect(text(storage.getResults(id)[0]?.[1] as Uint8Array)).toBe('attempt 1');
    expect(storage.getTaskStates(id)[1]).toMatchObject({ state: 'done', attempts: 2 });
  });
});

describe('one outcome per task', () => {
  it('ignores an error that arrives after a result, and a result replaces an earlier error', () => {
    storage.storeResult(id, 1, bytes('r1'));
    expect(storage.storeError(id, 1, bytes('other attempt failed'))).toBe(false);
    storage.storeError(id, 2, bytes('first attempt failed'));
    expect(state(2)).toBe('failed');
    expect(storage.storeResult(id, 2, bytes('second attempt worked'))).toBe(true);
    expect(state(2)).toBe('done');
    expect(rows('errors')).toEqual([]);
    expect(rows('results')).toEqual([
      [1, 0],
      [2, 0],
    ]);
    expect(storage.countResultsAndErrors(id)).toBe(2);
  });
});

describe('reopenTasks', () => {
  it('reopens lost and failed tasks, deleting only the error, and leaves the others', () => {
    storage.markLost(id, 1, 'gone');
    storage.storeError(id, 2, bytes('boom'));
    storage.storeResult(id, 3, bytes('r3'));
    expect(storage.reopenTasks(id, [3, 2, 1, 2])).toEqual([1, 2]);
    expect(storage.getTaskStates(id).map((t) => [t.state, t.reason])).toEqual([
      ['pending', null],
      ['pending', null],
      ['done', null],
    ]);
    expect(rows('errors')).toEqual([]);
    expect(rows('results')).toEqual([[3, 0]]);
    expect(storage.openIndices(id)).toEqual([1, 2]);
    // The next attempt can report an error again.
    expect(storage.storeError(id, 2, bytes('boom again'))).toBe(true);
    expect(text(storage.getErrors(id)[0]?.[1] as Uint8Array)).toBe('boom again');
  });

  it('never reopens a cancelled task, which keeps refusing results', () => {
    storage.markCancelled(id, 'cancelled by AbortSignal');
    expect(storage.reopenTasks(id, [1, 2, 3])).toEqual([]);
    expect(() => storage.storeResult(id, 1, bytes('r'))).toThrow(
      expect.objectContaining({ code: 'TASK_CANCELLED' }),
    );
    expect(rows('results')).toEqual([]);
  });

  it('reopens nothing when one index is unknown', () => {
    storage.markLost(id, 1, 'gone');
    expect(() => storage.reopenTasks(id, [1, 4])).toThrow(StorageError);
    expect(() => storage.reopenTasks(id, [1, 4])).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_TASK' }),
    );
    expect(state(1)).toBe('lost');
    expect(() => storage.reopenTasks(id, [0])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => storage.reopenTasks(id + 1, [1])).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_REQUEST' }),
    );
  });
});

describe('token hashes', () => {
  it('lists the first hash, then the added ones; other processes see them', () => {
    expect(storage.getTokenHashes(id)).toEqual(['a'.repeat(64)]);
    storage.addTokenHash(id, 'b'.repeat(64));
    const other = new Storage(dbfile);
    try {
      expect(other.getTokenHashes(id)).toEqual(['a'.repeat(64), 'b'.repeat(64)]);
    } finally {
      other.close();
    }
    const bare = storage.newRequest(bytes('f'), bytes('ns'), []);
    expect(storage.getTokenHashes(bare)).toEqual([]);
  });

  it('refuses anything but a SHA-256 hex digest, and unknown requests', () => {
    expect(() => storage.addTokenHash(id, 'secret-token')).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => storage.addTokenHash(id + 1, 'c'.repeat(64))).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_REQUEST' }),
    );
    expect(() => storage.getTokenHashes(id + 1)).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_REQUEST' }),
    );
  });
});

describe('submissions and states, as a waiting process reads them', () => {
  it('keeps 1..N as a range and any other list as it is; counts submissions', () => {
    expect(storage.countJobs(id)).toBe(0);
    const big = Array.from({ length: 100_000 }, (_, i) => i + 1);
    storage.addJob(id, { backend: 'gridengine', jobId: '7', submittedAt: 1, indices: big });
    storage.addJob(id, { backend: 'gridengine', jobId: '8', submittedAt: 2, indices: [2, 3] });
    storage.addJob(id, { backend: 'local', jobId: 'x', submittedAt: 3, indices: [1] });
    expect(storage.countJobs(id)).toBe(3);
    const [first, second, third] = storage.getJobs(id);
    expect(first?.indices).toEqual(big);
    expect(second?.indices).toEqual([2, 3]);
    expect(third?.indices).toEqual([1]);
    const db = new Database(dbfile, { readonly: true });
    try {
      expect(db.prepare('SELECT indices FROM jobs ORDER BY id').pluck().all()).toEqual([
        '{"from":1,"to":100000}',
        '[2,3]',
        '[1]',
      ]);
    } finally {
      db.close();
    }
  });

  it('lists the indexes of tasks in given states', () => {
    storage.markLost(id, 1, 'gone');
    storage.storeError(id, 3, bytes('boom'));
    expect(storage.indicesInState(id, ['lost', 'failed'])).toEqual([1, 3]);
    expect(storage.indicesInState(id, ['pending'])).toEqual([2]);
    expect(storage.indicesInState(id, [])).toEqual([]);
    expect(() => storage.indicesInState(id, ['gone' as never])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => storage.indicesInState(id + 1, ['lost'])).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_REQUEST' }),
    );
  });
});
