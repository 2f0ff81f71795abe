import { join } from 'node:path';
import { createRequest, getServer, type SheepdogServer } from '@sheepdog/server';
import { type BareServer, startBareServer } from '../internal/bare-server.js';
import { type Child, startChild } from '../internal/child.js';
import type { LoadJob, ProtocolName } from '../internal/ingest-protocols.js';
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

function sheepdogTarget(server: SheepdogServer, protocol: ProtocolName): IngestTarget {
  return {
    name: protocol,
    prepare(tasks, concurrency) {
      const { requestId, token } = createRequest(
        server.storage,
        IDENTITY_FUNC,
        EMPTY_NS,
        trivialArgs(tasks),
        { label: 'bench ingest' },
      );
      return {
        job: { protocol, url: server.url, tasks, concurrency, requestId, token },
        verify(stats) {
          const problems = loadProblems(stats, tasks);
          const stored = server.storage.countResults(requestId);
          const done = server.storage.countByState(requestId).done;
          if (stored !== tasks) problems.push(`${stored} results stored, expected ${tasks}`);
          if (done !== tasks) problems.push(`${done} tasks done, expected ${tasks}`);
          return verdict(
            `${protocol}, ${concurrency} workers, request ${requestId}: each of ${tasks} results stored once`,
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
  /** Opening the workers' connections, before the clock. */
  connectMs: number;
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
    connectMs: stats.connectMs,
    check: verify(stats),
  };
}

/** A way of ingesting through the Sheepdog server, measured against the same bare baseline. */
interface IngestCase {
  /** The worker's side, from `ingest-protocols.ts`. */
  readonly protocol: ProtocolName;
  /** Figure ids start with this: the targets refer to `ingest.c32.ratio`. */
  readonly idPrefix: string;
  /** Names the case in figure labels. */
  readonly label: string;
  /** What the original did at 32 workers, where the issue says. */
  readonly original32?: { tasksPerS: string; p50: string; ratio: string };
  /**
   * Tasks per run as a multiple of the section's `tasks`: leasing is ~20× faster, and a run
   * must last long enough to be steady.
   * @default 1
   */
  readonly tasksScale?: number;
  /**
   * What one latency sample covers, for the labels.
   * @default 'per task'
   */
  readonly latencyOf?: string;
}

/** The measured cases; the `ingest-leased` target reads `ingest.leased.c32.tasksPerS`. */
const CASES: readonly IngestCase[] = [
  {
    protocol: 'sheepdog-v1',
    idPrefix: 'ingest',
    label: 'sheepdog',
    original32: { tasksPerS: '162 tasks/s', p50: '203 ms', ratio: '≈ 0.036×' },
  },
  {
    protocol: 'sheepdog-leased',
    idPrefix: 'ingest.leased',
    label: 'sheepdog leased',
    tasksScale: 25,
    latencyOf: 'per lease + batch',
  },
];

function caseFigures(
  kase: IngestCase,
  c: number,
  ours: readonly Measurement[],
  bare: readonly Measurement[],
): Figure[] {
  const id = `${kase.idPrefix}.c${c}`;
  const original = c === 32 ? kase.original32 : undefined;
  return [
    figure(
      `${id}.tasksPerS`,
      `${kase.label}, ${c} workers: throughput`,
      'tasks/s',
      ours.map((m) => m.tasksPerS),
      original?.tasksPerS,
    ),
    figure(
      `${id}.p50Ms`,
      `${kase.label}, ${c} workers: p50 latency ${kase.latencyOf ?? 'per task'}`,
      'ms',
      ours.map((m) => m.p50Ms),
      original?.p50,
    ),
    figure(
      `${id}.p99Ms`,
      `${kase.label}, ${c} workers: p99 latency ${kase.latencyOf ?? 'per task'}`,
      'ms',
      ours.map((m) => m.p99Ms),
    ),
    figure(
      `${id}.ratio`,
      `${kase.label} / bare, ${c} workers`,
      '×',
      ours.map((m, i) => m.tasksPerS / (bare[i] as Measurement).tasksPerS),
      original?.ratio,
    ),
    diagnostic(
      `${id}.serverCpuUsPerTask`,
      `${kase.label} server, ${c} workers: CPU per task`,
      'µs',
      ours.map((m) => m.serverCpuUs),
    ),
    diagnostic(
      `${id}.connectMs`,
      `${kase.label}, ${c} workers: opening the connections (before the clock)`,
      'ms',
      ours.map((m) => m.connectMs),
    ),
    diagnostic(
      `${id}.clientCpuUsPerTask`,
      `load generator against ${kase.label}, ${c} workers: CPU per task`,
      'µs',
      ours.map((m) => m.clientCpuUs),
    ),
  ];
}

function bareFigures(c: number, bare: readonly Measurement[]): Figure[] {
  return [
    figure(
      `ingest.bare.c${c}.tasksPerS`,
      `baseline bare Hono + SQLite, ${c} workers: throughput`,
      'tasks/s',
      bare.map((m) => m.tasksPerS),
      c === 32 ? '≈ 4,500 tasks/s (ceiling estimate)' : undefined,
    ),
    diagnostic(
      `ingest.bare.c${c}.p50Ms`,
      `bare, ${c} workers: p50 latency per task`,
      'ms',
      bare.map((m) => m.p50Ms),
    ),
    diagnostic(
      `ingest.bare.c${c}.p99Ms`,
      `bare, ${c} workers: p99 latency per task`,
      'ms',
      bare.map((m) => m.p99Ms),
    ),
    diagnostic(
      `ingest.bare.c${c}.serverCpuUsPerTask`,
      `bare server, ${c} workers: CPU per task`,
      'µs',
      bare.map((m) => m.serverCpuUs),
    ),
  ];
}

/**
 * Server ingest through the real worker protocol: a load generator in a child process plays
 * 1..128 workers (GET details, POST result, Bearer token) against the Sheepdog server in this
 * process, and, in the same run, against the bare Hono + better-sqlite3 ceiling.
 */
export const ingestSection: Section = async ({ plan, workDir, log }) => {
  const { runs, concurrencies, tasks } = plan.ingest;
  const server = await getServer({ dbfile: join(workDir, 'ingest.sqlite'), hostname: '127.0.0.1' });
  const bareServer = await startBareServer(join(workDir, 'bare.sqlite'));
  const load = startChild(LOAD_SCRIPT);
  const figures: Figure[] = [];
  const checks: Check[] = [];
  try {
    const bare = bareTarget(bareServer);
    const targets = CASES.map((kase) => sheepdogTarget(server, kase.protocol));
    const tasksOf = new Map<IngestTarget, number>([
      [bare, tasks],
      ...CASES.map((kase, i): [IngestTarget, number] => [
        targets[i] as IngestTarget,
        tasks * (kase.tasksScale ?? 1),
      ]),
    ]);
    log('ingest: warm-up runs');
    for (const target of [bare, ...targets]) {
      checks.push((await measure(load, target, Math.min(tasks, WARM_UP_TASKS), 8)).check);
    }
    for (const c of concurrencies) {
      const measured = new Map<IngestTarget, Measurement[]>(
        [bare, ...targets].map((target) => [target, []]),
      );
      for (let run = 1; run <= runs; run++) {
        log(`ingest: ${c} workers, run ${run}/${runs}`);
        // Alternate who goes first, so a drift in machine load favours no one.
        const order = run % 2 === 1 ? [bare, ...targets] : [...targets, bare];
        for (const target of order) {
          const m = await measure(load, target, tasksOf.get(target) ?? tasks, c);
          checks.push(m.check);
          measured.get(target)?.push(m);
        }
      }
      const baseline = measured.get(bare) ?? [];
      figures.push(...bareFigures(c, baseline));
      CASES.forEach((kase, i) => {
        const ours = measured.get(targets[i] as IngestTarget) ?? [];
        figures.push(...caseFigures(kase, c, ours, baseline));
      });
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
      tasksPerRunByProtocol: CASES.map(
        (kase) => `${kase.protocol} ${tasks * (kase.tasksScale ?? 1)}`,
      ).join(', '),
      warmUpTasks: Math.min(tasks, WARM_UP_TASKS),
      protocols: CASES.map((kase) => kase.protocol),
      client:
        'a child process, node:http keep-alive agent, one socket per worker, opened before the clock',
    },
  };
};
