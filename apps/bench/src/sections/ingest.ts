import { join } from 'node:path';
import { createRequest, getServer, type SheepdogServer } from '@sheepdog/server';
import { type BareServer, startBareServer } from '../internal/bare-server.js';
import { type Child, startChild } from '../internal/child.js';
import type { LoadJob } from '../internal/ingest-protocols.js';
import type { LoadStats } from '../internal/load-generator.js';
import { EMPTY_NS, IDENTITY_FUNC, trivialArgs } from '../internal/payloads.js';
import type { Section } from '../internal/section.js';
import { type Check, diagnostic, type Figure, figure } from '../report.js';

const LOAD_SCRIPT = new URL('../internal/load-generator.js', import.meta.url);

/** Tasks of the unmeasured warm-up run against each server (JIT, SQLite cache, connections). */
const WARM_UP_TASKS = 500;

/**
 * A server under load: it prepares the work of one run (untimed) and, once the run is over,
 * checks that every task reported exactly once.
 */
interface IngestTarget {
  readonly name: string;
  prepare(tasks: number, concurrency: number): { job: LoadJob; verify(stats: LoadStats): Check };
}

function verdict(what: string, problems: string[]): Check {
  return problems.length === 0
    ? { what, ok: true }
    : { what, ok: false, detail: problems.join('; ') };
}

function loadProblems(stats: LoadStats, tasks: number): string[] {
  const problems: string[] = [];
  if (stats.completed !== tasks) problems.push(`${stats.completed} of ${tasks} tasks completed`);
  if (stats.duplicates > 0) problems.push(`${stats.duplicates} results answered as duplicates`);
  if (stats.failures > 0) problems.push(`${stats.failures} failures, first: ${stats.firstFailure}`);
  return problems;
}

function sheepdogTarget(server: SheepdogServer): IngestTarget {
  return {
    name: 'sheepdog',
    prepare(tasks, concurrency) {
      const { requestId, token } = createRequest(
        server.storage,
        IDENTITY_FUNC,
        EMPTY_NS,
        trivialArgs(tasks),
        { label: 'bench ingest' },
      );
      return {
        job: { protocol: 'sheepdog-v1', url: server.url, tasks, concurrency, requestId, token },
        verify(stats) {
          const problems = loadProblems(stats, tasks);
          const stored = server.storage.countResults(requestId);
          const done = server.storage.countByState(requestId).done;
          if (stored !== tasks) problems.push(`${stored} results stored, expected ${tasks}`);
          if (done !== tasks) problems.push(`${done} tasks done, expected ${tasks}`);
          return verdict(
            `sheepdog, ${concurrency} workers, request ${requestId}: each of ${tasks} results stored once`,
            problems,
          );
        },
      };
    },
  };
}

function bareTarget(server: BareServer): IngestTarget {
  return {
    name: 'bare',
    prepare(tasks, concurrency) {
      const keyOffset = server.prepare(tasks);
      return {
        job: { protocol: 'bare', url: server.url, tasks, concurrency, keyOffset },
        verify(stats) {
          const problems = loadProblems(stats, tasks);
          const stored = server.countResults(keyOffset, tasks);
          if (stored !== tasks) problems.push(`${stored} results stored, expected ${tasks}`);
          return verdict(
            `bare, ${concurrency} workers: each of ${tasks} results stored once`,
            problems,
          );
        },
      };
    },
  };
}

interface Measurement {
  tasksPerS: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of this (the server's) process per task. */
  serverCpuUs: number;
  /** CPU time of the load generator per task. */
  clientCpuUs: number;
  check: Check;
}

async function measure(
  load: Child,
  target: IngestTarget,
  tasks: number,
  concurrency: number,
): Promise<Measurement> {
  const { job, verify } = target.prepare(tasks, concurrency);
  const cpu0 = process.cpuUsage();
  const stats = await load.call<LoadStats>(job);
  const cpu = process.cpuUsage(cpu0);
  return {
    tasksPerS: stats.completed / (stats.elapsedMs / 1000),
    p50Ms: stats.latencyMs.p50,
    p99Ms: stats.latencyMs.p99,
    serverCpuUs: (cpu.user + cpu.system) / tasks,
    clientCpuUs: (stats.cpuMs * 1000) / tasks,
    check: verify(stats),
  };
}

/**
 * Server ingest through the real worker protocol: a load generator in a child process plays
 * 1..128 workers (GET details, POST result, Bearer token) against the Sheepdog server in this
 * process, and, alternating run by run, against the bare Hono + better-sqlite3 ceiling.
 */
export const ingestSection: Section = async ({ plan, workDir, log }) => {
  const { runs, concurrencies, tasks } = plan.ingest;
  const server = await getServer({ dbfile: join(workDir, 'ingest.sqlite'), hostname: '127.0.0.1' });
  const bareServer = await startBareServer(join(workDir, 'bare.sqlite'));
  const load = startChild(LOAD_SCRIPT);
  const figures: Figure[] = [];
  const checks: Check[] = [];
  try {
    const sheepdog = sheepdogTarget(server);
    const bare = bareTarget(bareServer);
    log('ingest: warm-up runs');
    for (const target of [bare, sheepdog]) {
      checks.push((await measure(load, target, Math.min(tasks, WARM_UP_TASKS), 8)).check);
    }
    for (const concurrency of concurrencies) {
      const ours: Measurement[] = [];
      const theirs: Measurement[] = [];
      for (let run = 1; run <= runs; run++) {
        log(`ingest: ${concurrency} workers, run ${run}/${runs}`);
        // Alternate who goes first, so a drift in machine load does not favour either.
        const order = run % 2 === 1 ? [bare, sheepdog] : [sheepdog, bare];
        for (const target of order) {
          const m = await measure(load, target, tasks, concurrency);
          checks.push(m.check);
          (target === sheepdog ? ours : theirs).push(m);
        }
      }
      const c = concurrency;
      const at32 = c === 32;
      figures.push(
        figure(
          `ingest.c${c}.tasksPerS`,
          `sheepdog, ${c} workers: throughput`,
          'tasks/s',
          ours.map((m) => m.tasksPerS),
          at32 ? '162 tasks/s' : undefined,
        ),
        figure(
          `ingest.c${c}.p50Ms`,
          `sheepdog, ${c} workers: p50 latency per task`,
          'ms',
          ours.map((m) => m.p50Ms),
          at32 ? '203 ms' : undefined,
        ),
        figure(
          `ingest.c${c}.p99Ms`,
          `sheepdog, ${c} workers: p99 latency per task`,
          'ms',
          ours.map((m) => m.p99Ms),
        ),
        figure(
          `ingest.bare.c${c}.tasksPerS`,
          `baseline bare Hono + SQLite, ${c} workers: throughput`,
          'tasks/s',
          theirs.map((m) => m.tasksPerS),
          at32 ? '≈ 4,500 tasks/s (ceiling estimate)' : undefined,
        ),
        figure(
          `ingest.c${c}.ratio`,
          `sheepdog / bare, ${c} workers`,
          '×',
          ours.map((m, i) => m.tasksPerS / (theirs[i] as Measurement).tasksPerS),
          at32 ? '≈ 0.036×' : undefined,
        ),
        diagnostic(
          `ingest.bare.c${c}.p50Ms`,
          `bare, ${c} workers: p50 latency per task`,
          'ms',
          theirs.map((m) => m.p50Ms),
        ),
        diagnostic(
          `ingest.c${c}.serverCpuUsPerTask`,
          `sheepdog server, ${c} workers: CPU per task`,
          'µs',
          ours.map((m) => m.serverCpuUs),
        ),
        diagnostic(
          `ingest.bare.c${c}.serverCpuUsPerTask`,
          `bare server, ${c} workers: CPU per task`,
          'µs',
          theirs.map((m) => m.serverCpuUs),
        ),
        diagnostic(
          `ingest.c${c}.clientCpuUsPerTask`,
          `load generator against sheepdog, ${c} workers: CPU per task`,
          'µs',
          ours.map((m) => m.clientCpuUs),
        ),
      );
    }
  } finally {
    await load.close();
    await server.stop();
    await bareServer.stop();
  }
  return {
    figures,
    checks,
    settings: {
      runs,
      concurrencies,
      tasksPerRun: tasks,
      warmUpTasks: Math.min(tasks, WARM_UP_TASKS),
      protocol: 'GET details + POST result per task, Bearer token, keep-alive node:http agents',
    },
  };
};
