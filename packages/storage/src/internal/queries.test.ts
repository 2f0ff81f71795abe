// Reading progress and outcomes: per-state counts, open tasks, results without the arguments.
import { beforeEach, describe, expect, it } from 'vitest';
import * as fx from '../test/fixture.js';

const temp = fx.useTempStorage('sheepdog-queries-');
const { addRequest } = temp;

let id: number;
const addAttemptsRequest = (): void => {
  id = fx.threeTaskRequest(temp.storage);
};

describe('task state', () => {
  it('lists requests with per-state counts and metadata', () => {
    const tokenHash = 'a'.repeat(64);
    const a = temp.storage.newRequest(fx.F, fx.NS, fx.ARGS, {
      tokenHash,
      backend: 'local',
      label: 'first',
      config: { concurrency: 4, opts: ['-l', 'h_vmem=1G'] },
    });
    const b = temp.storage.newRequest(fx.F, fx.NS, [fx.bytes('x')]);
    temp.storage.markRunning(a, 1);
    temp.storage.storeResult(a, 2, fx.bytes('r'));
    temp.storage.storeError(a, 3, fx.bytes('e'));
    const list = temp.storage.listRequests();
    expect(list.map((r) => r.id)).toEqual([a, b]);
    expect(list[0]).toMatchObject({
      id: a,
      nTasks: 3,
      backend: 'local',
      label: 'first',
      status: 'active',
      config: { concurrency: 4, opts: ['-l', 'h_vmem=1G'] },
      states: { pending: 0, running: 1, done: 1, failed: 1, lost: 0, cancelled: 0 },
    });
    expect(list[0]?.createdAt).toBeGreaterThan(Date.now() - 60_000);
    expect(list[1]).toMatchObject({ backend: null, label: null, config: null });
    expect(list[1]?.states.pending).toBe(1);
    expect(temp.storage.getRequest(b)).toEqual(list[1]);
    expect(temp.storage.getTokenHash(a)).toBe(tokenHash);
    expect(temp.storage.getTokenHash(b)).toBeNull();
  });
});

describe('hasOpenTasks', () => {
  it('says whether anything is pending or running, with one index probe', () => {
    const id = temp.storage.newRequest(fx.bytes('f'), fx.bytes('ns'), [
      fx.bytes('a'),
      fx.bytes('b'),
    ]);
    expect(temp.storage.hasOpenTasks(id)).toBe(true);
    temp.storage.storeResult(id, 1, fx.bytes('r'));
    temp.storage.storeError(id, 2, fx.bytes('e'));
    expect(temp.storage.hasOpenTasks(id)).toBe(false);
    expect(() => temp.storage.hasOpenTasks(99)).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_REQUEST' }),
    );
  });
});

describe('getOutcome and getResultList', () => {
  it('read results and errors without the arguments', () => {
    const id = temp.storage.newRequest(fx.bytes('f'), fx.bytes('ns'), [
      fx.bytes('a'),
      fx.bytes('b'),
      fx.bytes('c'),
    ]);
    temp.storage.storeResult(id, 1, fx.bytes('r1'));
    temp.storage.storeError(id, 2, fx.bytes('Error: two'));
    expect(temp.storage.getResultList(id).map(fx.text)).toEqual(['r1', null, null]);
    const one = temp.storage.getOutcome(id, 1);
    expect([one.state, fx.text(one.result), one.error]).toEqual(['done', 'r1', null]);
    const two = temp.storage.getOutcome(id, 2);
    expect([two.state, two.result, fx.text(two.error)]).toEqual(['failed', null, 'Error: two']);
    expect(() => temp.storage.getOutcome(id, 9)).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_TASK' }),
    );
  });
});

describe('iterateResultList', () => {
  it('yields each result in job-index order, null where there is none, as it is consumed', () => {
    const id = addRequest();
    temp.storage.storeResult(id, 3, fx.bytes('three'));
    temp.storage.storeResult(id, 1, fx.bytes('one'));
    const seen = [...temp.storage.iterateResultList(id)].map((r) =>
      r === null ? null : fx.text(r),
    );
    expect(seen).toEqual(['one', null, 'three']);
    expect([...temp.storage.iterateResultList(id)]).toEqual(temp.storage.getResultList(id));
  });

  it('frees the connection when the caller stops early, and refuses unknown requests', () => {
    const id = addRequest();
    fx.storeResults(temp.storage, id);
    for (const result of temp.storage.iterateResultList(id)) {
      expect(fx.text(result as Uint8Array)).toBe('ABC');
      break;
    }
    temp.storage.storeError(id, 2, fx.bytes('later'));
    expect(temp.storage.countErrors(id)).toBe(0);
    fx.expectCode(() => [...temp.storage.iterateResultList(999)], 'UNKNOWN_REQUEST');
  });
});

describe('submissions and states, as a waiting process reads them', () => {
  beforeEach(addAttemptsRequest);

  it('lists the indexes of tasks in given states', () => {
    temp.storage.markLost(id, 1, 'gone');
    temp.storage.storeError(id, 3, fx.bytes('boom'));
    expect(temp.storage.indicesInState(id, ['lost', 'failed'])).toEqual([1, 3]);
    expect(temp.storage.indicesInState(id, ['pending'])).toEqual([2]);
    expect(temp.storage.indicesInState(id, [])).toEqual([]);
    expect(() => temp.storage.indicesInState(id, ['gone' as never])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => temp.storage.indicesInState(id + 1, ['lost'])).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_REQUEST' }),
    );
  });
});
