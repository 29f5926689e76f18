import { build, type Histogram } from 'hdr-histogram-js';
import type { MethodStats } from './types.js';

/** Histogram range, µs: 1 µs to 1 hour at 2 significant digits (~14 KB per method). */
const MAX_US = 3_600_000_000;
const MAX_MS = MAX_US / 1000;
/** Distinct method names kept per plugin; calls to further names count under {@link OTHER_METHOD}. */
export const MAX_METHODS_PER_PLUGIN = 256;
export const OTHER_METHOD = '(other)';

class MethodRecord {
  count = 0;
  errors = 0;
  maxMs = 0;
  readonly histogram: Histogram = build({ lowestDiscernibleValue: 1, highestTrackableValue: MAX_US, numberOfSignificantValueDigits: 2 });
  /** Stats as of `statsCount` calls, shared (frozen) by every snapshot taken since. */
  stats?: MethodStats;
  statsCount = 0;
}

/**
 * Calls into one plugin: totals, and per method a latency histogram (HdrHistogram, µs,
 * reported in ms). Statistics cover the whole life of the object, not a window.
 *
 * @example
 * const calls = new CallStats();
 * calls.record('greet', 1.7, true);
 * calls.snapshot().greet; // { count: 1, errors: 0, p50: 1.7, p90: 1.7, p99: 1.7, max: 1.7 }
 */
export class CallStats {
  private readonly methods = new Map<string, MethodRecord>();
  count = 0;
  errors = 0;
  /** Sum of call durations, ms. */
  totalMs = 0;

  /** Record one call. Allocation-free once `method` has been seen. */
  record(method: string, durationMs: number, ok: boolean): void {
    // NaN and negatives count as 0, beyond the histogram's range as its maximum.
    const ms = durationMs >= 0 ? (durationMs < MAX_MS ? durationMs : MAX_MS) : 0;
    const r = this.methods.get(method) ?? this.add(method);
    r.count++;
    r.histogram.recordValue(Math.round(ms * 1000));
    if (ms > r.maxMs) r.maxMs = ms;
    this.count++;
    this.totalMs += ms;
    if (!ok) {
      r.errors++;
      this.errors++;
    }
  }

  /** Per-method statistics now. Percentiles are recomputed only for methods called since the last snapshot. */
  snapshot(): Record<string, MethodStats> {
    const out: Record<string, MethodStats> = {};
    for (const [name, r] of this.methods) {
      if (r.stats === undefined || r.statsCount !== r.count) {
        // HDR reports a bucket's upper edge; never show a percentile above the true maximum.
        const pct = (p: number) => Math.min(r.histogram.getValueAtPercentile(p) / 1000, r.maxMs);
        r.stats = Object.freeze({ count: r.count, errors: r.errors, p50: pct(50), p90: pct(90), p99: pct(99), max: r.maxMs });
        r.statsCount = r.count;
      }
      out[name] = r.stats;
    }
    return out;
  }

  private add(method: string): MethodRecord {
    // Method names come from callers; cap them so one plugin cannot grow histograms without bound.
    if (this.methods.size >= MAX_METHODS_PER_PLUGIN) method = OTHER_METHOD;
    let r = this.methods.get(method);
    if (r === undefined) this.methods.set(method, (r = new MethodRecord()));
    return r;
  }
}
