/**
 * The JSON bodies of wire protocol v1, both ways. Binary payloads (functions, namespaces,
 * arguments, results) travel as base64 strings in JSON and as raw bytes elsewhere.
 * @module
 */
import type { OutcomeStatus } from './states.js';
import type { WireErrorCode } from './wire-errors.js';

/** Longest lease a worker may ask for, in ms: a day. */
export const MAX_LEASE_MS = 24 * 60 * 60 * 1000;

/** Most tasks one lease may ask for, and most leases one renewal may name. */
export const MAX_LEASE_TASKS = 10_000;

/** Most items of a JSON outcome batch ({@link JsonOutcome}). */
export const MAX_JSON_OUTCOMES = 100_000;

/** `GET` `task`: what one task needs, each payload base64. */
export interface TaskAnswer {
  /** The function payload. */
  readonly func: string;
  /** The namespace payload. */
  readonly ns: string;
  /** The arguments payload. */
  readonly args: string;
}

/** `POST` `result` or `error`: whether the report was stored. */
export interface SubmitAnswer {
  /** True when the server took the report. */
  ok: boolean;
  /** True when this task had already reported; the first report wins. */
  duplicate: boolean;
}

/** `POST` `lease`: take up to `max` tasks for `leaseMs`. */
export interface LeaseBody {
  /** How many tasks at most, 1 to {@link MAX_LEASE_TASKS}. */
  readonly max: number;
  /** How long the server keeps them for this worker without a renewal, 1 to {@link MAX_LEASE_MS}. */
  readonly leaseMs: number;
  /** Send the request's function and namespace too: a worker's first lease asks for them. */
  readonly withCode?: boolean;
}

/** One leased task: its job index and its arguments payload (base64). */
export interface LeaseAnswerTask {
  /** The task's job index (1..N). */
  readonly jobIndex: number;
  /** The arguments payload, base64. */
  readonly args: string;
}

/** The answer to a {@link LeaseBody}. */
export interface LeaseAnswer {
  /** The function payload (base64), when the lease asked `withCode`. */
  func?: string;
  /** The namespace payload (base64), when the lease asked `withCode`. */
  ns?: string;
  /** The leased tasks, in job-index order; empty when none is left to lease. */
  tasks: LeaseAnswerTask[];
  /**
   * With no tasks: other workers' leases are still out, and the first runs out in this many ms
   * (its worker may have died). Absent when nothing is left at all.
   */
  retryAfterMs?: number;
}

/** `POST` `renew`: keep holding these tasks for another `leaseMs`. */
export interface RenewBody {
  /** Job indices this worker is still at; at most {@link MAX_LEASE_TASKS}. */
  readonly indices: readonly number[];
  /** The new lease, from now, 1 to {@link MAX_LEASE_MS}. */
  readonly leaseMs: number;
}

/** The answer to a {@link RenewBody}. */
export interface RenewAnswer {
  /** The indices whose lease was renewed: those the worker still held. */
  renewed: number[];
}

/**
 * One item of a `results` batch sent as `application/json` instead of outcome frames: exactly
 * one of `result` and `error`, base64.
 */
export interface JsonOutcome {
  /** The task's job index (1..N). */
  readonly jobIndex: number;
  /** The result payload, base64. */
  readonly result?: string;
  /** The error's stack as UTF-8 text, base64. */
  readonly error?: string;
}

/** The answer to a `results` batch: what became of each item, in order. */
export interface ResultsAnswer {
  /** True when the batch was read. */
  ok: boolean;
  /** One status per item. */
  statuses: OutcomeStatus[];
}

/** The body of every non-2xx answer. */
export interface WireErrorBody {
  /** What went wrong: a code from `WIRE_ERROR_CODES`, and words for a person. */
  error: { code: WireErrorCode; message: string };
}
