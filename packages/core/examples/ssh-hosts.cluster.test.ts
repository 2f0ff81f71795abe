// The guide's example backend, held to the same contract as the built-in ones. Its host list is
// the test cluster's sshd, twice: two "hosts" that happen to be one machine.
import { Deployer } from '@sheepdog/deployer';
import { clusterSsh, loadCluster } from '@sheepdog/test-cluster';
import { describe, expect, it } from 'vitest';
import { backendContract } from '../test/contract.js';
import { sshHosts } from './ssh-hosts.js';

// Throws without the test cluster: this suite fails, it never skips.
const cluster = loadCluster();
const host = clusterSsh(cluster);

const make = () => sshHosts({ hosts: [host, host], node: cluster.node });

backendContract('ssh-hosts', make, { workerHost: '127.0.0.1', lease: false });

describe('ssh-hosts (its own cases)', () => {
  it('spreads the tasks round-robin over the hosts', async () => {
    const backend = make();
    const deployer = new Deployer(host);
    try {
      // No server is needed to look at the placement: the tasks fail to report and exit.
      const submission = await backend.submit({
        requestId: 1,
        url: 'http://127.0.0.1:9/',
        token: 'unused-token',
        indices: [1, 2, 3, 4, 5],
        name: 'placement',
      });
      const hosts = submission.meta?.hosts as Array<{ host: number; tasks: number[][] }>;
      expect(hosts.map((h) => [h.host, h.tasks.map(([k]) => k)])).toEqual([
        [0, [1, 3, 5]],
        [1, [2, 4]],
      ]);
      await backend.cancel(submission);
      // Every process of the tasks' sessions is gone (zombies aside: PID 1 may reap them late).
      const groups = hosts.flatMap((h) => h.tasks.map(([, pid]) => pid)).join(',');
      const deadline = Date.now() + 10_000;
      let left = '';
      do {
        await new Promise((resolve) => setTimeout(resolve, 200));
        left = (await deployer.exec(`ps -o stat= -s ${groups} | grep -vc '^Z'`)).stdout.trim();
      } while (left !== '0' && Date.now() < deadline);
      expect(left).toBe('0');
    } finally {
      await deployer.close();
      await backend.dispose?.();
    }
  }, 30_000);

  it('refuses an empty host list', () => {
    expect(() => sshHosts({ hosts: [] })).toThrow(/at least one host/);
  });
});
