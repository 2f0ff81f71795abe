// The scheduler command lines, run for real on the test cluster: each scheduler's submit, status,
// detail and cancel lines are accepted, and what they print is what their documentation says.
// Jobs are submitted held, so they stay queued until they are cancelled, with nothing to wait for.
import { clusterSsh, loadCluster } from '@sheepdog/test-cluster';
import { afterAll, describe, expect, it } from 'vitest';
import { Deployer } from './deployer.js';
import { gridEngineCommands, parseQsubJobId } from './gridengine.js';
import { parseSbatchJobId, slurmCommands } from './slurm.js';

const remoteBase = `.sheepdog-deployer-test/schedulers-${process.pid}-${Date.now()}`;
const open: Deployer[] = [];

function deployer(scheduler: 'gridengine' | 'slurm'): Deployer {
  const created = new Deployer(clusterSsh(loadCluster(scheduler)));
  open.push(created);
  return created;
}

afterAll(async () => {
  const [d] = open;
  await d?.exec(`rm -rf ${remoteBase}`);
  await Promise.all(open.map((each) => each.close()));
});

describe('Grid Engine command lines', () => {
  it('submits held, lists the tasks, shows the job, and deletes one task and then the rest', async () => {
    const d = deployer('gridengine');
    const dir = `${remoteBase}/gridengine`;
    await d.deploy('#!/bin/sh\n//$ -S /bin/sh\n//$ -t 1-2\nexit 0\n', 'held', dir);
    const jobId = await d.submit('held', dir, {
      args: ['-h', '-o', '/dev/null', '-e', '/dev/null'],
    });
    expect(parseQsubJobId(`${jobId}.1-2:1\n`)).toBe(jobId);
    try {
      const listed = (await d.run(gridEngineCommands.status())).stdout;
      const mine = listed.split('\n').filter((line) => line.trim().startsWith(`${jobId} `));
      expect(mine.map((line) => line.trim().split(/\s+/).at(-1))).toEqual(['1', '2']);
      expect(mine.every((line) => line.trim().split(/\s+/)[4]?.includes('h'))).toBe(true);
      expect((await d.run(gridEngineCommands.job(jobId))).stdout).toMatch(
        new RegExp(`job_number:\\s+${jobId}\\b`),
      );
      await d.run(gridEngineCommands.cancel(jobId, 1));
      const left = (await d.run(gridEngineCommands.status())).stdout
        .split('\n')
        .filter((line) => line.trim().startsWith(`${jobId} `));
      expect(left.map((line) => line.trim().split(/\s+/).at(-1))).toEqual(['2']);
    } finally {
      await d.exec(gridEngineCommands.cancel(jobId));
    }
    const deleted = await d.exec(gridEngineCommands.cancel(jobId));
    expect(deleted.stderr + deleted.stdout).toMatch(/does not exist/);
    // A program qacct, whatever it has recorded of a job that never ran.
    expect((await d.exec(gridEngineCommands.accounting(jobId))).code).not.toBe(127);
  }, 60_000);
});

describe('SLURM command lines', () => {
  it('submits held, lists the array tasks, and cancels them', async () => {
    const d = deployer('slurm');
    const dir = `${remoteBase}/slurm`;
    const path = await d.deploy('#!/bin/sh\nexit 0\n', 'held', dir);
    const submitted = await d.run(
      slurmCommands.submit(['--hold', '--array=1-2', '-o', '/dev/null', '-e', '/dev/null'], path),
    );
    const job = parseSbatchJobId(submitted.stdout);
    expect(job).toBeDefined();
    const jobs = { jobIds: [job?.jobId as string] };
    try {
      const lines = (await d.run(slurmCommands.status(jobs))).stdout.trim().split('\n');
      expect(lines.sort()).toEqual([`${job?.jobId}|1|PENDING`, `${job?.jobId}|2|PENDING`]);
    } finally {
      await d.run(slurmCommands.cancel(jobs));
    }
    // Cancelling again is not an error: scancel exits 0 for jobs that have ended.
    await d.run(slurmCommands.cancel(jobs));
    expect((await d.exec(slurmCommands.accounting(jobs))).code).not.toBe(127);
    expect((await d.run(slurmCommands.config())).stdout).toMatch(/^MaxArraySize\s*=\s*\d+/m);
  }, 60_000);
});
