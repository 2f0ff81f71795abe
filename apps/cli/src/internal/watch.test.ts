// When watching stops: the same retry rule as the library's, so the command never waits on a
// retry that whoever serves the request will not make.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RETRIES_DB } from '../test/helpers.js';
import { Progress, type StateCounts } from './progress.js';
import { watch } from './watch.js';

let root: string;
let dbfile: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'sheepdog-watch-'));
  dbfile = join(root, 'sheepdog.sqlite');
  copyFileSync(RETRIES_DB, dbfile);
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Watches a request until it settles, or stops it at its second look at the database. */
async function watchOnce(requestId: number): Promise<{ final: unknown; looks: number }> {
  const stop = new AbortController();
  const progress = new Progress(requestId, { mode: 'none' });
  let looks = 0;
  progress.update = (_states: StateCounts): void => {
    looks += 1;
    if (looks === 2) stop.abort();
  };
  const final = await watch(requestId, dbfile, progress, { intervalMs: 1, signal: stop.signal });
  return { final, looks };
}

describe('watch', () => {
  it('stops at once on a lease-mode task that has used its attempts: no retry is coming', async () => {
    // Request 1: retries 1, one lease-mode job that ran its task twice before losing it.
    const { final, looks } = await watchOnce(1);
    expect(looks).toBe(1);
    expect(final).toMatchObject({ lost: 1, pending: 0, running: 0 });
  });

  it('keeps looking while a lost task has a retry left', async () => {
    // Request 2: retries 1, one job of one array task per index, its task lost once.
    const { final, looks } = await watchOnce(2);
    expect(looks).toBe(2);
    expect(final).toBeUndefined();
  });
});
