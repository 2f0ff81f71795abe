// How a simulated worker talks to a server, one loop per protocol. The load generator runs
// `concurrency` copies of a loop; each copy plays one worker that asks for work until none is
// left. A protocol in which the server hands out work (leases) ignores `claim()` and asks the
// server instead; it calls `completed()` once per batch with the number of tasks it carried.
import { encodeOutcomeFrames, OUTCOME_FRAMES_TYPE, type OutcomeFrame } from '@sheepdog/server';
import type { Answer } from './http.js';
import { trivialResult } from './payloads.js';

/** Protocols the load generator speaks. */
export type ProtocolName = 'sheepdog-v1' | 'sheepdog-leased' | 'bare';

/** Largest chunk a leased worker asks for: `@sheepdog/worker`'s default `maxChunk`. */
const MAX_CHUNK = 1000;

/** One load run, as the parent sends it to the load generator. */
export interface LoadJob {
  readonly protocol: ProtocolName;
  /** The server's base URL, with trailing slash. */
  readonly url: string;
  /** Tasks to complete in this run. */
  readonly tasks: number;
  /** Workers running at once, each on its own keep-alive connection. */
  readonly concurrency: number;
  /** sheepdog-v1: the request and its token; job indices run 1..tasks. */
  readonly requestId?: number;
  readonly token?: string;
  /** bare: keys run `keyOffset + 1 .. keyOffset + tasks`. */
  readonly keyOffset?: number;
}

/** What a worker loop may do. */
export interface WorkerContext {
  readonly job: LoadJob;
  /** The next job index (1-based) nobody has taken yet, or `undefined` when all are taken. */
  claim(): number | undefined;
  /** One HTTP exchange on this run's keep-alive agent. */
  request(
    method: 'GET' | 'POST',
    path: string,
    headers: Record<string, string>,
    body?: Uint8Array,
  ): Promise<Answer>;
  /** `tasks` tasks were completed by work that started at `startedAt` (performance.now()). */
  completed(tasks: number, startedAt: number): void;
  /** The server answered a report as a duplicate: a result was posted twice. */
  duplicate(): void;
  /** A task could not be completed; the run goes on. */
  failed(message: string): void;
}

/** One simulated worker: loops until there is no work left. */
export type WorkerLoop = (context: WorkerContext) => Promise<void>;

function describe(what: string, answer: Answer): string {
  return `${what}: HTTP ${answer.status} ${answer.body.toString('utf8').slice(0, 200)}`;
}

/** Wire protocol v1: GET the details, POST the result, as `@sheepdog/worker` does. */
const sheepdogV1: WorkerLoop = async (context) => {
  const { requestId, token } = context.job;
  const auth = { authorization: `Bearer ${token}` };
  const post = { ...auth, 'content-type': 'application/octet-stream' };
  for (let index = context.claim(); index !== undefined; index = context.claim()) {
    const startedAt = performance.now();
    const path = `/v1/requests/${requestId}/tasks/${index}`;
    const details = await context.request('GET', path, auth);
    if (details.status !== 200) {
      context.failed(describe(`GET ${path}`, details));
      continue;
    }
    // Decoded as the worker does, so the client pays its share of a real task.
    const parsed = JSON.parse(details.body.toString('utf8')) as { args: string };
    Buffer.from(parsed.args, 'base64');
    const posted = await context.request('POST', `${path}/result`, post, trivialResult(index));
    if (posted.status !== 200) {
      context.failed(describe(`POST ${path}/result`, posted));
      continue;
    }
    if ((JSON.parse(posted.body.toString('utf8')) as { duplicate: boolean }).duplicate) {
      context.duplicate();
    }
    context.completed(1, startedAt);
  }
};

/**
 * Leasing with batched results, as `@sheepdog/worker`'s lease mode does: lease a chunk (the
 * first lease also fetches the function and namespace), post the chunk's results as one batch
 * of binary frames, and grow the chunk 8× per lease up to 1,000, as the worker does for tasks
 * this short. `claim()` is not used: the server hands out the work.
 */
const sheepdogLeased: WorkerLoop = async (context) => {
  const { requestId, token } = context.job;
  const auth = { authorization: `Bearer ${token}` };
  const leasePath = `/v1/requests/${requestId}/lease`;
  const resultsPath = `/v1/requests/${requestId}/results`;
  const json = { ...auth, 'content-type': 'application/json' };
  const frames = { ...auth, 'content-type': OUTCOME_FRAMES_TYPE };
  let size = 1;
  let withCode = true;
  for (;;) {
    const startedAt = performance.now();
    const ask = withCode
      ? { max: size, leaseMs: 60_000, withCode }
      : { max: size, leaseMs: 60_000 };
    withCode = false;
    const leased = await context.request('POST', leasePath, json, Buffer.from(JSON.stringify(ask)));
    if (leased.status !== 200) {
      context.failed(describe(`POST ${leasePath}`, leased));
      return;
    }
    const { tasks } = JSON.parse(leased.body.toString('utf8')) as {
      tasks: { jobIndex: number; args: string }[];
    };
    if (tasks.length === 0) return;
    const outcomes: OutcomeFrame[] = tasks.map((task) => {
      Buffer.from(task.args, 'base64');
      return { jobIndex: task.jobIndex, kind: 'result', payload: trivialResult(task.jobIndex) };
    });
    const posted = await context.request(
      'POST',
      resultsPath,
      frames,
      encodeOutcomeFrames(outcomes),
    );
    if (posted.status !== 200) {
      context.failed(describe(`POST ${resultsPath}`, posted));
      return;
    }
    const { statuses } = JSON.parse(posted.body.toString('utf8')) as { statuses: string[] };
    for (const status of statuses) {
      if (status === 'duplicate') context.duplicate();
      else if (status !== 'stored') context.failed(`a batched result was answered ${status}`);
    }
    context.completed(tasks.length, startedAt);
    size = Math.min(MAX_CHUNK, size * 8);
  }
};

/** The bare baseline: GET a row by key, POST the result for the key. */
const bare: WorkerLoop = async (context) => {
  const offset = context.job.keyOffset ?? 0;
  const post = { 'content-type': 'application/octet-stream' };
  for (let index = context.claim(); index !== undefined; index = context.claim()) {
    const startedAt = performance.now();
    const path = `/rows/${offset + index}`;
    const row = await context.request('GET', path, {});
    if (row.status !== 200) {
      context.failed(describe(`GET ${path}`, row));
      continue;
    }
    const parsed = JSON.parse(row.body.toString('utf8')) as { value: string };
    Buffer.from(parsed.value, 'base64');
    const posted = await context.request('POST', path, post, trivialResult(index));
    if (posted.status !== 200) {
      context.failed(describe(`POST ${path}`, posted));
      continue;
    }
    JSON.parse(posted.body.toString('utf8'));
    context.completed(1, startedAt);
  }
};

/** Every protocol by name. */
export const PROTOCOLS: Record<ProtocolName, WorkerLoop> = {
  'sheepdog-v1': sheepdogV1,
  'sheepdog-leased': sheepdogLeased,
  bare,
};
