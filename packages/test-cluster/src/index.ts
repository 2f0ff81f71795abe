import { existsSync, readFileSync } from 'node:fs';

/**
 * Where scripts/test-cluster.sh records how to reach the test cluster
 * (`SHEEPDOG_CLUSTER_ENV` points elsewhere, e.g. to check that the suite fails without it).
 */
export const CLUSTER_ENV_FILE =
  process.env.SHEEPDOG_CLUSTER_ENV ?? '/var/lib/sheepdog-cluster/cluster.env';

/** The real test cluster: a loopback sshd with Grid Engine and SLURM behind it. */
export interface TestCluster {
  host: string;
  port: number;
  user: string;
  /** Private key authorised for `user`. */
  key: string;
  /** known_hosts holding the sshd's host key as `[host]:port`. */
  knownHosts: string;
  /** Grid Engine runs jobs submitted by `user`. */
  gridEngine: boolean;
  /** SLURM runs jobs submitted by `user`. */
  slurm: boolean;
  /** Node.js on the execution host. */
  node: string;
}

function parseEnvFile(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^\s*(?:export\s+)?([A-Z0-9_]+)=(.*)$/.exec(line);
    if (match?.[1] === undefined || match[2] === undefined) continue;
    values[match[1]] = match[2].trim().replace(/^(['"])(.*)\1$/, '$2');
  }
  return values;
}

/** A scheduler a suite needs running jobs on the test cluster. */
export type Scheduler = 'gridengine' | 'slurm';

/**
 * Reads the cluster description (the env file, overridden by `SHEEPDOG_TEST_*` variables).
 * Throws when the cluster is not set up, or when `needs` names a scheduler that does not run
 * jobs on it: the real suites must fail, never skip, without it.
 */
export function loadCluster(needs?: Scheduler): TestCluster {
  const fromFile = existsSync(CLUSTER_ENV_FILE)
    ? parseEnvFile(readFileSync(CLUSTER_ENV_FILE, 'utf8'))
    : {};
  const get = (name: string): string | undefined => process.env[name] ?? fromFile[name];
  const host = get('SHEEPDOG_TEST_SSH_HOST');
  const port = get('SHEEPDOG_TEST_SSH_PORT');
  const user = get('SHEEPDOG_TEST_SSH_USER');
  const key = get('SHEEPDOG_TEST_SSH_KEY');
  const knownHosts = get('SHEEPDOG_TEST_KNOWN_HOSTS');
  if (!host || !port || !user || !key || !knownHosts) {
    const where = existsSync(CLUSTER_ENV_FILE)
      ? `${CLUSTER_ENV_FILE} lacks SHEEPDOG_TEST_SSH_HOST/PORT/USER/KEY or SHEEPDOG_TEST_KNOWN_HOSTS`
      : `${CLUSTER_ENV_FILE} does not exist`;
    throw new Error(
      `The real test cluster is not set up (${where}). Run \`bash scripts/test-cluster.sh\` as root from the repository root, then run the tests again.${process.env.CI ? ' In CI this suite must run: the cluster script has to succeed before the tests.' : ''}`,
    );
  }
  const cluster: TestCluster = {
    host,
    port: Number(port),
    user,
    key,
    knownHosts,
    gridEngine: get('SHEEPDOG_TEST_GRIDENGINE') === '1',
    slurm: get('SHEEPDOG_TEST_SLURM') === '1',
    node: get('SHEEPDOG_TEST_NODE') ?? '/usr/bin/node',
  };
  const missing =
    needs === 'gridengine' && !cluster.gridEngine
      ? 'Grid Engine does not run jobs on the test cluster (SHEEPDOG_TEST_GRIDENGINE is not 1)'
      : needs === 'slurm' && !cluster.slurm
        ? 'SLURM does not run jobs on the test cluster (SHEEPDOG_TEST_SLURM is not 1)'
        : undefined;
  if (missing !== undefined) {
    throw new Error(
      `${missing}: run \`bash scripts/test-cluster.sh\` as root, then the tests again.`,
    );
  }
  return cluster;
}

/**
 * How the deployer and the cluster backends reach the test cluster: with its own key and
 * known_hosts only, never the running user's `~/.ssh/config` or agent.
 */
export interface ClusterSsh {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly keyfile: string;
  readonly knownHostsFile: string;
  readonly sshConfigFile: false;
  readonly agent: false;
}

/** The {@link ClusterSsh} options of `cluster`. */
export function clusterSsh(cluster: TestCluster): ClusterSsh {
  return {
    host: cluster.host,
    port: cluster.port,
    user: cluster.user,
    keyfile: cluster.key,
    knownHostsFile: cluster.knownHosts,
    sshConfigFile: false,
    agent: false,
  };
}

/** The keys of a `map` config that reach the test cluster and run its Node.js. */
export interface ClusterMapConfig {
  readonly host: string;
  readonly sshPort: number;
  readonly sshUser: string;
  readonly sshKeyfile: string;
  readonly sshKnownHostsFile: string;
  readonly shell: string;
}

/** The {@link ClusterMapConfig} of `cluster`. */
export function clusterMapConfig(cluster: TestCluster): ClusterMapConfig {
  return {
    host: cluster.host,
    sshPort: cluster.port,
    sshUser: cluster.user,
    sshKeyfile: cluster.key,
    sshKnownHostsFile: cluster.knownHosts,
    shell: cluster.node,
  };
}
