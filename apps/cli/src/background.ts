/**
 * The background process of `sheepdog run --async`: it submits the request it is sent over
 * IPC, answers with the request id, and serves the request until every task has finished.
 * @module
 */
import { formatError, mapAsync } from 'sheepdog';
import type { BackgroundJob, BackgroundReply } from './commands/run.js';
import { isCliError } from './errors.js';
import { loadConfig } from './internal/config.js';
import { runFailed } from './internal/failure.js';
import { readOutcomes } from './internal/outcomes.js';
import { watch } from './internal/watch.js';

function stamp(text: string): void {
  process.stderr.write(`${new Date().toISOString()} [pid ${process.pid}] ${text}\n`);
}

function reply(message: BackgroundReply): void {
  if (process.connected) process.send?.(message);
}

async function serve(job: BackgroundJob): Promise<number> {
  const problems: string[] = [];
  const loaded = await loadConfig({ flags: job.flags }, problems);
  if (loaded === undefined) {
    reply({ error: `[sheepdog] [cli] invalid config:\n  ${problems.join('\n  ')}`, exitStatus: 2 });
    return 2;
  }
  let requestId: number;
  try {
    requestId = await mapAsync(job.func, job.args, loaded.input);
  } catch (error) {
    const failure = runFailed(`could not start ${job.target}`, error);
    stamp(formatError(failure));
    reply({ error: formatError(failure), exitStatus: failure.exitStatus });
    return failure.exitStatus;
  }
  stamp(`request ${requestId}: serving ${job.args.length} task(s)`);
  reply({ requestId });
  const dbfile = loaded.resolved.dbfile;
  const final = await watch(requestId, dbfile, undefined, { intervalMs: 1000 });
  const outcomes = await readOutcomes(requestId, dbfile, true);
  stamp(`request ${requestId}: finished ${JSON.stringify(final)}`);
  return outcomes.every((o) => o.state === 'done') ? 0 : 1;
}

process.once('message', (job: BackgroundJob) => {
  serve(job).then(
    (status) => {
      if (process.connected) process.disconnect();
      process.exitCode = status;
    },
    (error: unknown) => {
      stamp(isCliError(error) ? formatError(error) : String((error as Error)?.stack ?? error));
      if (process.connected) process.disconnect();
      process.exitCode = 1;
    },
  );
});
