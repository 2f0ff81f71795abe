import { cancel } from 'sheepdog';
import { usageError } from '../errors.js';
import { loadConfig, resumeConfig } from '../internal/config.js';
import { runFailed } from '../internal/failure.js';
import { findRequest } from '../internal/outcomes.js';
import { parseId } from '../internal/output.js';

/** `sheepdog cancel <id>`: stops the request's jobs and marks its open tasks cancelled. */
export async function cancelCommand(id: string, opts: Record<string, unknown>): Promise<number> {
  const problems: string[] = [];
  const requestId = parseId(id, problems);
  const loaded = await loadConfig({ flags: opts }, problems);
  if (problems.length > 0 || loaded === undefined) throw usageError('cannot cancel', problems);
  const dbfile = loaded.resolved.dbfile;
  const { pending, running } = (await findRequest(requestId, dbfile)).states;
  if (pending + running === 0) {
    process.stderr.write(`[sheepdog] request ${requestId} has no open task left to cancel\n`);
    return 0;
  }
  let cancelled: number;
  try {
    cancelled = await cancel(requestId, dbfile, resumeConfig(loaded));
  } catch (error) {
    throw runFailed(`could not cancel request ${requestId}`, error);
  }
  process.stderr.write(
    `[sheepdog] request ${requestId}: cancelled ${cancelled} open task(s); their results will be refused. What had finished stays in ${dbfile}.\n`,
  );
  return 0;
}
