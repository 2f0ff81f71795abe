import { Storage } from '@sheepdog/storage';
import { Hono } from 'hono';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createApp, DEFAULT_BODY_LIMIT, type TaskEvent } from './app.js';
import { createRequest } from './create-request.js';
import { ServerError } from './server-error.js';

const enc = new TextEncoder();

let storage: Storage;
let requestId: number;
let token: string;

beforeEach(() => {
  storage = new Storage(':memory:');
  ({ requestId, token } = createRequest(
    storage,
    enc.encode('f'),
    enc.encode('ns'),
    [enc.encode('a')],
    { backend: 'local', label: 'embedded', config: { concurrency: 2 } },
  ));
});

afterEach(() => {
  storage.close();
});

describe('createApp, embedded without a network', () => {
  it('serves the protocol through app.request and reports stored results to onTask', async () => {
    const events: TaskEvent[] = [];
    const app = createApp(storage, { onTask: (event) => events.push(event) });
    const headers = { authorization: `Bearer ${token}` };
    const got = await app.request(`/v1/requests/${requestId}/tasks/1`, { headers });
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual({ func: 'Zg==', ns: 'bnM=', args: 'YQ==' });
    const posted = await app.request(`/v1/requests/${requestId}/tasks/1/result`, {
      method: 'POST',
      headers,
      body: enc.encode('r'),
    });
    expect(await posted.json()).toEqual({ ok: true, duplicate: false });
    expect(events).toEqual([{ requestId, jobIndex: 1, kind: 'result' }]);
  });

  it('mounts under a prefix in another Hono app', async () => {
    const outer = new Hono().route('/sheepdog', createApp(storage));
    const got = await outer.request(`/sheepdog/v1/requests/${requestId}/tasks/1`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(got.status).toBe(200);
  });

  it('keeps createRequest meta with the request', () => {
    expect(storage.getRequest(requestId)).toMatchObject({
      backend: 'local',
      label: 'embedded',
      config: { concurrency: 2 },
    });
  });

  it('answers 503 STORAGE_UNAVAILABLE once the storage is closed', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const app = createApp(storage);
      const headers = { authorization: `Bearer ${token}` };
      // The first call caches the token hash; the second reaches the closed database.
      expect((await app.request(`/v1/requests/${requestId}/tasks/1`, { headers })).status).toBe(
        200,
      );
      storage.close();
      const answer = await app.request(`/v1/requests/${requestId}/tasks/1`, { headers });
      expect(answer.status).toBe(503);
      expect(await answer.json()).toMatchObject({ error: { code: 'STORAGE_UNAVAILABLE' } });
      expect(warn).toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it('rejects malformed options with INVALID_OPTIONS', () => {
    expect(DEFAULT_BODY_LIMIT).toBe(64 * 1024 * 1024);
    for (const options of [{ bodyLimit: 0 }, { bodyLimit: 1.5 }, { onTask: 'no' }]) {
      let error: unknown;
      try {
        createApp(storage, options as never);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ServerError);
      expect((error as ServerError).code).toBe('INVALID_OPTIONS');
    }
  });
});

describe('group commit', () => {
  it('commits the writes of concurrent calls together; a call that fails leaves the others stored', async () => {
    const n = 20;
    const big = createRequest(
      storage,
      enc.encode('f'),
      enc.encode('ns'),
      Array.from({ length: n }, (_, i) => enc.encode(String(i + 1))),
    );
    const app = createApp(storage);
    const headers = { authorization: `Bearer ${big.token}` };
    const commits = vi.spyOn(storage, 'transaction');
    const task = (i: number): string => `/v1/requests/${big.requestId}/tasks/${i}`;
    const started = await Promise.all(
      Array.from({ length: n }, (_, i) => app.request(task(i + 1), { headers })),
    );
    expect(started.map((r) => r.status)).toEqual(Array(n).fill(200));
    const post = async (i: number): Promise<Response> =>
      app.request(`${task(i)}/result`, { method: 'POST', headers, body: enc.encode(`r${i}`) });
    const posted = await Promise.all([
      ...Array.from({ length: n }, (_, i) => post(i + 1)),
      post(n + 1),
    ]);
    expect(posted.slice(0, n).map((r) => r.status)).toEqual(Array(n).fill(200));
    expect(posted[n]?.status).toBe(404);
    expect(await posted[n]?.json()).toMatchObject({ error: { code: 'UNKNOWN_TASK' } });
    // Twenty starts and twenty-one posts, in far fewer transactions than calls.
    expect(commits.mock.calls.length).toBeGreaterThanOrEqual(2);
    expect(commits.mock.calls.length).toBeLessThan(10);
    expect(storage.countResults(big.requestId)).toBe(n);
    expect(storage.getTaskStates(big.requestId).map((t) => [t.state, t.attempts])).toEqual(
      Array(n).fill(['done', 1]),
    );
  });

  it('answers a cancelled task with 409 in a group whose other writes commit', async () => {
    const app = createApp(storage);
    const headers = { authorization: `Bearer ${token}` };
    const other = createRequest(storage, enc.encode('f'), enc.encode('ns'), [enc.encode('b')]);
    storage.markCancelled(requestId, 'cancelled by the test');
    const [refused, started] = await Promise.all([
      app.request(`/v1/requests/${requestId}/tasks/1`, { headers }),
      app.request(`/v1/requests/${other.requestId}/tasks/1`, {
        headers: { authorization: `Bearer ${other.token}` },
      }),
    ]);
    expect(refused.status).toBe(409);
    expect(started.status).toBe(200);
    expect(storage.getTaskStates(other.requestId)).toMatchObject([
      { state: 'running', attempts: 1 },
    ]);
  });
});
