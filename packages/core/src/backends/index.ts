import type { Backend } from '../backend.js';
import type { ResolvedConfig } from '../config.js';
import { SheepdogError } from '../errors.js';
import { fqdn } from '../fqdn.js';
import { gridengine, slurm } from './lazy.js';
import { local } from './local.js';

/** Drops the keys whose value is undefined, so a backend's own defaults apply to them. */
function given<T extends Record<string, unknown>>(options: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined),
  ) as Partial<T>;
}

/** The SSH and remote-folder options both cluster backends take from the config. */
function sshOptions(config: ResolvedConfig) {
  return {
    host: config.host as string,
    directory: config.sshDir,
    acceptNewHostKey: config.sshAcceptNewHostKey,
    ...given({
      port: config.sshPort,
      user: config.sshUser,
      keyfile: config.sshKeyfile,
      knownHostsFile: config.sshKnownHostsFile,
      shell: config.shell,
      maxHeapMb: config.maxHeapMb,
    }),
  };
}

/**
 * Turns the config's `backend` (a name or an object) into a backend object. A cluster backend
 * named here imports its code on first use (see `./lazy.ts`), so a local map never loads it.
 */
export function resolveBackend(config: ResolvedConfig): Backend {
  const { backend } = config;
  if (typeof backend !== 'string') return backend;
  switch (backend) {
    case 'local':
      return local({
        ...given({
          concurrency: config.concurrency,
          node: config.shell,
          maxHeapMb: config.maxHeapMb,
        }),
        ownProcessGroup: config.ownProcessGroup,
      });
    case 'gridengine':
      return gridengine({ ...sshOptions(config), ...given({ geOpts: config.geOpts }) });
    case 'slurm':
      return slurm({ ...sshOptions(config), ...given({ slurmOpts: config.slurmOpts }) });
  }
  throw new SheepdogError(
    'UNKNOWN_BACKEND',
    `unknown backend ${JSON.stringify(backend)}; use one of local, gridengine, slurm or a backend object`,
  );
}

/** The host name workers use to reach this machine: the backend's choice, else this machine's FQDN. */
export async function workerHost(backend: Backend): Promise<string> {
  return backend.workerHost ? backend.workerHost() : fqdn();
}
