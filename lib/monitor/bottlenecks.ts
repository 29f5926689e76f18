/**
 * Why a plugin is slow or heavy, as a small table of rules over what the host measured.
 * Each rule returns zero or more findings with the numbers it decided on.
 */
import type { HotFunction } from './cpu-profile.js';
import type { MethodStats } from './types.js';

export type BottleneckRule =
  | 'hot-method'
  | 'large-payloads'
  | 'memory-near-limit'
  | 'chatty-gateway'
  | 'slow-method'
  | 'error-prone-method';

/** One finding: which rule, a message saying what to look at, and the numbers behind it. */
export interface Bottleneck {
  rule: BottleneckRule;
  message: string;
  evidence: Record<string, unknown>;
}

/** Gateway activity over a period: requests by operation, bytes copied across the boundary, calls into the plugin. */
export interface GatewayActivity {
  requests: Record<string, number>;
  payloadBytes: number;
  calls: number;
}

/** What the rules look at. */
export interface BottleneckInput {
  pluginId: string;
  /** Per-method stats; where `countInSession` is given it counts instead of `count`. */
  methods: Record<string, MethodStats & { countInSession?: number }>;
  /** Bytes. */
  memory: { current: number; peak: number; limit: number };
  /** Gateway activity over `durationMs`. */
  gateway?: GatewayActivity;
  durationMs?: number;
  /** The top self-time function of a V8 profile, if one was taken. */
  hotFunction?: HotFunction;
}

/** The thresholds the rules use. */
export const BOTTLENECK_LIMITS = {
  /** A method's share of the estimated call time. */
  hotMethodShare: 0.5,
  /** A profiled function's share of CPU self time. */
  hotFunctionShare: 0.2,
  slowP90Ms: 100,
  errorRate: 0.1,
  errorMinCalls: 10,
  payloadBytesPerRequest: 256 * 1024,
  memoryShare: 0.8,
  requestsPerCall: 50,
  requestsPerSecond: 1000,
} as const;

const L = BOTTLENECK_LIMITS;

/**
 * The rules, one function each, in the order findings are reported.
 *
 * @example
 * BOTTLENECK_RULES['slow-method'](input); // [{ rule: 'slow-method', message: …, evidence: { method: 'render', p90: 240, … } }]
 */
export const BOTTLENECK_RULES: Record<BottleneckRule, (input: BottleneckInput) => Bottleneck[]> = {
  'hot-method': (input) => {
    const found: Bottleneck[] = [];
    const times = Object.entries(input.methods)
      .map(([method, s]) => ({ method, calls: callsOf(s), estimatedMs: callsOf(s) * estimateMeanMs(s) }))
      .filter((t) => t.estimatedMs > 0)
      .sort((a, b) => b.estimatedMs - a.estimatedMs);
    const totalEstimatedMs = times.reduce((sum, t) => sum + t.estimatedMs, 0);
    const [top, runnerUp] = times;
    const share = top ? top.estimatedMs / totalEstimatedMs : 0;
    // One method must stand out: a lone method is trivially 100 %, and two tied at 50 % say nothing.
    if (runnerUp && runnerUp.estimatedMs < top.estimatedMs && share >= L.hotMethodShare) {
      found.push(finding(input, 'hot-method',
        `method '${top.method}' takes ${pct(share)} of the plugin's call time (about ${Math.round(top.estimatedMs)} ms ` +
          `over ${top.calls} calls); make it cheaper or call it less`,
        { method: top.method, share, estimatedMs: top.estimatedMs, calls: top.calls, totalEstimatedMs }));
    }
    const hot = input.hotFunction;
    if (hot && hot.share >= L.hotFunctionShare) {
      found.push(finding(input, 'hot-method',
        `function '${hot.functionName}' (${hot.url}:${hot.lineNumber}) has ${pct(hot.share)} of the CPU self time ` +
          `(${hot.selfMs.toFixed(1)} ms); open the .cpuprofile in Chrome DevTools to see why`,
        { ...hot, threshold: L.hotFunctionShare }));
    }
    return found;
  },

  'slow-method': (input) =>
    Object.entries(input.methods)
      .filter(([, s]) => s.count > 0 && s.p90 >= L.slowP90Ms)
      .map(([method, s]) => finding(input, 'slow-method',
        `method '${method}' is slow: p90 ${s.p90} ms (p99 ${s.p99} ms, max ${s.max} ms); ` +
          'profile it or move the work out of the call path',
        { method, p50: s.p50, p90: s.p90, p99: s.p99, max: s.max, count: s.count, thresholdMs: L.slowP90Ms })),

  'error-prone-method': (input) =>
    Object.entries(input.methods)
      .filter(([, s]) => s.count >= L.errorMinCalls && s.errors / s.count >= L.errorRate)
      .map(([method, s]) => finding(input, 'error-prone-method',
        `method '${method}' fails ${pct(s.errors / s.count)} of its calls (${s.errors} of ${s.count}); ` +
          "check the plugin's logs and inputs",
        { method, errors: s.errors, count: s.count, errorRate: s.errors / s.count, threshold: L.errorRate })),

  'large-payloads': (input) => {
    const requests = totalRequests(input.gateway);
    const payloadBytes = input.gateway?.payloadBytes ?? 0;
    const bytesPerRequest = requests > 0 ? payloadBytes / requests : 0;
    if (bytesPerRequest < L.payloadBytesPerRequest) return [];
    return [finding(input, 'large-payloads',
      `gateway requests carry ${kib(bytesPerRequest)} KiB on average (${kib(payloadBytes)} KiB over ${requests} ` +
        'requests); page or stream the data, or pass references instead of copies',
      { bytesPerRequest, payloadBytes, requests, thresholdBytes: L.payloadBytesPerRequest })];
  },

  'memory-near-limit': (input) => {
    const { current, peak, limit } = input.memory;
    if (limit <= 0 || Math.max(current, peak) < L.memoryShare * limit) return [];
    return [finding(input, 'memory-near-limit',
      `memory reached ${pct(Math.max(current, peak) / limit)} of its ${mib(limit)} MiB limit (now ${mib(current)} MiB, ` +
        `peak ${mib(peak)} MiB); free caches or raise resourceLimits.maxMemoryMB`,
      { current, peak, limit, currentShare: current / limit, peakShare: peak / limit, threshold: L.memoryShare })];
  },

  'chatty-gateway': (input) => {
    const requests = totalRequests(input.gateway);
    if (!input.gateway || requests === 0) return [];
    const calls = input.gateway.calls;
    const requestsPerCall = calls > 0 ? requests / calls : undefined;
    // A rate over less than a second is noise: a short session counts as one second.
    const requestsPerSecond = requests / Math.max(1, (input.durationMs ?? 0) / 1000);
    if ((requestsPerCall ?? 0) < L.requestsPerCall && requestsPerSecond < L.requestsPerSecond) return [];
    const top = Object.entries(input.gateway.requests).sort((a, b) => b[1] - a[1]).slice(0, 3);
    const perCall = requestsPerCall === undefined ? 'outside calls' : `${requestsPerCall.toFixed(1)} per call`;
    return [finding(input, 'chatty-gateway',
      `the plugin made ${requests} gateway requests (${perCall}, ${requestsPerSecond.toFixed(0)}/s; mostly ` +
        `${top.map(([op, n]) => `${op} ×${n}`).join(', ')}); batch or cache them`,
      { requests, calls, requestsPerCall, requestsPerSecond, topOperations: Object.fromEntries(top),
        thresholds: { requestsPerCall: L.requestsPerCall, requestsPerSecond: L.requestsPerSecond } })];
  },
};

/**
 * Runs every rule over `input`.
 *
 * @example
 * findBottlenecks({ pluginId: 'acme', methods: metrics.calls, memory: metrics.memory });
 */
export function findBottlenecks(input: BottleneckInput): Bottleneck[] {
  return Object.values(BOTTLENECK_RULES).flatMap((rule) => rule(input));
}

/**
 * The mean call time estimated from percentiles (metrics keep no sums): each band of the
 * distribution counted at the midpoint of its bounds, the lower half at the median.
 *
 * @example
 * estimateMeanMs({ count: 10, errors: 0, p50: 10, p90: 20, p99: 50, max: 90 }); // 14.85
 */
export function estimateMeanMs(s: MethodStats): number {
  return 0.5 * s.p50 + 0.4 * ((s.p50 + s.p90) / 2) + 0.09 * ((s.p90 + s.p99) / 2) + 0.01 * ((s.p99 + s.max) / 2);
}

function callsOf(s: MethodStats & { countInSession?: number }): number {
  return s.countInSession ?? s.count;
}

function totalRequests(gateway: GatewayActivity | undefined): number {
  return Object.values(gateway?.requests ?? {}).reduce((a, b) => a + b, 0);
}

function finding(input: BottleneckInput, rule: BottleneckRule, what: string, evidence: Record<string, unknown>): Bottleneck {
  return { rule, message: `Plugin '${input.pluginId}': ${what}.`, evidence };
}

const pct = (share: number) => `${Math.round(share * 100)} %`;
const kib = (bytes: number) => (bytes / 1024).toFixed(0);
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
