/**
 * On-demand profiling of one plugin: between `start` and `stop` it tracks what the
 * plugin's metrics, gateway counters and (for JS plugins) V8's CPU profiler say, then
 * reports per-method latencies, CPU time, memory growth and bottlenecks, and writes a
 * `.cpuprofile` for Chrome DevTools.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { findBottlenecks, type Bottleneck, type BottleneckInput, type GatewayActivity } from './bottlenecks.js';
import { cpuTimeMs, toCpuProfile, topSelfTime } from './cpu-profile.js';
import type { MethodStats, PluginMetrics } from './types.js';

export type { Bottleneck, BottleneckRule } from './bottlenecks.js';

/** What the profiler needs per plugin (the host provides it). */
export interface ProfileTarget {
  pluginId: string;
  /** `'nodejs' | 'python' | 'wasm'`. */
  runtimeKind: string;
  /** Current metrics, `undefined` while the plugin is not running. */
  metrics(): PluginMetrics | undefined;
  /**
   * V8 CPU profiling, where the runtime offers it (JS plugins). `stop` may return a V8
   * `CpuProfile`, an array of them or isolated-vm's `ThreadCpuProfile[]`; they are merged.
   * isolated-vm 5.0.4 profiles per isolate lock: work in a lock taken before `start`, or
   * still held when `stop` runs, is not recorded, so wrap its `stopCpuProfiler` to wait
   * for the isolate to go idle (a timer turn) first.
   */
  cpuProfiler?: { start(title: string): void; stop(title: string): Promise<unknown> };
  /** Gateway activity (cumulative, or since the session started: the profiler takes differences). */
  gatewayStats?(): GatewayActivity;
}

export interface ProfileSession {
  id: string;
  pluginId: string;
  startedAt: number;
}

export interface ProfileReport {
  pluginId: string;
  startedAt: number;
  durationMs: number;
  /** Methods called during the session: percentiles as the metrics hold them at `stop`, `countInSession` the calls made in between. */
  methods: Record<string, MethodStats & { countInSession: number }>;
  /**
   * CPU used during the session, ms. From the V8 profile when it has samples (non-idle
   * sample time); otherwise the growth of `PluginMetrics.executionTime`, which is wall
   * time inside calls, events and hooks and so an upper bound.
   */
  cpuTimeMs: number;
  /** Bytes. `peak` is the session's highest reading (sampled while it runs). */
  memory: { start: number; end: number; growth: number; peak: number; limit: number };
  /** `peak` ≥ 90 % of `limit`. */
  gcPressure: boolean;
  /** The session's V8 profile (Chrome DevTools format), for JS plugins. */
  cpuProfilePath?: string;
  bottlenecks: Bottleneck[];
}

export interface ProfilerOptions {
  /** Where `.cpuprofile` files go (created if missing). */
  outDir: string;
  /** Clock, epoch ms. Default `Date.now`. */
  now?: () => number;
  /** How often memory is sampled during a session, ms; 0 turns sampling off. Default 250. */
  sampleIntervalMs?: number;
}

interface ActiveSession {
  session: ProfileSession;
  target: ProfileTarget;
  title: string;
  before: PluginMetrics | undefined;
  gatewayBefore: GatewayActivity | undefined;
  peak: number;
  timer?: NodeJS.Timeout;
}

const EMPTY_MEMORY = { current: 0, peak: 0, limit: 0 };

/**
 * Profiles plugins one session at a time per plugin.
 *
 * @example
 * const profiler = new Profiler({ outDir: '.logomesh/profiles' }, (id) => host.profileTarget(id));
 * const session = profiler.start('acme-search');
 * await host.call('acme-search', 'query', ['shoes']);
 * const report = await profiler.stop(session);
 * console.log(report.cpuTimeMs, report.cpuProfilePath, report.bottlenecks.map((b) => b.message));
 */
export class Profiler {
  readonly #outDir: string;
  readonly #now: () => number;
  readonly #sampleIntervalMs: number;
  readonly #active = new Map<string, ActiveSession>();
  readonly #last = new Map<string, BottleneckInput>();
  #seq = 0;

  constructor(
    options: ProfilerOptions,
    private readonly resolve: (pluginId: string) => ProfileTarget,
  ) {
    this.#outDir = options.outDir;
    this.#now = options.now ?? Date.now;
    this.#sampleIntervalMs = options.sampleIntervalMs ?? 250;
  }

  /**
   * Starts a session (and V8's profiler, if the plugin has one). Throws
   * `InvalidArgumentError` if the plugin is already being profiled, and whatever
   * `resolve` throws for an unknown plugin.
   *
   * @example
   * const session = profiler.start('acme-search'); // { id: 'acme-search#1', pluginId, startedAt }
   */
  start(pluginId: string): ProfileSession {
    const running = this.#active.get(pluginId);
    if (running) {
      throw new InvalidArgumentError(
        `Plugin '${pluginId}' is already being profiled (session ${running.session.id}); stop that session before starting another.`,
        { pluginId },
      );
    }
    const target = this.resolve(pluginId);
    const session: ProfileSession = { id: `${pluginId}#${++this.#seq}`, pluginId, startedAt: this.#now() };
    const before = target.metrics();
    const active: ActiveSession = {
      session,
      target,
      title: `logomesh-profile-${session.id}`,
      before,
      gatewayBefore: target.gatewayStats?.(),
      peak: before?.memory.current ?? 0,
    };
    target.cpuProfiler?.start(active.title);
    if (this.#sampleIntervalMs > 0) {
      active.timer = setInterval(() => {
        active.peak = Math.max(active.peak, target.metrics()?.memory.current ?? 0);
      }, this.#sampleIntervalMs);
      active.timer.unref();
    }
    this.#active.set(pluginId, active);
    return session;
  }

  /**
   * Ends a session (given as the session, its id or the plugin id) and reports on it.
   * Throws `InvalidArgumentError` if no such session is running.
   *
   * @example
   * const { cpuTimeMs, memory, bottlenecks } = await profiler.stop(session);
   */
  async stop(session: ProfileSession | string): Promise<ProfileReport> {
    const key = typeof session === 'string' ? session : session.id;
    const active = [...this.#active.values()].find((a) => a.session.id === key || a.session.pluginId === key);
    if (!active) {
      throw new InvalidArgumentError(`No profiling session '${key}' is running; start one with profiler.start(pluginId).`);
    }
    const { pluginId, startedAt } = active.session;
    const durationMs = this.#now() - startedAt;
    this.#active.delete(pluginId);
    clearInterval(active.timer);

    // The session is over even if the profiler fails to stop (e.g. the isolate died); its error propagates.
    const raw = await active.target.cpuProfiler?.stop(active.title);
    const after = active.target.metrics() ?? active.before;
    const profile = raw === undefined ? undefined : toCpuProfile(raw);
    let cpuProfilePath: string | undefined;
    if (profile) {
      await mkdir(this.#outDir, { recursive: true });
      cpuProfilePath = join(this.#outDir, `${pluginId.replace(/[^\w.-]/g, '_')}-${startedAt}.cpuprofile`);
      await writeFile(cpuProfilePath, JSON.stringify(profile));
    }

    const methods = sessionMethods(active.before, after);
    const memBefore = active.before?.memory ?? EMPTY_MEMORY;
    const memAfter = after?.memory ?? EMPTY_MEMORY;
    // A lifetime peak that rose during the session is the session's peak.
    const peak = Math.max(active.peak, memBefore.current, memAfter.current, memAfter.peak > memBefore.peak ? memAfter.peak : 0);
    const hotFunction = profile && topSelfTime(profile);
    const input: BottleneckInput = {
      pluginId,
      methods,
      memory: { current: memAfter.current, peak, limit: memAfter.limit },
      gateway: gatewayDelta(active.gatewayBefore, active.target.gatewayStats?.()),
      durationMs,
      hotFunction,
    };
    this.#last.set(pluginId, input);
    const { current: start } = memBefore;
    const { current: end, limit } = memAfter;
    return {
      pluginId,
      startedAt,
      durationMs,
      methods,
      cpuTimeMs: profile?.samples.length ? cpuTimeMs(profile) : delta(active.before?.executionTime, after?.executionTime),
      memory: { start, end, growth: end - start, peak, limit },
      gcPressure: limit > 0 && peak >= 0.9 * limit,
      cpuProfilePath,
      bottlenecks: findBottlenecks(input),
    };
  }

  /**
   * Bottlenecks from the plugin's current metrics (methods, memory) and, for what metrics
   * do not hold (gateway traffic, V8 profile), its last profiling session.
   *
   * @example
   * profiler.identifyBottlenecks('acme-search').filter((b) => b.rule === 'slow-method');
   */
  identifyBottlenecks(pluginId: string): Bottleneck[] {
    const metrics = this.resolve(pluginId).metrics();
    const last = this.#last.get(pluginId);
    if (!metrics) return last ? findBottlenecks(last) : [];
    return findBottlenecks({ ...last, pluginId, methods: metrics.calls, memory: metrics.memory });
  }

  /** Whether `pluginId` has a session running. */
  isProfiling(pluginId: string): boolean {
    return this.#active.has(pluginId);
  }

  /** Ends every running session without reporting (V8 profilers are stopped, their output dropped). */
  async close(): Promise<void> {
    const sessions = [...this.#active.values()];
    this.#active.clear();
    await Promise.allSettled(sessions.map(async (a) => {
      clearInterval(a.timer);
      await a.target.cpuProfiler?.stop(a.title);
    }));
  }
}

function sessionMethods(before: PluginMetrics | undefined, after: PluginMetrics | undefined): ProfileReport['methods'] {
  const methods: ProfileReport['methods'] = {};
  for (const [name, stats] of Object.entries(after?.calls ?? {})) {
    const countInSession = delta(before?.calls[name]?.count, stats.count);
    if (countInSession > 0) methods[name] = { ...stats, countInSession };
  }
  return methods;
}

function gatewayDelta(before: GatewayActivity | undefined, after: GatewayActivity | undefined): GatewayActivity | undefined {
  if (!after) return undefined;
  const requests: Record<string, number> = {};
  for (const [op, n] of Object.entries(after.requests)) {
    const d = delta(before?.requests[op], n);
    if (d > 0) requests[op] = d;
  }
  return { requests, payloadBytes: delta(before?.payloadBytes, after.payloadBytes), calls: delta(before?.calls, after.calls) };
}

/** Growth of a counter; a counter that went down was reset (plugin restarted), so its new value is the growth. */
function delta(before: number | undefined, after: number | undefined): number {
  if (after === undefined) return 0;
  return before !== undefined && after >= before ? after - before : after;
}
