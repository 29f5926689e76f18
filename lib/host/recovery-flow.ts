import { CircuitOpenError, PluginStateError, type PluginHostError } from '../errors.js';
import type { PluginRuntime } from '../runtimes/runtime.js';
import { CrashHandler, type RecoveryEvent, type RecoveryOptions } from './crash-handler.js';
import { asHostError, type HostParts, type LifecycleController, type LifecycleListener } from './lifecycle-controller.js';
import type { ManagedPlugin } from './managed-plugin.js';
import type { PluginTable } from './plugin-table.js';

/**
 * A host's crash recovery: a crashed plugin gets a crash report, settles as `crashed` and
 * its dependents are told; the crash handler's backoff and circuit breaker decide when it is
 * restarted (through the lifecycle controller), and a restart that fails counts as another
 * crash. When the plugin comes back, its dependents are told again.
 *
 * @example
 * const recovery = new RecoveryFlow({ breaker: { failures: 3 } }, parts, plugins, lifecycle);
 * recovery.crashed(plugin, runtime, error); // schedules a restart, or opens the breaker
 * recovery.unavailable(plugin, 'call upper() on'); // CircuitOpenError while the breaker is open
 */
export class RecoveryFlow implements LifecycleListener {
  private readonly handler: CrashHandler;

  constructor(
    options: RecoveryOptions,
    private readonly parts: HostParts,
    private readonly plugins: PluginTable,
    private readonly lifecycle: LifecycleController,
  ) {
    this.handler = new CrashHandler(options, (id) => this.recover(id), (e) => this.report(e));
  }

  started(pluginId: string): void {
    this.handler.started(pluginId);
  }

  unloading(pluginId: string): void {
    this.handler.forget(pluginId);
  }

  closing(): void {
    this.handler.dispose();
  }

  crashed(plugin: ManagedPlugin, runtime: PluginRuntime, error: PluginHostError): void {
    if (plugin.runtime !== runtime && plugin.runtime !== undefined) return;
    const { bus, gateway, logger, monitor } = this.parts;
    const wasStarted = plugin.state === 'started';
    const wasRunning = wasStarted || plugin.state === 'starting';
    bus.unsubscribe(plugin.id);
    plugin.recordCrash(error, monitor.metrics(plugin.id));
    gateway.release(plugin.id).catch((e: unknown) => logger.error({ plugin: plugin.id }, `releasing its handles failed: ${String(e)}`));
    logger.error({ plugin: plugin.id, code: error.code }, error.message);
    this.lifecycle.settle(plugin, 'crashed', error);
    if (wasStarted) this.notifyDependents(plugin.id, 'down');
    // A crash while being stopped or restarted by hand is not one to recover from.
    if (!this.lifecycle.closed && wasRunning) this.handler.crashed(plugin.id);
  }

  /** Why a plugin that is not started cannot take calls, as the most useful typed error. */
  unavailable(plugin: ManagedPlugin, attempted: string): PluginHostError {
    const retryAt = this.handler.retryAt(plugin.id);
    if (this.handler.state(plugin.id) === 'open' && retryAt) return new CircuitOpenError(plugin.id, retryAt);
    return new PluginStateError(plugin.id, plugin.state, attempted);
  }

  /** Restart after a crash (called by the crash handler after its backoff). */
  private async recover(id: string): Promise<void> {
    const plugin = this.plugins.find(id);
    if (!plugin || this.lifecycle.closed) return;
    await this.lifecycle.serially(plugin, async () => {
      if (this.lifecycle.closed || !['crashed', 'failed'].includes(plugin.state)) return;
      const crashes = plugin.crashes.length;
      try {
        await this.lifecycle.restartNow(plugin);
      } catch (e) {
        // A restart that failed without crashing (load, state restore or start refused) is a
        // crash too: its sandbox goes, and it counts toward the breaker.
        if (plugin.crashes.length === crashes && this.plugins.find(id) === plugin) {
          const error = asHostError(e, id);
          plugin.recordCrash(error, this.parts.monitor.metrics(id));
          await this.lifecycle.teardown(plugin);
          this.lifecycle.settle(plugin, 'crashed', error);
          this.handler.crashed(id);
        }
        return;
      }
      this.notifyDependents(id, 'up');
    });
  }

  /** Reports what the crash handler decided as host events (and a crash-loop alert when the breaker opens). */
  private report(e: RecoveryEvent): void {
    const at = Date.now();
    if (e.kind === 'scheduled') {
      this.parts.bus.emitHost({ type: 'plugin.recovering', pluginId: e.pluginId, attempt: e.attempt, delayMs: e.delayMs, at });
      return;
    }
    this.parts.bus.emitHost({ type: 'plugin.circuit', pluginId: e.pluginId, state: e.state, retryAt: e.retryAt, at });
    if (e.state === 'open') this.parts.monitoring.crashLoop(e.pluginId, e.crashes, e.retryAt!, this.plugins.find(e.pluginId)?.crashes.slice(-e.crashes));
  }

  /** Tells each started dependent that `dependency` went down or came back (event + hook). */
  private notifyDependents(dependency: string, direction: 'down' | 'up'): void {
    for (const p of this.plugins.values()) {
      if (p.state !== 'started' || !p.manifest.dependencies?.some((d) => d.id === dependency)) continue;
      this.parts.bus.emitHost({ type: direction === 'down' ? 'plugin.dependencyDown' : 'plugin.dependencyUp', pluginId: p.id, dependency, at: Date.now() });
      const hook = direction === 'down' ? 'onDependencyDown' : 'onDependencyUp';
      if (p.hasHook(hook)) {
        p.runtime!.hook(hook, dependency).catch((e: unknown) => this.lifecycle.warn(p, `${hook}(${dependency}) failed: ${String(e)}`));
      }
    }
  }
}
