/**
 * One open, migrated database file with its prepared statements, and what every concern needs
 * around a query: SQLite failures wrapped as `DATABASE_ERROR`, and the `UNKNOWN_REQUEST` and
 * `UNKNOWN_TASK` answers.
 * @module
 */
import Database from 'better-sqlite3';
import { StorageError } from '../storage-error.js';
import { applyMigrations } from './migrations.js';
import {
  type Count,
  type Id,
  prepareStatements,
  type Statement,
  type Statements,
} from './statements.js';
import { errorMessage } from './validation.js';

/** How long a writer waits for another process's write lock before giving up, in ms. */
const BUSY_TIMEOUT_MS = 30_000;

/** An open database file: the connection, its statements, and the shared answers. */
export class Connection {
  /** The path given to `Storage`'s constructor. */
  readonly dbfile: string;
  /** The better-sqlite3 connection. */
  readonly db: Database.Database;
  /** Every prepared statement, by concern. */
  readonly q: Statements;

  /**
   * Opens (creating if needed) the file in WAL mode and applies pending migrations.
   *
   * @throws {@link StorageError} `OPEN_FAILED` or `MIGRATION_FAILED`
   */
  constructor(dbfile: string) {
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
    this.db = db;
    try {
      this.migrate();
    } catch (cause) {
      db.close();
      throw cause;
    }
    this.q = prepareStatements(db);
  }

  /** Applies any migration the file still lacks; see {@link applyMigrations}. */
  migrate(): void {
    applyMigrations(this.db, this.dbfile);
  }

  /** Runs a query, passing StorageErrors through and wrapping SQLite failures. */
  guard<T>(op: string, run: () => T): T {
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

  /** Runs a `count` statement; a request that does not exist is an error, never 0. */
  count(op: string, statement: Statement<[Id], Count>, id: number): number {
    const row = this.guard(op, () => statement.get({ id }));
    if (row === undefined || row.known === 0) throw this.unknownRequest(id);
    return row.n;
  }

  /** Runs a statement listing rows of one request; an empty answer must not hide a typo. */
  list<R>(op: string, statement: Statement<[Id], R>, id: number): R[] {
    return this.guard(op, () => {
      const rows = statement.all({ id });
      if (rows.length === 0) this.requireRequest(id);
      return rows;
    });
  }

  /** Whether `id` names a request in this file. */
  exists(id: number): boolean {
    return this.q.lookups.requestExists.get({ id }) !== undefined;
  }

  /** @throws {@link StorageError} `UNKNOWN_REQUEST` unless `id` names a request */
  requireRequest(id: number): void {
    if (!this.exists(id)) throw this.unknownRequest(id);
  }

  /** The `UNKNOWN_REQUEST` error for `id`. */
  unknownRequest(id: number): StorageError {
    return new StorageError(
      'UNKNOWN_REQUEST',
      `no request ${id} in ${this.dbfile}; check the request id and the dbfile it was created in.`,
    );
  }

  /** @throws {@link StorageError} `UNKNOWN_REQUEST` or `UNKNOWN_TASK` unless the task exists */
  requireTask(requestId: number, jobIndex: number): void {
    if (this.q.lookups.taskExists.get({ requestId, jobIndex }) === undefined) {
      this.throwMissing(requestId, jobIndex);
    }
  }

  /** Throws `UNKNOWN_REQUEST`, or `UNKNOWN_TASK` when the request exists but not the task. */
  throwMissing(requestId: number, jobIndex: number): never {
    this.requireRequest(requestId);
    const n = this.q.lookups.countTasks.get({ id: requestId })?.n ?? 0;
    throw new StorageError(
      'UNKNOWN_TASK',
      `request ${requestId} has no task with job index ${jobIndex}; its job indexes run 1..${n}.`,
    );
  }

  /** Closes the connection. */
  close(): void {
    this.db.close();
  }
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
