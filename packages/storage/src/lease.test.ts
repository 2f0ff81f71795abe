// Leasing chunks of tasks and storing batches of outcomes: what lease-mode workers rely on.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Storage } from './storage.js';

const enc = new TextEncoder();
const bytes = (text: string): Uint8Array => enc.encode(text);
const text = (data: Uint8Array): string => new TextDecoder().decode(data);

let dir: string;
let dbfile: string;
let storage: Storage;
let id: number;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-lease-'));
  dbfile = join(dir, 'sheepdog.sqlite');
  storage = new Storage(dbfile);
  id = storage.newRequest(
    bytes('f'),
    bytes('ns'),
    Array.from({ length: 10 }, (_, i) => bytes(`a${i + 1}`)),
  );
});

afterEach(() => {
  storage.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Moves every running lease of the request into the past. */
function expireLeases(): void {
  const db = new Database(dbfile);
  try {
    db.prepare("UPDATE tasks SET lease_until = 1 WHERE request_id = ? AND state = 'running'").run(
      id,
    );
  } finally {
    db.close();
  }
}

describe('leaseTasks', () => {
  it('hands out pending tasks in job-index order, each once, until none remain', () => {
    const first = storage.leaseTasks(id, { max: 4, leaseMs: 60_000 });
    expect(first.map((t) => t.jobIndex)).toEqual([1, 2, 3, 4]);
    expect(first.map((t) => text(t.args))).toEqual(['a1', 'a2', 'a3', 'a4']);
    const second = storage.leaseTasks(id, { max: 100, leaseMs: 60_000 });
    expect(second.map((t) => t.jobIndex)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(storage.leaseTasks(id, { max: 100, leaseMs: 60_000 })).toEqual([]);
    const states = storage.getTaskStates(id);
    expect(states.every((s) => s.state === 'running' && s.attempts === 1)).toBe(true);
  });

  it('gives an expired lease to the next worker, counting the attempt, lowest index first', () => {
    storage.leaseTasks(id, { max: 3, leaseMs: 60_000 });
    storage.storeResult(id, 2, bytes('r2'));
    expireLeases();
    const again = storage.leaseTasks(id, { max: 3, leaseMs: 60_000 });
    expect(again.map((t) => t.jobIndex)).toEqual([1, 3, 4]);
    const states = storage.getTaskStates(id);
    expect(states[0]).toMatchObject({ state: 'running', attempts: 2 });
    expect(states[1]).toMatchObject({ state: 'done', attempts: 1 });
    expect(states[3]).toMatchObject({ state: 'running', attempts: 1 });
  });

  it('says when the earliest running lease runs out', () => {
    expect(storage.nextLeaseExpiry(id)).toBeNull();
    const before = Date.now();
    storage.leaseTasks(id, { max: 2, leaseMs: 5000 });
    expect(storage.nextLeaseExpiry(id)).toBeGreaterThanOrEqual(before + 5000);
    storage.storeResult(id, 1, bytes('r'));
    storage.storeResult(id, 2, bytes('r'));
    expect(storage.nextLeaseExpiry(id)).toBeNull();
  });

  it('marks a task lost when its lease runs out and no attempts are left', () => {
    storage.leaseTasks(id, { max: 1, leaseMs: 60_000, maxAttempts: 1 });
    expireLeases();
    const next = storage.leaseTasks(id, { max: 1, leaseMs: 60_000, maxAttempts: 1 });
    expect(next.map((t) => t.jobIndex)).toEqual([2]);
    const lost = storage.getTaskStates(id)[0];
    expect(lost?.state).toBe('lost');
    expect(lost?.reason).toMatch(/lease ran out/);
  });

  it('leases nothing of a cancelled request, and refuses unknown requests and bad options', () => {
    storage.markCancelled(id, 'test');
    expect(storage.leaseTasks(id, { max: 5, leaseMs: 1000 })).toEqual([]);
    expect(() => storage.leaseTasks(999, { max: 5, leaseMs: 1000 })).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_REQUEST' }),
    );
    expect(() => storage.leaseTasks(id, { max: 0, leaseMs: 1000 })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('serves the lease query from the (request_id, state, job_index) index without a sort', () => {
    const db = new Database(dbfile, { readonly: true });
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
    storage.leaseTasks(id, { max: 3, leaseMs: 60_000 });
    storage.storeOutcomes(id, [{ jobIndex: 2, kind: 'result', payload: bytes('r2') }]);
    expireLeases();
    const before = Date.now();
    expect(storage.renewLeases(id, [3, 1, 2, 7], 60_000)).toEqual([1, 3]);
    const until = storage.nextLeaseExpiry(id) as number;
    expect(until).toBeGreaterThanOrEqual(before + 60_000);
    // Renewed leases stay with their worker: the next lease gets new tasks, not 1 or 3.
    expect(storage.leaseTasks(id, { max: 2, leaseMs: 60_000 }).map((t) => t.jobIndex)).toEqual([
      4, 5,
    ]);
    expect(storage.getTaskStates(id).slice(0, 3)).toMatchObject([
      { state: 'running', attempts: 1 },
      { state: 'done', attempts: 1 },
      { state: 'running', attempts: 1 },
    ]);
  });

  it('refuses unknown requests and bad indices or lease lengths', () => {
    expect(() => storage.renewLeases(999, [1], 1000)).toThrow(/request 999/);
    expect(() => storage.renewLeases(id, [0], 1000)).toThrow(/indices must be/);
    expect(() => storage.renewLeases(id, [1], 0)).toThrow(/leaseMs must be/);
    expect(storage.renewLeases(id, [], 1000)).toEqual([]);
  });
});

describe('storeOutcomes', () => {
  it('stores a batch in one go, first outcome wins, per-item statuses', () => {
    storage.leaseTasks(id, { max: 10, leaseMs: 60_000 });
    const statuses = storage.storeOutcomes(id, [
      { jobIndex: 1, kind: 'result', payload: bytes('r1') },
      { jobIndex: 2, kind: 'error', payload: bytes('Error: e2') },
      { jobIndex: 1, kind: 'result', payload: bytes('again') },
      { jobIndex: 11, kind: 'result', payload: bytes('r11') },
    ]);
    expect(statuses).toEqual(['stored', 'stored', 'duplicate', 'unknown']);
    expect(storage.getResults(id).map(([, r]) => text(r))).toEqual(['r1']);
    expect(storage.getErrors(id).map(([, e]) => text(e))).toEqual(['Error: e2']);
    expect(
      storage
        .getTaskStates(id)
        .slice(0, 2)
        .map((s) => s.state),
    ).toEqual(['done', 'failed']);
  });

  it('refuses cancelled tasks per item', () => {
    storage.storeResult(id, 1, bytes('r1'));
    storage.markCancelled(id, 'test');
    expect(
      storage.storeOutcomes(id, [
        { jobIndex: 1, kind: 'result', payload: bytes('x') },
        { jobIndex: 2, kind: 'result', payload: bytes('x') },
      ]),
    ).toEqual(['duplicate', 'cancelled']);
  });

  it('refuses an unknown request and malformed items', () => {
    expect(() => storage.storeOutcomes(999, [])).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_REQUEST' }),
    );
    expect(() =>
      storage.storeOutcomes(id, [{ jobIndex: 0, kind: 'result', payload: bytes('x') }]),
    ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('getCode returns the shared function and namespace', () => {
    expect(storage.getCode(id).map(text)).toEqual(['f', 'ns']);
  });
});
