import type { PluginHostError } from '../errors.js';
import type { PluginState } from '../host/lifecycle.js';

/** A lifecycle transition of one plugin: `plugin.loaded`, `plugin.started`, `plugin.crashed`, … */
export interface PluginStateEvent {
  type: `plugin.${PluginState}`;
  pluginId: string;
  version: string;
  from: PluginState | null;
  at: number;
  error?: PluginHostError;
}

/** Something the host wants an operator to see, such as an unsigned plugin being loaded. */
export interface PluginWarningEvent {
  type: 'plugin.warning';
  pluginId: string;
  message: string;
  at: number;
}

/**
 * An event was not delivered: the subscriber's queue was full (`queue-full`, `pluginId` is the
 * subscriber), or it was emitted by a handler of an event chain already `maxEventDepth` deep
 * (`too-deep`, `pluginId` is the emitter): two plugins re-emitting what they handle stop there.
 */
export interface EventDroppedEvent {
  type: 'event.dropped';
  reason: 'queue-full' | 'too-deep';
  pluginId: string;
  topic: string;
  dropped: number;
  at: number;
}

/** A plugin asked for something its permissions do not allow. */
export interface PermissionDeniedEvent {
  type: 'permission.denied';
  pluginId: string;
  operation: string;
  target: string;
  /** The permission that would have allowed it. */
  needed: string;
  at: number;
}

/** A plugin's dependency went down (crashed) or came back; sent for each dependent. */
export interface DependencyEvent {
  type: 'plugin.dependencyDown' | 'plugin.dependencyUp';
  /** The dependent plugin. */
  pluginId: string;
  dependency: string;
  at: number;
}

/** Crash recovery: a restart was scheduled, or a plugin's circuit breaker changed state. */
export type RecoveryHostEvent =
  | { type: 'plugin.recovering'; pluginId: string; attempt: number; delayMs: number; at: number }
  | { type: 'plugin.circuit'; pluginId: string; state: 'closed' | 'open' | 'half-open'; retryAt?: number; at: number };

/** A plugin was suspended (calls fail fast) or resumed by the host's monitoring. */
export interface SuspensionEvent {
  type: 'plugin.suspended' | 'plugin.resumed';
  pluginId: string;
  reason?: string;
  at: number;
}

/** Everything `host.events$` can emit. Switch on `type`. */
export type HostEvent =
  | PluginStateEvent
  | PluginWarningEvent
  | EventDroppedEvent
  | PermissionDeniedEvent
  | DependencyEvent
  | RecoveryHostEvent
  | SuspensionEvent;

/** An event on the bus, published by the host or emitted by a plugin (`source` is stamped by the host). */
export interface BusEvent<T = unknown> {
  topic: string;
  data: T;
  source: string;
  at: number;
  /** How many handlers deep this event was emitted (0: not from inside a handler). Set by the bus. */
  depth?: number;
}

/** The host's source name on bus events it publishes itself. */
export const HOST_SOURCE = 'host';
