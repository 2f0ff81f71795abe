import {
  Deployer,
  type DeployerOptions,
  parseSbatchJobId,
  type SlurmJobs,
  slurmCommands,
} from '@sheepdog/deployer';
import type { Backend, JobSpec, Submission, TaskReport } from '../backend.js';
import * as kit from './_kit/index.js';
import { slurmArgs } from './slurm-opts.js';

/** Options of the {@link slurm} backend. */
export interface SlurmOptions extends DeployerOptions {
  /**
   * Remote folder for job files and task logs; relative paths are relative to the remote home.
   * @default '.sheepdog'
   */
  directory?: string;
  /**
   * The Node.js binary on the compute nodes: the job file's `#!` line, which sbatch requires.
   * @default '/usr/bin/node'
   */
  shell?: string;
  /**
   * Extra `sbatch` options, e.g. `['--time=10', '--mem=2G', '--partition=debug']`. Each entry is
   * split at blanks (`'-p debug'` is two arguments) and every argument is quoted for the remote
   * shell. `--array` is set by the backend; `-o`, `-e`, `-D` and `--job-name` have defaults that
   * an entry here replaces.
   */
  slurmOpts?: readonly string[];
  /** A V8 heap cap for each task, in MiB (see `@sheepdog/worker`'s `maxHeapMb`). */
  maxHeapMb?: number;
  /** Use this deployer instead of opening a connection of the backend's own. */
  deployer?: Deployer;
  /**
   * How long {@link Backend.explain} waits for `sacct` to record tasks that have just ended
   * (slurmdbd lags a few seconds behind `squeue`), in ms.
   * @default 10000
   */
  accountingWaitMs?: number;
}

/** The cluster limits that shape a submission, from `scontrol show config`. */
export interface SlurmLimits {
  /** Array indices must be below it (SLURM's default is 1001). */
  readonly maxArraySize: number;
  /** Jobs slurmctld holds at once, each array task counting as one (default 10000). */
  readonly maxJobCount: number;
}

/** SLURM's own defaults, used when `scontrol show config` cannot be read. */
const DEFAULT_LIMITS: SlurmLimits = { maxArraySize: 1001, maxJobCount: 10000 };

/** sbatch refuses a longer `--array` value ("Pathname … too long"), measured on SLURM 22.05. */
export const MAX_ARRAY_SPEC_LENGTH = 4096;

/**
 * One sbatch submission behind a {@link Submission}. Without `offset`, array task ids are the job
 * indices themselves; with it (indices at or above MaxArraySize), array task k runs job index
 * `submission.indices[offset + k - 1]`.
 */
interface SlurmPart {
  readonly jobId: string;
  readonly offset?: number;
}

/** What {@link planSubmission} splits a job into: one sbatch call each. */
export interface PlannedPart {
  /** The `--array` value. */
  readonly array: string;
  /** The job indices this part runs, ascending. */
  readonly indices: readonly number[];
  /** Set when array task k runs `indices[k - 1]` rather than job index k. */
  readonly mapped: boolean;
}

/** Parses `scontrol show config` into the limits a submission must respect; exported for tests. */
export function parseLimits(text: string): SlurmLimits {
  const read = (key: string, fallback: number): number => {
    const match = new RegExp(`^${key}\\s*=\\s*(\\d+)`, 'm').exec(text);
    const value = Number(match?.[1]);
    return Number.isSafeInteger(value) && value > 0 ? value : fallback;
  };
  return {
    maxArraySize: read('MaxArraySize', DEFAULT_LIMITS.maxArraySize),
    maxJobCount: read('MaxJobCount', DEFAULT_LIMITS.maxJobCount),
  };
}

/** Writes ascending indices as SLURM array ranges: `[1,2,3,4,5,9,12,13,14]` → `1-5,9,12-14`. */
export function compressIndices(indices: readonly number[]): string {
  const runs: string[] = [];
  let i = 0;
  while (i < indices.length) {
    const first = indices[i] as number;
    let last = first;
    while (indices[i + 1] === last + 1) {
      last += 1;
      i += 1;
    }
    runs.push(first === last ? `${first}` : `${first}-${last}`);
    i += 1;
  }
  return runs.join(',');
}

/** Splits ascending indices into `--array` values no longer than `maxLength` characters. */
function splitBySpecLength(indices: readonly number[], maxLength: number): PlannedPart[] {
  const parts: PlannedPart[] = [];
  let current: number[] = [];
  let length = 0;
  let i = 0;
  while (i < indices.length) {
    let j = i;
    while (indices[j + 1] === (indices[j] as number) + 1) j += 1;
    const run = indices.slice(i, j + 1);
    const text = compressIndices(run);
    const added = (current.length > 0 ? 1 : 0) + text.length;
    if (current.length > 0 && length + added > maxLength) {
      parts.push({ array: compressIndices(current), indices: current, mapped: false });
      current = [];
      length = 0;
    }
    length += (current.length > 0 ? 1 : 0) + text.length;
    current.push(...run);
    i = j + 1;
  }
  if (current.length > 0)
    parts.push({ array: compressIndices(current), indices: current, mapped: false });
  return parts;
}

/**
 * Plans the sbatch calls for a job: indices below MaxArraySize are submitted as themselves
 * (`--array=2,5,7`), so a retry names exactly the tasks to rerun; larger ones go in chunks whose
 * array tasks 1..n map to them through the job file. Exported for tests.
 *
 * @throws SheepdogError `SUBMIT_FAILED` when the job has more tasks than MaxJobCount allows.
 */
export function planSubmission(
  indices: readonly number[],
  limits: SlurmLimits,
  maxSpecLength: number = MAX_ARRAY_SPEC_LENGTH,
): PlannedPart[] {
  if (indices.length > limits.maxJobCount) {
    throw kit.backendError(
      'slurm',
      `${indices.length} tasks are more than this cluster's MaxJobCount of ${limits.maxJobCount} (SLURM counts every array task as a job); use fewer, larger tasks, or ask the administrators to raise MaxJobCount.`,
      { code: 'SUBMIT_FAILED' },
    );
  }
  const direct = indices.filter((index) => index < limits.maxArraySize);
  const high = indices.filter((index) => index >= limits.maxArraySize);
  const parts = splitBySpecLength(direct, maxSpecLength);
  const chunk = limits.maxArraySize - 1;
  for (let i = 0; i < high.length; i += chunk) {
    const slice = high.slice(i, i + chunk);
    parts.push({ array: `1-${slice.length}`, indices: slice, mapped: true });
  }
  return parts;
}

/** Parses `squeue -h -r -o '%F|%K|%T'` output (`slurmCommands.status`); exported for tests. */
export function parseSqueue(text: string): kit.SchedulerTask[] {
  const tasks: kit.SchedulerTask[] = [];
  for (const line of text.split('\n')) {
    const [jobId, task, state] = line.trim().split('|');
    const taskId = Number(task);
    if (!jobId || !Number.isInteger(taskId) || state === undefined) continue;
    tasks.push({ jobId, taskId, state });
  }
  return tasks;
}

/** One task's record from `sacct -X -n -P --format=JobID,State,ExitCode`. */
export interface SacctRecord {
  readonly jobId: string;
  readonly taskId: number;
  /** `COMPLETED`, `FAILED`, `CANCELLED by 1001`, `TIMEOUT`, `OUT_OF_MEMORY`, … */
  readonly state: string;
  /** `exit:signal`, e.g. `3:0` or `0:9`. */
  readonly exitCode: string;
}

/** Expands an array spec such as `8-10%1` or `1-9:2,12` into task ids. */
function expandArraySpec(spec: string): number[] {
  const ids: number[] = [];
  for (const item of spec.replace(/%\d+$/, '').split(',')) {
    const match = /^(\d+)(?:-(\d+)(?::(\d+))?)?$/.exec(item);
    if (!match) return [];
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    const step = match[3] === undefined ? 1 : Number(match[3]);
    if (step < 1 || last - first > 1_000_000) return [];
    for (let id = first; id <= last; id += step) ids.push(id);
  }
  return ids;
}

/**
 * Parses sacct output into one record per array task. Tasks cancelled while pending share one
 * collapsed record (`69_[8-10%1]`), which is expanded; records that name no task (the `<id>`
 * or `<id> allocation` lines sacct shows while it lags) are dropped. Exported for tests.
 */
export function parseSacct(text: string): SacctRecord[] {
  const records: SacctRecord[] = [];
  for (const line of text.split('\n')) {
    const [id, state, exitCode] = line.trim().split('|');
    if (!id || state === undefined || exitCode === undefined) continue;
    const single = /^(\d+)_(\d+)$/.exec(id);
    const collapsed = /^(\d+)_\[([^\]]+)\]$/.exec(id);
    const jobId = single?.[1] ?? collapsed?.[1];
    if (jobId === undefined) continue;
    const taskIds = single ? [Number(single[2])] : expandArraySpec(collapsed?.[2] ?? '');
    for (const taskId of taskIds) records.push({ jobId, taskId, state, exitCode });
  }
  return records;
}

/** States in which a task has ended for good; sacct's others (PENDING, RUNNING, …) may change. */
const FINAL_STATES = [
  'BOOT_FAIL',
  'CANCELLED',
  'COMPLETED',
  'DEADLINE',
  'FAILED',
  'NODE_FAIL',
  'OUT_OF_MEMORY',
  'PREEMPTED',
  'REVOKED',
  'TIMEOUT',
] as const;

function isFinal(state: string): boolean {
  const word = state.split(' ')[0] ?? '';
  return (FINAL_STATES as readonly string[]).includes(word);
}

/** Says in words why a task ended, from its sacct record (cluster-setup §2.6). Exported for tests. */
export function describeSacct(record: SacctRecord): string {
  const [exitText, signalText] = record.exitCode.split(':');
  const exit = Number(exitText);
  const signal = Number(signalText);
  const word = record.state.split(' ')[0];
  switch (word) {
    case 'TIMEOUT':
      return 'SLURM stopped the task at its time limit (TIMEOUT); raise --time in slurmOpts';
    case 'OUT_OF_MEMORY':
      return 'SLURM killed the task for going over its memory limit (OUT_OF_MEMORY); raise --mem in slurmOpts';
    case 'CANCELLED': {
      const by = /^CANCELLED by (\d+)/.exec(record.state)?.[1];
      return `the task was cancelled${by === undefined ? '' : ` by uid ${by}`} (scancel, or an administrator) before it reported`;
    }
    case 'NODE_FAIL':
      return 'the node running the task failed (NODE_FAIL)';
    case 'FAILED':
    case 'COMPLETED': {
      let how: string;
      if (signal > 0) {
        const name = kit.signalName(signal);
        how = `killed by ${name}`;
        if (name === 'SIGKILL')
          how += ' (scancel, a memory limit, the out-of-memory killer, or it killed itself)';
      } else how = kit.describeExit(exit);
      return `the task ended without reporting: ${how} (SLURM state ${record.state}, ExitCode ${record.exitCode})`;
    }
    default:
      return `the task ended without reporting: SLURM state ${record.state}, ExitCode ${record.exitCode}`;
  }
}

function partsOf(submission: Submission): SlurmPart[] {
  const parts = submission.meta?.parts;
  if (Array.isArray(parts)) return parts as SlurmPart[];
  return [{ jobId: submission.jobId }];
}

/** The scheduler jobs behind `parts`, on the cluster sbatch named, if it named one. */
function jobsOf(parts: readonly SlurmPart[], cluster: unknown): SlurmJobs {
  const jobIds = parts.map((part) => part.jobId);
  return typeof cluster === 'string' ? { jobIds, cluster } : { jobIds };
}

/** The job index that array task `taskId` of `part` runs. */
function indexOf(submission: Submission, part: SlurmPart, taskId: number): number | undefined {
  return part.offset === undefined ? taskId : submission.indices[part.offset + taskId - 1];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs tasks as SLURM array jobs submitted over SSH: the job file is uploaded with SFTP and
 * submitted with `sbatch --parsable --array=…` (options on the command line, since sbatch has
 * no directive prefix that Node could read); `squeue` says which tasks are still queued or
 * running, `sacct` why a task ended, and `scancel` cancels.
 *
 * Array task ids are the job indices themselves (`--array=2,5,7` for a retry of three tasks),
 * within the cluster's MaxArraySize and MaxJobCount, read once from `scontrol show config`.
 */
export function slurm(options: SlurmOptions): Backend {
  const deployer = options.deployer ?? new Deployer(options);
  const ownsDeployer = options.deployer === undefined;
  const shell = options.shell ?? '/usr/bin/node';
  const accountingWaitMs = options.accountingWaitMs ?? 10_000;
  const { args: userArgs, hasOption } = slurmArgs(options.slurmOpts ?? []);
  // -o, -e and -D must be absolute: sbatch would take them against its own working directory.
  const absoluteDirectory = kit.remoteFolder(deployer, options.directory ?? '.sheepdog');
  const clusterLimits = kit.keptOnSuccess(async () => {
    const result = await deployer.exec(slurmCommands.config(), kit.COMMAND_LIMIT);
    return result.code === 0 ? parseLimits(result.stdout) : DEFAULT_LIMITS;
  });

  async function sbatch(
    args: readonly string[],
    file: string,
  ): Promise<{ jobId: string; cluster?: string }> {
    const command = slurmCommands.submit(args, file);
    const result = await deployer.exec(command);
    const parsed = result.code === 0 ? parseSbatchJobId(result.stdout) : undefined;
    if (parsed === undefined) {
      const busy = /temporarily unavailable|unable to accept job/i.test(result.stderr)
        ? ' The cluster holds too many jobs (MaxJobCount, counting every array task); wait for some to end, or use fewer tasks.'
        : '';
      throw kit.backendError(
        'slurm',
        `sbatch failed on ${options.host} (exit ${result.code}): ${(result.stderr || result.stdout).trim()}.${busy} Command: ${command}`,
        { code: 'SUBMIT_FAILED' },
      );
    }
    return parsed;
  }

  async function cancelJobs(jobs: SlurmJobs): Promise<void> {
    const result = await deployer.exec(slurmCommands.cancel(jobs), kit.COMMAND_LIMIT);
    if (result.code !== 0) {
      throw kit.backendError(
        'slurm',
        `scancel ${jobs.jobIds.join(' ')} failed on ${options.host} (exit ${result.code}): ${result.stderr.trim()}`,
      );
    }
  }

  return {
    name: 'slurm',
    supportsLease: true,
    async submit(spec: JobSpec): Promise<Submission> {
      const [dir, clusterLimit] = await Promise.all([absoluteDirectory(), clusterLimits()]);
      const lease = spec.lease;
      if (lease !== undefined && lease.workers >= clusterLimit.maxArraySize) {
        throw kit.backendError(
          'slurm',
          `${lease.workers} lease-mode workers do not fit this cluster's MaxArraySize of ${clusterLimit.maxArraySize}; use at most ${clusterLimit.maxArraySize - 1} workers.`,
          { code: 'SUBMIT_FAILED' },
        );
      }
      // Lease mode: one array of `workers` tasks, each leasing any of the indices.
      const planned: PlannedPart[] =
        lease === undefined
          ? planSubmission(spec.indices, clusterLimit)
          : [{ array: `1-${lease.workers}`, indices: spec.indices, mapped: false }];
      const throttle = spec.maxRunning === undefined ? '' : `%${spec.maxRunning}`;
      const submittedAt = Date.now();
      const defaults = [
        ...(hasOption('-J', '--job-name') ? [] : [`--job-name=${spec.name}`]),
        ...(hasOption('-o', '--output') ? [] : ['-o', `${dir}/%x.%A_%a.out`]),
        ...(hasOption('-e', '--error') ? [] : ['-e', `${dir}/%x.%A_%a.err`]),
        ...(hasOption('-D', '--chdir') ? [] : ['-D', dir]),
      ];
      const parts: SlurmPart[] = [];
      const fileNames: string[] = [];
      let cluster: string | undefined;
      let offset = 0;
      try {
        for (const [i, part] of planned.entries()) {
          const fileName = `sheepdog-${spec.requestId}-${submittedAt}${planned.length > 1 ? `-${i + 1}` : ''}.cjs`;
          const args = [`--array=${part.array}${throttle}`, ...defaults, ...userArgs];
          const text = kit.renderJobFile(
            spec,
            part.mapped ? { indices: part.indices } : { nArgs: part.indices.length },
            {
              shell,
              directivePrefix: null,
              options: [slurmCommands.submitArgv(args, fileName)],
              maxHeapMb: options.maxHeapMb,
            },
          );
          const path = await deployer.deploy(text, spec.requestId, dir, fileName);
          const submitted = await sbatch(args, path);
          cluster ??= submitted.cluster;
          parts.push(part.mapped ? { jobId: submitted.jobId, offset } : { jobId: submitted.jobId });
          fileNames.push(fileName);
          offset += part.indices.length;
        }
      } catch (error) {
        // Half a submission would run tasks nobody tracks: take back what was accepted.
        if (parts.length > 0) await cancelJobs(jobsOf(parts, cluster)).catch(() => undefined);
        throw error;
      }
      // Mapped parts index into `indices` in the order they were planned: direct ones first.
      const indices = planned.flatMap((part) => part.indices);
      return {
        backend: 'slurm',
        jobId: parts.map((part) => part.jobId).join(','),
        indices,
        submittedAt,
        meta: {
          directory: dir,
          fileNames,
          parts,
          ...(cluster === undefined ? {} : { cluster }),
          ...(lease === undefined ? {} : { lease: true, workers: lease.workers }),
        },
      };
    },
    async status(submission: Submission): Promise<TaskReport> {
      const parts = partsOf(submission);
      const byJob = new Map(parts.map((part) => [part.jobId, part]));
      const command = slurmCommands.status(jobsOf(parts, submission.meta?.cluster));
      let result = await deployer.exec(command, kit.COMMAND_LIMIT);
      // An id slurmctld has forgotten (MinJobAge after the end) is not an error: nothing is left.
      const forgotten = (): boolean => /Invalid job id/i.test(result.stderr);
      if (result.code !== 0 && !forgotten()) {
        // slurmctld can be briefly unreachable (restart, busy): ask once more before failing.
        await sleep(1000);
        result = await deployer.exec(command, kit.COMMAND_LIMIT);
      }
      const active = new Set<number>();
      if (result.code !== 0) {
        if (forgotten()) return { active };
        throw kit.backendError(
          'slurm',
          `squeue failed on ${options.host} (exit ${result.code}): ${result.stderr.trim()}; check that slurmctld is up ('scontrol ping')`,
        );
      }
      if (submission.meta?.lease === true) {
        // Any worker still queued or running may lease any open task.
        const busy = parseSqueue(result.stdout).some(
          (task) => byJob.has(task.jobId) && !isFinal(task.state),
        );
        return busy ? { active, holdsAll: true } : { active };
      }
      for (const task of parseSqueue(result.stdout)) {
        const part = byJob.get(task.jobId);
        if (part === undefined || isFinal(task.state)) continue;
        const index = indexOf(submission, part, task.taskId);
        if (index !== undefined) active.add(index);
      }
      return { active };
    },
    async explain(
      submission: Submission,
      indices: readonly number[],
    ): Promise<ReadonlyMap<number, string>> {
      const parts = partsOf(submission);
      const byJob = new Map(parts.map((part) => [part.jobId, part]));
      const command = slurmCommands.accounting(jobsOf(parts, submission.meta?.cluster));
      const wanted = new Set(indices);
      const reasons = new Map<number, string>();
      const deadline = Date.now() + accountingWaitMs;
      for (;;) {
        const result = await deployer.exec(command, kit.COMMAND_LIMIT);
        // Accounting disabled (no slurmdbd) or unreachable: nothing to explain with.
        if (result.code !== 0) return reasons;
        if (submission.meta?.lease === true) {
          const records = parseSacct(result.stdout).filter(
            (record) => byJob.has(record.jobId) && isFinal(record.state),
          );
          if (records.length > 0) {
            const ends = records
              .filter((record) => !record.state.startsWith('COMPLETED'))
              .map((record) => ({ worker: record.taskId, how: describeSacct(record) }));
            return kit.leaseEnded(indices, ends, submission.jobId);
          }
          if (Date.now() >= deadline) return reasons;
          await sleep(1000);
          continue;
        }
        for (const record of parseSacct(result.stdout)) {
          const part = byJob.get(record.jobId);
          if (part === undefined || !isFinal(record.state)) continue;
          const index = indexOf(submission, part, record.taskId);
          if (index !== undefined && wanted.has(index)) reasons.set(index, describeSacct(record));
        }
        // sacct records a task's end a few seconds after squeue drops it.
        if (reasons.size >= wanted.size || Date.now() >= deadline) return reasons;
        await sleep(1000);
      }
    },
    async cancel(submission: Submission): Promise<void> {
      // scancel is silent and exits 0 for ids that have ended or never existed.
      await cancelJobs(jobsOf(partsOf(submission), submission.meta?.cluster));
    },
    async dispose(): Promise<void> {
      if (ownsDeployer) await deployer.close();
    },
  };
}
