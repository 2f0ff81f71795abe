// Child process: runs one storage case, so its peak RSS (maxRSS of this process) is the case's own.
import { rmSync } from 'node:fs';
import { Storage } from '@sheepdog/storage';
import { serveParent } from './child.js';
import { EMPTY_NS, IDENTITY_FUNC, trivialArgs, trivialArgsV8, trivialResult } from './payloads.js';

/** What the parent asks for. */
export type StorageCase =
  /** Time `newRequest` of n trivial tasks into a new file (removed afterwards). */
  | { kind: 'newRequest'; dbfile: string; n: number }
  /** The same through `newRequestAsync` (chunked transactions), the path `map` takes. */
  | { kind: 'newRequestAsync'; dbfile: string; n: number }
  /**
   * Time encoding n trivial args alone: the part of `newRequest`'s input that is not storage,
   * with core's `encodeArgs` or with `v8.serialize`.
   */
  | { kind: 'encodeArgs'; n: number; encoder: 'encodeArgs' | 'v8.serialize' }
  /** Untimed setup: a request of n tasks that all have results, for `getTasksWithResults`. */
  | { kind: 'prepareRead'; dbfile: string; n: number }
  /** Time `getTasksWithResults` of a prepared request, from a fresh process. */
  | { kind: 'getTasksWithResults'; dbfile: string; requestId: number; n: number }
  /** Time storing n results one at a time (each its own transaction), into a new file. */
  | { kind: 'storeResults'; dbfile: string; n: number };

/** What the child answers. */
export interface StorageCaseResult {
  timeMs: number;
  /** maxRSS of the child when the case ended: its peak, setup included. */
  peakRssMb: number;
  /** maxRSS just before the timed part: Node, the modules and the open database. */
  startRssMb: number;
  /** The request the case created (prepareRead). */
  requestId?: number;
  /** Whether the stored data is what it should be; `detail` says what is wrong. */
  ok: boolean;
  detail?: string;
}

function maxRssMb(): number {
  // resourceUsage().maxRSS is in kilobytes.
  return process.resourceUsage().maxRSS / 1024;
}

function timed(work: () => void): number {
  const t0 = performance.now();
  work();
  return performance.now() - t0;
}

type Verdict = Pick<StorageCaseResult, 'ok' | 'detail'>;

function expectCount(what: string, actual: number, expected: number): Verdict {
  return actual === expected
    ? { ok: true }
    : { ok: false, detail: `${what}: ${actual}, expected ${expected}` };
}

function removeDatabase(dbfile: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbfile}${suffix}`, { force: true });
}

async function run(input: StorageCase): Promise<StorageCaseResult> {
  switch (input.kind) {
    case 'encodeArgs': {
      const startRssMb = maxRssMb();
      let bytes = 0;
      const timeMs = timed(() => {
        const payloads = input.encoder === 'encodeArgs' ? trivialArgs : trivialArgsV8;
        for (const args of payloads(input.n)) bytes += args.byteLength;
      });
      return { timeMs, startRssMb, peakRssMb: maxRssMb(), ok: bytes > 0 };
    }
    case 'newRequest': {
      const storage = new Storage(input.dbfile);
      const startRssMb = maxRssMb();
      let id = 0;
      const timeMs = timed(() => {
        id = storage.newRequest(IDENTITY_FUNC, EMPTY_NS, trivialArgs(input.n));
      });
      const peakRssMb = maxRssMb();
      const check = expectCount('tasks stored', storage.countTasks(id), input.n);
      storage.close();
      removeDatabase(input.dbfile);
      return { timeMs, startRssMb, peakRssMb, ...check };
    }
    case 'newRequestAsync': {
      const storage = new Storage(input.dbfile);
      const startRssMb = maxRssMb();
      const t0 = performance.now();
      const id = await storage.newRequestAsync(IDENTITY_FUNC, EMPTY_NS, trivialArgs(input.n));
      const timeMs = performance.now() - t0;
      const peakRssMb = maxRssMb();
      const check = expectCount('tasks stored', storage.countTasks(id), input.n);
      storage.close();
      removeDatabase(input.dbfile);
      return { timeMs, startRssMb, peakRssMb, ...check };
    }
    case 'prepareRead': {
      const storage = new Storage(input.dbfile);
      const requestId = storage.newRequest(IDENTITY_FUNC, EMPTY_NS, trivialArgs(input.n));
      for (let i = 1; i <= input.n; i++) storage.storeResult(requestId, i, trivialResult(i));
      storage.close();
      return { timeMs: 0, startRssMb: 0, peakRssMb: maxRssMb(), requestId, ok: true };
    }
    case 'getTasksWithResults': {
      const storage = new Storage(input.dbfile);
      const startRssMb = maxRssMb();
      let rows: ReturnType<Storage['getTasksWithResults']> = [];
      const timeMs = timed(() => {
        rows = storage.getTasksWithResults(input.requestId);
      });
      const peakRssMb = maxRssMb();
      storage.close();
      const missing = rows.filter(([, result]) => result === null).length;
      const check: Verdict =
        missing > 0
          ? { ok: false, detail: `${missing} of ${rows.length} rows without a result` }
          : expectCount('rows read', rows.length, input.n);
      return { timeMs, startRssMb, peakRssMb, ...check };
    }
    case 'storeResults': {
      const storage = new Storage(input.dbfile);
      const id = storage.newRequest(IDENTITY_FUNC, EMPTY_NS, trivialArgs(input.n));
      const results = Array.from({ length: input.n }, (_, i) => trivialResult(i + 1));
      const startRssMb = maxRssMb();
      let fresh = 0;
      const timeMs = timed(() => {
        for (let i = 1; i <= input.n; i++) {
          if (storage.storeResult(id, i, results[i - 1] as Uint8Array)) fresh += 1;
        }
      });
      const peakRssMb = maxRssMb();
      const check: Verdict =
        fresh !== input.n
          ? { ok: false, detail: `${fresh} stores were new, expected ${input.n}` }
          : expectCount('results stored', storage.countResults(id), input.n);
      storage.close();
      return { timeMs, startRssMb, peakRssMb, ...check };
    }
  }
}

serveParent((input: StorageCase) => run(input));
