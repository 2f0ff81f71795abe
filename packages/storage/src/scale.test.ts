// Requests whose arguments arrive over time, and reading outcomes without the arguments.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Storage } from './storage.js';

const enc = new TextEncoder();
const bytes = (text: string): Uint8Array => enc.encode(text);
const text = (data: Uint8Array | null): string | null =>
  data === null ? null : new TextDecoder().decode(data);

let dir: string;
let storage: Storage;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-scale-'));
  storage = new Storage(join(dir, 'db.sqlite'));
});

afterEach(() => {
  storage.close();
  rmSync(dir, { recursive: true, force: true });
});

async function* slowly(n: number): AsyncGenerator<Uint8Array> {
  for (let i = 1; i <= n; i++) {
    if (i % 7 === 0) await new Promise((resolve) => setImmediate(resolve));
    yield bytes(`a${i}`);
  }
}

describe('newRequestAsync', () => {
  it('streams an async iterable in chunks, job indexes in iteration order', async () => {
    const id = await storage.newRequestAsync(
      bytes('f'),
      bytes('ns'),
      slowly(25),
      {},
      {
        chunkSize: 10,
      },
    );
    expect(storage.countTasks(id)).toBe(25);
    expect(storage.getRequest(id).nTasks).toBe(25);
    const args = storage.getTasksWithResults(id).map(([a]) => text(a));
    expect(args).toEqual(Array.from({ length: 25 }, (_, i) => `a${i + 1}`));
  });

  it('takes a sync iterable too', async () => {
    const id = await storage.newRequestAsync(bytes('f'), bytes('ns'), [bytes('x'), bytes('y')]);
    expect(storage.countTasks(id)).toBe(2);
  });

  it('deletes the request when the iterable throws or yields a non-Uint8Array', async () => {
    async function* breaks(): AsyncGenerator<Uint8Array> {
      yield bytes('a');
      throw new Error('source failed');
    }
    await expect(
      storage.newRequestAsync(bytes('f'), bytes('ns'), breaks(), {}, { chunkSize: 1 }),
    ).rejects.toThrow('source failed');
    async function* bad(): AsyncGenerator<unknown> {
      yield 'not bytes';
    }
    await expect(
      storage.newRequestAsync(bytes('f'), bytes('ns'), bad() as AsyncIterable<Uint8Array>),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(storage.listRequests()).toEqual([]);
  });
});

describe('hasOpenTasks', () => {
  it('says whether anything is pending or running, with one index probe', () => {
    const id = storage.newRequest(bytes('f'), bytes('ns'), [bytes('a'), bytes('b')]);
    expect(storage.hasOpenTasks(id)).toBe(true);
    storage.storeResult(id, 1, bytes('r'));
    storage.storeError(id, 2, bytes('e'));
    expect(storage.hasOpenTasks(id)).toBe(false);
    expect(() => storage.hasOpenTasks(99)).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_REQUEST' }),
    );
  });
});

describe('getOutcome and getResultList', () => {
  it('read results and errors without the arguments', () => {
    const id = storage.newRequest(bytes('f'), bytes('ns'), [bytes('a'), bytes('b'), bytes('c')]);
    storage.storeResult(id, 1, bytes('r1'));
    storage.storeError(id, 2, bytes('Error: two'));
    expect(storage.getResultList(id).map(text)).toEqual(['r1', null, null]);
    const one = storage.getOutcome(id, 1);
    expect([one.state, text(one.result), one.error]).toEqual(['done', 'r1', null]);
    const two = storage.getOutcome(id, 2);
    expect([two.state, two.result, text(two.error)]).toEqual(['failed', null, 'Error: two']);
    expect(() => storage.getOutcome(id, 9)).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_TASK' }),
    );
  });
});
