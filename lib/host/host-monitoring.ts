import { join } from 'node:path';
import { merge, Subject, type Observable, type Subscription } from 'rxjs';
import type { AuditEvent } from '../gateway/api-gateway.js';
import { Governor, type GovernorOptions } from '../monitor/governor.js';
import { Profiler, type ProfileTarget } from '../monitor/profiler.js';
import type { IResourceMonitor } from '../monitor/resource-monitor.js';
import { SecurityMonitor, type SecurityMonitorOptions } from '../monitor/security-monitor.js';
import { resolveThresholds } from '../monitor/thresholds.js';
import type { Alert, PluginController, Thresholds } from '../monitor/types.js';
import { checkPluginHealth, type HealthOptions, type HealthReport } from './health.js';
import type { ManagedPlugin } from './managed-plugin.js';

/** Host options of the monitoring services (the seed's automated responses included). */
export interface MonitoringOptions {
  /** Metrics sampling, thresholds, enforcement, health heartbeat. Default true; false measures nothing (and enforces nothing). */
  enabled?: boolean;
  /** Host-wide thresholds (manifests may override per plugin). */
  thresholds?: Partial<Thresholds>;
  /** Actions per threshold and CPU enforcement (`throttleOnHighCPU`, default true). */
  governor?: GovernorOptions;
  /** Burst of permission denials that counts as a threat, and `isolateOnSecurityThreat` (default true). */
  security?: SecurityMonitorOptions;
  /**
   * The seed's `scaleOnHighLoad`: worker-pool runtimes may add threads for stateless plugins
   * under load. JS plugins run in one isolate each, so it has no effect on them.
   */
  scaleOnHighLoad?: boolean;
}

/**
 * Wires the monitoring services to one host: metrics samples feed the governor, the audit
 * stream feeds the security monitor, both act through the host's controller, and their
 * alerts come out as one stream.
 */
export class HostMonitoring {
  readonly governor: Governor;
  readonly security: SecurityMonitor;
  readonly profiler: Profiler;
  private readonly own = new Subject<Alert>();
  readonly alerts$: Observable<Alert>;
  private readonly subscriptions: Subscription[] = [];
  private heartbeat?: NodeJS.Timeout;
  private beat?: { plugins: () => Iterable<ManagedPlugin>; options: HealthOptions };
  private checking = false;

  constructor(
    private readonly options: MonitoringOptions,
    readonly monitor: IResourceMonitor,
    audit$: Observable<AuditEvent>,
    controllerFor: (holder: 'governor' | 'security') => PluginController,
    dataDir: string,
    target: (pluginId: string) => ProfileTarget,
  ) {
    this.governor = new Governor(options.governor ?? {}, controllerFor('governor'));
    this.security = new SecurityMonitor(options.security ?? {}, controllerFor('security'));
    this.profiler = new Profiler({ outDir: join(dataDir, 'profiles') }, target);
    this.alerts$ = merge(this.governor.alerts$, this.security.alerts$, this.own);
    if (options.enabled !== false) {
      this.subscriptions.push(
        monitor.metrics$.subscribe((m) => this.governor.observe(m)),
        audit$.subscribe((e) => this.security.observe(e)),
      );
      monitor.start();
    }
  }

  /**
   * The heartbeat: every `intervalMs` each started plugin is checked (see checkPluginHealth);
   * unresponsive and unhealthy ones raise an alert naming what they are running. It only
   * runs while there is something to check (a plugin with `checkHealth()`, or operations in
   * flight): a timer that wakes an idle process costs CPU of its own. `poke()` re-arms it.
   */
  startHeartbeat(plugins: () => Iterable<ManagedPlugin>, options: HealthOptions = {}): void {
    if (options.intervalMs === 0) return;
    this.beat = { plugins, options };
    this.poke();
  }

  /** Something may need checking (an operation began, a plugin started): make sure the heartbeat is armed. */
  poke(): void {
    if (!this.beat || this.heartbeat) return;
    const { plugins, options } = this.beat;
    this.heartbeat = setTimeout(async () => {
      await this.checkAll(plugins(), options);
      this.heartbeat = undefined;
      const watched = [...plugins()].some((p) => p.state === 'started' && (p.hasHook('checkHealth') || p.busy));
      if (watched) this.poke();
    }, options.intervalMs ?? 30_000);
    this.heartbeat.unref();
  }

  private async checkAll(plugins: Iterable<ManagedPlugin>, options: HealthOptions): Promise<void> {
    // One round at a time: hung plugins make a round slow, and rounds must not pile up.
    if (this.checking) return;
    this.checking = true;
    try {
      const started = [...plugins].filter((p) => p.state === 'started');
      const reports = await Promise.all(started.map((p) => checkPluginHealth(p, options)));
      reports.forEach((report) => this.reportHealth(report, options));
    } finally {
      this.checking = false;
    }
  }

  private reportHealth(report: HealthReport, options: HealthOptions): void {
    if (report.status !== 'unresponsive' && report.status !== 'unhealthy') return;
    const running = report.inFlight.map((f) => `${f.operation} for ${f.forMs} ms`).join(', ');
    this.alert({
      kind: 'unresponsive',
      pluginId: report.pluginId,
      value: Math.max(0, ...report.inFlight.map((f) => f.forMs)),
      threshold: options.timeoutMs ?? 2000,
      action: 'log',
      message: `Plugin '${report.pluginId}' is ${report.status}${running ? `; running: ${running}` : ''}.`,
      evidence: report,
      at: report.at,
    });
  }


  /** A plugin's circuit breaker opened: alert with its crash reports as evidence. */
  crashLoop(pluginId: string, crashes: number, retryAt: number, evidence: unknown): void {
    this.alert({
      kind: 'crashLoop',
      pluginId,
      value: crashes,
      threshold: crashes,
      action: 'suspend',
      message: `Plugin '${pluginId}' crashed ${crashes} times; it is quarantined until ${new Date(retryAt).toISOString()}.`,
      evidence,
      at: Date.now(),
    });
  }

  /** Raise an alert of the host's own (unresponsive plugin, crash loop). */
  alert(alert: Alert): void {
    this.own.next(alert);
  }

  /** Start (or update) watching a plugin with its thresholds and CPU limit. */
  watch(plugin: ManagedPlugin): void {
    this.governor.watch(plugin.id, resolveThresholds(this.options.thresholds, plugin.manifest.thresholds), plugin.limits.maxCpuPercent);
  }

  /** A plugin got a fresh sandbox or was resumed by hand: forget what was held against it. */
  reset(plugin: ManagedPlugin): void {
    this.security.forget(plugin.id);
    this.governor.unwatch(plugin.id);
    if (plugin.state === 'started') this.watch(plugin);
  }

  unwatch(pluginId: string): void {
    this.governor.unwatch(pluginId);
    this.security.forget(pluginId);
  }

  dispose(): void {
    clearTimeout(this.heartbeat);
    this.beat = undefined;
    for (const s of this.subscriptions) s.unsubscribe();
    this.monitor.stop();
    this.governor.dispose();
    this.security.dispose();
    void this.profiler.close();
    this.own.complete();
  }
}
