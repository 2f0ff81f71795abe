import { Agent } from 'node:http';
import { join } from 'node:path';
import { map } from 'sheepdog';
import { exchange } from '../internal/http.js';
import { trivialResult } from '../internal/payloads.js';
import { scriptedBackend } from '../internal/scripted-backend.js';
import type { Section } from '../internal/section.js';
import { sizeLabel } from '../internal/section.js';
import { type Check, diagnostic, type Figure, figure } from '../report.js';

/** Results posted at once before the last one, which goes alone. */
const POST_CONCURRENCY = 8;

interface Timing {
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
    return { lastSentAt, lastAnsweredAt: performance.now() };
  } finally {
    agent.destroy();
  }
}

/**
 * How long `map` takes to notice that the last result arrived. A custom backend posts every
 * result itself over HTTP from this process; the clock runs from the moment the last result is
 * written to the socket until `map` resolves (with its results read back and decoded).
 */
export const completionSection: Section = async ({ plan, workDir, log }) => {
  const { runs, sizes } = plan.completion;
  const figures: Figure[] = [];
  const checks: Check[] = [];
  const dbfile = join(workDir, 'completion.sqlite');
  for (const n of sizes) {
    const latency: number[] = [];
    const afterAnswer: number[] = [];
    for (let run = 1; run <= runs; run++) {
      log(`completion: ${sizeLabel(n)} tasks, run ${run}/${runs}`);
      let timing: Timing | undefined;
      const backend = scriptedBackend('bench-posting', async (job) => {
        timing = await postAll(job.url, job.token, job.requestId, job.indices);
      });
      const args = Array.from({ length: n }, (_, i) => i + 1);
      const results = await map((x: number) => x, args, { dbfile, bindHost: '127.0.0.1', backend });
      const resolvedAt = performance.now();
      await backend.done;
      const t = timing as Timing;
      latency.push(resolvedAt - t.lastSentAt);
      afterAnswer.push(resolvedAt - t.lastAnsweredAt);
      const wrong = results.filter((r, i) => r !== i + 1).length;
      checks.push(
        wrong === 0
          ? { what: `completion ${sizeLabel(n)} run ${run}: every result back in order`, ok: true }
          : {
              what: `completion ${sizeLabel(n)} run ${run}: every result back in order`,
              ok: false,
              detail: `${wrong} of ${n} results wrong`,
            },
      );
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
  }
  return {
    figures,
    checks,
    settings: {
      runs,
      sizes,
      clock: 'from just before the last POST is written until map resolves, both in this process',
    },
  };
};
