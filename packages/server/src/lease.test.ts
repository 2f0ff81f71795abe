// Leasing chunks of tasks and posting outcomes in batches, over HTTP against a real server.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeOutcomeFrames, OUTCOME_FRAMES_TYPE } from '@sheepdog/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TaskEvent } from './app.js';
import { createRequest } from './create-request.js';
import { getServer, type SheepdogServer } from './server.js';

const enc = new TextEncoder();
const bytes = (text: string): Uint8Array => enc.encode(text);
const b64 = (text: string): string => Buffer.from(text).toString('base64');
const unb64 = (text: string): string => Buffer.from(text, 'base64').toString('utf8');

let dir: string;
let server: SheepdogServer;
let requestId: number;
let token: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-lease-'));
  server = await getServer({
    dbfile: join(dir, 'db.sqlite'),
    hostname: '127.0.0.1',
    bodyLimit: 4096,
  });
  ({ requestId, token } = createRequest(
    server.storage,
    bytes('fn'),
    bytes('ns'),
    Array.from({ length: 10 }, (_, i) => bytes(`a${i + 1}`)),
    { maxAttempts: 2 },
  ));
});

afterEach(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function post(
  path: string,
  body: string | Uint8Array,
  contentType: string,
  bearer: string = token,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(new URL(`v1/requests/${requestId}/${path}`, server.url), {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': contentType },
    body,
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const lease = (body: unknown, bearer?: string) =>
  post('lease', JSON.stringify(body), 'application/json', bearer);

type Leased = { func?: string; ns?: string; tasks: { jobIndex: number; args: string }[] };

describe('POST /v1/requests/:requestId/lease', () => {
  it('hands out chunks in job-index order, with the code only when asked, then none', async () => {
    const first = await lease({ max: 4, leaseMs: 60_000, withCode: true });
    expect(first.status).toBe(200);
    const a = first.body as unknown as Leased;
    expect(unb64(a.func ?? '')).toBe('fn');
    expect(unb64(a.ns ?? '')).toBe('ns');
    expect(a.tasks.map((t) => [t.jobIndex, unb64(t.args)])).toEqual([
      [1, 'a1'],
      [2, 'a2'],
      [3, 'a3'],
      [4, 'a4'],
    ]);
    const rest = (await lease({ max: 100, leaseMs: 60_000 })).body as unknown as Leased;
    expect(rest.func).toBeUndefined();
    expect(rest.tasks.map((t) => t.jobIndex)).toEqual([5, 6, 7, 8, 9, 10]);
    const none = (await lease({ max: 100, leaseMs: 60_000 })).body as unknown as Leased & {
      retryAfterMs?: number;
    };
    expect(none.tasks).toEqual([]);
    // The other leases are still out: come back when the first may have run out.
    expect(none.retryAfterMs).toBeGreaterThan(50_000);
  });

  it('gives an expired lease to another worker, and loses it once the retries are used', async () => {
    await lease({ max: 1, leaseMs: 1 });
    await new Promise((r) => setTimeout(r, 10));
    const again = (await lease({ max: 1, leaseMs: 1 })).body as unknown as Leased;
    expect(again.tasks.map((t) => t.jobIndex)).toEqual([1]);
    await new Promise((r) => setTimeout(r, 10));
    // maxAttempts: 2; the third lease finds task 1 out of attempts.
    const third = (await lease({ max: 1, leaseMs: 60_000 })).body as unknown as Leased;
    expect(third.tasks.map((t) => t.jobIndex)).toEqual([2]);
    const [one] = server.storage.getTaskStates(requestId);
    expect(one).toMatchObject({ state: 'lost', attempts: 2 });
  });

  it('checks the token and the body', async () => {
    expect((await lease({ max: 1, leaseMs: 1 }, 'wrong')).status).toBe(401);
    const bad = await lease({ max: 0, leaseMs: 1 });
    expect(bad.status).toBe(400);
    expect((bad.body.error as { code: string }).code).toBe('INVALID_BODY');
    expect((await post('lease', 'not json', 'application/json')).status).toBe(400);
  });
});

describe('POST /v1/requests/:requestId/lease/renew', () => {
  it('keeps a renewed lease with its worker past its first expiry', async () => {
    await lease({ max: 2, leaseMs: 300 });
    const renew = (body: unknown, bearer?: string) =>
      post('lease/renew', JSON.stringify(body), 'application/json', bearer);
    await new Promise((r) => setTimeout(r, 150));
    const renewed = await renew({ indices: [1, 2, 9], leaseMs: 60_000 });
    expect(renewed).toEqual({ status: 200, body: { renewed: [1, 2] } });
    await new Promise((r) => setTimeout(r, 300));
    // Past the first lease's end, another worker gets new tasks, not 1 and 2.
    const next = (await lease({ max: 2, leaseMs: 60_000 })).body as unknown as Leased;
    expect(next.tasks.map((t) => t.jobIndex)).toEqual([3, 4]);
    expect(server.storage.getTaskStates(requestId).slice(0, 2)).toMatchObject([
      { state: 'running', attempts: 1 },
      { state: 'running', attempts: 1 },
    ]);
    expect((await renew({ indices: [1], leaseMs: 1000 }, 'wrong')).status).toBe(401);
    const bad = await renew({ indices: [0], leaseMs: 1000 });
    expect(bad.status).toBe(400);
    expect((bad.body.error as { code: string }).code).toBe('INVALID_BODY');
    expect((await renew({ indices: [1] })).status).toBe(400);
  });
});

describe('POST /v1/requests/:requestId/results', () => {
  it('stores a binary batch, per-item statuses, one onTask event per new outcome', async () => {
    const events: TaskEvent[] = [];
    const off = server.onTask((e) => events.push(e));
    await lease({ max: 10, leaseMs: 60_000 });
    const body = encodeOutcomeFrames([
      { jobIndex: 1, kind: 'result', payload: bytes('r1') },
      { jobIndex: 2, kind: 'error', payload: bytes('Error: two') },
      { jobIndex: 1, kind: 'result', payload: bytes('again') },
      { jobIndex: 99, kind: 'result', payload: bytes('r99') },
    ]);
    const answer = await post('results', body, OUTCOME_FRAMES_TYPE);
    expect(answer).toEqual({
      status: 200,
      body: { ok: true, statuses: ['stored', 'stored', 'duplicate', 'unknown'] },
    });
    expect(events.map((e) => [e.jobIndex, e.kind])).toEqual([
      [1, 'result'],
      [2, 'error'],
    ]);
    off();
    const results = server.storage.getResults(requestId);
    expect(results.map(([, r]) => Buffer.from(r).toString())).toEqual(['r1']);
  });

  it('accepts JSON items with base64 payloads, and refuses cancelled tasks per item', async () => {
    server.storage.storeResult(requestId, 3, bytes('r3'));
    server.storage.markCancelled(requestId, 'test');
    const answer = await post(
      'results',
      JSON.stringify([
        { jobIndex: 3, result: b64('x') },
        { jobIndex: 4, error: b64('Error: x') },
      ]),
      'application/json',
    );
    expect(answer.body).toEqual({ ok: true, statuses: ['duplicate', 'cancelled'] });
  });

  it('refuses malformed batches, other media types and bodies over the limit', async () => {
    const cut = encodeOutcomeFrames([{ jobIndex: 1, kind: 'result', payload: bytes('xyz') }]);
    expect((await post('results', cut.subarray(0, 10), OUTCOME_FRAMES_TYPE)).status).toBe(400);
    const mixed = JSON.stringify([{ jobIndex: 1, result: b64('x'), error: b64('y') }]);
    expect((await post('results', mixed, 'application/json')).status).toBe(400);
    expect((await post('results', 'x', 'text/plain')).status).toBe(415);
    const big = encodeOutcomeFrames([
      { jobIndex: 1, kind: 'result', payload: new Uint8Array(5000).fill(1) },
    ]);
    expect((await post('results', big, OUTCOME_FRAMES_TYPE)).status).toBe(413);
    expect(server.storage.countResultsAndErrors(requestId)).toBe(0);
  });
});
