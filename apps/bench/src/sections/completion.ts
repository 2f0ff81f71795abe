import { Agent } from 'node:http';
import { join } from 'node:path';
import { createRequest, getServer } from '@sheepdog/server';
import { map } from 'sheepdog';
import { exchange } from '../internal/http.js';
import { EMPTY_NS, IDENTITY_FUNC, trivialArgs, trivialResult } from '../internal/payloads.js';
import { scriptedBackend } from '../internal/scripted-backend.js';
import type { Section } from '../internal/section.js';
import { sizeLabel } from '../internal/section.js';
import { type Check, diagnostic, type Figure, figure } from '../report.js';

/** Results posted at once before the last one, which goes alone. */
const POST_CONCURRENCY = 8;

/** From this size on, the posting rate is compared with posting while no `map` waits. */
const RATE_FROM = 1_000;

interface Timing {
  /** performance.now() just before the first result was written. */
  firstSentAt: number;
  /** performance.now() just before the last result was written to the socket. */
  lastSentAt: number;
  /** performance.now() when its answer had been read. */
  lastAnsweredAt: number;
}

/** Posts the result of every index over the wire protocol, the last one alone and timed. */
async function postAll(
  url: string,
  token: string,
  requestId: number,
  indices: readonly number[],
): Promise<Timing> {
  const base = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: POST_CONCURRENCY });
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' };
  const post = async (index: number, onSend?: () => void): Promise<void> => {
    const path = `/v1/requests/${requestId}/tasks/${index}/result`;
    const answer = await exchange(agent, base, 'POST', path, headers, trivialResult(index), onSend);
    if (answer.status !== 200) {
      throw new Error(`POST ${path}: HTTP ${answer.status} ${answer.body.toString('utf8')}`);
    }
  };
  try {
    const firstSentAt = performance.now();
    const rest = indices.slice(0, -1);
    let next = 0;
    await Promise.all(
      Array.from({ length: POST_CONCURRENCY }, async () => {
        while (next < rest.length) await post(rest[next++] as number);
      }),
    );
    let lastSentAt = 0;
    await post(indices[indices.length - 1] as number, () => {
      lastSentAt = performance.now();
    });
    return { firstSentAt, lastSentAt, lastAnsweredAt: performance.now() };
  } finally {
    agent.destroy();
  }
}

interface TimedMap {
  results: unknown[];
  timing: Timing;
  resolvedAt: number;
}

/** Results posted per second, first sent to last answered. */
function rate(n: number, timing: Timing): number {
  return n / ((timing.lastAnsweredAt - timing.firstSentAt) / 1000);
}

/**
 * How long `map` takes to notice that the last result arrived. A custom backend posts every
 * result itself over HTTP from this process; the clock runs from the moment the last result is
 * written to the socket until `map` resolves (with its results read back and decoded). For big
 * requests it also compares the rate of those posts with the same posts while no `map` waits:
 * what waiting costs the server.
 */
export const completionSection: Section = async ({ plan, workDir, log }) => {
  const { runs, sizes } = plan.completion;
  const figures: Figure[] = [];
  const checks: Check[] = [];
  const dbfile = join(workDir, 'completion.sqlite');

  const timedMap = async (n: number): Promise<TimedMap> => {
    let timing: Timing | undefined;
    const backend = scriptedBackend('bench-posting', async (job) => {
      timing = await postAll(job.url, job.token, job.requestId, job.indices);
    });
    const args = Array.from({ length: n }, (_, i) => i + 1);
    const results = await map((x: number) => x, args, { dbfile, bindHost: '127.0.0.1', backend });
    const resolvedAt = performance.now();
    await backend.done;
    return { results, timing: timing as Timing, resolvedAt };
  };

  /** The same posts to the same kind of server, with nobody waiting on the request. */
  const unwatchedRate = async (n: number): Promise<number> => {
    const server = await getServer({ dbfile, hostname: '127.0.0.1' });
    try {
      const { requestId, token } = createRequest(
        server.storage,
        IDENTITY_FUNC,
        EMPTY_NS,
        trivialArgs(n),
      );
      const indices = Array.from({ length: n }, (_, i) => i + 1);
      return rate(n, await postAll(server.url, token, requestId, indices));
    } finally {
      await server.stop();
    }
  };

  // The first map of a process compiles its code paths; the figure is about every later one.
  await timedMap(Math.min(...sizes));
  for (const n of sizes) {
    const latency: number[] = [];
    const afterAnswer: number[] = [];
    const watched: number[] = [];
    const unwatched: number[] = [];
    for (let run = 1; run <= runs; run++) {
      log(`completion: ${sizeLabel(n)} tasks, run ${run}/${runs}`);
      const { results, timing, resolvedAt } = await timedMap(n);
      latency.push(resolvedAt - timing.lastSentAt);
      afterAnswer.push(resolvedAt - timing.lastAnsweredAt);
      const wrong = results.filter((r, i) => r !== i + 1).length;
      checks.push({
        what: `completion ${sizeLabel(n)} run ${run}: every result back in order`,
        ok: wrong === 0,
        ...(wrong === 0 ? {} : { detail: `${wrong} of ${n} results wrong` }),
      });
      if (n >= RATE_FROM) {
        watched.push(rate(n, timing));
        unwatched.push(await unwatchedRate(n));
      }
    }
    figures.push(
      figure(
        `completion.${n}.latencyMs`,
        `${sizeLabel(n)} tasks: last result written → map resolved`,
        'ms',
        latency,
        n === 10 ? '240–610 ms' : undefined,
      ),
      diagnostic(
        `completion.${n}.afterAnswerMs`,
        `${sizeLabel(n)} tasks: last answer read → map resolved (negative: map resolved first)`,
        'ms',
        afterAnswer,
      ),
    );
    if (n >= RATE_FROM) {
      figures.push(
        figure(
          `completion.${n}.watchedPostsPerS`,
          `${sizeLabel(n)} tasks: results posted per second while map waits`,
          'results/s',
          watched,
        ),
        figure(
          `completion.${n}.unwatchedPostsPerS`,
          `baseline: the same posts with no map waiting`,
          'results/s',
          unwatched,
        ),
        figure(
          `completion.${n}.watchedRatio`,
          `${sizeLabel(n)} tasks: posting rate, map waiting / no map`,
          '×',
          watched.map((w, i) => w / (unwatched[i] as number)),
        ),
      );
    }
  }
  return {
    figures,
    checks,
    settings: {
      runs,
      sizes,
      clock: 'from just before the last POST is written until map resolves, both in this process',
      warmUp: 'one unmeasured map first',
      posting: `${POST_CONCURRENCY} keep-alive connections from this process`,
    },
  };
};
