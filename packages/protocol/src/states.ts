/**
 * Task states as they cross the wire.
 * @module
 */

/**
 * States a task moves through. `@sheepdog/storage` keeps the ledger's own copy (it depends on
 * no other package); the server's tests check that the two lists are the same.
 */
export const TASK_STATES = ['pending', 'running', 'done', 'failed', 'lost', 'cancelled'] as const;

/** One state from {@link TASK_STATES}. */
export type TaskState = (typeof TASK_STATES)[number];

/**
 * What became of one outcome of a `results` batch: `stored` (the task's first outcome),
 * `duplicate` (it had one already; nothing changed), `cancelled` (the task was cancelled;
 * refused), `unknown` (no such task). Storage's `storeOutcomes` answers with these; the server's
 * tests check that its type names the same ones.
 */
export const OUTCOME_STATUSES = ['stored', 'duplicate', 'cancelled', 'unknown'] as const;

/** One status from {@link OUTCOME_STATUSES}. */
export type OutcomeStatus = (typeof OUTCOME_STATUSES)[number];
