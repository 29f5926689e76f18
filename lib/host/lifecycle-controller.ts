import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import {
  DependencyError,
  InvalidArgumentError,
  PluginCrashedError,
  PluginHostError,
  PluginLoadError,
  PluginNotFoundError,
  PluginStateError,
  PluginSuspendedError,
} from '../errors.js';
import type { IEventBus } from '../events/event-bus.js';
import { isValidTopicPattern } from '../events/topic.js';
import type { IApiGateway } from '../gateway/api-gateway.js';
import type { IResourceMonitor } from '../monitor/resource-monitor.js';
import type { GatewayPort } from '../runtimes/protocol.js';
import type { IRuntimeFactory, PluginRuntime } from '../runtimes/runtime.js';
import type { HostMonitoring } from './host-monitoring.js';
import type { HostOptions } from './host-options.js';
import type { PluginState } from './lifecycle.js';
import type { ManagedPlugin } from './managed-plugin.js';
import type { PluginTable } from './plugin-table.js';

/** The host's services its lifecycle controller and recovery flow act through. */
export interface HostParts {
  readonly options: HostOptions;
  readonly logger: Logger;
  readonly bus: IEventBus;
  readonly gateway: IApiGateway;
  readonly runtimes: IRuntimeFactory;
  readonly monitor: IResourceMonitor;
  readonly monitoring: HostMonitoring;
  /** False when the host runs with monitoring off. */
  readonly measured: boolean;
}

/** What the lifecycle controller tells the crash-recovery flow. */
export interface LifecycleListener {
  /** The plugin reached `started` (by hand or by recovery). */
  started(pluginId: string): void;
  /** The plugin is being unloaded: nothing more is to be done for it. */
  unloading(pluginId: string): void;
  /** The plugin's sandbox crashed, or the host killed it. */
  crashed(plugin: ManagedPlugin, runtime: PluginRuntime, error: PluginHostError): void;
  /** The host is closing. */
  closing(): void;
}

/**
 * Moves a host's plugins through their lifecycle: builds and tears down sandboxes, starts,
 * stops, restarts (carrying state across), unloads and kills them, one operation at a time
 * per plugin, and runs each invocation with its bookkeeping. `PluginHost` delegates to it.
 *
 * @example
 * const lifecycle = new LifecycleController(parts, plugins, recoveryListener);
 * await lifecycle.instantiate(plugin); // 'loaded'
 * await lifecycle.start(plugin);       // 'started'
 * await lifecycle.restart(plugin);     // a fresh sandbox, its state carried across
 */
export class LifecycleController {
  private closing = false;

  constructor(
    private readonly parts: HostParts,
    private readonly plugins: PluginTable,
    private readonly listener: LifecycleListener,
  ) {}

  /** True once the host is closing: no sandbox is built after that, and no crash is recovered from. */
  get closed(): boolean {
    return this.closing;
  }

  /** Runs `onStart` and subscribes the plugin to its events. */
  start(plugin: ManagedPlugin): Promise<void> {
    return this.serially(plugin, () => this.startNow(plugin));
  }

  /** Runs `onStop`; the sandbox stays, so `start` resumes it. */
  stop(plugin: ManagedPlugin): Promise<void> {
    return this.serially(plugin, () => this.stopNow(plugin));
  }

  /** A fresh sandbox, started again with the plugin's state carried across. */
  restart(plugin: ManagedPlugin): Promise<void> {
    return this.serially(plugin, () => this.restartNow(plugin));
  }

  /** Stops and removes a plugin. Refused while a loaded plugin requires it. */
  unload(plugin: ManagedPlugin): Promise<void> {
    return this.serially(plugin, async () => {
      const id = plugin.id;
      const dependents = [...this.plugins.values()].filter((p) => p.manifest.dependencies?.some((d) => d.id === plugin.id && !d.optional));
      if (dependents.length > 0) {
        throw new DependencyError(
          'failed',
          `Cannot unload ${id}: ${dependents.map((p) => p.id).join(', ')} depend${dependents.length === 1 ? 's' : ''} on it. Unload ${dependents.length === 1 ? 'it' : 'them'} first.`,
          { pluginId: id },
        );
      }
      this.listener.unloading(id);
      if (plugin.state === 'started') await this.stopNow(plugin);
      await this.teardown(plugin);
      this.parts.monitoring.unwatch(id);
      this.parts.monitor.untrack(id);
      plugin.lifecycle.transition('unloaded');
      this.plugins.remove(id);
    });
  }

  /** Ends the plugin's sandbox now; it becomes `crashed` (and recovery applies). */
  async kill(plugin: ManagedPlugin, reason: string): Promise<void> {
    await this.serially(plugin, async () => {
      const runtime = plugin.runtime;
      if (!runtime) return;
      await runtime.dispose();
      this.listener.crashed(plugin, runtime, new PluginCrashedError(plugin.id, `Plugin '${plugin.id}' was killed by the host: ${reason}.`));
    });
  }

  /**
   * Stops every loaded plugin, the last loaded first, and disposes every sandbox. Plugins get
   * `budgetMs` in all for their `onStop`; after that the rest are disposed without waiting,
   * so a hanging `onStop` cannot hold the host open.
   */
  async closeAll(budgetMs: number): Promise<void> {
    this.closing = true;
    this.listener.closing();
    const deadline = performance.now() + budgetMs;
    for (const id of this.plugins.stopOrder()) {
      const plugin = this.plugins.find(id);
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
  }

  /**
   * Lifecycle operations on one plugin run one at a time (a user restart, a governor action
   * and a recovery timer may all ask at once); each waits for the previous one to settle.
   */
  serially<T>(plugin: ManagedPlugin, op: () => Promise<T>): Promise<T> {
    const run = plugin.pending.then(op, op);
    plugin.pending = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** `restart` for a caller already inside `serially` (the recovery flow). */
  async restartNow(plugin: ManagedPlugin): Promise<void> {
    if (plugin.state === 'unloaded') throw new PluginNotFoundError(plugin.id);
    if (plugin.state === 'started' && plugin.hasHook('serializeState')) await this.takeSnapshot(plugin);
    if (plugin.state === 'started') await this.stopNow(plugin);
    plugin.release();
    plugin.throttleMs = 0;
    this.parts.monitoring.reset(plugin);
    await this.teardown(plugin);
    await this.instantiate(plugin);
    if (plugin.snapshot && plugin.hasHook('deserializeState')) {
      await plugin.runtime!.hook('deserializeState', plugin.snapshot.state);
    }
    await this.startNow(plugin);
  }

  /** Builds a fresh sandbox for the plugin and moves it to `loaded`. */
  async instantiate(plugin: ManagedPlugin): Promise<void> {
    const { gateway } = this.parts;
    const began = performance.now();
    gateway.register({ pluginId: plugin.id, manifest: plugin.manifest, dir: plugin.descriptor.dir, limits: plugin.limits });
    const runtime = this.parts.runtimes.create({
      pluginId: plugin.id,
      dir: plugin.descriptor.dir,
      manifest: plugin.manifest,
      limits: plugin.limits,
      gateway: this.measuredPort(plugin.id),
      onCrash: (error) => this.listener.crashed(plugin, runtime, error),
    });
    const description = await runtime.load().catch(async (e: unknown) => {
      await gateway.release(plugin.id);
      throw e;
    });
    if (this.closing) {
      await runtime.dispose();
      await gateway.release(plugin.id);
      throw new PluginStateError(plugin.id, 'closing', 'load');
    }
    const bad = description.handlers.find((h) => !isValidTopicPattern(h.pattern));
    if (bad) {
      await runtime.dispose();
      await gateway.release(plugin.id);
      throw new InvalidArgumentError(`@OnEvent('${bad.pattern}') on ${bad.method}() is not a valid topic pattern.`, { pluginId: plugin.id });
    }
    plugin.runtime = runtime;
    plugin.description = description;
    plugin.error = undefined;
    plugin.loadTimeMs = performance.now() - began;
    plugin.lifecycle.transition('loaded');
  }

  /** Disposes a plugin's sandbox and closes what it holds through the gateway. */
  async teardown(plugin: ManagedPlugin): Promise<void> {
    await plugin.runtime?.dispose();
    plugin.runtime = undefined;
    await this.parts.gateway.release(plugin.id);
  }

  /** Runs one invocation of a plugin with its bookkeeping: in-flight record, metrics, state snapshots. */
  async tracked<T>(plugin: ManagedPlugin, operation: string, run: () => Promise<T>, chain?: readonly string[]): Promise<T> {
    const { measured, monitor } = this.parts;
    const began = performance.now();
    const token = plugin.begin(operation, chain);
    if (measured) {
      monitor.touch(plugin.id);
      this.parts.monitoring.poke();
    }
    let ok = false;
    try {
      const result = await run();
      ok = true;
      return result;
    } finally {
      const durationMs = performance.now() - began;
      plugin.end(token, durationMs, ok);
      if (measured) monitor.recordCall(plugin.id, operation, durationMs, ok);
      if (ok && plugin.hasHook('serializeState') && Date.now() - plugin.lastSnapshotAt >= (this.parts.options.stateSnapshotIntervalMs ?? 5000)) {
        void this.takeSnapshot(plugin).catch(() => undefined);
      }
    }
  }

  /** Moves a plugin to `failed` or `crashed` unless it already ended there. */
  settle(plugin: ManagedPlugin, to: 'failed' | 'crashed', error: PluginHostError): void {
    plugin.error = error;
    if (plugin.state === 'crashed' || plugin.state === 'failed' || plugin.state === 'unloaded') return;
    const target = to === 'failed' && ['started', 'stopped'].includes(plugin.state) ? 'crashed' : to;
    plugin.lifecycle.transition(target, error);
  }

  /** Keeps a warning on the plugin's record (the last 50), logs it and reports it as `plugin.warning`. */
  warn(plugin: ManagedPlugin, message: string): void {
    if (plugin.warnings.length >= 50) plugin.warnings.shift();
    plugin.warnings.push(message);
    this.parts.logger.warn({ plugin: plugin.id }, message);
    this.parts.bus.emitHost({ type: 'plugin.warning', pluginId: plugin.id, message, at: Date.now() });
  }

  private async startNow(plugin: ManagedPlugin): Promise<void> {
    const id = plugin.id;
    for (const dep of plugin.manifest.dependencies ?? []) {
      if (!dep.optional && this.plugins.find(dep.id)?.state !== 'started') {
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
    this.listener.started(id);
    this.parts.monitoring.watch(plugin);
    if (this.parts.measured && plugin.hasHook('checkHealth')) this.parts.monitoring.poke();
  }

  private async stopNow(plugin: ManagedPlugin): Promise<void> {
    if (plugin.state !== 'started') throw new PluginStateError(plugin.id, plugin.state, 'stop');
    plugin.lifecycle.transition('stopping');
    this.parts.bus.unsubscribe(plugin.id);
    try {
      await plugin.runtime!.hook('onStop');
    } catch (e) {
      // A failing cleanup must not keep a plugin running: it is stopped, and the error kept.
      plugin.error = asHostError(e, plugin.id);
      this.warn(plugin, `onStop failed: ${plugin.error.message}`);
    }
    if ((plugin.state as PluginState) === 'stopping') plugin.lifecycle.transition('stopped');
  }

  /** Subscribes a started plugin's `@OnEvent` handlers to the bus. */
  private subscribe(plugin: ManagedPlugin): void {
    const handlers = plugin.description?.handlers ?? [];
    if (handlers.length === 0) return;
    this.parts.bus.subscribe({
      pluginId: plugin.id,
      patterns: [...new Set(handlers.map((h) => h.pattern))],
      capabilities: plugin.manifest.capabilities ?? [],
      accepts: (topic) => this.parts.gateway.mayReceive(plugin.id, topic),
      deliver: async (event, matched) => {
        if (plugin.state !== 'started' || !plugin.runtime) throw new PluginStateError(plugin.id, plugin.state, `deliver '${event.topic}' to`);
        if (plugin.suspended !== undefined) throw new PluginSuspendedError(plugin.id, plugin.suspended);
        const methods = handlers.filter((h) => matched.includes(h.pattern)).map((h) => h.method);
        const runtime = plugin.runtime;
        await this.tracked(plugin, `on ${methods.join(',')}`, () => runtime.deliverEvent(event.topic, event.data, event.source, methods));
      },
    });
  }

  /** The plugin's gateway channel; each request marks the plugin active for the metrics sampler. */
  private measuredPort(id: string): GatewayPort {
    const port = this.parts.gateway.portFor(id);
    if (!this.parts.measured) return port;
    return {
      request: (request) => {
        this.parts.monitor.touch(id);
        return port.request(request);
      },
    };
  }

  /** Keeps the plugin's current `serializeState()` as its last good snapshot. */
  private async takeSnapshot(plugin: ManagedPlugin): Promise<void> {
    plugin.lastSnapshotAt = Date.now();
    const state = await plugin.runtime!.hook('serializeState');
    plugin.snapshot = { state, at: Date.now() };
  }
}

/** Any error from loading or running a plugin, as a `PluginHostError` that names it. */
export function asHostError(e: unknown, pluginId: string): PluginHostError {
  if (e instanceof PluginHostError) return e;
  return new PluginLoadError(`Plugin '${pluginId}': ${(e as Error)?.message ?? String(e)}`, { pluginId, cause: e });
}
