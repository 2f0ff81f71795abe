import { fork } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { type ModuleFunction, mapAsync } from 'sheepdog';
import { usageError } from '../errors.js';
import { type ArgsFormat, readArgs } from '../internal/args.js';
import { type LoadedConfig, loadConfig, parseDuration } from '../internal/config.js';
import { runFailed } from '../internal/failure.js';
import { exitStatusOf, outcomeLine, readOutcomes } from '../internal/outcomes.js';
import { shellQuote, writeLines } from '../internal/output.js';
import { PROGRESS_MODES, Progress, type ProgressMode } from '../internal/progress.js';
import { parseTarget } from '../internal/target.js';
import { watch } from '../internal/watch.js';

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

/**
 * The type the module's function gets for `mapAsync`: each element of `args` is either its
 * argument list or its single argument, which only `unknown` describes.
 */
export type AnyTask = (arg: unknown) => unknown;

/** Exit status of a run the user detached from with Ctrl-C (128 + SIGINT, as shells expect). */
export const DETACHED = 130;

/** The message sent to the background process of `run --async`. */
export interface BackgroundJob {
  readonly func: ModuleFunction;
  readonly args: unknown[];
  readonly flags: Record<string, unknown>;
}

/** The background process's answer: the request id, or what went wrong. */
export type BackgroundReply = { requestId: number } | { error: string; exitStatus: number };

interface Prepared {
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
  const progress = (opts.progress ?? 'auto') as ProgressMode;
  if (!PROGRESS_MODES.includes(progress)) {
    problems.push(`--progress: expected one of ${PROGRESS_MODES.join(', ')}, got ${opts.progress}`);
  }
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
  return { func, args, config, progress, progressIntervalMs: progressIntervalMs ?? 5000 };
}

function dbFlag(dbfile: string): string {
  return `--db ${shellQuote(dbfile)}`;
}

function howToResume(requestId: number, dbfile: string): string {
  return [
    `  serve it until every task has finished:  sheepdog serve ${dbFlag(dbfile)}`,
    `  see how it is doing:                     sheepdog status ${requestId} ${dbFlag(dbfile)}`,
    `  collect the results:                     sheepdog results ${requestId} ${dbFlag(dbfile)} --wait`,
  ].join('\n');
}

/** Asks on the terminal whether to cancel, detach or keep waiting; resolves with the key. */
function ask(question: string): Promise<'cancel' | 'detach' | 'wait'> {
  return new Promise((resolve) => {
    process.stderr.write(question);
    const stdin = process.stdin;
    stdin.setRawMode(true);
    stdin.resume();
    stdin.once('data', (data: Buffer) => {
      stdin.setRawMode(false);
      stdin.pause();
      const key = data.toString('utf8').toLowerCase();
      process.stderr.write('\n');
      // A second Ctrl-C (raw mode turns it into \u0003) means "let me out": detach.
      if (key.startsWith('c')) resolve('cancel');
      else if (key.startsWith('d') || key.startsWith('\u0003')) resolve('detach');
      else resolve('wait');
    });
  });
}

async function runInForeground(prepared: Prepared, opts: RunOptions): Promise<number> {
  const { func, args, config } = prepared;
  const dbfile = config.resolved.dbfile;
  const cancel = new AbortController();
  let requestId: number;
  try {
    requestId = await mapAsync<AnyTask>(func, args, { ...config.input, signal: cancel.signal });
  } catch (error) {
    throw runFailed(`could not start ${func.module}#${func.export}`, error);
  }
  const backend =
    typeof config.resolved.backend === 'string'
      ? config.resolved.backend
      : config.resolved.backend.name;
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY);
  if (prepared.progress !== 'none') {
    process.stderr.write(
      `[sheepdog] request ${requestId}: ${args.length} task(s) on ${backend}, results in ${dbfile}; Ctrl-C to ${interactive ? 'cancel or detach' : 'detach'}\n`,
    );
  }
  const progress = new Progress(requestId, {
    mode: prepared.progress,
    intervalMs: prepared.progressIntervalMs,
  });
  const detach = new AbortController();
  let asking = false;
  const onInterrupt = (): void => {
    if (!interactive || asking) {
      detach.abort();
      return;
    }
    asking = true;
    progress.pause();
    void ask(
      `\n[sheepdog] request ${requestId} is still running. [c]ancel it, [d]etach and leave it, or [w]ait on? `,
    ).then((choice) => {
      asking = false;
      if (choice === 'cancel') {
        process.stderr.write(`[sheepdog] cancelling request ${requestId}…\n`);
        cancel.abort(new Error('cancelled with Ctrl-C'));
      } else if (choice === 'detach') {
        detach.abort();
      }
    });
  };
  const onTerminate = (): void => detach.abort();
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onTerminate);
  process.on('SIGHUP', onTerminate);
  let final: Awaited<ReturnType<typeof watch>>;
  try {
    final = await watch(requestId, dbfile, progress, { signal: detach.signal });
  } finally {
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onTerminate);
    process.off('SIGHUP', onTerminate);
  }
  if (final === undefined) {
    progress.pause();
    process.stderr.write(
      `[sheepdog] detached from request ${requestId}; what has finished is kept in ${dbfile}. Tasks that were running may be lost, and the ones still waiting did not start. To carry on:\n${howToResume(requestId, dbfile)}\n`,
    );
    return DETACHED;
  }
  progress.stop(final);
  const outcomes = await readOutcomes(requestId, dbfile, true);
  await writeLines(outcomes.map(outcomeLine), opts.out);
  const status = exitStatusOf(outcomes);
  if (status !== 0 && prepared.progress !== 'none') {
    process.stderr.write(
      `[sheepdog] request ${requestId}: not every task succeeded; see why with \`sheepdog errors ${requestId} ${dbFlag(dbfile)}\`, and run the failed and lost ones again with \`sheepdog retry ${requestId} ${dbFlag(dbfile)}\`\n`,
    );
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
  const job: BackgroundJob = { func: prepared.func, args: prepared.args, flags };
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
  if ('error' in reply) {
    process.stderr.write(`${reply.error}\n`);
    child.disconnect();
    return reply.exitStatus;
  }
  child.disconnect();
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
