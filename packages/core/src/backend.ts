/**
 * The contract between core and the thing that runs tasks: a scheduler, a pool of local
 * processes, or anything a user writes. Core calls these members and nothing else, and it
 * has no special case for any backend.
 */

/** What core asks a backend to run: one job over some task indices of a request. */
export interface JobSpec {
  /** The request the tasks belong to. */
  readonly requestId: number;
  /** Base URL (with trailing slash) of the server the workers report to. */
  readonly url: string;
  /** The request's secret token; whatever holds it must be readable by its owner only. */
  readonly token: string;
  /** Job indices (1-based) to run, ascending, without duplicates. */
  readonly indices: readonly number[];
  /** A short human-readable job name. */
  readonly name: string;
  /**
   * Most array tasks of this job to run at once (Grid Engine `-tc`, SLURM `--array=…%N`, a
   * cap on local processes). Unset: the scheduler's own limits.
   */
  readonly maxRunning?: number;
  /**
   * Lease mode, sent only to a backend whose `supportsLease` is `true`: run `workers` array
   * tasks (1..workers) from one job file rendered with `lease` (`@sheepdog/job-file`), each of
   * which leases chunks of `indices` from the server until none remain. `status` then reports
   * every index of the job as active while any of its array tasks is queued or running, and
   * none once they have all ended.
   */
  readonly lease?: {
    /** How many array tasks (workers) to run; fewer than `indices.length`. */
    readonly workers: number;
    /** How long a worker's lease lasts, in ms (the worker's `lease.leaseMs`). */
    readonly leaseMs?: number;
  };
}

/** What a backend returns for a submitted job; core stores it so another process can re-attach. */
export interface Submission {
  /** The backend's name, e.g. `gridengine`. */
  readonly backend: string;
  /** The scheduler's job id (or the backend's own handle). */
  readonly jobId: string;
  /** The job indices this submission runs. */
  readonly indices: readonly number[];
  /** When it was submitted (ms since the epoch); with `jobId`, it identifies the job across id reuse. */
  readonly submittedAt: number;
  /** Anything else the backend needs later; must survive `JSON.stringify`. */
  readonly meta?: Readonly<Record<string, unknown>>;
}

/** A backend's view of a submission at one moment. */
export interface TaskReport {
  /** Job indices the backend still holds: queued or running. */
  readonly active: ReadonlySet<number>;
  /**
   * The backend still holds every index of the submission: say a lease-mode job with a worker
   * queued or running, where any worker may run any open task. `active` may then be left empty;
   * core counts every index as held, without a set of all the indices of a large submission
   * built at every poll.
   */
  readonly holdsAll?: boolean;
  /** Why tasks ended, where the backend knows (exit status, signal, limit, deletion). */
  readonly reasons?: ReadonlyMap<number, string>;
}

/** A way to run the tasks of a request. Implement it to plug in your own scheduler. */
export interface Backend {
  /** A short name used in messages and stored with each submission. */
  readonly name: string;
  /**
   * Whether `submit` honours {@link JobSpec.lease}. Core sends lease-mode jobs only to a backend
   * that says so; others get one array task per index, as before.
   * @default false
   */
  readonly supportsLease?: boolean;
  /** Start running `job`; resolve once the work is accepted (not when it finishes). */
  submit(job: JobSpec): Promise<Submission>;
  /** Report which of the submission's indices are still queued or running. */
  status(submission: Submission): Promise<TaskReport>;
  /**
   * Explains why tasks that the backend no longer holds ended without a report: exit status,
   * signal, an enforced limit, deletion. Core calls it only for tasks it is about to mark lost,
   * so it may be slow (e.g. read scheduler accounting). Indices it cannot explain are left out.
   */
  explain?(
    submission: Submission,
    indices: readonly number[],
  ): Promise<ReadonlyMap<number, string>>;
  /** Stop the submission's remaining tasks. Must not throw when they have already ended. */
  cancel(submission: Submission): Promise<void>;
  /**
   * The host name workers use to reach this machine. Without it, core uses this machine's FQDN,
   * which suits anything that may run on other hosts.
   */
  workerHost?(): Promise<string>;
  /** Release connections and other resources. */
  dispose?(): Promise<void>;
}
