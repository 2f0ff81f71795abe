import { describe, expect, it } from 'vitest';
import { decodeJson, encodeJson } from './json.js';

describe('encodeJson / decodeJson', () => {
  it('writes plain JSON values unchanged', () => {
    const value = { a: [1, 'two', true, null, { b: 2.5 }], $notAlone: 1, other: 2 };
    expect(encodeJson(value)).toEqual(value);
    expect(decodeJson(value)).toEqual(value);
  });

  it('tags what JSON cannot hold and reads the tags back', () => {
    const value = {
      u: undefined,
      big: -12345678901234567890n,
      nums: [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0],
      when: new Date('2020-01-02T03:04:05.006Z'),
      re: /a+b/gi,
      map: new Map<unknown, unknown>([[{ k: 1 }, new Set(['x'])]]),
      buf: Buffer.from('hi'),
      f64: new Float64Array([1.5, -2]),
      ab: new Uint8Array([9, 8]).buffer,
      escaped: { $bigint: 'not a tag' },
    };
    const json = JSON.parse(JSON.stringify(encodeJson(value)));
    expect(json).toEqual({
      u: { $undefined: true },
      big: { $bigint: '-12345678901234567890' },
      nums: [
        { $number: 'NaN' },
        { $number: 'Infinity' },
        { $number: '-Infinity' },
        { $number: '-0' },
      ],
      when: { $date: '2020-01-02T03:04:05.006Z' },
      re: { $regexp: { source: 'a+b', flags: 'gi' } },
      map: { $map: [[{ k: 1 }, { $set: ['x'] }]] },
      buf: { $bytes: { type: 'Buffer', base64: 'aGk=' } },
      f64: { $bytes: { type: 'Float64Array', base64: expect.any(String) } },
      ab: { $bytes: { type: 'ArrayBuffer', base64: 'CQg=' } },
      escaped: { $object: { $bigint: 'not a tag' } },
    });
    const back = decodeJson(json) as typeof value;
    expect(back.u).toBeUndefined();
    expect('u' in back).toBe(true);
    expect(back.big).toBe(-12345678901234567890n);
    expect(Object.is(back.nums[3], -0)).toBe(true);
    expect(back.nums.slice(0, 3)).toEqual([
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ]);
    expect(back.when).toEqual(value.when);
    expect(back.re).toEqual(value.re);
    expect(back.map).toEqual(value.map);
    expect(Buffer.isBuffer(back.buf)).toBe(true);
    expect(back.f64).toEqual(value.f64);
    expect(new Uint8Array(back.ab)).toEqual(new Uint8Array([9, 8]));
    expect(back.escaped).toEqual({ $bigint: 'not a tag' });
  });

  it('keeps errors with their stack and marks cycles', () => {
    const error = new RangeError('out', { cause: 'why' });
    const encoded = encodeJson(error) as { $error: Record<string, unknown> };
    expect(encoded.$error).toMatchObject({ name: 'RangeError', message: 'out', cause: 'why' });
    expect(String(encoded.$error.stack)).toContain('RangeError: out');
    const back = decodeJson(encoded) as Error;
    expect(back).toBeInstanceOf(Error);
    expect([back.name, back.message, back.cause]).toEqual(['RangeError', 'out', 'why']);

    const cyclic: Record<string, unknown> = { list: [] };
    (cyclic.list as unknown[]).push(cyclic);
    expect(encodeJson(cyclic)).toEqual({ list: [{ $circular: '$' }] });
  });

  it('leaves unknown or malformed tags as plain objects', () => {
    expect(decodeJson({ $what: 1 })).toEqual({ $what: 1 });
    expect(decodeJson({ $bigint: 'x1' })).toEqual({ $bigint: 'x1' });
  });
});
