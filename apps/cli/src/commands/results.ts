import { usageError } from '../errors.js';
import { loadConfig } from '../internal/config.js';
import { exitStatusOf, findRequest, outcomeLine, readOutcomes } from '../internal/outcomes.js';
import { checkOut, parseId, writeLines } from '../internal/output.js';
import { Progress, progressMode } from '../internal/progress.js';
import { watch } from '../internal/watch.js';

/** Options of `sheepdog results`. */
export interface ResultsOptions extends Record<string, unknown> {
  readonly out?: string;
  readonly wait?: boolean;
  readonly progress?: string;
}

/** `sheepdog results <id>`: one JSON line per task, in argument order. */
export async function resultsCommand(id: string, opts: ResultsOptions): Promise<number> {
  const problems: string[] = [];
  const requestId = parseId(id, problems);
  checkOut(opts.out, problems);
  const mode = progressMode(opts.progress, problems);
  const config = await loadConfig({ flags: opts }, problems);
  if (problems.length > 0 || config === undefined)
    throw usageError('cannot read the results', problems);
  const dbfile = config.resolved.dbfile;
  await findRequest(requestId, dbfile);
  if (opts.wait) {
    const progress = new Progress(requestId, { mode });
    const final = await watch(requestId, dbfile, progress);
    progress.stop(final);
  }
  const outcomes = await readOutcomes(requestId, dbfile);
  await writeLines(outcomes.map(outcomeLine), opts.out);
  return exitStatusOf(outcomes);
}
