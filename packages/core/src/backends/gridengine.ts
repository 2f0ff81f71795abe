import { Deployer, type DeployerOptions, gridEngineCommands } from '@sheepdog/deployer';
import type { Backend, JobSpec, Submission, TaskReport } from '../backend.js';
import * as kit from './_kit/index.js';

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
  /**
   * Extra `qsub` options, one option with its value per element (each becomes a `#$` line of
   * the job file), e.g. `['-l h_rt=0:10:0', '-q all.q']`.
   */
  geOpts?: readonly string[];
  /** A V8 heap cap for each task, in MiB (Grid Engine's `h_vmem` stops Node from starting). */
  maxHeapMb?: number;
  /** Use this deployer instead of opening a connection of the backend's own. */
  deployer?: Deployer;
}

/** Parses `qstat -g d` output; exported for tests. */
export function parseQstat(text: string): kit.SchedulerTask[] {
  const tasks: kit.SchedulerTask[] = [];
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

/** Says in words why a task ended, from its accounting record (cluster-setup §1.11). */
export function describeAccounting(record: AccountingRecord): string {
  const failedCode = Number.parseInt(record.failed, 10);
  const failed = `failed ${record.failed.replace(/\s+/g, ' ')}`;
  if (failedCode === 37) {
    return `Grid Engine killed the task for going over a limit it enforces (${failed}); raise the -l h_rt (or h_cpu, h_vmem) request in geOpts`;
  }
  const status = record.exitStatus;
  let how = kit.describeExit(status);
  if (status > 128 && kit.signalName(status - 128) === 'SIGKILL')
    how += ': deleted with qdel, killed by the out-of-memory killer, or it killed itself';
  return `the task ended without reporting: ${how}${failedCode === 0 ? '' : ` (Grid Engine: ${failed})`}`;
}

/**
 * Records of this submission's tasks: job ids repeat after a qmaster crash, so records
 * submitted before it are some other job's.
 */
function ownRecords(submission: Submission, qacct: string): AccountingRecord[] {
  const earliest = submission.submittedAt - kit.CLOCK_SKEW_MS;
  return parseQacct(qacct).filter((record) => {
    const qsubTime = Date.parse(record.qsubTime);
    return Number.isNaN(qsubTime) || qsubTime >= earliest;
  });
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

function isContiguous(indices: readonly number[]): boolean {
  return indices.every((index, i) => index === i + 1);
}

function hasOption(opts: readonly string[], flag: string): boolean {
  return opts.some((opt) => opt === flag || opt.startsWith(`${flag} `));
}

/** Refuses a job larger than one array job may be, before anything is uploaded. */
function checkArraySize(spec: JobSpec): void {
  const { lease } = spec;
  if (lease !== undefined && lease.workers > MAX_ARRAY_TASKS) {
    throw kit.backendError(
      'gridengine',
      `${lease.workers} lease-mode workers are more than Grid Engine's array limit of ${MAX_ARRAY_TASKS} (max_aj_tasks); use fewer workers`,
      { requestId: spec.requestId },
    );
  }
  if (lease === undefined && spec.indices.length > MAX_ARRAY_TASKS) {
    throw kit.backendError(
      'gridengine',
      `${spec.indices.length} array tasks are more than Grid Engine's limit of ${MAX_ARRAY_TASKS} (max_aj_tasks); set workers to run them in lease mode`,
      { requestId: spec.requestId },
    );
  }
}

/**
 * Runs tasks as one Grid Engine array job submitted over SSH: the job file is uploaded with
 * SFTP and submitted with `qsub -terse`; `qstat` says which tasks are still queued or running,
 * `qacct` why a task ended, and `qdel` cancels.
 */
export function gridengine(options: GridEngineOptions): Backend {
  const deployer = options.deployer ?? new Deployer(options);
  const ownsDeployer = options.deployer === undefined;
  const shell = options.shell ?? '/usr/bin/node';
  // -wd, -o and -e must be absolute: relative ones are taken against the job's working
  // directory, and a missing output directory leaves the job in Eqw for ever.
  const absoluteDirectory = kit.remoteFolder(deployer, options.directory ?? '.sheepdog');

  function taskMap(submission: Submission): (taskId: number) => number {
    const contiguous = submission.meta?.contiguous !== false;
    return contiguous ? (taskId) => taskId : (taskId) => submission.indices[taskId - 1] ?? -1;
  }

  /** Why each task in error state is there, from `qstat -j`; the tasks are then deleted. */
  async function clearErrored(
    submission: Submission,
    errored: readonly number[],
    reasons: Map<number, string>,
  ): Promise<void> {
    const toIndex = taskMap(submission);
    const detail = await deployer.exec(gridEngineCommands.job(submission.jobId), kit.COMMAND_LIMIT);
    const why = /error reason\s+\d+:\s*(.*)/.exec(detail.stdout)?.[1];
    if (why)
      for (const taskId of errored)
        reasons.set(
          toIndex(taskId),
          `Grid Engine put the task in error state (Eqw): ${why.trim()}`,
        );
    for (const taskId of errored)
      await deployer.exec(gridEngineCommands.cancel(submission.jobId, taskId), kit.COMMAND_LIMIT);
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
      checkArraySize(spec);
      const { lease } = spec;
      const contiguous = lease !== undefined || isContiguous(spec.indices);
      const submittedAt = Date.now();
      const throttle =
        spec.maxRunning === undefined || hasOption(geOpts, '-tc')
          ? []
          : [['-tc', String(spec.maxRunning)]];
      const fileName = `sheepdog-${spec.requestId}-${submittedAt}.cjs`;
      const text = kit.renderJobFile(
        spec,
        contiguous ? { nArgs: spec.indices.length } : { indices: spec.indices },
        {
          shell,
          directivePrefix: '//$',
          options: [...defaults, ...throttle, ...geOpts],
          name: spec.name,
          maxHeapMb: options.maxHeapMb,
        },
      );
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
      const result = await deployer.exec(gridEngineCommands.status(), kit.COMMAND_LIMIT);
      if (result.code !== 0) {
        throw kit.backendError(
          'gridengine',
          `qstat failed (exit ${result.code}): ${result.stderr.trim()}`,
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
      if (errored.length > 0) await clearErrored(submission, errored, reasons);
      return { active, reasons };
    },
    async explain(
      submission: Submission,
      indices: readonly number[],
    ): Promise<ReadonlyMap<number, string>> {
      const result = await deployer.exec(
        gridEngineCommands.accounting(submission.jobId),
        kit.COMMAND_LIMIT,
      );
      if (result.code !== 0) return new Map();
      if (submission.meta?.lease === true) {
        // No record yet: Grid Engine has not written the workers' accounting.
        if (parseQacct(result.stdout).length === 0) return new Map();
        const ends = ownRecords(submission, result.stdout)
          .filter((record) => record.exitStatus !== 0 || Number.parseInt(record.failed, 10) !== 0)
          .map((record) => ({ worker: record.taskId, how: describeAccounting(record) }));
        return kit.leaseEnded(indices, ends, submission.jobId);
      }
      const wanted = new Set(indices);
      const toIndex = taskMap(submission);
      const reasons = new Map<number, string>();
      for (const record of ownRecords(submission, result.stdout)) {
        const index = toIndex(record.taskId);
        if (wanted.has(index)) reasons.set(index, describeAccounting(record));
      }
      return reasons;
    },
    async cancel(submission: Submission): Promise<void> {
      const result = await deployer.exec(
        gridEngineCommands.cancel(submission.jobId),
        kit.COMMAND_LIMIT,
      );
      if (result.code !== 0 && !/does not exist/.test(result.stderr + result.stdout)) {
        throw kit.backendError(
          'gridengine',
          `qdel ${submission.jobId} failed: ${result.stderr.trim()}`,
        );
      }
    },
    async dispose(): Promise<void> {
      if (ownsDeployer) await deployer.close();
    },
  };
}
