// Opening a file: WAL mode and the indexes, sharing it, and the paths that cannot hold one.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Storage } from '../storage.js';
import { ARGS, bytes, expectCode, F, NS, useTempStorage } from '../test/fixture.js';

const temp = useTempStorage('sheepdog-connection-');

/** A second, raw connection to look at what is really in the file. */
function raw(): Database.Database {
  return new Database(temp.dbfile, { readonly: true });
}

describe('the database file', () => {
  it('runs in WAL mode with indexes on the hot lookups', () => {
    const db = raw();
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      const indexes = db
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        .all() as { name: string; sql: string }[];
      const byName = Object.fromEntries(indexes.map((i) => [i.name, i.sql]));
      expect(byName.tasks_request_job_unique).toMatch(/UNIQUE INDEX.*\(`request_id`,`job_index`\)/);
      expect(byName.tasks_request_state_job_idx).toMatch(/\(`request_id`,`state`,`job_index`\)/);
      expect(byName.results_request_job_unique).toMatch(/UNIQUE/);
      expect(byName.errors_request_job_unique).toMatch(/UNIQUE/);
      const plan = db
        .prepare('EXPLAIN QUERY PLAN SELECT args FROM tasks WHERE request_id = 1 AND job_index = 2')
        .all() as { detail: string }[];
      expect(plan.map((p) => p.detail).join()).toContain('tasks_request_job_unique');
    } finally {
      db.close();
    }
  });

  it('lets two Storage objects in one process share a file', () => {
    const other = new Storage(temp.dbfile);
    try {
      const id = other.newRequest(F, NS, ARGS);
      expect(temp.storage.getDetails(id, 1)).toEqual([F, NS, ARGS[0]]);
      temp.storage.storeResult(id, 1, bytes('r'));
      expect(other.storeResult(id, 1, bytes('other'))).toBe(false);
      expect(other.getResults(id)).toEqual([[ARGS[0], bytes('r')]]);
    } finally {
      other.close();
    }
  });

  it('works in memory', () => {
    const memory = new Storage(':memory:');
    try {
      const id = memory.newRequest(F, NS, ARGS);
      expect(memory.countTasks(id)).toBe(3);
    } finally {
      memory.close();
    }
  });

  it('throws OPEN_FAILED for a path that cannot hold a database', () => {
    mkdirSync(join(temp.dir, 'folder'));
    expectCode(() => new Storage(join(temp.dir, 'folder')), 'OPEN_FAILED');
    expectCode(() => new Storage(join(temp.dir, 'missing', 'db.sqlite')), 'OPEN_FAILED');
    writeFileSync(
      join(temp.dir, 'text.sqlite'),
      'this is not a database, just some text '.repeat(50),
    );
    expectCode(() => new Storage(join(temp.dir, 'text.sqlite')), 'OPEN_FAILED');
    expectCode(() => new Storage(''), 'INVALID_ARGUMENT');
  });
});
