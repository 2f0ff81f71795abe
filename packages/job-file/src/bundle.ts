import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { JobFileError } from './error.js';

let cached: string | undefined;

/**
 * The text of the single-file worker (`@sheepdog/worker/bundle`), read once per process.
 *
 * @throws {JobFileError} `BUNDLE_NOT_FOUND` when `@sheepdog/worker` has not been built.
 */
export function workerBundle(): string {
  if (cached !== undefined) return cached;
  let path: string;
  try {
    path = createRequire(import.meta.url).resolve('@sheepdog/worker/bundle');
    cached = readFileSync(path, 'utf8');
  } catch (error) {
    throw new JobFileError(
      'BUNDLE_NOT_FOUND',
      `cannot read the worker bundle (@sheepdog/worker/bundle): ${(error as Error).message}. Build it with: pnpm --filter @sheepdog/worker build`,
      { cause: error },
    );
  }
  return cached;
}
