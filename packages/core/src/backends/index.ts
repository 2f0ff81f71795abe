import type { Backend } from '../backend.js';
import type { ResolvedConfig } from '../config.js';
import { SheepdogError } from '../errors.js';
import { fqdn } from '../fqdn.js';
import { gridengine } from './gridengine.js';
import { local } from './local.js';
import { slurm } from './slurm.js';

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
      return gridengine({
        host: config.host as string,
        directory: config.sshDir,
        acceptNewHostKey: config.sshAcceptNewHostKey,
        ...(config.sshPort === undefined ? {} : { port: config.sshPort }),
        ...(config.sshUser === undefined ? {} : { user: config.sshUser }),
        ...(config.sshKeyfile === undefined ? {} : { keyfile: config.sshKeyfile }),
        ...(config.sshKnownHostsFile === undefined
          ? {}
          : { knownHostsFile: config.sshKnownHostsFile }),
        ...(config.shell === undefined ? {} : { shell: config.shell }),
        ...(config.geOpts === undefined ? {} : { geOpts: config.geOpts }),
        ...(config.maxHeapMb === undefined ? {} : { maxHeapMb: config.maxHeapMb }),
      });
    case 'slurm':
      return slurm({
        host: config.host as string,
        directory: config.sshDir,
        acceptNewHostKey: config.sshAcceptNewHostKey,
        ...(config.sshPort === undefined ? {} : { port: config.sshPort }),
        ...(config.sshUser === undefined ? {} : { user: config.sshUser }),
        ...(config.sshKeyfile === undefined ? {} : { keyfile: config.sshKeyfile }),
        ...(config.sshKnownHostsFile === undefined
          ? {}
          : { knownHostsFile: config.sshKnownHostsFile }),
        ...(config.shell === undefined ? {} : { shell: config.shell }),
        ...(config.slurmOpts === undefined ? {} : { slurmOpts: config.slurmOpts }),
        ...(config.maxHeapMb === undefined ? {} : { maxHeapMb: config.maxHeapMb }),
      });
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
