import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeValue } from '@sheepdog/serialize';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, type ClientOptions } from './index.js';
import { FakeServer } from './test/fake-server.js';

const TOKEN = 'tok-en_123';
const fast: ClientOptions = {
  httpRetries: 4,
  httpRetryBaseMs: 20,
  httpRetryMaxMs: 50,
  print: false,
};
let server: FakeServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => probe.once('listening', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('Client', () => {
  it('fetches the task, runs it and posts the result', async () => {
    server = await FakeServer.start(TOKEN);
    const scale = 3;
    const times = (x: number) => x * scale;
    server.addTask(7, 2, (a: number, b: number) => times(a) + b, [4, 1], { times, scale });
    const client = new Client(server.url, TOKEN, 7, 2, fast);
    const outcome = await client.go();
    expect(outcome).toMatchObject({ kind: 'result', value: 13 });
    expect(decodeValue(server.results.get('7/2') as Uint8Array)).toBe(13);
    expect(server.hits).toEqual([
      'GET /v1/requests/7/tasks/2',
      'POST /v1/requests/7/tasks/2/result',
    ]);
  });

  it('works step by step and keeps a path prefix in the URL', async () => {
    server = await FakeServer.start(TOKEN);
    server.addTask(1, 1, async (when: Date) => new Map([['year', when.getUTCFullYear()]]), [
      new Date('2020-05-01T00:00:00Z'),
    ]);
    const client = new Client(server.url.replace(/\/$/, ''), TOKEN, 1, 1, fast);
    const details = await client.getDetails();
    expect(details.args.byteLength).toBeGreaterThan(0);
    expect(client.outcome).toBeUndefined();
    await client.run();
    expect(await client.submitResults()).toEqual({ ok: true, duplicate: false });
    expect(decodeValue(server.results.get('1/1') as Uint8Array)).toEqual(new Map([['year', 2020]]));
    // A second post is answered as a duplicate.
    expect(await client.submitResults()).toEqual({ ok: true, duplicate: true });
  });

  it('refuses to run before fetching and to submit before running', async () => {
    const client = new Client('http://127.0.0.1:1/', TOKEN, 1, 1, fast);
    await expect(client.run()).rejects.toMatchObject({ code: 'OUT_OF_ORDER' });
    await expect(client.submitResults()).rejects.toMatchObject({ code: 'OUT_OF_ORDER' });
  });

  it('posts the stack when the function throws', async () => {
    server = await FakeServer.start(TOKEN);
    server.addTask(
      1,
      1,
      function explode(x: number) {
        throw new RangeError(`bad input ${x}`);
      },
      [5],
    );
    const outcome = await new Client(server.url, TOKEN, 1, 1, fast).go();
    expect(outcome.kind).toBe('error');
    const text = server.errors.get('1/1') ?? '';
    expect(text).toMatch(/^RangeError: bad input 5\n\s+at explode/);
    expect(server.results.has('1/1')).toBe(false);
  });

  it('posts the stack of a rejected promise, and String() of a thrown non-Error', async () => {
    server = await FakeServer.start(TOKEN);
    server.addTask(1, 1, async () => Promise.reject(new Error('async nope')), []);
    server.addTask(
      1,
      2,
      () => {
        throw 'plain string';
      },
      [],
    );
    await new Client(server.url, TOKEN, 1, 1, fast).go();
    await new Client(server.url, TOKEN, 1, 2, fast).go();
    expect(server.errors.get('1/1')).toMatch(/^Error: async nope\n\s+at /);
    expect(server.errors.get('1/2')).toBe('plain string');
  });

  it('posts an error when the result cannot be serialised', async () => {
    server = await FakeServer.start(TOKEN);
    server.addTask(1, 1, () => ({ callback: () => 1 }), []);
    await new Client(server.url, TOKEN, 1, 1, fast).go();
    expect(server.errors.get('1/1')).toMatch(/SerializeError: cannot serialise/);
  });

  it("collects a generator's items as the result", async () => {
    server = await FakeServer.start(TOKEN);
    server.addTask(
      1,
      1,
      function* count(n: number) {
        for (let i = 0; i < n; i++) yield i;
      },
      [3],
    );
    server.addTask(
      1,
      2,
      async function* stream() {
        yield 'a';
        yield 'b';
      },
      [],
    );
    await new Client(server.url, TOKEN, 1, 1, fast).go();
    await new Client(server.url, TOKEN, 1, 2, fast).go();
    expect(decodeValue(server.results.get('1/1') as Uint8Array)).toEqual([0, 1, 2]);
    expect(decodeValue(server.results.get('1/2') as Uint8Array)).toEqual(['a', 'b']);
  });

  it('retries 5xx, 408 and 429 answers', async () => {
    server = await FakeServer.start(TOKEN);
    server.addTask(1, 1, () => 'ok', []);
    server.failNext = 3;
    await new Client(server.url, TOKEN, 1, 1, fast).go();
    expect(server.hits.filter((hit) => hit.startsWith('GET'))).toHaveLength(4);
    expect(server.results.has('1/1')).toBe(true);
    for (const status of [408, 429]) {
      server.addTask(2, status, (s: number) => s, [status]);
      server.failStatus = status;
      server.failNext = 1;
      await new Client(server.url, TOKEN, 2, status, fast).go();
      expect(decodeValue(server.results.get(`2/${status}`) as Uint8Array)).toBe(status);
    }
  });

  it('gives up after the configured retries with HTTP_FAILED', async () => {
    server = await FakeServer.start(TOKEN);
    server.addTask(1, 1, () => 'ok', []);
    server.failNext = 100;
    const client = new Client(server.url, TOKEN, 1, 1, { ...fast, httpRetries: 2 });
    await expect(client.go()).rejects.toMatchObject({
      code: 'HTTP_FAILED',
      message: expect.stringContaining('failed 3 times'),
    });
    expect(server.hits).toHaveLength(3);
  });

  it('does not retry a 4xx other than 408/429', async () => {
    server = await FakeServer.start(TOKEN);
    server.addTask(1, 1, () => 'ok', []);
    const wrongToken = new Client(server.url, 'wrong', 1, 1, fast);
    await expect(wrongToken.go()).rejects.toMatchObject({
      code: 'HTTP_STATUS',
      status: 401,
      message: expect.stringContaining('UNAUTHORIZED: bad token'),
    });
    const unknownTask = new Client(server.url, TOKEN, 1, 9, fast);
    await expect(unknownTask.go()).rejects.toMatchObject({ code: 'HTTP_STATUS', status: 404 });
    expect(server.hits).toHaveLength(2);
  });

  it('retries while the server is down, and succeeds once it is up', async () => {
    const port = await freePort();
    const client = new Client(`http://127.0.0.1:${port}/`, TOKEN, 1, 1, {
      ...fast,
      httpRetries: 20,
    });
    const going = client.go();
    await new Promise((resolve) => setTimeout(resolve, 300));
    server = await FakeServer.start(TOKEN, port);
    server.addTask(1, 1, () => 'finally', []);
    await expect(going).resolves.toMatchObject({ kind: 'result', value: 'finally' });
    expect(server.results.has('1/1')).toBe(true);
  });

  it('times out a silent server and retries', async () => {
    server = await FakeServer.start(TOKEN);
    server.addTask(1, 1, () => 'ok', []);
    server.hang = true;
    const client = new Client(server.url, TOKEN, 1, 1, {
      ...fast,
      httpRetries: 1,
      httpTimeoutMs: 100,
    });
    await expect(client.go()).rejects.toMatchObject({
      code: 'HTTP_FAILED',
      message: expect.stringContaining('ETIMEDOUT'),
    });
    expect(server.hits).toHaveLength(2);
  });

  it('reads retry settings from the environment, options first', async () => {
    server = await FakeServer.start(TOKEN);
    server.addTask(1, 1, () => 'ok', []);
    server.failNext = 100;
    const env = { SHEEPDOG_HTTP_RETRIES: '1', SHEEPDOG_HTTP_RETRY_BASE_MS: '5' };
    await expect(
      new Client(server.url, TOKEN, 1, 1, { print: false, env }).go(),
    ).rejects.toMatchObject({
      code: 'HTTP_FAILED',
    });
    expect(server.hits).toHaveLength(2);
    server.hits.length = 0;
    await expect(
      new Client(server.url, TOKEN, 1, 1, { print: false, env, httpRetries: 0 }).go(),
    ).rejects.toMatchObject({ code: 'HTTP_FAILED' });
    expect(server.hits).toHaveLength(1);
    expect(
      () => new Client(server?.url ?? '', TOKEN, 1, 1, { env: { SHEEPDOG_HTTP_RETRIES: 'x' } }),
    ).toThrow(expect.objectContaining({ code: 'BAD_OPTIONS' }));
    expect(() => new Client('http://host/', TOKEN, 1, 1, { httpRetries: 1.5 })).toThrow(
      /httpRetries \(env SHEEPDOG_HTTP_RETRIES\) must be an integer >= 0/,
    );
  });

  it('refuses unusable constructor arguments', () => {
    expect(() => new Client('not a url', TOKEN, 1, 1)).toThrow(
      expect.objectContaining({ code: 'BAD_OPTIONS' }),
    );
    expect(() => new Client('ftp://host/', TOKEN, 1, 1)).toThrow(
      expect.objectContaining({ code: 'BAD_OPTIONS' }),
    );
    expect(() => new Client('http://host/', 'tok en', 1, 1)).toThrow(/printable ASCII/);
    expect(() => new Client('http://host/', '', 1, 1)).toThrow(/printable ASCII/);
    expect(() => new Client('http://host/', TOKEN, 0, 1)).toThrow(
      /requestId must be a positive integer/,
    );
    expect(() => new Client('http://host/', TOKEN, 1, 1.5)).toThrow(
      /jobIndex must be a positive integer/,
    );
  });
});
