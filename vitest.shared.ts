import { defineConfig } from 'vitest/config';

/**
 * The two test tiers every package's `vitest.config.ts` takes from here.
 * `unit` needs only this machine (real SQLite files, loopback servers, local Node processes);
 * `cluster` needs the test cluster that `scripts/test-cluster.sh` starts (sshd, Grid Engine,
 * SLURM), and its files are named `*.cluster.test.ts`.
 */
const CLUSTER_TESTS = '**/*.cluster.test.ts';
const NEVER = ['**/node_modules/**', '**/dist/**'];

export default defineConfig({
  test: {
    // vitest's 5 s default fails tests that are merely slow on a loaded 2-core machine; a test
    // that needs a tighter bound says so itself.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['**/*.test.ts'], exclude: [CLUSTER_TESTS, ...NEVER] },
      },
      { extends: true, test: { name: 'cluster', include: [CLUSTER_TESTS], exclude: NEVER } },
    ],
  },
});
