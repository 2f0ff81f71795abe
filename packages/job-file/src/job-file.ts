import { workerBundle } from './bundle.js';
import { JobFileError } from './error.js';

/**
 * One scheduler option: a ready-made line, written as given (`'-l h_rt=1:00:00'`), or a list of
 * tokens that is quoted where needed (`['-o', '/home/me/my results/']`).
 */
export type SchedulerOption = string | readonly string[];

/** What {@link jobFile} renders. */
export interface JobFileOptions {
  /** The server's base URL, as the workers reach it. */
  url: string;
  /** The request's secret token; the file embeds it, so the file must be private (mode 0600). */
  token: string;
  /** The request the tasks belong to. */
  requestId: number;
  /** Run job indices 1..nArgs (array range `1-nArgs`). Give this or `indices`. */
  nArgs?: number;
  /** Run only these job indices: array task k runs `indices[k - 1]` (array range `1-length`). */
  indices?: readonly number[];
  /**
   * The absolute path of `node` on the cluster nodes: the `#!` line, and Grid Engine's `-S`.
   * @default '/usr/bin/node'
   */
  shell?: string;
  /** Scheduler option lines, written after the ones the file adds itself. @default [] */
  options?: readonly SchedulerOption[];
  /**
   * The prefix of directive lines, which must be a JavaScript comment: Grid Engine reads it when
   * submitted with `qsub -C '//$'`, and the file then carries `-S <shell>` and `-t 1-N` too. With
   * `null` (SLURM, whose options go on the `sbatch` command line) no directive lines are written,
   * and `options` are listed in a plain comment for the reader.
   * @default '//$'
   */
  directivePrefix?: string | null;
  /** The job name (Grid Engine `-N`). @default unset (the scheduler names it after the file) */
  name?: string;
  /** Cap each task's JavaScript heap (MiB); see `@sheepdog/worker`'s `maxHeapMb`. @default unset */
  maxHeapMb?: number;
  /** HTTP retries after the first try; see `@sheepdog/worker`. @default unset (the worker's 11) */
  httpRetries?: number;
  /**
   * Lease mode: every array task leases chunks of the request's tasks until none remain, so
   * `nArgs` is the number of workers (array tasks), not of tasks. The settings go to the
   * worker's `main({ lease })` as given; `{}` takes the worker's defaults.
   * @default unset (array task k runs job index k)
   */
  lease?: {
    readonly leaseMs?: number;
    readonly targetMs?: number;
    readonly maxChunk?: number;
    readonly lingerMs?: number;
  };
}

// Line terminators in JavaScript: any of them would end a `//` comment and turn the rest into code.
const LINE_BREAK = /[\n\r\u2028\u2029]/;

function bad(message: string): JobFileError {
  return new JobFileError('BAD_OPTIONS', message);
}

function checkText(value: string, what: string): void {
  if (LINE_BREAK.test(value)) {
    throw bad(
      `${what} contains a line break, which would end the comment line it is written on: ${JSON.stringify(value)}.`,
    );
  }
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}

/**
 * Formats one option for a Grid Engine directive line. Grid Engine splits a directive line at
 * blanks outside quotes and then deletes every `"` and `'` character, with no escape; so a token
 * with blanks is double-quoted, and a token with a quote character cannot be written at all.
 *
 * @throws {JobFileError} `UNREPRESENTABLE_OPTION` for a token holding a quote; `BAD_OPTIONS` for a
 *   line break.
 */
export function formatOption(option: SchedulerOption): string {
  if (typeof option === 'string') {
    checkText(option, 'a scheduler option');
    return option;
  }
  return option
    .map((token) => {
      checkText(token, 'a scheduler option');
      if (/["']/.test(token)) {
        throw new JobFileError(
          'UNREPRESENTABLE_OPTION',
          `the option value ${JSON.stringify(token)} holds a quote character, which Grid Engine deletes from directive lines. Rename the path, or pass this option on the qsub command line.`,
        );
      }
      return token === '' || /\s/.test(token) ? `"${token}"` : token;
    })
    .join(' ');
}

/**
 * The options a Grid Engine job file carries itself: `-S <shell>` (else Grid Engine runs the file
 * with the queue's shell and ignores `#!`), the array range `-t 1-<tasks>`, and `-N <name>`.
 */
export function gridEngineOptions(settings: {
  shell: string;
  tasks: number;
  name?: string;
}): string[][] {
  const options = [
    ['-S', settings.shell],
    ['-t', `1-${settings.tasks}`],
  ];
  if (settings.name !== undefined) options.push(['-N', settings.name]);
  return options;
}

/** An option as a reader would type it, for the comment listing command-line options. */
function describeOption(option: SchedulerOption): string {
  if (typeof option === 'string') return formatOption(option);
  return option
    .map((token) => {
      checkText(token, 'a scheduler option');
      return token === '' || /[\s"'\\$`]/.test(token) ? JSON.stringify(token) : token;
    })
    .join(' ');
}

function firstToken(option: SchedulerOption): string | undefined {
  return typeof option === 'string' ? option.trim().split(/\s+/)[0] : option[0];
}

/**
 * Renders the job script for a request: the `#!` line, scheduler option lines (as `//$` comments
 * for Grid Engine), a note that the file holds a secret, the worker bundle, and the
 * `SheepdogWorker.main({...})` call with every value embedded as a JSON literal.
 *
 * Write the result with owner-only permissions (mode 0600): it holds the request's token.
 *
 * @throws {JobFileError} `BAD_OPTIONS`, `UNREPRESENTABLE_OPTION` or `BUNDLE_NOT_FOUND`.
 */
export function jobFile(options: JobFileOptions): string {
  const { url, token, requestId, nArgs, indices, name, maxHeapMb, httpRetries, lease } = options;
  const shell = options.shell ?? '/usr/bin/node';
  const prefix = options.directivePrefix === undefined ? '//$' : options.directivePrefix;
  const extra = options.options ?? [];

  let parsedUrl: URL | undefined;
  try {
    parsedUrl = new URL(url);
  } catch {}
  if (parsedUrl?.protocol !== 'http:' && parsedUrl?.protocol !== 'https:') {
    throw bad(
      `url must be an http: or https: URL the workers can reach, got ${JSON.stringify(url)}.`,
    );
  }
  // The worker sends it as a header value; the server's tokens are base64url.
  if (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token)) {
    throw bad(
      'token must be a non-empty string of printable ASCII (it is sent as an HTTP header).',
    );
  }
  if (!isPositiveInteger(requestId)) {
    throw bad(`requestId must be a positive integer, got ${requestId}.`);
  }
  if ((nArgs === undefined) === (indices === undefined)) {
    throw bad('give exactly one of nArgs (run tasks 1..nArgs) and indices (run only these).');
  }
  if (nArgs !== undefined && !isPositiveInteger(nArgs)) {
    throw bad(`nArgs must be a positive integer, got ${nArgs}; an empty request needs no job.`);
  }
  if (indices !== undefined && (indices.length === 0 || !indices.every(isPositiveInteger))) {
    throw bad('indices must be a non-empty list of positive integers (job indices).');
  }
  if (!shell.startsWith('/') || /\s/.test(shell)) {
    throw bad(
      `shell must be an absolute path without blanks (it is the #! line), got ${JSON.stringify(shell)}; use a symlink if node lives under such a path.`,
    );
  }
  if (prefix !== null && (!prefix.startsWith('//') || /\s/.test(prefix))) {
    throw bad(
      `directivePrefix must be a JavaScript line comment without blanks, like '//$' (submit with qsub -C '${prefix}'), got ${JSON.stringify(prefix)}; '#$' lines are not valid JavaScript.`,
    );
  }
  if (maxHeapMb !== undefined && !isPositiveInteger(maxHeapMb)) {
    throw bad(`maxHeapMb must be a positive integer (MiB), got ${maxHeapMb}.`);
  }
  if (httpRetries !== undefined && !(Number.isSafeInteger(httpRetries) && httpRetries >= 0)) {
    throw bad(`httpRetries must be an integer >= 0, got ${httpRetries}.`);
  }
  if (lease !== undefined) {
    if (indices !== undefined) {
      throw bad(
        'lease mode takes nArgs (the number of workers), not indices: workers lease any task.',
      );
    }
    for (const [key, value] of Object.entries(lease)) {
      if (value !== undefined && !isPositiveInteger(value)) {
        throw bad(`lease.${key} must be a positive integer, got ${value}.`);
      }
    }
  }
  for (const option of extra) {
    const flag = firstToken(option);
    if (flag === '-t' || flag === '-S') {
      throw bad(
        `the option ${flag} is set by the job file itself (from ${flag === '-t' ? 'nArgs/indices' : 'shell'}); remove it from the options.`,
      );
    }
  }

  const tasks = indices?.length ?? (nArgs as number);
  const lines = [`#!${shell}`];
  if (prefix !== null) {
    for (const option of [...gridEngineOptions({ shell, tasks, name }), ...extra]) {
      lines.push(`${prefix} ${formatOption(option)}`);
    }
  } else if (extra.length > 0) {
    lines.push('// Scheduler options (given on the command line, not read from this file):');
    for (const option of extra) lines.push(`//   ${describeOption(option)}`);
  }
  lines.push(
    lease === undefined
      ? `// Sheepdog request ${requestId}, ${tasks} task${tasks === 1 ? '' : 's'}.`
      : `// Sheepdog request ${requestId}, ${tasks} lease-mode worker${tasks === 1 ? '' : 's'}.`,
    "// This file holds the request's secret token: keep it private (owner-only, mode 0600).",
  );

  const call: Record<string, unknown> = { url, token, requestId };
  if (indices !== undefined) call.indices = [...indices];
  if (maxHeapMb !== undefined) call.maxHeapMb = maxHeapMb;
  if (httpRetries !== undefined) call.httpRetries = httpRetries;
  if (lease !== undefined) call.lease = { ...lease };
  // JSON is valid JavaScript; U+2028/U+2029 are escaped anyway so that no tool reading the file
  // line by line sees the call broken in two.
  const literal = JSON.stringify(call)
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
  const bundle = workerBundle();
  return `${lines.join('\n')}\n${bundle}${bundle.endsWith('\n') ? '' : '\n'}SheepdogWorker.main(${literal});\n`;
}
