import type { Observable } from 'rxjs';
import type { PluginHostError } from '../errors.js';
import type { BusEvent } from '../events/host-events.js';
import type { PluginUsage } from '../gateway/api-gateway.js';
import type { VerificationResult } from '../registry/integrity.js';
import type { PluginState } from './lifecycle.js';

// What the host reports about plugins: the public shapes of `status()`, `list()`, `loadAll()` and `plugin()`.

/** What `host.status(id)` and `host.list()` tell about one plugin. */
export interface PluginStatus {
  id: string;
  version: string;
  runtime: string;
  state: PluginState;
  dir: string;
  /** Time from reading the manifest to a constructed plugin, ms. */
  loadTimeMs?: number;
  /** Time `onStart` took, ms. */
  startTimeMs?: number;
  signature: VerificationResult['status'] | 'unchecked';
  exposed: string[];
  subscriptions: string[];
  memory: { current: number; limit: number };
  /** What the plugin used through the gateway (files, network, denials). */
  usage?: PluginUsage;
  /** Delay added to each call by CPU throttling, ms. */
  throttleMs: number;
  /** Why calls to it fail fast, while monitoring holds it suspended. */
  suspended?: string;
  error?: PluginHostError;
}

/** One line of `loadAll()`'s report. */
export interface PluginLoadResult {
  id: string;
  version?: string;
  dir?: string;
  state: PluginState;
  loadTimeMs?: number;
  error?: PluginHostError;
  warnings: string[];
}

/** What `loadAll()` did, plugin by plugin. It never throws for a plugin's failure. */
export interface LoadReport {
  plugins: PluginLoadResult[];
  started: string[];
  failed: string[];
  durationMs: number;
}

/** A view of one loaded plugin. */
export interface PluginHandle {
  readonly id: string;
  /** What this plugin emits, optionally narrowed to a topic pattern. */
  events$(pattern?: string): Observable<BusEvent>;
  call<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
  status(): PluginStatus;
}
