import { existsSync } from 'node:fs';
import {
  getErrors,
  getResults,
  getTaskStates,
  isSheepdogError,
  type RequestSummary,
  requestSummary,
  type TaskState,
} from 'sheepdog';
import { CliError } from '../errors.js';
import { encodeJson } from './json.js';

/** What became of one task. */
export interface Outcome {
  /** 1-based position in the arguments. */
  readonly index: number;
  readonly state: TaskState;
  readonly args: unknown[];
  /** The returned value, when `state` is `done`. */
  readonly result?: unknown;
  /** The error text with its stack, when the task raised one. */
  readonly error?: string;
  /** Why the task was lost or cancelled, when known. */
  readonly reason?: string;
  /** How many times a worker fetched the task. */
  readonly attempts: number;
}

/**
 * Checks that a database file exists, or explains what to do when it is not there (reading a
 * missing file would create an empty one).
 */
export function checkDatabase(dbfile: string): void {
  if (!existsSync(dbfile)) {
    throw new CliError(
      'NO_DATABASE',
      `there is no database at ${dbfile}; pass --db (or set SHEEPDOG_DB, or dbfile in sheepdog.config.json) to the file your runs used`,
    );
  }
}

/**
 * Reads something of an existing request with `read`, or explains what to do when its database
 * or the request is not there.
 */
async function fromRequest<T>(
  requestId: number,
  dbfile: string,
  read: () => Promise<T>,
): Promise<T> {
  checkDatabase(dbfile);
  try {
    return await read();
  } catch (error) {
    if (isSheepdogError(error, 'UNKNOWN_REQUEST')) {
      throw new CliError(
        'UNKNOWN_REQUEST',
        `there is no request ${requestId} in ${dbfile}; \`sheepdog status --db ${dbfile}\` lists the requests there`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** An existing request with its task counts, or the explanation of why there is none. */
export function findRequest(requestId: number, dbfile: string): Promise<RequestSummary> {
  return fromRequest(requestId, dbfile, () => requestSummary(requestId, dbfile));
}

/**
 * Reads every task's state, arguments, result or error of a request, in argument order. With
 * `block`, first waits for this process's own serving of the request to wind down.
 */
export async function readOutcomes(
  requestId: number,
  dbfile: string,
  block = false,
): Promise<Outcome[]> {
  const states = await fromRequest(requestId, dbfile, () => getTaskStates(requestId, dbfile));
  const results = await getResults(requestId, dbfile, { block });
  const errorOf = new Map<number, string>();
  for (const [, error, jobIndex] of await getErrors(requestId, dbfile))
    errorOf.set(jobIndex, error);
  return states.map((s, i) => {
    const error = errorOf.get(s.jobIndex);
    return {
      index: s.jobIndex,
      state: s.state,
      args: results[i]?.[0] ?? [],
      attempts: s.attempts,
      ...(s.state === 'done' ? { result: results[i]?.[1] } : {}),
      ...(error === undefined ? {} : { error }),
      ...(s.reason === null ? {} : { reason: s.reason }),
    };
  });
}

/**
 * One JSON line of `run` and `results`: `{"index","status", …}` with `result` (in the documented
 * JSON encoding) for done tasks, the error's first line for failed ones and the reason for lost
 * or cancelled ones.
 */
export function outcomeLine(o: Outcome): string {
  const line: Record<string, unknown> = { index: o.index, status: o.state };
  if (o.state === 'done') line.result = encodeJson(o.result);
  else if (o.state === 'failed') line.error = o.error?.split('\n')[0] ?? 'failed';
  else if (o.reason !== undefined) line.reason = o.reason;
  return JSON.stringify(line);
}

/** Exit status for a set of outcomes: 0 when every task is done, 1 otherwise. */
export function exitStatusOf(outcomes: readonly Outcome[]): number {
  return outcomes.every((o) => o.state === 'done') ? 0 : 1;
}
