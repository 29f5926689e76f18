import { expect } from 'chai';
import { escapeLabelValue, formatValue, toPrometheusText } from '../../lib/monitor/prometheus.js';
import type { MethodStats, PluginMetrics } from '../../lib/monitor/types.js';

// A tiny parser of the text exposition format 0.0.4, written from its grammar
// (https://prometheus.io/docs/instrumenting/exposition_formats/), strict enough to reject
// what Prometheus would: bad names, unescaped label values, ungrouped or untyped families.
const NAME = String.raw`[a-zA-Z_:][a-zA-Z0-9_:]*`;
const LABEL_NAME = String.raw`[a-zA-Z_][a-zA-Z0-9_]*`;
const LABEL_VALUE = String.raw`"((?:[^"\\\n]|\\[\\"n])*)"`;
const PAIR = `${LABEL_NAME}=${LABEL_VALUE.replace('(', '(?:')}`;
const FLOAT = String.raw`(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)`;
const HELP_LINE = new RegExp(String.raw`^# HELP (${NAME}) ((?:[^\\\n]|\\[\\n])*)$`);
const TYPE_LINE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const SAMPLE_LINE = new RegExp(String.raw`^(${NAME})(?:\{((?:${PAIR})(?:,${PAIR})*,?)?\})? (${FLOAT})(?: (-?\d+))?$`);
const PAIRS = new RegExp(`(${LABEL_NAME})=${LABEL_VALUE}`, 'g');

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Family {
  help?: string;
  type?: string;
  samples: Sample[];
}

function unescape(value: string): string {
  return value.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseExposition(text: string): Map<string, Family> {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('the text must end with a line feed');
  const families = new Map<string, Family>();
  const series = new Set<string>();
  let current: string | undefined;
  const open = (name: string): Family => {
    if (name !== current && families.has(name)) throw new Error(`family ${name} is not grouped`);
    current = name;
    let f = families.get(name);
    if (!f) families.set(name, (f = { samples: [] }));
    return f;
  };
  for (const [i, line] of text.split('\n').slice(0, -1).entries()) {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    let m: RegExpExecArray | null;
    if (line === '') continue;
    if ((m = HELP_LINE.exec(line))) {
      const f = open(m[1]!);
      if (f.help !== undefined) throw new Error(`second HELP, ${where}`);
      f.help = m[2]!.replace(/\\([\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    } else if ((m = TYPE_LINE.exec(line))) {
      const f = open(m[1]!);
      if (f.type !== undefined || f.samples.length > 0) throw new Error(`TYPE after samples or twice, ${where}`);
      f.type = m[2]!;
    } else if (/^# (HELP|TYPE) /.test(line)) {
      throw new Error(`malformed HELP or TYPE, ${where}`);
    } else if (line.startsWith('#')) {
      continue;
    } else if ((m = SAMPLE_LINE.exec(line))) {
      const name = m[1]!;
      const base = name.replace(/_(sum|count|bucket)$/, '');
      const family = families.get(base)?.type === 'summary' || families.get(base)?.type === 'histogram' ? base : name;
      const f = open(family);
      if (f.type === undefined) throw new Error(`sample before its TYPE, ${where}`);
      const labels: Record<string, string> = {};
      for (const [, label, value] of (m[2] ?? '').matchAll(PAIRS)) {
        if (label! in labels) throw new Error(`label ${label} twice, ${where}`);
        labels[label!] = unescape(value!);
      }
      const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
      if (series.has(key)) throw new Error(`duplicate series, ${where}`);
      series.add(key);
      const raw = m[3]!;
      f.samples.push({ name, labels, value: raw.endsWith('Inf') ? (raw.startsWith('-') ? -Infinity : Infinity) : Number(raw) });
    } else {
      throw new Error(`not in the exposition grammar, ${where}`);
    }
  }
  return families;
}

const stats = (over: Partial<MethodStats> = {}): MethodStats => ({ count: 10, errors: 1, p50: 2, p90: 9, p99: 12.5, max: 20, ...over });

function metrics(pluginId: string, over: Partial<PluginMetrics> = {}): PluginMetrics {
  return {
    pluginId,
    at: 1_700_000_000_000,
    memory: { current: 10_485_760, peak: 20_971_520, limit: 67_108_864 },
    cpu: { current: 12.5, average: 3.25, limit: 50 },
    network: { bytesIn: 100, bytesOut: 200, requestCount: 3 },
    filesystem: { filesOpen: 2, bytesRead: 4096, bytesWritten: 1024 },
    executionTime: 1500,
    errorCount: 1,
    lastActivity: 1_700_000_000_000,
    calls: { greet: stats() },
    ...over,
  };
}

const FAMILIES: Record<string, string> = {
  logomesh_plugin_memory_bytes: 'gauge',
  logomesh_plugin_memory_peak_bytes: 'gauge',
  logomesh_plugin_memory_limit_bytes: 'gauge',
  logomesh_plugin_cpu_percent: 'gauge',
  logomesh_plugin_network_bytes_in_total: 'counter',
  logomesh_plugin_network_bytes_out_total: 'counter',
  logomesh_plugin_network_requests_total: 'counter',
  logomesh_plugin_fs_open_files: 'gauge',
  logomesh_plugin_fs_bytes_read_total: 'counter',
  logomesh_plugin_fs_bytes_written_total: 'counter',
  logomesh_plugin_execution_seconds_total: 'counter',
  logomesh_plugin_errors_total: 'counter',
  logomesh_plugin_calls_total: 'counter',
  logomesh_plugin_call_duration_seconds: 'summary',
};

const value = (families: Map<string, Family>, name: string, labels: Record<string, string>) =>
  families.get(name)?.samples.find((s) => JSON.stringify(s.labels) === JSON.stringify(labels))?.value;

describe('toPrometheusText', () => {
  it('declares every family once with HELP and TYPE, and labels every sample with its plugin', () => {
    const families = parseExposition(toPrometheusText([metrics('alpha'), metrics('beta')]));
    expect(Object.fromEntries([...families].map(([name, f]) => [name, f.type]))).to.deep.equal(FAMILIES);
    for (const [name, f] of families) {
      expect(f.help, name).to.be.a('string').and.not.equal('');
      for (const s of f.samples) {
        expect(s.name).to.equal(name);
        expect(s.labels.plugin).to.be.oneOf(['alpha', 'beta']);
      }
    }
    expect(families.get('logomesh_plugin_memory_bytes')!.samples.map((s) => s.labels)).to.deep.equal([{ plugin: 'alpha' }, { plugin: 'beta' }]);
  });

  it('exposes the values in base units: bytes, percent, seconds', () => {
    const families = parseExposition(toPrometheusText([metrics('alpha')]));
    const plugin = { plugin: 'alpha' };
    expect(value(families, 'logomesh_plugin_memory_bytes', plugin)).to.equal(10_485_760);
    expect(value(families, 'logomesh_plugin_memory_peak_bytes', plugin)).to.equal(20_971_520);
    expect(value(families, 'logomesh_plugin_memory_limit_bytes', plugin)).to.equal(67_108_864);
    expect(value(families, 'logomesh_plugin_cpu_percent', plugin)).to.equal(12.5);
    expect(value(families, 'logomesh_plugin_network_bytes_in_total', plugin)).to.equal(100);
    expect(value(families, 'logomesh_plugin_network_bytes_out_total', plugin)).to.equal(200);
    expect(value(families, 'logomesh_plugin_network_requests_total', plugin)).to.equal(3);
    expect(value(families, 'logomesh_plugin_fs_open_files', plugin)).to.equal(2);
    expect(value(families, 'logomesh_plugin_fs_bytes_read_total', plugin)).to.equal(4096);
    expect(value(families, 'logomesh_plugin_fs_bytes_written_total', plugin)).to.equal(1024);
    expect(value(families, 'logomesh_plugin_execution_seconds_total', plugin)).to.equal(1.5);
    expect(value(families, 'logomesh_plugin_errors_total', plugin)).to.equal(1);
    const method = { plugin: 'alpha', method: 'greet' };
    expect(value(families, 'logomesh_plugin_calls_total', method)).to.equal(10);
    const quantiles = families.get('logomesh_plugin_call_duration_seconds')!.samples.map((s) => [s.labels.quantile, s.value]);
    expect(quantiles).to.deep.equal([['0.5', 0.002], ['0.9', 0.009], ['0.99', 0.0125]]);
  });

  it('escapes backslash, double quote and line feed in label values, and they read back unchanged', () => {
    const id = 'we"ird\\id\nnext';
    const method = 'say "hi"\\now\n';
    const text = toPrometheusText([metrics(id, { calls: { [method]: stats() } })]);
    expect(text).to.include(String.raw`logomesh_plugin_memory_bytes{plugin="we\"ird\\id\nnext"} 10485760`);
    expect(text).to.include(String.raw`logomesh_plugin_calls_total{plugin="we\"ird\\id\nnext",method="say \"hi\"\\now\n"} 10`);
    // One sample per line: an escaped line feed never splits a sample.
    for (const line of text.split('\n')) expect(line === '' || line.startsWith('#') || /^logomesh_plugin_\w+[{ ]/.test(line), line).to.equal(true);
    const families = parseExposition(text);
    expect(families.get('logomesh_plugin_memory_bytes')!.samples[0]!.labels).to.deep.equal({ plugin: id });
    expect(families.get('logomesh_plugin_call_duration_seconds')!.samples[0]!.labels).to.deep.equal({ plugin: id, method, quantile: '0.5' });
  });

  it('is byte-identical for the same metrics in any order (plugins and methods sorted)', () => {
    const a = metrics('alpha', { calls: { zeta: stats(), alpha: stats({ count: 2 }) } });
    const b = metrics('beta');
    const text = toPrometheusText([b, a]);
    expect(toPrometheusText([a, b])).to.equal(text);
    const calls = parseExposition(text).get('logomesh_plugin_calls_total')!.samples.map((s) => `${s.labels.plugin}/${s.labels.method}`);
    expect(calls).to.deep.equal(['alpha/alpha', 'alpha/zeta', 'beta/greet']);
  });

  it('still parses with no plugins and with plugins that have no calls', () => {
    const empty = parseExposition(toPrometheusText([]));
    expect([...empty.keys()]).to.deep.equal(Object.keys(FAMILIES));
    expect([...empty.values()].every((f) => f.samples.length === 0)).to.equal(true);
    const idle = parseExposition(toPrometheusText([metrics('idle', { calls: {} })]));
    expect(idle.get('logomesh_plugin_calls_total')!.samples).to.deep.equal([]);
    expect(idle.get('logomesh_plugin_memory_bytes')!.samples).to.have.length(1);
  });

  it('spells non-finite values as the format does', () => {
    expect([NaN, Infinity, -Infinity, 0.25, 1e21].map(formatValue)).to.deep.equal(['NaN', '+Inf', '-Inf', '0.25', '1e+21']);
    const families = parseExposition(toPrometheusText([metrics('alpha', { cpu: { current: NaN, average: 0, limit: 50 } })]));
    expect(value(families, 'logomesh_plugin_cpu_percent', { plugin: 'alpha' })).to.be.NaN;
  });

  it('escapeLabelValue escapes exactly backslash, double quote and line feed', () => {
    expect(escapeLabelValue('plain-id_1.2')).to.equal('plain-id_1.2');
    expect(escapeLabelValue('a"b\\c\nd\te')).to.equal('a\\"b\\\\c\\nd\te');
  });

  describe('the spec parser itself', () => {
    it('rejects what Prometheus would reject', () => {
      const bad = [
        '# TYPE x gauge\nx{plugin="a"b"} 1\n', // unescaped quote
        '# TYPE x gauge\nx{plugin="a\nb"} 1\n', // raw line feed splits the sample
        'x 1\n', // no TYPE
        '# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx{a="b"} 2\n', // family not grouped
        '# TYPE x gauge\nx one\n', // not a float
        '# TYPE 1x gauge\n', // bad name
        '# TYPE x gauge\nx 1', // no final line feed
        '# TYPE x gauge\nx{a="1"} 1\nx{a="1"} 2\n', // duplicate series
      ];
      for (const text of bad) expect(() => parseExposition(text), JSON.stringify(text)).to.throw();
    });

    it('accepts the grammar it claims to', () => {
      const text = '# HELP x A \\\\ help\\nline.\n# TYPE x summary\nx{q="a\\"b",quantile="0.5"} +Inf 1700000000000\nx_sum 1.5e3\nx_count 2\n';
      const x = parseExposition(text).get('x')!;
      expect(x.help).to.equal('A \\ help\nline.');
      expect(x.samples.map((s) => s.value)).to.deep.equal([Infinity, 1500, 2]);
      expect(x.samples[0]!.labels).to.deep.equal({ q: 'a"b', quantile: '0.5' });
    });
  });
});
