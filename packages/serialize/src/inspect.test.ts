import { runInNewContext, runInThisContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import type { AnyFunction } from './index.js';
import { checkArgs, checkValue, inspectFunction } from './inspect.js';

function fromSource(source: string): AnyFunction {
  return runInThisContext(`(${source})`) as AnyFunction;
}

const refusal = (code: string, text: string | RegExp) =>
  expect.objectContaining({
    code,
    message: expect.stringMatching(
      typeof text === 'string' ? text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : text,
    ),
  });

describe('inspectFunction: functions', () => {
  it('accepts a function using only its arguments, globals, ns, and what the worker provides', () => {
    const limit = 3;
    const clamp = (x: number): number => Math.min(x, limit);
    expect(() =>
      inspectFunction(
        (xs: number[]) => {
          console.log(JSON.stringify(xs), new Date(), Buffer.alloc(1), globalThis);
          return xs.map(clamp);
        },
        { clamp, limit },
      ),
    ).not.toThrow();
    expect(() =>
      inspectFunction(
        fromSource(`function outer(a) {
          const inner = __name(() => require('node:os').cpus().length, 'inner');
          const K = class Named { static make() { return new Named(); } };
          label: for (const x of [a]) { if (x) break label; }
          return new.target ?? outer(inner() + K.make() + arguments.length);
        }`),
      ),
    ).not.toThrow();
  });

  it('refuses a native function', () => {
    expect(() => inspectFunction(Math.max)).toThrow(
      refusal('NATIVE_FUNCTION', 'the function (max) is a native function'),
    );
  });

  it('refuses a bound function', () => {
    const f = (() => 1).bind(null);
    expect(() => inspectFunction(f)).toThrow(refusal('BOUND_FUNCTION', 'is a bound function'));
  });

  it('refuses a class as the function', () => {
    class Job {}
    expect(() => inspectFunction(Job as unknown as AnyFunction)).toThrow(
      refusal('CLASS_FUNCTION', '(Job) is a class'),
    );
  });

  it('refuses a getter', () => {
    const descriptor = Object.getOwnPropertyDescriptor(
      {
        get value() {
          return 1;
        },
      },
      'value',
    );
    expect(() => inspectFunction(descriptor?.get as AnyFunction)).toThrow(
      refusal('ACCESSOR', 'getter or setter'),
    );
  });

  it('refuses a free variable of the function and names it', () => {
    const secret = 42;
    expect(() => inspectFunction((x: number) => x + secret)).toThrow(
      refusal('FREE_VARIABLE', 'the function uses "secret", which is neither in ns nor a global'),
    );
    expect(() => inspectFunction((x: number) => x + secret, { secret })).not.toThrow();
  });

  it('refuses a free variable of an ns helper and names the helper', () => {
    const rate = 0.5;
    const discount = (x: number): number => x * rate;
    expect(() => inspectFunction((x: number) => discount(x), { discount })).toThrow(
      refusal('FREE_VARIABLE', 'ns.discount uses "rate"'),
    );
    expect(() => inspectFunction((x: number) => discount(x), { discount, rate })).not.toThrow();
  });

  it('explains CommonJS variables and compiler helpers', () => {
    expect(() => inspectFunction(fromSource('() => __dirname'))).toThrow(
      refusal('FREE_VARIABLE', 'CommonJS module variables do not exist on the worker'),
    );
    expect(() => inspectFunction(fromSource('() => __generator(this, () => 1)'))).toThrow(
      refusal('FREE_VARIABLE', 'compiler helper'),
    );
  });

  it('refuses an ns key that cannot be a variable', () => {
    expect(() => inspectFunction(() => 1, { 'a b': 1 })).toThrow(
      refusal('BAD_NAMESPACE_NAME', '"a b"'),
    );
  });

  it('refuses a native ns helper, and accepts a class helper', () => {
    expect(() => inspectFunction(() => 1, { parse: JSON.parse })).toThrow(
      refusal('NATIVE_FUNCTION', 'ns.parse'),
    );
    class Vec {
      constructor(readonly x: number) {}
    }
    expect(() => inspectFunction((x: number) => new Vec(x), { Vec })).not.toThrow();
  });

  it('refuses bad ns values with their path', () => {
    class Account {
      balance = 1;
    }
    expect(() => inspectFunction(() => 1, { data: { owner: new Account() } })).toThrow(
      refusal('CLASS_INSTANCE', 'ns.data.owner is an instance of Account'),
    );
    expect(() => inspectFunction(() => 1, { tags: [Symbol('t')] })).toThrow(
      refusal('SYMBOL', 'ns.tags[0] is a symbol'),
    );
    expect(() => inspectFunction(() => 1, { opts: { cb: () => 1 } })).toThrow(
      refusal('FUNCTION_IN_VALUE', 'ns.opts.cb is function cb'),
    );
  });

  it('checks only the form of a module reference', () => {
    expect(() => inspectFunction({ module: '/nowhere/tasks.js', export: 'f' })).not.toThrow();
    expect(() => inspectFunction({ module: './tasks.js', export: 'f' })).toThrow(
      refusal('BAD_MODULE_REFERENCE', 'is relative'),
    );
  });
});

describe('checkValue', () => {
  it('accepts data and the structured-clone built-ins, including cycles', () => {
    const cyclic: Record<string, unknown> = { n: 1 };
    cyclic.self = cyclic;
    class HttpError extends Error {}
    const value = {
      list: [1, 'a', null, undefined, 2n, true],
      when: new Date(),
      re: /x/g,
      map: new Map([[{ k: 1 }, new Set([1])]]),
      bytes: new Uint8Array(2),
      floats: new Float64Array(2),
      big: new BigUint64Array(1),
      buffer: Buffer.from('x'),
      ab: new ArrayBuffer(1),
      view: new DataView(new ArrayBuffer(1)),
      errors: [new Error('e'), new TypeError('t'), new HttpError('h')],
      boxed: [Object(1), Object('s'), Object(false), Object(1n)],
      bare: Object.create(null),
      otherRealm: runInNewContext('({ a: [1], d: new Date(), m: new Map([[1, new Set([2])]]) })'),
      cyclic,
    };
    expect(() => checkValue(value)).not.toThrow();
  });

  it('names the path of a class instance deep inside the arguments', () => {
    class When {
      at = 0;
    }
    expect(() => checkValue([1, [{ when: new When() }]], 'args[3]')).toThrow(
      refusal('CLASS_INSTANCE', 'args[3][1][0].when is an instance of When'),
    );
  });

  it('refuses subclasses of built-ins, and built-ins that cannot be copied', () => {
    class Stack extends Array {}
    expect(() => checkValue({ s: new Stack() })).toThrow(
      refusal('CLASS_INSTANCE', 'value.s is an instance of Stack'),
    );
    expect(() => checkValue({ shared: new SharedArrayBuffer(4) })).toThrow(
      refusal('CLASS_INSTANCE', 'value.shared is a SharedArrayBuffer, which cannot be copied'),
    );
    expect(() => checkValue([Promise.resolve(1)], 'args[0]')).toThrow(
      refusal('CLASS_INSTANCE', 'args[0][0] is a Promise, which cannot be copied'),
    );
  });

  it('refuses symbols as values and as keys', () => {
    expect(() => checkValue({ 'a key': Symbol('s') })).toThrow(
      refusal('SYMBOL', 'value["a key"] is a symbol (Symbol(s))'),
    );
    expect(() => checkValue({ inner: { [Symbol('hidden')]: 1 } })).toThrow(
      refusal('SYMBOL', 'value.inner has a symbol-keyed property (Symbol(hidden))'),
    );
  });

  it('refuses functions inside values, in Maps and Sets too', () => {
    function onDone() {}
    expect(() => checkValue(new Map([['k', onDone]]), 'args[0]')).toThrow(
      refusal('FUNCTION_IN_VALUE', 'args[0]<map value #0> is function onDone'),
    );
    expect(() => checkValue(new Set([1, () => 1]))).toThrow(
      refusal('FUNCTION_IN_VALUE', 'value<set item #1>'),
    );
    expect(() => checkValue(() => 1, 'args[2]')).toThrow(
      refusal('FUNCTION_IN_VALUE', 'args[2] is'),
    );
  });

  it('walks a deep structure without recursion limits', () => {
    let list: { next?: unknown } = {};
    for (let i = 0; i < 100_000; i++) list = { next: list };
    expect(() => checkValue(list)).not.toThrow();
  });
});

describe('checkArgs', () => {
  it('checks every element, naming args[i]', () => {
    expect(() => checkArgs([1, [2, 3], { a: Symbol('x') }])).toThrow(
      refusal('SYMBOL', 'args[2].a'),
    );
  });

  it('checks an even sample including the first and the last element', () => {
    const args: unknown[] = Array.from({ length: 1000 }, (_, i) => i);
    args[999] = [Symbol('last')];
    expect(() => checkArgs(args, { sample: 10 })).toThrow(refusal('SYMBOL', 'args[999][0]'));
    args[999] = 0;
    args[500] = Symbol('unsampled');
    expect(() => checkArgs(args, { sample: 10 })).not.toThrow();
    expect(() => checkArgs(args)).toThrow(refusal('SYMBOL', 'args[500]'));
  });
});
