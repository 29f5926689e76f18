import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Observable } from 'rxjs';
import semver from 'semver';
import { inject, injectable } from 'tsyringe';
import { IHostOptions, ILogger } from '../di/tokens.js';
import {
  DependencyError,
  InvalidArgumentError,
  ManifestError,
  MethodNotExposedError,
  PluginHostError,
  PluginLoadError,
  PluginNotFoundError,
  PluginStateError,
  PluginSuspendedError,
  PluginCrashedError,
  CircuitOpenError,
} from '../errors.js';
import { IResourceMonitor } from '../monitor/resource-monitor.js';
import type { Profiler, ProfileTarget } from '../monitor/profiler.js';
import type { Alert, PluginController, PluginMetrics } from '../monitor/types.js';
import { IEventBus, type PluginFilter, type PublishReport } from '../events/event-bus.js';
import { HOST_SOURCE, type BusEvent, type HostEvent } from '../events/host-events.js';
import { isValidTopicPattern } from '../events/topic.js';
import { IApiGateway, pluginDataDir, type AuditEvent, type PluginDirectory, type PluginUsage } from '../gateway/api-gateway.js';
import type { HostServiceRegistry } from '../gateway/host-services.js';
import { policyViolations } from '../gateway/permissions.js';
import { verifyPlugin, type VerificationResult } from '../registry/integrity.js';
import { effectiveLimits } from '../registry/manifest.js';
import { HOST_MAXIMUM_LIMITS, type PluginManifest, type ResourceLimits } from '../registry/manifest-schema.js';
import { IPluginRegistry, type PluginDescriptor } from '../registry/plugin-registry.js';
import type { GatewayPort } from '../runtimes/protocol.js';
import { IRuntimeFactory, type PluginRuntime } from '../runtimes/runtime.js';
import type { HostOptions } from './host-options.js';
import { CrashHandler, type RecoveryEvent, type RecoveryOptions } from './crash-handler.js';
import { checkPluginHealth, type HealthReport } from './health.js';
import { HostMonitoring, type MonitoringOptions } from './host-monitoring.js';
import { PluginLifecycle, type PluginState } from './lifecycle.js';
import { ManagedPlugin, type CrashReport } from './managed-plugin.js';
import type { LoadReport, PluginHandle, PluginStatus } from './host-types.js';
import { applyLimits } from './live-limits.js';
import { loadInOrder } from './load-plan.js';

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
  private readonly plugins = new Map<string, ManagedPlugin>();
  /** Ids in the order they were loaded; stopped in reverse. */
  private order: string[] = [];
  private closed = false;
  private readonly recovery: CrashHandler;
  private readonly monitoring: HostMonitoring;
  /** False when the host runs with monitoring off. */
  private readonly measured: boolean;

  constructor(
    @inject(IHostOptions) private readonly options: HostOptions,
    @inject(ILogger) private readonly logger: Logger,
    @inject(IPluginRegistry) readonly registry: IPluginRegistry,
    @inject(IEventBus) private readonly bus: IEventBus,
    @inject(IApiGateway) private readonly gateway: IApiGateway,
    @inject(IRuntimeFactory) private readonly runtimes: IRuntimeFactory,
    @inject(IResourceMonitor) private readonly monitor: IResourceMonitor,
  ) {
    gateway.attach(this);
    const { recovery, monitoring } = withPolicies(options);
    this.recovery = new CrashHandler(recovery, (id) => this.recover(id), (e) => this.onRecoveryEvent(e));
    this.monitoring = new HostMonitoring(monitoring, monitor, gateway.audit$, (holder) => this.controllerFor(holder), options.dataDir ?? '.logomesh', (id) =>
      this.profileTarget(id),
    );
    this.measured = options.monitoring?.enabled !== false;
    if (this.measured) this.monitoring.startHeartbeat(() => this.plugins.values(), options.health);
  }

  /** Alerts from monitoring: thresholds crossed, unresponsive plugins, crash loops, security threats. */
  get alerts$(): Observable<Alert> {
    return this.monitoring.alerts$;
  }

  /** What a plugin costs now, measured by the host. */
  metrics(id: string): PluginMetrics | undefined {
    this.get(id);
    return this.monitor.metrics(id);
  }

  /** Every sample in which some plugin's metrics changed. */
  get metrics$(): Observable<PluginMetrics> {
    return this.monitor.metrics$;
  }

  /** Past samples of a plugin (one per interval in which something changed), within `range`. */
  getMetricsHistory(id: string, range?: { from?: number; to?: number }): PluginMetrics[] {
    this.get(id);
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
    const plugin = this.get(id);
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
    return checkPluginHealth(this.get(id), this.options.health);
  }

  /**
   * Changes a running plugin's limits. `executionTimeoutMs` and `maxCpuPercent` apply at once;
   * the others are kept for its next sandbox and listed in `requiresRestart`.
   */
  setPluginResourceLimits(id: string, limits: Partial<ResourceLimits>): { applied: string[]; requiresRestart: string[] } {
    const plugin = this.get(id);
    const result = applyLimits(plugin.limits, limits, { ...HOST_MAXIMUM_LIMITS, ...this.options.hostLimits }, id);
    if (plugin.state === 'started') this.monitoring.watch(plugin);
    return result;
  }

  // ------------------------------------------------------------------ PluginController (for monitoring)

  throttle(id: string, delayMs: number): void {
    this.get(id).throttleMs = Math.max(0, delayMs);
  }

  /** Suspends a plugin by hand: its calls, events and requests fail fast until `resume`. */
  suspend(id: string, reason: string): void {
    this.suspendBy('host', id, reason);
  }

  /** Lifts every suspension of a plugin (by hand, by the governor, by the security monitor). */
  resume(id: string): void {
    const plugin = this.get(id);
    if (!plugin.release()) return;
    this.monitoring.reset(plugin);
    this.bus.emitHost({ type: 'plugin.resumed', pluginId: id, at: Date.now() });
  }

  /** Each monitoring service holds its own suspension: one lifting its hold does not lift another's. */
  private suspendBy(holder: string, id: string, reason: string): void {
    if (this.get(id).hold(holder, reason)) this.bus.emitHost({ type: 'plugin.suspended', pluginId: id, reason, at: Date.now() });
  }

  private resumeBy(holder: string, id: string): void {
    if (this.get(id).release(holder)) this.bus.emitHost({ type: 'plugin.resumed', pluginId: id, at: Date.now() });
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
    const plugin = this.get(id);
    await this.serially(plugin, async () => {
      const runtime = plugin.runtime;
      if (!runtime) return;
      await runtime.dispose();
      this.onCrash(plugin, runtime, new PluginCrashedError(id, `Plugin '${id}' was killed by the host: ${reason}.`));
    });
  }

  /** The last crash reports of a plugin (error, stack, metrics, recent calls, what it was doing), oldest first. */
  crashes(id: string): CrashReport[] {
    return [...this.get(id).crashes];
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
      outcome: (id) => this.plugins.get(id),
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
    const plugin = this.get(id);
    return this.serially(plugin, () => this.startNow(plugin));
  }

  /** Runs `onStop`; the sandbox stays, so `start(id)` resumes it. */
  stop(id: string): Promise<void> {
    const plugin = this.get(id);
    return this.serially(plugin, () => this.stopNow(plugin));
  }

  /**
   * Builds a fresh sandbox for the plugin and starts it again, carrying its state across: a
   * running plugin's `serializeState()` now, or, after a crash, the last good snapshot.
   */
  restart(id: string): Promise<void> {
    const plugin = this.get(id);
    return this.serially(plugin, () => this.restartNow(plugin));
  }

  /** Stops and removes a plugin. Refused while a loaded plugin requires it. */
  unload(id: string): Promise<void> {
    const plugin = this.get(id);
    return this.serially(plugin, async () => {
      const dependents = [...this.plugins.values()].filter((p) => p.manifest.dependencies?.some((d) => d.id === plugin.id && !d.optional));
      if (dependents.length > 0) {
        throw new DependencyError(
          'failed',
          `Cannot unload ${id}: ${dependents.map((p) => p.id).join(', ')} depend${dependents.length === 1 ? 's' : ''} on it. Unload ${dependents.length === 1 ? 'it' : 'them'} first.`,
          { pluginId: id },
        );
      }
      this.recovery.forget(id);
      if (plugin.state === 'started') await this.stopNow(plugin);
      await this.teardown(plugin);
      this.monitoring.unwatch(id);
      this.monitor.untrack(id);
      plugin.lifecycle.transition('unloaded');
      this.plugins.delete(id);
      this.order = this.order.filter((o) => o !== id);
    });
  }

  /**
   * Lifecycle operations on one plugin run one at a time (a user restart, a governor action
   * and a recovery timer may all ask at once); each waits for the previous one to settle.
   */
  private serially<T>(plugin: ManagedPlugin, op: () => Promise<T>): Promise<T> {
    const run = plugin.pending.then(op, op);
    plugin.pending = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async startNow(plugin: ManagedPlugin): Promise<void> {
    const id = plugin.id;
    for (const dep of plugin.manifest.dependencies ?? []) {
      if (!dep.optional && this.plugins.get(dep.id)?.state !== 'started') {
        throw new DependencyError('failed', `${id} cannot start: its dependency ${dep.id} is not started.`, { pluginId: id });
      }
    }
    plugin.lifecycle.transition('starting');
    const began = performance.now();
    try {
      await plugin.runtime!.hook('onStart');
    } catch (e) {
      const error = asHostError(e, id);
      this.settle(plugin, 'failed', error);
      await this.teardown(plugin);
      throw error;
    }
    plugin.startTimeMs = performance.now() - began;
    plugin.lifecycle.transition('started');
    this.subscribe(plugin);
    this.recovery.started(id);
    this.monitoring.watch(plugin);
    if (this.measured && plugin.hasHook('checkHealth')) this.monitoring.poke();
  }

  private async stopNow(plugin: ManagedPlugin): Promise<void> {
    if (plugin.state !== 'started') throw new PluginStateError(plugin.id, plugin.state, 'stop');
    plugin.lifecycle.transition('stopping');
    this.bus.unsubscribe(plugin.id);
    try {
      await plugin.runtime!.hook('onStop');
    } catch (e) {
      // A failing cleanup must not keep a plugin running: it is stopped, and the error kept.
      plugin.error = asHostError(e, plugin.id);
      this.warn(plugin, `onStop failed: ${plugin.error.message}`);
    }
    if ((plugin.state as PluginState) === 'stopping') plugin.lifecycle.transition('stopped');
  }

  private async restartNow(plugin: ManagedPlugin): Promise<void> {
    if (plugin.state === 'unloaded') throw new PluginNotFoundError(plugin.id);
    if (plugin.state === 'started' && plugin.hasHook('serializeState')) await this.takeSnapshot(plugin);
    if (plugin.state === 'started') await this.stopNow(plugin);
    plugin.release();
    plugin.throttleMs = 0;
    this.monitoring.reset(plugin);
    await this.teardown(plugin);
    await this.instantiate(plugin);
    if (plugin.snapshot && plugin.hasHook('deserializeState')) {
      await plugin.runtime!.hook('deserializeState', plugin.snapshot.state);
    }
    await this.startNow(plugin);
  }

  /** Calls an `@Expose`d method of a started plugin. */
  async call<T = unknown>(id: string, method: string, ...args: unknown[]): Promise<T> {
    const plugin = this.get(id);
    if (plugin.state !== 'started') throw this.unavailable(plugin, `call ${method}() on`);
    if (plugin.suspended !== undefined) throw new PluginSuspendedError(id, plugin.suspended);
    if (!plugin.description!.exposed.includes(method)) throw new MethodNotExposedError(id, method);
    if (plugin.throttleMs > 0) {
      await new Promise((r) => setTimeout(r, plugin.throttleMs));
      // The plugin may have been stopped, suspended or restarted while the call waited.
      if (plugin.state !== 'started' || !plugin.runtime) throw this.unavailable(plugin, `call ${method}() on`);
      if (plugin.suspended !== undefined) throw new PluginSuspendedError(id, plugin.suspended);
    }
    const runtime = plugin.runtime!;
    return (await this.tracked(plugin, method, () => runtime.call(method, args))) as T;
  }

  /** Publishes an event from the host to every plugin with a matching `@OnEvent` handler. */
  publish(topic: string, data?: unknown, filter?: PluginFilter): Promise<PublishReport> {
    return this.bus.publish({ topic, data, source: HOST_SOURCE, at: Date.now() }, filter);
  }

  plugin(id: string): PluginHandle {
    this.get(id);
    return {
      id,
      events$: (pattern = '**') => this.bus.select(pattern, id),
      call: (method, ...args) => this.call(id, method, ...args),
      status: () => this.status(id),
    };
  }

  status(id: string): PluginStatus {
    const p = this.get(id);
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
    const known = [...this.order, ...[...this.plugins.keys()].filter((id) => !this.order.includes(id)).sort()];
    return known.map((id) => this.status(id));
  }

  /**
   * Stops every plugin in reverse dependency order and releases every sandbox. Plugins get
   * `closeTimeoutMs` (default 10 s) in all for their `onStop`; after that the rest are
   * disposed without waiting, so a hanging `onStop` cannot hold the host open.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.recovery.dispose();
    const deadline = performance.now() + (this.options.closeTimeoutMs ?? 10_000);
    for (const id of [...this.order].reverse()) {
      const plugin = this.plugins.get(id);
      if (!plugin) continue;
      const remaining = deadline - performance.now();
      if (remaining > 0) {
        // Queued behind whatever lifecycle operation is running (a restart), within the budget.
        let timer: NodeJS.Timeout | undefined;
        const stopping = this.serially(plugin, async () => {
          if (plugin.state === 'started') await this.stopNow(plugin);
        });
        await Promise.race([
          stopping.catch((e) => this.warn(plugin, `stop failed: ${String(e)}`)),
          new Promise((resolve) => (timer = setTimeout(resolve, remaining))),
        ]);
        clearTimeout(timer);
      }
      await this.teardown(plugin).catch((e) => this.warn(plugin, `teardown failed: ${String(e)}`));
    }
    this.monitoring.dispose();
    this.bus.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ------------------------------------------------------------------ PluginDirectory (for the gateway)

  suspendedReason(pluginId: string): string | undefined {
    return this.plugins.get(pluginId)?.suspended;
  }

  invoke(_callerId: string, pluginId: string, method: string, args: unknown[]): Promise<unknown> {
    return this.call(pluginId, method, ...args);
  }

  // ------------------------------------------------------------------ internals

  private get(id: string): ManagedPlugin {
    const plugin = this.plugins.get(id);
    if (!plugin) throw new PluginNotFoundError(id);
    return plugin;
  }

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
    this.plugins.set(id, plugin);
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
    this.settle(plugin, 'failed', error);
  }

  private async loadDescriptor(descriptor: PluginDescriptor): Promise<void> {
    const { manifest } = descriptor;
    const existing = this.plugins.get(manifest.id);
    if (existing && existing.state !== 'failed') {
      throw new PluginLoadError(`Plugin '${manifest.id}' is already loaded (${existing.state}). Unload it first.`, { pluginId: manifest.id });
    }
    if (existing) {
      await this.teardown(existing);
      this.plugins.delete(manifest.id);
      this.order = this.order.filter((o) => o !== manifest.id);
    }
    const plugin = this.newRecord(descriptor);
    try {
      this.checkLoadable(manifest, descriptor.dir);
      plugin.verification = await verifyPlugin(descriptor.dir, manifest, {
        requireSignature: this.options.requireSignature,
        trustedKeys: this.options.trustedKeys,
      });
      for (const warning of plugin.verification.warnings) this.warn(plugin, warning);
      await this.instantiate(plugin);
      this.order.push(manifest.id);
    } catch (e) {
      const error = asHostError(e, manifest.id);
      this.settle(plugin, 'failed', error);
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
      const loaded = this.plugins.get(dep.id);
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

  /** Builds a fresh sandbox for the plugin and moves it to `loaded`. */
  private async instantiate(plugin: ManagedPlugin): Promise<void> {
    const began = performance.now();
    this.gateway.register({ pluginId: plugin.id, manifest: plugin.manifest, dir: plugin.descriptor.dir, limits: plugin.limits });
    const runtime = this.runtimes.create({
      pluginId: plugin.id,
      dir: plugin.descriptor.dir,
      manifest: plugin.manifest,
      limits: plugin.limits,
      gateway: this.measuredPort(plugin.id),
      onCrash: (error) => this.onCrash(plugin, runtime, error),
    });
    const description = await runtime.load().catch(async (e: unknown) => {
      await this.gateway.release(plugin.id);
      throw e;
    });
    if (this.closed) {
      await runtime.dispose();
      await this.gateway.release(plugin.id);
      throw new PluginStateError(plugin.id, 'closing', 'load');
    }
    const bad = description.handlers.find((h) => !isValidTopicPattern(h.pattern));
    if (bad) {
      await runtime.dispose();
      await this.gateway.release(plugin.id);
      throw new InvalidArgumentError(`@OnEvent('${bad.pattern}') on ${bad.method}() is not a valid topic pattern.`, { pluginId: plugin.id });
    }
    plugin.runtime = runtime;
    plugin.description = description;
    plugin.error = undefined;
    plugin.loadTimeMs = performance.now() - began;
    plugin.lifecycle.transition('loaded');
  }

  /** The plugin's gateway channel; each request marks the plugin active for the metrics sampler. */
  private measuredPort(id: string): GatewayPort {
    const port = this.gateway.portFor(id);
    if (!this.measured) return port;
    return {
      request: (request) => {
        this.monitor.touch(id);
        return port.request(request);
      },
    };
  }

  /** Disposes a plugin's sandbox and closes what it holds through the gateway. */
  private async teardown(plugin: ManagedPlugin): Promise<void> {
    await plugin.runtime?.dispose();
    plugin.runtime = undefined;
    await this.gateway.release(plugin.id);
  }

  private subscribe(plugin: ManagedPlugin): void {
    const handlers = plugin.description?.handlers ?? [];
    if (handlers.length === 0) return;
    this.bus.subscribe({
      pluginId: plugin.id,
      patterns: [...new Set(handlers.map((h) => h.pattern))],
      capabilities: plugin.manifest.capabilities ?? [],
      accepts: (topic) => this.gateway.mayReceive(plugin.id, topic),
      deliver: async (event, matched) => {
        if (plugin.state !== 'started' || !plugin.runtime) throw new PluginStateError(plugin.id, plugin.state, `deliver '${event.topic}' to`);
        if (plugin.suspended !== undefined) throw new PluginSuspendedError(plugin.id, plugin.suspended);
        const methods = handlers.filter((h) => matched.includes(h.pattern)).map((h) => h.method);
        const runtime = plugin.runtime;
        await this.tracked(plugin, `on ${methods.join(',')}`, () => runtime.deliverEvent(event.topic, event.data, event.source, methods));
      },
    });
  }

  private onCrash(plugin: ManagedPlugin, runtime: PluginRuntime, error: PluginHostError): void {
    if (plugin.runtime !== runtime && plugin.runtime !== undefined) return;
    const wasStarted = plugin.state === 'started';
    const wasRunning = wasStarted || plugin.state === 'starting';
    this.bus.unsubscribe(plugin.id);
    plugin.recordCrash(error, this.monitor.metrics(plugin.id));
    this.gateway.release(plugin.id).catch((e: unknown) => this.logger.error({ plugin: plugin.id }, `releasing its handles failed: ${String(e)}`));
    this.logger.error({ plugin: plugin.id, code: error.code }, error.message);
    this.settle(plugin, 'crashed', error);
    if (wasStarted) this.notifyDependents(plugin.id, 'down');
    // A crash while being stopped or restarted by hand is not one to recover from.
    if (!this.closed && wasRunning) this.recovery.crashed(plugin.id);
  }

  /** Restart after a crash (called by the crash handler after its backoff). */
  private async recover(id: string): Promise<void> {
    const plugin = this.plugins.get(id);
    if (!plugin || this.closed) return;
    await this.serially(plugin, async () => {
      if (this.closed || !['crashed', 'failed'].includes(plugin.state)) return;
      const crashes = plugin.crashes.length;
      try {
        await this.restartNow(plugin);
      } catch (e) {
        // A restart that failed without crashing (load, state restore or start refused) is a
        // crash too: its sandbox goes, and it counts toward the breaker.
        if (plugin.crashes.length === crashes && this.plugins.get(id) === plugin) {
          const error = asHostError(e, id);
          plugin.recordCrash(error, this.monitor.metrics(id));
          await this.teardown(plugin);
          this.settle(plugin, 'crashed', error);
          this.recovery.crashed(id);
        }
        return;
      }
      this.notifyDependents(id, 'up');
    });
  }

  private onRecoveryEvent(e: RecoveryEvent): void {
    const at = Date.now();
    if (e.kind === 'scheduled') {
      this.bus.emitHost({ type: 'plugin.recovering', pluginId: e.pluginId, attempt: e.attempt, delayMs: e.delayMs, at });
      return;
    }
    this.bus.emitHost({ type: 'plugin.circuit', pluginId: e.pluginId, state: e.state, retryAt: e.retryAt, at });
    if (e.state === 'open') this.monitoring.crashLoop(e.pluginId, e.crashes, e.retryAt!, this.plugins.get(e.pluginId)?.crashes.slice(-e.crashes));
  }

  /** Tells each started dependent that `dependency` went down or came back (event + hook). */
  private notifyDependents(dependency: string, direction: 'down' | 'up'): void {
    for (const p of this.plugins.values()) {
      if (p.state !== 'started' || !p.manifest.dependencies?.some((d) => d.id === dependency)) continue;
      this.bus.emitHost({ type: direction === 'down' ? 'plugin.dependencyDown' : 'plugin.dependencyUp', pluginId: p.id, dependency, at: Date.now() });
      const hook = direction === 'down' ? 'onDependencyDown' : 'onDependencyUp';
      if (p.hasHook(hook)) {
        p.runtime!.hook(hook, dependency).catch((e: unknown) => this.warn(p, `${hook}(${dependency}) failed: ${String(e)}`));
      }
    }
  }

  /** Why a plugin that is not started cannot take calls, as the most useful typed error. */
  private unavailable(plugin: ManagedPlugin, attempted: string): PluginHostError {
    const retryAt = this.recovery.retryAt(plugin.id);
    if (this.recovery.state(plugin.id) === 'open' && retryAt) return new CircuitOpenError(plugin.id, retryAt);
    return new PluginStateError(plugin.id, plugin.state, attempted);
  }

  /** Runs one invocation of a plugin with its bookkeeping: in-flight record, metrics, state snapshots. */
  private async tracked<T>(plugin: ManagedPlugin, operation: string, run: () => Promise<T>): Promise<T> {
    const began = performance.now();
    const token = plugin.begin(operation);
    if (this.measured) {
      this.monitor.touch(plugin.id);
      this.monitoring.poke();
    }
    let ok = false;
    try {
      const result = await run();
      ok = true;
      return result;
    } finally {
      const durationMs = performance.now() - began;
      plugin.end(token, durationMs, ok);
      if (this.measured) this.monitor.recordCall(plugin.id, operation, durationMs, ok);
      if (ok && plugin.hasHook('serializeState') && Date.now() - plugin.lastSnapshotAt >= (this.options.stateSnapshotIntervalMs ?? 5000)) {
        void this.takeSnapshot(plugin).catch(() => undefined);
      }
    }
  }

  /** Keeps the plugin's current `serializeState()` as its last good snapshot. */
  private async takeSnapshot(plugin: ManagedPlugin): Promise<void> {
    plugin.lastSnapshotAt = Date.now();
    const state = await plugin.runtime!.hook('serializeState');
    plugin.snapshot = { state, at: Date.now() };
  }

  /** Moves a plugin to `failed` or `crashed` unless it already ended there. */
  private settle(plugin: ManagedPlugin, to: 'failed' | 'crashed', error: PluginHostError): void {
    plugin.error = error;
    if (plugin.state === 'crashed' || plugin.state === 'failed' || plugin.state === 'unloaded') return;
    const target = to === 'failed' && ['started', 'stopped'].includes(plugin.state) ? 'crashed' : to;
    plugin.lifecycle.transition(target, error);
  }

  private warn(plugin: ManagedPlugin, message: string): void {
    if (plugin.warnings.length >= 50) plugin.warnings.shift();
    plugin.warnings.push(message);
    this.logger.warn({ plugin: plugin.id }, message);
    this.bus.emitHost({ type: 'plugin.warning', pluginId: plugin.id, message, at: Date.now() });
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

function asHostError(e: unknown, pluginId: string): PluginHostError {
  if (e instanceof PluginHostError) return e;
  return new PluginLoadError(`Plugin '${pluginId}': ${(e as Error)?.message ?? String(e)}`, { pluginId, cause: e });
}
