import type { Thresholds } from './types.js';

/**
 * The seed's thresholds: memory at 80 % of the plugin's limit, CPU at 70 % of one core,
 * 5 errors a minute, a 1000 ms p90 response time.
 *
 * @example
 * new Governor({}, controller).watch('notes', DEFAULT_THRESHOLDS, 50);
 */
export const DEFAULT_THRESHOLDS: Thresholds = Object.freeze({
  memoryPercent: 80,
  cpuPercent: 70,
  errorsPerMinute: 5,
  responseTimeMs: 1000,
});

/**
 * The thresholds one plugin is held to: its manifest's overrides win over the host's
 * defaults, which win over {@link DEFAULT_THRESHOLDS}. Keys set to `undefined` (or to a
 * value that is not a finite number) do not override.
 *
 * @example
 * resolveThresholds({ cpuPercent: 60 }, { cpuPercent: 90, responseTimeMs: 250 });
 * // → { memoryPercent: 80, cpuPercent: 90, errorsPerMinute: 5, responseTimeMs: 250 }
 */
export function resolveThresholds(hostDefaults?: Partial<Thresholds>, manifestOverrides?: Partial<Thresholds>): Thresholds {
  const out: Thresholds = { ...DEFAULT_THRESHOLDS };
  for (const layer of [hostDefaults, manifestOverrides]) {
    for (const key of Object.keys(DEFAULT_THRESHOLDS) as (keyof Thresholds)[]) {
      const value = layer?.[key];
      if (typeof value === 'number' && Number.isFinite(value)) out[key] = value;
    }
  }
  return out;
}
