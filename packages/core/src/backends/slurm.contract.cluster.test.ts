import { clusterSsh, loadCluster } from '@sheepdog/test-cluster';
import { backendContract } from '../../test/contract.js';
import { slurm } from './slurm.js';

// Throws without the test cluster: this suite fails, it never skips.
const cluster = loadCluster('slurm');

backendContract('slurm', () => slurm({ ...clusterSsh(cluster), shell: cluster.node }), {
  workerHost: '127.0.0.1',
});
