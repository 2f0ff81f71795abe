import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Deployer } from '@sheepdog/deployer';
import { encodeArgs, encodeFunction, encodeNamespace } from '@sheepdog/serialize';
import { createRequest, getServer, type SheepdogServer } from '@sheepdog/server';
import { Storage } from '@sheepdog/storage';
import { clusterMapConfig, clusterSsh, loadCluster } from '@sheepdog/test-cluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, JobSpec, Submission } from '../backend.js';
import { parseConfig, type SheepdogConfig, toStoredConfig } from '../config.js';
import { getErrors, getResults, map, mapAsync } from '../map.js';
import { resume } from '../resume.js';
import { type SlurmOptions, slurm } from './slurm.js';

// Throws without the test cluster: this suite fails, it never skips.
const cluster = loadCluster('slurm');
const ssh = clusterSsh(cluster);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

let dir: string;
let server: SheepdogServer;
let deployer: Deployer;
let dbCounter = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-slurm-e2e-'));
  server = await getServer({ dbfile: join(dir, 'direct.sqlite'), hostname: '127.0.0.1' });
  deployer = new Deployer(ssh);
});

afterAll(async () => {
  await deployer?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The config a user writes for SLURM behind `host`, as in the README. */
function config(extra: SheepdogConfig = {}): SheepdogConfig & { dbfile: string } {
  dbCounter += 1;
  return {
    ...clusterMapConfig(cluster),
    backend: 'slurm',
    localhost: '127.0.0.1',
    bindHost: '127.0.0.1',
    dbfile: join(dir, `map-${dbCounter}.sqlite`),
    pollIntervalMs: 250,
    lostGraceMs: 1000,
    ...extra,
  };
}

function backend(extra: Partial<SlurmOptions> = {}): Backend {
  return slurm({ ...ssh, shell: cluster.node, ...extra });
}

/** A request on the direct server, and the spec of a job over `indices` of it. */
function request(f: (...args: never[]) => unknown, args: unknown[], indices: number[]): JobSpec {
  const { requestId, token } = createRequest(
    server.storage,
    encodeFunction(f as (...args: unknown[]) => unknown),
    encodeNamespace({}),
    args.map((a) => encodeArgs(a)),
  );
  return {
    requestId,
    url: `http://127.0.0.1:${server.port}/`,
    token,
    indices,
    name: `e2e-${requestId}`,
  };
}

function stateOf(requestId: number, index: number): string | undefined {
  return server.storage.getTaskStates(requestId).find((row) => row.jobIndex === index)?.state;
}

async function drain(b: Backend, submission: Submission): Promise<void> {
  await waitUntil(async () => (await b.status(submission)).active.size === 0, 'an empty queue');
}

// Long enough that a task is still running after the test's next SSH round trips to the
// scheduler (status, scancel) on a loaded machine.
const napThenDouble = async (x: number): Promise<number> => {
  await new Promise((resolve) => setTimeout(resolve, 10_000));
  return x * 2;
};
const NAP_MS = 10_000;

describe('map over SLURM, configured by name', () => {
  it('runs a plain function', async () => {
    expect(await map((x: number) => x * x, [1, 2, 3, 4, 5], config())).toEqual([1, 4, 9, 16, 25]);
  }, 90_000);

  it('runs an async function', async () => {
    const f = async (x: number): Promise<string> => {
      await new Promise((resolve) => setTimeout(resolve, 100));
      return `task ${x} on ${process.env.SLURM_CLUSTER_NAME} array job ${process.env.SLURM_ARRAY_JOB_ID ? 'yes' : 'no'}`;
    };
    expect(await map(f, [1, 2], config())).toEqual([
      'task 1 on sheepdog array job yes',
      'task 2 on sheepdog array job yes',
    ]);
  }, 90_000);

  it('passes ns helpers and constants', async () => {
    const f = (x: number): number => scale(x) + OFFSET;
    const scale = (x: number): number => x * 3;
    const OFFSET = 100;
    expect(await map(f, [1, 2, 3], config(), { scale, OFFSET })).toEqual([103, 106, 109]);
  }, 90_000);

  it('returns null for tasks that threw, and keeps their errors', async () => {
    const c = config();
    const f = (x: number): number => {
      if (x % 2 === 0) throw new RangeError(`even ${x}`);
      return x;
    };
    expect(await map(f, [1, 2, 3, 4], c)).toEqual([1, null, 3, null]);
    const storage = new Storage(c.dbfile);
    const requestId = storage.listRequests().at(-1)?.id as number;
    storage.close();
    const errors = await getErrors(requestId, c.dbfile);
    expect(errors.map(([args, text]) => [args, text.split('\n')[0]])).toEqual([
      [[2], 'RangeError: even 2'],
      [[4], 'RangeError: even 4'],
    ]);
  }, 90_000);

  it('runs 50 tasks', async () => {
    const started = Date.now();
    const args = Array.from({ length: 50 }, (_, i) => i + 1);
    expect(await map((x: number) => x * 2, args, config())).toEqual(args.map((x) => x * 2));
    // On the 2-core test machine this takes 4-8 s; a minute means something is stuck.
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 90_000);

  it('mapAsync returns at once and getResults reads the results', async () => {
    const c = config();
    const requestId = await mapAsync((x: number) => -x, [1, 2, 3], c);
    const results = await getResults(requestId, c.dbfile);
    expect(results).toEqual([
      [[1], -1],
      [[2], -2],
      [[3], -3],
    ]);
  }, 90_000);

  it('marks a task that SIGKILLs itself lost, with the reason from sacct', async () => {
    const c = config();
    const f = (x: number): number => {
      if (x === 2) process.kill(process.pid, 'SIGKILL');
      return x;
    };
    expect(await map(f, [1, 2, 3], c)).toEqual([1, null, 3]);
    const storage = new Storage(c.dbfile);
    const requestId = storage.listRequests().at(-1)?.id as number;
    const row = storage.getTaskStates(requestId).find((r) => r.jobIndex === 2);
    storage.close();
    expect(row?.state).toBe('lost');
    expect(row?.reason).toMatch(/killed by SIGKILL.*SLURM state FAILED, ExitCode 0:9/);
  }, 90_000);
});

describe('the slurm backend on the real cluster', () => {
  it('submits a retry of [2, 5, 7] as --array=2,5,7; status while running names exactly those', async () => {
    const b = backend();
    try {
      const spec = request(napThenDouble, [1, 2, 3, 4, 5, 6, 7], [2, 5, 7]);
      const submission = await b.submit(spec);
      const { active } = await b.status(submission);
      expect([...active].sort()).toEqual([2, 5, 7]);
      // SLURM itself holds array tasks 2, 5 and 7: no mapping through the job file.
      const squeue = await deployer.run(`squeue -h -r -j ${submission.jobId} -o %K`);
      expect(squeue.stdout.trim().split('\n').map(Number).sort()).toEqual([2, 5, 7]);
      await waitUntil(() => stateOf(spec.requestId, 5) === 'running', 'task 5 to start');
      expect([...(await b.status(submission)).active].sort()).toEqual([2, 5, 7]);
      await drain(b, submission);
      const states = server.storage.getTaskStates(spec.requestId).map((r) => r.state);
      expect(states).toEqual(['pending', 'done', 'pending', 'pending', 'done', 'pending', 'done']);
      const results = server.storage.getTasksWithResults(spec.requestId);
      expect(results.filter(([, r]) => r !== null)).toHaveLength(3);
    } finally {
      await b.dispose?.();
    }
  }, 90_000);

  it('passes slurmOpts to sbatch (time and memory limits)', async () => {
    const b = backend({ slurmOpts: ['--time=5', '--mem=500M'] });
    try {
      const spec = request((x: number) => x * 2, [1], [1]);
      const submission = await b.submit(spec);
      const shown = await deployer.run(`scontrol show job ${submission.jobId}`);
      expect(shown.stdout).toMatch(/TimeLimit=00:05:00/);
      expect(shown.stdout).toMatch(/mem=500M/);
      await drain(b, submission);
      expect(stateOf(spec.requestId, 1)).toBe('done');
    } finally {
      await b.dispose?.();
    }
  }, 90_000);

  it('explains a task scancel-ed from outside as cancelled by its uid', async () => {
    const b = backend();
    try {
      const spec = request(napThenDouble, [1, 2, 3], [1, 2, 3]);
      const submission = await b.submit(spec);
      await waitUntil(() => stateOf(spec.requestId, 2) === 'running', 'task 2 to start');
      await deployer.run(`scancel ${submission.jobId}_2`);
      await waitUntil(
        async () => !(await b.status(submission)).active.has(2),
        'task 2 to leave the queue',
      );
      const reasons = await b.explain?.(submission, [2]);
      expect(reasons?.get(2)).toMatch(/cancelled by uid \d+/);
      await drain(b, submission);
      expect(stateOf(spec.requestId, 1)).toBe('done');
      expect(stateOf(spec.requestId, 2)).toBe('running');
    } finally {
      await b.dispose?.();
    }
  }, 90_000);

  it('cancel stops the running task and the pending ones; sacct then says cancelled', async () => {
    // 30 of the node's 50 CPUs per task: one runs, the others wait for resources.
    const b = backend({ slurmOpts: ['--cpus-per-task=30'] });
    try {
      const spec = request(napThenDouble, [1, 2, 3], [1, 2, 3]);
      const submission = await b.submit(spec);
      await waitUntil(() => stateOf(spec.requestId, 1) === 'running', 'task 1 to start');
      expect([...(await b.status(submission)).active].sort()).toEqual([1, 2, 3]);
      await b.cancel(submission);
      await drain(b, submission);
      const reasons = await b.explain?.(submission, [1, 2, 3]);
      for (const index of [1, 2, 3]) expect(reasons?.get(index)).toMatch(/cancelled by uid/);
      // Had cancel missed task 1, it would have posted its result by now.
      await sleep(NAP_MS + 1500);
      expect(server.storage.countResultsAndErrors(spec.requestId)).toBe(0);
    } finally {
      await b.dispose?.();
    }
  }, 90_000);

  it('resume rebuilds the slurm backend from the stored config and collects the results', async () => {
    // What map stores, then the serving process goes away while the array job runs.
    const c = config({ slurmOpts: ['--time=5'] });
    const first = await getServer({ dbfile: c.dbfile, hostname: '127.0.0.1' });
    const b = backend({ slurmOpts: ['--time=5'] });
    try {
      const { requestId, token } = createRequest(
        first.storage,
        encodeFunction(napThenDouble),
        encodeNamespace({}),
        [1, 2, 3].map((a) => encodeArgs(a)),
        {
          backend: 'slurm',
          config: toStoredConfig(parseConfig(c), 'slurm', {
            port: first.port,
            localhost: '127.0.0.1',
          }),
        },
      );
      const submission = await b.submit({
        requestId,
        url: `http://127.0.0.1:${first.port}/`,
        token,
        indices: [1, 2, 3],
        name: `e2e-${requestId}`,
      });
      first.storage.addJob(requestId, submission);
      await first.stop();
      // No backend, host or key given: all of it comes from the request's stored config.
      expect(await resume(requestId, c.dbfile, { bindHost: '127.0.0.1' })).toEqual([2, 4, 6]);
    } finally {
      await first.stop();
      await b.dispose?.();
    }
  }, 90_000);

  it('an id slurmctld no longer knows: no active task, and cancel does not throw', async () => {
    const b = backend();
    try {
      const { active } = await b.status({
        backend: 'slurm',
        jobId: '999999999',
        indices: [1, 2],
        submittedAt: Date.now(),
        meta: { parts: [{ jobId: '999999999' }] },
      });
      expect(active.size).toBe(0);
      await b.cancel({
        backend: 'slurm',
        jobId: '999999999',
        indices: [1],
        submittedAt: Date.now(),
      });
    } finally {
      await b.dispose?.();
    }
  }, 30_000);
});
