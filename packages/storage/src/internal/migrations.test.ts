// Applying the migrations: to new and existing files, once, and never to a foreign file.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { describe, expect, it } from 'vitest';
import { Storage } from '../storage.js';
import { ARGS, bytes, expectCode, F, NS, rawQuery, useTempStorage } from '../test/fixture.js';
import { MIGRATIONS_FOLDER } from './migrations.js';

const temp = useTempStorage('sheepdog-migrations-');
const { addRequest } = temp;

const rawAll = rawQuery(temp);

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

/**
 * A file as an older version of this package made it: only the migrations before `tag` are
 * applied (from a copy of the journal that stops there), so its tables lack what `tag` adds.
 */
function oldFile(name: string, tag: string): Database.Database {
  const folder = join(temp.dir, `migrations-before-${tag}`);
  mkdirSync(join(folder, 'meta'), { recursive: true });
  const journal = JSON.parse(
    readFileSync(join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8'),
  );
  const older = journal.entries.filter((entry: { tag: string }) => entry.tag < tag);
  expect(older.length).toBeGreaterThan(0);
  for (const entry of older) {
    copyFileSync(join(MIGRATIONS_FOLDER, `${entry.tag}.sql`), join(folder, `${entry.tag}.sql`));
  }
  writeFileSync(
    join(folder, 'meta', '_journal.json'),
    JSON.stringify({ ...journal, entries: older }),
  );
  const db = new Database(join(temp.dir, name));
  migrate(drizzle(db), { migrationsFolder: folder });
  return db;
}

describe('upgrading a file made before maxAttempts and port were columns', () => {
  // What the server derived max attempts from (1 + `retries`, a whole number >= 0) and what
  // core and the CLI read the port from, before the columns existed.
  const cases: [config: unknown, maxAttempts: number | null, port: number | null][] = [
    [{ backend: 'local', port: 8123, localhost: 'head', retries: 2 }, 3, 8123],
    [{ backend: 'gridengine', port: 40_000, localhost: 'head', retries: 0 }, 1, 40_000],
    [{ backend: 'local', port: 1, localhost: 'head' }, null, 1],
    [{ retries: 5 }, 6, null],
    [{ retries: -1, port: 'x' }, null, null],
    [{ retries: 1.5, port: 70_000 }, null, null],
    [{ retries: '2', port: 0 }, null, null],
    [{}, null, null],
    [[1, 2], null, null],
    [null, null, null],
  ];

  it('fills them in from the stored config, keeping every row as it was', () => {
    const db = oldFile('old.sqlite', '0003_request_fields');
    const columns = db.prepare("SELECT name FROM pragma_table_info('requests')").pluck().all();
    expect(columns).not.toContain('max_attempts');
    expect(columns).not.toContain('port');
    const insert = db.prepare(
      `INSERT INTO requests (created_at, func, ns, token_hash, n_tasks, backend, label, config)
       VALUES (1, ?, ?, NULL, 1, 'local', ?, ?)`,
    );
    const task = db.prepare(
      "INSERT INTO tasks (request_id, job_index, args, state, updated_at) VALUES (?, 1, ?, 'done', 1)",
    );
    const result = db.prepare(
      'INSERT INTO results (request_id, job_index, result, attempt, created_at) VALUES (?, 1, ?, 1, 1)',
    );
    cases.forEach(([config], i) => {
      const id = Number(
        insert.run(
          Buffer.from(F),
          Buffer.from(NS),
          `case ${i}`,
          config === null ? null : JSON.stringify(config),
        ).lastInsertRowid,
      );
      task.run(id, Buffer.from(`args ${i}`));
      result.run(id, Buffer.from(`result ${i}`));
    });
    // Written by hand, not by Sheepdog: the upgrade must not fail on it, and has nothing to read.
    insert.run(Buffer.from(F), Buffer.from(NS), 'not json', '{not json');
    db.close();

    const upgraded = new Storage(join(temp.dir, 'old.sqlite'));
    try {
      cases.forEach(([config, maxAttempts, port], i) => {
        const request = upgraded.getRequest(i + 1);
        expect(request, JSON.stringify(config)).toMatchObject({
          label: `case ${i}`,
          config,
          maxAttempts,
          port,
          states: { done: 1 },
        });
        expect(upgraded.getResults(i + 1)).toEqual([[bytes(`args ${i}`), bytes(`result ${i}`)]]);
      });
      const check = new Database(join(temp.dir, 'old.sqlite'), { readonly: true });
      try {
        expect(
          check
            .prepare("SELECT max_attempts, port FROM requests WHERE label = 'not json'")
            .raw()
            .all(),
        ).toEqual([[null, null]]);
      } finally {
        check.close();
      }
      // New requests on the upgraded file carry the fields like on a new file.
      const next = upgraded.newRequest(F, NS, ARGS, { maxAttempts: 2, port: 9000 });
      expect(upgraded.getRequest(next)).toMatchObject({ maxAttempts: 2, port: 9000 });
    } finally {
      upgraded.close();
    }
  });

  it('upgrades once: reopening applies nothing again', () => {
    oldFile('again.sqlite', '0003_request_fields').close();
    const file = join(temp.dir, 'again.sqlite');
    new Storage(file).close();
    const applied = (): unknown[] => {
      const db = new Database(file, { readonly: true });
      try {
        return db
          .prepare('SELECT hash, created_at FROM __drizzle_migrations ORDER BY id')
          .raw()
          .all();
      } finally {
        db.close();
      }
    };
    const once = applied();
    new Storage(file).close();
    expect(applied()).toEqual(once);
    expect(once).toHaveLength(
      JSON.parse(readFileSync(join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8')).entries
        .length,
    );
  });
});
