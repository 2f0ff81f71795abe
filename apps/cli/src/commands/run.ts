import { fork } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { type ModuleFunction, mapAsync } from 'sheepdog';
import { usageError } from '../errors.js';
import { type ArgsFormat, readArgs } from '../internal/args.js';
import { type LoadedConfig, loadConfig, parseDuration } from '../internal/config.js';
import { runFailed } from '../internal/failure.js';
import { DETACHED, dbFlag, follow, unfinishedHint } from '../internal/follow.js';
import { exitStatusOf, outcomeLine, readOutcomes } from '../internal/outcomes.js';
import { checkOut, writeLines } from '../internal/output.js';
import { type ProgressMode, progressMode } from '../internal/progress.js';
import { parseTarget } from '../internal/target.js';

/** Options of `sheepdog run`, as commander parses them (config flags included). */
export interface RunOptions extends Record<string, unknown> {
  readonly args?: string;
  readonly argsFormat?: string;
  readonly out?: string;
  readonly async?: boolean;
  readonly progress?: string;
  readonly progressInterval?: string;
  readonly check: boolean;
}

/** The message sent to the background process of `run --async`. */
export interface BackgroundJob {
  readonly target: string;
  readonly func: ModuleFunction;
  readonly args: unknown[];
  readonly flags: Record<string, unknown>;
}

/** The background process's answer: the request id, or what went wrong. */
export type BackgroundReply = { requestId: number } | { error: string; exitStatus: number };

interface Prepared {
  /** `<module>#<export>` as the user wrote it, for messages. */
  readonly target: string;
  readonly func: ModuleFunction;
  readonly args: unknown[];
  readonly config: LoadedConfig;
  readonly progress: ProgressMode;
  readonly progressIntervalMs: number;
}

async function prepare(target: string, opts: RunOptions): Promise<Prepared> {
  const problems: string[] = [];
  const func = await parseTarget(target, opts.check, problems);
  let format: ArgsFormat | undefined;
  if (opts.argsFormat !== undefined) {
    if (opts.argsFormat === 'json' || opts.argsFormat === 'jsonl') format = opts.argsFormat;
    else problems.push(`--args-format: expected json or jsonl, got ${opts.argsFormat}`);
  }
  const args = await readArgs(opts.args, format, problems);
  checkOut(opts.out, problems);
  const progress = progressMode(opts.progress, problems);
  const progressIntervalMs =
    opts.progressInterval === undefined ? 5000 : parseDuration(opts.progressInterval);
  if (progressIntervalMs === undefined) {
    problems.push(
      `--progress-interval: expected a duration such as 5s, got ${opts.progressInterval}`,
    );
  }
  const config = await loadConfig({ flags: opts }, problems);
  if (problems.length > 0 || func === undefined || config === undefined) {
    throw usageError(`cannot run ${target}`, problems);
  }
  return { target, func, args, config, progress, progressIntervalMs: progressIntervalMs ?? 5000 };
}

async function runInForeground(prepared: Prepared, opts: RunOptions): Promise<number> {
  const { func, args, config } = prepared;
  const dbfile = config.resolved.dbfile;
  const cancel = new AbortController();
  let requestId: number;
  try {
    requestId = await mapAsync(func, args, { ...config.input, signal: cancel.signal });
  } catch (error) {
    throw runFailed(`could not start ${prepared.target}`, error);
  }
  const backend = config.resolved.backend;
  const final = await follow({
    requestId,
    dbfile,
    what: `${args.length} task(s) on ${typeof backend === 'string' ? backend : backend.name}`,
    mode: prepared.progress,
    intervalMs: prepared.progressIntervalMs,
    cancel,
  });
  if (final === undefined) return DETACHED;
  const outcomes = await readOutcomes(requestId, dbfile, true);
  await writeLines(outcomes.map(outcomeLine), opts.out);
  const status = exitStatusOf(outcomes);
  if (status !== 0 && prepared.progress !== 'none') {
    process.stderr.write(unfinishedHint(requestId, dbfile));
  }
  return status;
}

async function runInBackground(prepared: Prepared, opts: RunOptions): Promise<number> {
  const dbfile = prepared.config.resolved.dbfile;
  const logFile = `${dbfile}.log`;
  const log = openSync(logFile, 'a');
  // The background process serves the request after this one exits: its own session, so the
  // terminal's Ctrl-C and hang-up do not reach it or the local tasks it starts.
  const child = fork(new URL('../background.js', import.meta.url), [], {
    detached: true,
    stdio: ['ignore', log, log, 'ipc'],
    serialization: 'advanced',
  });
  closeSync(log);
  const flags = Object.fromEntries(
    Object.entries(opts).filter(([, v]) => typeof v !== 'function' && v !== undefined),
  );
  const job: BackgroundJob = {
    target: prepared.target,
    func: prepared.func,
    args: prepared.args,
    flags,
  };
  const reply = await new Promise<BackgroundReply>((resolve) => {
    child.once('message', (message) => resolve(message as BackgroundReply));
    child.once('exit', (code, signal) => {
      let tail = '';
      try {
        tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n  ');
      } catch {}
      resolve({
        error: `[sheepdog] [cli] the background process ended (${signal ?? `exit status ${code}`}) before it submitted the request; its log ${logFile} ends with:\n  ${tail}`,
        exitStatus: 1,
      });
    });
    child.send(job);
  });
  child.removeAllListeners('exit');
  if (child.connected) child.disconnect();
  if ('error' in reply) {
    process.stderr.write(`${reply.error}\n`);
    return reply.exitStatus;
  }
  child.unref();
  process.stdout.write(`${reply.requestId}\n`);
  process.stderr.write(
    `[sheepdog] request ${reply.requestId} submitted; background process ${child.pid} serves it until every task has finished (log: ${logFile}).\n` +
      `  see how it is doing:  sheepdog status ${reply.requestId} ${dbFlag(dbfile)}\n` +
      `  collect the results:  sheepdog results ${reply.requestId} ${dbFlag(dbfile)} --wait\n` +
      `  if that process dies: sheepdog serve ${dbFlag(dbfile)}\n`,
  );
  return 0;
}

/** `sheepdog run <module>#<export> --args <file>`: maps the function over the arguments. */
export async function runCommand(target: string, opts: RunOptions): Promise<number> {
  const prepared = await prepare(target, opts);
  return opts.async ? runInBackground(prepared, opts) : runInForeground(prepared, opts);
}
