// End to end on the real test cluster (scripts/test-cluster.sh): a real sshd, a real qsub and a
// real sge_execd running real Node workers that call back to this process's server.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Deployer } from '@sheepdog/deployer';
import {
  clusterMapConfig,
  clusterSsh,
  loadCluster,
  type TestCluster,
} from '@sheepdog/test-cluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getErrors, map, type SheepdogConfig } from '../index.js';
import { parseQacct, parseQstat } from './gridengine.js';

let cluster: TestCluster;
let dir: string;
let config: SheepdogConfig;
const sshDir = `.sheepdog-test-${process.pid}`;

beforeAll(() => {
  cluster = loadCluster('gridengine');
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-ge-'));
  config = {
    backend: 'gridengine',
    ...clusterMapConfig(cluster),
    sshDir,
    dbfile: join(dir, 'sheepdog.sqlite'),
  };
});

afterAll(async () => {
  if (cluster === undefined) return;
  const deployer = new Deployer(clusterSsh(cluster));
  await deployer.exec(`rm -rf ~/${sshDir}`);
  await deployer.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('map on Grid Engine over SSH', () => {
  it('runs plain and async functions and brings the results back in order', async () => {
    expect(
      await map(
        (a: number, b: number) => a * b,
        [
          [1, 2],
          [3, 4],
        ],
        config,
      ),
    ).toEqual([2, 12]);
    const later = async (x: string): Promise<string> => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return x.toUpperCase();
    };
    expect(await map(later, ['sheep', 'dog'], config)).toEqual(['SHEEP', 'DOG']);
  }, 120_000);

  it('ships the namespace and reports errors with their stacks', async () => {
    const dbfile = join(dir, 'ns.sqlite');
    const scale = (x: number): number => {
      if (x < 0) throw new RangeError(`negative: ${x}`);
      return x * FACTOR;
    };
    const FACTOR = 10;
    const results = await map(
      (x: number) => scale(x),
      [1, -2, 3],
      { ...config, dbfile },
      { scale, FACTOR },
    );
    expect(results).toEqual([10, null, 30]);
    const errors = await getErrors(1, dbfile);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.[0]).toEqual([-2]);
    expect(errors[0]?.[1]).toContain('RangeError: negative: -2');
    expect(errors[0]?.[1]).toMatch(/\n\s+at /);
  }, 120_000);

  it('runs 100 tasks, each result once', async () => {
    const args = Array.from({ length: 100 }, (_, i) => i);
    const results = await map((i: number) => `${i}:${process.env.SGE_TASK_ID}`, args, config);
    // Each task ran under Grid Engine as the array task of its own index.
    expect(results).toEqual(args.map((i) => `${i}:${i + 1}`));
  }, 300_000);

  it('writes the job file owner-only on the cluster, with the directories it needs', async () => {
    await map((x: number) => x, [1], config);
    const deployer = new Deployer(clusterSsh(cluster));
    try {
      const { stdout } = await deployer.exec(`stat -c '%a %n' ~/${sshDir} ~/${sshDir}/*.cjs`);
      const lines = stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^700 /);
      for (const line of lines.slice(1)) expect(line).toMatch(/^600 .*sheepdog-\d+-\d+\.cjs$/);
    } finally {
      await deployer.close();
    }
  }, 120_000);

  it('fails with qsub stderr when an option is bad', async () => {
    const error = await map((x: number) => x, [1], {
      ...config,
      geOpts: ['-l no_such_resource=1'],
    }).catch((e: Error & { code?: string }) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as { code?: string }).code).toBe('SUBMIT_FAILED');
    expect((error as Error).message).toMatch(/no_such_resource/);
  }, 120_000);

  it('refuses an unknown host key and a wrong client key', async () => {
    const empty = join(dir, 'empty_known_hosts');
    writeFileSync(empty, '');
    const unknown = await map((x: number) => x, [1], { ...config, sshKnownHostsFile: empty }).catch(
      (e: Error) => e,
    );
    expect((unknown as Error).message).toMatch(/ssh-keyscan|known_hosts/);
    const otherKey = join(dir, 'not-authorised');
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey } = generateKeyPairSync('ed25519');
    writeFileSync(otherKey, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    const denied = await map((x: number) => x, [1], { ...config, sshKeyfile: otherKey }).catch(
      (e: Error) => e,
    );
    expect(denied).toBeInstanceOf(Error);
    expect((denied as Error).message).toMatch(/auth/i);
  }, 120_000);
});

describe('parsing Grid Engine output', () => {
  it('reads one task per qstat -g d line, pending and running', () => {
    const text = [
      'job-ID  prior   name       user         state submit/start at     queue                          slots ja-task-ID',
      '-----------------------------------------------------------------------------------------------------------------',
      '    152 0.50000 sleep      sgeuser      r     11/25/2026 16:08:41 all.q@vm                           1 1',
      '    152 0.50000 sleep      sgeuser      qw    11/25/2026 16:08:41                                    1 51',
      '    153 0.50000 sleep      sgeuser      Eqw   11/25/2026 16:08:41                                    1 2',
    ].join('\n');
    expect(parseQstat(text)).toEqual([
      { jobId: '152', taskId: 1, state: 'r' },
      { jobId: '152', taskId: 51, state: 'qw' },
      { jobId: '153', taskId: 2, state: 'Eqw' },
    ]);
  });

  it('reads qacct records per task', () => {
    const text = [
      '==============================================================',
      'qname        all.q',
      'jobnumber    152',
      'taskid       3',
      'qsub_time    Wed Nov 25 16:08:41 2026',
      'failed       37  : qmaster enforced h_rt, h_cpu, or h_vmem limit',
      'exit_status  137                 (Killed)',
      '==============================================================',
      'jobnumber    152',
      'taskid       4',
      'failed       0',
      'exit_status  3',
    ].join('\n');
    const records = parseQacct(text);
    expect(records.map((r) => [r.taskId, r.exitStatus])).toEqual([
      [3, 137],
      [4, 3],
    ]);
    expect(records[0]?.failed).toMatch(/^37/);
  });
});
