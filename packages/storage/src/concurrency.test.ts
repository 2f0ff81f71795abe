import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Storage } from './storage.js';

const run = promisify(execFile);
const WRITER = fileURLToPath(new URL('./test/writer.mjs', import.meta.url));
const BUILT = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const enc = new TextEncoder();
const text = (data: Uint8Array): string => new TextDecoder().decode(data);

interface WriterOutput {
  requestId: number;
  stored: number[];
  startedAt: number;
  finishedAt: number;
}

/**
 * Runs one writer.mjs per argument list, each in its own `node` process, all released together
 * by a barrier; fails on any stderr output or non-zero exit.
 */
async function writers(dbfile: string, ...argLists: string[][]): Promise<WriterOutput[]> {
  const barrier = join(dir, `barrier-${Math.random().toString(36).slice(2)}`);
  mkdirSync(barrier);
  return Promise.all(
    argLists.map(async (args) => {
      const { stdout, stderr } = await run(
        process.execPath,
        [WRITER, dbfile, barrier, String(argLists.length), ...args],
        { timeout: 60_000 },
      );
      expect(stderr).toBe('');
      return JSON.parse(stdout) as WriterOutput;
    }),
  );
}

let dir: string;
let dbfile: string;

beforeAll(() => {
  if (!existsSync(BUILT)) {
    throw new Error(`${BUILT} is missing: run \`pnpm --filter @sheepdog/storage build\` first`);
  }
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-concurrency-'));
  dbfile = join(dir, 'shared.sqlite');
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('several processes on one file', () => {
  it('two processes store the same 800 results at once: none lost, none duplicated', async () => {
    const n = 800;
    const setup = new Storage(dbfile);
    const args = Array.from({ length: n }, (_, i) => enc.encode(`args:${i + 1}`));
    const requestId = setup.newRequest(enc.encode('f'), enc.encode('ns'), args);
    setup.close();

    // Opposite orders: the writers meet in the middle, so both race for many of the same tasks.
    const [a, b] = (await writers(
      dbfile,
      ['store', String(requestId), String(n), 'asc', 'A'],
      ['store', String(requestId), String(n), 'desc', 'B'],
    )) as [WriterOutput, WriterOutput];

    expect(a.stored.length + b.stored.length).toBe(n);
    expect(new Set([...a.stored, ...b.stored]).size).toBe(n);
    // The writers really ran at the same time. Which one stores more is up to SQLite's busy
    // handler, which is not fair: a tight writer can take nearly every task.
    expect(a.startedAt).toBeLessThan(b.finishedAt);
    expect(b.startedAt).toBeLessThan(a.finishedAt);

    const storage = new Storage(dbfile);
    try {
      expect(storage.countResults(requestId)).toBe(n);
      const winner = new Map<number, string>();
      for (const i of a.stored) winner.set(i, 'A');
      for (const i of b.stored) winner.set(i, 'B');
      const results = storage.getResults(requestId);
      expect(results).toHaveLength(n);
      results.forEach(([argsBytes, result], i) => {
        expect(text(argsBytes)).toBe(`args:${i + 1}`);
        // The stored result is the one from the process that was told `stored: true`.
        expect(text(result)).toBe(`${winner.get(i + 1)}:${i + 1}`);
      });
      expect(storage.getRequest(requestId).states.done).toBe(n);
    } finally {
      storage.close();
    }
  }, 60_000);

  it('four processes opening one new file at once each migrate it safely and write 200 results', async () => {
    const outputs = await writers(
      dbfile,
      ...['P', 'Q', 'R', 'S'].map((tag) => ['fresh', '200', tag]),
    );
    expect(new Set(outputs.map((o) => o.requestId)).size).toBe(4);
    const storage = new Storage(dbfile);
    try {
      expect(storage.listRequests()).toHaveLength(4);
      for (const { requestId, stored } of outputs) {
        expect(stored).toHaveLength(200);
        expect(storage.countResults(requestId)).toBe(200);
        const tag = text(storage.getDetails(requestId, 1)[0]);
        expect(text(storage.getResults(requestId)[199]?.[1] ?? new Uint8Array())).toBe(
          `${tag}:result:200`,
        );
      }
    } finally {
      storage.close();
    }
  }, 60_000);
});
