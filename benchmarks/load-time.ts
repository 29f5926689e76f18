import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { benchHost } from './bench-host.js';
import { judge, type BenchmarkResult } from './benchmark-result.js';
import { interleave, type InterleaveOptions } from './interleave.js';
import { copyFixture } from './plugin-copies.js';
import { rawModuleIsolate } from './raw-isolate.js';
import { scale, summarize } from './stats.js';

const NS_TO_MS = 1e-6;
const ID = 'bench-load';

/**
 * `host.load(dir)` then `host.unload(id)` of the TypeScript echo plugin, against a bare
 * isolate's new Isolate + createContext + compileModule + instantiate + evaluate + dispose.
 * The first load compiles the TypeScript and is reported apart; every timed load after it
 * comes from the compiled-module cache.
 *
 * @example
 * const result = await loadTime(tmp);
 * result.ours; // p50 of one load + unload, ms
 */
export async function loadTime(
  tmp: string,
  options: InterleaveOptions = { warmup: 10, rounds: 20, batch: 10 },
): Promise<BenchmarkResult> {
  const host = await benchHost(tmp);
  try {
    const dir = await copyFixture('echo-ts', join(tmp, 'plugins'), ID);
    const first = process.hrtime.bigint();
    await host.load(dir);
    const firstLoadMs = Number(process.hrtime.bigint() - first) * NS_TO_MS;
    await host.unload(ID);
    const cached = await readdir(join(tmp, 'data', 'cache', 'modules')).catch(() => [] as string[]);

    // Per-sample parts, warm-up included; the first `warmup` entries are dropped below.
    const ourLoad: number[] = [];
    const ourRuntimeLoad: number[] = [];
    const rawLoad: number[] = [];
    const samples = await interleave(
      [
        {
          name: 'ours',
          run: async () => {
            const t0 = process.hrtime.bigint();
            const status = await host.load(dir);
            ourLoad.push(Number(process.hrtime.bigint() - t0) * NS_TO_MS);
            ourRuntimeLoad.push(status.loadTimeMs ?? NaN);
            await host.unload(ID);
          },
        },
        {
          name: 'raw',
          run: async () => {
            const t0 = process.hrtime.bigint();
            const raw = await rawModuleIsolate();
            rawLoad.push(Number(process.hrtime.bigint() - t0) * NS_TO_MS);
            raw.isolate.dispose();
          },
        },
      ],
      options,
    );
    const timed = (values: number[]) => summarize(values.slice(options.warmup));
    const ours = scale(summarize(samples.get('ours')!), NS_TO_MS);
    const raw = scale(summarize(samples.get('raw')!), NS_TO_MS);
    return judge({
      id: 'load-time',
      title: 'Plugin load + unload (TS plugin, compile cache warm)',
      unit: 'ms',
      metric: 'p50',
      ours: ours.p50,
      raw: raw.p50,
      target: { on: 'ours', max: 5, text: '≤ 5 ms (p50)' },
      details: {
        method: `interleaved batches: ${options.warmup} warm-up cycles per variant, then ${options.rounds} rounds × ${options.batch} cycles per variant`,
        firstLoadMs,
        compileCacheFiles: cached.filter((f) => f.endsWith('.js')).length,
        ours,
        raw,
        breakdown: {
          note: "load alone (without unload/dispose); 'runtime' is the host's own loadTimeMs (JsRuntime.load), the rest of host.load is registry + verification + bookkeeping",
          oursLoad: timed(ourLoad),
          oursRuntimeLoad: timed(ourRuntimeLoad),
          rawLoad: timed(rawLoad),
        },
      },
    });
  } finally {
    await host.close();
  }
}
