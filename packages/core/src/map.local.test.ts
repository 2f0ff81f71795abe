// End to end on the local backend: real worker processes, a real server on loopback and a real
// SQLite file, as a user's `map` runs on a machine without a cluster.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Storage } from '@sheepdog/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getErrors, getResults, local, map, mapAsync, type SheepdogConfig } from './index.js';

const fixtures = fileURLToPath(new URL('../test/fixtures/tasks.mjs', import.meta.url));
let dir: string;
let config: SheepdogConfig;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-map-'));
  config = { dbfile: join(dir, 'sheepdog.sqlite'), concurrency: 2 };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('map on the local backend', () => {
  it('runs a plain function over argument tuples and lone arguments, in order', async () => {
    const results = await map((a: number, b: number = 10) => a * b, [[1, 2], [3, 4], 5], config);
    expect(results).toEqual([2, 12, 50]);
  }, 30_000);

  it('awaits async functions and returned promises', async () => {
    const slowSquare = async (x: number): Promise<number> => {
      await new Promise((resolve) => setTimeout(resolve, 20 * (4 - x)));
      return x * x;
    };
    const viaPromise = (x: number): Promise<string> => Promise.resolve(`#${x}`);
    expect(await map(slowSquare, [1, 2, 3], config)).toEqual([1, 4, 9]);
    expect(await map(viaPromise, [7, 8], config)).toEqual(['#7', '#8']);
  }, 30_000);

  it('gives the function its namespace: values and helpers that call each other', async () => {
    const isEven = (n: number): boolean => (n === 0 ? true : isOdd(n - 1));
    const isOdd = (n: number): boolean => (n === 0 ? false : isEven(n - 1));
    const label = (n: number): string => `${PREFIX}${n}:${isEven(n) ? 'even' : 'odd'}`;
    const PREFIX = 'n=';
    const results = await map((n: number) => label(n), [3, 4], config, {
      label,
      isEven,
      isOdd,
      PREFIX,
    });
    expect(results).toEqual(['n=3:odd', 'n=4:even']);
  }, 30_000);

  it('runs method shorthand and function declarations', async () => {
    const tools = {
      triple(x: number): number {
        return 3 * x;
      },
    };
    function negate(x: number): number {
      return -x;
    }
    expect(await map(tools.triple, [1, 2], config)).toEqual([3, 6]);
    expect(await map(negate, [5], config)).toEqual([-5]);
  }, 30_000);

  it('imports a function named by module, which imports a package of its own', async () => {
    const people = [
      { name: 'Ada', age: 36 },
      { name: 'Alan', age: 41 },
    ];
    const described = await map<string>(
      { module: fixtures, export: 'describePerson' },
      people,
      config,
    );
    expect(described).toEqual(['Ada is 36', 'Alan is 41']);
    const doubled = await map<number>(
      { module: pathToFileURL(fixtures), export: 'default' },
      [21],
      config,
    );
    expect(doubled).toEqual([42]);
  }, 30_000);

  it('mapAsync takes a function named by module, with lone arguments as map does', async () => {
    const requestId = await mapAsync({ module: fixtures, export: 'default' }, [1, 2, 3], config);
    const results = await getResults(requestId, config.dbfile as string);
    expect(results).toEqual([
      [[1], 2],
      [[2], 4],
      [[3], 6],
    ]);
  }, 30_000);

  it('round-trips what JSON loses, in arguments and in results', async () => {
    const shared = { tag: 'shared' };
    const cyclic: { self?: unknown; n: number } = { n: 1 };
    cyclic.self = cyclic;
    const value = {
      undef: undefined,
      nan: Number.NaN,
      inf: Number.POSITIVE_INFINITY,
      ninf: Number.NEGATIVE_INFINITY,
      negZero: -0,
      date: new Date('2026-11-25T12:00:00Z'),
      regexp: /sheep+dog/gi,
      map: new Map<unknown, unknown>([
        [1, 'one'],
        ['two', 2n],
      ]),
      set: new Set([1, 'a']),
      big: 12345678901234567890n,
      typed: new Float64Array([1.5, -2]),
      bytes: new Uint8Array([0, 255]),
      buffer: Buffer.from('sheep'),
      nested: { a: [shared, shared] },
      cyclic,
      error: new RangeError('out of range'),
    };
    const [back] = await map((v: typeof value) => v, [[value]], config);
    expect(back).toBeDefined();
    const b = back as typeof value;
    expect(b.undef).toBeUndefined();
    expect('undef' in b).toBe(true);
    expect(b.nan).toBeNaN();
    expect(b.inf).toBe(Number.POSITIVE_INFINITY);
    expect(b.ninf).toBe(Number.NEGATIVE_INFINITY);
    expect(Object.is(b.negZero, -0)).toBe(true);
    expect(b.date).toEqual(value.date);
    expect(b.regexp.source).toBe('sheep+dog');
    expect(b.regexp.flags).toBe('gi');
    expect(b.map).toEqual(value.map);
    expect(b.set).toEqual(value.set);
    expect(b.big).toBe(value.big);
    expect(b.typed).toBeInstanceOf(Float64Array);
    expect([...b.typed]).toEqual([1.5, -2]);
    expect(b.bytes).toBeInstanceOf(Uint8Array);
    expect([...b.bytes]).toEqual([0, 255]);
    expect(Buffer.isBuffer(b.buffer)).toBe(true);
    expect(b.buffer.toString()).toBe('sheep');
    expect(b.nested.a[0]).toBe(b.nested.a[1]);
    expect(b.cyclic.self).toBe(b.cyclic);
    expect(b.error).toBeInstanceOf(RangeError);
    expect(b.error.message).toBe('out of range');
  }, 30_000);

  it('puts null where a task failed and keeps the errors with their stacks', async () => {
    const dbfile = join(dir, 'errors.sqlite');
    const risky = (x: number): number => {
      if (x % 2 === 0) throw new TypeError(`even input ${x}`);
      return x;
    };
    const results = await map(risky, [1, 2, 3, 4], { ...config, dbfile });
    expect(results).toEqual([1, null, 3, null]);
    const storage = new Storage(dbfile);
    const requestId = storage.listRequests().at(-1)?.id as number;
    storage.close();
    const errors = await getErrors(requestId, dbfile);
    expect(errors.map(([args, , jobIndex]) => [args, jobIndex])).toEqual([
      [[2], 2],
      [[4], 4],
    ]);
    for (const [[x], text] of errors) {
      expect(text).toContain(`TypeError: even input ${x}`);
      expect(text).toMatch(/\n\s+at /);
    }
  }, 30_000);

  it('returns at once with the request id from mapAsync; a second process reads the results', async () => {
    const dbfile = join(dir, 'async.sqlite');
    const requestId = await mapAsync((x: number) => x + 1, [1, 2, 3], { ...config, dbfile });
    expect(Number.isInteger(requestId)).toBe(true);
    // Same process, blocking until every task has finished.
    const here = await getResults(requestId, dbfile);
    expect(here).toEqual([
      [[1], 2],
      [[2], 3],
      [[3], 4],
    ]);
    // Another process reads the same request from the database file alone.
    const script = `
      const { getResults } = await import(${JSON.stringify(pathToFileURL(join(import.meta.dirname, '..', 'dist', 'index.js')).href)});
      console.log(JSON.stringify(await getResults(${requestId}, ${JSON.stringify(dbfile)}, { block: true })));
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    expect(child.stderr).toBe('');
    expect(JSON.parse(child.stdout)).toEqual([
      [[1], 2],
      [[2], 3],
      [[3], 4],
    ]);
  }, 30_000);

  it('returns an empty list for empty args without starting a job', async () => {
    expect(await map((x: number) => x, [], config)).toEqual([]);
  }, 30_000);

  it('starts tasks in this process group, or with ownProcessGroup in one of their own', async () => {
    // So that a terminal's Ctrl-C, sent to the foreground process group, reaches the tasks only
    // when nobody asked to decide about them (see the CLI's Ctrl-C tests for the whole story).
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const ours = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    const task = { module: fixtures, export: 'processGroup' };
    type Group = { pid: number; pgrp: number };
    const shared = await map<Group>(task, [1, 2], config);
    expect(shared.map((g) => g?.pgrp)).toEqual([ours, ours]);
    const own = await map<Group>(task, [1, 2], {
      ...config,
      backend: local({ concurrency: 2, ownProcessGroup: true }),
    });
    expect(own).toHaveLength(2);
    for (const g of own) {
      expect(g).toEqual({ pid: expect.any(Number), pgrp: g?.pid });
      expect(g?.pgrp).not.toBe(ours);
    }
  }, 30_000);

  it('runs 1,000 tasks and returns every result once, in order', async () => {
    const n = 1000;
    const args = Array.from({ length: n }, (_, i) => i);
    const dbfile = join(dir, 'thousand.sqlite');
    const results = await map((i: number) => i * i, args, { ...config, dbfile });
    expect(results).toEqual(args.map((i) => i * i));
    const storage = new Storage(dbfile);
    const requestId = storage.listRequests().at(-1)?.id as number;
    expect(storage.countResults(requestId)).toBe(n);
    expect(storage.countErrors(requestId)).toBe(0);
    storage.close();
  }, 240_000);
});

describe('what cannot be shipped is refused before anything is stored', () => {
  it('refuses a native function, a bound function, a class instance, a symbol and a free variable', async () => {
    const dbfile = join(dir, 'refused.sqlite');
    const c = { ...config, dbfile };
    await expect(map(Math.max, [[1, 2]], c)).rejects.toMatchObject({ code: 'NATIVE_FUNCTION' });
    await expect(map(((x: number) => x).bind(null), [1], c)).rejects.toMatchObject({
      code: 'BOUND_FUNCTION',
    });
    class Point {
      constructor(readonly x: number) {}
      norm(): number {
        return Math.abs(this.x);
      }
    }
    await expect(map((p: Point) => p.norm(), [new Point(1)], c)).rejects.toMatchObject({
      code: 'CLASS_INSTANCE',
      message: expect.stringContaining('args[0]'),
    });
    await expect(map((s: symbol) => String(s), [Symbol('x')], c)).rejects.toMatchObject({
      code: 'SYMBOL',
    });
    const outside = 3;
    await expect(map((x: number) => x + outside, [1], c)).rejects.toMatchObject({
      code: 'FREE_VARIABLE',
      message: expect.stringContaining('outside'),
    });
    const storage = new Storage(dbfile);
    expect(storage.listRequests()).toEqual([]);
    storage.close();
  }, 30_000);

  it('lists every config problem at once', async () => {
    await expect(
      map((x: number) => x, [1], {
        port: -1,
        sshDir: '',
        nonsense: true,
      } as unknown as SheepdogConfig),
    ).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
    });
    const message = await map((x: number) => x, [1], {
      port: -1,
      sshDir: '',
      nonsense: true,
    } as unknown as SheepdogConfig).catch((error: Error) => error.message);
    expect(message).toContain('port: Too small');
    expect(message).toContain('sshDir: Too small');
    expect(message).toContain('Unrecognized key: "nonsense"');
  });
});
