import { join } from 'node:path';
import type { PluginHost } from '../lib/index.js';
import { benchHost } from './bench-host.js';
import { judge, type BenchmarkResult } from './benchmark-result.js';
import { interleave, type InterleaveOptions } from './interleave.js';
import { copyFixture } from './plugin-copies.js';
import { scale, summarize } from './stats.js';

const NS_TO_US = 1e-3;
/** Consecutive groups of rounds whose p50 ratios are reported, to show how stable the ratio is within a run. */
const BLOCKS = 5;

/** The hosts, in the order they are created: monitoring on and off alternate ABBA, so neither kind gets the earlier-created slots. */
const HOSTS = [
  { name: 'on-1', monitoring: true },
  { name: 'off-1', monitoring: false },
  { name: 'off-2', monitoring: false },
  { name: 'on-2', monitoring: true },
] as const;
const ON = HOSTS.filter((h) => h.monitoring).map((h) => h.name);
const OFF = HOSTS.filter((h) => !h.monitoring).map((h) => h.name);

/**
 * `host.call('bench', 'echo', 'x')` into hosts with monitoring on (the default: metrics
 * sampling timer, per-call recording, health heartbeat) against the same call into hosts in
 * the same process created with `monitoring: { enabled: false }`, each host with its own copy
 * of the echo plugin, all timed in interleaved batches.
 *
 * Two hosts of each kind, created ABBA and pooled per kind: while this benchmark was written,
 * one of two identical hosts now and then ran ~2% slower than the other for a whole run, which
 * no sample count averages out. The two same-kind pairs (on-2/on-1, off-2/off-1) show that
 * noise floor in each run. With these defaults (60 000 calls per host) the on/off p50 ratio
 * ranged 1.005–1.026 over nine pinned development runs, the same-kind pairs 0.986–1.013.
 *
 * @example
 * const result = await monitoringCallLatency(tmp);
 * result.ratio; // p50(monitoring on) / p50(monitoring off)
 */
export async function monitoringCallLatency(
  tmp: string,
  options: InterleaveOptions = { warmup: 2000, rounds: 300, batch: 200 },
): Promise<BenchmarkResult> {
  const hosts = new Map<string, PluginHost>();
  try {
    for (const { name, monitoring } of HOSTS) {
      const dir = join(tmp, name);
      const host = await benchHost(dir, monitoring ? {} : { monitoring: { enabled: false } });
      hosts.set(name, host);
      await host.load(await copyFixture('echo-js', join(dir, 'plugins'), 'bench'));
      await host.start('bench');
      const echoed = await host.call('bench', 'echo', 'x');
      if (echoed !== 'x') throw new Error(`monitoring-call-latency: the echo plugin (${name}) answered ${JSON.stringify(echoed)}`);
    }

    const samples = await interleave(
      HOSTS.map(({ name }) => ({ name, run: () => hosts.get(name)!.call('bench', 'echo', 'x') })),
      options,
    );
    // The switch must really be what differs: a monitored host counted every call, the others none.
    const calls = Object.fromEntries(HOSTS.map(({ name }) => [name, hosts.get(name)!.metrics('bench')?.calls.echo?.count ?? 0]));
    const expected = 1 + options.warmup + options.rounds * options.batch;
    for (const { name, monitoring } of HOSTS) {
      if (calls[name] !== (monitoring ? expected : 0)) {
        throw new Error(`monitoring-call-latency: expected ${expected} calls recorded with monitoring on and none with it off, got ${JSON.stringify(calls)}`);
      }
    }

    const of = (names: readonly string[], from = 0, to = Infinity) => names.flatMap((n) => samples.get(n)!.slice(from, to));
    const stat = (names: readonly string[]) => scale(summarize(of(names)), NS_TO_US);
    const on = stat(ON);
    const off = stat(OFF);
    const each = Object.fromEntries(HOSTS.map(({ name }) => [name, stat([name])]));
    const floor = { 'on-2/on-1': each['on-2'].p50 / each['on-1'].p50, 'off-2/off-1': each['off-2'].p50 / each['off-1'].p50 };
    // p50 ratio over consecutive groups of rounds (samples are stored round by round).
    const size = Math.floor(options.rounds / BLOCKS) * options.batch;
    const blocks = Array.from({ length: BLOCKS }, (_, k) => {
      const [a, b] = [of(ON, k * size, (k + 1) * size), of(OFF, k * size, (k + 1) * size)];
      return summarize(a).p50 / summarize(b).p50;
    });
    return judge({
      id: 'monitoring-call-latency',
      title: "Call latency with monitoring on vs off: host.call('bench', 'echo', 'x')",
      unit: 'µs',
      metric: 'p50',
      ours: on.p50,
      raw: off.p50,
      target: { on: 'ratio', max: 1.05, text: '≤ 1.05× monitoring off (p50)' },
      details: {
        method:
          `four hosts in one process, each with its own copy of the echo plugin started: two default (monitoring on) and two created with ` +
          `monitoring: { enabled: false }, in the order ${HOSTS.map((h) => h.name).join(', ')}; samples pooled per kind. Interleaved batches: ` +
          `${options.warmup} warm-up calls per host, then ${options.rounds} rounds × ${options.batch} calls per host, rotating which host goes first`,
        note:
          `Noise floor: between two identical hosts the p50 differed by ${fmt(floor['on-2/on-1'])} (on-2/on-1) and ${fmt(floor['off-2/off-1'])} ` +
          `(off-2/off-1) in this run. The on/off p50 ratio over ${BLOCKS} consecutive blocks of rounds ranged ${fmt(Math.min(...blocks))}–${fmt(Math.max(...blocks))}.`,
        ours: on,
        raw: off,
        callsRecorded: calls,
        noiseFloor: floor,
        blockRatios: { note: `p50(on)/p50(off) per block of ${size / options.batch} consecutive rounds`, values: blocks },
        breakdown: {
          note: "'ours' is monitoring on (on-1 and on-2 pooled), 'raw' monitoring off (off-1 and off-2 pooled); each host alone below, all interleaved in the same run",
          ...each,
        },
      },
    });
  } finally {
    for (const host of hosts.values()) await host.close();
  }
}

function fmt(ratio: number): string {
  return `${ratio.toFixed(3)}×`;
}
