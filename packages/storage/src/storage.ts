import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { asc, eq, sql } from 'drizzle-orm';
import { type BetterSQLite3Database, drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import * as schema from './schema.js';
import { TASK_STATES, type TaskState } from './schema.js';
import { StorageError } from './storage-error.js';

/**
 * Where the generated migrations live. Resolved from this module so it works both from `src/`
 * (tests) and from `dist/` (the published package): both sit one level below `drizzle/`.
 */
const MIGRATIONS_FOLDER = fileURLToPath(new URL('../drizzle', import.meta.url));

/** How long a writer waits for another process's write lock before giving up, in ms. */
const BUSY_TIMEOUT_MS = 30_000;

/** Another process may be migrating the same new file at the same moment; retry that race. */
const MIGRATION_ATTEMPTS = 5;

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Optional facts stored with a request by {@link Storage.newRequest}. */
export interface NewRequestMeta {
  /** SHA-256 of the request's worker token, as 64 lowercase hex digits. Never the token itself. */
  tokenHash?: string | null;
  /** Name of the backend the request runs on (`local`, `gridengine`, `slurm`, ...). */
  backend?: string | null;
  /** Free text shown by status listings. */
  label?: string | null;
  /** Any JSON-serialisable value (stored as JSON text), e.g. the resolved run configuration. */
  config?: unknown;
}

/** One request as listed by {@link Storage.listRequests} and {@link Storage.getRequest}. */
export interface RequestSummary {
  /** The request id. */
  id: number;
  /** Creation time, in ms since the epoch. */
  createdAt: number;
  /** Number of tasks (job indexes run 1..nTasks). */
  nTasks: number;
  /** Backend name given at creation, or `null`. */
  backend: string | null;
  /** Label given at creation, or `null`. */
  label: string | null;
  /** Request status; `'active'` unless later work changes it. */
  status: string;
  /** The `config` given at creation, parsed back from JSON, or `null`. */
  config: unknown;
  /** How many of the request's tasks are in each state. */
  states: Record<TaskState, number>;
}

/** Arguments and result of one task, as returned by {@link Storage.getResults}. */
export type ArgsAndResult = [args: Uint8Array, result: Uint8Array];
/**
 * Arguments, error text (UTF-8 bytes) and job index of one task, as returned by
 * {@link Storage.getErrors}. The index comes last, so `[args, error]` destructuring still works.
 */
export type ArgsAndError = [args: Uint8Array, error: Uint8Array, jobIndex: number];
/** One task's state, as returned by {@link Storage.getTaskStates}. */
export interface TaskStateRow {
  readonly jobIndex: number;
  readonly state: TaskState;
  /** How many times the task's details were fetched. */
  readonly attempts: number;
  /** Why the task was lost or cancelled, when known. */
  readonly reason: string | null;
}

/** A scheduler submission, as kept by {@link Storage.addJob}. */
export interface JobRecord {
  /** The backend's name. */
  readonly backend: string;
  /** The scheduler's job id. */
  readonly jobId: string;
  /** When it was submitted, in ms since the epoch. */
  readonly submittedAt: number;
  /** The job indexes it runs. */
  readonly indices: readonly number[];
  /** Whatever else the backend keeps; JSON. */
  readonly meta?: Readonly<Record<string, unknown>>;
}

/** A task handed out by {@link Storage.leaseTasks}: its job index and serialised arguments. */
export interface LeasedTask {
  readonly jobIndex: number;
  readonly args: Uint8Array;
}

/** Options of {@link Storage.leaseTasks}. */
export interface LeaseOptions {
  /** Most tasks to hand out (1..10,000). */
  readonly max: number;
  /** How long the lease lasts, in ms; a task without a result by then goes back to the pool. */
  readonly leaseMs: number;
  /**
   * A task whose lease ran out after this many attempts is marked `lost` instead of being
   * leased again.
   * @default unlimited
   */
  readonly maxAttempts?: number;
}

/** One result or error of a batch stored by {@link Storage.storeOutcomes}. */
export interface Outcome {
  readonly jobIndex: number;
  readonly kind: 'result' | 'error';
  /** The result payload, or the error's stack as UTF-8 bytes. */
  readonly payload: Uint8Array;
}

/**
 * What became of one {@link Outcome}: `stored` (the task's first outcome), `duplicate` (it had
 * one already; nothing changed), `cancelled` (the task was cancelled; refused), `unknown` (no
 * such task).
 */
export type OutcomeStatus = 'stored' | 'duplicate' | 'cancelled' | 'unknown';

/** What a worker needs to run one task, as returned by {@link Storage.getDetails}. */
export type TaskDetails = [func: Uint8Array, ns: Uint8Array, args: Uint8Array];

type Id = { id: number };
type TaskKey = { requestId: number; jobIndex: number };
type StoreParams = TaskKey & { payload: Buffer; now: number };
type Count = { known: 0 | 1; n: number };

/**
 * Persistence for Sheepdog requests, tasks, results and errors in one SQLite file.
 *
 * Payloads go in as `Uint8Array` (a `Buffer` is fine) and come out as plain `Uint8Array` views
 * with exactly the stored bytes. All methods are synchronous (better-sqlite3). Several processes
 * may open the same file at once: the file runs in WAL mode with a 30 s busy timeout, and every
 * write is a short `BEGIN IMMEDIATE` transaction, so concurrent writers queue instead of failing.
 *
 * @example
 * ```ts
 * const storage = new Storage('sheepdog.sqlite');
 * const id = storage.newRequest(func, ns, [args1, args2]);
 * storage.storeResult(id, 1, result1);
 * storage.getResults(id); // [[args1, result1]]
 * storage.close();
 * ```
 */
export class Storage {
  /** The path given to the constructor. */
  readonly dbfile: string;
  readonly #db: Database.Database;
  readonly #orm: BetterSQLite3Database<typeof schema>;
  #closed = false;

  // Hot paths use better-sqlite3 statements directly: Drizzle's builder costs several µs per
  // call, which matters for 10^6 task inserts. Table and column names follow ./schema.ts.
  readonly #q: Statements;
  readonly #newRequestTxn: Database.Transaction<
    (func: Buffer, ns: Buffer, argsList: Iterable<Uint8Array>, meta: MetaRow) => number
  >;
  readonly #storeResultTxn: Database.Transaction<(params: StoreParams) => boolean>;
  readonly #storeErrorTxn: Database.Transaction<(params: StoreParams) => boolean>;
  readonly #reopenTxn: Database.Transaction<(id: number, indices: number[]) => number[]>;
  readonly #appendTxn: Database.Transaction<
    (id: number, first: number, rows: readonly Buffer[]) => void
  >;
  readonly #leaseTxn: Database.Transaction<(id: number, options: LeaseOptions) => LeasedTask[]>;
  readonly #outcomesTxn: Database.Transaction<
    (id: number, items: readonly Outcome[]) => OutcomeStatus[]
  >;

  /**
   * Opens (creating if needed) the SQLite file and applies any pending migrations.
   *
   * @param dbfile - path of the SQLite file; `':memory:'` gives a private in-memory database
   * @throws {@link StorageError} `OPEN_FAILED` or `MIGRATION_FAILED`
   */
  constructor(dbfile: string) {
    if (typeof dbfile !== 'string' || dbfile === '') {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `dbfile must be a non-empty path string, got ${describe(dbfile)}.`,
      );
    }
    this.dbfile = dbfile;
    let db: Database.Database | undefined;
    try {
      // The busy timeout goes in first: switching a new file to WAL itself needs a lock.
      db = new Database(dbfile, { timeout: BUSY_TIMEOUT_MS });
      enableWal(db);
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
    } catch (cause) {
      db?.close();
      throw new StorageError(
        'OPEN_FAILED',
        `cannot open database file ${dbfile}: ${errorMessage(cause)}. Check that the folder exists, that it is writable, and that the file is a SQLite database.`,
        { cause },
      );
    }
    this.#db = db;
    this.#orm = drizzle(db, { schema });
    try {
      this.#migrate();
    } catch (cause) {
      this.#db.close();
      throw cause;
    }

    this.#q = prepareStatements(db);

    this.#newRequestTxn = db.transaction(
      (func: Buffer, ns: Buffer, argsList: Iterable<Uint8Array>, meta: MetaRow): number => {
        const now = Date.now();
        const id = Number(
          this.#q.insertRequest.run(
            now,
            func,
            ns,
            meta.tokenHash,
            meta.backend,
            meta.label,
            meta.config,
          ).lastInsertRowid,
        );
        this.#q.setTaskCount.run(this.#insertTasks(id, 1, argsList, now), id);
        return id;
      },
    );
    this.#storeResultTxn = db.transaction((params: StoreParams): boolean => {
      if (this.#q.insertResult.run(params).changes === 1) {
        this.#q.markDone.run(params);
        // Another attempt may have failed first; the task ends with one outcome, the result.
        this.#q.deleteError.run({ requestId: params.requestId, jobIndex: params.jobIndex });
        return true;
      }
      this.#requireOpenTask(params.requestId, params.jobIndex);
      return false;
    });
    this.#storeErrorTxn = db.transaction((params: StoreParams): boolean => {
      if (this.#q.insertError.run(params).changes === 1) {
        this.#q.markFailed.run(params);
        return true;
      }
      this.#requireOpenTask(params.requestId, params.jobIndex);
      return false;
    });
    this.#reopenTxn = db.transaction((id: number, indices: number[]): number[] => {
      const reopened: number[] = [];
      const now = Date.now();
      for (const jobIndex of indices) {
        const state = this.#q.taskState.get({ requestId: id, jobIndex });
        if (state === undefined) this.#throwMissing(id, jobIndex);
        if (state !== 'lost' && state !== 'failed') continue;
        if (state === 'failed') this.#q.deleteError.run({ requestId: id, jobIndex });
        this.#q.reopenTask.run({ requestId: id, jobIndex, now });
        reopened.push(jobIndex);
      }
      return reopened;
    });
    this.#appendTxn = db.transaction((id: number, first: number, rows: readonly Buffer[]) => {
      this.#q.setTaskCount.run(this.#insertTasks(id, first, rows, Date.now()), id);
    });
    this.#leaseTxn = db.transaction((id: number, options: LeaseOptions): LeasedTask[] => {
      const now = Date.now();
      const { max, leaseMs, maxAttempts } = options;
      const pending = this.#q.leasePending.all({ id, max });
      const expired = this.#q.leaseExpired.all({ id, now, max });
      if (pending.length === 0 && expired.length === 0 && !this.#exists(id)) {
        throw unknownRequest(id, this.dbfile);
      }
      // Both lists come sorted by job index: merge them, so the lowest indexes go out first.
      const leased: LeasedTask[] = [];
      const until = now + leaseMs;
      let p = 0;
      let e = 0;
      while (leased.length < max && (p < pending.length || e < expired.length)) {
        const a = pending[p];
        const b = expired[e];
        let row: [number, Buffer, number];
        if (b === undefined || (a !== undefined && a[0] < b[0])) {
          row = a as [number, Buffer, number];
          p += 1;
        } else {
          row = b;
          e += 1;
        }
        const [jobIndex, args, attempts] = row;
        if (maxAttempts !== undefined && attempts >= maxAttempts) {
          this.#q.markLost.run({
            requestId: id,
            jobIndex,
            now,
            reason: `its lease ran out without a result ${attempts} time${attempts === 1 ? '' : 's'}, and no retries are left: the worker holding it died or was killed, or the task runs longer than the lease`,
          });
          continue;
        }
        leased.push({ jobIndex, args: toBytes(args) });
      }
      if (leased.length > 0) {
        const indices = JSON.stringify(leased.map((task) => task.jobIndex));
        this.#q.markLeased.run({ id, now, until, indices });
      }
      return leased;
    });
    // Batches are the hot path of lease mode: the tasks' states are read with one query and
    // the state changes written with one statement each, instead of three statements per item.
    this.#outcomesTxn = db.transaction((id: number, items: readonly Outcome[]): OutcomeStatus[] => {
      if (!this.#exists(id)) throw unknownRequest(id, this.dbfile);
      const now = Date.now();
      const known = new Map<number, [state: TaskState, attempts: number]>();
      for (const [jobIndex, state, attempts] of this.#q.batchStates.all({
        id,
        indices: JSON.stringify(items.map((item) => item.jobIndex)),
      })) {
        known.set(jobIndex, [state, attempts]);
      }
      const done: number[] = [];
      const failed: number[] = [];
      const statuses = items.map(({ jobIndex, kind, payload }): OutcomeStatus => {
        const task = known.get(jobIndex);
        if (task === undefined) return 'unknown';
        const [state, attempts] = task;
        if (state === 'cancelled') return 'cancelled';
        // A result exists exactly when the task is done; an error exactly when it failed.
        if (state === 'done' || (kind === 'error' && state === 'failed')) return 'duplicate';
        if (kind === 'result') {
          if (
            this.#q.insertResultRow.run(id, jobIndex, toBuffer(payload), attempts, now).changes ===
            0
          )
            return 'duplicate';
          // Another attempt may have failed first; the task ends with one outcome, the result.
          if (state === 'failed') this.#q.deleteError.run({ requestId: id, jobIndex });
          task[0] = 'done';
          done.push(jobIndex);
        } else {
          if (
            this.#q.insertErrorRow.run(id, jobIndex, toBuffer(payload), attempts, now).changes === 0
          )
            return 'duplicate';
          task[0] = 'failed';
          failed.push(jobIndex);
        }
        return 'stored';
      });
      if (done.length > 0) this.#q.markManyDone.run({ id, now, indices: JSON.stringify(done) });
      if (failed.length > 0)
        this.#q.markManyFailed.run({ id, now, indices: JSON.stringify(failed) });
      return statuses;
    });
  }

  /**
   * Whether `id` names a request: the constructor's transactions are built before any method
   * runs, so this reads the statement table lazily.
   */
  #exists(id: number): boolean {
    return this.#q.requestExists.get({ id }) !== undefined;
  }

  /**
   * Makes sure the schema is in place, as the original's `initdb` did. The constructor already
   * migrates, so this only re-checks, applying any migration the file still lacks; it never
   * touches data. Idempotent.
   *
   * @throws {@link StorageError} `MIGRATION_FAILED` or `CLOSED`
   */
  initdb(): void {
    this.#assertOpen();
    this.#migrate();
  }

  /**
   * Inserts tasks `first`, `first + 1`, ... of request `id`, checking each entry, inside the
   * caller's transaction; returns the last job index. Rows go in TASK_BATCH at a time, one
   * statement each: the per-statement overhead dominates a million single-row inserts.
   */
  #insertTasks(id: number, first: number, argsList: Iterable<Uint8Array>, now: number): number {
    const params: (number | Buffer)[] = [];
    let jobIndex = first - 1;
    for (const args of argsList) {
      assertBytes(`argsList[${jobIndex}]`, args);
      jobIndex += 1;
      params.push(id, jobIndex, toBuffer(args), now);
      if (params.length === TASK_BATCH * 4) {
        this.#q.insertTasks.run(params);
        params.length = 0;
      }
    }
    for (let i = 0; i < params.length; i += 4) {
      this.#q.insertTask.run(id, params[i + 1] as number, params[i + 2] as Buffer, now);
    }
    return jobIndex;
  }

  /**
   * Stores a request and one task per entry of `argsList`, all in one transaction; job indexes
   * run 1..N in iteration order. `argsList` is consumed once, as a stream, so a generator of
   * 10^6 entries never needs to exist as an array. If any entry is not a `Uint8Array`, or the
   * iterable throws, nothing is stored.
   *
   * @param func - the serialised function
   * @param ns - the serialised namespace
   * @param argsList - one serialised argument list per task
   * @param meta - token hash, backend, label and config to keep with the request
   * @returns the new request id
   * @throws {@link StorageError} `INVALID_ARGUMENT`
   */
  newRequest(
    func: Uint8Array,
    ns: Uint8Array,
    argsList: Iterable<Uint8Array>,
    meta: NewRequestMeta = {},
  ): number {
    this.#assertOpen();
    assertBytes('func', func);
    assertBytes('ns', ns);
    if (
      argsList == null ||
      typeof (argsList as Iterable<unknown>)[Symbol.iterator] !== 'function'
    ) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `argsList must be an iterable of Uint8Array, got ${describe(argsList)}.`,
      );
    }
    const row = metaRow(meta);
    return this.#guard('newRequest', () =>
      this.#newRequestTxn.immediate(toBuffer(func), toBuffer(ns), argsList, row),
    );
  }

  /**
   * Like {@link Storage.newRequest}, for arguments that arrive over time: `argsList` may be an
   * async iterable (or a sync one). Since a SQLite transaction cannot stay open across awaits
   * on a connection others write through, the tasks go in as a few transactions of `chunkSize`
   * tasks each: the request row first, then each chunk (job indexes continue in iteration
   * order, and `n_tasks` grows with each chunk). At most one chunk of serialised arguments is in
   * memory. If an entry is not a `Uint8Array`, or the iterable throws, the request and the tasks
   * stored so far are deleted and the error is thrown. Submit the request's jobs only once this
   * has resolved.
   *
   * @param options - `chunkSize`: tasks per transaction (default 10,000)
   * @returns the new request id
   * @throws {@link StorageError} `INVALID_ARGUMENT`, or whatever the iterable throws
   */
  async newRequestAsync(
    func: Uint8Array,
    ns: Uint8Array,
    argsList: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    meta: NewRequestMeta = {},
    options: { chunkSize?: number } = {},
  ): Promise<number> {
    this.#assertOpen();
    assertBytes('func', func);
    assertBytes('ns', ns);
    const chunkSize = options.chunkSize ?? 10_000;
    assertId('chunkSize', chunkSize);
    const isAsync =
      argsList != null &&
      typeof (argsList as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
    if (
      !isAsync &&
      (argsList == null || typeof (argsList as Iterable<unknown>)[Symbol.iterator] !== 'function')
    ) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `argsList must be an iterable or async iterable of Uint8Array, got ${describe(argsList)}.`,
      );
    }
    const row = metaRow(meta);
    const id = this.#guard('newRequestAsync', () =>
      this.#newRequestTxn.immediate(toBuffer(func), toBuffer(ns), [], row),
    );
    let jobIndex = 0;
    let chunk: Buffer[] = [];
    const flush = (): void => {
      const first = jobIndex + 1;
      const rows = chunk;
      chunk = [];
      this.#guard('newRequestAsync', () => this.#appendTxn.immediate(id, first, rows));
      jobIndex += rows.length;
    };
    try {
      for await (const args of argsList) {
        assertBytes(`argsList[${jobIndex + chunk.length}]`, args);
        chunk.push(toBuffer(args));
        if (chunk.length >= chunkSize) flush();
      }
      if (chunk.length > 0) flush();
    } catch (error) {
      this.#guard('newRequestAsync', () => this.#q.deleteRequest.run({ id }));
      throw error;
    }
    return id;
  }

  /**
   * One task's state, reason, and its result or error payload (`null` when it has none).
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST`, `UNKNOWN_TASK` or `INVALID_ARGUMENT`
   */
  getOutcome(
    requestId: number,
    jobIndex: number,
  ): {
    state: TaskState;
    reason: string | null;
    result: Uint8Array | null;
    error: Uint8Array | null;
  } {
    const key = this.#taskKey(requestId, jobIndex);
    const row = this.#guard('getOutcome', () => this.#q.getOutcome.get(key));
    if (row === undefined) this.#throwMissing(requestId, jobIndex);
    return {
      state: row.state,
      reason: row.reason,
      result: row.result === null ? null : toBytes(row.result),
      error: row.error === null ? null : toBytes(row.error),
    };
  }

  /**
   * Every task's result payload in job-index order, `null` where none is stored: what a caller
   * collecting results needs, without reading the arguments back.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getResultList(requestId: number): (Uint8Array | null)[] {
    const rows = this.#list('getResultList', this.#q.getResultList, requestId);
    return rows.map((result) => (result === null ? null : toBytes(result)));
  }

  /**
   * {@link Storage.getResultList} one result at a time, read as it is consumed: for 10^6 tasks
   * the payloads need not all be in memory at once. While it iterates, this connection reads
   * nothing else (better-sqlite3 keeps it busy); use the results, then the storage.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT` (on the first step)
   */
  *iterateResultList(requestId: number): Generator<Uint8Array | null, void, undefined> {
    const id = this.#requestId(requestId);
    if (!this.#guard('iterateResultList', () => this.#exists(id))) {
      throw unknownRequest(id, this.dbfile);
    }
    const rows = this.#guard('iterateResultList', () => this.#q.getResultList.iterate({ id }));
    try {
      for (;;) {
        const next = this.#guard('iterateResultList', () => rows.next());
        if (next.done === true) return;
        yield next.value === null ? null : toBytes(next.value);
      }
    } finally {
      rows.return?.();
    }
  }

  /**
   * What a worker needs to run one task.
   *
   * @returns `[func, ns, args]`
   * @throws {@link StorageError} `UNKNOWN_REQUEST`, `UNKNOWN_TASK` or `INVALID_ARGUMENT`
   */
  getDetails(requestId: number, jobIndex: number): TaskDetails {
    const key = this.#taskKey(requestId, jobIndex);
    const row = this.#guard('getDetails', () => this.#q.getDetails.get(key));
    if (row === undefined) this.#throwMissing(requestId, jobIndex);
    return [toBytes(row[0]), toBytes(row[1]), toBytes(row[2])];
  }

  /**
   * Stores the result of a task, unless it already has one, and marks the task `done`.
   * A repeat (a worker retrying after a lost response) is a success that changes nothing:
   * the first result stays, byte for byte. A result wins over an error an earlier attempt
   * stored, which is deleted, so the task counts once.
   *
   * @returns `true` if stored now, `false` if the task already had a result
   * @throws {@link StorageError} `UNKNOWN_REQUEST`, `UNKNOWN_TASK` or `INVALID_ARGUMENT`
   */
  storeResult(requestId: number, jobIndex: number, result: Uint8Array): boolean {
    const key = this.#taskKey(requestId, jobIndex);
    assertBytes('result', result);
    const params = { ...key, payload: toBuffer(result), now: Date.now() };
    return this.#guard('storeResult', () => this.#storeResultTxn.immediate(params));
  }

  /**
   * Stores the error text (UTF-8 bytes) of a task, unless it already has one, and marks the
   * task `failed`. A repeat changes nothing, and so does an error for a task that already has a
   * result (from another attempt): a task ends with one outcome.
   *
   * @returns `true` if stored now, `false` if the task already had an error or a result
   * @throws {@link StorageError} `UNKNOWN_REQUEST`, `UNKNOWN_TASK` or `INVALID_ARGUMENT`
   */
  storeError(requestId: number, jobIndex: number, error: Uint8Array): boolean {
    const key = this.#taskKey(requestId, jobIndex);
    assertBytes('error', error);
    const params = { ...key, payload: toBuffer(error), now: Date.now() };
    return this.#guard('storeError', () => this.#storeErrorTxn.immediate(params));
  }

  /**
   * Records that a worker has fetched the task: a `pending`, `running` or `lost` task becomes
   * `running` and its `attempts` goes up by one (so a worker that fetches twice counts twice).
   * A `done`, `failed` or `cancelled` task is left as it is.
   *
   * @returns `true` if the task is now running on a new attempt, `false` if it was left as is
   * @throws {@link StorageError} `UNKNOWN_REQUEST`, `UNKNOWN_TASK` or `INVALID_ARGUMENT`
   */
  markRunning(requestId: number, jobIndex: number): boolean {
    const key = this.#taskKey(requestId, jobIndex);
    const changes = this.#guard(
      'markRunning',
      () => this.#q.markRunning.run({ ...key, now: Date.now() }).changes,
    );
    if (changes === 1) return true;
    this.#requireOpenTask(requestId, jobIndex);
    return false;
  }

  /**
   * Leases up to `max` tasks for one worker, in one transaction: pending tasks and running tasks
   * whose lease has run out, lowest job indexes first. Each becomes `running` with
   * `attempts + 1` and a lease of `leaseMs`. An empty list means nothing is left to lease (the
   * remaining tasks are leased by other workers, or finished).
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  leaseTasks(requestId: number, options: LeaseOptions): LeasedTask[] {
    const id = this.#requestId(requestId);
    const { max, leaseMs, maxAttempts } = options;
    if (!Number.isSafeInteger(max) || max < 1 || max > 10_000) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `max must be an integer in 1..10000, got ${describe(max)}.`,
      );
    }
    if (!Number.isSafeInteger(leaseMs) || leaseMs < 1) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `leaseMs must be a positive integer, got ${describe(leaseMs)}.`,
      );
    }
    if (maxAttempts !== undefined && (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1)) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `maxAttempts must be a positive integer, got ${describe(maxAttempts)}.`,
      );
    }
    return this.#guard('leaseTasks', () => this.#leaseTxn.immediate(id, options));
  }

  /**
   * Extends the leases of the given tasks to `leaseMs` from now, for those still running under
   * a lease: a worker whose task runs longer than its lease says it is still at it, so the task
   * is neither handed to another worker nor counted as a lost attempt. Tasks that have finished,
   * were cancelled or lost are left alone.
   *
   * @param indices - job indexes the worker holds (at most 10,000)
   * @returns the job indexes whose lease was extended, ascending
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  renewLeases(requestId: number, indices: readonly number[], leaseMs: number): number[] {
    const id = this.#requestId(requestId);
    if (
      !Array.isArray(indices) ||
      indices.length > 10_000 ||
      !indices.every((i) => Number.isSafeInteger(i) && i >= 1)
    ) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `indices must be a list of at most 10000 positive integers, got ${describe(indices)}.`,
      );
    }
    if (!Number.isSafeInteger(leaseMs) || leaseMs < 1) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `leaseMs must be a positive integer, got ${describe(leaseMs)}.`,
      );
    }
    return this.#guard('renewLeases', () => {
      const now = Date.now();
      const renewed = this.#q.renewLeases.all({
        id,
        now,
        until: now + leaseMs,
        indices: JSON.stringify(indices),
      });
      if (renewed.length === 0 && !this.#exists(id)) throw unknownRequest(id, this.dbfile);
      return renewed.sort((a, b) => a - b);
    });
  }

  /**
   * When the earliest lease of the request's running tasks runs out (ms since the epoch), or
   * `null` when no leased task is running: a worker that found nothing to lease waits until then
   * instead of leaving a dead worker's chunk to nobody.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  nextLeaseExpiry(requestId: number): number | null {
    const id = this.#requestId(requestId);
    return this.#guard('nextLeaseExpiry', () => {
      const until = this.#q.nextLeaseExpiry.get({ id }) ?? null;
      if (until === null && !this.#exists(id)) throw unknownRequest(id, this.dbfile);
      return until;
    });
  }

  /**
   * Stores a batch of results and errors in one transaction, with the rules of
   * {@link Storage.storeResult} and {@link Storage.storeError} per item: the first outcome of a
   * task wins, a cancelled task refuses, and an unknown job index is reported, not thrown.
   *
   * @returns one status per item, in order
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  storeOutcomes(requestId: number, items: readonly Outcome[]): OutcomeStatus[] {
    const id = this.#requestId(requestId);
    items.forEach((item, i) => {
      assertId(`items[${i}].jobIndex`, item.jobIndex);
      if (item.kind !== 'result' && item.kind !== 'error') {
        throw new StorageError(
          'INVALID_ARGUMENT',
          `items[${i}].kind must be 'result' or 'error', got ${describe(item.kind)}.`,
        );
      }
      assertBytes(`items[${i}].payload`, item.payload);
    });
    return this.#guard('storeOutcomes', () => this.#outcomesTxn.immediate(id, items));
  }

  /**
   * The request's function and namespace payloads, which every task shares.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getCode(requestId: number): [func: Uint8Array, ns: Uint8Array] {
    const id = this.#requestId(requestId);
    const row = this.#guard('getCode', () => this.#q.getCode.get({ id }));
    if (row === undefined) throw unknownRequest(id, this.dbfile);
    return [toBytes(row[0]), toBytes(row[1])];
  }

  /**
   * @returns the number of tasks of the request
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  countTasks(requestId: number): number {
    return this.#count('countTasks', this.#q.countTasks, requestId);
  }

  /**
   * @returns the number of results stored so far for the request
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  countResults(requestId: number): number {
    return this.#count('countResults', this.#q.countResults, requestId);
  }

  /**
   * @returns the number of errors stored so far for the request
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  countErrors(requestId: number): number {
    return this.#count('countErrors', this.#q.countErrors, requestId);
  }

  /**
   * Results plus errors: the request is finished when this equals {@link Storage.countTasks}
   * (a task with both a result and an error counts twice; the server never produces that).
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  countResultsAndErrors(requestId: number): number {
    return this.#count('countResultsAndErrors', this.#q.countResultsAndErrors, requestId);
  }

  /**
   * `[args, result]` for every task that has a result, in job-index order; tasks without a
   * result are left out, so the list may be shorter than the request.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getResults(requestId: number): ArgsAndResult[] {
    const rows = this.#list('getResults', this.#q.getResults, requestId);
    return rows.map(([args, result]) => [toBytes(args), toBytes(result)]);
  }

  /**
   * `[args, result]` for every task in job-index order, with `null` where no result is stored.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getTasksWithResults(requestId: number): [args: Uint8Array, result: Uint8Array | null][] {
    const rows = this.#list('getTasksWithResults', this.#q.getTasksWithResults, requestId);
    return rows.map(([args, result]) => [toBytes(args), result === null ? null : toBytes(result)]);
  }

  /**
   * `[args, error, jobIndex]` for every failed task, in job-index order: a task has an error
   * exactly while it is `failed` (reopening it for a retry deletes the error).
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getErrors(requestId: number): ArgsAndError[] {
    const rows = this.#list('getErrors', this.#q.getErrors, requestId);
    return rows.map(([args, error, jobIndex]) => [toBytes(args), toBytes(error), jobIndex]);
  }

  /**
   * The SHA-256 (hex) of the request's worker token, or `null` if it was created without one.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getTokenHash(requestId: number): string | null {
    const id = this.#requestId(requestId);
    const row = this.#guard('getTokenHash', () =>
      this.#orm
        .select({ tokenHash: schema.requests.tokenHash })
        .from(schema.requests)
        .where(eq(schema.requests.id, id))
        .get(),
    );
    if (row === undefined) throw unknownRequest(id, this.dbfile);
    return row.tokenHash;
  }

  /**
   * Every worker token hash the request accepts: the one it was created with (when it has one),
   * then those added by {@link Storage.addTokenHash}, oldest first.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getTokenHashes(requestId: number): string[] {
    const first = this.getTokenHash(requestId);
    const more = this.#guard('getTokenHashes', () => this.#q.tokenHashes.all({ id: requestId }));
    return first === null ? more : [first, ...more];
  }

  /**
   * Adds a worker token hash to a request: a later process that resubmits tasks (a resume, a
   * retry) mints a token of its own, since only the hash of the first one is stored. Workers
   * holding the first token keep working.
   *
   * @param tokenHash - SHA-256 of the new token, as 64 lowercase hex digits; never the token
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  addTokenHash(requestId: number, tokenHash: string): void {
    const id = this.#requestId(requestId);
    if (typeof tokenHash !== 'string' || !SHA256_HEX.test(tokenHash)) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        'tokenHash must be a SHA-256 digest as 64 lowercase hex digits; store the hash, never the token.',
      );
    }
    this.#guard('addTokenHash', () => {
      if (this.#q.requestExists.get({ id }) === undefined) throw unknownRequest(id, this.dbfile);
      this.#q.insertTokenHash.run({ id, tokenHash, now: Date.now() });
    });
  }

  /**
   * One request with its per-state task counts.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getRequest(requestId: number): RequestSummary {
    const id = this.#requestId(requestId);
    const summary = this.#summaries(id)[0];
    if (summary === undefined) throw unknownRequest(id, this.dbfile);
    return summary;
  }

  /**
   * How many tasks of the request are in each state.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  countByState(requestId: number): Record<TaskState, number> {
    return this.getRequest(requestId).states;
  }

  /**
   * Job indexes of the tasks that have not reached a final state (pending or running), ascending.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  openIndices(requestId: number): number[] {
    const id = this.#requestId(requestId);
    return this.#guard('openIndices', () => {
      const rows = this.#q.openIndices.all({ id });
      if (rows.length === 0 && this.#q.requestExists.get({ id }) === undefined) {
        throw unknownRequest(id, this.dbfile);
      }
      return rows;
    });
  }

  /**
   * Whether any task of the request is pending or running: one index probe, however many tasks
   * the request has, so a waiter can ask after every batch of results.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  hasOpenTasks(requestId: number): boolean {
    const id = this.#requestId(requestId);
    return this.#guard('hasOpenTasks', () => {
      if (this.#q.hasOpen.get({ id }) !== undefined) return true;
      if (!this.#exists(id)) throw unknownRequest(id, this.dbfile);
      return false;
    });
  }

  /**
   * Every task's state, attempt count and the reason it was lost or cancelled, in job-index order.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getTaskStates(requestId: number): TaskStateRow[] {
    return this.#list('getTaskStates', this.#q.taskStates, requestId);
  }

  /**
   * Marks a pending or running task lost: it ended without a result or an error. A result that
   * arrives later is still accepted once (the task becomes done).
   *
   * @returns `true` if the task was open and is now lost, `false` if it had already finished
   * @throws {@link StorageError} `UNKNOWN_REQUEST`, `UNKNOWN_TASK` or `INVALID_ARGUMENT`
   */
  markLost(requestId: number, jobIndex: number, reason: string): boolean {
    const key = this.#taskKey(requestId, jobIndex);
    const changes = this.#guard(
      'markLost',
      () => this.#q.markLost.run({ ...key, reason: String(reason), now: Date.now() }).changes,
    );
    if (changes === 0) this.#requireTask(requestId, jobIndex);
    return changes === 1;
  }

  /**
   * Marks every pending or running task of the request cancelled; later results and errors for
   * them are refused with `TASK_CANCELLED`.
   *
   * @returns how many tasks were cancelled
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  markCancelled(requestId: number, reason: string): number {
    const id = this.#requestId(requestId);
    return this.#guard('markCancelled', () => {
      if (this.#q.requestExists.get({ id }) === undefined) throw unknownRequest(id, this.dbfile);
      return this.#q.markCancelled.run({ id, reason: String(reason), now: Date.now() }).changes;
    });
  }

  /**
   * Reopens lost and failed tasks for another attempt: they become `pending` again, with no
   * reason, and a failed task's error is deleted so that the next attempt's result or error can
   * be stored. Results are never deleted: a task that is `done` (or `pending`, `running`,
   * `cancelled`) is left as it is. All in one transaction.
   *
   * @param indices - job indexes to reopen; unknown ones raise `UNKNOWN_TASK` and reopen nothing
   * @returns the job indexes that were reopened, ascending
   * @throws {@link StorageError} `UNKNOWN_REQUEST`, `UNKNOWN_TASK` or `INVALID_ARGUMENT`
   */
  reopenTasks(requestId: number, indices: Iterable<number>): number[] {
    const id = this.#requestId(requestId);
    const wanted = [...new Set(indices)].sort((a, b) => a - b);
    for (const jobIndex of wanted) assertId('jobIndex', jobIndex);
    return this.#guard('reopenTasks', () => this.#reopenTxn.immediate(id, wanted));
  }

  /**
   * Records a scheduler submission of the request, so a later process can re-attach to it.
   *
   * @returns the submission's row id
   * @throws {@link StorageError} `UNKNOWN_REQUEST`, `INVALID_ARGUMENT`
   */
  addJob(requestId: number, job: JobRecord): number {
    const id = this.#requestId(requestId);
    return this.#guard('addJob', () => {
      if (this.#q.requestExists.get({ id }) === undefined) throw unknownRequest(id, this.dbfile);
      return Number(
        this.#q.insertJob.run({
          requestId: id,
          backend: job.backend,
          jobId: job.jobId,
          submittedAt: job.submittedAt,
          indices: stringifyIndices(job.indices),
          meta: job.meta === undefined ? null : JSON.stringify(job.meta),
        }).lastInsertRowid,
      );
    });
  }

  /**
   * The request's scheduler submissions, oldest first.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getJobs(requestId: number): JobRecord[] {
    const id = this.#requestId(requestId);
    const rows = this.#guard('getJobs', () => {
      if (this.#q.requestExists.get({ id }) === undefined) throw unknownRequest(id, this.dbfile);
      return this.#q.getJobs.all({ id });
    });
    return rows.map((row) => ({
      backend: row.backend,
      jobId: row.jobId ?? '',
      submittedAt: row.submittedAt,
      indices: parseIndices(row.indices),
      ...(row.meta === null ? {} : { meta: JSON.parse(row.meta) as Record<string, unknown> }),
    }));
  }

  /**
   * How many submissions the request has: cheap, so a waiting process can notice one made by
   * another process without reading them all.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  countJobs(requestId: number): number {
    return this.#count('countJobs', this.#q.countJobs, requestId);
  }

  /**
   * Job indexes of the request's tasks in any of `states`, ascending.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  indicesInState(requestId: number, states: readonly TaskState[]): number[] {
    const id = this.#requestId(requestId);
    for (const state of states) {
      if (!(TASK_STATES as readonly string[]).includes(state)) {
        throw new StorageError(
          'INVALID_ARGUMENT',
          `unknown task state ${describe(state)}; use one of ${TASK_STATES.join(', ')}.`,
        );
      }
    }
    return this.#guard('indicesInState', () => {
      if (this.#q.requestExists.get({ id }) === undefined) throw unknownRequest(id, this.dbfile);
      if (states.length === 0) return [];
      return this.#q.indicesInState.all({ id, states: JSON.stringify(states) });
    });
  }

  /** Every request in the file, oldest first, with per-state task counts. */
  listRequests(): RequestSummary[] {
    this.#assertOpen();
    return this.#summaries();
  }

  /**
   * Runs `work` in one write transaction: the writes of the Storage calls it makes commit
   * together, once, or not at all if `work` throws. Each call's own transaction becomes a
   * savepoint inside it, so a call that throws (say `TASK_CANCELLED`) undoes only its own
   * changes when `work` catches the error. A server uses this to commit many workers' calls
   * at once: one commit writes each touched page once, where one per call writes it each time.
   * Nothing may await inside `work`.
   *
   * @returns what `work` returns
   * @throws whatever `work` throws; {@link StorageError} `DATABASE_ERROR` when the commit fails
   */
  transaction<T>(work: () => T): T {
    this.#assertOpen();
    if (typeof work !== 'function') {
      throw new StorageError('INVALID_ARGUMENT', `work must be a function, got ${describe(work)}.`);
    }
    return this.#guard('transaction', () => this.#db.transaction(work).immediate());
  }

  /** Closes the database connection. Idempotent; any other method then throws `CLOSED`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  #summaries(id?: number): RequestSummary[] {
    const { requests, tasks } = schema;
    return this.#guard('listRequests', () => {
      const rows = this.#orm
        .select({
          id: requests.id,
          createdAt: requests.createdAt,
          nTasks: requests.nTasks,
          backend: requests.backend,
          label: requests.label,
          status: requests.status,
          config: requests.config,
        })
        .from(requests)
        .where(id === undefined ? undefined : eq(requests.id, id))
        .orderBy(asc(requests.id))
        .all();
      // Served by the (request_id, state) index without touching the task rows.
      const counts = this.#orm
        .select({ requestId: tasks.requestId, state: tasks.state, n: sql<number>`count(*)` })
        .from(tasks)
        .where(id === undefined ? undefined : eq(tasks.requestId, id))
        .groupBy(tasks.requestId, tasks.state)
        .all();
      const states = new Map<number, Record<TaskState, number>>();
      for (const row of rows) {
        states.set(row.id, emptyStates());
      }
      for (const c of counts) {
        const perState = states.get(c.requestId);
        if (perState !== undefined) perState[c.state] = c.n;
      }
      return rows.map((row) => ({
        ...row,
        config: row.config === null ? null : (JSON.parse(row.config) as unknown),
        states: states.get(row.id) ?? emptyStates(),
      }));
    });
  }

  /**
   * Applies pending migrations unless the file is already up to date. Drizzle's migrator reads
   * the applied version outside its transaction, so two processes opening one new file can both
   * try; the loser fails (table exists) and, on a re-check, finds the file up to date.
   */
  #migrate(): void {
    let migrations: ReturnType<typeof readMigrationFiles>;
    try {
      migrations = readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER });
    } catch (cause) {
      throw new StorageError(
        'MIGRATION_FAILED',
        `cannot read the migrations in ${MIGRATIONS_FOLDER}: ${errorMessage(cause)}. Reinstall @sheepdog/storage; its drizzle/ folder must ship with it.`,
        { cause },
      );
    }
    const latest = Math.max(0, ...migrations.map((m) => m.folderMillis));
    for (let attempt = 1; ; attempt++) {
      if (this.#appliedMigration() >= latest) return;
      try {
        migrate(this.#orm, { migrationsFolder: MIGRATIONS_FOLDER });
        return;
      } catch (cause) {
        if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
        if (this.#appliedMigration() >= latest) return;
        if (attempt >= MIGRATION_ATTEMPTS) {
          throw new StorageError(
            'MIGRATION_FAILED',
            `cannot apply the schema migrations to ${this.dbfile}: ${errorMessage(cause)}. If the file was not made by Sheepdog, use another dbfile.`,
            { cause },
          );
        }
      }
    }
  }

  /** The `when` of the newest migration applied to the file, 0 when none. */
  #appliedMigration(): number {
    const hasTable = this.#db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '__drizzle_migrations'")
      .get();
    if (hasTable === undefined) return 0;
    const row = this.#db
      .prepare('SELECT max(created_at) AS latest FROM __drizzle_migrations')
      .get() as { latest: number | string | null };
    return Number(row.latest ?? 0);
  }

  #count(op: string, statement: Database.Statement<[Id], Count>, requestId: number): number {
    const id = this.#requestId(requestId);
    const row = this.#guard(op, () => statement.get({ id }));
    if (row === undefined || row.known === 0) throw unknownRequest(id, this.dbfile);
    return row.n;
  }

  #list<R>(op: string, statement: Database.Statement<[Id], R>, requestId: number): R[] {
    const id = this.#requestId(requestId);
    return this.#guard(op, () => {
      const rows = statement.all({ id });
      // An empty answer must not hide a typo in the id.
      if (rows.length === 0 && this.#q.requestExists.get({ id }) === undefined) {
        throw unknownRequest(id, this.dbfile);
      }
      return rows;
    });
  }

  /** Like #requireTask, and a cancelled task refuses further results and errors. */
  #requireOpenTask(requestId: number, jobIndex: number): void {
    const state = this.#q.taskState.get({ requestId, jobIndex });
    if (state === undefined) this.#throwMissing(requestId, jobIndex);
    if (state === 'cancelled') {
      throw new StorageError(
        'TASK_CANCELLED',
        `task ${jobIndex} of request ${requestId} was cancelled; its result is no longer accepted.`,
      );
    }
  }

  #requireTask(requestId: number, jobIndex: number): void {
    if (this.#q.taskExists.get({ requestId, jobIndex }) === undefined) {
      this.#throwMissing(requestId, jobIndex);
    }
  }

  #throwMissing(requestId: number, jobIndex: number): never {
    if (this.#q.requestExists.get({ id: requestId }) === undefined) {
      throw unknownRequest(requestId, this.dbfile);
    }
    const n = this.#q.countTasks.get({ id: requestId })?.n ?? 0;
    throw new StorageError(
      'UNKNOWN_TASK',
      `request ${requestId} has no task with job index ${jobIndex}; its job indexes run 1..${n}.`,
    );
  }

  #taskKey(requestId: number, jobIndex: number): TaskKey {
    this.#assertOpen();
    assertId('requestId', requestId);
    assertId('jobIndex', jobIndex);
    return { requestId, jobIndex };
  }

  #requestId(requestId: number): number {
    this.#assertOpen();
    assertId('requestId', requestId);
    return requestId;
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new StorageError(
        'CLOSED',
        `the storage for ${this.dbfile} is closed; create a new Storage to use the file again.`,
      );
    }
  }

  /** Runs a query, passing StorageErrors through and wrapping SQLite failures. */
  #guard<T>(op: string, run: () => T): T {
    try {
      return run();
    } catch (cause) {
      if (cause instanceof Database.SqliteError) {
        throw new StorageError(
          'DATABASE_ERROR',
          `${op} failed on ${this.dbfile}: ${cause.message} (${cause.code}). Check disk space and permissions; if another process held the file locked for over ${BUSY_TIMEOUT_MS / 1000} s, retry.`,
          { cause },
        );
      }
      throw cause;
    }
  }
}

/** Tasks per multi-row INSERT (4 parameters each, well under SQLite's limit of 32,766). */
const TASK_BATCH = 256;

/** Prepares every hand-written statement once per connection. */
function prepareStatements(db: Database.Database) {
  return {
    insertRequest: db.prepare<
      [number, Buffer, Buffer, string | null, string | null, string | null, string | null]
    >(
      `INSERT INTO requests (created_at, func, ns, token_hash, n_tasks, backend, label, config)
       VALUES (?, ?, ?, ?, 0, ?, ?, ?)`,
    ),
    insertTask: db.prepare<[number, number, Buffer, number]>(
      'INSERT INTO tasks (request_id, job_index, args, updated_at) VALUES (?, ?, ?, ?)',
    ),
    insertTasks: db.prepare<[(number | Buffer)[]]>(
      `INSERT INTO tasks (request_id, job_index, args, updated_at) VALUES ${Array(TASK_BATCH).fill('(?, ?, ?, ?)').join(', ')}`,
    ),
    setTaskCount: db.prepare<[number, number]>('UPDATE requests SET n_tasks = ? WHERE id = ?'),
    getDetails: db
      .prepare<TaskKey, [Buffer, Buffer, Buffer]>(
        `SELECT r.func, r.ns, t.args FROM tasks t JOIN requests r ON r.id = t.request_id
         WHERE t.request_id = @requestId AND t.job_index = @jobIndex`,
      )
      .raw(),
    taskExists: db
      .prepare<TaskKey, number>(
        'SELECT 1 FROM tasks WHERE request_id = @requestId AND job_index = @jobIndex',
      )
      .pluck(),
    requestExists: db.prepare<Id, number>('SELECT 1 FROM requests WHERE id = @id').pluck(),
    // INSERT ... SELECT FROM tasks stores nothing for an unknown task, and ON CONFLICT DO NOTHING
    // keeps the first result: a repeat changes 0 rows, never a second row or a new value.
    insertResult: db.prepare<StoreParams>(
      `INSERT INTO results (request_id, job_index, result, attempt, created_at)
       SELECT request_id, job_index, @payload, attempts, @now FROM tasks
       WHERE request_id = @requestId AND job_index = @jobIndex AND state <> 'cancelled'
       ON CONFLICT (request_id, job_index) DO NOTHING`,
    ),
    insertError: db.prepare<StoreParams>(
      `INSERT INTO errors (request_id, job_index, error, attempt, created_at)
       SELECT request_id, job_index, @payload, attempts, @now FROM tasks
       WHERE request_id = @requestId AND job_index = @jobIndex
         AND state NOT IN ('cancelled', 'done')
       ON CONFLICT (request_id, job_index) DO NOTHING`,
    ),
    markDone: db.prepare<TaskKey & { now: number }>(
      `UPDATE tasks SET state = 'done', updated_at = @now
       WHERE request_id = @requestId AND job_index = @jobIndex`,
    ),
    // A task that already has a result stays done even if an error arrives later.
    markFailed: db.prepare<TaskKey & { now: number }>(
      `UPDATE tasks SET state = 'failed', updated_at = @now
       WHERE request_id = @requestId AND job_index = @jobIndex AND state <> 'done'`,
    ),
    markRunning: db.prepare<TaskKey & { now: number }>(
      `UPDATE tasks SET state = 'running', attempts = attempts + 1, updated_at = @now
       WHERE request_id = @requestId AND job_index = @jobIndex
         AND state IN ('pending', 'running', 'lost')`,
    ),
    getCode: db.prepare<Id, [Buffer, Buffer]>('SELECT func, ns FROM requests WHERE id = @id').raw(),
    leasePending: db
      .prepare<Id & { max: number }, [number, Buffer, number]>(
        `SELECT job_index, args, attempts FROM tasks WHERE request_id = @id AND state = 'pending'
         ORDER BY job_index LIMIT @max`,
      )
      .raw(),
    leaseExpired: db
      .prepare<Id & { max: number; now: number }, [number, Buffer, number]>(
        `SELECT job_index, args, attempts FROM tasks WHERE request_id = @id AND state = 'running'
           AND lease_until IS NOT NULL AND lease_until <= @now
         ORDER BY job_index LIMIT @max`,
      )
      .raw(),
    hasOpen: db
      .prepare<Id, number>(
        `SELECT 1 FROM tasks WHERE request_id = @id AND state IN ('pending', 'running') LIMIT 1`,
      )
      .pluck(),
    deleteRequest: db.prepare<Id>('DELETE FROM requests WHERE id = @id'),
    getOutcome: db.prepare<
      TaskKey,
      { state: TaskState; reason: string | null; result: Buffer | null; error: Buffer | null }
    >(
      `SELECT t.state, t.reason, r.result, e.error FROM tasks t
       LEFT JOIN results r ON r.request_id = t.request_id AND r.job_index = t.job_index
       LEFT JOIN errors e ON e.request_id = t.request_id AND e.job_index = t.job_index
       WHERE t.request_id = @requestId AND t.job_index = @jobIndex`,
    ),
    getResultList: db
      .prepare<Id, Buffer | null>(
        `SELECT r.result FROM tasks t
         LEFT JOIN results r ON r.request_id = t.request_id AND r.job_index = t.job_index
         WHERE t.request_id = @id ORDER BY t.job_index`,
      )
      .pluck(),
    nextLeaseExpiry: db
      .prepare<Id, number | null>(
        `SELECT min(lease_until) FROM tasks WHERE request_id = @id AND state = 'running'
           AND lease_until IS NOT NULL`,
      )
      .pluck(),
    markLeased: db.prepare<Id & { now: number; until: number; indices: string }>(
      `UPDATE tasks SET state = 'running', attempts = attempts + 1, lease_until = @until,
         updated_at = @now
       WHERE request_id = @id AND job_index IN (SELECT value FROM json_each(@indices))`,
    ),
    renewLeases: db
      .prepare<Id & { now: number; until: number; indices: string }, number>(
        `UPDATE tasks SET lease_until = @until, updated_at = @now
         WHERE request_id = @id AND state = 'running' AND lease_until IS NOT NULL
           AND job_index IN (SELECT value FROM json_each(@indices))
         RETURNING job_index`,
      )
      .pluck(),
    batchStates: db
      .prepare<Id & { indices: string }, [number, TaskState, number]>(
        `SELECT job_index, state, attempts FROM tasks
         WHERE request_id = @id AND job_index IN (SELECT value FROM json_each(@indices))`,
      )
      .raw(),
    insertResultRow: db.prepare<[number, number, Buffer, number, number]>(
      `INSERT INTO results (request_id, job_index, result, attempt, created_at)
       VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_id, job_index) DO NOTHING`,
    ),
    insertErrorRow: db.prepare<[number, number, Buffer, number, number]>(
      `INSERT INTO errors (request_id, job_index, error, attempt, created_at)
       VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_id, job_index) DO NOTHING`,
    ),
    markManyDone: db.prepare<Id & { now: number; indices: string }>(
      `UPDATE tasks SET state = 'done', updated_at = @now
       WHERE request_id = @id AND job_index IN (SELECT value FROM json_each(@indices))`,
    ),
    markManyFailed: db.prepare<Id & { now: number; indices: string }>(
      `UPDATE tasks SET state = 'failed', updated_at = @now
       WHERE request_id = @id AND job_index IN (SELECT value FROM json_each(@indices))
         AND state <> 'done'`,
    ),
    taskState: db
      .prepare<TaskKey, TaskState>(
        'SELECT state FROM tasks WHERE request_id = @requestId AND job_index = @jobIndex',
      )
      .pluck(),
    openIndices: db
      .prepare<Id, number>(
        `SELECT job_index FROM tasks WHERE request_id = @id AND state IN ('pending', 'running')
         ORDER BY job_index`,
      )
      .pluck(),
    markLost: db.prepare<TaskKey & { now: number; reason: string }>(
      `UPDATE tasks SET state = 'lost', reason = @reason, updated_at = @now
       WHERE request_id = @requestId AND job_index = @jobIndex AND state IN ('pending', 'running')`,
    ),
    reopenTask: db.prepare<TaskKey & { now: number }>(
      `UPDATE tasks SET state = 'pending', reason = NULL, updated_at = @now
       WHERE request_id = @requestId AND job_index = @jobIndex AND state IN ('lost', 'failed')`,
    ),
    deleteError: db.prepare<TaskKey>(
      'DELETE FROM errors WHERE request_id = @requestId AND job_index = @jobIndex',
    ),
    tokenHashes: db
      .prepare<Id, string>(
        'SELECT token_hash FROM request_tokens WHERE request_id = @id ORDER BY id',
      )
      .pluck(),
    insertTokenHash: db.prepare<Id & { tokenHash: string; now: number }>(
      `INSERT INTO request_tokens (request_id, token_hash, created_at)
       VALUES (@id, @tokenHash, @now)`,
    ),
    markCancelled: db.prepare<Id & { now: number; reason: string }>(
      `UPDATE tasks SET state = 'cancelled', reason = @reason, updated_at = @now
       WHERE request_id = @id AND state IN ('pending', 'running')`,
    ),
    taskStates: db.prepare<Id, TaskStateRow>(
      `SELECT job_index AS jobIndex, state, attempts, reason FROM tasks
       WHERE request_id = @id ORDER BY job_index`,
    ),
    insertJob: db.prepare<JobRow>(
      `INSERT INTO jobs (request_id, backend, job_id, submitted_at, indices, meta)
       VALUES (@requestId, @backend, @jobId, @submittedAt, @indices, @meta)`,
    ),
    getJobs: db.prepare<Id, JobRow>(
      `SELECT request_id AS requestId, backend, job_id AS jobId, submitted_at AS submittedAt,
              indices, meta FROM jobs WHERE request_id = @id ORDER BY id`,
    ),
    countTasks: count(db, 'SELECT count(*) FROM tasks WHERE request_id = @id'),
    countJobs: count(db, 'SELECT count(*) FROM jobs WHERE request_id = @id'),
    indicesInState: db
      .prepare<Id & { states: string }, number>(
        `SELECT job_index FROM tasks WHERE request_id = @id
           AND state IN (SELECT value FROM json_each(@states))
         ORDER BY job_index`,
      )
      .pluck(),
    countResults: count(db, 'SELECT count(*) FROM results WHERE request_id = @id'),
    countErrors: count(db, 'SELECT count(*) FROM errors WHERE request_id = @id'),
    countResultsAndErrors: count(
      db,
      `SELECT (SELECT count(*) FROM results WHERE request_id = @id)
            + (SELECT count(*) FROM errors WHERE request_id = @id)`,
    ),
    getResults: db
      .prepare<Id, [Buffer, Buffer]>(
        `SELECT t.args, r.result FROM results r
         JOIN tasks t ON t.request_id = r.request_id AND t.job_index = r.job_index
         WHERE r.request_id = @id ORDER BY r.job_index`,
      )
      .raw(),
    getTasksWithResults: db
      .prepare<Id, [Buffer, Buffer | null]>(
        `SELECT t.args, r.result FROM tasks t
         LEFT JOIN results r ON r.request_id = t.request_id AND r.job_index = t.job_index
         WHERE t.request_id = @id ORDER BY t.job_index`,
      )
      .raw(),
    getErrors: db
      .prepare<Id, [Buffer, Buffer, number]>(
        `SELECT t.args, e.error, e.job_index FROM errors e
         JOIN tasks t ON t.request_id = e.request_id AND t.job_index = e.job_index
         WHERE e.request_id = @id ORDER BY e.job_index`,
      )
      .raw(),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

type JobRow = {
  requestId: number;
  backend: string;
  jobId: string | null;
  submittedAt: number;
  indices: string;
  meta: string | null;
};

/** `known` tells an unknown request (an error) from one with nothing counted yet. */
function count(db: Database.Database, from: string): Database.Statement<[Id], Count> {
  return db.prepare<Id, Count>(
    `SELECT EXISTS (SELECT 1 FROM requests WHERE id = @id) AS known, (${from}) AS n`,
  );
}

type MetaRow = {
  tokenHash: string | null;
  backend: string | null;
  label: string | null;
  config: string | null;
};

function metaRow(meta: NewRequestMeta): MetaRow {
  if (meta === null || typeof meta !== 'object') {
    throw new StorageError('INVALID_ARGUMENT', `meta must be an object, got ${describe(meta)}.`);
  }
  const { tokenHash = null, backend = null, label = null, config } = meta;
  if (tokenHash !== null && (typeof tokenHash !== 'string' || !SHA256_HEX.test(tokenHash))) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      'meta.tokenHash must be a SHA-256 digest as 64 lowercase hex digits; store the hash, never the token.',
    );
  }
  for (const [name, value] of [
    ['backend', backend],
    ['label', label],
  ] as const) {
    if (value !== null && typeof value !== 'string') {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `meta.${name} must be a string, got ${describe(value)}.`,
      );
    }
  }
  let configJson: string | null = null;
  if (config !== undefined && config !== null) {
    try {
      configJson = JSON.stringify(config) ?? null;
    } catch (cause) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `meta.config must be JSON-serialisable: ${errorMessage(cause)}.`,
        { cause },
      );
    }
  }
  return { tokenHash, backend, label, config: configJson };
}

/**
 * Switches the file to WAL. On a new file that other processes are opening at the same moment,
 * SQLite answers SQLITE_BUSY at once, without its busy handler, so wait and retry here.
 */
function enableWal(db: Database.Database): void {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      const busy = error instanceof Database.SqliteError && error.code.startsWith('SQLITE_BUSY');
      if (!busy || Date.now() > deadline) throw error;
      sleep(5 + Math.random() * 20);
    }
  }
}

/** Blocks the thread: the Storage API is synchronous, like better-sqlite3's own busy wait. */
function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * A submission's job indexes as JSON: `{"from":1,"to":N}` for the usual 1..N (a million indexes
 * would otherwise be megabytes of text read on every look), else the array.
 */
function stringifyIndices(indices: readonly number[]): string {
  const n = indices.length;
  if (n > 1 && indices.every((index, i) => index === i + 1))
    return JSON.stringify({ from: 1, to: n });
  return JSON.stringify(indices);
}

function parseIndices(text: string): number[] {
  const parsed = JSON.parse(text) as number[] | { from: number; to: number };
  if (Array.isArray(parsed)) return parsed;
  return Array.from({ length: parsed.to - parsed.from + 1 }, (_, i) => parsed.from + i);
}

function emptyStates(): Record<TaskState, number> {
  return Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
}

function unknownRequest(requestId: number, dbfile: string): StorageError {
  return new StorageError(
    'UNKNOWN_REQUEST',
    `no request ${requestId} in ${dbfile}; check the request id and the dbfile it was created in.`,
  );
}

function assertId(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${name} must be a positive safe integer, got ${describe(value)}.`,
    );
  }
}

function assertBytes(name: string, value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${name} must be a Uint8Array of serialised bytes, got ${describe(value)}.`,
    );
  }
}

/** better-sqlite3 binds only Buffers as blobs; wrap without copying. */
function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** A plain Uint8Array view of the Buffer better-sqlite3 returned, without copying. */
function toBytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    return `${typeof value} ${String(value)}`;
  }
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return typeof value;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
