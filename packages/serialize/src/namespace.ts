import { SerializeError } from './error.js';
import { type AnyFunction, functionExpression } from './function.js';
import { decodeValue, encodeValue } from './value.js';

/** What an `ns` payload decodes to. */
export interface NamespacePayload {
  /** Data the function refers to by name, kept as structured-clone values. */
  values: Record<string, unknown>;
  /** Helper functions and classes the function refers to by name, as source expressions. */
  functions: Record<string, string>;
}

const IDENTIFIER = /^[\p{ID_Start}$_][\p{ID_Continue}$\u200c\u200d]*$/u;
const RESERVED = new Set(
  (
    'arguments await break case catch class const continue debugger default delete do else enum ' +
    'eval export extends false finally for function if implements import in instanceof interface ' +
    'let new null package private protected public return static super switch this throw true try ' +
    'typeof var void while with yield'
  ).split(' '),
);

/**
 * Whether a name can be bound as a variable in the worker's scope.
 * @internal Shared with buildFunction.
 */
export function isBindableName(name: string): boolean {
  return IDENTIFIER.test(name) && !RESERVED.has(name);
}

/**
 * Checks that an `ns` key can be bound as a variable in the worker's scope.
 * @internal Shared with the inspect entry.
 */
export function checkNamespaceName(name: string): void {
  if (!isBindableName(name)) {
    throw new SerializeError(
      'BAD_NAMESPACE_NAME',
      `ns key ${JSON.stringify(name)} cannot be a variable name in the function's scope. Use a plain identifier that is not a reserved word.`,
    );
  }
}

/**
 * Encodes the namespace `ns`: the values and helper functions the task function refers to by
 * name. Functions (and classes) travel as source and are compiled in one scope on the worker, so
 * helpers can call each other and the main function; everything else travels as a value.
 *
 * @throws {SerializeError} `BAD_NAMESPACE_NAME` for a key that is not an identifier;
 *   `NATIVE_FUNCTION`, `BOUND_FUNCTION`, `ACCESSOR` or `UNSUPPORTED_SOURCE` for a bad helper;
 *   `NOT_SERIALIZABLE` for a value that cannot be cloned.
 */
export function encodeNamespace(ns: Readonly<Record<string, unknown>> = {}): Uint8Array {
  const payload: NamespacePayload = { values: {}, functions: {} };
  for (const [name, value] of Object.entries(ns)) {
    checkNamespaceName(name);
    if (typeof value === 'function') {
      payload.functions[name] = functionExpression(value as AnyFunction, `ns.${name}`, true);
    } else {
      payload.values[name] = value;
    }
  }
  try {
    return encodeValue(payload);
  } catch (error) {
    // Only on failure: find the key to name, so the user knows what to fix.
    const culprit = Object.keys(payload.values).find((name) => {
      try {
        encodeValue(payload.values[name]);
        return false;
      } catch {
        return true;
      }
    });
    const cause = (error as SerializeError).cause as Error;
    throw new SerializeError(
      'NOT_SERIALIZABLE',
      `ns.${culprit ?? '?'} cannot be serialised: ${cause.message} Only data travels as an ns value; put functions at the top level of ns.`,
      { cause: error },
    );
  }
}

/**
 * Decodes an `ns` payload made by {@link encodeNamespace}.
 *
 * @throws {SerializeError} `BAD_PAYLOAD` when the bytes are not an `ns` payload.
 */
export function decodeNamespace(bytes: Uint8Array): NamespacePayload {
  const payload = decodeValue(bytes) as Partial<NamespacePayload> | null;
  if (
    typeof payload?.values !== 'object' ||
    payload.values === null ||
    typeof payload.functions !== 'object' ||
    payload.functions === null
  ) {
    throw new SerializeError(
      'BAD_PAYLOAD',
      'the ns payload is not { values, functions }. Encode it with encodeNamespace().',
    );
  }
  return payload as NamespacePayload;
}
