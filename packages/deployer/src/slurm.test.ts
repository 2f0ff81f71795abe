import { describe, expect, it } from 'vitest';
import { parseSbatchJobId, slurmCommands } from './slurm.js';

describe('parseSbatchJobId', () => {
  it('reads the job id of sbatch --parsable, with or without a cluster', () => {
    expect(parseSbatchJobId('42\n')).toEqual({ jobId: '42' });
    expect(parseSbatchJobId('42;sheepdog\n')).toEqual({ jobId: '42', cluster: 'sheepdog' });
    expect(parseSbatchJobId('Submitted batch job 42\n')).toBeUndefined();
  });

  it('reads the last line when something printed a notice first', () => {
    expect(parseSbatchJobId('site notice\n43\n')).toEqual({ jobId: '43' });
  });
});

describe('SLURM command lines', () => {
  it('submits with every option on the command line, each argument quoted', () => {
    expect(slurmCommands.submitArgv(['--array=1-3%2', '-p', 'debug'], 'f.cjs')).toEqual([
      'sbatch',
      '--parsable',
      '--array=1-3%2',
      '-p',
      'debug',
      'f.cjs',
    ]);
    expect(
      slurmCommands.submit(['--job-name=my job', '-D', '/home/u/.sheepdog'], '/home/u/f.cjs'),
    ).toBe("sbatch --parsable '--job-name=my job' -D /home/u/.sheepdog /home/u/f.cjs");
  });

  it('asks for status and accounting of several jobs, on a named cluster where there is one', () => {
    expect(slurmCommands.status({ jobIds: ['40'] })).toBe("squeue -h -r -j 40 -o '%F|%K|%T'");
    expect(slurmCommands.status({ jobIds: ['40', '41'], cluster: 'c1' })).toBe(
      "squeue -M c1 -h -r -j 40,41 -o '%F|%K|%T'",
    );
    expect(slurmCommands.accounting({ jobIds: ['40', '41'] })).toBe(
      'sacct -j 40,41 -X -n -P --format=JobID,State,ExitCode',
    );
    expect(slurmCommands.accounting({ jobIds: ['40'], cluster: 'c1' })).toBe(
      'sacct -M c1 -j 40 -X -n -P --format=JobID,State,ExitCode',
    );
  });

  it('cancels every job named, and reads the cluster settings', () => {
    expect(slurmCommands.cancel({ jobIds: ['50'] })).toBe('scancel 50');
    expect(slurmCommands.cancel({ jobIds: ['40', '41'], cluster: 'c1' })).toBe(
      'scancel -M c1 40 41',
    );
    expect(slurmCommands.config()).toBe('scontrol show config');
  });
});
