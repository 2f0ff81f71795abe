import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runInThisContext } from 'node:vm';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type AnyFunction,
  buildFunction,
  decodeFunction,
  decodeNamespace,
  encodeFunction,
  encodeNamespace,
  encodeValue,
  type ModuleFunction,
} from './index.js';

const require = createRequire(import.meta.url);

async function ship(
  f: AnyFunction | ModuleFunction,
  ns?: Record<string, unknown>,
): Promise<AnyFunction> {
  return buildFunction(encodeFunction(f), ns && encodeNamespace(ns), { require });
}

/** A function compiled from source text, as a transpiler would have left it. */
function fromSource(source: string): AnyFunction {
  return runInThisContext(`(${source})`) as AnyFunction;
}

describe('function kinds', () => {
  it('arrow functions, with and without parentheses', async () => {
    expect(await (await ship((a: number, b: number) => a * b))(6, 7)).toBe(42);
    expect(await (await ship(fromSource('x => x + 1')))(1)).toBe(2);
  });

  it('function declarations and expressions', async () => {
    function twice(x: number): number {
      return 2 * x;
    }
    expect(await (await ship(twice))(21)).toBe(42);
    expect(await (await ship(fromSource('function () { return "anon"; }')))()).toBe('anon');
  });

  it('async functions, whose promise the caller awaits', async () => {
    const f = await ship(async (ms: number) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return 'waited';
    });
    expect(await f(1)).toBe('waited');
  });

  it('method shorthand, async methods, generators and odd method names', async () => {
    const obj = {
      add(a: number, b: number) {
        return a + b;
      },
      async later(x: number) {
        return x * 2;
      },
      *count(n: number) {
        for (let i = 0; i < n; i++) yield i;
      },
      async *stream() {
        yield 'a';
      },
      get() {
        return 'method named get';
      },
      async() {
        return 'method named async';
      },
      class() {
        return 'method named class';
      },
      'my key'() {
        return 'quoted';
      },
      [Symbol.iterator]() {
        return 'symbol-keyed';
      },
    };
    expect(await (await ship(obj.add))(2, 3)).toBe(5);
    expect(await (await ship(obj.later))(4)).toBe(8);
    expect([...((await ship(obj.count))(3) as Iterable<number>)]).toEqual([0, 1, 2]);
    const stream = (await ship(obj.stream))() as AsyncIterable<string>;
    const items: string[] = [];
    for await (const item of stream) items.push(item);
    expect(items).toEqual(['a']);
    expect(await (await ship(obj.get))()).toBe('method named get');
    expect(await (await ship(obj.async))()).toBe('method named async');
    expect(await (await ship(obj.class))()).toBe('method named class');
    expect(await (await ship(obj['my key']))()).toBe('quoted');
    expect(await (await ship(obj[Symbol.iterator]))()).toBe('symbol-keyed');
  });

  it('class and static methods', async () => {
    class Shape {
      static unit(n: number): number {
        return n;
      }
      area(side: number): number {
        return side * side;
      }
    }
    expect(await (await ship(Shape.unit))(3)).toBe(3);
    expect(await (await ship(Shape.prototype.area))(3)).toBe(9);
  });

  it('records the name and whether the function is async', () => {
    const payload = decodeFunction(encodeFunction(async function fetchAll() {}));
    expect(payload).toMatchObject({ kind: 'source', name: 'fetchAll', isAsync: true });
  });

  it('binds the function to its own name, so a recursive arrow function finds itself', async () => {
    const fact = fromSource('(n) => (n <= 1 ? 1 : n * fact(n - 1))');
    Object.defineProperty(fact, 'name', { value: 'fact' });
    expect(await (await ship(fact))(5)).toBe(120);
  });
});

describe('namespace', () => {
  it('binds values and helpers by name; helpers call each other and the main function', async () => {
    const scale = 10;
    const double = (x: number): number => 2 * x;
    const addOffset = (x: number): number => double(x) + (offsets.get('base') ?? 0);
    const offsets = new Map([['base', 1]]);
    const main = (x: number) => addOffset(x) * scale;
    const f = await ship(main, { scale, double, addOffset, offsets });
    expect(await f(4)).toBe(90);

    const isEven = (n: number): boolean => (n === 0 ? true : isOdd(n - 1));
    const isOdd = (n: number): boolean => (n === 0 ? false : isEven(n - 1));
    const countdown = (n: number): unknown[] => (n === 0 ? [] : [n, ...top(n - 1)]);
    const top = function top(n: number): unknown[] {
      return isEven(n) ? countdown(n) : ['odd', ...countdown(n)];
    };
    expect(await (await ship(top, { isEven, isOdd, countdown }))(2)).toEqual([2, 'odd', 1]);
  });

  it('ships classes as helpers', async () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
      norm(): number {
        return Math.hypot(this.x, this.y);
      }
    }
    const f = await ship((x: number, y: number) => new Point(x, y).norm(), { Point });
    expect(await f(3, 4)).toBe(5);
  });

  it('splits values from function sources', () => {
    const ns = decodeNamespace(encodeNamespace({ a: 1, when: new Date(0), helper: () => 2 }));
    expect(ns.values).toEqual({ a: 1, when: new Date(0) });
    expect(Object.keys(ns.functions)).toEqual(['helper']);
  });

  it('provides __name for sources made by esbuild/tsx keepNames', async () => {
    const payload = encodeValue({
      kind: 'source',
      source:
        'function outer() { const inner = /* @__PURE__ */ __name(() => 41, "inner"); return inner.name + ":" + (inner() + 1); }',
      name: 'outer',
      isAsync: false,
    });
    const f = await buildFunction(payload, undefined, { require });
    expect(await f()).toBe('inner:42');
    const withStaticBlock = fromSource(
      'function make() { class K { static { __name(this, "K"); } } return K.name; }',
    );
    expect(await (await ship(withStaticBlock))()).toBe('K');
  });

  it("provides TypeScript's __awaiter for ES2015-target async code", async () => {
    const f = fromSource(`function load(x) {
      return __awaiter(this, void 0, void 0, function* () {
        const y = yield Promise.resolve(x);
        return y + 1;
      });
    }`);
    expect(await (await ship(f))(1)).toBe(2);
  });

  it('provides require from the given directory', async () => {
    const f = await ship(() => require('node:path').posix.join('a', 'b'));
    expect(await f()).toBe('a/b');
  });

  it('lets an ns key shadow a provided helper', async () => {
    const f = await ship(() => require('x'), { require: 'mine' });
    // `require` is now the ns value, a string, so calling it fails as it would locally.
    expect(() => f()).toThrow(TypeError);
  });

  it('refuses keys that cannot be variable names', () => {
    expect(() => encodeNamespace({ 'my-helper': 1 })).toThrow(
      expect.objectContaining({
        code: 'BAD_NAMESPACE_NAME',
        message: expect.stringContaining('"my-helper"'),
      }),
    );
    expect(() => encodeNamespace({ default: 1 })).toThrow(
      expect.objectContaining({ code: 'BAD_NAMESPACE_NAME' }),
    );
  });

  it('names the ns key holding something uncloneable', () => {
    expect(() => encodeNamespace({ ok: 1, nested: { fn: () => 1 } })).toThrow(
      expect.objectContaining({
        code: 'NOT_SERIALIZABLE',
        message: expect.stringContaining('ns.nested cannot be serialised'),
      }),
    );
  });

  it('refuses a native helper', () => {
    expect(() => encodeNamespace({ max: Math.max })).toThrow(
      expect.objectContaining({
        code: 'NATIVE_FUNCTION',
        message: expect.stringContaining('ns.max'),
      }),
    );
  });
});

describe('refused functions', () => {
  it('a native function', () => {
    expect(() => encodeFunction(Math.max)).toThrow(
      expect.objectContaining({
        code: 'NATIVE_FUNCTION',
        message: expect.stringMatching(/^the function \(max\) is a native/),
      }),
    );
  });

  it('a bound function', () => {
    function greet(this: { who: string }) {
      return this.who;
    }
    expect(() => encodeFunction(greet.bind({ who: 'x' }))).toThrow(
      expect.objectContaining({
        code: 'BOUND_FUNCTION',
        message: expect.stringContaining('(bound greet) is a bound function'),
      }),
    );
  });

  it('a class', () => {
    class Task {}
    expect(() => encodeFunction(Task as unknown as AnyFunction)).toThrow(
      expect.objectContaining({
        code: 'CLASS_FUNCTION',
        message: expect.stringContaining('(Task) is a class'),
      }),
    );
  });

  it('a getter', () => {
    const getter = Object.getOwnPropertyDescriptor(
      {
        get size() {
          return 1;
        },
      },
      'size',
    )?.get as AnyFunction;
    expect(() => encodeFunction(getter)).toThrow(
      expect.objectContaining({ code: 'ACCESSOR', message: expect.stringContaining('getter') }),
    );
  });

  it('a private method, whose source does not compile on its own', () => {
    class Secret {
      #hidden(): number {
        return 1;
      }
      static leak(): AnyFunction {
        return new Secret().#hidden;
      }
    }
    expect(() => encodeFunction(Secret.leak())).toThrow(
      expect.objectContaining({
        code: 'UNSUPPORTED_SOURCE',
        message: expect.stringContaining('#hidden'),
      }),
    );
  });

  it('something that is neither a function nor a module reference', () => {
    expect(() => encodeFunction(42 as unknown as AnyFunction)).toThrow(
      expect.objectContaining({ code: 'BAD_MODULE_REFERENCE' }),
    );
  });
});

describe('module functions', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sheepdog serialize "q" '));
    writeFileSync(
      join(dir, 'tasks.mjs'),
      'export const square = (x) => x * x;\nexport default (x) => -x;\n',
    );
    writeFileSync(
      join(dir, 'dynamic.cjs'),
      "module.exports = Object.fromEntries([['triple', (x) => 3 * x]]);\n",
    );
  });

  it('imports an absolute path (with spaces and quotes), a file URL and a default export', async () => {
    const path = join(dir, 'tasks.mjs');
    expect(await (await ship({ module: path, export: 'square' }))(7)).toBe(49);
    expect(await (await ship({ module: pathToFileURL(path).href, export: 'square' }))(3)).toBe(9);
    expect(await (await ship({ module: path, export: 'default' }))(3)).toBe(-3);
  });

  it('finds a CommonJS export that only import()’s default exposes', async () => {
    expect(await (await ship({ module: join(dir, 'dynamic.cjs'), export: 'triple' }))(2)).toBe(6);
  });

  it('imports a package and a built-in by name', async () => {
    const parse = await ship({ module: 'acorn', export: 'parse' });
    expect((parse('1', { ecmaVersion: 2020 }) as { type: string }).type).toBe('Program');
    const join2 = await ship({ module: 'node:path', export: 'join' });
    expect(join2('a', 'b')).toBe(join('a', 'b'));
  });

  it('keeps the reference as given in the payload', () => {
    expect(decodeFunction(encodeFunction({ module: 'acorn', export: 'parse' }))).toEqual({
      kind: 'module',
      module: 'acorn',
      export: 'parse',
    });
  });

  it('refuses relative paths, other URL schemes and empty exports', () => {
    for (const ref of [
      { module: './tasks.js', export: 'f' },
      { module: 'https://example.org/tasks.js', export: 'f' },
      { module: '/abs/tasks.js', export: '' },
    ]) {
      expect(() => encodeFunction(ref)).toThrow(
        expect.objectContaining({ code: 'BAD_MODULE_REFERENCE' }),
      );
    }
  });

  it('reports a module that cannot be imported', async () => {
    await expect(ship({ module: join(dir, 'missing.mjs'), export: 'f' })).rejects.toMatchObject({
      code: 'MODULE_IMPORT_FAILED',
      message: expect.stringContaining('missing.mjs'),
    });
  });

  it('reports a missing export', async () => {
    await expect(ship({ module: join(dir, 'tasks.mjs'), export: 'cube' })).rejects.toMatchObject({
      code: 'BAD_EXPORT',
      message: expect.stringContaining('"cube"'),
    });
  });
});

describe('bad payloads', () => {
  it('refuses a function payload of the wrong shape', async () => {
    await expect(
      buildFunction(encodeValue({ kind: 'other' }), undefined, { require }),
    ).rejects.toMatchObject({
      code: 'BAD_PAYLOAD',
    });
  });

  it('refuses a source that does not compile on this Node.js', async () => {
    const payload = encodeValue({ kind: 'source', source: '(x) => {', name: '', isAsync: false });
    await expect(buildFunction(payload, undefined, { require })).rejects.toMatchObject({
      code: 'UNSUPPORTED_SOURCE',
      message: expect.stringContaining(process.version),
    });
  });

  it('refuses a source that is not a function', async () => {
    const payload = encodeValue({ kind: 'source', source: '42', name: '', isAsync: false });
    await expect(buildFunction(payload, undefined, { require })).rejects.toMatchObject({
      code: 'BAD_PAYLOAD',
    });
  });

  it('refuses an ns payload of the wrong shape', () => {
    expect(() => decodeNamespace(encodeValue([1, 2]))).toThrow(
      expect.objectContaining({ code: 'BAD_PAYLOAD' }),
    );
  });
});
