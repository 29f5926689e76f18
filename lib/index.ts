/**
 * @logomesh/plugin-host: load untrusted plugins behind real isolation.
 *
 * @example
 * import { createPluginHost } from '@logomesh/plugin-host';
 * const host = await createPluginHost({ pluginDirs: ['./plugins'] });
 * await host.loadAll();
 */
import 'reflect-metadata';

export { createPluginHost } from './host/create-plugin-host.js';
export { PluginHost } from './host/plugin-host.js';
export type { PluginStatus, PluginLoadResult, LoadReport, PluginHandle } from './host/plugin-host.js';
export type { HostOptions } from './host/host-options.js';
export { canTransition, type PluginState } from './host/lifecycle.js';
export { createHostContainer } from './di/container.js';
export { IHostOptions, ILogger } from './di/tokens.js';
export { EventBus, IEventBus, type PluginFilter, type PublishReport } from './events/event-bus.js';
export type { HostEvent, BusEvent, PluginStateEvent, PluginWarningEvent, EventDroppedEvent, PermissionDeniedEvent, DependencyEvent, RecoveryHostEvent, SuspensionEvent } from './events/host-events.js';
export { topicMatches } from './events/topic.js';
export { ApiGateway, IApiGateway, type AuditEvent, type PluginUsage } from './gateway/api-gateway.js';
export { PluginApi, HostServiceRegistry, ServiceNotFoundError, type ServiceCaller, type PluginApiOptions } from './gateway/host-services.js';
export { PermissionSet, policyViolations, type HostPermissionPolicy } from './gateway/permissions.js';
export { IRuntimeFactory, type PluginRuntime, type RuntimeMetrics } from './runtimes/runtime.js';
export { RuntimeFactory } from './runtimes/runtime-factory.js';
export { IPluginRegistry, PluginRegistry, discoverPlugins, type PluginDescriptor } from './registry/plugin-registry.js';
export { validateManifest, parseManifest, readManifestFile, effectiveLimits, effectiveThreads } from './registry/manifest.js';
export type { PluginManifest, ResourceLimits, Permission, DependencySpec, Threads } from './registry/manifest-schema.js';
export { DependencyGraph } from './registry/dependency-graph.js';
export { signPlugin, verifyPlugin, generateKeyPair, hashPluginFiles } from './registry/integrity.js';
export { PLUGIN_API_VERSION } from './version.js';
export type { Alert, AlertKind, PluginMetrics, MethodStats, Thresholds, ThresholdAction, PluginController } from './monitor/types.js';
export { IResourceMonitor, ResourceMonitor } from './monitor/resource-monitor.js';
export { DEFAULT_THRESHOLDS } from './monitor/thresholds.js';
export type { Profiler, ProfileReport, ProfileSession, Bottleneck } from './monitor/profiler.js';
export type { CrashReport } from './host/managed-plugin.js';
export type { HealthReport, HealthOptions } from './host/health.js';
export type { RecoveryOptions, BreakerState } from './host/crash-handler.js';
export type { MonitoringOptions } from './host/host-monitoring.js';
export * from './errors.js';
