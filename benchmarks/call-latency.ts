import { join } from 'node:path';
import { DEFAULT_RESOURCE_LIMITS } from '../lib/registry/manifest-schema.js';
import { benchHost } from './bench-host.js';
import { judge, type BenchmarkResult } from './benchmark-result.js';
import { interleave, STEADY_WARMUP, type InterleaveOptions } from './interleave.js';
import { copyFixture } from './plugin-copies.js';
import { rawEchoChannel } from './raw-isolate.js';
import { scale, summarize } from './stats.js';

const TIMEOUT_MS = DEFAULT_RESOURCE_LIMITS.executionTimeoutMs;
const NS_TO_US = 1e-3;

/**
 * `host.call('bench', 'echo', 'x')` into a started JS plugin, against the bare transport it
 * rides on: `Reference.apply` of an async JSON-in/JSON-out function in a bare isolate.
 *
 * Three more raw variants add, one at a time, what `JsRuntime.invoke` adds per call, so the
 * gap between raw and ours is attributed: isolated-vm's `timeout` option, the host-side
 * deadline timer (`withDeadline`), and the heap check (`checkMemory`).
 *
 * @example
 * const result = await callLatency(tmp);
 * result.ratio; // p50(ours) / p50(raw)
 */
export async function callLatency(
  tmp: string,
  options: InterleaveOptions = { warmup: STEADY_WARMUP, rounds: 30, batch: 200 },
): Promise<BenchmarkResult> {
  const host = await benchHost(tmp);
  const raw = await rawEchoChannel();
  try {
    await host.load(await copyFixture('echo-js', join(tmp, 'plugins'), 'bench'));
    await host.start('bench');
    const echoed = await host.call('bench', 'echo', 'x');
    if (echoed !== 'x') throw new Error(`call-latency: the echo plugin answered ${JSON.stringify(echoed)}`);

    // The same JSON work JsRuntime does on the host side: stringify the invocation, parse the answer.
    const rawCall = async (timeout?: number) =>
      JSON.parse(await raw.call(JSON.stringify({ type: 'call', method: 'echo', args: ['x'] }), { timeout })).value;
    const deadline = <T>(work: Promise<T>): Promise<T> => {
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('deadline')), TIMEOUT_MS);
      });
      return Promise.race([work, expired]).finally(() => clearTimeout(timer));
    };
    const heapCheck = () => {
      const heap = raw.isolate.getHeapStatisticsSync();
      return heap.used_heap_size + heap.externally_allocated_size;
    };

    const samples = await interleave(
      [
        { name: 'ours', run: () => host.call('bench', 'echo', 'x') },
        { name: 'raw', run: () => rawCall() },
        { name: 'raw+timeout', run: () => rawCall(TIMEOUT_MS) },
        { name: 'raw+timeout+deadline', run: () => deadline(rawCall(TIMEOUT_MS)) },
        {
          name: 'raw+timeout+deadline+heapCheck',
          run: async () => {
            const value = await deadline(rawCall(TIMEOUT_MS));
            heapCheck();
            return value;
          },
        },
      ],
      options,
    );
    const stats = Object.fromEntries([...samples].map(([name, ns]) => [name, scale(summarize(ns), NS_TO_US)]));
    return judge({
      id: 'call-latency',
      title: "Call latency: host.call('bench', 'echo', 'x')",
      unit: 'µs',
      metric: 'p50',
      ours: stats.ours.p50,
      raw: stats.raw.p50,
      target: { on: 'ratio', max: 1.5, text: '≤ 1.5× raw (p50)' },
      details: {
        method: `interleaved batches: ${options.warmup} warm-up calls per variant, then ${options.rounds} rounds × ${options.batch} calls per variant, rotating which variant goes first`,
        ours: stats.ours,
        raw: stats.raw,
        breakdown: {
          note: 'raw plus, cumulatively, what JsRuntime.invoke adds per call; all variants interleaved in the same run',
          'raw+timeout': stats['raw+timeout'],
          'raw+timeout+deadline': stats['raw+timeout+deadline'],
          'raw+timeout+deadline+heapCheck': stats['raw+timeout+deadline+heapCheck'],
        },
      },
    });
  } finally {
    raw.dispose();
    await host.close();
  }
}
