import { join } from 'node:path';
import { pino } from 'pino';
import { createPluginHost, type PluginHost } from '../lib/index.js';

/**
 * A host as an application would build it, minus log output: a silent pino logger and a
 * private data folder (its compiled-module cache starts empty).
 *
 * @example
 * const host = await benchHost(tmp); await host.load(dir);
 */
export function benchHost(tmp: string): Promise<PluginHost> {
  return createPluginHost({ logger: pino({ level: 'silent' }), dataDir: join(tmp, 'data') });
}
