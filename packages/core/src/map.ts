import { decodeValue, encodeArgs, encodeFunction, encodeNamespace } from '@sheepdog/serialize';
import { checkValue, inspectFunction } from '@sheepdog/serialize/inspect';
import {
  type CreatedRequest,
  createRequest,
  createRequestAsync,
  type SheepdogServer,
} from '@sheepdog/server';
import { Storage } from '@sheepdog/storage';
import { resolveBackend, workerHost } from './backends/index.js';
import { planJob } from './batching.js';
import { parseConfig, type ResolvedConfig, type SheepdogConfig, toStoredConfig } from './config.js';
import { SheepdogError, type TaskStatus } from './errors.js';
import { settle, taskStatuses } from './outcome.js';
import { isSettled } from './rules.js';
import { Run, type WaitOptions } from './run.js';
import { acquireServer, releaseServer } from './servers.js';

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

const running = new Map<number, Promise<void>>();

function* encodeArgList(args: Iterable<unknown>): Generator<Uint8Array> {
  let i = 0;
  for (const element of args) {
    checkValue(element, `args[${i}]`);
    yield encodeArgs(element);
    i += 1;
  }
}

async function* encodeArgStream(args: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
  let i = 0;
  for await (const element of args) {
    checkValue(element, `args[${i}]`);
    yield encodeArgs(element);
    i += 1;
  }
}

/** Arguments of `map`: any iterable, or an async iterable that is streamed into storage. */
export type ArgsSource<T> = Iterable<T> | AsyncIterable<T>;

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    value != null && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
  );
}

/** Stores the request (with what a later process needs to resume it), submits it, and returns its run. */
export async function start(
  f: AnyFunction | ModuleFunction,
  args: ArgsSource<unknown>,
  config: ResolvedConfig,
  ns: Namespace | undefined,
): Promise<Run> {
  const fn = typeof f === 'function' ? f : { module: String(f.module), export: f.export };
  if (typeof fn === 'function') inspectFunction(fn, ns ?? {});
  const funcBytes = encodeFunction(fn);
  const nsBytes = encodeNamespace(ns ?? {});
  const backend = resolveBackend(config);
  let server: SheepdogServer | undefined;
  try {
    server = await acquireServer(config);
    const host = config.localhost ?? (await workerHost(backend));
    const label = typeof fn === 'function' ? fn.name || '(anonymous)' : `${fn.module}#${fn.export}`;
    const meta = {
      backend: backend.name,
      label,
      config: toStoredConfig(config, backend.name, { port: server.port, localhost: host }),
    };
    // Serialised one at a time into storage: the whole set is never in memory at once.
    const { requestId, token }: CreatedRequest = isAsyncIterable(args)
      ? await createRequestAsync(server.storage, funcBytes, nsBytes, encodeArgStream(args), meta)
      : createRequest(server.storage, funcBytes, nsBytes, encodeArgList(args), meta);
    const run = new Run(
      requestId,
      server.storage,
      backend,
      { url: `http://${host}:${server.port}/`, token },
      server,
    );
    run.planJob = (indices) => planJob(config, backend, indices.length);
    const n = server.storage.countTasks(requestId);
    if (n > 0) {
      try {
        await run.submit(Array.from({ length: n }, (_, i) => i + 1));
      } catch (error) {
        // Nothing runs them: final now, so that no later process waits for them.
        const why = error instanceof Error ? error.message : String(error);
        server.storage.markCancelled(requestId, `the job could not be submitted: ${why}`);
        throw error;
      }
    }
    return run;
  } catch (error) {
    if (server) await releaseServer(server);
    await backend.dispose?.();
    throw error;
  }
}

/**
 * Lets go of what a run holds: lease-mode workers with nothing left to do (once every task is
 * final), its share of the server and the backend's connections.
 */
export async function release(run: Run): Promise<void> {
  await run.endLeaseJobs();
  if (run.server) await releaseServer(run.server);
  await run.backend.dispose?.();
}

/** How {@link Run.wait} waits for this config; `startedAt` anchors the `timeout`. */
export function waitOptions(config: ResolvedConfig, startedAt: number): WaitOptions {
  return {
    pollIntervalMs: config.pollIntervalMs,
    lostGraceMs: config.lostGraceMs,
    verbose: config.verbose,
    retries: config.retries,
    retryErrors: config.retryErrors,
    deadline: config.timeout === undefined ? undefined : startedAt + config.timeout,
    timeout: config.timeout,
    signal: config.signal,
  };
}

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
  const run = await start(f, args, resolved, ns);
  try {
    const outcome = await run.wait(waitOptions(resolved, startedAt));
    return settle(run.storage, run.requestId, outcome, resolved);
  } finally {
    await release(run);
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
  const run = await start(f, args, resolved, ns);
  const waiting = run
    .wait({ ...waitOptions(resolved, startedAt), verbose: false })
    .then(() => undefined)
    .catch(() => undefined)
    .finally(async () => {
      running.delete(run.requestId);
      await release(run).catch(() => undefined);
    });
  running.set(run.requestId, waiting);
  return run.requestId;
}

/** The wait of a request this process serves after `mapAsync`, if it does. */
export function servedHere(requestId: number): Promise<void> | undefined {
  return running.get(requestId);
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

/** Opens the dbfile and checks that it holds the request. */
export function openExisting(requestId: number, dbfile: string): Storage {
  const storage = new Storage(dbfile);
  try {
    storage.countTasks(requestId);
  } catch (error) {
    storage.close();
    throw new SheepdogError(
      'UNKNOWN_REQUEST',
      `there is no request ${requestId} in ${dbfile}; check the id and the dbfile`,
      { cause: error, requestId },
    );
  }
  return storage;
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
      const inProcess = running.get(requestId);
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
