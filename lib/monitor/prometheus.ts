import type { PluginMetrics } from './types.js';

/**
 * Renders plugin metrics in the Prometheus text exposition format 0.0.4
 * (`Content-Type: text/plain; version=0.0.4`). Every sample carries a `plugin` label;
 * per-method samples also carry `method`. Families come in a fixed order, plugins and
 * methods sorted, so two renderings of the same metrics are byte-identical.
 *
 * `logomesh_plugin_call_duration_seconds` is a summary with quantiles 0.5, 0.9 and 0.99
 * only (no `_sum`/`_count`: the call count is `logomesh_plugin_calls_total`, the time
 * spent `logomesh_plugin_execution_seconds_total`). Quantiles and call counts cover the
 * plugin's tracked life, not a sliding window.
 *
 * @example
 * res.setHeader('Content-Type', PROMETHEUS_CONTENT_TYPE);
 * res.end(toPrometheusText([monitor.metrics('hello-world')!]));
 */
export function toPrometheusText(metrics: Iterable<PluginMetrics>): string {
  const plugins = [...metrics].sort((a, b) => compare(a.pluginId, b.pluginId));
  const out: string[] = [];
  for (const [name, type, help, value] of PLUGIN_FAMILIES) {
    header(out, name, type, help);
    for (const m of plugins) out.push(`${name}{plugin="${escapeLabelValue(m.pluginId)}"} ${formatValue(value(m))}`);
  }
  header(out, CALLS, 'counter', 'Calls, events and hooks delivered to the plugin, by method.');
  forEachMethod(plugins, (labels, stats) => out.push(`${CALLS}{${labels}} ${formatValue(stats.count)}`));
  header(out, DURATION, 'summary', 'Call latency by method, seconds, over the plugin life.');
  forEachMethod(plugins, (labels, stats) => {
    for (const [q, ms] of [['0.5', stats.p50], ['0.9', stats.p90], ['0.99', stats.p99]] as const) {
      out.push(`${DURATION}{${labels},quantile="${q}"} ${formatValue(ms / 1000)}`);
    }
  });
  return out.join('\n') + '\n';
}

/** The `Content-Type` of {@link toPrometheusText}'s output. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * Escapes a label value for the exposition format: backslash, double quote and line feed.
 *
 * @example
 * escapeLabelValue('a"b\\c\nd'); // 'a\\"b\\\\c\\nd'
 */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/**
 * A sample value as the format spells it: `NaN`, `+Inf`, `-Inf` or a JS number literal.
 *
 * @example
 * formatValue(Infinity); // '+Inf'
 */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

type Family = readonly [name: string, type: 'gauge' | 'counter', help: string, value: (m: PluginMetrics) => number];

const CALLS = 'logomesh_plugin_calls_total';
const DURATION = 'logomesh_plugin_call_duration_seconds';

const PLUGIN_FAMILIES: readonly Family[] = [
  ['logomesh_plugin_memory_bytes', 'gauge', 'Memory the plugin sandbox uses, bytes.', (m) => m.memory.current],
  ['logomesh_plugin_memory_peak_bytes', 'gauge', 'Most memory the plugin sandbox has used, bytes.', (m) => m.memory.peak],
  ['logomesh_plugin_memory_limit_bytes', 'gauge', 'Memory the plugin sandbox may use, bytes.', (m) => m.memory.limit],
  ['logomesh_plugin_cpu_percent', 'gauge', 'CPU the plugin used over the last sample interval, percent of one core.', (m) => m.cpu.current],
  ['logomesh_plugin_network_bytes_in_total', 'counter', 'Bytes the plugin received over the network.', (m) => m.network.bytesIn],
  ['logomesh_plugin_network_bytes_out_total', 'counter', 'Bytes the plugin sent over the network.', (m) => m.network.bytesOut],
  ['logomesh_plugin_network_requests_total', 'counter', 'Network requests the plugin made.', (m) => m.network.requestCount],
  ['logomesh_plugin_fs_open_files', 'gauge', 'Files the plugin has open.', (m) => m.filesystem.filesOpen],
  ['logomesh_plugin_fs_bytes_read_total', 'counter', 'Bytes the plugin read from files.', (m) => m.filesystem.bytesRead],
  ['logomesh_plugin_fs_bytes_written_total', 'counter', 'Bytes the plugin wrote to files.', (m) => m.filesystem.bytesWritten],
  ['logomesh_plugin_execution_seconds_total', 'counter', 'Time spent in the plugin calls, events and hooks, seconds.', (m) => m.executionTime / 1000],
  ['logomesh_plugin_errors_total', 'counter', 'Calls, events and hooks into the plugin that failed.', (m) => m.errorCount],
];

function header(out: string[], name: string, type: string, help: string): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
}

function forEachMethod(plugins: PluginMetrics[], fn: (labels: string, stats: PluginMetrics['calls'][string]) => void): void {
  for (const m of plugins) {
    const plugin = escapeLabelValue(m.pluginId);
    for (const method of Object.keys(m.calls).sort(compare)) {
      fn(`plugin="${plugin}",method="${escapeLabelValue(method)}"`, m.calls[method]!);
    }
  }
}

/** Code-unit order, independent of the process locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
