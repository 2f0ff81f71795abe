import { shellQuote } from './shell-quote.js';

// SLURM's command lines, as the remote shell runs them: submit (`sbatch`), status (`squeue`),
// accounting (`sacct`), cancel (`scancel`) and the cluster's limits (`scontrol`). Each function
// only writes the line, every argument quoted; running it (`Deployer.exec`, or any SSH client)
// and reading what it prints are the caller's, except the job id, which every caller of sbatch
// needs.

/** Which SLURM jobs a command is about: their ids and, on a multi-cluster site, the cluster. */
export interface SlurmJobs {
  /** Job ids, as sbatch printed them. */
  readonly jobIds: readonly string[];
  /** The cluster that sbatch named (`42;cluster`), passed as `-M`. @default unset */
  readonly cluster?: string;
}

function clusterArgs(cluster: string | undefined): string[] {
  return cluster === undefined ? [] : ['-M', shellQuote(cluster)];
}

/**
 * Submit, as a list of arguments: `['sbatch', '--parsable', ...args, file]`. sbatch has no
 * directive prefix a Node.js file could carry, so every option goes here.
 *
 * @param args - sbatch options, e.g. `['--array=1-10', '-D', '/home/me/.sheepdog']`
 * @param file - the job file, absolute or relative to the remote home
 * @returns the arguments, unquoted
 */
export function sbatchArgv(args: readonly string[], file: string): string[] {
  return ['sbatch', '--parsable', ...args, file];
}

/**
 * Submit: `sbatch --parsable <args> <file>`, every argument quoted. sbatch prints the job id
 * (read it with {@link parseSbatchJobId}).
 *
 * @returns the command line
 */
export function sbatchCommand(args: readonly string[], file: string): string {
  return sbatchArgv(args, file).map(shellQuote).join(' ');
}

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

/**
 * Status: `squeue [-M <cluster>] -h -r -j <ids> -o '%F|%K|%T'`, one `<job id>|<array task
 * id>|<state>` line per queued or running array task. squeue fails with "Invalid job id" once
 * slurmctld has forgotten every job named (MinJobAge after they end).
 *
 * @returns the command line
 */
export function squeueCommand(jobs: SlurmJobs): string {
  return [
    'squeue',
    ...clusterArgs(jobs.cluster),
    '-h',
    '-r',
    '-j',
    shellQuote(jobs.jobIds.join(',')),
    '-o',
    shellQuote('%F|%K|%T'),
  ].join(' ');
}

/**
 * Accounting: `sacct [-M <cluster>] -j <ids> -X -n -P --format=JobID,State,ExitCode`, one
 * `<job id>_<task id>|<state>|<exit>:<signal>` line per array task (`<id>_[8-10%1]` for tasks
 * cancelled while pending). It fails where accounting is off (no slurmdbd).
 *
 * @returns the command line
 */
export function sacctCommand(jobs: SlurmJobs): string {
  return [
    'sacct',
    ...clusterArgs(jobs.cluster),
    '-j',
    shellQuote(jobs.jobIds.join(',')),
    '-X',
    '-n',
    '-P',
    '--format=JobID,State,ExitCode',
  ].join(' ');
}

/**
 * Cancel: `scancel [-M <cluster>] <id> <id> …`. scancel is silent and exits 0 for jobs that
 * have ended or never existed.
 *
 * @returns the command line
 */
export function scancelCommand(jobs: SlurmJobs): string {
  return ['scancel', ...clusterArgs(jobs.cluster), ...jobs.jobIds.map(shellQuote)].join(' ');
}

/**
 * The cluster's settings: `scontrol show config`, one `Key = value` line each (`MaxArraySize`,
 * `MaxJobCount`, …).
 *
 * @returns the command line
 */
export function scontrolConfigCommand(): string {
  return 'scontrol show config';
}
