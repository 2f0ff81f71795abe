import { loadCluster } from '@sheepdog/test-cluster';
import { backendContract } from '../../test/contract.js';
import { slurm } from './slurm.js';

// Throws without the test cluster: this suite fails, it never skips.
const cluster = loadCluster();
if (!cluster.slurm) {
  throw new Error(
    'SLURM does not run jobs on the test cluster (SHEEPDOG_TEST_SLURM is not 1): run `bash scripts/test-cluster.sh` as root, then the tests again.',
  );
}

backendContract(
  'slurm',
  () =>
    slurm({
      host: cluster.host,
      port: cluster.port,
      user: cluster.user,
      keyfile: cluster.key,
      knownHostsFile: cluster.knownHosts,
      sshConfigFile: false,
      agent: false,
      shell: cluster.node,
    }),
  { workerHost: '127.0.0.1' },
);
