// `sheepdog run` and `status` against the real Grid Engine test cluster (scripts/test-cluster.sh):
// a real sshd, qsub and execd running the workers, which import the module by its path and
// call back to the server in the CLI process. Fails, never skips, when the cluster is missing.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCluster, type TestCluster } from '@sheepdog/test-cluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, sheepdog, TASKS } from './test/helpers.js';

let cluster: TestCluster;
let cwd: string;
let flags: string[];
const sshDir = `.sheepdog-cli-test-${process.pid}`;

beforeAll(() => {
  cluster = loadCluster('gridengine');
  cwd = mkdtempSync(join(tmpdir(), 'sheepdog-cli-ge-'));
  // The workers run as the cluster user and import tasks.mjs from here.
  chmodSync(cwd, 0o755);
  copyFileSync(TASKS, join(cwd, 'tasks.mjs'));
  chmodSync(join(cwd, 'tasks.mjs'), 0o644);
  flags = [
    '--host',
    cluster.host,
    '--ssh-port',
    String(cluster.port),
    '--ssh-user',
    cluster.user,
    '--ssh-key',
    cluster.key,
    '--ssh-known-hosts',
    cluster.knownHosts,
    '--ssh-dir',
    sshDir,
    '--shell',
    cluster.node,
  ];
});

afterAll(() => {
  if (cluster === undefined) return;
  try {
    execFileSync(
      'ssh',
      [
        '-i',
        cluster.key,
        '-p',
        String(cluster.port),
        '-o',
        `UserKnownHostsFile=${cluster.knownHosts}`,
        '-o',
        'BatchMode=yes',
        `${cluster.user}@${cluster.host}`,
        `rm -rf ~/${sshDir}`,
      ],
      { stdio: 'ignore', timeout: 30_000 },
    );
  } catch {}
  rmSync(cwd, { recursive: true, force: true });
});

describe('sheepdog on Grid Engine', () => {
  it('runs a module export over arguments and lists the request in status', async () => {
    writeFileSync(
      join(cwd, 'args.json'),
      JSON.stringify([
        [2, 3],
        [4, 5],
        [6, 7],
      ]),
    );
    const r = await sheepdog(['run', './tasks.mjs#multiply', '--args', 'args.json', ...flags], {
      cwd,
      timeoutMs: 180_000,
    });
    expect(r.stderr).toContain('request 1: 3 task(s) on gridengine');
    expect(r.status).toBe(0);
    expect(jsonLines(r.stdout)).toEqual([
      { index: 1, status: 'done', result: 6 },
      { index: 2, status: 'done', result: 20 },
      { index: 3, status: 'done', result: 42 },
    ]);
    const table = await sheepdog(['status'], { cwd });
    expect(table.status).toBe(0);
    expect(table.stdout.trimEnd().split('\n')[1]).toMatch(
      /^ *1 .* \.\/tasks\.mjs#multiply +gridengine +3 +3 +0 +0 +0 +0 +0$/,
    );
    const json = JSON.parse((await sheepdog(['status', '1', '--json'], { cwd })).stdout);
    expect(json).toMatchObject({ id: 1, backend: 'gridengine', tasks: 3, done: 3 });
  }, 240_000);

  it('reports failing tasks with exit 1 and their stacks from the cluster', async () => {
    const r = await sheepdog(['run', './tasks.mjs#failOnEven', '--args', '-', ...flags], {
      cwd,
      input: '[1, 2]',
      timeoutMs: 180_000,
    });
    expect(r.status).toBe(1);
    expect(jsonLines(r.stdout).map((l) => l.status)).toEqual(['done', 'failed']);
    const errors = await sheepdog(['errors', '2'], { cwd });
    expect(errors.stdout).toMatch(
      /task 2 failed .*arguments \[2\]:\n\s+RangeError: even input: 2\n\s+at failOnEven/,
    );
    const status = JSON.parse((await sheepdog(['status', '--json'], { cwd })).stdout);
    expect(status.map((s: { backend: string; failed: number }) => [s.backend, s.failed])).toEqual([
      ['gridengine', 0],
      ['gridengine', 1],
    ]);
  }, 240_000);

  it('retries failed tasks with --no-wait, and serve in another process collects them', async () => {
    // flaky() leaves a marker per argument where the cluster user can write.
    const markers = join(cwd, 'markers');
    mkdirSync(markers);
    chmodSync(markers, 0o777);
    writeFileSync(
      join(cwd, 'flaky.json'),
      JSON.stringify([
        [1, markers],
        [2, markers],
      ]),
    );
    const first = await sheepdog(['run', './tasks.mjs#flaky', '--args', 'flaky.json', ...flags], {
      cwd,
      timeoutMs: 180_000,
    });
    expect(first.status).toBe(1);
    const id = String(JSON.parse((await sheepdog(['status', '--json'], { cwd })).stdout).at(-1).id);
    const retried = await sheepdog(['retry', id, '--no-wait', ...flags], {
      cwd,
      timeoutMs: 120_000,
    });
    expect(retried.stderr).toContain('submitted 2 task(s) again (1, 2)');
    expect(retried.stderr).not.toContain('resume(');
    expect(retried.status).toBe(0);
    const served = await sheepdog(['serve', '--progress', 'none', ...flags], {
      cwd,
      timeoutMs: 180_000,
    });
    expect(served.stderr).toContain(
      `request ${id}: finished (2 done, 0 failed, 0 lost, 0 cancelled)`,
    );
    expect(served.status).toBe(0);
    const results = await sheepdog(['results', id], { cwd });
    expect(jsonLines(results.stdout).map((l) => l.result)).toEqual([1, 2]);
  }, 480_000);
});
