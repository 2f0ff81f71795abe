import { isAbsolute } from 'node:path';
import { Script } from 'node:vm';
import { SerializeError } from './error.js';
import { decodeValue, encodeValue } from './value.js';

/** Any function a task may run; its arguments and result are checked at run time, not by type. */
// biome-ignore lint/suspicious/noExplicitAny: a task function's parameters are whatever the user declares
export type AnyFunction = (...args: any[]) => unknown;

/**
 * A function named by where it lives instead of by its source, so real code with imports can run
 * when the workers share the submitter's filesystem (or have the package installed).
 */
export interface ModuleFunction {
  /** An absolute path, a `file:` URL, or a package specifier (`my-pkg/tasks`); never relative. */
  module: string;
  /** The export that holds the function; `'default'` for a default export. */
  export: string;
}

/** A function shipped as source text. */
export interface SourceFunctionPayload {
  kind: 'source';
  /**
   * A JavaScript expression that evaluates to the function. Method shorthand (`f(a) {…}`, whose
   * source is not valid on its own) is already rewrapped so that it compiles.
   */
  source: string;
  /** The function's `name` at submit time (may be empty). */
  name: string;
  /** Whether the function is an `async function`; the worker awaits every result anyway. */
  isAsync: boolean;
}

/** A function shipped as a module reference. */
export interface ModuleFunctionPayload extends ModuleFunction {
  kind: 'module';
}

/** What a function payload decodes to. */
export type FunctionPayload = SourceFunctionPayload | ModuleFunctionPayload;

const NATIVE_SOURCE = /\{\s*\[native code\]\s*\}\s*$/;
// `class` followed by anything but `(`: `class() {}` is a method that happens to be named "class".
const CLASS_SOURCE = /^class(?![\w$])(?!\s*\()/;
// After `get`/`set`, a `(` means a method named get/set; anything else means an accessor.
const ACCESSOR_SOURCE = /^(?:get|set)(?![\w$])\s*(\S)/;

function compiles(code: string): boolean {
  try {
    // Compiling checks the syntax without running anything.
    new Script(code);
    return true;
  } catch {
    return false;
  }
}

/**
 * Turns a function into source text that evaluates to an equivalent function on the worker.
 *
 * @param f - The function.
 * @param label - How error messages name it (`the function`, `ns.helper`).
 * @param allowClass - Whether a class is acceptable (as an `ns` helper it is; as the task it is not).
 * @internal Shared by encodeFunction, encodeNamespace and the inspect entry.
 */
export function functionExpression(f: AnyFunction, label: string, allowClass: boolean): string {
  const source = Function.prototype.toString.call(f);
  if (NATIVE_SOURCE.test(source)) {
    if (f.name.startsWith('bound ')) {
      throw new SerializeError(
        'BOUND_FUNCTION',
        `${label} (${f.name}) is a bound function: .bind() hides its source and bound values. Pass the original function and give bound values as arguments or in ns.`,
      );
    }
    throw new SerializeError(
      'NATIVE_FUNCTION',
      `${label} (${f.name || 'anonymous'}) is a native function with no JavaScript source to ship. Wrap it, e.g. (x) => ${f.name || 'f'}(x), or name it by module: { module, export }.`,
    );
  }
  if (CLASS_SOURCE.test(source)) {
    if (allowClass) return source;
    throw new SerializeError(
      'CLASS_FUNCTION',
      `${label} (${f.name || 'anonymous'}) is a class, which cannot be called as a task. Pass a function that uses the class, and put the class in ns.`,
    );
  }
  if (compiles(`(${source}\n)`)) return source;
  const accessor = ACCESSOR_SOURCE.exec(source);
  if (accessor && accessor[1] !== '(') {
    throw new SerializeError(
      'ACCESSOR',
      `${label} (${f.name}) is a getter or setter, not a function to call. Pass a plain function instead.`,
    );
  }
  if (compiles(`({${source}\n})`)) {
    // Method shorthand (`f(a) {…}`, `async f()`, `*g()`, `[key]()`) is only valid inside an object
    // literal; the object's single own key (a string or a symbol) picks the method back out.
    return `((o) => o[Reflect.ownKeys(o)[0]])({${source}\n})`;
  }
  throw new SerializeError(
    'UNSUPPORTED_SOURCE',
    `${label} (${f.name || 'anonymous'}) has source that does not compile on its own (for example a private #method). Pass an arrow function or a function declaration instead. Source starts: ${source.slice(0, 80)}`,
  );
}

function isModuleFunction(value: unknown): value is ModuleFunction {
  return typeof value === 'object' && value !== null && 'module' in value && 'export' in value;
}

/**
 * Checks a module reference's form; the module itself is only imported on the worker.
 * @internal Shared with the inspect entry.
 */
export function checkModuleFunction(ref: ModuleFunction): void {
  const { module, export: name } = ref;
  if (typeof module !== 'string' || module.trim() === '') {
    throw new SerializeError(
      'BAD_MODULE_REFERENCE',
      'module reference has an empty "module": give an absolute path, a file: URL, or a package name.',
    );
  }
  if (typeof name !== 'string' || name === '') {
    throw new SerializeError(
      'BAD_MODULE_REFERENCE',
      `module reference to ${module} has an empty "export": give the export's name, or 'default'.`,
    );
  }
  if (module.startsWith('.')) {
    throw new SerializeError(
      'BAD_MODULE_REFERENCE',
      `module reference ${module} is relative, but the worker runs in another directory. Give an absolute path, e.g. fileURLToPath(new URL('${module}', import.meta.url)).`,
    );
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(module)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'file' && scheme !== 'node' && !isAbsolute(module)) {
    throw new SerializeError(
      'BAD_MODULE_REFERENCE',
      `module reference ${module} uses a ${scheme}: URL; only absolute paths, file: URLs and package names can be imported by the worker.`,
    );
  }
}

/**
 * Encodes the function a task runs: a function (shipped as its source) or a module reference
 * `{ module, export }` (imported by the worker).
 *
 * Arrow functions, function declarations, async functions, generators and method shorthand are
 * accepted. This only checks what the function itself reveals; `inspectFunction()` from
 * `@sheepdog/serialize/inspect` also finds free variables and bad `ns` values.
 *
 * @throws {SerializeError} `NATIVE_FUNCTION`, `BOUND_FUNCTION`, `CLASS_FUNCTION`, `ACCESSOR`,
 *   `UNSUPPORTED_SOURCE` or `BAD_MODULE_REFERENCE`.
 */
export function encodeFunction(f: AnyFunction | ModuleFunction): Uint8Array {
  if (isModuleFunction(f)) {
    checkModuleFunction(f);
    const payload: ModuleFunctionPayload = { kind: 'module', module: f.module, export: f.export };
    return encodeValue(payload);
  }
  if (typeof f !== 'function') {
    throw new SerializeError(
      'BAD_MODULE_REFERENCE',
      `expected a function or a { module, export } reference, got ${f === null ? 'null' : typeof f}.`,
    );
  }
  const payload: SourceFunctionPayload = {
    kind: 'source',
    source: functionExpression(f, 'the function', false),
    name: f.name,
    isAsync: Object.prototype.toString.call(f) === '[object AsyncFunction]',
  };
  return encodeValue(payload);
}

/**
 * Decodes a function payload made by {@link encodeFunction}.
 *
 * @throws {SerializeError} `BAD_PAYLOAD` when the bytes are not a function payload.
 */
export function decodeFunction(bytes: Uint8Array): FunctionPayload {
  const payload = decodeValue(bytes) as Record<string, unknown> | null;
  if (payload?.kind === 'source' && typeof payload.source === 'string') {
    return payload as unknown as SourceFunctionPayload;
  }
  if (
    payload?.kind === 'module' &&
    typeof payload.module === 'string' &&
    typeof payload.export === 'string'
  ) {
    return payload as unknown as ModuleFunctionPayload;
  }
  throw new SerializeError(
    'BAD_PAYLOAD',
    'the function payload is neither { kind: "source" } nor { kind: "module" }. Encode it with encodeFunction().',
  );
}
