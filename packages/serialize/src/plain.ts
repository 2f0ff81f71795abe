import { serialize } from 'node:v8';

// A JavaScript writer and reader of V8's structured-clone format (the one `v8.serialize` writes
// and `v8.deserialize` reads) for plain data: numbers, strings, booleans, null, undefined, dense
// arrays and plain objects. `v8.serialize` builds a native serializer and an externally backed
// Buffer per call, about 2 µs and a lot of garbage the collector is slow to return: for 10^6
// small arguments that is most of `newRequest`'s time and memory, and `v8.deserialize` costs as
// much for 10^6 results. Anything else (Map, Date, typed arrays, shared references, deep or
// large values, ...) is left to `v8.serialize` and `v8.deserialize`, so the bytes always decode
// to what `v8.serialize`'s would, and what is read is what `v8.deserialize` would read.

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
  uint32: 0x55, // 'U', varint
  utf8String: 0x53, // 'S', UTF-8 bytes
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

/** What {@link decodePlain} returns for bytes it leaves to `v8.deserialize`. */
export const NOT_PLAIN: unique symbol = Symbol('not plain data');

class NotPlain extends Error {}

/** One decoding in progress; any surprise (a tag it does not read, a short buffer) is NotPlain. */
class Reader {
  pos = HEADER.length;
  constructor(readonly buf: Buffer) {}

  byte(): number {
    if (this.pos >= this.buf.length) throw new NotPlain();
    return this.buf[this.pos++] as number;
  }

  varint(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
    }
    throw new NotPlain();
  }

  /** The next tag, past V8's padding bytes. */
  tag(): number {
    let t = this.byte();
    while (t === TAG.padding) t = this.byte();
    return t;
  }

  bytes(n: number): [start: number, end: number] {
    const start = this.pos;
    if (start + n > this.buf.length) throw new NotPlain();
    this.pos += n;
    return [start, this.pos];
  }

  value(depth: number): unknown {
    if (depth > MAX_DEPTH) throw new NotPlain();
    const tag = this.tag();
    switch (tag) {
      case TAG.undefined:
        return undefined;
      case TAG.null:
        return null;
      case TAG.true:
        return true;
      case TAG.false:
        return false;
      case TAG.int32: {
        const v = this.varint();
        if (v > 0xffffffff) throw new NotPlain();
        return (v >>> 1) ^ -(v & 1);
      }
      case TAG.uint32: {
        const v = this.varint();
        if (v > 0xffffffff) throw new NotPlain();
        return v;
      }
      case TAG.double: {
        const [start] = this.bytes(8);
        return this.buf.readDoubleLE(start);
      }
      case TAG.oneByteString:
      case TAG.twoByteString:
      case TAG.utf8String:
        return this.string(tag);
      case TAG.beginDenseArray:
        return this.array(depth);
      case TAG.beginObject:
        return this.object(depth);
      default:
        throw new NotPlain();
    }
  }

  string(tag: number): string {
    const [start, end] = this.bytes(this.varint());
    if (tag === TAG.oneByteString) return this.buf.toString('latin1', start, end);
    if (tag === TAG.utf8String) return this.buf.toString('utf8', start, end);
    if ((end - start) % 2 !== 0) throw new NotPlain();
    return this.buf.toString('utf16le', start, end);
  }

  array(depth: number): unknown[] {
    const n = this.varint();
    if (n > MAX_ARRAY_LENGTH) throw new NotPlain();
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
    // Named properties of the array would come before the end tag: left to V8.
    if (this.tag() !== TAG.endDenseArray || this.varint() !== 0 || this.varint() !== n) {
      throw new NotPlain();
    }
    return out;
  }

  object(depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    let count = 0;
    for (;;) {
      const at = this.pos;
      if (this.tag() === TAG.endObject) {
        if (this.varint() !== count) throw new NotPlain();
        return out;
      }
      this.pos = at;
      const key = this.value(depth + 1);
      if (typeof key !== 'string' && typeof key !== 'number') throw new NotPlain();
      const name = String(key);
      // V8 defines own properties; an assignment to __proto__ would set the prototype instead.
      if (name === '__proto__' || Object.hasOwn(out, name)) throw new NotPlain();
      out[name] = this.value(depth + 1);
      count += 1;
    }
  }
}

/**
 * Decodes bytes in V8's structured-clone format written by this Node version when they hold
 * only plain data, or returns {@link NOT_PLAIN}, and the caller gives them to `v8.deserialize`
 * (which also says what is wrong with bytes that are not a payload at all).
 */
export function decodePlain(bytes: Uint8Array): unknown {
  if (!(bytes instanceof Uint8Array)) return NOT_PLAIN;
  const buf = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length <= HEADER.length || buf.compare(HEADER, 0, HEADER.length, 0, HEADER.length) !== 0)
    return NOT_PLAIN;
  try {
    const reader = new Reader(buf);
    const value = reader.value(0);
    return reader.pos === buf.length ? value : NOT_PLAIN;
  } catch (error) {
    if (error instanceof NotPlain) return NOT_PLAIN;
    throw error;
  }
}
