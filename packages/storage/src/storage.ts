import { Connection } from './internal/connection.js';
import { Jobs } from './internal/jobs.js';
import { Leases } from './internal/leases.js';
import { Queries } from './internal/queries.js';
import { Requests } from './internal/requests.js';
import type { TaskKey } from './internal/statements.js';
import { TaskStates } from './internal/task-state.js';
import * as check from './internal/validation.js';
import type { TaskState } from './schema.js';
import { StorageError } from './storage-error.js';
import type {
  ArgsAndError,
  ArgsAndResult,
  JobRecord,
  LeasedTask,
  LeaseOptions,
  NewRequestMeta,
  Outcome,
  OutcomeStatus,
  RequestSummary,
  TaskDetails,
  TaskOutcome,
  TaskStateRow,
} from './types.js';

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
  readonly #c: Connection;
  readonly #requests: Requests;
  readonly #jobs: Jobs;
  readonly #tasks: TaskStates;
  readonly #leases: Leases;
  readonly #queries: Queries;
  #closed = false;

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
        `dbfile must be a non-empty path string, got ${check.describe(dbfile)}.`,
      );
    }
    this.dbfile = dbfile;
    this.#c = new Connection(dbfile);
    this.#requests = new Requests(this.#c);
    this.#jobs = new Jobs(this.#c);
    this.#tasks = new TaskStates(this.#c);
    this.#leases = new Leases(this.#c);
    this.#queries = new Queries(this.#c);
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
    this.#c.migrate();
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
   * @param meta - token hash, backend, label, config, max attempts and port to keep with it
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
    return this.#requests.create(
      check.bytes('func', func),
      check.bytes('ns', ns),
      check.iterable(argsList),
      check.requestFields(meta),
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
    check.bytes('func', func);
    check.bytes('ns', ns);
    const chunkSize = check.id('chunkSize', options.chunkSize ?? 10_000);
    check.argsSource(argsList);
    return this.#requests.createAsync(func, ns, argsList, check.requestFields(meta), chunkSize);
  }

  /**
   * One task's state, reason, and its result or error payload (`null` when it has none).
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST`, `UNKNOWN_TASK` or `INVALID_ARGUMENT`
   */
  getOutcome(requestId: number, jobIndex: number): TaskOutcome {
    return this.#queries.outcome(this.#key(requestId, jobIndex));
  }

  /**
   * Every task's result payload in job-index order, `null` where none is stored: what a caller
   * collecting results needs, without reading the arguments back.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getResultList(requestId: number): (Uint8Array | null)[] {
    return this.#queries.resultList(this.#id(requestId));
  }

  /**
   * {@link Storage.getResultList} one result at a time, read as it is consumed: for 10^6 tasks
   * the payloads need not all be in memory at once. While it iterates, this connection reads
   * nothing else (better-sqlite3 keeps it busy); use the results, then the storage.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT` (on the first step)
   */
  *iterateResultList(requestId: number): Generator<Uint8Array | null, void, undefined> {
    yield* this.#queries.iterateResultList(this.#id(requestId));
  }

  /**
   * What a worker needs to run one task.
   *
   * @returns `[func, ns, args]`
   * @throws {@link StorageError} `UNKNOWN_REQUEST`, `UNKNOWN_TASK` or `INVALID_ARGUMENT`
   */
  getDetails(requestId: number, jobIndex: number): TaskDetails {
    return this.#requests.details(this.#key(requestId, jobIndex));
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
    return this.#tasks.storeResult(this.#key(requestId, jobIndex), check.bytes('result', result));
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
    return this.#tasks.storeError(this.#key(requestId, jobIndex), check.bytes('error', error));
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
    return this.#tasks.markRunning(this.#key(requestId, jobIndex));
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
    return this.#leases.lease(this.#id(requestId), check.leaseOptions(options));
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
    const id = this.#id(requestId);
    return this.#leases.renew(id, check.chunkIndices(indices), check.leaseMs(leaseMs));
  }

  /**
   * When the earliest lease of the request's running tasks runs out (ms since the epoch), or
   * `null` when no leased task is running: a worker that found nothing to lease waits until then
   * instead of leaving a dead worker's chunk to nobody.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  nextLeaseExpiry(requestId: number): number | null {
    return this.#leases.nextExpiry(this.#id(requestId));
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
    return this.#tasks.storeOutcomes(this.#id(requestId), check.outcomes(items));
  }

  /**
   * The request's function and namespace payloads, which every task shares.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getCode(requestId: number): [func: Uint8Array, ns: Uint8Array] {
    return this.#requests.code(this.#id(requestId));
  }

  /**
   * @returns the number of tasks of the request
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  countTasks(requestId: number): number {
    return this.#queries.countTasks(this.#id(requestId));
  }

  /**
   * @returns the number of results stored so far for the request
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  countResults(requestId: number): number {
    return this.#queries.countResults(this.#id(requestId));
  }

  /**
   * @returns the number of errors stored so far for the request
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  countErrors(requestId: number): number {
    return this.#queries.countErrors(this.#id(requestId));
  }

  /**
   * Results plus errors: the request is finished when this equals {@link Storage.countTasks}
   * (a task with both a result and an error counts twice; the server never produces that).
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  countResultsAndErrors(requestId: number): number {
    return this.#queries.countResultsAndErrors(this.#id(requestId));
  }

  /**
   * `[args, result]` for every task that has a result, in job-index order; tasks without a
   * result are left out, so the list may be shorter than the request.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getResults(requestId: number): ArgsAndResult[] {
    return this.#queries.results(this.#id(requestId));
  }

  /**
   * `[args, result]` for every task in job-index order, with `null` where no result is stored.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getTasksWithResults(requestId: number): [args: Uint8Array, result: Uint8Array | null][] {
    return this.#queries.tasksWithResults(this.#id(requestId));
  }

  /**
   * `[args, error, jobIndex]` for every failed task, in job-index order: a task has an error
   * exactly while it is `failed` (reopening it for a retry deletes the error).
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getErrors(requestId: number): ArgsAndError[] {
    return this.#queries.errors(this.#id(requestId));
  }

  /**
   * The SHA-256 (hex) of the request's worker token, or `null` if it was created without one.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getTokenHash(requestId: number): string | null {
    return this.#requests.tokenHash(this.#id(requestId));
  }

  /**
   * Every worker token hash the request accepts: the one it was created with (when it has one),
   * then those added by {@link Storage.addTokenHash}, oldest first.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getTokenHashes(requestId: number): string[] {
    return this.#requests.tokenHashes(this.#id(requestId));
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
    this.#requests.addTokenHash(this.#id(requestId), check.tokenHash('tokenHash', tokenHash));
  }

  /**
   * One request with its per-state task counts.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getRequest(requestId: number): RequestSummary {
    return this.#queries.request(this.#id(requestId));
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
    return this.#queries.openIndices(this.#id(requestId));
  }

  /**
   * Whether any task of the request is pending or running: one index probe, however many tasks
   * the request has, so a waiter can ask after every batch of results.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  hasOpenTasks(requestId: number): boolean {
    return this.#queries.hasOpenTasks(this.#id(requestId));
  }

  /**
   * Every task's state, attempt count and the reason it was lost or cancelled, in job-index order.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getTaskStates(requestId: number): TaskStateRow[] {
    return this.#queries.taskStates(this.#id(requestId));
  }

  /**
   * Marks a pending or running task lost: it ended without a result or an error. A result that
   * arrives later is still accepted once (the task becomes done).
   *
   * @returns `true` if the task was open and is now lost, `false` if it had already finished
   * @throws {@link StorageError} `UNKNOWN_REQUEST`, `UNKNOWN_TASK` or `INVALID_ARGUMENT`
   */
  markLost(requestId: number, jobIndex: number, reason: string): boolean {
    return this.#tasks.markLost(this.#key(requestId, jobIndex), reason);
  }

  /**
   * Marks every pending or running task of the request cancelled; later results and errors for
   * them are refused with `TASK_CANCELLED`.
   *
   * @returns how many tasks were cancelled
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  markCancelled(requestId: number, reason: string): number {
    return this.#tasks.markCancelled(this.#id(requestId), reason);
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
    return this.#tasks.reopen(this.#id(requestId), check.jobIndexes(indices));
  }

  /**
   * Records a scheduler submission of the request, so a later process can re-attach to it.
   *
   * @returns the submission's row id
   * @throws {@link StorageError} `UNKNOWN_REQUEST`, `INVALID_ARGUMENT`
   */
  addJob(requestId: number, job: JobRecord): number {
    return this.#jobs.add(this.#id(requestId), job);
  }

  /**
   * The request's scheduler submissions, oldest first.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  getJobs(requestId: number): JobRecord[] {
    return this.#jobs.list(this.#id(requestId));
  }

  /**
   * How many submissions the request has: cheap, so a waiting process can notice one made by
   * another process without reading them all.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  countJobs(requestId: number): number {
    return this.#jobs.count(this.#id(requestId));
  }

  /**
   * Job indexes of the request's tasks in any of `states`, ascending.
   *
   * @throws {@link StorageError} `UNKNOWN_REQUEST` or `INVALID_ARGUMENT`
   */
  indicesInState(requestId: number, states: readonly TaskState[]): number[] {
    return this.#queries.indicesInState(this.#id(requestId), check.states(states));
  }

  /** Every request in the file, oldest first, with per-state task counts. */
  listRequests(): RequestSummary[] {
    this.#assertOpen();
    return this.#queries.summaries();
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
    const run = this.#c.db.transaction(check.work(work));
    return this.#c.guard('transaction', () => run.immediate());
  }

  /** Closes the database connection. Idempotent; any other method then throws `CLOSED`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#c.close();
  }

  #key(requestId: number, jobIndex: number): TaskKey {
    return { requestId: this.#id(requestId), jobIndex: check.id('jobIndex', jobIndex) };
  }

  #id(requestId: number): number {
    this.#assertOpen();
    return check.id('requestId', requestId);
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new StorageError(
        'CLOSED',
        `the storage for ${this.dbfile} is closed; create a new Storage to use the file again.`,
      );
    }
  }
}
