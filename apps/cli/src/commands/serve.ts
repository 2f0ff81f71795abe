import {
  type RequestSummary,
  requestSummary,
  type ServeReport,
  serve,
  unfinishedRequests,
} from 'sheepdog';
import { usageError } from '../errors.js';
import { loadConfig, resumeConfig } from '../internal/config.js';
import { runFailed } from '../internal/failure.js';
import { DETACHED, dbFlag, notResumableHint, unfinishedHint } from '../internal/follow.js';
import { checkDatabase } from '../internal/outcomes.js';
import { Progress, progressMode } from '../internal/progress.js';
import { watch } from '../internal/watch.js';

/** Options of `sheepdog serve`. */
export interface ServeCommandOptions extends Record<string, unknown> {
  readonly progress?: string;
}

function describe(
  report: ServeReport,
  request: RequestSummary,
  customGiven: boolean,
  dbfile: string,
): string {
  const counts = request.states;
  const tally = ` (${counts.done} done, ${counts.failed} failed, ${counts.lost} lost, ${counts.cancelled} cancelled)`;
  switch (report.outcome) {
    case 'finished':
      return `request ${report.requestId}: finished${tally}`;
    case 'stopped':
      return `request ${report.requestId}: stopped serving${tally}; its tasks keep running`;
    case 'timeout':
      return `request ${report.requestId}: timed out, open tasks cancelled${tally}`;
    case 'cancelled':
      return `request ${report.requestId}: cancelled${tally}`;
    default:
      if (report.code === 'PORT_IN_USE') {
        // Most often the `run` that started it still serves it: say how to watch that instead.
        return `request ${report.requestId}: not served here: the port its workers report to is in use, most likely by the process that started it, which still serves it. Follow it with \`sheepdog results ${report.requestId} ${dbFlag(dbfile)} --wait\`; if another program holds the port, stop it and serve again`;
      }
      if (report.code === 'NOT_RESUMABLE') {
        return `request ${report.requestId}: not served: ${notResumableHint(report.requestId, request.backend, customGiven, dbfile)}`;
      }
      return `request ${report.requestId}: ${report.outcome === 'skipped' ? 'not served' : 'serving failed'}: ${report.message ?? ''}`;
  }
}

/**
 * `sheepdog serve`: serves every unfinished request in the database, each on the port its
 * workers were given, until they have all finished.
 */
export async function serveCommand(opts: ServeCommandOptions): Promise<number> {
  const problems: string[] = [];
  const mode = progressMode(opts.progress, problems);
  const loaded = await loadConfig({ flags: opts }, problems);
  if (problems.length > 0 || loaded === undefined) throw usageError('cannot serve', problems);
  const dbfile = loaded.resolved.dbfile;
  const port = loaded.input.port;
  checkDatabase(dbfile);
  const ids = (await unfinishedRequests(dbfile, port)).map((r) => r.id);
  if (ids.length === 0) {
    process.stderr.write(
      `[sheepdog] nothing to serve: every request in ${dbfile}${port === undefined ? '' : ` reporting to port ${port}`} has finished\n`,
    );
    return 0;
  }
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  // Announced only once Ctrl-C is handled, so pressing it right after the line stops serving cleanly.
  process.stderr.write(
    `[sheepdog] serving request(s) ${ids.join(', ')} from ${dbfile} until they finish; Ctrl-C stops serving (the tasks keep running, and serving again picks them up)\n`,
  );
  const watching = new AbortController();
  const single = ids.length === 1 ? mode : mode === 'none' ? 'none' : 'lines';
  const watchers = ids.map((id) => {
    const progress = new Progress(id, { mode: single });
    return watch(id, dbfile, progress, { signal: watching.signal }).then((final) => {
      if (final !== undefined) progress.stop(final);
    });
  });
  let reports: ServeReport[];
  try {
    reports = await serve({
      dbfile,
      ...(port === undefined ? {} : { port }),
      config: resumeConfig(loaded),
      signal: stop.signal,
    });
  } catch (error) {
    throw runFailed(`could not serve ${dbfile}`, error);
  } finally {
    watching.abort();
    await Promise.all(watchers);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
  let stopped = false;
  let incomplete = false;
  const customGiven = typeof loaded.input.backend === 'object';
  for (const report of reports) {
    const request = await requestSummary(report.requestId, dbfile);
    const counts = request.states;
    process.stderr.write(`[sheepdog] ${describe(report, request, customGiven, dbfile)}\n`);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    if (report.outcome === 'stopped') stopped = true;
    else if (report.outcome !== 'finished' || counts.done < total) incomplete = true;
    if (report.outcome === 'finished' && counts.failed + counts.lost > 0) {
      process.stderr.write(unfinishedHint(report.requestId, dbfile));
    }
  }
  if (stopped) {
    process.stderr.write(
      `[sheepdog] stopped; run \`sheepdog serve ${dbFlag(dbfile)}\` again to carry on\n`,
    );
    return DETACHED;
  }
  return incomplete ? 1 : 0;
}
