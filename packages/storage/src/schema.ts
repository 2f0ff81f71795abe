/**
 * The Drizzle schema of a Sheepdog database: the single source of truth for its tables.
 * Migrations in `../drizzle` are generated from this file with `pnpm generate` (drizzle-kit).
 *
 * Hand-written SQL in `internal/statements.ts` names these tables and columns too; the tests run
 * every statement against a migrated database, so a rename here that is not carried over fails
 * them.
 * @module
 */
import {
  blob,
  foreignKey,
  index,
  integer,
  sqliteTable,
  text,
  uniqueIndex,
} from 'drizzle-orm/sqlite-core';

/** States a task moves through; stored as text in `tasks.state`. */
export const TASK_STATES = ['pending', 'running', 'done', 'failed', 'lost', 'cancelled'] as const;

/** One state from {@link TASK_STATES}. */
export type TaskState = (typeof TASK_STATES)[number];

/**
 * One row per `map` call: the function and namespace every task of the request shares.
 * `token_hash` is the SHA-256 (hex) of the request's worker token; `config` is JSON.
 * `max_attempts` and `port` are typed so that a reader needs no knowledge of `config`'s shape;
 * migration 0003 filled them in for files made before they existed.
 */
export const requests = sqliteTable('requests', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  createdAt: integer('created_at').notNull(),
  func: blob('func', { mode: 'buffer' }).notNull(),
  ns: blob('ns', { mode: 'buffer' }).notNull(),
  tokenHash: text('token_hash'),
  nTasks: integer('n_tasks').notNull(),
  backend: text('backend'),
  label: text('label'),
  config: text('config'),
  status: text('status').notNull().default('active'),
  /** How many times a task may be attempted (1 + retries); `null`: no limit. */
  maxAttempts: integer('max_attempts'),
  /** The port the request's workers report to, `null` when not known. */
  port: integer('port'),
});

/** One row per argument list entry; `job_index` runs 1..N in argument order. */
export const tasks = sqliteTable(
  'tasks',
  {
    id: integer('id').primaryKey(),
    requestId: integer('request_id')
      .notNull()
      .references(() => requests.id, { onDelete: 'cascade' }),
    jobIndex: integer('job_index').notNull(),
    args: blob('args', { mode: 'buffer' }).notNull(),
    state: text('state', { enum: TASK_STATES }).notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    reason: text('reason'),
    updatedAt: integer('updated_at').notNull(),
    /**
     * When a leased task's lease runs out (ms since the epoch); `null` for a task fetched one at
     * a time, which never returns to the pool by itself.
     */
    leaseUntil: integer('lease_until'),
  },
  (t) => [
    uniqueIndex('tasks_request_job_unique').on(t.requestId, t.jobIndex),
    // Progress and status queries count tasks per state within one request; leasing takes the
    // lowest job indexes of one state, which the trailing job_index serves without a sort.
    index('tasks_request_state_job_idx').on(t.requestId, t.state, t.jobIndex),
  ],
);

/** At most one result per task: the first one stored wins (UNIQUE request_id, job_index). */
export const results = sqliteTable(
  'results',
  {
    id: integer('id').primaryKey(),
    requestId: integer('request_id').notNull(),
    jobIndex: integer('job_index').notNull(),
    result: blob('result', { mode: 'buffer' }).notNull(),
    attempt: integer('attempt').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [
    uniqueIndex('results_request_job_unique').on(t.requestId, t.jobIndex),
    foreignKey({
      name: 'results_task_fk',
      columns: [t.requestId, t.jobIndex],
      foreignColumns: [tasks.requestId, tasks.jobIndex],
    }).onDelete('cascade'),
  ],
);

/** At most one error per task (UTF-8 stack text as bytes); the first one stored wins. */
export const errors = sqliteTable(
  'errors',
  {
    id: integer('id').primaryKey(),
    requestId: integer('request_id').notNull(),
    jobIndex: integer('job_index').notNull(),
    error: blob('error', { mode: 'buffer' }).notNull(),
    attempt: integer('attempt').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [
    uniqueIndex('errors_request_job_unique').on(t.requestId, t.jobIndex),
    foreignKey({
      name: 'errors_task_fk',
      columns: [t.requestId, t.jobIndex],
      foreignColumns: [tasks.requestId, tasks.jobIndex],
    }).onDelete('cascade'),
  ],
);

/**
 * Scheduler submissions (one row per `qsub`/`sbatch`/local launch), kept so a later process can
 * resume, poll or retry a request. `indices` is JSON: an array of job indexes or `{from, to}`.
 */
export const jobs = sqliteTable(
  'jobs',
  {
    id: integer('id').primaryKey(),
    requestId: integer('request_id')
      .notNull()
      .references(() => requests.id, { onDelete: 'cascade' }),
    backend: text('backend').notNull(),
    jobId: text('job_id'),
    submittedAt: integer('submitted_at').notNull(),
    indices: text('indices').notNull(),
    state: text('state').notNull().default('submitted'),
    meta: text('meta'),
  },
  (t) => [index('jobs_request_idx').on(t.requestId)],
);

/**
 * Further worker tokens of a request, minted by a later process (a resume or a retry) that does
 * not know the first one: only their SHA-256 (hex), like `requests.token_hash`. A worker may
 * present the first token or any of these.
 */
export const requestTokens = sqliteTable(
  'request_tokens',
  {
    id: integer('id').primaryKey(),
    requestId: integer('request_id')
      .notNull()
      .references(() => requests.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('request_tokens_request_idx').on(t.requestId)],
);
