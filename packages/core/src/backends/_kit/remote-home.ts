import type { Deployer } from '@sheepdog/deployer';
import { COMMAND_LIMIT } from './limits.js';
import { keptOnSuccess } from './once.js';

/**
 * The remote folder for job files and task logs, as an absolute path: schedulers take relative
 * output and working directories against the job's working directory, not the home. A relative
 * `directory` (with or without a leading `~/`) is under the remote `$HOME`, which is asked once
 * per backend over `deployer`; a lookup that failed is not kept (see {@link keptOnSuccess}).
 *
 * @param deployer - where to ask for `$HOME`
 * @param directory - the backend's `directory` option
 * @returns a function that answers the absolute folder
 */
export function remoteFolder(
  deployer: Pick<Deployer, 'exec'>,
  directory: string,
): () => Promise<string> {
  if (directory.startsWith('/')) return () => Promise.resolve(directory);
  const relative = directory.replace(/^~\//, '');
  return keptOnSuccess(async () => {
    const home = await deployer.exec('printf %s "$HOME"', COMMAND_LIMIT);
    return `${home.stdout.trim()}/${relative}`;
  });
}
