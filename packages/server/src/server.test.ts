import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Storage } from '@sheepdog/storage';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TaskEvent } from './app.js';
import { createRequest } from './create-request.js';
import { getServer, type SheepdogServer } from './server.js';
import { ServerError, type ServerErrorCode } from './server-error.js';

const enc = new TextEncoder();
const bytes = (text: string): Uint8Array => enc.encode(text);
const text = (data: Uint8Array | undefined): string => new TextDecoder().decode(data);
const fromBase64 = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8');

let dir: string;
let dbfile: string;
let server: SheepdogServer;
let requestId: number;
let token: string;
const started: SheepdogServer[] = [];

/** Starts a server and remembers it, so afterEach stops it even when a test fails. */
async function start(options: Parameters<typeof getServer>[0]): Promise<SheepdogServer> {
  const s = await getServer(options);
  started.push(s);
  return s;
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-server-'));
  dbfile = join(dir, 'sheepdog.sqlite');
  server = await start({ dbfile, hostname: '127.0.0.1' });
  ({ requestId, token } = createRequest(server.storage, bytes('myfunc'), bytes('ns'), [
    bytes('a'),
    bytes('b'),
    bytes('c'),
  ]));
});

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});

/** What fetch accepts as a body (lib DOM is not loaded, so `BodyInit` has no global name). */
type RequestBody = NonNullable<RequestInit['body']>;

interface Answer {
  status: number;
  body: { error?: { code: string; message: string }; [key: string]: unknown };
  headers: Headers;
}

async function call(
  method: 'GET' | 'POST',
  path: string,
  options: { token?: string | null; body?: RequestBody; headers?: Record<string, string> } = {},
  on: SheepdogServer = server,
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  const bearer = options.token === undefined ? token : options.token;
  if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
  const response = await fetch(new URL(path, on.url), {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: options.body }),
  });
  return {
    status: response.status,
    body: (await response.json()) as Answer['body'],
    headers: response.headers,
  };
}

const task = (jobIndex: number | string, id: number | string = requestId): string =>
  `/v1/requests/${id}/tasks/${jobIndex}`;

function postResult(jobIndex: number, result: string, options = {}): Promise<Answer> {
  return call('POST', `${task(jobIndex)}/result`, {
    body: bytes(result),
    headers: { 'content-type': 'application/octet-stream' },
    ...options,
  });
}

function expectError(answer: Answer, status: number, code: string): void {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  expect(answer.body.error?.code).toBe(code);
  expect(answer.body.error?.message).toEqual(expect.any(String));
}

function expectNothingStored(id = requestId): void {
  expect(server.storage.countResultsAndErrors(id)).toBe(0);
}

async function rejects(run: () => Promise<unknown>, code: ServerErrorCode): Promise<ServerError> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ServerError);
  expect((error as ServerError).code).toBe(code);
  // The message is the bare text; printers put `[sheepdog] [server]` before it, from `origin`.
  expect((error as ServerError).origin).toBe('server');
  expect((error as ServerError).message).not.toMatch(/^\[sheepdog\]/);
  return error as ServerError;
}

describe("the original's server suite, over HTTP", () => {
  it('gets the function, namespace and arguments of a task', async () => {
    const answer = await call('GET', task(2));
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    expect(Object.keys(answer.body).sort()).toEqual(['args', 'func', 'ns']);
    expect(fromBase64(answer.body.func as string)).toBe('myfunc');
    expect(fromBase64(answer.body.ns as string)).toBe('ns');
    expect(fromBase64(answer.body.args as string)).toBe('b');
  });

  it('stores a posted result and answers OK', async () => {
    const answer = await postResult(2, 'abc');
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ ok: true, duplicate: false });
    expect(server.storage.getResults(requestId)).toEqual([[bytes('b'), bytes('abc')]]);
  });

  it('stores a posted error and answers OK', async () => {
    const answer = await call('POST', `${task(2)}/error`, {
      body: 'Error: oops\n    at f (file.js:1:1)',
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ ok: true, duplicate: false });
    expect(server.storage.getErrors(requestId)).toEqual([
      [bytes('b'), bytes('Error: oops\n    at f (file.js:1:1)'), 2],
    ]);
  });

  it('requires a token: 401 without one', async () => {
    const answer = await call('GET', task(2), { token: null });
    expectError(answer, 401, 'MISSING_TOKEN');
    expect(answer.headers.get('www-authenticate')).toBe('Bearer realm="sheepdog"');
  });

  it('requires the correct token: 401 with a wrong one', async () => {
    expectError(await call('GET', task(2), { token: 'wrong' }), 401, 'INVALID_TOKEN');
    expectError(await call('GET', task(2), { token: `${token}x` }), 401, 'INVALID_TOKEN');
  });

  it('runs on some free port when none is given', async () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
    const answer = await call('GET', task(1));
    expect(fromBase64(answer.body.args as string)).toBe('a');
  });
});

describe('getServer: one server per port', () => {
  it('returns the same server for the same port and dbfile', async () => {
    const again = await getServer({ port: server.port, dbfile });
    expect(again).toBe(server);
    const relative = await getServer({
      port: server.port,
      dbfile: join(dir, '.', 'sheepdog.sqlite'),
    });
    expect(relative).toBe(server);
  });

  it('refuses a running port with another dbfile', async () => {
    const error = await rejects(
      () => getServer({ port: server.port, dbfile: join(dir, 'other.sqlite') }),
      'PORT_IN_USE_OTHER_DB',
    );
    expect(error.message).toContain(String(server.port));
  });

  it('refuses a running port with another explicit hostname', async () => {
    await rejects(
      () => getServer({ port: server.port, dbfile, hostname: '0.0.0.0' }),
      'PORT_IN_USE_OTHER_HOST',
    );
  });

  it('reuses the free-port server for later calls without a port on the same dbfile', async () => {
    expect(await getServer({ dbfile })).toBe(server);
    expect(await getServer({ dbfile, port: 0 })).toBe(server);
    const other = await start({ dbfile: join(dir, 'other.sqlite'), hostname: '127.0.0.1' });
    expect(other).not.toBe(server);
    expect(other.port).not.toBe(server.port);
  });

  it('gives concurrent calls for one new port the same server', async () => {
    const probe = await start({ dbfile: join(dir, 'probe.sqlite'), hostname: '127.0.0.1' });
    const port = probe.port;
    await probe.stop();
    const file = join(dir, 'concurrent.sqlite');
    const [a, b] = await Promise.all([
      start({ port, dbfile: file, hostname: '127.0.0.1' }),
      start({ port, dbfile: file }),
    ]);
    expect(a).toBe(b);
    expect(a.port).toBe(port);
  });

  it('binds all interfaces by default and serves on the chosen port', async () => {
    const probe = await start({ dbfile: join(dir, 'probe.sqlite') });
    expect(probe.hostname).toBe('0.0.0.0');
    expect(probe.url).toBe(`http://127.0.0.1:${probe.port}/`);
    const port = probe.port;
    await probe.stop();

    const fixed = await start({ port, dbfile: join(dir, 'fixed.sqlite') });
    expect(fixed.port).toBe(port);
    const created = createRequest(fixed.storage, bytes('f'), bytes('n'), [bytes('x')]);
    const answer = await call('GET', task(1, created.requestId), { token: created.token }, fixed);
    expect(fromBase64(answer.body.args as string)).toBe('x');
  });

  it('stop() closes the server and the storage and forgets the port', async () => {
    const port = server.port;
    await server.stop();
    await server.stop();
    await expect(fetch(server.url)).rejects.toThrow();
    expect(() => server.storage.countTasks(requestId)).toThrow(/closed/);
    const fresh = await start({ port, dbfile, hostname: '127.0.0.1' });
    expect(fresh).not.toBe(server);
    expect(fresh.storage.countTasks(requestId)).toBe(3);
    const other = await start({ port: 0, dbfile: join(dir, 'x.sqlite'), hostname: '127.0.0.1' });
    await other.stop();
    // The port of a stopped server can go to another dbfile.
    const reused = await start({ port: other.port, dbfile: join(dir, 'y.sqlite') });
    expect(reused.port).toBe(other.port);
  });

  it('reports a port taken by another program as PORT_IN_USE', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((ready) => blocker.listen(0, '127.0.0.1', ready));
    try {
      const port = (blocker.address() as { port: number }).port;
      await rejects(
        () => getServer({ port, dbfile: join(dir, 'blocked.sqlite'), hostname: '127.0.0.1' }),
        'PORT_IN_USE',
      );
      // A failed start leaves nothing behind: the port can be tried again.
      await rejects(
        () => getServer({ port, dbfile: join(dir, 'other.sqlite'), hostname: '127.0.0.1' }),
        'PORT_IN_USE',
      );
    } finally {
      await new Promise((closed) => blocker.close(closed));
    }
  });

  it('reports malformed options together as INVALID_OPTIONS', async () => {
    const error = await rejects(
      () => getServer({ port: -1, dbfile: '', hostname: '' } as never),
      'INVALID_OPTIONS',
    );
    expect(error.message).toMatch(/port/);
    expect(error.message).toMatch(/dbfile/);
    expect(error.message).toMatch(/hostname/);
    await rejects(() => getServer({ port: 1.5, dbfile } as never), 'INVALID_OPTIONS');
  });
});

describe('auth is per request', () => {
  it("a token for request A can neither read nor write request B's tasks", async () => {
    const b = createRequest(server.storage, bytes('g'), bytes('nsB'), [bytes('B1')]);
    expectError(await call('GET', task(1, b.requestId)), 401, 'INVALID_TOKEN');
    expectError(
      await call('POST', `${task(1, b.requestId)}/result`, { body: bytes('forged') }),
      401,
      'INVALID_TOKEN',
    );
    expectError(
      await call('POST', `${task(1, b.requestId)}/error`, { body: 'forged' }),
      401,
      'INVALID_TOKEN',
    );
    expectError(
      await call('POST', `${task(1)}/result`, { token: b.token, body: bytes('forged') }),
      401,
      'INVALID_TOKEN',
    );
    expectNothingStored(b.requestId);
    expectNothingStored();
    expect(server.storage.getRequest(b.requestId).states.pending).toBe(1);
    const own = await call('GET', task(1, b.requestId), { token: b.token });
    expect(fromBase64(own.body.args as string)).toBe('B1');
  });

  it('keeps only the SHA-256 of the token in the database', () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(server.storage.getTokenHash(requestId)).toBe(
      createHash('sha256').update(token).digest('hex'),
    );
    const summary = JSON.stringify(server.storage.listRequests());
    expect(summary).not.toContain(token);
  });

  it('refuses every token for a request stored without a token hash', async () => {
    const id = server.storage.newRequest(bytes('f'), bytes('n'), [bytes('x')]);
    expectError(await call('GET', task(1, id)), 401, 'INVALID_TOKEN');
    expectError(await call('GET', task(1, id), { token: '' }), 401, 'MISSING_TOKEN');
  });

  it('rejects malformed Authorization headers', async () => {
    for (const authorization of ['Basic c2hlZXBkb2c6cGFzc3dvcmQ=', 'Bearer', token, `Bearer a b`]) {
      const answer = await call('GET', task(1), { token: null, headers: { authorization } });
      expect(answer.status, authorization).toBe(401);
    }
  });

  it('accepts a request created by another process after the server started', async () => {
    expectError(await call('GET', task(1, requestId + 1)), 404, 'UNKNOWN_REQUEST');
    const other = new Storage(dbfile);
    try {
      const created = createRequest(other, bytes('late'), bytes('n'), [bytes('L1')]);
      expect(created.requestId).toBe(requestId + 1);
      const answer = await call('GET', task(1, created.requestId), { token: created.token });
      expect(fromBase64(answer.body.func as string)).toBe('late');
    } finally {
      other.close();
    }
  });
});

describe('bad input gets a 4xx JSON error and stores nothing', () => {
  it('malformed ids: 400 INVALID_PARAMS naming the parameter', async () => {
    const cases: [string, string][] = [
      [task(1, 'abc'), 'requestId'],
      [task(1, 0), 'requestId'],
      [task(1, -1), 'requestId'],
      [task(1, '1.5'), 'requestId'],
      [task(1, '01'), 'requestId'],
      [task(1, '99999999999999999999'), 'requestId'],
      [task('x'), 'jobIndex'],
      [task(0), 'jobIndex'],
      [task('2e3'), 'jobIndex'],
    ];
    for (const [path, name] of cases) {
      const get = await call('GET', path);
      expectError(get, 400, 'INVALID_PARAMS');
      expect(get.body.error?.message, path).toContain(name);
      expectError(
        await call('POST', `${path}/result`, { body: bytes('r') }),
        400,
        'INVALID_PARAMS',
      );
      expectError(await call('POST', `${path}/error`, { body: 'e' }), 400, 'INVALID_PARAMS');
    }
    expectNothingStored();
  });

  it('unknown request: 404 UNKNOWN_REQUEST', async () => {
    expectError(await call('GET', task(1, 999)), 404, 'UNKNOWN_REQUEST');
    expectError(
      await call('POST', `${task(1, 999)}/result`, { body: bytes('r') }),
      404,
      'UNKNOWN_REQUEST',
    );
    expectError(await call('POST', `${task(1, 999)}/error`, { body: 'e' }), 404, 'UNKNOWN_REQUEST');
    expectNothingStored();
  });

  it('unknown index: 404 UNKNOWN_TASK', async () => {
    const get = await call('GET', task(4));
    expectError(get, 404, 'UNKNOWN_TASK');
    expect(get.body.error?.message).toContain('1..3');
    expect(get.body.error?.message).not.toContain(dir);
    expectError(await postResult(4, 'r'), 404, 'UNKNOWN_TASK');
    expectError(await call('POST', `${task(4)}/error`, { body: 'e' }), 404, 'UNKNOWN_TASK');
    expectNothingStored();
  });

  it('bad bodies: 400 INVALID_BODY (empty, non-UTF-8 error) and 415 for forms and JSON', async () => {
    expectError(await postResult(1, ''), 400, 'INVALID_BODY');
    expectError(await call('POST', `${task(1)}/result`), 400, 'INVALID_BODY');
    expectError(await call('POST', `${task(1)}/error`, { body: '' }), 400, 'INVALID_BODY');
    const notUtf8 = new Uint8Array([0x45, 0xff, 0xfe, 0x80]);
    const answer = await call('POST', `${task(1)}/error`, { body: notUtf8 });
    expectError(answer, 400, 'INVALID_BODY');
    expect(answer.body.error?.message).toContain('UTF-8');
    expectError(
      await call('POST', `${task(1)}/result`, { body: new URLSearchParams({ result: 'abc' }) }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    const form = new FormData();
    form.set('error', 'oops');
    expectError(
      await call('POST', `${task(1)}/error`, { body: form }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    expectError(
      await postResult(1, '{"a":1}', { headers: { 'content-type': 'application/json' } }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    expectNothingStored();
    expect(server.storage.getRequest(requestId).states.pending).toBe(3);
  });

  it('unknown endpoints and methods: 404 NOT_FOUND', async () => {
    expectError(await call('GET', '/'), 404, 'NOT_FOUND');
    expectError(await call('POST', task(1), { body: bytes('r') }), 404, 'NOT_FOUND');
    expectError(await call('GET', `${task(1)}/result`), 404, 'NOT_FOUND');
    expectNothingStored();
  });

  it('a body over the limit: 413 BODY_TOO_LARGE, with or without Content-Length', async () => {
    const small = await start({
      dbfile: join(dir, 'small.sqlite'),
      hostname: '127.0.0.1',
      bodyLimit: 1024,
    });
    const created = createRequest(small.storage, bytes('f'), bytes('n'), [bytes('x')]);
    const post = (body: RequestBody): Promise<Answer> =>
      call('POST', `${task(1, created.requestId)}/result`, { token: created.token, body }, small);

    expectError(await post(new Uint8Array(1025)), 413, 'BODY_TOO_LARGE');
    // A chunked upload has no Content-Length: the limit is enforced while reading.
    const chunked = async (size: number): Promise<Answer> => {
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let sent = 0; sent < size; sent += 100) controller.enqueue(new Uint8Array(100));
          controller.close();
        },
      });
      const response = await fetch(new URL(`${task(1, created.requestId)}/result`, small.url), {
        method: 'POST',
        headers: { authorization: `Bearer ${created.token}` },
        body: stream,
        duplex: 'half',
      } as RequestInit);
      return {
        status: response.status,
        body: (await response.json()) as Answer['body'],
        headers: response.headers,
      };
    };
    expectError(await chunked(2000), 413, 'BODY_TOO_LARGE');
    expect(small.storage.countResults(created.requestId)).toBe(0);

    const atLimit = await post(new Uint8Array(1024).fill(7));
    expect(atLimit.body).toEqual({ ok: true, duplicate: false });
    expect(small.storage.getResults(created.requestId)[0]?.[1]).toEqual(
      new Uint8Array(1024).fill(7),
    );
  });
});

describe('duplicates', () => {
  it('answers a repeated result post as a duplicate and keeps the first result', async () => {
    expect((await postResult(1, 'first')).body).toEqual({ ok: true, duplicate: false });
    const again = await postResult(1, 'second');
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ok: true, duplicate: true });
    expect(server.storage.getResults(requestId)).toEqual([[bytes('a'), bytes('first')]]);
    expect(server.storage.countResults(requestId)).toBe(1);
  });

  it('answers a repeated error post as a duplicate and keeps the first error', async () => {
    const post = (body: string): Promise<Answer> => call('POST', `${task(3)}/error`, { body });
    expect((await post('first')).body).toEqual({ ok: true, duplicate: false });
    expect((await post('second')).body).toEqual({ ok: true, duplicate: true });
    expect(server.storage.getErrors(requestId)).toEqual([[bytes('c'), bytes('first'), 3]]);
  });
});

describe('task state and payloads', () => {
  it('GET marks the task running; a result marks it done', async () => {
    await call('GET', task(1));
    expect(server.storage.getRequest(requestId).states).toMatchObject({ pending: 2, running: 1 });
    await postResult(1, 'r');
    await call('GET', task(1));
    expect(server.storage.getRequest(requestId).states).toMatchObject({ pending: 2, done: 1 });
  });

  it('carries binary payloads byte for byte, including a 4 MB result', async () => {
    const binary = new Uint8Array(4 * 1024 * 1024).map((_, i) => (i * 31) % 256);
    const created = createRequest(server.storage, binary, new Uint8Array([0, 0, 0]), [binary]);
    const got = await call('GET', task(1, created.requestId), { token: created.token });
    expect(Buffer.from(got.body.args as string, 'base64').equals(binary)).toBe(true);
    expect(Buffer.from(got.body.ns as string, 'base64')).toEqual(Buffer.from([0, 0, 0]));
    const posted = await call('POST', `${task(1, created.requestId)}/result`, {
      token: created.token,
      body: binary,
    });
    expect(posted.body).toEqual({ ok: true, duplicate: false });
    const stored = server.storage.getResults(created.requestId)[0]?.[1];
    expect(stored !== undefined && Buffer.from(stored).equals(binary)).toBe(true);
  });
});

describe('many workers at once', () => {
  it('200 concurrent result posts (and 200 concurrent repeats): none lost, none duplicated', async () => {
    const n = 200;
    const args = Array.from({ length: n }, (_, i) => bytes(`arg${i + 1}`));
    const created = createRequest(server.storage, bytes('f'), bytes('n'), args);
    const events: TaskEvent[] = [];
    server.onTask((event) => events.push(event));
    const post = (jobIndex: number, value: string): Promise<Answer> =>
      call('POST', `${task(jobIndex, created.requestId)}/result`, {
        token: created.token,
        body: bytes(value),
      });
    const indexes = Array.from({ length: n }, (_, i) => i + 1);
    const answers = await Promise.all([
      ...indexes.map((j) => post(j, `first${j}`)),
      ...indexes.map((j) => post(j, `again${j}`)),
    ]);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(answers.filter((a) => a.body.duplicate === false)).toHaveLength(n);
    expect(server.storage.countResults(created.requestId)).toBe(n);
    const results = server.storage.getResults(created.requestId);
    results.forEach(([argsBytes, result], i) => {
      expect(text(argsBytes)).toBe(`arg${i + 1}`);
      expect(text(result)).toMatch(new RegExp(`^(first|again)${i + 1}$`));
    });
    // One event per task, none for the duplicates.
    expect(events).toHaveLength(n);
    expect(new Set(events.map((e) => e.jobIndex)).size).toBe(n);
    expect(server.storage.getRequest(created.requestId).states.done).toBe(n);
  });
});

describe('onTask', () => {
  it('tells listeners synchronously about each stored result and error, until unsubscribed', async () => {
    const events: TaskEvent[] = [];
    const seenCounts: number[] = [];
    const unsubscribe = server.onTask((event) => {
      events.push(event);
      // Synchronous: the row is already stored when the listener runs.
      seenCounts.push(server.storage.countResultsAndErrors(event.requestId));
    });
    await postResult(1, 'r1');
    await call('POST', `${task(2)}/error`, { body: 'boom' });
    await postResult(1, 'dup');
    expect(events).toEqual([
      { requestId, jobIndex: 1, kind: 'result' },
      { requestId, jobIndex: 2, kind: 'error' },
    ]);
    expect(seenCounts).toEqual([1, 2]);
    unsubscribe();
    unsubscribe();
    await postResult(3, 'r3');
    expect(events).toHaveLength(2);
  });

  it('a listener that throws does not break the response', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const calls: number[] = [];
      server.onTask(() => {
        throw new Error('listener bug');
      });
      server.onTask((event) => calls.push(event.jobIndex));
      const answer = await postResult(2, 'r');
      expect(answer.body).toEqual({ ok: true, duplicate: false });
      expect(calls).toEqual([2]);
      expect(String(warn.mock.calls[0]?.[0])).toContain('listener bug');
    } finally {
      warn.mockRestore();
    }
  });
});
