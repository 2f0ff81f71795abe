import { deserialize, serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { decodeValue, encodeValue } from './index.js';
import { decodePlain, encodePlain, NOT_PLAIN } from './plain.js';

function hex(bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : Buffer.from(bytes).toString('hex');
}

/** A small deterministic PRNG (mulberry32), so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NUMBERS = [
  0,
  -0,
  1,
  -1,
  63,
  64,
  -64,
  -65,
  2 ** 30,
  2 ** 31 - 1,
  -(2 ** 31),
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 53,
  0.1,
  -1.5e300,
  Number.MIN_VALUE,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
];

function randomString(rand: () => number): string {
  const n = Math.floor(rand() * 12) * (rand() < 0.05 ? 40 : 1);
  const kind = rand();
  let s = '';
  for (let i = 0; i < n; i++) {
    // Mostly ASCII; some Latin-1, some BMP, some lone and paired surrogates.
    const r = rand();
    const code =
      kind < 0.5 || r < 0.6
        ? 0x20 + Math.floor(rand() * 0x5f)
        : r < 0.75
          ? 0x80 + Math.floor(rand() * 0x80)
          : r < 0.9
            ? 0x100 + Math.floor(rand() * 0xfe00)
            : 0xd800 + Math.floor(rand() * 0x800);
    s += String.fromCharCode(code);
  }
  return s;
}

function randomValue(rand: () => number, depth: number): unknown {
  const r = rand();
  if (depth > 3 || r < 0.45) {
    const p = rand();
    if (p < 0.3) return NUMBERS[Math.floor(rand() * NUMBERS.length)];
    if (p < 0.45) return Math.floor((rand() - 0.5) * 2 ** (rand() * 40));
    if (p < 0.8) return randomString(rand);
    return [true, false, null, undefined][Math.floor(rand() * 4)];
  }
  const n = Math.floor(rand() * 6);
  if (r < 0.75) return Array.from({ length: n }, () => randomValue(rand, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) o[randomString(rand) || 'k'] = randomValue(rand, depth + 1);
  return o;
}

describe('encodePlain', () => {
  it('writes the same bytes as v8.serialize for strings, booleans, null, undefined and structures', () => {
    // Numbers are left out: V8 writes one as an int32 or a double after how it holds it inside
    // (an element of a double array is a double), which bytes cannot be compared across; the
    // tests below compare them decoded.
    const values: unknown[] = [
      '',
      'ascii',
      'Latin-1: é ñ ß ÿ',
      'two-byte: € ✓ 日本',
      'astral: 𝄞 😀',
      'lone: \ud800 x \udfff',
      'x'.repeat(200),
      '€'.repeat(9000),
      true,
      false,
      null,
      undefined,
      [],
      {},
      ['a', true, null, undefined, ['b', [false, {}]]],
      { name: 'Ada', tags: ['x', 'y'], nested: { deep: [null, '€'] } },
      // Two-byte strings at odd and even offsets: V8's alignment padding.
      ['€'],
      ['a', '€'],
      ['ab', '€'],
      ['x', '€', 'yy', '€€', 'é', '€€€'],
    ];
    for (const value of values) {
      expect(hex(encodePlain(value)), JSON.stringify(value)).toBe(hex(serialize(value)));
    }
  });

  it('decodes numbers to the same values, -0, NaN and the int32 edges included', () => {
    for (const n of NUMBERS) {
      expect(Object.is(deserialize(encodePlain(n) as Buffer), n), String(n)).toBe(true);
      expect(Object.is((deserialize(encodePlain([n]) as Buffer) as number[])[0], n)).toBe(true);
    }
  });

  it('decodes with v8.deserialize to what v8.serialize would give, for 5,000 random values', () => {
    const rand = prng(20261125);
    for (let i = 0; i < 5000; i++) {
      const value = randomValue(rand, 0);
      const bytes = encodePlain(value);
      expect(bytes, `value ${i}`).toBeDefined();
      expect(deserialize(bytes as Buffer), `value ${i}`).toStrictEqual(
        deserialize(serialize(value)),
      );
    }
  });

  it('leaves everything but plain data to v8.serialize', () => {
    const shared = { x: 1 };
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const sparse = [1, 2, 3];
    delete sparse[1];
    const named = Object.assign([1, 2], { extra: true });
    let deep: unknown = 1;
    for (let i = 0; i < 10; i++) deep = [deep];
    const others: unknown[] = [
      new Map([[1, 2]]),
      new Set([1]),
      new Date(0),
      /re/g,
      Buffer.from('abc'),
      new Uint16Array([1, 2]),
      12n,
      new Error('boom'),
      Object.create(null),
      new (class Point {
        x = 1;
      })(),
      [shared, shared],
      cyclic,
      sparse,
      named,
      deep,
      Array.from({ length: 5000 }, (_, i) => i),
      'x'.repeat(2 ** 20 + 1),
      () => 1,
      Symbol('s'),
    ];
    for (const value of others) expect(encodePlain(value)).toBeUndefined();
  });

  it('gives encodeValue the same values back either way, shared references included', () => {
    const shared = { x: 1 };
    const value = { list: [shared, shared], when: new Date(5), plain: [1, { a: '€' }] };
    const back = decodeValue(encodeValue(value)) as typeof value;
    expect(back).toStrictEqual(deserialize(serialize(value)));
    expect(back.list[0]).toBe(back.list[1]);
    expect(decodeValue(encodeValue([1, { a: '€' }]))).toStrictEqual([1, { a: '€' }]);
  });

  it('is safe when a getter encodes another value while its object is written', () => {
    const inner = { n: 2 };
    let nested: Uint8Array | undefined;
    const outer = {
      a: 1,
      get b(): number {
        nested = encodeValue(inner);
        return 3;
      },
      c: 'after',
    };
    expect(deserialize(encodePlain(outer) as Buffer)).toStrictEqual({ a: 1, b: 3, c: 'after' });
    expect(deserialize(nested as Uint8Array)).toStrictEqual(inner);
  });
});

describe('decodePlain', () => {
  it('reads what encodePlain and v8.serialize write as v8.deserialize does, for 5,000 random values', () => {
    const rand = prng(20261126);
    for (let i = 0; i < 5000; i++) {
      const value = randomValue(rand, 0);
      for (const bytes of [encodePlain(value) as Buffer, serialize(value)]) {
        const decoded = decodePlain(bytes);
        expect(decoded, `value ${i}`).not.toBe(NOT_PLAIN);
        expect(decoded, `value ${i}`).toStrictEqual(deserialize(bytes));
      }
    }
    for (const n of NUMBERS) {
      expect(Object.is(decodePlain(serialize(n)), n), String(n)).toBe(true);
      expect(Object.is((decodePlain(serialize([n])) as number[])[0], n), String(n)).toBe(true);
    }
  });

  it('leaves everything else to v8.deserialize, which decodeValue then uses', () => {
    const shared = { x: 1 };
    const others: unknown[] = [
      new Map([[1, 2]]),
      new Date(0),
      12n,
      Buffer.from('abc'),
      [shared, shared],
      JSON.parse('{"__proto__": 1}'),
      Object.assign([1, 2], { extra: true }),
    ];
    for (const value of others) {
      const bytes = serialize(value);
      expect(decodePlain(bytes)).toBe(NOT_PLAIN);
      expect(decodeValue(bytes)).toStrictEqual(deserialize(bytes));
    }
    expect(
      Object.hasOwn(decodeValue(serialize(JSON.parse('{"__proto__": 1}'))) as object, '__proto__'),
    ).toBe(true);
  });

  it('refuses damaged bytes rather than guessing, leaving them to v8.deserialize', () => {
    const good = serialize([1, 'two', { three: 3 }]);
    const damaged = [
      good.subarray(0, good.length - 1),
      Buffer.concat([good, Buffer.from([0x30])]),
      Buffer.from([0xff, 0x01, 0x30]),
      Buffer.from('not a payload'),
      new Uint8Array(0),
    ];
    for (const bytes of damaged) {
      expect(decodePlain(bytes)).toBe(NOT_PLAIN);
      // What V8 makes of them (it ignores trailing bytes, and reads old versions) stands.
      let v8: { value: unknown } | undefined;
      try {
        v8 = { value: deserialize(bytes) };
      } catch {
        v8 = undefined;
      }
      if (v8 === undefined)
        expect(() => decodeValue(bytes)).toThrow(/cannot decode a value payload/);
      else expect(decodeValue(bytes)).toStrictEqual(v8.value);
    }
    expect(() => decodeValue(Buffer.from('not a payload'))).toThrow(
      /cannot decode a value payload/,
    );
    expect(decodePlain(5 as unknown as Uint8Array)).toBe(NOT_PLAIN);
  });
});
