import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** The bench's sections, in the order they run. */
export const SECTION_NAMES = ['storage', 'ingest', 'completion', 'local', 'gridengine'] as const;

/** One section of the bench. */
export type SectionName = (typeof SECTION_NAMES)[number];

/** Sizes and run counts of every section; {@link planFor} picks them from the CLI flags. */
export interface BenchPlan {
  /** Sections to run, in bench order. */
  readonly sections: readonly SectionName[];
  /** Smoke-run sizes (`--quick`): the figures say nothing about the targets. */
  readonly quick: boolean;
  /** Where latest.json and latest.md go. */
  readonly outDir: string;
  readonly storage: {
    readonly runs: number;
    /** Task counts of the `newRequest` cases. */
    readonly newRequestSizes: readonly number[];
    /** Task count of the request `getTasksWithResults` reads back. */
    readonly readSize: number;
    /** How many results are stored one at a time. */
    readonly storeSize: number;
  };
  readonly ingest: {
    readonly runs: number;
    /** Concurrent workers of each case. */
    readonly concurrencies: readonly number[];
    /** Tasks fetched and reported per run. */
    readonly tasks: number;
  };
  readonly completion: {
    readonly runs: number;
    /** Task counts of the requests whose completion is timed. */
    readonly sizes: readonly number[];
  };
  readonly local: {
    readonly runs: number;
    /** Task counts of the end-to-end maps. */
    readonly sizes: readonly number[];
    /** Spawns of the job file (and of `node -e 0`) behind the per-process overhead. */
    readonly overheadSamples: number;
  };
  readonly gridengine: {
    readonly runs: number;
    /** Tasks of the Sheepdog map and of the raw array. */
    readonly tasks: number;
    /** Tasks of the one large map (lease mode, 100 workers); 0 skips it. */
    readonly largeTasks: number;
  };
}

const DEFAULT_OUT_DIR = fileURLToPath(new URL('../results', import.meta.url));

const USAGE = `Usage: pnpm bench [-- options]   (or: node dist/cli.js [options] in apps/bench)

  --only a,b        sections to run: ${SECTION_NAMES.join(', ')} (default: all)
  --quick           small sizes, one run each: a smoke run, not a measurement
  --runs N          runs per figure in every section (default: 5; ingest 4; local, gridengine 3)
  --local-sizes L   task counts of the local end-to-end maps (default: 1000,10000)
  --out DIR         where latest.json and latest.md go (default: apps/bench/results)
  --help            this text`;

/** A bad flag: the CLI prints the message and the usage, and exits with 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

function positiveInteger(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`${flag} needs a positive integer, got ${JSON.stringify(text)}`);
  }
  return n;
}

/** The usage text printed by `--help` and after a bad flag. */
export function usage(): string {
  return USAGE;
}

/**
 * Turns CLI flags into the bench plan. Sizes are chosen so that a default run takes well under
 * ten minutes on the project's 2-core machines without Grid Engine (see the README).
 *
 * @returns the plan, or `undefined` when `--help` was asked for
 * @throws {@link UsageError} for an unknown flag, section or bad number
 */
export function planFor(argv: readonly string[]): BenchPlan | undefined {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (error) {
    throw new UsageError((error as Error).message, { cause: error });
  }
  if (values.help) return undefined;
  const sections =
    values.only === undefined
      ? [...SECTION_NAMES]
      : values.only.split(',').map((name) => {
          const trimmed = name.trim();
          if (!(SECTION_NAMES as readonly string[]).includes(trimmed)) {
            throw new UsageError(
              `--only: unknown section ${JSON.stringify(trimmed)}; use ${SECTION_NAMES.join(', ')}`,
            );
          }
          return trimmed as SectionName;
        });
  const quick = values.quick ?? false;
  const runs = values.runs === undefined ? undefined : positiveInteger('--runs', values.runs);
  const localSizes =
    values['local-sizes'] === undefined
      ? undefined
      : values['local-sizes'].split(',').map((s) => positiveInteger('--local-sizes', s.trim()));
  const runsOr = (fallback: number): number => runs ?? (quick ? 1 : fallback);
  return {
    sections: SECTION_NAMES.filter((name) => sections.includes(name)),
    quick,
    outDir: values.out ?? DEFAULT_OUT_DIR,
    storage: {
      runs: runsOr(5),
      newRequestSizes: quick ? [1_000, 10_000] : [10_000, 100_000, 1_000_000],
      readSize: quick ? 1_000 : 100_000,
      storeSize: quick ? 1_000 : 10_000,
    },
    ingest: {
      // An even count: each server goes first in half of the runs.
      runs: runsOr(4),
      concurrencies: quick ? [1, 8] : [1, 8, 32, 128],
      tasks: quick ? 200 : 4_000,
    },
    completion: { runs: runsOr(5), sizes: quick ? [10] : [10, 10_000] },
    local: {
      runs: runsOr(3),
      sizes: localSizes ?? (quick ? [10] : [1_000, 10_000]),
      overheadSamples: quick ? 3 : 20,
    },
    gridengine: { runs: runsOr(3), tasks: quick ? 10 : 200, largeTasks: quick ? 0 : 100_000 },
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean' },
      runs: { type: 'string' },
      'local-sizes': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
}
