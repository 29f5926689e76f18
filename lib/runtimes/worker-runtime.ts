import { performance } from 'node:perf_hooks';
import { Piscina } from 'piscina';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import {
  PluginCrashedError,
  PluginError,
  PluginHostError,
  PluginTimeoutError,
  ResourceLimitError,
  type SerializedError,
} from '../errors.js';
import { DeadlineWatchdog } from './deadline-watchdog.js';
import { frame, unframe, type InvocationCodec, type InvocationEnd } from './invocation-channel.js';
import { jsonDepth, MAX_JSON_DEPTH, nullPrototype } from './js/wire.js';
import type { LifecycleHook, PluginDescription } from './protocol.js';
import type { InvocationOptions, PluginRuntime, RuntimeInit, RuntimeMetrics } from './runtime.js';

const MB = 1024 * 1024;

/** What every worker reply carries besides its outcome. */
export interface WorkerReplyStats {
  /** Sandbox memory (bytes) after the task; 0 when unknown. */
  memoryBytes: number;
  /** Time spent running the task in the worker, ms. */
  elapsedMs: number;
}

/** How the pool's one worker thread is started. */
export interface WorkerPoolOptions {
  /** The compiled worker module. */
  filename: string;
  /** V8 old-generation cap of the worker thread, MiB. */
  heapMB: number;
  /** Young generation (default: a quarter of heapMB, at most 8 MiB). */
  youngMB?: number;
}

/**
 * The piscina options of a plugin's pool: exactly one thread (state stays put), never reaped by
 * piscina, no environment, no exec arguments, the heap capped. Benchmarks and specs that
 * stand in for a runtime's pool use the same.
 *
 * @example
 * new Piscina(workerPoolOptions({ filename: WORKER_FILE, heapMB: 64 }));
 */
export function workerPoolOptions({ filename, heapMB, youngMB }: WorkerPoolOptions) {
  return {
    filename,
    name: 'default',
    minThreads: 1,
    maxThreads: 1,
    concurrentTasksPerWorker: 1,
    idleTimeout: 2 ** 31 - 1,
    atomics: 'disabled' as const,
    env: {},
    execArgv: [],
    resourceLimits: {
      maxOldGenerationSizeMb: heapMB,
      maxYoungGenerationSizeMb: youngMB ?? Math.min(8, Math.max(1, Math.floor(heapMB / 4))),
      stackSizeMb: 4,
    },
  };
}

/**
 * What the worker runtimes (WebAssembly, Python) share: one piscina pool of exactly one worker
 * thread per plugin (state is stable between calls), started with no environment and no exec
 * arguments; invocations run one at a time, queued here (piscina's abort only cancels tasks that
 * have not started), each under a wall-clock deadline past which the pool is destroyed; a
 * worker that dies is reported once through `onCrash`; values cross as JSON text and arrive as
 * depth-checked null-prototype copies.
 *
 * The first task (load) goes through piscina; it carries the worker end of a dedicated
 * invocation channel ({@link openInvocations}) on which every later task travels
 * (lib/runtimes/invocation-channel.ts): piscina's task hand-off cost more than the rest of a
 * call. piscina still owns the thread: its start, limits, errors and termination.
 *
 * A subclass reads its inputs in {@link prepare}, boots its sandbox in {@link boot} (calling
 * {@link startPool}, {@link openInvocations} and {@link execute}), writes its tasks with its
 * {@link codec} and turns worker replies into values or typed errors in {@link settle}.
 */
export abstract class WorkerRuntime<Task, Reply extends WorkerReplyStats> implements PluginRuntime {
  /** One invocation at a time (the turn queue). */
  readonly serial = true;
  protected readonly watchdog = new DeadlineWatchdog();
  protected pool?: Piscina<Task, Reply>;
  protected description?: PluginDescription;
  protected dead?: PluginHostError;
  protected disposing = false;
  /** Set once load() succeeded: before that, failures go to load()'s caller, not onCrash. */
  protected loaded = false;
  protected memoryBytes = 0;
  protected cpuTimeMs = 0;
  protected boundaryBytes = 0;
  /** Whether a turn is running; invocations run one after another, each turn ending when the worker is free again. */
  private busy = false;
  /** Turns waiting for the running one to end, oldest first. */
  private readonly waiting: (() => void)[] = [];
  /** Settles when the worker has finished the task the current turn handed it (unset: nothing handed). */
  private working?: Promise<unknown>;
  /** The host end of the invocation channel, once the worker serves it. */
  private invocations?: MessagePort;
  /** Slot 0 is bumped after each task posted, for a worker that blocks between tasks. */
  private wakeSlot?: Int32Array;
  /** Whether the worker serves the invocation channel (its load task has finished). */
  private serving = false;
  private readonly replies = new Map<number, { resolve(reply: Reply): void; reject(error: Error): void }>();
  private nextInvocation = 1;
  /** When the worker last finished a task (for reaping). */
  private lastUsed = performance.now();
  private reaper?: NodeJS.Timeout;
  /** Set while the worker is reaped: the state `serializeState` gave, to hand back on waking. */
  private reaped?: { state: unknown; started: boolean };
  /** Whether `onStart` ran more recently than `onStop` (what a woken worker must repeat). */
  private started = false;
  /** Idle time after which the worker is reaped (0: never). */
  protected idleMs = 0;
  /** The worker's limits are fixed when it starts; a later change needs a new sandbox. */
  protected readonly memoryLimitMB: number;

  constructor(
    protected readonly init: RuntimeInit,
    protected readonly maxPayload: number,
  ) {
    this.memoryLimitMB = init.limits.maxMemoryMB;
  }

  abstract call(method: string, args: unknown[]): Promise<unknown>;
  abstract deliverEvent(topic: string, data: unknown, source: string, methods: string[]): Promise<void>;
  abstract hook(hook: LifecycleHook, arg?: unknown, options?: InvocationOptions): Promise<unknown>;

  /** How tasks and replies are written on the invocation channel. */
  protected abstract readonly codec: InvocationCodec<Task, Reply>;

  /** Turns one worker reply into the task's value, or throws the typed error (a promise only when it must wait). */
  protected abstract settle(reply: Reply, operation: string): unknown;

  /** Closes whatever channel the subclass keeps to its worker (called on crash and dispose). */
  protected closeChannel(): void {}

  /**
   * Starts the pool and runs the load task (with {@link execute}) from the inputs
   * {@link prepare} read: the first time, and again when a reaped worker wakes.
   */
  protected abstract boot(): Promise<PluginDescription>;

  /** The task running a lifecycle hook, and its result from the task's value (for reaping). */
  protected hookTask?(hook: LifecycleHook, arg?: unknown): Task;
  protected hookResult?(value: unknown, hook: LifecycleHook): unknown;

  /**
   * Reads and checks the plugin's inputs once ({@link prepare}), then boots the first worker
   * ({@link boot}) in the first turn; on any failure the sandbox is torn down and the typed
   * error thrown.
   */
  async load(): Promise<PluginDescription> {
    try {
      await this.prepare();
      const description = await this.inTurn(() => this.boot());
      this.description = description;
      this.loaded = true;
      this.armReaper();
      return description;
    } catch (error) {
      const failure = this.translate(error, 'load');
      await this.dispose();
      throw failure;
    }
  }

  /** Reads and checks what every boot of the plugin's worker uses (module bytes, plugin files). */
  protected abstract prepare(): Promise<void>;

  /**
   * Opens the invocation channel: the returned port goes to the worker in the load task
   * (transferred), where `serveBlocking` or `serveWhenIdle` answers on it, woken through the
   * returned `wake` buffer; tasks after load travel on it.
   */
  protected openInvocations(): InvocationEnd {
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (message: string) => {
      const { id, body } = unframe(message);
      const pending = this.replies.get(id);
      this.replies.delete(id);
      pending?.resolve(this.codec.reply.decode(body));
    });
    port1.unref();
    this.invocations = port1;
    const wake = new SharedArrayBuffer(4);
    this.wakeSlot = new Int32Array(wake);
    return { port: port2, wake };
  }

  private closeInvocations(): void {
    this.serving = false;
    this.wakeSlot = undefined;
    this.invocations?.close();
    this.invocations = undefined;
    // Their worker is gone: what they waited for will not come. translate() names the cause.
    for (const pending of this.replies.values()) pending.reject(new Error('the worker was stopped'));
    this.replies.clear();
  }

  /**
   * One task to the worker: through piscina until the worker serves the invocation channel (the
   * load task, with its transfer list), then on the channel as text (nothing to transfer).
   */
  private send(pool: Piscina<Task, Reply>, task: Task, transferList?: (ArrayBuffer | MessagePort)[]): Promise<Reply> {
    const port = this.invocations;
    if (!port || !this.serving) {
      // The load task: once it is done the worker serves the channel.
      return pool.run(task, { transferList: transferList as never }).then((reply) => {
        if (this.invocations === port && port) this.serving = true;
        return reply;
      });
    }
    const id = this.nextInvocation++;
    return new Promise<Reply>((resolve, reject) => {
      this.replies.set(id, { resolve, reject });
      port.postMessage(frame(id, this.codec.task.encode(task)));
      if (this.wakeSlot) {
        Atomics.add(this.wakeSlot, 0, 1);
        Atomics.notify(this.wakeSlot, 0);
      }
    });
  }

  /** Sandbox memory after the last invocation (0 while reaped), and time spent running in the worker. */
  metrics(): RuntimeMetrics {
    const alive = this.loaded && !this.dead && !this.disposing && !this.reaped;
    return {
      memoryBytes: alive ? this.memoryBytes : 0,
      memoryLimitBytes: this.memoryLimitMB * MB,
      cpuTimeMs: this.cpuTimeMs,
      boundaryBytes: this.boundaryBytes,
    };
  }

  /** Whether the worker was reaped for idleness (it wakes on the next invocation). */
  get asleep(): boolean {
    return this.reaped !== undefined;
  }

  async dispose(): Promise<void> {
    this.disposing = true;
    this.reaped = undefined;
    clearTimeout(this.reaper);
    this.closeChannel();
    this.closeInvocations();
    const pool = this.pool;
    this.pool = undefined;
    await pool?.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /** Starts the plugin's pool: one thread, no environment, no exec arguments, capped heap. */
  protected startPool(options: WorkerPoolOptions): void {
    this.pool = new Piscina<Task, Reply>(workerPoolOptions(options));
    // A worker that dies outside a piscina task (all invocations after load) is reported here.
    this.pool.on('error', (e: unknown) => this.crash(this.workerDied(e, this.replies.size > 0 ? 'during an invocation' : 'between invocations')));
  }

  protected alive(): void {
    if (this.dead) throw this.dead;
    if (this.disposing) throw new PluginCrashedError(this.init.pluginId, `Plugin '${this.init.pluginId}' was stopped.`);
    if ((!this.pool && !this.reaped) || !this.description) throw new PluginCrashedError(this.init.pluginId, `Plugin '${this.init.pluginId}' is not loaded.`);
  }

  /** Runs one task in its turn, under the deadline, and returns its value or throws the typed error. */
  protected run(task: Task, operation: string, options: InvocationOptions = {}, transferList?: (ArrayBuffer | MessagePort)[]): Promise<unknown> {
    const waitMs = options.deadlineMs ?? this.init.limits.executionTimeoutMs;
    return this.inTurn(
      async () => {
        if (this.disposing) throw new PluginCrashedError(this.init.pluginId, `Plugin '${this.init.pluginId}' was stopped before ${operation}.`);
        if (this.reaped) await this.wake();
        return await this.execute(task, operation, options, transferList);
      },
      operation,
      waitMs,
    );
  }

  /**
   * Runs `fn` when the previous turn has ended. The turn ends when the worker is free again:
   * at once when `fn` succeeded, and when the last task it handed over has settled when `fn`
   * failed (a caller that gave up at its own deadline, a health probe, leaves the worker busy).
   * A turn that waits longer than `waitMs` for the ones before it fails with a queued
   * {@link PluginTimeoutError} without running (the plugin is not at fault and keeps running).
   */
  private async inTurn<T>(fn: () => Promise<T>, operation = 'load', waitMs?: number): Promise<T> {
    // No promise per turn when the worker is free (the common case): a flag and a queue.
    if (this.busy) await this.waitTurn(operation, waitMs);
    this.busy = true;
    this.working = undefined;
    try {
      if (this.dead) throw this.dead;
      const value = await fn();
      this.release();
      return value;
    } catch (error) {
      // Set by execute() inside fn, which control-flow analysis does not see.
      const working = this.working as Promise<unknown> | undefined;
      if (working) void working.then(this.release, this.release);
      else this.release();
      throw this.translate(error, operation);
    }
  }

  private waitTurn(operation: string, waitMs: number | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (waitMs === undefined) return void this.waiting.push(resolve);
      // On the sandbox's one watchdog timer: no timer per queued call.
      const cancel = this.watchdog.add(waitMs, () => {
        const at = this.waiting.indexOf(start);
        // A plugin that ended meanwhile (the call ahead missed its deadline): the turn fails with why.
        if (at < 0 || this.dead || this.disposing) return;
        this.waiting.splice(at, 1);
        reject(new PluginTimeoutError(this.init.pluginId, operation, waitMs, true));
      });
      const start = (): void => {
        cancel();
        resolve();
      };
      this.waiting.push(start);
    });
  }

  /** Ends the running turn: the next waiting one starts (it stays busy) or the worker is free. */
  private readonly release = (): void => {
    const next = this.waiting.shift();
    if (next) next();
    else this.busy = false;
  };

  /** One task to the worker under the deadline. */
  protected execute(task: Task, operation: string, options: InvocationOptions = {}, transferList?: (ArrayBuffer | MessagePort)[]): Promise<unknown> {
    const pool = this.pool;
    if (!pool || this.disposing) throw new PluginCrashedError(this.init.pluginId, `Plugin '${this.init.pluginId}' was stopped before ${operation}.`);
    const work = this.send(pool, task, transferList).then(
      (reply) => {
        this.lastUsed = performance.now();
        this.cpuTimeMs += reply.elapsedMs;
        if (reply.memoryBytes > 0) this.memoryBytes = reply.memoryBytes;
        return this.settle(reply, operation);
      },
      (error: unknown) => {
        this.lastUsed = performance.now();
        throw error;
      },
    );
    // The turn ends when the worker is free, not when this caller gave up.
    this.working = work;
    return this.withDeadline(work, operation, options);
  }

  private reapable(): boolean {
    const hooks = this.description?.hooks ?? [];
    const keepsState = hooks.includes('serializeState') && hooks.includes('deserializeState');
    return this.idleMs > 0 && (this.init.manifest.stateless === true || keepsState);
  }

  /** One timer, armed when needed and re-armed only when it fires: calls cost no timer work. */
  private armReaper(): void {
    if (this.reaper || !this.reapable() || this.dead || this.disposing) return;
    const wait = Math.max(0, this.lastUsed + this.idleMs - performance.now());
    this.reaper = setTimeout(() => {
      this.reaper = undefined;
      void this.reap();
    }, wait + 1);
    this.reaper.unref();
  }

  /**
   * Ends an idle worker to give its memory back: its state is kept with `serializeState` (a
   * stateless plugin has none) and handed back to `deserializeState` when the next invocation
   * wakes it. A plugin that is neither stateless nor keeps its state is never reaped.
   */
  private async reap(): Promise<void> {
    await this.inTurn(async () => {
      if (this.dead || this.disposing || this.reaped || !this.pool) return;
      if (performance.now() - this.lastUsed < this.idleMs) return this.armReaper();
      const hooks = this.description!.hooks;
      let state: unknown = undefined;
      if (hooks.includes('serializeState')) {
        state = this.hookResult!(await this.execute(this.hookTask!('serializeState'), 'serializeState'), 'serializeState');
      }
      // As a host restart does: serializeState, onStop, … deserializeState, onStart.
      const started = this.started;
      if (started && hooks.includes('onStop')) this.hookResult!(await this.execute(this.hookTask!('onStop'), 'onStop'), 'onStop');
      this.reaped = { state, started };
      this.closeChannel();
      this.closeInvocations();
      const pool = this.pool;
      this.pool = undefined;
      this.memoryBytes = 0;
      await pool.destroy();
    }, 'serializeState').catch(() => {
      // A failed serializeState keeps the worker (a timeout has crashed it); try again later.
      this.armReaper();
    });
  }

  /**
   * Boots a reaped worker again (inside the caller's turn), gives its state back and, if the
   * plugin was started, runs `onStart`. A failure ends the plugin (crash): half a wake would
   * leave a plugin without its state that the host believes healthy.
   */
  private async wake(): Promise<void> {
    const { state, started } = this.reaped!;
    this.reaped = undefined;
    try {
      const description = await this.boot();
      if (JSON.stringify(description) !== JSON.stringify(this.description)) throw new Error('it described itself differently');
      const hooks = this.description!.hooks;
      if (hooks.includes('deserializeState')) this.hookResult!(await this.execute(this.hookTask!('deserializeState', state), 'deserializeState'), 'deserializeState');
      if (started && hooks.includes('onStart')) this.hookResult!(await this.execute(this.hookTask!('onStart'), 'onStart'), 'onStart');
    } catch (error) {
      if (this.dead) throw this.dead;
      const { pluginId } = this.init;
      throw this.crash(
        new PluginCrashedError(pluginId, `Plugin '${pluginId}' could not wake its worker after idling: ${(error as Error)?.message ?? String(error)}`, { cause: error }),
      );
    }
    this.armReaper();
  }

  /** Subclasses report each lifecycle hook that ran, so a reaped worker wakes in the same state. */
  protected noteHook(hook: LifecycleHook): void {
    if (hook === 'onStart') this.started = true;
    if (hook === 'onStop') this.started = false;
  }

  /**
   * Races `work` against the plugin's deadline; past it the pool is destroyed. A caller that
   * asks not to crash (a health probe) gets its answer at its own deadline, but the work still
   * has the plugin's `executionTimeoutMs`.
   */
  protected withDeadline<T>(work: Promise<T>, operation: string, options: InvocationOptions = {}): Promise<T> {
    return this.watchdog.race(work, {
      pluginId: this.init.pluginId,
      operation,
      limitMs: this.init.limits.executionTimeoutMs,
      options,
      onHardTimeout: (error) => this.crash(error),
    });
  }

  /** Serialises invocation input, counting it and checking the payload cap. */
  protected encode(value: unknown, operation: string): string {
    const json = JSON.stringify(value) ?? 'null';
    this.boundaryBytes += json.length;
    if (json.length > this.maxPayload) {
      throw new ResourceLimitError(this.init.pluginId, 'payload', `Arguments of ${operation} exceed ${this.maxPayload} bytes.`);
    }
    return json;
  }

  /** Parses JSON text from the worker into a depth-checked null-prototype copy. */
  protected parse(json: string, operation: string): unknown {
    const { pluginId } = this.init;
    this.boundaryBytes += json.length;
    if (jsonDepth(json) > MAX_JSON_DEPTH) {
      throw new ResourceLimitError(pluginId, 'payload', `The result of ${operation} is nested deeper than ${MAX_JSON_DEPTH} levels.`);
    }
    try {
      return nullPrototype(JSON.parse(json));
    } catch (e) {
      throw new PluginError(pluginId, operation, { name: 'InvalidResult', message: `returned text that is not JSON (${(e as Error).message})` });
    }
  }

  /** Maps whatever a failed invocation threw to the typed error the caller sees. */
  protected translate(error: unknown, operation: string): PluginHostError {
    if (this.dead) return this.dead;
    if (error instanceof PluginHostError) return error;
    const { pluginId } = this.init;
    if (this.disposing) return new PluginCrashedError(pluginId, `Plugin '${pluginId}' was stopped during ${operation}.`);
    // Plugin failures come back as replies: a rejected task means the worker itself failed.
    return this.crash(this.workerDied(error, `during ${operation}`));
  }

  protected workerDied(error: unknown, when: string): PluginHostError {
    const { pluginId } = this.init;
    if ((error as { code?: unknown })?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
      return new ResourceLimitError(
        pluginId,
        'memory',
        `Plugin '${pluginId}' exceeded its memory limit of ${this.memoryLimitMB} MB ${when} and was stopped. Raise resourceLimits.maxMemoryMB or fix the leak.`,
        { cause: error },
      );
    }
    return new PluginCrashedError(pluginId, `Plugin '${pluginId}' worker died ${when}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }

  /** Ends the plugin's worker once, and reports why. */
  protected crash(error: PluginHostError): PluginHostError {
    if (this.dead) return this.dead;
    if (this.disposing) return error;
    this.dead = error;
    clearTimeout(this.reaper);
    this.closeChannel();
    this.closeInvocations();
    const pool = this.pool;
    this.pool = undefined;
    void pool?.destroy().catch(() => undefined);
    if (this.loaded) this.init.onCrash(error);
    return error;
  }

  /** A limit the worker reported as the caller's typed error (the plugin keeps running). */
  protected limitError(limit: string, size: number, operation: string, maxRequests: number): PluginHostError {
    const { pluginId } = this.init;
    switch (limit) {
      case 'payload':
        return new ResourceLimitError(pluginId, 'payload', `Plugin '${pluginId}' passed ${size} bytes in ${operation}; the limit is ${this.maxPayload}.`);
      case 'requests':
        return new ResourceLimitError(pluginId, 'requests', `Plugin '${pluginId}' made more than ${maxRequests} host requests in ${operation}.`);
      case 'memory':
        return new ResourceLimitError(pluginId, 'memory', `Plugin '${pluginId}' ran out of its ${this.memoryLimitMB} MB of memory in ${operation}.`);
      default:
        return new PluginTimeoutError(pluginId, operation, this.init.limits.executionTimeoutMs);
    }
  }
}

/** An error a plugin reported in its own terms, as the host's SerializedError. */
export function remoteError(error: unknown): SerializedError {
  if (typeof error === 'string') return { name: 'Error', message: error };
  const e = (error ?? {}) as Record<string, unknown>;
  return {
    name: typeof e.name === 'string' ? e.name : 'Error',
    message: typeof e.message === 'string' ? e.message : JSON.stringify(error),
    code: typeof e.code === 'string' ? e.code : undefined,
  };
}
