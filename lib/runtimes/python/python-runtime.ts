import { fileURLToPath } from 'node:url';
import { MessageChannel } from 'node:worker_threads';
import { MethodNotExposedError, PluginCrashedError, PluginError, PluginLoadError, type PluginHostError } from '../../errors.js';
import type { LifecycleHook, PluginDescription } from '../protocol.js';
import type { InvocationOptions, RuntimeInit } from '../runtime.js';
import { checkDescription } from '../description.js';
import { WorkerRuntime } from '../worker-runtime.js';
import { exposeHostApi } from './host-api.js';
import { readPythonPlugin, type PluginFileLimits } from './plugin-files.js';
import { SnapshotCache } from './snapshot-cache.js';
import { forgetSharedPyodideFiles, sharedPyodideFiles } from './realm.js';
import { PYTHON_CODEC, type PythonLoadTask, type PythonWorkerReply, type PythonWorkerTask } from './python-protocol.js';

const MB = 1024 * 1024;
const WORKER_FILE = fileURLToPath(new URL('./worker.js', import.meta.url));
/** What Pyodide stores in its interrupt buffer to raise KeyboardInterrupt (SIGINT). */
const SIGINT = 2;
/** How often SIGINT is stored again while an interrupted call has not ended. */
const INTERRUPT_REPEAT_MS = 50;

/** Tunables of the Python runtime shared by every plugin of a host. */
export interface PythonRuntimeOptions {
  /** Largest JSON text one value may take when crossing the boundary (default 4 MiB). */
  maxPayloadBytes?: number;
  /** Gateway requests a plugin may have waiting for the host (default 256). */
  maxPendingRequests?: number;
  /** Host requests one invocation may make (default 1000). */
  maxRequestsPerInvocation?: number;
  /** Files (count) and bytes of the plugin folder copied into the sandbox (default 512 files, 8 MiB). */
  maxPluginFiles?: number;
  maxPluginBytes?: number;
  /**
   * After the deadline the interrupt buffer raises KeyboardInterrupt in the plugin; the worker is
   * terminated if the call has not ended this much later (default 1000 ms).
   */
  interruptGraceMs?: number;
  /** Deadline for booting Pyodide and importing the plugin (default 30 s, or executionTimeoutMs if longer). */
  loadTimeoutMs?: number;
  /**
   * JS heap of the worker thread beyond the plugin's `maxMemoryMB`, for Pyodide's own runtime
   * (default 192 MiB). The plugin's memory is Pyodide's linear memory, capped at `maxMemoryMB`.
   */
  runtimeHeapMB?: number;
  /**
   * Idle time after which the plugin's worker is ended to give its memory back, if the plugin
   * is `stateless` or keeps its state with `serializeState`/`deserializeState`; the next
   * invocation starts a new one (default 5 minutes; 0: never).
   */
  idleWorkerMs?: number;
  /** Pyodide snapshots (default: in memory only; the runtime factory keeps them under `<dataDir>/cache/pyodide`). */
  snapshots?: SnapshotCache;
  /**
   * Once no Python plugin of the process is loaded for this long, the process-wide Pyodide
   * caches (snapshot, files, compiled module, code cache: ~60 MB) are dropped; the next load
   * reads the snapshot from disk or boots cold (default 60 s: a restart keeps them).
   */
  releaseCachesAfterMs?: number;
}

/** Python runtimes of this process between load() and their end (dispose or crash). */
let live = 0;
let releaseTimer: NodeJS.Timeout | undefined;

/** Drops the process-wide Pyodide caches `afterMs` from now unless a Python plugin loads meanwhile. */
function releaseCachesWhenIdle(afterMs: number): void {
  clearTimeout(releaseTimer);
  releaseTimer = setTimeout(() => {
    releaseTimer = undefined;
    if (live > 0) return;
    SnapshotCache.forget();
    forgetSharedPyodideFiles();
  }, afterMs);
  releaseTimer.unref();
}

/**
 * Runs one Python plugin on Pyodide in its own piscina pool of exactly one worker thread (see
 * {@link WorkerRuntime}). Inside the worker Pyodide boots in a sealed `vm` realm where Node does
 * not exist (lib/runtimes/python/worker.ts; docs/plugins/SECURITY.md says why and how), its
 * linear memory capped at `maxMemoryMB`. The only way back to the host is the comlink host API
 * ({@link exposeHostApi}), one gateway operation per method.
 *
 * Deadlines: at `executionTimeoutMs` the host stores SIGINT in Pyodide's interrupt buffer, so
 * the running Python code gets a KeyboardInterrupt and the call fails with
 * `PluginTimeoutError` while the plugin lives on; a plugin that swallows it is terminated
 * `interruptGraceMs` later (crash, `onCrash`).
 *
 * @example
 * const runtime = new PythonRuntime({ pluginId: 'viz', dir, manifest, limits, gateway, onCrash });
 * await runtime.load();                          // { exposed: ['histogram'], … }
 * await runtime.call('histogram', [[1, 2, 2]]);
 * await runtime.dispose();
 */
export class PythonRuntime extends WorkerRuntime<PythonWorkerTask, PythonWorkerReply> {
  protected readonly codec = PYTHON_CODEC;
  private readonly interrupt = new Int32Array(new SharedArrayBuffer(4));
  private hostApi?: ReturnType<typeof exposeHostApi>;
  private readonly maxPending: number;
  private readonly maxRequests: number;
  private readonly fileLimits: PluginFileLimits;
  private readonly graceMs: number;
  private readonly loadTimeoutMs: number;
  private readonly runtimeHeapMB: number;
  private readonly snapshots: SnapshotCache;
  /** The snapshot the load task made, if it was asked to. */
  private madeSnapshot?: Uint8Array;
  /** The plugin's files as read (and checked) at load; a woken worker gets the same. */
  private files?: { path: string; text: string }[];
  private readonly releaseCachesAfterMs: number;
  /** Counted in `live` (from load() to its end). */
  private counted = false;

  constructor(init: RuntimeInit, options: PythonRuntimeOptions = {}) {
    super(init, options.maxPayloadBytes ?? 4 * MB);
    this.maxPending = options.maxPendingRequests ?? 256;
    this.maxRequests = options.maxRequestsPerInvocation ?? 1000;
    this.fileLimits = { maxFiles: options.maxPluginFiles, maxBytes: options.maxPluginBytes };
    this.graceMs = options.interruptGraceMs ?? 1000;
    this.loadTimeoutMs = options.loadTimeoutMs ?? 30_000;
    this.runtimeHeapMB = options.runtimeHeapMB ?? 192;
    this.snapshots = options.snapshots ?? new SnapshotCache();
    this.idleMs = options.idleWorkerMs ?? 5 * 60_000;
    this.releaseCachesAfterMs = options.releaseCachesAfterMs ?? 60_000;
  }

  /** Counts this plugin against the caches' release, and reads its files once. */
  protected override async prepare(): Promise<void> {
    const { pluginId, manifest } = this.init;
    if (!this.counted && !this.disposing) {
      this.counted = true;
      live++;
      clearTimeout(releaseTimer);
    }
    this.files = await readPythonPlugin(this.init.dir, manifest.entryPoint, pluginId, this.fileLimits);
  }

  /** A worker for the files read at load: at load, and again when a reaped worker wakes. */
  protected override async boot(): Promise<PluginDescription> {
    const { pluginId, manifest } = this.init;
    // Pyodide's JS heap sees little short-lived garbage (the plugin's objects live in linear
    // memory): a 4 MiB young generation instead of 8 saves ~3.5 MB of resident semispace per
    // plugin; calls moving ~20 KB of JSON were measured ~7% slower (p50), small calls alike.
    this.startPool({ filename: WORKER_FILE, heapMB: this.memoryLimitMB + this.runtimeHeapMB, youngMB: 4 });
    const { port1, port2 } = new MessageChannel();
    this.hostApi = exposeHostApi(port1, {
      pluginId,
      gateway: this.init.gateway,
      maxPayloadBytes: this.maxPayload,
      maxPending: this.maxPending,
      onBytes: (n) => (this.boundaryBytes += n),
    });
    let pyodide: Awaited<ReturnType<typeof sharedPyodideFiles>>;
    try {
      pyodide = await sharedPyodideFiles();
    } catch (e) {
      throw new PluginLoadError(`Plugin '${pluginId}' cannot start: Pyodide's files cannot be read (${(e as Error).message}).`, { pluginId, cause: e });
    }
    // Taken last: a lease to make the snapshot must reach offer() below, or loads waiting for it wait forever.
    const lease = await this.snapshots.acquire();
    let described: unknown;
    try {
      if (this.disposing) throw new PluginCrashedError(pluginId, `Plugin '${pluginId}' was stopped during load.`);
      const codeCache = this.snapshots.codeCache();
      const invocations = this.openInvocations();
      const task: PythonLoadTask = {
        type: 'load',
        pluginId,
        files: this.files!,
        entryPoint: manifest.entryPoint,
        port: port2,
        interrupt: this.interrupt.buffer as SharedArrayBuffer,
        maxMemoryBytes: this.memoryLimitMB * MB,
        maxPayloadBytes: this.maxPayload,
        maxRequestsPerInvocation: this.maxRequests,
        invocations: invocations.port,
        wake: invocations.wake,
        ...(lease.snapshot ? { snapshot: lease.snapshot } : {}),
        ...(lease.make ? { makeSnapshot: true } : {}),
        pyodide: codeCache ? { ...pyodide, codeCache } : pyodide,
      };
      const deadlineMs = Math.max(this.loadTimeoutMs, this.init.limits.executionTimeoutMs);
      described = await this.execute(task, 'load', { deadlineMs }, [port2, task.invocations]);
    } finally {
      // Loads waiting for a snapshot go on either way (the next one makes it if this failed).
      lease.offer(this.madeSnapshot);
      this.madeSnapshot = undefined;
    }
    return checkDescription(this.parse(described as string, 'load'), pluginId);
  }

  protected override hookTask(hook: LifecycleHook, arg?: unknown): PythonWorkerTask {
    return { type: 'invoke', invocation: this.encode(arg === undefined ? { type: 'hook', hook } : { type: 'hook', hook, arg }, hook) };
  }

  protected override hookResult(value: unknown, hook: LifecycleHook): unknown {
    return value === null ? undefined : this.parse(value as string, hook);
  }

  async call(method: string, args: unknown[]): Promise<unknown> {
    this.alive();
    if (!this.description!.exposed.includes(method)) throw new MethodNotExposedError(this.init.pluginId, method);
    const operation = `call ${method}()`;
    // Written positionally (the method, a newline, the arguments' JSON): the SDK's hot path.
    return await this.invoke(`${method}\n${this.encode(args, operation)}`, operation);
  }

  async deliverEvent(topic: string, data: unknown, source: string, methods: string[]): Promise<void> {
    this.alive();
    if (methods.length === 0) return;
    const operation = `event ${topic}`;
    await this.invoke(this.encode({ type: 'event', topic, data, source, methods }, operation), operation);
  }

  async hook(hook: LifecycleHook, arg?: unknown, options?: InvocationOptions): Promise<unknown> {
    this.alive();
    if (!this.description!.hooks.includes(hook)) {
      this.noteHook(hook);
      return undefined;
    }
    const value = await this.invoke(this.encode(arg === undefined ? { type: 'hook', hook } : { type: 'hook', hook, arg }, hook), hook, options);
    this.noteHook(hook);
    return value;
  }

  /** Gateway posts (log, emit) dropped because too many requests were waiting for the host. */
  get dropped(): number {
    return this.hostApi?.dropped ?? 0;
  }

  /** `invocation`: the text the SDK's invoke() reads (a positional call, or an invocation's JSON). */
  private async invoke(invocation: string, operation: string, options?: InvocationOptions): Promise<unknown> {
    const value = (await this.run({ type: 'invoke', invocation }, operation, options)) as string | null;
    return value === null ? undefined : this.parse(value, operation);
  }

  protected settle(reply: PythonWorkerReply, operation: string): unknown {
    if (reply.snapshot) this.madeSnapshot = reply.snapshot;
    if (reply.codeCache) this.snapshots.keepCodeCache(reply.codeCache);
    if (reply.ok) return reply.value;
    if ('limit' in reply) throw this.limitError(reply.limit, reply.size, operation, this.maxRequests);
    throw new PluginError(this.init.pluginId, operation, reply.error);
  }

  /**
   * At the deadline Python is interrupted (KeyboardInterrupt, the call fails, the plugin lives);
   * `interruptGraceMs` later the worker is terminated if the call still runs.
   */
  protected override withDeadline<T>(work: Promise<T>, operation: string, options: InvocationOptions = {}): Promise<T> {
    const probe = options.crashOnTimeout === false;
    const limitMs = this.init.limits.executionTimeoutMs;
    const interruptAt = probe ? limitMs : (options.deadlineMs ?? limitMs);
    Atomics.store(this.interrupt, 0, 0);
    // Stored again every INTERRUPT_REPEAT_MS until the call ends or the grace period is over: a
    // SIGINT can still be taken without a KeyboardInterrupt (Pyodide's checkInterrupt turns one
    // into EINTR during a file operation). The race that lost one in about four runs (Pyodide
    // clearing the flag after reading 0) is closed in the realm (realm.ts, signals).
    let pending: () => void;
    const interrupt = (): void => {
      Atomics.store(this.interrupt, 0, SIGINT);
      pending = this.watchdog.add(INTERRUPT_REPEAT_MS, interrupt);
    };
    pending = this.watchdog.add(interruptAt, interrupt);
    const cancel = () => pending();
    const hard: InvocationOptions = probe ? options : { deadlineMs: interruptAt + this.graceMs };
    const raced = this.watchdog.race(work, {
      pluginId: this.init.pluginId,
      operation,
      limitMs: limitMs + this.graceMs,
      options: hard,
      onHardTimeout: (error) => this.crash(error),
    });
    // The interrupt belongs to the work, not to this caller: a probe that gave up at its own
    // deadline still leaves the plugin its interrupt at executionTimeoutMs.
    work.then(cancel, cancel);
    return raced;
  }

  override async dispose(): Promise<void> {
    try {
      await super.dispose();
    } finally {
      this.uncount();
    }
  }

  protected override crash(error: PluginHostError): PluginHostError {
    const reported = super.crash(error);
    if (this.dead) this.uncount();
    return reported;
  }

  /** This runtime ended: the last one to end schedules the release of the process-wide caches. */
  private uncount(): void {
    if (!this.counted) return;
    this.counted = false;
    if (--live === 0) releaseCachesWhenIdle(this.releaseCachesAfterMs);
  }

  protected override closeChannel(): void {
    this.hostApi?.close();
    this.hostApi = undefined;
  }
}

