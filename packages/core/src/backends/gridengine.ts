import { constants } from 'node:os';
import { Deployer, type DeployerOptions, shellQuote } from '@sheepdog/deployer';
import { jobFile } from '@sheepdog/job-file';
import type { Backend, JobSpec, Submission, TaskReport } from '../backend.js';
import { describeExit } from './_exit.js';

/** Options of the {@link gridengine} backend. */
export interface GridEngineOptions extends DeployerOptions {
  /**
   * Remote folder for job files and task logs; relative paths are relative to the remote home.
   * @default '.sheepdog'
   */
  directory?: string;
  /**
   * The Node.js binary on the execution hosts; used for `-S` and the `#!` line.
   * @default '/usr/bin/node'
   */
  shell?: string;
  /** Extra `qsub` options, e.g. `['-l', 'h_rt=0:10:0']` or `['-q all.q']`. */
  geOpts?: readonly string[];
  /** A V8 heap cap for each task, in MiB (Grid Engine's `h_vmem` stops Node from starting). */
  maxHeapMb?: number;
  /** Use this deployer instead of opening a connection of the backend's own. */
  deployer?: Deployer;
}

/** One line of `qstat -g d`: a task and its state letters. */
interface QstatTask {
  readonly jobId: string;
  readonly taskId: number;
  readonly state: string;
}

/** Parses `qstat -g d` output; exported for tests. */
export function parseQstat(text: string): QstatTask[] {
  const tasks: QstatTask[] = [];
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 8 || !/^\d+$/.test(cols[0] ?? '')) continue;
    const taskId = Number(cols[cols.length - 1]);
    // Non-array jobs have no ja-task-ID column; their one task is task 1.
    tasks.push({
      jobId: cols[0] as string,
      taskId: Number.isInteger(taskId) && cols.length >= 9 ? taskId : 1,
      state: cols[4] ?? '',
    });
  }
  return tasks;
}

/** One task's record in `qacct -j` output. */
export interface AccountingRecord {
  readonly taskId: number;
  readonly failed: string;
  readonly exitStatus: number;
  readonly qsubTime: string;
}

/** Parses `qacct -j <id>` output into one record per task; exported for tests. */
export function parseQacct(text: string): AccountingRecord[] {
  const records: AccountingRecord[] = [];
  for (const block of text.split(/^=+$/m)) {
    const fields = new Map<string, string>();
    for (const line of block.split('\n')) {
      const match = /^(\w+)\s+(.*?)\s*$/.exec(line);
      if (match) fields.set(match[1] as string, match[2] as string);
    }
    if (!fields.has('jobnumber')) continue;
    const taskId = Number(fields.get('taskid'));
    records.push({
      taskId: Number.isInteger(taskId) ? taskId : 1,
      failed: fields.get('failed') ?? '0',
      exitStatus: Number.parseInt(fields.get('exit_status') ?? '0', 10),
      qsubTime: fields.get('qsub_time') ?? '',
    });
  }
  return records;
}

/** `SIGKILL` for 9, and so on; the number itself where Node knows no name. */
function signalName(signal: number): string {
  const entry = Object.entries(constants.signals).find(([, n]) => n === signal);
  return entry ? entry[0] : `signal ${signal}`;
}

/** Says in words why a task ended, from its accounting record (cluster-setup §1.11). */
export function describeAccounting(record: AccountingRecord): string {
  const failedCode = Number.parseInt(record.failed, 10);
  const failed = `failed ${record.failed.replace(/\s+/g, ' ')}`;
  if (failedCode === 37) {
    return `Grid Engine killed the task for going over a limit it enforces (${failed}); raise the -l h_rt (or h_cpu, h_vmem) request in geOpts`;
  }
  const status = record.exitStatus;
  let how: string;
  if (status > 128) {
    const name = signalName(status - 128);
    how = `killed by ${name} (exit status ${status})`;
    if (name === 'SIGKILL')
      how += ': deleted with qdel, killed by the out-of-memory killer, or it killed itself';
  } else {
    how = describeExit(status);
  }
  return `the task ended without reporting: ${how}${failedCode === 0 ? '' : ` (Grid Engine: ${failed})`}`;
}

/** Grid Engine's default `max_aj_tasks`: the most tasks one array job may have. */
const MAX_ARRAY_TASKS = 75_000;

/**
 * A lease-mode job holds every index while any of its workers is queued or running (a task in
 * error state is not running and never will be); once none is, it holds none.
 */
function leaseStatus(submission: Submission, qstat: string): TaskReport {
  const busy = parseQstat(qstat).some(
    (task) => task.jobId === submission.jobId && !task.state.includes('E'),
  );
  return busy ? { active: new Set(), holdsAll: true } : { active: new Set() };
}

/** Why a lease-mode job's open tasks never reported: how its workers ended, said of each. */
function leaseExplanation(
  submission: Submission,
  records: readonly AccountingRecord[],
  indices: readonly number[],
): ReadonlyMap<number, string> {
  const earliest = submission.submittedAt - 60_000;
  const ends = records
    .filter((record) => {
      const qsubTime = Date.parse(record.qsubTime);
      return Number.isNaN(qsubTime) || qsubTime >= earliest;
    })
    .filter((record) => record.exitStatus !== 0 || Number.parseInt(record.failed, 10) !== 0)
    .map((record) => `worker ${record.taskId}: ${describeAccounting(record)}`);
  const reasons = new Map<number, string>();
  if (records.length === 0) return reasons;
  const reason =
    ends.length > 0
      ? `every lease-mode worker of job ${submission.jobId} has ended before this task reported (${ends.slice(0, 3).join('; ')})`
      : `every lease-mode worker of job ${submission.jobId} has ended before this task reported (its lease ran out after its last attempt)`;
  for (const index of indices) reasons.set(index, reason);
  return reasons;
}

// A scheduler command that hangs (a stuck qmaster, a dead connection) must not stall the
// waiting: it fails after this long, and the caller asks again later.
const COMMAND_LIMIT = { timeoutMs: 60_000 };

function isContiguous(indices: readonly number[]): boolean {
  return indices.every((index, i) => index === i + 1);
}

function hasOption(opts: readonly string[], flag: string): boolean {
  return opts.some((opt) => opt === flag || opt.startsWith(`${flag} `));
}

/**
 * Runs tasks as one Grid Engine array job submitted over SSH: the job file is uploaded with
 * SFTP and submitted with `qsub -terse`; `qstat` says which tasks are still queued or running,
 * `qacct` why a task ended, and `qdel` cancels.
 */
export function gridengine(options: GridEngineOptions): Backend {
  const deployer = options.deployer ?? new Deployer(options);
  const ownsDeployer = options.deployer === undefined;
  const directory = options.directory ?? '.sheepdog';
  const shell = options.shell ?? '/usr/bin/node';
  let remoteDir: Promise<string> | undefined;

  // -wd, -o and -e must be absolute: relative ones are taken against the job's working
  // directory, and a missing output directory leaves the job in Eqw for ever.
  function absoluteDirectory(): Promise<string> {
    remoteDir ??= directory.startsWith('/')
      ? Promise.resolve(directory)
      : deployer.exec('printf %s "$HOME"').then((r) => `${r.stdout.trim()}/${directory}`);
    return remoteDir;
  }

  function taskMap(submission: Submission): (taskId: number) => number {
    const contiguous = submission.meta?.contiguous !== false;
    return contiguous ? (taskId) => taskId : (taskId) => submission.indices[taskId - 1] ?? -1;
  }

  return {
    name: 'gridengine',
    supportsLease: true,
    async submit(spec: JobSpec): Promise<Submission> {
      const dir = await absoluteDirectory();
      const geOpts = options.geOpts ?? [];
      const defaults = (['-wd', '-o', '-e'] as const)
        .filter((flag) => !hasOption(geOpts, flag))
        .map((flag) => [flag, dir]);
      const lease = spec.lease;
      if (lease !== undefined && lease.workers > MAX_ARRAY_TASKS) {
        throw new Error(
          `[sheepdog] [gridengine] ${lease.workers} lease-mode workers are more than Grid Engine's array limit of ${MAX_ARRAY_TASKS} (max_aj_tasks); use fewer workers`,
        );
      }
      if (lease === undefined && spec.indices.length > MAX_ARRAY_TASKS) {
        throw new Error(
          `[sheepdog] [gridengine] ${spec.indices.length} array tasks are more than Grid Engine's limit of ${MAX_ARRAY_TASKS} (max_aj_tasks); set workers to run them in lease mode`,
        );
      }
      const contiguous = lease !== undefined || isContiguous(spec.indices);
      const submittedAt = Date.now();
      const throttle =
        spec.maxRunning === undefined || hasOption(geOpts, '-tc')
          ? []
          : [['-tc', String(spec.maxRunning)]];
      const fileName = `sheepdog-${spec.requestId}-${submittedAt}.cjs`;
      const text = jobFile({
        url: spec.url,
        token: spec.token,
        requestId: spec.requestId,
        ...(lease !== undefined
          ? {
              nArgs: lease.workers,
              lease: lease.leaseMs === undefined ? {} : { leaseMs: lease.leaseMs },
            }
          : contiguous
            ? { nArgs: spec.indices.length }
            : { indices: [...spec.indices] }),
        shell,
        directivePrefix: '//$',
        options: [...defaults, ...throttle, ...geOpts],
        name: spec.name,
        ...(options.maxHeapMb === undefined ? {} : { maxHeapMb: options.maxHeapMb }),
      });
      await deployer.deploy(text, spec.requestId, dir, fileName);
      const jobId = await deployer.submit(spec.requestId, dir, { fileName });
      return {
        backend: 'gridengine',
        jobId,
        indices: [...spec.indices],
        submittedAt,
        meta: {
          fileName,
          directory: dir,
          contiguous,
          ...(lease === undefined ? {} : { lease: true, workers: lease.workers }),
        },
      };
    },
    async status(submission: Submission): Promise<TaskReport> {
      const result = await deployer.exec(`qstat -g d`, COMMAND_LIMIT);
      if (result.code !== 0) {
        throw new Error(
          `[sheepdog] [gridengine] qstat failed (exit ${result.code}): ${result.stderr.trim()}`,
        );
      }
      if (submission.meta?.lease === true) return leaseStatus(submission, result.stdout);
      const toIndex = taskMap(submission);
      const active = new Set<number>();
      const reasons = new Map<number, string>();
      const errored: number[] = [];
      for (const task of parseQstat(result.stdout)) {
        if (task.jobId !== submission.jobId) continue;
        const index = toIndex(task.taskId);
        if (task.state.includes('E')) {
          // A task in error state never runs by itself; report it as ended and clear it.
          errored.push(task.taskId);
          reasons.set(
            index,
            `Grid Engine put the task in error state (${task.state}); see 'qstat -j ${submission.jobId}'`,
          );
        } else active.add(index);
      }
      if (errored.length > 0) {
        const detail = await deployer.exec(
          `qstat -j ${shellQuote(submission.jobId)}`,
          COMMAND_LIMIT,
        );
        const why = /error reason\s+\d+:\s*(.*)/.exec(detail.stdout)?.[1];
        if (why)
          for (const taskId of errored)
            reasons.set(
              toIndex(taskId),
              `Grid Engine put the task in error state (Eqw): ${why.trim()}`,
            );
        for (const taskId of errored)
          await deployer.exec(`qdel ${shellQuote(submission.jobId)} -t ${taskId}`, COMMAND_LIMIT);
      }
      return { active, reasons };
    },
    async explain(
      submission: Submission,
      indices: readonly number[],
    ): Promise<ReadonlyMap<number, string>> {
      const result = await deployer.exec(`qacct -j ${shellQuote(submission.jobId)}`, COMMAND_LIMIT);
      const reasons = new Map<number, string>();
      if (result.code !== 0) return reasons;
      if (submission.meta?.lease === true) {
        return leaseExplanation(submission, parseQacct(result.stdout), indices);
      }
      const wanted = new Set(indices);
      const toIndex = taskMap(submission);
      // Job ids repeat after a qmaster crash: keep only records submitted no earlier than this job
      // (a minute of slack for clock skew between this machine and the cluster).
      const earliest = submission.submittedAt - 60_000;
      for (const record of parseQacct(result.stdout)) {
        const qsubTime = Date.parse(record.qsubTime);
        if (!Number.isNaN(qsubTime) && qsubTime < earliest) continue;
        const index = toIndex(record.taskId);
        if (wanted.has(index)) reasons.set(index, describeAccounting(record));
      }
      return reasons;
    },
    async cancel(submission: Submission): Promise<void> {
      const result = await deployer.exec(`qdel ${shellQuote(submission.jobId)}`, COMMAND_LIMIT);
      if (result.code !== 0 && !/does not exist/.test(result.stderr + result.stdout)) {
        throw new Error(
          `[sheepdog] [gridengine] qdel ${submission.jobId} failed: ${result.stderr.trim()}`,
        );
      }
    },
    async dispose(): Promise<void> {
      if (ownsDeployer) await deployer.close();
    },
  };
}
