import { InvalidArgumentError } from '../errors.js';
import type { ResourceLimits } from '../registry/manifest-schema.js';

/** Limits a running plugin takes without a new sandbox (the runtime and governor read them live). */
export const LIVE_LIMITS: readonly (keyof ResourceLimits)[] = ['executionTimeoutMs', 'maxCpuPercent'];

/**
 * Checks new limits against the host's maxima, then writes them into `limits` (the object the
 * plugin's runtime reads), saying which took effect and which wait for a new sandbox.
 *
 * @example
 * applyLimits(plugin.limits, { executionTimeoutMs: 500 }, HOST_MAXIMUM_LIMITS, 'x'); // { applied: ['executionTimeoutMs'], requiresRestart: [] }
 */
export function applyLimits(
  limits: Required<ResourceLimits>,
  changes: Partial<ResourceLimits>,
  max: Required<ResourceLimits>,
  pluginId: string,
): { applied: string[]; requiresRestart: string[] } {
  const entries = Object.entries(changes) as [keyof ResourceLimits, number][];
  for (const [key, value] of entries) {
    if (!(key in max) || !Number.isInteger(value) || value < 1 || value > max[key]) {
      throw new InvalidArgumentError(`${key} must be an integer between 1 and ${max[key] ?? '?'} on this host.`, { pluginId });
    }
  }
  const applied: string[] = [];
  const requiresRestart: string[] = [];
  for (const [key, value] of entries) {
    limits[key] = value;
    (LIVE_LIMITS.includes(key) ? applied : requiresRestart).push(key);
  }
  return { applied, requiresRestart };
}
