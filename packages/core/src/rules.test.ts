// The retry and settled rules, and the queries that read them from a database file, on
// requests written with the storage package as map and the workers would leave them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Storage } from '@sheepdog/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { look } from '../test/helpers.js';
import { listRequests, requestSummary, retriesDue, unfinishedRequests } from './queries.js';
import { isSettled, maxAttempts, retryCandidates } from './rules.js';

const bytes = new Uint8Array([1]);
const stored = { backend: 'local', port: 4000, localhost: '127.0.0.1' };

let dir: string;
let dbfile: string;
let counter = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-rules-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh database file with one request of `n` tasks stored with `config`. */
function request(n: number, config: unknown): number {
  counter += 1;
  dbfile = join(dir, `rules-${counter}.sqlite`);
  return look(dbfile, (s) => s.newRequest(bytes, bytes, Array(n).fill(bytes), { config }));
}

/** Records a submission of `indices` and one attempt at each, as its workers would. */
function submit(s: Storage, id: number, indices: number[], lease = false): void {
  s.addJob(id, {
    backend: 'local',
    jobId: String(s.countJobs(id) + 1),
    submittedAt: Date.now(),
    indices,
    ...(lease ? { meta: { lease: true } } : {}),
  });
  for (const index of indices) s.markRunning(id, index);
}

describe('the retry rule', () => {
  it('retries a lost task while its submissions, less the first, are fewer than retries', () => {
    const id = request(2, { ...stored, retries: 1 });
    look(dbfile, (s) => {
      submit(s, id, [1, 2]);
      s.markLost(id, 1, 'gone');
      s.storeError(id, 2, bytes);
      expect(retryCandidates(s, id, { retries: 1, retryErrors: false })).toEqual([1]);
      expect(retryCandidates(s, id, { retries: 1, retryErrors: true })).toEqual([1, 2]);
      expect(retryCandidates(s, id, { retries: 0, retryErrors: true })).toEqual([]);
      s.reopenTasks(id, [1]);
      submit(s, id, [1]);
      s.markLost(id, 1, 'gone again');
      expect(retryCandidates(s, id, { retries: 1, retryErrors: false })).toEqual([]);
      expect(retryCandidates(s, id, { retries: 2, retryErrors: false })).toEqual([1]);
    });
  });

  it('counts attempts in lease mode, where one submission may run a task several times', () => {
    const id = request(2, { ...stored, retries: 1 });
    look(dbfile, (s) => {
      submit(s, id, [1, 2], true);
      // Task 1's lease ran out and another worker took it: two attempts in one submission.
      s.markRunning(id, 1);
      s.markLost(id, 1, 'lease ran out twice');
      s.markLost(id, 2, 'gone');
      expect(retryCandidates(s, id, { retries: 1, retryErrors: false })).toEqual([2]);
    });
    expect(maxAttempts(1)).toBe(2);
  });

  it('uses the submissions a caller keeps instead of reading them', () => {
    const id = request(1, { ...stored, retries: 1 });
    look(dbfile, (s) => {
      submit(s, id, [1]);
      s.markLost(id, 1, 'gone');
      const kept = s.getJobs(id);
      const known = {
        submissions: () => [...kept, ...kept],
        indicesOf: (job: (typeof kept)[number]) => new Set(job.indices),
      };
      expect(retryCandidates(s, id, { retries: 1, retryErrors: false }, known)).toEqual([]);
    });
  });
});

describe('the settled rule', () => {
  it('holds once no task is open and no retry is due', () => {
    expect(isSettled({ pending: 0, running: 0 }, false)).toBe(true);
    expect(isSettled({ pending: 0, running: 0 }, true)).toBe(false);
    expect(isSettled({ pending: 1, running: 0 }, false)).toBe(false);
    expect(isSettled({ pending: 0, running: 1 }, false)).toBe(false);
  });
});

describe('queries', () => {
  it('read requests, their counts and the retries due by their stored config', async () => {
    const id = request(2, { ...stored, retries: 1 });
    look(dbfile, (s) => {
      s.newRequest(bytes, bytes, [bytes], { config: { ...stored, port: 4001 } });
      // Made with the storage package alone: no stored config.
      s.newRequest(bytes, bytes, [bytes]);
      submit(s, id, [1, 2]);
      s.markLost(id, 1, 'gone');
      s.storeResult(id, 2, bytes);
    });
    expect((await listRequests(dbfile)).map((r) => r.id)).toEqual([1, 2, 3]);
    expect((await requestSummary(id, dbfile)).states).toMatchObject({ lost: 1, done: 1 });
    await expect(requestSummary(9, dbfile)).rejects.toMatchObject({ code: 'UNKNOWN_REQUEST' });
    expect(await retriesDue(id, dbfile)).toEqual([1]);
    expect(await retriesDue(3, dbfile)).toEqual([]);
    expect((await unfinishedRequests(dbfile)).map((r) => r.id)).toEqual([2, 3]);
    expect((await unfinishedRequests(dbfile, 4001)).map((r) => r.id)).toEqual([2]);
    expect(await unfinishedRequests(dbfile, 4000)).toEqual([]);
  });
});
