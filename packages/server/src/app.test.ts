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
