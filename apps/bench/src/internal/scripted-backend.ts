import type { Backend, JobSpec, Submission, TaskReport } from 'sheepdog';

/** A {@link scriptedBackend}: a backend plus the end of its script. */
export interface ScriptedBackend extends Backend {
  /** Settles when the script has ended (rejects with its error); not awaited by `dispose`. */
  readonly done: Promise<void>;
}

/**
 * A backend whose "tasks" are whatever `script` does with the job: post results itself, or run
 * the job file by hand. `submit` returns at once and the script starts on a later turn, after
 * `map` has begun waiting, as with a real scheduler. Until the script ends, every index counts
 * as active, so core never marks a task lost; if the script throws, `status` rethrows and `map`
 * rejects with it. One backend object serves one `map` call.
 */
export function scriptedBackend(
  name: string,
  script: (job: JobSpec) => Promise<void>,
): ScriptedBackend {
  let started: (job: JobSpec) => void = () => undefined;
  const job = new Promise<JobSpec>((resolve) => {
    started = resolve;
  });
  let finished = false;
  let failure: unknown;
  const done = job
    .then((spec) => new Promise<JobSpec>((resolve) => setImmediate(() => resolve(spec))))
    .then(script)
    .finally(() => {
      finished = true;
    });
  done.catch((error: unknown) => {
    failure = error;
  });
  return {
    name,
    done,
    async submit(spec: JobSpec): Promise<Submission> {
      started(spec);
      return {
        backend: name,
        jobId: `${name}-${spec.requestId}`,
        indices: [...spec.indices],
        submittedAt: Date.now(),
      };
    },
    async status(submission: Submission): Promise<TaskReport> {
      if (failure !== undefined) throw failure;
      return { active: new Set(finished ? [] : submission.indices) };
    },
    async cancel(): Promise<void> {},
    async workerHost(): Promise<string> {
      return '127.0.0.1';
    },
  };
}
