import { loadCluster } from '@sheepdog/test-cluster';
import { backendContract } from '../../test/contract.js';
import { gridengine } from './gridengine.js';

// Throws without the test cluster: this suite fails, it never skips.
const cluster = loadCluster();

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
