// Creating requests, in one transaction or streamed in chunks, and reading back what they were
// created with: their code and their worker token hashes.
import { beforeEach, describe, expect, it } from 'vitest';
import { Storage } from '../storage.js';
import {
  bytes,
  expectCode,
  F,
  NS,
  rawQuery,
  text,
  threeTaskRequest,
  useTempStorage,
} from '../test/fixture.js';

const temp = useTempStorage('sheepdog-requests-');

const rawAll = rawQuery(temp);

let id: number;
const addAttemptsRequest = (): void => {
  id = threeTaskRequest(temp.storage);
};

async function* slowly(n: number): AsyncGenerator<Uint8Array> {
  for (let i = 1; i <= n; i++) {
    if (i % 7 === 0) await new Promise((resolve) => setImmediate(resolve));
    yield bytes(`a${i}`);
  }
}

describe('ordering and separate requests', () => {
  it('lists in job-index order whatever order results arrive in', () => {
    const n = 50;
    const args = Array.from({ length: n }, (_, i) => bytes(`a${i + 1}`));
    const id = temp.storage.newRequest(F, NS, args);
    const order = Array.from({ length: n }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
    for (const j of order) {
      if (j % 7 === 0) temp.storage.storeError(id, j, bytes(`e${j}`));
      else temp.storage.storeResult(id, j, bytes(`r${j}`));
    }
    const results = temp.storage.getResults(id);
    expect(results.map(([a]) => text(a))).toEqual(
      args.map(text).filter((_, i) => (i + 1) % 7 !== 0),
    );
    expect(results.every(([a, r]) => text(r) === `r${text(a).slice(1)}`)).toBe(true);
    expect(temp.storage.getErrors(id).map(([, e]) => text(e))).toEqual([
      'e7',
      'e14',
      'e21',
      'e28',
      'e35',
      'e42',
      'e49',
    ]);
  });

  it('keeps requests apart', () => {
    const a = temp.storage.newRequest(F, NS, [bytes('a1'), bytes('a2')]);
    const b = temp.storage.newRequest(bytes('g'), bytes('ns2'), [bytes('b1')]);
    expect(b).toBeGreaterThan(a);
    temp.storage.storeResult(b, 1, bytes('rb1'));
    expect(temp.storage.countResults(a)).toBe(0);
    expect(temp.storage.getDetails(b, 1)).toEqual([bytes('g'), bytes('ns2'), bytes('b1')]);
    expect(temp.storage.getResults(b)).toEqual([[bytes('b1'), bytes('rb1')]]);
    expect(temp.storage.countTasks(a)).toBe(2);
  });

  it('accepts a request with no tasks', () => {
    const id = temp.storage.newRequest(F, NS, []);
    expect(temp.storage.countTasks(id)).toBe(0);
    expect(temp.storage.getResults(id)).toEqual([]);
    expect(temp.storage.getTasksWithResults(id)).toEqual([]);
    expectCode(() => temp.storage.getDetails(id, 1), 'UNKNOWN_TASK');
  });

  it('streams a generator of 100 000 argument lists in one call', () => {
    let made = 0;
    function* argsList(): Generator<Uint8Array> {
      for (let i = 1; i <= 100_000; i++) {
        made++;
        yield bytes(String(i));
      }
    }
    const id = temp.storage.newRequest(F, NS, argsList());
    expect(made).toBe(100_000);
    expect(temp.storage.countTasks(id)).toBe(100_000);
    expect(temp.storage.getDetails(id, 100_000)[2]).toEqual(bytes('100000'));
    expect(temp.storage.getRequest(id).nTasks).toBe(100_000);
  });

  it('gives every task its own args at any count, the multi-row batches and their tail', () => {
    // Tasks go in 256 rows per statement; these counts end on, before and after a boundary.
    for (const n of [1, 255, 256, 257, 600]) {
      const id = temp.storage.newRequest(
        F,
        NS,
        Array.from({ length: n }, (_, i) => bytes(`args ${i + 1}`)),
      );
      expect(temp.storage.getRequest(id).nTasks).toBe(n);
      const args = temp.storage.getTasksWithResults(id).map(([a]) => Buffer.from(a).toString());
      expect(args).toEqual(Array.from({ length: n }, (_, i) => `args ${i + 1}`));
    }
  });

  it('stores nothing when an entry past the first batch is bad', () => {
    const list = Array.from({ length: 300 }, (_, i) => bytes(String(i)));
    list[280] = 'bad' as unknown as Uint8Array;
    expect(
      expectCode(() => temp.storage.newRequest(F, NS, list), 'INVALID_ARGUMENT').message,
    ).toContain('argsList[280]');
    expect(rawAll('SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM tasks)')).toEqual([
      [0, 0],
    ]);
  });
});

describe('newRequestAsync', () => {
  it('streams an async iterable in chunks, job indexes in iteration order', async () => {
    const id = await temp.storage.newRequestAsync(
      bytes('f'),
      bytes('ns'),
      slowly(25),
      {},
      {
        chunkSize: 10,
      },
    );
    expect(temp.storage.countTasks(id)).toBe(25);
    expect(temp.storage.getRequest(id).nTasks).toBe(25);
    const args = temp.storage.getTasksWithResults(id).map(([a]) => text(a));
    expect(args).toEqual(Array.from({ length: 25 }, (_, i) => `a${i + 1}`));
  });

  it('takes a sync iterable too', async () => {
    const id = await temp.storage.newRequestAsync(bytes('f'), bytes('ns'), [
      bytes('x'),
      bytes('y'),
    ]);
    expect(temp.storage.countTasks(id)).toBe(2);
  });

  it('deletes the request when the iterable throws or yields a non-Uint8Array', async () => {
    async function* breaks(): AsyncGenerator<Uint8Array> {
      yield bytes('a');
      throw new Error('source failed');
    }
    await expect(
      temp.storage.newRequestAsync(bytes('f'), bytes('ns'), breaks(), {}, { chunkSize: 1 }),
    ).rejects.toThrow('source failed');
    async function* bad(): AsyncGenerator<unknown> {
      yield 'not bytes';
    }
    await expect(
      temp.storage.newRequestAsync(bytes('f'), bytes('ns'), bad() as AsyncIterable<Uint8Array>),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(temp.storage.listRequests()).toEqual([]);
  });
});

describe('token hashes', () => {
  beforeEach(addAttemptsRequest);

  it('lists the first hash, then the added ones; other processes see them', () => {
    expect(temp.storage.getTokenHashes(id)).toEqual(['a'.repeat(64)]);
    temp.storage.addTokenHash(id, 'b'.repeat(64));
    const other = new Storage(temp.dbfile);
    try {
      expect(other.getTokenHashes(id)).toEqual(['a'.repeat(64), 'b'.repeat(64)]);
    } finally {
      other.close();
    }
    const bare = temp.storage.newRequest(bytes('f'), bytes('ns'), []);
    expect(temp.storage.getTokenHashes(bare)).toEqual([]);
  });

  it('refuses anything but a SHA-256 hex digest, and unknown requests', () => {
    expect(() => temp.storage.addTokenHash(id, 'secret-token')).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => temp.storage.addTokenHash(id + 1, 'c'.repeat(64))).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_REQUEST' }),
    );
    expect(() => temp.storage.getTokenHashes(id + 1)).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_REQUEST' }),
    );
  });
});

describe('getCode', () => {
  beforeEach(addAttemptsRequest);

  it('getCode returns the shared function and namespace', () => {
    expect(temp.storage.getCode(id).map(text)).toEqual(['f', 'ns']);
  });
});

describe('maxAttempts and port', () => {
  it('keeps them with the request and returns them with its summary, null when not given', async () => {
    const typed = temp.storage.newRequest(F, NS, [bytes('a')], { maxAttempts: 3, port: 8123 });
    const streamed = await temp.storage.newRequestAsync(F, NS, [bytes('a')], {
      maxAttempts: 1,
      port: 65_535,
    });
    const bare = temp.storage.newRequest(F, NS, [bytes('a')], { maxAttempts: null, port: null });
    const plain = temp.storage.newRequest(F, NS, [bytes('a')]);
    expect(temp.storage.getRequest(typed)).toMatchObject({ maxAttempts: 3, port: 8123 });
    expect(temp.storage.getRequest(streamed)).toMatchObject({ maxAttempts: 1, port: 65_535 });
    expect(temp.storage.listRequests().map((r) => [r.id, r.maxAttempts, r.port])).toEqual([
      [typed, 3, 8123],
      [streamed, 1, 65_535],
      [bare, null, null],
      [plain, null, null],
    ]);
    expect(rawAll('SELECT max_attempts, port FROM requests WHERE id = ?', typed)).toEqual([
      [3, 8123],
    ]);
  });

  it('are their own columns, never read from config', () => {
    const id = temp.storage.newRequest(F, NS, [], { config: { retries: 4, port: 9000 } });
    expect(temp.storage.getRequest(id)).toMatchObject({
      config: { retries: 4, port: 9000 },
      maxAttempts: null,
      port: null,
    });
  });
});
