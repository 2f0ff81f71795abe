/**
 * JSON for values that JSON alone cannot carry. Results travel between processes with
 * structured clone, so a task may return `undefined`, a BigInt, a Map, NaN or a cycle; a JSON
 * line must still say exactly what came back. Plain JSON values are written unchanged; every
 * other value becomes an object with one `$`-key (the README lists them), and a plain object
 * that itself has a single `$`-key is escaped as `{"$object": …}` so it is never misread.
 * `decodeJson` turns the same tags back into values, so arguments can use them too.
 */

const TYPED_ARRAYS = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
} as const;

type TypedArrayName = keyof typeof TYPED_ARRAYS;

function isTag(value: Record<string, unknown>): string | undefined {
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0]?.startsWith('$') ? keys[0] : undefined;
}

function base64(view: ArrayBufferView | ArrayBuffer): string {
  const bytes =
    view instanceof ArrayBuffer
      ? new Uint8Array(view)
      : new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  return Buffer.from(bytes).toString('base64');
}

/** Turns any structured-clone value into a JSON-safe value, tagging what JSON cannot hold. */
export function encodeJson(value: unknown): unknown {
  const ancestors: object[] = [];
  const paths: string[] = [];
  const walk = (v: unknown, path: string): unknown => {
    switch (typeof v) {
      case 'undefined':
        return { $undefined: true };
      case 'bigint':
        return { $bigint: v.toString() };
      case 'number':
        if (Number.isNaN(v)) return { $number: 'NaN' };
        if (v === Number.POSITIVE_INFINITY) return { $number: 'Infinity' };
        if (v === Number.NEGATIVE_INFINITY) return { $number: '-Infinity' };
        if (Object.is(v, -0)) return { $number: '-0' };
        return v;
      case 'string':
      case 'boolean':
        return v;
      case 'function':
      case 'symbol':
        // Structured clone never produces these; say what it was rather than drop it.
        return { $unsupported: typeof v };
    }
    if (v === null) return null;
    const obj = v as object;
    const seen = ancestors.indexOf(obj);
    if (seen !== -1) return { $circular: paths[seen] };
    if (obj instanceof Date) {
      return { $date: Number.isNaN(obj.getTime()) ? null : obj.toISOString() };
    }
    if (obj instanceof RegExp) return { $regexp: { source: obj.source, flags: obj.flags } };
    if (obj instanceof ArrayBuffer) return { $bytes: { type: 'ArrayBuffer', base64: base64(obj) } };
    if (ArrayBuffer.isView(obj)) {
      const type = Buffer.isBuffer(obj) ? 'Buffer' : obj.constructor.name;
      return { $bytes: { type, base64: base64(obj) } };
    }
    if (obj instanceof Number || obj instanceof String || obj instanceof Boolean) {
      return walk(obj.valueOf(), path);
    }
    ancestors.push(obj);
    paths.push(path);
    try {
      if (Array.isArray(obj)) return obj.map((item, i) => walk(item, `${path}[${i}]`));
      if (obj instanceof Map) {
        return {
          $map: [...obj].map(([k, item], i) => [
            walk(k, `${path}.$map[${i}][0]`),
            walk(item, `${path}.$map[${i}][1]`),
          ]),
        };
      }
      if (obj instanceof Set)
        return { $set: [...obj].map((item, i) => walk(item, `${path}.$set[${i}]`)) };
      if (obj instanceof Error) {
        const fields: Record<string, unknown> = {
          name: obj.name,
          message: obj.message,
          stack: obj.stack ?? null,
        };
        if (obj.cause !== undefined) fields.cause = walk(obj.cause, `${path}.cause`);
        return { $error: fields };
      }
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(obj)) out[key] = walk(item, `${path}.${key}`);
      return isTag(out) === undefined ? out : { $object: out };
    } finally {
      ancestors.pop();
      paths.pop();
    }
  };
  return walk(value, '$');
}

function decodeTag(tag: string, body: unknown, decode: (v: unknown) => unknown): unknown {
  switch (tag) {
    case '$undefined':
      return undefined;
    case '$bigint':
      if (typeof body === 'string' && /^-?\d+$/.test(body)) return BigInt(body);
      break;
    case '$number':
      if (body === 'NaN') return Number.NaN;
      if (body === 'Infinity') return Number.POSITIVE_INFINITY;
      if (body === '-Infinity') return Number.NEGATIVE_INFINITY;
      if (body === '-0') return -0;
      break;
    case '$date':
      if (body === null) return new Date(Number.NaN);
      if (typeof body === 'string' || typeof body === 'number') return new Date(body);
      break;
    case '$regexp': {
      const r = body as { source?: unknown; flags?: unknown } | null;
      if (typeof r?.source === 'string') return new RegExp(r.source, String(r.flags ?? ''));
      break;
    }
    case '$map':
      if (Array.isArray(body)) {
        return new Map(
          body.map((pair) => {
            const [k, v] = Array.isArray(pair) ? pair : [];
            return [decode(k), decode(v)];
          }),
        );
      }
      break;
    case '$set':
      if (Array.isArray(body)) return new Set(body.map(decode));
      break;
    case '$bytes': {
      const b = body as { type?: unknown; base64?: unknown } | null;
      if (typeof b?.base64 !== 'string') break;
      const bytes = Buffer.from(b.base64, 'base64');
      if (b.type === 'Buffer') return bytes;
      const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      if (b.type === 'ArrayBuffer') return copy;
      const Ctor = TYPED_ARRAYS[b.type as TypedArrayName];
      if (Ctor !== undefined) return new Ctor(copy);
      if (b.type === 'DataView') return new DataView(copy);
      break;
    }
    case '$error': {
      const e = body as { name?: unknown; message?: unknown; stack?: unknown; cause?: unknown };
      const error = new Error(String(e?.message ?? ''));
      if (typeof e?.name === 'string') error.name = e.name;
      if (typeof e?.stack === 'string') error.stack = e.stack;
      if (e !== null && typeof e === 'object' && 'cause' in e) error.cause = decode(e.cause);
      return error;
    }
    case '$object':
      if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
        return Object.fromEntries(Object.entries(body).map(([k, v]) => [k, decode(v)]));
      }
      break;
  }
  return undefined;
}

const KNOWN_TAGS = new Set([
  '$undefined',
  '$bigint',
  '$number',
  '$date',
  '$regexp',
  '$map',
  '$set',
  '$bytes',
  '$error',
  '$object',
]);

/**
 * Turns a parsed JSON value back into the value {@link encodeJson} was given. A `$`-tag it does
 * not know, or one whose body is malformed, stays a plain object.
 */
export function decodeJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decodeJson);
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  const tag = isTag(record);
  if (tag !== undefined && KNOWN_TAGS.has(tag)) {
    const body = record[tag];
    const decoded = decodeTag(tag, body, decodeJson);
    if (decoded !== undefined || tag === '$undefined') return decoded;
  }
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, decodeJson(v)]));
}
