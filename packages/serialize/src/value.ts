import { deserialize, serialize } from 'node:v8';
import { SerializeError } from './error.js';
import { decodePlain, encodePlain, NOT_PLAIN } from './plain.js';

/**
 * Encodes a value with Node's structured-clone serializer (`v8.serialize`), which keeps what JSON
 * loses: `undefined`, NaN, ±Infinity, -0, Date, RegExp, Map, Set, BigInt, typed arrays, Buffer,
 * Error objects and shared or cyclic references. Plain data (numbers, strings, booleans, null,
 * undefined, arrays and plain objects) is written by a faster encoder of the same format, whose
 * bytes `v8.deserialize` reads back the same way.
 *
 * Class instances travel as plain objects (their prototype is lost); use
 * `@sheepdog/serialize/inspect` to refuse them before submitting.
 *
 * @throws {SerializeError} `NOT_SERIALIZABLE` when the value holds a function, symbol or other
 *   uncloneable thing.
 */
export function encodeValue(value: unknown): Uint8Array {
  try {
    return encodePlain(value) ?? serialize(value);
  } catch (error) {
    throw new SerializeError(
      'NOT_SERIALIZABLE',
      `cannot serialise value: ${(error as Error).message} Only data travels (no functions, symbols, WeakMaps or Promises); check it with checkValue() from @sheepdog/serialize/inspect to find where.`,
      { cause: error },
    );
  }
}

/**
 * Decodes bytes made by {@link encodeValue}. A Buffer comes back as a Buffer, other typed arrays as
 * their own type.
 *
 * @throws {SerializeError} `BAD_PAYLOAD` when the bytes are not a structured-clone payload.
 */
export function decodeValue(bytes: Uint8Array): unknown {
  const plain = decodePlain(bytes);
  if (plain !== NOT_PLAIN) return plain;
  try {
    return deserialize(bytes);
  } catch (error) {
    throw new SerializeError(
      'BAD_PAYLOAD',
      `cannot decode a value payload of ${bytes.byteLength} bytes: ${(error as Error).message}. It was not made by encodeValue() of a compatible Node.js version.`,
      { cause: error },
    );
  }
}

/**
 * Encodes one element of a `map` argument list as the positional arguments of one task: an array
 * is the argument list itself, anything else is a single argument.
 *
 * @throws {SerializeError} `NOT_SERIALIZABLE`, as {@link encodeValue}.
 */
export function encodeArgs(element: unknown): Uint8Array {
  return encodeValue(Array.isArray(element) ? element : [element]);
}
