import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend, JobSpec, Submission, TaskReport } from '../backend.js';
import { describeExit, leaseEnded, renderJobFile } from './_kit/index.js';

/** Options of the {@link local} backend. */
export interface LocalBackendOptions {
  /**
   * How many task processes run at once.
   * @default os.availableParallelism()
   */
  concurrency?: number;
  /**
   * The Node.js binary that runs each task.
   * @default process.execPath
   */
  node?: string;
  /** A V8 heap cap for each task, in MiB. */
  maxHeapMb?: number;
  /**
   * Start each task process in a session and process group of its own. A Ctrl-C at the terminal
   * then reaches only this process and not the running tasks, which is what a program that
   * handles SIGINT itself (asking whether to cancel, say) needs; the `sheepdog` CLI sets it.
   * Without it, the terminal's Ctrl-C ends the running tasks with this process, as it ends any
   * child process.
   * @default false
   */
  ownProcessGroup?: boolean;
}

interface LocalJob {
  /** Job indexes to start; in lease mode, worker numbers 1..workers. */
  readonly queue: number[];
  /** At most this many of the job's processes at once. */
  readonly limit: number;
  /** Lease mode: the indices all workers share. */
  readonly leased?: readonly number[];
  readonly running: Map<number, ChildProcess>;
  readonly reasons: Map<number, string>;
  readonly dir: string;
  cancelled: boolean;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether `pid` is still the task process that ran `file`: a pid can be reused once the task
 * has ended. Where `/proc` cannot tell (not Linux), a live pid is taken as the task.
 */
function isTask(pid: number, file: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(file);
  } catch {
    return true;
  }
}

// Another process (a resume, a cancel) learns which tasks of a job still run from the job's
// folder: `pids/<index>` holds the pid of each running task, and a `cancelled` file stops the
// owner from starting more.
const PIDS = 'pids';
const CANCELLED = 'cancelled';

/** Tasks of a job started by another process that still run, from the job's folder. */
function runningElsewhere(dir: string, file: string): Map<number, number> {
  const running = new Map<number, number>();
  let names: string[];
  try {
    names = readdirSync(join(dir, PIDS));
  } catch {
    return running;
  }
  for (const name of names) {
    try {
      const pid = Number(readFileSync(join(dir, PIDS, name), 'utf8'));
      if (Number.isInteger(pid) && isTask(pid, file)) running.set(Number(name), pid);
    } catch {
      // The task ended between listing and reading.
    }
  }
  return running;
}

/**
 * The embedded default backend: runs each task as a real local Node.js process, at most
 * `concurrency` at a time. It needs no cluster, so `map(f, args)` works on any machine.
 */
export function local(options: LocalBackendOptions = {}): Backend {
  const concurrency = options.concurrency ?? availableParallelism();
  const node = options.node ?? process.execPath;
  const jobs = new Map<string, LocalJob>();
  // Folders of jobs whose owner process is gone, seen still running: removed once they end.
  const orphaned = new Map<string, string>();
  let counter = 0;

  function pump(job: LocalJob, file: string): void {
    while (!job.cancelled && job.running.size < job.limit && job.queue.length > 0) {
      if (existsSync(join(job.dir, CANCELLED))) {
        job.cancelled = true;
        for (const index of job.queue.splice(0))
          job.reasons.set(index, 'cancelled before it started');
        if (job.running.size === 0) rmSync(job.dir, { recursive: true, force: true });
        break;
      }
      const index = job.queue.shift() as number;
      const child = spawn(node, [file], {
        env: { ...process.env, SHEEPDOG_TASK_ID: String(index) },
        stdio: ['ignore', 'ignore', 'pipe'],
        detached: options.ownProcessGroup === true,
      });
      const pidFile = join(job.dir, PIDS, String(index));
      if (child.pid !== undefined) writeFileSync(pidFile, String(child.pid));
      let stderr = '';
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
        // Keep only the tail: it is what explains a crash.
        stderr = (stderr + chunk).slice(-2000);
      });
      job.running.set(index, child);
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (!job.running.delete(index)) return;
        rmSync(pidFile, { force: true });
        // A reason set already (cancelled, could not start) says more than the exit itself.
        if (!job.reasons.has(index) && (signal !== null || code !== 0)) {
          const how = signal !== null ? `killed by signal ${signal}` : describeExit(code ?? 1);
          const tail = stderr.trim().split('\n').slice(-3).join(' | ');
          job.reasons.set(index, `${how}${tail ? `: ${tail}` : ''}`);
        }
        pump(job, file);
        if (job.running.size === 0 && job.queue.length === 0) {
          rmSync(job.dir, { recursive: true, force: true });
        }
      };
      child.on('exit', finish);
      child.on('error', (err) => {
        job.reasons.set(index, `could not start ${node}: ${err.message}`);
        finish(1, null);
      });
    }
  }

  /** In lease mode, why the workers ended, said of every index they leave open. */
  function leaseReasons(job: LocalJob): Map<number, string> {
    if (job.leased === undefined || job.queue.length > 0 || job.running.size > 0) return new Map();
    const ends = [...job.reasons].map(([worker, how]) => ({ worker, how }));
    return leaseEnded(job.leased, ends);
  }

  return {
    name: 'local',
    supportsLease: true,
    async submit(spec: JobSpec): Promise<Submission> {
      const dir = mkdtempSync(join(tmpdir(), 'sheepdog-'));
      mkdirSync(join(dir, PIDS));
      const file = join(dir, `sheepdog-${spec.requestId}.cjs`);
      const text = renderJobFile(
        spec,
        { nArgs: Math.max(0, ...spec.indices) },
        { shell: node, directivePrefix: null, name: spec.name, maxHeapMb: options.maxHeapMb },
      );
      // The file holds the request's token: owner-only from the start.
      writeFileSync(file, text, { mode: 0o600 });
      counter += 1;
      const jobId = `local-${process.pid}-${counter}`;
      const job: LocalJob = {
        queue:
          spec.lease === undefined
            ? [...spec.indices]
            : Array.from({ length: spec.lease.workers }, (_, i) => i + 1),
        limit: Math.min(concurrency, spec.maxRunning ?? concurrency),
        ...(spec.lease === undefined ? {} : { leased: spec.indices }),
        running: new Map(),
        reasons: new Map(),
        dir,
        cancelled: false,
      };
      jobs.set(jobId, job);
      pump(job, file);
      return {
        backend: 'local',
        jobId,
        indices: [...spec.indices],
        submittedAt: Date.now(),
        meta: { pid: process.pid, dir, file, ...(spec.lease === undefined ? {} : { lease: true }) },
      };
    },
    async status(submission: Submission): Promise<TaskReport> {
      const job = jobs.get(submission.jobId);
      if (job === undefined) {
        // Submitted by another process: while it lives it runs the whole job; once it is gone,
        // only the task processes it had started (they outlive it) can still report.
        const owner = Number(submission.meta?.pid);
        if (Number.isInteger(owner) && owner !== process.pid && isAlive(owner))
          return { active: new Set(), holdsAll: true };
        const { dir, file } = submission.meta ?? {};
        const running =
          typeof dir === 'string' && typeof file === 'string'
            ? runningElsewhere(dir, file)
            : new Map<number, number>();
        // Nothing of it runs any more: remove its folder, which the dead owner would have.
        if (typeof dir === 'string' && typeof file === 'string') {
          if (running.size === 0) rmSync(dir, { recursive: true, force: true });
          else orphaned.set(dir, file);
        }
        const reasons = new Map<number, string>();
        if (submission.meta?.lease === true) {
          // Any worker still running may lease any open task.
          if (running.size > 0) return { active: new Set(), holdsAll: true };
          for (const index of submission.indices)
            reasons.set(
              index,
              `the process that ran the local job (pid ${owner}) ended, and with it every lease-mode worker, before this task reported`,
            );
          return { active: new Set(), reasons };
        }
        for (const index of submission.indices)
          if (!running.has(index))
            reasons.set(
              index,
              `the process that ran the local job (pid ${owner}) ended before this task reported`,
            );
        return { active: new Set(running.keys()), reasons };
      }
      if (job.leased !== undefined) {
        const busy = job.queue.length > 0 || job.running.size > 0;
        if (busy) return { active: new Set(), holdsAll: true };
        return { active: new Set(), reasons: leaseReasons(job) };
      }
      return {
        active: new Set([...job.queue, ...job.running.keys()]),
        reasons: new Map(job.reasons),
      };
    },
    async cancel(submission: Submission): Promise<void> {
      const job = jobs.get(submission.jobId);
      if (job === undefined) {
        const { dir, file } = submission.meta ?? {};
        if (typeof dir !== 'string' || typeof file !== 'string' || !existsSync(dir)) return;
        writeFileSync(join(dir, CANCELLED), '');
        for (const pid of runningElsewhere(dir, file).values()) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // It ended meanwhile.
          }
        }
        return;
      }
      job.cancelled = true;
      for (const index of job.queue.splice(0))
        job.reasons.set(index, 'cancelled before it started');
      for (const [index, child] of job.running) {
        job.reasons.set(index, 'cancelled');
        child.kill('SIGKILL');
      }
    },
    async workerHost(): Promise<string> {
      return '127.0.0.1';
    },
    async dispose(): Promise<void> {
      for (const [jobId, job] of jobs) {
        if (job.running.size === 0 && job.queue.length === 0) jobs.delete(jobId);
      }
      // A task that has just reported may still be exiting: give it a moment.
      const until = Date.now() + 3000;
      for (const [dir, file] of orphaned) {
        while (runningElsewhere(dir, file).size > 0 && Date.now() < until)
          await new Promise((resolve) => setTimeout(resolve, 100));
        if (runningElsewhere(dir, file).size > 0) continue;
        rmSync(dir, { recursive: true, force: true });
        orphaned.delete(dir);
      }
    },
  };
}
