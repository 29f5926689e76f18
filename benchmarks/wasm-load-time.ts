import { join } from 'node:path';
import { benchHost } from './bench-host.js';
import { judge, type BenchmarkResult } from './benchmark-result.js';
import { interleave, type InterleaveOptions } from './interleave.js';
import { rawWorker } from './raw-wasm-worker.js';
import { scale, summarize } from './stats.js';
import { upperModule, wasmPluginCopy } from './wasm-fixtures.js';

const NS_TO_MS = 1e-6;
const ID = 'wasm-load';

/**
 * `host.load(dir)` then `host.unload(id)` of the Wasm fixture plugin (read, validate, piscina
 * pool of one worker, compile + instantiate in it, lm_describe; then destroy the pool),
 * against a bare worker_threads Worker that compiles and instantiates the same module, then
 * is terminated.
 *
 * @example
 * const result = await wasmLoadTime(tmp); result.ours; // p50 ms
 */
export async function wasmLoadTime(
  tmp: string,
  options: InterleaveOptions = { warmup: 5, rounds: 10, batch: 6 },
): Promise<BenchmarkResult> {
  const host = await benchHost(tmp);
  try {
    const dir = await wasmPluginCopy(join(tmp, 'plugins'), ID);
    const bytes = await upperModule();
    const ourLoad: number[] = [];
    const rawLoad: number[] = [];
    const samples = await interleave(
      [
        {
          name: 'ours',
          run: async () => {
            const t0 = process.hrtime.bigint();
            await host.load(dir);
            ourLoad.push(Number(process.hrtime.bigint() - t0) * NS_TO_MS);
            await host.unload(ID);
          },
        },
        {
          name: 'raw',
          run: async () => {
            const t0 = process.hrtime.bigint();
            const raw = await rawWorker({ mode: 'wasm', bytes: bytes.slice() });
            rawLoad.push(Number(process.hrtime.bigint() - t0) * NS_TO_MS);
            await raw.terminate();
          },
        },
      ],
      options,
    );
    const timed = (values: number[]) => summarize(values.slice(options.warmup));
    const ours = scale(summarize(samples.get('ours')!), NS_TO_MS);
    const raw = scale(summarize(samples.get('raw')!), NS_TO_MS);
    return judge({
      id: 'wasm-load-time',
      title: 'Wasm plugin load + unload',
      unit: 'ms',
      metric: 'p50',
      ours: ours.p50,
      raw: raw.p50,
      target: { on: 'ratio', max: 1.5, text: '≤ 1.5× raw (p50; target set with this benchmark)' },
      details: {
        method: `interleaved batches: ${options.warmup} warm-up cycles per variant, then ${options.rounds} rounds × ${options.batch} cycles per variant; raw = new Worker (same resource limits, no env) + compile + instantiate, then terminate`,
        ours,
        raw,
        breakdown: {
          note: 'load alone (without unload / terminate)',
          oursLoad: timed(ourLoad),
          rawLoad: timed(rawLoad),
        },
      },
    });
  } finally {
    await host.close();
  }
}
