// Never hang, never lose, never double-count, on the real Grid Engine of the test cluster
// (scripts/test-cluster.sh): tasks killed by a signal, by h_rt and by qdel, and a client
// process killed after mapAsync. Fails, never skips, without the cluster.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Deployer } from '@sheepdog/deployer';
import { getServer } from '@sheepdog/server';
import {
  clusterMapConfig,
  clusterSsh,
  loadCluster,
  type TestCluster,
} from '@sheepdog/test-cluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastRequest, look, quietly } from '../test/helpers.js';
import type { Backend, JobSpec } from './backend.js';
import { gridengine } from './backends/gridengine.js';
import { getTaskStates, map, resume, type SheepdogConfig, type SheepdogError } from './index.js';

const DIST = pathToFileURL(join(import.meta.dirname, '..', 'dist', 'index.js')).href;

let cluster: TestCluster;
let dir: string;
let deployer: Deployer;
let ge: SheepdogConfig;
let counter = 0;
const sshDir = `.sheepdog-reliability-${process.pid}`;

beforeAll(() => {
  cluster = loadCluster('gridengine');
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-ge-reliability-'));
  // The tasks run as the cluster user and leave marker files here.
  chmodSync(dir, 0o777);
  deployer = new Deployer(clusterSsh(cluster));
  ge = {
    backend: 'gridengine',
    ...clusterMapConfig(cluster),
    sshDir,
    lostGraceMs: 1000,
    pollIntervalMs: 500,
  };
});

afterAll(async () => {
  if (deployer === undefined) return;
  await deployer.exec(`rm -rf ~/${sshDir}`);
  await deployer.close();
  rmSync(dir, { recursive: true, force: true });
});

function freshDb(): string {
  counter += 1;
  return join(dir, `db-${counter}.sqlite`);
}

describe('Grid Engine: a task that dies without reporting', () => {
  it('SIGKILL: marked lost with the signal from qacct, map resolves in bounded time', async () => {
    const dbfile = freshDb();
    const dies = (i: number): number => {
      if (i === 2) process.kill(process.pid, 'SIGKILL');
      return i;
    };
    const started = Date.now();
    const [results, note] = await quietly(() => map(dies, [1, 2, 3], { ...ge, dbfile }));
    expect(Date.now() - started).toBeLessThan(90_000);
    expect(results).toEqual([1, null, 3]);
    const id = lastRequest(dbfile);
    const states = await getTaskStates(id, dbfile);
    expect(states.map((t) => t.state)).toEqual(['done', 'lost', 'done']);
    expect(states[1]?.reason).toMatch(/SIGKILL \(exit status 137\)/);
    expect(note).toContain('1 task(s) were lost');
  }, 120_000);

  it('SIGKILL with retries: 1: resubmitted alone (one qsub over an index list) and succeeds', async () => {
    const dbfile = freshDb();
    const markers = mkdtempSync(join(dir, 'markers-'));
    chmodSync(markers, 0o777);
    const diesOnce = (i: number): number => {
      const fs = require('node:fs');
      const marker = `${MARKERS}/${i}`;
      if (i === 2 && !fs.existsSync(marker)) {
        fs.writeFileSync(marker, '');
        process.kill(process.pid, 'SIGKILL');
      }
      return 10 * i;
    };
    const results = await map(
      diesOnce,
      [1, 2, 3],
      { ...ge, dbfile, retries: 1 },
      { MARKERS: markers },
    );
    expect(results).toEqual([10, 20, 30]);
    const id = lastRequest(dbfile);
    look(dbfile, (s) => {
      const jobs = s.getJobs(id);
      expect(jobs.map((j) => [j.backend, j.indices])).toEqual([
        ['gridengine', [1, 2, 3]],
        ['gridengine', [2]],
      ]);
      expect(jobs[1]?.meta).toMatchObject({ contiguous: false });
      expect(s.getResults(id)).toHaveLength(3);
    });
  }, 120_000);

  it('over h_rt: marked lost with failed 37 as the reason', async () => {
    const dbfile = freshDb();
    const slow = async (ms: number): Promise<number> => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return ms;
    };
    const started = Date.now();
    const [results] = await quietly(() =>
      map(slow, [30_000], { ...ge, dbfile, geOpts: ['-l h_rt=0:0:3'] }),
    );
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(results).toEqual([null]);
    const [state] = await getTaskStates(lastRequest(dbfile), dbfile);
    expect(state?.state).toBe('lost');
    expect(state?.reason).toMatch(/h_rt/);
    expect(state?.reason).toMatch(/failed 37/);
  }, 120_000);
});

describe('Grid Engine: cancellation', () => {
  it('an AbortSignal runs qdel, marks the tasks cancelled, and their later posts get 409', async () => {
    const dbfile = freshDb();
    const tokens: string[] = [];
    const inner = gridengine({ ...clusterSsh(cluster), directory: sshDir, shell: cluster.node });
    const backend: Backend = {
      ...inner,
      async submit(spec: JobSpec) {
        tokens.push(spec.token);
        return inner.submit(spec);
      },
    };
    const controller = new AbortController();
    const long = async (ms: number): Promise<number> => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return ms;
    };
    const running = map(long, [60_000, 60_000], {
      ...ge,
      dbfile,
      backend,
      signal: controller.signal,
    });
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (Date.now() > deadline) throw new Error('the tasks never started');
      await new Promise((resolve) => setTimeout(resolve, 200));
      const id = lastRequest(dbfile);
      if (id !== undefined && look(dbfile, (s) => s.countByState(id).running) === 2) break;
    }
    controller.abort();
    const error = (await running.catch((e: unknown) => e)) as SheepdogError;
    expect(error.code).toBe('CANCELLED');
    expect(error.results).toEqual([null, null]);
    expect(error.states?.map((t) => t.state)).toEqual(['cancelled', 'cancelled']);
    const id = error.requestId as number;
    const [job] = look(dbfile, (s) => s.getJobs(id));
    // qdel took the job off the scheduler: qstat -j no longer knows it.
    const gone = Date.now() + 20_000;
    while ((await deployer.exec(`qstat -j ${job?.jobId}`)).code === 0) {
      if (Date.now() > gone) throw new Error(`job ${job?.jobId} is still on the scheduler`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const port = look(dbfile, (s) => (s.getRequest(id).config as { port: number }).port);
    const server = await getServer({ dbfile, port, hostname: '127.0.0.1' });
    try {
      const response = await fetch(`${server.url}v1/requests/${id}/tasks/1/result`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${tokens[0]}`,
          'content-type': 'application/octet-stream',
        },
        body: new Uint8Array([1]),
      });
      expect(response.status).toBe(409);
    } finally {
      await server.stop();
    }
  }, 120_000);
});

describe('Grid Engine: the client process dies', () => {
  it('killed after mapAsync: another process resumes and collects every result', async () => {
    const dbfile = freshDb();
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, () => {
        const { port: p } = probe.address() as { port: number };
        probe.close(() => resolve(p));
      });
    });
    const config = { ...ge, dbfile, port };
    const script = `
      const { mapAsync } = await import(${JSON.stringify(DIST)});
      const id = await mapAsync(async (i) => {
        await new Promise((r) => setTimeout(r, 2000));
        return i * i;
      }, [1, 2, 3, 4], ${JSON.stringify(config)});
      process.stdout.write(JSON.stringify({ id }) + '\\n');
    `;
    const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const id = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const line = /^(\{.*\})$/m.exec(out)?.[1];
        if (line) resolve((JSON.parse(line) as { id: number }).id);
      });
      child.on('exit', (code) => reject(new Error(`the client exited (${code}) early`)));
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    // Only the dbfile and the id: the backend comes back from the stored config.
    const results = await resume(id, dbfile, { lostGraceMs: 1000, pollIntervalMs: 500 });
    expect(results).toEqual([1, 4, 9, 16]);
    look(dbfile, (s) => {
      expect(s.getResults(id)).toHaveLength(4);
      expect(s.getJobs(id)).toHaveLength(1);
    });
  }, 120_000);
});

// Given to the tasks in `ns`; declared here only so that `diesOnce` type-checks.
const MARKERS = '';
