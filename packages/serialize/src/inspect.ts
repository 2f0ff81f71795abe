import { parse } from 'acorn';
import { analyze } from 'periscopic';
import { SerializeError } from './error.js';
import {
  type AnyFunction,
  checkModuleFunction,
  functionExpression,
  type ModuleFunction,
} from './function.js';
import { checkNamespaceName, isBindableName } from './namespace.js';

/** Names the worker binds in every function's scope besides `ns` (see `buildFunction`). */
const RUNTIME_NAMES = new Set(['require', '__name', '__awaiter', 'arguments']);

const HINTS: Record<string, string> = {
  module: 'CommonJS module variables do not exist on the worker.',
  exports: 'CommonJS module variables do not exist on the worker.',
  __dirname:
    'CommonJS module variables do not exist on the worker; pass the directory as a value in ns.',
  __filename:
    'CommonJS module variables do not exist on the worker; pass the path as a value in ns.',
};

// Built-ins that structured clone copies with their type intact, by their toString tag, which
// (unlike prototype identity) also holds for objects made in another realm such as a vm context.
const CLONEABLE_TAGS = new Set([
  'Date',
  'RegExp',
  'Map',
  'Set',
  'ArrayBuffer',
  'DataView',
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'Number',
  'String',
  'Boolean',
  'BigInt',
]);

// Built-ins that are not class instances in the user's sense but cannot be copied at all.
const UNCLONEABLE = new Set([
  'Promise',
  'WeakMap',
  'WeakSet',
  'WeakRef',
  'FinalizationRegistry',
  'SharedArrayBuffer',
]);

type Program = Parameters<typeof analyze>[0];

/** One object still to visit; its path is only formatted when something is wrong. */
interface Visit {
  value: object;
  parent: Visit | undefined;
  step: string | number;
}

function formatStep(step: string | number): string {
  if (typeof step === 'number') return `[${step}]`;
  if (step.startsWith('<')) return step;
  return /^[A-Za-z_$][\w$]*$/.test(step) ? `.${step}` : `[${JSON.stringify(step)}]`;
}

function pathOf(visit: Visit | undefined, root: string, last?: string | number): string {
  // Only the root value has no parent.
  if (visit === undefined) return root;
  const steps: string[] = last === undefined ? [] : [formatStep(last)];
  for (let v = visit; v?.parent !== undefined; v = v.parent) steps.push(formatStep(v.step));
  return root + steps.reverse().join('');
}

function constructorName(proto: object | null): string | undefined {
  return (proto as { constructor?: { name?: unknown } } | null)?.constructor?.name as
    | string
    | undefined;
}

function isPlainPrototype(proto: object | null): boolean {
  if (proto === null || proto === Object.prototype) return true;
  // An Object.prototype from another realm (a vm context) is still a plain object.
  return Object.getPrototypeOf(proto) === null && constructorName(proto) === 'Object';
}

type Kind = 'array' | 'plain' | 'map' | 'set' | 'leaf' | undefined;

/** How to treat an object: walk it, accept it whole, or (undefined) refuse it. */
function kindOf(object: object, proto: object | null): Kind {
  if (Array.isArray(object)) {
    return proto === Array.prototype || constructorName(proto) === 'Array' ? 'array' : undefined;
  }
  if (isPlainPrototype(proto)) return 'plain';
  const tag = Object.prototype.toString.call(object).slice(8, -1);
  // Every Error subclass is cloned as an Error (its stack keeps the subclass name).
  if (tag === 'Error') return 'leaf';
  const name = constructorName(proto);
  if (tag === 'Uint8Array' && name === 'Buffer') return 'leaf';
  // A subclass of a built-in has the built-in's tag but its own constructor name.
  if (!CLONEABLE_TAGS.has(tag) || name !== tag) return undefined;
  return tag === 'Map' ? 'map' : tag === 'Set' ? 'set' : 'leaf';
}

function describeFunction(f: AnyFunction): string {
  return f.name ? `function ${f.name}` : 'an anonymous function';
}

/**
 * Checks that a value can travel to a worker unchanged: no symbols (as values or property keys),
 * no functions, and no objects whose prototype would be lost (class instances, subclasses of
 * built-ins). Plain objects, arrays, Date, RegExp, Map, Set, ArrayBuffer, typed arrays, Buffer,
 * DataView, Error (and subclasses) and boxed primitives are accepted. Each object is visited once,
 * so shared and cyclic references cost nothing extra.
 *
 * @param value - The value to check.
 * @param path - How the value is named in error messages, e.g. `args[3]`; problems inside it are
 *   reported with the path extended, e.g. `args[3][0].when`.
 * @default path `'value'`
 * @throws {SerializeError} `SYMBOL`, `FUNCTION_IN_VALUE` or `CLASS_INSTANCE`, naming the path.
 */
export function checkValue(value: unknown, path = 'value'): void {
  const seen = new Set<object>();
  const stack: Visit[] = [];

  const visit = (child: unknown, parent: Visit | undefined, step: string | number): void => {
    const type = typeof child;
    if (type === 'symbol') {
      throw new SerializeError(
        'SYMBOL',
        `${pathOf(parent, path, step)} is a symbol (${String(child)}); symbols cannot be shipped. Use a string instead.`,
      );
    }
    if (type === 'function') {
      throw new SerializeError(
        'FUNCTION_IN_VALUE',
        `${pathOf(parent, path, step)} is ${describeFunction(child as AnyFunction)}; functions cannot travel inside arguments or ns values. Put helper functions at the top level of ns and refer to them by name.`,
      );
    }
    if (type === 'object' && child !== null && !seen.has(child as object)) {
      seen.add(child as object);
      stack.push({ value: child as object, parent, step });
    }
  };

  visit(value, undefined, '');
  for (let current = stack.pop(); current !== undefined; current = stack.pop()) {
    const object = current.value;
    const proto = Object.getPrototypeOf(object) as object | null;
    const kind = kindOf(object, proto);
    if (kind === 'array') {
      const array = object as unknown[];
      for (let i = 0; i < array.length; i++) {
        const element = array[i];
        const type = typeof element;
        if (type === 'object' || type === 'symbol' || type === 'function') {
          visit(element, current, i);
        }
      }
    } else if (kind === 'plain') {
      const symbols = Object.getOwnPropertySymbols(object);
      if (symbols.length > 0) {
        throw new SerializeError(
          'SYMBOL',
          `${pathOf(current, path)} has a symbol-keyed property (${String(symbols[0])}), which would be dropped. Use a string key instead.`,
        );
      }
      for (const key of Object.keys(object)) {
        visit((object as Record<string, unknown>)[key], current, key);
      }
    } else if (kind === 'map') {
      let i = 0;
      for (const [key, entry] of object as Map<unknown, unknown>) {
        visit(key, current, `<map key #${i}>`);
        visit(entry, current, `<map value #${i}>`);
        i++;
      }
    } else if (kind === 'set') {
      let i = 0;
      for (const item of object as Set<unknown>) visit(item, current, `<set item #${i++}>`);
    } else if (kind === undefined) {
      const name = constructorName(proto) || 'an anonymous class';
      const where = pathOf(current, path);
      throw new SerializeError(
        'CLASS_INSTANCE',
        UNCLONEABLE.has(name)
          ? `${where} is a ${name}, which cannot be copied to a worker. Pass the data it holds instead.`
          : `${where} is an instance of ${name}; its prototype and methods would be lost on the worker (it would arrive as a plain object or fail). Convert it to plain data (objects, arrays, Map, Set, Date, …) before submitting.`,
      );
    }
  }
}

/** Options of {@link checkArgs}. */
export interface CheckArgsOptions {
  /**
   * Check at most this many elements, spread evenly from the first to the last, to bound the cost
   * of checking a huge argument list; unset checks every element.
   * @default undefined (check all)
   */
  sample?: number;
}

/**
 * Checks every element of a `map` argument list (or an even sample of them) with
 * {@link checkValue}, naming problems as `args[i]…`.
 *
 * @throws {SerializeError} `SYMBOL`, `FUNCTION_IN_VALUE` or `CLASS_INSTANCE`, naming the path.
 */
export function checkArgs(argsList: readonly unknown[], options: CheckArgsOptions = {}): void {
  const n = argsList.length;
  const { sample } = options;
  if (sample === undefined || n <= sample) {
    for (let i = 0; i < n; i++) checkValue(argsList[i], `args[${i}]`);
    return;
  }
  const count = Math.max(1, Math.floor(sample));
  let previous = -1;
  for (let k = 0; k < count; k++) {
    const i = count === 1 ? 0 : Math.round((k * (n - 1)) / (count - 1));
    if (i !== previous) checkValue(argsList[i], `args[${i}]`);
    previous = i;
  }
}

function collectClassExpressionNames(node: unknown, names: Set<string>): void {
  if (Array.isArray(node)) {
    for (const child of node) collectClassExpressionNames(child, names);
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const n = node as { type?: string; id?: { name?: string } | null };
  if (n.type === 'ClassExpression' && n.id?.name) names.add(n.id.name);
  for (const [key, child] of Object.entries(node)) {
    if (key !== 'loc' && typeof child === 'object') collectClassExpressionNames(child, names);
  }
}

/**
 * The names a function source expression reads without declaring them, or undefined when the
 * source cannot be parsed here (then the free-variable check is skipped, not failed).
 */
function freeVariables(source: string): string[] | undefined {
  let program: Program;
  try {
    program = parse(`(${source}\n)`, {
      ecmaVersion: 'latest',
      sourceType: 'script',
    }) as unknown as Program;
  } catch {
    return undefined;
  }
  const { globals } = analyze(program);
  // periscopic does not scope a class expression's own name; `new.target` reads as `new`.
  const ignored = new Set(['new']);
  collectClassExpressionNames(program, ignored);
  return [...globals.keys()].filter((name) => !ignored.has(name));
}

function checkFreeVariables(source: string, label: string, known: ReadonlySet<string>): void {
  for (const name of freeVariables(source) ?? []) {
    if (known.has(name) || RUNTIME_NAMES.has(name) || name in globalThis) continue;
    const hint =
      HINTS[name] ??
      (name.startsWith('__')
        ? 'It looks like a compiler helper: compile for ES2017 or later, or run the script with tsx.'
        : `Pass it in ns, e.g. map(f, args, config, { ${name} }).`);
    throw new SerializeError(
      'FREE_VARIABLE',
      `${label} uses ${JSON.stringify(name)}, which is neither in ns nor a global on the worker. ${hint}`,
    );
  }
}

/**
 * Refuses, at submit time, a function and namespace that cannot run on a worker, with an error
 * naming the offender: a native, bound or class function (or a getter); a bad `ns` key; a symbol,
 * function or class instance inside an `ns` value; a free variable of the function or of an `ns`
 * helper that is neither in `ns` nor a global (nor `require`, `__name`, `__awaiter`, `arguments`,
 * which the worker provides). A module reference `{ module, export }` is only checked for form.
 *
 * @param f - The task function or module reference.
 * @param ns - The namespace of values and helper functions, if any.
 * @throws {SerializeError} with the codes listed in the error table.
 */
export function inspectFunction(
  f: AnyFunction | ModuleFunction,
  ns: Readonly<Record<string, unknown>> = {},
): void {
  if (typeof f !== 'function') {
    checkModuleFunction(f);
    return;
  }
  const main = functionExpression(f, 'the function', false);
  const known = new Set(Object.keys(ns));
  if (isBindableName(f.name)) known.add(f.name);
  const helpers: [string, string][] = [];
  for (const [name, value] of Object.entries(ns)) {
    checkNamespaceName(name);
    if (typeof value === 'function') {
      helpers.push([`ns.${name}`, functionExpression(value as AnyFunction, `ns.${name}`, true)]);
    } else {
      checkValue(value, `ns.${name}`);
    }
  }
  checkFreeVariables(main, `the function${f.name ? ` (${f.name})` : ''}`, known);
  for (const [label, source] of helpers) checkFreeVariables(source, label, known);
}

export { SerializeError, type SerializeErrorCode } from './error.js';
