// Every rejected argument: INVALID_ARGUMENT, and nothing stored.
import { describe, expect, it } from 'vitest';
import { bytes, expectCode, F, NS, rawQuery, useTempStorage } from '../test/fixture.js';

const temp = useTempStorage('sheepdog-validation-');
const { addRequest } = temp;

const rawAll = rawQuery(temp);

describe('invalid arguments', () => {
  const badIds: unknown[] = [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1', null];

  it('rejects ids that are not positive safe integers', () => {
    const id = addRequest();
    for (const bad of badIds) {
      const b = bad as number;
      expectCode(() => temp.storage.getDetails(b, 1), 'INVALID_ARGUMENT');
      expectCode(() => temp.storage.getDetails(id, b), 'INVALID_ARGUMENT');
      expectCode(() => temp.storage.storeResult(id, b, bytes('r')), 'INVALID_ARGUMENT');
      expectCode(() => temp.storage.storeError(b, 1, bytes('e')), 'INVALID_ARGUMENT');
      expectCode(() => temp.storage.markRunning(id, b), 'INVALID_ARGUMENT');
      expectCode(() => temp.storage.countResults(b), 'INVALID_ARGUMENT');
      expectCode(() => temp.storage.getResults(b), 'INVALID_ARGUMENT');
    }
    expect(temp.storage.countResultsAndErrors(id)).toBe(0);
  });

  it('rejects payloads that are not Uint8Array, storing nothing', () => {
    const id = addRequest();
    for (const bad of ['text', [1, 2], null, undefined, 42, new ArrayBuffer(2), {}]) {
      const b = bad as Uint8Array;
      const error = expectCode(() => temp.storage.storeResult(id, 1, b), 'INVALID_ARGUMENT');
      expect(error.message).toContain('Uint8Array');
      expectCode(() => temp.storage.storeError(id, 1, b), 'INVALID_ARGUMENT');
      expectCode(() => temp.storage.newRequest(b, NS, []), 'INVALID_ARGUMENT');
      expectCode(() => temp.storage.newRequest(F, b, []), 'INVALID_ARGUMENT');
    }
    expect(temp.storage.countResultsAndErrors(id)).toBe(0);
    expect(temp.storage.listRequests()).toHaveLength(1);
  });

  it('stores nothing when one entry of argsList is bad', () => {
    const error = expectCode(
      () => temp.storage.newRequest(F, NS, [bytes('a'), 'b' as unknown as Uint8Array]),
      'INVALID_ARGUMENT',
    );
    expect(error.message).toContain('argsList[1]');
    expectCode(
      () => temp.storage.newRequest(F, NS, 5 as unknown as Iterable<Uint8Array>),
      'INVALID_ARGUMENT',
    );
    expect(rawAll('SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM tasks)')).toEqual([
      [0, 0],
    ]);
  });

  it('stores nothing when the argsList iterable throws part way', () => {
    function* failing(): Generator<Uint8Array> {
      yield bytes('a');
      throw new Error('generator broke');
    }
    expect(() => temp.storage.newRequest(F, NS, failing())).toThrow('generator broke');
    expect(temp.storage.listRequests()).toEqual([]);
    expect(rawAll('SELECT count(*) FROM tasks')).toEqual([[0]]);
  });

  it('rejects malformed meta', () => {
    expectCode(
      () => temp.storage.newRequest(F, NS, [], { tokenHash: 'secret' }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => temp.storage.newRequest(F, NS, [], { label: 5 as unknown as string }),
      'INVALID_ARGUMENT',
    );
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expectCode(() => temp.storage.newRequest(F, NS, [], { config: cyclic }), 'INVALID_ARGUMENT');
    expect(temp.storage.listRequests()).toEqual([]);
  });

  it('rejects a maxAttempts or port that is not a whole number in range, storing nothing', async () => {
    const bad: [string, unknown][] = [
      ['maxAttempts', 0],
      ['maxAttempts', -1],
      ['maxAttempts', 1.5],
      ['maxAttempts', '3'],
      ['maxAttempts', 2 ** 53],
      ['port', 0],
      ['port', 65_536],
      ['port', 80.5],
      ['port', '8080'],
    ];
    for (const [name, value] of bad) {
      const meta = { [name]: value } as Record<string, number>;
      const error = expectCode(() => temp.storage.newRequest(F, NS, [], meta), 'INVALID_ARGUMENT');
      expect(error.message).toContain(`meta.${name}`);
      await expect(temp.storage.newRequestAsync(F, NS, [], meta)).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    }
    expect(temp.storage.listRequests()).toEqual([]);
  });
});
