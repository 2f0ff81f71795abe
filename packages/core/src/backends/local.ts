import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { jobFile } from '@sheepdog/job-file';
import type { Backend, JobSpec, Submission, TaskReport } from '../backend.js';

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
}

interface LocalJob {
  readonly queue: number[];
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
 * The embedded default backend: runs each task as a real local Node.js process, at most
 * `concurrency` at a time. It needs no cluster, so `map(f, args)` works on any machine.
 */
export function local(options: LocalBackendOptions = {}): Backend {
  const concurrency = options.concurrency ?? availableParallelism();
  const node = options.node ?? process.execPath;
  const jobs = new Map<string, LocalJob>();
  let counter = 0;

  function pump(job: LocalJob, file: string): void {
    while (!job.cancelled && job.running.size < concurrency && job.queue.length > 0) {
      const index = job.queue.shift() as number;
      const child = spawn(node, [file], {
        env: { ...process.env, SHEEPDOG_TASK_ID: String(index) },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
        // Keep only the tail: it is what explains a crash.
        stderr = (stderr + chunk).slice(-2000);
      });
      job.running.set(index, child);
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (!job.running.delete(index)) return;
        if (signal !== null) job.reasons.set(index, `killed by signal ${signal}`);
        else if (code !== 0) {
          const tail = stderr.trim().split('\n').slice(-3).join(' | ');
          job.reasons.set(index, `exit status ${code}${tail ? `: ${tail}` : ''}`);
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

  return {
    name: 'local',
    async submit(spec: JobSpec): Promise<Submission> {
      const dir = mkdtempSync(join(tmpdir(), 'sheepdog-'));
      const file = join(dir, `sheepdog-${spec.requestId}.cjs`);
      const text = jobFile({
        url: spec.url,
        token: spec.token,
        requestId: spec.requestId,
        nArgs: Math.max(0, ...spec.indices),
        shell: node,
        directivePrefix: null,
        name: spec.name,
        ...(options.maxHeapMb === undefined ? {} : { maxHeapMb: options.maxHeapMb }),
      });
      // The file holds the request's token: owner-only from the start.
      writeFileSync(file, text, { mode: 0o600 });
      counter += 1;
      const jobId = `local-${process.pid}-${counter}`;
      const job: LocalJob = {
        queue: [...spec.indices],
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
        meta: { pid: process.pid },
      };
    },
    async status(submission: Submission): Promise<TaskReport> {
      const job = jobs.get(submission.jobId);
      if (job === undefined) {
        // Submitted by another process: its tasks can only still run while that process lives.
        const owner = Number(submission.meta?.pid);
        const alive = Number.isInteger(owner) && owner !== process.pid && isAlive(owner);
        return { active: new Set(alive ? submission.indices : []) };
      }
      return {
        active: new Set([...job.queue, ...job.running.keys()]),
        reasons: new Map(job.reasons),
      };
    },
    async cancel(submission: Submission): Promise<void> {
      const job = jobs.get(submission.jobId);
      if (job === undefined) return;
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
    },
  };
}
