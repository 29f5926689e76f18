import { pino } from 'pino';
import { container as rootContainer, Lifecycle, type DependencyContainer } from 'tsyringe';
import { EventBus, IEventBus } from '../events/event-bus.js';
import { ApiGateway, IApiGateway } from '../gateway/api-gateway.js';
import type { HostOptions } from '../host/host-options.js';
import { loadTrustedKeys } from '../registry/integrity.js';
import { IPluginRegistry, PluginRegistry } from '../registry/plugin-registry.js';
import { IResourceMonitor, ResourceMonitor } from '../monitor/resource-monitor.js';
import { IRuntimeFactory } from '../runtimes/runtime.js';
import { RuntimeFactory } from '../runtimes/runtime-factory.js';
import { IHostOptions, ILogger } from './tokens.js';

const scoped = { lifecycle: Lifecycle.ContainerScoped } as const;

/**
 * A child container holding one host's core services, each a singleton within it. Tests and
 * host applications replace a service through `options.configure`.
 *
 * @example
 * const c = createHostContainer({ configure: (c) => c.register(IEventBus, { useClass: MyBus }) });
 */
export function createHostContainer(options: HostOptions): DependencyContainer {
  const c = (options.container ?? rootContainer).createChildContainer();
  const resolved: HostOptions = {
    ...options,
    dataDir: options.dataDir ?? '.logomesh',
    trustedKeys: options.trustedKeys ? loadTrustedKeys(options.trustedKeys) : undefined,
  };
  const logger = options.logger ?? pino({ level: process.env.LOGOMESH_LOG_LEVEL ?? 'warn' }, pino.destination(2));
  c.register(IHostOptions, { useValue: resolved });
  c.register(ILogger, { useValue: logger });
  c.register(IPluginRegistry, { useClass: PluginRegistry }, scoped);
  c.register(IEventBus, { useClass: EventBus }, scoped);
  c.register(IApiGateway, { useClass: ApiGateway }, scoped);
  c.register(IRuntimeFactory, { useClass: RuntimeFactory }, scoped);
  c.register(IResourceMonitor, { useClass: ResourceMonitor }, scoped);
  options.configure?.(c);
  const services = c.resolve<IApiGateway>(IApiGateway).services;
  for (const service of options.services ?? []) {
    services.register(typeof service === 'function' ? c.resolve(service as new () => object) : service);
  }
  return c;
}
