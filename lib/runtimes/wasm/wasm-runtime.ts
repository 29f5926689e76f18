import { readFile, realpath, stat } from 'node:fs/promises';
import { extname, join, relative, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { InvalidArgumentError, MethodNotExposedError, PluginError, PluginLoadError } from '../../errors.js';
import { nullPrototype } from '../js/wire.js';
import type { LifecycleHook, PluginDescription } from '../protocol.js';
import type { InvocationOptions, RuntimeInit } from '../runtime.js';
import { remoteError, WorkerRuntime } from '../worker-runtime.js';
import { exportFor } from './wasm-abi.js';
import { WasmAnswers } from './wasm-answers.js';
import { WASM_CODEC, type WasmInvokeValue, type WasmLoadValue, type WasmPortMessage, type WasmWorkerReply, type WasmWorkerTask } from './wasm-protocol.js';
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
  /** Host imports (log, emit, request) one invocation may call; beyond, the import throws (default 1000). */
  maxRequestsPerInvocation?: number;
  /** Largest maximum a table may declare (default 10 000 elements). */
  maxTableElements?: number;
  /** Largest `.wasm` file accepted (default 32 MiB). */
  maxModuleBytes?: number;
  /**
   * Idle time after which a plugin's worker is ended to give its memory back, if the plugin is
   * `stateless` or keeps its state with `serializeState`/`deserializeState`; the next
   * invocation starts a new one (default 5 minutes; 0: never).
   */
  idleWorkerMs?: number;
}

/**
 * Runs one WebAssembly plugin in its own piscina pool of exactly one worker thread, whose
 * `resourceLimits` come from `maxMemoryMB` and which gets no environment and no exec
 * arguments. The binary is checked before it is compiled ({@link checkWasmModule}): imports
 * only from `logomesh`, memories and tables with a declared maximum within the limits, no
 * start function. Only JSON text and copies cross; plugin → host requests go to the gateway:
 * `log` and `emit` fire-and-forget, `request` blocking the worker until the answer is back
 * ({@link WasmAnswers}).
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
export class WasmRuntime extends WorkerRuntime<WasmWorkerTask, WasmWorkerReply> {
  protected readonly codec = WASM_CODEC;
  private port?: MessagePort;
  private abi?: WasmAbi;
  private received = 0;
  private waiters: { seq: number; resolve: () => void }[] = [];
  private pendingRequests = 0;
  private droppedRequests = 0;
  private readonly maxPending: number;
  private readonly maxRequests: number;
  private readonly maxTableElements: number;
  private readonly maxModuleBytes: number;
  private answers: WasmAnswers;
  /** The module as read and checked at load. */
  private bytes?: Uint8Array;

  constructor(init: RuntimeInit, options: WasmRuntimeOptions = {}) {
    super(init, options.maxPayloadBytes ?? 4 * MB);
    this.maxPending = options.maxPendingRequests ?? 256;
    this.maxRequests = options.maxRequestsPerInvocation ?? 1000;
    this.maxTableElements = options.maxTableElements ?? 10_000;
    this.maxModuleBytes = options.maxModuleBytes ?? 32 * MB;
    this.idleMs = options.idleWorkerMs ?? 5 * 60_000;
    this.answers = new WasmAnswers(init, this.maxPayload, () => this.port);
  }

  /** Reads the module once and checks it before anything compiles it. */
  protected override async prepare(): Promise<void> {
    this.bytes = await this.readModule();
    this.abi = checkWasmModule(this.bytes, { maxMemoryBytes: this.memoryLimitMB * MB, maxTableElements: this.maxTableElements }, this.init.pluginId);
  }

  /** A worker for the module read at load: at load, and again when a reaped worker wakes. */
  protected override async boot(): Promise<PluginDescription> {
    this.startPool({ filename: WORKER_FILE, heapMB: this.memoryLimitMB });
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.received = 0;
    this.answers = new WasmAnswers(this.init, this.maxPayload, () => this.port);
    port1.on('message', this.onRequest);
    port1.unref();
    const { port: invocations, wake } = this.openInvocations();
    // A copy is transferred: the module's bytes stay here for the next boot.
    const bytes = this.bytes!.slice();
    const task: WasmWorkerTask = {
      type: 'load',
      bytes,
      port: port2,
      invocations,
      wake,
      maxPayloadBytes: this.maxPayload,
      maxRequestsPerInvocation: this.maxRequests,
      signal: this.answers.signal,
    };
    const value = (await this.execute(this.answers.begin(task), 'load', {}, [bytes.buffer as ArrayBuffer, port2, invocations])) as WasmLoadValue;
    return describe(this.abi!, value.describe === null ? null : this.parse(value.describe, 'lm_describe'), this.init.pluginId);
  }

  protected override hookTask(hook: LifecycleHook, arg?: unknown): WasmWorkerTask {
    return this.answers.begin({ type: 'invoke', exports: [exportFor({ type: 'hook', hook })], json: this.encode(arg ?? null, hook) });
  }

  protected override hookResult(value: unknown, hook: LifecycleHook): unknown {
    return this.result((value as WasmInvokeValue).results[0], hook);
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
    if (!this.abi!.hooks.includes(hook)) {
      this.noteHook(hook);
      return undefined;
    }
    const [result] = await this.invoke([exportFor({ type: 'hook', hook })], this.encode(arg ?? null, hook), hook, options);
    const value = this.result(result, hook);
    this.noteHook(hook);
    return value;
  }

  /** Gateway requests dropped because too many were waiting for the host. */
  get dropped(): number {
    return this.droppedRequests;
  }

  private async invoke(exports: string[], json: string, operation: string, options?: InvocationOptions): Promise<(string | null)[]> {
    return ((await this.run(this.answers.begin({ type: 'invoke', exports, json }, options), operation, options)) as WasmInvokeValue).results;
  }

  /** Takes a worker reply: counters, the gateway requests it made, then its value or error. */
  protected settle(reply: WasmWorkerReply, operation: string): unknown {
    // Requests travel on their own port: wait for them so a call's logs and emits reach the
    // gateway before the call resolves.
    if (this.received < reply.sent && this.port) return this.requestsReceived(reply.sent).then(() => this.outcome(reply, operation));
    return this.outcome(reply, operation);
  }

  private outcome(reply: WasmWorkerReply, operation: string): unknown {
    if (reply.ok) return reply.value;
    if ('limit' in reply) throw this.limitError(reply.limit, reply.size, operation, this.maxRequests);
    throw new PluginError(this.init.pluginId, operation, reply.error);
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

  /** A result as the caller sees it; `{"error": …}` (its only key) is the plugin reporting a failure. */
  private result(json: string | null, operation: string): unknown {
    if (json === null) return undefined;
    const value = this.parse(json, operation);
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 1 && 'error' in value) {
      throw new PluginError(this.init.pluginId, operation, remoteError((value as { error: unknown }).error));
    }
    return value;
  }

  protected override closeChannel(): void {
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

  /**
   * A message from the worker: a blocking `ask` goes to {@link WasmAnswers}; a `request` (log,
   * emit) goes to the gateway, which validates it, and its answer is not sent back.
   */
  private readonly onRequest = (message: WasmPortMessage): void => {
    if (this.dead || (message?.type !== 'request' && message?.type !== 'ask')) return;
    this.received = Math.max(this.received, message.seq);
    this.waiters = this.waiters.filter((w) => (w.seq <= this.received ? (w.resolve(), false) : true));
    if (message.type === 'ask') {
      this.boundaryBytes += message.json.length;
      return this.answers.answer(message);
    }
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
