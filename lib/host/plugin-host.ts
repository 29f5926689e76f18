import type { Logger } from 'pino';
import type { Observable } from 'rxjs';
import semver from 'semver';
import { inject, injectable } from 'tsyringe';
import { IHostOptions, ILogger } from '../di/tokens.js';
import { CallCycleError, DependencyError, ManifestError, MethodNotExposedError, PluginHostError, PluginLoadError, PluginSuspendedError } from '../errors.js';
import { IResourceMonitor } from '../monitor/resource-monitor.js';
import type { Profiler, ProfileTarget } from '../monitor/profiler.js';
import type { Alert, PluginController, PluginMetrics } from '../monitor/types.js';
import { IEventBus, type PluginFilter, type PublishReport } from '../events/event-bus.js';
import { HOST_SOURCE, type BusEvent, type HostEvent } from '../events/host-events.js';
import { IApiGateway, pluginDataDir, type AuditEvent, type PluginDirectory, type PluginUsage } from '../gateway/api-gateway.js';
import type { HostServiceRegistry } from '../gateway/host-services.js';
import { policyViolations } from '../gateway/permissions.js';
import { verifyPlugin } from '../registry/integrity.js';
import { effectiveLimits } from '../registry/manifest.js';
import { HOST_MAXIMUM_LIMITS, type PluginManifest, type ResourceLimits } from '../registry/manifest-schema.js';
import { IPluginRegistry, type PluginDescriptor } from '../registry/plugin-registry.js';
import { IRuntimeFactory } from '../runtimes/runtime.js';
import type { HostOptions } from './host-options.js';
import type { RecoveryOptions } from './crash-handler.js';
import { checkPluginHealth, type HealthReport } from './health.js';
import { HostMonitoring, type MonitoringOptions } from './host-monitoring.js';
import { PluginLifecycle } from './lifecycle.js';
import { asHostError, LifecycleController, type HostParts } from './lifecycle-controller.js';
import { ManagedPlugin, type CrashReport } from './managed-plugin.js';
import type { LoadReport, PluginHandle, PluginStatus } from './host-types.js';
import { applyLimits } from './live-limits.js';
import { loadInOrder } from './load-plan.js';
import { PluginTable } from './plugin-table.js';
import { RecoveryFlow } from './recovery-flow.js';

export type { PluginStatus, PluginLoadResult, LoadReport, PluginHandle } from './host-types.js';

/**
 * Loads untrusted plugins and runs each behind its runtime's isolation boundary. Create it
 * with `createPluginHost()`.
 *
 * @example
 * const host = await createPluginHost({ pluginDirs: ['./plugins'] });
 * await host.loadAll();
 * await host.call('text-processor', 'upper', 'hi'); // 'HI'
 * await host.close();
 */
@injectable()
export class PluginHost implements PluginDirectory, PluginController {
  private readonly plugins = new PluginTable();
  private readonly lifecycle: LifecycleController;
  private readonly recovery: RecoveryFlow;
  private readonly monitoring: HostMonitoring;

  constructor(
    @inject(IHostOptions) private readonly options: HostOptions,
    @inject(ILogger) logger: Logger,
    @inject(IPluginRegistry) readonly registry: IPluginRegistry,
    @inject(IEventBus) private readonly bus: IEventBus,
    @inject(IApiGateway) private readonly gateway: IApiGateway,
    @inject(IRuntimeFactory) private readonly runtimes: IRuntimeFactory,
    @inject(IResourceMonitor) private readonly monitor: IResourceMonitor,
  ) {
    gateway.attach(this);
    const { recovery, monitoring } = withPolicies(options);
    this.monitoring = new HostMonitoring(monitoring, monitor, gateway.audit$, (holder) => this.controllerFor(holder), options.dataDir ?? '.logomesh', (id) =>
      this.profileTarget(id),
    );
    const measured = options.monitoring?.enabled !== false;
    const parts: HostParts = { options, logger, bus, gateway, runtimes, monitor, monitoring: this.monitoring, measured };
    // The recovery flow restarts plugins through the controller and hears from it when they start, crash or go.
    this.lifecycle = new LifecycleController(parts, this.plugins, {
      started: (id) => this.recovery.started(id),
      unloading: (id) => this.recovery.unloading(id),
      crashed: (plugin, runtime, error) => this.recovery.crashed(plugin, runtime, error),
      closing: () => this.recovery.closing(),
    });
    this.recovery = new RecoveryFlow(recovery, parts, this.plugins, this.lifecycle);
    if (measured) this.monitoring.startHeartbeat(() => this.plugins.values(), options.health);
  }

  /** Alerts from monitoring: thresholds crossed, unresponsive plugins, crash loops, security threats. */
  get alerts$(): Observable<Alert> {
    return this.monitoring.alerts$;
  }

  /** What a plugin costs now, measured by the host. */
  metrics(id: string): PluginMetrics | undefined {
    this.plugins.get(id);
    return this.monitor.metrics(id);
  }

  /** Every sample in which some plugin's metrics changed. */
  get metrics$(): Observable<PluginMetrics> {
    return this.monitor.metrics$;
  }

  /** Past samples of a plugin (one per interval in which something changed), within `range`. */
  getMetricsHistory(id: string, range?: { from?: number; to?: number }): PluginMetrics[] {
    this.plugins.get(id);
    return this.monitor.history(id, range);
  }

  /** Prometheus text exposition of every plugin's latest metrics. */
  metricsText(): string {
    return this.monitor.prometheusText();
  }

  /** `host.profiler.start(id)` → session; `stop(session)` → report; `identifyBottlenecks(id)`. */
  get profiler(): Profiler {
    return this.monitoring.profiler;
  }

  private profileTarget(id: string): ProfileTarget {
    const plugin = this.plugins.get(id);
    return {
      pluginId: id,
      runtimeKind: plugin.manifest.runtime,
      metrics: () => this.monitor.metrics(id),
      cpuProfiler: plugin.runtime?.cpuProfiler,
      gatewayStats: () => {
        const calls = Object.values(this.monitor.metrics(id)?.calls ?? {}).reduce((n, m) => n + m.count, 0);
        return { requests: this.gateway.usage(id)?.requests ?? {}, payloadBytes: plugin.runtime?.metrics().boundaryBytes ?? 0, calls };
      },
    };
  }

  /** Asks one plugin how it is (its `checkHealth()` hook, or what it is running). */
  health(id: string): Promise<HealthReport> {
    return checkPluginHealth(this.plugins.get(id), this.options.health);
  }

  /**
   * Changes a running plugin's limits. `executionTimeoutMs` and `maxCpuPercent` apply at once;
   * the others are kept for its next sandbox and listed in `requiresRestart`.
   */
  setPluginResourceLimits(id: string, limits: Partial<ResourceLimits>): { applied: string[]; requiresRestart: string[] } {
    const plugin = this.plugins.get(id);
    const result = applyLimits(plugin.limits, limits, { ...HOST_MAXIMUM_LIMITS, ...this.options.hostLimits }, id);
    if (plugin.state === 'started') this.monitoring.watch(plugin);
    return result;
  }

  // ------------------------------------------------------------------ PluginController (for monitoring)

  throttle(id: string, delayMs: number): void {
    this.plugins.get(id).throttleMs = Math.max(0, delayMs);
  }

  /** Suspends a plugin by hand: its calls, events and requests fail fast until `resume`. */
  suspend(id: string, reason: string): void {
    this.suspendBy('host', id, reason);
  }

  /** Lifts every suspension of a plugin (by hand, by the governor, by the security monitor). */
  resume(id: string): void {
    const plugin = this.plugins.get(id);
    if (!plugin.release()) return;
    this.monitoring.reset(plugin);
    this.bus.emitHost({ type: 'plugin.resumed', pluginId: id, at: Date.now() });
  }

  /** Each monitoring service holds its own suspension: one lifting its hold does not lift another's. */
  private suspendBy(holder: string, id: string, reason: string): void {
    if (this.plugins.get(id).hold(holder, reason)) this.bus.emitHost({ type: 'plugin.suspended', pluginId: id, reason, at: Date.now() });
  }

  private resumeBy(holder: string, id: string): void {
    if (this.plugins.get(id).release(holder)) this.bus.emitHost({ type: 'plugin.resumed', pluginId: id, at: Date.now() });
  }

  /** The controller a monitoring service acts through, its suspensions tagged with its name. */
  private controllerFor(holder: string): PluginController {
    return {
      throttle: (id, ms) => this.throttle(id, ms),
      suspend: (id, reason) => this.suspendBy(holder, id, reason),
      resume: (id) => this.resumeBy(holder, id),
      restart: (id) => this.restart(id),
      kill: (id, reason) => this.kill(id, reason),
    };
  }

  /** Ends the plugin's sandbox now; it becomes `crashed` (and recovery applies). */
  async kill(id: string, reason: string): Promise<void> {
    await this.lifecycle.kill(this.plugins.get(id), reason);
  }

  /** The last crash reports of a plugin (error, stack, metrics, recent calls, what it was doing), oldest first. */
  crashes(id: string): CrashReport[] {
    return [...this.plugins.get(id).crashes];
  }

  /** Lifecycle transitions and host notices of every plugin, `permission.denied` included. */
  get events$(): Observable<HostEvent> {
    return this.bus.hostEvents$;
  }

  /** Every privileged operation a plugin attempted through the gateway, and its outcome. */
  get audit$(): Observable<AuditEvent> {
    return this.gateway.audit$;
  }

  /** Host services plugins may call: `host.services.register(new MyService())`. */
  get services(): HostServiceRegistry {
    return this.gateway.services;
  }

  /**
   * Discovers every plugin under `pluginDirs`, resolves dependencies, then loads and starts
   * each in dependency order. A plugin that fails keeps its dependents from starting; the
   * others load. The report says what happened to each.
   */
  async loadAll(): Promise<LoadReport> {
    return loadInOrder(await this.registry.discover(this.options.pluginDirs ?? []), {
      isLoaded: (id) => this.plugins.has(id),
      recordFailure: (descriptor, error) => this.recordFailure(descriptor, error),
      load: (descriptor) => this.loadDescriptor(descriptor),
      start: (id) => this.start(id),
      outcome: (id) => this.plugins.find(id),
    });
  }


  /** Registers and loads the plugin in `dir` (not started). Its required dependencies must already be loaded. */
  async load(dir: string): Promise<PluginStatus> {
    const descriptor = await this.registry.registerPlugin(dir);
    await this.loadDescriptor(descriptor);
    return this.status(descriptor.manifest.id);
  }

  /** Runs `onStart` and subscribes the plugin to its events. */
  start(id: string): Promise<void> {
    return this.lifecycle.start(this.plugins.get(id));
  }

  /** Runs `onStop`; the sandbox stays, so `start(id)` resumes it. */
  stop(id: string): Promise<void> {
    return this.lifecycle.stop(this.plugins.get(id));
  }

  /**
   * Builds a fresh sandbox for the plugin and starts it again, carrying its state across: a
   * running plugin's `serializeState()` now, or, after a crash, the last good snapshot.
   */
  restart(id: string): Promise<void> {
    return this.lifecycle.restart(this.plugins.get(id));
  }

  /** Stops and removes a plugin. Refused while a loaded plugin requires it. */
  unload(id: string): Promise<void> {
    return this.lifecycle.unload(this.plugins.get(id));
  }

  /** Calls an `@Expose`d method of a started plugin. */
  call<T = unknown>(id: string, method: string, ...args: unknown[]): Promise<T> {
    return this.callFor(undefined, id, method, args) as Promise<T>;
  }

  /** A call made for `chain` (the plugins whose invocations wait on it, outermost first), if known. */
  private async callFor(chain: readonly string[] | undefined, id: string, method: string, args: unknown[]): Promise<unknown> {
    const plugin = this.plugins.get(id);
    if (plugin.state !== 'started') throw this.recovery.unavailable(plugin, `call ${method}() on`);
    if (plugin.suspended !== undefined) throw new PluginSuspendedError(id, plugin.suspended);
    if (!plugin.description!.exposed.includes(method)) throw new MethodNotExposedError(id, method);
    if (plugin.throttleMs > 0) {
      await new Promise((r) => setTimeout(r, plugin.throttleMs));
      // The plugin may have been stopped, suspended or restarted while the call waited.
      if (plugin.state !== 'started' || !plugin.runtime) throw this.recovery.unavailable(plugin, `call ${method}() on`);
      if (plugin.suspended !== undefined) throw new PluginSuspendedError(id, plugin.suspended);
    }
    const runtime = plugin.runtime!;
    if (chain?.includes(id) && runtime.serial) throw new CallCycleError(id, method, chain);
    return await this.lifecycle.tracked(plugin, method, () => runtime.call(method, args), chain);
  }

  /** Publishes an event from the host to every plugin with a matching `@OnEvent` handler. */
  publish(topic: string, data?: unknown, filter?: PluginFilter): Promise<PublishReport> {
    return this.bus.publish({ topic, data, source: HOST_SOURCE, at: Date.now() }, filter);
  }

  plugin(id: string): PluginHandle {
    this.plugins.get(id);
    return {
      id,
      events$: (pattern = '**') => this.bus.select(pattern, id),
      call: (method, ...args) => this.call(id, method, ...args),
      status: () => this.status(id),
    };
  }

  status(id: string): PluginStatus {
    const p = this.plugins.get(id);
    const metrics = p.runtime?.metrics();
    return {
      id: p.id,
      version: p.manifest.version,
      runtime: p.manifest.runtime,
      state: p.state,
      dir: p.descriptor.dir,
      loadTimeMs: p.loadTimeMs,
      startTimeMs: p.startTimeMs,
      signature: p.verification?.status ?? 'unchecked',
      exposed: p.description?.exposed ?? [],
      subscriptions: [...new Set(p.description?.handlers.map((h) => h.pattern) ?? [])],
      memory: { current: metrics?.memoryBytes ?? 0, limit: p.limits.maxMemoryMB * 1024 * 1024 },
      usage: this.gateway.usage(p.id),
      throttleMs: p.throttleMs,
      suspended: p.suspended,
      error: p.error,
    };
  }

  /** Every plugin this host knows, in load order (failed ones included). */
  list(): PluginStatus[] {
    return this.plugins.ids().map((id) => this.status(id));
  }

  /**
   * Stops every plugin in reverse dependency order and releases every sandbox. Plugins get
   * `closeTimeoutMs` (default 10 s) in all for their `onStop`; after that the rest are
   * disposed without waiting, so a hanging `onStop` cannot hold the host open.
   */
  async close(): Promise<void> {
    if (this.lifecycle.closed) return;
    await this.lifecycle.closeAll(this.options.closeTimeoutMs ?? 10_000);
    this.monitoring.dispose();
    this.bus.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ------------------------------------------------------------------ PluginDirectory (for the gateway)

  suspendedReason(pluginId: string): string | undefined {
    return this.plugins.find(pluginId)?.suspended;
  }

  invoke(callerId: string, pluginId: string, method: string, args: unknown[]): Promise<unknown> {
    return this.callFor(this.plugins.find(callerId)?.callChain(), pluginId, method, args);
  }

  // ------------------------------------------------------------------ internals

  private newRecord(descriptor: PluginDescriptor): ManagedPlugin {
    const id = descriptor.manifest.id;
    const lifecycle = new PluginLifecycle(id, (from, to, error) => {
      this.bus.emitHost({
        type: `plugin.${to}`,
        pluginId: id,
        version: descriptor.manifest.version,
        from,
        at: Date.now(),
        error: error as PluginHostError | undefined,
      });
    });
    const limits = effectiveLimits(descriptor.manifest, this.options.hostLimits as Required<ResourceLimits> | undefined);
    const plugin = new ManagedPlugin(descriptor, lifecycle, limits);
    this.plugins.add(plugin);
    this.monitor.track(id, {
      runtime: () => plugin.runtime?.metrics(),
      usage: () => this.gateway.usage(id),
      limits: () => plugin.limits,
    });
    this.bus.emitHost({ type: 'plugin.registered', pluginId: id, version: descriptor.manifest.version, from: null, at: Date.now() });
    return plugin;
  }

  /** Records a plugin that never got to load, so `list()` shows it with its reason. */
  private recordFailure(descriptor: PluginDescriptor, error: PluginHostError): void {
    if (this.plugins.has(descriptor.manifest.id)) return;
    const plugin = this.newRecord(descriptor);
    this.lifecycle.settle(plugin, 'failed', error);
  }

  private async loadDescriptor(descriptor: PluginDescriptor): Promise<void> {
    const { manifest } = descriptor;
    const existing = this.plugins.find(manifest.id);
    if (existing && existing.state !== 'failed') {
      throw new PluginLoadError(`Plugin '${manifest.id}' is already loaded (${existing.state}). Unload it first.`, { pluginId: manifest.id });
    }
    if (existing) {
      await this.lifecycle.teardown(existing);
      this.plugins.remove(manifest.id);
    }
    const plugin = this.newRecord(descriptor);
    try {
      this.checkLoadable(manifest, descriptor.dir);
      plugin.verification = await verifyPlugin(descriptor.dir, manifest, {
        requireSignature: this.options.requireSignature,
        trustedKeys: this.options.trustedKeys,
      });
      for (const warning of plugin.verification.warnings) this.lifecycle.warn(plugin, warning);
      await this.lifecycle.instantiate(plugin);
      this.plugins.loaded(manifest.id);
    } catch (e) {
      const error = asHostError(e, manifest.id);
      this.lifecycle.settle(plugin, 'failed', error);
      throw error;
    }
  }

  private checkLoadable(manifest: PluginManifest, dir: string): void {
    const problems = policyViolations(manifest, this.options.permissionPolicy ?? {}, {
      pluginId: manifest.id,
      pluginDir: dir,
      dataDir: pluginDataDir(this.options, manifest.id),
    });
    if (problems.length > 0) throw new ManifestError(problems, `${dir} (permissions beyond what this host allows)`, { pluginId: manifest.id });
    if (!this.runtimes.supports(manifest.runtime)) {
      throw new PluginLoadError(`Plugin '${manifest.id}' needs the '${manifest.runtime}' runtime, which this host does not provide.`, {
        pluginId: manifest.id,
      });
    }
    for (const dep of manifest.dependencies ?? []) {
      const loaded = this.plugins.find(dep.id);
      if (dep.optional) continue;
      if (!loaded || loaded.state === 'failed') {
        throw new DependencyError('missing', `${manifest.id} needs ${dep.id}@${dep.version}, which is not loaded in this host.`, {
          pluginId: manifest.id,
        });
      }
      if (!semver.satisfies(loaded.manifest.version, dep.version)) {
        throw new DependencyError(
          'conflict',
          `${manifest.id} needs ${dep.id}@${dep.version}, but ${dep.id}@${loaded.manifest.version} is loaded.`,
          { pluginId: manifest.id },
        );
      }
    }
  }
}

/** The detailed recovery and monitoring options, with the `policies` shorthand applied over them. */
function withPolicies(options: HostOptions): { recovery: RecoveryOptions; monitoring: MonitoringOptions } {
  const p = options.policies ?? {};
  const m = options.monitoring ?? {};
  const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  return {
    recovery: { ...options.recovery, ...defined({ restartOnCrash: p.restartOnCrash }) },
    monitoring: {
      ...m,
      ...defined({ scaleOnHighLoad: p.scaleOnHighLoad }),
      governor: { ...m.governor, ...defined({ throttleOnHighCPU: p.throttleOnHighCPU }) },
      security: { ...m.security, ...defined({ isolateOnSecurityThreat: p.isolateOnSecurityThreat }) },
    },
  };
}
