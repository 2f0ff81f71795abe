import type { BenchPlan } from '../options.js';
import type { Check, Figure } from '../report.js';

/** What a section gets to work with. */
export interface SectionContext {
  readonly plan: BenchPlan;
  /** A private temporary folder, removed after the bench. */
  readonly workDir: string;
  /** Progress for the operator; goes to stderr so that stdout is only the table. */
  log(message: string): void;
}

/** What a section returns. */
export interface SectionOutput {
  figures: Figure[];
  checks: Check[];
  /** The sizes and run counts it used, for the JSON. */
  settings: Record<string, unknown>;
  /** Set when the section could not run here, and why. */
  skipped?: string;
}

/** One section of the bench. */
export type Section = (context: SectionContext) => Promise<SectionOutput>;

/** `10^6` for 1,000,000 and `12,345` otherwise: sizes as the issue writes them. */
export function sizeLabel(n: number): string {
  const exponent = Math.log10(n);
  return Number.isInteger(exponent) && exponent >= 3 ? `10^${exponent}` : n.toLocaleString('en-US');
}
