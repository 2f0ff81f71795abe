/**
 * Every hand-written SQL statement of a connection, prepared once and grouped by the concern
 * that runs it. Storage runs all its queries through these, on better-sqlite3 directly:
 * Drizzle's builder costs several µs per call, which matters for 10^6 task inserts and for the
 * lease hot path. Table and column names follow ../schema.ts; the tests run every statement
 * against a migrated database.
 * @module
 */
import type Database from 'better-sqlite3';
import type { TaskState } from '../schema.js';
import type { RequestSummary, TaskStateRow } from '../types.js';

/** Named parameter of every statement that looks at one request. */
export type Id = { id: number };
/** Named parameters of every statement that looks at one task. */
export type TaskKey = { requestId: number; jobIndex: number };
/** Parameters of storing one result or error. */
export type StoreParams = TaskKey & { payload: Buffer; now: number };
/** `known` tells an unknown request (an error) from one with nothing counted yet. */
export type Count = { known: 0 | 1; n: number };
/** A row of `requests` as a {@link RequestSummary} shows it, before `config` is parsed. */
export type RequestRow = Omit<RequestSummary, 'config' | 'states'> & { config: string | null };
/** A row of `jobs`, as stored and read back. */
export type JobRow = {
  requestId: number;
  backend: string;
  jobId: string | null;
  submittedAt: number;
  indices: string;
  meta: string | null;
};
/** What `newRequest` stores in the request row besides the payloads. */
export type RequestFields = {
  tokenHash: string | null;
  backend: string | null;
  label: string | null;
  config: string | null;
  maxAttempts: number | null;
  port: number | null;
};

/** Tasks per multi-row INSERT (4 parameters each, well under SQLite's limit of 32,766). */
export const TASK_BATCH = 256;

/**
 * What Storage runs on a prepared statement: better-sqlite3's own object, typed by its
 * parameters `P` (a tuple; named parameters are one object) and rows `R`.
 */
export interface Statement<P extends unknown[], R = unknown> {
  run(...params: P): Database.RunResult;
  get(...params: P): R | undefined;
  all(...params: P): R[];
  iterate(...params: P): IterableIterator<R>;
}

/** Prepares `sql`; `raw` returns rows as arrays, `pluck` the first column only. */
function prepare<P extends unknown[], R = unknown>(
  db: Database.Database,
  sql: string,
  mode?: 'raw' | 'pluck',
): Statement<P, R> {
  const statement = db.prepare<P, R>(sql);
  if (mode === 'raw') statement.raw();
  if (mode === 'pluck') statement.pluck();
  return statement;
}

/** A `count(*)` with `known`, so one query answers both the count and whether the id exists. */
function count(db: Database.Database, from: string): Statement<[Id], Count> {
  return prepare<[Id], Count>(
    db,
    `SELECT EXISTS (SELECT 1 FROM requests WHERE id = @id) AS known, (${from}) AS n`,
  );
}

/** Whether a request or a task exists: what every "unknown id" answer rests on. */
function lookups(db: Database.Database) {
  return {
    requestExists: prepare<[Id], number>(db, 'SELECT 1 FROM requests WHERE id = @id', 'pluck'),
    taskExists: prepare<[TaskKey], number>(
      db,
      'SELECT 1 FROM tasks WHERE request_id = @requestId AND job_index = @jobIndex',
      'pluck',
    ),
    taskState: prepare<[TaskKey], TaskState>(
      db,
      'SELECT state FROM tasks WHERE request_id = @requestId AND job_index = @jobIndex',
      'pluck',
    ),
    countTasks: count(db, 'SELECT count(*) FROM tasks WHERE request_id = @id'),
  };
}

/** Creating requests and reading what they were created with. */
function requests(db: Database.Database) {
  return {
    insertRequest: prepare<
      [
        number,
        Buffer,
        Buffer,
        string | null,
        string | null,
        string | null,
        string | null,
        number | null,
        number | null,
      ]
    >(
      db,
      `INSERT INTO requests
         (created_at, func, ns, token_hash, n_tasks, backend, label, config, max_attempts, port)
       VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?)`,
    ),
    insertTask: prepare<[number, number, Buffer, number]>(
      db,
      'INSERT INTO tasks (request_id, job_index, args, updated_at) VALUES (?, ?, ?, ?)',
    ),
    insertTasks: prepare<[(number | Buffer)[]]>(
      db,
      `INSERT INTO tasks (request_id, job_index, args, updated_at) VALUES ${Array(TASK_BATCH).fill('(?, ?, ?, ?)').join(', ')}`,
    ),
    setTaskCount: prepare<[number, number]>(db, 'UPDATE requests SET n_tasks = ? WHERE id = ?'),
    deleteRequest: prepare<[Id]>(db, 'DELETE FROM requests WHERE id = @id'),
    getDetails: prepare<[TaskKey], [Buffer, Buffer, Buffer]>(
      db,
      `SELECT r.func, r.ns, t.args FROM tasks t JOIN requests r ON r.id = t.request_id
         WHERE t.request_id = @requestId AND t.job_index = @jobIndex`,
      'raw',
    ),
    getCode: prepare<[Id], [Buffer, Buffer]>(
      db,
      'SELECT func, ns FROM requests WHERE id = @id',
      'raw',
    ),
    // An unknown request has no row at all, a request without a token one whose value is null.
    tokenHash: prepare<[Id], { tokenHash: string | null }>(
      db,
      'SELECT token_hash AS tokenHash FROM requests WHERE id = @id',
    ),
    tokenHashes: prepare<[Id], string>(
      db,
      'SELECT token_hash FROM request_tokens WHERE request_id = @id ORDER BY id',
      'pluck',
    ),
    insertTokenHash: prepare<[Id & { tokenHash: string; now: number }]>(
      db,
      `INSERT INTO request_tokens (request_id, token_hash, created_at)
       VALUES (@id, @tokenHash, @now)`,
    ),
  };
}

/** Scheduler submissions of a request. */
function jobs(db: Database.Database) {
  return {
    insertJob: prepare<[JobRow]>(
      db,
      `INSERT INTO jobs (request_id, backend, job_id, submitted_at, indices, meta)
       VALUES (@requestId, @backend, @jobId, @submittedAt, @indices, @meta)`,
    ),
    getJobs: prepare<[Id], JobRow>(
      db,
      `SELECT request_id AS requestId, backend, job_id AS jobId, submitted_at AS submittedAt,
              indices, meta FROM jobs WHERE request_id = @id ORDER BY id`,
    ),
    countJobs: count(db, 'SELECT count(*) FROM jobs WHERE request_id = @id'),
  };
}

/** Moving tasks between states and storing their outcomes. */
function taskState(db: Database.Database) {
  return {
    // INSERT ... SELECT FROM tasks stores nothing for an unknown task, and ON CONFLICT DO NOTHING
    // keeps the first result: a repeat changes 0 rows, never a second row or a new value.
    insertResult: prepare<[StoreParams]>(
      db,
      `INSERT INTO results (request_id, job_index, result, attempt, created_at)
       SELECT request_id, job_index, @payload, attempts, @now FROM tasks
       WHERE request_id = @requestId AND job_index = @jobIndex AND state <> 'cancelled'
       ON CONFLICT (request_id, job_index) DO NOTHING`,
    ),
    insertError: prepare<[StoreParams]>(
      db,
      `INSERT INTO errors (request_id, job_index, error, attempt, created_at)
       SELECT request_id, job_index, @payload, attempts, @now FROM tasks
       WHERE request_id = @requestId AND job_index = @jobIndex
         AND state NOT IN ('cancelled', 'done')
       ON CONFLICT (request_id, job_index) DO NOTHING`,
    ),
    markDone: prepare<[TaskKey & { now: number }]>(
      db,
      `UPDATE tasks SET state = 'done', updated_at = @now
       WHERE request_id = @requestId AND job_index = @jobIndex`,
    ),
    // A task that already has a result stays done even if an error arrives later.
    markFailed: prepare<[TaskKey & { now: number }]>(
      db,
      `UPDATE tasks SET state = 'failed', updated_at = @now
       WHERE request_id = @requestId AND job_index = @jobIndex AND state <> 'done'`,
    ),
    markRunning: prepare<[TaskKey & { now: number }]>(
      db,
      `UPDATE tasks SET state = 'running', attempts = attempts + 1, updated_at = @now
       WHERE request_id = @requestId AND job_index = @jobIndex
         AND state IN ('pending', 'running', 'lost')`,
    ),
    markLost: prepare<[TaskKey & { now: number; reason: string }]>(
      db,
      `UPDATE tasks SET state = 'lost', reason = @reason, updated_at = @now
       WHERE request_id = @requestId AND job_index = @jobIndex AND state IN ('pending', 'running')`,
    ),
    markCancelled: prepare<[Id & { now: number; reason: string }]>(
      db,
      `UPDATE tasks SET state = 'cancelled', reason = @reason, updated_at = @now
       WHERE request_id = @id AND state IN ('pending', 'running')`,
    ),
    reopenTask: prepare<[TaskKey & { now: number }]>(
      db,
      `UPDATE tasks SET state = 'pending', reason = NULL, updated_at = @now
       WHERE request_id = @requestId AND job_index = @jobIndex AND state IN ('lost', 'failed')`,
    ),
    deleteError: prepare<[TaskKey]>(
      db,
      'DELETE FROM errors WHERE request_id = @requestId AND job_index = @jobIndex',
    ),
    batchStates: prepare<[Id & { indices: string }], [number, TaskState, number]>(
      db,
      `SELECT job_index, state, attempts FROM tasks
         WHERE request_id = @id AND job_index IN (SELECT value FROM json_each(@indices))`,
      'raw',
    ),
    insertResultRow: prepare<[number, number, Buffer, number, number]>(
      db,
      `INSERT INTO results (request_id, job_index, result, attempt, created_at)
       VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_id, job_index) DO NOTHING`,
    ),
    insertErrorRow: prepare<[number, number, Buffer, number, number]>(
      db,
      `INSERT INTO errors (request_id, job_index, error, attempt, created_at)
       VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_id, job_index) DO NOTHING`,
    ),
    markManyDone: prepare<[Id & { now: number; indices: string }]>(
      db,
      `UPDATE tasks SET state = 'done', updated_at = @now
       WHERE request_id = @id AND job_index IN (SELECT value FROM json_each(@indices))`,
    ),
    markManyFailed: prepare<[Id & { now: number; indices: string }]>(
      db,
      `UPDATE tasks SET state = 'failed', updated_at = @now
       WHERE request_id = @id AND job_index IN (SELECT value FROM json_each(@indices))
         AND state <> 'done'`,
    ),
  };
}

/** Handing out tasks under a lease, renewing and timing the leases. */
function leases(db: Database.Database) {
  return {
    leasePending: prepare<[Id & { max: number }], [number, Buffer, number]>(
      db,
      `SELECT job_index, args, attempts FROM tasks WHERE request_id = @id AND state = 'pending'
         ORDER BY job_index LIMIT @max`,
      'raw',
    ),
    leaseExpired: prepare<[Id & { max: number; now: number }], [number, Buffer, number]>(
      db,
      `SELECT job_index, args, attempts FROM tasks WHERE request_id = @id AND state = 'running'
           AND lease_until IS NOT NULL AND lease_until <= @now
         ORDER BY job_index LIMIT @max`,
      'raw',
    ),
    markLeased: prepare<[Id & { now: number; until: number; indices: string }]>(
      db,
      `UPDATE tasks SET state = 'running', attempts = attempts + 1, lease_until = @until,
         updated_at = @now
       WHERE request_id = @id AND job_index IN (SELECT value FROM json_each(@indices))`,
    ),
    renewLeases: prepare<[Id & { now: number; until: number; indices: string }], number>(
      db,
      `UPDATE tasks SET lease_until = @until, updated_at = @now
         WHERE request_id = @id AND state = 'running' AND lease_until IS NOT NULL
           AND job_index IN (SELECT value FROM json_each(@indices))
         RETURNING job_index`,
      'pluck',
    ),
    nextLeaseExpiry: prepare<[Id], number | null>(
      db,
      `SELECT min(lease_until) FROM tasks WHERE request_id = @id AND state = 'running'
           AND lease_until IS NOT NULL`,
      'pluck',
    ),
  };
}

/** Reading a request's progress and outcomes. */
function queries(db: Database.Database) {
  const requestColumns = `id, created_at AS createdAt, n_tasks AS nTasks, backend, label, status,
    config, max_attempts AS maxAttempts, port FROM requests`;
  return {
    countResults: count(db, 'SELECT count(*) FROM results WHERE request_id = @id'),
    countErrors: count(db, 'SELECT count(*) FROM errors WHERE request_id = @id'),
    countResultsAndErrors: count(
      db,
      `SELECT (SELECT count(*) FROM results WHERE request_id = @id)
            + (SELECT count(*) FROM errors WHERE request_id = @id)`,
    ),
    request: prepare<[Id], RequestRow>(db, `SELECT ${requestColumns} WHERE id = @id`),
    allRequests: prepare<[], RequestRow>(db, `SELECT ${requestColumns} ORDER BY id`),
    // Served by the (request_id, state) index without touching the task rows.
    stateCounts: prepare<[Id], [number, TaskState, number]>(
      db,
      'SELECT request_id, state, count(*) FROM tasks WHERE request_id = @id GROUP BY state',
      'raw',
    ),
    allStateCounts: prepare<[], [number, TaskState, number]>(
      db,
      'SELECT request_id, state, count(*) FROM tasks GROUP BY request_id, state',
      'raw',
    ),
    getOutcome: prepare<
      [TaskKey],
      { state: TaskState; reason: string | null; result: Buffer | null; error: Buffer | null }
    >(
      db,
      `SELECT t.state, t.reason, r.result, e.error FROM tasks t
       LEFT JOIN results r ON r.request_id = t.request_id AND r.job_index = t.job_index
       LEFT JOIN errors e ON e.request_id = t.request_id AND e.job_index = t.job_index
       WHERE t.request_id = @requestId AND t.job_index = @jobIndex`,
    ),
    getResultList: prepare<[Id], Buffer | null>(
      db,
      `SELECT r.result FROM tasks t
         LEFT JOIN results r ON r.request_id = t.request_id AND r.job_index = t.job_index
         WHERE t.request_id = @id ORDER BY t.job_index`,
      'pluck',
    ),
    getResults: prepare<[Id], [Buffer, Buffer]>(
      db,
      `SELECT t.args, r.result FROM results r
         JOIN tasks t ON t.request_id = r.request_id AND t.job_index = r.job_index
         WHERE r.request_id = @id ORDER BY r.job_index`,
      'raw',
    ),
    getTasksWithResults: prepare<[Id], [Buffer, Buffer | null]>(
      db,
      `SELECT t.args, r.result FROM tasks t
         LEFT JOIN results r ON r.request_id = t.request_id AND r.job_index = t.job_index
         WHERE t.request_id = @id ORDER BY t.job_index`,
      'raw',
    ),
    getErrors: prepare<[Id], [Buffer, Buffer, number]>(
      db,
      `SELECT t.args, e.error, e.job_index FROM errors e
         JOIN tasks t ON t.request_id = e.request_id AND t.job_index = e.job_index
         WHERE e.request_id = @id ORDER BY e.job_index`,
      'raw',
    ),
    hasOpen: prepare<[Id], number>(
      db,
      `SELECT 1 FROM tasks WHERE request_id = @id AND state IN ('pending', 'running') LIMIT 1`,
      'pluck',
    ),
    openIndices: prepare<[Id], number>(
      db,
      `SELECT job_index FROM tasks WHERE request_id = @id AND state IN ('pending', 'running')
         ORDER BY job_index`,
      'pluck',
    ),
    taskStates: prepare<[Id], TaskStateRow>(
      db,
      `SELECT job_index AS jobIndex, state, attempts, reason FROM tasks
       WHERE request_id = @id ORDER BY job_index`,
    ),
    indicesInState: prepare<[Id & { states: string }], number>(
      db,
      `SELECT job_index FROM tasks WHERE request_id = @id
           AND state IN (SELECT value FROM json_each(@states))
         ORDER BY job_index`,
      'pluck',
    ),
  };
}

/** The prepared statements of one connection, by concern. */
export interface Statements {
  readonly lookups: ReturnType<typeof lookups>;
  readonly requests: ReturnType<typeof requests>;
  readonly jobs: ReturnType<typeof jobs>;
  readonly taskState: ReturnType<typeof taskState>;
  readonly leases: ReturnType<typeof leases>;
  readonly queries: ReturnType<typeof queries>;
}

/** Prepares every hand-written statement once per connection. */
export function prepareStatements(db: Database.Database): Statements {
  return {
    lookups: lookups(db),
    requests: requests(db),
    jobs: jobs(db),
    taskState: taskState(db),
    leases: leases(db),
    queries: queries(db),
  };
}
