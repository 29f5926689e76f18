import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { judge, type BenchmarkResult } from './benchmark-result.js';
import { median } from './stats.js';
import { measureRssIn, type RssSample } from './sandbox-rss.js';

const CHILD = fileURLToPath(new URL('./wasm-memory-child.js', import.meta.url));

const measureIn = (kind: RssSample['kind'], tmp: string, n: number) => measureRssIn(CHILD, 'wasm', kind, tmp, n);

/**
 * RSS growth per idle Wasm plugin (loaded and started in one host: a piscina pool of one
 * worker each) against per bare worker_threads Worker holding the same instantiated module.
 * One child process per kind per round (--expose-gc, gc() ×3 before each reading), one at a
 * time; median over the rounds.
 *
 * @example
 * const result = await wasmIdleMemory(tmp); result.ours; // MB per plugin
 */
export async function wasmIdleMemory(tmp: string, options = { rounds: 2, n: 20 }): Promise<BenchmarkResult> {
  const samples: RssSample[] = [];
  for (let round = 0; round < options.rounds; round++) {
    for (const kind of ['ours', 'raw'] as const) samples.push(await measureIn(kind, join(tmp, `wasm-rss-${round}-${kind}`), options.n));
  }
  const of = (kind: RssSample['kind']) => samples.filter((s) => s.kind === kind);
  return judge({
    id: 'wasm-idle-memory',
    title: `RSS per idle Wasm plugin (N=${options.n}, loaded and started)`,
    unit: 'MB',
    metric: 'median over rounds of RSS delta / N',
    ours: median(of('ours').map((s) => s.perSandboxMB)),
    raw: median(of('raw').map((s) => s.perSandboxMB)),
    target: { on: 'ratio', max: 1.5, text: '≤ 1.5× raw (target set with this benchmark)' },
    details: {
      method: `child processes (--no-node-snapshot --expose-gc), ${options.rounds} rounds, one child per kind per round, one at a time; one warm-up sandbox before the first reading; gc() ×3 before each reading (the main thread's heap: worker heaps are not collected on demand, alike for both); raw = a bare Worker with the same resource limits holding the instantiated module`,
      ours: of('ours'),
      raw: of('raw'),
    },
  });
}
