import { shellQuote } from './shell-quote.js';

/** Which SLURM jobs a command is about: their ids and, on a multi-cluster site, the cluster. */
export interface SlurmJobs {
  /** Job ids, as sbatch printed them. */
  readonly jobIds: readonly string[];
  /** The cluster that sbatch named (`42;cluster`), passed as `-M`. @default unset */
  readonly cluster?: string;
}

/**
 * SLURM's command lines, as the remote shell runs them, every argument quoted with
 * {@link shellQuote}. They run nothing: pass a line to `Deployer.exec` (or any SSH client) and
 * read what it prints.
 */
export interface SlurmCommands {
  /**
   * Submit: `sbatch --parsable <args> <file>`, which prints the job id (read it with
   * {@link parseSbatchJobId}). sbatch has no directive prefix a Node.js file could carry, so
   * every option goes here.
   *
   * @param args - sbatch options, e.g. `['--array=1-10', '-D', '/home/me/.sheepdog']`
   * @param file - the job file, absolute or relative to the remote home
   */
  submit(args: readonly string[], file: string): string;
  /** The same as {@link SlurmCommands.submit}, as a list of arguments, unquoted. */
  submitArgv(args: readonly string[], file: string): string[];
  /**
   * Status: `squeue [-M <cluster>] -h -r -j <ids> -o '%F|%K|%T'`, one `<job id>|<array task
   * id>|<state>` line per queued or running array task. squeue fails with "Invalid job id" once
   * slurmctld has forgotten every job named (MinJobAge after they end).
   */
  status(jobs: SlurmJobs): string;
  /**
   * Accounting: `sacct [-M <cluster>] -j <ids> -X -n -P --format=JobID,State,ExitCode`, one
   * `<job id>_<task id>|<state>|<exit>:<signal>` line per array task (`<id>_[8-10%1]` for tasks
   * cancelled while pending). It fails where accounting is off (no slurmdbd).
   */
  accounting(jobs: SlurmJobs): string;
  /**
   * Cancel: `scancel [-M <cluster>] <id> <id> …`. scancel is silent and exits 0 for jobs that
   * have ended or never existed.
   */
  cancel(jobs: SlurmJobs): string;
  /** The cluster's settings: `scontrol show config`, `Key = value` lines (`MaxArraySize`, `MaxJobCount`, …). */
  config(): string;
}

function clusterArgs(cluster: string | undefined): string[] {
  return cluster === undefined ? [] : ['-M', shellQuote(cluster)];
}

/** SLURM's command lines: see {@link SlurmCommands}. */
export const slurmCommands: SlurmCommands = {
  submit: (args, file) => slurmCommands.submitArgv(args, file).map(shellQuote).join(' '),
  submitArgv: (args, file) => ['sbatch', '--parsable', ...args, file],
  status: (jobs) =>
    [
      'squeue',
      ...clusterArgs(jobs.cluster),
      '-h',
      '-r',
      '-j',
      shellQuote(jobs.jobIds.join(',')),
      '-o',
      shellQuote('%F|%K|%T'),
    ].join(' '),
  accounting: (jobs) =>
    [
      'sacct',
      ...clusterArgs(jobs.cluster),
      '-j',
      shellQuote(jobs.jobIds.join(',')),
      '-X',
      '-n',
      '-P',
      '--format=JobID,State,ExitCode',
    ].join(' '),
  cancel: (jobs) =>
    ['scancel', ...clusterArgs(jobs.cluster), ...jobs.jobIds.map(shellQuote)].join(' '),
  config: () => 'scontrol show config',
};

/**
 * Reads the job id from `sbatch --parsable` output: `42`, or `42;cluster` on a multi-cluster
 * site. Only the last line is read, because site wrappers sometimes print notices before it.
 *
 * @param stdout - sbatch's standard output
 * @returns the job id (and the cluster, when sbatch named one), or undefined when there is none
 */
export function parseSbatchJobId(stdout: string): { jobId: string; cluster?: string } | undefined {
  const lines = stdout.trim().split('\n');
  const match = /^(\d+)(?:;(\S+))?$/.exec((lines[lines.length - 1] ?? '').trim());
  if (!match) return undefined;
  return match[2] === undefined
    ? { jobId: match[1] as string }
    : { jobId: match[1] as string, cluster: match[2] };
}
