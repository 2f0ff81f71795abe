import type { Backend } from '../backend.js';
import type { ResolvedConfig } from '../config.js';
import { fqdn } from '../fqdn.js';
import { local } from './local.js';

/** Turns the config's `backend` (a name or an object) into a backend object. */
export function resolveBackend(config: ResolvedConfig): Backend {
  const { backend } = config;
  if (typeof backend !== 'string') return backend;
  switch (backend) {
    case 'local':
      return local({
        ...(config.concurrency === undefined ? {} : { concurrency: config.concurrency }),
        ...(config.shell === undefined ? {} : { node: config.shell }),
        ...(config.maxHeapMb === undefined ? {} : { maxHeapMb: config.maxHeapMb }),
      });
    case 'gridengine':
    case 'slurm':
      throw new Error(`the ${backend} backend is not built yet`);
  }
}

/** The host name workers use to reach this machine: the backend's choice, else this machine's FQDN. */
export async function workerHost(backend: Backend): Promise<string> {
  return backend.workerHost ? backend.workerHost() : fqdn();
}
