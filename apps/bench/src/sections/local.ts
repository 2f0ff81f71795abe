import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { jobFile } from '@sheepdog/job-file';
import { EXIT_CODES } from '@sheepdog/worker';
import { map } from 'sheepdog';
import { scriptedBackend } from '../internal/scripted-backend.js';
import type { Section } from '../internal/section.js';
import { sizeLabel } from '../internal/section.js';
import { type Check, type Figure, figure } from '../report.js';

interface Exit {
  ms: number;
  code: number | null;
  stderr: string;
}

/** Runs `node args` to its exit, with the local backend's stdio, and times it. */
function timedNode(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Exit> {
  return new Promise<Exit>((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-2000);
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ ms: performance.now() - t0, code, stderr }));
  });
}

/**
 * Largest map that gets its own `node -e 0` pool in the same run. Above it (lease mode), the
 * pool would take minutes; compare the per-task wall times with the smaller size's pool instead.
 */
const POOL_MAX = 1_000;

/** `n` processes of `node -e 0`, `concurrency` at a time: the floor of any one-process-per-task pool. */
async function rawPool(n: number, concurrency: number): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next += 1;
        const exit = await timedNode(['-e', '0']);
        if (exit.code !== 0) throw new Error(`node -e 0 exited with ${exit.code}: ${exit.stderr}`);
      }
    }),
  );
  return (performance.now() - t0) / 1000;
}

function inOrder(what: string, results: readonly unknown[]): Check {
  const wrong = results.filter((r, i) => r !== i + 1).length;
  return wrong === 0
    ? { what, ok: true }
    : { what, ok: false, detail: `${wrong} of ${results.length} results wrong` };
}

/**
 * The local backend end to end (`map` of trivial tasks as core runs them: one process per task
 * up to 1,000 tasks, lease mode above), against a pool of bare `node -e 0` processes at the same
 * concurrency (up to {@link POOL_MAX} tasks); and the per-process overhead of the worker: a
 * rendered job file run for one task against a live server, minus `node -e 0`.
 */
export const localSection: Section = async ({ plan, workDir, log }) => {
  const { runs, sizes, overheadSamples } = plan.local;
  const concurrency = availableParallelism();
  const figures: Figure[] = [];
  const checks: Check[] = [];
  const dbfile = join(workDir, 'local.sqlite');

  for (const n of sizes) {
    const ours: number[] = [];
    const raw: number[] = [];
    const withPool = n <= POOL_MAX;
    for (let run = 1; run <= runs; run++) {
      log(`local: map of ${sizeLabel(n)} tasks, run ${run}/${runs}`);
      const args = Array.from({ length: n }, (_, i) => i + 1);
      const t0 = performance.now();
      const results = await map((x: number) => x, args, {
        dbfile,
        bindHost: '127.0.0.1',
        concurrency,
      });
      ours.push((performance.now() - t0) / 1000);
      checks.push(
        inOrder(`local map ${sizeLabel(n)} run ${run}: every result back in order`, results),
      );
      if (withPool) {
        log(`local: ${sizeLabel(n)} × node -e 0, run ${run}/${runs}`);
        raw.push(await rawPool(n, concurrency));
      }
    }
    const label = `map of ${sizeLabel(n)} trivial tasks`;
    figures.push(
      figure(`local.e2e.${n}.timeS`, `${label}: time`, 's', ours),
      figure(
        `local.e2e.${n}.tasksPerS`,
        `${label}: throughput`,
        'tasks/s',
        ours.map((s) => n / s),
      ),
      figure(
        `local.e2e.${n}.msPerTask`,
        `${label}: wall time per task`,
        'ms',
        ours.map((s) => (s * 1000) / n),
      ),
    );
    if (withPool) {
      figures.push(
        figure(
          `local.raw.${n}.timeS`,
          `baseline: ${sizeLabel(n)} × node -e 0, ${concurrency} at a time`,
          's',
          raw,
        ),
        figure(
          `local.raw.${n}.msPerTask`,
          `baseline: node -e 0 pool, wall time per process`,
          'ms',
          raw.map((s) => (s * 1000) / n),
        ),
        figure(
          `local.e2e.${n}.ratio`,
          `map / node -e 0 pool, ${sizeLabel(n)} tasks`,
          '×',
          ours.map((s, i) => s / (raw[i] as number)),
        ),
      );
    }
  }

  log(`local: per-process overhead, ${overheadSamples} samples`);
  const jobFileMs: number[] = [];
  const bareMs: number[] = [];
  const backend = scriptedBackend('bench-overhead', async (job) => {
    const dir = mkdtempSync(join(workDir, 'overhead-'));
    const file = join(dir, `sheepdog-${job.requestId}.cjs`);
    const text = jobFile({
      url: job.url,
      token: job.token,
      requestId: job.requestId,
      nArgs: job.indices.length,
      shell: process.execPath,
      directivePrefix: null,
      name: job.name,
    });
    writeFileSync(file, text, { mode: 0o600 });
    for (const index of job.indices) {
      // Alternate which goes first, so neither always runs on a warmer page cache.
      const pair = [
        async () => {
          const exit = await timedNode([file], { ...process.env, SHEEPDOG_TASK_ID: String(index) });
          if (exit.code !== EXIT_CODES.reported) {
            throw new Error(
              `the job file for task ${index} exited with ${exit.code}: ${exit.stderr}`,
            );
          }
          jobFileMs.push(exit.ms);
        },
        async () => {
          bareMs.push((await timedNode(['-e', '0'])).ms);
        },
      ];
      if (index % 2 === 0) pair.reverse();
      for (const step of pair) await step();
    }
  });
  const args = Array.from({ length: overheadSamples }, (_, i) => i + 1);
  const results = await map((x: number) => x, args, { dbfile, bindHost: '127.0.0.1', backend });
  await backend.done;
  checks.push(inOrder('overhead: every job file run reported its result', results));
  figures.push(
    figure('local.jobFile.ms', 'one task: node <job file> against a live server', 'ms', jobFileMs),
    figure('local.nodeBare.ms', 'baseline: node -e 0', 'ms', bareMs),
    figure(
      'local.overhead.ms',
      'per-process worker overhead (job file − node -e 0, paired)',
      'ms',
      jobFileMs.map((ms, i) => ms - (bareMs[i] as number)),
      '85 ms',
    ),
  );

  return {
    figures,
    checks,
    settings: { runs, sizes, poolUpTo: POOL_MAX, concurrency, overheadSamples, task: '(x) => x' },
  };
};
