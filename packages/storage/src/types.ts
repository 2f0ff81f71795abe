/**
 * The types of {@link Storage}'s arguments and answers.
 * @module
 */
import type { TaskState } from './schema.js';
// For the {@link Storage} links only.
import type { Storage } from './storage.js';

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
  /**
   * How many times each task may be attempted (1 + retries), a safe integer >= 1; `null` sets
   * no limit. Kept for whoever leases the request's tasks (see {@link LeaseOptions.maxAttempts}).
   * @default null
   */
  maxAttempts?: number | null;
  /**
   * The port the request's workers report to, an integer in 1..65535, so that a later process
   * can serve the request again; `null` when there is none.
   * @default null
   */
  port?: number | null;
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
  /** The `maxAttempts` given at creation: attempts allowed per task, `null` for no limit. */
  maxAttempts: number | null;
  /** The `port` given at creation, or `null`. */
  port: number | null;
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

/** One task's outcome, as returned by {@link Storage.getOutcome}. */
export interface TaskOutcome {
  state: TaskState;
  /** Why the task was lost or cancelled, when known. */
  reason: string | null;
  /** The stored result, `null` when it has none. */
  result: Uint8Array | null;
  /** The stored error text (UTF-8 bytes), `null` when it has none. */
  error: Uint8Array | null;
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
