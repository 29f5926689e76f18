import { PluginTimeoutError } from '../errors.js';
import type { ManagedPlugin } from './managed-plugin.js';

export interface HealthOptions {
  /** Heartbeat interval, ms (default 30 000; 0 turns the heartbeat off). */
  intervalMs?: number;
  /** How long a plugin may take to answer `checkHealth()`, or run one operation, before it counts as unresponsive (default 2000). */
  timeoutMs?: number;
}

/** What `host.health(id)` found. */
export interface HealthReport {
  pluginId: string;
  status: 'healthy' | 'unhealthy' | 'unresponsive' | 'down';
  /** What `checkHealth()` returned, or why the plugin is down. */
  detail?: unknown;
  /** What the plugin was doing, and for how long. */
  inFlight: { operation: string; forMs: number }[];
  at: number;
}

/**
 * Checks one plugin. A plugin with a `checkHealth()` hook is asked (with a deadline that does
 * not end it: a slow answer is `unresponsive`, `false` or `{ healthy: false }` is
 * `unhealthy`); for the others, an operation running past the deadline is `unresponsive`.
 * Plugins without the hook cost nothing to check.
 *
 * @example
 * const report = await checkPluginHealth(plugin, { timeoutMs: 1000 });
 */
export async function checkPluginHealth(plugin: ManagedPlugin, options: HealthOptions = {}): Promise<HealthReport> {
  const timeoutMs = options.timeoutMs ?? 2000;
  const at = Date.now();
  const report = (status: HealthReport['status'], detail?: unknown): HealthReport => ({
    pluginId: plugin.id,
    status,
    detail,
    inFlight: plugin.running(),
    at,
  });
  if (plugin.state !== 'started' || !plugin.runtime) return report('down', plugin.error?.message ?? plugin.state);
  if (!plugin.hasHook('checkHealth')) {
    return report(plugin.running(at).some((f) => f.forMs > timeoutMs) ? 'unresponsive' : 'healthy');
  }
  try {
    const detail = await plugin.runtime.hook('checkHealth', undefined, { deadlineMs: timeoutMs, crashOnTimeout: false });
    const unhealthy = detail === false || (detail !== null && typeof detail === 'object' && (detail as { healthy?: unknown }).healthy === false);
    return report(unhealthy ? 'unhealthy' : 'healthy', detail);
  } catch (e) {
    return report(e instanceof PluginTimeoutError ? 'unresponsive' : 'unhealthy', (e as Error).message);
  }
}
