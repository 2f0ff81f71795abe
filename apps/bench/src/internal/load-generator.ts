// Child process: the ingest load generator. It runs in its own process so that the simulated
// workers never share an event loop with the server.
import { Agent } from 'node:http';
import { percentile } from '../stats.js';
import { serveParent } from './child.js';
import { exchange } from './http.js';
import { type LoadJob, PROTOCOLS, type WorkerContext } from './ingest-protocols.js';

/** What one load run measured, from the workers' side. */
export interface LoadStats {
  /** From the first request sent to the last answer read. */
  elapsedMs: number;
  /** Tasks completed (answered 200 to every call). */
  completed: number;
  /** Reports the server called duplicates. */
  duplicates: number;
  failures: number;
  /** The first failure, to say what went wrong. */
  firstFailure?: string;
  /** Per completion (one task in v1): from its first request sent to its last answer read. */
  latencyMs: { p50: number; p99: number; max: number };
  /** CPU time of this process during the run, in ms: is the client the bottleneck? */
  cpuMs: number;
  /** Opening one connection per worker before the run (not in `elapsedMs`). */
  connectMs: number;
}

async function runLoad(job: LoadJob): Promise<LoadStats> {
  const loop = PROTOCOLS[job.protocol];
  const base = new URL(job.url);
  const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency });
  const latencies = new Float64Array(job.tasks);
  let recorded = 0;
  let next = 1;
  let completed = 0;
  let duplicates = 0;
  let failures = 0;
  let firstFailure: string | undefined;
  const context: WorkerContext = {
    job,
    claim: () => (next <= job.tasks ? next++ : undefined),
    request: (method, path, headers, body) => exchange(agent, base, method, path, headers, body),
    completed(tasks, startedAt) {
      completed += tasks;
      if (recorded < latencies.length) latencies[recorded++] = performance.now() - startedAt;
    },
    duplicate() {
      duplicates += 1;
    },
    failed(message) {
      failures += 1;
      firstFailure ??= message;
    },
  };
  // A worker in steady state already holds its connection. Opening them all at once inside the
  // clock is a burst no real run has, and it made the p99 at 128 workers seconds long; so they
  // are opened first (one cheap 404 each) and that is timed apart.
  const connectStart = performance.now();
  await Promise.all(
    Array.from({ length: job.concurrency }, () => exchange(agent, base, 'GET', '/', {})),
  );
  const connectMs = performance.now() - connectStart;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    await Promise.all(Array.from({ length: job.concurrency }, () => loop(context)));
  } finally {
    agent.destroy();
  }
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const sorted = latencies.subarray(0, recorded).sort();
  return {
    elapsedMs,
    completed,
    duplicates,
    failures,
    ...(firstFailure === undefined ? {} : { firstFailure }),
    latencyMs: {
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted[sorted.length - 1] ?? Number.NaN,
    },
    cpuMs: (cpu.user + cpu.system) / 1000,
    connectMs,
  };
}

serveParent((job: LoadJob) => runLoad(job));
