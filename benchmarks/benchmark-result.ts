/** A target: our absolute figure, our/raw ratio or our − raw difference must stay at or under `max`. */
export interface Target {
  on: 'ours' | 'ratio' | 'difference';
  max: number;
  /** As the table shows it, e.g. '≤ 1.5× raw'. */
  text: string;
}

/** What one benchmark reports: its headline figure for us and for the raw baseline, and the details behind it. */
export interface BenchmarkResult {
  id: string;
  title: string;
  /** Unit of `ours` and `raw`. */
  unit: string;
  /** Which statistic `ours` and `raw` are, e.g. 'p50'. */
  metric: string;
  ours: number;
  raw: number;
  /** ours / raw; null when raw is 0 (nothing to divide by). */
  ratio: number | null;
  target: Target;
  met: boolean;
  /** Full statistics, breakdowns and notes; written to results.json as they are. */
  details: Record<string, unknown>;
}

/**
 * Fills in the ratio and whether the target was met.
 *
 * @example
 * judge({ id: 'x', title: 'X', unit: 'ms', metric: 'p50', ours: 2, raw: 1, target: { on: 'ours', max: 5, text: '≤ 5 ms' }, details: {} }).met; // true
 */
export function judge(result: Omit<BenchmarkResult, 'ratio' | 'met'>): BenchmarkResult {
  const ratio = result.raw > 0 ? result.ours / result.raw : null;
  const measured = result.target.on === 'ours' ? result.ours : result.target.on === 'difference' ? result.ours - result.raw : ratio;
  const met = measured !== null && Number.isFinite(measured) && measured <= result.target.max;
  return { ...result, ratio, met };
}

/**
 * The same result, labelled with where its threads ran (`placement`), under an id ending in `-<suffix>`.
 *
 * @example
 * placed(result, 'pinned to CPU 0', 'pinned').id; // 'call-latency-pinned'
 */
export function placed(result: BenchmarkResult, placement: string, suffix: string): BenchmarkResult {
  return { ...result, id: `${result.id}-${suffix}`, title: `${result.title} [${placement}]`, details: { placement, ...result.details } };
}
