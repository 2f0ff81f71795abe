/**
 * What went wrong, as a stable string; test it with {@link isStorageError}, not the message.
 *
 * | code | when |
 * |---|---|
 * | `INVALID_ARGUMENT` | an id is not a positive safe integer, a payload is not a `Uint8Array`, or `meta` is malformed |
 * | `UNKNOWN_REQUEST` | no request has this id in this database file |
 * | `UNKNOWN_TASK` | the request exists but has no task with this job index |
 * | `OPEN_FAILED` | the database file could not be opened (missing folder, no permission, not SQLite) |
 * | `TASK_CANCELLED` | a result or error was posted for a task that was cancelled |
 * | `MIGRATION_FAILED` | the schema migrations could not be applied to the file |
 * | `DATABASE_ERROR` | SQLite failed while running a query (disk full, I/O error, lock held too long) |
 * | `CLOSED` | a method was called after `close()` |
 */
export const STORAGE_ERROR_CODES = [
  'INVALID_ARGUMENT',
  'UNKNOWN_REQUEST',
  'UNKNOWN_TASK',
  'TASK_CANCELLED',
  'OPEN_FAILED',
  'MIGRATION_FAILED',
  'DATABASE_ERROR',
  'CLOSED',
] as const;

/** One of {@link STORAGE_ERROR_CODES}. */
export type StorageErrorCode = (typeof STORAGE_ERROR_CODES)[number];

/** The one error class of `@sheepdog/storage`; its message says what to do about it. */
export class StorageError extends Error {
  /** Stable reason for the failure; see {@link StorageErrorCode}. */
  readonly code: StorageErrorCode;
  /** Which part of Sheepdog raised it: printed as `[sheepdog] [storage]` before the message. */
  readonly origin = 'storage';

  /**
   * @param code - stable reason, see {@link StorageErrorCode}
   * @param message - what happened and what to do; without a prefix: printers add `[sheepdog] [storage]`
   * @param options - `cause`: the underlying error, when wrapping one
   */
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
  }
}

/**
 * Whether `error` is a {@link StorageError}, with `code` when one is given. It checks the name and
 * code rather than `instanceof`, so an error from another copy of the package counts too.
 */
export function isStorageError(error: unknown, code?: StorageErrorCode): error is StorageError {
  if (!(error instanceof Error) || error.name !== 'StorageError') return false;
  const own = (error as { code?: unknown }).code;
  return code === undefined
    ? (STORAGE_ERROR_CODES as readonly unknown[]).includes(own)
    : own === code;
}
