/**
 * Argument checks of the Storage API: each returns what it was given when it is valid, and
 * otherwise throws `INVALID_ARGUMENT` saying what was expected and what came, before anything is
 * read or written, so a rejected call stores nothing. Import it as `check`: `check.id(...)`.
 * @module
 */
import { TASK_STATES, type TaskState } from '../schema.js';
import { StorageError } from '../storage-error.js';
import type { LeaseOptions, NewRequestMeta, Outcome } from '../types.js';
import type { RequestFields } from './statements.js';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Most tasks one lease or one renewal may cover. */
const MAX_CHUNK = 10_000;

/** A short description of what was passed, for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    return `${typeof value} ${String(value)}`;
  }
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return typeof value;
}

/** The message of whatever was thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function invalid(message: string, options?: { cause?: unknown }): StorageError {
  return new StorageError('INVALID_ARGUMENT', message, options);
}

/** A request id, job index or count: a positive safe integer. */
export function id(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw invalid(`${name} must be a positive safe integer, got ${describe(value)}.`);
  }
  return value;
}

/** A payload: a `Uint8Array` (a `Buffer` is one). */
export function bytes(name: string, value: Uint8Array): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw invalid(`${name} must be a Uint8Array of serialised bytes, got ${describe(value)}.`);
  }
  return value;
}

/** The `argsList` of `newRequest`: any iterable. */
export function iterable(argsList: Iterable<Uint8Array>): Iterable<Uint8Array> {
  if (!isIterable(argsList)) {
    throw invalid(`argsList must be an iterable of Uint8Array, got ${describe(argsList)}.`);
  }
  return argsList;
}

/** The `argsList` of `newRequestAsync`: an async iterable or a sync one. */
export function argsSource<T extends AsyncIterable<Uint8Array> | Iterable<Uint8Array>>(
  argsList: T,
): T {
  const isAsync =
    argsList != null &&
    typeof (argsList as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
  if (!isAsync && !isIterable(argsList)) {
    throw invalid(
      `argsList must be an iterable or async iterable of Uint8Array, got ${describe(argsList)}.`,
    );
  }
  return argsList;
}

function isIterable(value: unknown): boolean {
  return value != null && typeof (value as Iterable<unknown>)[Symbol.iterator] === 'function';
}

/** A worker token's SHA-256 as 64 lowercase hex digits; `name` says where it was given. */
export function tokenHash(name: string, value: string): string {
  if (typeof value !== 'string' || !SHA256_HEX.test(value)) {
    throw invalid(
      `${name} must be a SHA-256 digest as 64 lowercase hex digits; store the hash, never the token.`,
    );
  }
  return value;
}

/** An optional integer in `min..max`; `null` and `undefined` become `null`. */
function optionalInteger(name: string, value: unknown, min: number, max: number): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`;
    throw invalid(`${name} must be an integer ${range} or null, got ${describe(value)}.`);
  }
  return value;
}

/** Checks `newRequest`'s `meta` and turns it into the request row's columns. */
export function requestFields(meta: NewRequestMeta): RequestFields {
  if (meta === null || typeof meta !== 'object') {
    throw invalid(`meta must be an object, got ${describe(meta)}.`);
  }
  const { backend = null, label = null, config } = meta;
  const hash = meta.tokenHash == null ? null : tokenHash('meta.tokenHash', meta.tokenHash);
  for (const [name, value] of [
    ['backend', backend],
    ['label', label],
  ] as const) {
    if (value !== null && typeof value !== 'string') {
      throw invalid(`meta.${name} must be a string, got ${describe(value)}.`);
    }
  }
  const maxAttempts = optionalInteger(
    'meta.maxAttempts',
    meta.maxAttempts,
    1,
    Number.MAX_SAFE_INTEGER,
  );
  const port = optionalInteger('meta.port', meta.port, 1, 65_535);
  let configJson: string | null = null;
  if (config !== undefined && config !== null) {
    try {
      configJson = JSON.stringify(config) ?? null;
    } catch (cause) {
      throw invalid(`meta.config must be JSON-serialisable: ${errorMessage(cause)}.`, { cause });
    }
  }
  return { tokenHash: hash, backend, label, config: configJson, maxAttempts, port };
}

/** How long a lease lasts, in ms: a positive integer. */
export function leaseMs(value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw invalid(`leaseMs must be a positive integer, got ${describe(value)}.`);
  }
  return value;
}

/** The options of `leaseTasks`. */
export function leaseOptions(options: LeaseOptions): LeaseOptions {
  const { max, maxAttempts } = options;
  if (!Number.isSafeInteger(max) || max < 1 || max > MAX_CHUNK) {
    throw invalid(`max must be an integer in 1..${MAX_CHUNK}, got ${describe(max)}.`);
  }
  leaseMs(options.leaseMs);
  if (maxAttempts !== undefined && (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1)) {
    throw invalid(`maxAttempts must be a positive integer, got ${describe(maxAttempts)}.`);
  }
  return options;
}

/** The job indexes of `renewLeases`: a list of at most one chunk. */
export function chunkIndices(indices: readonly number[]): readonly number[] {
  if (
    !Array.isArray(indices) ||
    indices.length > MAX_CHUNK ||
    !indices.every((i) => Number.isSafeInteger(i) && i >= 1)
  ) {
    throw invalid(
      `indices must be a list of at most ${MAX_CHUNK} positive integers, got ${describe(indices)}.`,
    );
  }
  return indices;
}

/** The job indexes of `reopenTasks`: each once, ascending. */
export function jobIndexes(indices: Iterable<number>): number[] {
  const wanted = [...new Set(indices)].sort((a, b) => a - b);
  for (const jobIndex of wanted) id('jobIndex', jobIndex);
  return wanted;
}

/** The items of `storeOutcomes`. */
export function outcomes(items: readonly Outcome[]): readonly Outcome[] {
  items.forEach((item, i) => {
    id(`items[${i}].jobIndex`, item.jobIndex);
    if (item.kind !== 'result' && item.kind !== 'error') {
      throw invalid(`items[${i}].kind must be 'result' or 'error', got ${describe(item.kind)}.`);
    }
    bytes(`items[${i}].payload`, item.payload);
  });
  return items;
}

/** The states of `indicesInState`. */
export function states(list: readonly TaskState[]): readonly TaskState[] {
  for (const state of list) {
    if (!(TASK_STATES as readonly string[]).includes(state)) {
      throw invalid(`unknown task state ${describe(state)}; use one of ${TASK_STATES.join(', ')}.`);
    }
  }
  return list;
}

/** The work of `transaction`: a function. */
export function work<T>(value: () => T): () => T {
  if (typeof value !== 'function') {
    throw invalid(`work must be a function, got ${describe(value)}.`);
  }
  return value;
}
