import { judge, type BenchmarkResult } from './benchmark-result.js';
import type { Fleet } from './fleet.js';
import { settle } from './settle.js';
import { median } from './stats.js';

const MB = 1024 * 1024;

/** One reading: process RSS before and after adding `n` sandboxes to a fleet. */
export interface RssSample {
  kind: Fleet['kind'];
  n: number;
  rssBeforeMB: number;
  rssAfterMB: number;
  perSandboxMB: number;
}

/**
 * Adds `n` idle sandboxes to `fleet` and returns the RSS growth per sandbox, each reading
 * taken after a full GC. Runs inside the idle child (needs `--expose-gc`).
 *
 * @example
 * const sample = await measureRss(fleet, 50); sample.perSandboxMB;
 */
export async function measureRss(fleet: Fleet, n: number): Promise<RssSample> {
  await settle();
  const before = process.memoryUsage().rss;
  await fleet.add(n);
  await settle();
  const after = process.memoryUsage().rss;
  return { kind: fleet.kind, n, rssBeforeMB: before / MB, rssAfterMB: after / MB, perSandboxMB: (after - before) / MB / n };
}

/**
 * RSS per idle JS plugin against RSS per bare isolate, median over the rounds.
 *
 * @example
 * idleMemoryResult(samples).ours; // MB per plugin
 */
export function idleMemoryResult(samples: RssSample[]): BenchmarkResult {
  const of = (kind: Fleet['kind']) => samples.filter((s) => s.kind === kind);
  const n = samples[0]?.n ?? 0;
  return judge({
    id: 'idle-memory',
    title: `RSS per idle JS plugin (N=${n}, loaded and started)`,
    unit: 'MB',
    metric: 'median over rounds of RSS delta / N',
    ours: median(of('ours').map((s) => s.perSandboxMB)),
    raw: median(of('raw').map((s) => s.perSandboxMB)),
    target: { on: 'ours', max: 3, text: '≤ 3 MB per plugin' },
    details: {
      method: 'child processes (--no-node-snapshot --expose-gc), one per kind per round, run side by side; one warm-up sandbox before the first reading; gc() ×3 before each reading',
      ours: of('ours'),
      raw: of('raw'),
    },
  });
}
