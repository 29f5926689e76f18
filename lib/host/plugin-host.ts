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
} from '../errors.js';
import { IEventBus, type PluginFilter, type PublishReport } from '../events/event-bus.js';
import { HOST_SOURCE, type BusEvent, type HostEvent } from '../events/host-events.js';
import { isValidTopicPattern } from '../events/topic.js';
import { IApiGateway, pluginDataDir, type AuditEvent, type PluginDirectory, type PluginUsage } from '../gateway/api-gateway.js';
import type { HostServiceRegistry } from '../gateway/host-services.js';
import { policyViolations } from '../gateway/permissions.js';
import { blockedBy, DependencyGraph, dependencyFailedError } from '../registry/dependency-graph.js';
import { verifyPlugin, type VerificationResult } from '../registry/integrity.js';
import { effectiveLimits } from '../registry/manifest.js';
import type { PluginManifest, ResourceLimits } from '../registry/manifest-schema.js';
import { IPluginRegistry, type PluginDescriptor } from '../registry/plugin-registry.js';
import { IRuntimeFactory, type PluginRuntime } from '../runtimes/runtime.js';
import type { PluginDescription } from '../runtimes/protocol.js';
import type { HostOptions } from './host-options.js';
import { PluginLifecycle, type PluginState } from './lifecycle.js';

/** What `host.status(id)` and `host.list()` tell about one plugin. */
export interface PluginStatus {
  id: string;
  version: string;
  runtime: string;
  state: PluginState;
  dir: string;
  /** Time from reading the manifest to a constructed plugin, ms. */
  loadTimeMs?: number;
  /** Time `onStart` took, ms. */
  startTimeMs?: number;
  signature: VerificationResult['status'] | 'unchecked';
  exposed: string[];
  subscriptions: string[];
  memory: { current: number; limit: number };
  /** What the plugin used through the gateway (files, network, denials). */
  usage?: PluginUsage;
  error?: PluginHostError;
}

/** One line of `loadAll()`'s report. */
export interface PluginLoadResult {
  id: string;
  version?: string;
  dir?: string;
  state: PluginState;
  loadTimeMs?: number;
  error?: PluginHostError;
  warnings: string[];
}

/** What `loadAll()` did, plugin by plugin. It never throws for a plugin's failure. */
export interface LoadReport {
  plugins: PluginLoadResult[];
  started: string[];
  failed: string[];
  durationMs: number;
}

/** A view of one loaded plugin. */
export interface PluginHandle {
  readonly id: string;
  /** What this plugin emits, optionally narrowed to a topic pattern. */
  events$(pattern?: string): Observable<BusEvent>;
  call<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
  status(): PluginStatus;
}

class ManagedPlugin {
  runtime?: PluginRuntime;
  description?: PluginDescription;
  verification?: VerificationResult;
  loadTimeMs?: number;
  startTimeMs?: number;
  error?: PluginHostError;
  warnings: string[] = [];

  constructor(
    readonly descriptor: PluginDescriptor,
    readonly lifecycle: PluginLifecycle,
    readonly limits: Required<ResourceLimits>,
  ) {}

  get id(): string {
    return this.descriptor.manifest.id;
  }
  get manifest(): PluginManifest {
    return this.descriptor.manifest;
  }
  get state(): PluginState {
    return this.lifecycle.state;
  }
}

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
export class PluginHost implements PluginDirectory {
  private readonly plugins = new Map<string, ManagedPlugin>();
  /** Ids in the order they were loaded; stopped in reverse. */
  private order: string[] = [];
  private readonly graph = new DependencyGraph();
  private closed = false;

  constructor(
    @inject(IHostOptions) private readonly options: HostOptions,
    @inject(ILogger) private readonly logger: Logger,
    @inject(IPluginRegistry) readonly registry: IPluginRegistry,
    @inject(IEventBus) private readonly bus: IEventBus,
    @inject(IApiGateway) private readonly gateway: IApiGateway,
    @inject(IRuntimeFactory) private readonly runtimes: IRuntimeFactory,
  ) {
    gateway.attach(this);
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
    const began = performance.now();
    const results: PluginLoadResult[] = [];
    const discovery = await this.registry.discover(this.options.pluginDirs ?? []);
    for (const { path, error } of discovery.errors) {
      results.push({ id: error.pluginId ?? path, dir: path, state: 'failed', error, warnings: [] });
    }
    const candidates = discovery.plugins.filter((d) => !this.plugins.has(d.manifest.id));
    const resolution = this.graph.resolve(
      candidates.map((d) => d.manifest),
      { roots: [...new Set(candidates.map((d) => d.manifest.id))] },
    );
    const byKey = new Map(candidates.map((d) => [`${d.manifest.id}@${d.manifest.version}`, d]));
    const failures = new Map<string, PluginHostError>(resolution.failures);

    for (const [id, error] of resolution.failures) {
      const latest = candidates.filter((d) => d.manifest.id === id).sort((a, b) => semver.rcompare(a.manifest.version, b.manifest.version))[0];
      if (latest) this.recordFailure(latest, error);
      results.push({ id, version: latest?.manifest.version, dir: latest?.dir, state: 'failed', error, warnings: [] });
    }
    for (const id of resolution.order) {
      const node = resolution.selected.get(id)!;
      const descriptor = byKey.get(`${id}@${node.version}`)!;
      const blocker = (descriptor.manifest.dependencies ?? []).find((d) => !d.optional && failures.has(d.id));
      try {
        if (blocker) throw dependencyFailedError(id, blocker.id, failures.get(blocker.id)!.message);
        await this.loadDescriptor(descriptor);
        await this.start(id);
      } catch (e) {
        const error = asHostError(e, id);
        failures.set(id, error);
        if (!this.plugins.has(id)) this.recordFailure(descriptor, error);
        for (const dependent of blockedBy(resolution, id)) {
          if (!failures.has(dependent)) failures.set(dependent, dependencyFailedError(dependent, id, error.message));
        }
      }
      const record = this.plugins.get(id);
      results.push({
        id,
        version: node.version,
        dir: descriptor.dir,
        state: record?.state ?? 'failed',
        loadTimeMs: record?.loadTimeMs,
        error: failures.get(id),
        warnings: record?.warnings ?? [],
      });
    }
    return {
      plugins: results,
      started: results.filter((r) => r.state === 'started').map((r) => r.id),
      failed: results.filter((r) => r.state !== 'started').map((r) => r.id),
      durationMs: performance.now() - began,
    };
  }

  /** Registers and loads the plugin in `dir` (not started). Its required dependencies must already be loaded. */
  async load(dir: string): Promise<PluginStatus> {
    const descriptor = await this.registry.registerPlugin(dir);
    await this.loadDescriptor(descriptor);
    return this.status(descriptor.manifest.id);
  }

  async start(id: string): Promise<void> {
    const plugin = this.get(id);
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
      throw error;
    }
    plugin.startTimeMs = performance.now() - began;
    plugin.lifecycle.transition('started');
    this.subscribe(plugin);
  }

  async stop(id: string): Promise<void> {
    const plugin = this.get(id);
    if (plugin.state !== 'started') throw new PluginStateError(id, plugin.state, 'stop');
    plugin.lifecycle.transition('stopping');
    this.bus.unsubscribe(id);
    try {
      await plugin.runtime!.hook('onStop');
    } catch (e) {
      // A failing cleanup must not keep a plugin running: it is stopped, and the error kept.
      plugin.error = asHostError(e, id);
      this.warn(plugin, `onStop failed: ${plugin.error.message}`);
    }
    if ((plugin.state as PluginState) === 'stopping') plugin.lifecycle.transition('stopped');
  }

  /** Stops the plugin, builds a fresh sandbox and starts it again, carrying `serializeState()` across. */
  async restart(id: string): Promise<void> {
    const plugin = this.get(id);
    let state: unknown;
    const hasState = plugin.state === 'started' && plugin.description?.hooks.includes('serializeState');
    if (hasState) state = await plugin.runtime!.hook('serializeState');
    if (plugin.state === 'started') await this.stop(id);
    await this.teardown(plugin);
    await this.instantiate(plugin);
    if (hasState && plugin.description?.hooks.includes('deserializeState')) {
      await plugin.runtime!.hook('deserializeState', state);
    }
    await this.start(id);
  }

  /** Stops and removes a plugin. Refused while a loaded plugin requires it. */
  async unload(id: string): Promise<void> {
    const plugin = this.get(id);
    const dependents = [...this.plugins.values()].filter((p) => p.manifest.dependencies?.some((d) => d.id === id && !d.optional));
    if (dependents.length > 0) {
      throw new DependencyError(
        'failed',
        `Cannot unload ${id}: ${dependents.map((p) => p.id).join(', ')} depend${dependents.length === 1 ? 's' : ''} on it. Unload ${dependents.length === 1 ? 'it' : 'them'} first.`,
        { pluginId: id },
      );
    }
    if (plugin.state === 'started') await this.stop(id);
    await this.teardown(plugin);
    plugin.lifecycle.transition('unloaded');
    this.plugins.delete(id);
    this.order = this.order.filter((o) => o !== id);
  }

  /** Calls an `@Expose`d method of a started plugin. */
  async call<T = unknown>(id: string, method: string, ...args: unknown[]): Promise<T> {
    const plugin = this.get(id);
    if (plugin.state !== 'started') throw new PluginStateError(id, plugin.state, `call ${method}() on`);
    if (!plugin.description!.exposed.includes(method)) throw new MethodNotExposedError(id, method);
    return (await plugin.runtime!.call(method, args)) as T;
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
    const deadline = performance.now() + (this.options.closeTimeoutMs ?? 10_000);
    for (const id of [...this.order].reverse()) {
      const plugin = this.plugins.get(id);
      if (!plugin) continue;
      const remaining = deadline - performance.now();
      if (plugin.state === 'started' && remaining > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          this.stop(id).catch((e) => this.warn(plugin, `stop failed: ${String(e)}`)),
          new Promise((resolve) => (timer = setTimeout(resolve, remaining))),
        ]);
        clearTimeout(timer);
      }
      await this.teardown(plugin);
    }
    this.bus.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ------------------------------------------------------------------ PluginDirectory (for the gateway)

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
    if (existing) this.plugins.delete(manifest.id);
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
      gateway: this.gateway.portFor(plugin.id),
      onCrash: (error) => this.onCrash(plugin, runtime, error),
    });
    const description = await runtime.load().catch(async (e: unknown) => {
      await this.gateway.release(plugin.id);
      throw e;
    });
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
        if (plugin.state !== 'started') throw new PluginStateError(plugin.id, plugin.state, `deliver '${event.topic}' to`);
        const methods = handlers.filter((h) => matched.includes(h.pattern)).map((h) => h.method);
        await plugin.runtime!.deliverEvent(event.topic, event.data, event.source, methods);
      },
    });
  }

  private onCrash(plugin: ManagedPlugin, runtime: PluginRuntime, error: PluginHostError): void {
    if (plugin.runtime !== runtime && plugin.runtime !== undefined) return;
    this.bus.unsubscribe(plugin.id);
    void this.gateway.release(plugin.id);
    this.logger.error({ plugin: plugin.id, code: error.code }, error.message);
    this.settle(plugin, 'crashed', error);
  }

  /** Moves a plugin to `failed` or `crashed` unless it already ended there. */
  private settle(plugin: ManagedPlugin, to: 'failed' | 'crashed', error: PluginHostError): void {
    plugin.error = error;
    if (plugin.state === 'crashed' || plugin.state === 'failed' || plugin.state === 'unloaded') return;
    const target = to === 'failed' && ['started', 'stopped'].includes(plugin.state) ? 'crashed' : to;
    plugin.lifecycle.transition(target, error);
  }

  private warn(plugin: ManagedPlugin, message: string): void {
    plugin.warnings.push(message);
    this.logger.warn({ plugin: plugin.id }, message);
    this.bus.emitHost({ type: 'plugin.warning', pluginId: plugin.id, message, at: Date.now() });
  }
}

function asHostError(e: unknown, pluginId: string): PluginHostError {
  if (e instanceof PluginHostError) return e;
  return new PluginLoadError(`Plugin '${pluginId}': ${(e as Error)?.message ?? String(e)}`, { pluginId, cause: e });
}
