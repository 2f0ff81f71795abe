// Leasing chunks of tasks: what lease-mode workers rely on.
import Database from 'better-sqlite3';
import { beforeEach, describe, expect, it } from 'vitest';
import { bytes, tenTaskRequest, text, useTempStorage, withRaw } from '../test/fixture.js';

const temp = useTempStorage('sheepdog-lease-');
let id: number;
const addLeaseRequest = (): void => {
  id = tenTaskRequest(temp.storage);
};

beforeEach(addLeaseRequest);

/** Moves every running lease of the request into the past. */
function expireLeases(): void {
  withRaw(
    temp.dbfile,
    (db) =>
      db
        .prepare("UPDATE tasks SET lease_until = 1 WHERE request_id = ? AND state = 'running'")
        .run(id),
    true,
  );
}

describe('leaseTasks', () => {
  it('hands out pending tasks in job-index order, each once, until none remain', () => {
    const first = temp.storage.leaseTasks(id, { max: 4, leaseMs: 60_000 });
    expect(first.map((t) => t.jobIndex)).toEqual([1, 2, 3, 4]);
    expect(first.map((t) => text(t.args))).toEqual(['a1', 'a2', 'a3', 'a4']);
    const second = temp.storage.leaseTasks(id, { max: 100, leaseMs: 60_000 });
    expect(second.map((t) => t.jobIndex)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(temp.storage.leaseTasks(id, { max: 100, leaseMs: 60_000 })).toEqual([]);
    const states = temp.storage.getTaskStates(id);
    expect(states.every((s) => s.state === 'running' && s.attempts === 1)).toBe(true);
  });

  it('gives an expired lease to the next worker, counting the attempt, lowest index first', () => {
    temp.storage.leaseTasks(id, { max: 3, leaseMs: 60_000 });
    temp.storage.storeResult(id, 2, bytes('r2'));
    expireLeases();
    const again = temp.storage.leaseTasks(id, { max: 3, leaseMs: 60_000 });
    expect(again.map((t) => t.jobIndex)).toEqual([1, 3, 4]);
    const states = temp.storage.getTaskStates(id);
    expect(states[0]).toMatchObject({ state: 'running', attempts: 2 });
    expect(states[1]).toMatchObject({ state: 'done', attempts: 1 });
    expect(states[3]).toMatchObject({ state: 'running', attempts: 1 });
  });

  it('says when the earliest running lease runs out', () => {
    expect(temp.storage.nextLeaseExpiry(id)).toBeNull();
    const before = Date.now();
    temp.storage.leaseTasks(id, { max: 2, leaseMs: 5000 });
    expect(temp.storage.nextLeaseExpiry(id)).toBeGreaterThanOrEqual(before + 5000);
    temp.storage.storeResult(id, 1, bytes('r'));
    temp.storage.storeResult(id, 2, bytes('r'));
    expect(temp.storage.nextLeaseExpiry(id)).toBeNull();
  });

  it('marks a task lost when its lease runs out and no attempts are left', () => {
    temp.storage.leaseTasks(id, { max: 1, leaseMs: 60_000, maxAttempts: 1 });
    expireLeases();
    const next = temp.storage.leaseTasks(id, { max: 1, leaseMs: 60_000, maxAttempts: 1 });
    expect(next.map((t) => t.jobIndex)).toEqual([2]);
    const lost = temp.storage.getTaskStates(id)[0];
    expect(lost?.state).toBe('lost');
    expect(lost?.reason).toMatch(/lease ran out/);
  });

  it('leases nothing of a cancelled request, and refuses unknown requests and bad options', () => {
    temp.storage.markCancelled(id, 'test');
    expect(temp.storage.leaseTasks(id, { max: 5, leaseMs: 1000 })).toEqual([]);
    expect(() => temp.storage.leaseTasks(999, { max: 5, leaseMs: 1000 })).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_REQUEST' }),
    );
    expect(() => temp.storage.leaseTasks(id, { max: 0, leaseMs: 1000 })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('serves the lease query from the (request_id, state, job_index) index without a sort', () => {
    const db = new Database(temp.dbfile, { readonly: true });
    try {
      const plan = db
        .prepare(
          "EXPLAIN QUERY PLAN SELECT job_index FROM tasks WHERE request_id = 1 AND state = 'pending' ORDER BY job_index LIMIT 10",
        )
        .all() as { detail: string }[];
      const details = plan.map((p) => p.detail).join();
      expect(details).toContain('tasks_request_state_job_idx');
      expect(details).not.toContain('TEMP B-TREE');
    } finally {
      db.close();
    }
  });
});

describe('renewLeases', () => {
  it('extends the leases of running tasks, so nobody else gets them; finished ones are left alone', () => {
    temp.storage.leaseTasks(id, { max: 3, leaseMs: 60_000 });
    temp.storage.storeOutcomes(id, [{ jobIndex: 2, kind: 'result', payload: bytes('r2') }]);
    expireLeases();
    const before = Date.now();
    expect(temp.storage.renewLeases(id, [3, 1, 2, 7], 60_000)).toEqual([1, 3]);
    const until = temp.storage.nextLeaseExpiry(id) as number;
    expect(until).toBeGreaterThanOrEqual(before + 60_000);
    // Renewed leases stay with their worker: the next lease gets new tasks, not 1 or 3.
    expect(temp.storage.leaseTasks(id, { max: 2, leaseMs: 60_000 }).map((t) => t.jobIndex)).toEqual(
      [4, 5],
    );
    expect(temp.storage.getTaskStates(id).slice(0, 3)).toMatchObject([
      { state: 'running', attempts: 1 },
      { state: 'done', attempts: 1 },
      { state: 'running', attempts: 1 },
    ]);
  });

  it('refuses unknown requests and bad indices or lease lengths', () => {
    expect(() => temp.storage.renewLeases(999, [1], 1000)).toThrow(/request 999/);
    expect(() => temp.storage.renewLeases(id, [0], 1000)).toThrow(/indices must be/);
    expect(() => temp.storage.renewLeases(id, [1], 0)).toThrow(/leaseMs must be/);
    expect(temp.storage.renewLeases(id, [], 1000)).toEqual([]);
  });
});
