import { serialize } from 'node:v8';

// A JavaScript writer of V8's structured-clone format (the one `v8.serialize` writes and
// `v8.deserialize` reads) for plain data: numbers, strings, booleans, null, undefined, dense
// arrays and plain objects. `v8.serialize` builds a native serializer and an externally backed
// Buffer per call, about 2 µs and a lot of garbage the collector is slow to return: for 10^6
// small arguments that is most of `newRequest`'s time and memory. Anything else (Map, Date,
// typed arrays, shared references, deep or large values, ...) is left to `v8.serialize`, so the
// bytes always decode with `v8.deserialize` to what `v8.serialize`'s would.

// `v8.serialize(undefined)` is this Node's header (version tag and version) and one tag.
const HEADER = serialize(undefined).subarray(0, -1);

const TAG = {
  padding: 0x00,
  undefined: 0x5f, // '_'
  null: 0x30, // '0'
  true: 0x54, // 'T'
  false: 0x46, // 'F'
  int32: 0x49, // 'I', zigzag varint
  double: 0x4e, // 'N', 8 bytes little-endian
  oneByteString: 0x22, // '"', Latin-1 bytes
  twoByteString: 0x63, // 'c', UTF-16LE bytes
  beginObject: 0x6f, // 'o'
  endObject: 0x7b, // '{', then the property count
  beginDenseArray: 0x41, // 'A', then the length
  endDenseArray: 0x24, // '$', then the property count and the length
} as const;

// Beyond these, the structure is not the small argument this path is for.
const MAX_DEPTH = 8;
const MAX_ARRAY_LENGTH = 4096;
const MAX_BYTES = 1 << 20;
const MAX_OBJECTS = 256;

const float = new Float64Array(1);
const floatBytes = new Uint8Array(float.buffer);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

class TooBig extends Error {}

/** One encoding in progress: a growing scratch buffer and the objects already written. */
class Writer {
  buf: Buffer = Buffer.allocUnsafe(4096);
  pos = 0;
  /** Objects and arrays written so far: a second reference needs V8's back-references. */
  readonly seen: object[] = [];

  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const size = Math.max(this.buf.length * 2, this.pos + n);
    if (size > MAX_BYTES) throw new TooBig();
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.pos++] = b;
  }

  varint(n: number): void {
    this.reserve(5);
    let v = n;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }

  string(s: string): void {
    const n = s.length;
    let oneByte = true;
    for (let i = 0; i < n; i++) {
      if (s.charCodeAt(i) > 0xff) {
        oneByte = false;
        break;
      }
    }
    if (oneByte) {
      this.byte(TAG.oneByteString);
      this.varint(n);
      this.reserve(n);
      this.pos += this.buf.write(s, this.pos, n, 'latin1');
      return;
    }
    const bytes = n * 2;
    // V8 aligns two-byte data to an even offset with a padding tag; do the same.
    const lengthBytes = bytes < 0x80 ? 1 : bytes < 0x4000 ? 2 : bytes < 0x200000 ? 3 : 4;
    if ((this.pos + 1 + lengthBytes) & 1) this.byte(TAG.padding);
    this.byte(TAG.twoByteString);
    this.varint(bytes);
    this.reserve(bytes);
    this.pos += this.buf.write(s, this.pos, bytes, 'utf16le');
  }

  number(v: number): void {
    if ((v | 0) === v && !(v === 0 && 1 / v < 0)) {
      this.byte(TAG.int32);
      this.varint(((v << 1) ^ (v >> 31)) >>> 0);
      return;
    }
    this.byte(TAG.double);
    this.reserve(8);
    float[0] = v;
    if (littleEndian) this.buf.set(floatBytes, this.pos);
    else for (let i = 0; i < 8; i++) this.buf[this.pos + i] = floatBytes[7 - i] as number;
    this.pos += 8;
  }

  /** Writes `v`; false when it is not plain data this writer handles. */
  value(v: unknown, depth: number): boolean {
    switch (typeof v) {
      case 'number':
        this.number(v);
        return true;
      case 'string':
        this.string(v);
        return true;
      case 'boolean':
        this.byte(v ? TAG.true : TAG.false);
        return true;
      case 'undefined':
        this.byte(TAG.undefined);
        return true;
      case 'object':
        if (v === null) {
          this.byte(TAG.null);
          return true;
        }
        if (depth >= MAX_DEPTH || this.seen.length >= MAX_OBJECTS || this.seen.includes(v))
          return false;
        this.seen.push(v);
        if (Array.isArray(v)) return this.array(v, depth);
        if (Object.getPrototypeOf(v) === Object.prototype) return this.object(v, depth);
        return false;
      default:
        return false;
    }
  }

  array(a: unknown[], depth: number): boolean {
    const n = a.length;
    if (n > MAX_ARRAY_LENGTH || Object.getPrototypeOf(a) !== Array.prototype) return false;
    // Holes and extra named properties need V8's sparse form; leave those arrays to it.
    let keys = 0;
    for (const _ in a) keys++;
    if (keys !== n) return false;
    this.byte(TAG.beginDenseArray);
    this.varint(n);
    for (let i = 0; i < n; i++) if (!this.value(a[i], depth + 1)) return false;
    this.byte(TAG.endDenseArray);
    this.varint(0);
    this.varint(n);
    return true;
  }

  object(o: object, depth: number): boolean {
    const keys = Object.keys(o);
    this.byte(TAG.beginObject);
    for (const key of keys) {
      this.string(key);
      if (!this.value((o as Record<string, unknown>)[key], depth + 1)) return false;
    }
    this.byte(TAG.endObject);
    this.varint(keys.length);
    return true;
  }
}

const writer = new Writer();
// A getter that encodes something while its object is being written must not share the
// scratch buffer: such a nested call goes to `v8.serialize`.
let busy = false;

/**
 * Encodes plain data in V8's structured-clone format without `v8.serialize`, or returns
 * `undefined` when `value` holds anything else, which the caller then gives to `v8.serialize`.
 * The result is a fresh Buffer (small ones come from Node's shared pool).
 */
export function encodePlain(value: unknown): Buffer | undefined {
  if (busy) return undefined;
  busy = true;
  writer.pos = 0;
  writer.seen.length = 0;
  try {
    writer.reserve(HEADER.length);
    writer.buf.set(HEADER, 0);
    writer.pos = HEADER.length;
    if (!writer.value(value, 0)) return undefined;
  } catch (error) {
    if (error instanceof TooBig) return undefined;
    throw error;
  } finally {
    writer.seen.length = 0;
    busy = false;
  }
  const out = Buffer.allocUnsafe(writer.pos);
  writer.buf.copy(out, 0, 0, writer.pos);
  return out;
}
