import { setTimeout as sleep } from 'node:timers/promises';
import { getTaskStates, isSheepdogError, retry } from 'sheepdog';
import { CliError, usageError } from '../errors.js';
import { type LoadedConfig, loadConfig, resumeConfig } from '../internal/config.js';
import { runFailed } from '../internal/failure.js';
import { DETACHED, dbFlag, follow, notResumableHint, unfinishedHint } from '../internal/follow.js';
import { exitStatusOf, findRequest, outcomeLine, readOutcomes } from '../internal/outcomes.js';
import { checkOut, parseId, writeLines } from '../internal/output.js';
import { progressMode } from '../internal/progress.js';

/** Options of `sheepdog retry`. */
export interface RetryCommandOptions extends Record<string, unknown> {
  readonly wait: boolean;
  readonly out?: string;
  readonly progress?: string;
}

/** Resolves once one of the request's tasks is open again, or when `settled` does. */
async function reopened(
  requestId: number,
  dbfile: string,
  settled: Promise<unknown>,
): Promise<void> {
  let done = false;
  void settled.finally(() => {
    done = true;
  });
  while (!done) {
    const { pending, running } = (await findRequest(requestId, dbfile)).states;
    if (pending + running > 0) return;
    await sleep(100);
  }
}

/** The error that ends `retry` when the library's retry failed, in the command line's words. */
function retryFailed(
  requestId: number,
  backend: string | null,
  loaded: LoadedConfig,
  error: unknown,
): CliError {
  const what = `could not retry request ${requestId}`;
  if (!isSheepdogError(error, 'NOT_RESUMABLE')) return runFailed(what, error);
  const customGiven = typeof loaded.input.backend === 'object';
  return new CliError(
    'RUN_FAILED',
    `${what}: ${notResumableHint(requestId, backend, customGiven, loaded.resolved.dbfile)}`,
    { cause: error },
  );
}

/**
 * `sheepdog retry <id>`: submits the request's failed and lost tasks again as one job, then
 * (unless `--no-wait`) serves and follows them like `run` and prints every task's line.
 */
export async function retryCommand(id: string, opts: RetryCommandOptions): Promise<number> {
  const problems: string[] = [];
  const requestId = parseId(id, problems);
  checkOut(opts.out, problems);
  const mode = progressMode(opts.progress, problems);
  const loaded = await loadConfig({ flags: opts }, problems);
  if (problems.length > 0 || loaded === undefined) throw usageError('cannot retry', problems);
  const dbfile = loaded.resolved.dbfile;
  const { backend } = await findRequest(requestId, dbfile);
  const again = (await getTaskStates(requestId, dbfile))
    .filter((t) => t.state === 'failed' || t.state === 'lost')
    .map((t) => t.jobIndex);
  if (again.length === 0) {
    process.stderr.write(
      `[sheepdog] request ${requestId}: no task failed or was lost; nothing to retry\n`,
    );
    return 0;
  }
  const config = resumeConfig(loaded);
  if (!opts.wait && backend === 'local') {
    // Local tasks are child processes of whoever submits them: they would die with this one.
    throw usageError(`cannot retry request ${requestId} without waiting`, [
      `--no-wait: request ${requestId} runs on the local backend, whose tasks are processes of the command that submits them and would end with it; drop --no-wait`,
    ]);
  }
  if (!opts.wait) {
    let indices: number[];
    try {
      indices = await retry(requestId, dbfile, config, { wait: false });
    } catch (error) {
      throw retryFailed(requestId, backend, loaded, error);
    }
    process.stderr.write(
      `[sheepdog] request ${requestId}: submitted ${indices.length} task(s) again (${indices.join(', ')}); unless its first process still serves it, serve it now: sheepdog serve ${dbFlag(dbfile)}\n`,
    );
    return 0;
  }
  const cancel = new AbortController();
  let failure: unknown;
  const work = retry(requestId, dbfile, { ...config, signal: cancel.signal }, { wait: true });
  const settled = work.then(
    () => true,
    (error: unknown) => {
      failure = error;
      return false;
    },
  );
  await reopened(requestId, dbfile, settled);
  // Refused or failed before a task was open again: nothing to follow.
  if (failure !== undefined) throw retryFailed(requestId, backend, loaded, failure);
  const stop = new AbortController();
  void settled.then((ok) => {
    if (!ok) stop.abort();
  });
  const final = await follow({
    requestId,
    dbfile,
    what: `submitted ${again.length} failed or lost task(s) again`,
    mode,
    cancel,
    stop: stop.signal,
  });
  if (failure === undefined && final !== undefined) await settled;
  // A cancel from Ctrl-C ends the wait with CANCELLED: the lines below say which tasks.
  if (failure !== undefined && !isSheepdogError(failure, 'CANCELLED')) {
    throw retryFailed(requestId, backend, loaded, failure);
  }
  if (final === undefined && failure === undefined) return DETACHED;
  const outcomes = await readOutcomes(requestId, dbfile, true);
  await writeLines(outcomes.map(outcomeLine), opts.out);
  const status = exitStatusOf(outcomes);
  if (status !== 0 && mode !== 'none') process.stderr.write(unfinishedHint(requestId, dbfile));
  return status;
}
