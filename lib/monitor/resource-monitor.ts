import { Observable, Subject } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import { IHostOptions } from '../di/tokens.js';
import { InvalidArgumentError } from '../errors.js';
import type { PluginUsage } from '../gateway/api-gateway.js';
import type { RuntimeMetrics } from '../runtimes/runtime.js';
import { CallStats } from './call-stats.js';
import { toPrometheusText } from './prometheus.js';
import { RingBuffer } from './ring-buffer.js';
import type { PluginMetrics } from './types.js';

/**
 * What the host gives the monitor for one plugin. Called once per plugin per sample, so
 * each should be cheap (read a few counters).
 *
 * @example
 * const source: MetricsSource = {
 *   runtime: () => managed.runtime?.metrics(),
 *   usage: () => gateway.usage('hello-world'),
 *   limits: () => ({ maxMemoryMB: 128, maxCpuPercent: 50 }),
 * };
 */
export interface MetricsSource {
  /** `undefined` while the plugin has no sandbox (not loaded yet, or between a crash and a restart). */
  runtime(): RuntimeMetrics | undefined;
  usage(): PluginUsage | undefined;
  limits(): { maxMemoryMB: number; maxCpuPercent: number };
}

/**
 * How the {@link ResourceMonitor} samples (`HostOptions.metrics`).
 *
 * @example
 * container.register(IHostOptions, { useValue: { metrics: { intervalMs: 5000, historySize: 720 } } });
 */
export interface ResourceMonitorOptions {
  /** Sampling interval, ms (default 1000). The timer is unref'd. */
  intervalMs?: number;
  /** Samples kept per plugin (default 600 = 10 minutes at 1 s). */
  historySize?: number;
  /** How often a plugin with no activity is read anyway (memory can shrink on its own), ms. Default 60 000. */
  sweepMs?: number;
  /** Clock for specs, epoch ms (default `Date.now` for timestamps, `performance.now` for intervals). */
  now?: () => number;
}

/**
 * Measures what each plugin costs: memory, CPU, gateway usage and per-method call latency.
 *
 * History resolution: one entry per sampling interval **in which something changed**. A
 * plugin whose CPU time, memory, gateway counters, call count and last activity are the
 * same as at its previous sample gets no entry and no `metrics$` item, so an idle plugin
 * costs a few number comparisons per sample. The one exception is the sample where the
 * plugin goes idle: its CPU rate falls to 0, which is a change and is recorded once.
 *
 * @example
 * monitor.track('hello-world', source);
 * monitor.metrics$.subscribe((m) => console.log(m.pluginId, m.cpu.current, m.memory.current));
 * monitor.start();
 * monitor.recordCall('hello-world', 'greet', 1.7, true);
 * monitor.history('hello-world', { from: Date.now() - 60_000 });
 */
export interface IResourceMonitor {
  /** One item per plugin per sample that changed something (the object history keeps: treat it as read-only). */
  readonly metrics$: Observable<PluginMetrics>;
  /** Start measuring `pluginId`; reads `source.runtime()` once for its CPU baseline. Tracking it again swaps the source and keeps its history. */
  track(pluginId: string, source: MetricsSource): void;
  /** Forget `pluginId`: its history, call statistics and source. */
  untrack(pluginId: string): void;
  /** Hot path: called by the host after every call/event/hook into a plugin. Ignored for untracked plugins. */
  recordCall(pluginId: string, method: string, durationMs: number, ok: boolean): void;
  /** A gateway request or other activity (updates lastActivity). */
  touch(pluginId: string): void;
  /** Metrics computed now (CPU rate over the time since the last sample); `undefined` if not tracked. */
  metrics(pluginId: string): PluginMetrics | undefined;
  /** Recorded samples, oldest first, whose `at` is within `[from, to]` (both inclusive). */
  history(pluginId: string, range?: { from?: number; to?: number }): PluginMetrics[];
  /** Sample every tracked plugin now (the timer calls this; specs and the host may too). */
  sample(): void;
  /** Prometheus text exposition format 0.0.4 of the latest metrics of every plugin. */
  prometheusText(): string;
  start(): void;
  stop(): void;
}
export const IResourceMonitor = Symbol.for('logomesh.IResourceMonitor');

const MiB = 2 ** 20;
/** What a plugin without gateway access has used. */
const NO_USAGE: PluginUsage = Object.freeze({
  filesystem: Object.freeze({ filesOpen: 0, bytesRead: 0, bytesWritten: 0 }),
  network: Object.freeze({ bytesIn: 0, bytesOut: 0, requestCount: 0 }),
  denied: 0,
});

/** Indexes into `Tracked.seen`: what the last recorded sample saw. */
const enum Seen { CpuMs, Rate, Memory, Calls, Activity, FsOpen, FsRead, FsWritten, NetIn, NetOut, NetRequests, Length }

class Tracked {
  readonly calls = new CallStats();
  readonly seen = new Float64Array(Seen.Length).fill(NaN);
  lastActivity = 0;
  /** Something ran since the last sample (a call, an event, a gateway request). */
  active = true;
  lastSweep: number;
  peak = 0;
  cpuTotalMs = 0;
  rate = 0;
  lastCpuMs: number;
  lastMono: number;
  constructor(
    readonly id: string,
    public source: MetricsSource,
    readonly history: RingBuffer<PluginMetrics>,
    readonly trackedMono: number,
  ) {
    // CPU used before tracking (loading, an earlier life) is not this plugin's tracked life.
    this.lastCpuMs = source.runtime()?.cpuTimeMs ?? 0;
    this.lastMono = trackedMono;
    this.lastSweep = trackedMono;
  }

  /** Stores `value` at `i`; 1 if it differs from what was there, else 0. */
  observe(i: Seen, value: number): number {
    if (this.seen[i] === value) return 0;
    this.seen[i] = value;
    return 1;
  }
}

/**
 * The default {@link IResourceMonitor}. Register it as a singleton; the host wires
 * `track`/`untrack` to plugin lifecycles and `recordCall` to every call into a plugin.
 *
 * @example
 * const monitor = new ResourceMonitor({ metrics: { intervalMs: 1000 } });
 * monitor.track('hello-world', source);
 * monitor.start();
 * http.createServer((_, res) => res.end(monitor.prometheusText()));
 */
@injectable()
export class ResourceMonitor implements IResourceMonitor {
  private readonly subject = new Subject<PluginMetrics>();
  private readonly plugins = new Map<string, Tracked>();
  private readonly intervalMs: number;
  private readonly historySize: number;
  private readonly sweepMs: number;
  private readonly wall: () => number;
  private readonly mono: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private slow = false;
  readonly metrics$ = this.subject.asObservable();

  constructor(@inject(IHostOptions) options: { metrics?: ResourceMonitorOptions } = {}) {
    const { intervalMs = 1000, historySize = 600, sweepMs = 60_000, now } = options.metrics ?? {};
    this.sweepMs = sweepMs;
    if (!(intervalMs >= 1 && intervalMs <= 2 ** 31 - 1)) {
      throw new InvalidArgumentError(`metrics.intervalMs must be between 1 and 2147483647 ms, got ${intervalMs}.`);
    }
    if (!Number.isInteger(historySize) || historySize < 1) {
      throw new InvalidArgumentError(`metrics.historySize must be a positive integer, got ${historySize}.`);
    }
    this.intervalMs = intervalMs;
    this.historySize = historySize;
    this.wall = now ?? Date.now;
    this.mono = now ?? (() => performance.now());
  }

  track(pluginId: string, source: MetricsSource): void {
    const existing = this.plugins.get(pluginId);
    if (existing) existing.source = source;
    else this.plugins.set(pluginId, new Tracked(pluginId, source, new RingBuffer(this.historySize), this.mono()));
  }

  untrack(pluginId: string): void {
    this.plugins.delete(pluginId);
  }

  recordCall(pluginId: string, method: string, durationMs: number, ok: boolean): void {
    const s = this.plugins.get(pluginId);
    if (s === undefined) return;
    s.calls.record(method, durationMs, ok);
    s.lastActivity = this.wall();
    s.active = true;
    if (this.slow) this.wake();
  }

  touch(pluginId: string): void {
    const s = this.plugins.get(pluginId);
    if (s === undefined) return;
    s.lastActivity = this.wall();
    s.active = true;
    if (this.slow) this.wake();
  }

  metrics(pluginId: string): PluginMetrics | undefined {
    const s = this.plugins.get(pluginId);
    if (s === undefined) return undefined;
    const t = this.mono();
    const rt = s.source.runtime();
    const memory = rt ? rt.memoryBytes : 0;
    const dCpu = cpuDelta(s.lastCpuMs, rt ? rt.cpuTimeMs : 0);
    const dWall = t - s.lastMono;
    if (memory > s.peak) s.peak = memory;
    // Not a sample: the baselines stay put, so the timer's intervals stay whole.
    return this.snapshot(s, this.wall(), t, memory, dWall > 0 ? (dCpu / dWall) * 100 : s.rate, s.cpuTotalMs + dCpu, s.source.usage() ?? NO_USAGE);
  }

  history(pluginId: string, range: { from?: number; to?: number } = {}): PluginMetrics[] {
    const s = this.plugins.get(pluginId);
    if (s === undefined) return [];
    const { from = -Infinity, to = Infinity } = range;
    const out: PluginMetrics[] = [];
    for (const m of s.history) if (m.at >= from && m.at <= to) out.push(m);
    return out;
  }

  sample(): void {
    const at = this.wall();
    const t = this.mono();
    for (const s of this.plugins.values()) {
      // An idle plugin is not even read (reading a sandbox's numbers is what costs): nothing
      // runs in it without a call, an event or a host reply, and each of those marks it
      // active. Idle ones are swept every `sweepMs` for what changes on its own (GC).
      if (!s.active && s.rate === 0 && t - s.lastSweep < this.sweepMs) continue;
      s.active = false;
      s.lastSweep = t;
      try {
        this.sampleOne(s, at, t);
      } catch {
        // A source that throws (a sandbox torn down mid-read) skips this sample; the next
        // one measures across the gap. The timer must not die with it, nor the others.
      }
    }
  }

  prometheusText(): string {
    const latest: PluginMetrics[] = [];
    for (const s of this.plugins.values()) {
      const m = s.history.last() ?? this.metrics(s.id);
      if (m) latest.push(m);
    }
    return toPrometheusText(latest);
  }

  /**
   * Starts sampling. The timer adapts: every `intervalMs` while some plugin is busy, every
   * `sweepMs` once all are idle (waking the process every second costs measurable CPU even
   * with nothing to do), and back to `intervalMs` at the next activity.
   */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(this.intervalMs);
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.slow = ms > this.intervalMs;
    this.timer = setTimeout(() => {
      this.sample();
      if (this.running) this.schedule(this.busy() ? this.intervalMs : Math.max(this.intervalMs, this.sweepMs));
    }, ms);
    this.timer.unref();
  }

  /** Some plugin ran since its last sample, or its last sample still showed CPU in use. */
  private busy(): boolean {
    for (const s of this.plugins.values()) if (s.active || s.rate !== 0) return true;
    return false;
  }

  /** Activity while the timer is slow: sample at the normal pace again. */
  private wake(): void {
    if (this.slow && this.running) this.schedule(this.intervalMs);
  }

  /** Stop the timer, forget every plugin and complete `metrics$`. */
  dispose(): void {
    this.stop();
    this.plugins.clear();
    this.subject.complete();
  }

  private sampleOne(s: Tracked, at: number, t: number): void {
    const rt = s.source.runtime();
    // No sandbox: nothing in use, and the next sandbox's CPU time starts from 0.
    const cpuMs = rt ? rt.cpuTimeMs : 0;
    const memory = rt ? rt.memoryBytes : 0;
    const dCpu = cpuDelta(s.lastCpuMs, cpuMs);
    const dWall = t - s.lastMono;
    const rate = dWall > 0 ? (dCpu / dWall) * 100 : s.rate;
    s.cpuTotalMs += dCpu;
    s.lastCpuMs = cpuMs;
    s.lastMono = t;
    s.rate = rate;
    if (memory > s.peak) s.peak = memory;
    const usage = s.source.usage() ?? NO_USAGE;
    // Sums, not `||`: every observe must run so `seen` is whole for the next comparison.
    let changes = s.observe(Seen.CpuMs, cpuMs) + s.observe(Seen.Rate, rate) + s.observe(Seen.Memory, memory);
    changes += s.observe(Seen.Calls, s.calls.count) + s.observe(Seen.Activity, s.lastActivity);
    const { filesystem: fs, network: net } = usage;
    changes += s.observe(Seen.FsOpen, fs.filesOpen) + s.observe(Seen.FsRead, fs.bytesRead) + s.observe(Seen.FsWritten, fs.bytesWritten);
    changes += s.observe(Seen.NetIn, net.bytesIn) + s.observe(Seen.NetOut, net.bytesOut) + s.observe(Seen.NetRequests, net.requestCount);
    if (changes === 0) return;
    const m = this.snapshot(s, at, t, memory, rate, s.cpuTotalMs, usage);
    s.history.push(m);
    this.subject.next(m);
  }

  private snapshot(s: Tracked, at: number, t: number, memory: number, rate: number, cpuTotalMs: number, usage: PluginUsage): PluginMetrics {
    const limits = s.source.limits();
    const life = t - s.trackedMono;
    const { network: net, filesystem: fs } = usage;
    return {
      pluginId: s.id,
      at,
      memory: { current: memory, peak: s.peak, limit: limits.maxMemoryMB * MiB },
      cpu: { current: rate, average: life > 0 ? (cpuTotalMs / life) * 100 : 0, limit: limits.maxCpuPercent },
      network: { bytesIn: net.bytesIn, bytesOut: net.bytesOut, requestCount: net.requestCount },
      filesystem: { filesOpen: fs.filesOpen, bytesRead: fs.bytesRead, bytesWritten: fs.bytesWritten },
      executionTime: s.calls.totalMs,
      errorCount: s.calls.errors,
      lastActivity: s.lastActivity,
      calls: s.calls.snapshot(),
    };
  }
}

/** CPU ms used between two readings; a smaller reading means a new sandbox counting from 0. */
function cpuDelta(last: number, now: number): number {
  return now >= last ? now - last : now;
}
