import { errorGuard, PartError } from '@sheepdog/protocol';

/**
 * Why a value or function cannot travel to a worker, or why a payload cannot be read back.
 *
 * | code | meaning |
 * |---|---|
 * | `NOT_SERIALIZABLE` | a value holds something structured clone cannot copy (a function, a symbol, a WeakMap, …) |
 * | `BAD_PAYLOAD` | bytes are not a payload of the expected kind (corrupt, truncated or from another format) |
 * | `NATIVE_FUNCTION` | the function is built into the engine or an addon; it has no source to ship |
 * | `BOUND_FUNCTION` | the function was made by `.bind()`; its source and bound values are hidden |
 * | `CLASS_FUNCTION` | a class was given as the function to run; classes are allowed only as `ns` helpers |
 * | `ACCESSOR` | the function is a getter or setter, not a callable function |
 * | `UNSUPPORTED_SOURCE` | the function's source does not compile on its own (e.g. a private `#method`) |
 * | `BAD_MODULE_REFERENCE` | a `{ module, export }` reference is malformed (relative path, empty export, …) |
 * | `BAD_NAMESPACE_NAME` | an `ns` key cannot be bound as a variable name (not an identifier, or reserved) |
 * | `MODULE_IMPORT_FAILED` | the worker could not import the module named by a module reference |
 * | `BAD_EXPORT` | the imported module has no function under the requested export name |
 * | `SYMBOL` | a symbol (value or property key) was found where values must be shipped |
 * | `FUNCTION_IN_VALUE` | a function sits inside an argument or an `ns` value, where only data can travel |
 * | `CLASS_INSTANCE` | an object whose prototype would be lost (a class instance or unsupported built-in) |
 * | `FREE_VARIABLE` | the function uses a variable that is neither in `ns` nor a global on the worker |
 */
export const SERIALIZE_ERROR_CODES = [
  'NOT_SERIALIZABLE',
  'BAD_PAYLOAD',
  'NATIVE_FUNCTION',
  'BOUND_FUNCTION',
  'CLASS_FUNCTION',
  'ACCESSOR',
  'UNSUPPORTED_SOURCE',
  'BAD_MODULE_REFERENCE',
  'BAD_NAMESPACE_NAME',
  'MODULE_IMPORT_FAILED',
  'BAD_EXPORT',
  'SYMBOL',
  'FUNCTION_IN_VALUE',
  'CLASS_INSTANCE',
  'FREE_VARIABLE',
] as const;

/** One of {@link SERIALIZE_ERROR_CODES}. */
export type SerializeErrorCode = (typeof SERIALIZE_ERROR_CODES)[number];

/** The one error class of `@sheepdog/serialize`; test it with {@link isSerializeError}. */
export class SerializeError extends PartError<SerializeErrorCode> {
  override readonly name = 'SerializeError';
  readonly origin = 'serialize';
}

/** Whether `error` is a {@link SerializeError} (with `code`, when given), by name and code. */
export const isSerializeError = errorGuard<SerializeError, SerializeErrorCode>(
  'SerializeError',
  SERIALIZE_ERROR_CODES,
);
