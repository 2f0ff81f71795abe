import { spawn } from 'node:child_process';
import { EXIT_CODES, isExitCode } from '@sheepdog/protocol';
import { Client } from './client.js';
import { WorkerError } from './error.js';
import { type HttpOptions, resolveHttpOptions } from './internal/http.js';
import { type LeaseOptions, runLeases } from './lease.js';

/** What `main()` is called with; the job file embeds these as a JSON literal. */
export interface MainOptions extends HttpOptions {
  /** The server's base URL, as the workers reach it. */
  url: string;
  /** The request's secret token. */
  token: string;
  /** The request to work for. */
  requestId: number;
  /**
   * When set, array task k runs job index `indices[k - 1]` (the array range is
   * `1..indices.length`), so a retry can resubmit only some tasks; otherwise task k runs index k.
   * @default undefined
   */
  indices?: readonly number[];
  /**
   * Lease mode: this process ignores its array task id, leases chunks of tasks from the server
   * until none remain, and posts their outcomes in batches (see {@link LeaseOptions}). Every
   * array task of the job does the same, so N tasks need only as many array tasks as workers.
   * @default undefined (one task per process)
   */
  lease?: LeaseOptions;
  /**
   * Cap the task's JavaScript heap at this many MiB (`--max-old-space-size`). A task that goes over
   * is reported as an error instead of vanishing. This is how memory options are honoured: Grid
   * Engine's `h_vmem` is an address-space limit that stops Node from even starting.
   * @default undefined (Node's own limit)
   */
  maxHeapMb?: number;
  /**
   * End the process when done, even if the task left timers or sockets open, so a leaked handle
   * cannot hold a scheduler slot forever.
   * @default true
   */
  exit?: boolean;
  /**
   * Where the task id and `SHEEPDOG_HTTP_*` settings are read from.
   * @default process.env
   */
  env?: NodeJS.ProcessEnv;
}

/** Set in the environment of the heap-capped child process; holds the job index it runs. */
const CHILD_ENV = 'SHEEPDOG_WORKER_CHILD';

/** Scheduler variables holding the array task id, most deliberate first. */
const TASK_ID_VARIABLES = ['SHEEPDOG_TASK_ID', 'SLURM_ARRAY_TASK_ID', 'SGE_TASK_ID'] as const;

/**
 * The job index this process runs: the array task id from the environment (`SHEEPDOG_TASK_ID`,
 * then `SLURM_ARRAY_TASK_ID`, then `SGE_TASK_ID`), mapped through `indices` when given.
 *
 * @throws {WorkerError} `NO_TASK_ID` or `BAD_TASK_ID`.
 */
export function resolveJobIndex(env: NodeJS.ProcessEnv, indices?: readonly number[]): number {
  // Grid Engine sets SGE_TASK_ID=undefined in jobs that are not arrays.
  const variable = TASK_ID_VARIABLES.find((name) => env[name] && env[name] !== 'undefined');
  if (variable === undefined) {
    throw new WorkerError(
      'NO_TASK_ID',
      'no task id in the environment: run this file as an array job (Grid Engine sets SGE_TASK_ID, SLURM sets SLURM_ARRAY_TASK_ID) or set SHEEPDOG_TASK_ID=<k> to run task k by hand.',
    );
  }
  const raw = env[variable] ?? '';
  const k = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(k) || k < 1) {
    throw new WorkerError(
      'BAD_TASK_ID',
      `${variable}=${raw} is not a task id (a positive integer).`,
    );
  }
  if (indices === undefined) return k;
  const index = indices[k - 1];
  if (index === undefined) {
    throw new WorkerError(
      'BAD_TASK_ID',
      `${variable}=${k} is beyond this job file's ${indices.length} task indices; submit it with an array range of 1-${indices.length}.`,
    );
  }
  return index;
}

// The worker's own errors read as the rest of Sheepdog prints its parts' errors.
function report(error: unknown): void {
  const text = error instanceof Error ? error.message : String(error);
  process.stderr.write(`${error instanceof WorkerError ? `[sheepdog] [worker] ${text}` : text}\n`);
}

/**
 * Runs the task again in a child process whose V8 heap is capped, and reports for it if it dies.
 *
 * Why a child process rather than a worker_thread with resourceLimits: the task then runs exactly
 * as under a plain `node --max-old-space-size=N` (process.chdir, process.exit and native addons
 * that refuse to load in threads all behave normally), and this parent survives V8's out-of-memory
 * abort to tell the server. The price, a second Node start (~50 ms of CPU), is only paid when
 * maxHeapMb is set.
 */
async function runCapped(
  client: Client,
  maxHeapMb: number,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const script = process.argv[1];
  if (script === undefined) {
    throw new WorkerError('BAD_OPTIONS', 'maxHeapMb needs main() to run from a job file.');
  }
  const child = spawn(
    process.execPath,
    [...process.execArgv, `--max-old-space-size=${maxHeapMb}`, ...process.argv.slice(1)],
    { stdio: 'inherit', env: { ...env, [CHILD_ENV]: String(client.jobIndex) } },
  );
  // A scheduler's polite kill (qdel, scancel) reaches this parent; pass it on to the task.
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  process.on('SIGTERM', forward);
  process.on('SIGINT', forward);
  const ended = await new Promise<{ code: number | null; signal: string | null; error?: Error }>(
    (resolve) => {
      child.on('error', (error) => resolve({ code: null, signal: null, error }));
      child.on('exit', (code, signal) => resolve({ code, signal }));
    },
  );
  process.off('SIGTERM', forward);
  process.off('SIGINT', forward);
  const { code, signal } = ended;
  if (isExitCode(code)) return code;
  const how = ended.error
    ? `could not start (${ended.error.message})`
    : signal
      ? `was killed by ${signal}`
      : `exited with code ${code}`;
  const why =
    signal === 'SIGABRT' || code === 134
      ? `It most likely ran out of memory above the heap limit of ${maxHeapMb} MB: raise maxHeapMb, or use less memory per task.`
      : 'It may have been killed by the scheduler (run time or memory limit) or have called process.exit().';
  const died = new WorkerError(
    'TASK_DIED',
    `task ${client.jobIndex} of request ${client.requestId}: the task's process ${how} before reporting. ${why}`,
  );
  report(died);
  try {
    await client.submitError(`${died.name}: ${died.message}`);
    return EXIT_CODES.reported;
  } catch (error) {
    report(error);
    return EXIT_CODES.unreported;
  }
}

/**
 * Lease mode. With `maxHeapMb`, the loop runs in a heap-capped child process; if it dies, its
 * chunk's leases run out and the tasks go to other workers (or are retried), so the parent only
 * says why.
 */
async function runLeased(options: MainOptions, env: NodeJS.ProcessEnv): Promise<number> {
  const { maxHeapMb } = options;
  let base: URL;
  let http: ReturnType<typeof resolveHttpOptions>;
  try {
    base = new URL(options.url.endsWith('/') ? options.url : `${options.url}/`);
    http = resolveHttpOptions(options, env);
    if (!Number.isSafeInteger(options.requestId) || options.requestId < 1) {
      throw new WorkerError(
        'BAD_OPTIONS',
        `requestId must be a positive integer, got ${options.requestId}.`,
      );
    }
  } catch (error) {
    report(error);
    return EXIT_CODES.badSetup;
  }
  if (maxHeapMb !== undefined && env[CHILD_ENV] === undefined) {
    const script = process.argv[1];
    if (script === undefined) {
      report(new WorkerError('BAD_OPTIONS', 'maxHeapMb needs main() to run from a job file.'));
      return EXIT_CODES.badSetup;
    }
    const child = spawn(
      process.execPath,
      [...process.execArgv, `--max-old-space-size=${maxHeapMb}`, ...process.argv.slice(1)],
      { stdio: 'inherit', env: { ...env, [CHILD_ENV]: 'lease' } },
    );
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal);
    };
    process.on('SIGTERM', forward);
    process.on('SIGINT', forward);
    const code = await new Promise<number | null>((resolve) => {
      child.on('error', () => resolve(null));
      child.on('exit', (c) => resolve(c));
    });
    process.off('SIGTERM', forward);
    process.off('SIGINT', forward);
    if (code === EXIT_CODES.reported || code === EXIT_CODES.badSetup) return code;
    report(
      new WorkerError(
        'TASK_DIED',
        `the lease worker of request ${options.requestId} ended before finishing (exit ${code}); the tasks it held go back to the pool when their lease runs out. It may have run out of memory above maxHeapMb=${maxHeapMb}.`,
      ),
    );
    return EXIT_CODES.unreported;
  }
  try {
    const summary = await runLeases({
      base,
      token: options.token,
      requestId: options.requestId,
      http,
      lease: options.lease ?? {},
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stderr.write(
      `[sheepdog] request ${options.requestId}: this worker ran ${summary.tasks} task(s) (${summary.errors} failed) in ${summary.leases} lease(s)\n`,
    );
    return EXIT_CODES.reported;
  } catch (error) {
    report(error);
    return EXIT_CODES.unreported;
  }
}

async function run(options: MainOptions, env: NodeJS.ProcessEnv): Promise<number> {
  if (options.lease !== undefined) return runLeased(options, env);
  const childIndex = env[CHILD_ENV];
  let client: Client;
  try {
    const jobIndex =
      childIndex === undefined ? resolveJobIndex(env, options.indices) : Number(childIndex);
    const { maxHeapMb } = options;
    if (maxHeapMb !== undefined && (!Number.isSafeInteger(maxHeapMb) || maxHeapMb < 1)) {
      throw new WorkerError(
        'BAD_OPTIONS',
        `maxHeapMb must be a positive integer, got ${maxHeapMb}.`,
      );
    }
    client = new Client(options.url, options.token, options.requestId, jobIndex, {
      httpRetries: options.httpRetries,
      httpRetryBaseMs: options.httpRetryBaseMs,
      httpRetryMaxMs: options.httpRetryMaxMs,
      httpTimeoutMs: options.httpTimeoutMs,
      env,
    });
    if (maxHeapMb !== undefined && childIndex === undefined) {
      return await runCapped(client, maxHeapMb, env);
    }
  } catch (error) {
    report(error);
    return EXIT_CODES.badSetup;
  }
  try {
    await client.go();
    return EXIT_CODES.reported;
  } catch (error) {
    report(error);
    return EXIT_CODES.unreported;
  }
}

/**
 * What a job file calls: finds this process's task from the scheduler's environment, runs it with
 * a {@link Client}, and sets the exit code (see {@link EXIT_CODES}). Never rejects.
 *
 * @returns The exit code (also set as `process.exitCode`).
 */
export async function main(options: MainOptions): Promise<number> {
  const code = await run(options, options.env ?? process.env);
  process.exitCode = code;
  // stdout and stderr are synchronous for files and pipes on Linux, so nothing printed is lost.
  if (options.exit ?? true) process.exit(code);
  return code;
}
