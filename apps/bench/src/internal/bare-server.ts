// The ingest ceiling: the least a server can do per task with the same stack (Hono on
// @hono/node-server, better-sqlite3 with Storage's pragmas), no auth, no validation, no states.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import Database from 'better-sqlite3';
import { Hono } from 'hono';
import { trivialArgs } from './payloads.js';

/** A running bare server. */
export interface BareServer {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  /** Stores rows for keys `offset + 1 .. offset + n` and returns `offset` (untimed setup). */
  prepare(n: number): number;
  /** How many results were posted for keys `offset + 1 .. offset + n`. */
  countResults(offset: number, n: number): number;
  stop(): Promise<void>;
}

/**
 * Serves `GET /rows/:key` (the row's bytes as base64 JSON, like the task details) and
 * `POST /rows/:key` (inserts the raw body) on loopback, from a new SQLite file.
 */
export async function startBareServer(dbfile: string): Promise<BareServer> {
  const db = new Database(dbfile);
  // The pragmas Storage uses: the ceiling must pay for the same durability.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE rows (key INTEGER PRIMARY KEY, value BLOB NOT NULL);
           CREATE TABLE results (key INTEGER PRIMARY KEY, value BLOB NOT NULL);`);
  const getRow = db.prepare<[number], Buffer>('SELECT value FROM rows WHERE key = ?').pluck();
  const insertRow = db.prepare<[number, Buffer]>('INSERT INTO rows (key, value) VALUES (?, ?)');
  const insertResult = db.prepare<[number, Buffer]>(
    'INSERT INTO results (key, value) VALUES (?, ?)',
  );
  const countResults = db
    .prepare<[number, number], number>('SELECT count(*) FROM results WHERE key BETWEEN ? AND ?')
    .pluck();

  const app = new Hono();
  app.get('/rows/:key', (c) => {
    const value = getRow.get(Number(c.req.param('key')));
    if (value === undefined) return c.json({ error: 'no such row' }, 404);
    return c.json({ value: value.toString('base64') });
  });
  app.post('/rows/:key', async (c) => {
    const body = Buffer.from(await c.req.arrayBuffer());
    insertResult.run(Number(c.req.param('key')), body);
    return c.json({ ok: true });
  });

  const http = createAdaptorServer({ fetch: app.fetch }) as Server;
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  let used = 0;
  return {
    url: `http://127.0.0.1:${port}/`,
    prepare(n: number): number {
      const offset = used;
      used += n;
      db.transaction(() => {
        let key = offset;
        for (const args of trivialArgs(n)) insertRow.run(++key, Buffer.from(args));
      })();
      return offset;
    },
    countResults(offset: number, n: number): number {
      return countResults.get(offset + 1, offset + n) ?? 0;
    },
    stop(): Promise<void> {
      return new Promise<void>((resolve) => {
        http.close(() => {
          db.close();
          resolve();
        });
        http.closeIdleConnections();
      });
    },
  };
}
