import { existsSync } from 'node:fs';
import { extname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ModuleFunction } from 'sheepdog';

const TYPESCRIPT = new Set(['.ts', '.mts', '.cts', '.tsx']);

function looksLikePath(module: string): boolean {
  return (
    isAbsolute(module) ||
    module.startsWith('.') ||
    module.startsWith('file:') ||
    existsSync(resolve(module))
  );
}

async function checkExport(
  url: string,
  name: string,
  shown: string,
  problems: string[],
): Promise<void> {
  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    problems.push(
      `${shown}: cannot import it here (${(error as Error).message}); fix the module, or pass --no-check if it only loads where the tasks run`,
    );
    return;
  }
  let f = namespace[name];
  // A CommonJS module's exports may sit only under `default`, as the worker also allows.
  if (f === undefined && name !== 'default') {
    f = (namespace.default as Record<string, unknown> | undefined)?.[name];
  }
  if (typeof f !== 'function') {
    const functions = Object.keys(namespace).filter((k) => typeof namespace[k] === 'function');
    problems.push(
      `${shown}: has no function exported as "${name}"${f === undefined ? '' : ` (it is a ${typeof f})`}; its function exports: ${functions.join(', ') || 'none'}`,
    );
  }
}

/**
 * Turns `<module>#<export>` into the function reference the workers import. A module that
 * names a file (relative paths are resolved against the working directory) becomes an absolute
 * file URL; anything else is a package name the workers resolve themselves. Without `#`, the
 * default export runs. With `check`, a local file is imported here first so that a typo fails
 * now instead of in every task.
 */
export async function parseTarget(
  spec: string,
  check: boolean,
  problems: string[],
): Promise<ModuleFunction | undefined> {
  const hash = spec.lastIndexOf('#');
  const module = hash === -1 ? spec : spec.slice(0, hash);
  const name = hash === -1 ? 'default' : spec.slice(hash + 1);
  if (module === '' || name === '') {
    problems.push(
      `${spec}: expected <module>#<export>, e.g. ./tasks.mjs#square (without #, the default export runs)`,
    );
    return undefined;
  }
  if (!looksLikePath(module)) return { module, export: name };
  const file = module.startsWith('file:') ? fileURLToPath(module) : resolve(module);
  if (!existsSync(file)) {
    problems.push(`${module}: no such file (looked at ${file})`);
    return undefined;
  }
  const url = pathToFileURL(file).href;
  if (check) {
    if (TYPESCRIPT.has(extname(file).toLowerCase())) {
      problems.push(
        `${module}: workers run plain Node.js, which cannot import TypeScript before Node 22.18; compile it (tsc) and run the .js file, or pass --no-check if your workers' Node.js strips types`,
      );
      return undefined;
    }
    await checkExport(url, name, module, problems);
  }
  return { module: url, export: name };
}
