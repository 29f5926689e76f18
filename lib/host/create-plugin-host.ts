import { createHostContainer } from '../di/container.js';
import type { HostOptions } from './host-options.js';
import { PluginHost } from './plugin-host.js';

/**
 * Builds a plugin host with its own DI container.
 *
 * @example
 * import 'reflect-metadata';
 * import { createPluginHost } from '@logomesh/plugin-host';
 * const host = await createPluginHost({ pluginDirs: ['./plugins'], dataDir: './.logomesh' });
 * const report = await host.loadAll();
 * console.log(await host.call('text-processor', 'upper', 'hi')); // 'HI'
 */
export async function createPluginHost(options: HostOptions = {}): Promise<PluginHost> {
  return createHostContainer(options).resolve(PluginHost);
}
