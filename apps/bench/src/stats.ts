/** Median and range of a figure's samples (one sample per run). */
export interface Summary {
  /** The median sample; the figure the bench reports. */
  median: number;
  /** The smallest sample. */
  min: number;
  /** The largest sample. */
  max: number;
  /** Every sample, in the order the runs produced them. */
  samples: number[];
}

/**
 * The value below which `p` percent of `sorted` lies (nearest rank), so p50 and p99 of a run's
 * task latencies are real observed latencies, not interpolations.
 *
 * @param sorted - ascending values; not checked
 * @param p - percentile, 0..100
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

/** Median (mean of the middle two for an even count), min and max of `samples`. */
export function summarise(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, samples: [] };
  const mid = Math.floor(n / 2);
  const median =
    n % 2 === 1
      ? (sorted[mid] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted[n - 1] as number, samples: [...samples] };
}
