import { spawn } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeValue } from '@sheepdog/serialize';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type MainOptions, resolveJobIndex } from './index.js';
import { BundleRun, bundlePath, type Ran } from './test/bundle-run.js';
import { FakeServer } from './test/fake-server.js';

const TOKEN = 'secret-token';
let runner: BundleRun;
let bundle: string;
let dir: string;
let server: FakeServer | undefined;

beforeAll(() => {
  runner = new BundleRun('sheepdog worker ');
  ({ bundle, dir } = runner);
});

afterEach(async () => {
  await server?.close();
  server = undefined;
});

const jobFile = (options: Omit<MainOptions, 'env' | 'exit'>): string => runner.jobFile(options);
const runNode = (file: string, env: Record<string, string>): Promise<Ran> => runner.run(file, env);

const result = (key: string): unknown => decodeValue(server?.results.get(key) as Uint8Array);

describe('resolveJobIndex', () => {
  it('reads SHEEPDOG_TASK_ID, then SLURM_ARRAY_TASK_ID, then SGE_TASK_ID', () => {
    expect(resolveJobIndex({ SGE_TASK_ID: '4' })).toBe(4);
    expect(resolveJobIndex({ SLURM_ARRAY_TASK_ID: '5', SGE_TASK_ID: '4' })).toBe(5);
    expect(resolveJobIndex({ SHEEPDOG_TASK_ID: '6', SLURM_ARRAY_TASK_ID: '5' })).toBe(6);
  });

  it('maps array task k to indices[k - 1]', () => {
    expect(resolveJobIndex({ SGE_TASK_ID: '2' }, [10, 20, 30])).toBe(20);
    expect(() => resolveJobIndex({ SGE_TASK_ID: '4' }, [10, 20, 30])).toThrow(
      expect.objectContaining({ code: 'BAD_TASK_ID', message: expect.stringContaining('1-3') }),
    );
  });

  it('refuses a missing or malformed task id', () => {
    expect(() => resolveJobIndex({})).toThrow(expect.objectContaining({ code: 'NO_TASK_ID' }));
    // Grid Engine's value in a job that is not an array.
    expect(() => resolveJobIndex({ SGE_TASK_ID: 'undefined' })).toThrow(
      expect.objectContaining({ code: 'NO_TASK_ID' }),
    );
    for (const bad of ['0', '-1', '1.5', 'x', '2e3']) {
      expect(() => resolveJobIndex({ SHEEPDOG_TASK_ID: bad })).toThrow(
        expect.objectContaining({ code: 'BAD_TASK_ID' }),
      );
    }
  });
});

describe('the built bundle in a real node process', () => {
  it('is one self-contained file that node accepts', async () => {
    expect(statSync(bundlePath).size).toBeLessThan(64 * 1024);
    expect(bundle).not.toMatch(/require\("(@sheepdog|acorn|periscopic)/);
    expect(bundle).toContain('var SheepdogWorker =');
    const check = spawn(process.execPath, [
      '--check',
      jobFile({ url: 'http://x/', token: 't', requestId: 1 }),
    ]);
    const code = await new Promise((resolve) => check.on('close', resolve));
    expect(code).toBe(0);
  });

  it('runs the task given by SHEEPDOG_TASK_ID, posts the result and prints it', async () => {
    server = await FakeServer.start(TOKEN);
    server.addTask(5, 2, (name: string, n: bigint) => ({ greeting: `hello ${name}`, n: n * 2n }), [
      'node',
      21n,
    ]);
    const ran = await runNode(jobFile({ url: server.url, token: TOKEN, requestId: 5 }), {
      SHEEPDOG_TASK_ID: '2',
    });
    expect(ran.code).toBe(0);
    expect(result('5/2')).toEqual({ greeting: 'hello node', n: 42n });
    expect(ran.stdout).toContain('[sheepdog] request 5 task 2 result:');
    expect(ran.stdout).toContain("greeting: 'hello node'");
  });

  it('maps SGE_TASK_ID and SLURM_ARRAY_TASK_ID through indices', async () => {
    server = await FakeServer.start(TOKEN);
    for (const index of [4, 9]) server.addTask(3, index, (i: number) => i * 10, [index]);
    const file = jobFile({ url: server.url, token: TOKEN, requestId: 3, indices: [4, 9] });
    expect((await runNode(file, { SGE_TASK_ID: '2' })).code).toBe(0);
    expect((await runNode(file, { SLURM_ARRAY_TASK_ID: '1' })).code).toBe(0);
    expect(result('3/9')).toBe(90);
    expect(result('3/4')).toBe(40);
  });

  it('exits 2 with a clear message when there is no task id', async () => {
    const file = jobFile({ url: 'http://127.0.0.1:1/', token: TOKEN, requestId: 1 });
    const ran = await runNode(file, { SGE_TASK_ID: 'undefined' });
    expect(ran.code).toBe(2);
    expect(ran.stderr).toContain('[sheepdog] [worker] no task id in the environment');
    expect(ran.stderr).toContain('SHEEPDOG_TASK_ID');
  });

  it('posts the error with its stack when the function throws, and exits 0', async () => {
    server = await FakeServer.start(TOKEN);
    server.addTask(
      1,
      1,
      function failing() {
        throw new TypeError('cannot do that');
      },
      [],
    );
    const ran = await runNode(jobFile({ url: server.url, token: TOKEN, requestId: 1 }), {
      SHEEPDOG_TASK_ID: '1',
    });
    expect(ran.code).toBe(0);
    expect(server.errors.get('1/1')).toMatch(/^TypeError: cannot do that\n\s+at failing/);
    expect(ran.stderr).toContain('[sheepdog] request 1 task 1 failed:');
  });

  it('exits 3 when the server never answers, after the configured retries', async () => {
    const file = jobFile({
      url: 'http://127.0.0.1:1/',
      token: TOKEN,
      requestId: 1,
      httpRetries: 2,
      httpRetryBaseMs: 10,
    });
    const ran = await runNode(file, { SHEEPDOG_TASK_ID: '1' });
    expect(ran.code).toBe(3);
    expect(ran.stderr).toContain('failed 3 times');
    expect(ran.stderr).toContain('ECONNREFUSED');
    const fromEnv = await runNode(
      jobFile({ url: 'http://127.0.0.1:1/', token: TOKEN, requestId: 1 }),
      {
        SHEEPDOG_TASK_ID: '1',
        SHEEPDOG_HTTP_RETRIES: '1',
        SHEEPDOG_HTTP_RETRY_BASE_MS: '10',
      },
    );
    expect(fromEnv.code).toBe(3);
    expect(fromEnv.stderr).toContain('failed 2 times');
  });

  it('imports module functions and requires packages from its working directory', async () => {
    writeFileSync(join(dir, 'tasks.mjs'), 'export const cube = (x) => x ** 3;\n');
    mkdirSync(join(dir, 'node_modules', 'local-pkg'), { recursive: true });
    writeFileSync(join(dir, 'node_modules', 'local-pkg', 'index.js'), 'exports.answer = 42;\n');
    server = await FakeServer.start(TOKEN);
    server.addTask(1, 1, { module: join(dir, 'tasks.mjs'), export: 'cube' }, [3]);
    server.addTask(1, 2, { module: 'node:os', export: 'platform' }, []);
    server.addTask(1, 3, () => require('local-pkg').answer, []);
    server.addTask(1, 4, { module: 'local-pkg', export: 'answer' }, []);
    const file = jobFile({ url: server.url, token: TOKEN, requestId: 1, indices: [1, 2, 3, 4] });
    for (const k of ['1', '2', '3', '4']) await runNode(file, { SHEEPDOG_TASK_ID: k });
    expect(result('1/1')).toBe(27);
    expect(result('1/2')).toBe(process.platform);
    expect(result('1/3')).toBe(42);
    expect(server.errors.get('1/4')).toContain('no function exported as "answer"');
  });

  it('ends the process even when the task leaves a timer running', async () => {
    server = await FakeServer.start(TOKEN);
    server.addTask(
      1,
      1,
      () => {
        setInterval(() => {}, 1000);
        return 'done';
      },
      [],
    );
    const ran = await runNode(jobFile({ url: server.url, token: TOKEN, requestId: 1 }), {
      SHEEPDOG_TASK_ID: '1',
    });
    expect(ran.code).toBe(0);
    expect(result('1/1')).toBe('done');
    expect(ran.ms).toBeLessThan(5000);
  });

  it('runs the task with a capped heap when maxHeapMb is set', async () => {
    server = await FakeServer.start(TOKEN);
    server.addTask(
      1,
      1,
      () => require('node:v8').getHeapStatistics().heap_size_limit / 2 ** 20,
      [],
    );
    const ran = await runNode(
      jobFile({ url: server.url, token: TOKEN, requestId: 1, maxHeapMb: 96 }),
      { SHEEPDOG_TASK_ID: '1' },
    );
    expect(ran.code).toBe(0);
    const limitMb = result('1/1') as number;
    expect(limitMb).toBeGreaterThanOrEqual(96);
    expect(limitMb).toBeLessThan(200);
  });

  it('reports a task that runs out of heap as an error, and exits 0', async () => {
    server = await FakeServer.start(TOKEN);
    server.addTask(
      2,
      1,
      () => {
        const hog: number[][] = [];
        for (;;) hog.push(new Array(100_000).fill(1.5));
      },
      [],
    );
    const ran = await runNode(
      jobFile({ url: server.url, token: TOKEN, requestId: 2, maxHeapMb: 48 }),
      { SHEEPDOG_TASK_ID: '1' },
    );
    expect(ran.code).toBe(0);
    expect(server.errors.get('2/1')).toMatch(
      /^WorkerError: task 1 of request 2: the task's process was killed by SIGABRT before reporting\. It most likely ran out of memory above the heap limit of 48 MB/,
    );
  }, 30_000);
});
