import { builtinBackends } from 'sheepdog';
import { shellQuote } from './output.js';
import { Progress, type ProgressMode, type StateCounts } from './progress.js';
import { watch } from './watch.js';

/** Exit status of a command the user detached from with Ctrl-C (128 + SIGINT, as shells expect). */
export const DETACHED = 130;

/** `--db <file>`, quoted for pasting into a shell. */
export function dbFlag(dbfile: string): string {
  return `--db ${shellQuote(dbfile)}`;
}

/** What to run when some of a request's tasks failed or were lost. */
export function unfinishedHint(requestId: number, dbfile: string): string {
  return `[sheepdog] request ${requestId}: not every task succeeded; see why with \`sheepdog errors ${requestId} ${dbFlag(dbfile)}\`, and run the failed and lost ones again with \`sheepdog retry ${requestId} ${dbFlag(dbfile)}\`\n`;
}

/**
 * Why `serve` or `retry` cannot pick a request up (the library's `NOT_RESUMABLE`), and what to do,
 * in the command line's words: the library's own message names its functions and config keys.
 * `storedBackend` is the backend name stored with the request; `customGiven`, whether the config
 * file gave a backend object.
 */
export function notResumableHint(
  requestId: number,
  storedBackend: string | null,
  customGiven: boolean,
  dbfile: string,
): string {
  const builtin = (builtinBackends as readonly (string | null)[]).includes(storedBackend);
  if (storedBackend !== null && !builtin && !customGiven) {
    return `request ${requestId} runs on the custom backend "${storedBackend}", which only your code can rebuild: export that backend object as \`backend\` from a config file (sheepdog.config.mjs here, or --config <file>) and run this again`;
  }
  return `request ${requestId} was stored without the port and host its workers report to (it was not made by \`sheepdog run\` or the library's map), so nothing can serve it; \`sheepdog results ${requestId} ${dbFlag(dbfile)}\` shows what arrived`;
}

/** The commands that pick a detached request up again. */
function howToResume(requestId: number, dbfile: string): string {
  return [
    `  serve it until every task has finished:  sheepdog serve ${dbFlag(dbfile)}`,
    `  see how it is doing:                     sheepdog status ${requestId} ${dbFlag(dbfile)}`,
    `  collect the results:                     sheepdog results ${requestId} ${dbFlag(dbfile)} --wait`,
  ].join('\n');
}

/** Asks on the terminal whether to cancel, detach or keep waiting. */
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

/** Options of {@link follow}. */
export interface FollowOptions {
  readonly requestId: number;
  readonly dbfile: string;
  /** What is going on, for the first line, e.g. `4 task(s) on local`. */
  readonly what: string;
  readonly mode: ProgressMode;
  readonly intervalMs?: number;
  /** Aborted when the user chooses to cancel the request. */
  readonly cancel: AbortController;
  /** Ends waiting early (e.g. when whatever serves the request in this process failed). */
  readonly stop?: AbortSignal;
}

/**
 * Shows a request's progress until every task has finished. Ctrl-C on a terminal asks whether to
 * cancel (aborts `cancel`), detach or wait on; without a terminal, and on SIGTERM or SIGHUP, it
 * detaches. Resolves with the final counts, or `undefined` after detaching (having printed how
 * to carry on) or when `stop` aborted.
 */
export async function follow(options: FollowOptions): Promise<StateCounts | undefined> {
  const { requestId, dbfile } = options;
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY);
  const progress = new Progress(requestId, {
    mode: options.mode,
    ...(options.intervalMs === undefined ? {} : { intervalMs: options.intervalMs }),
  });
  const detach = new AbortController();
  options.stop?.addEventListener('abort', () => detach.abort(), { once: true });
  let detached = false;
  let asking = false;
  const leave = (): void => {
    detached = true;
    detach.abort();
  };
  const onInterrupt = (): void => {
    if (!interactive || asking) {
      leave();
      return;
    }
    asking = true;
    progress.pause();
    void ask(
      `\n[sheepdog] request ${requestId} is still running. [c]ancel it, [d]etach and leave it, or [w]ait on? `,
    ).then((choice) => {
      asking = false;
      progress.resume();
      if (choice === 'cancel') {
        process.stderr.write(`[sheepdog] cancelling request ${requestId}…\n`);
        options.cancel.abort(new Error('cancelled with Ctrl-C'));
      } else if (choice === 'detach') {
        leave();
      }
    });
  };
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', leave);
  process.on('SIGHUP', leave);
  // Announced only now that the handlers are armed: a Ctrl-C right after the line must ask, not
  // kill the process.
  if (options.mode !== 'none') {
    process.stderr.write(
      `[sheepdog] request ${requestId}: ${options.what}, results in ${dbfile}; Ctrl-C to ${interactive ? 'cancel or detach' : 'detach'}\n`,
    );
  }
  let final: StateCounts | undefined;
  try {
    final = await watch(requestId, dbfile, progress, { signal: detach.signal });
  } finally {
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', leave);
    process.off('SIGHUP', leave);
  }
  if (final === undefined) {
    progress.pause();
    if (detached) {
      process.stderr.write(
        `[sheepdog] detached from request ${requestId}; what has finished is kept in ${dbfile}. Tasks that were running may be lost, and the ones still waiting did not start. To carry on:\n${howToResume(requestId, dbfile)}\n`,
      );
    }
    return undefined;
  }
  progress.stop(final);
  return final;
}
