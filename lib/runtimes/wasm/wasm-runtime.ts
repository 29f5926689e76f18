import { readFile, realpath, stat } from 'node:fs/promises';
import { extname, join, relative, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import {
  InvalidArgumentError,
  MethodNotExposedError,
  PluginCrashedError,
  PluginError,
  PluginHostError,
  PluginLoadError,
  PluginTimeoutError,
  ResourceLimitError,
  type SerializedError,
} from '../../errors.js';
import { DeadlineWatchdog } from '../deadline-watchdog.js';
import { jsonDepth, MAX_JSON_DEPTH, nullPrototype } from '../js/wire.js';
import type { LifecycleHook, PluginDescription } from '../protocol.js';
import type { InvocationOptions, PluginRuntime, RuntimeInit, RuntimeMetrics } from '../runtime.js';
import { exportFor } from './wasm-abi.js';
import type { WasmInvokeValue, WasmLoadValue, WasmPortRequest, WasmWorkerReply, WasmWorkerTask } from './wasm-protocol.js';
import { checkWasmModule, type WasmAbi } from './wasm-validator.js';

const MB = 1024 * 1024;
/** The worker module, next to this one in the compiled output. */
const WORKER_FILE = fileURLToPath(new URL('./worker.js', import.meta.url));

/** Tunables of the WebAssembly runtime shared by every plugin of a host. */
export interface WasmRuntimeOptions {
  /** Largest JSON text one value may take when crossing the boundary (default 4 MiB). */
  maxPayloadBytes?: number;
  /** Gateway requests a plugin may have waiting for the host; beyond, requests are dropped (default 256). */
  maxPendingRequests?: number;
  /** Host imports (log, emit) one invocation may call; beyond, the import throws (default 1000). */
  maxRequestsPerInvocation?: number;
  /** Largest maximum a table may declare (default 10 000 elements). */
  maxTableElements?: number;
  /** Largest `.wasm` file accepted (default 32 MiB). */
  maxModuleBytes?: number;
}

/**
 * Runs one WebAssembly plugin in its own piscina pool of exactly one worker thread, whose
 * `resourceLimits` come from `maxMemoryMB` and which gets no environment and no exec
 * arguments. The binary is checked before it is compiled ({@link checkWasmModule}): imports
 * only from `logomesh`, memories and tables with a declared maximum within the limits, no
 * start function. Only JSON text and copies cross; plugin → host requests (log, emit) go to
 * the gateway, fire-and-forget.
 *
 * Invocations run one at a time (queued here, not in piscina), each with a wall-clock
 * deadline (`executionTimeoutMs`) that starts when it is handed to the worker. piscina's
 * abort only cancels queued tasks, so a task past its deadline ends the pool: the call fails
 * with {@link PluginTimeoutError}, `onCrash` fires once and later calls fail fast.
 *
 * @example
 * const runtime = new WasmRuntime({ pluginId: 'text', dir, manifest, limits, gateway, onCrash });
 * const { exposed } = await runtime.load();     // ['upper']
 * await runtime.call('upper', ['hi']);          // 'HI'
 * await runtime.dispose();
 */
export class WasmRuntime implements PluginRuntime {
  private readonly watchdog = new DeadlineWatchdog();
  private pool?: Piscina<WasmWorkerTask, WasmWorkerReply>;
  private port?: MessagePort;
  private abi?: WasmAbi;
  private description?: PluginDescription;
  private dead?: PluginHostError;
  private disposing = false;
  /** Set once load() succeeded: before that, failures go to load()'s caller, not onCrash. */
  private loaded = false;
  /** Invocations run one after another; each turn ends when the worker is free again. */
  private turn: Promise<void> = Promise.resolve();
  private received = 0;
  private waiters: { seq: number; resolve: () => void }[] = [];
  private pendingRequests = 0;
  private droppedRequests = 0;
  private memoryBytes = 0;
  private cpuTimeMs = 0;
  private boundaryBytes = 0;
  private readonly maxPayload: number;
  private readonly maxPending: number;
  private readonly maxRequests: number;
  private readonly maxTableElements: number;
  private readonly maxModuleBytes: number;
  /** The worker's limits are fixed when it starts; a later change needs a new sandbox. */
  private readonly memoryLimitMB: number;

  constructor(
    private readonly init: RuntimeInit,
    options: WasmRuntimeOptions = {},
  ) {
    this.maxPayload = options.maxPayloadBytes ?? 4 * MB;
    this.maxPending = options.maxPendingRequests ?? 256;
    this.maxRequests = options.maxRequestsPerInvocation ?? 1000;
    this.maxTableElements = options.maxTableElements ?? 10_000;
    this.maxModuleBytes = options.maxModuleBytes ?? 32 * MB;
    this.memoryLimitMB = init.limits.maxMemoryMB;
  }

  async load(): Promise<PluginDescription> {
    const { pluginId } = this.init;
    try {
      const bytes = await this.readModule();
      const abi = (this.abi = checkWasmModule(bytes, { maxMemoryBytes: this.memoryLimitMB * MB, maxTableElements: this.maxTableElements }, pluginId));
      this.pool = new Piscina<WasmWorkerTask, WasmWorkerReply>({
        filename: WORKER_FILE,
        name: 'default',
        minThreads: 1,
        maxThreads: 1,
        concurrentTasksPerWorker: 1,
        idleTimeout: 2 ** 31 - 1,
        atomics: 'disabled',
        env: {},
        execArgv: [],
        resourceLimits: {
          maxOldGenerationSizeMb: this.memoryLimitMB,
          maxYoungGenerationSizeMb: Math.min(8, Math.max(1, Math.floor(this.memoryLimitMB / 4))),
          stackSizeMb: 4,
        },
      });
      // A worker that dies between tasks is reported here, not through a task.
      this.pool.on('error', (e: unknown) => this.crash(this.workerDied(e, 'between invocations')));
      const { port1, port2 } = new MessageChannel();
      this.port = port1;
      port1.on('message', this.onRequest);
      port1.unref();
      const task: WasmWorkerTask = {
        type: 'load',
        bytes,
        port: port2,
        maxPayloadBytes: this.maxPayload,
        maxRequestsPerInvocation: this.maxRequests,
      };
      const value = (await this.run(task, 'load', {}, [bytes.buffer as ArrayBuffer, port2])) as WasmLoadValue;
      this.description = describe(abi, value.describe === null ? null : this.parse(value.describe, 'lm_describe'), pluginId);
      this.loaded = true;
      return this.description;
    } catch (error) {
      const failure = this.translate(error, 'load');
      await this.dispose();
      throw failure;
    }
  }

  async call(method: string, args: unknown[]): Promise<unknown> {
    const operation = `call ${method}()`;
    this.alive();
    if (!this.description!.exposed.includes(method)) throw new MethodNotExposedError(this.init.pluginId, method);
    const [result] = await this.invoke([exportFor({ type: 'call', method })], this.encode(args, operation), operation);
    return this.result(result, operation);
  }

  async deliverEvent(topic: string, data: unknown, source: string, methods: string[]): Promise<void> {
    const operation = `event ${topic}`;
    this.alive();
    const unknown = methods.filter((m) => !this.abi!.handlers.includes(m));
    if (unknown.length > 0) throw new InvalidArgumentError(`Plugin '${this.init.pluginId}' has no event handler ${unknown.join(', ')} (no lm_on_ export).`, { pluginId: this.init.pluginId });
    if (methods.length === 0) return;
    const exports = methods.map((method) => exportFor({ type: 'event', method }));
    const results = await this.invoke(exports, this.encode({ topic, data, source }, operation), operation);
    for (const r of results) this.result(r, operation);
  }

  async hook(hook: LifecycleHook, arg?: unknown, options?: InvocationOptions): Promise<unknown> {
    this.alive();
    if (!this.abi!.hooks.includes(hook)) return undefined;
    const [result] = await this.invoke([exportFor({ type: 'hook', hook })], this.encode(arg ?? null, hook), hook, options);
    return this.result(result, hook);
  }

  /** Wasm memory in use after the last invocation, and time spent running in the worker. */
  metrics(): RuntimeMetrics {
    const alive = this.loaded && !this.dead && !this.disposing;
    return {
      memoryBytes: alive ? this.memoryBytes : 0,
      memoryLimitBytes: this.memoryLimitMB * MB,
      cpuTimeMs: this.cpuTimeMs,
      boundaryBytes: this.boundaryBytes,
    };
  }

  /** Gateway requests dropped because too many were waiting for the host. */
  get dropped(): number {
    return this.droppedRequests;
  }

  async dispose(): Promise<void> {
    this.disposing = true;
    this.closeChannel();
    const pool = this.pool;
    this.pool = undefined;
    await pool?.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  private alive(): void {
    if (this.dead) throw this.dead;
    if (!this.pool || !this.description) throw new PluginCrashedError(this.init.pluginId, `Plugin '${this.init.pluginId}' is not loaded.`);
  }

  private async invoke(exports: string[], json: string, operation: string, options?: InvocationOptions): Promise<(string | null)[]> {
    return ((await this.run({ type: 'invoke', exports, json }, operation, options)) as WasmInvokeValue).results;
  }

  /** Runs one task in its turn, under the deadline, and returns its value or throws the typed error. */
  private async run(task: WasmWorkerTask, operation: string, options: InvocationOptions = {}, transferList?: (ArrayBuffer | MessagePort)[]): Promise<unknown> {
    const previous = this.turn;
    let release!: () => void;
    this.turn = new Promise((resolve) => (release = resolve));
    await previous;
    try {
      if (this.dead) throw this.dead;
      const pool = this.pool;
      if (!pool) throw new PluginCrashedError(this.init.pluginId, `Plugin '${this.init.pluginId}' was stopped before ${operation}.`);
      const work = pool.run(task, { transferList: transferList as never }).then((reply) => this.settle(reply, operation));
      // The next invocation starts when the worker is free, not when this caller gave up.
      work.then(release, release);
      return await this.withDeadline(work, operation, options);
    } catch (error) {
      release();
      throw this.translate(error, operation);
    }
  }

  /** Takes a worker reply: counters, the gateway requests it made, then its value or error. */
  private async settle(reply: WasmWorkerReply, operation: string): Promise<unknown> {
    this.cpuTimeMs += reply.elapsedMs;
    if (reply.memoryBytes > 0) this.memoryBytes = reply.memoryBytes;
    // Requests travel on their own port: wait for them so a call's logs and emits reach the
    // gateway before the call resolves.
    await this.requestsReceived(reply.sent);
    if (reply.ok) return reply.value;
    const { pluginId } = this.init;
    if ('limit' in reply) {
      throw reply.limit === 'payload'
        ? new ResourceLimitError(pluginId, 'payload', `Plugin '${pluginId}' passed ${reply.size} bytes in ${operation}; the limit is ${this.maxPayload}.`)
        : new ResourceLimitError(pluginId, 'requests', `Plugin '${pluginId}' made more than ${this.maxRequests} host requests in ${operation}.`);
    }
    throw new PluginError(pluginId, operation, reply.error);
  }

  /**
   * Races `work` against the plugin's deadline; past it the pool is destroyed. A caller that
   * asks not to crash (a health probe) gets its answer at its own deadline, but the work still
   * has the plugin's `executionTimeoutMs`.
   */
  private withDeadline<T>(work: Promise<T>, operation: string, options: InvocationOptions = {}): Promise<T> {
    return this.watchdog.race(work, {
      pluginId: this.init.pluginId,
      operation,
      limitMs: this.init.limits.executionTimeoutMs,
      options,
      onHardTimeout: (error) => this.crash(error),
    });
  }


  private async readModule(): Promise<Uint8Array> {
    const { pluginId, dir, manifest } = this.init;
    const fail = (why: string, cause?: unknown) =>
      new PluginLoadError(`Plugin '${pluginId}' entry point '${manifest.entryPoint}' ${why}.`, { pluginId, cause });
    if (extname(manifest.entryPoint) !== '.wasm') throw fail(`is not a .wasm file; a wasm plugin's entryPoint names its module`);
    let file: string;
    try {
      const root = await realpath(dir);
      file = await realpath(join(dir, manifest.entryPoint));
      const inside = relative(root, file);
      if (inside.startsWith('..') || isAbsolute(inside)) throw fail('resolves outside the plugin folder');
      const size = (await stat(file)).size;
      if (size > this.maxModuleBytes) throw fail(`is ${size} bytes; the limit is ${this.maxModuleBytes}`);
    } catch (e) {
      throw e instanceof PluginLoadError ? e : fail(`cannot be read (${(e as Error).message})`, e);
    }
    // A fresh buffer, not a slice of Node's pool: it is transferred to the worker.
    return new Uint8Array(await readFile(file));
  }

  private encode(value: unknown, operation: string): string {
    const json = JSON.stringify(value) ?? 'null';
    this.boundaryBytes += json.length;
    if (json.length > this.maxPayload) {
      throw new ResourceLimitError(this.init.pluginId, 'payload', `Arguments of ${operation} exceed ${this.maxPayload} bytes.`);
    }
    return json;
  }

  private parse(json: string, operation: string): unknown {
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

  /** A result as the caller sees it; `{"error": …}` (its only key) is the plugin reporting a failure. */
  private result(json: string | null, operation: string): unknown {
    if (json === null) return undefined;
    const value = this.parse(json, operation);
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 1 && 'error' in value) {
      throw new PluginError(this.init.pluginId, operation, remoteError((value as { error: unknown }).error));
    }
    return value;
  }

  /** Maps whatever a failed invocation threw to the typed error the caller sees. */
  private translate(error: unknown, operation: string): PluginHostError {
    if (this.dead) return this.dead;
    if (error instanceof PluginHostError) return error;
    const { pluginId } = this.init;
    if (this.disposing) return new PluginCrashedError(pluginId, `Plugin '${pluginId}' was stopped during ${operation}.`);
    // Plugin failures come back as replies: a rejected task means the worker itself failed.
    return this.crash(this.workerDied(error, `during ${operation}`));
  }

  private workerDied(error: unknown, when: string): PluginHostError {
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
  private crash(error: PluginHostError): PluginHostError {
    if (this.dead) return this.dead;
    if (this.disposing) return error;
    this.dead = error;
    this.closeChannel();
    const pool = this.pool;
    this.pool = undefined;
    void pool?.destroy().catch(() => undefined);
    if (this.loaded) this.init.onCrash(error);
    return error;
  }

  private closeChannel(): void {
    this.port?.off('message', this.onRequest);
    this.port?.close();
    this.port = undefined;
    // Nobody will post the requests these wait for: let their replies settle.
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  private requestsReceived(seq: number): Promise<void> {
    if (this.received >= seq || !this.port) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ seq, resolve }));
  }

  /** A gateway request from the worker: the gateway validates it; the answer is not sent back (fire-and-forget). */
  private readonly onRequest = (message: WasmPortRequest): void => {
    if (this.dead || message?.type !== 'request') return;
    this.received = Math.max(this.received, message.seq);
    this.waiters = this.waiters.filter((w) => (w.seq <= this.received ? (w.resolve(), false) : true));
    if (this.pendingRequests >= this.maxPending) {
      this.droppedRequests++;
      return;
    }
    this.pendingRequests++;
    Promise.resolve()
      .then(() => this.init.gateway.request(nullPrototype(message.request)))
      .catch(() => undefined)
      .finally(() => this.pendingRequests--);
  };
}

/** The plugin's description: exposed methods and hooks from its exports, handlers from `lm_describe`. */
function describe(abi: WasmAbi, described: unknown, pluginId: string): PluginDescription {
  const fail = (why: string) =>
    new PluginLoadError(`Plugin '${pluginId}' lm_describe ${why}. It returns {"handlers":[{"pattern","method"}],"exposed"?:[…]}.`, { pluginId });
  let exposed = abi.exposed;
  let handlers: PluginDescription['handlers'] = [];
  if (described !== null) {
    const d = described as { handlers?: unknown; exposed?: unknown };
    if (typeof d !== 'object' || Array.isArray(d)) throw fail('did not return an object');
    if (d.handlers !== undefined) {
      if (!Array.isArray(d.handlers)) throw fail('returned handlers that are not an array');
      handlers = d.handlers.map((h: { pattern?: unknown; method?: unknown }) => {
        if (h === null || typeof h !== 'object' || typeof h.pattern !== 'string' || typeof h.method !== 'string') throw fail('returned a handler without a string pattern and method');
        if (!abi.handlers.includes(h.method)) throw fail(`names handler '${h.method}' but the module has no export lm_on_${h.method}`);
        return { pattern: h.pattern, method: h.method };
      });
    }
    if (d.exposed !== undefined) {
      if (!Array.isArray(d.exposed) || !d.exposed.every((m) => typeof m === 'string' && abi.exposed.includes(m))) {
        throw fail('returned exposed methods that are not lm_ exports of the module');
      }
      exposed = d.exposed as string[];
    }
  }
  return { exposed: [...exposed], handlers, hooks: [...abi.hooks] };
}

function remoteError(error: unknown): SerializedError {
  if (typeof error === 'string') return { name: 'Error', message: error };
  const e = (error ?? {}) as Record<string, unknown>;
  return {
    name: typeof e.name === 'string' ? e.name : 'Error',
    message: typeof e.message === 'string' ? e.message : JSON.stringify(error),
    code: typeof e.code === 'string' ? e.code : undefined,
  };
}
