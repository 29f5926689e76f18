import { fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { judge, type BenchmarkResult } from './benchmark-result.js';
import { median } from './stats.js';
import type { WasmMemoryMessage, WasmRssSample } from './wasm-memory-child.js';

const CHILD = fileURLToPath(new URL('./wasm-memory-child.js', import.meta.url));

function measureIn(kind: WasmRssSample['kind'], tmp: string, n: number): Promise<WasmRssSample> {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [kind, tmp, String(n)], { execArgv: ['--no-node-snapshot', '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let sample: WasmRssSample | undefined;
    child.on('message', (m: WasmMemoryMessage) => (m.type === 'rss' ? (sample = m.sample) : reject(new Error(`wasm memory child (${kind}) failed:\n${m.message}`))));
    child.on('error', reject);
    child.on('exit', (code, signal) => (sample ? resolve(sample) : reject(new Error(`wasm memory child (${kind}) exited with ${signal ?? `code ${code}`} before reporting`))));
  });
}

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
  const samples: WasmRssSample[] = [];
  for (let round = 0; round < options.rounds; round++) {
    for (const kind of ['ours', 'raw'] as const) samples.push(await measureIn(kind, join(tmp, `wasm-rss-${round}-${kind}`), options.n));
  }
  const of = (kind: WasmRssSample['kind']) => samples.filter((s) => s.kind === kind);
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
