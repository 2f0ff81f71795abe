// A request's life in this process, in one place: starting one (map, mapAsync, mapIter),
// attaching to one that exists (resume, serve, retry), holding one without serving it (cancel,
// retry), and letting go. Two registries span the process, one owner each:
// - servers, by port: @sheepdog/server's getServer. Every session that serves holds its server
//   once and releases that hold with the session, so a shared server stops with its last user;
// - requests whose wait goes on after the call that started them returned (mapAsync): here,
//   so that resume and getResults in the same process wait for that wait instead.
import { encodeArgs, encodeFunction, encodeNamespace } from '@sheepdog/serialize';
import { checkValue, inspectFunction } from '@sheepdog/serialize/inspect';
import {
  type CreatedRequest,
  createRequest,
  createRequestAsync,
  getServer,
  isServerError,
  type SheepdogServer,
} from '@sheepdog/server';
import { Storage } from '@sheepdog/storage';
import type { Backend } from './backend.js';
import { resolveBackend, workerHost } from './backends/index.js';
import { planJob } from './batching.js';
import { type ResolvedConfig, toStoredConfig } from './config.js';
import { describeError, SheepdogError } from './errors.js';
import type { AnyFunction, ArgsSource, ModuleFunction, Namespace } from './map.js';
import { maxAttempts } from './rules.js';
import { Submitter, type WorkerEndpoint } from './submitter.js';
import { Supervisor } from './supervisor.js';
import type { WaitOptions, WaitOutcome } from './wait.js';

/**
 * One request held by this process: its storage, its backend, its submitter and supervisor,
 * and, when this process serves the request's workers, its hold on the server. Made by
 * {@link startSession}, {@link attachSession} or {@link holdSession}; let go with
 * {@link Session.release}.
 */
export class Session {
  private readonly submitter: Submitter;
  private readonly supervisor: Supervisor;
  private released: Promise<void> | undefined;

  constructor(
    readonly requestId: number,
    readonly storage: Storage,
    readonly backend: Backend,
    endpoint: WorkerEndpoint,
    readonly config: ResolvedConfig,
    /** The server this process runs for the request's workers; without one it only watches. */
    readonly server: SheepdogServer | undefined,
  ) {
    // Retries of a large request go out in lease mode too, as its first submission did.
    this.submitter = new Submitter(requestId, storage, backend, endpoint, (indices) =>
      planJob(config, backend, indices.length),
    );
    this.supervisor = new Supervisor(this.submitter, server);
  }

  /** Submits one job over `indices` (see {@link Submitter.submit}). */
  async submit(indices: readonly number[]): Promise<void> {
    await this.submitter.submit(indices);
  }

  /** Resubmits the lost and failed tasks among `indices`, returning those resubmitted. */
  resubmit(indices: readonly number[]): Promise<number[]> {
    return this.submitter.resubmit(indices);
  }

  /** Waits until every task has a final state (see {@link Supervisor.wait}). */
  wait(options: WaitOptions): Promise<WaitOutcome> {
    return this.supervisor.wait(options);
  }

  /** Cancels every job of the request and marks its open tasks cancelled. */
  cancel(reason: string): Promise<void> {
    return this.supervisor.cancel(reason);
  }

  /**
   * Lets go of what the session holds: lease-mode workers with nothing left to do (once every
   * task is final), its hold on the server and the backend's connections. The storage is not
   * closed here: a server's closes with the server, a caller's stays the caller's. Safe to call
   * twice.
   */
  release(): Promise<void> {
    this.released ??= (async () => {
      await this.supervisor.endLeaseJobs();
      if (this.server) await this.server.release();
      await this.backend.dispose?.();
    })();
    return this.released;
  }
}

/**
 * Gets (starting if needed) the server for this config, holding it once.
 *
 * @param port - the port the request's workers were given (a resume); else `config.port`
 * @throws SheepdogError `PORT_IN_USE` when `port` is given and another process listens on it
 */
async function acquireServer(config: ResolvedConfig, port?: number): Promise<SheepdogServer> {
  const wanted = port ?? (config.port === 0 ? undefined : config.port);
  try {
    return await getServer({
      dbfile: config.dbfile,
      hostname: config.bindHost,
      ...(wanted === undefined ? {} : { port: wanted }),
    });
  } catch (error) {
    if (port !== undefined && isServerError(error, 'PORT_IN_USE')) {
      throw new SheepdogError(
        'PORT_IN_USE',
        `port ${port}, where the request's workers report, is in use: most likely the process that started the request still serves it ` +
          `(wait for it, or read the results with getResults), or another program took the port (stop it, then try again)`,
        { cause: error },
      );
    }
    throw error;
  }
}

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

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    value != null && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
  );
}

/**
 * Stores a new request (with what a later process needs to resume it), serves it and submits
 * its tasks as one job.
 */
export async function startSession(
  f: AnyFunction | ModuleFunction,
  args: ArgsSource<unknown>,
  config: ResolvedConfig,
  ns: Namespace | undefined,
): Promise<Session> {
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
      // Typed fields, so the server and later processes need not read the config JSON.
      maxAttempts: maxAttempts(config.retries),
      port: server.port,
    };
    // Serialised one at a time into storage: the whole set is never in memory at once.
    const { requestId, token }: CreatedRequest = isAsyncIterable(args)
      ? await createRequestAsync(server.storage, funcBytes, nsBytes, encodeArgStream(args), meta)
      : createRequest(server.storage, funcBytes, nsBytes, encodeArgList(args), meta);
    const session = new Session(
      requestId,
      server.storage,
      backend,
      { url: `http://${host}:${server.port}/`, token },
      config,
      server,
    );
    const n = server.storage.countTasks(requestId);
    if (n > 0) {
      try {
        await session.submit(Array.from({ length: n }, (_, i) => i + 1));
      } catch (error) {
        // Nothing runs them: final now, so that no later process waits for them.
        server.storage.markCancelled(
          requestId,
          `the job could not be submitted: ${describeError(error)}`,
        );
        throw error;
      }
    }
    return session;
  } catch (error) {
    if (server) await server.release();
    await backend.dispose?.();
    throw error;
  }
}

/** Where a stored request's workers report: the port they were given, and the URL to give more. */
export interface StoredEndpoint {
  readonly port: number;
  readonly url: string;
}

/**
 * Serves a stored request in this process, on the port its workers were given, re-attached to
 * its jobs.
 *
 * @param config - the request's stored config merged with the caller's
 * @throws SheepdogError `PORT_IN_USE` when another process listens on that port
 */
export async function attachSession(
  requestId: number,
  config: ResolvedConfig,
  endpoint: StoredEndpoint,
): Promise<Session> {
  const backend = resolveBackend(config);
  try {
    const server = await acquireServer(config, endpoint.port);
    return new Session(requestId, server.storage, backend, { url: endpoint.url }, config, server);
  } catch (error) {
    await backend.dispose?.();
    throw error;
  }
}

/**
 * Holds a stored request without serving it, on the caller's `storage`: to cancel it, to
 * resubmit tasks that someone else serves, or to watch the database while another process
 * serves it.
 */
export function holdSession(
  requestId: number,
  storage: Storage,
  config: ResolvedConfig,
  url: string,
): Session {
  return new Session(requestId, storage, resolveBackend(config), { url }, config, undefined);
}

/** How a session waits for this config; `startedAt` anchors the `timeout`. */
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

/** Waits that go on after the call that started them returned, by request id. */
const background = new Map<number, Promise<void>>();

/**
 * Waits for the session in the background and releases it when the wait ends, whatever its
 * outcome: what `mapAsync` leaves running.
 */
export function waitInBackground(session: Session, options: WaitOptions): void {
  const { requestId } = session;
  const waiting = session
    .wait(options)
    .then(() => undefined)
    .catch(() => undefined)
    .finally(async () => {
      background.delete(requestId);
      await session.release().catch(() => undefined);
    });
  background.set(requestId, waiting);
}

/** The background wait of a request this process serves after `mapAsync`, if it does. */
export function servedHere(requestId: number): Promise<void> | undefined {
  return background.get(requestId);
}

/**
 * Opens the dbfile and checks that it holds the request.
 *
 * @throws SheepdogError `UNKNOWN_REQUEST`
 */
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
