/**
 * The shapes the monitoring services share: what is measured per plugin, what counts as
 * misbehaving, what the host may do about it. Types only.
 */

/** Per-method call statistics, latencies in ms. */
export interface MethodStats {
  count: number;
  errors: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** What one plugin costs, measured by the host (never reported by the plugin). The seed's `PluginMetrics`. */
export interface PluginMetrics {
  pluginId: string;
  /** When this sample was taken (epoch ms). */
  at: number;
  /** Bytes: isolate heap incl. external memory (or worker heap + linear memory). */
  memory: { current: number; peak: number; limit: number };
  /** Percent of one core: over the last sample interval, over the plugin's life, and its `maxCpuPercent`. */
  cpu: { current: number; average: number; limit: number };
  network: { bytesIn: number; bytesOut: number; requestCount: number };
  filesystem: { filesOpen: number; bytesRead: number; bytesWritten: number };
  /** Total ms spent in calls, events and hooks. */
  executionTime: number;
  errorCount: number;
  /** Epoch ms of the last call or event delivered to the plugin; 0 if none yet. */
  lastActivity: number;
  calls: Record<string, MethodStats>;
}

/** When a plugin counts as misbehaving. The seed's defaults: memory 80 % of its limit, CPU 70 %, 5 errors a minute, 1000 ms responses. */
export interface Thresholds {
  /** Percent of the plugin's memory limit. */
  memoryPercent: number;
  /** Percent of one core (sliding window). */
  cpuPercent: number;
  errorsPerMinute: number;
  /** p90 call latency, ms. */
  responseTimeMs: number;
}

/** What the host does when a threshold is crossed. */
export type ThresholdAction = 'log' | 'throttle' | 'suspend' | 'restart' | 'kill';

export type AlertKind = 'memory' | 'cpu' | 'errors' | 'responseTime' | 'unresponsive' | 'security' | 'crashLoop';

/** A typed alert on `host.alerts$`. */
export interface Alert {
  kind: AlertKind;
  pluginId: string;
  /** The measured value and the threshold it crossed (units per kind). */
  value: number;
  threshold: number;
  action: ThresholdAction;
  message: string;
  /** What the decision was based on (recent samples, denials, in-flight calls, …). */
  evidence?: unknown;
  at: number;
}

/** The levers the monitoring services pull on the host. */
export interface PluginController {
  /** Delay each call into the plugin by `delayMs` (0 lifts it). */
  throttle(pluginId: string, delayMs: number): void;
  /** Stop taking calls and events (they fail fast) until `resume`. */
  suspend(pluginId: string, reason: string): void;
  resume(pluginId: string): void;
  restart(pluginId: string, reason: string): Promise<void>;
  /** End the plugin's sandbox now (it becomes `crashed`). */
  kill(pluginId: string, reason: string): Promise<void>;
}
