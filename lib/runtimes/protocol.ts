/**
 * Everything that crosses between the host and a plugin sandbox (isolate or worker).
 * Types only. Values travel as JSON text, so they are copies by construction: no host
 * object, function or reference can cross, and getters run on the plugin's side.
 */
import type { SerializedError } from '../errors.js';

/** Host → plugin: one invocation of the plugin's dispatcher. */
export type PluginInvocation =
  | { type: 'call'; method: string; args: unknown[] }
  | { type: 'event'; topic: string; data: unknown; source: string; methods: string[] }
  | { type: 'hook'; hook: LifecycleHook; arg?: unknown };

export type LifecycleHook =
  | 'onStart'
  | 'onStop'
  | 'serializeState'
  | 'deserializeState'
  | 'checkHealth'
  | 'onDependencyDown'
  | 'onDependencyUp';

/** Plugin → host: the dispatcher's answer. */
export type InvocationResult =
  | { ok: true; value: unknown }
  | { ok: false; error: SerializedError }
  /** The answer was too large to send (checked inside the sandbox, before any copy). */
  | { ok: false; limit: 'payload'; size: number };

/** What a plugin class declares, read by the sandbox after `init`. */
export interface PluginDescription {
  exposed: string[];
  handlers: { pattern: string; method: string }[];
  hooks: LifecycleHook[];
  declaredId?: string;
}

/** Plugin → host: a request to the API gateway; each `op` is one gateway method (schemas in gateway/operations.ts). */
export type { GatewayRequest } from '../gateway/operations.js';
import type { GatewayRequest } from '../gateway/operations.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** The host side of a sandbox's channel: answers gateway requests for one plugin. */
export interface GatewayPort {
  /** `request` is untrusted, decoded JSON: the gateway validates it. */
  request(request: unknown): Promise<unknown>;
}
