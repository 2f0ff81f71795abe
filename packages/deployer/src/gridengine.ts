import { remotePath } from './internal/sftp.js';
import { shellQuote } from './shell-quote.js';

/** Options of {@link GridEngineCommands.submit}. */
export interface QsubCommandOptions {
  /**
   * Extra qsub arguments, placed before the file name; each is quoted for the remote shell.
   * @default []
   */
  args?: readonly string[];
  /**
   * The directive prefix passed as `qsub -C`: option lines in the job file start with it.
   * @default '//$'
   */
  directivePrefix?: string;
  /**
   * The qsub program: a name on the remote PATH or an absolute path.
   * @default 'qsub'
   */
  qsub?: string;
}

/**
 * Grid Engine's command lines, as the remote shell runs them, every argument quoted with
 * {@link shellQuote}. They run nothing: pass a line to `Deployer.exec` (or any SSH client) and
 * read what it prints.
 */
export interface GridEngineCommands {
  /**
   * Submit: `cd <directory> && qsub -terse -C '//$' <args> <file>`, which prints the job id
   * (read it with {@link parseQsubJobId}).
   *
   * @param directory - the job file's folder, relative to the remote home unless absolute (`~/` allowed)
   * @param fileName - the job file's name inside `directory`
   */
  submit(directory: string, fileName: string, options?: QsubCommandOptions): string;
  /**
   * Status: `qstat -g d`, every queued or running task of the user's jobs on a line of its own
   * (job id first, state letters in the fifth column, the array task id last).
   */
  status(): string;
  /** One job in detail: `qstat -j <jobId>`, which says why a task is in error state (`error reason 1: …`). */
  job(jobId: string): string;
  /**
   * Accounting: `qacct -j <jobId>`, one block of `key value` lines per ended task (`taskid`,
   * `failed`, `exit_status`, `qsub_time`, …), blocks separated by a line of `=`. It fails while
   * Grid Engine has recorded no task of the job.
   */
  accounting(jobId: string): string;
  /**
   * Cancel: `qdel <jobId>`, or `qdel <jobId> -t <taskId>` for one array task. qdel fails with
   * "does not exist" for a job that has ended.
   */
  cancel(jobId: string, taskId?: number): string;
}

/** Grid Engine's command lines: see {@link GridEngineCommands}. */
export const gridEngineCommands: GridEngineCommands = {
  submit(directory, fileName, options = {}) {
    return [
      'cd',
      shellQuote(remotePath(directory)),
      '&&',
      shellQuote(options.qsub ?? 'qsub'),
      '-terse',
      '-C',
      shellQuote(options.directivePrefix ?? '//$'),
      ...(options.args ?? []).map(shellQuote),
      shellQuote(fileName),
    ].join(' ');
  },
  status: () => 'qstat -g d',
  job: (jobId) => `qstat -j ${shellQuote(jobId)}`,
  accounting: (jobId) => `qacct -j ${shellQuote(jobId)}`,
  cancel: (jobId, taskId) =>
    `qdel ${shellQuote(jobId)}${taskId === undefined ? '' : ` -t ${taskId}`}`,
};

/**
 * Extracts the job id from what `qsub -terse` printed: `142` for a plain job, `143.1-3:1` for an
 * array job (Grid Engine appends the task range after a dot). Only the last non-empty line is
 * read, because site wrappers sometimes print notices before it.
 *
 * @param stdout - qsub's standard output
 * @returns the numeric job id as a string, or undefined when there is none
 */
export function parseQsubJobId(stdout: string): string | undefined {
  const lines = stdout
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const last = lines.at(-1);
  if (last === undefined) return undefined;
  const match = /^(\d+)(?:\.\d+-\d+:\d+)?$/.exec(last);
  return match?.[1];
}
