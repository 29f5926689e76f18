import { Subject, type Observable } from 'rxjs';
import type { Alert, PluginController, PluginMetrics, ThresholdAction, Thresholds } from './types.js';

/** The alert kinds the governor raises from metrics samples. */
export type GovernedKind = 'memory' | 'cpu' | 'errors' | 'responseTime';

export interface GovernorOptions {
  /** Action per alert kind; defaults: memory 'log', cpu 'throttle', errors 'log', responseTime 'log'. */
  actions?: Partial<Record<GovernedKind, ThresholdAction>>;
  /** Seed policy: CPU over the limit is throttled, then suspended (default true). When false, cpu alerts only log. */
  throttleOnHighCPU?: boolean;
  /** Sliding window for the CPU rate, ms (default 5000). */
  cpuWindowMs?: number;
  /** First delay of the CPU ladder, ms (default 50); it doubles per consecutive over-limit sample. */
  throttleStartMs?: number;
  /** Cap of the CPU ladder, ms (default 2000); also the delay a 'throttle' action of another kind applies. */
  throttleMaxMs?: number;
  /** Over-limit samples at the cap before the plugin is suspended (default 3). */
  suspendAfterSamples?: number;
}

/** What the governor currently imposes on a plugin. */
export interface GovernorState {
  throttleMs: number;
  suspended: boolean;
}

/** One sample as alert evidence. */
export interface SampleEvidence {
  at: number;
  memoryPercent: number;
  cpu: number;
  errorCount: number;
  /** The slowest method's p90, ms. */
  p90: number;
}

/** `Alert.evidence` of every governor alert. */
export interface GovernorEvidence {
  /** The samples the decision was taken on (the errors window for 'errors', else the CPU window). */
  samples: SampleEvidence[];
  throttleMs: number;
  suspended: boolean;
}

/** Re-arm point of the percent kinds (memory, cpu): an alert repeats only after the value fell this many points under the threshold. */
export const HYSTERESIS_POINTS = 5;
/** The errors window: errors per minute is the errorCount increase over the last 60 s of samples. */
export const ERRORS_WINDOW_MS = 60_000;

const DEFAULT_ACTIONS: Record<GovernedKind, ThresholdAction> = { memory: 'log', cpu: 'throttle', errors: 'log', responseTime: 'log' };
type Hold = GovernedKind | 'ladder';

class Watched {
  samples: PluginMetrics[] = [];
  /** Kinds alerted and not yet back under their re-arm point. */
  readonly tripped = new Set<GovernedKind>();
  readonly throttles = new Set<Hold>();
  readonly suspends = new Set<Hold>();
  ladderMs = 0;
  atCap = 0;
  throttleMs = 0;
  constructor(public thresholds: Thresholds, public maxCpuPercent: number) {}
}

const fmt = (v: number) => `${Math.round(v * 10) / 10}`;
const reason = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Holds each watched plugin to its {@link Thresholds} and its CPU limit, one metrics
 * sample at a time (no timers: samples drive everything; windows use `sample.at`).
 *
 * - **memory / cpu**: alert when the value reaches the threshold; again only after it fell
 *   {@link HYSTERESIS_POINTS} under it. **errors / responseTime**: again after it fell under.
 * - **errors** per minute: errorCount increase over the last 60 s of samples, not
 *   extrapolated while less than a minute is known (a drop in errorCount, i.e. a restart,
 *   starts the windows over). **responseTime**: the largest p90 over `metrics.calls`.
 * - **cpu**: the windowed rate is `cpu.current` weighted by sample interval over
 *   `cpuWindowMs`. The `cpuPercent` threshold only alerts; its action runs unless it is
 *   'throttle', which is the ladder's job (recorded as 'log'). The ladder enforces
 *   `maxCpuPercent` (the limit): over it, throttle 50 ms doubling per sample up to 2000 ms;
 *   over it for 3 more samples at the cap, suspend; back at or under it, throttle 0 and
 *   resume. `throttleOnHighCPU: false` turns the ladder off and makes cpu alerts 'log' only.
 * - A 'throttle' or 'suspend' taken for a threshold is lifted when that kind re-arms; a
 *   plugin is resumed once nothing holds it suspended. 'restart' and 'kill' are awaited;
 *   a failure is reported as a second alert. Every lever pulled emits an alert.
 *
 * @example
 * const governor = new Governor({ cpuWindowMs: 5000 }, controller);
 * governor.alerts$.subscribe((a) => logger.warn(a, a.message));
 * governor.watch('notes', resolveThresholds(hostDefaults, manifest.thresholds), 50);
 * monitor.metrics$.subscribe((m) => governor.observe(m));
 */
export class Governor {
  private readonly plugins = new Map<string, Watched>();
  private readonly subject = new Subject<Alert>();
  readonly alerts$: Observable<Alert> = this.subject.asObservable();
  private readonly actions: Record<GovernedKind, ThresholdAction>;
  private readonly ladderOn: boolean;
  private readonly windowMs: number;
  private readonly ladderSteps: { startMs: number; maxMs: number; suspendAfter: number };

  constructor(options: GovernorOptions, private readonly controller: PluginController, private readonly now: () => number = Date.now) {
    this.actions = { ...DEFAULT_ACTIONS, ...options.actions };
    this.ladderOn = options.throttleOnHighCPU ?? true;
    this.windowMs = options.cpuWindowMs ?? 5000;
    this.ladderSteps = { startMs: options.throttleStartMs ?? 50, maxMs: options.throttleMaxMs ?? 2000, suspendAfter: options.suspendAfterSamples ?? 3 };
  }

  /** Start (or, for a watched plugin, update) holding `pluginId` to `thresholds` and `maxCpuPercent` (≤ 0 or non-finite: no CPU enforcement). */
  watch(pluginId: string, thresholds: Thresholds, maxCpuPercent: number): void {
    const w = this.plugins.get(pluginId);
    if (w) Object.assign(w, { thresholds, maxCpuPercent });
    else this.plugins.set(pluginId, new Watched(thresholds, maxCpuPercent));
  }

  /** Forget a plugin. Leaves the controller alone: the host calls this when the plugin goes away. */
  unwatch(pluginId: string): void {
    this.plugins.delete(pluginId);
  }

  state(pluginId: string): GovernorState {
    const w = this.plugins.get(pluginId);
    return { throttleMs: w?.throttleMs ?? 0, suspended: (w?.suspends.size ?? 0) > 0 };
  }

  /** Feed one sample; samples of unwatched plugins, and out-of-order samples, are ignored. */
  observe(m: PluginMetrics): void {
    const w = this.plugins.get(m.pluginId);
    const last = w?.samples.at(-1);
    if (!w || (last && m.at < last.at)) return;
    if (last && m.errorCount < last.errorCount) w.samples = [];
    w.samples.push(m);
    // Keep one sample at or before the longest window's start, as the baseline of its deltas.
    const start = m.at - Math.max(ERRORS_WINDOW_MS, this.windowMs);
    while (w.samples.length > 1 && w.samples[1]!.at <= start) w.samples.shift();

    const t = w.thresholds;
    const base = errorsBaseline(w.samples, m.at);
    const errors = ((m.errorCount - base.errorCount) * ERRORS_WINDOW_MS) / Math.max(ERRORS_WINDOW_MS, m.at - base.at);
    const slowest = Object.entries(m.calls).reduce<[string, number]>((a, [k, s]) => (s.p90 > a[1] ? [k, s.p90] : a), ['', 0]);
    const rate = this.cpuRate(w.samples, m.at);
    const memory = memoryPercent(m);
    this.edge(w, m, 'memory', memory, t.memoryPercent, HYSTERESIS_POINTS, `memory at ${fmt(memory)} % of its limit`);
    this.edge(w, m, 'errors', errors, t.errorsPerMinute, 0, `${fmt(errors)} errors per minute`);
    this.edge(w, m, 'responseTime', slowest[1], t.responseTimeMs, 0, `p90 of '${slowest[0]}' at ${slowest[1]} ms`);
    this.edge(w, m, 'cpu', rate, t.cpuPercent, HYSTERESIS_POINTS, `CPU at ${fmt(rate)} % over ${this.windowMs} ms`);
    if (this.ladderOn) this.ladder(w, m, rate);
  }

  /** Completes `alerts$` and forgets every plugin; pending restart/kill outcomes are dropped. */
  dispose(): void {
    this.plugins.clear();
    this.subject.complete();
  }

  private cpuRate(samples: PluginMetrics[], end: number): number {
    const start = end - this.windowMs;
    let weighted = 0;
    let span = 0;
    for (let i = 1; i < samples.length; i++) {
      const from = Math.max(samples[i - 1]!.at, start);
      const to = samples[i]!.at;
      if (to <= from) continue;
      weighted += samples[i]!.cpu.current * (to - from);
      span += to - from;
    }
    return span > 0 ? weighted / span : samples.at(-1)!.cpu.current;
  }

  private edge(w: Watched, m: PluginMetrics, kind: GovernedKind, value: number, threshold: number, hysteresis: number, what: string): void {
    if (w.tripped.has(kind)) {
      if (value >= threshold - hysteresis) return;
      w.tripped.delete(kind);
      if (w.throttles.delete(kind)) this.pull(w, m, kind, value, threshold, 'throttle', `plugin '${m.pluginId}': ${what}: back under, throttle lifted`, () => this.applyThrottle(m.pluginId, w));
      if (w.suspends.has(kind)) this.release(w, m, kind, value, threshold, what);
      return;
    }
    if (!(value >= threshold)) return;
    w.tripped.add(kind);
    let action = this.actions[kind];
    if (kind === 'cpu' && (!this.ladderOn || action === 'throttle')) action = 'log';
    const message = `plugin '${m.pluginId}': ${what} (threshold ${threshold})`;
    this.pull(w, m, kind, value, threshold, action, message, () => this.lever(w, m.pluginId, kind, action, message));
  }

  private lever(w: Watched, pluginId: string, hold: Hold, action: ThresholdAction, why: string): void | Promise<void> {
    switch (action) {
      case 'log':
        return;
      case 'throttle':
        w.throttles.add(hold);
        return this.applyThrottle(pluginId, w);
      case 'suspend':
        // Only the first hold suspends; the controller is told once.
        if (w.suspends.size === 0) this.controller.suspend(pluginId, why);
        w.suspends.add(hold);
        return;
      case 'restart':
        return this.controller.restart(pluginId, why);
      case 'kill':
        return this.controller.kill(pluginId, why);
    }
  }

  private applyThrottle(pluginId: string, w: Watched): void {
    const delay = Math.max(w.ladderMs, w.throttles.size > 0 ? this.ladderSteps.maxMs : 0);
    if (delay === w.throttleMs) return;
    this.controller.throttle(pluginId, delay);
    w.throttleMs = delay;
  }

  private release(w: Watched, m: PluginMetrics, hold: Hold, value: number, threshold: number, what: string): void {
    const kind = hold === 'ladder' ? 'cpu' : hold;
    w.suspends.delete(hold);
    if (w.suspends.size > 0) return;
    this.pull(w, m, kind, value, threshold, 'log', `plugin '${m.pluginId}': ${what}: back under, resumed`, () => this.controller.resume(m.pluginId));
  }

  /** The CPU ladder: enforces `maxCpuPercent` on the windowed rate. */
  private ladder(w: Watched, m: PluginMetrics, rate: number): void {
    const limit = w.maxCpuPercent;
    if (!(limit > 0 && Number.isFinite(limit))) return;
    const { startMs, maxMs, suspendAfter } = this.ladderSteps;
    const id = m.pluginId;
    const what = `CPU at ${fmt(rate)} % over ${this.windowMs} ms, limit ${limit} %`;
    if (rate > limit) {
      if (w.suspends.has('ladder')) return;
      if (w.ladderMs < maxMs) {
        w.ladderMs = w.ladderMs === 0 ? startMs : Math.min(maxMs, w.ladderMs * 2);
        const message = `plugin '${id}': ${what}: calls delayed by ${w.ladderMs} ms`;
        this.pull(w, m, 'cpu', rate, limit, 'throttle', message, () => this.applyThrottle(id, w));
      } else if (++w.atCap >= suspendAfter) {
        const why = `${what}, still over after ${w.atCap} samples throttled at ${maxMs} ms`;
        this.pull(w, m, 'cpu', rate, limit, 'suspend', `plugin '${id}': suspended: ${why}`, () => this.lever(w, id, 'ladder', 'suspend', why));
      }
      return;
    }
    w.atCap = 0;
    if (w.ladderMs > 0) {
      w.ladderMs = 0;
      this.pull(w, m, 'cpu', rate, limit, 'throttle', `plugin '${id}': ${what}: back under, throttle lifted`, () => this.applyThrottle(id, w));
    }
    if (w.suspends.has('ladder')) this.release(w, m, 'ladder', rate, limit, what);
  }

  /** Pulls a lever and reports it: the alert after a synchronous lever, before an async one (whose failure is a second alert). */
  private pull(w: Watched, m: PluginMetrics, kind: GovernedKind, value: number, threshold: number, action: ThresholdAction, message: string, lever: () => void | Promise<void>): void {
    const alert = (msg: string): void =>
      this.subject.next({ kind, pluginId: m.pluginId, value, threshold, action, message: msg, evidence: this.evidence(w, kind, m.at), at: this.now() });
    const failed = (e: unknown) => alert(`${message}; ${action} failed: ${reason(e)}`);
    try {
      const pending = lever();
      alert(message);
      pending?.catch(failed);
    } catch (e) {
      failed(e);
    }
  }

  private evidence(w: Watched, kind: GovernedKind, end: number): GovernorEvidence {
    // The errors window includes its baseline sample (at or before the window's start).
    const start = kind === 'errors' ? errorsBaseline(w.samples, end).at : end - this.windowMs;
    const samples = w.samples.filter((s) => s.at >= start).map((s) => ({
      at: s.at,
      memoryPercent: memoryPercent(s),
      cpu: s.cpu.current,
      errorCount: s.errorCount,
      p90: Math.max(0, ...Object.values(s.calls).map((c) => c.p90)),
    }));
    return { samples, throttleMs: w.throttleMs, suspended: w.suspends.size > 0 };
  }
}

function memoryPercent(m: PluginMetrics): number {
  return m.memory.limit > 0 ? (m.memory.current / m.memory.limit) * 100 : 0;
}

/** The sample errors per minute is counted from: the newest one at least a minute old, else the oldest known. */
function errorsBaseline(samples: PluginMetrics[], end: number): PluginMetrics {
  return samples.findLast((s) => s.at <= end - ERRORS_WINDOW_MS) ?? samples[0]!;
}
