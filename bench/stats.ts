// Summaries of latency samples and the ratios the rows report. Percentiles use
// the nearest-rank method on the sorted samples, so p50 and p99 are always
// values that were actually observed.

export interface Summary {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** Nearest-rank percentile (`p` in [0, 100]) of samples sorted ascending; NaN when there are none. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((Math.min(Math.max(p, 0), 100) / 100) * sorted.length);
  return sorted[Math.max(rank, 1) - 1] as number;
}

export function summarize(samples: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const s of sorted) sum += s;
  return {
    count: sorted.length,
    min: sorted.length ? (sorted[0] as number) : Number.NaN,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length ? (sorted[sorted.length - 1] as number) : Number.NaN,
  };
}

/** `ours / raw`; NaN when the baseline is zero or missing, so a broken baseline never passes. */
export function ratio(ours: number, raw: number): number {
  return raw > 0 && Number.isFinite(raw) ? ours / raw : Number.NaN;
}

/** The middle value (the mean of the two middle ones for an even count); NaN when there are none. */
export function median(values: ArrayLike<number>): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Each block's p50 and p99, and their medians over the blocks: one slow block moves neither. */
export interface BlockSummary {
  readonly p50s: readonly number[];
  readonly p99s: readonly number[];
  readonly p50: number;
  readonly p99: number;
  /** All samples pooled. */
  readonly pooled: Summary;
}

export function summarizeBlocks(blocks: readonly (readonly number[])[]): BlockSummary {
  const each = blocks.map((b) => summarize(b));
  const p50s = each.map((s) => s.p50);
  const p99s = each.map((s) => s.p99);
  return { p50s, p99s, p50: median(p50s), p99: median(p99s), pooled: summarize(blocks.flat()) };
}
