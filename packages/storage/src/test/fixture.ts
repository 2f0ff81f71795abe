// What every storage test file shares: a Storage on a new file per test, payload helpers, a
// second raw connection to look at what is really in the file, and the error check.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, expect } from 'vitest';
import { Storage } from '../storage.js';
import { StorageError, type StorageErrorCode } from '../storage-error.js';

const enc = new TextEncoder();
export const bytes = (text: string): Uint8Array => enc.encode(text);

/** The UTF-8 text of a payload; `null` stays `null`. */
export function text(data: Uint8Array): string;
export function text(data: Uint8Array | null): string | null;
export function text(data: Uint8Array | null): string | null {
  return data === null ? null : new TextDecoder().decode(data);
}

/** The function, namespace and three argument lists of the original's storage suite. */
export const F = bytes("i'm a function!");
export const NS = bytes('namespace');
export const ARGS = [bytes('abc'), bytes('def'), bytes('geh')];

/** Results for the three tasks of {@link ARGS}. */
export function storeResults(storage: Storage, requestId: number): Uint8Array[] {
  const results = [bytes('ABC'), bytes('DEF'), bytes('GEH')];
  results.forEach((result, i) => {
    storage.storeResult(requestId, i + 1, result);
  });
  return results;
}

/** The storage of the running test; see {@link useTempStorage}. */
export interface TempStorage {
  /** A new temporary folder, deleted after the test. */
  readonly dir: string;
  /** `sheepdog.sqlite` in {@link TempStorage.dir}. */
  readonly dbfile: string;
  /** A Storage on {@link TempStorage.dbfile}; a test may replace it, say to reopen the file. */
  storage: Storage;
  /** Stores the original suite's request ({@link F}, {@link NS}, {@link ARGS}); its id. */
  readonly addRequest: () => number;
}

/** Gives each test of the file a Storage on a new file, closed and deleted after the test. */
export function useTempStorage(prefix: string): TempStorage {
  const current = {
    addRequest: (): number => current.storage.newRequest(F, NS, ARGS),
  } as TempStorage & { dir: string; dbfile: string };
  beforeEach(() => {
    current.dir = mkdtempSync(join(tmpdir(), prefix));
    current.dbfile = join(current.dir, 'sheepdog.sqlite');
    current.storage = new Storage(current.dbfile);
  });
  afterEach(() => {
    current.storage.close();
    rmSync(current.dir, { recursive: true, force: true });
  });
  return current;
}

/** A request of three tasks (args a1..a3) with a token hash, as the attempts tests use. */
export function threeTaskRequest(storage: Storage): number {
  return storage.newRequest(bytes('f'), bytes('ns'), [bytes('a1'), bytes('a2'), bytes('a3')], {
    tokenHash: 'a'.repeat(64),
  });
}

/** A request of ten tasks (args a1..a10), as the lease tests use. */
export function tenTaskRequest(storage: Storage): number {
  return storage.newRequest(
    bytes('f'),
    bytes('ns'),
    Array.from({ length: 10 }, (_, i) => bytes(`a${i + 1}`)),
  );
}

/** Runs `work` on a second connection to `dbfile`, read-only unless `writable`. */
export function withRaw<T>(
  dbfile: string,
  work: (db: Database.Database) => T,
  writable = false,
): T {
  const db = new Database(dbfile, { readonly: !writable });
  try {
    return work(db);
  } finally {
    db.close();
  }
}

/** `rawAll(query, ...params)`: every row of `query` on a second connection, as arrays. */
export function rawQuery(temp: TempStorage): (query: string, ...params: unknown[]) => unknown[] {
  return (query, ...params) =>
    withRaw(temp.dbfile, (db) =>
      db
        .prepare(query)
        .raw()
        .all(...params),
    );
}

/** Runs `run`, expecting a StorageError with `code`; returns it. */
export function expectCode(run: () => unknown, code: StorageErrorCode): StorageError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).code).toBe(code);
    // The message is the bare text; printers put `[sheepdog] [storage]` before it, from `origin`.
    expect((error as StorageError).origin).toBe('storage');
    expect((error as StorageError).message).not.toMatch(/^\[sheepdog\]/);
    return error as StorageError;
  }
  throw new Error(`expected a StorageError ${code}, nothing was thrown`);
}
