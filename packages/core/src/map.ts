import { decodeValue } from '@sheepdog/serialize';
import { parseConfig, type SheepdogConfig } from './config.js';
import type { TaskStatus } from './errors.js';
import { settle, taskStatuses } from './outcome.js';
import { isSettled } from './rules.js';
import {
  openExisting,
  servedHere,
  startSession,
  waitInBackground,
  waitOptions,
} from './session.js';

/** A function of any arguments: what `map` accepts. */
// biome-ignore lint/suspicious/noExplicitAny: a function of any arguments is what map accepts.
export type AnyFunction = (...args: any[]) => unknown;

/** A function named by the module that exports it; the worker imports it. */
export interface ModuleFunction {
  /** Absolute path, file URL, or package specifier the worker can import. */
  readonly module: string | URL;
  /** The export's name; `default` for a default export. */
  readonly export: string;
}

/**
 * One element of `args`: a tuple of positional arguments, or a lone first argument when every
 * other parameter is optional.
 */
export type ArgsOf<F> = F extends (...args: infer P) => unknown
  ? P | (P extends [infer First, ...infer Rest] ? ([] extends Rest ? First : never) : never)
  : unknown;

/** The value a task of `f` produces. */
export type ResultOf<F> = F extends (...args: never[]) => infer R ? Awaited<R> : unknown;

/** Names and values the function refers to: helper functions and constants. */
export type Namespace = Readonly<Record<string, unknown>>;

/** Arguments of `map`: any iterable, or an async iterable that is streamed into storage. */
export type ArgsSource<T> = Iterable<T> | AsyncIterable<T>;

/**
 * Runs `f` once per element of `args` on the configured backend and resolves with the results
 * in argument order, `null` where a task failed: it raised an error (see {@link getErrors}), or
 * it was lost and its `retries` ran out (see {@link getTaskStates}); a note on stderr says so.
 * With no `host`, tasks run as local processes.
 *
 * @throws SheepdogError `TIMEOUT` or `CANCELLED` (with the partial `results` and the task
 *   `states`) when `timeout` elapses or `signal` aborts; the open tasks are cancelled first.
 *
 * @example
 * const squares = await map((x: number) => x * x, [1, 2, 3]);
 */
export async function map<F extends AnyFunction>(
  f: F,
  args: ArgsSource<ArgsOf<F>>,
  config?: SheepdogConfig,
  ns?: Namespace,
): Promise<Array<ResultOf<F> | null>>;
export async function map<R = unknown>(
  f: ModuleFunction,
  args: ArgsSource<unknown>,
  config?: SheepdogConfig,
  ns?: Namespace,
): Promise<Array<R | null>>;
export async function map(
  f: AnyFunction | ModuleFunction,
  args: ArgsSource<unknown>,
  config?: SheepdogConfig,
  ns?: Namespace,
): Promise<unknown[]> {
  const startedAt = Date.now();
  const resolved = parseConfig(config);
  const session = await startSession(f, args, resolved, ns);
  try {
    const outcome = await session.wait(waitOptions(resolved, startedAt));
    return settle(session.storage, session.requestId, outcome, resolved);
  } finally {
    await session.release();
  }
}

/**
 * Submits like {@link map} but resolves with the request id as soon as the job is submitted.
 * This process keeps serving the workers (with lost-task detection and retries) until every
 * task has finished; read the results with {@link getResults} from here or from any process
 * that opens the same database file. If this process ends first, {@link resume} picks up.
 */
export async function mapAsync<F extends AnyFunction>(
  f: F,
  args: ArgsSource<ArgsOf<F>>,
  config?: SheepdogConfig,
  ns?: Namespace,
): Promise<number>;
export async function mapAsync(
  f: ModuleFunction,
  args: ArgsSource<unknown>,
  config?: SheepdogConfig,
  ns?: Namespace,
): Promise<number>;
export async function mapAsync(
  f: AnyFunction | ModuleFunction,
  args: ArgsSource<unknown>,
  config?: SheepdogConfig,
  ns?: Namespace,
): Promise<number> {
  const startedAt = Date.now();
  const resolved = parseConfig(config);
  const session = await startSession(f, args, resolved, ns);
  waitInBackground(session, { ...waitOptions(resolved, startedAt), verbose: false });
  return session.requestId;
}

/** Options of {@link getResults}. */
export interface GetResultsOptions {
  /**
   * Wait until every task has finished.
   * @default true
   */
  block?: boolean;
  /**
   * Print progress to stderr while waiting.
   * @default false
   */
  verbose?: boolean;
  /**
   * How often to look at the database when the request is served by another process, in ms.
   * @default 200
   */
  pollIntervalMs?: number;
}

/**
 * Reads the results of a request from its database file, as `[args, result]` pairs in
 * argument order; `result` is `null` where a task failed or has not reported yet.
 */
export async function getResults(
  requestId: number,
  dbfile: string,
  options: GetResultsOptions = {},
): Promise<Array<[unknown[], unknown]>> {
  const storage = openExisting(requestId, dbfile);
  try {
    if (options.block ?? true) {
      const inProcess = servedHere(requestId);
      if (inProcess) await inProcess;
      const interval = options.pollIntervalMs ?? 200;
      const { ProgressLine } = await import('./progress.js');
      const progress = options.verbose ? new ProgressLine(requestId) : undefined;
      let lostSeen = false;
      for (;;) {
        const s = storage.countByState(requestId);
        const total = Object.values(s).reduce((a, b) => a + b, 0);
        progress?.update({ total, done: s.done, failed: s.failed, lost: s.lost + s.cancelled });
        // A lost task may be about to be retried by the process serving the request: look
        // once more before taking it as final.
        if (isSettled(s, s.lost > 0 && !lostSeen)) break;
        lostSeen = s.pending + s.running === 0;
        await new Promise((r) => setTimeout(r, interval));
      }
    }
    return storage
      .getTasksWithResults(requestId)
      .map(([args, result]) => [
        decodeValue(args) as unknown[],
        result === null ? null : decodeValue(result),
      ]);
  } finally {
    storage.close();
  }
}

/**
 * Reads the errors of a request: `[args, error, jobIndex]` for each task that ended `failed`,
 * in argument order, the error text with its stack. A retried task's earlier error is gone.
 */
export async function getErrors(
  requestId: number,
  dbfile: string,
): Promise<Array<[args: unknown[], error: string, jobIndex: number]>> {
  const storage = openExisting(requestId, dbfile);
  try {
    const decoder = new TextDecoder();
    return storage
      .getErrors(requestId)
      .map(([args, error, jobIndex]) => [
        decodeValue(args) as unknown[],
        decoder.decode(error),
        jobIndex,
      ]);
  } finally {
    storage.close();
  }
}

/**
 * Every task's state (`pending`, `running`, `done`, `failed`, `lost`, `cancelled`), how many
 * times a worker fetched it, and why it was lost or cancelled, in argument order.
 */
export async function getTaskStates(requestId: number, dbfile: string): Promise<TaskStatus[]> {
  const storage = openExisting(requestId, dbfile);
  try {
    return taskStatuses(storage, requestId);
  } finally {
    storage.close();
  }
}
