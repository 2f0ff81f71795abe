// A request's scheduler submissions, as a waiting or resuming process reads them.
import Database from 'better-sqlite3';
import { beforeEach, describe, expect, it } from 'vitest';
import { threeTaskRequest, useTempStorage } from '../test/fixture.js';

const temp = useTempStorage('sheepdog-jobs-');
let id: number;
const addAttemptsRequest = (): void => {
  id = threeTaskRequest(temp.storage);
};

describe('submissions and states, as a waiting process reads them', () => {
  beforeEach(addAttemptsRequest);

  it('keeps 1..N as a range and any other list as it is; counts submissions', () => {
    expect(temp.storage.countJobs(id)).toBe(0);
    const big = Array.from({ length: 100_000 }, (_, i) => i + 1);
    temp.storage.addJob(id, { backend: 'gridengine', jobId: '7', submittedAt: 1, indices: big });
    temp.storage.addJob(id, { backend: 'gridengine', jobId: '8', submittedAt: 2, indices: [2, 3] });
    temp.storage.addJob(id, { backend: 'local', jobId: 'x', submittedAt: 3, indices: [1] });
    expect(temp.storage.countJobs(id)).toBe(3);
    const [first, second, third] = temp.storage.getJobs(id);
    expect(first?.indices).toEqual(big);
    expect(second?.indices).toEqual([2, 3]);
    expect(third?.indices).toEqual([1]);
    const db = new Database(temp.dbfile, { readonly: true });
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
});
