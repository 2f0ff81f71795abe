// Later attempts of a request against a real loopback server: tokens minted by a later process,
// late, duplicated and out-of-order posts, cancelled tasks.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Storage } from '@sheepdog/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TaskEvent } from './app.js';
import { addRequestToken, createRequest } from './create-request.js';
import { getServer, type SheepdogServer } from './server.js';

const enc = new TextEncoder();
const bytes = (text: string): Uint8Array => enc.encode(text);

let dir: string;
let dbfile: string;
let server: SheepdogServer;
let requestId: number;
let token: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-server-attempts-'));
  dbfile = join(dir, 'sheepdog.sqlite');
  server = await getServer({ dbfile, hostname: '127.0.0.1' });
  ({ requestId, token } = createRequest(
    server.storage,
    bytes('f'),
    bytes('ns'),
    Array.from({ length: 5 }, (_, i) => bytes(`args ${i + 1}`)),
  ));
});

afterEach(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function post(
  jobIndex: number,
  kind: 'result' | 'error',
  body: string,
  bearer = token,
): Promise<{ status: number; body: { duplicate?: boolean; error?: { code: string } } }> {
  const response = await fetch(
    new URL(`/v1/requests/${requestId}/tasks/${jobIndex}/${kind}`, server.url),
    {
      method: 'POST',
      headers: {
        authorization: `Bearer ${bearer}`,
        'content-type': 'application/octet-stream',
      },
      body: bytes(body),
    },
  );
  return { status: response.status, body: (await response.json()) as never };
}

async function fetchTask(jobIndex: number, bearer = token): Promise<number> {
  const response = await fetch(new URL(`/v1/requests/${requestId}/tasks/${jobIndex}`, server.url), {
    headers: { authorization: `Bearer ${bearer}` },
  });
  await response.arrayBuffer();
  return response.status;
}

describe('tokens minted by a later process', () => {
  it('are accepted next to the first token, even when added after the server read the hashes', async () => {
    expect(await fetchTask(1)).toBe(200);
    // Another process (its own Storage on the same file) adds a token while this server runs.
    const other = new Storage(dbfile);
    let second: string;
    try {
      second = addRequestToken(other, requestId);
    } finally {
      other.close();
    }
    expect(await fetchTask(2, second)).toBe(200);
    expect((await post(2, 'result', 'from the second token', second)).status).toBe(200);
    expect((await post(1, 'result', 'from the first token')).status).toBe(200);
    expect(server.storage.countResults(requestId)).toBe(2);
  });

  it('never open another request', async () => {
    const otherRequest = createRequest(server.storage, bytes('g'), bytes('ns'), [bytes('x')]);
    const extra = addRequestToken(server.storage, otherRequest.requestId);
    expect(await fetchTask(1, extra)).toBe(401);
    expect((await post(1, 'result', 'forged', extra)).body.error?.code).toBe('INVALID_TOKEN');
    expect(server.storage.countResults(requestId)).toBe(0);
  });
});

describe('duplicated and out-of-order posts', () => {
  it('store one row per task whatever the order, and announce each task once', async () => {
    const events: TaskEvent[] = [];
    const stop = server.onTask((event) => events.push(event));
    // Results before any fetch, in reverse order, each posted twice, some concurrently.
    const posts = [5, 4, 3, 2, 1].flatMap((i) => [
      post(i, 'result', `r${i}`),
      post(i, 'result', `r${i} again`),
    ]);
    const answers = await Promise.all(posts);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(answers.filter((a) => a.body.duplicate === false)).toHaveLength(5);
    // A fetch after the result (a worker restarted late) leaves the task done.
    expect(await fetchTask(3)).toBe(200);
    // An error after the result, from another attempt, is a duplicate too.
    expect((await post(3, 'error', 'late failure')).body.duplicate).toBe(true);
    stop();
    expect(events.map((e) => e.jobIndex).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(server.storage.countResults(requestId)).toBe(5);
    expect(server.storage.countErrors(requestId)).toBe(0);
    const results = server.storage
      .getResults(requestId)
      .map(([, r]) => new TextDecoder().decode(r));
    for (const [i, r] of results.entries()) expect(r).toMatch(new RegExp(`^r${i + 1}( again)?$`));
    expect(server.storage.getTaskStates(requestId).every((t) => t.state === 'done')).toBe(true);
  });

  it('accept a late result for a lost task once, and refuse posts for cancelled tasks with 409', async () => {
    server.storage.markLost(requestId, 1, 'exit status 137');
    expect((await post(1, 'result', 'late but fine')).body.duplicate).toBe(false);
    expect((await post(1, 'result', 'later still')).body.duplicate).toBe(true);
    server.storage.markCancelled(requestId, 'cancelled by the user');
    const refused = await post(2, 'result', 'too late');
    expect(refused.status).toBe(409);
    expect(refused.body.error?.code).toBe('TASK_CANCELLED');
    expect((await post(2, 'error', 'too late')).status).toBe(409);
    expect(await fetchTask(2)).toBe(409);
    expect(server.storage.countResults(requestId)).toBe(1);
  });
});
