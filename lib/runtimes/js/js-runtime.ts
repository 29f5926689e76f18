import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import ivm from 'isolated-vm';
import {
  PluginCrashedError,
  PluginError,
  PluginHostError,
  PluginLoadError,
  ResourceLimitError,
} from '../../errors.js';
import type { GatewayRequest, InvocationResult, LifecycleHook, PluginDescription, PluginInvocation } from '../protocol.js';
import type { InvocationOptions, PluginRuntime, RuntimeInit, RuntimeMetrics } from '../runtime.js';
import { DeadlineWatchdog } from '../deadline-watchdog.js';
import { checkDescription } from '../description.js';
import { isolateBootstrap, type BootstrapOptions } from './isolate-bootstrap.js';
import type { ModuleCompiler } from './module-compiler.js';
import { compileModuleGraph } from './module-graph.js';
import { errorToWire, jsonDepth, MAX_JSON_DEPTH, nullPrototype } from './wire.js';

// Resizable ArrayBuffers and growable SharedArrayBuffers commit memory outside the allocator
// isolated-vm limits (and reserve address space up to maxByteLength): a plugin could use
// gigabytes under a 16 MB cap. This turns them off for isolates created from now on; the
// host's existing buffers are unaffected, new host buffers are created non-resizable.
v8.setFlagsFromString('--no-harmony-rab-gsab');

const BOOTSTRAP = `(${isolateBootstrap.toString()})`;
const MB = 1024 * 1024;
/** How often, at most, heap use is read after an invocation (a read costs ~4 µs). */
export const MEMORY_CHECK_INTERVAL_MS = 20;

/** Tunables of the JS runtime shared by every plugin of a host. */
export interface JsRuntimeOptions {
  /** Largest JSON text a single value may take when crossing the boundary (default 4 MiB). */
  maxPayloadBytes?: number;
  /** Requests a plugin may have waiting for the host, logs included (default 256). */
  maxPendingRequests?: number;
}

/**
 * Runs one JS/TS plugin in its own isolated-vm isolate. Only JSON text crosses the boundary
 * (one `ignored` callback out, two dispatcher references in), so no host object, function,
 * `Reference` or `ExternalCopy` is ever reachable from plugin code.
 *
 * Every entry into the isolate (evaluation, construction, each invocation and each reply
 * that resumes plugin code) has a wall-clock deadline (`executionTimeoutMs`) that disposes
 * the isolate when it passes. isolated-vm's own `timeout` option is not used: it does not
 * cover code resumed after an awaited host call, and each use leaves a wake-up queued on
 * its timer thread until the original deadline (idle CPU after every call).
 * Heap use is checked after invocations, at most every {@link MEMORY_CHECK_INTERVAL_MS},
 * because `memoryLimit` can overshoot.
 */
export class JsRuntime implements PluginRuntime {
  private isolate?: ivm.Isolate;
  private context?: ivm.Context;
  private dispatcher?: ivm.Reference<(json: string) => Promise<string>>;
  private replier?: ivm.Reference<(id: number, ok: boolean, json: string | undefined) => void>;
  private dead?: PluginHostError;
  private disposing = false;
  /** Set once load() succeeded: before that, failures go to load()'s caller, not onCrash. */
  private loaded = false;
  private lastMemoryCheck = 0;
  private sampling = false;
  private boundaryBytes = 0;
  private memoryBytes = 0;
  private readonly maxPayload: number;
  private readonly maxPending: number;
  private readonly watchdog = new DeadlineWatchdog();
  /** The isolate's memory limit is fixed when it is created; a later change needs a new sandbox. */
  private readonly memoryLimitMB: number;

  constructor(
    private readonly init: RuntimeInit,
    private readonly compiler: ModuleCompiler,
    options: JsRuntimeOptions = {},
  ) {
    this.maxPayload = options.maxPayloadBytes ?? 4 * MB;
    this.maxPending = options.maxPendingRequests ?? 256;
    this.memoryLimitMB = init.limits.maxMemoryMB;
  }

  async load(): Promise<PluginDescription> {
    const { pluginId, dir, manifest } = this.init;
    const isolate = (this.isolate = new ivm.Isolate({ memoryLimit: this.memoryLimitMB }));
    try {
      const context = (this.context = await isolate.createContext());
      await context.global.set('__lm_send', new ivm.Callback(this.onSend, { ignored: true }));
      const bootstrap: BootstrapOptions = {
        pluginId,
        maxPayload: this.maxPayload,
        maxPending: this.maxPending,
        maxPendingBytes: Math.max(this.maxPayload, 8 * MB),
      };
      const endpoints = await context.eval(`${BOOTSTRAP}(globalThis, ${JSON.stringify(bootstrap)})`, { reference: true });
      this.dispatcher = await endpoints.get('dispatch', { reference: true });
      this.replier = await endpoints.get('reply', { reference: true });
      const install = await endpoints.get('install', { reference: true });
      endpoints.release();

      const graph = await compileModuleGraph(isolate, join(dir, manifest.entryPoint), dir, this.compiler, pluginId);
      await graph.module.instantiate(context, graph.resolve);
      const evaluation = graph.module.evaluate();
      await this.withDeadline(evaluation, 'module evaluation');
      const pluginClass = await graph.module.namespace.get('default', { reference: true }).catch((e: unknown) => {
        throw new PluginLoadError(
          `Plugin '${pluginId}' entry module has no usable default export (${(e as Error).message}); ` +
            `export the plugin class as default, and do not leave a top-level await pending.`,
          { pluginId, cause: e },
        );
      });
      const installing = install.apply(undefined, [pluginClass.derefInto()], { result: { copy: true } }) as Promise<string>;
      const description = checkDescription(this.decode(await this.withDeadline(installing, 'construction'), 'construction'), pluginId);
      install.release();
      pluginClass.release();
      await this.sampleMemory();
      if (description.declaredId !== undefined && description.declaredId !== pluginId) {
        throw new PluginLoadError(
          `Plugin class declares id '${description.declaredId}' but its manifest says '${pluginId}'. Make them agree.`,
          { pluginId },
        );
      }
      this.loaded = true;
      return description;
    } catch (error) {
      const failure = this.translate(error, 'load');
      await this.dispose();
      throw failure;
    }
  }

  call(method: string, args: unknown[]): Promise<unknown> {
    return this.invoke({ type: 'call', method, args }, `call ${method}()`);
  }

  async deliverEvent(topic: string, data: unknown, source: string, methods: string[]): Promise<void> {
    await this.invoke({ type: 'event', topic, data, source, methods }, `event ${topic}`);
  }

  hook(hook: LifecycleHook, arg?: unknown, options?: InvocationOptions): Promise<unknown> {
    return this.invoke({ type: 'hook', hook, arg }, hook, options);
  }

  readonly cpuProfiler = {
    start: (title: string) => this.isolate?.startCpuProfiler(title),
    stop: async (title: string) => {
      // Stopping while the isolate still holds its lock (right after a call) yields an empty
      // profile: let it go idle first. One profile per isolate entry comes back; the profiler merges them.
      await new Promise((r) => setTimeout(r, 10));
      return (await this.isolate?.stopCpuProfiler(title)) ?? [];
    },
  };

  /** The last memory sample (taken after load and after invocations) and CPU time so far. */
  metrics(): RuntimeMetrics {
    const alive = this.isolate && !this.isolate.isDisposed;
    return {
      memoryBytes: alive ? this.memoryBytes : 0,
      memoryLimitBytes: this.memoryLimitMB * MB,
      cpuTimeMs: alive ? Number(this.isolate!.cpuTime) / 1e6 : 0,
      boundaryBytes: this.boundaryBytes,
    };
  }

  async dispose(): Promise<void> {
    this.disposing = true;
    this.watchdog.dispose();
    this.dispatcher?.release();
    this.replier?.release();
    if (this.isolate && !this.isolate.isDisposed) this.isolate.dispose();
    this.dispatcher = this.replier = undefined;
    this.context = undefined;
  }

  private async invoke(invocation: PluginInvocation, operation: string, options: InvocationOptions = {}): Promise<unknown> {
    if (this.dead) throw this.dead;
    if (!this.dispatcher) throw new PluginCrashedError(this.init.pluginId, `Plugin '${this.init.pluginId}' is not loaded.`);
    const json = this.encode(invocation, operation);
    try {
      const running = this.dispatcher.apply(undefined, [json], { arguments: { copy: true }, result: { promise: true, copy: true } });
      const value = this.decode(await this.withDeadline(running, operation, options), operation);
      this.checkMemory();
      return value;
    } catch (error) {
      throw this.translate(error, operation);
    }
  }

  /**
   * Races `work` against the plugin's deadline; past it the isolate is disposed. A caller that
   * asks not to crash (a health probe) gets its answer at its own deadline, but the work still
   * has the plugin's `executionTimeoutMs`: every entry into the isolate ends by then.
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


  private encode(value: unknown, operation: string): string {
    const json = JSON.stringify(value);
    this.boundaryBytes += json.length;
    if (json.length > this.maxPayload) {
      throw new ResourceLimitError(this.init.pluginId, 'payload', `Arguments of ${operation} exceed ${this.maxPayload} bytes.`);
    }
    return json;
  }

  private decode(json: unknown, operation: string): unknown {
    if (typeof json !== 'string' || json.length > this.maxPayload) {
      throw new ResourceLimitError(this.init.pluginId, 'payload', `The result of ${operation} exceeds ${this.maxPayload} bytes.`);
    }
    this.boundaryBytes += json.length;
    this.checkDepth(json, `the result of ${operation}`);
    const result = JSON.parse(json) as InvocationResult;
    if (result.ok) return nullPrototype(result.value);
    if ('limit' in result) {
      throw new ResourceLimitError(this.init.pluginId, 'payload', `The result of ${operation} is ${result.size} bytes; the limit is ${this.maxPayload}.`);
    }
    throw new PluginError(this.init.pluginId, operation, result.error);
  }

  /**
   * isolated-vm's limit is a guideline: the declared one is enforced on top of it, from a
   * sample taken at most every MEMORY_CHECK_INTERVAL_MS. The sample is asynchronous: the
   * synchronous read waits for the isolate to be idle, which a plugin could delay at will.
   */
  private checkMemory(): void {
    const now = performance.now();
    if (this.sampling || now - this.lastMemoryCheck < MEMORY_CHECK_INTERVAL_MS) return;
    this.lastMemoryCheck = now;
    void this.sampleMemory();
  }

  private async sampleMemory(): Promise<void> {
    const isolate = this.isolate;
    if (!isolate || isolate.isDisposed || this.sampling) return;
    this.sampling = true;
    try {
      const heap = await isolate.getHeapStatistics();
      this.memoryBytes = heap.used_heap_size + heap.externally_allocated_size;
      if (this.memoryBytes > this.memoryLimitMB * MB) this.crash(this.memoryError(this.memoryBytes));
    } catch {
      // The isolate went away while sampling: whoever disposed it reports why.
    } finally {
      this.sampling = false;
    }
  }

  private memoryError(used?: number): ResourceLimitError {
    const { pluginId } = this.init;
    return new ResourceLimitError(
      pluginId,
      'memory',
      `Plugin '${pluginId}' exceeded its memory limit of ${this.memoryLimitMB} MB${used ? ` (using ${(used / MB).toFixed(1)} MB)` : ''} and was stopped. Raise resourceLimits.maxMemoryMB or fix the leak.`,
    );
  }

  private checkDepth(json: string, what: string): void {
    if (jsonDepth(json) > MAX_JSON_DEPTH) {
      throw new ResourceLimitError(this.init.pluginId, 'payload', `${what} is nested deeper than ${MAX_JSON_DEPTH} levels.`);
    }
  }

  /** Maps whatever a failed invocation threw to the typed error the caller sees. */
  private translate(error: unknown, operation: string): PluginHostError {
    if (this.dead) return this.dead;
    if (error instanceof PluginHostError) return error;
    const message = (error as Error)?.message ?? String(error);
    const { pluginId } = this.init;
    // Only isolated-vm disposes an isolate on its own, and only for memory: a plugin's error
    // text alone ('memory limit') must not decide the classification.
    if (this.isolate?.isDisposed && !this.disposing && /memory limit/i.test(message)) return this.crash(this.memoryError());
    if (this.disposing) return new PluginCrashedError(pluginId, `Plugin '${pluginId}' was stopped during ${operation}.`);
    if (this.isolate?.isDisposed) return this.crash(new PluginCrashedError(pluginId, `Plugin '${pluginId}' sandbox died during ${operation}: ${message}`));
    return new PluginError(pluginId, operation, { name: (error as Error)?.name ?? 'Error', message, stack: (error as Error)?.stack });
  }

  /** Ends the plugin's sandbox once, and reports why. */
  private crash(error: PluginHostError): PluginHostError {
    if (this.dead) return this.dead;
    this.dead = error;
    this.watchdog.dispose();
    if (this.isolate && !this.isolate.isDisposed) this.isolate.dispose();
    if (this.loaded && !this.disposing) this.init.onCrash(error);
    return error;
  }

  /** The isolate's only way out: a request for the gateway, as JSON text. */
  private readonly onSend = (id: unknown, json: unknown): void => {
    if (this.dead || typeof id !== 'number') return;
    // Every request is answered, logs included: the answer frees the plugin's request budget.
    const answer = (ok: boolean, value: unknown) => {
      if (!this.replier || this.dead) return;
      let text: string | undefined;
      try {
        text = value === undefined ? undefined : JSON.stringify(value);
        if (text !== undefined && text.length > this.maxPayload) throw new Error(`reply exceeds ${this.maxPayload} bytes`);
      } catch (e) {
        ok = false;
        text = JSON.stringify(errorToWire(e));
      }
      // Plugin code resumed by this reply runs inside the apply, so it gets a deadline too.
      const resumed = this.replier.apply(undefined, [id, ok, text], { arguments: { copy: true } });
      this.withDeadline(resumed, 'code resumed by a reply from the host').catch((e: unknown) => this.translate(e, 'a reply from the host'));
    };
    let request: GatewayRequest;
    try {
      if (typeof json !== 'string' || json.length > this.maxPayload) throw new ResourceLimitError(this.init.pluginId, 'payload', `A request to the host exceeds ${this.maxPayload} bytes.`);
      this.boundaryBytes += json.length;
      this.checkDepth(json, 'A request to the host');
      request = nullPrototype(JSON.parse(json)) as GatewayRequest;
    } catch (e) {
      answer(false, errorToWire(e));
      return;
    }
    this.init.gateway.request(request).then(
      (value) => answer(true, value),
      (e: unknown) => answer(false, errorToWire(e)),
    );
  };
}

