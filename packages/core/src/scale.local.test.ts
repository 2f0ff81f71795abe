// Lease mode, streamed arguments and results as they complete, end to end on the local backend.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Storage } from '@sheepdog/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { local } from './backends/local.js';
import { AUTO_LEASE_ABOVE, planJob } from './batching.js';
import { map, mapIter, type SheepdogConfig } from './index.js';

let dir: string;
let counter = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-scale-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(extra: SheepdogConfig = {}): SheepdogConfig & { dbfile: string } {
  counter += 1;
  return {
    dbfile: join(dir, `db-${counter}.sqlite`),
    concurrency: 2,
    pollIntervalMs: 200,
    ...extra,
  };
}

// Given to a task in `ns`; declared here only so that the task type-checks.
const GATE = '';

function jobsOf(dbfile: string): { lease?: unknown }[] {
  const storage = new Storage(dbfile);
  try {
    const request = storage.listRequests().at(-1);
    return request === undefined ? [] : storage.getJobs(request.id).map((j) => j.meta ?? {});
  } finally {
    storage.close();
  }
}

describe('planJob', () => {
  const backend = local({ concurrency: 3 });
  it('leases when workers is below the task count, or automatically above the threshold', () => {
    expect(planJob({ workers: 4 }, backend, 200)).toEqual({ lease: { workers: 4 } });
    expect(planJob({ workers: 400 }, backend, 200)).toEqual({});
    expect(planJob({}, backend, AUTO_LEASE_ABOVE)).toEqual({});
    expect(planJob({ concurrency: 3 }, backend, AUTO_LEASE_ABOVE + 1)).toEqual({
      lease: { workers: 3 },
    });
    expect(planJob({ maxRunning: 2, leaseMs: 500, workers: 5 }, backend, 10)).toEqual({
      maxRunning: 2,
      lease: { workers: 5, leaseMs: 500 },
    });
  });

  it('gives a backend without lease support one task per index', () => {
    const plain = { ...backend, supportsLease: false };
    expect(planJob({ workers: 4, maxRunning: 2 }, plain, 200)).toEqual({ maxRunning: 2 });
  });
});

describe('lease mode through map', () => {
  it('takes arguments from an async iterable, streamed, results in order', async () => {
    async function* numbers(): AsyncGenerator<number> {
      for (let i = 0; i < 3000; i++) {
        if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
        yield i;
      }
    }
    const c = config();
    const out = await map((x: number) => x + 1, numbers(), c);
    expect(out).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    // Above the threshold: one lease-mode job.
    expect(jobsOf(c.dbfile)).toEqual([expect.objectContaining({ lease: true })]);
  }, 60_000);

  it('caps running workers with maxRunning', async () => {
    const c = config({ workers: 3, maxRunning: 1 });
    const out = await map((x: number) => x * 2, [1, 2, 3, 4, 5, 6], c);
    expect(out).toEqual([2, 4, 6, 8, 10, 12]);
  }, 60_000);
});

describe('mapIter', () => {
  it('yields every task once as it completes, errors with their stack', async () => {
    const seen = new Map<number, { status: string; result: unknown; error?: string }>();
    // The first argument's task finishes only once the loop has seen the last one's: the order
    // the items come in is then fixed, however the machine schedules the nine processes.
    const f = async (x: number): Promise<number> => {
      const fs = require('node:fs');
      while (x === 1 && !fs.existsSync(`${GATE}/go`)) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      if (x === 4) throw new Error('four');
      return x * 10;
    };
    const gate = mkdtempSync(join(dir, 'gate-'));
    const order: number[] = [];
    const c = config({ concurrency: 9 });
    for await (const item of mapIter(f, [1, 2, 3, 4, 5, 6, 7, 8, 9], c, { GATE: gate })) {
      expect(seen.has(item.index)).toBe(false);
      seen.set(item.index, item);
      order.push(item.index);
      if (item.index === 8) writeFileSync(join(gate, 'go'), '');
    }
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(seen.get(0)).toEqual({ index: 0, status: 'done', result: 10 });
    expect(seen.get(3)?.status).toBe('failed');
    expect(seen.get(3)?.error).toMatch(/Error: four\n\s+at /);
    // Items come as tasks complete, not in argument order.
    expect(order.indexOf(8)).toBeLessThan(order.indexOf(0));
  }, 60_000);

  it('cancels the open tasks when the loop is left early', async () => {
    const c = config({ concurrency: 1 });
    const slow = async (x: number): Promise<number> => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      return x;
    };
    for await (const item of mapIter(slow, [1, 2, 3, 4, 5], c)) {
      expect(item.status).toBe('done');
      break;
    }
    const storage = new Storage(c.dbfile);
    try {
      const request = storage.listRequests().at(-1);
      expect(request?.states.cancelled).toBeGreaterThan(0);
      expect((request?.states.pending ?? 0) + (request?.states.running ?? 0)).toBe(0);
    } finally {
      storage.close();
    }
  }, 60_000);
});
