import type { BenchPlan, SectionName } from './options.js';
import { type Summary, summarise } from './stats.js';

/** One measured figure: the median of its runs, with the range. */
export interface Figure extends Summary {
  /** Stable id, e.g. `ingest.c32.ratio`; targets refer to figures by id. */
  id: string;
  /** What was measured, for the table. */
  label: string;
  /** `s`, `ms`, `MB`, `tasks/s`, `×` (a ratio against a baseline of the same run), ... */
  unit: string;
  /** What the original Python Sheepdog did on the same machines (issue 7), for context. */
  original?: string;
  /** A diagnostic figure kept in the JSON but left out of the table, to keep it readable. */
  jsonOnly?: true;
}

/** A figure from its per-run samples. */
export function figure(
  id: string,
  label: string,
  unit: string,
  samples: readonly number[],
  original?: string,
): Figure {
  return {
    id,
    label,
    unit,
    ...summarise(samples),
    ...(original === undefined ? {} : { original }),
  };
}

/** A diagnostic figure: in the JSON, not in the table. */
export function diagnostic(
  id: string,
  label: string,
  unit: string,
  samples: readonly number[],
): Figure {
  return { ...figure(id, label, unit, samples), jsonOnly: true };
}

/** A correctness check made after a run, e.g. that no result was lost or duplicated. */
export interface Check {
  /** What was checked. */
  what: string;
  ok: boolean;
  /** What was found, when it is not ok. */
  detail?: string;
}

/** What one section produced. */
export interface SectionResult {
  name: SectionName;
  /** `skipped` when its preconditions are missing (no cluster), `failed` when it threw. */
  status: 'ok' | 'skipped' | 'failed';
  /** Why it was skipped or how it failed. */
  reason?: string;
  /** Wall time of the whole section, setup included. */
  durationS: number;
  /** The sizes and run counts it used. */
  settings: Record<string, unknown>;
  figures: Figure[];
  checks: Check[];
}

/** A target of issue 7 next to the figure that measures it. */
export interface TargetResult {
  id: string;
  /** The target, in the issue's words. */
  description: string;
  /** The bound, e.g. `≤ 3 s`. */
  goal: string;
  /** The figure it is judged on; absent when nothing in the bench measures it yet. */
  figureId?: string;
  /** The figure's median, or `null` when it was not measured in this run. */
  measured: number | null;
  unit: string;
  /** `null` when not measured. */
  met: boolean | null;
  /** Why it was not measured, or a caveat. */
  note?: string;
}

/** Where the bench ran. */
export interface MachineInfo {
  node: string;
  platform: string;
  arch: string;
  cpus: number;
  cpuModel: string;
  totalMemoryMb: number;
  /** 1-minute load average when the bench started and when it ended: other work skews figures. */
  loadAverage: { start: number; end: number };
}

/** The JSON document written to `latest.json`. */
export interface BenchResults {
  /** Bumped when the shape changes. */
  schema: 1;
  startedAt: string;
  finishedAt: string;
  durationS: number;
  machine: MachineInfo;
  plan: BenchPlan;
  sections: SectionResult[];
  targets: TargetResult[];
}

const TITLES: Record<SectionName, string> = {
  storage: '1. Storage',
  ingest: '2. Server ingest (worker protocol v1 over loopback)',
  completion: '3. Completion latency',
  local: '4. Local backend end to end',
  gridengine: '5. Grid Engine end to end',
};

/** A number as the table shows it: three significant digits, thousands grouped. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(2);
}

function withUnit(value: number | null, unit: string): string {
  const text = formatNumber(value);
  if (text === '–') return text;
  return unit === '×' ? `${text}×` : `${text} ${unit}`;
}

function range(figure: Summary, unit: string): string {
  if (figure.samples.length < 2) return '–';
  return `${formatNumber(figure.min)}–${withUnit(figure.max, unit)}`;
}

function settingText(value: unknown): string {
  if (Array.isArray(value)) return value.map(settingText).join(', ');
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function metText(met: boolean | null): string {
  if (met === null) return 'not measured';
  return met ? '**met**' : '**not met**';
}

/** The markdown report: targets first, then one table per section. */
export function renderMarkdown(results: BenchResults): string {
  const { machine } = results;
  const lines: string[] = [
    `# Sheepdog bench, ${results.startedAt}`,
    '',
    `Node ${machine.node} on ${machine.platform}/${machine.arch}, ${machine.cpus} × ${machine.cpuModel}, ` +
      `${formatNumber(machine.totalMemoryMb)} MB RAM; load average ${machine.loadAverage.start.toFixed(2)} at start, ` +
      `${machine.loadAverage.end.toFixed(2)} at end; ${formatNumber(results.durationS)} s in all.` +
      (results.plan.quick ? ' **Quick run: smoke sizes, not a measurement.**' : ''),
    '',
    'Each figure is the median of its runs (min–max after it); a `×` figure is a ratio against a baseline measured in the same run.',
    '',
    '## Targets (issue 7)',
    '',
    '| Target | Goal | Measured (median) | Result |',
    '|---|---|---|---|',
  ];
  for (const t of results.targets) {
    const measured = t.measured === null ? (t.note ?? '–') : withUnit(t.measured, t.unit);
    lines.push(
      `| ${cell(t.description)} | ${cell(t.goal)} | ${cell(measured)} | ${metText(t.met)} |`,
    );
  }
  for (const section of results.sections) {
    lines.push('', `## ${TITLES[section.name]}`, '');
    if (section.status !== 'ok') {
      lines.push(
        `_${section.status === 'skipped' ? 'Skipped' : 'Failed'}: ${section.reason ?? ''}_`,
      );
      if (section.figures.length === 0) continue;
      lines.push('');
    }
    const settings = Object.entries(section.settings).map(
      ([key, value]) => `${key} ${settingText(value)}`,
    );
    if (settings.length > 0) lines.push(`Settings: ${settings.join('; ')}.`, '');
    const shown = section.figures.filter((f) => f.jsonOnly !== true);
    if (shown.length > 0) {
      lines.push(
        '| Figure | Median | Min–max | Runs | Original (Python) |',
        '|---|---|---|---|---|',
      );
      for (const f of shown) {
        lines.push(
          `| ${cell(f.label)} | ${withUnit(f.median, f.unit)} | ${range(f, f.unit)} | ${f.samples.length} | ${cell(f.original ?? '')} |`,
        );
      }
    }
    const failed = section.checks.filter((c) => !c.ok);
    if (section.checks.length > 0) {
      lines.push(
        '',
        `Checks: ${section.checks.length - failed.length}/${section.checks.length} passed.`,
      );
      for (const c of failed) lines.push(`- FAILED: ${c.what}${c.detail ? `: ${c.detail}` : ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
