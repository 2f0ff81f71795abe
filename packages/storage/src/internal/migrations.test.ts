// Applying the migrations: to new and existing files, once, and never to a foreign file.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Storage } from '../storage.js';
import { ARGS, bytes, expectCode, F, NS, readRows, useTempStorage } from '../test/fixture.js';

const temp = useTempStorage('sheepdog-migrations-');
const addRequest = (): number => temp.storage.newRequest(F, NS, ARGS);

function rawAll(query: string, ...params: unknown[]): unknown[] {
  return readRows(temp.dbfile, query, ...params);
}

describe('the database file', () => {
  it('reopens an existing file with its data intact and migrations applied once', () => {
    const id = addRequest();
    temp.storage.storeResult(id, 1, bytes('kept'));
    const migrations = rawAll('SELECT id, hash, created_at FROM __drizzle_migrations');
    expect(migrations.length).toBeGreaterThan(0);
    temp.storage.close();

    temp.storage = new Storage(temp.dbfile);
    temp.storage.initdb();
    temp.storage.initdb();
    expect(temp.storage.getResults(id)).toEqual([[ARGS[0], bytes('kept')]]);
    expect(temp.storage.getDetails(id, 3)).toEqual([F, NS, ARGS[2]]);
    expect(rawAll('SELECT id, hash, created_at FROM __drizzle_migrations')).toEqual(migrations);
    const next = temp.storage.newRequest(F, NS, ARGS);
    expect(next).toBe(id + 1);
  });

  it('throws MIGRATION_FAILED for a SQLite file with clashing tables, changing nothing', () => {
    const foreign = join(temp.dir, 'foreign.sqlite');
    const db = new Database(foreign);
    db.exec('CREATE TABLE tasks (x TEXT); INSERT INTO tasks VALUES (1)');
    db.close();
    const error = expectCode(() => new Storage(foreign), 'MIGRATION_FAILED');
    expect(error.cause).toBeInstanceOf(Error);
    const check = new Database(foreign, { readonly: true });
    try {
      const tables = check
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'requests'")
        .all();
      expect(tables).toEqual([]);
      expect(check.prepare('SELECT x FROM tasks').pluck().all()).toEqual(['1']);
    } finally {
      check.close();
    }
  });
});
