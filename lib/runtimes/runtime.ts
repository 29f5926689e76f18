import type { PluginManifest, ResourceLimits } from '../registry/manifest-schema.js';
import type { PluginHostError } from '../errors.js';
import type { GatewayPort, LifecycleHook, PluginDescription } from './protocol.js';

/** What a runtime measured about its sandbox. */
export interface RuntimeMetrics {
  /** Bytes in use (heap plus external memory). */
  memoryBytes: number;
  /** Bytes the sandbox may use. */
  memoryLimitBytes: number;
  /** CPU time the sandbox used, ms. */
  cpuTimeMs: number;
  /** Bytes of values copied across the boundary, both ways, over the sandbox's life. */
  boundaryBytes?: number;
}

/** Per-invocation overrides. */
export interface InvocationOptions {
  /** Deadline for this invocation instead of `executionTimeoutMs`. */
  deadlineMs?: number;
  /** Whether missing the deadline ends the sandbox (default true). A health probe says false. */
  crashOnTimeout?: boolean;
}

/** What a runtime needs to host one plugin. */
export interface RuntimeInit {
  pluginId: string;
  dir: string;
  manifest: PluginManifest;
  /** Read on every invocation: the host may change `executionTimeoutMs` of a running plugin. */
  limits: Required<ResourceLimits>;
  gateway: GatewayPort;
  /** Called once when the sandbox dies on its own (memory, deadline). */
  onCrash(error: PluginHostError): void;
}

/**
 * The one interface the host knows. A language is an implementation of it; the host knows
 * nothing about isolates or workers.
 */
export interface PluginRuntime {
  /** Build the sandbox, evaluate the plugin and construct its class. */
  load(): Promise<PluginDescription>;
  call(method: string, args: unknown[]): Promise<unknown>;
  deliverEvent(topic: string, data: unknown, source: string, methods: string[]): Promise<void>;
  /** Run a lifecycle hook if the plugin defines it. */
  hook(hook: LifecycleHook, arg?: unknown, options?: InvocationOptions): Promise<unknown>;
  /**
   * True when the sandbox runs one invocation at a time: a call into it waits while one of its
   * invocations waits on a host request (a worker runtime). The host refuses such a call at once
   * when it comes from that very invocation's chain (A → B → A), instead of letting it wait for
   * the deadline.
   */
  readonly serial?: boolean;
  /** V8 CPU profiling of the sandbox, where the runtime offers it. */
  readonly cpuProfiler?: { start(title: string): void; stop(title: string): Promise<unknown> };
  metrics(): RuntimeMetrics;
  /** Tear the sandbox down; safe to call more than once. */
  dispose(): Promise<void>;
}

/** Builds runtimes by manifest `runtime`. */
export interface IRuntimeFactory {
  create(init: RuntimeInit): PluginRuntime;
  supports(kind: string): boolean;
}
export const IRuntimeFactory = Symbol.for('logomesh.IRuntimeFactory');
