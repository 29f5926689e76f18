import { join } from 'node:path';
import { pino } from 'pino';
import { createPluginHost, type HostOptions, type PluginHost } from '../lib/index.js';

/**
 * A host as an application would build it, minus log output: a silent pino logger and a
 * private data folder (its compiled-module cache starts empty). `options` are added on top
 * (e.g. `{ monitoring: { enabled: false } }`); everything else stays at its default.
 *
 * @example
 * const host = await benchHost(tmp); await host.load(dir);
 */
export function benchHost(tmp: string, options: HostOptions = {}): Promise<PluginHost> {
  return createPluginHost({ logger: pino({ level: 'silent' }), dataDir: join(tmp, 'data'), ...options });
}
