import { usageError } from '../errors.js';
import { loadConfig } from '../internal/config.js';
import { encodeJson } from '../internal/json.js';
import { type Outcome, readOutcomes } from '../internal/outcomes.js';
import { parseId, writeLines } from '../internal/output.js';

/** Options of `sheepdog errors`. */
export interface ErrorsOptions extends Record<string, unknown> {
  readonly json?: boolean;
}

function explain(o: Outcome): string {
  const args = JSON.stringify(encodeJson(o.args));
  const attempts = `${o.attempts} attempt${o.attempts === 1 ? '' : 's'}`;
  const body =
    o.error === undefined
      ? (o.reason ?? 'no reason recorded')
      : o.error.trimEnd().split('\n').join('\n    ');
  return `task ${o.index} ${o.state} (${attempts}), arguments ${args}:\n    ${body}\n`;
}

/**
 * `sheepdog errors <id>`: every task that failed (with its arguments and stack) or was lost or
 * cancelled (with the reason).
 */
export async function errorsCommand(id: string, opts: ErrorsOptions): Promise<number> {
  const problems: string[] = [];
  const requestId = parseId(id, problems);
  const config = await loadConfig({ flags: opts }, problems);
  if (problems.length > 0 || config === undefined)
    throw usageError('cannot read the errors', problems);
  const outcomes = await readOutcomes(requestId, config.resolved.dbfile);
  const bad = outcomes.filter(
    (o) => o.state === 'failed' || o.state === 'lost' || o.state === 'cancelled',
  );
  if (opts.json) {
    await writeLines(
      bad.map((o) =>
        JSON.stringify({
          index: o.index,
          status: o.state,
          args: encodeJson(o.args),
          attempts: o.attempts,
          ...(o.error === undefined ? {} : { error: o.error }),
          ...(o.reason === undefined ? {} : { reason: o.reason }),
        }),
      ),
      undefined,
    );
    return 0;
  }
  if (bad.length === 0) {
    process.stdout.write(`request ${requestId}: no task failed, was lost or was cancelled\n`);
    return 0;
  }
  await writeLines(bad.map(explain), undefined);
  return 0;
}
