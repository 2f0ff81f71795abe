import type { Figure, TargetResult } from './report.js';

interface TargetSpec {
  readonly id: string;
  readonly description: string;
  readonly goal: string;
  readonly unit: string;
  /** The figure judged; absent for a target nothing measures yet. */
  readonly figureId?: string;
  readonly meets?: (median: number) => boolean;
  /** Why a target without a figure is not measured. */
  readonly why?: string;
}

/** The targets of issue 7, each tied to the figure that measures it. */
export const TARGETS: readonly TargetSpec[] = [
  {
    id: 'ingest-ratio-32',
    description: 'Server ingest, one task per request pair, 32 workers',
    goal: '≥ 0.70 × bare Hono + SQLite (same run)',
    unit: '×',
    figureId: 'ingest.c32.ratio',
    meets: (v) => v >= 0.7,
  },
  {
    id: 'ingest-leased',
    description: 'Ingest with leasing and batched results',
    goal: '≥ 50,000 tasks/s',
    unit: 'tasks/s',
    figureId: 'ingest.leased.c32.tasksPerS',
    meets: (v) => v >= 50_000,
  },
  {
    id: 'new-request-time',
    description: '`newRequest` with 10^6 trivial arguments: time',
    goal: '≤ 3 s',
    unit: 's',
    figureId: 'storage.newRequest.1000000.timeS',
    meets: (v) => v <= 3,
  },
  {
    id: 'new-request-rss',
    description: '`newRequest` with 10^6 trivial arguments: peak RSS',
    goal: '≤ 300 MB',
    unit: 'MB',
    figureId: 'storage.newRequest.1000000.peakRssMb',
    meets: (v) => v <= 300,
  },
  {
    id: 'completion-latency',
    description: 'Completion latency (last result posted → `map` resolves), 10 tasks',
    goal: '≤ 20 ms',
    unit: 'ms',
    figureId: 'completion.10.latencyMs',
    meets: (v) => v <= 20,
  },
  {
    id: 'worker-overhead',
    description: 'Per-process worker overhead above bare `node -e 0`',
    goal: '≤ 30 ms',
    unit: 'ms',
    figureId: 'local.overhead.ms',
    meets: (v) => v <= 30,
  },
  {
    id: 'gridengine-200',
    description: '200 trivial tasks on Grid Engine (`map` resolved / raw array gone)',
    goal: '≤ 1.25 × raw array (same run)',
    unit: '×',
    figureId: 'gridengine.200.ratio',
    meets: (v) => v <= 1.25,
  },
  {
    id: 'gridengine-100k',
    description: '100,000 trivial tasks through the test Grid Engine',
    goal: '< 120 s',
    unit: 's',
    figureId: 'gridengine.100000.timeS',
    meets: (v) => v < 120,
  },
];

/** Judges every target on the figures of this run; a target whose figure is absent is `null`. */
export function judgeTargets(figures: readonly Figure[]): TargetResult[] {
  const byId = new Map(figures.map((f) => [f.id, f]));
  return TARGETS.map((t) => {
    const figure = t.figureId === undefined ? undefined : byId.get(t.figureId);
    const base = {
      id: t.id,
      description: t.description,
      goal: t.goal,
      unit: t.unit,
      ...(t.figureId === undefined ? {} : { figureId: t.figureId }),
    };
    if (figure === undefined || t.meets === undefined || Number.isNaN(figure.median)) {
      return {
        ...base,
        measured: null,
        met: null,
        note: t.why ?? 'not measured in this run (section skipped, not selected, or quick sizes)',
      };
    }
    return { ...base, measured: figure.median, met: t.meets(figure.median) };
  });
}
