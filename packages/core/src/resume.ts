import { connect } from 'node:net';
import type { Storage } from '@sheepdog/storage';
import type { ResolvedConfig, SheepdogConfig, StoredConfig } from './config.js';
import { builtinBackends, fromStoredConfig, parseConfig, parseStoredConfig } from './config.js';
import { describeError, isSheepdogError, SheepdogError } from './errors.js';
import { noteUnfinished, settle } from './outcome.js';
import { unfinishedRequests } from './queries.js';
import {
  attachSession,
  holdSession,
  openExisting,
  type Session,
  servedHere,
  waitOptions,
} from './session.js';
import type { WaitOutcome } from './wait.js';

/** A stored request, ready to be served again: its config merged with the caller's. */
interface Stored {
  readonly stored: StoredConfig;
  readonly config: ResolvedConfig;
}

/** Reads what the request was stored with and merges the caller's config over it. */
function loadStored(
  storage: Storage,
  requestId: number,
  dbfile: string,
  caller: SheepdogConfig | undefined,
): Stored {
  const stored = parseStoredConfig(storage.getRequest(requestId).config);
  if (stored === undefined) {
    throw new SheepdogError(
      'NOT_RESUMABLE',
      `request ${requestId} in ${dbfile} was stored without the port and host its workers report to, so no later process can serve it; ` +
        `read what arrived with getResults(${requestId}, ${JSON.stringify(dbfile)}, { block: false })`,
      { requestId },
    );
  }
  const custom = !(builtinBackends as readonly string[]).includes(stored.backend);
  if (custom && (caller?.backend === undefined || typeof caller.backend === 'string')) {
    throw new SheepdogError(
      'NOT_RESUMABLE',
      `request ${requestId} runs on the custom backend "${stored.backend}"; pass that backend object again as config.backend`,
      { requestId },
    );
  }
  return { stored, config: parseConfig({ ...fromStoredConfig(stored, caller), dbfile }) };
}

/** Where the workers of the request's new submissions report: the stored port, always. */
function endpointUrl(stored: StoredConfig, caller: SheepdogConfig | undefined): string {
  return `http://${caller?.localhost ?? stored.localhost}:${stored.port}/`;
}

/** Starts serving a stored request in this process, on the port its workers were given. */
async function attach(
  requestId: number,
  dbfile: string,
  caller: SheepdogConfig | undefined,
): Promise<Session> {
  const peek = openExisting(requestId, dbfile);
  let loaded: Stored;
  try {
    loaded = loadStored(peek, requestId, dbfile, caller);
  } finally {
    peek.close();
  }
  const { stored, config } = loaded;
  return attachSession(requestId, config, {
    port: stored.port,
    url: endpointUrl(stored, caller),
  });
}

/**
 * Picks up a request in this process, for instance after the process that called `map` or
 * `mapAsync` ended: starts a server on the port its workers were given (any server on the
 * dbfile accepts them, as the database holds their token's hash), re-attaches to its scheduler
 * jobs, and waits with lost-task detection and retries as `map` does, resolving with the results
 * in argument order, `null` where a task failed or was lost.
 *
 * The backend is made again from the config stored with the request (backend name, host, SSH
 * user, port and key file, remote folder, scheduler options, ...); `config` overrides it, e.g.
 * with a key file that lives elsewhere on this machine, `retries`, `timeout` or `signal`.
 *
 * @throws SheepdogError `UNKNOWN_REQUEST`, `NOT_RESUMABLE`, `PORT_IN_USE` (the process that
 *   started the request still serves it), and `TIMEOUT` or `CANCELLED` as `map` does
 */
export async function resume(
  requestId: number,
  dbfile: string,
  config?: SheepdogConfig,
): Promise<unknown[]> {
  const startedAt = Date.now();
  const here = servedHere(requestId);
  if (here !== undefined) {
    // This process already serves it (mapAsync): wait for that, and read what it stored.
    await here;
    const storage = openExisting(requestId, dbfile);
    try {
      return settle(
        storage,
        requestId,
        { kind: 'finished' },
        { dbfile, verbose: false, notes: config?.notes ?? true },
      );
    } finally {
      storage.close();
    }
  }
  const session = await attach(requestId, dbfile, config);
  try {
    const outcome = await session.wait(waitOptions(session.config, startedAt));
    return settle(session.storage, requestId, outcome, session.config);
  } finally {
    await session.release();
  }
}

/**
 * Cancels a request from any process: asks the backend to stop every job the request has
 * submitted (`qdel`, or killing local task processes) and marks its open tasks cancelled, so
 * that their later results are refused.
 *
 * @returns how many tasks were cancelled
 * @throws SheepdogError `UNKNOWN_REQUEST`, `NOT_RESUMABLE`
 */
export async function cancel(
  requestId: number,
  dbfile: string,
  config?: SheepdogConfig,
): Promise<number> {
  const storage = openExisting(requestId, dbfile);
  let session: Session | undefined;
  try {
    const { stored, config: resolved } = loadStored(storage, requestId, dbfile, config);
    session = holdSession(requestId, storage, resolved, endpointUrl(stored, config));
    const before = storage.countByState(requestId);
    await session.cancel('cancelled by the user');
    const after = storage.countByState(requestId);
    return after.cancelled - before.cancelled;
  } finally {
    await session?.release();
    storage.close();
  }
}

/** Options of {@link retry}. */
export interface RetryOptions {
  /**
   * Wait until every task of the request has finished, serving the workers here unless
   * another process already does.
   * @default false
   */
  wait?: boolean;
}

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Submits a request's lost and failed tasks again now, as one new job, whatever `retries`
 * says. Someone must serve the workers: the process that started the request, a `serve`, a
 * `resume`, or this call with `{ wait: true }`.
 *
 * @returns the job indices resubmitted (empty when no task was lost or failed)
 * @throws SheepdogError `UNKNOWN_REQUEST`, `NOT_RESUMABLE`, `SUBMIT_FAILED`
 */
export async function retry(
  requestId: number,
  dbfile: string,
  config?: SheepdogConfig,
  options: RetryOptions = {},
): Promise<number[]> {
  const startedAt = Date.now();
  const storage = openExisting(requestId, dbfile);
  let here: Session | undefined;
  try {
    const { stored, config: resolved } = loadStored(storage, requestId, dbfile, config);
    here = holdSession(requestId, storage, resolved, endpointUrl(stored, config));
    const indices = await here.resubmit(storage.indicesInState(requestId, ['lost', 'failed']));
    if (!options.wait) {
      if (resolved.notes && indices.length > 0 && !(await isListening(stored.port))) {
        process.stderr.write(
          `[sheepdog] request ${requestId}: resubmitted ${indices.length} task(s), but nothing serves port ${stored.port} here; ` +
            `call resume(${requestId}, ${JSON.stringify(dbfile)}) or run a serve within a minute, or their results are lost\n`,
        );
      }
      return indices;
    }
    let serving: Session | undefined;
    try {
      serving = await attach(requestId, dbfile, config);
    } catch (error) {
      if (!isSheepdogError(error, 'PORT_IN_USE')) throw error;
      // Another process serves the request; watch the database until it has finished.
    }
    try {
      await (serving ?? here).wait(waitOptions(resolved, startedAt));
    } finally {
      await serving?.release();
    }
    return indices;
  } finally {
    await here?.release();
    storage.close();
  }
}

/** Options of {@link serve}. */
export interface ServeOptions {
  /** The database file whose unfinished requests to serve. */
  dbfile: string;
  /**
   * Serve only the requests whose workers report to this port.
   * @default every unfinished request, each on its own stored port
   */
  port?: number;
  /** Merged over each request's stored config, as in {@link resume} (key files, retries, ...). */
  config?: SheepdogConfig;
  /** Stop serving when this aborts; the tasks keep running, and a later serve picks them up. */
  signal?: AbortSignal;
}

/** How serving one request ended, as listed by {@link serve}. */
export interface ServeReport {
  /** The request. */
  readonly requestId: number;
  /**
   * `finished`: every task reached a final state; `timeout`/`cancelled`: its open tasks were
   * cancelled; `stopped`: `signal` aborted first; `skipped`: it could not be served here (the
   * message says why); `failed`: serving it failed.
   */
  readonly outcome: 'finished' | 'timeout' | 'cancelled' | 'stopped' | 'skipped' | 'failed';
  /** Why, for `skipped` and `failed`. */
  readonly message?: string;
  /** The {@link SheepdogError} code behind `skipped` or `failed`, when there is one. */
  readonly code?: string;
}

function failedReport(
  requestId: number,
  outcome: 'skipped' | 'failed',
  error: unknown,
): ServeReport {
  const code = (error as { code?: unknown }).code;
  return {
    requestId,
    outcome,
    message: describeError(error),
    ...(typeof code === 'string' ? { code } : {}),
  };
}

function outcomeName(outcome: WaitOutcome): ServeReport['outcome'] {
  if (outcome.kind === 'detached') return 'stopped';
  return outcome.kind;
}

/**
 * Serves every unfinished request of a database file, each on the port its workers were
 * given, with lost-task detection and retries, until they have all finished: what keeps results
 * coming in when the processes that started the requests are gone (`sheepdog serve`).
 *
 * @returns one report per request it tried to serve, by request id
 */
export async function serve(options: ServeOptions): Promise<ServeReport[]> {
  const startedAt = Date.now();
  const requests = (await unfinishedRequests(options.dbfile, options.port)).map((r) => r.id);
  const one = async (requestId: number): Promise<ServeReport> => {
    let session: Session;
    try {
      session = await attach(requestId, options.dbfile, options.config);
    } catch (error) {
      return failedReport(requestId, 'skipped', error);
    }
    const { config } = session;
    try {
      const outcome = await session.wait({
        ...waitOptions(config, startedAt),
        detach: options.signal,
      });
      if (outcome.kind === 'finished' && config.notes)
        noteUnfinished(session.storage, requestId, options.dbfile, config.verbose);
      return { requestId, outcome: outcomeName(outcome) };
    } catch (error) {
      return failedReport(requestId, 'failed', error);
    } finally {
      await session.release().catch(() => undefined);
    }
  };
  return Promise.all(requests.map(one));
}
