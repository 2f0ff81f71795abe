// Never hang, never lose, never double-count, on the local backend: real task processes that
// die, throw, or run too long, a real server on loopback and a real SQLite file.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getServer } from '@sheepdog/server';
import { Storage } from '@sheepdog/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastRequest, look, quietly } from '../test/helpers.js';
import type { Backend, JobSpec } from './backend.js';
import { local } from './backends/local.js';
import { getErrors, getTaskStates, map, type SheepdogConfig, type SheepdogError } from './index.js';

let dir: string;
let base: SheepdogConfig;
let counter = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-reliability-'));
  base = { concurrency: 4, lostGraceMs: 300, pollIntervalMs: 100 };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh database file and marker folder for one test. */
function fresh(): { dbfile: string; markers: string } {
  counter += 1;
  const markers = join(dir, `markers-${counter}`);
  mkdirSync(markers);
  return { dbfile: join(dir, `db-${counter}.sqlite`), markers };
}

/** Result rows and tasks done: one row per task proves nothing was counted twice. */
function rowsPerTask(dbfile: string, requestId: number): { results: number; done: number } {
  return look(dbfile, (storage) => ({
    results: storage.getResults(requestId).length,
    done: storage.getTaskStates(requestId).filter((t) => t.state === 'done').length,
  }));
}

/** Dies on its first attempt for each listed index: SIGKILL or a throw, as `how` says. */
const flaky = (i: number, how: 'kill' | 'throw' | 'ok'): number => {
  const fs = require('node:fs');
  const marker = `${MARKERS}/${i}`;
  if (how !== 'ok' && !fs.existsSync(marker)) {
    fs.writeFileSync(marker, '');
    if (how === 'kill') process.kill(process.pid, 'SIGKILL');
    throw new Error(`first attempt of task ${i} fails`);
  }
  return 2 * i;
};
// Given to the tasks in `ns`; declared here only so that `flaky` type-checks.
const MARKERS = '';

/** A local backend that also hands the test each job's token, for raw posts. */
function recording(tokens: string[]): Backend {
  const inner = local({ concurrency: 4 });
  return {
    ...inner,
    async submit(spec: JobSpec) {
      tokens.push(spec.token);
      return inner.submit(spec);
    },
  };
}

describe('a task that dies without reporting', () => {
  it('is marked lost with its signal, and map resolves in bounded time with null there', async () => {
    const { dbfile } = fresh();
    const dies = (i: number): number => {
      if (i === 2) process.kill(process.pid, 'SIGKILL');
      return i;
    };
    const started = Date.now();
    const [results, note] = await quietly(() => map(dies, [1, 2, 3], { ...base, dbfile }));
    // Well before the 60 s tasks would have ended on their own.
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(results).toEqual([1, null, 3]);
    const id = lastRequest(dbfile);
    const states = await getTaskStates(id, dbfile);
    expect(states.map((t) => t.state)).toEqual(['done', 'lost', 'done']);
    expect(states[1]?.reason).toMatch(/killed by signal SIGKILL/);
    expect(note).toContain(`request ${id}: 1 task(s) were lost`);
    expect(note).toContain('getTaskStates');
  }, 60_000);

  it('is not noted on stderr with notes: false', async () => {
    const { dbfile } = fresh();
    const dies = (i: number): number => {
      if (i === 2) process.kill(process.pid, 'SIGKILL');
      return i;
    };
    const [results, note] = await quietly(() =>
      map(dies, [1, 2], { ...base, dbfile, notes: false }),
    );
    expect(results).toEqual([1, null]);
    expect(note).toBe('');
  }, 60_000);

  it('is resubmitted alone with retries: 1 and then succeeds', async () => {
    const { dbfile, markers } = fresh();
    const results = await map(
      flaky,
      [
        [1, 'ok'],
        [2, 'kill'],
        [3, 'ok'],
      ],
      { ...base, dbfile, retries: 1 },
      { MARKERS: markers },
    );
    expect(results).toEqual([2, 4, 6]);
    const id = lastRequest(dbfile);
    const storage = new Storage(dbfile);
    try {
      expect(storage.getJobs(id).map((j) => j.indices)).toEqual([[1, 2, 3], [2]]);
      expect(storage.getTaskStates(id).map((t) => [t.state, t.attempts])).toEqual([
        ['done', 1],
        ['done', 2],
        ['done', 1],
      ]);
    } finally {
      storage.close();
    }
  }, 60_000);

  it('stays lost when every attempt dies, after exactly `retries` resubmissions', async () => {
    const { dbfile } = fresh();
    const [results] = await quietly(() =>
      map((i: number) => (i === 1 ? process.kill(process.pid, 'SIGKILL') : i), [1, 2], {
        ...base,
        dbfile,
        retries: 2,
      }),
    );
    expect(results).toEqual([null, 2]);
    const id = lastRequest(dbfile);
    const storage = new Storage(dbfile);
    try {
      expect(storage.getJobs(id).map((j) => j.indices)).toEqual([[1, 2], [1], [1]]);
      expect(storage.getTaskStates(id)[0]).toMatchObject({ state: 'lost', attempts: 3 });
    } finally {
      storage.close();
    }
  }, 60_000);
});

describe('a backend whose reasons come late (accounting written after the task ended)', () => {
  it('is asked once more before the task gets a generic reason', async () => {
    const { dbfile } = fresh();
    const inner = local({ concurrency: 4 });
    const asked: number[][] = [];
    const lagging: Backend = {
      ...inner,
      async status(submission) {
        return { active: (await inner.status(submission)).active };
      },
      async explain(_submission, indices) {
        asked.push([...indices]);
        return new Map(asked.length < 2 ? [] : indices.map((i) => [i, 'from accounting, late']));
      },
    };
    const [results] = await quietly(() =>
      map((i: number) => (i === 2 ? process.kill(process.pid, 'SIGKILL') : i), [1, 2], {
        ...base,
        dbfile,
        backend: lagging,
      }),
    );
    expect(results).toEqual([1, null]);
    expect(asked).toEqual([[2], [2]]);
    expect((await getTaskStates(lastRequest(dbfile), dbfile))[1]?.reason).toBe(
      'from accounting, late',
    );
  }, 60_000);
});

describe('a backend that cannot be asked', () => {
  it('does not hold up the end: results still finish the map, with a note when status fails', async () => {
    const { dbfile } = fresh();
    const inner = local({ concurrency: 4 });
    const failing: Backend = {
      ...inner,
      status: () => Promise.reject(new Error('qstat: connection reset')),
    };
    const hanging: Backend = { ...inner, status: () => new Promise(() => undefined) };
    const slow = async (x: number): Promise<number> => {
      await new Promise((resolve) => setTimeout(resolve, 500));
      return x;
    };
    const [, note] = await quietly(async () => {
      expect(await map(slow, [1, 2], { ...base, dbfile, backend: failing })).toEqual([1, 2]);
      expect(await map(slow, [3, 4], { ...base, dbfile, backend: hanging })).toEqual([3, 4]);
    });
    expect(note).toContain('could not ask the local backend which tasks it still holds');
    expect(note).toContain('qstat: connection reset');
  }, 60_000);
});

describe('errors thrown by the function', () => {
  it('are not retried unless retryErrors is set', async () => {
    const { dbfile, markers } = fresh();
    const args: [number, 'throw' | 'ok'][] = [
      [1, 'throw'],
      [2, 'ok'],
    ];
    expect(await map(flaky, args, { ...base, dbfile, retries: 1 }, { MARKERS: markers })).toEqual([
      null,
      4,
    ]);
    const errors = await getErrors(lastRequest(dbfile), dbfile);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.[1]).toContain('first attempt of task 1 fails');
  }, 60_000);

  it('are retried with retryErrors, and the error of the failed attempt is gone', async () => {
    const { dbfile, markers } = fresh();
    const args: [number, 'throw' | 'ok'][] = [
      [1, 'throw'],
      [2, 'ok'],
    ];
    const config = { ...base, dbfile, retries: 1, retryErrors: true };
    expect(await map(flaky, args, config, { MARKERS: markers })).toEqual([2, 4]);
    expect(await getErrors(lastRequest(dbfile), dbfile)).toEqual([]);
  }, 60_000);
});

describe('deadlines and cancellation', () => {
  const sleepy = async (ms: number): Promise<number> => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return ms;
  };

  it('timeout cancels the open tasks and rejects with the partial results and task states', async () => {
    const { dbfile } = fresh();
    const started = Date.now();
    const error = (await map(sleepy, [0, 60_000, 60_000], { ...base, dbfile, timeout: 5000 }).then(
      () => undefined,
      (e: unknown) => e,
    )) as SheepdogError;
    // Well before the 60 s tasks would have ended on their own.
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(error.code).toBe('TIMEOUT');
    expect(error.message).toContain('did not finish within 5000 ms');
    expect(error.results).toEqual([0, null, null]);
    expect(error.states?.map((t) => t.state)).toEqual(['done', 'cancelled', 'cancelled']);
    expect(error.states?.[1]?.reason).toMatch(/timed out/);
    expect(error.requestId).toBe(lastRequest(dbfile));
  }, 60_000);

  it('an AbortSignal kills the tasks, marks them cancelled, and later posts get 409', async () => {
    const { dbfile } = fresh();
    const tokens: string[] = [];
    const controller = new AbortController();
    let port = 0;
    const running = map(sleepy, [0, 60_000], {
      ...base,
      dbfile,
      port: 0,
      backend: recording(tokens),
      signal: controller.signal,
    });
    // Abort once the short task has reported and the long one runs.
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const storage = new Storage(dbfile);
      try {
        const request = storage.listRequests().at(-1);
        port = (request?.config as { port: number } | undefined)?.port ?? 0;
        const states = request ? storage.getTaskStates(request.id).map((t) => t.state) : [];
        if (states[0] === 'done' && states[1] === 'running') break;
      } finally {
        storage.close();
      }
    }
    controller.abort(new Error('the user pressed stop'));
    const error = (await running.then(
      () => undefined,
      (e: unknown) => e,
    )) as SheepdogError;
    expect(error.code).toBe('CANCELLED');
    expect((error.cause as Error).message).toBe('the user pressed stop');
    expect(error.results).toEqual([0, null]);
    expect(error.states?.[1]).toMatchObject({ state: 'cancelled' });
    expect(error.states?.[1]?.reason).toContain('the user pressed stop');
    const id = error.requestId as number;
    // Any later server on the dbfile (here one on the same port) refuses the task's result.
    const holder = await getServer({ dbfile, port, hostname: '127.0.0.1' });
    const response = await fetch(`${holder.url}v1/requests/${id}/tasks/2/result`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${tokens[0]}`,
        'content-type': 'application/octet-stream',
      },
      body: new Uint8Array([1, 2, 3]),
    });
    expect(response.status).toBe(409);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
      'TASK_CANCELLED',
    );
    await holder.stop();
  }, 60_000);

  it('an AbortSignal aborted before the map rejects at once, running nothing to the end', async () => {
    const { dbfile } = fresh();
    const error = (await map(sleepy, [60_000], {
      ...base,
      dbfile,
      signal: AbortSignal.abort(),
    }).then(
      () => undefined,
      (e: unknown) => e,
    )) as SheepdogError;
    expect(error.code).toBe('CANCELLED');
    expect(error.states?.map((t) => t.state)).toEqual(['cancelled']);
  }, 30_000);
});

describe('many tasks, some failing', () => {
  it('500 tasks with 5% failures on the first attempt and retries: every result exactly once', async () => {
    const { dbfile, markers } = fresh();
    const n = 500;
    // 5 %: every 20th task fails its first attempt, alternately by SIGKILL and by a throw.
    const args = Array.from({ length: n }, (_, k): [number, 'kill' | 'throw' | 'ok'] => {
      const i = k + 1;
      if (i % 20 !== 7) return [i, 'ok'];
      return [i, i % 40 === 7 ? 'kill' : 'throw'];
    });
    const results = await map(
      flaky,
      args,
      { ...base, dbfile, retries: 2, retryErrors: true },
      { MARKERS: markers },
    );
    expect(results).toEqual(args.map(([i]) => 2 * i));
    const id = lastRequest(dbfile);
    expect(rowsPerTask(dbfile, id)).toEqual({ results: n, done: n });
    const storage = new Storage(dbfile);
    try {
      expect(storage.countErrors(id)).toBe(0);
      const jobs = storage.getJobs(id);
      const retried = jobs.slice(1).flatMap((j) => j.indices);
      expect(new Set(retried)).toEqual(
        new Set(args.filter(([, how]) => how !== 'ok').map(([i]) => i)),
      );
    } finally {
      storage.close();
    }
  }, 240_000);
});

describe('a lease-mode task that runs far longer than its lease', () => {
  it('keeps its lease while it blocks its worker, is neither lost nor run twice', async () => {
    const { dbfile } = fresh();
    // Task 1 computes synchronously for 3 leases; the other worker meanwhile runs the rest and
    // then asks for more (lingering while a lease is out), which would hand it task 1 (and,
    // with no retries, lose it) had the first worker not renewed the lease from its own thread.
    // Renewals come every third of a lease: a slow one or two under load do no harm.
    const busy = (i: number, ms: number): number => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        // Spin: the task's event loop is blocked the whole time.
      }
      return i;
    };
    const args: [number, number][] = [
      [1, 6000],
      ...Array.from({ length: 7 }, (_, k): [number, number] => [k + 2, 300]),
    ];
    const results = await map(busy, args, {
      ...base,
      dbfile,
      workers: 2,
      leaseMs: 2000,
      retries: 0,
    });
    expect(results).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const states = await getTaskStates(lastRequest(dbfile), dbfile);
    expect(states.map((t) => [t.state, t.attempts])).toEqual(Array(8).fill(['done', 1]));
  }, 60_000);
});

describe('lease mode when every worker dies', () => {
  it('marks the open tasks lost, saying how the workers ended, and map resolves', async () => {
    const { dbfile } = fresh();
    // The workers run a while first, so that polls see the job holding every task (and skip
    // reading the open tasks) before it holds none.
    const dies = async (x: number): Promise<number> => {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      process.kill(process.pid, 'SIGKILL');
      return x;
    };
    const results = await map(dies, [1, 2, 3, 4, 5, 6], { ...base, dbfile, workers: 2 });
    expect(results).toEqual([null, null, null, null, null, null]);
    const states = await getTaskStates(lastRequest(dbfile), dbfile);
    expect(states.map((t) => t.state)).toEqual(Array(6).fill('lost'));
    for (const t of states) {
      expect(t.reason).toMatch(
        /every lease-mode worker has ended \(worker \d: killed by signal SIGKILL/,
      );
    }
  }, 60_000);
});
