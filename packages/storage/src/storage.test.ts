import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Storage } from './storage.js';
import { StorageError, type StorageErrorCode } from './storage-error.js';

const enc = new TextEncoder();
const bytes = (text: string): Uint8Array => enc.encode(text);
const text = (data: Uint8Array): string => new TextDecoder().decode(data);

let dir: string;
let dbfile: string;
let storage: Storage;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-storage-'));
  dbfile = join(dir, 'sheepdog.sqlite');
  storage = new Storage(dbfile);
});

afterEach(() => {
  storage.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A second, raw connection to look at what is really in the file. */
function raw(): Database.Database {
  return new Database(dbfile, { readonly: true });
}

function rawAll(query: string, ...params: unknown[]): unknown[] {
  const db = raw();
  try {
    return db
      .prepare(query)
      .raw()
      .all(...params);
  } finally {
    db.close();
  }
}

function expectCode(run: () => unknown, code: StorageErrorCode): StorageError {
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

const F = bytes("i'm a function!");
const NS = bytes('namespace');
const ARGS = [bytes('abc'), bytes('def'), bytes('geh')];

function addRequest(): number {
  return storage.newRequest(F, NS, ARGS);
}

function storeResults(requestId: number): Uint8Array[] {
  const results = [bytes('ABC'), bytes('DEF'), bytes('GEH')];
  results.forEach((result, i) => {
    storage.storeResult(requestId, i + 1, result);
  });
  return results;
}

/** Results for tasks 1 and 2, an error for task 3, as in the original suite. */
function storeResultsAndErrors(requestId: number): [Uint8Array[], Uint8Array[]] {
  const results = [bytes('ABC'), bytes('DEF')];
  const errors = [bytes('oops')];
  results.forEach((result, i) => {
    storage.storeResult(requestId, i + 1, result);
  });
  storage.storeError(requestId, 3, errors[0] as Uint8Array);
  return [results, errors];
}

describe("the original's storage suite", () => {
  it('creates the tables', () => {
    const names = rawAll("SELECT name FROM sqlite_master WHERE type = 'table'").flat();
    expect(names).toEqual(
      expect.arrayContaining(['requests', 'tasks', 'results', 'errors', 'jobs']),
    );
  });

  it('adds a request with job indexes 1..N in argument order', () => {
    const id = addRequest();
    const [request] = rawAll('SELECT id, func, ns, n_tasks FROM requests') as [
      [number, Buffer, Buffer, number],
    ];
    expect(request[0]).toBe(id);
    expect(new Uint8Array(request[1])).toEqual(F);
    expect(new Uint8Array(request[2])).toEqual(NS);
    expect(request[3]).toBe(3);
    const tasks = rawAll('SELECT request_id, job_index, args FROM tasks ORDER BY id') as [
      number,
      number,
      Buffer,
    ][];
    expect(tasks.map(([r, j, a]) => [r, j, new Uint8Array(a)])).toEqual([
      [id, 1, ARGS[0]],
      [id, 2, ARGS[1]],
      [id, 3, ARGS[2]],
    ]);
  });

  it('gets details', () => {
    const id = addRequest();
    expect(storage.getDetails(id, 2)).toEqual([F, NS, ARGS[1]]);
  });

  it('stores results', () => {
    const id = addRequest();
    const results = storeResults(id);
    const rows = rawAll('SELECT job_index, result FROM results ORDER BY job_index') as [
      number,
      Buffer,
    ][];
    expect(rows.map(([j, r]) => [j, new Uint8Array(r)])).toEqual([
      [1, results[0]],
      [2, results[1]],
      [3, results[2]],
    ]);
  });

  it('gets results as [args, result] pairs', () => {
    const id = addRequest();
    const results = storeResults(id);
    expect(storage.getResults(id)).toEqual(ARGS.map((args, i) => [args, results[i]]));
  });

  it('stores errors', () => {
    const id = addRequest();
    const [, errors] = storeResultsAndErrors(id);
    const rows = rawAll('SELECT job_index, error FROM errors') as [number, Buffer][];
    expect(rows.map(([j, e]) => [j, new Uint8Array(e)])).toEqual([[3, errors[0]]]);
  });

  it('gets errors as [args, error, jobIndex]', () => {
    const id = addRequest();
    const [, errors] = storeResultsAndErrors(id);
    expect(storage.getErrors(id)).toEqual([[ARGS[2], errors[0], 3]]);
  });

  it('counts results', () => {
    const id = addRequest();
    expect(storage.countResults(id)).toBe(0);
    storeResults(id);
    expect(storage.countResults(id)).toBe(3);
  });

  it('counts errors', () => {
    const id = addRequest();
    expect(storage.countErrors(id)).toBe(0);
    storeResultsAndErrors(id);
    expect(storage.countErrors(id)).toBe(1);
  });

  it('counts results and errors', () => {
    const id = addRequest();
    expect(storage.countResultsAndErrors(id)).toBe(0);
    storeResultsAndErrors(id);
    expect(storage.countResultsAndErrors(id)).toBe(3);
  });

  it('counts tasks', () => {
    const id = addRequest();
    expect(storage.countTasks(id)).toBe(3);
  });

  it('gets tasks with results, null where there is none yet', () => {
    const id = addRequest();
    storage.storeResult(id, 2, bytes('DEF'));
    expect(storage.getTasksWithResults(id)).toEqual([
      [ARGS[0], null],
      [ARGS[1], bytes('DEF')],
      [ARGS[2], null],
    ]);
  });
});

describe('ordering and separate requests', () => {
  it('lists in job-index order whatever order results arrive in', () => {
    const n = 50;
    const args = Array.from({ length: n }, (_, i) => bytes(`a${i + 1}`));
    const id = storage.newRequest(F, NS, args);
    const order = Array.from({ length: n }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
    for (const j of order) {
      if (j % 7 === 0) storage.storeError(id, j, bytes(`e${j}`));
      else storage.storeResult(id, j, bytes(`r${j}`));
    }
    const results = storage.getResults(id);
    expect(results.map(([a]) => text(a))).toEqual(
      args.map(text).filter((_, i) => (i + 1) % 7 !== 0),
    );
    expect(results.every(([a, r]) => text(r) === `r${text(a).slice(1)}`)).toBe(true);
    expect(storage.getErrors(id).map(([, e]) => text(e))).toEqual([
      'e7',
      'e14',
      'e21',
      'e28',
      'e35',
      'e42',
      'e49',
    ]);
  });

  it('keeps requests apart', () => {
    const a = storage.newRequest(F, NS, [bytes('a1'), bytes('a2')]);
    const b = storage.newRequest(bytes('g'), bytes('ns2'), [bytes('b1')]);
    expect(b).toBeGreaterThan(a);
    storage.storeResult(b, 1, bytes('rb1'));
    expect(storage.countResults(a)).toBe(0);
    expect(storage.getDetails(b, 1)).toEqual([bytes('g'), bytes('ns2'), bytes('b1')]);
    expect(storage.getResults(b)).toEqual([[bytes('b1'), bytes('rb1')]]);
    expect(storage.countTasks(a)).toBe(2);
  });

  it('accepts a request with no tasks', () => {
    const id = storage.newRequest(F, NS, []);
    expect(storage.countTasks(id)).toBe(0);
    expect(storage.getResults(id)).toEqual([]);
    expect(storage.getTasksWithResults(id)).toEqual([]);
    expectCode(() => storage.getDetails(id, 1), 'UNKNOWN_TASK');
  });

  it('streams a generator of 100 000 argument lists in one call', () => {
    let made = 0;
    function* argsList(): Generator<Uint8Array> {
      for (let i = 1; i <= 100_000; i++) {
        made++;
        yield bytes(String(i));
      }
    }
    const id = storage.newRequest(F, NS, argsList());
    expect(made).toBe(100_000);
    expect(storage.countTasks(id)).toBe(100_000);
    expect(storage.getDetails(id, 100_000)[2]).toEqual(bytes('100000'));
    expect(storage.getRequest(id).nTasks).toBe(100_000);
  });

  it('gives every task its own args at any count, the multi-row batches and their tail', () => {
    // Tasks go in 256 rows per statement; these counts end on, before and after a boundary.
    for (const n of [1, 255, 256, 257, 600]) {
      const id = storage.newRequest(
        F,
        NS,
        Array.from({ length: n }, (_, i) => bytes(`args ${i + 1}`)),
      );
      expect(storage.getRequest(id).nTasks).toBe(n);
      const args = storage.getTasksWithResults(id).map(([a]) => Buffer.from(a).toString());
      expect(args).toEqual(Array.from({ length: n }, (_, i) => `args ${i + 1}`));
    }
  });

  it('stores nothing when an entry past the first batch is bad', () => {
    const list = Array.from({ length: 300 }, (_, i) => bytes(String(i)));
    list[280] = 'bad' as unknown as Uint8Array;
    expect(expectCode(() => storage.newRequest(F, NS, list), 'INVALID_ARGUMENT').message).toContain(
      'argsList[280]',
    );
    expect(rawAll('SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM tasks)')).toEqual([
      [0, 0],
    ]);
  });
});

describe('unknown requests and tasks', () => {
  it('raises UNKNOWN_REQUEST from every method, never an empty answer', () => {
    addRequest();
    const calls: [string, () => unknown][] = [
      ['getDetails', () => storage.getDetails(99, 1)],
      ['storeResult', () => storage.storeResult(99, 1, bytes('r'))],
      ['storeError', () => storage.storeError(99, 1, bytes('e'))],
      ['markRunning', () => storage.markRunning(99, 1)],
      ['countTasks', () => storage.countTasks(99)],
      ['countResults', () => storage.countResults(99)],
      ['countErrors', () => storage.countErrors(99)],
      ['countResultsAndErrors', () => storage.countResultsAndErrors(99)],
      ['getResults', () => storage.getResults(99)],
      ['getTasksWithResults', () => storage.getTasksWithResults(99)],
      ['getErrors', () => storage.getErrors(99)],
      ['getTokenHash', () => storage.getTokenHash(99)],
      ['getRequest', () => storage.getRequest(99)],
    ];
    for (const [name, call] of calls) {
      const error = expectCode(call, 'UNKNOWN_REQUEST');
      expect(error.message, name).toContain('99');
    }
    expect(rawAll('SELECT count(*) FROM results UNION ALL SELECT count(*) FROM errors')).toEqual([
      [0],
      [0],
    ]);
  });

  it('raises UNKNOWN_TASK for an index outside 1..N and stores nothing', () => {
    const id = addRequest();
    const error = expectCode(() => storage.getDetails(id, 4), 'UNKNOWN_TASK');
    expect(error.message).toContain('1..3');
    expectCode(() => storage.storeResult(id, 4, bytes('r')), 'UNKNOWN_TASK');
    expectCode(() => storage.storeError(id, 4, bytes('e')), 'UNKNOWN_TASK');
    expectCode(() => storage.markRunning(id, 4), 'UNKNOWN_TASK');
    expect(storage.countResultsAndErrors(id)).toBe(0);
    expect(rawAll("SELECT count(*) FROM tasks WHERE state <> 'pending'")).toEqual([[0]]);
  });
});

describe('invalid arguments', () => {
  const badIds: unknown[] = [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1', null];

  it('rejects ids that are not positive safe integers', () => {
    const id = addRequest();
    for (const bad of badIds) {
      const b = bad as number;
      expectCode(() => storage.getDetails(b, 1), 'INVALID_ARGUMENT');
      expectCode(() => storage.getDetails(id, b), 'INVALID_ARGUMENT');
      expectCode(() => storage.storeResult(id, b, bytes('r')), 'INVALID_ARGUMENT');
      expectCode(() => storage.storeError(b, 1, bytes('e')), 'INVALID_ARGUMENT');
      expectCode(() => storage.markRunning(id, b), 'INVALID_ARGUMENT');
      expectCode(() => storage.countResults(b), 'INVALID_ARGUMENT');
      expectCode(() => storage.getResults(b), 'INVALID_ARGUMENT');
    }
    expect(storage.countResultsAndErrors(id)).toBe(0);
  });

  it('rejects payloads that are not Uint8Array, storing nothing', () => {
    const id = addRequest();
    for (const bad of ['text', [1, 2], null, undefined, 42, new ArrayBuffer(2), {}]) {
      const b = bad as Uint8Array;
      const error = expectCode(() => storage.storeResult(id, 1, b), 'INVALID_ARGUMENT');
      expect(error.message).toContain('Uint8Array');
      expectCode(() => storage.storeError(id, 1, b), 'INVALID_ARGUMENT');
      expectCode(() => storage.newRequest(b, NS, []), 'INVALID_ARGUMENT');
      expectCode(() => storage.newRequest(F, b, []), 'INVALID_ARGUMENT');
    }
    expect(storage.countResultsAndErrors(id)).toBe(0);
    expect(storage.listRequests()).toHaveLength(1);
  });

  it('stores nothing when one entry of argsList is bad', () => {
    const error = expectCode(
      () => storage.newRequest(F, NS, [bytes('a'), 'b' as unknown as Uint8Array]),
      'INVALID_ARGUMENT',
    );
    expect(error.message).toContain('argsList[1]');
    expectCode(
      () => storage.newRequest(F, NS, 5 as unknown as Iterable<Uint8Array>),
      'INVALID_ARGUMENT',
    );
    expect(rawAll('SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM tasks)')).toEqual([
      [0, 0],
    ]);
  });

  it('stores nothing when the argsList iterable throws part way', () => {
    function* failing(): Generator<Uint8Array> {
      yield bytes('a');
      throw new Error('generator broke');
    }
    expect(() => storage.newRequest(F, NS, failing())).toThrow('generator broke');
    expect(storage.listRequests()).toEqual([]);
    expect(rawAll('SELECT count(*) FROM tasks')).toEqual([[0]]);
  });

  it('rejects malformed meta', () => {
    expectCode(() => storage.newRequest(F, NS, [], { tokenHash: 'secret' }), 'INVALID_ARGUMENT');
    expectCode(
      () => storage.newRequest(F, NS, [], { label: 5 as unknown as string }),
      'INVALID_ARGUMENT',
    );
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expectCode(() => storage.newRequest(F, NS, [], { config: cyclic }), 'INVALID_ARGUMENT');
    expect(storage.listRequests()).toEqual([]);
  });
});

describe('one result per task', () => {
  it('answers a repeated result as a duplicate and keeps the first', () => {
    const id = addRequest();
    expect(storage.storeResult(id, 2, bytes('first'))).toBe(true);
    expect(storage.storeResult(id, 2, bytes('second'))).toBe(false);
    expect(storage.storeResult(id, 2, bytes('first'))).toBe(false);
    expect(storage.getResults(id)).toEqual([[ARGS[1], bytes('first')]]);
    expect(rawAll('SELECT count(*) FROM results')).toEqual([[1]]);
    expect(storage.countResults(id)).toBe(1);
  });

  it('answers a repeated error as a duplicate and keeps the first', () => {
    const id = addRequest();
    expect(storage.storeError(id, 1, bytes('boom 1'))).toBe(true);
    expect(storage.storeError(id, 1, bytes('boom 2'))).toBe(false);
    expect(storage.getErrors(id)).toEqual([[ARGS[0], bytes('boom 1'), 1]]);
    expect(storage.countErrors(id)).toBe(1);
  });
});

describe('task state', () => {
  function taskRow(id: number, jobIndex: number): [string, number] {
    return rawAll(
      'SELECT state, attempts FROM tasks WHERE request_id = ? AND job_index = ?',
      id,
      jobIndex,
    )[0] as [string, number];
  }

  it('moves pending -> running -> done and counts attempts', () => {
    const id = addRequest();
    expect(taskRow(id, 1)).toEqual(['pending', 0]);
    expect(storage.markRunning(id, 1)).toBe(true);
    expect(taskRow(id, 1)).toEqual(['running', 1]);
    expect(storage.markRunning(id, 1)).toBe(true);
    expect(taskRow(id, 1)).toEqual(['running', 2]);
    storage.storeResult(id, 1, bytes('r'));
    expect(taskRow(id, 1)).toEqual(['done', 2]);
    expect(rawAll('SELECT attempt FROM results')).toEqual([[2]]);
    expect(storage.markRunning(id, 1)).toBe(false);
    expect(taskRow(id, 1)).toEqual(['done', 2]);
  });

  it('marks failed on error, and a later result wins over an earlier error', () => {
    const id = addRequest();
    storage.storeError(id, 1, bytes('e'));
    expect(taskRow(id, 1)).toEqual(['failed', 0]);
    expect(storage.markRunning(id, 1)).toBe(false);
    storage.storeResult(id, 1, bytes('r'));
    expect(taskRow(id, 1)[0]).toBe('done');
    storage.storeResult(id, 2, bytes('r'));
    storage.storeError(id, 2, bytes('late error'));
    expect(taskRow(id, 2)[0]).toBe('done');
  });

  it('lists requests with per-state counts and metadata', () => {
    const tokenHash = 'a'.repeat(64);
    const a = storage.newRequest(F, NS, ARGS, {
      tokenHash,
      backend: 'local',
      label: 'first',
      config: { concurrency: 4, opts: ['-l', 'h_vmem=1G'] },
    });
    const b = storage.newRequest(F, NS, [bytes('x')]);
    storage.markRunning(a, 1);
    storage.storeResult(a, 2, bytes('r'));
    storage.storeError(a, 3, bytes('e'));
    const list = storage.listRequests();
    expect(list.map((r) => r.id)).toEqual([a, b]);
    expect(list[0]).toMatchObject({
      id: a,
      nTasks: 3,
      backend: 'local',
      label: 'first',
      status: 'active',
      config: { concurrency: 4, opts: ['-l', 'h_vmem=1G'] },
      states: { pending: 0, running: 1, done: 1, failed: 1, lost: 0, cancelled: 0 },
    });
    expect(list[0]?.createdAt).toBeGreaterThan(Date.now() - 60_000);
    expect(list[1]).toMatchObject({ backend: null, label: null, config: null });
    expect(list[1]?.states.pending).toBe(1);
    expect(storage.getRequest(b)).toEqual(list[1]);
    expect(storage.getTokenHash(a)).toBe(tokenHash);
    expect(storage.getTokenHash(b)).toBeNull();
  });
});

describe('payloads', () => {
  it('round-trip byte for byte: zero bytes, empty, all byte values, 8 MB', () => {
    const zeros = new Uint8Array(1000);
    const empty = new Uint8Array(0);
    const every = Uint8Array.from({ length: 256 }, (_, i) => i);
    const big = new Uint8Array(randomBytes(8 * 1024 * 1024));
    const payloads = [zeros, empty, every, big];
    // Buffer.equals instead of toEqual: a deep compare of 8 MB element by element takes minutes.
    const same = (actual: Uint8Array | null | undefined, expected: Uint8Array): boolean =>
      actual instanceof Uint8Array && Buffer.from(expected).equals(actual);
    const id = storage.newRequest(big, zeros, payloads);
    // A task ends with one outcome, so errors round-trip through a second request.
    const failing = storage.newRequest(big, zeros, payloads);
    payloads.forEach((p, i) => {
      storage.storeResult(id, i + 1, p);
      storage.storeError(failing, i + 1, p);
    });
    const [func, ns, args] = storage.getDetails(id, 4);
    expect(same(func, big) && same(ns, zeros) && same(args, big)).toBe(true);
    expect(storage.getDetails(id, 2)[2]).toHaveLength(0);
    const results = storage.getResults(id);
    const errors = storage.getErrors(failing);
    const withResults = storage.getTasksWithResults(id);
    expect(results).toHaveLength(4);
    payloads.forEach((p, i) => {
      for (const pair of [results[i], errors[i], withResults[i]]) {
        expect(same(pair?.[0], p) && same(pair?.[1], p), `payload ${i + 1}`).toBe(true);
      }
    });
  });

  it('accepts Buffers and offset views, and returns plain Uint8Array', () => {
    const backing = bytes('xxpayloadyy');
    const view = backing.subarray(2, 9);
    const id = storage.newRequest(Buffer.from('f'), view, [Buffer.from('args')]);
    storage.storeResult(id, 1, view);
    const [func, ns, args] = storage.getDetails(id, 1);
    expect(ns).toEqual(bytes('payload'));
    expect(func).toEqual(bytes('f'));
    expect(args).toEqual(bytes('args'));
    const result = storage.getResults(id)[0]?.[1];
    expect(result).toEqual(bytes('payload'));
    for (const out of [func, ns, args, result]) {
      expect(Object.getPrototypeOf(out)).toBe(Uint8Array.prototype);
    }
  });
});

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

  it('reopens an existing file with its data intact and migrations applied once', () => {
    const id = addRequest();
    storage.storeResult(id, 1, bytes('kept'));
    const migrations = rawAll('SELECT id, hash, created_at FROM __drizzle_migrations');
    expect(migrations.length).toBeGreaterThan(0);
    storage.close();

    storage = new Storage(dbfile);
    storage.initdb();
    storage.initdb();
    expect(storage.getResults(id)).toEqual([[ARGS[0], bytes('kept')]]);
    expect(storage.getDetails(id, 3)).toEqual([F, NS, ARGS[2]]);
    expect(rawAll('SELECT id, hash, created_at FROM __drizzle_migrations')).toEqual(migrations);
    const next = storage.newRequest(F, NS, ARGS);
    expect(next).toBe(id + 1);
  });

  it('lets two Storage objects in one process share a file', () => {
    const other = new Storage(dbfile);
    try {
      const id = other.newRequest(F, NS, ARGS);
      expect(storage.getDetails(id, 1)).toEqual([F, NS, ARGS[0]]);
      storage.storeResult(id, 1, bytes('r'));
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

  it('throws CLOSED after close, and close is idempotent', () => {
    const id = addRequest();
    storage.close();
    storage.close();
    expectCode(() => storage.countTasks(id), 'CLOSED');
    expectCode(() => storage.newRequest(F, NS, ARGS), 'CLOSED');
    expectCode(() => storage.listRequests(), 'CLOSED');
    expectCode(() => storage.initdb(), 'CLOSED');
  });

  it('throws OPEN_FAILED for a path that cannot hold a database', () => {
    mkdirSync(join(dir, 'folder'));
    expectCode(() => new Storage(join(dir, 'folder')), 'OPEN_FAILED');
    expectCode(() => new Storage(join(dir, 'missing', 'db.sqlite')), 'OPEN_FAILED');
    writeFileSync(join(dir, 'text.sqlite'), 'this is not a database, just some text '.repeat(50));
    expectCode(() => new Storage(join(dir, 'text.sqlite')), 'OPEN_FAILED');
    expectCode(() => new Storage(''), 'INVALID_ARGUMENT');
  });

  it('throws MIGRATION_FAILED for a SQLite file with clashing tables, changing nothing', () => {
    const foreign = join(dir, 'foreign.sqlite');
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

describe('transaction', () => {
  it('commits the calls inside together; one that throws undoes only its own writes', () => {
    const id = addRequest();
    const seen: unknown[] = [];
    storage.transaction(() => {
      storage.markRunning(id, 1);
      storage.storeResult(id, 1, bytes('one'));
      // Another connection sees nothing before the commit.
      seen.push(rawAll('SELECT count(*) FROM results')[0]);
      try {
        storage.transaction(() => {
          storage.markRunning(id, 3);
          storage.storeResult(id, 99, bytes('no such task'));
        });
      } catch (error) {
        seen.push((error as StorageError).code);
      }
      storage.storeError(id, 2, bytes('boom'));
    });
    expect(seen).toEqual([[0], 'UNKNOWN_TASK']);
    expect(rawAll('SELECT job_index, state, attempts FROM tasks ORDER BY job_index')).toEqual([
      [1, 'done', 1],
      [2, 'failed', 0],
      [3, 'pending', 0],
    ]);
    expect(rawAll('SELECT job_index FROM results')).toEqual([[1]]);
  });

  it('stores nothing when the work throws, and passes the error on', () => {
    const id = addRequest();
    expect(() =>
      storage.transaction(() => {
        storage.storeResult(id, 1, bytes('one'));
        throw new RangeError('changed my mind');
      }),
    ).toThrow(RangeError);
    expect(rawAll('SELECT count(*) FROM results')).toEqual([[0]]);
    expect(storage.getTaskStates(id).map((t) => t.state)).toEqual([
      'pending',
      'pending',
      'pending',
    ]);
    expectCode(() => storage.transaction(5 as unknown as () => void), 'INVALID_ARGUMENT');
  });
});

describe('iterateResultList', () => {
  it('yields each result in job-index order, null where there is none, as it is consumed', () => {
    const id = addRequest();
    storage.storeResult(id, 3, bytes('three'));
    storage.storeResult(id, 1, bytes('one'));
    const seen = [...storage.iterateResultList(id)].map((r) => (r === null ? null : text(r)));
    expect(seen).toEqual(['one', null, 'three']);
    expect([...storage.iterateResultList(id)]).toEqual(storage.getResultList(id));
  });

  it('frees the connection when the caller stops early, and refuses unknown requests', () => {
    const id = addRequest();
    storeResults(id);
    for (const result of storage.iterateResultList(id)) {
      expect(text(result as Uint8Array)).toBe('ABC');
      break;
    }
    storage.storeError(id, 2, bytes('later'));
    expect(storage.countErrors(id)).toBe(0);
    expectCode(() => [...storage.iterateResultList(999)], 'UNKNOWN_REQUEST');
  });
});
