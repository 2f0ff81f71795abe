// @sheepdog/storage depends on no other package, so it keeps its own list of task states and
// outcome statuses; the server is where the ledger meets the wire, and checks they agree.
import {
  OUTCOME_STATUSES,
  type OutcomeStatus,
  TASK_STATES,
  type TaskState,
} from '@sheepdog/protocol';
import {
  TASK_STATES as STORED_TASK_STATES,
  type OutcomeStatus as StoredOutcomeStatus,
  type TaskState as StoredTaskState,
} from '@sheepdog/storage';
import { describe, expect, it } from 'vitest';

/** `true` only when A and B are the same union. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

describe('storage and the protocol', () => {
  it('name the same task states, in the same order', () => {
    expect(STORED_TASK_STATES).toEqual(TASK_STATES);
    const states: Same<StoredTaskState, TaskState> = true;
    expect(states).toBe(true);
  });

  it('name the same outcome statuses', () => {
    const statuses: Same<StoredOutcomeStatus, OutcomeStatus> = true;
    expect(statuses).toBe(true);
    expect(OUTCOME_STATUSES).toEqual(['stored', 'duplicate', 'cancelled', 'unknown']);
  });
});
