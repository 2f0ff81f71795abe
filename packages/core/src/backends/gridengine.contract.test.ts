import { loadCluster } from '@sheepdog/test-cluster';
import { backendContract } from '../../test/contract.js';
import { gridengine } from './gridengine.js';

// Throws without the test cluster: this suite fails, it never skips.
const cluster = loadCluster();
if (!cluster.gridEngine) {
  throw new Error(
    'Grid Engine does not run jobs on the test cluster (SHEEPDOG_TEST_GRIDENGINE is not 1): run `bash scripts/test-cluster.sh` as root, then the tests again.',
  );
}

backendContract(
  'gridengine',
  () =>
    gridengine({
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
