import type { Logger } from 'pino';
import type { DependencyContainer } from 'tsyringe';
import type { HostPermissionPolicy } from '../gateway/permissions.js';
import type { RecoveryOptions } from './crash-handler.js';
import type { HealthOptions } from './health.js';
import type { MonitoringOptions } from './host-monitoring.js';
import type { ResourceMonitorOptions } from '../monitor/resource-monitor.js';
import type { ResourceLimits } from '../registry/manifest-schema.js';

/** Options of `createPluginHost()`. Every field is optional. */
export interface HostOptions {
  /** Folders searched by `loadAll()`: a plugin folder itself, or a folder of plugin folders. */
  pluginDirs?: string[];
  /** Where the host keeps its data (compiled-code cache, later per-plugin storage). Default `./.logomesh`. */
  dataDir?: string;
  /** Refuse plugins without a valid signature from `trustedKeys`. Default false (unsigned load with a warning). */
  requireSignature?: boolean;
  /** ed25519 public keys (PEM text or paths to PEM files) whose signatures are trusted. */
  trustedKeys?: string[];
  /** The most any manifest may ask for; a manifest asking for more fails validation. */
  hostLimits?: Required<ResourceLimits>;
  /** Events queued per subscribing plugin before new ones are dropped. Default 1000. */
  eventQueueLimit?: number;
  /** Largest JSON text one value may take when crossing into or out of a plugin. Default 4 MiB. */
  maxPayloadBytes?: number;
  /**
   * WebAssembly and Python plugins: idle time after which a plugin's worker thread is ended to
   * give its memory back, when the plugin is `stateless` or keeps its state with
   * `serializeState`/`deserializeState`; the next call starts a new one. Default 5 minutes; 0 never.
   */
  idleWorkerMs?: number;
  /**
   * Most threads (replicas) a stateless wasm or python plugin gets, whatever its manifest's
   * `threads.max` says; each has the plugin's own memory limit. Default 4.
   */
  maxThreadsPerPlugin?: number;
  /** Time all plugins' `onStop` hooks get together in `close()`, ms. Default 10 000. */
  closeTimeoutMs?: number;
  /** Longest chain of events emitted from event handlers (A's handler emits, B's handler emits, …). Default 8. */
  maxEventDepth?: number;
  /** What any manifest may ask for; a manifest asking for more fails to load with the list. */
  permissionPolicy?: HostPermissionPolicy;
  /** Bytes each plugin may write through `ctx.fs` over its life, MB. Default 100. */
  writeQuotaMB?: number;
  /** Network settings for `ctx.net.fetch`. */
  network?: {
    /** Loopback/private/link-local addresses or CIDRs plugins may still reach (e.g. a local service). Default none. */
    allowAddress?: string[];
    /** DNS resolution override (tests, custom resolvers). */
    resolve?(hostname: string): Promise<{ address: string; family: 4 | 6 }[]>;
  };
  /** Gateway requests per second per plugin (and burst) before the plugin is made to wait. Default 2000/500. */
  gatewayRate?: { perSecond: number; burst: number };
  /**
   * Host services plugins may call with `ctx.services.call(operation, args)`: instances, or
   * classes resolved from the host's container. Only their `@PluginApi()` methods are reachable.
   */
  services?: (object | (new (...args: never[]) => object))[];
  /** Crash recovery: `restartOnCrash` (default true), backoff and circuit breaker settings. */
  recovery?: RecoveryOptions;
  /**
   * The seed's automated responses in one place; each overrides its detailed setting
   * (`recovery.restartOnCrash`, `monitoring.governor.throttleOnHighCPU`,
   * `monitoring.security.isolateOnSecurityThreat`, `monitoring.scaleOnHighLoad`).
   */
  policies?: { restartOnCrash?: boolean; throttleOnHighCPU?: boolean; isolateOnSecurityThreat?: boolean; scaleOnHighLoad?: boolean };
  /** Thresholds, alert actions, CPU enforcement and the security monitor. */
  monitoring?: MonitoringOptions;
  /** Metrics sampling interval and history size. */
  metrics?: ResourceMonitorOptions;
  /** Heartbeat and unresponsiveness deadline. */
  health?: HealthOptions;
  /** How often, at most, a busy plugin's `serializeState()` is kept as its last good snapshot, ms. Default 5000. */
  stateSnapshotIntervalMs?: number;
  /** A pino logger; by default one at level `warn` on stderr (`LOGOMESH_LOG_LEVEL` overrides). */
  logger?: Logger;
  /** Parent container; the host always works in a child of it. */
  container?: DependencyContainer;
  /** Replace core services before the host is built: `c => c.register(IEventBus, { useClass: MyBus })`. */
  configure?(container: DependencyContainer): void;
}
