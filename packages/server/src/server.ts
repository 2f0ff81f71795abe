import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { Storage } from '@sheepdog/storage';
import { z } from 'zod';
import { createApp, type TaskEvent } from './app.js';
import { ServerError } from './server-error.js';

/** Options of {@link getServer}. */
export interface ServerOptions {
  /**
   * TCP port to listen on. Omitted (or 0): a free port, chosen by the OS; a later call without
   * a port for the same dbfile gets the same server back.
   * @default undefined
   */
  port?: number;
  /** SQLite file holding the requests (opened with `@sheepdog/storage`, created if missing). */
  dbfile: string;
  /**
   * Address to bind. The default listens on all IPv4 interfaces, since cluster nodes must
   * reach the server; use `'127.0.0.1'` for a server only this machine can reach.
   * @default '0.0.0.0'
   */
  hostname?: string;
  /**
   * Largest accepted request body, in bytes (only used when a new server starts).
   * @default 67108864 (64 MiB)
   */
  bodyLimit?: number;
}

/** Called after each newly stored result or error; see {@link SheepdogServer.onTask}. */
export type TaskListener = (event: TaskEvent) => void;

/**
 * A running server, as returned by {@link getServer}: the server this process runs on a port,
 * shared by every caller that asked for it. Each {@link getServer} call holds it once; the
 * caller lets go with {@link SheepdogServer.release}.
 */
export interface SheepdogServer {
  /** `http://<host>:<port>/` for this machine (`127.0.0.1` when bound to all interfaces). */
  readonly url: string;
  /** The port the server listens on. */
  readonly port: number;
  /** The address the server is bound to. */
  readonly hostname: string;
  /** The dbfile as given to {@link getServer}. */
  readonly dbfile: string;
  /** The open storage the server reads and writes; closed by {@link SheepdogServer.stop}. */
  readonly storage: Storage;
  /**
   * Calls `listener` synchronously after each result or error this server stores (not for
   * duplicates, nor for writes made by other processes). A listener that throws does not
   * affect the worker's response; the throw is reported with `process.emitWarning`.
   *
   * @returns a function that removes the listener (safe to call twice)
   */
  onTask(listener: TaskListener): () => void;
  /**
   * Lets go of one hold, the one a {@link getServer} call took: call it once per call. When the
   * last hold is let go, the server stops as {@link SheepdogServer.stop} does, and the promise
   * resolves once its port is free; before that it resolves at once and the server keeps serving
   * the other holders. After a stop it resolves when the stop has.
   */
  release(): Promise<void>;
  /**
   * Stops at once, whoever still holds the server: stops listening, waits for requests in
   * flight, closes the storage and forgets the server, so a later {@link getServer} for the port
   * starts a new one. Safe to call twice.
   */
  stop(): Promise<void>;
}

const optionsSchema = z.object({
  port: z.number().int().min(0).max(65_535).optional(),
  dbfile: z.string().min(1, { error: 'dbfile must be a non-empty path' }),
  hostname: z.string().min(1).optional(),
  bodyLimit: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
});

/** The event name on the internal emitter; never 'error', which EventEmitter treats specially. */
const TASK_EVENT = 'task';

interface Entry {
  requestedPort: number | undefined;
  dbfileKey: string;
  hostname: string;
  /** The bound port, once listening. */
  port: number | undefined;
  ready: Promise<RunningServer>;
  /**
   * {@link getServer} calls that returned (or will return) this server and have not released it
   * yet; counted when the call finds the entry, so a hold taken while the server is still
   * starting is not missed by a release that comes first.
   */
  holds: number;
}

/** Servers of this process, keyed by requested and, once listening, actual port. */
const registry = new Set<Entry>();

class RunningServer implements SheepdogServer {
  readonly url: string;
  readonly port: number;
  readonly hostname: string;
  readonly dbfile: string;
  readonly storage: Storage;
  readonly #http: Server;
  readonly #entry: Entry;
  readonly #events = new EventEmitter();
  #stopping: Promise<void> | undefined;

  constructor(hostname: string, dbfile: string, storage: Storage, http: Server, entry: Entry) {
    this.hostname = hostname;
    this.dbfile = dbfile;
    this.storage = storage;
    this.#http = http;
    this.#entry = entry;
    this.port = (http.address() as AddressInfo).port;
    this.url = `http://${localHost(hostname)}:${this.port}/`;
    // The core may wait on many requests at once, one listener each.
    this.#events.setMaxListeners(0);
  }

  /** Delivers one event; used as the app's `onTask`. */
  emit(event: TaskEvent): void {
    this.#events.emit(TASK_EVENT, event);
  }

  onTask(listener: TaskListener): () => void {
    const safe = (event: TaskEvent): void => {
      try {
        listener(event);
      } catch (error) {
        process.emitWarning(
          `[sheepdog] [server] an onTask listener threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
        );
      }
    };
    this.#events.on(TASK_EVENT, safe);
    return () => {
      this.#events.off(TASK_EVENT, safe);
    };
  }

  release(): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    this.#entry.holds -= 1;
    return this.#entry.holds > 0 ? Promise.resolve() : this.stop();
  }

  stop(): Promise<void> {
    this.#stopping ??= new Promise<void>((done) => {
      registry.delete(this.#entry);
      this.#http.close(() => {
        this.storage.close();
        this.#events.removeAllListeners();
        done();
      });
      // Idle keep-alive connections would otherwise hold close() open until they time out.
      this.#http.closeIdleConnections();
    });
    return this.#stopping;
  }
}

/**
 * Starts a server for workers, or returns the one this process already runs: one server per
 * port, as in the original Sheepdog. Every call holds the server once: let go of it with
 * {@link SheepdogServer.release}, and it stops when its last holder has (or with
 * {@link SheepdogServer.stop}, at once).
 *
 * - Same port again (same dbfile): the same server object.
 * - Same port, another dbfile: `PORT_IN_USE_OTHER_DB`; another explicit hostname:
 *   `PORT_IN_USE_OTHER_HOST`.
 * - No port (or 0): the running server for that dbfile, whatever its port, if there is one
 *   (and its hostname matches, when one is given); otherwise a new server on a free port.
 *
 * @throws {@link ServerError} `INVALID_OPTIONS`, `PORT_IN_USE_OTHER_DB`,
 *   `PORT_IN_USE_OTHER_HOST`, `PORT_IN_USE`, `LISTEN_FAILED`; `StorageError` if the dbfile
 *   cannot be opened
 */
export async function getServer(options: ServerOptions): Promise<SheepdogServer> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new ServerError(
      'INVALID_OPTIONS',
      `invalid getServer options:\n${z.prettifyError(parsed.error)}`,
    );
  }
  const { dbfile, bodyLimit } = parsed.data;
  const port = parsed.data.port === 0 ? undefined : parsed.data.port;
  const hostname = parsed.data.hostname;
  const dbfileKey = dbfileKeyOf(dbfile);

  for (const entry of registry) {
    if (port === undefined) {
      if (
        entry.dbfileKey === dbfileKey &&
        (hostname === undefined || hostname === entry.hostname)
      ) {
        entry.holds += 1;
        return entry.ready;
      }
      continue;
    }
    if (entry.requestedPort !== port && entry.port !== port) continue;
    if (entry.dbfileKey !== dbfileKey) {
      throw new ServerError(
        'PORT_IN_USE_OTHER_DB',
        `port ${port} already serves ${entry.dbfileKey}, not ${dbfileKey}; use another port, or omit the port to get a free one.`,
      );
    }
    if (hostname !== undefined && hostname !== entry.hostname) {
      throw new ServerError(
        'PORT_IN_USE_OTHER_HOST',
        `port ${port} is already bound to ${entry.hostname}, not ${hostname}; stop that server first or use another port.`,
      );
    }
    entry.holds += 1;
    return entry.ready;
  }

  // Registered before listening, so a concurrent call for the same port or dbfile waits for
  // this server instead of starting a second one.
  const entry: Entry = {
    requestedPort: port,
    dbfileKey,
    hostname: hostname ?? '0.0.0.0',
    port: undefined,
    ready: start(dbfile, port, hostname ?? '0.0.0.0', bodyLimit, () => entry),
    holds: 1,
  };
  registry.add(entry);
  entry.ready.catch(() => registry.delete(entry));
  return entry.ready;
}

async function start(
  dbfile: string,
  port: number | undefined,
  hostname: string,
  bodyLimit: number | undefined,
  entry: () => Entry,
): Promise<RunningServer> {
  const storage = new Storage(dbfile);
  let running: RunningServer | undefined;
  const app = createApp(storage, {
    ...(bodyLimit === undefined ? {} : { bodyLimit }),
    onTask: (event) => running?.emit(event),
  });
  const http = createAdaptorServer({ fetch: app.fetch }) as Server;
  try {
    await new Promise<void>((listening, failed) => {
      http.once('error', failed);
      http.listen(port ?? 0, hostname, () => {
        http.off('error', failed);
        listening();
      });
    });
  } catch (cause) {
    storage.close();
    const where = `${hostname}:${port ?? 0}`;
    if ((cause as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new ServerError(
        'PORT_IN_USE',
        `cannot listen on ${where}: another program uses the port; choose another port or omit it to get a free one.`,
        { cause },
      );
    }
    throw new ServerError(
      'LISTEN_FAILED',
      `cannot listen on ${where}: ${(cause as Error).message}. Check that the hostname is an address of this machine.`,
      { cause },
    );
  }
  const self = entry();
  running = new RunningServer(hostname, dbfile, storage, http, self);
  self.port = running.port;
  return running;
}

/** Paths are compared resolved, so `./db.sqlite` and its absolute path are the same file. */
function dbfileKeyOf(dbfile: string): string {
  return dbfile === ':memory:' ? dbfile : resolve(dbfile);
}

/** The host part of a URL that reaches a server bound to `hostname` from this machine. */
function localHost(hostname: string): string {
  if (hostname === '0.0.0.0') return '127.0.0.1';
  if (hostname === '::') return '[::1]';
  return hostname.includes(':') ? `[${hostname}]` : hostname;
}
