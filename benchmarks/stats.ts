/** Percentiles and mean of one sample set, in the unit the samples were taken in. */
export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * Exact order statistics (nearest-rank) over every sample: sample counts here are small
 * enough that an HDR histogram's bucketing would only lose precision.
 *
 * @example
 * summarize([3, 1, 2]).p50; // 2
 */
export function summarize(samples: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(samples).sort();
  const n = sorted.length;
  if (n === 0) return { n: 0, min: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
  const at = (q: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))];
  let sum = 0;
  for (const v of sorted) sum += v;
  return { n, min: sorted[0], p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[n - 1], mean: sum / n };
}

/** Every field of `s` multiplied by `factor` (n excepted), e.g. ns → µs. */
export function scale(s: Summary, factor: number): Summary {
  return {
    n: s.n,
    min: s.min * factor,
    p50: s.p50 * factor,
    p90: s.p90 * factor,
    p99: s.p99 * factor,
    max: s.max * factor,
    mean: s.mean * factor,
  };
}

/** The middle value (mean of the two middle ones for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
