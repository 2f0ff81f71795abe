import * as http from 'node:http';
import * as https from 'node:https';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  encodeOutcomeFrames,
  type LeaseAnswer,
  type LeaseBody,
  MAX_LEASE_TASKS,
  OUTCOME_FRAMES_TYPE,
  type OutcomeFrame,
  routeUrl,
} from '@sheepdog/protocol';
import { buildFunction, decodeValue, encodeValue, SerializeError } from '@sheepdog/serialize';
import { errorText, settle } from './client.js';
import { WorkerError } from './error.js';
import { type ResolvedHttpOptions, request } from './internal/http.js';
import { LeaseRenewer } from './internal/renewer.js';

/** Lease mode of `main()`: one process works through many tasks, a chunk at a time. */
export interface LeaseOptions {
  /**
   * How long the server keeps a chunk for this worker without hearing from it, in ms. The
   * worker renews the leases of the chunk it runs every third of this, so a task may run far
   * longer; a chunk whose worker died (and stopped renewing) goes to another worker after at
   * most this long, the attempt counted.
   * @default 300000 (5 minutes)
   */
  leaseMs?: number;
  /**
   * How much work one lease should hold, in ms: the chunk size is adapted to the observed task
   * duration so that a chunk takes about this long.
   * @default 2000
   */
  targetMs?: number;
  /** Largest chunk. @default 1000 */
  maxChunk?: number;
  /**
   * When nothing is left to lease but other workers' leases are still out, wait for the first
   * to run out (it may belong to a dead worker) if that is at most this many ms away; else stop.
   * @default 60000
   */
  lingerMs?: number;
}

/** What a lease-mode worker did. */
export interface LeaseSummary {
  /** Tasks run (results and errors). */
  readonly tasks: number;
  /** Tasks whose outcome was an error. */
  readonly errors: number;
  /** Leases taken, the last (empty) one included. */
  readonly leases: number;
}

/** What {@link runLeases} needs: where to lease from and how to talk to the server. */
export interface LeaseRun {
  readonly base: URL;
  readonly token: string;
  readonly requestId: number;
  readonly http: ResolvedHttpOptions;
  readonly lease: LeaseOptions;
  readonly log: (line: string) => void;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new WorkerError('BAD_OPTIONS', `lease.${name} must be a positive integer, got ${value}.`);
  }
  return value;
}

function parseLease(body: Buffer): LeaseAnswer {
  let parsed: LeaseAnswer;
  try {
    parsed = JSON.parse(body.toString('utf8')) as LeaseAnswer;
  } catch (error) {
    throw new WorkerError(
      'BAD_RESPONSE',
      'the lease answer is not JSON. Is the URL a Sheepdog server?',
      {
        cause: error,
      },
    );
  }
  if (!Array.isArray(parsed.tasks)) {
    throw new WorkerError(
      'BAD_RESPONSE',
      'the lease answer has no "tasks" list. Does the server speak protocol v1 with leasing?',
    );
  }
  return parsed;
}

/**
 * Works through a request's tasks in lease mode: builds the function and namespace once, then
 * leases a chunk, runs each task (a throw becomes that task's error, with its stack), and posts
 * the chunk's outcomes as one batch while leasing the next chunk. The chunk starts at 1 task and
 * is sized from the observed task duration so that a chunk takes about `targetMs`. While a chunk
 * runs, a thread renews its leases. Returns when the server has nothing left to lease.
 *
 * @throws {WorkerError} when the server cannot be reached or refuses; never for a task's failure.
 */
export async function runLeases(run: LeaseRun): Promise<LeaseSummary> {
  const leaseMs = positive('leaseMs', run.lease.leaseMs, 300_000);
  const targetMs = positive('targetMs', run.lease.targetMs, 2000);
  const maxChunk = Math.min(MAX_LEASE_TASKS, positive('maxChunk', run.lease.maxChunk, 1000));
  const lingerMs = run.lease.lingerMs ?? 60_000;
  const Agent = run.base.protocol === 'https:' ? https.Agent : http.Agent;
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  const { requestId } = run;
  const leaseUrl = routeUrl(run.base, 'lease', { requestId });
  const resultsUrl = routeUrl(run.base, 'results', { requestId });
  const renewer = new LeaseRenewer({
    url: routeUrl(run.base, 'renew', { requestId }),
    token: run.token,
    leaseMs,
    timeoutMs: run.http.httpTimeoutMs,
  });
  const lease = async (max: number, withCode: boolean): Promise<LeaseAnswer> => {
    const ask: LeaseBody = withCode ? { max, leaseMs, withCode } : { max, leaseMs };
    const body = Buffer.from(JSON.stringify(ask));
    const answer = await request(leaseUrl, 'POST', run.token, body, run.http, run.log, {
      contentType: 'application/json',
      agent,
    });
    return parseLease(answer);
  };
  const post = async (outcomes: readonly OutcomeFrame[]): Promise<void> => {
    if (outcomes.length === 0) return;
    await request(resultsUrl, 'POST', run.token, encodeOutcomeFrames(outcomes), run.http, run.log, {
      contentType: OUTCOME_FRAMES_TYPE,
      agent,
    });
  };

  let tasks = 0;
  let errors = 0;
  let leases = 1;
  try {
    const first = await lease(1, true);
    if (typeof first.func !== 'string' || typeof first.ns !== 'string') {
      throw new WorkerError(
        'BAD_RESPONSE',
        'the first lease answer has no base64 "func" and "ns".',
      );
    }
    // Built once for the whole process: this is what makes a task cost microseconds, not a
    // Node start-up. A build failure becomes every task's error, as it would one at a time.
    let f: ((...args: unknown[]) => unknown) | undefined;
    let buildError: unknown;
    try {
      f = (await buildFunction(Buffer.from(first.func, 'base64'), Buffer.from(first.ns, 'base64'), {
        require: createRequire(join(process.cwd(), 'sheepdog-task.js')),
      })) as (...args: unknown[]) => unknown;
    } catch (error) {
      buildError = error;
    }
    let chunk = first.tasks;
    let size = 1;
    let posting: Promise<void> = Promise.resolve();
    while (chunk.length > 0) {
      // Until the next chunk arrives, which is after this one's outcomes have been posted.
      renewer.hold(chunk.map((task) => task.jobIndex));
      const started = performance.now();
      const outcomes: OutcomeFrame[] = [];
      for (const task of chunk) {
        let outcome: OutcomeFrame;
        try {
          if (f === undefined) throw buildError;
          const args = decodeValue(Buffer.from(task.args, 'base64'));
          if (!Array.isArray(args)) {
            throw new SerializeError(
              'BAD_PAYLOAD',
              'the arguments payload is not an array of positional arguments.',
            );
          }
          const value = await settle(f(...args));
          outcome = { jobIndex: task.jobIndex, kind: 'result', payload: encodeValue(value) };
        } catch (error) {
          errors += 1;
          outcome = {
            jobIndex: task.jobIndex,
            kind: 'error',
            payload: Buffer.from(errorText(error)),
          };
        }
        outcomes.push(outcome);
      }
      tasks += chunk.length;
      const perTask = Math.max(0.001, (performance.now() - started) / chunk.length);
      // Grow at most 8x per lease, so one fast task does not buy a chunk of slow ones.
      size = Math.max(1, Math.min(maxChunk, size * 8, Math.floor(targetMs / perTask)));
      // The previous batch must have landed before this one goes: a failure then stops the loop.
      await posting;
      posting = post(outcomes);
      leases += 1;
      let [next] = await Promise.all([lease(size, false), posting]);
      while (
        next.tasks.length === 0 &&
        typeof next.retryAfterMs === 'number' &&
        next.retryAfterMs <= lingerMs
      ) {
        await new Promise((resolve) => setTimeout(resolve, next.retryAfterMs));
        leases += 1;
        next = await lease(size, false);
      }
      chunk = next.tasks;
    }
    await posting;
  } finally {
    agent.destroy();
    await renewer.stop();
  }
  return { tasks, errors, leases };
}
