/**
 * Creating requests (the request row and its tasks, in one transaction or streamed in chunks),
 * and reading back what a request was created with: its code, a task's details, its worker
 * token hashes.
 * @module
 */
import type Database from 'better-sqlite3';
import type { TaskDetails } from '../types.js';
import { toBuffer, toBytes } from './bytes.js';
import type { Connection } from './connection.js';
import { type RequestFields, TASK_BATCH, type TaskKey } from './statements.js';
import * as check from './validation.js';

/** Requests: creating them, and what they were created with. */
export class Requests {
  readonly #c: Connection;
  readonly #q: Connection['q']['requests'];
  readonly #create: Database.Transaction<
    (func: Buffer, ns: Buffer, argsList: Iterable<Uint8Array>, fields: RequestFields) => number
  >;
  readonly #append: Database.Transaction<
    (id: number, first: number, rows: readonly Buffer[]) => void
  >;

  constructor(connection: Connection) {
    this.#c = connection;
    const q = connection.q.requests;
    this.#q = q;
    this.#create = connection.db.transaction(
      (func: Buffer, ns: Buffer, argsList: Iterable<Uint8Array>, fields: RequestFields): number => {
        const now = Date.now();
        const id = Number(
          q.insertRequest.run(
            now,
            func,
            ns,
            fields.tokenHash,
            fields.backend,
            fields.label,
            fields.config,
            fields.maxAttempts,
            fields.port,
          ).lastInsertRowid,
        );
        q.setTaskCount.run(this.#insertTasks(id, 1, argsList, now), id);
        return id;
      },
    );
    this.#append = connection.db.transaction(
      (id: number, first: number, rows: readonly Buffer[]) => {
        q.setTaskCount.run(this.#insertTasks(id, first, rows, Date.now()), id);
      },
    );
  }

  /**
   * Inserts tasks `first`, `first + 1`, ... of request `id`, checking each entry, inside the
   * caller's transaction; returns the last job index. Rows go in TASK_BATCH at a time, one
   * statement each: the per-statement overhead dominates a million single-row inserts.
   */
  #insertTasks(id: number, first: number, argsList: Iterable<Uint8Array>, now: number): number {
    const params: (number | Buffer)[] = [];
    let jobIndex = first - 1;
    for (const args of argsList) {
      check.bytes(`argsList[${jobIndex}]`, args);
      jobIndex += 1;
      params.push(id, jobIndex, toBuffer(args), now);
      if (params.length === TASK_BATCH * 4) {
        this.#q.insertTasks.run(params);
        params.length = 0;
      }
    }
    for (let i = 0; i < params.length; i += 4) {
      this.#q.insertTask.run(id, params[i + 1] as number, params[i + 2] as Buffer, now);
    }
    return jobIndex;
  }

  /** The request and all its tasks in one transaction; see `Storage.newRequest`. */
  create(
    func: Uint8Array,
    ns: Uint8Array,
    argsList: Iterable<Uint8Array>,
    fields: RequestFields,
  ): number {
    return this.#c.guard('newRequest', () =>
      this.#create.immediate(toBuffer(func), toBuffer(ns), argsList, fields),
    );
  }

  /**
   * The request row, then one transaction per `chunkSize` tasks; the iterable failing deletes
   * what was stored. See `Storage.newRequestAsync`.
   */
  async createAsync(
    func: Uint8Array,
    ns: Uint8Array,
    argsList: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    fields: RequestFields,
    chunkSize: number,
  ): Promise<number> {
    const op = 'newRequestAsync';
    const id = this.#c.guard(op, () =>
      this.#create.immediate(toBuffer(func), toBuffer(ns), [], fields),
    );
    let jobIndex = 0;
    let chunk: Buffer[] = [];
    const flush = (): void => {
      const first = jobIndex + 1;
      const rows = chunk;
      chunk = [];
      this.#c.guard(op, () => this.#append.immediate(id, first, rows));
      jobIndex += rows.length;
    };
    try {
      for await (const args of argsList) {
        check.bytes(`argsList[${jobIndex + chunk.length}]`, args);
        chunk.push(toBuffer(args));
        if (chunk.length >= chunkSize) flush();
      }
      if (chunk.length > 0) flush();
    } catch (error) {
      this.#c.guard(op, () => this.#q.deleteRequest.run({ id }));
      throw error;
    }
    return id;
  }

  /** `[func, ns, args]` of one task. */
  details(key: TaskKey): TaskDetails {
    const row = this.#c.guard('getDetails', () => this.#q.getDetails.get(key));
    if (row === undefined) this.#c.throwMissing(key.requestId, key.jobIndex);
    return [toBytes(row[0]), toBytes(row[1]), toBytes(row[2])];
  }

  /** `[func, ns]`, which every task of the request shares. */
  code(id: number): [func: Uint8Array, ns: Uint8Array] {
    const row = this.#c.guard('getCode', () => this.#q.getCode.get({ id }));
    if (row === undefined) throw this.#c.unknownRequest(id);
    return [toBytes(row[0]), toBytes(row[1])];
  }

  /** The token hash the request was created with, `null` when none. */
  tokenHash(id: number): string | null {
    const row = this.#c.guard('getTokenHash', () => this.#q.tokenHash.get({ id }));
    if (row === undefined) throw this.#c.unknownRequest(id);
    return row.tokenHash;
  }

  /** The first token hash (when there is one), then the added ones, oldest first. */
  tokenHashes(id: number): string[] {
    const first = this.tokenHash(id);
    const more = this.#c.guard('getTokenHashes', () => this.#q.tokenHashes.all({ id }));
    return first === null ? more : [first, ...more];
  }

  /** Adds an accepted token hash to the request. */
  addTokenHash(id: number, tokenHash: string): void {
    this.#c.guard('addTokenHash', () => {
      this.#c.requireRequest(id);
      this.#q.insertTokenHash.run({ id, tokenHash, now: Date.now() });
    });
  }
}
