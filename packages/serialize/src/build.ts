import { isBuiltin } from 'node:module';
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { compileFunction } from 'node:vm';
import { SerializeError } from './error.js';
import { type AnyFunction, decodeFunction, type ModuleFunctionPayload } from './function.js';
import { decodeNamespace, isBindableName } from './namespace.js';

/** What {@link buildFunction} needs from the process that runs the task. */
export interface BuildOptions {
  /**
   * The `require` the function's source sees; the worker passes `createRequire()` of its working
   * directory, so `require('pkg')` finds packages installed where the task runs.
   */
  require: NodeJS.Require;
}

// esbuild's keepNames (used by tsx) leaves `__name(fn, "fn")` calls inside function sources; this
// is the helper esbuild itself emits at the top of a bundle.
const __name = (target: object, value: string): object =>
  Object.defineProperty(target, 'name', { value, configurable: true });

// TypeScript's ES2015/ES2016 targets compile async functions to `__awaiter(this, …, function* …)`;
// this is tslib's helper, so such sources run without tslib on the worker.
function __awaiter(
  thisArg: unknown,
  args: unknown,
  P: PromiseConstructor | undefined,
  generator: (...a: unknown[]) => Generator<unknown, unknown, unknown>,
): Promise<unknown> {
  const C = P ?? Promise;
  return new C((resolve, reject) => {
    const it = generator.apply(thisArg, (args as unknown[] | undefined) ?? []);
    const step = (result: IteratorResult<unknown, unknown>): void => {
      if (result.done) resolve(result.value);
      else C.resolve(result.value).then(fulfilled, rejected);
    };
    const fulfilled = (value: unknown): void => {
      try {
        step(it.next(value));
      } catch (error) {
        reject(error);
      }
    };
    const rejected = (value: unknown): void => {
      try {
        step(it.throw(value));
      } catch (error) {
        reject(error);
      }
    };
    fulfilled(undefined);
  });
}

async function importFunction(
  payload: ModuleFunctionPayload,
  require: NodeJS.Require,
): Promise<AnyFunction> {
  let specifier = payload.module;
  if (isAbsolute(specifier)) {
    specifier = pathToFileURL(specifier).href;
  } else if (!specifier.startsWith('file:') && !isBuiltin(specifier)) {
    // A package name: resolve it from the worker's working directory like require() would, so it
    // does not depend on where the job file happens to sit. Packages that can only be imported
    // (no "require" export condition) fail here and fall back to import()'s own resolution.
    try {
      specifier = pathToFileURL(require.resolve(specifier)).href;
    } catch {}
  }
  let namespace: Record<string, unknown>;
  try {
    namespace = await import(specifier);
  } catch (error) {
    throw new SerializeError(
      'MODULE_IMPORT_FAILED',
      `cannot import ${payload.module} on this worker: ${(error as Error).message}. Check that the path exists on the worker (shared filesystem) or that the package is installed where the task runs.`,
      { cause: error },
    );
  }
  let f = namespace[payload.export];
  // A CommonJS module imported by import() may expose its exports only under `default`.
  if (f === undefined && payload.export !== 'default') {
    f = (namespace.default as Record<string, unknown> | undefined)?.[payload.export];
  }
  if (typeof f !== 'function') {
    throw new SerializeError(
      'BAD_EXPORT',
      `${payload.module} has no function exported as ${JSON.stringify(payload.export)} (found ${typeof f}). Check the export name.`,
    );
  }
  return f as AnyFunction;
}

/**
 * Rebuilds the task function on the worker from a function payload and an `ns` payload.
 *
 * A source function is compiled in ONE scope in which every `ns` value and helper is bound by
 * name (helpers can call each other and the main function), together with `require`, `__name`
 * (esbuild/tsx keepNames) and `__awaiter` (TypeScript's ES2015 async helper). An `ns` key of the
 * same name shadows these. The main function is also bound by its own name, so a recursive arrow
 * function finds itself. A module function is imported (`ns` is not used).
 *
 * @param func - Bytes from `encodeFunction`.
 * @param ns - Bytes from `encodeNamespace`, or undefined for an empty namespace.
 * @param options - What the scope needs from the running process.
 * @throws {SerializeError} `BAD_PAYLOAD`, `UNSUPPORTED_SOURCE` (the source does not compile on this
 *   Node.js), `MODULE_IMPORT_FAILED` or `BAD_EXPORT`.
 */
export async function buildFunction(
  func: Uint8Array,
  ns: Uint8Array | undefined,
  options: BuildOptions,
): Promise<AnyFunction> {
  const payload = decodeFunction(func);
  if (payload.kind === 'module') return importFunction(payload, options.require);

  const { values, functions } =
    ns === undefined || ns.byteLength === 0 ? { values: {}, functions: {} } : decodeNamespace(ns);
  const params: string[] = [];
  const args: unknown[] = [];
  const runtime: Record<string, unknown> = { require: options.require, __name, __awaiter };
  for (const [name, value] of Object.entries(runtime)) {
    if (!(name in values) && !(name in functions)) {
      params.push(name);
      args.push(value);
    }
  }
  for (const [name, value] of Object.entries(values)) {
    params.push(name);
    args.push(value);
  }
  let body = '';
  for (const [name, source] of Object.entries(functions)) {
    body += `let ${name} = (${source}\n);\n`;
  }
  const selfName = payload.name;
  if (isBindableName(selfName) && !params.includes(selfName) && !(selfName in functions)) {
    body += `let ${selfName} = (${payload.source}\n);\nreturn ${selfName};\n`;
  } else {
    body += `return (${payload.source}\n);\n`;
  }

  let scope: (...a: unknown[]) => unknown;
  try {
    scope = compileFunction(body, params, { filename: 'sheepdog-task.js' }) as typeof scope;
  } catch (error) {
    throw new SerializeError(
      'UNSUPPORTED_SOURCE',
      `cannot compile the function on this worker (Node.js ${process.version}): ${(error as Error).message}. The worker may run an older Node.js than the submitter; use syntax it supports.`,
      { cause: error },
    );
  }
  const f = scope(...args);
  if (typeof f !== 'function') {
    throw new SerializeError(
      'BAD_PAYLOAD',
      `the function payload's source evaluated to ${typeof f}, not a function. Encode it with encodeFunction().`,
    );
  }
  return f as AnyFunction;
}
