/**
 * The contract every backend must meet, as one shared vitest suite (shaped like unstorage's
 * driver tests). A backend's test file calls it once:
 *
 * ```ts
 * import { backendContract } from '../../test/contract.js';
 * backendContract('local', () => local({ concurrency: 2 }));
 * ```
 *
 * It drives the {@link Backend} members directly (submit, status, explain, cancel, dispose) with
 * a real server and real workers, and then through `map`, which is how users meet a backend.
 * Backend-specific cases go in the backend's own test file, next to the call.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeValue, encodeArgs, encodeFunction, encodeNamespace } from '@sheepdog/serialize';
import { createRequest, getServer, type SheepdogServer } from '@sheepdog/server';
import { Storage, type TaskStateRow } from '@sheepdog/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, JobSpec, Submission } from '../src/backend.js';
import type { SheepdogConfig } from '../src/config.js';
import { getErrors, map } from '../src/map.js';
import { resume } from '../src/resume.js';

/** Settings of {@link backendContract}; every one has a default that suits a local backend. */
export interface BackendContractOptions {
  /**
   * The host name workers use to reach the test server.
   * @default the backend's `workerHost()`, else `'127.0.0.1'`
   */
  workerHost?: string;
  /**
   * The address the test server listens on; use `'0.0.0.0'` when workers run on other machines.
   * @default '127.0.0.1'
   */
  bindHost?: string;
  /**
   * Time limit of each test, in ms: enough for a queue to start a few small jobs.
   * @default 90000
   */
  timeoutMs?: number;
  /**
   * How often the suite (and `map`) asks the backend for status, in ms.
   * @default 250
   */
  pollIntervalMs?: number;
  /**
   * `map`'s `lostGraceMs` in the tests that go through `map`.
   * @default 1000
   */
  lostGraceMs?: number;
  /**
   * Whether the backend explains a lost task (through `status().reasons` or `explain`): a task
   * that SIGKILLs itself must then be reported as killed by signal 9. Set `false` only for a
   * backend that cannot know how its tasks ended; a lost task still needs some reason then.
   * @default true
   */
  explainsLoss?: boolean;
  /**
   * Whether the backend runs lease-mode jobs (`supportsLease`). The lease cases then check it
   * does; without it, the suite checks that `map` falls back to one array task per index.
   * @default true
   */
  lease?: boolean;
}

/** A test function that multiplies by ten; self-contained, as task functions must be. */
const times10 = (x: number): number => x * 10;

/** A task that sleeps `ms` and returns it. */
const sleeper = async (ms: number): Promise<number> => {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return ms;
};

/** Task 2 kills its own process with SIGKILL, so it can never report. */
const killsTwo = (x: number): number => {
  if (x === 2) process.kill(process.pid, 'SIGKILL');
  return x;
};

/** Task 2 throws: an error report, not a loss. */
const throwsOnTwo = (x: number): number => {
  if (x === 2) throw new Error(`contract: refusing ${x}`);
  return x * 10;
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `check` holds, polling; fails naming `what` when `timeoutMs` elapses first. */
async function waitUntil(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs: number,
  intervalMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** The request in a `map` dbfile and its task states, read from another connection. */
function readMapRequest(dbfile: string): { requestId: number; states: TaskStateRow[] } {
  const found = peekMapRequest(dbfile);
  if (found === undefined) throw new Error(`no request in ${dbfile}`);
  return found;
}

/** Like {@link readMapRequest}, but undefined while `map` has not stored its request yet. */
function peekMapRequest(dbfile: string): { requestId: number; states: TaskStateRow[] } | undefined {
  if (!existsSync(dbfile)) return undefined;
  const storage = new Storage(dbfile);
  try {
    const request = storage.listRequests().at(-1);
    if (request === undefined) return undefined;
    return { requestId: request.id, states: storage.getTaskStates(request.id) };
  } finally {
    storage.close();
  }
}

/**
 * Registers the backend contract suite for one backend. `makeBackend` is called once per test
 * (and disposed at its end), so no test sees another's state.
 */
export function backendContract(
  name: string,
  makeBackend: () => Backend,
  options: BackendContractOptions = {},
): void {
  const timeoutMs = options.timeoutMs ?? 90_000;
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const lostGraceMs = options.lostGraceMs ?? 1000;
  const explainsLoss = options.explainsLoss ?? true;
  const lease = options.lease ?? true;
  const bindHost = options.bindHost ?? '127.0.0.1';

  describe(`backend contract: ${name}`, () => {
    let dir: string;
    let server: SheepdogServer;
    let dbCounter = 0;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), `sheepdog-contract-${name}-`));
      server = await getServer({ dbfile: join(dir, 'direct.sqlite'), hostname: bindHost });
    });

    afterAll(async () => {
      await server?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** Runs `body` with a fresh backend and disposes it afterwards, whatever happens. */
    async function withBackend<T>(body: (backend: Backend) => Promise<T>): Promise<T> {
      const backend = makeBackend();
      try {
        return await body(backend);
      } finally {
        await backend.dispose?.();
      }
    }

    async function hostFor(backend: Backend): Promise<string> {
      return options.workerHost ?? (await backend.workerHost?.()) ?? '127.0.0.1';
    }

    /** Stores a request of `f` over `args` on the test server and returns a JobSpec for it. */
    async function newRequest(
      backend: Backend,
      f: (...args: never[]) => unknown,
      args: readonly unknown[],
      indices?: readonly number[],
    ): Promise<JobSpec> {
      const { requestId, token } = createRequest(
        server.storage,
        encodeFunction(f as (...args: unknown[]) => unknown),
        encodeNamespace({}),
        args.map((a) => encodeArgs(a)),
        { backend: backend.name, label: `contract ${f.name}` },
      );
      return {
        requestId,
        url: `http://${await hostFor(backend)}:${server.port}/`,
        token,
        indices: indices ?? args.map((_, i) => i + 1),
        name: `contract-${requestId}`,
      };
    }

    function states(requestId: number): Map<number, TaskStateRow> {
      return new Map(server.storage.getTaskStates(requestId).map((row) => [row.jobIndex, row]));
    }

    function results(requestId: number): unknown[] {
      return server.storage
        .getTasksWithResults(requestId)
        .map(([, result]) => (result === null ? null : decodeValue(result)));
    }

    /** Polls status until nothing is active; returns every active set seen, in order. */
    async function drain(backend: Backend, submission: Submission): Promise<Set<number>[]> {
      const seen: Set<number>[] = [];
      await waitUntil(
        async () => {
          const report = await backend.status(submission);
          // holdsAll: every index is held, whatever `active` lists.
          const active = report.holdsAll === true ? new Set(submission.indices) : report.active;
          seen.push(new Set(active));
          return active.size === 0;
        },
        `the ${name} backend to report no active task of job ${submission.jobId}`,
        timeoutMs,
        pollIntervalMs,
      );
      return seen;
    }

    function mapConfig(extra: SheepdogConfig = {}): SheepdogConfig & { dbfile: string } {
      dbCounter += 1;
      return {
        backend: makeBackend(),
        dbfile: join(dir, `map-${dbCounter}.sqlite`),
        bindHost,
        ...(options.workerHost === undefined ? {} : { localhost: options.workerHost }),
        pollIntervalMs,
        lostGraceMs,
        ...extra,
      };
    }

    describe('submit', () => {
      it(
        'runs every task once; results come back in argument order',
        async () => {
          await withBackend(async (backend) => {
            const spec = await newRequest(backend, times10, [1, 2, 3, 4, 5, 6]);
            const before = Date.now();
            const submission = await backend.submit(spec);
            const after = Date.now();
            expect(submission.backend).toBe(backend.name);
            expect(typeof submission.jobId).toBe('string');
            expect(submission.jobId).not.toBe('');
            expect([...submission.indices]).toEqual([1, 2, 3, 4, 5, 6]);
            expect(submission.submittedAt).toBeGreaterThanOrEqual(before - 1000);
            expect(submission.submittedAt).toBeLessThanOrEqual(after + 1000);
            // Core stores it as JSON and a later process re-attaches with the parsed copy.
            expect(JSON.parse(JSON.stringify(submission))).toEqual(submission);
            await drain(backend, submission);
            expect(results(spec.requestId)).toEqual([10, 20, 30, 40, 50, 60]);
            for (const row of states(spec.requestId).values()) {
              expect(row.state).toBe('done');
              expect(row.attempts).toBe(1);
            }
          });
        },
        timeoutMs,
      );

      it(
        'a task that throws reports an error, and the others still succeed',
        async () => {
          await withBackend(async (backend) => {
            const spec = await newRequest(backend, throwsOnTwo, [1, 2, 3]);
            const submission = await backend.submit(spec);
            await drain(backend, submission);
            expect(results(spec.requestId)).toEqual([10, null, 30]);
            expect(states(spec.requestId).get(2)?.state).toBe('failed');
            const [, error] = server.storage.getErrors(spec.requestId)[0] ?? [];
            expect(new TextDecoder().decode(error)).toContain('contract: refusing 2');
          });
        },
        timeoutMs,
      );
    });

    describe('status', () => {
      it(
        'holds every unfinished task, only the submitted ones, and shrinks to empty',
        async () => {
          await withBackend(async (backend) => {
            const spec = await newRequest(backend, sleeper, [1500, 1500, 3000, 3000]);
            const submission = await backend.submit(spec);
            const wanted = new Set(spec.indices);
            let previous: ReadonlySet<number> | undefined;
            await waitUntil(
              async () => {
                const openBefore = server.storage.openIndices(spec.requestId);
                const { active } = await backend.status(submission);
                const now = states(spec.requestId);
                for (const index of active) expect(wanted.has(index)).toBe(true);
                // A task may leave the active set only once its report is in: else core would
                // take it for lost.
                for (const index of openBefore)
                  if (!active.has(index)) expect(now.get(index)?.state).toBe('done');
                // Nothing comes back once it has left.
                if (previous !== undefined)
                  for (const index of active) expect(previous.has(index)).toBe(true);
                if (previous === undefined) expect(active.size).toBeGreaterThan(0);
                previous = new Set(active);
                return active.size === 0;
              },
              'the active set to empty',
              timeoutMs,
              pollIntervalMs,
            );
            expect(results(spec.requestId)).toEqual([1500, 1500, 3000, 3000]);
            // Asking again about a finished job is fine and still says nothing is active.
            const again = await backend.status(submission);
            expect(again.active.size).toBe(0);
            expect(again.holdsAll).not.toBe(true);
          });
        },
        timeoutMs,
      );
    });

    describe('lost tasks', () => {
      it(
        'a task killed by SIGKILL leaves the active set without a report, and the backend says why',
        async () => {
          await withBackend(async (backend) => {
            const spec = await newRequest(backend, killsTwo, [1, 2, 3]);
            const submission = await backend.submit(spec);
            const seen = await drain(backend, submission);
            expect(results(spec.requestId)).toEqual([1, null, 3]);
            expect(['pending', 'running']).toContain(states(spec.requestId).get(2)?.state);
            // Scheduler accounting lags behind the queue (qacct, sacct), and core asks again
            // later for tasks left unexplained; so may this test, for a while.
            let reason: string | undefined;
            await waitUntil(
              async () => {
                reason =
                  (await backend.status(submission)).reasons?.get(2) ??
                  (await backend.explain?.(submission, [2]))?.get(2);
                return reason !== undefined || !explainsLoss;
              },
              `the ${name} backend to explain the lost task`,
              20_000,
              1000,
            );
            if (explainsLoss) expect(reason).toMatch(/SIGKILL|signal 9|137/i);
            expect(seen.at(-1)?.size).toBe(0);
          });
        },
        timeoutMs,
      );

      it(
        'through map: the task is marked lost with the reason, and map resolves with null for it',
        async () => {
          const config = mapConfig();
          const out = await map(killsTwo, [1, 2, 3], config);
          expect(out).toEqual([1, null, 3]);
          const { states: rows } = readMapRequest(config.dbfile);
          const two = rows.find((row) => row.jobIndex === 2);
          expect(two?.state).toBe('lost');
          expect(two?.reason).toBeTruthy();
          if (explainsLoss) expect(two?.reason).toMatch(/SIGKILL|signal 9|137/i);
        },
        timeoutMs,
      );
    });

    describe('cancel', () => {
      const taskMs = 8000;

      it(
        'stops running tasks, starts no more, and can be called again',
        async () => {
          await withBackend(async (backend) => {
            const spec = await newRequest(backend, sleeper, [taskMs, taskMs, taskMs, taskMs]);
            const submission = await backend.submit(spec);
            await waitUntil(
              () => [...states(spec.requestId).values()].some((row) => row.state === 'running'),
              'a task to start',
              timeoutMs,
            );
            const cancelledAt = Date.now();
            await backend.cancel(submission);
            await drain(backend, submission);
            // A task still running would report within taskMs of the cancel.
            await sleep(Math.max(0, cancelledAt + taskMs + 2000 - Date.now()));
            expect(server.storage.countResultsAndErrors(spec.requestId)).toBe(0);
            await backend.cancel(submission);
            const after = await backend.status(submission);
            expect(after.active.size).toBe(0);
            expect(after.holdsAll).not.toBe(true);
          });
        },
        timeoutMs + 2 * taskMs,
      );

      it(
        'of a job that has ended does not throw',
        async () => {
          await withBackend(async (backend) => {
            const spec = await newRequest(backend, times10, [1]);
            const submission = await backend.submit(spec);
            await drain(backend, submission);
            await backend.cancel(submission);
            expect(results(spec.requestId)).toEqual([10]);
          });
        },
        timeoutMs,
      );

      it(
        'through map: aborting the signal cancels every open task and map rejects with CANCELLED',
        async () => {
          const controller = new AbortController();
          const config = mapConfig({ signal: controller.signal });
          const pending = map(sleeper, [60_000, 60_000, 60_000], config);
          const outcome = pending.then(
            () => undefined,
            (error: unknown) => error,
          );
          await waitUntil(
            () =>
              peekMapRequest(config.dbfile)?.states.some((row) => row.state === 'running') === true,
            'a task to start',
            timeoutMs,
          );
          controller.abort(new Error('contract: stop'));
          expect(await outcome).toMatchObject({ code: 'CANCELLED' });
          const { states: rows } = readMapRequest(config.dbfile);
          expect(rows.map((row) => row.state)).toEqual(['cancelled', 'cancelled', 'cancelled']);
        },
        timeoutMs,
      );
    });

    describe('retries', () => {
      it(
        'a job over indices [2, 4] runs exactly those tasks, with their own arguments',
        async () => {
          await withBackend(async (backend) => {
            const spec = await newRequest(backend, times10, [1, 2, 3, 4, 5], [2, 4]);
            const submission = await backend.submit(spec);
            expect([...submission.indices]).toEqual([2, 4]);
            const seen = await drain(backend, submission);
            for (const active of seen) for (const index of active) expect([2, 4]).toContain(index);
            expect(results(spec.requestId)).toEqual([null, 20, null, 40, null]);
            const rows = states(spec.requestId);
            for (const index of [1, 3, 5]) {
              expect(rows.get(index)?.state).toBe('pending');
              expect(rows.get(index)?.attempts).toBe(0);
            }
          });
        },
        timeoutMs,
      );

      it(
        'further jobs of the same request run the rest, each tracked on its own',
        async () => {
          await withBackend(async (backend) => {
            const spec = await newRequest(backend, times10, [1, 2, 3, 4, 5], [5]);
            const first = await backend.submit(spec);
            const second = await backend.submit({ ...spec, indices: [1, 3] });
            expect(second.jobId).not.toBe(first.jobId);
            await drain(backend, first);
            await drain(backend, second);
            expect(results(spec.requestId)).toEqual([10, null, 30, null, 50]);
            const third = await backend.submit({ ...spec, indices: [2, 4] });
            await drain(backend, third);
            expect(results(spec.requestId)).toEqual([10, 20, 30, 40, 50]);
          });
        },
        timeoutMs,
      );
    });

    describe('map', () => {
      it(
        'returns results in argument order, null where a task threw, with the error kept',
        async () => {
          const config = mapConfig();
          const out = await map(throwsOnTwo, [1, 2, 3, 4], config);
          expect(out).toEqual([10, null, 30, 40]);
          const { requestId } = readMapRequest(config.dbfile);
          const errors = await getErrors(requestId, config.dbfile);
          expect(errors).toHaveLength(1);
          expect(errors[0]?.[0]).toEqual([2]);
          expect(errors[0]?.[1]).toContain('contract: refusing 2');
          expect(errors[0]?.[2]).toBe(2);
        },
        timeoutMs,
      );
    });

    describe('resume', () => {
      it(
        'a later server on the stored port re-attaches to the stored jobs and gets every result',
        async () => {
          // The first "process": its own server and dbfile, a request stored as map stores it,
          // one job submitted and recorded; then it goes away while the tasks run.
          const dbfile = join(dir, 'resume.sqlite');
          const first = await getServer({ dbfile, hostname: bindHost });
          const backend = makeBackend();
          try {
            const host = await hostFor(backend);
            const { requestId, token } = createRequest(
              first.storage,
              encodeFunction(sleeper),
              encodeNamespace({}),
              [3000, 3000].map((a) => encodeArgs(a)),
              {
                backend: backend.name,
                config: { backend: backend.name, port: first.port, localhost: host },
              },
            );
            const submission = await backend.submit({
              requestId,
              url: `http://${host}:${first.port}/`,
              token,
              indices: [1, 2],
              name: `contract-${requestId}`,
            });
            first.storage.addJob(requestId, submission);
            await waitUntil(
              () => first.storage.getTaskStates(requestId).some((row) => row.state === 'running'),
              'a task to start',
              timeoutMs,
            );
            await first.stop();
            // A fresh backend object sees only what was stored: the submission, parsed from JSON.
            const out = await resume(requestId, dbfile, {
              backend: makeBackend(),
              bindHost,
              pollIntervalMs,
              lostGraceMs,
            });
            expect(out).toEqual([3000, 3000]);
          } finally {
            await first.stop();
            await backend.dispose?.();
          }
        },
        timeoutMs,
      );
    });

    describe('batching', () => {
      it(
        'through map: 200 tasks on 4 lease-mode workers give every result once, in order',
        async () => {
          const config = mapConfig({ workers: 4 });
          const args = Array.from({ length: 200 }, (_, i) => i + 1);
          const out = await map(times10, args, config);
          expect(out).toEqual(args.map((x) => x * 10));
          const { requestId, states: rows } = readMapRequest(config.dbfile);
          expect(rows.every((row) => row.state === 'done' && row.attempts === 1)).toBe(true);
          const storage = new Storage(config.dbfile);
          try {
            expect(storage.countResults(requestId)).toBe(200);
            const jobs = storage.getJobs(requestId);
            expect(jobs).toHaveLength(1);
            // A backend without lease support runs one array task per index instead.
            expect((config.backend as Backend).supportsLease === true).toBe(lease);
            expect(jobs[0]?.meta?.lease === true).toBe(lease);
          } finally {
            storage.close();
          }
        },
        timeoutMs,
      );

      // Registered only for lease-mode backends, so no case is skipped at run time.
      if (lease) {
        it(
          'after map resolves, none of its lease-mode workers is left queued or running',
          async () => {
            // 20 workers, 2 at a time: the first two do all 200 tasks. Left alone, the other 18
            // would each start, find nothing to lease and end, 2 by 2, long after the map.
            const config = mapConfig({ workers: 20, maxRunning: 2 });
            const args = Array.from({ length: 200 }, (_, i) => i + 1);
            expect(await map(times10, args, config)).toEqual(args.map((x) => x * 10));
            const { requestId } = readMapRequest(config.dbfile);
            const storage = new Storage(config.dbfile);
            let jobs: Submission[];
            try {
              jobs = storage.getJobs(requestId) as Submission[];
            } finally {
              storage.close();
            }
            expect(jobs).toHaveLength(1);
            expect(jobs[0]?.meta?.lease).toBe(true);
            await withBackend(async (backend) => {
              const deadline = Date.now() + 5000;
              for (;;) {
                const report = await backend.status(jobs[0] as Submission);
                if (report.active.size === 0 && report.holdsAll !== true) break;
                if (Date.now() > deadline) {
                  throw new Error(
                    `job ${jobs[0]?.jobId} still has workers queued or running 5 s after map resolved`,
                  );
                }
                await new Promise((resolve) => setTimeout(resolve, 250));
              }
            });
          },
          timeoutMs,
        );

        it(
          'a worker SIGKILLed mid-lease: its lease runs out and another worker finishes the tasks',
          async () => {
            const marker = join(tmpdir(), `sheepdog-contract-kill-${process.pid}-${Date.now()}`);
            // The first worker to run task 100 dies holding its chunk; the retry runs it normally.
            const diesOnce = async (x: number, flag: string): Promise<number> => {
              const fs = require('node:fs');
              await new Promise((resolve) => setTimeout(resolve, 10));
              if (x === 100 && !fs.existsSync(flag)) {
                fs.writeFileSync(flag, '');
                process.kill(process.pid, 'SIGKILL');
              }
              return x;
            };
            await withBackend(async (backend) => {
              expect(backend.supportsLease).toBe(true);
              const { requestId, token } = createRequest(
                server.storage,
                encodeFunction(diesOnce as (...args: unknown[]) => unknown),
                encodeNamespace({}),
                Array.from({ length: 200 }, (_, i) => encodeArgs([i + 1, marker])),
                { backend: backend.name, label: 'contract diesOnce', config: { retries: 2 } },
              );
              try {
                const submission = await backend.submit({
                  requestId,
                  url: `http://${await hostFor(backend)}:${server.port}/`,
                  token,
                  indices: Array.from({ length: 200 }, (_, i) => i + 1),
                  name: `contract-${requestId}`,
                  lease: { workers: 4, leaseMs: 3000 },
                });
                await waitUntil(
                  () => server.storage.countResults(requestId) === 200,
                  'every task to report',
                  timeoutMs,
                  pollIntervalMs,
                );
                await drain(backend, submission);
                expect(results(requestId)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
                const rows = states(requestId);
                expect([...rows.values()].every((row) => row.state === 'done')).toBe(true);
                expect(rows.get(100)?.attempts).toBe(2);
                expect(existsSync(marker)).toBe(true);
              } finally {
                rmSync(marker, { force: true });
              }
            });
          },
          timeoutMs,
        );
      }
    });
  });
}
