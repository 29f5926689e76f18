import { MethodNotExposedError, PluginCrashedError, PluginHostError, PluginLoadError, PluginTimeoutError } from '../errors.js';
import { DeadlineWatchdog } from './deadline-watchdog.js';
import type { LifecycleHook, PluginDescription } from './protocol.js';
import type { InvocationOptions, PluginRuntime, RuntimeInit, RuntimeMetrics } from './runtime.js';

const MB = 1024 * 1024;

/** How many replicas a {@link ScalingRuntime} runs, and when it adds or removes one. */
export interface ScalingOptions {
  /** Replicas started at load and kept while idle (at least 1). */
  min: number;
  /** Most replicas under load (at least `min`). */
  max: number;
  /** Whether a call that finds every replica busy adds one, up to `max` (default true; the host's `scaleOnHighLoad`). */
  scaleOnHighLoad?: boolean;
  /** How long a replica above `min` may stay idle before it is removed, ms (default 30 000). */
  idleMs?: number;
}

/** Builds one replica: a complete single-thread runtime of the plugin, crashing through `init.onCrash`. */
export type ReplicaFactory = (init: RuntimeInit) => PluginRuntime;

interface Replica {
  readonly runtime: PluginRuntime;
  /** Loaded (and started, when the plugin is): calls may be routed to it. */
  ready: boolean;
  busy: boolean;
  /** Whether it ran onStart (and not onStop since). */
  started: boolean;
  idleSince: number;
}

/**
 * Runs a stateless plugin on several replicas, each a complete single-thread runtime (a
 * WasmRuntime or PythonRuntime: its own one-thread pool, channels and deadline). Each call or
 * event goes to an idle replica, oldest first; when every replica is busy it waits for the first
 * one to become free and, when scaling is on, a replica is added (up to `max`) to take it.
 * Replicas above `min` that stayed idle for `idleMs` are removed by one unref'd timer.
 *
 * Lifecycle: `onStart` and `onStop` run on every replica (a replica added while the plugin is
 * started runs `onStart` before its first call); other hooks run on one. A replica that crashes
 * (deadline, memory) ends them all and reports `onCrash` once, as one thread would.
 *
 * @example
 * const runtime = new ScalingRuntime(init, (replica) => new WasmRuntime(replica, options), { min: 1, max: 4 });
 * await runtime.load();
 * await Promise.all([runtime.call('upper', ['a']), runtime.call('upper', ['b'])]); // on two threads
 * await runtime.dispose();
 */
export class ScalingRuntime implements PluginRuntime {
  private readonly replicas: Replica[] = [];
  /** Calls waiting for a free replica, first come first served. */
  private readonly waiting: { resolve(replica: Replica): void; reject(error: Error): void }[] = [];
  /** Bounds each waiting call's wait (one timer for all of them). */
  private readonly watchdog = new DeadlineWatchdog();
  private description?: PluginDescription;
  private dead?: PluginHostError;
  private disposing = false;
  private loaded = false;
  /** Whether the host started the plugin: replicas added now run onStart first. */
  private started = false;
  /** Set when adding a replica failed: the plugin keeps the ones it has. */
  private growthFailed = false;
  private trimTimer?: NodeJS.Timeout;
  /** Replicas taken out of service that still run their onStop; counted in metrics until disposed. */
  private readonly leaving = new Set<Replica>();
  /** Counters of removed replicas, so the plugin's totals never go down. */
  private retired = { cpuTimeMs: 0, boundaryBytes: 0 };
  private readonly min: number;
  private readonly max: number;
  private readonly scaling: boolean;
  private readonly idleMs: number;

  constructor(
    private readonly init: RuntimeInit,
    private readonly build: ReplicaFactory,
    options: ScalingOptions,
  ) {
    this.min = Math.max(1, options.min);
    this.max = Math.max(this.min, options.max);
    this.scaling = options.scaleOnHighLoad ?? true;
    this.idleMs = options.idleMs ?? 30_000;
  }

  /** One invocation at a time only when it may not grow past one thread. */
  get serial(): boolean {
    return this.max === 1 || (!this.scaling && this.min === 1);
  }

  /** Replicas running or being added. */
  get size(): number {
    return this.replicas.length;
  }

  /** Starts `min` replicas; they must all describe the plugin the same way. */
  async load(): Promise<PluginDescription> {
    const fresh = Array.from({ length: this.min }, () => this.spawn());
    const outcomes = await Promise.allSettled(fresh.map((r) => r.runtime.load()));
    try {
      const failed = outcomes.find((o) => o.status === 'rejected');
      if (failed) throw failed.reason;
      const descriptions = outcomes.map((o) => (o as PromiseFulfilledResult<PluginDescription>).value);
      const mismatch = descriptions.map((d) => this.differs(descriptions[0], d)).find(Boolean);
      if (mismatch) throw mismatch;
      if (this.dead || this.disposing) throw this.dead ?? new PluginCrashedError(this.init.pluginId, `Plugin '${this.init.pluginId}' was stopped during load.`);
      this.description = descriptions[0];
    } catch (error) {
      await this.dispose();
      throw error;
    }
    for (const r of fresh) r.ready = true;
    this.loaded = true;
    return this.description;
  }

  async call(method: string, args: unknown[]): Promise<unknown> {
    this.alive();
    if (!this.description!.exposed.includes(method)) throw new MethodNotExposedError(this.init.pluginId, method);
    return await this.route(`call ${method}()`, undefined, (runtime) => runtime.call(method, args));
  }

  async deliverEvent(topic: string, data: unknown, source: string, methods: string[]): Promise<void> {
    this.alive();
    await this.route(`event ${topic}`, undefined, (runtime) => runtime.deliverEvent(topic, data, source, methods));
  }

  async hook(hook: LifecycleHook, arg?: unknown, options?: InvocationOptions): Promise<unknown> {
    this.alive();
    if (hook === 'onStart' || hook === 'onStop') return this.everywhere(hook, hook === 'onStart');
    return await this.route(hook, options?.deadlineMs, (runtime) => runtime.hook(hook, arg, options));
  }

  /** Sums over the replicas; the memory limit is the per-replica limit times the replicas. */
  metrics(): RuntimeMetrics {
    const total: Required<RuntimeMetrics> = { memoryBytes: 0, memoryLimitBytes: 0, cpuTimeMs: this.retired.cpuTimeMs, boundaryBytes: this.retired.boundaryBytes };
    for (const r of [...this.replicas, ...this.leaving]) {
      const m = r.runtime.metrics();
      total.memoryBytes += m.memoryBytes;
      total.memoryLimitBytes += m.memoryLimitBytes;
      total.cpuTimeMs += m.cpuTimeMs;
      total.boundaryBytes += m.boundaryBytes ?? 0;
    }
    // After dispose the plugin still has a limit: one replica's, so ratios stay defined.
    if (total.memoryLimitBytes === 0) total.memoryLimitBytes = this.init.limits.maxMemoryMB * MB;
    return total;
  }

  async dispose(): Promise<void> {
    this.disposing = true;
    this.end(new PluginCrashedError(this.init.pluginId, `Plugin '${this.init.pluginId}' was stopped.`));
    await Promise.all([...this.replicas.splice(0).map((r) => this.retire(r)), ...[...this.leaving].map((r) => r.runtime.dispose())]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /** A replica whose crashes come back here, not yet in service. */
  private spawn(): Replica {
    // A replica already leaving (its onStop missed the deadline), or one being added under load
    // whose load or onStart missed it, ends alone, not the plugin (grow() drops it).
    const onCrash = (error: PluginHostError) => void (this.leaving.has(replica) || (this.loaded && !replica.ready) || this.crash(error));
    const replica: Replica = {
      runtime: this.build({ ...this.init, onCrash }),
      ready: false,
      busy: false,
      started: false,
      idleSince: Date.now(),
    };
    this.replicas.push(replica);
    return replica;
  }

  private alive(): void {
    if (this.dead) throw this.dead;
    if (!this.loaded || this.disposing) throw new PluginCrashedError(this.init.pluginId, `Plugin '${this.init.pluginId}' is not loaded.`);
  }

  /**
   * Runs one invocation on a free replica; the replica is busy until it settles. A call that
   * waits longer than `waitMs` (default `executionTimeoutMs`) for a replica fails with a queued
   * {@link PluginTimeoutError} without running; the plugin keeps running.
   */
  private async route<T>(operation: string, waitMs: number | undefined, work: (runtime: PluginRuntime) => Promise<T>): Promise<T> {
    const replica = await this.acquire(operation, waitMs ?? this.init.limits.executionTimeoutMs);
    try {
      return await work(replica.runtime);
    } catch (error) {
      // A sibling's crash stops this replica too: the caller sees why, not "was stopped".
      throw this.dead ?? error;
    } finally {
      this.release(replica);
    }
  }

  private acquire(operation: string, waitMs: number): Promise<Replica> {
    const idle = this.replicas.find((r) => r.ready && !r.busy);
    if (idle) {
      idle.busy = true;
      return Promise.resolve(idle);
    }
    const promise = new Promise<Replica>((resolve, reject) => {
      const waiter = {
        resolve(replica: Replica) {
          cancel();
          resolve(replica);
        },
        reject(error: Error) {
          cancel();
          reject(error);
        },
      };
      const cancel = this.watchdog.add(waitMs, () => {
        const at = this.waiting.indexOf(waiter);
        // A plugin that ended meanwhile rejects its waiters with why (end()).
        if (at < 0 || this.dead || this.disposing) return;
        this.waiting.splice(at, 1);
        reject(new PluginTimeoutError(this.init.pluginId, operation, waitMs, true));
      });
      this.waiting.push(waiter);
    });
    // Every replica is busy: one more thread, unless one is already on its way for earlier waiters.
    const coming = this.replicas.filter((r) => !r.ready).length;
    if (this.scaling && !this.growthFailed && this.replicas.length < this.max && coming < this.waiting.length) void this.grow();
    return promise;
  }

  /** Hands a replica that finished to the next waiting call, or marks it idle. */
  private release(replica: Replica): void {
    if (!this.replicas.includes(replica)) return;
    const next = this.waiting.shift();
    if (next) return next.resolve(replica);
    replica.busy = false;
    replica.idleSince = Date.now();
    this.scheduleTrim();
  }

  /** Adds one replica; it joins when loaded (and started, if the plugin is) and serves a waiting call. */
  private async grow(): Promise<void> {
    const replica = this.spawn();
    let mismatch: PluginLoadError | undefined;
    try {
      mismatch = this.differs(this.description!, await replica.runtime.load());
      if (!mismatch && this.started) {
        replica.started = true;
        await replica.runtime.hook('onStart');
      }
    } catch {
      if (this.dead || this.disposing) return;
      // A replica that cannot start (memory, a failing onStart) is not a crash of the plugin:
      // it keeps the replicas it has, and stops trying to add more.
      this.growthFailed = true;
      this.drop(replica);
      void this.retire(replica);
      return;
    }
    if (this.dead || this.disposing || !this.replicas.includes(replica)) return;
    if (mismatch) {
      this.drop(replica);
      void this.retire(replica);
      return this.crash(mismatch);
    }
    replica.ready = true;
    replica.busy = true;
    this.release(replica);
  }

  /** onStart or onStop on every replica in service; the first failure is the caller's. */
  private async everywhere(hook: 'onStart' | 'onStop', start: boolean): Promise<undefined> {
    this.started = start;
    // onStop also reaches a replica still running the onStart it got while being added.
    const targets = this.replicas.filter((r) => r.started !== start && (r.ready || !start));
    for (const r of targets) r.started = start;
    const outcomes = await Promise.allSettled(targets.map((r) => r.runtime.hook(hook)));
    const failed = outcomes.find((o) => o.status === 'rejected');
    if (failed) throw this.dead ?? failed.reason;
    return undefined;
  }

  /** The error when `other` describes the plugin differently from `first`. */
  private differs(first: PluginDescription, other: PluginDescription): PluginLoadError | undefined {
    if (JSON.stringify(first) === JSON.stringify(other)) return undefined;
    const { pluginId } = this.init;
    return new PluginLoadError(
      `Plugin '${pluginId}' describes itself differently on another thread (exposed methods, handlers or hooks); ` +
        'a stateless plugin must describe itself the same way every time it loads: make its description deterministic, or use threads.max 1.',
      { pluginId },
    );
  }

  /** Removes replicas above `min` idle for `idleMs`, newest first, and sets the timer for the next. */
  private readonly trim = (): void => {
    this.trimTimer = undefined;
    if (this.dead || this.disposing) return;
    const now = Date.now();
    for (let i = this.replicas.length - 1; i >= 0 && this.replicas.length > this.min; i--) {
      const r = this.replicas[i];
      if (r.ready && !r.busy && now - r.idleSince >= this.idleMs) {
        this.drop(r);
        void this.stopAndRetire(r);
      }
    }
    this.scheduleTrim();
  };

  /** One timer for the earliest idle replica above `min`; unref'd, so an idle host can exit. */
  private scheduleTrim(): void {
    if (this.trimTimer || this.replicas.length <= this.min) return;
    const idle = this.replicas.filter((r) => r.ready && !r.busy).map((r) => r.idleSince);
    if (idle.length === 0) return;
    const due = Math.min(...idle) + this.idleMs - Date.now();
    this.trimTimer = setTimeout(this.trim, Math.max(0, due));
    this.trimTimer.unref();
  }

  /** Takes a replica out of service; the caller retires it. */
  private drop(replica: Replica): void {
    const i = this.replicas.indexOf(replica);
    if (i >= 0) this.replicas.splice(i, 1);
    this.leaving.add(replica);
  }

  /** A replica leaving while the plugin runs gets its onStop, as it got its onStart. */
  private async stopAndRetire(replica: Replica): Promise<void> {
    if (replica.started) await replica.runtime.hook('onStop').catch(() => undefined);
    await this.retire(replica);
  }

  /** Disposes a replica out of service; its counters move to the plugin's retired totals at once. */
  private async retire(replica: Replica): Promise<void> {
    const m = replica.runtime.metrics();
    this.retired.cpuTimeMs += m.cpuTimeMs;
    this.retired.boundaryBytes += m.boundaryBytes ?? 0;
    this.leaving.delete(replica);
    await replica.runtime.dispose().catch(() => undefined);
  }

  /** One replica died on its own: the plugin ends, as with one thread, and the host hears it once. */
  private crash(error: PluginHostError): void {
    if (this.dead || this.disposing) return;
    this.dead = error;
    this.end(error);
    for (const r of this.replicas.splice(0)) void this.retire(r);
    if (this.loaded) this.init.onCrash(error);
  }

  /** Stops routing: the timer goes and waiting calls fail with `error`. */
  private end(error: PluginHostError): void {
    clearTimeout(this.trimTimer);
    this.trimTimer = undefined;
    for (const w of this.waiting.splice(0)) w.reject(this.dead ?? error);
    this.watchdog.dispose();
  }
}
