import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { formatError } from 'sheepdog';
import { cancelCommand } from './commands/cancel.js';
import { errorsCommand } from './commands/errors.js';
import { resultsCommand } from './commands/results.js';
import { type RetryCommandOptions, retryCommand } from './commands/retry.js';
import { type RunOptions, runCommand } from './commands/run.js';
import { serveCommand } from './commands/serve.js';
import { statusCommand } from './commands/status.js';
import { addConfigOptions, CONFIG_FILES } from './internal/config.js';
import { runFailed } from './internal/failure.js';

const { version } = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
) as { version: string };

const EXIT_STATUSES = `
Exit status:
  0    every task succeeded (status, errors: the command worked)
  1    some tasks failed, were lost or cancelled, or the request could not run
  2    a usage or config problem; every problem is listed
  130  run was detached with Ctrl-C; the request can be served again
`;

const CONFIG_HELP = `
Config:
  Flags override SHEEPDOG_* variables (SHEEPDOG_HOST, SHEEPDOG_DB, SHEEPDOG_PORT, ...: the
  flag's name in capitals), which override the config file: --config <file>, SHEEPDOG_CONFIG,
  or the first of these in this directory:
    ${CONFIG_FILES.join(', ')}
  It holds the library's config keys, e.g. { "host": "head", "dbfile": "runs.sqlite" }.
`;

/** The `sheepdog` program; `main` runs it. Exported for tests that inspect help. */
export function buildProgram(setStatus: (status: number) => void): Command {
  const program = new Command('sheepdog')
    .description(
      'Run a function over many arguments on a batch cluster (Grid Engine over SSH) or local processes, and collect the results in order.',
    )
    .version(version, '-V, --version')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .addHelpText(
      'after',
      `
Examples:
  $ sheepdog run ./tasks.mjs#square --args numbers.json > squares.jsonl
  $ sheepdog run ./tasks.mjs#fit --args params.jsonl --host head.example.org --ge-opt "-l h_vmem=4G"
  $ sheepdog run ./tasks.mjs#fit --args params.jsonl --async
  $ sheepdog status
  $ sheepdog results 3 --wait
  $ sheepdog errors 3
  $ sheepdog retry 3
  $ sheepdog serve
  $ sheepdog cancel 3
${CONFIG_HELP}
${EXIT_STATUSES}`,
    );

  const run = program
    .command('run')
    .summary('map a module export over a file of arguments')
    .description(
      'Map an exported function over arguments, one task per argument. Prints one JSON line per task, in argument order: {"index":1,"status":"done","result":...}; status is done, failed, lost or cancelled. Progress goes to stderr.',
    )
    .argument(
      '<module#export>',
      'module file (or package) and export name; without #, the default export',
    )
    .option(
      '-a, --args <file>',
      'arguments: a .json array, a .jsonl file (one task per line), or - for stdin',
    )
    .option(
      '--args-format <format>',
      'json or jsonl (default: from the file extension; stdin: either)',
    )
    .option('-o, --out <file>', 'write the result lines to this file instead of stdout')
    .option(
      '--async',
      'submit, print the request id and return; a background process serves the request',
    )
    .option(
      '--progress <mode>',
      'auto (bar on a terminal, lines elsewhere), bar, lines or none',
      'auto',
    )
    .option('--progress-interval <time>', 'least time between two plain progress lines', '5s')
    .option('--no-check', 'do not import the module here first to check the export')
    .addHelpText(
      'after',
      `
An argument that is an array is the list of positional arguments; anything else is the
single argument. Values JSON cannot hold use tags, e.g. {"$bigint":"12"}, {"$undefined":true}
(see the README), in both arguments and results.

Ctrl-C asks whether to cancel the request or detach from it (without a terminal it detaches),
and prints how to pick it up again with sheepdog serve / results.

Examples:
  $ echo '[[1,2],[3,4]]' > pairs.json
  $ sheepdog run ./math.mjs#multiply --args pairs.json
  {"index":1,"status":"done","result":2}
  {"index":2,"status":"done","result":12}
  $ seq 1 100 | sheepdog run ./tasks.mjs#square --args - --out squares.jsonl
  $ sheepdog run ./tasks.mjs#simulate --args runs.jsonl --host head --ssh-user me --timeout 2h
  $ sheepdog run my-package#handler --args jobs.jsonl --async
${EXIT_STATUSES}`,
    )
    .action(async (target: string, opts: RunOptions) => setStatus(await runCommand(target, opts)));
  addConfigOptions(run);

  const status = program
    .command('status')
    .summary('list requests and their task counts')
    .description(
      'Show the requests in the database: id, created, function, backend, tasks, and how many are done, failed, lost, running, pending and cancelled. With an id, also why tasks were lost or cancelled.',
    )
    .argument('[id]', 'one request')
    .option('--json', 'print JSON instead of a table')
    .addHelpText(
      'after',
      `
Examples:
  $ sheepdog status
  $ sheepdog status 3 --db runs.sqlite
  $ sheepdog status --json | jq '.[] | select(.failed > 0) | .id'`,
    )
    .action(async (id: string | undefined, opts: Record<string, unknown>) =>
      setStatus(await statusCommand(id, opts)),
    );
  addConfigOptions(status, ['dbfile']);

  const results = program
    .command('results')
    .summary('print the results of a request as JSON lines')
    .description(
      'Print one JSON line per task of a request, in argument order, as run does: {"index":1,"status":"done","result":...}. Tasks that have not finished show as pending or running.',
    )
    .argument('<id>', 'the request id')
    .option('-o, --out <file>', 'write the lines to this file instead of stdout')
    .option('-w, --wait', 'wait until every task has finished (something must serve the request)')
    .option('--progress <mode>', 'with --wait: auto, bar, lines or none', 'auto')
    .addHelpText(
      'after',
      `
Examples:
  $ sheepdog results 3 > results.jsonl
  $ sheepdog results 3 --wait --out results.jsonl
${EXIT_STATUSES}`,
    )
    .action(async (id: string, opts: Record<string, unknown>) =>
      setStatus(await resultsCommand(id, opts)),
    );
  addConfigOptions(results, ['dbfile']);

  const errors = program
    .command('errors')
    .summary('show failed, lost and cancelled tasks with arguments and stacks')
    .description(
      'Show every task of a request that failed (with its arguments and the stack) or was lost or cancelled (with the reason).',
    )
    .argument('<id>', 'the request id')
    .option(
      '--json',
      'one JSON line per task: {"index","status","args","attempts","error"|"reason"}',
    )
    .addHelpText(
      'after',
      `
Examples:
  $ sheepdog errors 3
  $ sheepdog errors 3 --json | jq -r .error`,
    )
    .action(async (id: string, opts: Record<string, unknown>) =>
      setStatus(await errorsCommand(id, opts)),
    );
  addConfigOptions(errors, ['dbfile']);

  const serve = program
    .command('serve')
    .summary('serve every unfinished request in the database until it finishes')
    .description(
      "Serve every unfinished request in the database, each on the port its workers were given, until they have all finished: after a run was detached, killed or its machine restarted. Lost tasks are retried as the request's --retries says. Backends are reached with the settings stored with each request; SSH flags given here (key, known hosts, user) override them.",
    )
    .option('--progress <mode>', 'auto, bar, lines or none (several requests: lines)', 'auto')
    .addHelpText(
      'after',
      `
--port serves only the requests whose workers report to that port.

Examples:
  $ sheepdog serve
  $ sheepdog serve --db runs.sqlite --port 8765
  $ sheepdog serve --ssh-key ~/.ssh/cluster_ed25519
${EXIT_STATUSES}`,
    )
    .action(async (opts: Record<string, unknown>) => setStatus(await serveCommand(opts)));
  addConfigOptions(serve);

  const retry = program
    .command('retry')
    .summary('submit the failed and lost tasks of a request again')
    .description(
      "Submit the failed and lost tasks of a request again, as one new job, then serve and follow them like run and print every task's line.",
    )
    .argument('<id>', 'the request id')
    .option('--no-wait', 'submit and return; something must serve the request (sheepdog serve)')
    .option('-o, --out <file>', 'write the result lines to this file instead of stdout')
    .option('--progress <mode>', 'auto, bar, lines or none', 'auto')
    .addHelpText(
      'after',
      `
Examples:
  $ sheepdog retry 3
  $ sheepdog retry 3 --no-wait && sheepdog serve
${EXIT_STATUSES}`,
    )
    .action(async (id: string, opts: RetryCommandOptions) =>
      setStatus(await retryCommand(id, opts)),
    );
  addConfigOptions(retry);

  const cancel = program
    .command('cancel')
    .summary('cancel the open tasks of a request')
    .description(
      'Cancel a request from any process: stop its jobs (qdel, or killing local task processes) and mark its open tasks cancelled, so their later results are refused. What finished is kept.',
    )
    .argument('<id>', 'the request id')
    .addHelpText(
      'after',
      `
Examples:
  $ sheepdog cancel 3
  $ sheepdog cancel 3 --db runs.sqlite --ssh-key ~/.ssh/cluster_ed25519`,
    )
    .action(async (id: string, opts: Record<string, unknown>) =>
      setStatus(await cancelCommand(id, opts)),
    );
  addConfigOptions(cancel);

  return program;
}

/**
 * Runs the `sheepdog` command line and resolves with the exit status: 0 all done, 1 some tasks
 * failed or the request could not run, 2 usage or config problems, 130 detached.
 */
export async function main(argv: readonly string[]): Promise<number> {
  let status = 0;
  const program = buildProgram((s) => {
    status = s;
  });
  try {
    await program.parseAsync(argv as string[]);
    return status;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version end with exit code 0; anything else commander refuses is usage.
      return error.exitCode === 0 ? 0 : 2;
    }
    const failure = runFailed('sheepdog failed', error);
    process.stderr.write(`${formatError(failure)}\n`);
    return failure.exitStatus;
  }
}
