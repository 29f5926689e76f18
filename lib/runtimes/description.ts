import { PluginLoadError } from '../errors.js';
import type { PluginDescription } from './protocol.js';

/**
 * A plugin's self-description is plugin output: its shape is checked before the host relies on
 * it, and a clean copy returned.
 *
 * @example
 * checkDescription({ exposed: ['upper'], handlers: [], hooks: [] }, 'text'); // the same, copied
 */
export function checkDescription(value: unknown, pluginId: string): PluginDescription {
  const d = value as PluginDescription;
  const strings = (a: unknown) => Array.isArray(a) && a.every((x) => typeof x === 'string');
  const ok =
    d !== null &&
    typeof d === 'object' &&
    strings(d.exposed) &&
    strings(d.hooks) &&
    Array.isArray(d.handlers) &&
    d.handlers.every((h) => h !== null && typeof h === 'object' && typeof h.pattern === 'string' && typeof h.method === 'string') &&
    (d.declaredId === undefined || typeof d.declaredId === 'string');
  if (!ok) throw new PluginLoadError(`Plugin '${pluginId}' described itself in an unexpected shape; was the SDK tampered with?`, { pluginId });
  const description: PluginDescription = {
    exposed: [...d.exposed],
    handlers: d.handlers.map((h) => ({ pattern: h.pattern, method: h.method })),
    hooks: [...d.hooks],
  };
  if (d.declaredId !== undefined) description.declaredId = d.declaredId;
  return description;
}
