import { describe, expect, it } from 'vitest';
import { decodeValue, encodeArgs, encodeValue } from './index.js';

const roundTrip = <T>(value: T): T => decodeValue(encodeValue(value)) as T;

describe('encodeValue / decodeValue', () => {
  it('keeps what JSON loses', () => {
    expect(roundTrip(undefined)).toBeUndefined();
    expect(roundTrip(Number.NaN)).toBeNaN();
    expect(roundTrip(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(roundTrip(Number.NEGATIVE_INFINITY)).toBe(Number.NEGATIVE_INFINITY);
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
    expect(roundTrip(12345678901234567890n)).toBe(12345678901234567890n);
    // biome-ignore lint/suspicious/noSparseArray: a hole is what this checks
    expect(roundTrip([undefined, 1, , 3])).toEqual([undefined, 1, undefined, 3]);
  });

  it('keeps Date, RegExp, Map and Set', () => {
    const date = new Date('2024-02-29T12:34:56.789Z');
    expect(roundTrip(date)).toEqual(date);
    const re = roundTrip(/a+b/gi);
    expect(re).toBeInstanceOf(RegExp);
    expect(re.source).toBe('a+b');
    expect(re.flags).toBe('gi');
    const map = roundTrip(
      new Map<unknown, unknown>([
        [1, 'one'],
        ['k', { v: 2 }],
      ]),
    );
    expect(map).toBeInstanceOf(Map);
    expect(map.get(1)).toBe('one');
    expect(map.get('k')).toEqual({ v: 2 });
    const set = roundTrip(new Set([1, 'two', 3n]));
    expect(set).toEqual(new Set([1, 'two', 3n]));
  });

  it('keeps typed arrays with their type, and Buffer as a Buffer', () => {
    const f64 = roundTrip(new Float64Array([1.5, -0, Number.NaN]));
    expect(f64).toBeInstanceOf(Float64Array);
    expect([...f64]).toEqual([1.5, -0, Number.NaN]);
    expect(roundTrip(new Int32Array([-1, 2]))).toEqual(new Int32Array([-1, 2]));
    expect(roundTrip(new BigInt64Array([-5n]))).toEqual(new BigInt64Array([-5n]));
    const u8 = roundTrip(new Uint8Array([1, 2, 3]));
    expect(u8).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(u8)).toBe(false);
    const buffer = roundTrip(Buffer.from('héllo'));
    expect(Buffer.isBuffer(buffer)).toBe(true);
    expect(buffer.toString()).toBe('héllo');
    const ab = roundTrip(new Uint16Array([7, 8]).buffer);
    expect(ab).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint16Array(ab)]).toEqual([7, 8]);
  });

  it('keeps nested, repeated and cyclic references', () => {
    const shared = { n: 1 };
    const cyclic: Record<string, unknown> = { name: 'root', list: [shared, shared] };
    cyclic.self = cyclic;
    const back = roundTrip({ a: shared, b: shared, cyclic });
    expect(back.a).toBe(back.b);
    expect(back.a).toEqual({ n: 1 });
    expect(back.cyclic.self).toBe(back.cyclic);
    const list = back.cyclic.list as unknown[];
    expect(list[0]).toBe(list[1]);
  });

  it('keeps Error objects: name, message and stack', () => {
    const error = new Error('boom');
    const back = roundTrip(error);
    expect(back).toBeInstanceOf(Error);
    expect(back.name).toBe('Error');
    expect(back.message).toBe('boom');
    expect(back.stack).toBe(error.stack);
    const typeError = roundTrip(new TypeError('bad type'));
    expect(typeError).toBeInstanceOf(TypeError);
    expect(typeError.name).toBe('TypeError');
    expect(roundTrip(new RangeError('r')).name).toBe('RangeError');
    expect(roundTrip(new Error('outer', { cause: 'inner' })).cause).toBe('inner');
  });

  it('keeps a custom error subclass as an Error whose stack still names it', () => {
    class QuotaError extends Error {
      override name = 'QuotaError';
    }
    const back = roundTrip(new QuotaError('over quota'));
    expect(back).toBeInstanceOf(Error);
    expect(back.message).toBe('over quota');
    expect(back.stack?.startsWith('QuotaError: over quota')).toBe(true);
  });

  it('refuses what cannot be cloned', () => {
    expect(() => encodeValue({ f: () => 1 })).toThrow(
      expect.objectContaining({ code: 'NOT_SERIALIZABLE' }),
    );
    expect(() => encodeValue(Symbol('s'))).toThrow(/^cannot serialise/);
  });

  it('refuses bytes that are not a payload', () => {
    expect(() => decodeValue(new Uint8Array([0xff, 0x0f, 0x6f, 0x7b]))).toThrow(
      expect.objectContaining({ code: 'BAD_PAYLOAD' }),
    );
  });
});

describe('encodeArgs', () => {
  it('takes an array as the argument list and anything else as one argument', () => {
    expect(decodeValue(encodeArgs([1, 'a']))).toEqual([1, 'a']);
    expect(decodeValue(encodeArgs(5))).toEqual([5]);
    expect(decodeValue(encodeArgs({ x: 1 }))).toEqual([{ x: 1 }]);
    expect(decodeValue(encodeArgs([[1, 2]]))).toEqual([[1, 2]]);
  });
});
